#include "core/server.h"

#include <stdlib.h>
#include <string.h>

#include "connectors/config.h"
#include "connectors/util.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/session.h"
#include "core/store.h"
#include "storage/queue.h"
#include "core/tls.h"
#include "routing/router.h"

#define PERIP_BUCKETS 4096
#define LISTEN_BACKLOG 4096

struct listener {
    uv_tcp_t tcp;
    struct server *srv;
    struct session_listener kind;
    char *address;
};

/* Connections per client address (IPv4-mapped IPv6 counts as IPv4). */
struct perip {
    struct perip *next;
    uint8_t addr[16];
    unsigned count;
};

struct server {
    uv_loop_t *loop;
    struct server_env env;
    struct server_conf *conf;
    struct listener *listeners;
    size_t nlisteners, open_handles;
    struct session_node sessions; /* list head */
    size_t nsessions;
    struct perip *perip[PERIP_BUCKETS];
    uv_timer_t grace;
    uv_timer_t space;     /* refreshes env.free_space */
    uint64_t space_value; /* written by the storage thread, read in its done */
    unsigned closing_timers;
    bool space_busy;
    void (*done)(void *);
    void *done_arg;
    bool stopping;
};

struct server_conf *
server_conf_new(struct config *c, char *err, size_t errlen)
{
    struct server_conf *sc = xcalloc(1, sizeof *sc);
    sc->refs = 1;
    sc->config = c;
    if (c->has_tls) {
        sc->tls = tls_server_ctx_new(c->tls_certificate, c->tls_key, c->tls_min_version, err,
                                     errlen);
        if (sc->tls == NULL) {
            config_unref(c);
            free(sc);
            return NULL;
        }
    }
    sc->router = router_new(c);
    return sc;
}

struct server_conf *
server_conf_ref(struct server_conf *sc)
{
    sc->refs++;
    return sc;
}

void
server_conf_unref(struct server_conf *sc)
{
    if (sc == NULL || --sc->refs > 0)
        return;
    router_free(sc->router);
    tls_server_ctx_unref(sc->tls);
    config_unref(sc->config);
    free(sc);
}

/* The 16-byte key of a client address; IPv4 as ::ffff:a.b.c.d. */
static void
addr_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
    memset(key, 0, 16);
    if (ss->ss_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    }
}

static struct perip **
perip_find(struct server *s, const uint8_t key[16])
{
    unsigned h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    struct perip **pp = &s->perip[h % PERIP_BUCKETS];
    while (*pp && memcmp((*pp)->addr, key, 16) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* Count one more connection from ss; returns the count including it. */
static unsigned
perip_add(struct server *s, const struct sockaddr_storage *ss)
{
    uint8_t key[16];
    addr_key(ss, key);
    struct perip **pp = perip_find(s, key);
    if (*pp == NULL) {
        *pp = xcalloc(1, sizeof **pp);
        memcpy((*pp)->addr, key, 16);
    }
    return ++(*pp)->count;
}

static void
perip_remove(struct server *s, const struct sockaddr_storage *ss)
{
    uint8_t key[16];
    addr_key(ss, key);
    struct perip **pp = perip_find(s, key);
    if (*pp && --(*pp)->count == 0) {
        struct perip *dead = *pp;
        *pp = dead->next;
        free(dead);
    }
}

static void
list_insert(struct server *s, struct session *sess)
{
    struct session_node *n = session_node(sess);
    n->session = sess;
    n->next = s->sessions.next;
    n->prev = &s->sessions;
    s->sessions.next->prev = n;
    s->sessions.next = n;
    s->nsessions++;
}

static void
on_connection(uv_stream_t *ls, int status)
{
    struct listener *l = (struct listener *)ls;
    struct server *s = l->srv;
    if (status < 0 || s->stopping)
        return;
    struct session *sess = session_new(s, &s->env, s->conf, &l->kind);
    list_insert(s, sess);
    struct sockaddr_storage peer;
    int plen = sizeof peer;
    memset(&peer, 0, sizeof peer);
    if (uv_accept(ls, (uv_stream_t *)session_conn(sess)) < 0 ||
        uv_tcp_getpeername((uv_tcp_t *)session_conn(sess), (struct sockaddr *)&peer, &plen) < 0) {
        session_start(sess, &peer, NULL);
        session_close(sess);
        return;
    }
    uv_tcp_nodelay((uv_tcp_t *)session_conn(sess), 1);
    const struct config *c = s->conf->config;
    const char *reject = NULL;
    unsigned n = perip_add(s, &peer);
    if (s->nsessions > c->max_connections)
        reject = "421 4.7.0 Too many connections, try again later\r\n";
    else if (n > c->max_connections_per_ip)
        reject = "421 4.7.0 Too many connections from your address, try again later\r\n";
    session_start(sess, &peer, reject);
}

static void
check_done(struct server *s)
{
    if (s->nsessions == 0 && s->open_handles == 0 && s->done) {
        void (*done)(void *) = s->done;
        s->done = NULL;
        uv_timer_stop(&s->grace);
        done(s->done_arg);
    }
}

void
server_session_closed(struct server *s, struct session *sess)
{
    struct session_node *n = session_node(sess);
    n->prev->next = n->next;
    n->next->prev = n->prev;
    s->nsessions--;
    const struct sockaddr_storage *peer = session_peer(sess);
    if (peer->ss_family != 0)
        perip_remove(s, peer);
    if (s->stopping)
        check_done(s);
}

#define SPACE_REFRESH_MS 5000

static int
space_run(struct queue *q, void *arg)
{
    struct server *s = arg;
    return queue_free_space(q, &s->space_value);
}

static void
space_done(void *arg, int status)
{
    struct server *s = arg;
    s->space_busy = false;
    s->env.free_space = status == 0 ? s->space_value : UINT64_MAX;
}

static void
on_space_timer(uv_timer_t *t)
{
    struct server *s = t->data;
    if (s->space_busy || s->env.store == NULL)
        return;
    s->space_busy = true;
    store_call(s->env.store, space_run, space_done, s);
}

struct server *
server_new(uv_loop_t *loop, struct server_conf *conf, struct store *store, struct log *log,
           const char *spool_dir)
{
    struct server *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->conf = conf;
    s->env.loop = loop;
    s->env.store = store;
    s->env.log = log;
    s->env.shared = xmalloc(sizeof *s->env.shared);
    s->env.spool_dir = xstrdup(spool_dir);
    s->sessions.next = s->sessions.prev = &s->sessions;
    s->env.free_space = UINT64_MAX;
    uv_timer_init(loop, &s->grace);
    uv_timer_init(loop, &s->space);
    s->space.data = s;
    uv_timer_start(&s->space, on_space_timer, 0, SPACE_REFRESH_MS);
    return s;
}

static int
listen_one(struct server *s, struct listener *l, const struct config_listen *cl)
{
    l->srv = s;
    l->kind.tls = cl->tls;
    l->kind.odmr = cl->odmr;
    int rc = uv_tcp_init(s->loop, &l->tcp);
    if (rc < 0)
        return rc;
    l->address = xstrdup(cl->address);
    s->nlisteners++;
    s->open_handles++;
    unsigned flags = cl->addr.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&cl->addr, flags);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
    return rc;
}

int
server_listen(struct server *s, char *err, size_t errlen)
{
    const struct config *c = s->conf->config;
    s->listeners = xcalloc(c->nlistens, sizeof *s->listeners);
    for (size_t i = 0; i < c->nlistens; i++) {
        int rc = listen_one(s, &s->listeners[i], &c->listens[i]);
        if (rc < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", c->listens[i].address,
                     uv_strerror(rc));
            return rc;
        }
        log_info(s->env.log, "event=listening address=%s tls=%s odmr=%s",
                 c->listens[i].address,
                 c->listens[i].tls == CONFIG_LISTEN_IMPLICIT   ? "implicit"
                 : c->listens[i].tls == CONFIG_LISTEN_STARTTLS ? "starttls"
                                                               : "none",
                 c->listens[i].odmr ? "yes" : "no");
    }
    return 0;
}

void
server_set_conf(struct server *s, struct server_conf *conf)
{
    server_conf_unref(s->conf);
    s->conf = conf;
}

struct server_conf *
server_conf(struct server *s)
{
    return s->conf;
}

struct server_env *
server_env(struct server *s)
{
    return &s->env;
}

size_t
server_session_count(const struct server *s)
{
    return s->nsessions;
}

static void
on_listener_closed(uv_handle_t *h)
{
    struct listener *l = (struct listener *)h;
    l->srv->open_handles--;
    check_done(l->srv);
}

static void
on_grace_over(uv_timer_t *t)
{
    struct server *s = t->data;
    struct session_node *n = s->sessions.next;
    while (n != &s->sessions) {
        struct session_node *next = n->next;
        session_close(n->session);
        n = next;
    }
}

void
server_shutdown(struct server *s, uint64_t grace_ms, void (*done)(void *), void *arg)
{
    s->stopping = true;
    s->env.shutting_down = true;
    uv_timer_stop(&s->space);
    s->done = done;
    s->done_arg = arg;
    for (size_t i = 0; i < s->nlisteners; i++)
        if (!uv_is_closing((uv_handle_t *)&s->listeners[i].tcp))
            uv_close((uv_handle_t *)&s->listeners[i].tcp, on_listener_closed);
    for (struct session_node *n = s->sessions.next; n != &s->sessions; n = n->next)
        session_shutdown(n->session);
    s->grace.data = s;
    uv_timer_start(&s->grace, on_grace_over, grace_ms, 0);
    check_done(s);
}

static void
on_grace_closed(uv_handle_t *h)
{
    struct server *s = h->data;
    if (--s->closing_timers > 0)
        return; /* both timers live inside s: free it after the last one */
    for (size_t i = 0; i < s->nlisteners; i++)
        free(s->listeners[i].address);
    free(s->listeners);
    for (int b = 0; b < PERIP_BUCKETS; b++)
        while (s->perip[b]) {
            struct perip *p = s->perip[b];
            s->perip[b] = p->next;
            free(p);
        }
    server_conf_unref(s->conf);
    metrics_counters_fini(&s->env.counters);
    free(s->env.shared);
    free(s->env.spool_dir);
    free(s);
}

void
server_free(struct server *s)
{
    if (s == NULL)
        return;
    s->grace.data = s;
    s->closing_timers = 2;
    uv_close((uv_handle_t *)&s->space, on_grace_closed);
    uv_close((uv_handle_t *)&s->grace, on_grace_closed);
}
