#include "storage/queue_admin.h"

#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "storage/qdb.h"
#include "storage/queue_pg_admin.h"
#include "storage/queue_sql.h"

#define BATCH 128 /* entries read per statement, so no read lasts long */

/* A filter with its ID normalised and looked up; id "" and state
 * QUEUE_STATE_ANY match all. */
struct filt {
    const char *connector;
    enum queue_state state;
    char id[QUEUE_ID_LEN + 1];
    long long mid; /* the message's rowid, once looked up */
};

struct batch {
    struct queue_entry e[BATCH];
    enum queue_state stored[BATCH]; /* the state beneath the held flag */
    int64_t next[BATCH];            /* the stored next_attempt */
    size_t n;
};

static const char *const bucket_names[QUEUE_ADMIN_AGE_BUCKETS] = {
    "0-5m",    "5-10m",    "10-20m",   "20-40m",    "40-80m",
    "80-160m", "160-320m", "320-640m", "640-1280m", "1280m+"};

const char *
queue_admin_age_bucket_name(int bucket)
{
    return (bucket >= 0 && bucket < QUEUE_ADMIN_AGE_BUCKETS) ? bucket_names[bucket] : NULL;
}

static struct qdb *
db_of(struct queue *q)
{
    return queue_db(q);
}

/* The rowid of message id; BH_ENOENT when there is none. */
static int
message_mid(struct qdb *d, const char *id, long long *mid)
{
    sqlite3_stmt *s;
    int rc = qdb_stmt(d, QUEUE_SQL_MID, &s);
    if (rc != 0)
        return rc;
    queue_sql_bind_text(s, 1, id);
    rc = qdb_int(d, s, mid);
    if (rc == BH_ENOENT)
        qdb_fail_msg(d, rc, "no such message");
    return rc;
}

static int
norm_filter(struct qdb *d, const struct queue_admin_filter *f, struct filt *out)
{
    memset(out, 0, sizeof *out);
    out->state = QUEUE_STATE_ANY;
    if (f == NULL)
        return 0;
    out->connector = f->connector;
    out->state = f->state;
    if (f->state != QUEUE_STATE_ANY && queue_state_name(f->state) == NULL)
        return qdb_fail_msg(d, BH_EINVAL, "bad state in filter");
    if (f->id != NULL && queue_id_normalise(f->id, out->id) != 0)
        return qdb_fail_msg(d, BH_EINVAL, "malformed queue ID");
    return 0;
}

static void
batch_clear(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        queue_entry_fini(&b->e[i]);
    b->n = 0;
}

/* Look the filter's message up (in the caller's transaction). */
static int
filter_lookup(struct qdb *d, struct filt *f)
{
    return f->id[0] != '\0' ? message_mid(d, f->id, &f->mid) : 0;
}

/* Read the next batch of entries after eid `after` (in the caller's
 * transaction). */
static int
fetch(struct qdb *d, const struct filt *f, int64_t after, bool skip_delivering, struct batch *b)
{
    sqlite3_stmt *s;
    bool by_msg = f->id[0] != '\0';
    int rc = qdb_stmt(d, by_msg ? QUEUE_SQL_LIST_MSG : QUEUE_SQL_LIST, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, after);
    queue_sql_bind_text(s, 2, f->connector);
    if (by_msg)
        sqlite3_bind_int64(s, 3, f->mid);
    if (f->state != QUEUE_STATE_ANY)
        sqlite3_bind_int(s, 4, (int)f->state);
    sqlite3_bind_int(s, 5, skip_delivering);
    sqlite3_bind_int(s, 6, BATCH);
    while (b->n < BATCH && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        queue_sql_entry(s, &b->e[b->n], &b->stored[b->n], &b->next[b->n]);
        b->n++;
    }
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : qdb_fail(d, rc);
    qdb_done(s);
    return rc;
}

/* One batch in its own short read transaction. */
static int
fetch_short(struct qdb *d, struct filt *f, int64_t after, struct batch *b)
{
    int rc = qdb_begin(d, false);
    if (rc != 0)
        return rc;
    if (after == 0)
        rc = filter_lookup(d, f);
    if (rc == 0)
        rc = fetch(d, f, after, false, b);
    return qdb_end(d, rc);
}

int
queue_admin_list(struct queue *q, const struct queue_admin_filter *f, queue_admin_entry_cb *cb,
                 void *arg)
{
    if (queue_pg_of(q) != NULL)
        return queue_pg_admin_list(queue_pg_of(q), f, cb, arg);
    struct qdb *d = db_of(q);
    struct filt nf;
    int rc = norm_filter(d, f, &nf);
    if (rc != 0)
        return rc;
    struct batch *b = xcalloc(1, sizeof *b);
    int64_t after = 0;
    bool more = true;
    while (rc == 0 && more) {
        rc = fetch_short(d, &nf, after, b);
        for (size_t i = 0; rc == 0 && i < b->n; i++)
            rc = cb(&b->e[i], arg);
        more = b->n == BATCH;
        if (b->n > 0)
            after = b->e[b->n - 1].entry;
        batch_clear(b);
    }
    free(b);
    return rc;
}

/* Set the held flag of all entries of a message, or delete it. */
static int
by_message(struct queue *q, const char *id, enum queue_sql_st which, int held)
{
    struct qdb *d = db_of(q);
    char norm[QUEUE_ID_LEN + 1];
    long long mid = 0;
    sqlite3_stmt *s;
    if (queue_id_normalise(id, norm) != 0)
        return qdb_fail_msg(d, BH_EINVAL, "malformed queue ID");
    int rc = qdb_begin(d, true);
    if (rc != 0)
        return rc;
    rc = message_mid(d, norm, &mid);
    if (rc == 0)
        rc = qdb_stmt(d, which, &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, mid);
        if (which == QUEUE_SQL_HOLD_MSG)
            sqlite3_bind_int(s, 2, held);
        rc = qdb_run(d, s);
    }
    return qdb_end(d, rc);
}

int
queue_admin_hold(struct queue *q, const char *id)
{
    if (queue_pg_of(q) != NULL)
        return queue_pg_admin_hold(queue_pg_of(q), id, true);
    return by_message(q, id, QUEUE_SQL_HOLD_MSG, 1);
}

int
queue_admin_release(struct queue *q, const char *id)
{
    if (queue_pg_of(q) != NULL)
        return queue_pg_admin_hold(queue_pg_of(q), id, false);
    return by_message(q, id, QUEUE_SQL_HOLD_MSG, 0);
}

int
queue_admin_delete(struct queue *q, const char *id)
{
    if (queue_pg_of(q) != NULL)
        return queue_pg_admin_delete(queue_pg_of(q), id);
    return by_message(q, id, QUEUE_SQL_DEL_MSG, 0);
}

/* ---- stats ---- */

struct stats {
    struct queue_admin_stat *v;
    size_t n, cap;
};

/* Add one (connector, state, bucket, count, oldest) row; rows come sorted. */
static void
stats_add(struct stats *st, const char *connector, int state, int bucket, uint64_t count,
          int64_t oldest)
{
    struct queue_admin_stat *last = st->n > 0 ? &st->v[st->n - 1] : NULL;
    if (last == NULL || strcmp(last->connector, connector) != 0 || (int)last->state != state) {
        if (st->n == st->cap) {
            st->cap = st->cap ? 2 * st->cap : 16;
            st->v = xrealloc(st->v, st->cap * sizeof *st->v);
        }
        last = &st->v[st->n++];
        memset(last, 0, sizeof *last);
        last->connector = xstrdup(connector);
        last->state = (enum queue_state)state;
        last->oldest_received = oldest;
    }
    if (bucket >= 0 && bucket < QUEUE_ADMIN_AGE_BUCKETS)
        last->count[bucket] += count;
    if (oldest < last->oldest_received)
        last->oldest_received = oldest;
}

static int
stats_read(struct qdb *d, int64_t now, struct stats *st)
{
    sqlite3_stmt *s;
    int rc = qdb_begin(d, false);
    if (rc != 0)
        return rc;
    rc = qdb_stmt(d, QUEUE_SQL_STATS, &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, now);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const unsigned char *c = sqlite3_column_text(s, 0);
            stats_add(st, c != NULL ? (const char *)c : "", sqlite3_column_int(s, 1),
                      sqlite3_column_int(s, 2), (uint64_t)sqlite3_column_int64(s, 3),
                      sqlite3_column_int64(s, 4));
        }
        rc = rc == SQLITE_DONE ? 0 : qdb_fail(d, rc);
        qdb_done(s);
    }
    return qdb_end(d, rc);
}

int
queue_admin_stats(struct queue *q, int64_t now, queue_admin_stat_cb *cb, void *arg)
{
    struct stats st = {0};
    if (queue_pg_of(q) != NULL)
        return queue_pg_admin_stats(queue_pg_of(q), now, cb, arg);
    int rc = stats_read(db_of(q), now, &st);
    for (size_t i = 0; rc == 0 && i < st.n; i++)
        rc = cb(&st.v[i], arg);
    for (size_t i = 0; i < st.n; i++)
        free((char *)st.v[i].connector);
    free(st.v);
    return rc;
}

/* ---- reroute ---- */

static int
apply(struct qdb *d, int64_t entry, const struct queue_admin_change *c, enum queue_state stored,
      int64_t stored_next)
{
    bool held = c->state == QUEUE_HELD;
    enum queue_state state = held ? stored : c->state;
    int64_t next = held ? stored_next : c->next_attempt;
    bool timed = state == QUEUE_QUEUED || state == QUEUE_DEFERRED || state == QUEUE_SCHEDULED;
    bool ignore = c->ignore_schedule && (state == QUEUE_QUEUED || state == QUEUE_DEFERRED);
    if (c->connector == NULL || !(timed || state == QUEUE_TRIGGERED) ||
        (timed && next == QUEUE_NEVER))
        return qdb_fail_msg(d, BH_EINVAL, "bad change to an entry");
    sqlite3_stmt *s;
    int rc = qdb_stmt(d, QUEUE_SQL_CHANGE, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, entry);
    queue_sql_bind_text(s, 2, c->connector);
    sqlite3_bind_int(s, 3, (int)state);
    queue_sql_bind_time(s, 4, state == QUEUE_TRIGGERED ? QUEUE_NEVER : next);
    sqlite3_bind_int(s, 5, held);
    sqlite3_bind_int(s, 6, ignore);
    return qdb_run(d, s);
}

static int
reroute_batch(struct qdb *d, struct batch *b, queue_admin_reroute_cb *cb, void *arg, int *changed)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        struct queue_admin_change c = {b->e[i].connector, b->stored[i], b->next[i],
                                       b->e[i].ignore_schedule};
        if (!cb(&b->e[i], &c, arg))
            continue;
        rc = apply(d, b->e[i].entry, &c, b->stored[i], b->next[i]);
        if (rc == 0)
            (*changed)++;
    }
    return rc;
}

int
queue_admin_reroute(struct queue *q, const struct queue_admin_filter *f, queue_admin_reroute_cb *cb,
                    void *arg)
{
    if (queue_pg_of(q) != NULL)
        return queue_pg_admin_reroute(queue_pg_of(q), f, cb, arg);
    struct qdb *d = db_of(q);
    struct filt nf;
    int changed = 0;
    int rc = norm_filter(d, f, &nf);
    if (rc == 0)
        rc = qdb_begin(d, true);
    if (rc != 0)
        return rc;
    rc = filter_lookup(d, &nf);
    struct batch *b = xcalloc(1, sizeof *b);
    int64_t after = 0;
    bool more = true;
    while (rc == 0 && more) {
        rc = fetch(d, &nf, after, true, b);
        if (rc == 0)
            rc = reroute_batch(d, b, cb, arg, &changed);
        more = b->n == BATCH;
        if (b->n > 0)
            after = b->e[b->n - 1].entry;
        batch_clear(b);
    }
    free(b);
    rc = qdb_end(d, rc);
    return rc != 0 ? rc : changed;
}
