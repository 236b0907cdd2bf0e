/* Placeholder until the SMTP machine lands: every session is refused. */
#include "core/session.h"

#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "core/conn.h"
#include "core/server.h"

struct session {
    struct conn conn;
    struct session_node node;
    struct server *srv;
    struct sockaddr_storage peer;
};

static size_t
on_read(struct conn *c, const char *d, size_t n)
{
    (void)c;
    (void)d;
    return n;
}

static void
on_error(struct conn *c, int status)
{
    (void)status;
    conn_close(c, false);
}

static void
on_tls(struct conn *c, int status)
{
    (void)c;
    (void)status;
}

static void
on_closed(struct conn *c)
{
    struct session *s = c->owner;
    server_session_closed(s->srv, s);
    free(s);
}

static const struct conn_ops ops = {on_read, on_error, on_tls, on_closed};

struct session *
session_new(struct server *srv, struct server_env *env, struct server_conf *conf,
            const struct session_listener *l)
{
    (void)conf;
    (void)l;
    struct session *s = xcalloc(1, sizeof *s);
    s->srv = srv;
    conn_init(env->loop, &s->conn, env->shared, &ops, s);
    return s;
}

struct conn *
session_conn(struct session *s)
{
    return &s->conn;
}

struct session_node *
session_node(struct session *s)
{
    return &s->node;
}

void
session_start(struct session *s, const struct sockaddr_storage *peer, const char *reject)
{
    (void)reject;
    s->peer = *peer;
    const char *msg = "421 4.3.2 not ready\r\n";
    conn_write(&s->conn, msg, strlen(msg));
    conn_close(&s->conn, true);
}

void
session_shutdown(struct session *s)
{
    (void)s;
}

void
session_close(struct session *s)
{
    conn_close(&s->conn, false);
}

const struct sockaddr_storage *
session_peer(const struct session *s)
{
    return &s->peer;
}
