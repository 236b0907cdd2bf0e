#include "connectors/config_server.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "connectors/domain.h"
#include "connectors/tlspolicy.h"
#include "connectors/util.h"

static const char *const server_keys[] = {"hostname",
                                          "node",
                                          "listen",
                                          "tls",
                                          "accepted_domains",
                                          "relay_networks",
                                          "users_file",
                                          "max_message_size",
                                          "max_recipients",
                                          "max_connections",
                                          "max_connections_per_ip",
                                          "timeouts",
                                          "greet_delay",
                                          "postmaster",
                                          NULL};
static const char *const listen_keys[] = {"address", "tls", "odmr", NULL};
static const char *const tls_keys[] = {"certificate", "key", "min_version", NULL};
static const char *const timeout_keys[] = {"command", "data", NULL};
static const char *const storage_keys[] = {"path", "backend", "dsn", NULL};
static const char *const queue_keys[] = {"retry_initial", "retry_max", "lifetime", "delay_warning",
                                         NULL};
static const char *const dns_keys[] = {"servers", NULL};
static const char *const metrics_keys[] = {"listen", NULL};

/* hostname: a host name, stored normalised (lowercase, no trailing dot). */
static void
parse_hostname(struct config_val *v, struct config *c, const struct ytree_node *srv)
{
    const struct ytree_node *n = ytree_get(srv, "hostname");
    char norm[DOMAIN_MAX + 1];
    if (n == NULL)
        return;
    const char *s = config_val_string(v, n, "hostname");
    if (s == NULL)
        return;
    if (domain_normalise(s, strlen(s), norm) < 0) {
        config_val_err(v, n, "hostname: not a valid host name");
        return;
    }
    free(c->hostname);
    c->hostname = xstrdup(norm);
}

static void
parse_node(struct config_val *v, struct config *c, const struct ytree_node *srv)
{
    const struct ytree_node *n = ytree_get(srv, "node");
    if (n == NULL)
        return;
    const char *s = config_val_string(v, n, "node");
    if (s == NULL)
        return;
    if (!config_val_name_ok(s)) {
        config_val_err(v, n, "node: must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
        return;
    }
    c->node = xstrdup(s);
}

static void
parse_tls(struct config_val *v, struct config *c, const struct ytree_node *srv)
{
    const struct ytree_node *t = ytree_get(srv, "tls");
    c->tls_min_version = CONNECTOR_TLS1_2;
    if (t == NULL || !config_val_map(v, t, "tls", tls_keys))
        return;
    c->has_tls = true;
    static const char *const req[] = {"certificate", "key"};
    for (size_t i = 0; i < 2; i++)
        if (ytree_get(t, req[i]) == NULL)
            config_val_missing(v, t, req[i], "server.tls needs a certificate and a key");
    if (config_val_path(v, t, "certificate", &c->tls_certificate) == 0 && c->tls_certificate)
        config_val_pem(v, ytree_get(t, "certificate"), c->tls_certificate, TLSPOLICY_PEM_CERT);
    if (config_val_path(v, t, "key", &c->tls_key) == 0 && c->tls_key)
        config_val_pem(v, ytree_get(t, "key"), c->tls_key, TLSPOLICY_PEM_KEY);
    config_val_tls_version(v, t, &c->tls_min_version);
}

/* The canonical text of an address, "a.b.c.d:port" or "[v6]:port", so that
 * two spellings of one socket address compare equal. */
static char *
sockaddr_text(const struct sockaddr_storage *sa)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        return xasprintf("%s:%u", ip, (unsigned)ntohs(in->sin_port));
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    return xasprintf("[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
}

/* A listen address; reports at n and returns BH_EINVAL when it is bad. */
static int
listen_address(struct config_val *v, const struct ytree_node *n, const char *key,
               struct sockaddr_storage *sa)
{
    const char *s = config_val_string(v, n, key);
    if (s == NULL)
        return BH_EINVAL;
    if (config_val_sockaddr(s, sa) == 0)
        return 0;
    char what[100];
    config_val_err(v, n, "%s: expected \"a.b.c.d:port\" or \"[IPv6]:port\" (port 1-65535), got %s",
                   key, config_val_what(n, what, sizeof what));
    return BH_EINVAL;
}

static void
parse_listener(struct config_val *v, struct config *c, const struct ytree_node *m,
               struct config_listen *l)
{
    static const char *const modes[] = {"none", "starttls", "implicit", NULL};
    l->tls = c->has_tls ? CONFIG_LISTEN_STARTTLS : CONFIG_LISTEN_NONE;
    if (!config_val_map(v, m, "listen", listen_keys))
        return;
    const struct ytree_node *a = ytree_get(m, "address");
    if (a == NULL)
        config_val_missing(v, m, "address", NULL);
    else if (listen_address(v, a, "address", &l->addr) == 0)
        l->address = xstrdup(a->value);
    int mode = (int)l->tls;
    if (config_val_enum(v, m, "tls", modes, &mode) == 0)
        l->tls = (enum config_listen_tls)mode;
    if (l->tls != CONFIG_LISTEN_NONE && !c->has_tls && ytree_get(m, "tls") != NULL)
        config_val_err(v, ytree_get(m, "tls"), "tls: %s needs server.tls (a certificate and key)",
                       modes[l->tls]);
    if (config_val_bool(v, m, "odmr", &l->odmr) == 0 && l->odmr &&
        (!c->has_tls || c->users_file == NULL))
        config_val_err(v, ytree_get(m, "odmr"),
                       "odmr: needs server.tls and server.users_file (ATRN follows AUTH in TLS)");
}

/* The listen list, or the default 127.0.0.1:2525; duplicates are refused. */
static void
parse_listens(struct config_val *v, struct config *c, const struct ytree_node *srv)
{
    const struct ytree_node *seq = ytree_get(srv, "listen");
    if (seq == NULL || !config_val_seq(v, seq, "listen") || seq->nitems == 0) {
        if (seq != NULL && seq->kind == YTREE_SEQUENCE)
            config_val_err(v, seq, "listen: must not be empty");
        c->nlistens = 1;
        c->listens = xcalloc(1, sizeof *c->listens);
        c->listens[0].address = xstrdup("127.0.0.1:2525");
        config_val_sockaddr("127.0.0.1:2525", &c->listens[0].addr);
        c->listens[0].tls = c->has_tls ? CONFIG_LISTEN_STARTTLS : CONFIG_LISTEN_NONE;
        return;
    }
    c->nlistens = seq->nitems;
    c->listens = xcalloc(seq->nitems, sizeof *c->listens);
    char **texts = xcalloc(seq->nitems, sizeof *texts);
    const struct ytree_node **nodes = xcalloc(seq->nitems, sizeof *nodes);
    for (size_t i = 0; i < seq->nitems; i++) {
        parse_listener(v, c, seq->items[i], &c->listens[i]);
        nodes[i] = ytree_get(seq->items[i], "address");
        if (c->listens[i].address != NULL)
            texts[i] = sockaddr_text(&c->listens[i].addr);
    }
    config_val_dups(v, (const char *const *)texts, nodes, seq->nitems, "address", "listen address");
    for (size_t i = 0; i < seq->nitems; i++)
        free(texts[i]);
    free(texts);
    free(nodes);
}

/* accepted_domains: address-space patterns, but never "*". */
static void
parse_accepted(struct config_val *v, struct config *c, const struct ytree_node *srv)
{
    const struct ytree_node *seq = ytree_get(srv, "accepted_domains");
    if (seq == NULL || !config_val_seq(v, seq, "accepted_domains"))
        return;
    c->accepted_domains = xcalloc(seq->nitems, sizeof *c->accepted_domains);
    for (size_t i = 0; i < seq->nitems; i++) {
        const struct ytree_node *n = seq->items[i];
        const char *s = config_val_string(v, n, "accepted_domains"), *why;
        char norm[DOMAIN_MAX + 3], q[80];
        if (s == NULL)
            continue;
        if (strcmp(s, "*") == 0)
            config_val_err(v, n,
                           "accepted_domains: \"*\" is not allowed (it would accept mail "
                           "for every domain from anyone)");
        else if (domain_space_normalise(s, norm, &why) < 0)
            config_val_err(v, n, "accepted_domains: %s: %s", ytree_quote(s, q, sizeof q), why);
        else
            c->accepted_domains[c->naccepted_domains++] = xstrdup(norm);
    }
}

static void
parse_relay(struct config_val *v, struct config *c, const struct ytree_node *srv)
{
    const struct ytree_node *seq = ytree_get(srv, "relay_networks");
    if (seq == NULL || !config_val_seq(v, seq, "relay_networks")) {
        c->relay_networks = xcalloc(2, sizeof *c->relay_networks);
        const char *why;
        config_cidr_parse("127.0.0.0/8", &c->relay_networks[0], &why);
        config_cidr_parse("::1/128", &c->relay_networks[1], &why);
        c->nrelay_networks = 2;
        return;
    }
    c->relay_networks = xcalloc(seq->nitems, sizeof *c->relay_networks);
    for (size_t i = 0; i < seq->nitems; i++) {
        const struct ytree_node *n = seq->items[i];
        const char *s = config_val_string(v, n, "relay_networks"), *why;
        char q[80];
        if (s == NULL)
            continue;
        if (config_cidr_parse(s, &c->relay_networks[c->nrelay_networks], &why) < 0)
            config_val_err(v, n, "relay_networks: %s: %s", ytree_quote(s, q, sizeof q), why);
        else
            c->nrelay_networks++;
    }
}

/* Split a users-file line's domain list and normalise each. */
static int
user_domains(char *list, struct config_user *u, const char **bad)
{
    size_t cap = 1;
    for (char *p = list; *p; p++)
        cap += *p == ',';
    u->domains = xcalloc(cap, sizeof *u->domains);
    for (char *tok = list, *next; tok != NULL; tok = next) {
        next = strchr(tok, ',');
        if (next != NULL)
            *next++ = '\0';
        tok += strspn(tok, " \t");
        size_t len = strlen(tok);
        while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            len--;
        char norm[DOMAIN_MAX + 1];
        if (domain_normalise(tok, len, norm) < 0) {
            tok[len] = '\0';
            *bad = tok;
            return BH_EINVAL;
        }
        u->domains[u->ndomains++] = xstrdup(norm);
    }
    return 0;
}

/* One "name:HASH[:domain,...]" line into u; on error a message in *msg. */
static int
user_line(char *line, struct config_user *u, char **msg)
{
    char *c1 = strchr(line, ':'), *c2, q[80];
    if (c1 == NULL) {
        *msg = xstrdup("expected name:HASH[:domain,domain...]");
        return BH_EINVAL;
    }
    *c1 = '\0';
    c2 = strchr(c1 + 1, ':');
    if (c2 != NULL)
        *c2 = '\0';
    size_t nlen = strlen(line);
    if (nlen == 0 || nlen > 255 || strcspn(line, " \t") != nlen) {
        *msg = xstrdup("the user name must be 1 to 255 characters without spaces");
        return BH_EINVAL;
    }
    if (strncmp(c1 + 1, "$y$", 3) != 0 && strncmp(c1 + 1, "$6$", 3) != 0) {
        *msg = xasprintf("user %s: the hash must be a crypt(3) string starting with $y$ or $6$",
                         ytree_quote(line, q, sizeof q));
        return BH_EINVAL;
    }
    u->name = xstrdup(line);
    u->hash = xstrdup(c1 + 1);
    const char *bad;
    if (c2 != NULL && user_domains(c2 + 1, u, &bad) < 0) {
        *msg =
            xasprintf("user %s: %s is not a valid domain", u->name, ytree_quote(bad, q, sizeof q));
        return BH_EINVAL;
    }
    return 0;
}

struct user_at {
    const char *name;
    int line;
};

static int
user_at_cmp(const void *pa, const void *pb)
{
    const struct user_at *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c != 0 ? c : (a->line > b->line) - (a->line < b->line);
}

/* A user named twice is reported at the later line. */
static void
users_dups(struct config_val *v, const char *file, struct user_at *at, size_t n)
{
    if (n < 2)
        return; /* nothing to compare (and at may be NULL) */
    qsort(at, n, sizeof *at, user_at_cmp);
    for (size_t i = 1, run = 0; i < n; i++) {
        if (strcmp(at[i].name, at[run].name) != 0) {
            run = i;
            continue;
        }
        char q[80];
        config_diag_add(v->diags, file, at[i].line, 1, "user %s appears twice (first on line %d)",
                        ytree_quote(at[i].name, q, sizeof q), at[run].line);
        v->errors++;
    }
}

static void
user_fini(struct config_user *u)
{
    free(u->name);
    free(u->hash);
    for (size_t i = 0; i < u->ndomains; i++)
        free(u->domains[i]);
    free(u->domains);
}

/* The next line of the text at *p (NUL-terminated in place, without its
 * line end or trailing blanks), or NULL at the end. */
static char *
next_line(char **p)
{
    char *line = *p;
    if (line == NULL)
        return NULL;
    char *nl = strchr(line, '\n');
    *p = nl != NULL ? nl + 1 : NULL;
    if (nl != NULL)
        *nl = '\0';
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    return line;
}

/* Parse the users file's text: blank lines and # comments are skipped,
 * problems are reported as USERSFILE:LINE:1. */
static void
users_parse(struct config_val *v, struct config *c, char *text)
{
    size_t cap = 0;
    int lineno = 0;
    struct user_at *at = NULL;
    char *line, *p = text;
    c->nusers = 0; /* a fresh config: no users yet */
    while ((line = next_line(&p)) != NULL) {
        lineno++;
        const char *t = line + strspn(line, " \t");
        if (*t == '\0' || *t == '#' || (p == NULL && *line == '\0'))
            continue;
        if (c->nusers == cap) {
            cap = cap ? cap * 2 : 8;
            c->users = xrealloc(c->users, cap * sizeof *c->users);
            at = xrealloc(at, cap * sizeof *at);
        }
        struct config_user *u = &c->users[c->nusers];
        char *msg = NULL;
        memset(u, 0, sizeof *u);
        if (user_line(line, u, &msg) == 0) {
            at[c->nusers++] = (struct user_at){u->name, lineno};
        } else {
            config_diag_add(v->diags, c->users_file, lineno, 1, "%s", msg);
            v->errors++;
            user_fini(u);
        }
        free(msg);
    }
    users_dups(v, c->users_file, at, c->nusers);
    free(at);
}

static void
parse_users(struct config_val *v, struct config *c, const struct ytree_node *srv)
{
    const struct ytree_node *n = ytree_get(srv, "users_file");
    char *text;
    size_t len;
    if (config_val_path(v, srv, "users_file", &c->users_file) < 0 || c->users_file == NULL)
        return;
    if (!c->has_tls)
        config_val_err(v, config_val_key(srv, "users_file"),
                       "users_file: needs server.tls (AUTH is offered only inside TLS)");
    if (config_val_slurp(v, n, "users file", c->users_file, &text, &len) < 0)
        return;
    if (strlen(text) != len)
        config_val_err(v, n, "users file %s: contains a NUL byte", c->users_file);
    else
        users_parse(v, c, text);
    free(text);
}

static bool
address_ok(const char *s)
{
    const char *at = strrchr(s, '@');
    char norm[DOMAIN_MAX + 1];
    return at != NULL && at != s && domain_normalise(at + 1, strlen(at + 1), norm) == 0 &&
           strcspn(s, " \t<>") == strlen(s);
}

static void
parse_limits(struct config_val *v, struct config *c, const struct ytree_node *srv)
{
    c->max_message_size = 25u * 1024 * 1024;
    c->max_recipients = 1000;
    c->max_connections = 10000;
    c->max_connections_per_ip = 100;
    c->timeout_command = 300;
    c->timeout_data = 600;
    c->greet_delay = 0;
    config_val_size(v, srv, "max_message_size", 1, &c->max_message_size);
    config_val_uint(v, srv, "max_recipients", 1, UINT_MAX, &c->max_recipients);
    config_val_uint(v, srv, "max_connections", 1, UINT_MAX, &c->max_connections);
    config_val_uint(v, srv, "max_connections_per_ip", 1, UINT_MAX, &c->max_connections_per_ip);
    config_val_duration(v, srv, "greet_delay", 0, &c->greet_delay);
    const struct ytree_node *t = ytree_get(srv, "timeouts");
    if (t != NULL && config_val_map(v, t, "timeouts", timeout_keys)) {
        config_val_duration(v, t, "command", 1, &c->timeout_command);
        config_val_duration(v, t, "data", 1, &c->timeout_data);
    }
    const struct ytree_node *pm = ytree_get(srv, "postmaster");
    if (config_val_str(v, srv, "postmaster", &c->postmaster) == 0 && c->postmaster != NULL &&
        !address_ok(c->postmaster))
        config_val_err(v, pm, "postmaster: expected an address like postmaster@example.org");
}

static void
parse_storage(struct config_val *v, struct config *c, const struct ytree_node *root)
{
    static const char *const backends[] = {"sqlite", "postgres", NULL};
    const struct ytree_node *s = ytree_get(root, "storage");
    c->storage_path = config_val_abspath(v, "var/queue.db");
    c->backend = CONFIG_BACKEND_SQLITE;
    if (s == NULL || !config_val_map(v, s, "storage", storage_keys))
        return;
    config_val_path(v, s, "path", &c->storage_path);
    int b = 0;
    if (config_val_enum(v, s, "backend", backends, &b) == 0)
        c->backend = (enum config_backend)b;
    config_val_str(v, s, "dsn", &c->storage_dsn);
    if (c->backend == CONFIG_BACKEND_POSTGRES && ytree_get(s, "dsn") == NULL)
        config_val_missing(v, s, "dsn", "backend postgres needs a dsn");
    if (c->backend == CONFIG_BACKEND_SQLITE && ytree_get(s, "dsn") != NULL)
        config_val_err(v, config_val_later(config_val_key(s, "dsn"), config_val_key(s, "backend")),
                       "dsn: only used with backend postgres");
}

static void
parse_queue(struct config_val *v, struct config *c, const struct ytree_node *root)
{
    const struct ytree_node *q = ytree_get(root, "queue");
    c->retry_initial = 60;
    c->retry_max = 3600;
    c->lifetime = 5 * 86400;
    c->delay_warning = 4 * 3600;
    if (q == NULL || !config_val_map(v, q, "queue", queue_keys))
        return;
    int a = config_val_duration(v, q, "retry_initial", 1, &c->retry_initial);
    int b = config_val_duration(v, q, "retry_max", 1, &c->retry_max);
    config_val_duration(v, q, "lifetime", 1, &c->lifetime);
    config_val_duration(v, q, "delay_warning", 0, &c->delay_warning);
    if (a == 0 && b == 0 && c->retry_max < c->retry_initial)
        config_val_err(
            v, config_val_later(config_val_key(q, "retry_initial"), config_val_key(q, "retry_max")),
            "retry_max must not be less than retry_initial");
}

/* A DNS server: an IP address with an optional port. */
static bool
dns_server_ok(struct config_val *v, const struct ytree_node *n, const char *key, const char *s)
{
    struct sockaddr_storage sa;
    struct in6_addr a6;
    if (inet_pton(AF_INET, s, &a6) == 1 || inet_pton(AF_INET6, s, &a6) == 1)
        return true;
    if (strchr(s, ':') == NULL || s[0] == '[') {
        char *with_port = s[0] == '[' ? xstrdup(s) : xasprintf("%s:53", s);
        bool ok = config_val_sockaddr(with_port, &sa) == 0;
        free(with_port);
        if (ok)
            return true;
    } else if (config_val_sockaddr(s, &sa) == 0) {
        return true;
    }
    char q[80];
    config_val_err(v, n,
                   "%s: %s is not an IP address with an optional port "
                   "(\"127.0.0.1:53\", \"[::1]:53\")",
                   key, ytree_quote(s, q, sizeof q));
    return false;
}

static void
parse_dns_metrics(struct config_val *v, struct config *c, const struct ytree_node *root)
{
    const struct ytree_node *d = ytree_get(root, "dns"), *m = ytree_get(root, "metrics");
    struct sockaddr_storage sa;
    if (d != NULL && config_val_map(v, d, "dns", dns_keys))
        config_val_strings(v, d, "servers", true, dns_server_ok, &c->dns_servers, &c->ndns_servers);
    if (m == NULL || !config_val_map(v, m, "metrics", metrics_keys))
        return;
    const struct ytree_node *l = ytree_get(m, "listen");
    if (l == NULL || listen_address(v, l, "listen", &sa) < 0)
        return;
    c->metrics_listen = xstrdup(l->value);
    char *text = sockaddr_text(&sa);
    for (size_t i = 0; i < c->nlistens; i++) {
        char *other = c->listens[i].address ? sockaddr_text(&c->listens[i].addr) : NULL;
        bool same = other != NULL && strcmp(text, other) == 0;
        free(other);
        if (same) {
            config_val_err(v, l, "listen: %s is already a server.listen address", text);
            break;
        }
    }
    free(text);
}

void
config_server_parse(struct config_val *v, struct config *c, const struct ytree_node *root)
{
    const struct ytree_node *srv = ytree_get(root, "server");
    if (srv != NULL && !config_val_map(v, srv, "server", server_keys))
        srv = NULL;
    parse_hostname(v, c, srv);
    parse_node(v, c, srv);
    if (c->node == NULL)
        c->node = xstrdup(c->hostname);
    parse_tls(v, c, srv);
    parse_users(v, c, srv);
    parse_listens(v, c, srv);
    parse_accepted(v, c, srv);
    parse_relay(v, c, srv);
    parse_limits(v, c, srv);
    parse_storage(v, c, root);
    parse_queue(v, c, root);
    parse_dns_metrics(v, c, root);
}
