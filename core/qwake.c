#include "core/qwake.h"

#include <stdlib.h>

#include "connectors/util.h"
#include "storage/queue.h"

struct qwake {
    uv_poll_t poll;
    struct queue *q;
    qwake_cb *cb;
    void *arg;
};

static void
on_readable(uv_poll_t *h, int status, int events)
{
    struct qwake *w = h->data;
    (void)events;
    if (status < 0)
        return;
    /* queue_wake_clear only reads the eventfd: safe beside the storage
     * thread that owns the queue handle. */
    queue_wake_clear(w->q);
    w->cb(w->arg);
}

struct qwake *
qwake_new(uv_loop_t *loop, struct queue *q, qwake_cb *cb, void *arg)
{
    int fd = queue_wake_fd(q);
    if (fd < 0)
        return NULL;
    struct qwake *w = xcalloc(1, sizeof *w);
    w->q = q;
    w->cb = cb;
    w->arg = arg;
    if (uv_poll_init(loop, &w->poll, fd) != 0) {
        free(w);
        return NULL;
    }
    w->poll.data = w;
    uv_poll_start(&w->poll, UV_READABLE, on_readable);
    return w;
}

static void
on_closed(uv_handle_t *h)
{
    free(h->data);
}

void
qwake_close(struct qwake *w)
{
    if (w == NULL)
        return;
    uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, on_closed);
}
