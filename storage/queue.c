#include "storage/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "connectors/util.h"
#include "storage/fsutil.h"
#include "storage/qdb.h"
#include "storage/queue_lease.h"
#include "storage/queue_pg.h"
#include "storage/queue_sql.h"

#define CHUNK (64 * 1024) /* bytes per blob write or read */

struct queue {
    struct qdb d;
    struct queue_pg *pg; /* the postgres backend; NULL: SQLite in d */
    char *path;
    char *folder;
    long long max_pages; /* BRIDGEHEAD_TEST_MAX_PAGES, 0: unset */
    int wake_fd;         /* SQLite with QUEUE_SERVE: an eventfd never signalled; else -1 */
};

/* ---- helpers ---- */

static int
prep(struct queue *q, enum queue_sql_st id, sqlite3_stmt **out)
{
    return qdb_stmt(&q->d, (size_t)id, out);
}

static int
fail_msg(struct queue *q, int code, const char *msg)
{
    return qdb_fail_msg(&q->d, code, msg);
}

void
queue_entry_fini(struct queue_entry *e)
{
    if (e == NULL)
        return;
    free(e->rcpt);
    free(e->sender);
    free(e->connector);
    free(e->envid);
    free(e->orcpt);
    free(e->last_reply);
    free(e->node);
    memset(e, 0, sizeof *e);
}

bool
queue_entry_lease_ok(const struct queue_entry *e)
{
    return e->leases == NULL || queue_leases_ok(e->leases, e->entry, e->lease_token);
}

/* ---- open, close ---- */

static int
read_max_pages(long long *out, char *err, size_t errlen)
{
    const char *v = getenv("BRIDGEHEAD_TEST_MAX_PAGES");
    *out = 0;
    if (v == NULL || v[0] == '\0')
        return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end != '\0' || n <= 0 || v[0] < '0' || v[0] > '9') {
        snprintf(err, errlen, "BRIDGEHEAD_TEST_MAX_PAGES=%.40s is not a positive number", v);
        return BH_EINVAL;
    }
    *out = n;
    return 0;
}

/* Create the folder and an empty file (0640: the queue holds mail), so that
 * SQLite, which copies the file's mode to its -wal and -shm, never makes it
 * world-readable. An existing file is left as it is. */
static int
make_file(const char *path, const char *folder, char *err, size_t errlen)
{
    int rc = fsutil_mkdirs(folder, 0750);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot create folder %s", path, folder);
        return rc;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? BH_ENOENT : fsutil_write_error(errno);
    }
    close(fd);
    return 0;
}

int
queue_open(const char *path, unsigned flags, struct queue **out, char *err, size_t errlen)
{
    bool ro = (flags & QUEUE_READONLY) != 0;
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    struct queue *q = xcalloc(1, sizeof *q);
    q->path = xstrdup(path);
    q->folder = fsutil_dirname(path);
    q->wake_fd = -1;
    int rc = read_max_pages(&q->max_pages, err, errlen);
    if (rc == 0 && !ro)
        rc = make_file(path, q->folder, err, errlen);
    if (rc == 0)
        rc = qdb_open(&q->d, path, ro, q->max_pages, queue_sql_text, QUEUE_SQL_COUNT, err, errlen);
    if (rc == 0 && (flags & QUEUE_SERVE) != 0 &&
        (q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        qdb_close(&q->d);
        rc = BH_EIO;
    }
    if (rc != 0) {
        free(q->path);
        free(q->folder);
        free(q);
        return rc;
    }
    *out = q;
    return 0;
}

int
queue_open_cfg(const struct queue_cfg *cfg, unsigned flags, struct queue **out, char *err,
               size_t errlen)
{
    if (cfg->backend != QUEUE_BACKEND_POSTGRES)
        return queue_open(cfg->path, flags, out, err, errlen);
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    struct queue *q = xcalloc(1, sizeof *q);
    q->wake_fd = -1;
    q->path = xstrdup(cfg->path != NULL ? cfg->path : "var/queue.db");
    q->folder = fsutil_dirname(q->path);
    int rc = (flags & QUEUE_READONLY) ? 0 : fsutil_mkdirs(q->folder, 0750);
    if (rc != 0)
        snprintf(err, errlen, "%s: cannot create folder %s", q->path, q->folder);
    else
        rc = queue_pg_open(cfg->dsn, cfg->node, flags, &q->pg, err, errlen);
    if (rc != 0) {
        queue_close(q);
        return rc;
    }
    *out = q;
    return 0;
}

void
queue_close(struct queue *q)
{
    if (q == NULL)
        return;
    queue_pg_close(q->pg);
    if (q->pg == NULL)
        qdb_close(&q->d);
    if (q->wake_fd >= 0)
        close(q->wake_fd);
    free(q->path);
    free(q->folder);
    free(q);
}

const char *
queue_last_error(const struct queue *q)
{
    return q->pg != NULL ? queue_pg_last_error(q->pg) : q->d.err;
}

int
queue_wake_fd(const struct queue *q)
{
    return q->pg != NULL ? queue_pg_wake_fd(q->pg) : q->wake_fd;
}

void
queue_wake_clear(struct queue *q)
{
    if (q->pg != NULL)
        queue_pg_wake_clear(q->pg);
}

int
queue_set_excluded(struct queue *q, const char *const *connectors, size_t n)
{
    return q->pg != NULL ? queue_pg_set_excluded(q->pg, connectors, n) : 0;
}

uint64_t
queue_round_trips(const struct queue *q)
{
    return q->pg != NULL ? queue_pg_round_trips(q->pg) : 0;
}

struct queue_pg *
queue_pg_of(struct queue *q)
{
    return q->pg;
}

const char *
queue_folder(const struct queue *q)
{
    return q->folder;
}

static int
pragma_int(struct queue *q, const char *text, long long *out)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(q->d.db, text, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return qdb_fail(&q->d, rc);
    rc = qdb_int(&q->d, s, out);
    sqlite3_finalize(s);
    return rc;
}

int
queue_free_space(struct queue *q, uint64_t *bytes)
{
    struct statvfs vfs;
    if (statvfs(q->folder, &vfs) != 0)
        return fail_msg(q, BH_EIO, "statvfs of the queue folder failed");
    uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    if (q->max_pages > 0) {
        long long count = 0, size = 0;
        int rc = pragma_int(q, "PRAGMA page_count", &count);
        if (rc == 0)
            rc = pragma_int(q, "PRAGMA page_size", &size);
        if (rc != 0)
            return rc;
        uint64_t room =
            count < q->max_pages ? (uint64_t)(q->max_pages - count) * (uint64_t)size : 0;
        if (room < avail)
            avail = room;
    }
    *bytes = avail;
    return 0;
}

int
queue_txn_begin(struct queue *q)
{
    if (q->pg != NULL)
        return queue_pg_txn_begin(q->pg);
    return qdb_txn_begin(&q->d);
}

void
queue_set_durable(struct queue *q, bool durable)
{
    if (q->pg != NULL)
        queue_pg_set_durable(q->pg, durable);
    else if (!q->d.readonly)
        qdb_exec(&q->d, durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

int
queue_txn_commit(struct queue *q)
{
    if (q->pg != NULL)
        return queue_pg_txn_commit(q->pg);
    return qdb_txn_commit(&q->d);
}

void
queue_txn_rollback(struct queue *q)
{
    if (q->pg != NULL)
        queue_pg_txn_rollback(q->pg);
    else
        qdb_txn_rollback(&q->d);
}

/* ---- commit ---- */

static bool
rcpt_state_ok(enum queue_state s)
{
    return s == QUEUE_QUEUED || s == QUEUE_DEFERRED || s == QUEUE_SCHEDULED ||
           s == QUEUE_TRIGGERED || s == QUEUE_HELD;
}

/* Reject what would store a message we could not deliver or list. */
int
queue_msg_check(const struct queue_msg *m, const char **why)
{
    char norm[QUEUE_ID_LEN + 1];
    *why = NULL;
    if (queue_id_normalise(m->id, norm) != 0 || strcmp(norm, m->id) != 0)
        *why = "bad message ID";
    else if (m->sender == NULL || m->nrcpts == 0 || m->rcpts == NULL)
        *why = "a message needs a sender and recipients";
    else if (m->priority < 0 || m->priority > 2 || m->ret < QUEUE_RET_NONE ||
             m->ret > QUEUE_RET_FULL)
        *why = "bad priority or RET";
    else if (m->size > INT64_MAX)
        return *why = "message size out of range", BH_ERANGE;
    for (size_t i = 0; *why == NULL && i < m->nrcpts; i++) {
        const struct queue_rcpt *r = &m->rcpts[i];
        if (r->address == NULL || r->connector == NULL || !rcpt_state_ok(r->state))
            *why = "bad recipient";
    }
    return *why != NULL ? BH_EINVAL : 0;
}

static int
check_msg(struct queue *q, const struct queue_msg *m)
{
    const char *why;
    int rc = queue_msg_check(m, &why);
    return rc != 0 ? fail_msg(q, rc, why) : 0;
}

static int
insert_row(struct queue *q, const struct queue_msg *m, int64_t *mid)
{
    sqlite3_stmt *s;
    int rc = prep(q, QUEUE_SQL_INS_MSG, &s);
    if (rc != 0)
        return rc;
    queue_sql_bind_text(s, 1, m->id);
    queue_sql_bind_text(s, 2, m->sender);
    queue_sql_bind_text(s, 3, m->envid);
    sqlite3_bind_int(s, 4, (int)m->ret);
    sqlite3_bind_int(s, 5, m->priority);
    sqlite3_bind_int(s, 6, m->system);
    sqlite3_bind_int64(s, 7, (sqlite3_int64)m->size);
    sqlite3_bind_int64(s, 8, m->received);
    rc = qdb_run(&q->d, s);
    *mid = sqlite3_last_insert_rowid(q->d.db);
    return rc;
}

/* Copy the spool into the open blob after the header, CHUNK bytes at a time. */
static int
copy_spool(struct queue *q, sqlite3_blob *b, struct queue_spool *sp, int at, unsigned char *chunk)
{
    uint64_t off = 0, size = queue_spool_size(sp);
    while (off < size) {
        size_t got;
        int rc = queue_spool_read(sp, off, chunk, CHUNK, &got);
        if (rc == 0 && got == 0)
            rc = BH_EIO;
        if (rc != 0)
            return fail_msg(q, rc, "cannot read the message's spool");
        rc = sqlite3_blob_write(b, chunk, (int)got, at + (int)off);
        if (rc != SQLITE_OK)
            return qdb_fail(&q->d, rc);
        off += got;
    }
    return 0;
}

/* The body row: a zeroblob of the full length, then filled in place, so
 * that a large body is never held in memory twice. */
static int
insert_body(struct queue *q, const struct queue_msg *m, int64_t mid, unsigned char *chunk)
{
    size_t hlen = m->header != NULL ? strlen(m->header) : 0;
    uint64_t blen = m->body != NULL ? queue_spool_size(m->body) : 0;
    if (hlen > INT_MAX || blen > (uint64_t)(INT_MAX - (int)hlen))
        return fail_msg(q, BH_ERANGE, "message too large for the queue");
    sqlite3_stmt *s;
    int rc = prep(q, QUEUE_SQL_INS_BODY, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, mid);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)hlen + (sqlite3_int64)blen);
    if ((rc = qdb_run(&q->d, s)) != 0 || hlen + blen == 0)
        return rc;
    sqlite3_blob *b = NULL;
    int src = sqlite3_blob_open(q->d.db, "main", "bodies", "data", mid, 1, &b);
    if (src == SQLITE_OK && hlen > 0)
        src = sqlite3_blob_write(b, m->header, (int)hlen, 0);
    rc = src != SQLITE_OK ? qdb_fail(&q->d, src) : 0;
    if (rc == 0 && blen > 0)
        rc = copy_spool(q, b, m->body, (int)hlen, chunk);
    src = sqlite3_blob_close(b);
    if (rc == 0 && src != SQLITE_OK)
        rc = qdb_fail(&q->d, src);
    return rc;
}

static int
insert_entry(struct queue *q, int64_t mid, const struct queue_rcpt *r)
{
    sqlite3_stmt *s;
    int rc = prep(q, QUEUE_SQL_INS_ENTRY, &s);
    if (rc != 0)
        return rc;
    /* Held is a flag over the state the entry will return to: queued. */
    enum queue_state state = r->state == QUEUE_HELD ? QUEUE_QUEUED : r->state;
    sqlite3_bind_int64(s, 1, mid);
    queue_sql_bind_text(s, 2, r->address);
    queue_sql_bind_text(s, 3, r->connector);
    sqlite3_bind_int(s, 4, (int)state);
    sqlite3_bind_int(s, 5, r->state == QUEUE_HELD);
    queue_sql_bind_time(s, 6, state == QUEUE_TRIGGERED ? QUEUE_NEVER : r->next_attempt);
    sqlite3_bind_int(s, 7, (int)r->notify);
    queue_sql_bind_text(s, 8, r->orcpt);
    return qdb_run(&q->d, s);
}

static int
insert_msg(struct queue *q, const struct queue_msg *m, unsigned char *chunk)
{
    int64_t mid = 0;
    int rc = check_msg(q, m);
    if (rc == 0)
        rc = insert_row(q, m, &mid);
    if (rc == 0)
        rc = insert_body(q, m, mid, chunk);
    for (size_t i = 0; rc == 0 && i < m->nrcpts; i++)
        rc = insert_entry(q, mid, &m->rcpts[i]);
    return rc;
}

int
queue_commit(struct queue *q, const struct queue_msg *msgs, size_t n)
{
    if (n == 0)
        return 0;
    if (q->pg != NULL)
        return queue_pg_commit(q->pg, msgs, n);
    int rc = qdb_begin(&q->d, true);
    if (rc != 0)
        return rc;
    unsigned char *chunk = xmalloc(CHUNK);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = insert_msg(q, &msgs[i], chunk);
    free(chunk);
    return qdb_end(&q->d, rc);
}

/* ---- leasing and the delivery's answers ---- */

static int
select_due(struct queue *q, int64_t now, const char *connector, size_t limit,
           struct queue_entry *out, size_t *n)
{
    sqlite3_stmt *s;
    int rc = prep(q, connector != NULL ? QUEUE_SQL_LEASE_CONN : QUEUE_SQL_LEASE_ANY, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, limit > INT_MAX ? INT_MAX : (sqlite3_int64)limit);
    if (connector != NULL)
        queue_sql_bind_text(s, 3, connector);
    while (*n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW)
        queue_sql_entry(s, &out[(*n)++], NULL, NULL);
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : qdb_fail(&q->d, rc);
    qdb_done(s);
    return rc;
}

static int
mark_delivering(struct queue *q, struct queue_entry *out, size_t n)
{
    sqlite3_stmt *s;
    int rc = prep(q, QUEUE_SQL_MARK, &s);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_bind_int64(s, 1, out[i].entry);
        rc = qdb_run(&q->d, s);
        out[i].state = QUEUE_DELIVERING;
    }
    return rc;
}

int
queue_lease_due(struct queue *q, int64_t now, const char *connector, size_t limit,
                struct queue_entry *out)
{
    size_t n = 0;
    if (limit == 0)
        return 0;
    if (q->pg != NULL)
        return queue_pg_lease_due(q->pg, now, connector, limit, out);
    /* The delivering marks are not worth an fsync: a crash forgets them
     * (the WAL keeps its order) and recovery would undo them anyway. The
     * next FULL commit syncs them along. */
    bool relax = !q->d.user_txn && !q->d.readonly;
    if (relax)
        qdb_exec(&q->d, "PRAGMA synchronous = NORMAL");
    int rc = qdb_begin(&q->d, true);
    if (rc == 0) {
        rc = select_due(q, now, connector, limit, out, &n);
        if (rc == 0)
            rc = mark_delivering(q, out, n);
        rc = qdb_end(&q->d, rc);
    }
    if (relax)
        qdb_exec(&q->d, "PRAGMA synchronous = FULL");
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            queue_entry_fini(&out[i]);
        return rc;
    }
    return (int)n;
}

int
queue_next_due(struct queue *q, const char *connector, int64_t *when)
{
    if (q->pg != NULL)
        return queue_pg_next_due(q->pg, connector, when);
    sqlite3_stmt *s;
    int rc = prep(q, connector != NULL ? QUEUE_SQL_NEXT_CONN : QUEUE_SQL_NEXT_ANY, &s);
    if (rc != 0)
        return rc;
    if (connector != NULL)
        queue_sql_bind_text(s, 1, connector);
    long long v = 0;
    rc = qdb_int(&q->d, s, &v);
    if (rc == 0)
        *when = v;
    return rc;
}

/* Delete an entry, and its message when it was the last. */
static int
remove_entry(struct queue *q, int64_t entry)
{
    sqlite3_stmt *s;
    long long mid = 0;
    int rc = qdb_begin(&q->d, true);
    if (rc != 0)
        return rc;
    rc = prep(q, QUEUE_SQL_DEL_ENTRY, &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, entry);
        rc = qdb_int(&q->d, s, &mid);
        if (rc == BH_ENOENT)
            fail_msg(q, rc, "no such entry");
    }
    if (rc == 0)
        rc = prep(q, QUEUE_SQL_DEL_ORPHAN, &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, mid);
        rc = qdb_run(&q->d, s);
    }
    return qdb_end(&q->d, rc);
}

int
queue_complete(struct queue *q, int64_t entry)
{
    return q->pg != NULL ? queue_pg_remove(q->pg, entry) : remove_entry(q, entry);
}

int
queue_bounce(struct queue *q, int64_t entry)
{
    return q->pg != NULL ? queue_pg_remove(q->pg, entry) : remove_entry(q, entry);
}

/* Run a prepared single-row UPDATE in its own group; BH_ENOENT if it
 * touched no row. */
static int
update_one(struct queue *q, sqlite3_stmt *s)
{
    int rc = qdb_begin(&q->d, true);
    if (rc != 0) {
        qdb_done(s);
        return rc;
    }
    rc = qdb_run(&q->d, s);
    if (rc == 0 && sqlite3_changes(q->d.db) == 0)
        rc = fail_msg(q, BH_ENOENT, "no such entry or message");
    return qdb_end(&q->d, rc);
}

int
queue_defer(struct queue *q, int64_t entry, int64_t next_attempt, const char *last_reply,
            bool count_attempt)
{
    sqlite3_stmt *s;
    if (q->pg != NULL)
        return queue_pg_defer(q->pg, entry, next_attempt, last_reply, count_attempt);
    if (next_attempt == QUEUE_NEVER)
        return fail_msg(q, BH_EINVAL, "a deferred entry needs a next attempt");
    int rc = prep(q, QUEUE_SQL_DEFER, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, entry);
    sqlite3_bind_int64(s, 2, next_attempt);
    queue_sql_bind_text(s, 3, last_reply);
    sqlite3_bind_int(s, 4, count_attempt ? 1 : 0);
    return update_one(q, s);
}

int
queue_set_state(struct queue *q, int64_t entry, enum queue_state state, int64_t next_attempt)
{
    sqlite3_stmt *s;
    int rc = 0;
    if (q->pg != NULL)
        return queue_pg_set_state(q->pg, entry, state, next_attempt);
    if (state == QUEUE_HELD) {
        rc = prep(q, QUEUE_SQL_SET_HELD, &s);
    } else if (state == QUEUE_TRIGGERED ||
               ((state == QUEUE_QUEUED || state == QUEUE_DEFERRED || state == QUEUE_SCHEDULED) &&
                next_attempt != QUEUE_NEVER)) {
        rc = prep(q, QUEUE_SQL_SET_STATE, &s);
        if (rc == 0) {
            sqlite3_bind_int(s, 2, (int)state);
            queue_sql_bind_time(s, 3, state == QUEUE_TRIGGERED ? QUEUE_NEVER : next_attempt);
        }
    } else {
        return fail_msg(q, BH_EINVAL, "bad state for an entry");
    }
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, entry);
    return update_one(q, s);
}

int
queue_set_warned(struct queue *q, const char *id)
{
    char norm[QUEUE_ID_LEN + 1];
    sqlite3_stmt *s;
    if (q->pg != NULL)
        return queue_pg_set_warned(q->pg, id);
    if (queue_id_normalise(id, norm) != 0)
        return fail_msg(q, BH_EINVAL, "malformed queue ID");
    int rc = prep(q, QUEUE_SQL_WARNED, &s);
    if (rc != 0)
        return rc;
    queue_sql_bind_text(s, 1, norm);
    return update_one(q, s);
}

int
queue_recover_delivering(struct queue *q)
{
    if (q->pg != NULL)
        return queue_pg_recover_delivering(q->pg);
    sqlite3_stmt *s;
    int rc = qdb_begin(&q->d, true);
    if (rc != 0)
        return rc;
    rc = prep(q, QUEUE_SQL_RECOVER, &s);
    if (rc == 0)
        rc = qdb_run(&q->d, s);
    int n = rc == 0 ? sqlite3_changes(q->d.db) : 0;
    rc = qdb_end(&q->d, rc);
    return rc != 0 ? rc : n;
}

/* ---- bodies ---- */

/* Inside a read group: find the message's body row and its length. */
static int
find_body(struct queue *q, const char *id, int64_t *mid, int64_t *len)
{
    char norm[QUEUE_ID_LEN + 1];
    sqlite3_stmt *s;
    if (queue_id_normalise(id, norm) != 0)
        return fail_msg(q, BH_EINVAL, "malformed queue ID");
    int rc = prep(q, QUEUE_SQL_BODY, &s);
    if (rc != 0)
        return rc;
    queue_sql_bind_text(s, 1, norm);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *mid = sqlite3_column_int64(s, 0);
        *len = sqlite3_column_int64(s, 1);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? fail_msg(q, BH_ENOENT, "no such message") : qdb_fail(&q->d, rc);
    }
    qdb_done(s);
    return rc;
}

/* Read [off, off + len) of the body row mid; the caller checked the range. */
static int
read_blob(struct queue *q, int64_t mid, uint64_t off, void *buf, size_t len)
{
    sqlite3_blob *b = NULL;
    int src = sqlite3_blob_open(q->d.db, "main", "bodies", "data", mid, 0, &b);
    if (src == SQLITE_OK && len > 0)
        src = sqlite3_blob_read(b, buf, (int)len, (int)off);
    int rc = src != SQLITE_OK ? qdb_fail(&q->d, src) : 0;
    sqlite3_blob_close(b);
    return rc;
}

int
queue_read_body_at(struct queue *q, const char *id, uint64_t off, void *buf, size_t len,
                   size_t *got, uint64_t *total)
{
    int64_t mid = 0, blen = 0;
    if (q->pg != NULL)
        return queue_pg_read_body_at(q->pg, id, off, buf, len, got, total);
    *got = 0;
    int rc = qdb_begin(&q->d, false);
    if (rc != 0)
        return rc;
    rc = find_body(q, id, &mid, &blen);
    if (rc == 0 && off < (uint64_t)blen) {
        size_t n = (uint64_t)blen - off < len ? (size_t)((uint64_t)blen - off) : len;
        rc = read_blob(q, mid, off, buf, n);
        if (rc == 0)
            *got = n;
    }
    if (rc == 0 && total != NULL)
        *total = (uint64_t)blen;
    return qdb_end(&q->d, rc);
}

int
queue_read_body(struct queue *q, const char *id, char **out, size_t *len)
{
    int64_t mid = 0, blen = 0;
    char *buf = NULL;
    if (q->pg != NULL)
        return queue_pg_read_body(q->pg, id, out, len);
    *out = NULL;
    *len = 0;
    int rc = qdb_begin(&q->d, false);
    if (rc != 0)
        return rc;
    rc = find_body(q, id, &mid, &blen);
    if (rc == 0) {
        buf = xmalloc((size_t)blen + 1);
        rc = read_blob(q, mid, 0, buf, (size_t)blen);
    }
    rc = qdb_end(&q->d, rc);
    if (rc != 0 || buf == NULL) {
        free(buf);
        return rc != 0 ? rc : BH_EIO;
    }
    buf[blen] = '\0'; /* for the caller's convenience; len excludes it */
    *out = buf;
    *len = (size_t)blen;
    return 0;
}

/* ---- names ---- */

static const char *const state_names[] = {"queued",    "deferred", "scheduled",
                                          "triggered", "held",     "delivering"};

const char *
queue_state_name(enum queue_state s)
{
    if ((int)s < 0 || (size_t)s >= sizeof state_names / sizeof state_names[0])
        return NULL;
    return state_names[s];
}

int
queue_state_parse(const char *name, enum queue_state *s)
{
    for (size_t i = 0; i < sizeof state_names / sizeof state_names[0]; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *s = (enum queue_state)i;
            return 0;
        }
    }
    return BH_EINVAL;
}

struct qdb *
queue_db(struct queue *q)
{
    return q->pg == NULL && q->d.db != NULL ? &q->d : NULL;
}
