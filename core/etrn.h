/*
 * etrn: remote queue starting (RFC 1985, SPEC §4). "ETRN D" (or "@D" for D
 * and its subdomains) from a relay client makes the recipients of D that
 * wait on a triggered connector (triggered, scheduled or deferred) due now,
 * for an attempt that ignores the connector's schedule, on the storage
 * writer's thread, and answers 250 (queuing started), 251 (nothing
 * waiting), 459 (D is not served by a triggered connector, or the client
 * may not ask), 458 (storage error) or 501 (a "#queue" argument or a bad
 * domain).
 *
 * Loop thread only. The answer comes through cb, at once or later; the
 * caller keeps owner alive until it has.
 */
#ifndef BH_CORE_ETRN_H
#define BH_CORE_ETRN_H

#include <stdbool.h>

struct server_env;
struct server_conf;

typedef void etrn_cb(void *owner, int code, const char *text);

void etrn_start(struct server_env *env, struct server_conf *conf, bool allowed, const char *arg,
                etrn_cb *cb, void *owner);

#endif
