/*
 * atrn: the request side of ATRN (RFC 2645 On-Demand Mail Relay, SPEC §5).
 * Which domains an authenticated user may pull (atrn_targets: each one
 * among the user's domains in users_file and routed to a triggered
 * connector), the lease of the recipients that wait for them
 * (atrn_lease), and their grouping into delivery jobs (atrn_jobs). The
 * turnaround itself, bridgehead as the client over the same connection, is
 * core/atrn_client.
 *
 * Ownership: targets own their strings (atrn_targets_fini). Leased entries
 * belong to the caller until atrn_jobs takes them over; jobs are freed with
 * delivery_job_free (core/delivery.h) or handed to the settler.
 *
 * Threads: atrn_targets and atrn_jobs are pure (any thread; they only read
 * the config and router given). atrn_lease runs on the storage writer's
 * thread, with the read-write queue handle.
 */
#ifndef BH_CORE_ATRN_H
#define BH_CORE_ATRN_H

#include <stddef.h>

#include "connectors/domain.h"
#include "storage/queue.h"

struct config;
struct config_user;
struct router;
struct delivery_job;

/* Recipients leased at a time; more are leased when a batch is done. */
#define ATRN_BATCH 200

/* One domain asked for, and the triggered connector that serves it. */
struct atrn_target {
    char domain[DOMAIN_MAX + 1]; /* normalised */
    char *connector;
};

struct atrn_targets {
    struct atrn_target *v;
    size_t n;
};

/* The user called name in c, or NULL. */
const struct config_user *atrn_user(const struct config *c, const char *name);

/*
 * The targets of "ATRN arg" for user u: the comma-separated domains of arg,
 * or every domain of u when arg is "" (duplicates dropped). Returns 0 and
 * fills *out (which the caller set to zero), or the reply code with the rest
 * of the reply in text: 501 for a domain that is not a host name, 450 when
 * a domain is not among u's (u NULL: none are) or is not served by a
 * triggered connector, or when u has no domain at all.
 */
int atrn_targets(const struct router *r, const struct config_user *u, const char *arg,
                 struct atrn_targets *out, char *text, size_t len);
void atrn_targets_fini(struct atrn_targets *t);

/*
 * Storage thread: lease up to limit (at most ATRN_BATCH) recipients that
 * wait on a target's connector, for that target's domain: triggered, or
 * made due meanwhile (queued, deferred, scheduled: an ETRN or a flush that
 * failed), like ETRN; not held, not delivering. They become delivering, as the
 * scheduler's leases do, in one transaction, and are copied into
 * out[0..count) for the caller (queue_entry_fini, or atrn_jobs). Returns the
 * count or a negative code (nothing changed then).
 */
int atrn_lease(struct queue *q, const struct atrn_targets *t, size_t limit,
               struct queue_entry *out);

/*
 * Group leased entries e[0..n) into jobs, the recipients of one message on
 * one connector each, in lease order; the jobs take over the entries'
 * strings (e[] is left zeroed). Returns the list (linked by next), NULL
 * when n is 0.
 */
struct delivery_job *atrn_jobs(struct queue_entry *e, size_t n);

#endif
