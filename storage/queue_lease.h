/*
 * queue_lease: which leases this process still holds, and until when by its
 * own monotonic clock (SPEC §8). A postgres queue handle that leases for a
 * serving node records every lease it takes here; its keeper thread
 * (queue_pg_keeper.h) extends the ones each renewal confirmed, and forgets
 * them all when a renewal fails. A delivery asks queue_entry_lease_ok()
 * (queue.h) before it sends a body, so a node that lost its lease (stalled,
 * cut off from the database) abandons the session instead of delivering
 * beside the node that took the entry over.
 *
 * Each lease carries a token: a lease taken again on the same entry (after
 * it expired) gets a new one, so an old session never sees the new lease as
 * its own.
 *
 * Threads: every function may be called from any thread (one mutex).
 */
#ifndef BH_STORAGE_QUEUE_LEASE_H
#define BH_STORAGE_QUEUE_LEASE_H

#include <stdbool.h>
#include <stdint.h>

struct queue_leases;

struct queue_leases *queue_leases_new(void);
void queue_leases_free(struct queue_leases *ls); /* NULL is fine */

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t queue_leases_now_ms(void);

/* Record a lease of entry valid until deadline_ms; returns its token. */
uint64_t queue_leases_add(struct queue_leases *ls, int64_t entry, int64_t deadline_ms);
/* Forget the lease of entry (settled or given back). */
void queue_leases_remove(struct queue_leases *ls, int64_t entry);
/* A renewal confirmed entry: valid until deadline_ms. Unknown entries are ignored. */
void queue_leases_renew(struct queue_leases *ls, int64_t entry, int64_t deadline_ms);
/* A renewal failed: no lease is valid any more. */
void queue_leases_invalidate(struct queue_leases *ls);
/* Is the lease (entry, token) still ours and not past its deadline? */
bool queue_leases_ok(struct queue_leases *ls, int64_t entry, uint64_t token);

#endif
