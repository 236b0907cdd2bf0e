#include "storage/queue_pg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "storage/pg_schema.h"
#include "storage/pgdb.h"
#include "storage/queue_lease.h"
#include "storage/queue_pg_keeper.h"

#define LEASE_SECONDS 60

enum st {
    ST_INS_MSG,
    ST_INS_ENTRY,
    ST_LEASE,
    ST_NEXT,
    ST_REMOVE,
    ST_DEFER,
    ST_SET_STATE,
    ST_SET_HELD,
    ST_WARNED,
    ST_RECOVER,
    ST_BODY,
    ST_BODY_AT,
    ST_COUNT
};

/* Entries this node may lease: not held, due (or their lease expired), of
 * the connector asked for ($3, NULL: any) and not of a connector whose
 * source_nodes leave this node out ($4). */
#define MAY_LEASE                                                                                  \
    " NOT e.held AND ((e.state < 3 AND e.next_attempt <= $1)"                                      \
    " OR (e.state = 5 AND e.lease_until < now()))"                                                 \
    " AND ($3::text IS NULL OR e.connector = $3) AND NOT (e.connector = ANY ($4::text[]))"
/* A delivering entry changes only for its lease holder. */
#define HOLDER "(state <> 5 OR lease_node IS NOT DISTINCT FROM $%d)"

static const char *const sql[ST_COUNT] = {
    [ST_INS_MSG] = "WITH m AS (INSERT INTO messages (qid, sender, envid, ret, priority, system,"
                   " size, received) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING mid),"
                   " b AS (INSERT INTO bodies (mid, data) SELECT mid, $9::bytea FROM m)"
                   " SELECT mid FROM m",
    [ST_INS_ENTRY] = "INSERT INTO entries (mid, rcpt, connector, state, held, next_attempt,"
                     " notify, orcpt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    [ST_LEASE] = "WITH due AS (SELECT e.eid" QUEUE_PG_ENTRY_FROM " WHERE" MAY_LEASE
                 " ORDER BY m.priority DESC, m.received, e.eid LIMIT $2"
                 " FOR UPDATE OF e SKIP LOCKED)"
                 " UPDATE entries e SET state = 5, lease_node = $5,"
                 " lease_until = now() + make_interval(secs => $6)"
                 " FROM due, messages m WHERE e.eid = due.eid AND m.mid = e.mid"
                 " RETURNING " QUEUE_PG_ENTRY_COLS,
    /* The earliest due time, counting the expiry of other nodes' leases
     * (a second late, so that a wake-up finds them expired). */
    [ST_NEXT] = "SELECT least((SELECT min(next_attempt) FROM entries e WHERE e.state < 3"
                " AND NOT e.held AND ($1::text IS NULL OR e.connector = $1)"
                " AND NOT (e.connector = ANY ($2::text[]))),"
                " (SELECT ceil(extract(epoch FROM min(lease_until)))::bigint + 1 FROM entries e"
                " WHERE e.state = 5 AND NOT e.held AND e.lease_node IS DISTINCT FROM $3"
                " AND ($1::text IS NULL OR e.connector = $1)"
                " AND NOT (e.connector = ANY ($2::text[]))))",
    [ST_REMOVE] = "SELECT bh_remove_entry($1, $2)",
    [ST_DEFER] = "UPDATE entries SET state = 1, next_attempt = $2,"
                 " last_reply = coalesce($3, last_reply), attempts = attempts + $4,"
                 " ignore_schedule = (ignore_schedule AND $4 = 0), lease_node = NULL, lease_until "
                 "= NULL WHERE eid = $1 AND (state <> 5 OR"
                 " lease_node IS NOT DISTINCT FROM $5)",
    [ST_SET_STATE] = "UPDATE entries SET state = $2, next_attempt = $3, lease_node = NULL,"
                     " ignore_schedule = (ignore_schedule AND $2 < 2),"
                     " lease_until = NULL WHERE eid = $1 AND (state <> 5 OR"
                     " lease_node IS NOT DISTINCT FROM $4)",
    [ST_SET_HELD] = "UPDATE entries SET held = true WHERE eid = $1 AND (state <> 5 OR"
                    " lease_node IS NOT DISTINCT FROM $2)",
    [ST_WARNED] = "UPDATE messages SET warned = true WHERE qid = $1 AND NOT warned",
    [ST_RECOVER] = "UPDATE entries SET state = 0, lease_node = NULL, lease_until = NULL"
                   " WHERE state = 5 AND lease_node = $1",
    [ST_BODY] = "SELECT b.data FROM messages m JOIN bodies b ON b.mid = m.mid WHERE m.qid = $1",
    [ST_BODY_AT] = "SELECT substring(b.data FROM $2::int FOR $3::int), octet_length(b.data)"
                   " FROM messages m JOIN bodies b ON b.mid = m.mid WHERE m.qid = $1",
};

struct queue_pg {
    struct pgdb d;
    char *node;
    char *excluded; /* a text[] literal of the connectors this node may not deliver for */
    int lease_secs;
    struct queue_leases *leases; /* QUEUE_SERVE only */
    struct queue_pg_keeper *keeper;
};

int
queue_pg_lease_seconds(void)
{
    const char *v = getenv("BRIDGEHEAD_TEST_LEASE_SECONDS");
    long n = v != NULL ? strtol(v, NULL, 10) : 0;
    return n >= 3 && n <= 3600 ? (int)n : LEASE_SECONDS;
}

/* ---- open, close ---- */

int
queue_pg_open(const char *dsn, const char *node, unsigned flags, struct queue_pg **out, char *err,
              size_t errlen)
{
    *out = NULL;
    if (dsn == NULL || node == NULL || node[0] == '\0') {
        snprintf(err, errlen, "postgres: a dsn and a node name are needed");
        return BH_EINVAL;
    }
    struct queue_pg *p = xcalloc(1, sizeof *p);
    p->node = xstrdup(node);
    p->excluded = xstrdup("{}");
    p->lease_secs = queue_pg_lease_seconds();
    int rc = pgdb_open(&p->d, dsn, (flags & QUEUE_READONLY) != 0, sql, ST_COUNT, err, errlen);
    if (rc == 0 && (flags & QUEUE_SERVE) != 0) {
        p->leases = queue_leases_new();
        rc = queue_pg_keeper_start(dsn, node, p->leases, p->lease_secs, PQbackendPID(p->d.conn),
                                   &p->keeper, err, errlen);
    }
    if (rc != 0) {
        queue_pg_close(p);
        return rc;
    }
    *out = p;
    return 0;
}

void
queue_pg_close(struct queue_pg *p)
{
    if (p == NULL)
        return;
    queue_pg_keeper_stop(p->keeper);
    pgdb_close(&p->d);
    queue_leases_free(p->leases);
    free(p->node);
    free(p->excluded);
    free(p);
}

const char *
queue_pg_last_error(const struct queue_pg *p)
{
    return p->d.err;
}

struct pgdb *
queue_pg_db(struct queue_pg *p)
{
    return &p->d;
}

uint64_t
queue_pg_round_trips(const struct queue_pg *p)
{
    return p->d.round_trips;
}

const char *
queue_pg_node(const struct queue_pg *p)
{
    return p->node;
}

int
queue_pg_txn_begin(struct queue_pg *p)
{
    return pgdb_txn_begin(&p->d);
}

int
queue_pg_txn_commit(struct queue_pg *p)
{
    return pgdb_txn_commit(&p->d);
}

void
queue_pg_txn_rollback(struct queue_pg *p)
{
    pgdb_txn_rollback(&p->d);
}

void
queue_pg_set_durable(struct queue_pg *p, bool durable)
{
    /* No round trip: the next transaction of our own says it (pgdb_begin). */
    p->d.relaxed = !durable && !p->d.readonly;
}

int
queue_pg_set_excluded(struct queue_pg *p, const char *const *connectors, size_t n)
{
    struct util_buf b = {0};
    util_buf_puts(&b, "{");
    for (size_t i = 0; i < n; i++) {
        util_buf_puts(&b, i > 0 ? ",\"" : "\"");
        for (const char *c = connectors[i]; *c != '\0'; c++)
            util_buf_printf(&b, "%s%c", (*c == '"' || *c == '\\') ? "\\" : "", *c);
        util_buf_puts(&b, "\"");
    }
    util_buf_puts(&b, "}");
    free(p->excluded);
    p->excluded = xstrdup(b.p);
    util_buf_fini(&b);
    return 0;
}

int
queue_pg_wake_fd(const struct queue_pg *p)
{
    return p->keeper != NULL ? queue_pg_keeper_fd(p->keeper) : -1;
}

void
queue_pg_wake_clear(struct queue_pg *p)
{
    if (p->keeper != NULL)
        queue_pg_keeper_clear(p->keeper);
}

int
queue_pg_notify(struct queue_pg *p)
{
    return pgdb_exec(&p->d, "NOTIFY " PG_CHANNEL);
}

/* ---- entries ---- */

static char *
col_str(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

void
queue_pg_entry(PGresult *r, int row, struct queue_entry *e, enum queue_state *stored,
               int64_t *stored_next)
{
    memset(e, 0, sizeof *e);
    e->entry = pgdb_int(r, row, 0, 0);
    snprintf(e->id, sizeof e->id, "%s", PQgetvalue(r, row, 1));
    e->rcpt = col_str(r, row, 2);
    e->sender = col_str(r, row, 3);
    e->connector = col_str(r, row, 4);
    e->envid = col_str(r, row, 5);
    e->orcpt = col_str(r, row, 6);
    e->last_reply = col_str(r, row, 7);
    int state = (int)pgdb_int(r, row, 8, 0);
    e->held = pgdb_bool(r, row, 9);
    e->attempts = (unsigned)pgdb_int(r, row, 10, 0);
    e->notify = (unsigned)pgdb_int(r, row, 11, 0);
    e->ret = (enum queue_ret)pgdb_int(r, row, 12, 0);
    e->priority = (int)pgdb_int(r, row, 13, 1);
    e->system = pgdb_bool(r, row, 14);
    e->warned = pgdb_bool(r, row, 15);
    e->size = (uint64_t)pgdb_int(r, row, 16, 0);
    e->received = pgdb_int(r, row, 17, 0);
    int64_t next = pgdb_int(r, row, 18, QUEUE_NEVER);
    e->node = state == QUEUE_DELIVERING ? col_str(r, row, 19) : NULL;
    e->ignore_schedule = pgdb_bool(r, row, 20);
    e->state = state == QUEUE_DELIVERING ? QUEUE_DELIVERING
               : e->held                 ? QUEUE_HELD
                                         : (enum queue_state)state;
    e->next_attempt = (e->state == QUEUE_HELD || e->state == QUEUE_TRIGGERED) ? QUEUE_NEVER : next;
    if (stored != NULL)
        *stored = (enum queue_state)state;
    if (stored_next != NULL)
        *stored_next = next;
}

/* ---- commit ---- */

/* The text of the header and the spooled body, one buffer. */
static int
message_text(struct queue_pg *p, const struct queue_msg *m, char **out, size_t *len)
{
    size_t hlen = m->header != NULL ? strlen(m->header) : 0;
    uint64_t blen = m->body != NULL ? queue_spool_size(m->body) : 0;
    if (blen > (uint64_t)INT32_MAX - hlen)
        return pgdb_fail_msg(&p->d, BH_ERANGE, "message too large for the queue");
    char *buf = xmalloc(hlen + (size_t)blen + 1);
    memcpy(buf, m->header != NULL ? m->header : "", hlen);
    uint64_t off = 0;
    while (off < blen) {
        size_t got = 0;
        int rc = queue_spool_read(m->body, off, buf + hlen + off, (size_t)(blen - off), &got);
        if (rc == 0 && got == 0)
            rc = BH_EIO;
        if (rc != 0) {
            free(buf);
            return pgdb_fail_msg(&p->d, rc, "cannot read the message's spool");
        }
        off += got;
    }
    *out = buf;
    *len = hlen + (size_t)blen;
    return 0;
}

static int
insert_message(struct queue_pg *p, const struct queue_msg *m, char *mid)
{
    char *text = NULL;
    size_t tlen = 0;
    int rc = message_text(p, m, &text, &tlen);
    if (rc != 0)
        return rc;
    char ret[8], prio[8], size[24], recv[24];
    snprintf(ret, sizeof ret, "%d", (int)m->ret);
    snprintf(prio, sizeof prio, "%d", m->priority);
    snprintf(size, sizeof size, "%llu", (unsigned long long)m->size);
    snprintf(recv, sizeof recv, "%lld", (long long)m->received);
    const char *vals[9] = {m->id, m->sender, m->envid, ret, prio, m->system ? "t" : "f",
                           size,  recv,      text};
    int lens[9] = {0, 0, 0, 0, 0, 0, 0, 0, (int)tlen};
    int fmts[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    PGresult *r;
    rc = pgdb_run(&p->d, ST_INS_MSG, 9, vals, lens, fmts, false, &r);
    free(text);
    if (rc != 0)
        return rc;
    snprintf(mid, 24, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "0");
    PQclear(r);
    return 0;
}

static int
insert_entry(struct queue_pg *p, const char *mid, const struct queue_rcpt *rc_)
{
    /* Held is a flag over the state the entry will return to: queued. */
    enum queue_state state = rc_->state == QUEUE_HELD ? QUEUE_QUEUED : rc_->state;
    char st[8], next[24], notify[12];
    snprintf(st, sizeof st, "%d", (int)state);
    snprintf(next, sizeof next, "%lld", (long long)rc_->next_attempt);
    snprintf(notify, sizeof notify, "%u", rc_->notify);
    bool never = state == QUEUE_TRIGGERED || rc_->next_attempt == QUEUE_NEVER;
    const char *vals[8] = {mid,
                           rc_->address,
                           rc_->connector,
                           st,
                           rc_->state == QUEUE_HELD ? "t" : "f",
                           never ? NULL : next,
                           notify,
                           rc_->orcpt};
    return pgdb_cmd(&p->d, ST_INS_ENTRY, 8, vals, NULL);
}

static int
insert_one(struct queue_pg *p, const struct queue_msg *m)
{
    const char *why = NULL;
    int rc = queue_msg_check(m, &why);
    if (rc != 0)
        return pgdb_fail_msg(&p->d, rc, why);
    char mid[24];
    rc = insert_message(p, m, mid);
    for (size_t i = 0; rc == 0 && i < m->nrcpts; i++)
        rc = insert_entry(p, mid, &m->rcpts[i]);
    return rc;
}

int
queue_pg_commit(struct queue_pg *p, const struct queue_msg *msgs, size_t n)
{
    if (n == 0)
        return 0;
    if (p->d.readonly)
        return pgdb_fail_msg(&p->d, BH_EINVAL, "the queue handle is read-only");
    int rc = pgdb_begin(&p->d);
    if (rc != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = insert_one(p, &msgs[i]);
    if (rc == 0) /* delivered to the listeners at commit, with the rows */
        rc = queue_pg_notify(p);
    return pgdb_end(&p->d, rc);
}

/* ---- leasing and the delivery's answers ---- */

static int
entry_cmp(const void *a, const void *b)
{
    const struct queue_entry *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->received != y->received)
        return x->received < y->received ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

int
queue_pg_lease_due(struct queue_pg *p, int64_t now, const char *connector, size_t limit,
                   struct queue_entry *out)
{
    if (limit == 0)
        return 0;
    if (p->d.readonly)
        return pgdb_fail_msg(&p->d, BH_EINVAL, "the queue handle is read-only");
    char t[24], lim[24], secs[12];
    snprintf(t, sizeof t, "%lld", (long long)now);
    snprintf(lim, sizeof lim, "%zu", limit > INT32_MAX ? (size_t)INT32_MAX : limit);
    snprintf(secs, sizeof secs, "%d", p->lease_secs);
    const char *vals[6] = {t, lim, connector, p->excluded, p->node, secs};
    int64_t sent = queue_leases_now_ms();
    PGresult *r;
    /* One statement, its own transaction: the rows stay locked only while
     * it runs, so other nodes skip them instead of waiting. */
    int rc = pgdb_run(&p->d, ST_LEASE, 6, vals, NULL, NULL, false, &r);
    if (rc != 0)
        return rc;
    int n = PQntuples(r);
    if ((size_t)n > limit)
        n = (int)limit;
    for (int i = 0; i < n; i++)
        queue_pg_entry(r, i, &out[i], NULL, NULL);
    PQclear(r);
    qsort(out, (size_t)n, sizeof *out, entry_cmp);
    /* A little less than the database's deadline: our clock and the
     * round trip are not the database's. */
    int64_t deadline = sent + (int64_t)p->lease_secs * 1000 - (int64_t)p->lease_secs * 1000 / 6;
    for (int i = 0; i < n && p->leases != NULL; i++) {
        out[i].leases = p->leases;
        out[i].lease_token = queue_leases_add(p->leases, out[i].entry, deadline);
    }
    return n;
}

int
queue_pg_next_due(struct queue_pg *p, const char *connector, int64_t *when)
{
    const char *vals[3] = {connector, p->excluded, p->node};
    PGresult *r;
    int rc = pgdb_run(&p->d, ST_NEXT, 3, vals, NULL, NULL, false, &r);
    if (rc != 0)
        return rc;
    rc = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? 0 : BH_ENOENT;
    if (rc == 0)
        *when = pgdb_int(r, 0, 0, 0);
    PQclear(r);
    return rc;
}

static void
forget(struct queue_pg *p, int64_t entry)
{
    if (p->leases != NULL)
        queue_leases_remove(p->leases, entry);
}

int
queue_pg_remove(struct queue_pg *p, int64_t entry)
{
    char e[24];
    snprintf(e, sizeof e, "%lld", (long long)entry);
    const char *vals[2] = {e, p->node};
    PGresult *r;
    int rc = pgdb_begin_stmt(&p->d);
    if (rc == 0)
        rc = pgdb_run(&p->d, ST_REMOVE, 2, vals, NULL, NULL, false, &r);
    if (rc == 0) {
        if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
            rc = pgdb_fail_msg(&p->d, BH_ENOENT, "no such entry, or its lease is another node's");
        PQclear(r);
    }
    rc = pgdb_end_stmt(&p->d, rc);
    forget(p, entry);
    return rc;
}

/* Run a single-row UPDATE in its own group; BH_ENOENT if it touched none. */
static int
update_one(struct queue_pg *p, enum st id, int n, const char *const *vals)
{
    long long changed = 0;
    int rc = pgdb_begin_stmt(&p->d);
    if (rc == 0)
        rc = pgdb_cmd(&p->d, id, n, vals, &changed);
    if (rc == 0 && changed == 0)
        rc = pgdb_fail_msg(&p->d, BH_ENOENT, "no such entry or message, or another node's lease");
    return pgdb_end_stmt(&p->d, rc);
}

int
queue_pg_defer(struct queue_pg *p, int64_t entry, int64_t next_attempt, const char *last_reply,
               bool count_attempt)
{
    if (next_attempt == QUEUE_NEVER)
        return pgdb_fail_msg(&p->d, BH_EINVAL, "a deferred entry needs a next attempt");
    char e[24], next[24];
    snprintf(e, sizeof e, "%lld", (long long)entry);
    snprintf(next, sizeof next, "%lld", (long long)next_attempt);
    const char *vals[5] = {e, next, last_reply, count_attempt ? "1" : "0", p->node};
    int rc = update_one(p, ST_DEFER, 5, vals);
    forget(p, entry);
    return rc;
}

int
queue_pg_set_state(struct queue_pg *p, int64_t entry, enum queue_state state, int64_t next_attempt)
{
    char e[24], st[8], next[24];
    snprintf(e, sizeof e, "%lld", (long long)entry);
    if (state == QUEUE_HELD) {
        const char *vals[2] = {e, p->node};
        return update_one(p, ST_SET_HELD, 2, vals);
    }
    bool timed = state == QUEUE_QUEUED || state == QUEUE_DEFERRED || state == QUEUE_SCHEDULED;
    if (!(state == QUEUE_TRIGGERED || (timed && next_attempt != QUEUE_NEVER)))
        return pgdb_fail_msg(&p->d, BH_EINVAL, "bad state for an entry");
    snprintf(st, sizeof st, "%d", (int)state);
    snprintf(next, sizeof next, "%lld", (long long)next_attempt);
    const char *vals[4] = {e, st, state == QUEUE_TRIGGERED ? NULL : next, p->node};
    int rc = update_one(p, ST_SET_STATE, 4, vals);
    forget(p, entry);
    return rc;
}

int
queue_pg_set_warned(struct queue_pg *p, const char *id)
{
    char norm[QUEUE_ID_LEN + 1];
    if (queue_id_normalise(id, norm) != 0)
        return pgdb_fail_msg(&p->d, BH_EINVAL, "malformed queue ID");
    const char *vals[1] = {norm};
    return update_one(p, ST_WARNED, 1, vals);
}

int
queue_pg_recover_delivering(struct queue_pg *p)
{
    const char *vals[1] = {p->node};
    long long n = 0;
    if (p->d.readonly)
        return pgdb_fail_msg(&p->d, BH_EINVAL, "the queue handle is read-only");
    int rc = pgdb_begin_stmt(&p->d);
    if (rc == 0)
        rc = pgdb_cmd(&p->d, ST_RECOVER, 1, vals, &n);
    rc = pgdb_end_stmt(&p->d, rc);
    return rc != 0 ? rc : (int)n;
}

/* ---- bodies ---- */

static uint32_t
be32(const char *v)
{
    uint32_t x;
    memcpy(&x, v, sizeof x);
    return ntohl(x);
}

int
queue_pg_read_body(struct queue_pg *p, const char *id, char **out, size_t *len)
{
    char norm[QUEUE_ID_LEN + 1];
    *out = NULL;
    *len = 0;
    if (queue_id_normalise(id, norm) != 0)
        return pgdb_fail_msg(&p->d, BH_EINVAL, "malformed queue ID");
    const char *vals[1] = {norm};
    PGresult *r;
    int rc = pgdb_run(&p->d, ST_BODY, 1, vals, NULL, NULL, true, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return pgdb_fail_msg(&p->d, BH_ENOENT, "no such message");
    }
    size_t n = (size_t)PQgetlength(r, 0, 0);
    char *buf = xmalloc(n + 1);
    memcpy(buf, PQgetvalue(r, 0, 0), n);
    buf[n] = '\0'; /* for the caller's convenience; len excludes it */
    PQclear(r);
    *out = buf;
    *len = n;
    return 0;
}

int
queue_pg_read_body_at(struct queue_pg *p, const char *id, uint64_t off, void *buf, size_t len,
                      size_t *got, uint64_t *total)
{
    char norm[QUEUE_ID_LEN + 1], from[24], count[24];
    *got = 0;
    if (queue_id_normalise(id, norm) != 0)
        return pgdb_fail_msg(&p->d, BH_EINVAL, "malformed queue ID");
    if (off >= (uint64_t)INT32_MAX)
        off = (uint64_t)INT32_MAX - 1;
    snprintf(from, sizeof from, "%llu", (unsigned long long)off + 1);
    snprintf(count, sizeof count, "%zu", len > (size_t)INT32_MAX ? (size_t)INT32_MAX : len);
    const char *vals[3] = {norm, from, count};
    PGresult *r;
    int rc = pgdb_run(&p->d, ST_BODY_AT, 3, vals, NULL, NULL, true, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return pgdb_fail_msg(&p->d, BH_ENOENT, "no such message");
    }
    size_t n = (size_t)PQgetlength(r, 0, 0);
    memcpy(buf, PQgetvalue(r, 0, 0), n < len ? n : len);
    *got = n < len ? n : len;
    if (total != NULL)
        *total = be32(PQgetvalue(r, 0, 1));
    PQclear(r);
    return 0;
}
