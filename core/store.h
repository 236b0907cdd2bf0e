/*
 * store: the one storage writer (SPEC §5 "Durability", STYLE "Ownership").
 *
 * A thread of its own owns the read-write struct queue. The loop hands it
 * finished messages (store_commit) and other queue work (store_call); the
 * thread takes everything pending at once, commits every pending message in
 * ONE transaction with one fsync (group commit), runs the calls in order,
 * then wakes the loop with uv_async_send, and the loop runs each done
 * callback — which is where the server sends its final 250. Nothing is
 * answered before its commit is durable. A dedicated thread (not the libuv
 * pool) so that nothing else — DNS, crypt(3) — can hold a commit up.
 *
 * Ownership: store_new takes the queue handle; store_close stops the thread
 * after it has drained, closes the queue and frees the store from the
 * uv_async close callback (the loop must run once more). A message given to
 * store_commit is borrowed until its done callback runs.
 *
 * Threads: store_commit/store_call/store_close from the loop thread; the
 * run functions of store_call run on the storage thread; every done
 * callback runs on the loop thread.
 */
#ifndef BH_CORE_STORE_H
#define BH_CORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct queue;
struct queue_msg;
struct store;

/* Runs on the storage thread; returns the status handed to done. */
typedef int store_run_fn(struct queue *q, void *arg);
/* Runs on the loop thread. */
typedef void store_done_fn(void *arg, int status);

struct store *store_new(uv_loop_t *loop, struct queue *q);
/* Commit msgs[0..n) together (in the same transaction as everything else
 * pending); they are borrowed until done runs. */
void store_commit(struct store *s, const struct queue_msg *msgs, size_t n, store_done_fn *done,
                  void *arg);
void store_call(struct store *s, store_run_fn *run, store_done_fn *done, void *arg);
/* Finish pending work, stop the thread, close the queue; then free. */
void store_close(struct store *s);

/* Group-commit statistics (loop thread): commits made, messages in them,
 * and a histogram of commit latency in STORE_LATENCY_BUCKETS buckets whose
 * upper bounds are store_latency_bounds[] seconds (the last is +Inf). */
#define STORE_LATENCY_BUCKETS 12
extern const double store_latency_bounds[STORE_LATENCY_BUCKETS];
struct store_stats {
    uint64_t commits, messages, failures;
    uint64_t latency[STORE_LATENCY_BUCKETS];
    double latency_sum;
};
void store_get_stats(struct store *s, struct store_stats *out);

#endif
