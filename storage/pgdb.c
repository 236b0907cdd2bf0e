#include "storage/pgdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "storage/pg_schema.h"

/* SQLSTATE classes and codes (PostgreSQL appendix A) to BH_E* codes. */
static int
sqlstate_error(const char *st)
{
    if (st == NULL || strlen(st) != 5)
        return BH_EIO;
    if (strncmp(st, "23", 2) == 0)
        return BH_EEXIST; /* integrity constraint, e.g. a duplicate queue ID */
    if (strcmp(st, "53100") == 0 || strcmp(st, "53400") == 0)
        return BH_ENOSPC; /* disk full, configuration limit */
    if (strcmp(st, "53200") == 0)
        return BH_ENOMEM;
    if (strncmp(st, "40", 2) == 0 || strcmp(st, "55P03") == 0 || strcmp(st, "57014") == 0)
        return BH_EBUSY; /* serialization, deadlock, lock not available, canceled */
    if (strcmp(st, "22001") == 0 || strcmp(st, "22003") == 0 || strcmp(st, "54000") == 0)
        return BH_ERANGE;
    if (strncmp(st, "22", 2) == 0 || strncmp(st, "42", 2) == 0 || strcmp(st, "25006") == 0)
        return BH_EINVAL;
    return BH_EIO; /* connection exceptions, shutdown, internal errors */
}

int
pgdb_status(PGresult *r)
{
    if (r == NULL)
        return BH_EIO;
    switch (PQresultStatus(r)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        return 0;
    case PGRES_FATAL_ERROR:
        return sqlstate_error(PQresultErrorField(r, PG_DIAG_SQLSTATE));
    default:
        return BH_EIO;
    }
}

/* libpq's messages end in a newline; keep one line. */
static void
set_err(struct pgdb *d, const char *msg)
{
    snprintf(d->err, sizeof d->err, "%s", msg != NULL ? msg : "");
    size_t n = strlen(d->err);
    while (n > 0 && (d->err[n - 1] == '\n' || d->err[n - 1] == ' '))
        d->err[--n] = '\0';
}

int
pgdb_fail(struct pgdb *d, PGresult *r)
{
    const char *m = r != NULL ? PQresultErrorMessage(r) : NULL;
    set_err(d, m != NULL && m[0] != '\0' ? m : PQerrorMessage(d->conn));
    int rc = pgdb_status(r);
    return rc != 0 ? rc : BH_EIO;
}

int
pgdb_fail_msg(struct pgdb *d, int code, const char *msg)
{
    set_err(d, msg);
    return code;
}

int
pgdb_exec(struct pgdb *d, const char *text)
{
    d->round_trips++;
    PGresult *r = PQexec(d->conn, text);
    int rc = pgdb_status(r) == 0 ? 0 : pgdb_fail(d, r);
    PQclear(r);
    return rc;
}

static void
quiet(void *arg, const PGresult *r)
{
    (void)arg;
    (void)r;
}

int
pgdb_open(struct pgdb *d, const char *dsn, bool readonly, const char *const *sql, size_t nst,
          char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->readonly = readonly;
    d->sql = sql;
    d->nst = nst;
    d->prepared = xcalloc(nst ? nst : 1, sizeof *d->prepared);
    d->conn = PQconnectdb(dsn);
    int rc = 0;
    if (d->conn == NULL || PQstatus(d->conn) != CONNECTION_OK) {
        set_err(d, d->conn != NULL ? PQerrorMessage(d->conn) : "out of memory");
        snprintf(err, errlen, "postgres: cannot connect: %s", d->err);
        rc = BH_EIO;
        goto fail;
    }
    PQsetNoticeReceiver(d->conn, quiet, NULL);
    char why[200];
    rc = pg_schema_prepare(d->conn, why, sizeof why);
    if (rc != 0) {
        snprintf(err, errlen, "postgres: %s", why);
        goto fail;
    }
    /* The 250 after DATA waits for the durable commit (SPEC §8). */
    rc = pgdb_exec(d, "SET synchronous_commit = on");
    if (rc == 0 && readonly)
        rc = pgdb_exec(d, "SET default_transaction_read_only = on");
    if (rc != 0) {
        snprintf(err, errlen, "postgres: %s", d->err);
        goto fail;
    }
    return 0;
fail:
    pgdb_close(d);
    return rc;
}

void
pgdb_close(struct pgdb *d)
{
    if (d->conn != NULL) {
        if (PQtransactionStatus(d->conn) == PQTRANS_INTRANS ||
            PQtransactionStatus(d->conn) == PQTRANS_INERROR)
            PQclear(PQexec(d->conn, "ROLLBACK"));
        PQfinish(d->conn);
    }
    d->conn = NULL;
    free(d->prepared);
    d->prepared = NULL;
}

/* After a lost connection, one reset: the next statement gets a fresh
 * session (statements must be prepared again, settings made again). */
static void
maybe_reset(struct pgdb *d)
{
    if (PQstatus(d->conn) == CONNECTION_OK || d->user_txn || d->in_txn)
        return;
    PQreset(d->conn);
    memset(d->prepared, 0, d->nst * sizeof *d->prepared);
    if (PQstatus(d->conn) == CONNECTION_OK) {
        PQclear(PQexec(d->conn, "SET synchronous_commit = on"));
        if (d->readonly)
            PQclear(PQexec(d->conn, "SET default_transaction_read_only = on"));
    }
}

static int
prepare(struct pgdb *d, size_t id)
{
    if (d->prepared[id])
        return 0;
    char name[16];
    snprintf(name, sizeof name, "bh%zu", id);
    d->round_trips++;
    PGresult *r = PQprepare(d->conn, name, d->sql[id], 0, NULL);
    int rc = pgdb_status(r) == 0 ? 0 : pgdb_fail(d, r);
    PQclear(r);
    if (rc == 0)
        d->prepared[id] = true;
    return rc;
}

int
pgdb_run(struct pgdb *d, size_t id, int n, const char *const *vals, const int *lens,
         const int *fmts, bool binary, PGresult **out)
{
    *out = NULL;
    maybe_reset(d);
    int rc = prepare(d, id);
    if (rc != 0)
        return rc;
    char name[16];
    snprintf(name, sizeof name, "bh%zu", id);
    d->round_trips++;
    PGresult *r = PQexecPrepared(d->conn, name, n, vals, lens, fmts, binary ? 1 : 0);
    if (pgdb_status(r) != 0) {
        rc = pgdb_fail(d, r);
        PQclear(r);
        return rc;
    }
    *out = r;
    return 0;
}

int
pgdb_query(struct pgdb *d, const char *text, int n, const char *const *vals, PGresult **out)
{
    *out = NULL;
    maybe_reset(d);
    d->round_trips++;
    PGresult *r = PQexecParams(d->conn, text, n, NULL, vals, NULL, NULL, 0);
    if (pgdb_status(r) != 0) {
        int rc = pgdb_fail(d, r);
        PQclear(r);
        return rc;
    }
    *out = r;
    return 0;
}

int
pgdb_cmd(struct pgdb *d, size_t id, int n, const char *const *vals, long long *changed)
{
    PGresult *r;
    int rc = pgdb_run(d, id, n, vals, NULL, NULL, false, &r);
    if (rc != 0)
        return rc;
    if (changed != NULL) {
        const char *t = PQcmdTuples(r);
        *changed = t != NULL && t[0] != '\0' ? strtoll(t, NULL, 10) : PQntuples(r);
    }
    PQclear(r);
    return 0;
}

int
pgdb_begin(struct pgdb *d)
{
    if (d->user_txn)
        return d->txn_error != 0 ? d->txn_error : pgdb_exec(d, "SAVEPOINT op");
    maybe_reset(d);
    int rc = pgdb_exec(d, d->relaxed ? "BEGIN; SET LOCAL synchronous_commit = off" : "BEGIN");
    d->in_txn = rc == 0;
    return rc;
}

int
pgdb_end(struct pgdb *d, int rc)
{
    if (d->user_txn) {
        if (PQstatus(d->conn) != CONNECTION_OK) {
            d->txn_error = rc != 0 ? rc : BH_EIO;
            return d->txn_error;
        }
        if (rc != 0) {
            char keep[sizeof d->err];
            memcpy(keep, d->err, sizeof keep);
            if (pgdb_exec(d, "ROLLBACK TO SAVEPOINT op") != 0)
                d->txn_error = rc;
            memcpy(d->err, keep, sizeof keep);
        }
        return rc;
    }
    d->in_txn = false;
    if (rc == 0)
        rc = pgdb_exec(d, "COMMIT");
    else if (PQstatus(d->conn) == CONNECTION_OK)
        PQclear(PQexec(d->conn, "ROLLBACK"));
    return rc;
}

int
pgdb_begin_stmt(struct pgdb *d)
{
    return d->user_txn ? pgdb_begin(d) : 0;
}

int
pgdb_end_stmt(struct pgdb *d, int rc)
{
    return d->user_txn ? pgdb_end(d, rc) : rc;
}

int
pgdb_txn_begin(struct pgdb *d)
{
    if (d->user_txn)
        return pgdb_fail_msg(d, BH_EINVAL, "a transaction is already open");
    int rc = pgdb_begin(d);
    if (rc == 0) {
        d->user_txn = true;
        d->in_txn = false;
        d->txn_error = 0;
    }
    return rc;
}

int
pgdb_txn_commit(struct pgdb *d)
{
    if (!d->user_txn)
        return pgdb_fail_msg(d, BH_EINVAL, "no transaction is open");
    d->user_txn = false;
    if (d->txn_error != 0) {
        if (PQstatus(d->conn) == CONNECTION_OK)
            PQclear(PQexec(d->conn, "ROLLBACK"));
        return d->txn_error;
    }
    if (PQtransactionStatus(d->conn) != PQTRANS_INTRANS) {
        /* COMMIT of an aborted transaction would answer ROLLBACK, not an error. */
        pgdb_txn_rollback(d);
        return pgdb_fail_msg(d, BH_EIO, "the transaction was aborted");
    }
    return pgdb_exec(d, "COMMIT");
}

void
pgdb_txn_rollback(struct pgdb *d)
{
    if (!d->user_txn)
        return;
    d->user_txn = false;
    if (PQstatus(d->conn) == CONNECTION_OK)
        PQclear(PQexec(d->conn, "ROLLBACK"));
}

int64_t
pgdb_int(PGresult *r, int row, int col, int64_t def)
{
    if (PQgetisnull(r, row, col))
        return def;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

bool
pgdb_bool(PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}
