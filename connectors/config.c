#include "connectors/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connectors/config_conn.h"
#include "connectors/config_server.h"
#include "connectors/config_val.h"
#include "connectors/util.h"
#include "connectors/ytree.h"

void
config_diag_add(struct config_diags *d, const char *file, int line, int col, const char *fmt, ...)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->v = xrealloc(d->v, d->cap * sizeof *d->v);
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = xmalloc(len > 0 ? (size_t)len + 1 : 1);
    va_start(ap, fmt);
    vsnprintf(msg, len > 0 ? (size_t)len + 1 : 1, fmt, ap);
    va_end(ap);
    d->v[d->n++] = (struct config_diag){xstrdup(file), line, col, msg};
}

void
config_diags_fini(struct config_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].msg);
    }
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

/* The config file's own problems come first, in file order; those of the
 * files it names (users_file) follow, each in its own line order. */
static bool
diag_before(const struct config_diag *a, const struct config_diag *b, const char *path)
{
    int am = strcmp(a->file, path) != 0, bm = strcmp(b->file, path) != 0;
    if (am != bm)
        return am < bm;
    int c = strcmp(a->file, b->file);
    if (c != 0)
        return c < 0;
    if (a->line != b->line)
        return a->line < b->line;
    return a->col < b->col;
}

/* A stable merge sort of d->v[from..n): equal positions keep the order in
 * which the checks found them. */
static void
diags_sort(struct config_diags *d, size_t from, const char *path)
{
    size_t n = d->n - from;
    struct config_diag *v = d->v + from, *tmp = xcalloc(n, sizeof *tmp);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = diag_before(&v[j], &v[i], path) ? v[j++] : v[i++];
            while (i < mid)
                tmp[k++] = v[i++];
            while (j < hi)
                tmp[k++] = v[j++];
        }
        memcpy(v, tmp, n * sizeof *v);
    }
    free(tmp);
}

static void
users_free(struct config_user *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(u[i].name);
        free(u[i].hash);
        for (size_t j = 0; j < u[i].ndomains; j++)
            free(u[i].domains[j]);
        free(u[i].domains);
    }
    free(u);
}

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void
config_free(struct config *c)
{
    free(c->path);
    free(c->dir);
    free(c->hostname);
    free(c->node);
    for (size_t i = 0; i < c->nlistens; i++)
        free(c->listens[i].address);
    free(c->listens);
    free(c->tls_certificate);
    free(c->tls_key);
    strv_free(c->accepted_domains, c->naccepted_domains);
    free(c->relay_networks);
    free(c->users_file);
    users_free(c->users, c->nusers);
    free(c->postmaster);
    free(c->storage_path);
    free(c->storage_dsn);
    strv_free(c->dns_servers, c->ndns_servers);
    free(c->metrics_listen);
    for (size_t i = 0; i < c->nconnectors; i++)
        config_conn_fini(&c->connectors[i]);
    free(c->connectors);
    free(c);
}

struct config *
config_ref(struct config *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void
config_unref(struct config *c)
{
    if (c == NULL)
        return;
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        config_free(c);
}

static bool
str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

static bool
strv_differs(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return true;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return true;
    return false;
}

static void
keep_str(char **mine, const char *old)
{
    free(*mine);
    *mine = old ? xstrdup(old) : NULL;
}

static bool
listens_differ(const struct config *a, const struct config *b)
{
    if (a->nlistens != b->nlistens)
        return true;
    for (size_t i = 0; i < a->nlistens; i++) {
        const struct config_listen *x = &a->listens[i], *y = &b->listens[i];
        /* starttls or none follows server.tls at run time; implicit does not */
        if (strcmp(x->address, y->address) != 0 ||
            (x->tls == CONFIG_LISTEN_IMPLICIT) != (y->tls == CONFIG_LISTEN_IMPLICIT) ||
            x->odmr != y->odmr)
            return true;
    }
    return false;
}

void
config_keep_restart_settings(struct config *c, const struct config *old,
                             void (*note)(const char *setting, void *arg), void *arg)
{
    if (listens_differ(c, old)) {
        note("server.listen", arg);
        for (size_t i = 0; i < c->nlistens; i++)
            free(c->listens[i].address);
        free(c->listens);
        c->listens = xcalloc(old->nlistens ? old->nlistens : 1, sizeof *c->listens);
        for (size_t i = 0; i < old->nlistens; i++) {
            c->listens[i] = old->listens[i];
            c->listens[i].address = xstrdup(old->listens[i].address);
        }
        c->nlistens = old->nlistens;
    }
    if (str_differs(c->node, old->node)) {
        note("server.node", arg);
        keep_str(&c->node, old->node);
    }
    if (c->backend != old->backend || str_differs(c->storage_path, old->storage_path) ||
        str_differs(c->storage_dsn, old->storage_dsn)) {
        note("storage", arg);
        c->backend = old->backend;
        keep_str(&c->storage_path, old->storage_path);
        keep_str(&c->storage_dsn, old->storage_dsn);
    }
    if (strv_differs(c->dns_servers, c->ndns_servers, old->dns_servers, old->ndns_servers)) {
        note("dns.servers", arg);
        strv_free(c->dns_servers, c->ndns_servers);
        c->dns_servers = xcalloc(old->ndns_servers ? old->ndns_servers : 1, sizeof(char *));
        for (size_t i = 0; i < old->ndns_servers; i++)
            c->dns_servers[i] = xstrdup(old->dns_servers[i]);
        c->ndns_servers = old->ndns_servers;
    }
    if (str_differs(c->metrics_listen, old->metrics_listen)) {
        note("metrics.listen", arg);
        keep_str(&c->metrics_listen, old->metrics_listen);
    }
}

/* The absolute folder of path, without resolving symbolic links. */
static char *
folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL ? xstrdup(".") : xstrndup(path, (size_t)(slash - path));
    char cwd[4096];
    char *abs = NULL;
    if (path[0] == '/')
        abs = config_val_join("/", dir);
    else if (getcwd(cwd, sizeof cwd) != NULL)
        abs = config_val_join(cwd, dir);
    free(dir);
    return abs;
}

static char *
default_hostname(void)
{
    char buf[256];
    if (gethostname(buf, sizeof buf) != 0 || buf[0] == '\0')
        return xstrdup("localhost");
    buf[sizeof buf - 1] = '\0';
    return xstrdup(buf);
}

static const char *const root_keys[] = {"server",  "storage",    "queue", "dns",
                                        "metrics", "connectors", NULL};

/* Check and build everything under the root mapping. */
static void
config_build(struct config_val *v, struct config *c, const struct ytree_node *root)
{
    if (!config_val_map(v, root, "the top level", root_keys))
        return;
    config_server_parse(v, c, root);
    const struct ytree_node *conns = ytree_get(root, "connectors");
    if (conns == NULL)
        config_val_missing(v, root, "connectors", "at least one connector is required");
    else
        config_conn_parse_all(v, c, conns);
}

static struct config *
config_new(const char *path, char *dir)
{
    struct config *c = xcalloc(1, sizeof *c);
    atomic_init(&c->refs, 1);
    c->path = xstrdup(path);
    c->dir = dir;
    c->hostname = default_hostname();
    return c;
}

struct config *
config_load(const char *path, struct config_diags *diags)
{
    size_t before = diags->n;
    char *dir = folder_of(path);
    if (dir == NULL) {
        config_diag_add(diags, path, 0, 0, "cannot find the current directory");
        return NULL;
    }
    struct ytree *t = ytree_load(path, diags);
    if (t == NULL) {
        diags_sort(diags, before, path);
        free(dir);
        return NULL;
    }
    struct config *c = config_new(path, dir);
    struct config_val v = {.file = path, .dir = dir, .diags = diags};
    config_build(&v, c, t->root);
    ytree_free(t);
    if (diags->n != before) {
        diags_sort(diags, before, path);
        config_unref(c);
        return NULL;
    }
    return c;
}

const struct connector *
config_connector(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nconnectors; i++)
        if (strcmp(c->connectors[i].name, name) == 0)
            return &c->connectors[i];
    return NULL;
}

/* An IPv6 CIDR inside ::ffff:0:0/96 becomes the IPv4 CIDR it covers, since
 * mapped client addresses are matched as IPv4. */
static void
cidr_unmap(struct config_cidr *c)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (c->family != AF_INET6 || c->prefix < 96 || memcmp(c->addr, prefix, 12) != 0)
        return;
    memmove(c->addr, c->addr + 12, 4);
    memset(c->addr + 4, 0, 12);
    c->family = AF_INET;
    c->prefix -= 96;
}

static bool
host_bits_clear(const uint8_t *addr, unsigned prefix, unsigned bits)
{
    for (unsigned i = prefix; i < bits; i++)
        if (addr[i / 8] & (0x80u >> (i % 8)))
            return false;
    return true;
}

/* The prefix length after the slash: 0..bits, at most three digits. */
static int
cidr_prefix(const char *p, unsigned bits, unsigned *prefix, const char **why)
{
    size_t digits = strspn(p, "0123456789");
    unsigned n = 0;
    if (digits == 0 || digits > 3 || p[digits] != '\0') {
        *why = "the prefix length must be a number";
        return BH_EINVAL;
    }
    for (size_t i = 0; i < digits; i++)
        n = n * 10 + (unsigned)(p[i] - '0');
    if (n > bits) {
        *why =
            bits == 32 ? "the prefix length must be 0 to 32" : "the prefix length must be 0 to 128";
        return BH_EINVAL;
    }
    *prefix = n;
    return 0;
}

int
config_cidr_parse(const char *s, struct config_cidr *out, const char **why)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    *why = "not an IP address";
    memset(out, 0, sizeof *out);
    if (alen >= sizeof buf)
        return BH_EINVAL;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, out->addr) == 1)
        out->family = AF_INET6;
    else
        return BH_EINVAL;
    unsigned bits = out->family == AF_INET ? 32 : 128;
    out->prefix = bits;
    *why = NULL;
    if (slash != NULL && cidr_prefix(slash + 1, bits, &out->prefix, why) < 0)
        return BH_EINVAL;
    if (!host_bits_clear(out->addr, out->prefix, bits)) {
        *why = "host bits set";
        return BH_EINVAL;
    }
    cidr_unmap(out);
    return 0;
}

bool
config_cidr_match(const struct config_cidr *cidr, const struct sockaddr *sa)
{
    struct config_cidr a = {0};
    if (sa->sa_family == AF_INET) {
        a.family = AF_INET;
        memcpy(a.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        a.family = AF_INET6;
        memcpy(a.addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        a.prefix = 128;
        cidr_unmap(&a);
    } else {
        return false;
    }
    if (a.family != cidr->family)
        return false;
    unsigned full = cidr->prefix / 8, rest = cidr->prefix % 8;
    if (memcmp(a.addr, cidr->addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a.addr[full] & mask) == (cidr->addr[full] & mask);
}

bool
config_relay_allowed(const struct config *c, const struct sockaddr *sa)
{
    for (size_t i = 0; i < c->nrelay_networks; i++)
        if (config_cidr_match(&c->relay_networks[i], sa))
            return true;
    return false;
}

bool
config_domain_accepted(const struct config *c, const char *domain)
{
    size_t dlen = strlen(domain);
    for (size_t i = 0; i < c->naccepted_domains; i++) {
        const char *p = c->accepted_domains[i];
        if (p[0] != '*') {
            if (strcmp(p, domain) == 0)
                return true;
            continue;
        }
        const char *x = p + 2; /* "*.x": x itself and its subdomains */
        size_t xlen = strlen(x);
        if (strcmp(domain, x) == 0)
            return true;
        if (dlen > xlen && domain[dlen - xlen - 1] == '.' && strcmp(domain + dlen - xlen, x) == 0)
            return true;
    }
    return false;
}
