/*
 * config_conn: the loader's part for the connectors list (SPEC §2, §8, §9):
 * each connector's keys, defaults and cross-key rules, and the duplicate
 * names between connectors. Internal to the config loader.
 *
 * Ownership: the connectors belong to the struct config; config.c frees
 * each with config_conn_fini(). Threads: one load, one thread.
 */
#ifndef BH_CONNECTORS_CONFIG_CONN_H
#define BH_CONNECTORS_CONFIG_CONN_H

#include "connectors/config.h"
#include "connectors/config_val.h"
#include "connectors/connector.h"
#include "connectors/ytree.h"

/* Check the connectors sequence seq and fill c->connectors. Needs the
 * server part (hostname) parsed first. Problems go through v. */
void config_conn_parse_all(struct config_val *v, struct config *c, const struct ytree_node *seq);
/* Free everything a connector holds (not the struct itself). */
void config_conn_fini(struct connector *k);

#endif
