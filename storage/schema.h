/*
 * schema: the layout of the SQLite queue and its migrations.
 *
 * A bridgehead queue is an SQLite file whose PRAGMA application_id is
 * SCHEMA_APPLICATION_ID and whose PRAGMA user_version is the schema version.
 * Migration step N takes version N to N + 1; a new file is migrated from
 * version 0, so the steps that build a new queue are the ones that upgrade
 * old ones. History:
 *   1  messages, bodies (the message text as one BLOB), entries (one per
 *      recipient: connector, state, attempts, next attempt, last reply, DSN
 *      parameters).
 *   2  messages.warned (the one delay DSN is sent), partial indexes over the
 *      entries that are due, so that leasing never scans the table.
 *   3  entries.ignore_schedule: `queue flush --now` or ETRN made the entry
 *      due; its next attempt goes out even if the connector's window is
 *      closed (queue.h, queue_defer() and queue_set_state() clear it).
 *
 * Entry states are stored as the numbers of enum queue_state (queue.h),
 * except that "held" is a separate flag (entries.held) over the state it
 * will return to; the numbers are part of the file format.
 *
 * schema_prepare() is called by queue_open() on a fresh connection, before
 * the WAL and other pragmas are set, so a foreign file is never modified.
 * It uses the connection only for the call: the thread that owns the
 * connection calls it.
 */
#ifndef BH_STORAGE_SCHEMA_H
#define BH_STORAGE_SCHEMA_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#define SCHEMA_VERSION 3
#define SCHEMA_APPLICATION_ID 0x42484451 /* "BHDQ" */

/*
 * Check that db is a bridgehead queue and bring it to SCHEMA_VERSION:
 * - an empty database (no tables, application_id and user_version 0) gets
 *   the whole schema;
 * - an older version is migrated in one transaction;
 * - a file that is not SQLite, holds other tables, has another
 *   application_id, a newer version, or is corrupt is refused.
 * With readonly, nothing is written: an empty or old queue is refused too.
 * Returns 0, BH_EINVAL (not a bridgehead queue, or a version this build
 * cannot use), BH_EIO (corrupt or unreadable), BH_ENOSPC or BH_EBUSY, with
 * a message in err (without the file name; the caller adds it).
 */
int schema_prepare(sqlite3 *db, bool readonly, char *err, size_t errlen);

/* Map an SQLite result code to a BH_E* code (SQLITE_OK gives 0). */
int schema_error(int sqlite_rc);

#endif
