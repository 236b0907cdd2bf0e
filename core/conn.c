#include "core/conn.h"

#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "core/tls.h"

struct write_req {
    uv_write_t req;
    struct conn *conn;
    char data[];
};

static void pump(struct conn *c);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = (struct conn *)h;
    (void)suggested;
    buf->base = c->shared->rbuf;
    buf->len = sizeof c->shared->rbuf;
}

static void
update_reading(struct conn *c)
{
    bool want = !c->closing && !c->eof && !c->paused && !c->wblocked && c->left_len == 0;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* Keep [data, data+len) for later: the owner did not take it. */
static void
keep_left(struct conn *c, const char *data, size_t len)
{
    if (len == 0)
        return;
    char *p = xmalloc(c->left_len + len);
    if (c->left_len)
        memcpy(p, c->left, c->left_len);
    memcpy(p + c->left_len, data, len);
    free(c->left);
    c->left = p;
    c->left_len += len;
}

/* Hand data to the owner, or keep it when the owner is paused. */
static void
deliver(struct conn *c, const char *data, size_t len)
{
    if (c->paused || c->wblocked || c->left_len > 0 || c->closing) {
        if (!c->closing)
            keep_left(c, data, len);
        return;
    }
    size_t taken = c->ops->read(c, data, len);
    if (taken < len && !c->closing) {
        keep_left(c, data + taken, len - taken);
        if (taken == 0)
            c->paused = true; /* took nothing: wait for conn_resume */
    }
}

static void
on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->conn;
    free(w);
    if (status < 0 && !c->closing) {
        c->ops->error(c, status);
        return;
    }
    if (c->wblocked && !c->closing &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= c->write_high / 2) {
        c->wblocked = false;
        pump(c); /* hands over what was kept and reads again */
    }
}

static int
raw_write(struct conn *c, const char *data, size_t len)
{
    if (c->closing)
        return UV_ECANCELED;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == (int)len)
            return 0;
        if (n < 0 && n != UV_EAGAIN)
            return n;
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
    }
    struct write_req *w = xmalloc(sizeof *w + len);
    w->conn = c;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc < 0) {
        free(w);
        return rc;
    }
    if (c->write_high > 0 && !c->wblocked &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > c->write_high) {
        c->wblocked = true; /* the peer does not read: neither do we */
        update_reading(c);
    }
    return 0;
}

/* Send what TLS has produced. */
static int
flush_tls(struct conn *c)
{
    const char *p;
    size_t n;
    while ((n = tls_conn_pending_out(c->tls, &p)) > 0) {
        int rc = raw_write(c, p, n);
        tls_conn_consume_out(c->tls, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void
step_handshake(struct conn *c)
{
    int rc = tls_conn_handshake(c->tls);
    flush_tls(c);
    if (rc == BH_EAGAIN)
        return;
    c->handshaking = false;
    c->ops->tls_done(c, rc == 0 ? 0 : BH_EIO);
    if (rc == 0)
        pump(c);
}

/* Hand over what is waiting: leftovers first, then TLS plaintext. */
static void
pump(struct conn *c)
{
    while (!c->paused && !c->wblocked && !c->closing) {
        if (c->left_len > 0) {
            char *p = c->left;
            size_t n = c->left_len;
            c->left = NULL;
            c->left_len = 0;
            deliver(c, p, n);
            free(p);
            continue;
        }
        if (c->tls == NULL || c->handshaking || !tls_conn_done(c->tls))
            break;
        size_t n = 0;
        int rc = tls_conn_read(c->tls, c->shared->rbuf, sizeof c->shared->rbuf, &n);
        flush_tls(c);
        if (rc == BH_EAGAIN)
            break;
        if (rc < 0 || n == 0) {
            c->eof = true;
            c->ops->error(c, rc < 0 ? UV_EPROTO : UV_EOF);
            break;
        }
        deliver(c, c->shared->rbuf, n);
    }
    update_reading(c);
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = (struct conn *)s;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        c->eof = true;
        update_reading(c);
        c->ops->error(c, (int)nread);
        return;
    }
    if (c->tls == NULL) {
        deliver(c, buf->base, (size_t)nread);
    } else if (tls_conn_feed(c->tls, buf->base, (size_t)nread) < 0) {
        c->ops->error(c, UV_EPROTO);
        return;
    } else if (c->handshaking) {
        step_handshake(c);
        return;
    }
    pump(c);
}

int
conn_init(uv_loop_t *loop, struct conn *c, struct conn_shared *shared,
          const struct conn_ops *ops, void *owner)
{
    memset(c, 0, sizeof *c);
    c->ops = ops;
    c->owner = owner;
    c->shared = shared;
    return uv_tcp_init(loop, &c->tcp);
}

int
conn_start(struct conn *c)
{
    c->paused = false;
    update_reading(c);
    return c->reading ? 0 : UV_EINVAL;
}

void
conn_pause(struct conn *c)
{
    c->paused = true;
    update_reading(c);
}

void
conn_resume(struct conn *c)
{
    if (c->closing)
        return;
    c->paused = false;
    pump(c);
}

void
conn_discard_input(struct conn *c)
{
    free(c->left);
    c->left = NULL;
    c->left_len = 0;
}

int
conn_write(struct conn *c, const char *data, size_t len)
{
    if (c->tls == NULL)
        return raw_write(c, data, len);
    if (tls_conn_write(c->tls, data, len) < 0)
        return UV_EPROTO;
    return flush_tls(c);
}

int
conn_start_tls_server(struct conn *c, struct tls_server_ctx *ctx)
{
    if (c->tls != NULL || ctx == NULL)
        return UV_EINVAL;
    conn_discard_input(c);
    c->tls = tls_conn_new_server(ctx);
    c->handshaking = true;
    return 0;
}

int
conn_start_tls_client(struct conn *c, struct tls_client_ctx *ctx, const char *sni)
{
    if (c->tls != NULL || ctx == NULL)
        return UV_EINVAL;
    conn_discard_input(c);
    c->tls = tls_conn_new_client(ctx, sni);
    c->handshaking = true;
    step_handshake(c);
    return 0;
}

static void
on_closed(uv_handle_t *h)
{
    struct conn *c = (struct conn *)h;
    free(c->left);
    c->left = NULL;
    c->left_len = 0;
    tls_conn_free(c->tls);
    c->tls = NULL;
    c->ops->closed(c);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    free(req);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void
conn_close(struct conn *c, bool graceful)
{
    if (c->closing)
        return;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0)
        graceful = false; /* uv_shutdown would wait for a peer that does not read */
    if (graceful && c->tls && tls_conn_done(c->tls)) {
        tls_conn_shutdown(c->tls);
        flush_tls(c);
    }
    c->closing = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (graceful) {
        uv_shutdown_t *req = xmalloc(sizeof *req);
        req->data = c;
        if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
            return;
        free(req);
    }
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

size_t
conn_write_queue_size(const struct conn *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}
