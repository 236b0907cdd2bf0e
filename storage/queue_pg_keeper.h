/*
 * queue_pg_keeper: the thread beside a serving node's postgres queue handle
 * (SPEC §8). On a connection of its own it
 * - holds the node's advisory lock, so a second node of the same name is
 *   refused at start;
 * - renews this node's leases every third of the lease length (UPDATE ...
 *   SET lease_until = now() + the length WHERE lease_node = me), and tells
 *   the lease registry (queue_lease.h) which ones it confirmed; a failed
 *   renewal invalidates them all, so that the deliveries holding them
 *   abandon their sessions;
 * - LISTENs for other nodes' NOTIFYs (new mail, queue commands) and makes
 *   its wake-up descriptor (an eventfd) readable, for the event loop to
 *   watch (queue_wake_fd(), queue.h).
 *
 * Threads: start and stop from the thread that owns the queue handle; the
 * fd and clear functions from any thread.
 */
#ifndef BH_STORAGE_QUEUE_PG_KEEPER_H
#define BH_STORAGE_QUEUE_PG_KEEPER_H

#include <stddef.h>

struct queue_leases;
struct queue_pg_keeper;

/* Connect, take the node lock, LISTEN, start the thread. writer_pid is the
 * backend PID of the node's own writing connection, whose NOTIFYs are not
 * echoed. Returns 0 and *out, or a negative code with a message in err. */
int queue_pg_keeper_start(const char *dsn, const char *node, struct queue_leases *ls,
                          int lease_secs, int writer_pid, struct queue_pg_keeper **out, char *err,
                          size_t errlen);
/* Stop the thread, close its connection (releasing the node lock). NULL is fine. */
void queue_pg_keeper_stop(struct queue_pg_keeper *k);
/* The wake-up descriptor: readable after a NOTIFY from another connection. */
int queue_pg_keeper_fd(const struct queue_pg_keeper *k);
/* Make it unreadable again (non-blocking). */
void queue_pg_keeper_clear(struct queue_pg_keeper *k);

#endif
