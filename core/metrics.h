/*
 * metrics: Prometheus text at /metrics and a liveness answer at /healthz
 * over plain HTTP/1.0-style request/response on the libuv loop (SPEC §2
 * metrics.listen). Counters are plain fields bumped by their owners on the
 * loop thread; queue sizes, and the age of each connector's oldest queued
 * message, are read at scrape time on the storage thread.
 *
 * Ownership: the program owns struct metrics_counters (in server_env) and
 * the struct metrics; metrics_close stops listening and frees it once its
 * handles are closed. Loop thread only.
 */
#ifndef BH_CORE_METRICS_H
#define BH_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct store;
struct server;
struct health;

struct metrics_connector {
    struct metrics_connector *next;
    char name[72];
    uint64_t sent, deferred, bounced, expired;
};

struct metrics_counters {
    uint64_t received;       /* messages accepted (250 after DATA) */
    uint64_t dsn_created;    /* DSNs queued */
    uint64_t dsn_dropped;    /* DSNs that could not be routed */
    uint64_t tls_in_ok, tls_in_failed, tls_out_ok, tls_out_failed;
    struct metrics_connector *connectors;
};

/* Count one delivery verdict ("sent", "deferred", "bounced", "expired"). */
void metrics_count_delivery(struct metrics_counters *c, const char *connector,
                            const char *status);
void metrics_counters_fini(struct metrics_counters *c);

struct metrics;

/* health may be NULL (no destination gauge). */
struct metrics *metrics_new(uv_loop_t *loop, struct store *store, struct server *srv,
                            struct metrics_counters *counters, const struct health *health);
/* "127.0.0.1:9025" or "[::1]:9025". 0, or a negative error with err set. */
int metrics_listen(struct metrics *m, const char *address, char *err, size_t errlen);
void metrics_close(struct metrics *m); /* NULL is fine */

#endif
