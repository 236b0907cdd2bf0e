/*
 * queue_pg_admin: queue_admin.h on the postgres queue (SPEC §6, §8): the
 * same functions over the whole cluster's queue. queue_admin.c forwards to
 * them. Release, reroute (ETRN, flush, reload) and the like NOTIFY the
 * other nodes at commit, so that they look at the queue at once. Entries
 * in delivery show their lease holder in queue_entry.node.
 */
#ifndef BH_STORAGE_QUEUE_PG_ADMIN_H
#define BH_STORAGE_QUEUE_PG_ADMIN_H

#include "storage/queue_admin.h"

struct queue_pg;

int queue_pg_admin_list(struct queue_pg *p, const struct queue_admin_filter *f,
                        queue_admin_entry_cb *cb, void *arg);
int queue_pg_admin_hold(struct queue_pg *p, const char *id, bool held);
int queue_pg_admin_delete(struct queue_pg *p, const char *id);
int queue_pg_admin_stats(struct queue_pg *p, int64_t now, queue_admin_stat_cb *cb, void *arg);
int queue_pg_admin_reroute(struct queue_pg *p, const struct queue_admin_filter *f,
                           queue_admin_reroute_cb *cb, void *arg);

#endif
