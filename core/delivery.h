/*
 * delivery: one outbound SMTP connection of a connector (SPEC §4). It walks
 * a list of candidate destinations (bridgeheads in balance order, or MX
 * hosts in preference order), resolves each, connects to the first address
 * that is up, speaks SMTP through the pure client machine (core/smtp_out),
 * upgrades to TLS as the connector's policy says (core/tls), and delivers
 * jobs — the recipients of one message that share connector and
 * destination — one after another on the same connection, RSET between,
 * up to max_messages_per_connection. Verdicts go back to its owner, the
 * scheduler, which updates the queue.
 *
 * Ownership: the scheduler creates a delivery and hands it jobs; a job
 * belongs to the delivery from delivery_start/the next_job callback until
 * job_done hands it back. The delivery frees itself after ops->closed.
 * Loop thread only.
 */
#ifndef BH_CORE_DELIVERY_H
#define BH_CORE_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "storage/queue.h"

struct connector;
struct server_conf;
struct store;
struct dns;
struct log;
struct health;
struct conn_shared;
struct delivery;
struct metrics_counters;

/* The recipients of one message for one connector (and, on a dns route, one
 * domain). entries are leased queue entries owned by the job. */
struct delivery_job {
    struct delivery_job *next;
    char *connector;
    char *domain; /* dns route: the recipients' domain; else NULL */
    struct queue_entry *entries;
    size_t n;
    char *body; /* loaded by the delivery before sending */
    size_t body_len;
};

/* The verdict on one recipient of a job. */
struct delivery_verdict {
    int code;            /* 2xx, 4xx, 5xx; 0: no verdict (defer) */
    char status[12];     /* enhanced status when known */
    char reply[512];     /* the remote reply or our reason */
    bool counts;         /* false: no destination was up (SPEC §4: no attempt) */
    int64_t retry_at;    /* when counts is false: the earliest destination retry */
    bool relayed;        /* a "relayed" DSN is due (NOTIFY=SUCCESS, no DSN there) */
};

/* Where the connection went, for the log line. */
struct delivery_info {
    const char *relay; /* "10.1.1.5:25" or "" */
    const char *tls;   /* "TLSv1.3" or "none" */
    const char *cipher;
    const char *verify;
    double seconds;    /* since the job was handed over */
};

struct delivery_ops {
    /* More work for this connection (same connector, same destination
     * list); NULL: none, so QUIT. */
    struct delivery_job *(*next_job)(void *arg, struct delivery *d);
    /* The job's verdicts, one per entry, in order. The job goes back. */
    void (*job_done)(void *arg, struct delivery *d, struct delivery_job *job,
                     const struct delivery_verdict *v, const struct delivery_info *info);
    /* The delivery is over and about to be freed. */
    void (*closed)(void *arg, struct delivery *d);
};

struct delivery_dest {
    char *host;
    uint16_t port;
};

struct delivery_env {
    uv_loop_t *loop;
    struct store *store;  /* the writer: settlements */
    struct store *reader; /* a read-only handle on its own thread: bodies */
    struct dns *dns;
    struct log *log;
    struct health *health;
    struct conn_shared *shared;
    struct metrics_counters *counters;
};

/*
 * Start delivering job through the first destination of dests[0..n) that is
 * up (dests are copied). conf is referenced while the delivery lives.
 */
struct delivery *delivery_start(const struct delivery_env *env, struct server_conf *conf,
                                const struct connector *k, const struct delivery_dest *dests,
                                size_t n, struct delivery_job *job,
                                const struct delivery_ops *ops, void *arg);
/* Close now (shutdown): the job in hand gets code 0 verdicts. */
void delivery_abort(struct delivery *d);
/* The connector name and domain key of the delivery (for the scheduler). */
const char *delivery_key(const struct delivery *d);
/* The config and connector the delivery was started with: after a reload
 * they may differ from the scheduler's. */
const struct server_conf *delivery_conf(const struct delivery *d);
const struct connector *delivery_connector(const struct delivery *d);

void delivery_job_free(struct delivery_job *job);

#endif
