#include "routing/balance.h"

#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"

/* A rejection loop on a broken random source ends after this many draws. */
#define RAND_TRIES 64

static uint64_t
weight_of(const struct balance_item *it)
{
    return it->weight ? it->weight : 1;
}

int
balance_round_robin(struct balance_item *v, size_t n)
{
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].up)
            continue;
        int64_t w = (int64_t)weight_of(&v[i]);
        v[i].current += w;
        total += w;
        if (best < 0 || v[i].current > v[best].current)
            best = (int)i;
    }
    if (best >= 0)
        v[best].current -= total;
    return best;
}

/* A uniform number below bound (> 0), without modulo bias. */
static uint64_t
uniform_below(uint64_t bound, balance_rand_cb rnd, void *arg)
{
    uint64_t threshold = (0 - bound) % bound;
    uint64_t x = rnd(arg);
    for (int i = 1; x < threshold && i < RAND_TRIES; i++)
        x = rnd(arg);
    return x % bound;
}

int
balance_random(const struct balance_item *v, size_t n, balance_rand_cb rnd, void *arg)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].up)
            total += weight_of(&v[i]);
    if (total == 0)
        return -1;
    uint64_t r = uniform_below(total, rnd, arg);
    for (size_t i = 0; i < n; i++) {
        if (!v[i].up)
            continue;
        uint64_t w = weight_of(&v[i]);
        if (r < w)
            return (int)i;
        r -= w;
    }
    return -1; /* not reached: r < total */
}

int
balance_failover(const struct balance_item *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].up)
            return (int)i;
    return -1;
}

int
balance_pick(struct balance_item *v, size_t n, enum connector_balance mode, balance_rand_cb rnd,
             void *arg)
{
    switch (mode) {
    case CONNECTOR_BALANCE_RANDOM:
        if (rnd != NULL)
            return balance_random(v, n, rnd, arg);
        break;
    case CONNECTOR_BALANCE_FAILOVER:
        return balance_failover(v, n);
    case CONNECTOR_BALANCE_ROUND_ROBIN:
        break;
    }
    return balance_round_robin(v, n);
}

size_t
balance_order(const struct balance_item *v, size_t n, enum connector_balance mode, int failed,
              balance_rand_cb rnd, void *arg, size_t *order)
{
    if (n == 0)
        return 0;
    /* Pick on a copy, taking each pick out as nginx does with its "tried"
     * set, so that v keeps its state. */
    struct balance_item *copy = xmalloc(n * sizeof(*copy));
    memcpy(copy, v, n * sizeof(*copy));
    if (failed >= 0 && (size_t)failed < n)
        copy[failed].up = false;
    size_t k = 0;
    for (; k < n; k++) {
        int i = balance_pick(copy, n, mode, rnd, arg);
        if (i < 0)
            break;
        order[k] = (size_t)i;
        copy[i].up = false;
    }
    free(copy);
    return k;
}
