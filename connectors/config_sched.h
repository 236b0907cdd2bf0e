/*
 * config_sched: the loader's part for one connector's "schedule" mapping
 * (SPEC §2, §4 "Schedules", §9): timezone, windows, oversized windows and
 * threshold, checked and built into a struct schedule. Internal to the
 * config loader.
 *
 * Ownership: the schedule belongs to the connector (config_conn_fini frees
 * it with schedule_free). Threads: one load, one thread.
 */
#ifndef BH_CONNECTORS_CONFIG_SCHED_H
#define BH_CONNECTORS_CONFIG_SCHED_H

#include "connectors/config_val.h"
#include "connectors/connector.h"
#include "connectors/ytree.h"

/* Check the "schedule" key of connector mapping m, if any, and set
 * k->schedule (NULL when absent or bad). Problems go through v. */
void config_sched_parse(struct config_val *v, const struct ytree_node *m, struct connector *k);

#endif
