/*
 * pgdb: the libpq plumbing under the postgres queue (SPEC §8): a connection
 * opened the way the queue needs it (schema check and migration under an
 * advisory lock, synchronous_commit on, read-only sessions for readers),
 * statements prepared once per connection, the text of the last error, the
 * mapping of SQLSTATEs to BH_E* codes, and transactions that nest (a
 * function's own transaction, or a savepoint inside the caller's), as qdb.h
 * does for SQLite.
 *
 * Internal to storage/. A struct pgdb is embedded by its user and used by
 * one thread at a time. Every call blocks on the network: never on the
 * event loop's thread.
 */
#ifndef BH_STORAGE_PGDB_H
#define BH_STORAGE_PGDB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgdb {
    PGconn *conn;
    bool readonly;
    bool user_txn;          /* inside pgdb_txn_begin() */
    bool in_txn;            /* a transaction of our own is open */
    bool relaxed;           /* transactions begin with synchronous_commit off */
    int txn_error;          /* the user's transaction failed as a whole */
    const char *const *sql; /* statement texts, borrowed */
    bool *prepared;         /* which are prepared on this connection */
    size_t nst;
    uint64_t round_trips; /* statements sent, for the benchmark */
    char err[256];
};

/* Open a connection to dsn and bring the schema to the current version
 * (pg_schema.h). Returns 0, or a negative code with "postgres: reason" in
 * err (the handle is then closed). */
int pgdb_open(struct pgdb *d, const char *dsn, bool readonly, const char *const *sql, size_t nst,
              char *err, size_t errlen);

/* Close the connection (rolling back what is open). Safe twice. */
void pgdb_close(struct pgdb *d);

/* Map a result (NULL: the connection failed) to a BH_E* code, 0 for success. */
int pgdb_status(PGresult *r);

/* Record PostgreSQL's message for r (or the connection's) and return its code. */
int pgdb_fail(struct pgdb *d, PGresult *r);

/* Record msg and return code. */
int pgdb_fail_msg(struct pgdb *d, int code, const char *msg);

/* Execute text with no parameters and no rows wanted. */
int pgdb_exec(struct pgdb *d, const char *text);

/*
 * Run statement id (prepared on first use) with n text parameters (NULL is
 * SQL NULL); lens/fmts may be NULL (all text). binary asks for binary
 * results. On success *out is the result (the caller PQclear()s it), else
 * NULL and a negative code.
 */
int pgdb_run(struct pgdb *d, size_t id, int n, const char *const *vals, const int *lens,
             const int *fmts, bool binary, PGresult **out);

/* As pgdb_run() for a text that is not prepared (rare statements). */
int pgdb_query(struct pgdb *d, const char *text, int n, const char *const *vals, PGresult **out);

/* As pgdb_run() for a statement without rows: *changed (if not NULL) gets
 * the number of rows it touched. */
int pgdb_cmd(struct pgdb *d, size_t id, int n, const char *const *vals, long long *changed);

/* Begin one function's statements: BEGIN (when not in the user's
 * transaction; with `relaxed`, BEGIN and SET LOCAL synchronous_commit =
 * off in the same round trip) or a savepoint inside it. */
int pgdb_begin(struct pgdb *d);
/* End them: commit when rc == 0, else undo (inside the user's transaction
 * a good savepoint is left in place rather than released: one round trip
 * less; the transaction's end releases it); returns rc or the commit's
 * error. */
int pgdb_end(struct pgdb *d, int rc);

/* The same for a function that runs one statement: nothing outside the
 * user's transaction (the statement commits on its own, saving two round
 * trips), a savepoint inside it. */
int pgdb_begin_stmt(struct pgdb *d);
int pgdb_end_stmt(struct pgdb *d, int rc);

int pgdb_txn_begin(struct pgdb *d);
int pgdb_txn_commit(struct pgdb *d);
void pgdb_txn_rollback(struct pgdb *d);

/* Parse a text column as an integer (NULL gives def). */
int64_t pgdb_int(PGresult *r, int row, int col, int64_t def);
/* A text boolean column ("t"). */
bool pgdb_bool(PGresult *r, int row, int col);

#endif
