#include "connectors/connector.h"

#include <string.h>

#include "connectors/domain.h"
#include "connectors/util.h"

#define LOCAL_MAX 64 /* octets of a local part (RFC 5321 4.5.3.1.1) */

static int
lower_c(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* Compare [a, a+n) with [b, b+m) ignoring ASCII case. */
static bool
span_eq(const char *a, size_t n, const char *b, size_t m)
{
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower_c((unsigned char)a[i]) != lower_c((unsigned char)b[i]))
            return false;
    return true;
}

/* A domain span without its one optional trailing dot. */
static size_t
trim_root_dot(const char *d, size_t n)
{
    return (n > 0 && d[n - 1] == '.') ? n - 1 : n;
}

/* The split of an address at its last '@'. */
struct addr {
    const char *local, *domain;
    size_t nlocal, ndomain;
};

static bool
addr_split(const char *s, struct addr *a)
{
    const char *at = strrchr(s, '@');
    if (at == NULL)
        return false;
    a->local = s;
    a->nlocal = (size_t)(at - s);
    a->domain = at + 1;
    a->ndomain = trim_root_dot(a->domain, strlen(a->domain));
    return true;
}

/*
 * Does the domain span [d, d+n) equal x or end in ".x"? x is a pattern's
 * domain, compared without case and without a trailing dot.
 */
static bool
domain_under(const char *d, size_t n, const char *x)
{
    size_t m = trim_root_dot(x, strlen(x));
    if (m == 0 || m > n)
        return false;
    if (!span_eq(d + n - m, m, x, m))
        return false;
    return n == m || d[n - m - 1] == '.';
}

/*
 * How specifically a pattern matches a sender: 0 for no match; exact
 * addresses beat "*@domain", which beats every "*@*.domain"; among those the
 * longer domain wins. A domain is at most 253 octets, so the bands do not
 * overlap.
 */
#define SCORE_NULL 4000u
#define SCORE_EXACT 3000u
#define SCORE_DOMAIN 2000u
#define SCORE_SUBTREE 1000u

static unsigned
pattern_score(const char *pat, bool null_sender, const struct addr *a)
{
    if (strcmp(pat, "<>") == 0)
        return null_sender ? SCORE_NULL : 0;
    if (null_sender || a == NULL)
        return 0;
    if (strncmp(pat, "*@*.", 4) == 0) {
        const char *x = pat + 4;
        return domain_under(a->domain, a->ndomain, x)
                   ? SCORE_SUBTREE + (unsigned)trim_root_dot(x, strlen(x))
                   : 0;
    }
    if (strncmp(pat, "*@", 2) == 0) {
        const char *x = pat + 2;
        return span_eq(a->domain, a->ndomain, x, trim_root_dot(x, strlen(x))) ? SCORE_DOMAIN : 0;
    }
    struct addr p;
    if (!addr_split(pat, &p))
        return 0;
    if (span_eq(a->local, a->nlocal, p.local, p.nlocal) &&
        span_eq(a->domain, a->ndomain, p.domain, p.ndomain))
        return SCORE_EXACT;
    return 0;
}

static unsigned
best_score(char *const *pats, size_t n, bool null_sender, const struct addr *a)
{
    unsigned best = 0;
    for (size_t i = 0; i < n; i++) {
        if (pats[i] == NULL)
            continue;
        unsigned s = pattern_score(pats[i], null_sender, a);
        if (s > best)
            best = s;
    }
    return best;
}

bool
connector_sender_allowed(const struct connector_senders *s, const char *sender)
{
    if (sender == NULL)
        return true;
    bool null_sender = sender[0] == '\0' || strcmp(sender, "<>") == 0;
    struct addr a;
    bool has_addr = !null_sender && addr_split(sender, &a);
    const struct addr *ap = has_addr ? &a : NULL;
    unsigned acc = best_score(s->accept, s->naccept, null_sender, ap);
    unsigned rej = best_score(s->reject, s->nreject, null_sender, ap);
    if (acc == 0 && rej == 0)
        return s->default_accept;
    /* On a tie reject wins. */
    return acc > rej;
}

/* A pattern's domain: a host name as domain_normalise accepts it. */
static int
pattern_domain_ok(const char *d)
{
    char buf[DOMAIN_MAX + 1];
    return domain_normalise(d, strlen(d), buf) == 0;
}

/*
 * A pattern's local part: 1..64 printable, non-space ASCII octets without a
 * '*' (a wildcard is only the whole "*@"). An '@' is allowed only inside a
 * quoted local part.
 */
static int
pattern_local_ok(const char *l, size_t n)
{
    if (n == 0 || n > LOCAL_MAX)
        return 0;
    bool quoted = n >= 2 && l[0] == '"' && l[n - 1] == '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)l[i];
        if (c <= 0x20 || c >= 0x7f || c == '*')
            return 0;
        if (c == '@' && !quoted)
            return 0;
    }
    return 1;
}

int
connector_sender_pattern_check(const char *pattern)
{
    if (pattern == NULL)
        return BH_EINVAL;
    if (strcmp(pattern, "<>") == 0)
        return 0;
    if (strncmp(pattern, "*@*.", 4) == 0)
        return pattern_domain_ok(pattern + 4) ? 0 : BH_EINVAL;
    if (strncmp(pattern, "*@", 2) == 0)
        return pattern_domain_ok(pattern + 2) ? 0 : BH_EINVAL;
    const char *at = strrchr(pattern, '@');
    if (at == NULL)
        return BH_EINVAL;
    if (!pattern_local_ok(pattern, (size_t)(at - pattern)))
        return BH_EINVAL;
    return pattern_domain_ok(at + 1) ? 0 : BH_EINVAL;
}

static bool
is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * The first token of a header value: leading white space skipped, then a run
 * of letters, digits and '-'. What follows must be nothing, white space, or
 * a comment "(...)". Returns false when the value is not of that shape.
 */
static bool
value_token(const char *v, const char **tok, size_t *n)
{
    while (is_ws((unsigned char)*v))
        v++;
    const char *s = v;
    while ((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') ||
           *v == '-')
        v++;
    if (v == s)
        return false;
    *tok = s;
    *n = (size_t)(v - s);
    while (is_ws((unsigned char)*v))
        v++;
    return *v == '\0' || *v == '(';
}

static bool
tok_is(const char *tok, size_t n, const char *word)
{
    return span_eq(tok, n, word, strlen(word));
}

static int
prio_importance(const char *tok, size_t n, enum connector_priority *prio)
{
    if (tok_is(tok, n, "high"))
        *prio = CONNECTOR_PRIORITY_HIGH;
    else if (tok_is(tok, n, "normal"))
        *prio = CONNECTOR_PRIORITY_NORMAL;
    else if (tok_is(tok, n, "low"))
        *prio = CONNECTOR_PRIORITY_LOW;
    else
        return 0;
    return 3;
}

static int
prio_x_priority(const char *tok, size_t n, enum connector_priority *prio)
{
    if (n != 1 || tok[0] < '1' || tok[0] > '5')
        return 0;
    if (tok[0] <= '2')
        *prio = CONNECTOR_PRIORITY_HIGH;
    else if (tok[0] == '3')
        *prio = CONNECTOR_PRIORITY_NORMAL;
    else
        *prio = CONNECTOR_PRIORITY_LOW;
    return 2;
}

static int
prio_priority(const char *tok, size_t n, enum connector_priority *prio)
{
    if (tok_is(tok, n, "urgent"))
        *prio = CONNECTOR_PRIORITY_HIGH;
    else if (tok_is(tok, n, "normal"))
        *prio = CONNECTOR_PRIORITY_NORMAL;
    else if (tok_is(tok, n, "non-urgent"))
        *prio = CONNECTOR_PRIORITY_LOW;
    else
        return 0;
    return 1;
}

int
connector_priority_from_header(const char *name, const char *value, enum connector_priority *prio)
{
    const char *tok;
    size_t n;
    if (name == NULL || value == NULL || prio == NULL || !value_token(value, &tok, &n))
        return 0;
    if (util_strcasecmp(name, "Importance") == 0)
        return prio_importance(tok, n, prio);
    if (util_strcasecmp(name, "X-Priority") == 0)
        return prio_x_priority(tok, n, prio);
    if (util_strcasecmp(name, "Priority") == 0)
        return prio_priority(tok, n, prio);
    return 0;
}

const char *
connector_priority_name(enum connector_priority p)
{
    switch (p) {
    case CONNECTOR_PRIORITY_LOW:
        return "low";
    case CONNECTOR_PRIORITY_NORMAL:
        return "normal";
    case CONNECTOR_PRIORITY_HIGH:
        return "high";
    }
    return "unknown";
}

int
connector_priority_parse(const char *s, enum connector_priority *p)
{
    if (s == NULL)
        return BH_EINVAL;
    if (util_strcasecmp(s, "low") == 0)
        *p = CONNECTOR_PRIORITY_LOW;
    else if (util_strcasecmp(s, "normal") == 0)
        *p = CONNECTOR_PRIORITY_NORMAL;
    else if (util_strcasecmp(s, "high") == 0)
        *p = CONNECTOR_PRIORITY_HIGH;
    else
        return BH_EINVAL;
    return 0;
}

const char *
connector_route_name(enum connector_route r)
{
    switch (r) {
    case CONNECTOR_ROUTE_SMARTHOST:
        return "smarthost";
    case CONNECTOR_ROUTE_DNS:
        return "dns";
    }
    return "unknown";
}

const char *
connector_balance_name(enum connector_balance b)
{
    switch (b) {
    case CONNECTOR_BALANCE_ROUND_ROBIN:
        return "round_robin";
    case CONNECTOR_BALANCE_RANDOM:
        return "random";
    case CONNECTOR_BALANCE_FAILOVER:
        return "failover";
    }
    return "unknown";
}

const char *
connector_tls_mode_name(enum connector_tls_mode m)
{
    switch (m) {
    case CONNECTOR_TLS_NONE:
        return "none";
    case CONNECTOR_TLS_OPPORTUNISTIC:
        return "opportunistic";
    case CONNECTOR_TLS_REQUIRED:
        return "required";
    case CONNECTOR_TLS_VERIFY:
        return "verify";
    }
    return "unknown";
}

static bool
same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool
connector_same_transport(const struct connector *a, const struct connector *b)
{
    if (a == b)
        return true;
    if (!same_str(a->name, b->name) || a->route != b->route || a->port != b->port ||
        a->nbridgeheads != b->nbridgeheads || a->ehlo != b->ehlo ||
        !same_str(a->helo_name, b->helo_name) || !same_str(a->auth_username, b->auth_username) ||
        !same_str(a->auth_password, b->auth_password))
        return false;
    for (size_t i = 0; i < a->nbridgeheads; i++)
        if (!same_str(a->bridgeheads[i].host, b->bridgeheads[i].host) ||
            a->bridgeheads[i].port != b->bridgeheads[i].port)
            return false;
    const struct connector_tls *x = &a->tls, *y = &b->tls;
    if (x->mode != y->mode || x->mode == CONNECTOR_TLS_VERIFY || !same_str(x->ca_file, y->ca_file) ||
        x->min_version != y->min_version || x->nnames != y->nnames)
        return false;
    for (size_t i = 0; i < x->nnames; i++)
        if (!same_str(x->names[i], y->names[i]))
            return false;
    const struct connector_timeouts *s = &a->timeouts, *t = &b->timeouts;
    return s->connect == t->connect && s->greeting == t->greeting && s->command == t->command &&
           s->data_block == t->data_block && s->data_end == t->data_end;
}
