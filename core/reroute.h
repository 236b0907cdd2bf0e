/*
 * reroute: after a reload, route every queued recipient that is not being
 * delivered again under the new config (SPEC §9). A recipient whose
 * connector changes is moved; one that is now unroutable or refused is
 * marked to bounce (its connector becomes REROUTE_BOUNCE_PREFIX plus the
 * DSN status, "!5.4.4" or "!5.7.1"), which the scheduler turns into a
 * bounce with a DSN as soon as it leases it. Held entries stay held.
 * A scheduled or triggered recipient past queue.lifetime is made due, and
 * the scheduler bounces it (4.4.7) without an attempt: the pass also runs
 * periodically for that (sched.c).
 *
 * Runs on the storage writer's thread (one transaction); the router is
 * immutable and may be used there. Loop thread starts it.
 */
#ifndef BH_CORE_REROUTE_H
#define BH_CORE_REROUTE_H

#include <stdbool.h>

#define REROUTE_BOUNCE_PREFIX '!'

struct store;
struct server_conf;
struct log;

/* done(arg) runs on the loop thread once the queue is rerouted. quiet: log
 * the pass only when it changed something. */
void reroute_start(struct store *store, struct server_conf *conf, struct log *log, bool quiet,
                   void (*done)(void *arg), void *arg);

#endif
