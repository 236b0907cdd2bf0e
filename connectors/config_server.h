/*
 * config_server: the loader's part for the top-level sections other than
 * connectors (server, storage, queue, dns, metrics; SPEC §2, §8, §9),
 * including the users file. Internal to the config loader.
 *
 * Ownership: it fills fields of the struct config it is given, which owns
 * them (config.c frees them). Threads: one load, one thread.
 */
#ifndef BH_CONNECTORS_CONFIG_SERVER_H
#define BH_CONNECTORS_CONFIG_SERVER_H

#include "connectors/config.h"
#include "connectors/config_val.h"
#include "connectors/ytree.h"

/* Check every section but connectors of the root mapping and fill c with
 * their values or their defaults. Problems go through v. */
void config_server_parse(struct config_val *v, struct config *c, const struct ytree_node *root);

#endif
