/*
 * session: one inbound SMTP session — the glue between a struct conn
 * (socket, TLS), the pure protocol machine (core/smtp_in), the relay check
 * and the router, the body spool and the storage writer. It reads, feeds
 * the machine, carries out the machine's actions, and writes its replies.
 *
 * Ownership: the server creates a session for each accepted connection; the
 * session frees itself in its conn's close callback, after telling the
 * server (server_session_closed). It holds a reference to the server_conf it
 * started with. Loop thread only.
 */
#ifndef BH_CORE_SESSION_H
#define BH_CORE_SESSION_H

#include <stdbool.h>
#include <sys/socket.h>

#include "connectors/config.h"

struct server;
struct server_env;
struct server_conf;
struct session;
struct conn;

/* The server's list of sessions runs through this node in each session. */
struct session_node {
    struct session_node *prev, *next;
    struct session *session;
};

struct session_listener {
    enum config_listen_tls tls;
    bool odmr;
};

struct session *session_new(struct server *srv, struct server_env *env, struct server_conf *conf,
                            const struct session_listener *l);
struct conn *session_conn(struct session *s);
struct session_node *session_node(struct session *s);
/* Start after uv_accept. reject: NULL, or a reply ("421 4.7.0 ...") to send
 * before closing (connection limits). */
void session_start(struct session *s, const struct sockaddr_storage *peer, const char *reject);
/* SIGTERM: further commands get 421 4.3.2 and the session closes. */
void session_shutdown(struct session *s);
/* Close now (the grace period is over, or the accept failed). */
void session_close(struct session *s);
const struct sockaddr_storage *session_peer(const struct session *s);

#endif
