/*
 * server: the SMTP listeners of the config, the set of sessions, and the
 * connection limits (SPEC §2 server.*, §9 "Total or per-IP connection
 * limit", SIGTERM behaviour). Sessions themselves are core/session.
 *
 * What a session runs on is a struct server_conf: the config, its router and
 * the inbound TLS context, reference-counted together, so that a reload can
 * swap the server's current one while sessions already running finish on
 * the one they started with.
 *
 * Ownership: the server owns its listeners and sessions; it holds one
 * reference to the current server_conf. server_free only after
 * server_shutdown's callback has run. Loop thread only.
 */
#ifndef BH_CORE_SERVER_H
#define BH_CORE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/metrics.h"

struct config;
struct router;
struct tls_server_ctx;
struct store;
struct log;
struct session;
struct conn_shared;

struct server_conf {
    unsigned refs;
    struct config *config;
    struct router *router;
    struct tls_server_ctx *tls; /* NULL without server.tls */
};

/* Build a conf from a loaded config (taking over the caller's reference).
 * NULL with a message in err when the certificate cannot be loaded. */
struct server_conf *server_conf_new(struct config *c, char *err, size_t errlen);
struct server_conf *server_conf_ref(struct server_conf *sc);
void server_conf_unref(struct server_conf *sc);

/* What every session shares. */
struct server_env {
    uv_loop_t *loop;
    struct store *store;
    struct store *reader; /* read-only handle for message bodies (ATRN); NULL: use store */
    struct log *log;
    struct conn_shared *shared;
    char *spool_dir;
    bool shutting_down;
    uint64_t free_space; /* bytes the queue can still take (refreshed by the
                            server from the storage thread); UINT64_MAX: unknown */
    void (*queued)(void *arg); /* new mail is in the queue (wakes the scheduler) */
    void *queued_arg;
    struct metrics_counters counters; /* for /metrics */
};

struct server;

struct server *server_new(uv_loop_t *loop, struct server_conf *conf, struct store *store,
                          struct log *log, const char *spool_dir);
/* Bind and listen on every listener. 0, or a libuv error with err set. */
int server_listen(struct server *s, char *err, size_t errlen);
/* Swap the conf that new sessions get (a reload); takes the reference. */
void server_set_conf(struct server *s, struct server_conf *conf);
struct server_conf *server_conf(struct server *s);
struct server_env *server_env(struct server *s);

/*
 * Stop listening, answer further commands with 421 4.3.2, give sessions
 * grace_ms, then close the rest; done(arg) runs once every session and
 * listener is closed.
 */
void server_shutdown(struct server *s, uint64_t grace_ms, void (*done)(void *), void *arg);
void server_free(struct server *s);

/* Called by a session from its close callback, before it frees itself. */
void server_session_closed(struct server *s, struct session *sess);

/* Sessions open now (for metrics). */
size_t server_session_count(const struct server *s);

#endif
