#include "routing/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "routing/aspace.h"

struct router {
    const struct config *config; /* borrowed */
    struct aspace *index;        /* owner = index into config->connectors */
};

/* Why a candidate refuses the message; the first bit set is its reason. */
#define REFUSE_SENDER 1u
#define REFUSE_SIZE 2u
#define REFUSE_PRIORITY 4u
#define REFUSE_SYSTEM 8u
#define REFUSE_NON_SYSTEM 16u

/* One matching connector and its best matching space. */
struct match {
    const struct connector *c;
    const char *space;
    unsigned owner, cost, spec, refused;
};

/* The hits of one lookup; small lookups stay on the stack. */
#define MATCH_STACK 16
struct matches {
    struct match *v;
    size_t n, cap;
    struct match stack[MATCH_STACK];
};

static const struct router_query query_unknown = {NULL, ROUTER_SIZE_UNKNOWN,
                                                  ROUTER_PRIORITY_UNKNOWN, false};

static int
router_check_connector(const struct connector *c)
{
    if (c->name == NULL || (c->naspaces > 0 && c->aspaces == NULL))
        return BH_EINVAL;
    return 0;
}

struct router *
router_new(const struct config *c)
{
    if (c == NULL || (c->nconnectors > 0 && c->connectors == NULL) || c->nconnectors > UINT32_MAX)
        return NULL;
    struct router *r = xcalloc(1, sizeof(*r));
    r->config = c;
    r->index = aspace_new();
    for (size_t i = 0; i < c->nconnectors; i++) {
        const struct connector *con = &c->connectors[i];
        if (router_check_connector(con) < 0)
            goto fail;
        for (size_t j = 0; j < con->naspaces; j++) {
            const struct connector_aspace *sp = &con->aspaces[j];
            if (aspace_add(r->index, sp->space, (unsigned)i, sp->cost) < 0)
                goto fail;
        }
    }
    return r;
fail:
    router_free(r);
    return NULL;
}

void
router_free(struct router *r)
{
    if (r == NULL)
        return;
    aspace_free(r->index);
    free(r);
}

/*
 * Copy at most max bytes of hostile s into out (size outsz) for an error
 * message: bytes outside printable ASCII become '?', a cut ends in "...".
 */
static void
sanitise(char *out, size_t outsz, const char *s, size_t max)
{
    size_t n = 0, i = 0;
    for (; i < max && s[i] != '\0' && n + 1 < outsz; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    out[n] = '\0';
    if (s[i] != '\0' && outsz >= 4)
        memcpy(out + (n + 3 < outsz ? n : outsz - 4), "...", 4);
}

static void
bad_domain(struct router_result *res, const char *why, const char *what)
{
    char shown[72];
    sanitise(shown, sizeof(shown), what, 64);
    res->domain[0] = '\0';
    res->status = ROUTER_BAD_DOMAIN;
    snprintf(res->error, sizeof(res->error), "%s: %s", why, shown);
}

/* The domain after the last '@', normalised into res->domain. */
static int
parse_domain(const char *rcpt, struct router_result *res)
{
    if (rcpt == NULL) {
        bad_domain(res, "no recipient address", "");
        return BH_EINVAL;
    }
    const char *at = strrchr(rcpt, '@');
    if (at == NULL) {
        bad_domain(res, "no '@' and domain in recipient", rcpt);
        return BH_EINVAL;
    }
    const char *d = at + 1;
    if (*d == '\0') {
        bad_domain(res, "no domain after '@' in recipient", rcpt);
        return BH_EINVAL;
    }
    if (*d == '[') {
        bad_domain(res, "address literals are not routed", d);
        return BH_EINVAL;
    }
    if (domain_normalise(d, strlen(d), res->domain) < 0) {
        bad_domain(res, "not a valid domain name", d);
        return BH_EINVAL;
    }
    return 0;
}

static int
collect(void *arg, const struct aspace_hit *hit)
{
    struct matches *m = arg;
    if (m->n == m->cap) {
        size_t cap = m->cap * 2;
        if (m->v == m->stack) {
            m->v = xmalloc(cap * sizeof(*m->v));
            memcpy(m->v, m->stack, m->n * sizeof(*m->v));
        } else {
            m->v = xrealloc(m->v, cap * sizeof(*m->v));
        }
        m->cap = cap;
    }
    m->v[m->n++] = (struct match){
        NULL, hit->space, hit->owner, hit->cost, aspace_specificity(hit->labels, hit->exact), 0};
    return 0;
}

/* Owner ascending, then most specific, then cheapest: the first of each
 * owner is its best match. */
static int
cmp_owner(const void *pa, const void *pb)
{
    const struct match *a = pa, *b = pb;
    if (a->owner != b->owner)
        return a->owner < b->owner ? -1 : 1;
    if (a->spec != b->spec)
        return a->spec > b->spec ? -1 : 1;
    if (a->cost != b->cost)
        return a->cost < b->cost ? -1 : 1;
    return 0;
}

/* The selection order: most specific, lowest cost, then name in byte order
 * (the owner index only breaks ties between duplicate names). */
static int
cmp_select(const void *pa, const void *pb)
{
    const struct match *a = pa, *b = pb;
    if (a->spec != b->spec)
        return a->spec > b->spec ? -1 : 1;
    if (a->cost != b->cost)
        return a->cost < b->cost ? -1 : 1;
    int rc = strcmp(a->c->name, b->c->name);
    if (rc != 0)
        return rc;
    return a->owner < b->owner ? -1 : a->owner > b->owner;
}

/* Keep each connector once, with its most specific match, in selection
 * order. */
static void
matches_settle(const struct router *r, struct matches *m)
{
    if (m->n > 1) {
        qsort(m->v, m->n, sizeof(*m->v), cmp_owner);
        size_t k = 1;
        for (size_t i = 1; i < m->n; i++)
            if (m->v[i].owner != m->v[k - 1].owner)
                m->v[k++] = m->v[i];
        m->n = k;
    }
    for (size_t i = 0; i < m->n; i++)
        m->v[i].c = &r->config->connectors[m->v[i].owner];
    if (m->n > 1)
        qsort(m->v, m->n, sizeof(*m->v), cmp_select);
}

static unsigned
refusals(const struct connector *c, const struct router_query *q)
{
    unsigned why = 0;
    if (q->sender != NULL && !connector_sender_allowed(&c->senders, q->sender))
        why |= REFUSE_SENDER;
    if (q->size != ROUTER_SIZE_UNKNOWN && c->max_message_size != 0 && q->size > c->max_message_size)
        why |= REFUSE_SIZE;
    /* Values outside the enum count as unknown, like ROUTER_PRIORITY_UNKNOWN. */
    if (q->priority >= CONNECTOR_PRIORITY_LOW && q->priority <= CONNECTOR_PRIORITY_HIGH &&
        (c->priorities & (1u << q->priority)) == 0)
        why |= REFUSE_PRIORITY;
    if (q->system && !c->system_messages)
        why |= REFUSE_SYSTEM;
    if (!q->system && !c->non_system_messages)
        why |= REFUSE_NON_SYSTEM;
    return why;
}

static enum router_reason
refusal_reason(unsigned why)
{
    if (why & REFUSE_SENDER)
        return ROUTER_REASON_SENDER_REFUSED;
    if (why & REFUSE_SIZE)
        return ROUTER_REASON_TOO_LARGE;
    if (why & REFUSE_PRIORITY)
        return ROUTER_REASON_PRIORITY_REFUSED;
    if (why & REFUSE_SYSTEM)
        return ROUTER_REASON_SYSTEM_REFUSED;
    return ROUTER_REASON_NON_SYSTEM_REFUSED;
}

static enum router_reason
loser_reason(const struct match *x, const struct match *top, const struct match *win)
{
    if (x->spec < top->spec)
        return ROUTER_REASON_LESS_SPECIFIC;
    if (x->refused != 0)
        return refusal_reason(x->refused);
    return x->cost > win->cost ? ROUTER_REASON_HIGHER_COST : ROUTER_REASON_NAME_ORDER;
}

/* Every match but the winner, in selection order, with its reason. */
static void
fill_considered(const struct matches *m, const struct match *win, struct router_result *res)
{
    size_t n = m->n - (win != NULL);
    if (n == 0)
        return;
    res->considered = xmalloc(n * sizeof(*res->considered));
    for (size_t i = 0; i < m->n; i++) {
        const struct match *x = &m->v[i];
        if (x == win)
            continue;
        res->considered[res->nconsidered++] =
            (struct router_considered){x->c, x->space, x->cost, loser_reason(x, &m->v[0], win)};
    }
}

/* "every connector for D refuses this message (a: sender refused, ...)". */
static void
refused_error(const struct matches *m, struct router_result *res)
{
    size_t cap = sizeof(res->error);
    char shown[128];
    sanitise(shown, sizeof(shown), res->domain, 80);
    int n = snprintf(res->error, cap, "every connector for %s refuses this message (", shown);
    size_t len = n < 0 ? 0 : (size_t)n;
    for (size_t i = 0; i < m->n && m->v[i].spec == m->v[0].spec && len < cap; i++) {
        const struct match *x = &m->v[i];
        n = snprintf(res->error + len, cap - len, "%s%.64s: %s", i ? ", " : "", x->c->name,
                     router_reason_name(refusal_reason(x->refused)));
        len += n < 0 ? 0 : (size_t)n;
    }
    if (len + 2 <= cap)
        memcpy(res->error + len, ")", 2);
    else
        memcpy(res->error + cap - 5, "...)", 5);
}

static void
select_winner(struct matches *m, const struct router_query *q, struct router_result *res)
{
    const struct match *win = NULL;
    bool size_only = true;
    for (size_t i = 0; i < m->n && m->v[i].spec == m->v[0].spec; i++) {
        struct match *x = &m->v[i];
        x->refused = refusals(x->c, q);
        if (x->refused != REFUSE_SIZE)
            size_only = false;
        if (x->refused == 0 && win == NULL)
            win = x;
    }
    fill_considered(m, win, res);
    if (win == NULL) {
        res->status = size_only ? ROUTER_TOO_LARGE : ROUTER_REFUSED;
        refused_error(m, res);
        return;
    }
    res->status = ROUTER_OK;
    res->connector = win->c;
    res->space = win->space;
    res->cost = win->cost;
}

static void
result_init(struct router_result *res)
{
    res->status = ROUTER_BAD_DOMAIN;
    res->domain[0] = '\0';
    res->connector = NULL;
    res->space = NULL;
    res->cost = 0;
    res->considered = NULL;
    res->nconsidered = 0;
    res->error[0] = '\0';
}

enum router_status
router_route_counted(const struct router *r, const char *recipient, const struct router_query *q,
                     struct router_result *res, unsigned *probes)
{
    result_init(res);
    if (q == NULL)
        q = &query_unknown;
    if (parse_domain(recipient, res) < 0)
        return res->status;
    struct matches m = {.n = 0, .cap = MATCH_STACK};
    m.v = m.stack;
    aspace_lookup(r->index, res->domain, collect, &m, probes);
    if (m.n == 0) {
        res->status = ROUTER_NO_MATCH;
        char shown[128];
        sanitise(shown, sizeof(shown), res->domain, 100);
        snprintf(res->error, sizeof(res->error), "no connector matches %s", shown);
    } else {
        matches_settle(r, &m);
        select_winner(&m, q, res);
    }
    if (m.v != m.stack)
        free(m.v);
    return res->status;
}

enum router_status
router_route(const struct router *r, const char *recipient, const struct router_query *q,
             struct router_result *res)
{
    return router_route_counted(r, recipient, q, res, NULL);
}

void
router_result_fini(struct router_result *res)
{
    if (res == NULL)
        return;
    free(res->considered);
    res->considered = NULL;
    res->nconsidered = 0;
}

const char *
router_reason_name(enum router_reason reason)
{
    switch (reason) {
    case ROUTER_REASON_LESS_SPECIFIC:
        return "less specific";
    case ROUTER_REASON_HIGHER_COST:
        return "higher cost";
    case ROUTER_REASON_NAME_ORDER:
        return "name order";
    case ROUTER_REASON_SENDER_REFUSED:
        return "sender refused";
    case ROUTER_REASON_TOO_LARGE:
        return "too large";
    case ROUTER_REASON_PRIORITY_REFUSED:
        return "priority refused";
    case ROUTER_REASON_SYSTEM_REFUSED:
        return "system message refused";
    case ROUTER_REASON_NON_SYSTEM_REFUSED:
        return "non-system message refused";
    }
    return "unknown";
}

const char *
router_status_name(enum router_status status)
{
    switch (status) {
    case ROUTER_OK:
        return "ok";
    case ROUTER_BAD_DOMAIN:
        return "bad domain";
    case ROUTER_NO_MATCH:
        return "no match";
    case ROUTER_TOO_LARGE:
        return "too large";
    case ROUTER_REFUSED:
        return "refused";
    }
    return "unknown";
}
