/*
 * pg_schema: the layout of the postgres queue (SPEC §8) and its migrations.
 *
 * The tables live in the connection's current schema (search_path). The
 * table bh_meta holds ('application', 'bridgehead') and ('version', N);
 * migration step N takes version N to N + 1, as for SQLite (schema.h), and
 * runs under pg_advisory_lock(PG_SCHEMA_LOCK_KEY, 0) in one transaction, so
 * that whichever node starts first migrates and the others wait, then find
 * the work done. History:
 *   1  messages, bodies (bytea, stored uncompressed so that a piece can be
 *      read without the whole), entries (as in SQLite, plus lease_node and
 *      lease_until), the partial indexes for leasing, and the function
 *      bh_remove_entry() that deletes an entry and its message with its last
 *      entry, safely beside other nodes; entries.ignore_schedule as in
 *      the SQLite schema's version 3.
 *
 * Entry states are the numbers of enum queue_state; "held" is a flag.
 */
#ifndef BH_STORAGE_PG_SCHEMA_H
#define BH_STORAGE_PG_SCHEMA_H

#include <libpq-fe.h>
#include <stddef.h>

#define PG_SCHEMA_VERSION 1
#define PG_SCHEMA_LOCK_KEY 0x424851   /* advisory lock (key, 0) while migrating */
#define PG_NODE_LOCK_KEY 0x42484e     /* advisory lock (key, hashtext(node)) while serving */
#define PG_CHANNEL "bridgehead_queue" /* LISTEN/NOTIFY channel of new work */

/*
 * Bring the database behind conn to PG_SCHEMA_VERSION: create it in an
 * empty schema, migrate an older version, refuse a database whose tables
 * are not a bridgehead queue or whose version is newer. Returns 0, or
 * BH_EINVAL / BH_EIO with a message in err.
 */
int pg_schema_prepare(PGconn *conn, char *err, size_t errlen);

#endif
