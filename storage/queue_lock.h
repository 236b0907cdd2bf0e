/*
 * queue_lock: the exclusive server lock of a queue (SPEC §9: a second
 * `serve` on the same queue refuses to start).
 *
 * The lock is flock(LOCK_EX) on "<queue path>.lock", which records the PID
 * of its holder. flock locks belong to an open file description, so the
 * lock is held until queue_lock_release() or the process ends (a crash
 * releases it), and a second acquire fails even inside the same process.
 * The descriptor is close-on-exec. Any thread may call these; the caller
 * owns the returned descriptor and gives it back to queue_lock_release().
 */
#ifndef BH_STORAGE_QUEUE_LOCK_H
#define BH_STORAGE_QUEUE_LOCK_H

#include <stddef.h>

/*
 * Take the lock of the queue at db_path, creating its folder if missing.
 * Returns the lock's descriptor (>= 0), or BH_EBUSY when another process
 * (or descriptor) holds it, or BH_EIO / BH_ENOSPC / BH_EEXIST; err then
 * holds a message such as "var/queue.db is in use by another bridgehead
 * serve (pid 1234)".
 */
int queue_lock_acquire(const char *db_path, char *err, size_t errlen);

/* Release the lock (close the descriptor). A negative fd does nothing. */
void queue_lock_release(int fd);

#endif
