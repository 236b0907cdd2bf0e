/*
 * The backend under test for the queue contract suites (test_queue.c,
 * test_queue_admin.c): SQLite at the fixture's path, or PostgreSQL (SPEC
 * §8) when BRIDGEHEAD_TEST_PG_DSN is set, so that one suite checks both
 * backends. tests/run.sh runs the two binaries a second time against a
 * throwaway cluster (tests/integration/pglib.py). With PostgreSQL every
 * fresh open starts from an empty database (the tables are dropped), and
 * the node's name is "test".
 */
#ifndef BH_TESTS_QUEUE_BACKEND_H
#define BH_TESTS_QUEUE_BACKEND_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "storage/queue.h"

static inline const char *
tq_dsn(void)
{
    const char *d = getenv("BRIDGEHEAD_TEST_PG_DSN");
    return d != NULL && d[0] != '\0' ? d : NULL;
}

static inline bool
tq_pg(void)
{
    return tq_dsn() != NULL;
}

/* One query on a connection of its own; the first column of the first row
 * as an integer ("t"/"f" as 1/0), -1 when there is none. */
static inline long long
tq_pg_int(const char *sql)
{
    PGconn *c = PQconnectdb(tq_dsn());
    long long v = -1;
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        const char *s = PQgetvalue(r, 0, 0);
        v = strcmp(s, "t") == 0 ? 1 : strcmp(s, "f") == 0 ? 0 : atoll(s);
    }
    PQclear(r);
    PQfinish(c);
    return v;
}

static inline void
tq_pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(tq_dsn());
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

/* Open the queue under test (spools in path's folder either way). */
static inline int
tq_open(const char *path, unsigned flags, struct queue **q, char *err, size_t errlen)
{
    struct queue_cfg cfg = {tq_pg() ? QUEUE_BACKEND_POSTGRES : QUEUE_BACKEND_SQLITE, path, tq_dsn(),
                            "test"};
    return queue_open_cfg(&cfg, flags, q, err, errlen);
}

/* The same on an empty queue. */
static inline int
tq_open_fresh(const char *path, unsigned flags, struct queue **q, char *err, size_t errlen)
{
    if (tq_pg())
        tq_pg_exec("SET client_min_messages = warning;"
                   "DROP TABLE IF EXISTS entries, bodies, messages, bh_meta CASCADE;"
                   "DROP FUNCTION IF EXISTS bh_remove_entry(bigint, text)");
    return tq_open(path, flags, q, err, errlen);
}

#endif
