/*
 * qdb: the SQLite plumbing under the queue: opening a connection the way
 * the queue needs it (schema check and migration, WAL, synchronous=FULL,
 * busy timeout, foreign keys, defensive mode), a cache of prepared
 * statements, the text of the last error, and transactions that nest (a
 * function's own transaction, or a savepoint inside the caller's).
 *
 * Internal to storage/: queue.c and queue_admin.c use it. A struct qdb is embedded by
 * its user and used by one thread at a time. Errors are BH_E* codes, with
 * SQLite's message in d->err.
 */
#ifndef BH_STORAGE_QDB_H
#define BH_STORAGE_QDB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

struct qdb {
    sqlite3 *db;
    bool readonly;
    bool user_txn;          /* inside qdb_txn_begin() */
    int txn_error;          /* SQLite rolled the user's transaction back */
    const char *const *sql; /* statement texts, borrowed */
    sqlite3_stmt **st;      /* their prepared statements, lazily */
    size_t nst;
    char err[256];
};

/*
 * Open path (which must exist unless readonly is false and the caller made
 * it) and check or migrate its schema. sql[0..nst) are the statements that
 * qdb_stmt() prepares on demand; sql is borrowed for the handle's life.
 * max_pages > 0 sets PRAGMA max_page_count. Returns 0, or a negative code
 * with "PATH: reason" in err (the handle is then closed).
 */
int qdb_open(struct qdb *d, const char *path, bool readonly, long long max_pages,
             const char *const *sql, size_t nst, char *err, size_t errlen);

/* Finalize the statements, roll back what is open, close. Safe twice. */
void qdb_close(struct qdb *d);

/* Record SQLite's message for rc and return rc as a BH_E* code. */
int qdb_fail(struct qdb *d, int rc);

/* Record msg and return code. */
int qdb_fail_msg(struct qdb *d, int code, const char *msg);

/* Execute SQL text that returns no rows. */
int qdb_exec(struct qdb *d, const char *text);

/* The prepared statement number id (reset, no bindings). */
int qdb_stmt(struct qdb *d, size_t id, sqlite3_stmt **out);

/* Reset a statement and clear its bindings. */
void qdb_done(sqlite3_stmt *s);

/* Step s once (a row or the end are both fine), then qdb_done() it. */
int qdb_run(struct qdb *d, sqlite3_stmt *s);

/* Step s expecting one row with one integer; BH_ENOENT when there is no
 * row or the value is NULL. qdb_done() it. */
int qdb_int(struct qdb *d, sqlite3_stmt *s, long long *out);

/* Begin one function's statements: BEGIN (IMMEDIATE when write) or a
 * savepoint in the user's transaction. */
int qdb_begin(struct qdb *d, bool write);

/* End them: commit or release when rc == 0, else undo; returns rc, or the
 * error of the commit. */
int qdb_end(struct qdb *d, int rc);

/* The user's transaction (queue_txn_begin() and friends). */
int qdb_txn_begin(struct qdb *d);
int qdb_txn_commit(struct qdb *d);
void qdb_txn_rollback(struct qdb *d);

#endif
