#include "connectors/config_conn.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/config_sched.h"
#include "connectors/domain.h"
#include "connectors/schedule.h"
#include "connectors/tlspolicy.h"
#include "connectors/units.h"
#include "connectors/util.h"

#define WEIGHT_MAX 1000000u

static const char *const conn_keys[] = {"name",
                                        "address_spaces",
                                        "route",
                                        "port",
                                        "bridgeheads",
                                        "balance",
                                        "max_connections",
                                        "max_messages_per_connection",
                                        "max_message_size",
                                        "ehlo",
                                        "helo_name",
                                        "auth",
                                        "tls",
                                        "schedule",
                                        "content",
                                        "senders",
                                        "triggered",
                                        "timeouts",
                                        "health",
                                        "source_nodes",
                                        NULL};
static const char *const space_keys[] = {"space", "cost", NULL};
static const char *const bh_keys[] = {"host", "port", "weight", NULL};
static const char *const auth_keys[] = {"username", "password_file", NULL};
static const char *const tls_keys[] = {"mode", "ca_file", "names", "min_version", NULL};
static const char *const content_keys[] = {"priorities", "system_messages", "non_system_messages",
                                           NULL};
static const char *const senders_keys[] = {"default", "accept", "reject", NULL};
static const char *const timeout_keys[] = {"connect",    "greeting", "command",
                                           "data_block", "data_end", NULL};
static const char *const health_keys[] = {"retry_initial", "retry_max", NULL};
static const char *const routes[] = {"smarthost", "dns", NULL};
static const char *const balances[] = {"round_robin", "random", "failover", NULL};
static const char *const modes[] = {"none", "opportunistic", "required", "verify", NULL};

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void
config_conn_fini(struct connector *k)
{
    free(k->name);
    for (size_t i = 0; i < k->naspaces; i++)
        free(k->aspaces[i].space);
    free(k->aspaces);
    for (size_t i = 0; i < k->nbridgeheads; i++)
        free(k->bridgeheads[i].host);
    free(k->bridgeheads);
    free(k->helo_name);
    free(k->auth_username);
    free(k->auth_password_file);
    if (k->auth_password != NULL)
        explicit_bzero(k->auth_password, strlen(k->auth_password));
    free(k->auth_password);
    free(k->tls.ca_file);
    strv_free(k->tls.names, k->tls.nnames);
    schedule_free(k->schedule);
    strv_free(k->senders.accept, k->senders.naccept);
    strv_free(k->senders.reject, k->senders.nreject);
    strv_free(k->source_nodes, k->nsource_nodes);
}

static void
conn_defaults(const struct config *c, const struct ytree_node *m, struct connector *k)
{
    k->line = m->line;
    k->col = m->col;
    k->port = 25;
    k->balance = CONNECTOR_BALANCE_ROUND_ROBIN;
    k->max_connections = 10;
    k->max_messages_per_connection = 100;
    k->ehlo = true;
    k->helo_name = xstrdup(c->hostname);
    k->tls.mode = CONNECTOR_TLS_OPPORTUNISTIC;
    k->tls.min_version = CONNECTOR_TLS1_2;
    k->priorities = CONNECTOR_PRIORITY_ALL;
    k->system_messages = true;
    k->non_system_messages = true;
    k->senders.default_accept = true;
    k->timeouts = (struct connector_timeouts){30, 300, 300, 180, 600};
    k->health_retry_initial = 30;
    k->health_retry_max = 600;
}

/* One address space: "x" (cost 1) or {space, cost}. Sets a->space (the
 * normalised form) and *at (the node it was written at) when good. */
static void
parse_space(struct config_val *v, const struct ytree_node *n, struct connector_aspace *a,
            const struct ytree_node **at)
{
    const struct ytree_node *sn = n;
    const char *why, *s;
    char norm[DOMAIN_MAX + 3], q[80];
    a->cost = 1;
    if (n->kind == YTREE_MAPPING) {
        if (!config_val_map(v, n, "address_spaces", space_keys))
            return;
        config_val_uint(v, n, "cost", 0, UINT_MAX, &a->cost);
        if ((sn = ytree_get(n, "space")) == NULL) {
            config_val_missing(v, n, "space", NULL);
            return;
        }
    }
    if (sn->kind != YTREE_SCALAR || ytree_is_null(sn)) {
        char what[100];
        config_val_err(v, sn, "address_spaces: expected a domain pattern or {space, cost}, got %s",
                       config_val_what(sn, what, sizeof what));
        return;
    }
    s = sn->value;
    if (domain_space_normalise(s, norm, &why) < 0) {
        config_val_err(v, sn, "address space %s: %s", ytree_quote(s, q, sizeof q), why);
        return;
    }
    a->space = xstrdup(norm);
    *at = sn;
}

static void
parse_spaces(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    const struct ytree_node *seq = ytree_get(m, "address_spaces");
    if (seq == NULL) {
        config_val_missing(v, m, "address_spaces", "a connector needs at least one");
        return;
    }
    if (!config_val_seq(v, seq, "address_spaces"))
        return;
    if (seq->nitems == 0) {
        config_val_err(v, seq, "address_spaces: must not be empty");
        return;
    }
    k->aspaces = xcalloc(seq->nitems, sizeof *k->aspaces);
    k->naspaces = seq->nitems;
    const struct ytree_node **at = xcalloc(seq->nitems, sizeof *at);
    const char **strs = xcalloc(seq->nitems, sizeof *strs);
    for (size_t i = 0; i < seq->nitems; i++) {
        parse_space(v, seq->items[i], &k->aspaces[i], &at[i]);
        strs[i] = k->aspaces[i].space;
    }
    config_val_dups(v, strs, at, seq->nitems, "address_spaces", "address space");
    free(at);
    free(strs);
}

static bool
is_ip(const char *s)
{
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static bool
host_ok(const char *s)
{
    char norm[DOMAIN_MAX + 1];
    return is_ip(s) || domain_normalise(s, strlen(s), norm) == 0;
}

/* Split a short form "host", "host:port", "[v6]" or "[v6]:port". Returns
 * the host (fresh) or NULL with a reason. */
static char *
short_form(const char *s, uint16_t *port, const char **why)
{
    const char *end, *colon;
    char *host;
    uint64_t p;
    *why = "expected \"host\", \"host:port\" or \"[IPv6]:port\"";
    if (s[0] == '[') {
        if ((end = strchr(s, ']')) == NULL || (end[1] != '\0' && end[1] != ':'))
            return NULL;
        host = xstrndup(s + 1, (size_t)(end - s - 1));
        colon = end[1] == ':' ? end + 1 : NULL;
    } else {
        colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            *why = "an IPv6 address goes in brackets: \"[2001:db8::1]:25\"";
            return NULL;
        }
        host = colon != NULL ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
    }
    if (colon != NULL && (units_parse_uint(colon + 1, &p) < 0 || p < 1 || p > 65535)) {
        *why = "the port must be 1 to 65535";
        free(host);
        return NULL;
    }
    if (colon != NULL)
        *port = (uint16_t)p;
    return host;
}

/* A bridgehead given as a string: the short form. */
static int
bh_short(struct config_val *v, const struct ytree_node *n, struct connector_bridgehead *b)
{
    const char *why, *s = config_val_string(v, n, "bridgeheads");
    char q[80];
    unsigned char a6[16];
    if (s == NULL)
        return BH_EINVAL;
    char *host = short_form(s, &b->port, &why);
    if (host != NULL && s[0] == '[' && inet_pton(AF_INET6, host, a6) != 1) {
        why = "only an IPv6 address goes in brackets";
        free(host);
        host = NULL;
    } else if (host != NULL && !host_ok(host)) {
        why = "not a host name or IP address";
        free(host);
        host = NULL;
    }
    if (host == NULL) {
        config_val_err(v, n, "bridgeheads: %s: %s", ytree_quote(s, q, sizeof q), why);
        return BH_EINVAL;
    }
    b->host = host;
    return 0;
}

/* A bridgehead given as {host, port, weight}; host may be a bare or a
 * bracketed IPv6 address. */
static int
bh_map(struct config_val *v, const struct ytree_node *n, struct connector_bridgehead *b)
{
    size_t before = v->errors;
    char q[80];
    if (!config_val_map(v, n, "bridgeheads", bh_keys))
        return BH_EINVAL;
    config_val_uint(v, n, "weight", 1, WEIGHT_MAX, &b->weight);
    uint64_t port = 25;
    config_val_u64(v, n, "port", 1, 65535, &port);
    b->port = (uint16_t)port;
    const struct ytree_node *h = ytree_get(n, "host");
    if (h == NULL) {
        config_val_missing(v, n, "host", NULL);
        return BH_EINVAL;
    }
    const char *s = config_val_string(v, h, "host");
    if (s == NULL)
        return BH_EINVAL;
    size_t len = strlen(s);
    char *host = s[0] == '[' && s[len - 1] == ']' ? xstrndup(s + 1, len - 2) : xstrdup(s);
    if (!host_ok(host)) {
        config_val_err(v, h, "host: %s is not a host name or IP address",
                       ytree_quote(s, q, sizeof q));
        free(host);
        return BH_EINVAL;
    }
    b->host = host;
    return v->errors == before ? 0 : BH_EINVAL;
}

static void
parse_bridgeheads(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    const struct ytree_node *seq = ytree_get(m, "bridgeheads");
    if (seq == NULL || !config_val_seq(v, seq, "bridgeheads"))
        return;
    if (seq->nitems == 0) {
        config_val_err(v, seq, "bridgeheads: must not be empty");
        return;
    }
    k->bridgeheads = xcalloc(seq->nitems, sizeof *k->bridgeheads);
    k->nbridgeheads = seq->nitems;
    char **keys = xcalloc(seq->nitems, sizeof *keys);
    const struct ytree_node **at = xcalloc(seq->nitems, sizeof *at);
    for (size_t i = 0; i < seq->nitems; i++) {
        const struct ytree_node *n = seq->items[i];
        struct connector_bridgehead *b = &k->bridgeheads[i];
        b->port = 25;
        b->weight = 1;
        int rc = n->kind == YTREE_MAPPING ? bh_map(v, n, b) : bh_short(v, n, b);
        at[i] = n->kind == YTREE_MAPPING ? ytree_get(n, "host") : n;
        if (rc == 0) {
            keys[i] =
                xasprintf(strchr(b->host, ':') ? "[%s]:%u" : "%s:%u", b->host, (unsigned)b->port);
            util_lower(keys[i]);
        }
    }
    config_val_dups(v, (const char *const *)keys, at, seq->nitems, "bridgeheads", "bridgehead");
    strv_free(keys, seq->nitems);
    free(at);
}

/* auth: {username, password_file}; the password is the file's first line. */
static void
parse_auth(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    const struct ytree_node *a = ytree_get(m, "auth");
    char *text;
    size_t len;
    if (a == NULL || !config_val_map(v, a, "auth", auth_keys))
        return;
    for (size_t i = 0; auth_keys[i] != NULL; i++)
        if (ytree_get(a, auth_keys[i]) == NULL)
            config_val_missing(v, a, auth_keys[i], "auth needs a username and a password_file");
    config_val_str(v, a, "username", &k->auth_username);
    if (config_val_path(v, a, "password_file", &k->auth_password_file) < 0 ||
        k->auth_password_file == NULL)
        return;
    const struct ytree_node *pf = ytree_get(a, "password_file");
    if (config_val_slurp(v, pf, "password file", k->auth_password_file, &text, &len) < 0)
        return;
    size_t line = strcspn(text, "\r\n");
    if (line == 0)
        config_val_err(v, pf, "password_file: the first line of %s is empty",
                       k->auth_password_file);
    else
        k->auth_password = xstrndup(text, line);
    explicit_bzero(text, len);
    free(text);
}

/* A tls.names entry: a host name or "*.domain". */
static bool
tls_name_ok(struct config_val *v, const struct ytree_node *n, const char *key, const char *s)
{
    char norm[DOMAIN_MAX + 3], q[80];
    const char *why;
    if (strcmp(s, "*") != 0 && domain_space_normalise(s, norm, &why) == 0)
        return true;
    config_val_err(v, n, "%s: %s is not a host name or \"*.domain\"", key,
                   ytree_quote(s, q, sizeof q));
    return false;
}

static void
parse_tls(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    const struct ytree_node *t = ytree_get(m, "tls");
    if (t == NULL || !config_val_map(v, t, "tls", tls_keys))
        return;
    int mode = (int)k->tls.mode;
    if (config_val_enum(v, t, "mode", modes, &mode) == 0)
        k->tls.mode = (enum connector_tls_mode)mode;
    if (config_val_path(v, t, "ca_file", &k->tls.ca_file) == 0 && k->tls.ca_file != NULL)
        config_val_pem(v, ytree_get(t, "ca_file"), k->tls.ca_file, TLSPOLICY_PEM_CA);
    config_val_strings(v, t, "names", true, tls_name_ok, &k->tls.names, &k->tls.nnames);
    config_val_tls_version(v, t, &k->tls.min_version);
}

static void
parse_content(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    static const char *const prios[] = {"low", "normal", "high", NULL};
    const struct ytree_node *c = ytree_get(m, "content"), *seq;
    if (c == NULL || !config_val_map(v, c, "content", content_keys))
        return;
    config_val_bool(v, c, "system_messages", &k->system_messages);
    config_val_bool(v, c, "non_system_messages", &k->non_system_messages);
    if ((seq = ytree_get(c, "priorities")) == NULL || !config_val_seq(v, seq, "priorities"))
        return;
    if (seq->nitems == 0) {
        config_val_err(v, seq, "priorities: must not be empty");
        return;
    }
    unsigned mask = 0;
    for (size_t i = 0; i < seq->nitems; i++) {
        int p;
        if (config_val_enum_node(v, seq->items[i], "priorities", prios, &p) == 0)
            mask |= 1u << p;
    }
    k->priorities = mask;
}

/* A sender pattern, checked by the connector module. */
static bool
sender_ok(struct config_val *v, const struct ytree_node *n, const char *key, const char *s)
{
    char q[80];
    if (connector_sender_pattern_check(s) == 0)
        return true;
    config_val_err(v, n,
                   "%s: %s is not a sender pattern (an address, \"*@domain\", \"*@*.domain\" "
                   "or \"<>\")",
                   key, ytree_quote(s, q, sizeof q));
    return false;
}

static void
parse_senders(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    static const char *const defaults[] = {"accept", "reject", NULL};
    const struct ytree_node *s = ytree_get(m, "senders");
    if (s == NULL || !config_val_map(v, s, "senders", senders_keys))
        return;
    int d = 0;
    if (config_val_enum(v, s, "default", defaults, &d) == 0)
        k->senders.default_accept = d == 0;
    config_val_strings(v, s, "accept", false, sender_ok, &k->senders.accept, &k->senders.naccept);
    config_val_strings(v, s, "reject", false, sender_ok, &k->senders.reject, &k->senders.nreject);
    for (size_t i = 0; i < k->senders.naccept; i++)
        util_lower(k->senders.accept[i]);
    for (size_t i = 0; i < k->senders.nreject; i++)
        util_lower(k->senders.reject[i]);
}

static void
parse_timeouts(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    const struct ytree_node *t = ytree_get(m, "timeouts"), *h = ytree_get(m, "health");
    if (t != NULL && config_val_map(v, t, "timeouts", timeout_keys)) {
        config_val_duration(v, t, "connect", 1, &k->timeouts.connect);
        config_val_duration(v, t, "greeting", 1, &k->timeouts.greeting);
        config_val_duration(v, t, "command", 1, &k->timeouts.command);
        config_val_duration(v, t, "data_block", 1, &k->timeouts.data_block);
        config_val_duration(v, t, "data_end", 1, &k->timeouts.data_end);
    }
    if (h == NULL || !config_val_map(v, h, "health", health_keys))
        return;
    int a = config_val_duration(v, h, "retry_initial", 1, &k->health_retry_initial);
    int b = config_val_duration(v, h, "retry_max", 1, &k->health_retry_max);
    if (a == 0 && b == 0 && k->health_retry_max < k->health_retry_initial)
        config_val_err(
            v, config_val_later(config_val_key(h, "retry_initial"), config_val_key(h, "retry_max")),
            "retry_max must not be less than retry_initial");
}

static bool
node_name_ok(struct config_val *v, const struct ytree_node *n, const char *key, const char *s)
{
    char q[80];
    if (config_val_name_ok(s))
        return true;
    config_val_err(v, n, "%s: %s is not a node name (1 to 64 of A-Z a-z 0-9 _ . -)", key,
                   ytree_quote(s, q, sizeof q));
    return false;
}

static void
parse_misc(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    int b = (int)k->balance;
    if (config_val_enum(v, m, "balance", balances, &b) == 0)
        k->balance = (enum connector_balance)b;
    config_val_uint(v, m, "max_connections", 1, UINT_MAX, &k->max_connections);
    config_val_uint(v, m, "max_messages_per_connection", 1, UINT_MAX,
                    &k->max_messages_per_connection);
    config_val_size(v, m, "max_message_size", 1, &k->max_message_size);
    config_val_bool(v, m, "ehlo", &k->ehlo);
    config_val_bool(v, m, "triggered", &k->triggered);
    config_val_strings(v, m, "source_nodes", true, node_name_ok, &k->source_nodes,
                       &k->nsource_nodes);
    const struct ytree_node *h = ytree_get(m, "helo_name");
    char norm[DOMAIN_MAX + 1];
    if (config_val_str(v, m, "helo_name", &k->helo_name) == 0 && h != NULL &&
        domain_normalise(k->helo_name, strlen(k->helo_name), norm) < 0)
        config_val_err(v, h, "helo_name: not a valid host name");
}

/* route, bridgeheads and port: which goes with which. */
static void
route_rules(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    const struct ytree_node *rk = config_val_key(m, "route"),
                            *bk = config_val_key(m, "bridgeheads");
    const struct ytree_node *pk = config_val_key(m, "port");
    int r = bk != NULL ? CONNECTOR_ROUTE_SMARTHOST : CONNECTOR_ROUTE_DNS;
    if (config_val_enum(v, m, "route", routes, &r) < 0)
        rk = NULL;
    k->route = (enum connector_route)r;
    if (rk != NULL && r == CONNECTOR_ROUTE_SMARTHOST && bk == NULL)
        config_val_missing(v, m, "bridgeheads", "route smarthost needs bridgeheads");
    if (rk != NULL && r == CONNECTOR_ROUTE_DNS && bk != NULL)
        config_val_err(v, config_val_later(rk, bk),
                       "route dns and bridgeheads do not go together (bridgeheads need route "
                       "smarthost)");
    if (pk != NULL && r == CONNECTOR_ROUTE_SMARTHOST)
        config_val_err(v, config_val_later(pk, rk != NULL ? rk : bk),
                       "port is only for route dns (each bridgehead has its own port)");
    uint64_t port = 25;
    if (config_val_u64(v, m, "port", 1, 65535, &port) == 0)
        k->port = (uint16_t)port;
}

/* tls.mode against ehlo, auth and tls.names. */
static void
tls_rules(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    const struct ytree_node *t = ytree_get(m, "tls"), *mk = config_val_key(t, "mode");
    const struct ytree_node *ek = config_val_key(m, "ehlo"), *ak = config_val_key(m, "auth");
    enum connector_tls_mode mode = k->tls.mode;
    bool strict = mode == CONNECTOR_TLS_REQUIRED || mode == CONNECTOR_TLS_VERIFY;
    if (strict && !k->ehlo)
        config_val_err(v, config_val_later(mk, ek),
                       "tls.mode %s needs ehlo true (STARTTLS is an ESMTP extension)", modes[mode]);
    if (ak != NULL && !strict)
        config_val_err(v, config_val_later(ak, mk),
                       "auth needs tls.mode required or verify (credentials never go in clear)");
    if (mode != CONNECTOR_TLS_VERIFY || ytree_get(t, "names") != NULL)
        return;
    if (k->route == CONNECTOR_ROUTE_DNS) {
        config_val_missing(v, t, "names", "tls.mode verify on a dns connector needs tls.names");
        return;
    }
    for (size_t i = 0; i < k->nbridgeheads; i++) {
        if (k->bridgeheads[i].host == NULL || !is_ip(k->bridgeheads[i].host))
            continue;
        char *why = xasprintf("tls.mode verify toward bridgehead %s, an IP address, needs "
                              "tls.names",
                              k->bridgeheads[i].host);
        config_val_missing(v, t, "names", why);
        free(why);
        return;
    }
}

static void
parse_name(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    const struct ytree_node *n = ytree_get(m, "name");
    if (n == NULL) {
        config_val_missing(v, m, "name", NULL);
        return;
    }
    const char *s = config_val_string(v, n, "name");
    char q[80];
    if (s == NULL)
        return;
    if (!config_val_name_ok(s)) {
        config_val_err(v, n, "name: %s must be 1 to 64 characters of A-Z a-z 0-9 _ . -",
                       ytree_quote(s, q, sizeof q));
        return;
    }
    k->name = xstrdup(s);
}

static void
parse_one(struct config_val *v, const struct config *c, const struct ytree_node *m,
          struct connector *k)
{
    conn_defaults(c, m, k);
    if (!config_val_map(v, m, "connector", conn_keys))
        return;
    parse_name(v, m, k);
    parse_spaces(v, m, k);
    parse_bridgeheads(v, m, k);
    route_rules(v, m, k);
    parse_misc(v, m, k);
    parse_auth(v, m, k);
    parse_tls(v, m, k);
    config_sched_parse(v, m, k);
    parse_content(v, m, k);
    parse_senders(v, m, k);
    parse_timeouts(v, m, k);
    tls_rules(v, m, k);
}

void
config_conn_parse_all(struct config_val *v, struct config *c, const struct ytree_node *seq)
{
    if (!config_val_seq(v, seq, "connectors"))
        return;
    if (seq->nitems == 0) {
        config_val_err(v, seq, "connectors: at least one connector is required");
        return;
    }
    c->connectors = xcalloc(seq->nitems, sizeof *c->connectors);
    c->nconnectors = seq->nitems;
    const char **names = xcalloc(seq->nitems, sizeof *names);
    const struct ytree_node **at = xcalloc(seq->nitems, sizeof *at);
    for (size_t i = 0; i < seq->nitems; i++) {
        parse_one(v, c, seq->items[i], &c->connectors[i]);
        names[i] = c->connectors[i].name;
        at[i] = ytree_get(seq->items[i], "name");
    }
    config_val_dups(v, names, at, seq->nitems, "name", "connector name");
    free(names);
    free(at);
}
