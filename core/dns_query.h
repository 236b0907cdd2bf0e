/*
 * dns_query: one question to a list of name servers, blocking, for the
 * resolver threads of core/dns. The query goes over UDP to each server in
 * turn (connected sockets, so only that server's datagrams are read, and an
 * ICMP "port unreachable" drops the server at once), DNS_QUERY_TRIES
 * rounds, one send every DNS_QUERY_TIMEOUT_MS / (servers * tries); the
 * first good answer from any server asked so far wins, until
 * DNS_QUERY_TIMEOUT_MS in all. An answer with TC set is asked again over
 * TCP from the same server. An answer that is not ours (wrong ID or
 * question) is ignored; a malformed one, SERVFAIL, REFUSED and the like
 * drop that server and move on to the next at once.
 *
 * Ownership: nothing is kept; the caller owns the servers and the answer.
 * Threads: any thread (the resolver threads); it blocks for up to
 * DNS_QUERY_TIMEOUT_MS, less when stop_fd becomes readable.
 */
#ifndef BH_CORE_DNS_QUERY_H
#define BH_CORE_DNS_QUERY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/dns_wire.h"

#define DNS_QUERY_TIMEOUT_MS 5000 /* one question, all servers */
#define DNS_QUERY_TRIES 2         /* sends to each server within that time */

/*
 * Ask servers[0..n) (n >= 1) for (name, qtype). stop_fd: a descriptor
 * that becomes readable when the lookup must be abandoned, or -1.
 * Returns 0 when ans holds an answer with rcode NOERROR or NXDOMAIN, else
 * BH_EAGAIN with *why (static text) saying what went wrong.
 */
int dns_query(const struct sockaddr_storage *servers, size_t n, int stop_fd, const char *name,
              uint16_t qtype, struct dns_wire_answer *ans, const char **why);

/* A random 64-bit number from getentropy (the clock if that fails);
 * the argument is unused. Fits dns_wire_rand_fn. */
uint64_t dns_query_rand(void *arg);

#endif
