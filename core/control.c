#include "core/control.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "connectors/util.h"
#include "core/control_req.h"
#include "core/log.h"
#include "core/store.h"

#define MAX_CLIENTS 64
#define BACKLOG 16
#define READ_TIMEOUT_MS 10000    /* to send the request line */
#define ANSWER_TIMEOUT_MS 300000 /* to run the request and read the answer */

struct control_client;

struct control {
    uv_loop_t *loop;
    uv_pipe_t listener;
    bool listener_open; /* initialised and not yet closed */
    char *path;         /* once bound: removed at close */
    struct store *store;
    struct store *reader; /* read-only requests, NULL: the store */
    struct log *log;
    struct control_ops ops;
    struct control_client *clients;
    size_t nclients;
    bool closing;
};

/* One connection. Freed when both handles are closed and no storage job
 * holds it (the job writes resp on the storage thread). */
struct control_client {
    uv_pipe_t pipe;
    uv_timer_t timer;
    struct control *ctl;
    struct control_client *prev, *next;
    char line[CONTROL_REQ_MAX_LINE];
    size_t len;
    int handles; /* open handles: the pipe and the timer */
    bool job;    /* a storage job is in flight */
    bool closing;
    bool answering; /* the request is read: ignore further input */
    struct control_req req;
    struct util_buf resp; /* the framed answer */
    uv_write_t wr;
};

char *
control_socket_path(const char *storage_path)
{
    return xasprintf("%s.sock", storage_path);
}

struct control *
control_new(uv_loop_t *loop, struct store *store, struct log *log, const struct control_ops *ops)
{
    struct control *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->store = store;
    c->log = log;
    if (ops != NULL)
        c->ops = *ops;
    return c;
}

/* ---- freeing ---- */

static void
control_maybe_free(struct control *c)
{
    if (!c->closing || c->listener_open || c->clients != NULL)
        return;
    free(c->path);
    free(c);
}

static void
client_maybe_free(struct control_client *cl)
{
    if (cl->handles > 0 || cl->job)
        return;
    struct control *c = cl->ctl;
    if (cl->prev != NULL)
        cl->prev->next = cl->next;
    else
        c->clients = cl->next;
    if (cl->next != NULL)
        cl->next->prev = cl->prev;
    c->nclients--;
    util_buf_fini(&cl->resp);
    free(cl);
    control_maybe_free(c);
}

static void
on_client_handle_closed(uv_handle_t *h)
{
    struct control_client *cl = h->data;
    cl->handles--;
    client_maybe_free(cl);
}

static void
client_close(struct control_client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    uv_close((uv_handle_t *)&cl->pipe, on_client_handle_closed);
    uv_close((uv_handle_t *)&cl->timer, on_client_handle_closed);
}

static void
on_listener_closed(uv_handle_t *h)
{
    struct control *c = h->data;
    c->listener_open = false;
    control_maybe_free(c);
}

void
control_close(struct control *c)
{
    if (c == NULL || c->closing)
        return;
    c->closing = true;
    if (c->path != NULL)
        unlink(c->path);
    if (c->listener_open)
        uv_close((uv_handle_t *)&c->listener, on_listener_closed);
    for (struct control_client *cl = c->clients; cl != NULL; cl = cl->next)
        client_close(cl);
    control_maybe_free(c);
}

/* ---- answering ---- */

/* Append each line of text to wire as "TAG line\n". */
static void
frame(struct util_buf *wire, const char *tag, const struct util_buf *text)
{
    const char *p = text->p;
    size_t left = text->len;
    while (left > 0) {
        const char *nl = memchr(p, '\n', left);
        size_t n = nl != NULL ? (size_t)(nl - p) : left;
        util_buf_printf(wire, "%s ", tag);
        util_buf_append(wire, p, n);
        util_buf_append(wire, "\n", 1);
        n += nl != NULL;
        p += n;
        left -= n;
    }
}

static void
on_timeout(uv_timer_t *t)
{
    client_close(t->data);
}

static void
on_written(uv_write_t *w, int status)
{
    (void)status;
    client_close(w->data);
}

static void
send_resp(struct control_client *cl)
{
    uv_buf_t b = uv_buf_init(cl->resp.p, (unsigned)cl->resp.len);
    cl->wr.data = cl;
    if (uv_write(&cl->wr, (uv_stream_t *)&cl->pipe, &b, 1, on_written) != 0)
        client_close(cl);
}

static void
answer_error(struct control_client *cl, int code, const char *msg)
{
    util_buf_printf(&cl->resp, "err bridgehead: control request: %s\nend %d\n", msg, code);
    send_resp(cl);
}

static void
log_request(struct control_client *cl, int status)
{
    const struct control_req *r = &cl->req;
    enum log_level lv = control_req_writes(r) ? LOG_INFO : LOG_DEBUG;
    if (!log_enabled(cl->ctl->log, lv))
        return;
    char res[32];
    snprintf(res, sizeof res, status == 0 ? "ok" : "error error=%d", status);
    if (r->id[0] != '\0')
        log_msg(cl->ctl->log, lv, "id=%s event=control request=%s status=%s", r->id,
                control_req_verb_name(r->verb), res);
    else {
        char conn[LOG_VALUE_MAX];
        log_msg(cl->ctl->log, lv, "event=control request=%s connector=%s status=%s",
                control_req_verb_name(r->verb),
                r->connector[0] ? log_token(conn, sizeof conn, r->connector) : "-", res);
    }
}

/* Storage thread: run the request and frame its answer. */
static int
run_job(struct queue *q, void *arg)
{
    struct control_client *cl = arg;
    struct util_buf out = {0}, err = {0};
    int rc = control_req_run(q, &cl->req, (int64_t)time(NULL), &out, &err);
    frame(&cl->resp, "out", &out);
    frame(&cl->resp, "err", &err);
    util_buf_printf(&cl->resp, "end %d\n", rc);
    util_buf_fini(&out);
    util_buf_fini(&err);
    return rc;
}

/* Loop thread: the storage job is done. */
static void
job_done(void *arg, int status)
{
    struct control_client *cl = arg;
    struct control *c = cl->ctl;
    cl->job = false;
    if (cl->closing) {
        client_maybe_free(cl);
        return;
    }
    log_request(cl, status);
    if (cl->req.verb == CONTROL_FLUSH && status == 0 && c->ops.wake != NULL && !c->closing)
        c->ops.wake(c->ops.arg);
    send_resp(cl);
}

static void
run_reload(struct control_client *cl)
{
    struct control *c = cl->ctl;
    struct util_buf errs = {0};
    int rc = BH_ENOTSUP;
    if (c->ops.reload != NULL)
        rc = c->ops.reload(c->ops.arg, &errs);
    else
        util_buf_puts(&errs, "bridgehead: this server cannot reload\n");
    log_request(cl, rc);
    frame(&cl->resp, "err", &errs);
    util_buf_printf(&cl->resp, "end %d\n", rc);
    util_buf_fini(&errs);
    send_resp(cl);
}

static void
handle(struct control_client *cl)
{
    char err[160];
    if (control_req_parse(cl->line, &cl->req, err, sizeof err) != 0) {
        answer_error(cl, BH_EINVAL, err);
        return;
    }
    uv_timer_start(&cl->timer, on_timeout, ANSWER_TIMEOUT_MS, 0);
    if (cl->req.verb == CONTROL_RELOAD) {
        run_reload(cl);
        return;
    }
    cl->job = true;
    /* list, show and stats read on the reader thread, so that a large
     * queue listing does not hold up the writer's group commits. */
    struct store *st = cl->ctl->store;
    if (cl->ctl->reader != NULL && !control_req_writes(&cl->req))
        st = cl->ctl->reader;
    store_call(st, run_job, job_done, cl);
}

/* ---- reading the request ---- */

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct control_client *cl = h->data;
    (void)hint;
    *b = uv_buf_init(cl->line + cl->len, (unsigned)(sizeof cl->line - cl->len));
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct control_client *cl = s->data;
    (void)b;
    if (cl->answering || n == 0)
        return;
    if (n < 0) { /* EOF or an error before a whole request */
        client_close(cl);
        return;
    }
    size_t old = cl->len;
    cl->len += (size_t)n;
    char *nl = memchr(cl->line + old, '\n', cl->len - old);
    if (nl == NULL && cl->len < sizeof cl->line)
        return;
    uv_read_stop(s);
    cl->answering = true;
    if (nl == NULL) {
        answer_error(cl, BH_EINVAL, "request line too long");
        return;
    }
    *nl = '\0';
    handle(cl);
}

static void
on_connection(uv_stream_t *server, int status)
{
    struct control *c = server->data;
    if (status < 0 || c->closing)
        return;
    struct control_client *cl = xcalloc(1, sizeof *cl);
    cl->ctl = c;
    uv_pipe_init(c->loop, &cl->pipe, 0);
    uv_timer_init(c->loop, &cl->timer);
    cl->pipe.data = cl->timer.data = cl;
    cl->handles = 2;
    cl->next = c->clients;
    if (c->clients != NULL)
        c->clients->prev = cl;
    c->clients = cl;
    c->nclients++;
    if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0) {
        client_close(cl);
        return;
    }
    uv_timer_start(&cl->timer, on_timeout, READ_TIMEOUT_MS, 0);
    if (c->nclients > MAX_CLIENTS) {
        cl->answering = true;
        answer_error(cl, BH_EBUSY, "too many control connections");
        return;
    }
    uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read);
}

/* ---- listening ---- */

/* Connect to the socket at path: the descriptor, BH_ENOENT when nothing
 * listens there, or another negative errno. */
static int
connect_unix(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path)
        return BH_ENOENT;
    memcpy(sa.sun_path, path, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    int e = errno;
    close(fd);
    return (e == ENOENT || e == ECONNREFUSED || e == ENOTSOCK || e == ENOTDIR) ? BH_ENOENT : -e;
}

/* A socket file left by a server that is gone is removed; the queue lock
 * already keeps a second server away, so this is only a safety net. */
static int
remove_stale(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "control socket %s: exists and is not a socket", path);
        return BH_EEXIST;
    }
    int fd = connect_unix(path);
    if (fd >= 0) {
        close(fd);
        snprintf(err, errlen, "control socket %s: another server answers on it", path);
        return BH_EBUSY;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "control socket %s: cannot remove the stale socket: %s", path,
                 strerror(errno));
        return BH_EIO;
    }
    return 0;
}

void
control_set_reader(struct control *c, struct store *reader)
{
    if (c != NULL)
        c->reader = reader;
}

int
control_listen(struct control *c, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "control socket %s: the path is longer than %zu bytes", path,
                 sizeof sa.sun_path - 1);
        return BH_ERANGE;
    }
    int rc = remove_stale(path, err, errlen);
    if (rc != 0)
        return rc;
    uv_pipe_init(c->loop, &c->listener, 0);
    c->listener.data = c;
    c->listener_open = true;
    rc = uv_pipe_bind(&c->listener, path);
    if (rc == 0) {
        c->path = xstrdup(path);
        /* Group members may administer the queue; nobody else may connect. */
        rc = chmod(path, 0660) == 0 ? 0 : -errno;
    }
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&c->listener, BACKLOG, on_connection);
    if (rc != 0)
        snprintf(err, errlen, "control socket %s: %s", path, uv_strerror(rc));
    return rc;
}

/* ---- client ---- */

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return BH_EAGAIN;
        int n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return BH_EIO;
    }
}

static int
send_all(int fd, const char *s, size_t len, int64_t deadline)
{
    while (len > 0) {
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc != 0)
            return rc;
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return BH_EIO;
        if (n > 0) {
            s += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

/* One answer line: 1 after "end", 0 for out/err, BH_EIO for garbage. */
static int
answer_line(const char *line, FILE *out, FILE *err, int *status)
{
    if (strncmp(line, "out ", 4) == 0 || strncmp(line, "err ", 4) == 0) {
        FILE *f = line[0] == 'o' ? out : err;
        fputs(line + 4, f);
        fputc('\n', f);
        return 0;
    }
    if (strncmp(line, "end ", 4) == 0) {
        char *end;
        long v = strtol(line + 4, &end, 10);
        if (end == line + 4 || *end != '\0' || v > 0 || v < -4095)
            return BH_EIO;
        *status = (int)v;
        return 1;
    }
    return BH_EIO;
}

/* Read the answer line by line until "end". */
static int
read_answer(int fd, FILE *out, FILE *err, int *status, int64_t deadline)
{
    struct util_buf acc = {0};
    char chunk[65536];
    int rc = 0;
    while (rc == 0) {
        if ((rc = wait_fd(fd, POLLIN, deadline)) != 0)
            break;
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            rc = BH_EIO; /* closed before "end" */
            break;
        }
        util_buf_append(&acc, chunk, (size_t)n);
        size_t start = 0;
        char *nl;
        while (rc == 0 && (nl = memchr(acc.p + start, '\n', acc.len - start)) != NULL) {
            *nl = '\0';
            rc = answer_line(acc.p + start, out, err, status);
            start = (size_t)(nl - acc.p) + 1;
        }
        memmove(acc.p, acc.p + start, acc.len - start);
        acc.len -= start;
    }
    util_buf_fini(&acc);
    return rc == 1 ? 0 : rc;
}

int
control_call(const char *path, const char *request, FILE *out, FILE *err, int *status,
             int timeout_ms, char *errmsg, size_t errlen)
{
    int fd = connect_unix(path);
    if (fd == BH_ENOENT)
        return BH_ENOENT;
    if (fd < 0) {
        snprintf(errmsg, errlen, "control socket %s: %s", path, strerror(-fd));
        return BH_EIO;
    }
    int64_t deadline = now_ms() + timeout_ms;
    int rc = send_all(fd, request, strlen(request), deadline);
    if (rc == 0)
        rc = read_answer(fd, out, err, status, deadline);
    close(fd);
    if (rc == BH_EAGAIN)
        snprintf(errmsg, errlen, "control socket %s: no answer within %d s", path,
                 timeout_ms / 1000);
    else if (rc != 0)
        snprintf(errmsg, errlen, "control socket %s: the server broke off the conversation", path);
    return rc;
}
