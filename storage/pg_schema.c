#include "storage/pg_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "storage/pgdb.h"

/* Step N takes the schema from version N to N + 1. Never edit a step once
 * released: add a new one and raise PG_SCHEMA_VERSION. */
static const char *const steps[PG_SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE bh_meta (k text PRIMARY KEY, v text NOT NULL);"
    "INSERT INTO bh_meta VALUES ('application', 'bridgehead'), ('version', '0');"
    "CREATE TABLE messages ("
    " mid bigserial PRIMARY KEY,"
    " qid text NOT NULL UNIQUE,"
    " sender text NOT NULL,"
    " envid text,"
    " ret int NOT NULL DEFAULT 0,"
    " priority int NOT NULL DEFAULT 1,"
    " system boolean NOT NULL DEFAULT false,"
    " size bigint NOT NULL,"
    " received bigint NOT NULL,"
    " warned boolean NOT NULL DEFAULT false);"
    "CREATE TABLE bodies ("
    " mid bigint PRIMARY KEY REFERENCES messages(mid) ON DELETE CASCADE,"
    " data bytea NOT NULL);"
    "ALTER TABLE bodies ALTER COLUMN data SET STORAGE EXTERNAL;"
    "CREATE TABLE entries ("
    " eid bigserial PRIMARY KEY,"
    " mid bigint NOT NULL REFERENCES messages(mid) ON DELETE CASCADE,"
    " rcpt text NOT NULL,"
    " connector text NOT NULL,"
    " state int NOT NULL CHECK (state IN (0, 1, 2, 3, 5)),"
    " held boolean NOT NULL DEFAULT false,"
    " attempts int NOT NULL DEFAULT 0,"
    " next_attempt bigint,"
    " last_reply text,"
    " notify int NOT NULL DEFAULT 0,"
    " orcpt text,"
    " ignore_schedule boolean NOT NULL DEFAULT false,"
    " lease_node text,"
    " lease_until timestamptz);"
    "CREATE INDEX entries_mid ON entries(mid);"
    "CREATE INDEX entries_due ON entries(next_attempt) WHERE state < 3 AND NOT held;"
    "CREATE INDEX entries_leased ON entries(lease_until) WHERE state = 5;"
    "CREATE INDEX entries_node ON entries(lease_node) WHERE state = 5;"
    /* Delete an entry (only its lease holder may while it is delivering),
     * then its message if it was the last. The message row is locked
     * first, so that two nodes removing a message's last two entries at
     * once cannot both see the other's entry and leave the message behind:
     * the second waits, and its next statement sees the first's commit. */
    "CREATE FUNCTION bh_remove_entry(p_eid bigint, p_node text) RETURNS bigint"
    " LANGUAGE plpgsql AS $$"
    " DECLARE v_mid bigint;"
    " BEGIN"
    "  SELECT mid INTO v_mid FROM entries WHERE eid = p_eid;"
    "  IF v_mid IS NULL THEN RETURN NULL; END IF;"
    "  PERFORM 1 FROM messages WHERE mid = v_mid FOR UPDATE;"
    "  DELETE FROM entries WHERE eid = p_eid"
    "   AND (state <> 5 OR lease_node IS NOT DISTINCT FROM p_node) RETURNING mid INTO v_mid;"
    "  IF v_mid IS NULL THEN RETURN NULL; END IF;"
    "  DELETE FROM messages m WHERE m.mid = v_mid"
    "   AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.mid = v_mid);"
    "  RETURN v_mid;"
    " END $$;",
};

static int
fail(PGconn *c, PGresult *r, const char *what, char *err, size_t errlen)
{
    const char *m = r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c);
    snprintf(err, errlen, "%s: %.*s", what, (int)strcspn(m, "\n"), m);
    int rc = pgdb_status(r);
    return rc != 0 ? rc : BH_EIO;
}

static int
exec(PGconn *c, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    int rc = pgdb_status(r) == 0 ? 0 : fail(c, r, what, err, errlen);
    PQclear(r);
    return rc;
}

/* What the database holds: -1 nothing of ours (*foreign: other queue tables
 * exist), else the schema version. */
static int
read_version(PGconn *c, long *version, int *foreign, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('bh_meta') IS NOT NULL,"
                            " to_regclass('messages') IS NOT NULL OR"
                            " to_regclass('entries') IS NOT NULL");
    if (pgdb_status(r) != 0) {
        int rc = fail(c, r, "cannot read the queue database", err, errlen);
        PQclear(r);
        return rc;
    }
    bool meta = pgdb_bool(r, 0, 0);
    *foreign = !meta && pgdb_bool(r, 0, 1);
    PQclear(r);
    *version = -1;
    if (!meta)
        return 0;
    r = PQexec(c, "SELECT (SELECT v FROM bh_meta WHERE k = 'application'),"
                  " (SELECT v FROM bh_meta WHERE k = 'version')");
    if (pgdb_status(r) != 0) {
        int rc = fail(c, r, "cannot read the queue database", err, errlen);
        PQclear(r);
        return rc;
    }
    if (PQgetisnull(r, 0, 0) || strcmp(PQgetvalue(r, 0, 0), "bridgehead") != 0)
        *foreign = 1;
    else
        *version = (long)pgdb_int(r, 0, 1, -1);
    PQclear(r);
    return 0;
}

/* Inside the transaction, holding the lock: look again and migrate. */
static int
migrate_locked(PGconn *c, char *err, size_t errlen)
{
    long v;
    int foreign;
    int rc = read_version(c, &v, &foreign, err, errlen);
    if (rc != 0)
        return rc;
    if (foreign) {
        snprintf(err, errlen, "not a bridgehead queue (the database holds other queue tables)");
        return BH_EINVAL;
    }
    if (v > PG_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "queue schema version %ld is not one this bridgehead knows (it knows 1 to %d)", v,
                 PG_SCHEMA_VERSION);
        return BH_EINVAL;
    }
    for (long s = v < 0 ? 0 : v; rc == 0 && s < PG_SCHEMA_VERSION; s++)
        rc = exec(c, steps[s], "cannot migrate the queue", err, errlen);
    if (rc == 0 && v < PG_SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE bh_meta SET v = '%d' WHERE k = 'version'",
                 PG_SCHEMA_VERSION);
        rc = exec(c, sql, "cannot migrate the queue", err, errlen);
    }
    return rc;
}

int
pg_schema_prepare(PGconn *c, char *err, size_t errlen)
{
    long v;
    int foreign;
    err[0] = '\0';
    int rc = read_version(c, &v, &foreign, err, errlen);
    if (rc == 0 && !foreign && v == PG_SCHEMA_VERSION)
        return 0; /* the common case: nothing to do, no lock taken */
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%d, 0)", PG_SCHEMA_LOCK_KEY);
    rc = exec(c, sql, "cannot lock the queue schema", err, errlen);
    if (rc != 0)
        return rc;
    rc = exec(c, "BEGIN", "cannot migrate the queue", err, errlen);
    if (rc == 0) {
        rc = migrate_locked(c, err, errlen);
        char keep[256];
        snprintf(keep, sizeof keep, "%s", err);
        int crc = exec(c, rc == 0 ? "COMMIT" : "ROLLBACK", "cannot migrate the queue", err, errlen);
        if (rc == 0)
            rc = crc;
        else
            snprintf(err, errlen, "%s", keep);
    }
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d, 0)", PG_SCHEMA_LOCK_KEY);
    PQclear(PQexec(c, sql));
    return rc;
}
