/*
 * control_req: the requests of the `queue` and `reload` commands (SPEC §6),
 * their one-line wire form on the control socket (core/control.h), and the
 * execution of the queue requests against a queue handle, producing exactly
 * the text the command prints (a table or JSON lines on stdout, messages on
 * stderr). The server runs them on its storage writer thread; with no
 * server running, `bridgehead queue` runs them on a queue it opened itself,
 * so both paths print the same thing.
 *
 * Wire form of a request: one line "VERB [ARG ...]\n", words separated by
 * one space, at most CONTROL_REQ_MAX_LINE bytes with the LF. VERB is list,
 * show, hold, release, delete, flush, stats or reload; an ARG is "json",
 * "now", "connector=NAME", "state=STATE" or "id=ID". Values are printable
 * ASCII without spaces.
 *
 * Ownership: a struct control_req is a plain value (no pointers); callers
 * allocate it. Output goes to util_bufs the caller owns.
 *
 * Threads: every function is reentrant; control_req_run() uses the queue
 * handle under that handle's rules (one thread at a time).
 */
#ifndef BH_CORE_CONTROL_REQ_H
#define BH_CORE_CONTROL_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/queue.h"

#define CONTROL_REQ_MAX_LINE 1024
#define CONTROL_REQ_MAX_VALUE 255

enum control_verb {
    CONTROL_LIST,
    CONTROL_SHOW,
    CONTROL_HOLD,
    CONTROL_RELEASE,
    CONTROL_DELETE,
    CONTROL_FLUSH,
    CONTROL_STATS,
    CONTROL_RELOAD
};

struct control_req {
    enum control_verb verb;
    bool json;              /* list, show, stats: JSON lines instead of a table */
    bool now;               /* flush: also scheduled entries, ignoring schedules */
    enum queue_state state; /* list: QUEUE_STATE_ANY or the state as shown */
    char connector[CONTROL_REQ_MAX_VALUE + 1]; /* list, flush: "" is any */
    char id[CONTROL_REQ_MAX_VALUE + 1];        /* show, hold, ...: "" is none */
};

struct util_buf;

/* Zero the request and set state to QUEUE_STATE_ANY. */
void control_req_init(struct control_req *r, enum control_verb verb);

/* "list", ...; NULL for a value out of range. Parse the other way round:
 * 0 or BH_EINVAL. */
const char *control_req_verb_name(enum control_verb v);
int control_req_verb_parse(const char *name, enum control_verb *v);

/* True for a connector name as SPEC §2 allows it: [A-Za-z0-9_.-]{1,64}. */
bool control_req_name_valid(const char *s);

/* True when the verb changes the queue (hold, release, delete, flush). */
bool control_req_writes(const struct control_req *r);

/* Check that the verb's arguments fit together (show, hold, release and
 * delete need an ID; json only for list, show, stats; now and an ID only
 * for flush; connector only for list and flush, not with an ID; state
 * only for list). 0, or BH_EINVAL with a message in err. */
int control_req_check(const struct control_req *r, char *err, size_t errlen);

/* Append the wire line of r (with its LF) to out. */
void control_req_format(const struct control_req *r, struct util_buf *out);

/* Parse one wire line (with or without its LF) and check it as
 * control_req_check() does. 0, or BH_EINVAL with a message in err.
 * Hostile input is fine. */
int control_req_parse(const char *line, struct control_req *r, char *err, size_t errlen);

/*
 * Run a queue request (not reload) on q at time now (unix seconds): what
 * the command prints on stdout is appended to out, its messages for stderr
 * (each line "bridgehead: ...") to err. q may be NULL: the queue file does
 * not exist yet, which reads as an empty queue. Returns 0 or a negative
 * code: BH_ENOENT an unknown queue ID, BH_EINVAL a malformed ID or request,
 * else the queue's error.
 */
int control_req_run(struct queue *q, const struct control_req *r, int64_t now, struct util_buf *out,
                    struct util_buf *err);

#endif
