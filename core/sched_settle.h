/*
 * sched_settle: turns delivery verdicts into queue updates (SPEC §4
 * "Outcomes"): 2xx done; 4xx, a lost connection or a timeout deferred with
 * backoff (retry_initial doubling to retry_max, up to 10 % jitter); 5xx
 * bounced at once; past queue.lifetime bounced with 4.4.7; NOTIFY
 * honoured; one RFC 3464 DSN per job for its bounced recipients and one
 * delay warning per message, both from <> to the sender and routed as
 * system messages; nothing for a null sender. One log line per recipient
 * and attempt. Every update of a job, and its DSNs, are one transaction on
 * the storage writer.
 *
 * Jobs handed in are owned by the settler from then on. Loop thread only.
 */
#ifndef BH_CORE_SCHED_SETTLE_H
#define BH_CORE_SCHED_SETTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dsn.h"
#include "storage/queue.h"

struct sched_settle;
struct store;
struct log;
struct server_conf;
struct connector;
struct delivery_job;
struct delivery_verdict;
struct delivery_info;
struct metrics_counters;

/* Called when a settlement is stored: the earliest next_attempt it set
 * (QUEUE_NEVER: none). */
typedef void sched_settle_cb(void *arg, int64_t earliest);

struct sched_settle *sched_settle_new(struct store *store, struct log *log,
                                      struct server_conf *conf,
                                      struct metrics_counters *counters);
void sched_settle_set_conf(struct sched_settle *ss, struct server_conf *conf);
void sched_settle_free(struct sched_settle *ss);
/* Settlements still being stored. */
unsigned sched_settle_inflight(const struct sched_settle *ss);
/*
 * A settlement the storage refused with a fault that may clear (disk full,
 * read-only file, I/O error) leaves its entries delivering in the queue:
 * it is kept whole (updates and DSNs), fn(arg) is called, and
 * sched_settle_retry() submits every kept settlement again (their
 * callbacks are not called again). Returns how many were resubmitted.
 * Those still kept at sched_settle_free() are dropped: their entries stay
 * delivering and are recovered at the next start.
 */
void sched_settle_on_failed(struct sched_settle *ss, void (*fn)(void *), void *arg);
unsigned sched_settle_retry(struct sched_settle *ss);

void sched_settle_job(struct sched_settle *ss, struct delivery_job *job,
                      const struct delivery_verdict *v, const struct delivery_info *info,
                      sched_settle_cb *cb, void *arg);
/* The whole job: deferred until next (0: with backoff), bounced with a
 * status, or waiting for its schedule. reason may be NULL: then the job
 * goes back to the queue as it was, due at next, no attempt counted. cb as
 * for sched_settle_job (may be NULL). */
void sched_settle_defer_all(struct sched_settle *ss, struct delivery_job *job, int64_t next,
                            const char *reason, sched_settle_cb *cb, void *arg);
void sched_settle_bounce_all(struct sched_settle *ss, struct delivery_job *job,
                             const char *status, const char *reason, sched_settle_cb *cb,
                             void *arg);
void sched_settle_scheduled(struct sched_settle *ss, struct delivery_job *job, int64_t next);
/* The whole job back to state triggered, untried (an ATRN session that
 * ended before it); cb as for sched_settle_job (may be NULL). */
void sched_settle_triggered(struct sched_settle *ss, struct delivery_job *job, sched_settle_cb *cb,
                            void *arg);
/* on: temporary failures settled from now on wait in state triggered for
 * the next trigger (SPEC §4), keeping their reply and attempt count,
 * instead of being deferred with backoff. For ATRN's turnaround, whose
 * recipients must not go out through the connector's own route. */
void sched_settle_retrigger(struct sched_settle *ss, bool on);

/* A DSN ready for queue_commit: msg points into the rest. */
/* msg.rcpts points at rcpt: after copying one, point it at the copy's. */
struct sched_settle_dsn {
    struct queue_msg msg;
    struct queue_rcpt rcpt;
    struct queue_spool *spool;
    char *to, *connector;
};

/*
 * Build the DSN that rep and d[0..n) describe, route it to rep.sender as a
 * system message from <>, and fill *out (rep.boundary_seed is set here to the
 * DSN's new queue ID). A DSN that cannot be routed is logged with
 * status=dropped and *dropped set; its copy then goes to server.postmaster
 * when that is set and routes (true, *out filled), else false comes back,
 * out untouched.
 */
bool sched_settle_dsn_make(struct server_conf *conf, struct log *log, const char *spool_dir,
                           struct dsn_report rep, const struct dsn_rcpt *d, size_t n,
                           struct sched_settle_dsn *out, bool *dropped);
void sched_settle_dsn_fini(struct sched_settle_dsn *o);

/* The state a newly routed recipient starts in: triggered, scheduled until
 * the next window, or queued now. */
void sched_settle_initial_state(const struct connector *k, int64_t now, uint64_t size,
                                struct queue_rcpt *r);

#endif
