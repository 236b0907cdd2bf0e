/*
 * sched: the delivery scheduler (SPEC §4). It leases due recipients from
 * the queue (on the storage writer's thread), groups them into jobs — the
 * recipients of one message that share a connector (and, on a dns route, a
 * domain) — holds them back while their connector's schedule is closed
 * (state scheduled, next_attempt = the next opening), and hands them to
 * deliveries (core/delivery): a new connection per job up to the
 * connector's limits, or an idle one that asks for more. It settles every
 * verdict in the queue (done, deferred with backoff and jitter, bounced
 * with an RFC 3464 DSN, expired after queue.lifetime, delay warnings), and
 * sleeps on a timer until the next entry is due: no polling.
 *
 * Ownership: sched_new takes a reference to the server_conf; sched_set_conf
 * swaps it (a reload). sched_stop abandons the deliveries in flight (their
 * entries stay queued: delivering reverts to queued at the next start) and
 * frees the scheduler once every delivery has closed. Loop thread only.
 */
#ifndef BH_CORE_SCHED_H
#define BH_CORE_SCHED_H

#include <uv.h>

struct sched;
struct server_conf;
struct store;
struct dns;
struct log;
struct conn_shared;
struct metrics_counters;

/* store: the storage writer; reader: a store over a read-only handle, whose
 * thread reads message bodies for delivery so that big reads never hold up a
 * group commit. */
struct sched *sched_new(uv_loop_t *loop, struct server_conf *conf, struct store *store,
                        struct store *reader, struct dns *dns, struct log *log,
                        struct conn_shared *shared, struct metrics_counters *counters);
void sched_set_conf(struct sched *s, struct server_conf *conf);
/* New mail or a flush: look for due entries now. */
void sched_kick(struct sched *s);
/* The destinations' health, for metrics (owned by the scheduler). */
struct health *sched_health(struct sched *s);
/* Stop leasing and abandon the deliveries in flight; done(arg) runs once
 * every delivery has closed. Queue work already handed to the storage writer
 * still completes: close the store after done, then sched_free. */
void sched_stop(struct sched *s, void (*done)(void *), void *arg);
void sched_free(struct sched *s);

#endif
