/*
 * queue_sql: the SQL text of the queue's statements and the decoding of an
 * entry row, shared by queue.c and queue_admin.c.
 *
 * Internal to storage/. The statements are prepared and cached per handle
 * by qdb (qdb_stmt() with a QUEUE_SQL_* number). The functions only read
 * the statement they are given: the thread that owns the handle calls them.
 */
#ifndef BH_STORAGE_QUEUE_SQL_H
#define BH_STORAGE_QUEUE_SQL_H

#include <sqlite3.h>
#include <stdint.h>

#include "storage/queue.h"

enum queue_sql_st {
    QUEUE_SQL_INS_MSG,
    QUEUE_SQL_INS_BODY,
    QUEUE_SQL_INS_ENTRY,
    QUEUE_SQL_LEASE_ANY,
    QUEUE_SQL_LEASE_CONN,
    QUEUE_SQL_MARK,
    QUEUE_SQL_NEXT_ANY,
    QUEUE_SQL_NEXT_CONN,
    QUEUE_SQL_DEL_ENTRY,
    QUEUE_SQL_DEL_ORPHAN,
    QUEUE_SQL_DEFER,
    QUEUE_SQL_SET_STATE,
    QUEUE_SQL_SET_HELD,
    QUEUE_SQL_WARNED,
    QUEUE_SQL_RECOVER,
    QUEUE_SQL_BODY,
    QUEUE_SQL_MID,
    QUEUE_SQL_HOLD_MSG,
    QUEUE_SQL_DEL_MSG,
    QUEUE_SQL_LIST,
    QUEUE_SQL_LIST_MSG,
    QUEUE_SQL_STATS,
    QUEUE_SQL_CHANGE,
    QUEUE_SQL_COUNT
};

/* The SQL of each statement, numbered by enum queue_sql_st. */
extern const char *const queue_sql_text[QUEUE_SQL_COUNT];

/* Bind text, or NULL for a NULL pointer (SQLITE_STATIC: step before the
 * text goes away, and qdb_done() after). */
void queue_sql_bind_text(sqlite3_stmt *s, int i, const char *text);

/* Bind a time, or NULL for QUEUE_NEVER. */
void queue_sql_bind_time(sqlite3_stmt *s, int i, int64_t t);

/*
 * Fill e (its strings newly allocated: queue_entry_fini()) from the current
 * row of a statement that selects the entry columns first. *stored (if not
 * NULL) gets the stored state, beneath the held flag, and *stored_next the
 * stored next_attempt (QUEUE_NEVER for NULL).
 */
void queue_sql_entry(sqlite3_stmt *s, struct queue_entry *e, enum queue_state *stored,
                     int64_t *stored_next);

#endif
