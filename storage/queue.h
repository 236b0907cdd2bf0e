/*
 * queue: the durable message queue (SPEC §5 "Durability", §6, §9), on SQLite.
 *
 * A message is stored once (sender, DSN parameters, size, the text with the
 * Received: header in front) with one entry per recipient (connector, state,
 * attempts, next attempt, last reply, NOTIFY and ORCPT). Delivered and
 * bounced entries are deleted at once; a message goes with its last entry.
 * Schema and migrations: schema.h. Message IDs: queue_id.h. The body while
 * it arrives: queue_spool.h. The second-serve lock: queue_lock.h. Operator
 * functions (list, hold, release, delete, stats) and the bulk rerouting of
 * a reload: queue_admin.h.
 *
 * The interface names no SQLite type: the PostgreSQL backend (SPEC §8,
 * queue_pg.h) sits behind the same functions. queue_open_cfg() chooses the
 * backend; every function then forwards to it. With postgres, several
 * nodes share the queue: leases carry the node's name and expire (the
 * lease length is 60 s, renewed every 20 s by the handle's keeper thread),
 * complete, bounce, defer and set_state of a delivering entry succeed only
 * for its lease holder (BH_ENOENT otherwise), and queue_entry_lease_ok()
 * tells a delivery whether its lease still holds. The SQLite file is in WAL
 * mode; with postgres, the 250 waits for a synchronous_commit=on commit.
 *
 * Threads and handles: a struct queue is used by one thread at a time (the
 * connection is opened without SQLite's mutex). The server opens one
 * read-write handle for its storage writer, which makes every write, and may
 * open QUEUE_READONLY handles for readers (bodies for delivery, list,
 * stats); WAL lets readers run beside the writer. Several processes may open
 * the same file (the `queue` commands when no server runs); queue_lock.h
 * keeps a second server away.
 *
 * Durability: the file is in WAL mode with synchronous=FULL: when a write
 * function returns 0 its change is on disk, with one exception: the
 * "delivering" marks of queue_lease_due() are not fsynced (a crash forgets
 * them, and queue_recover_delivering() would undo them anyway). Functions
 * that need several statements run them in one transaction; the caller may
 * group any number of calls into one transaction (one fsync) with
 * queue_txn_begin() / queue_txn_commit().
 *
 * Errors: 0 (or a count) on success, else a negative BH_E* code:
 * BH_ENOSPC the disk (or the test page limit) is full, BH_EIO an I/O error
 * or a corrupt file, BH_EBUSY the file is locked too long, BH_ENOENT no
 * such message or entry, BH_EINVAL a bad argument, BH_EEXIST a duplicate
 * ID. After an error the handle stays usable and queue_last_error() tells
 * what SQLite said. The glue answers 451 4.3.0 for any error of
 * queue_commit().
 *
 * Ownership: arguments are borrowed for the call. Entries returned by
 * queue_lease_due() own their strings (queue_entry_fini()); entries given
 * to callbacks are valid only during the callback.
 */
#ifndef BH_STORAGE_QUEUE_H
#define BH_STORAGE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/queue_id.h"
#include "storage/queue_spool.h"

/* Open flags. QUEUE_SERVE: the handle of a serving node's storage writer:
 * with postgres it holds the node's lock, renews its leases and listens
 * for other nodes' NOTIFYs; with either backend it has a wake-up fd. */
#define QUEUE_READONLY 1u
#define QUEUE_SERVE 2u

enum queue_backend { QUEUE_BACKEND_SQLITE = 0, QUEUE_BACKEND_POSTGRES = 1 };

/* Where the queue is. Everything is borrowed for the open call. */
struct queue_cfg {
    enum queue_backend backend;
    const char *path; /* sqlite: the file; postgres: its folder holds the spools */
    const char *dsn;  /* postgres: the libpq connection string */
    const char *node; /* postgres: this node's name, the lease holder */
};

/* next_attempt of an entry that has none (held, triggered): JSON null. */
#define QUEUE_NEVER INT64_MAX

/* Entry states (SPEC §6), in precedence order. The numbers are stored in
 * the queue file: never renumber them. */
enum queue_state {
    QUEUE_QUEUED = 0,
    QUEUE_DEFERRED = 1,
    QUEUE_SCHEDULED = 2,
    QUEUE_TRIGGERED = 3,
    QUEUE_HELD = 4,
    QUEUE_DELIVERING = 5,
    QUEUE_STATE_ANY = -1 /* in filters only */
};

/* RET= of the message (RFC 3461); absent means HDRS for our own DSNs, but
 * is passed on as absent. */
enum queue_ret { QUEUE_RET_NONE = 0, QUEUE_RET_HDRS = 1, QUEUE_RET_FULL = 2 };

/* NOTIFY= bits of a recipient; 0: NOTIFY was not given. */
#define QUEUE_NOTIFY_NEVER 1u
#define QUEUE_NOTIFY_SUCCESS 2u
#define QUEUE_NOTIFY_FAILURE 4u
#define QUEUE_NOTIFY_DELAY 8u

struct queue;
struct queue_leases;

/* One recipient of a message to enqueue. */
struct queue_rcpt {
    const char *address;    /* the envelope recipient */
    const char *connector;  /* the connector chosen after the final dot */
    enum queue_state state; /* QUEUED, DEFERRED, SCHEDULED, TRIGGERED or HELD */
    int64_t next_attempt;   /* unix seconds; ignored for TRIGGERED */
    unsigned notify;        /* QUEUE_NOTIFY_* bits, 0: not given */
    const char *orcpt;      /* ORCPT= as received, NULL: none */
};

/* A message to enqueue. Everything is borrowed for the queue_commit() call. */
struct queue_msg {
    char id[QUEUE_ID_LEN + 1]; /* from queue_id_new() */
    const char *sender;        /* "" is the null sender <> */
    const char *envid;         /* ENVID=, NULL: none */
    enum queue_ret ret;
    int priority;                   /* 0 low, 1 normal, 2 high */
    bool system;                    /* a message bridgehead made itself (a DSN) */
    uint64_t size;                  /* as SPEC §9 counts it, without our Received: */
    int64_t received;               /* unix seconds */
    const char *header;             /* put in front of the body (Received:), NULL: none */
    struct queue_spool *body;       /* the body as received, NULL: empty */
    const struct queue_rcpt *rcpts; /* at least one */
    size_t nrcpts;
};

/* One recipient entry as stored, with its message's fields (SPEC §6). */
struct queue_entry {
    int64_t entry;             /* the entry's ID, for queue_complete() and the like */
    char id[QUEUE_ID_LEN + 1]; /* the message's queue ID */
    char *rcpt;
    char *sender; /* "" for <> */
    char *connector;
    char *envid;            /* NULL: none */
    char *orcpt;            /* NULL: none */
    char *last_reply;       /* NULL: none yet */
    enum queue_state state; /* as shown: delivering > held > the stored state */
    bool held;              /* the held flag (state is HELD unless delivering) */
    unsigned attempts;
    unsigned notify;
    enum queue_ret ret;
    int priority;
    bool system;
    bool warned; /* the message's delay DSN was sent */
    /* Made due by `queue flush --now` or ETRN: its next attempt does not
     * wait for the connector's window (cleared once that attempt is made). */
    bool ignore_schedule;
    uint64_t size;
    int64_t received;
    int64_t next_attempt; /* QUEUE_NEVER for held and triggered */
    char *node;           /* postgres: the lease holder of a delivering entry; else NULL */
    struct queue_leases *leases; /* postgres, leased by a QUEUE_SERVE handle: where */
    uint64_t lease_token;        /* queue_entry_lease_ok() looks; else NULL and 0 */
};

/*
 * Open the queue at path. Without QUEUE_READONLY its folder and the file are
 * created when missing (0750 and 0640), the schema is created or migrated,
 * and the file is put in WAL mode. A file that is not a bridgehead queue, a
 * newer schema, or a corrupt file is refused with a message in err naming
 * the path. If the environment variable BRIDGEHEAD_TEST_MAX_PAGES is set it
 * must be a number, the connection's PRAGMA max_page_count (tests use it to
 * fill the "disk"). Returns 0 and *out, or a negative code.
 */
int queue_open(const char *path, unsigned flags, struct queue **out, char *err, size_t errlen);

/*
 * Open the queue cfg names: sqlite as queue_open(cfg->path, ...); postgres
 * by connecting to cfg->dsn, creating or migrating the schema (under an
 * advisory lock), and with QUEUE_SERVE taking the node's lock (BH_EBUSY
 * when a node of the same name runs) and starting the keeper thread. The
 * folder of cfg->path is the queue's folder (spools) for both.
 */
int queue_open_cfg(const struct queue_cfg *cfg, unsigned flags, struct queue **out, char *err,
                   size_t errlen);

/* Close the handle; a transaction still open is rolled back. NULL is fine. */
void queue_close(struct queue *q);

/* SQLite's message for the handle's last error ("" if none). */
const char *queue_last_error(const struct queue *q);

/* The queue's folder (for spools and queue_spool_cleanup()). */
const char *queue_folder(const struct queue *q);

/* Bytes the queue can still grow by: free disk space (and, in tests, the
 * room left under BRIDGEHEAD_TEST_MAX_PAGES). For MAIL SIZE= (452 4.3.1). */
int queue_free_space(struct queue *q, uint64_t *bytes);

/*
 * Group calls into one transaction and one fsync. Every write function
 * called in between joins it (each still all-or-nothing on its own); on a
 * function's error only its own changes are undone, unless SQLite rolled the
 * whole transaction back (disk full, I/O error): then queue_txn_commit()
 * returns that error and nothing of the group is stored.
 */
int queue_txn_begin(struct queue *q);
/* Trade durability for speed on later writes (durable=false: commits are
 * not fsynced, synchronous=NORMAL; a power loss may forget them) or go back
 * to fsyncing every commit. For updates whose loss only repeats work, such
 * as settling deliveries (at-least-once, SPEC §5). */
void queue_set_durable(struct queue *q, bool durable);
int queue_txn_commit(struct queue *q);
void queue_txn_rollback(struct queue *q);

/*
 * Store n messages and their recipients in one transaction (group commit).
 * Each body is copied from its spool into the queue behind its header,
 * streamed in chunks. Returns 0 when all are stored and fsynced, else a
 * negative code and nothing of the batch is stored.
 */
int queue_commit(struct queue *q, const struct queue_msg *msgs, size_t n);

/*
 * Lease up to limit entries that are due: queued, deferred or scheduled,
 * not held, next_attempt <= now, for connector (NULL: any); highest
 * priority first, then the oldest. They are marked delivering and copied
 * into out[0..count), which the caller releases with queue_entry_fini().
 * Returns the count (0 if nothing is due) or a negative code.
 */
int queue_lease_due(struct queue *q, int64_t now, const char *connector, size_t limit,
                    struct queue_entry *out);

/* Release the strings of an entry filled by queue_lease_due(). */
void queue_entry_fini(struct queue_entry *e);

/* Does this node still hold the lease of a leased entry (postgres: not
 * past its deadline by our clock, not lost in a failed renewal, not taken
 * again)? Always true on SQLite. Any thread may call it: a delivery asks
 * before it sends the body and abandons the session when it is false. */
bool queue_entry_lease_ok(const struct queue_entry *e);

/*
 * The wake-up descriptor of a QUEUE_SERVE handle (-1 otherwise): it becomes
 * readable when another node added work (postgres NOTIFY; on SQLite it is
 * never signalled, as there is no other node). The loop watches it and
 * calls queue_wake_clear(), then looks at the queue. Both functions may be
 * called from any thread; they never block.
 */
int queue_wake_fd(const struct queue *q);
void queue_wake_clear(struct queue *q);

/* SPEC §8 source_nodes: the connectors whose entries this node must not
 * lease (postgres; ignored on SQLite, which has one node). Copied. */
int queue_set_excluded(struct queue *q, const char *const *connectors, size_t n);

/* The backend's counter of statements sent (postgres; 0 on SQLite), for
 * the benchmark's cost per message. */
uint64_t queue_round_trips(const struct queue *q);

/*
 * The earliest next_attempt of the entries waiting to be leased (for
 * connector, NULL: any), for the scheduler's timer. Returns 0 and *when, or
 * BH_ENOENT when nothing waits.
 */
int queue_next_due(struct queue *q, const char *connector, int64_t *when);

/* Delivered: delete the entry, and the message with its last entry. */
int queue_complete(struct queue *q, int64_t entry);

/* Bounced (the caller makes the DSN and logs the reply): delete as above. */
int queue_bounce(struct queue *q, int64_t entry);

/*
 * Temporary failure: the entry becomes deferred until next_attempt, with
 * last_reply (NULL keeps the old one); count_attempt adds one to attempts
 * (not when no destination was up, SPEC §4). A counted attempt also clears
 * ignore_schedule: the attempt it was for has been made.
 */
int queue_defer(struct queue *q, int64_t entry, int64_t next_attempt, const char *last_reply,
                bool count_attempt);

/*
 * Put an entry in state QUEUED, DEFERRED or SCHEDULED with next_attempt, or
 * TRIGGERED (next_attempt ignored), e.g. back from delivering when a window
 * closed; or set its held flag with QUEUE_HELD (the state is kept beneath).
 * A held entry stays held whatever state it is given. SCHEDULED and
 * TRIGGERED clear ignore_schedule (the entry waits again); QUEUED and
 * DEFERRED keep it (e.g. a job handed back untried at a reload).
 */
int queue_set_state(struct queue *q, int64_t entry, enum queue_state state, int64_t next_attempt);

/* Record that the message's delay DSN was sent. BH_ENOENT if unknown or
 * already recorded: the one delay warning of a message (SPEC §4) goes with
 * the settlement that got 0 here. */
int queue_set_warned(struct queue *q, const char *id);

/* At start (holding the server lock): every delivering entry becomes
 * queued, keeping its next_attempt. Returns the count or a negative code. */
int queue_recover_delivering(struct queue *q);

/*
 * Copy a message's text (header and body) out in one short read
 * transaction into a new buffer *out of *len bytes, which the caller frees.
 */
int queue_read_body(struct queue *q, const char *id, char **out, size_t *len);

/*
 * Copy up to len bytes of a message's text from offset off into buf; *got
 * is the number copied (0 at the end). Each call is its own short read
 * transaction, so a slow delivery can read its body in pieces without
 * holding back checkpoints. *total (if not NULL) gets the text's length.
 */
int queue_read_body_at(struct queue *q, const char *id, uint64_t off, void *buf, size_t len,
                       size_t *got, uint64_t *total);

/* "queued", "deferred", ... ; NULL for a value out of range. */
const char *queue_state_name(enum queue_state s);

/* Parse a state name; returns 0 and *s, or BH_EINVAL. */
int queue_state_parse(const char *name, enum queue_state *s);

/* For the storage/ modules only (queue_admin.c): the handle's SQLite
 * connection (NULL for postgres), its postgres side (NULL for SQLite), and
 * the check of a message before it is stored (BH_EINVAL and *why). */
struct qdb;
struct qdb *queue_db(struct queue *q);
struct queue_pg;
struct queue_pg *queue_pg_of(struct queue *q);
int queue_msg_check(const struct queue_msg *m, const char **why);

#endif
