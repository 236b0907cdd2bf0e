#include "core/dns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connectors/util.h"
#include "core/dns_query.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define RESOLV_CONF_MAX (64 * 1024)
#define THREADS_MAX 64
#define ADDRS_MAX (2 * DNS_WIRE_MAX_RECS)

enum req_kind { REQ_MX, REQ_ADDR };

struct dns_req {
    struct dns_req *next;
    struct dns *d;
    enum req_kind kind;
    char name[DNS_WIRE_NAME_MAX + 1]; /* normalised; "" for a literal */
    uint16_t port;
    dns_cb *cb;
    void *arg;
    bool cancelled; /* written by the loop thread under d->mu */
    struct dns_result res;
    struct dns_wire_mx *mx;        /* owned, behind res.mx */
    struct sockaddr_storage *addr; /* owned, behind res.addr */
};

struct dns {
    uv_async_t async; /* wakes the loop when requests are done */
    struct sockaddr_storage *servers;
    size_t nservers;
    bool system; /* no dns.servers: getaddrinfo for addresses */
    pthread_t *threads;
    unsigned nthreads;
    int stop[2]; /* a pipe written once by dns_free: every poll wakes */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct dns_req *todo, **todo_tail; /* guarded by mu */
    struct dns_req *done, **done_tail; /* guarded by mu */
    bool stopping;                     /* guarded by mu */
};

/* ---- Pure helpers ---- */

static int
parse_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;
    if (*s == '\0')
        return BH_EINVAL;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9' || (v = v * 10 + (unsigned long)(*s - '0')) > 65535)
            return BH_EINVAL;
    if (v == 0)
        return BH_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int
dns_literal(const char *host, uint16_t port, struct sockaddr_storage *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    size_t len = strlen(host);
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        return 0;
    }
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof buf) {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        return 0;
    }
    return BH_EINVAL;
}

int
dns_parse_server(const char *s, struct sockaddr_storage *out)
{
    char host[INET6_ADDRSTRLEN + 3];
    uint16_t port;
    if (dns_literal(s, 53, out) == 0)
        return 0;
    bool bracket = s[0] == '[';
    const char *colon = bracket ? strstr(s, "]:") : strchr(s, ':');
    if (colon == NULL)
        return BH_EINVAL;
    colon += bracket;
    size_t hl = (size_t)(colon - s);
    if (hl >= sizeof host || parse_port(colon + 1, &port) < 0)
        return BH_EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (dns_literal(host, port, out) < 0 || (out->ss_family == AF_INET6) != bracket)
        return BH_EINVAL;
    return 0;
}

/* One resolv.conf line: 1 if it named a usable server (stored in *out). */
static size_t
resolv_line(const char *line, size_t len, struct sockaddr_storage *out)
{
    char buf[256], word[16], addr[64];
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, line, len);
    buf[len] = '\0';
    if (sscanf(buf, "%15s %63s", word, addr) != 2 || strcmp(word, "nameserver") != 0)
        return 0;
    if (strchr(addr, '%') != NULL)
        return 0; /* a scoped IPv6 address: rare, and needs an interface index */
    return dns_literal(addr, 53, out) == 0 ? 1 : 0;
}

size_t
dns_parse_resolv_conf(const char *text, struct sockaddr_storage *out, size_t max)
{
    size_t n = 0;
    for (const char *line = text; *line != '\0' && n < max;) {
        size_t len = strcspn(line, "\n");
        n += resolv_line(line, len, &out[n]);
        line += len + (line[len] == '\n');
    }
    return n;
}

/* The servers of /etc/resolv.conf; as in libc, 127.0.0.1 when there is none. */
static size_t
read_resolv_conf(struct sockaddr_storage *out, size_t max)
{
    char *text = xmalloc(RESOLV_CONF_MAX + 1);
    FILE *f = fopen(RESOLV_CONF, "re");
    size_t len = f != NULL ? fread(text, 1, RESOLV_CONF_MAX, f) : 0;
    if (f != NULL)
        fclose(f);
    text[len] = '\0';
    size_t n = dns_parse_resolv_conf(text, out, max);
    free(text);
    if (n == 0 && dns_literal("127.0.0.1", 53, &out[0]) == 0)
        n = 1;
    return n;
}

/* ---- Lookups (resolver threads) ---- */

static void
set_result(struct dns_req *r, enum dns_status st, const char *why)
{
    r->res.status = st;
    r->res.why = why;
}

/* The answer's MX hosts in delivery order, or why there are none. */
static void
mx_result(struct dns_req *r, struct dns_wire_answer *a)
{
    size_t n = a->n;
    if (dns_wire_mx_null(a)) {
        set_result(r, DNS_NULLMX, "null MX: the domain accepts no mail");
        return;
    }
    dns_wire_mx_sort(a->mx, &n, dns_query_rand, NULL);
    if (n == 0) {
        set_result(r, DNS_TEMPFAIL, "no MX record names a valid host");
        return;
    }
    r->mx = xmalloc(n * sizeof *r->mx);
    memcpy(r->mx, a->mx, n * sizeof *r->mx);
    r->res.mx = r->mx;
    r->res.n = n;
    set_result(r, DNS_OK, "");
}

static void
lookup_mx(struct dns *d, struct dns_req *r, struct dns_wire_answer *a)
{
    const char *why;
    if (dns_query(d->servers, d->nservers, d->stop[0], r->name, DNS_WIRE_MX, a, &why) < 0)
        set_result(r, DNS_TEMPFAIL, why);
    else if (a->rcode == DNS_WIRE_NXDOMAIN)
        set_result(r, DNS_NXDOMAIN, "no such domain");
    else if (a->n == 0 && a->bad == 0)
        set_result(r, DNS_NODATA, "no MX records");
    else
        mx_result(r, a);
}

/* Append sa to v unless it is there already or v is full. */
static void
add_addr(struct sockaddr_storage *v, size_t *n, const struct sockaddr_storage *sa)
{
    for (size_t i = 0; i < *n; i++)
        if (memcmp(&v[i], sa, sizeof *sa) == 0)
            return;
    if (*n < ADDRS_MAX)
        v[(*n)++] = *sa;
}

/* Append the addresses of an A (AF_INET) or AAAA (AF_INET6) answer. */
static void
add_answer(struct sockaddr_storage *v, size_t *n, const struct dns_wire_answer *a, int family,
           uint16_t port)
{
    for (size_t i = 0; i < a->n; i++) {
        struct sockaddr_storage sa;
        memset(&sa, 0, sizeof sa);
        if (family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&sa;
            in->sin_family = AF_INET;
            in->sin_port = htons(port);
            memcpy(&in->sin_addr, a->addr[i], 4);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons(port);
            memcpy(&in6->sin6_addr, a->addr[i], 16);
        }
        add_addr(v, n, &sa);
    }
}

static void
set_addrs(struct dns_req *r, const struct sockaddr_storage *v, size_t n)
{
    r->addr = xmalloc(n * sizeof *r->addr);
    memcpy(r->addr, v, n * sizeof *r->addr);
    r->res.addr = r->addr;
    r->res.n = n;
    set_result(r, DNS_OK, "");
}

/* A and AAAA from the configured servers; IPv6 first. */
static void
lookup_addr(struct dns *d, struct dns_req *r, struct dns_wire_answer *a)
{
    struct sockaddr_storage v4[ADDRS_MAX], v[ADDRS_MAX];
    size_t n4 = 0, n = 0;
    const char *why4 = "", *why6 = "";
    int rc4 = dns_query(d->servers, d->nservers, d->stop[0], r->name, DNS_WIRE_A, a, &why4);
    if (rc4 == 0 && a->rcode == DNS_WIRE_NXDOMAIN) {
        set_result(r, DNS_NXDOMAIN, "no such host");
        return;
    }
    if (rc4 == 0)
        add_answer(v4, &n4, a, AF_INET, r->port);
    int rc6 = dns_query(d->servers, d->nservers, d->stop[0], r->name, DNS_WIRE_AAAA, a, &why6);
    if (rc6 == 0 && a->rcode == DNS_WIRE_NOERROR)
        add_answer(v, &n, a, AF_INET6, r->port);
    for (size_t i = 0; i < n4; i++)
        add_addr(v, &n, &v4[i]);
    if (n > 0)
        set_addrs(r, v, n);
    else if (rc4 < 0 || rc6 < 0)
        set_result(r, DNS_TEMPFAIL, rc4 < 0 ? why4 : why6);
    else if (a->rcode == DNS_WIRE_NXDOMAIN)
        set_result(r, DNS_NXDOMAIN, "no such host");
    else
        set_result(r, DNS_NODATA, "no A or AAAA records");
}

/* Without dns.servers: getaddrinfo, so /etc/hosts counts. Its order (RFC
 * 6724, which knows which families this host can reach) is kept. */
static void
lookup_gai(struct dns_req *r)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage v[ADDRS_MAX], sa;
    size_t n = 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(r->name, NULL, &hints, &res);
    if (rc == EAI_NONAME) {
        set_result(r, DNS_NXDOMAIN, "no such host");
        return;
    }
    if (rc == EAI_AGAIN || rc == EAI_FAIL || rc == EAI_MEMORY || rc == EAI_SYSTEM) {
        set_result(r, DNS_TEMPFAIL, gai_strerror(rc));
        return;
    }
    for (struct addrinfo *ai = rc == 0 ? res : NULL; ai != NULL; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof sa)
            continue;
        memset(&sa, 0, sizeof sa);
        memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
        if (sa.ss_family == AF_INET)
            ((struct sockaddr_in *)&sa)->sin_port = htons(r->port);
        else
            ((struct sockaddr_in6 *)&sa)->sin6_port = htons(r->port);
        add_addr(v, &n, &sa);
    }
    if (res != NULL)
        freeaddrinfo(res);
    if (n > 0)
        set_addrs(r, v, n);
    else
        set_result(r, DNS_NODATA, "no addresses"); /* EAI_NODATA and the like */
}

static void
resolve(struct dns *d, struct dns_req *r)
{
    struct dns_wire_answer *a = xmalloc(sizeof *a);
    if (r->kind == REQ_MX)
        lookup_mx(d, r, a);
    else if (d->system)
        lookup_gai(r);
    else
        lookup_addr(d, r, a);
    free(a);
}

/* ---- Threads and the loop ---- */

/* With d->mu held: hand r back to the loop. */
static void
finish(struct dns *d, struct dns_req *r)
{
    r->next = NULL;
    *d->done_tail = r;
    d->done_tail = &r->next;
    uv_async_send(&d->async);
}

static void *
worker_main(void *arg)
{
    struct dns *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (d->todo == NULL && !d->stopping)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->stopping)
            break;
        struct dns_req *r = d->todo;
        d->todo = r->next;
        if (d->todo == NULL)
            d->todo_tail = &d->todo;
        bool skip = r->cancelled;
        pthread_mutex_unlock(&d->mu);
        if (!skip)
            resolve(d, r);
        pthread_mutex_lock(&d->mu);
        finish(d, r);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static void
req_free_list(struct dns_req *r)
{
    while (r != NULL) {
        struct dns_req *next = r->next;
        free(r->mx);
        free(r->addr);
        free(r);
        r = next;
    }
}

/* Loop thread: call back every finished request that is not cancelled. A
 * callback may cancel a request further down the list; the flag is read
 * just before each call. */
static void
on_async(uv_async_t *h)
{
    struct dns *d = h->data;
    pthread_mutex_lock(&d->mu);
    struct dns_req *list = d->done;
    d->done = NULL;
    d->done_tail = &d->done;
    pthread_mutex_unlock(&d->mu);
    while (list != NULL) {
        struct dns_req *r = list;
        list = r->next;
        r->next = NULL;
        if (!r->cancelled)
            r->cb(r->arg, &r->res);
        req_free_list(r);
    }
}

static int
load_servers(struct dns *d, const char *const *servers, size_t n)
{
    if (servers == NULL || n == 0) {
        d->system = true;
        d->servers = xcalloc(DNS_RESOLV_MAX, sizeof *d->servers);
        d->nservers = read_resolv_conf(d->servers, DNS_RESOLV_MAX);
        return 0;
    }
    d->servers = xcalloc(n, sizeof *d->servers);
    d->nservers = n;
    for (size_t i = 0; i < n; i++)
        if (dns_parse_server(servers[i], &d->servers[i]) < 0)
            return BH_EINVAL;
    return 0;
}

static void
start_threads(struct dns *d, unsigned nthreads)
{
    d->nthreads = nthreads == 0 ? DNS_THREADS : nthreads > THREADS_MAX ? THREADS_MAX : nthreads;
    d->threads = xcalloc(d->nthreads, sizeof *d->threads);
    for (unsigned i = 0; i < d->nthreads; i++)
        if (pthread_create(&d->threads[i], NULL, worker_main, d) != 0)
            abort(); /* as for the storage writer: the process cannot work */
}

struct dns *
dns_new(uv_loop_t *loop, const char *const *servers, size_t nservers, unsigned nthreads)
{
    struct dns *d = xcalloc(1, sizeof *d);
    d->stop[0] = d->stop[1] = -1;
    if (load_servers(d, servers, nservers) < 0 || pipe(d->stop) < 0)
        goto fail;
    for (int i = 0; i < 2; i++)
        fcntl(d->stop[i], F_SETFD, FD_CLOEXEC);
    if (uv_async_init(loop, &d->async, on_async) < 0)
        goto fail;
    d->async.data = d;
    d->todo_tail = &d->todo;
    d->done_tail = &d->done;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    start_threads(d, nthreads);
    return d;
fail:
    for (int i = 0; i < 2; i++)
        if (d->stop[i] >= 0)
            close(d->stop[i]);
    free(d->servers);
    free(d);
    return NULL;
}

static void
on_closed(uv_handle_t *h)
{
    struct dns *d = h->data;
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d->servers);
    free(d->threads);
    free(d);
}

void
dns_free(struct dns *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (write(d->stop[1], "x", 1) < 0) {
        /* Cannot happen on a fresh pipe; the threads then stop at their
         * next timeout instead of at once. */
    }
    for (unsigned i = 0; i < d->nthreads; i++)
        pthread_join(d->threads[i], NULL);
    req_free_list(d->todo);
    req_free_list(d->done);
    d->todo = d->done = NULL;
    close(d->stop[0]);
    close(d->stop[1]);
    uv_close((uv_handle_t *)&d->async, on_closed);
}

static struct dns_req *
req_new(struct dns *d, enum req_kind kind, dns_cb *cb, void *arg)
{
    struct dns_req *r = xcalloc(1, sizeof *r);
    r->d = d;
    r->kind = kind;
    r->cb = cb;
    r->arg = arg;
    r->res.why = "";
    return r;
}

/* Queue r for a resolver thread, or (done) straight for the callback. */
static void
submit(struct dns *d, struct dns_req *r, bool done)
{
    pthread_mutex_lock(&d->mu);
    if (done) {
        finish(d, r);
    } else {
        *d->todo_tail = r;
        d->todo_tail = &r->next;
        pthread_cond_signal(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
}

struct dns_req *
dns_mx(struct dns *d, const char *domain, dns_cb *cb, void *arg)
{
    struct dns_req *r = req_new(d, REQ_MX, cb, arg);
    bool bad = dns_wire_name_norm(domain, r->name) < 0;
    if (bad)
        set_result(r, DNS_NXDOMAIN, "not a valid domain name");
    submit(d, r, bad);
    return r;
}

struct dns_req *
dns_addr(struct dns *d, const char *host, uint16_t port, dns_cb *cb, void *arg)
{
    struct dns_req *r = req_new(d, REQ_ADDR, cb, arg);
    struct sockaddr_storage sa;
    r->port = port;
    if (dns_literal(host, port, &sa) == 0) {
        set_addrs(r, &sa, 1);
        submit(d, r, true);
    } else if (dns_wire_name_norm(host, r->name) < 0) {
        set_result(r, DNS_NXDOMAIN, "not a valid host name");
        submit(d, r, true);
    } else {
        submit(d, r, false);
    }
    return r;
}

void
dns_cancel(struct dns_req *req)
{
    if (req == NULL)
        return;
    pthread_mutex_lock(&req->d->mu);
    req->cancelled = true;
    pthread_mutex_unlock(&req->d->mu);
}
