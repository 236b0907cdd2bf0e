/*
 * qwake: the event loop's watch on the queue's wake-up descriptor (SPEC §8,
 * queue_wake_fd() in storage/queue.h). When another node adds work (new
 * mail, a queue command) the descriptor becomes readable; qwake clears it
 * and calls its callback, which kicks the scheduler. With SQLite the
 * descriptor is never signalled and qwake costs nothing.
 *
 * Ownership: qwake_new borrows the queue only to read its descriptor (the
 * descriptor must stay open until qwake_close); qwake_close stops the watch
 * and frees the struct in the handle's close callback. Loop thread only.
 */
#ifndef BH_CORE_QWAKE_H
#define BH_CORE_QWAKE_H

#include <uv.h>

struct queue;
struct qwake;

typedef void qwake_cb(void *arg);

/* Watch q's wake-up fd; NULL when it has none (then nothing is watched). */
struct qwake *qwake_new(uv_loop_t *loop, struct queue *q, qwake_cb *cb, void *arg);
/* Stop watching (before the queue is closed). NULL is fine. */
void qwake_close(struct qwake *w);

#endif
