/*
 * queue_spool: the body of a message while it arrives (SPEC §5 "Durability").
 *
 * The first QUEUE_SPOOL_MEM_MAX bytes stay in memory; a larger body moves to
 * a temporary file "<dir>/spool-XXXXXX" (mkstemp) in the queue's folder, so
 * that queue_commit() can copy it into the queue without holding it all in
 * memory. The file is unlinked as soon as it is created and lives on only
 * through its descriptor: a crash leaves nothing behind but the rare file
 * caught between the two calls, which queue_spool_cleanup() removes at start.
 * Once on disk, writes go through a QUEUE_SPOOL_MEM_MAX buffer, so most
 * queue_spool_write() calls are a memcpy and one in 16 a write(2).
 *
 * Ownership: the creator owns a spool and frees it with queue_spool_free(),
 * after queue_commit() has copied it or when the transaction is dropped.
 * Threads: a spool is used by one thread at a time. In the server it is
 * filled on the event-loop thread (a blocking write(2) to a local file every
 * 64 KiB: accepted for now; moving it to the thread pool is a later change)
 * and handed to the storage writer, which reads it, before the loop frees it.
 */
#ifndef BH_STORAGE_QUEUE_SPOOL_H
#define BH_STORAGE_QUEUE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_SPOOL_MEM_MAX (64 * 1024)

struct queue_spool;

/* A new, empty spool whose file (if it needs one) goes into dir (copied). */
struct queue_spool *queue_spool_new(const char *dir);

/* Frees the spool and closes (so removes) its file. NULL does nothing. */
void queue_spool_free(struct queue_spool *sp);

/*
 * Append len bytes. Returns 0, BH_ENOSPC (disk or quota full) or BH_EIO.
 * After an error the spool is unusable: every later write returns the same
 * error, and the caller drops the message (451 4.3.0).
 */
int queue_spool_write(struct queue_spool *sp, const void *buf, size_t len);

/* Bytes written so far. */
uint64_t queue_spool_size(const struct queue_spool *sp);

/* True once the body has moved to a file. */
bool queue_spool_on_disk(const struct queue_spool *sp);

/*
 * Copy up to len bytes from offset off into buf; *got is the number copied
 * (0 at the end). Returns 0, the spool's earlier write error, or BH_EIO.
 */
int queue_spool_read(struct queue_spool *sp, uint64_t off, void *buf, size_t len, size_t *got);

/*
 * Remove the files named "spool-*" left in dir by an earlier process. Call
 * it at start, holding the server lock (queue_lock.h), before any spool is
 * made. Returns the number removed, or BH_EIO when dir cannot be read (a
 * missing dir counts as empty).
 */
int queue_spool_cleanup(const char *dir);

#endif
