/*
 * queue_admin: the operator's view of the queue (SPEC §6: `queue list`,
 * `show`, `hold`, `release`, `delete`, `stats`) and the bulk walk that
 * changes entries' connector and state (a reload routes every waiting entry
 * again; ETRN and `queue flush` make triggered entries due).
 *
 * Functions take a handle from queue_open() (queue.h) and follow its rules:
 * one thread at a time; list and stats work on a QUEUE_READONLY handle. The
 * callbacks must not call queue functions on the same handle. Entries and
 * stats given to a callback are valid only during the call.
 */
#ifndef BH_STORAGE_QUEUE_ADMIN_H
#define BH_STORAGE_QUEUE_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/queue.h"

/* qshape's age buckets: 0-5m, 5-10m, 10-20m, ..., 640-1280m, 1280m+. */
#define QUEUE_ADMIN_AGE_BUCKETS 10

/* Which entries a walk visits; each NULL field matches all. */
struct queue_admin_filter {
    const char *connector;  /* NULL: any */
    enum queue_state state; /* as shown; QUEUE_STATE_ANY: any */
    const char *id;         /* a message ID (any case), NULL: any */
};

/* Counts of one connector's entries in one state (as shown), by the age
 * of their message (now - received), and the received time of the oldest
 * of those messages. */
struct queue_admin_stat {
    const char *connector;
    enum queue_state state;
    uint64_t count[QUEUE_ADMIN_AGE_BUCKETS];
    int64_t oldest_received;
};

/* What the reroute callback may change in an entry. */
struct queue_admin_change {
    const char *connector;  /* must stay valid until queue_admin_reroute() returns */
    enum queue_state state; /* QUEUED, DEFERRED, SCHEDULED, TRIGGERED, or HELD (sets the flag) */
    int64_t next_attempt;   /* ignored for TRIGGERED and HELD */
    bool ignore_schedule;   /* queue.h; stored only with QUEUED and DEFERRED */
};

/* A nonzero return stops the walk and becomes the function's result. */
typedef int queue_admin_entry_cb(const struct queue_entry *e, void *arg);
typedef int queue_admin_stat_cb(const struct queue_admin_stat *s, void *arg);
/* Returns true to apply *c (pre-filled with the entry's connector, its
 * stored state beneath the held flag, its stored next_attempt and its
 * ignore_schedule flag). */
typedef bool queue_admin_reroute_cb(const struct queue_entry *e, struct queue_admin_change *c,
                                    void *arg);

/*
 * Call cb for every entry f matches (NULL: all), in the order they were
 * queued. The entries are read in short batches, so a queue that changes
 * meanwhile is not seen as one snapshot. With f->id set, BH_ENOENT when no
 * such message exists (BH_EINVAL when the ID is malformed).
 */
int queue_admin_list(struct queue *q, const struct queue_admin_filter *f, queue_admin_entry_cb *cb,
                     void *arg);

/*
 * Hold, release or delete all entries of a message. BH_ENOENT for an
 * unknown ID, BH_EINVAL for a malformed one (any case is accepted). A held
 * entry keeps its state beneath the flag and returns to it on release; one
 * in delivery finishes its attempt and, if deferred, stays held. Deleting a
 * message whose entry is in delivery makes that delivery's queue_complete()
 * or queue_defer() return BH_ENOENT.
 */
int queue_admin_hold(struct queue *q, const char *id);
int queue_admin_release(struct queue *q, const char *id);
int queue_admin_delete(struct queue *q, const char *id);

/* One callback per (connector, state) that has entries, sorted by
 * connector (byte order) then state. */
int queue_admin_stats(struct queue *q, int64_t now, queue_admin_stat_cb *cb, void *arg);

/* "0-5m", ..., "1280m+" for bucket 0 .. QUEUE_ADMIN_AGE_BUCKETS - 1, else NULL. */
const char *queue_admin_age_bucket_name(int bucket);

/*
 * Visit every entry f matches (NULL: all) that is not delivering, and apply
 * the changes cb asks for, in one transaction (it joins the caller's
 * queue_txn_begin() if one is open). Returns the number of entries changed,
 * or a negative code, and then nothing is changed (BH_EINVAL for a bad
 * change, BH_ENOENT when f->id names no message).
 */
int queue_admin_reroute(struct queue *q, const struct queue_admin_filter *f,
                        queue_admin_reroute_cb *cb, void *arg);

#endif
