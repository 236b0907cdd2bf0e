#include "storage/queue_pg_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "storage/pgdb.h"
#include "storage/queue_pg.h"

#define BATCH 128 /* entries read per statement */

/* The state as shown: delivering > held > the stored one. */
#define SHOWN "(CASE WHEN e.state = 5 THEN 5 WHEN e.held THEN 4 ELSE e.state END)"

static const char list_sql[] =
    "SELECT " QUEUE_PG_ENTRY_COLS QUEUE_PG_ENTRY_FROM " WHERE e.eid > $1"
    " AND ($2::text IS NULL OR e.connector = $2) AND ($3::bigint IS NULL OR e.mid = $3)"
    " AND ($4::int IS NULL OR " SHOWN " = $4) AND ($5::boolean = false OR e.state <> 5)"
    " ORDER BY e.eid LIMIT $6";

static const char stats_sql[] =
    "SELECT e.connector, " SHOWN ", CASE"
    " WHEN $1 - m.received < 300 THEN 0 WHEN $1 - m.received < 600 THEN 1"
    " WHEN $1 - m.received < 1200 THEN 2 WHEN $1 - m.received < 2400 THEN 3"
    " WHEN $1 - m.received < 4800 THEN 4 WHEN $1 - m.received < 9600 THEN 5"
    " WHEN $1 - m.received < 19200 THEN 6 WHEN $1 - m.received < 38400 THEN 7"
    " WHEN $1 - m.received < 76800 THEN 8 ELSE 9 END, count(*), min(m.received)" QUEUE_PG_ENTRY_FROM
    " GROUP BY 1, 2, 3 ORDER BY e.connector COLLATE \"C\", 2, 3";

struct filt {
    const char *connector;
    enum queue_state state;
    char id[QUEUE_ID_LEN + 1];
    char mid[24]; /* "" until looked up */
};

struct batch {
    struct queue_entry e[BATCH];
    enum queue_state stored[BATCH];
    int64_t next[BATCH];
    size_t n;
};

static int
norm_filter(struct pgdb *d, const struct queue_admin_filter *f, struct filt *out)
{
    memset(out, 0, sizeof *out);
    out->state = QUEUE_STATE_ANY;
    if (f == NULL)
        return 0;
    out->connector = f->connector;
    out->state = f->state;
    if (f->state != QUEUE_STATE_ANY && queue_state_name(f->state) == NULL)
        return pgdb_fail_msg(d, BH_EINVAL, "bad state in filter");
    if (f->id != NULL && queue_id_normalise(f->id, out->id) != 0)
        return pgdb_fail_msg(d, BH_EINVAL, "malformed queue ID");
    return 0;
}

/* The message's row ID as text; BH_ENOENT when there is none. */
static int
message_mid(struct pgdb *d, const char *id, char *mid)
{
    const char *vals[1] = {id};
    PGresult *r;
    int rc = pgdb_query(d, "SELECT mid FROM messages WHERE qid = $1", 1, vals, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1)
        snprintf(mid, 24, "%s", PQgetvalue(r, 0, 0));
    else
        rc = pgdb_fail_msg(d, BH_ENOENT, "no such message");
    PQclear(r);
    return rc;
}

static void
batch_clear(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        queue_entry_fini(&b->e[i]);
    b->n = 0;
}

static int
fetch(struct pgdb *d, struct filt *f, int64_t after, bool skip_delivering, struct batch *b)
{
    if (f->id[0] != '\0' && f->mid[0] == '\0') {
        int rc = message_mid(d, f->id, f->mid);
        if (rc != 0)
            return rc;
    }
    char a[24], st[8], lim[8];
    snprintf(a, sizeof a, "%lld", (long long)after);
    snprintf(st, sizeof st, "%d", (int)f->state);
    snprintf(lim, sizeof lim, "%d", BATCH);
    const char *vals[6] = {a,
                           f->connector,
                           f->id[0] != '\0' ? f->mid : NULL,
                           f->state != QUEUE_STATE_ANY ? st : NULL,
                           skip_delivering ? "t" : "f",
                           lim};
    PGresult *r;
    int rc = pgdb_query(d, list_sql, 6, vals, &r);
    if (rc != 0)
        return rc;
    for (int i = 0; i < PQntuples(r) && b->n < BATCH; i++, b->n++)
        queue_pg_entry(r, i, &b->e[b->n], &b->stored[b->n], &b->next[b->n]);
    PQclear(r);
    return 0;
}

int
queue_pg_admin_list(struct queue_pg *p, const struct queue_admin_filter *f,
                    queue_admin_entry_cb *cb, void *arg)
{
    struct pgdb *d = queue_pg_db(p);
    struct filt nf;
    int rc = norm_filter(d, f, &nf);
    if (rc != 0)
        return rc;
    struct batch *b = xcalloc(1, sizeof *b);
    int64_t after = 0;
    bool more = true;
    while (rc == 0 && more) {
        rc = fetch(d, &nf, after, false, b);
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

/* Run text on message id's row ID in one transaction, then NOTIFY. */
static int
by_message(struct queue_pg *p, const char *id, const char *text, bool notify)
{
    struct pgdb *d = queue_pg_db(p);
    char norm[QUEUE_ID_LEN + 1], mid[24];
    if (queue_id_normalise(id, norm) != 0)
        return pgdb_fail_msg(d, BH_EINVAL, "malformed queue ID");
    int rc = pgdb_begin(d);
    if (rc != 0)
        return rc;
    rc = message_mid(d, norm, mid);
    if (rc == 0) {
        const char *vals[1] = {mid};
        PGresult *r;
        rc = pgdb_query(d, text, 1, vals, &r);
        PQclear(r);
    }
    if (rc == 0 && notify)
        rc = queue_pg_notify(p);
    return pgdb_end(d, rc);
}

int
queue_pg_admin_hold(struct queue_pg *p, const char *id, bool held)
{
    return by_message(p, id,
                      held ? "UPDATE entries SET held = true WHERE mid = $1"
                           : "UPDATE entries SET held = false WHERE mid = $1",
                      !held);
}

int
queue_pg_admin_delete(struct queue_pg *p, const char *id)
{
    return by_message(p, id, "DELETE FROM messages WHERE mid = $1", false);
}

/* ---- stats ---- */

int
queue_pg_admin_stats(struct queue_pg *p, int64_t now, queue_admin_stat_cb *cb, void *arg)
{
    struct pgdb *d = queue_pg_db(p);
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)now);
    const char *vals[1] = {t};
    PGresult *r;
    int rc = pgdb_query(d, stats_sql, 1, vals, &r);
    if (rc != 0)
        return rc;
    struct queue_admin_stat cur;
    bool have = false;
    for (int i = 0; rc == 0 && i <= PQntuples(r); i++) {
        bool end = i == PQntuples(r);
        const char *conn = end ? "" : PQgetvalue(r, i, 0);
        int state = end ? -1 : (int)pgdb_int(r, i, 1, 0);
        if (have && (end || strcmp(cur.connector, conn) != 0 || (int)cur.state != state)) {
            rc = cb(&cur, arg);
            have = false;
        }
        if (end || rc != 0)
            break;
        if (!have) {
            memset(&cur, 0, sizeof cur);
            cur.connector = conn;
            cur.state = (enum queue_state)state;
            cur.oldest_received = pgdb_int(r, i, 4, 0);
            have = true;
        }
        int64_t oldest = pgdb_int(r, i, 4, 0);
        if (oldest < cur.oldest_received)
            cur.oldest_received = oldest;
        int bucket = (int)pgdb_int(r, i, 2, 0);
        if (bucket >= 0 && bucket < QUEUE_ADMIN_AGE_BUCKETS)
            cur.count[bucket] += (uint64_t)pgdb_int(r, i, 3, 0);
    }
    PQclear(r);
    return rc;
}

/* ---- reroute ---- */

static int
apply(struct pgdb *d, int64_t entry, const struct queue_admin_change *c, enum queue_state stored,
      int64_t stored_next)
{
    bool held = c->state == QUEUE_HELD;
    enum queue_state state = held ? stored : c->state;
    int64_t next = held ? stored_next : c->next_attempt;
    bool timed = state == QUEUE_QUEUED || state == QUEUE_DEFERRED || state == QUEUE_SCHEDULED;
    bool ignore = c->ignore_schedule && (state == QUEUE_QUEUED || state == QUEUE_DEFERRED);
    if (c->connector == NULL || !(timed || state == QUEUE_TRIGGERED) ||
        (timed && next == QUEUE_NEVER))
        return pgdb_fail_msg(d, BH_EINVAL, "bad change to an entry");
    char e[24], st[8], nx[24];
    snprintf(e, sizeof e, "%lld", (long long)entry);
    snprintf(st, sizeof st, "%d", (int)state);
    snprintf(nx, sizeof nx, "%lld", (long long)next);
    const char *vals[6] = {e,
                           c->connector,
                           st,
                           state == QUEUE_TRIGGERED ? NULL : nx,
                           held ? "t" : "f",
                           ignore ? "t" : "f"};
    PGresult *r;
    int rc = pgdb_query(d,
                        "UPDATE entries SET connector = $2, state = $3, next_attempt = $4,"
                        " held = (held OR $5), ignore_schedule = $6 WHERE eid = $1"
                        " AND state <> 5",
                        6, vals, &r);
    PQclear(r);
    return rc;
}

static int
reroute_batch(struct pgdb *d, struct batch *b, queue_admin_reroute_cb *cb, void *arg, int *changed)
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
queue_pg_admin_reroute(struct queue_pg *p, const struct queue_admin_filter *f,
                       queue_admin_reroute_cb *cb, void *arg)
{
    struct pgdb *d = queue_pg_db(p);
    struct filt nf;
    int changed = 0;
    int rc = norm_filter(d, f, &nf);
    if (rc == 0)
        rc = pgdb_begin(d);
    if (rc != 0)
        return rc;
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
    if (rc == 0 && changed > 0)
        rc = queue_pg_notify(p);
    rc = pgdb_end(d, rc);
    return rc != 0 ? rc : changed;
}
