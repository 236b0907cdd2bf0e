#include "core/metrics.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/util.h"
#include "core/server.h"
#include "core/store.h"
#include "routing/health.h"
#include "storage/queue.h"
#include "storage/queue_admin.h"

#define REQUEST_MAX 4096

struct metrics {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    struct store *store;
    struct server *srv;
    struct metrics_counters *c;
    const struct health *health;
    unsigned open; /* the listener and client connections */
    bool closing;
};

struct mclient {
    uv_tcp_t tcp;
    struct metrics *m;
    char req[REQUEST_MAX];
    size_t len;
    bool answered;
    struct util_buf out; /* the queue part, filled on the storage thread */
};

void
metrics_count_delivery(struct metrics_counters *c, const char *connector, const char *status)
{
    struct metrics_connector *k = c->connectors;
    while (k && strcmp(k->name, connector) != 0)
        k = k->next;
    if (k == NULL) {
        k = xcalloc(1, sizeof *k);
        snprintf(k->name, sizeof k->name, "%s", connector);
        k->next = c->connectors;
        c->connectors = k;
    }
    if (strcmp(status, "sent") == 0)
        k->sent++;
    else if (strcmp(status, "deferred") == 0)
        k->deferred++;
    else if (strcmp(status, "expired") == 0)
        k->expired++;
    else
        k->bounced++;
}

void
metrics_counters_fini(struct metrics_counters *c)
{
    while (c->connectors) {
        struct metrics_connector *k = c->connectors;
        c->connectors = k->next;
        free(k);
    }
}

static void
maybe_free(struct metrics *m)
{
    if (m->closing && m->open == 0)
        free(m);
}

static void
on_client_closed(uv_handle_t *h)
{
    struct mclient *cl = h->data;
    struct metrics *m = cl->m;
    util_buf_fini(&cl->out);
    free(cl);
    m->open--;
    maybe_free(m);
}

static void
on_written(uv_write_t *w, int status)
{
    struct mclient *cl = w->data;
    (void)status;
    free(w);
    uv_close((uv_handle_t *)&cl->tcp, on_client_closed);
}

static void
respond(struct mclient *cl, int code, const char *type, const char *body, size_t len)
{
    const char *reason = code == 200 ? "OK" : code == 404 ? "Not Found" : "Bad Request";
    struct util_buf b = {0};
    util_buf_printf(&b, "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n", code, reason, type, len);
    util_buf_append(&b, body, len);
    uv_write_t *w = xmalloc(sizeof *w + b.len);
    memcpy((char *)(w + 1), b.p, b.len);
    uv_buf_t ub = uv_buf_init((char *)(w + 1), (unsigned)b.len);
    w->data = cl;
    util_buf_fini(&b);
    if (uv_write(w, (uv_stream_t *)&cl->tcp, &ub, 1, on_written) < 0) {
        free(w);
        uv_close((uv_handle_t *)&cl->tcp, on_client_closed);
    }
}

/* ---- /metrics ------------------------------------------------------------ */

/* The queue part of a scrape, built on the storage thread from the rows of
 * queue_admin_stats() (sorted by connector, then state). Each metric family
 * goes in one group of its own, as the text format asks. */
struct qscrape {
    int64_t now;
    struct util_buf recipients, buckets, ages;
    char *connector; /* whose oldest message is being looked for, NULL: none yet */
    int64_t oldest;  /* its received time so far */
};

/* A label value: backslash, double quote and newline escaped. */
static void
label(struct util_buf *b, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            util_buf_append(b, "\\", 1);
        if (*v == '\n')
            util_buf_puts(b, "\\n");
        else
            util_buf_append(b, v, 1);
    }
}

/* Emit the connector finished so far: now - the received time of its
 * oldest message that still has an entry in the queue, in any state. */
static void
age_line(struct qscrape *qs)
{
    if (qs->connector == NULL)
        return;
    int64_t age = qs->now - qs->oldest; /* < 0 only if the clock went back */
    util_buf_puts(&qs->ages, "bridgehead_queue_oldest_age_seconds{connector=\"");
    label(&qs->ages, qs->connector);
    util_buf_printf(&qs->ages, "\"} %lld\n", (long long)(age > 0 ? age : 0));
    free(qs->connector);
    qs->connector = NULL;
}

static int
stat_line(const struct queue_admin_stat *st, void *arg)
{
    struct qscrape *qs = arg;
    const char *state = queue_state_name(st->state);
    uint64_t total = 0;
    for (int i = 0; i < QUEUE_ADMIN_AGE_BUCKETS; i++)
        total += st->count[i];
    util_buf_puts(&qs->recipients, "bridgehead_queue_recipients{connector=\"");
    label(&qs->recipients, st->connector);
    util_buf_printf(&qs->recipients, "\",state=\"%s\"} %llu\n", state, (unsigned long long)total);
    for (int i = QUEUE_ADMIN_AGE_BUCKETS - 1; i >= 0; i--)
        if (st->count[i]) {
            util_buf_puts(&qs->buckets, "bridgehead_queue_oldest_bucket{connector=\"");
            label(&qs->buckets, st->connector);
            util_buf_printf(&qs->buckets, "\",state=\"%s\",bucket=\"%s\"} 1\n", state,
                            queue_admin_age_bucket_name(i));
            break;
        }
    if (qs->connector != NULL && strcmp(qs->connector, st->connector) != 0)
        age_line(qs);
    if (qs->connector == NULL) {
        qs->connector = xstrdup(st->connector);
        qs->oldest = st->oldest_received;
    } else if (st->oldest_received < qs->oldest) {
        qs->oldest = st->oldest_received;
    }
    return 0;
}

static void
family(struct util_buf *out, const char *name, struct util_buf *lines)
{
    util_buf_printf(out, "# TYPE %s gauge\n", name);
    util_buf_append(out, lines->p ? lines->p : "", lines->len);
    util_buf_fini(lines);
}

static int
stats_run(struct queue *q, void *arg)
{
    struct mclient *cl = arg;
    struct qscrape qs = {.now = (int64_t)time(NULL)};
    int rc = queue_admin_stats(q, qs.now, stat_line, &qs);
    age_line(&qs);
    family(&cl->out, "bridgehead_queue_recipients", &qs.recipients);
    family(&cl->out, "bridgehead_queue_oldest_bucket", &qs.buckets);
    family(&cl->out, "bridgehead_queue_oldest_age_seconds", &qs.ages);
    return rc;
}

static void
counters(struct util_buf *b, struct metrics *m)
{
    const struct metrics_counters *c = m->c;
    util_buf_printf(b, "# TYPE bridgehead_messages_received_total counter\n"
                       "bridgehead_messages_received_total %llu\n"
                       "# TYPE bridgehead_dsn_total counter\n"
                       "bridgehead_dsn_total{result=\"queued\"} %llu\n"
                       "bridgehead_dsn_total{result=\"dropped\"} %llu\n"
                       "# TYPE bridgehead_smtp_sessions gauge\nbridgehead_smtp_sessions %zu\n"
                       "# TYPE bridgehead_tls_handshakes_total counter\n",
                    (unsigned long long)c->received, (unsigned long long)c->dsn_created,
                    (unsigned long long)c->dsn_dropped, server_session_count(m->srv));
    util_buf_printf(b, "bridgehead_tls_handshakes_total{side=\"in\",result=\"ok\"} %llu\n"
                       "bridgehead_tls_handshakes_total{side=\"in\",result=\"failed\"} %llu\n"
                       "bridgehead_tls_handshakes_total{side=\"out\",result=\"ok\"} %llu\n"
                       "bridgehead_tls_handshakes_total{side=\"out\",result=\"failed\"} %llu\n"
                       "# TYPE bridgehead_deliveries_total counter\n",
                    (unsigned long long)c->tls_in_ok, (unsigned long long)c->tls_in_failed,
                    (unsigned long long)c->tls_out_ok, (unsigned long long)c->tls_out_failed);
    for (const struct metrics_connector *k = c->connectors; k; k = k->next) {
        const char *names[] = {"sent", "deferred", "bounced", "expired"};
        uint64_t v[] = {k->sent, k->deferred, k->bounced, k->expired};
        for (int i = 0; i < 4; i++)
            util_buf_printf(b, "bridgehead_deliveries_total{connector=\"%s\",status=\"%s\"} %llu\n",
                            k->name, names[i], (unsigned long long)v[i]);
    }
}

static void
fsync_histogram(struct util_buf *b, struct metrics *m)
{
    struct store_stats st;
    store_get_stats(server_env(m->srv)->store, &st);
    util_buf_puts(b, "# TYPE bridgehead_commit_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < STORE_LATENCY_BUCKETS; i++) {
        cum += st.latency[i];
        if (i == STORE_LATENCY_BUCKETS - 1)
            util_buf_printf(b, "bridgehead_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
                            (unsigned long long)cum);
        else
            util_buf_printf(b, "bridgehead_commit_seconds_bucket{le=\"%g\"} %llu\n",
                            store_latency_bounds[i], (unsigned long long)cum);
    }
    util_buf_printf(b, "bridgehead_commit_seconds_sum %.6f\nbridgehead_commit_seconds_count %llu\n"
                       "# TYPE bridgehead_committed_messages_total counter\n"
                       "bridgehead_committed_messages_total %llu\n",
                    st.latency_sum, (unsigned long long)st.commits,
                    (unsigned long long)st.messages);
}

static void
destination_line(const char *key, bool up, void *arg)
{
    util_buf_printf(arg, "bridgehead_destination_up{destination=\"%s\"} %d\n", key, up ? 1 : 0);
}

static void
stats_done(void *arg, int status)
{
    struct mclient *cl = arg;
    struct util_buf b = {0};
    counters(&b, cl->m);
    if (cl->m->health) {
        util_buf_puts(&b, "# TYPE bridgehead_destination_up gauge\n");
        health_foreach(cl->m->health, (int64_t)time(NULL), destination_line, &b);
    }
    fsync_histogram(&b, cl->m);
    if (status == 0)
        util_buf_append(&b, cl->out.p ? cl->out.p : "", cl->out.len);
    respond(cl, 200, "text/plain; version=0.0.4", b.p, b.len);
    util_buf_fini(&b);
}

/* ---- requests ----------------------------------------------------------------- */

static void
on_request(struct mclient *cl)
{
    cl->answered = true;
    uv_read_stop((uv_stream_t *)&cl->tcp);
    if (strncmp(cl->req, "GET /healthz ", 13) == 0) {
        respond(cl, 200, "text/plain", "ok\n", 3);
    } else if (strncmp(cl->req, "GET /metrics ", 13) == 0) {
        /* The queue scan reads on the reader thread when there is one, so
         * that a scrape of a large queue does not delay group commits. */
        const struct server_env *env = server_env(cl->m->srv);
        store_call(env->reader != NULL ? env->reader : env->store, stats_run, stats_done, cl);
    } else if (strncmp(cl->req, "GET ", 4) == 0) {
        respond(cl, 404, "text/plain", "not found\n", 10);
    } else {
        respond(cl, 400, "text/plain", "bad request\n", 12);
    }
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct mclient *cl = h->data;
    (void)suggested;
    buf->base = cl->req + cl->len;
    buf->len = REQUEST_MAX - 1 - cl->len;
}

/* Has the request head ended (a blank line)? NUL bytes are allowed: the
 * request is hostile input, not a C string. */
static bool
head_complete(const char *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] == '\n' && p[i + 1] == '\n')
            return true;
        if (i + 3 < len && memcmp(p + i, "\r\n\r\n", 4) == 0)
            return true;
    }
    return false;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct mclient *cl = s->data;
    (void)buf;
    if (cl->answered)
        return;
    if (n < 0) {
        uv_close((uv_handle_t *)&cl->tcp, on_client_closed);
        return;
    }
    cl->len += (size_t)n;
    cl->req[cl->len] = '\0';
    if (head_complete(cl->req, cl->len) || cl->len >= REQUEST_MAX - 1)
        on_request(cl);
}

static void
on_connection(uv_stream_t *ls, int status)
{
    struct metrics *m = ls->data;
    if (status < 0 || m->closing)
        return;
    struct mclient *cl = xcalloc(1, sizeof *cl);
    cl->m = m;
    uv_tcp_init(m->loop, &cl->tcp);
    cl->tcp.data = cl;
    m->open++;
    if (uv_accept(ls, (uv_stream_t *)&cl->tcp) < 0 ||
        uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read) < 0)
        uv_close((uv_handle_t *)&cl->tcp, on_client_closed);
}

struct metrics *
metrics_new(uv_loop_t *loop, struct store *store, struct server *srv,
            struct metrics_counters *counters, const struct health *health)
{
    struct metrics *m = xcalloc(1, sizeof *m);
    m->health = health;
    m->loop = loop;
    m->store = store;
    m->srv = srv;
    m->c = counters;
    uv_tcp_init(loop, &m->tcp);
    m->tcp.data = m;
    m->open = 1;
    return m;
}

static int
parse_address(const char *a, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon = strrchr(a, ':');
    if (colon == NULL || (size_t)(colon - a) >= sizeof host)
        return UV_EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
        return UV_EINVAL;
    if (a[0] == '[') {
        snprintf(host, sizeof host, "%.*s", (int)(colon - a - 2), a + 1);
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss);
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - a), a);
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
}

int
metrics_listen(struct metrics *m, const char *address, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int rc = parse_address(address, &ss);
    if (rc == 0)
        rc = uv_tcp_bind(&m->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->tcp, 64, on_connection);
    if (rc < 0)
        snprintf(err, errlen, "metrics: cannot listen on %s: %s", address, uv_strerror(rc));
    return rc;
}

static void
on_listener_closed(uv_handle_t *h)
{
    struct metrics *m = h->data;
    m->open--;
    maybe_free(m);
}

void
metrics_close(struct metrics *m)
{
    if (m == NULL)
        return;
    m->closing = true;
    uv_close((uv_handle_t *)&m->tcp, on_listener_closed);
}
