/* Unit tests for routing/aspace: SPEC §3 matching and specificity, the
 * order of hits, input checks, an index cross-checked against the reference
 * matcher, and lookups that cost the same whatever else is indexed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "routing/aspace.h"

/* ---- helpers ------------------------------------------------------------ */

#define MAX_HITS 64

struct hits {
    struct aspace_hit v[MAX_HITS];
    size_t n;
};

static int
collect(void *arg, const struct aspace_hit *hit)
{
    struct hits *h = arg;
    assert_true(h->n < MAX_HITS);
    h->v[h->n++] = *hit;
    return 0;
}

static void
lookup(const struct aspace *a, const char *domain, struct hits *h, unsigned *probes)
{
    h->n = 0;
    assert_int_equal(aspace_lookup(a, domain, collect, h, probes), 0);
}

/* The spaces of the hits, joined by ' ', in hit order. */
static const char *
joined(const struct hits *h, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t i = 0; i < h->n; i++) {
        strncat(buf, h->v[i].space, cap - strlen(buf) - 1);
        if (i + 1 < h->n)
            strncat(buf, " ", cap - strlen(buf) - 1);
    }
    return buf;
}

/* ---- matching ----------------------------------------------------------- */

struct match_case {
    const char *domain;
    const char *want; /* matching spaces, most specific first */
};

static void
test_lookup_table(void **state)
{
    (void)state;
    static const char *spaces[] = {"*",
                                   "*.com",
                                   "contoso.com",
                                   "*.contoso.com",
                                   "*.eu.contoso.com",
                                   "eu.contoso.com",
                                   "fabrikam.com",
                                   "*.org",
                                   "a.b.c.d.example"};
    static const struct match_case cases[] = {
        {"contoso.com", "contoso.com *.contoso.com *.com *"},
        {"eu.contoso.com", "eu.contoso.com *.eu.contoso.com *.contoso.com *.com *"},
        {"x.eu.contoso.com", "*.eu.contoso.com *.contoso.com *.com *"},
        {"www.contoso.com", "*.contoso.com *.com *"},
        {"notcontoso.com", "*.com *"},
        {"fabrikam.com", "fabrikam.com *.com *"},
        {"x.fabrikam.com", "*.com *"},
        {"example.org", "*.org *"},
        {"org", "*.org *"},
        {"example.net", "*"},
        {"b.c.d.example", "*"},
        {"a.b.c.d.example", "a.b.c.d.example *"},
        {"com", "*.com *"},
    };
    struct aspace *a = aspace_new();
    for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++)
        assert_int_equal(aspace_add(a, spaces[i], (unsigned)i, 1), 0);
    assert_int_equal(aspace_count(a), sizeof(spaces) / sizeof(spaces[0]));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hits h;
        char buf[512];
        lookup(a, cases[i].domain, &h, NULL);
        assert_string_equal(joined(&h, buf, sizeof(buf)), cases[i].want);
    }
    aspace_free(a);
}

static void
test_hit_fields(void **state)
{
    (void)state;
    struct aspace *a = aspace_new();
    assert_int_equal(aspace_add(a, "*", 7, 10), 0);
    assert_int_equal(aspace_add(a, "*.contoso.com", 3, 5), 0);
    assert_int_equal(aspace_add(a, "contoso.com", 4, 1), 0);
    assert_int_equal(aspace_add(a, "*.contoso.com", 9, 2), 0); /* a second owner */
    struct hits h;
    unsigned probes = 0;
    lookup(a, "contoso.com", &h, &probes);
    assert_int_equal(probes, 2);
    assert_int_equal(h.n, 4);
    assert_int_equal(h.v[0].owner, 4);
    assert_true(h.v[0].exact);
    assert_int_equal(h.v[0].labels, 2);
    assert_int_equal(h.v[0].cost, 1);
    for (size_t i = 1; i < 3; i++) {
        assert_string_equal(h.v[i].space, "*.contoso.com");
        assert_false(h.v[i].exact);
        assert_int_equal(h.v[i].labels, 2);
        assert_true(h.v[i].owner == 3 || h.v[i].owner == 9);
        assert_int_equal(h.v[i].cost, h.v[i].owner == 3 ? 5 : 2);
    }
    assert_int_equal(h.v[3].owner, 7);
    assert_int_equal(h.v[3].labels, 0);
    assert_int_equal(h.v[3].cost, 10);
    aspace_free(a);
}

static void
test_specificity_order(void **state)
{
    (void)state;
    /* (labels, exact): exact X > *.X > *.Y for shorter Y > "*". */
    assert_true(aspace_specificity(2, true) > aspace_specificity(2, false));
    assert_true(aspace_specificity(2, false) > aspace_specificity(1, true));
    assert_true(aspace_specificity(1, false) > aspace_specificity(0, false));
    assert_int_equal(aspace_specificity(0, false), 0);
    unsigned s;
    assert_true(aspace_matches("*.contoso.com", "contoso.com", &s));
    assert_int_equal(s, aspace_specificity(2, false));
    assert_true(aspace_matches("contoso.com", "contoso.com", &s));
    assert_int_equal(s, aspace_specificity(2, true));
    assert_true(aspace_matches("*", "anything.example", &s));
    assert_int_equal(s, 0);
    assert_false(aspace_matches("*.contoso.com", "xcontoso.com", NULL));
    assert_false(aspace_matches("contoso.com", "www.contoso.com", NULL));
    assert_false(aspace_matches("*.www.contoso.com", "contoso.com", NULL));
}

static int
stop_at_second(void *arg, const struct aspace_hit *hit)
{
    (void)hit;
    int *n = arg;
    return ++*n == 2 ? 42 : 0;
}

static void
test_callback_stop(void **state)
{
    (void)state;
    struct aspace *a = aspace_new();
    assert_int_equal(aspace_add(a, "*", 0, 1), 0);
    assert_int_equal(aspace_add(a, "*.x.org", 1, 1), 0);
    assert_int_equal(aspace_add(a, "x.org", 2, 1), 0);
    int n = 0;
    assert_int_equal(aspace_lookup(a, "x.org", stop_at_second, &n, NULL), 42);
    assert_int_equal(n, 2);
    aspace_free(a);
}

static void
test_bad_input(void **state)
{
    (void)state;
    static const char *bad[] = {"",       "*.*",     "a*b.com",       "*com", "Contoso.com",
                                "x.org.", "1.2.3.4", "[1.2.3.4]",     "*.",   "a..b",
                                "-a.com", "a b.com", "*.Contoso.com", "**",   "*.1.2.3.4"};
    struct aspace *a = aspace_new();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(aspace_add(a, bad[i], 0, 1), BH_EINVAL);
    assert_int_equal(aspace_add(a, NULL, 0, 1), BH_EINVAL);
    char big[400];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(aspace_add(a, big, 0, 1), BH_EINVAL);
    assert_int_equal(aspace_count(a), 0);
    struct hits h = {.n = 0};
    assert_int_equal(aspace_lookup(a, "", collect, &h, NULL), BH_EINVAL);
    assert_int_equal(aspace_lookup(a, big, collect, &h, NULL), BH_EINVAL);
    /* An empty index matches nothing. */
    lookup(a, "example.org", &h, NULL);
    assert_int_equal(h.n, 0);
    aspace_free(a);
    aspace_free(NULL);
}

/* ---- scale -------------------------------------------------------------- */

/* n unrelated spaces, mixed exact and wildcard, none matching *.test.example */
static char **
make_spaces(size_t n)
{
    char **v = xmalloc(n * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = xasprintf(i % 2 ? "*.host%zu.zone%zu.net" : "host%zu.zone%zu.net", i, i % 97);
    return v;
}

static void
free_spaces(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static struct aspace *
index_with(char **unrelated, size_t n)
{
    struct aspace *a = aspace_new();
    for (size_t i = 0; i < n; i++)
        assert_int_equal(aspace_add(a, unrelated[i], (unsigned)(1000 + i), 1), 0);
    assert_int_equal(aspace_add(a, "*.test.example", 1, 1), 0);
    assert_int_equal(aspace_add(a, "www.test.example", 2, 1), 0);
    assert_int_equal(aspace_add(a, "*", 3, 1), 0);
    return a;
}

static void
test_unrelated_spaces(void **state)
{
    (void)state;
    static const char *domains[] = {"www.test.example", "a.b.test.example", "test.example",
                                    "host5.zone5.org",  "example",          "nowhere.invalid"};
    size_t big = 20000;
    char **sp = make_spaces(big);
    struct aspace *small = index_with(sp, 10);
    struct aspace *large = index_with(sp, big);
    for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
        struct hits hs, hl;
        char bs[512], bl[512];
        unsigned ps = 0, pl = 0;
        lookup(small, domains[i], &hs, &ps);
        lookup(large, domains[i], &hl, &pl);
        assert_string_equal(joined(&hs, bs, sizeof(bs)), joined(&hl, bl, sizeof(bl)));
        /* One probe per label, whatever the size of the index. */
        assert_int_equal(ps, pl);
        unsigned labels = 1;
        for (const char *p = domains[i]; *p; p++)
            labels += *p == '.';
        assert_int_equal(ps, labels);
    }
    /* The unrelated spaces are all there too. */
    struct hits h;
    lookup(large, "x.host19999.zone17.net", &h, NULL); /* 19999 % 97 == 17 */
    assert_int_equal(h.n, 2);
    assert_int_equal(h.v[0].owner, 1000 + 19999);
    assert_false(h.v[0].exact);
    lookup(large, "host19998.zone16.net", &h, NULL);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.v[0].owner, 1000 + 19998);
    assert_true(h.v[0].exact);
    lookup(small, "host19998.zone16.net", &h, NULL);
    assert_int_equal(h.n, 1);
    aspace_free(small);
    aspace_free(large);
    free_spaces(sp, big);
}

static uint64_t
rng_next(uint64_t *s)
{
    /* splitmix64: a fixed seed keeps the test reproducible. */
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A random name of 1..4 labels over a tiny alphabet, so that names collide. */
static void
random_name(uint64_t *s, char *out)
{
    static const char *labels[] = {"a", "b", "ab", "com", "x-y", "org"};
    unsigned n = 1 + (unsigned)(rng_next(s) % 4);
    out[0] = '\0';
    for (unsigned i = 0; i < n; i++) {
        if (i)
            strcat(out, ".");
        strcat(out, labels[rng_next(s) % 6]);
    }
}

static void
test_against_reference(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    enum { NSPACES = 300, NQUERIES = 2000 };
    char(*spaces)[64] = xmalloc(NSPACES * sizeof(*spaces));
    struct aspace *a = aspace_new();
    for (unsigned i = 0; i < NSPACES; i++) {
        char name[48];
        random_name(&seed, name);
        unsigned kind = (unsigned)(rng_next(&seed) % 7);
        snprintf(spaces[i], sizeof(spaces[i]), kind == 0 ? "*" : kind < 4 ? "*.%s" : "%s", name);
        assert_int_equal(aspace_add(a, spaces[i], i, i % 5), 0);
    }
    for (unsigned q = 0; q < NQUERIES; q++) {
        char d[48];
        random_name(&seed, d);
        struct hits h;
        lookup(a, d, &h, NULL);
        size_t want = 0;
        for (unsigned i = 0; i < NSPACES; i++) {
            unsigned spec;
            if (!aspace_matches(spaces[i], d, &spec))
                continue;
            want++;
            size_t k = 0;
            while (k < h.n && h.v[k].owner != i)
                k++;
            assert_true(k < h.n);
            assert_int_equal(aspace_specificity(h.v[k].labels, h.v[k].exact), spec);
        }
        assert_int_equal(h.n, want);
        for (size_t k = 1; k < h.n; k++)
            assert_true(aspace_specificity(h.v[k - 1].labels, h.v[k - 1].exact) >=
                        aspace_specificity(h.v[k].labels, h.v[k].exact));
    }
    aspace_free(a);
    free(spaces);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_table),      cmocka_unit_test(test_hit_fields),
        cmocka_unit_test(test_specificity_order), cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_bad_input),         cmocka_unit_test(test_unrelated_spaces),
        cmocka_unit_test(test_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
