/*
 * queue_pg: the queue on PostgreSQL (SPEC §8), behind the functions of
 * queue.h, which forwards to it when a queue is opened with backend
 * postgres. Several nodes share one database: any node commits mail; a node
 * leases due entries (SELECT ... FOR UPDATE SKIP LOCKED, then UPDATE ... SET
 * lease_node, lease_until = now() + the lease length, by the database's
 * clock), only for connectors it may deliver for, and takes over entries
 * whose lease expired. complete, bounce, defer and set_state succeed on a
 * delivering entry only for its lease holder (else BH_ENOENT).
 *
 * A handle opened with QUEUE_SERVE also holds the node's advisory lock (a
 * second node of the same name is refused), and runs a keeper thread
 * (queue_pg_keeper.h) that renews this node's leases every third of the
 * lease length and turns NOTIFYs from other nodes into its wake-up fd.
 *
 * Bodies are stored as bytea at commit (every node must read them); the
 * spool files of bodies that are still arriving stay in the local folder.
 *
 * Internal to storage/: queue.c and queue_admin.c call it, with the rules
 * of queue.h (one thread at a time per handle; blocking).
 */
#ifndef BH_STORAGE_QUEUE_PG_H
#define BH_STORAGE_QUEUE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/queue.h"

struct queue_pg;
struct pgdb;

/* The lease length: 60 s, or BRIDGEHEAD_TEST_LEASE_SECONDS (tests). */
int queue_pg_lease_seconds(void);

int queue_pg_open(const char *dsn, const char *node, unsigned flags, struct queue_pg **out,
                  char *err, size_t errlen);
void queue_pg_close(struct queue_pg *p);
const char *queue_pg_last_error(const struct queue_pg *p);
struct pgdb *queue_pg_db(struct queue_pg *p);
uint64_t queue_pg_round_trips(const struct queue_pg *p);
const char *queue_pg_node(const struct queue_pg *p);

int queue_pg_txn_begin(struct queue_pg *p);
int queue_pg_txn_commit(struct queue_pg *p);
void queue_pg_txn_rollback(struct queue_pg *p);
void queue_pg_set_durable(struct queue_pg *p, bool durable);

int queue_pg_commit(struct queue_pg *p, const struct queue_msg *msgs, size_t n);
int queue_pg_lease_due(struct queue_pg *p, int64_t now, const char *connector, size_t limit,
                       struct queue_entry *out);
int queue_pg_next_due(struct queue_pg *p, const char *connector, int64_t *when);
int queue_pg_remove(struct queue_pg *p, int64_t entry);
int queue_pg_defer(struct queue_pg *p, int64_t entry, int64_t next_attempt, const char *last_reply,
                   bool count_attempt);
int queue_pg_set_state(struct queue_pg *p, int64_t entry, enum queue_state state,
                       int64_t next_attempt);
int queue_pg_set_warned(struct queue_pg *p, const char *id);
int queue_pg_recover_delivering(struct queue_pg *p);
int queue_pg_read_body(struct queue_pg *p, const char *id, char **out, size_t *len);
int queue_pg_read_body_at(struct queue_pg *p, const char *id, uint64_t off, void *buf, size_t len,
                          size_t *got, uint64_t *total);
int queue_pg_set_excluded(struct queue_pg *p, const char *const *connectors, size_t n);
int queue_pg_wake_fd(const struct queue_pg *p);
void queue_pg_wake_clear(struct queue_pg *p);
/* Tell the other nodes that there is new work (NOTIFY, sent at commit). */
int queue_pg_notify(struct queue_pg *p);

/* Fill e from row `row` of a result whose first columns are
 * QUEUE_PG_ENTRY_COLS; as queue_sql_entry() (queue_sql.h). */
void queue_pg_entry(PGresult *r, int row, struct queue_entry *e, enum queue_state *stored,
                    int64_t *stored_next);

/* The columns of an entry, for queue_pg_entry(). */
#define QUEUE_PG_ENTRY_COLS                                                                        \
    "e.eid, m.qid, e.rcpt, m.sender, e.connector, m.envid, e.orcpt, e.last_reply, e.state,"        \
    " e.held, e.attempts, e.notify, m.ret, m.priority, m.system, m.warned, m.size,"                \
    " m.received, e.next_attempt, e.lease_node, e.ignore_schedule"
#define QUEUE_PG_ENTRY_FROM " FROM entries e JOIN messages m ON m.mid = e.mid"

#endif
