/*
 * router: picks the connector for a recipient (SPEC §3).
 *
 * router_new() builds an address-space index (aspace.h) over a config's
 * connectors; a lookup costs O(labels of the domain) whatever the number of
 * spaces. The router borrows the config: the caller keeps a reference to it
 * for as long as the router lives. A router is immutable after router_new(),
 * so any thread may route through it at the same time.
 */
#ifndef BH_ROUTING_ROUTER_H
#define BH_ROUTING_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connectors/config.h"
#include "connectors/connector.h"
#include "connectors/domain.h"

#define ROUTER_SIZE_UNKNOWN UINT64_MAX
#define ROUTER_PRIORITY_UNKNOWN (-1)

struct router;

/* What is known about the message when it is routed. */
struct router_query {
    const char *sender; /* NULL: skip sender restrictions; "": the null sender <> */
    uint64_t size;      /* ROUTER_SIZE_UNKNOWN: size limits pass */
    int priority;       /* enum connector_priority or ROUTER_PRIORITY_UNKNOWN (passes) */
    bool system;        /* a message bridgehead made itself (DSN) */
};

enum router_status {
    ROUTER_OK,
    ROUTER_BAD_DOMAIN, /* address literal, no domain, not a host name: 501 5.1.3 */
    ROUTER_NO_MATCH,   /* no connector matches: 550 5.4.4 */
    ROUTER_TOO_LARGE,  /* every candidate refused, size the only reason: 552 5.3.4 */
    ROUTER_REFUSED     /* every candidate refused: 550 5.7.1 */
};

enum router_reason {
    ROUTER_REASON_LESS_SPECIFIC,
    ROUTER_REASON_HIGHER_COST,
    ROUTER_REASON_NAME_ORDER,
    ROUTER_REASON_SENDER_REFUSED,
    ROUTER_REASON_TOO_LARGE,
    ROUTER_REASON_PRIORITY_REFUSED,
    ROUTER_REASON_SYSTEM_REFUSED,
    ROUTER_REASON_NON_SYSTEM_REFUSED
};

/* A connector that matched but lost, and why. */
struct router_considered {
    const struct connector *connector;
    const char *space; /* its best matching space */
    unsigned cost;
    enum router_reason reason;
};

struct router_result {
    enum router_status status;
    char domain[DOMAIN_MAX + 1];       /* normalised; "" when it could not be parsed */
    const struct connector *connector; /* the winner, NULL unless ROUTER_OK */
    const char *space;                 /* the winner's matching space */
    unsigned cost;
    struct router_considered *considered; /* every other matching connector, */
    size_t nconsidered;                   /* most specific first, then cost, name */
    char error[160]; /* for status != ROUTER_OK: "no connector matches x.org",
                        "connector partner refuses sender a@b" ... */
};

struct router *router_new(const struct config *c);
void router_free(struct router *r);

/*
 * Route one recipient address (the whole address; the domain is what follows
 * the last '@'). Fills *res, which the caller releases with
 * router_result_fini(). Returns res->status.
 */
enum router_status router_route(const struct router *r, const char *recipient,
                                const struct router_query *q, struct router_result *res);
void router_result_fini(struct router_result *res);

/*
 * As router_route(), and adds the number of address-space index probes the
 * lookup made to *probes (when not NULL): one per label of the domain. For
 * benchmarks and tests. q may be NULL in both: nothing known (no sender
 * check, size and priority unknown, not a system message).
 */
enum router_status router_route_counted(const struct router *r, const char *recipient,
                                        const struct router_query *q,
                                        struct router_result *res, unsigned *probes);

/* "ok", "bad domain", "no match", "too large", "refused". */
const char *router_status_name(enum router_status status);

/* "less specific", "higher cost", ... as SPEC §6 spells them. */
const char *router_reason_name(enum router_reason reason);


#endif
