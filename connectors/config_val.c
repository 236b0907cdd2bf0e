#include "connectors/config_val.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "connectors/units.h"
#include "connectors/util.h"

void
config_val_err(struct config_val *v, const struct ytree_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = xmalloc(len > 0 ? (size_t)len + 1 : 1);
    va_start(ap, fmt);
    vsnprintf(msg, len > 0 ? (size_t)len + 1 : 1, fmt, ap);
    va_end(ap);
    config_diag_add(v->diags, v->file, n ? n->line : 0, n ? n->col : 0, "%s", msg);
    free(msg);
    v->errors++;
}

const char *
config_val_what(const struct ytree_node *n, char *buf, size_t len)
{
    char q[80];
    const char *s;
    if (n == NULL)
        s = "nothing";
    else if (n->kind == YTREE_MAPPING)
        s = "a mapping";
    else if (n->kind == YTREE_SEQUENCE)
        s = "a list";
    else if (ytree_is_null(n))
        s = "null";
    else if (!n->plain && n->len == 0)
        s = "an empty string";
    else if (!n->plain) {
        snprintf(buf, len, "a quoted string %s", ytree_quote(n->value, q, sizeof q));
        return buf;
    } else
        s = ytree_quote(n->value, q, sizeof q);
    snprintf(buf, len, "%s", s);
    return buf;
}

/* "KEY: expected WANT, got WHAT" at n. */
static void
type_err(struct config_val *v, const struct ytree_node *n, const char *key, const char *want)
{
    char what[100];
    config_val_err(v, n, "%s: expected %s, got %s", key, want,
                   config_val_what(n, what, sizeof what));
}

static bool
known(const char *k, const char *const *keys)
{
    for (; *keys != NULL; keys++)
        if (strcmp(k, *keys) == 0)
            return true;
    return false;
}

bool
config_val_map(struct config_val *v, const struct ytree_node *n, const char *key,
               const char *const *keys)
{
    if (n == NULL || n->kind != YTREE_MAPPING) {
        type_err(v, n, key, "a mapping");
        return false;
    }
    for (size_t i = 0; i < n->npairs; i++) {
        const struct ytree_node *k = n->pairs[i].key;
        char q[80];
        if (k->kind != YTREE_SCALAR)
            config_val_err(v, k, "%s: a key must be a string", key);
        else if (!known(k->value, keys))
            config_val_err(v, k, "unknown key %s in %s", ytree_quote(k->value, q, sizeof q), key);
    }
    return true;
}

bool
config_val_seq(struct config_val *v, const struct ytree_node *n, const char *key)
{
    if (n != NULL && n->kind == YTREE_SEQUENCE)
        return true;
    type_err(v, n, key, "a list");
    return false;
}

void
config_val_missing(struct config_val *v, const struct ytree_node *map, const char *key,
                   const char *why)
{
    const struct ytree_node *at = map != NULL && map->npairs > 0 ? map->pairs[0].key : map;
    if (why != NULL)
        config_val_err(v, at, "missing key \"%s\" (%s)", key, why);
    else
        config_val_err(v, at, "missing key \"%s\"", key);
}

const struct ytree_node *
config_val_later(const struct ytree_node *a, const struct ytree_node *b)
{
    if (a == NULL)
        return b;
    if (b == NULL)
        return a;
    if (a->line != b->line)
        return a->line > b->line ? a : b;
    return a->col >= b->col ? a : b;
}

const struct ytree_node *
config_val_key(const struct ytree_node *map, const char *key)
{
    const struct ytree_pair *p = ytree_pair(map, key);
    return p != NULL ? p->key : NULL;
}

const char *
config_val_string(struct config_val *v, const struct ytree_node *n, const char *key)
{
    if (n == NULL || n->kind != YTREE_SCALAR || ytree_is_null(n) || n->len == 0) {
        type_err(v, n, key, "a string");
        return NULL;
    }
    return n->value;
}

/* A plain scalar for a number, size, duration or boolean, or NULL. */
static const char *
plain(struct config_val *v, const struct ytree_node *n, const char *key, const char *want)
{
    if (n->kind != YTREE_SCALAR || !n->plain || ytree_is_null(n)) {
        type_err(v, n, key, want);
        return NULL;
    }
    return n->value;
}

static void
range_err(struct config_val *v, const struct ytree_node *n, const char *key, uint64_t min,
          uint64_t max)
{
    if (max == UINT64_MAX)
        config_val_err(v, n, "%s: must be at least %llu", key, (unsigned long long)min);
    else
        config_val_err(v, n, "%s: must be between %llu and %llu", key, (unsigned long long)min,
                       (unsigned long long)max);
}

int
config_val_u64_node(struct config_val *v, const struct ytree_node *n, const char *key, uint64_t min,
                    uint64_t max, uint64_t *out)
{
    const char *s = plain(v, n, key, "an integer");
    uint64_t x;
    if (s == NULL)
        return BH_EINVAL;
    int rc = units_parse_uint(s, &x);
    if (rc == BH_EINVAL) {
        type_err(v, n, key, "an integer");
        return rc;
    }
    if (rc < 0 || x < min || x > max) {
        range_err(v, n, key, min, max);
        return BH_EINVAL;
    }
    *out = x;
    return 0;
}

int
config_val_str(struct config_val *v, const struct ytree_node *map, const char *key, char **out)
{
    const struct ytree_node *n = ytree_get(map, key);
    if (n == NULL)
        return 0;
    const char *s = config_val_string(v, n, key);
    if (s == NULL)
        return BH_EINVAL;
    free(*out);
    *out = xstrdup(s);
    return 0;
}

int
config_val_u64(struct config_val *v, const struct ytree_node *map, const char *key, uint64_t min,
               uint64_t max, uint64_t *out)
{
    const struct ytree_node *n = ytree_get(map, key);
    return n == NULL ? 0 : config_val_u64_node(v, n, key, min, max, out);
}

int
config_val_uint(struct config_val *v, const struct ytree_node *map, const char *key, unsigned min,
                unsigned max, unsigned *out)
{
    uint64_t x;
    const struct ytree_node *n = ytree_get(map, key);
    if (n == NULL)
        return 0;
    int rc = config_val_u64_node(v, n, key, min, max, &x);
    if (rc == 0)
        *out = (unsigned)x;
    return rc;
}

/* A size or a duration: parse with f, then check the minimum. */
static int
with_units(struct config_val *v, const struct ytree_node *map, const char *key, uint64_t min,
           uint64_t *out, int (*f)(const char *, uint64_t *), const char *want)
{
    const struct ytree_node *n = ytree_get(map, key);
    uint64_t x;
    if (n == NULL)
        return 0;
    const char *s = plain(v, n, key, want);
    if (s == NULL)
        return BH_EINVAL;
    int rc = f(s, &x);
    if (rc == BH_ERANGE) {
        config_val_err(v, n, "%s: value too large", key);
        return BH_EINVAL;
    }
    if (rc < 0) {
        type_err(v, n, key, want);
        return BH_EINVAL;
    }
    if (x < min) {
        config_val_err(v, n, "%s: must not be 0", key);
        return BH_EINVAL;
    }
    *out = x;
    return 0;
}

int
config_val_size(struct config_val *v, const struct ytree_node *map, const char *key, uint64_t min,
                uint64_t *out)
{
    return with_units(v, map, key, min, out, units_parse_size, "a size (512, 10KiB, 25MiB, 1GiB)");
}

int
config_val_duration(struct config_val *v, const struct ytree_node *map, const char *key,
                    uint64_t min, uint64_t *out)
{
    return with_units(v, map, key, min, out, units_parse_duration, "a duration (30s, 5m, 4h, 5d)");
}

int
config_val_bool(struct config_val *v, const struct ytree_node *map, const char *key, bool *out)
{
    const struct ytree_node *n = ytree_get(map, key);
    if (n == NULL)
        return 0;
    const char *s = plain(v, n, key, "true or false");
    if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
        *out = s[0] == 't';
        return 0;
    }
    if (s != NULL)
        type_err(v, n, key, "true or false");
    return BH_EINVAL;
}

int
config_val_enum_node(struct config_val *v, const struct ytree_node *n, const char *key,
                     const char *const *names, int *out)
{
    if (n->kind == YTREE_SCALAR && !ytree_is_null(n)) {
        for (int i = 0; names[i] != NULL; i++) {
            if (strcmp(n->value, names[i]) == 0) {
                *out = i;
                return 0;
            }
        }
    }
    char want[200] = "one of ";
    for (int i = 0; names[i] != NULL; i++) {
        strncat(want, names[i], sizeof want - strlen(want) - 1);
        if (names[i + 1] != NULL)
            strncat(want, names[i + 2] != NULL ? ", " : " or ", sizeof want - strlen(want) - 1);
    }
    type_err(v, n, key, want);
    return BH_EINVAL;
}

int
config_val_enum(struct config_val *v, const struct ytree_node *map, const char *key,
                const char *const *names, int *out)
{
    const struct ytree_node *n = ytree_get(map, key);
    return n == NULL ? 0 : config_val_enum_node(v, n, key, names, out);
}

int
config_val_tls_version(struct config_val *v, const struct ytree_node *map, int *out)
{
    static const char *const names[] = {"1.2", "1.3", NULL};
    int i = 0;
    int rc = config_val_enum(v, map, "min_version", names, &i);
    if (rc == 0 && ytree_get(map, "min_version") != NULL)
        *out = i == 0 ? CONNECTOR_TLS1_2 : CONNECTOR_TLS1_3;
    return rc;
}

static void
strings_free(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

int
config_val_strings(struct config_val *v, const struct ytree_node *map, const char *key,
                   bool nonempty,
                   bool (*check)(struct config_val *, const struct ytree_node *, const char *,
                                 const char *),
                   char ***out, size_t *n)
{
    const struct ytree_node *seq = ytree_get(map, key);
    if (seq == NULL)
        return 0;
    if (!config_val_seq(v, seq, key))
        return BH_EINVAL;
    if (nonempty && seq->nitems == 0) {
        config_val_err(v, seq, "%s: must not be empty", key);
        return BH_EINVAL;
    }
    size_t before = v->errors;
    char **list = xcalloc(seq->nitems, sizeof *list);
    for (size_t i = 0; i < seq->nitems; i++) {
        const char *s = config_val_string(v, seq->items[i], key);
        if (s != NULL && (check == NULL || check(v, seq->items[i], key, s)))
            list[i] = xstrdup(s);
    }
    if (v->errors != before) {
        strings_free(list, seq->nitems);
        return BH_EINVAL;
    }
    strings_free(*out, *n);
    *out = list;
    *n = seq->nitems;
    return 0;
}

char *
config_val_join(const char *dir, const char *p)
{
    char *joined = p[0] == '/' ? xstrdup(p) : xasprintf("%s/%s", dir, p);
    char *out = xmalloc(strlen(joined) + 2);
    size_t o = 0;
    for (const char *s = joined; *s != '\0';) {
        while (*s == '/')
            s++;
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.')) {
            s += n;
            continue;
        }
        out[o++] = '/';
        memcpy(out + o, s, n);
        o += n;
        s += n;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    free(joined);
    return out;
}

char *
config_val_abspath(const struct config_val *v, const char *p)
{
    return config_val_join(v->dir, p);
}

int
config_val_path(struct config_val *v, const struct ytree_node *map, const char *key, char **out)
{
    const struct ytree_node *n = ytree_get(map, key);
    if (n == NULL)
        return 0;
    const char *s = config_val_string(v, n, key);
    if (s == NULL)
        return BH_EINVAL;
    free(*out);
    *out = config_val_abspath(v, s);
    return 0;
}

/* The port after the address: [0-9]+ in 1..65535. */
static int
parse_port(const char *s, uint16_t *port)
{
    uint64_t x;
    if (units_parse_uint(s, &x) < 0 || x < 1 || x > 65535)
        return BH_EINVAL;
    *port = (uint16_t)x;
    return 0;
}

int
config_val_sockaddr(const char *s, struct sockaddr_storage *sa)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon;
    uint16_t port;
    memset(sa, 0, sizeof *sa);
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host)
            return BH_EINVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1 || parse_port(end + 2, &port) < 0)
            return BH_EINVAL;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        return 0;
    }
    colon = strchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof host)
        return BH_EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    if (inet_pton(AF_INET, host, &in->sin_addr) != 1 || parse_port(colon + 1, &port) < 0)
        return BH_EINVAL;
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    return 0;
}

struct dupref {
    const char *s;
    size_t idx;
};

static int
dupref_cmp(const void *pa, const void *pb)
{
    const struct dupref *a = pa, *b = pb;
    int c = strcmp(a->s, b->s);
    if (c != 0)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

void
config_val_dups(struct config_val *v, const char *const *strs,
                const struct ytree_node *const *nodes, size_t n, const char *key, const char *what)
{
    struct dupref *refs = xcalloc(n, sizeof *refs);
    size_t *first = xcalloc(n, sizeof *first), m = 0;
    for (size_t i = 0; i < n; i++) {
        first[i] = SIZE_MAX;
        if (strs[i] != NULL)
            refs[m++] = (struct dupref){strs[i], i};
    }
    qsort(refs, m, sizeof *refs, dupref_cmp);
    for (size_t i = 1, run = 0; i < m; i++) {
        if (strcmp(refs[i].s, refs[run].s) != 0)
            run = i;
        else
            first[refs[i].idx] = refs[run].idx;
    }
    for (size_t i = 0; i < n; i++) {
        if (first[i] == SIZE_MAX)
            continue;
        char q[80];
        const struct ytree_node *f = nodes[first[i]];
        config_val_err(v, nodes[i], "%s: duplicate %s %s (first at %d:%d)", key, what,
                       ytree_quote(strs[i], q, sizeof q), f->line, f->col);
    }
    free(refs);
    free(first);
}

int
config_val_slurp(struct config_val *v, const struct ytree_node *n, const char *kind,
                 const char *path, char **data, size_t *len)
{
    const char *why;
    if (ytree_read_file(path, YTREE_MAX_FILE, data, len, &why) == 0)
        return 0;
    config_val_err(v, n, "unreadable %s %s: %s", kind, path, why);
    return BH_EIO;
}

bool
config_val_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

bool
config_val_pem(struct config_val *v, const struct ytree_node *n, const char *path,
               enum tlspolicy_pem kind)
{
    char err[512];
    int rc = tlspolicy_check_pem(path, kind, err, sizeof err);
    if (rc == 0)
        return true;
    if (rc == BH_EINVAL)
        config_val_err(v, n, "%s", err);
    else
        config_val_err(v, n, "unreadable %s", err);
    return false;
}
