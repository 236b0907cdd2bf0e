#include "core/dns_query.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "connectors/util.h"

#define MSG_MAX 65535

/* What a wait for answers came to. */
enum { WAIT_NONE, WAIT_DONE, WAIT_FAILED, WAIT_STOP };

/* One question, sent to the servers in turn. */
struct xchg {
    const struct sockaddr_storage *servers;
    size_t n;
    int stop_fd;
    const char *name;
    uint16_t qtype, id;
    uint8_t q[2 + DNS_WIRE_QUERY_MAX]; /* TCP length prefix, then the query */
    size_t qlen;
    int *fd;            /* per server: a connected UDP socket, or -1 */
    bool *failed;       /* per server: gave up on it */
    struct pollfd *pfd; /* the stop pipe, then one per server */
    uint8_t *buf;       /* MSG_MAX: one answer */
    struct dns_wire_answer *ans;
    uint64_t deadline;
    bool stopping;
    const char *why;
};

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* getentropy cannot fail for 8 bytes on a kernel that has it; the clock is
 * a fallback that never blocks. */
uint64_t
dns_query_rand(void *arg)
{
    (void)arg;
    uint64_t v;
    if (getentropy(&v, sizeof v) == 0)
        return v;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u) ^ (uint64_t)ts.tv_sec;
}

static socklen_t
sa_len(const struct sockaddr_storage *sa)
{
    return sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void
fail(struct xchg *x, size_t i, const char *why)
{
    x->failed[i] = true;
    if (x->fd[i] >= 0)
        close(x->fd[i]);
    x->fd[i] = -1;
    x->why = why;
}

static const char *
rcode_why(int rcode)
{
    switch (rcode) {
    case DNS_WIRE_SERVFAIL:
        return "name server answered SERVFAIL";
    case DNS_WIRE_REFUSED:
        return "name server answered REFUSED";
    case DNS_WIRE_FORMERR:
        return "name server answered FORMERR";
    case DNS_WIRE_NOTIMP:
        return "name server answered NOTIMP";
    default:
        return "name server answered an unknown response code";
    }
}

/* Wait for fd (TCP) until the deadline: 0 ready, or BH_EAGAIN. */
static int
tcp_wait(struct xchg *x, int fd, short events)
{
    for (;;) {
        struct pollfd pf[2] = {{fd, events, 0}, {x->stop_fd, POLLIN, 0}};
        uint64_t now = now_ms();
        if (now >= x->deadline)
            return BH_EAGAIN;
        int r = poll(pf, 2, (int)(x->deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (pf[1].revents != 0)
            x->stopping = true;
        return r > 0 && !x->stopping ? 0 : BH_EAGAIN;
    }
}

static int
tcp_io(struct xchg *x, int fd, uint8_t *p, size_t n, bool out)
{
    while (n > 0) {
        ssize_t r = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return BH_EIO;
        if (tcp_wait(x, fd, out ? POLLOUT : POLLIN) < 0)
            return BH_EAGAIN;
    }
    return 0;
}

static int
tcp_connect(struct xchg *x, const struct sockaddr_storage *sa)
{
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), err = 0;
    socklen_t elen = sizeof err;
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)sa, sa_len(sa)) == 0)
        return fd;
    if (errno == EINPROGRESS && tcp_wait(x, fd, POLLOUT) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
        return fd;
    close(fd);
    return -1;
}

static int judge(struct xchg *x, size_t i, size_t len, bool tcp);

/* The UDP answer of server i was truncated: ask it again over TCP. */
static int
tcp_query(struct xchg *x, size_t i)
{
    uint8_t hdr[2];
    int fd = tcp_connect(x, &x->servers[i]);
    if (fd >= 0 && tcp_io(x, fd, x->q, x->qlen + 2, true) == 0 &&
        tcp_io(x, fd, hdr, 2, false) == 0) {
        size_t len = (size_t)hdr[0] << 8 | hdr[1];
        if (tcp_io(x, fd, x->buf, len, false) == 0) {
            close(fd);
            return judge(x, i, len, true);
        }
    }
    if (fd >= 0)
        close(fd);
    if (x->stopping)
        return WAIT_STOP;
    fail(x, i, "TCP to the name server failed");
    return WAIT_FAILED;
}

/* An answer from server i: done, failed, or not ours (keep waiting). */
static int
judge(struct xchg *x, size_t i, size_t len, bool tcp)
{
    int rc = dns_wire_parse(x->buf, len, x->id, x->name, x->qtype, x->ans);
    if (rc == BH_ENOENT && !tcp)
        return WAIT_NONE; /* not ours (late, or spoofed): keep waiting */
    if (rc < 0 || (tcp && x->ans->truncated)) {
        fail(x, i, "malformed answer from the name server");
        return WAIT_FAILED;
    }
    if (x->ans->truncated)
        return tcp_query(x, i);
    if (x->ans->rcode == DNS_WIRE_NOERROR || x->ans->rcode == DNS_WIRE_NXDOMAIN)
        return WAIT_DONE;
    fail(x, i, rcode_why(x->ans->rcode));
    return WAIT_FAILED;
}

static int
read_udp(struct xchg *x, size_t i)
{
    for (;;) {
        ssize_t r = recv(x->fd[i], x->buf, MSG_MAX, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return WAIT_NONE;
        if (r < 0) {
            fail(x, i, "name server unreachable");
            return WAIT_FAILED;
        }
        int w = judge(x, i, (size_t)r, false);
        if (w != WAIT_NONE)
            return w;
    }
}

/* Poll the stop pipe and the open sockets for up to ms. */
static int
wait_answer(struct xchg *x, uint64_t ms)
{
    size_t n = x->n;
    int out = WAIT_NONE;
    x->pfd[0] = (struct pollfd){x->stop_fd, POLLIN, 0};
    for (size_t i = 0; i < n; i++)
        x->pfd[i + 1] = (struct pollfd){x->fd[i], POLLIN, 0}; /* poll skips -1 */
    if (poll(x->pfd, (nfds_t)n + 1, (int)ms) <= 0)
        return WAIT_NONE;
    if (x->pfd[0].revents != 0) {
        x->stopping = true;
        return WAIT_STOP;
    }
    for (size_t i = 0; i < n; i++) {
        int w = x->pfd[i + 1].revents != 0 ? read_udp(x, i) : WAIT_NONE;
        if (w == WAIT_DONE || w == WAIT_STOP)
            return w;
        if (w == WAIT_FAILED)
            out = w;
    }
    return out;
}

/* Send the query to server i; false if it was not sent (move on at once). */
static bool
send_udp(struct xchg *x, size_t i)
{
    const struct sockaddr_storage *sa = &x->servers[i];
    if (x->failed[i])
        return false;
    if (x->fd[i] < 0) {
        x->fd[i] = socket(sa->ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (x->fd[i] < 0 || connect(x->fd[i], (const struct sockaddr *)sa, sa_len(sa)) < 0) {
            fail(x, i, "cannot open a socket to the name server");
            return false;
        }
    }
    if (send(x->fd[i], x->q + 2, x->qlen, 0) < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        fail(x, i, "cannot send to the name server");
        return false;
    }
    return true;
}

static bool
all_failed(const struct xchg *x)
{
    for (size_t i = 0; i < x->n; i++)
        if (!x->failed[i])
            return false;
    return true;
}

/*
 * Send to each server in turn, DNS_QUERY_TRIES rounds, one every interval, and
 * take the first good answer from any of them until the deadline. A server
 * that fails (refused, SERVFAIL, malformed) is dropped and the next one is
 * asked at once.
 */
static int
udp_rounds(struct xchg *x)
{
    size_t n = x->n, total = n * DNS_QUERY_TRIES, sent = 0;
    if (n == 0) {
        x->why = "no name servers";
        return BH_EAGAIN;
    }
    uint64_t now = now_ms(), interval = DNS_QUERY_TIMEOUT_MS / total, next = now;
    x->deadline = now + DNS_QUERY_TIMEOUT_MS;
    for (;;) {
        if (sent < total && now >= next) {
            next = send_udp(x, sent % n) ? now + interval : now;
            sent++;
            continue;
        }
        if (all_failed(x))
            return BH_EAGAIN; /* x->why: the last server's failure */
        if (now >= x->deadline) {
            x->why = "name servers did not answer in time";
            return BH_EAGAIN;
        }
        uint64_t until = sent < total && next < x->deadline ? next : x->deadline;
        int w = wait_answer(x, until - now);
        if (w == WAIT_DONE)
            return 0;
        if (w == WAIT_STOP) {
            x->why = "resolver stopped";
            return BH_EAGAIN;
        }
        now = now_ms();
        if (w == WAIT_FAILED)
            next = now;
    }
}

int
dns_query(const struct sockaddr_storage *servers, size_t n, int stop_fd, const char *name,
          uint16_t qtype, struct dns_wire_answer *ans, const char **why)
{
    struct xchg x = {
        .servers = servers, .n = n, .stop_fd = stop_fd, .name = name, .qtype = qtype, .ans = ans};
    x.id = (uint16_t)dns_query_rand(NULL);
    int len = dns_wire_query(x.q + 2, sizeof x.q - 2, x.id, name, qtype);
    if (len < 0) {
        *why = "not a valid name";
        return BH_EAGAIN;
    }
    x.qlen = (size_t)len;
    x.q[0] = (uint8_t)(x.qlen >> 8);
    x.q[1] = (uint8_t)x.qlen;
    x.fd = xmalloc(n * sizeof *x.fd);
    for (size_t i = 0; i < n; i++)
        x.fd[i] = -1;
    x.failed = xcalloc(n, sizeof *x.failed);
    x.pfd = xcalloc(n + 1, sizeof *x.pfd);
    x.buf = xmalloc(MSG_MAX);
    int rc = udp_rounds(&x);
    for (size_t i = 0; i < n; i++)
        if (x.fd[i] >= 0)
            close(x.fd[i]);
    free(x.fd);
    free(x.failed);
    free(x.pfd);
    free(x.buf);
    *why = x.why;
    return rc;
}
