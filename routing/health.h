/*
 * health: which destinations (one host:port each) are up (SPEC §4). A
 * destination is marked down after a refused or timed-out connection, a bad
 * greeting, a 421, or a TLS failure under required/verify; it is tried again
 * after retry_initial, doubling up to retry_max while it keeps failing, and
 * is up again after a good EHLO. Separately it remembers, per host, that an
 * opportunistic STARTTLS handshake failed, so that for an hour the host is
 * contacted in clear.
 *
 * Pure bookkeeping with the time passed in; no sockets. A struct health is
 * owned by the scheduler and used on the loop thread only. Keys are copied.
 */
#ifndef BH_ROUTING_HEALTH_H
#define BH_ROUTING_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

struct health;

struct health *health_new(void);
void health_free(struct health *h);

/* Up now? (never seen: up; down but its retry time has come: up, so that
 * one attempt may probe it). */
bool health_is_up(const struct health *h, const char *key, int64_t now);
/* When a down destination may be tried again; now when it is up. */
int64_t health_retry_at(const struct health *h, const char *key, int64_t now);
/* A failure: down until now + backoff (initial, doubling to max). */
void health_mark_down(struct health *h, const char *key, int64_t now, uint64_t initial,
                      uint64_t max);
/* A good EHLO (and handshake): up, backoff reset. */
void health_mark_up(struct health *h, const char *key);

/* Visit every destination seen so far: its key and whether it is up. */
typedef void health_visit_cb(const char *key, bool up, void *arg);
void health_foreach(const struct health *h, int64_t now, health_visit_cb *cb, void *arg);

/* Opportunistic TLS failed with this host: talk in clear until until. */
void health_set_clear(struct health *h, const char *host, int64_t until);
bool health_clear_hold(const struct health *h, const char *host, int64_t now);

#endif
