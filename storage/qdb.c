#include "storage/qdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "storage/schema.h"

#define BUSY_TIMEOUT_MS 5000
#define JOURNAL_SIZE_LIMIT (64 * 1024 * 1024) /* what the WAL shrinks back to */

int
qdb_fail(struct qdb *d, int rc)
{
    snprintf(d->err, sizeof d->err, "%s", sqlite3_errmsg(d->db));
    return schema_error(rc);
}

int
qdb_fail_msg(struct qdb *d, int code, const char *msg)
{
    snprintf(d->err, sizeof d->err, "%s", msg);
    return code;
}

int
qdb_exec(struct qdb *d, const char *text)
{
    int rc = sqlite3_exec(d->db, text, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : qdb_fail(d, rc);
}

/* A pragma that must answer `want` (e.g. journal_mode=WAL -> "wal"). */
static int
pragma_expect(struct qdb *d, const char *text, const char *want)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(d->db, text, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    int ok = rc == SQLITE_ROW && s != NULL && sqlite3_column_text(s, 0) != NULL &&
             util_strcasecmp((const char *)sqlite3_column_text(s, 0), want) == 0;
    int out = ok ? 0 : rc == SQLITE_ROW ? BH_EIO : qdb_fail(d, rc);
    if (!ok && rc == SQLITE_ROW)
        snprintf(d->err, sizeof d->err, "%s did not answer %s", text, want);
    sqlite3_finalize(s);
    return out;
}

/* Connection settings after the schema is known to be ours. */
static int
configure(struct qdb *d, long long max_pages)
{
    char text[64];
    int rc = 0;
    if (!d->readonly)
        rc = pragma_expect(d, "PRAGMA journal_mode = WAL", "wal");
    if (rc == 0)
        rc = qdb_exec(d, "PRAGMA synchronous = FULL");
    if (rc == 0)
        rc = qdb_exec(d, "PRAGMA foreign_keys = ON");
    if (rc == 0 && !d->readonly) {
        snprintf(text, sizeof text, "PRAGMA journal_size_limit = %d", JOURNAL_SIZE_LIMIT);
        rc = qdb_exec(d, text);
    }
    /* Checkpoint every 32 MiB of WAL rather than SQLite's 4 MiB: big bodies
     * would otherwise checkpoint (two more fsyncs) every few dozen messages.
     * A larger page cache keeps the index pages of a busy queue in memory. */
    if (rc == 0 && !d->readonly)
        rc = qdb_exec(d, "PRAGMA wal_autocheckpoint = 8192");
    if (rc == 0)
        rc = qdb_exec(d, "PRAGMA cache_size = -16384");
    if (rc == 0 && max_pages > 0) {
        snprintf(text, sizeof text, "PRAGMA max_page_count = %lld", max_pages);
        rc = qdb_exec(d, text);
    }
    return rc;
}

/* A file whose header and schema are ours can still have damaged pages
 * (a bad disk, a stray write, a truncated copy): refuse it at open rather
 * than lose mail in it or list an empty queue later. quick_check reads
 * every page once (a fraction of a second per GiB when cached); a process
 * opens the queue once or twice. */
static int
check_pages(struct qdb *d, char *why, size_t whylen)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(d->db, "PRAGMA quick_check(1)", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
    int out = 0;
    if (res != NULL && strcmp(res, "ok") != 0) {
        /* "*** in database main ***\nPage 5: ..." -> its first finding */
        const char *nl = strchr(res, '\n');
        if (strncmp(res, "***", 3) == 0 && nl != NULL)
            res = nl + 1;
        snprintf(why, whylen, "the queue database is corrupt (%.*s)", (int)strcspn(res, "\n"), res);
        out = BH_EIO;
    } else if (rc != SQLITE_ROW) {
        int code = rc & 0xff;
        snprintf(why, whylen, "%s (%s)",
                 code == SQLITE_CORRUPT || code == SQLITE_NOTADB
                     ? "the queue database is corrupt"
                     : "cannot check the queue database",
                 sqlite3_errmsg(d->db));
        out = schema_error(rc);
    }
    sqlite3_finalize(s);
    return out;
}

/* Settings that protect us from a hostile file, before anything is read. */
static void
harden(sqlite3 *db)
{
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
}

int
qdb_open(struct qdb *d, const char *path, bool readonly, long long max_pages,
         const char *const *sql, size_t nst, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->readonly = readonly;
    d->sql = sql;
    d->nst = nst;
    d->st = xcalloc(nst, sizeof *d->st);
    int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &d->db, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open: %s", path,
                 d->db != NULL ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
        rc = rc == SQLITE_CANTOPEN ? BH_ENOENT : schema_error(rc);
        goto fail;
    }
    harden(d->db);
    char why[200];
    rc = schema_prepare(d->db, readonly, why, sizeof why);
    if (rc == 0)
        rc = check_pages(d, why, sizeof why);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        goto fail;
    }
    rc = configure(d, max_pages);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, d->err);
        goto fail;
    }
    return 0;
fail:
    qdb_close(d);
    return rc;
}

void
qdb_close(struct qdb *d)
{
    for (size_t i = 0; d->st != NULL && i < d->nst; i++)
        sqlite3_finalize(d->st[i]);
    free(d->st);
    d->st = NULL;
    if (d->db != NULL && !sqlite3_get_autocommit(d->db))
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(d->db);
    d->db = NULL;
}

int
qdb_stmt(struct qdb *d, size_t id, sqlite3_stmt **out)
{
    if (d->st[id] == NULL) {
        int rc =
            sqlite3_prepare_v3(d->db, d->sql[id], -1, SQLITE_PREPARE_PERSISTENT, &d->st[id], NULL);
        if (rc != SQLITE_OK)
            return qdb_fail(d, rc);
    }
    *out = d->st[id];
    return 0;
}

void
qdb_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

int
qdb_run(struct qdb *d, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    int out = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : qdb_fail(d, rc);
    qdb_done(s);
    return out;
}

int
qdb_int(struct qdb *d, sqlite3_stmt *s, long long *out)
{
    int rc = sqlite3_step(s);
    int res;
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        *out = sqlite3_column_int64(s, 0);
        res = 0;
    } else {
        res = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? BH_ENOENT : qdb_fail(d, rc);
    }
    qdb_done(s);
    return res;
}

/* IMMEDIATE for writes, so that a write never has to upgrade a stale
 * snapshot (which fails at once instead of waiting for the busy timeout). */
int
qdb_begin(struct qdb *d, bool write)
{
    if (write && d->readonly)
        return qdb_fail_msg(d, BH_EINVAL, "the queue handle is read-only");
    if (d->user_txn)
        return d->txn_error != 0 ? d->txn_error : qdb_exec(d, "SAVEPOINT op");
    return qdb_exec(d, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

int
qdb_end(struct qdb *d, int rc)
{
    if (d->user_txn && sqlite3_get_autocommit(d->db)) {
        /* SQLite rolled the whole transaction back (full disk, I/O error):
         * the user's group is lost, and qdb_txn_commit() will say so. */
        d->txn_error = rc != 0 ? rc : BH_EIO;
        return d->txn_error;
    }
    if (d->user_txn) {
        if (rc != 0)
            sqlite3_exec(d->db, "ROLLBACK TO op", NULL, NULL, NULL);
        int rrc = qdb_exec(d, "RELEASE op");
        return rc != 0 ? rc : rrc;
    }
    if (rc == 0)
        rc = qdb_exec(d, "COMMIT");
    if (rc != 0 && !sqlite3_get_autocommit(d->db))
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int
qdb_txn_begin(struct qdb *d)
{
    if (d->user_txn)
        return qdb_fail_msg(d, BH_EINVAL, "a transaction is already open");
    int rc = qdb_begin(d, true);
    if (rc == 0) {
        d->user_txn = true;
        d->txn_error = 0;
    }
    return rc;
}

int
qdb_txn_commit(struct qdb *d)
{
    if (!d->user_txn)
        return qdb_fail_msg(d, BH_EINVAL, "no transaction is open");
    d->user_txn = false;
    if (d->txn_error != 0) {
        if (!sqlite3_get_autocommit(d->db))
            sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return d->txn_error;
    }
    return qdb_end(d, 0);
}

void
qdb_txn_rollback(struct qdb *d)
{
    if (!d->user_txn)
        return;
    d->user_txn = false;
    if (!sqlite3_get_autocommit(d->db))
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
}
