/*
 * dns: the resolver for delivery (SPEC §4): the MX hosts of a domain and
 * the addresses of a host, answered on the loop thread.
 *
 * Decision: a pool of resolver threads of our own, not c-ares and not the
 * libuv thread pool. The libuv pool is shared with other blocking work, and
 * nothing (the storage writer least of all) may wait behind a slow name
 * server. With dns.servers set, we build the queries, send them (UDP, TCP
 * when the answer is truncated; core/dns_query: 5 s per question in all,
 * 2 sends per server, server after server, a late answer from an earlier
 * server still counts) and parse the answers ourselves (core/dns_wire).
 * That avoids res_init's process-global state and lets each server have its
 * own port. dns_addr asks A, then AAAA, so it may take twice as long.
 * Without dns.servers, addresses come from getaddrinfo, which reads
 * /etc/hosts as SPEC §4 wants, and MX questions go to the name servers of
 * /etc/resolv.conf (read once, by dns_new) on port 53.
 *
 * Answers: see enum dns_status. A CNAME is followed inside the answer that
 * holds it. Names are asked lowercase without a trailing dot. An IP literal
 * host is answered without a query (still through the callback).
 *
 * Ownership: dns_new/dns_free. A struct dns_req belongs to the resolver;
 * the caller may keep the pointer to cancel the request until its callback
 * has run, after which it is gone. The struct dns_result given to a
 * callback is borrowed for the call only: copy what you keep.
 *
 * Threads: everything is for the loop thread only (the loop given to
 * dns_new), except the pure helpers at the end, which any thread may call.
 * Callbacks run on the loop thread from a uv_async, never from inside
 * dns_mx or dns_addr.
 */
#ifndef BH_CORE_DNS_H
#define BH_CORE_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/dns_wire.h"

#define DNS_THREADS 4    /* default size of the pool */
#define DNS_RESOLV_MAX 3 /* name servers taken from resolv.conf (as libc) */

struct dns;
struct dns_req;

enum dns_status {
    DNS_OK,       /* n results */
    DNS_NODATA,   /* the name exists but has no record of this type: for
                     dns_mx "no MX", so deliver to the A/AAAA of the domain */
    DNS_NULLMX,   /* dns_mx: a null MX (RFC 7505), the domain takes no mail: bounce */
    DNS_NXDOMAIN, /* the name does not exist, or is not a valid name: permanent */
    DNS_TEMPFAIL, /* SERVFAIL, REFUSED, timeout, network error, a malformed
                     answer, MX records with no usable host: try again later */
};

struct dns_result {
    enum dns_status status;
    const char *why;                     /* static text for the log, "" on DNS_OK */
    size_t n;                            /* entries in mx or addr */
    const struct dns_wire_mx *mx;        /* dns_mx: hosts in delivery order */
    const struct sockaddr_storage *addr; /* dns_addr: see dns_addr */
};

typedef void dns_cb(void *arg, const struct dns_result *r);

/*
 * Start a resolver. servers are "host:port" strings as dns.servers takes
 * them: "1.2.3.4:53", "[::1]:53", or a bare IPv4 or IPv6 address (port
 * 53); NULL/0: /etc/resolv.conf and /etc/hosts. nthreads 0 means
 * DNS_THREADS. Returns NULL when a server string is bad (or no pipe can
 * be made).
 */
struct dns *dns_new(uv_loop_t *loop, const char *const *servers, size_t nservers,
                    unsigned nthreads);
/*
 * Stop the threads (a lookup in flight is abandoned at once, except a
 * getaddrinfo call, which runs to its end), drop every pending request
 * without calling it back, and free the resolver from a uv_close callback:
 * the loop must run once more. Not from inside a dns callback. NULL: no-op.
 */
void dns_free(struct dns *d);

/* The MX hosts of domain (DNS_OK, DNS_NODATA, DNS_NULLMX, DNS_NXDOMAIN or
 * DNS_TEMPFAIL). Hosts are sorted by preference, equal preferences in
 * random order, duplicates dropped. */
struct dns_req *dns_mx(struct dns *d, const char *domain, dns_cb *cb, void *arg);
/* The IPv6 and IPv4 addresses of host, each with port set, duplicates
 * dropped: IPv6 first with dns.servers; in getaddrinfo's order (RFC 6724,
 * which knows what this host can reach) without. */
struct dns_req *dns_addr(struct dns *d, const char *host, uint16_t port, dns_cb *cb, void *arg);
/* The callback of req will not run. req is invalid afterwards. NULL: no-op. */
void dns_cancel(struct dns_req *req);

/* Pure helpers, exposed for tests; any thread. */

/* A dns.servers entry (forms as for dns_new). 0 or BH_EINVAL. */
int dns_parse_server(const char *s, struct sockaddr_storage *out);
/* The "nameserver" lines of a resolv.conf text, at most max, port 53;
 * scoped IPv6 addresses (with %) are skipped. Returns how many. */
size_t dns_parse_resolv_conf(const char *text, struct sockaddr_storage *out, size_t max);
/* host as an IP literal ("1.2.3.4", "::1", "[::1]") with port: 0, or
 * BH_EINVAL when host is not one. */
int dns_literal(const char *host, uint16_t port, struct sockaddr_storage *out);

#endif
