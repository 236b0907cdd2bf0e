/*
 * balance: picks the bridgehead for a new connection (SPEC §4) among those
 * that are up: smooth weighted round robin (as nginx does it), weighted
 * random, or failover (the first up in list order), and gives the order in
 * which to try the rest after a failure.
 *
 * Pure functions over an array of struct balance_item that the caller owns
 * (the delivery engine keeps one per connector, next to its health state).
 * Round robin updates the items' `current` fields, so calls on one array
 * must not run concurrently; everything else only reads them. No function
 * keeps a pointer after it returns.
 */
#ifndef BH_ROUTING_BALANCE_H
#define BH_ROUTING_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connectors/connector.h"

struct balance_item {
    unsigned weight; /* >= 1; 0 counts as 1 */
    bool up;
    int64_t current; /* smooth round robin state; start at 0 */
};

/* A uniform 64-bit random number; arg is the caller's state. */
typedef uint64_t (*balance_rand_cb)(void *arg);

/*
 * Smooth weighted round robin: every up item's current grows by its weight,
 * the largest current wins (the first in list order on a tie) and loses the
 * total weight. Weights 3:1 give a, a, b, a, ... Returns the index picked,
 * or -1 when no item is up.
 */
int balance_round_robin(struct balance_item *v, size_t n);

/* Weighted random among the up items; rnd must not be NULL. -1: none up. */
int balance_random(const struct balance_item *v, size_t n, balance_rand_cb rnd, void *arg);

/* The first up item in list order, or -1. */
int balance_failover(const struct balance_item *v, size_t n);

/* One pick by mode. rnd is used only for CONNECTOR_BALANCE_RANDOM; when it is
 * NULL, random falls back to round robin. */
int balance_pick(struct balance_item *v, size_t n, enum connector_balance mode, balance_rand_cb rnd,
                 void *arg);

/*
 * After item `failed` (an index < n, or -1 for none) failed: write into
 * order[] (room for n) the indexes of the other up items, in the order to
 * try them, and return how many. Round robin: the picks that smooth round
 * robin would make next, simulated on a copy (v is not changed). Random: a
 * weighted draw without replacement. Failover: list order.
 */
size_t balance_order(const struct balance_item *v, size_t n, enum connector_balance mode,
                     int failed, balance_rand_cb rnd, void *arg, size_t *order);

#endif
