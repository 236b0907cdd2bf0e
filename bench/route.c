/*
 * bench/route: routing lookups through the router API at 1,000 and 100,000
 * address spaces (SPEC §3: a lookup costs O(labels), whatever the number of
 * spaces).
 *
 * For each size it fills a struct config by hand (100 spaces per connector,
 * half exact "X", half "*.X", plus one "internet" connector on "*" unless
 * --no-star), builds the router, and times LOOKUPS router_route_counted()
 * calls on one core over pre-generated recipients: 50% a random indexed
 * domain with one or two labels prepended, 25% from a hot set of 20 indexed
 * domains, 25% misses. Both sizes draw queries of the same shape.
 *
 * Usage: build/bench/route [--no-star] [LOOKUPS]   (default 1000000)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/config.h"
#include "connectors/util.h"
#include "routing/router.h"

#define SPACES_PER_CONNECTOR 100
#define HOT 20

static const char *tlds[] = {"com", "net", "org", "de", "co.uk", "example"};
#define NTLDS (sizeof(tlds) / sizeof(tlds[0]))

static uint64_t
rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* The domain X of space i (the same for every size, so shapes match). */
static char *
space_domain(size_t i)
{
    return xasprintf("d%06zx-%zu.%s", (i * 2654435761u) & 0xffffff, i, tlds[i % NTLDS]);
}

static void
config_fill(struct config *c, size_t nspaces, int star)
{
    size_t nconn = nspaces / SPACES_PER_CONNECTOR;
    memset(c, 0, sizeof(*c));
    c->connectors = xcalloc(nconn + 1, sizeof(*c->connectors));
    for (size_t k = 0; k < nconn + (star != 0); k++) {
        struct connector *con = &c->connectors[c->nconnectors++];
        con->priorities = CONNECTOR_PRIORITY_ALL;
        con->system_messages = con->non_system_messages = true;
        con->senders.default_accept = true;
        if (k == nconn) { /* the "*" connector */
            con->name = xstrdup("internet");
            con->aspaces = xcalloc(1, sizeof(*con->aspaces));
            con->aspaces[0] = (struct connector_aspace){xstrdup("*"), 1};
            con->naspaces = 1;
            continue;
        }
        con->name = xasprintf("conn-%05zu", k);
        con->aspaces = xcalloc(SPACES_PER_CONNECTOR, sizeof(*con->aspaces));
        for (size_t j = 0; j < SPACES_PER_CONNECTOR; j++) {
            size_t i = k * SPACES_PER_CONNECTOR + j;
            char *d = space_domain(i);
            char *sp = i % 2 ? xasprintf("*.%s", d) : xstrdup(d);
            free(d);
            con->aspaces[con->naspaces++] = (struct connector_aspace){sp, 1 + (unsigned)(i % 3)};
        }
    }
}

static void
config_release(struct config *c)
{
    for (size_t k = 0; k < c->nconnectors; k++) {
        struct connector *con = &c->connectors[k];
        for (size_t j = 0; j < con->naspaces; j++)
            free(con->aspaces[j].space);
        free(con->aspaces);
        free(con->name);
    }
    free(c->connectors);
}

/* A random indexed space whose TLD is an independent draw, so that both
 * sizes see the same mix of label counts. */
static size_t
draw_space(uint64_t *s, size_t nspaces)
{
    size_t t = rng(s) % NTLDS;
    return (rng(s) % (nspaces / NTLDS)) * NTLDS + t;
}

/* One recipient of the mix; the returned string is the caller's. */
static char *
make_query(uint64_t *s, size_t nspaces, const size_t *hot)
{
    uint64_t r = rng(s) % 4;
    if (r < 2) { /* 50%: an indexed domain under one or two extra labels */
        char *d = space_domain(draw_space(s, nspaces));
        char *q = rng(s) % 2 ? xasprintf("u@mx.%s", d) : xasprintf("u@a.mx.%s", d);
        free(d);
        return q;
    }
    if (r == 2) { /* 25%: the hot set */
        char *d = space_domain(hot[rng(s) % HOT]);
        char *q = xasprintf("u@mx.%s", d);
        free(d);
        return q;
    }
    /* 25%: misses of the same shape */
    return xasprintf("u@mx.m%06" PRIx64 "-%" PRIu64 ".%s", rng(s) & 0xffffff, rng(s) % nspaces,
                     tlds[rng(s) % NTLDS]);
}

struct stats {
    double build_s, lookup_s;
    double probes_per_lookup;
    long rss0, rss1, rss2;
    size_t ok, nomatch, other;
};

/* The timed part: route every pre-generated recipient once. */
static void
time_lookups(const struct router *r, char *const *q, size_t nlookups, struct stats *st)
{
    unsigned long long probes = 0;
    st->ok = st->nomatch = st->other = 0;
    double t0 = now();
    for (size_t i = 0; i < nlookups; i++) {
        struct router_result res;
        unsigned p = 0;
        enum router_status rc = router_route_counted(r, q[i], NULL, &res, &p);
        probes += p;
        st->ok += rc == ROUTER_OK;
        st->nomatch += rc == ROUTER_NO_MATCH;
        st->other += rc != ROUTER_OK && rc != ROUTER_NO_MATCH;
        router_result_fini(&res);
    }
    st->lookup_s = now() - t0;
    st->probes_per_lookup = (double)probes / (double)nlookups;
}

static void
run(size_t nspaces, size_t nlookups, int star, struct stats *st)
{
    uint64_t seed = 20240601;
    size_t hot[HOT];
    for (size_t i = 0; i < HOT; i++)
        hot[i] = draw_space(&seed, nspaces);
    char **q = xmalloc(nlookups * sizeof(*q));
    for (size_t i = 0; i < nlookups; i++)
        q[i] = make_query(&seed, nspaces, hot);

    struct config c;
    st->rss0 = rss_kib();
    config_fill(&c, nspaces, star);
    st->rss1 = rss_kib();
    double t0 = now();
    struct router *r = router_new(&c);
    st->build_s = now() - t0;
    st->rss2 = rss_kib();
    if (r == NULL) {
        fprintf(stderr, "route: router_new failed\n");
        exit(1);
    }

    time_lookups(r, q, nlookups, st);

    router_free(r);
    config_release(&c);
    for (size_t i = 0; i < nlookups; i++)
        free(q[i]);
    free(q);
}

static void
print(size_t nspaces, size_t nlookups, const struct stats *st)
{
    printf("spaces=%zu connectors=%zu build=%.3fms lookups=%zu time=%.3fs lookups_per_s=%.0f "
           "ns_per_lookup=%.1f probes_per_lookup=%.3f rss_kib_before=%ld rss_kib_config=%ld "
           "rss_kib_router=%ld index_kib=%ld ok=%zu no_match=%zu other=%zu\n",
           nspaces, nspaces / SPACES_PER_CONNECTOR, st->build_s * 1e3, nlookups, st->lookup_s,
           (double)nlookups / st->lookup_s, st->lookup_s * 1e9 / (double)nlookups,
           st->probes_per_lookup, st->rss0, st->rss1, st->rss2, st->rss2 - st->rss1, st->ok,
           st->nomatch, st->other);
}

int
main(int argc, char **argv)
{
    size_t nlookups = 1000000;
    int star = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-star") == 0)
            star = 0;
        else if ((nlookups = strtoul(argv[i], NULL, 10)) == 0) {
            fprintf(stderr, "usage: route [--no-star] [LOOKUPS]\n");
            return 64;
        }
    }
    static const size_t sizes[] = {1000, 100000};
    struct stats st[2];
    for (size_t k = 0; k < 2; k++) {
        run(sizes[k], nlookups, star, &st[k]);
        print(sizes[k], nlookups, &st[k]);
    }
    printf("time_ratio_100000_vs_1000=%.2f probes_ratio=%.3f\n", st[1].lookup_s / st[0].lookup_s,
           st[1].probes_per_lookup / st[0].probes_per_lookup);
    return 0;
}
