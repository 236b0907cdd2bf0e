#include "core/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/util.h"
#include "storage/queue.h"

const double store_latency_bounds[STORE_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 1e300,
};

struct store_job {
    struct store_job *next;
    const struct queue_msg *msgs; /* a commit of nmsgs, or NULL for a call */
    size_t nmsgs;
    store_run_fn *run;
    store_done_fn *done;
    void *arg;
    int status;
};

struct store {
    uv_async_t async; /* wakes the loop when jobs are done */
    struct queue *q;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct store_job *todo, **todo_tail; /* guarded by mu */
    struct store_job *done, **done_tail; /* guarded by mu */
    bool stopping;                       /* guarded by mu */
    struct store_stats stats;            /* guarded by mu */
};

static double
now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
record_commit(struct store *s, size_t n, double secs, int rc)
{
    pthread_mutex_lock(&s->mu);
    s->stats.commits++;
    s->stats.messages += n;
    if (rc < 0)
        s->stats.failures++;
    int b = 0;
    while (b < STORE_LATENCY_BUCKETS - 1 && secs > store_latency_bounds[b])
        b++;
    s->stats.latency[b]++;
    s->stats.latency_sum += secs;
    pthread_mutex_unlock(&s->mu);
}

/* Commit every message of the batch's commit jobs in one transaction. If
 * the group fails, try each job alone, so that one bad message cannot fail
 * the others. */
static void
commit_batch(struct store *s, struct store_job **jobs, size_t njobs)
{
    size_t n = 0;
    for (size_t i = 0; i < njobs; i++)
        n += jobs[i]->nmsgs;
    if (n == 0)
        return;
    struct queue_msg *msgs = xmalloc(n * sizeof *msgs);
    n = 0;
    for (size_t i = 0; i < njobs; i++)
        for (size_t k = 0; k < jobs[i]->nmsgs; k++)
            msgs[n++] = jobs[i]->msgs[k];
    double t0 = now_seconds();
    int rc = queue_commit(s->q, msgs, n);
    record_commit(s, n, now_seconds() - t0, rc);
    free(msgs);
    for (size_t i = 0; i < njobs; i++)
        jobs[i]->status = rc;
    if (rc < 0 && njobs > 1) {
        for (size_t i = 0; i < njobs; i++) {
            t0 = now_seconds();
            jobs[i]->status = queue_commit(s->q, jobs[i]->msgs, jobs[i]->nmsgs);
            record_commit(s, jobs[i]->nmsgs, now_seconds() - t0, jobs[i]->status);
        }
    }
}

static void
run_batch(struct store *s, struct store_job *list)
{
    size_t n = 0, cap = 16;
    struct store_job **commits = xmalloc(cap * sizeof *commits);
    for (struct store_job *j = list; j; j = j->next) {
        if (j->msgs == NULL)
            continue;
        if (n == cap)
            commits = xrealloc(commits, (cap *= 2) * sizeof *commits);
        commits[n++] = j;
    }
    commit_batch(s, commits, n);
    free(commits);
    for (struct store_job *j = list; j; j = j->next)
        if (j->msgs == NULL)
            j->status = j->run ? j->run(s->q, j->arg) : 0;
}

static void *
writer_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->todo == NULL && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->todo == NULL)
            break;
        struct store_job *list = s->todo, **tail = s->todo_tail;
        s->todo = NULL;
        s->todo_tail = &s->todo;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, list);
        pthread_mutex_lock(&s->mu);
        *s->done_tail = list;
        s->done_tail = tail;
        uv_async_send(&s->async);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Loop thread: run the done callbacks of finished jobs, in order. */
static void
on_async(uv_async_t *a)
{
    struct store *s = a->data;
    pthread_mutex_lock(&s->mu);
    struct store_job *list = s->done;
    s->done = NULL;
    s->done_tail = &s->done;
    pthread_mutex_unlock(&s->mu);
    while (list) {
        struct store_job *j = list;
        list = j->next;
        if (j->done)
            j->done(j->arg, j->status);
        free(j);
    }
}

struct store *
store_new(uv_loop_t *loop, struct queue *q)
{
    struct store *s = xcalloc(1, sizeof *s);
    s->q = q;
    s->todo_tail = &s->todo;
    s->done_tail = &s->done;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    uv_async_init(loop, &s->async, on_async);
    s->async.data = s;
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0)
        abort();
    return s;
}

static void
submit(struct store *s, struct store_job *j)
{
    pthread_mutex_lock(&s->mu);
    *s->todo_tail = j;
    s->todo_tail = &j->next;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void
store_commit(struct store *s, const struct queue_msg *msgs, size_t n, store_done_fn *done,
             void *arg)
{
    struct store_job *j = xcalloc(1, sizeof *j);
    j->msgs = msgs;
    j->nmsgs = n;
    j->done = done;
    j->arg = arg;
    submit(s, j);
}

void
store_call(struct store *s, store_run_fn *run, store_done_fn *done, void *arg)
{
    struct store_job *j = xcalloc(1, sizeof *j);
    j->run = run;
    j->done = done;
    j->arg = arg;
    submit(s, j);
}

static void
on_closed(uv_handle_t *h)
{
    struct store *s = h->data;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void
store_close(struct store *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    on_async(&s->async); /* the last done callbacks */
    queue_close(s->q);
    s->q = NULL;
    uv_close((uv_handle_t *)&s->async, on_closed);
}

void
store_get_stats(struct store *s, struct store_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}
