#include "storage/queue_sql.h"

#include <stdio.h>
#include <string.h>

#include "connectors/util.h"

/* The columns of a struct queue_entry, read by queue_sql_entry(). */
#define ENTRY_COLS                                                                                 \
    "e.eid, m.qid, e.rcpt, m.sender, e.connector, m.envid, e.orcpt, e.last_reply, e.state,"        \
    " e.held, e.attempts, e.notify, m.ret, m.priority, m.system, m.warned, m.size,"                \
    " m.received, e.next_attempt, e.ignore_schedule"
#define ENTRY_FROM " FROM entries e JOIN messages m ON m.mid = e.mid"
/* The state as shown: delivering > held > the stored one. */
#define SHOWN_STATE "(CASE WHEN e.state = 5 THEN 5 WHEN e.held THEN 4 ELSE e.state END)"
/* Must repeat the partial indexes' WHERE for SQLite to use them. */
#define DUE "e.state < 3 AND e.held = 0 AND e.next_attempt <= ?1"
#define LEASE_ORDER " ORDER BY m.priority DESC, m.received, e.eid LIMIT ?2"
/* The rest of a list query: ?2 connector, ?4 state as shown (NULL: any), ?5
 * skip delivering, ?6 limit. */
#define LIST_WHERE                                                                                 \
    " AND (?2 IS NULL OR e.connector = ?2) AND (?4 IS NULL OR " SHOWN_STATE " = ?4)"               \
    " AND (?5 = 0 OR e.state <> 5) ORDER BY e.eid LIMIT ?6"

const char *const queue_sql_text[QUEUE_SQL_COUNT] = {
    [QUEUE_SQL_INS_MSG] = "INSERT INTO messages (qid, sender, envid, ret, priority, system, size,"
                          " received) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [QUEUE_SQL_INS_BODY] = "INSERT INTO bodies (mid, data) VALUES (?1, zeroblob(?2))",
    [QUEUE_SQL_INS_ENTRY] = "INSERT INTO entries (mid, rcpt, connector, state, held, next_attempt,"
                            " notify, orcpt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [QUEUE_SQL_LEASE_ANY] = "SELECT " ENTRY_COLS ENTRY_FROM " WHERE " DUE LEASE_ORDER,
    [QUEUE_SQL_LEASE_CONN] =
        "SELECT " ENTRY_COLS ENTRY_FROM " WHERE " DUE " AND e.connector = ?3" LEASE_ORDER,
    [QUEUE_SQL_MARK] = "UPDATE entries SET state = 5 WHERE eid = ?1",
    [QUEUE_SQL_NEXT_ANY] = "SELECT min(next_attempt) FROM entries WHERE state < 3 AND held = 0",
    [QUEUE_SQL_NEXT_CONN] = "SELECT min(next_attempt) FROM entries WHERE state < 3 AND held = 0"
                            " AND connector = ?1",
    [QUEUE_SQL_DEL_ENTRY] = "DELETE FROM entries WHERE eid = ?1 RETURNING mid",
    [QUEUE_SQL_DEL_ORPHAN] = "DELETE FROM messages WHERE mid = ?1"
                             " AND NOT EXISTS (SELECT 1 FROM entries WHERE mid = ?1)",
    [QUEUE_SQL_DEFER] = "UPDATE entries SET state = 1, next_attempt = ?2,"
                        " last_reply = coalesce(?3, last_reply), attempts = attempts + ?4,"
                        " ignore_schedule = (ignore_schedule AND ?4 = 0) WHERE eid = ?1",
    [QUEUE_SQL_SET_STATE] = "UPDATE entries SET state = ?2, next_attempt = ?3,"
                            " ignore_schedule = (ignore_schedule AND ?2 < 2) WHERE eid = ?1",
    [QUEUE_SQL_SET_HELD] = "UPDATE entries SET held = 1 WHERE eid = ?1",
    [QUEUE_SQL_WARNED] = "UPDATE messages SET warned = 1 WHERE qid = ?1 AND warned = 0",
    [QUEUE_SQL_RECOVER] = "UPDATE entries SET state = 0 WHERE state = 5",
    [QUEUE_SQL_BODY] = "SELECT b.mid, length(b.data) FROM messages m JOIN bodies b ON b.mid = m.mid"
                       " WHERE m.qid = ?1",
    [QUEUE_SQL_MID] = "SELECT mid FROM messages WHERE qid = ?1",
    [QUEUE_SQL_HOLD_MSG] = "UPDATE entries SET held = ?2 WHERE mid = ?1",
    [QUEUE_SQL_DEL_MSG] = "DELETE FROM messages WHERE mid = ?1",
    [QUEUE_SQL_LIST] = "SELECT " ENTRY_COLS ENTRY_FROM " WHERE e.eid > ?1" LIST_WHERE,
    [QUEUE_SQL_LIST_MSG] =
        "SELECT " ENTRY_COLS ENTRY_FROM " WHERE e.mid = ?3 AND e.eid > ?1" LIST_WHERE,
    [QUEUE_SQL_STATS] = "SELECT e.connector, " SHOWN_STATE ", CASE"
                        " WHEN ?1 - m.received < 300 THEN 0 WHEN ?1 - m.received < 600 THEN 1"
                        " WHEN ?1 - m.received < 1200 THEN 2 WHEN ?1 - m.received < 2400 THEN 3"
                        " WHEN ?1 - m.received < 4800 THEN 4 WHEN ?1 - m.received < 9600 THEN 5"
                        " WHEN ?1 - m.received < 19200 THEN 6 WHEN ?1 - m.received < 38400 THEN 7"
                        " WHEN ?1 - m.received < 76800 THEN 8 ELSE 9 END, count(*),"
                        " min(m.received)" ENTRY_FROM " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    [QUEUE_SQL_CHANGE] = "UPDATE entries SET connector = ?2, state = ?3, next_attempt = ?4,"
                         " held = (held OR ?5), ignore_schedule = ?6 WHERE eid = ?1",
};

void
queue_sql_bind_text(sqlite3_stmt *s, int i, const char *text)
{
    if (text == NULL)
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
}

void
queue_sql_bind_time(sqlite3_stmt *s, int i, int64_t t)
{
    if (t == QUEUE_NEVER)
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_int64(s, i, t);
}

static char *
col_str(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t == NULL ? NULL : xstrdup((const char *)t);
}

void
queue_sql_entry(sqlite3_stmt *s, struct queue_entry *e, enum queue_state *stored,
                int64_t *stored_next)
{
    memset(e, 0, sizeof *e);
    e->entry = sqlite3_column_int64(s, 0);
    const unsigned char *id = sqlite3_column_text(s, 1);
    snprintf(e->id, sizeof e->id, "%s", id != NULL ? (const char *)id : "");
    e->rcpt = col_str(s, 2);
    e->sender = col_str(s, 3);
    e->connector = col_str(s, 4);
    e->envid = col_str(s, 5);
    e->orcpt = col_str(s, 6);
    e->last_reply = col_str(s, 7);
    int state = sqlite3_column_int(s, 8);
    e->held = sqlite3_column_int(s, 9) != 0;
    e->attempts = (unsigned)sqlite3_column_int64(s, 10);
    e->notify = (unsigned)sqlite3_column_int(s, 11);
    e->ret = (enum queue_ret)sqlite3_column_int(s, 12);
    e->priority = sqlite3_column_int(s, 13);
    e->system = sqlite3_column_int(s, 14) != 0;
    e->warned = sqlite3_column_int(s, 15) != 0;
    e->size = (uint64_t)sqlite3_column_int64(s, 16);
    e->received = sqlite3_column_int64(s, 17);
    int64_t next =
        sqlite3_column_type(s, 18) == SQLITE_NULL ? QUEUE_NEVER : sqlite3_column_int64(s, 18);
    e->state = state == QUEUE_DELIVERING ? QUEUE_DELIVERING
               : e->held                 ? QUEUE_HELD
                                         : (enum queue_state)state;
    e->next_attempt = (e->state == QUEUE_HELD || e->state == QUEUE_TRIGGERED) ? QUEUE_NEVER : next;
    e->ignore_schedule = sqlite3_column_int(s, 19) != 0;
    if (stored != NULL)
        *stored = (enum queue_state)state;
    if (stored_next != NULL)
        *stored_next = next;
}
