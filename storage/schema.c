#include "storage/schema.h"

#include <stdio.h>
#include <string.h>

#include "connectors/util.h"

/* Step N takes the schema from version N to N + 1. Never edit a step once
 * released: add a new one and raise SCHEMA_VERSION. */
static const char *const steps[SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE messages ("
    " mid INTEGER PRIMARY KEY,"
    " qid TEXT NOT NULL UNIQUE,"
    " sender TEXT NOT NULL,"
    " envid TEXT,"
    " ret INTEGER NOT NULL DEFAULT 0,"
    " priority INTEGER NOT NULL DEFAULT 1,"
    " system INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL,"
    " received INTEGER NOT NULL);"
    "CREATE TABLE bodies ("
    " mid INTEGER PRIMARY KEY REFERENCES messages(mid) ON DELETE CASCADE,"
    " data BLOB NOT NULL);"
    "CREATE TABLE entries ("
    " eid INTEGER PRIMARY KEY,"
    " mid INTEGER NOT NULL REFERENCES messages(mid) ON DELETE CASCADE,"
    " rcpt TEXT NOT NULL,"
    " connector TEXT NOT NULL,"
    " state INTEGER NOT NULL CHECK (state IN (0, 1, 2, 3, 5)),"
    " held INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER,"
    " last_reply TEXT,"
    " notify INTEGER NOT NULL DEFAULT 0,"
    " orcpt TEXT);"
    "CREATE INDEX entries_mid ON entries(mid);"
    "CREATE INDEX entries_due ON entries(state, next_attempt);",
    /* 1 -> 2 */
    "ALTER TABLE messages ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX entries_due;"
    "CREATE INDEX entries_due ON entries(next_attempt) WHERE state < 3 AND held = 0;"
    "CREATE INDEX entries_due_conn ON entries(connector, next_attempt)"
    " WHERE state < 3 AND held = 0;"
    "CREATE INDEX entries_delivering ON entries(state) WHERE state = 5;",
    /* 2 -> 3 */
    "ALTER TABLE entries ADD COLUMN ignore_schedule INTEGER NOT NULL DEFAULT 0;",
};

static const char *const tables[] = {"messages", "bodies", "entries"};

int
schema_error(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_FULL:
        return BH_ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return BH_EBUSY;
    case SQLITE_NOMEM:
        return BH_ENOMEM;
    case SQLITE_CONSTRAINT:
        return BH_EEXIST;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return BH_ERANGE;
    case SQLITE_NOTADB:
    case SQLITE_MISUSE:
    case SQLITE_ERROR:
        return BH_EINVAL;
    default: /* CORRUPT, IOERR, READONLY, CANTOPEN, PROTOCOL, ... */
        return BH_EIO;
    }
}

/* The message for a failed read of the database's own structure. */
static int
read_failed(sqlite3 *db, int rc, char *err, size_t errlen)
{
    int code = rc & 0xff;
    if (code == SQLITE_NOTADB)
        snprintf(err, errlen, "not a bridgehead queue (not an SQLite database)");
    else if (code == SQLITE_CORRUPT)
        snprintf(err, errlen, "the queue database is corrupt (%s)", sqlite3_errmsg(db));
    else
        snprintf(err, errlen, "cannot read the queue database: %s", sqlite3_errmsg(db));
    /* A file that is not a database is the caller's mistake, not an I/O fault. */
    return code == SQLITE_NOTADB ? BH_EINVAL : code == SQLITE_CORRUPT ? BH_EIO : schema_error(rc);
}

/* Run a query that yields one integer. */
static int
query_int(sqlite3 *db, const char *sql, const char *arg, long long *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && arg != NULL)
        rc = sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

struct header {
    long long app_id, version, ntables;
};

static int
read_header(sqlite3 *db, struct header *h)
{
    int rc = query_int(db, "PRAGMA application_id", NULL, &h->app_id);
    if (rc == SQLITE_OK)
        rc = query_int(db, "PRAGMA user_version", NULL, &h->version);
    /* Reading sqlite_schema walks page 1, which finds most corruption. */
    if (rc == SQLITE_OK)
        rc = query_int(db,
                       "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                       " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                       NULL, &h->ntables);
    return rc;
}

static int
exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "cannot migrate the queue: %s", sqlite3_errmsg(db));
    return rc;
}

/* Migrate from `from` to SCHEMA_VERSION inside the caller's transaction. */
static int
run_steps(sqlite3 *db, long long from, char *err, size_t errlen)
{
    int rc = SQLITE_OK;
    for (long long v = from; v < SCHEMA_VERSION && rc == SQLITE_OK; v++)
        rc = exec(db, steps[v], err, errlen);
    if (rc == SQLITE_OK && from == 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d", SCHEMA_APPLICATION_ID);
        rc = exec(db, sql, err, errlen);
    }
    if (rc == SQLITE_OK) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        rc = exec(db, sql, err, errlen);
    }
    return rc;
}

/*
 * Take the write lock, check again what the file holds (another process may
 * have got there first), and migrate. Everything or nothing is applied.
 */
static int
migrate(sqlite3 *db, char *err, size_t errlen)
{
    struct header h;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot migrate the queue: %s", sqlite3_errmsg(db));
        return schema_error(rc);
    }
    rc = read_header(db, &h);
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "cannot migrate the queue: %s", sqlite3_errmsg(db));
    else if (h.version < SCHEMA_VERSION)
        rc = run_steps(db, h.version, err, errlen);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        if (err[0] == '\0')
            snprintf(err, errlen, "cannot migrate the queue: %s", sqlite3_errmsg(db));
        if (!sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return schema_error(rc);
    }
    return 0;
}

/* After migration: every table must be there (a damaged or hand-made file). */
static int
check_tables(sqlite3 *db, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        long long n = 0;
        int rc =
            query_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                      tables[i], &n);
        if (rc != SQLITE_OK)
            return read_failed(db, rc, err, errlen);
        if (n != 1) {
            snprintf(err, errlen, "the queue database is damaged (table %s is missing)", tables[i]);
            return BH_EIO;
        }
    }
    return 0;
}

/* Decide what to do with the file from its header; 1 means "migrate". */
static int
classify(const struct header *h, bool readonly, char *err, size_t errlen)
{
    bool empty = h->app_id == 0 && h->version == 0 && h->ntables == 0;
    if (empty && !readonly)
        return 1;
    if (empty) {
        snprintf(err, errlen, "the queue is empty (not yet created by bridgehead serve)");
        return BH_EINVAL;
    }
    if (h->app_id == 0) {
        snprintf(err, errlen, "not a bridgehead queue (an SQLite database with other tables)");
        return BH_EINVAL;
    }
    if (h->app_id != SCHEMA_APPLICATION_ID) {
        snprintf(err, errlen, "not a bridgehead queue (SQLite application_id 0x%08llx)",
                 (unsigned long long)h->app_id & 0xffffffffu);
        return BH_EINVAL;
    }
    if (h->version > SCHEMA_VERSION || h->version < 1) {
        snprintf(err, errlen,
                 "queue schema version %lld is not one this bridgehead knows (it knows 1 to %d)",
                 h->version, SCHEMA_VERSION);
        return BH_EINVAL;
    }
    if (h->version < SCHEMA_VERSION && readonly) {
        snprintf(err, errlen,
                 "queue schema version %lld needs a migration to %d (open it read-write)",
                 h->version, SCHEMA_VERSION);
        return BH_EINVAL;
    }
    return h->version < SCHEMA_VERSION ? 1 : 0;
}

int
schema_prepare(sqlite3 *db, bool readonly, char *err, size_t errlen)
{
    struct header h;
    err[0] = '\0';
    int rc = read_header(db, &h);
    if (rc != SQLITE_OK)
        return read_failed(db, rc, err, errlen);
    int what = classify(&h, readonly, err, errlen);
    if (what < 0)
        return what;
    if (what == 1) {
        int brc = migrate(db, err, errlen);
        if (brc != 0)
            return brc;
    }
    return check_tables(db, err, errlen);
}
