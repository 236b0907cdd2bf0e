/* Unit tests for routing/router: SPEC §3 selection on configs built by
 * hand (no YAML): specificity, no fallback, cost and name tie-breaks,
 * restrictions, statuses, domain parsing, the `considered` list and the
 * error strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "routing/router.h"

/* ---- a config built by hand --------------------------------------------- */

#define MAXCONN 16

struct fixture {
    struct config c;
    struct connector v[MAXCONN];
};

/*
 * Add a connector with the defaults of SPEC §2. spaces is "space[:cost]
 * space[:cost] ...". Returns it for further changes.
 */
static struct connector *
add(struct fixture *f, const char *name, const char *spaces)
{
    assert_true(f->c.nconnectors < MAXCONN);
    struct connector *c = &f->v[f->c.nconnectors++];
    memset(c, 0, sizeof(*c));
    c->name = xstrdup(name);
    c->priorities = CONNECTOR_PRIORITY_ALL;
    c->system_messages = true;
    c->non_system_messages = true;
    c->senders.default_accept = true;
    char *copy = xstrdup(spaces), *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        c->aspaces = xrealloc(c->aspaces, (c->naspaces + 1) * sizeof(*c->aspaces));
        char *colon = strchr(tok, ':');
        unsigned cost = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 1;
        if (colon)
            *colon = '\0';
        c->aspaces[c->naspaces++] = (struct connector_aspace){xstrdup(tok), cost};
    }
    free(copy);
    return c;
}

static void
set_patterns(char ***v, size_t *n, const char *const *pats)
{
    for (; *pats; pats++) {
        *v = xrealloc(*v, (*n + 1) * sizeof(**v));
        (*v)[(*n)++] = xstrdup(*pats);
    }
}

static void
fixture_free(struct fixture *f)
{
    for (size_t i = 0; i < f->c.nconnectors; i++) {
        struct connector *c = &f->v[i];
        for (size_t j = 0; j < c->naspaces; j++)
            free(c->aspaces[j].space);
        for (size_t j = 0; j < c->senders.naccept; j++)
            free(c->senders.accept[j]);
        for (size_t j = 0; j < c->senders.nreject; j++)
            free(c->senders.reject[j]);
        free(c->senders.accept);
        free(c->senders.reject);
        free(c->aspaces);
        free(c->name);
    }
    free(f);
}

static struct fixture *
fixture_new(void)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    f->c.connectors = f->v;
    return f;
}

static const struct router_query unknown = {NULL, ROUTER_SIZE_UNKNOWN, ROUTER_PRIORITY_UNKNOWN,
                                            false};

/* ---- specificity --------------------------------------------------------- */

/* The SPEC §3 ladder: exact X, *.X, *.Y for a shorter Y, then "*". */
static struct fixture *
ladder(void)
{
    struct fixture *f = fixture_new();
    add(f, "internet", "*");
    add(f, "partner", "contoso.com");
    add(f, "partner-wild", "*.contoso.com");
    add(f, "partner-eu", "*.eu.contoso.com");
    add(f, "dotcom", "*.com:50");
    return f;
}

struct route_case {
    const char *rcpt;
    enum router_status status;
    const char *connector; /* NULL: none */
    const char *space;
    const char *domain;
};

static void
run_cases(const struct router *r, const struct route_case *cases, size_t n,
          const struct router_query *q)
{
    for (size_t i = 0; i < n; i++) {
        const struct route_case *c = &cases[i];
        struct router_result res;
        enum router_status st = router_route(r, c->rcpt, q, &res);
        if (st != c->status || res.status != st)
            fail_msg("%s: status %d, want %d (%s)", c->rcpt, st, c->status, res.error);
        if (c->connector == NULL) {
            assert_null(res.connector);
            assert_null(res.space);
            assert_true(res.error[0] != '\0');
        } else {
            assert_non_null(res.connector);
            if (strcmp(res.connector->name, c->connector) != 0)
                fail_msg("%s: routed to %s, want %s", c->rcpt, res.connector->name, c->connector);
            assert_string_equal(res.space, c->space);
            assert_string_equal(res.error, "");
        }
        assert_string_equal(res.domain, c->domain);
        router_result_fini(&res);
    }
}

static void
test_specificity_ladder(void **state)
{
    (void)state;
    static const struct route_case cases[] = {
        {"a@contoso.com", ROUTER_OK, "partner", "contoso.com", "contoso.com"},
        {"a@www.contoso.com", ROUTER_OK, "partner-wild", "*.contoso.com", "www.contoso.com"},
        {"a@eu.contoso.com", ROUTER_OK, "partner-eu", "*.eu.contoso.com", "eu.contoso.com"},
        {"a@x.y.eu.contoso.com", ROUTER_OK, "partner-eu", "*.eu.contoso.com", "x.y.eu.contoso.com"},
        {"a@fabrikam.com", ROUTER_OK, "dotcom", "*.com", "fabrikam.com"},
        {"a@notcontoso.com", ROUTER_OK, "dotcom", "*.com", "notcontoso.com"},
        {"a@example.net", ROUTER_OK, "internet", "*", "example.net"},
        {"a@localhost", ROUTER_OK, "internet", "*", "localhost"},
        /* Case, one trailing dot, and the last '@'. */
        {"A@CONTOSO.COM", ROUTER_OK, "partner", "contoso.com", "contoso.com"},
        {"a@Contoso.Com.", ROUTER_OK, "partner", "contoso.com", "contoso.com"},
        {"a@b@contoso.com", ROUTER_OK, "partner", "contoso.com", "contoso.com"},
        {"a@contoso.com@example.net", ROUTER_OK, "internet", "*", "example.net"},
        {"\"x@contoso.com\"@example.net", ROUTER_OK, "internet", "*", "example.net"},
        {"\"a@b\"@www.contoso.com", ROUTER_OK, "partner-wild", "*.contoso.com", "www.contoso.com"},
        {"a%contoso.com@example.net", ROUTER_OK, "internet", "*", "example.net"},
        {"@a,@b:u@contoso.com", ROUTER_OK, "partner", "contoso.com", "contoso.com"},
    };
    struct fixture *f = ladder();
    struct router *r = router_new(&f->c);
    assert_non_null(r);
    run_cases(r, cases, sizeof(cases) / sizeof(cases[0]), &unknown);
    run_cases(r, cases, sizeof(cases) / sizeof(cases[0]), NULL);
    router_free(r);
    fixture_free(f);
}

/* `considered` for the ladder: each other match with its best space. */
static void
test_considered_ladder(void **state)
{
    (void)state;
    struct fixture *f = ladder();
    struct router *r = router_new(&f->c);
    struct router_result res;
    assert_int_equal(router_route(r, "a@eu.contoso.com", NULL, &res), ROUTER_OK);
    assert_string_equal(res.connector->name, "partner-eu");
    assert_int_equal(res.nconsidered, 3);
    assert_string_equal(res.considered[0].connector->name, "partner-wild");
    assert_string_equal(res.considered[0].space, "*.contoso.com");
    assert_string_equal(res.considered[1].connector->name, "dotcom");
    assert_string_equal(res.considered[1].space, "*.com");
    assert_int_equal(res.considered[1].cost, 50);
    assert_string_equal(res.considered[2].connector->name, "internet");
    assert_string_equal(res.considered[2].space, "*");
    for (size_t i = 0; i < res.nconsidered; i++)
        assert_int_equal(res.considered[i].reason, ROUTER_REASON_LESS_SPECIFIC);
    router_result_fini(&res);
    assert_null(res.considered);
    assert_int_equal(router_route(r, "a@example.org", NULL, &res), ROUTER_OK);
    assert_int_equal(res.nconsidered, 0);
    assert_null(res.considered);
    router_result_fini(&res);
    router_free(r);
    fixture_free(f);
}

static void
test_bad_domains(void **state)
{
    (void)state;
    char longlabel[80], longdom[300];
    snprintf(longlabel, sizeof(longlabel), "a@%064d.com", 0);
    memset(longdom, 0, sizeof(longdom));
    strcpy(longdom, "a@");
    for (int i = 0; i < 64; i++)
        strcat(longdom, "abc."); /* 256 octets of domain */
    strcat(longdom, "com");
    const struct route_case cases[] = {
        {"a@[1.2.3.4]", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@[IPv6:::1]", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@1.2.3.4", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@.", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"postmaster", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@contoso.com..", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@.contoso.com", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@con toso.com", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@-contoso.com", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@contoso_x.com", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@contoso.com>", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@b\r\nRCPT TO:<x@y.z>", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {"a@\xc3\xa9xample.com", ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {longlabel, ROUTER_BAD_DOMAIN, NULL, NULL, ""},
        {longdom, ROUTER_BAD_DOMAIN, NULL, NULL, ""},
    };
    struct fixture *f = ladder();
    struct router *r = router_new(&f->c);
    run_cases(r, cases, sizeof(cases) / sizeof(cases[0]), &unknown);
    /* Errors name the problem and never echo control bytes. */
    struct router_result res;
    router_route(r, "a@[1.2.3.4]", NULL, &res);
    assert_non_null(strstr(res.error, "address literal"));
    router_result_fini(&res);
    router_route(r, "a@b\r\n\x01\x7f.com", NULL, &res);
    for (const char *p = res.error; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    router_result_fini(&res);
    router_route(r, NULL, NULL, &res);
    assert_int_equal(res.status, ROUTER_BAD_DOMAIN);
    router_result_fini(&res);
    router_free(r);
    fixture_free(f);
}

static void
test_long_domain_ok(void **state)
{
    (void)state;
    /* 253 octets, 127 labels: the longest valid domain. */
    char rcpt[300] = "a@";
    for (int i = 0; i < 126; i++)
        strcat(rcpt, "x.");
    strcat(rcpt, "z");
    struct fixture *f = fixture_new();
    add(f, "z", "*.z");
    struct router *r = router_new(&f->c);
    struct router_result res;
    unsigned probes = 0;
    assert_int_equal(router_route_counted(r, rcpt, NULL, &res, &probes), ROUTER_OK);
    assert_int_equal(strlen(res.domain), 253);
    assert_int_equal(probes, 127);
    router_result_fini(&res);
    /* One octet more (254, "xx." in front of 251) is no domain any more. */
    char longer[300] = "a@xx.";
    strcat(longer, rcpt + 4);
    assert_int_equal(strlen(longer + 2), 254);
    assert_int_equal(router_route(r, longer, NULL, &res), ROUTER_BAD_DOMAIN);
    router_result_fini(&res);
    /* A trailing root dot does not count: 253 + "." still routes. */
    strcat(rcpt, ".");
    assert_int_equal(router_route(r, rcpt, NULL, &res), ROUTER_OK);
    assert_int_equal(strlen(res.domain), 253);
    router_result_fini(&res);
    router_free(r);
    fixture_free(f);
}

static void
test_no_match(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    add(f, "partner", "contoso.com *.fabrikam.com");
    struct router *r = router_new(&f->c);
    struct router_result res;
    assert_int_equal(router_route(r, "a@example.net", &unknown, &res), ROUTER_NO_MATCH);
    assert_string_equal(res.error, "no connector matches example.net");
    assert_string_equal(res.domain, "example.net");
    assert_int_equal(res.nconsidered, 0);
    assert_null(res.considered);
    router_result_fini(&res);
    /* An exact space does not cover subdomains. */
    assert_int_equal(router_route(r, "a@www.contoso.com", &unknown, &res), ROUTER_NO_MATCH);
    router_result_fini(&res);
    /* A long domain keeps the error short and terminated. */
    char rcpt[300] = "a@";
    for (int i = 0; i < 62; i++)
        strcat(rcpt, "abc.");
    strcat(rcpt, "net");
    assert_int_equal(router_route(r, rcpt, &unknown, &res), ROUTER_NO_MATCH);
    assert_true(strlen(res.error) < sizeof(res.error));
    assert_non_null(strstr(res.error, "..."));
    router_result_fini(&res);
    router_free(r);
    /* No connector at all. */
    struct config empty;
    memset(&empty, 0, sizeof(empty));
    r = router_new(&empty);
    assert_non_null(r);
    assert_int_equal(router_route(r, "a@example.net", NULL, &res), ROUTER_NO_MATCH);
    router_result_fini(&res);
    router_free(r);
    fixture_free(f);
}

/* ---- no fallback, cost, name -------------------------------------------- */

static void
test_no_fallback_to_star(void **state)
{
    (void)state;
    static const char *const only_org[] = {"*@example.org", NULL};
    struct fixture *f = fixture_new();
    add(f, "internet", "*");
    struct connector *p = add(f, "partner-contoso", "*.contoso.com");
    p->tls.mode = CONNECTOR_TLS_VERIFY;
    p->senders.default_accept = false;
    set_patterns(&p->senders.accept, &p->senders.naccept, only_org);
    struct router *r = router_new(&f->c);
    struct router_query q = unknown;
    struct router_result res;

    q.sender = "boss@example.org";
    assert_int_equal(router_route(r, "a@mx.contoso.com", &q, &res), ROUTER_OK);
    assert_string_equal(res.connector->name, "partner-contoso");
    router_result_fini(&res);

    /* Refused by the forced-TLS partner: never out through "*". */
    q.sender = "spam@example.net";
    assert_int_equal(router_route(r, "a@contoso.com", &q, &res), ROUTER_REFUSED);
    assert_null(res.connector);
    assert_string_equal(res.error, "every connector for contoso.com refuses this message "
                                   "(partner-contoso: sender refused)");
    assert_int_equal(res.nconsidered, 2);
    assert_string_equal(res.considered[0].connector->name, "partner-contoso");
    assert_int_equal(res.considered[0].reason, ROUTER_REASON_SENDER_REFUSED);
    assert_string_equal(res.considered[0].space, "*.contoso.com");
    assert_string_equal(res.considered[1].connector->name, "internet");
    assert_int_equal(res.considered[1].reason, ROUTER_REASON_LESS_SPECIFIC);
    router_result_fini(&res);

    /* Too large for the partner: TOO_LARGE, still no fallback. */
    p->max_message_size = 1000;
    q.sender = NULL;
    q.size = 1001;
    assert_int_equal(router_route(r, "a@contoso.com", &q, &res), ROUTER_TOO_LARGE);
    assert_null(res.connector);
    router_result_fini(&res);
    router_free(r);
    fixture_free(f);
}

static struct fixture *
fabrikam(void)
{
    struct fixture *f = fixture_new();
    add(f, "zeta", "*.fabrikam.com:1");
    add(f, "beta", "*.fabrikam.com:3");
    add(f, "alpha", "*.fabrikam.com:1");
    add(f, "Zulu", "*.fabrikam.com:1");  /* 'Z' < 'a' in byte order */
    add(f, "exact", "fabrikam.com:100"); /* exact beats cheaper wildcards */
    add(f, "multi", "*:0 *.com:7 *.fabrikam.com:9");
    add(f, "star", "*");
    return f;
}

static void
test_cost_then_name(void **state)
{
    (void)state;
    static const struct {
        const char *name, *space;
        unsigned cost;
        enum router_reason reason;
    } want[] = {
        {"alpha", "*.fabrikam.com", 1, ROUTER_REASON_NAME_ORDER},
        {"zeta", "*.fabrikam.com", 1, ROUTER_REASON_NAME_ORDER},
        {"beta", "*.fabrikam.com", 3, ROUTER_REASON_HIGHER_COST},
        {"multi", "*.fabrikam.com", 9, ROUTER_REASON_HIGHER_COST},
        {"star", "*", 1, ROUTER_REASON_LESS_SPECIFIC},
    };
    struct fixture *f = fabrikam();
    struct router *r = router_new(&f->c);
    struct router_result res;
    assert_int_equal(router_route(r, "a@www.fabrikam.com", NULL, &res), ROUTER_OK);
    assert_string_equal(res.connector->name, "Zulu");
    assert_int_equal(res.cost, 1);
    /* The others, most specific first, then cost, then name. */
    assert_int_equal(res.nconsidered, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < res.nconsidered; i++) {
        assert_string_equal(res.considered[i].connector->name, want[i].name);
        assert_string_equal(res.considered[i].space, want[i].space);
        assert_int_equal(res.considered[i].cost, want[i].cost);
        assert_int_equal(res.considered[i].reason, want[i].reason);
    }
    router_result_fini(&res);
    router_free(r);
    fixture_free(f);
}

/* The exact space wins despite its cost; all wildcards are less specific,
 * and a connector is listed once, with its best match. */
static void
test_exact_beats_cost(void **state)
{
    (void)state;
    struct fixture *f = fabrikam();
    struct router *r = router_new(&f->c);
    struct router_result res;
    assert_int_equal(router_route(r, "a@fabrikam.com", NULL, &res), ROUTER_OK);
    assert_string_equal(res.connector->name, "exact");
    assert_string_equal(res.space, "fabrikam.com");
    assert_int_equal(res.cost, 100);
    assert_int_equal(res.nconsidered, 6);
    size_t nmulti = 0;
    for (size_t i = 0; i < res.nconsidered; i++) {
        assert_int_equal(res.considered[i].reason, ROUTER_REASON_LESS_SPECIFIC);
        if (strcmp(res.considered[i].connector->name, "multi") == 0) {
            nmulti++;
            assert_string_equal(res.considered[i].space, "*.fabrikam.com");
        }
    }
    assert_int_equal(nmulti, 1);
    router_result_fini(&res);
    router_free(r);
    fixture_free(f);
}

/* A connector's best match counts, not its cheapest space. */
static void
test_best_match_cost(void **state)
{
    (void)state;
    struct fixture *f = fabrikam();
    struct router *r = router_new(&f->c);
    struct router_result res;
    assert_int_equal(router_route(r, "a@example.com", NULL, &res), ROUTER_OK);
    assert_string_equal(res.connector->name, "multi");
    assert_string_equal(res.space, "*.com");
    assert_int_equal(res.cost, 7);
    assert_int_equal(res.nconsidered, 1);
    assert_int_equal(res.considered[0].reason, ROUTER_REASON_LESS_SPECIFIC);
    router_result_fini(&res);
    assert_int_equal(router_route(r, "a@example.net", NULL, &res), ROUTER_OK);
    assert_string_equal(res.connector->name, "multi");
    assert_string_equal(res.space, "*");
    assert_int_equal(res.cost, 0);
    assert_int_equal(res.nconsidered, 1);
    assert_int_equal(res.considered[0].reason, ROUTER_REASON_HIGHER_COST);
    router_result_fini(&res);
    router_free(r);
    fixture_free(f);
}

/* ---- restrictions -------------------------------------------------------- */

struct restrict_case {
    const char *sender;
    uint64_t size;
    int priority;
    bool system;
    enum router_status status;
    const char *winner;
    enum router_reason small_reason; /* the reason given for "small" */
};

/*
 * Three candidates for *.contoso.com: "small" (cost 1, 1000 bytes, only
 * mail from example.org, no low priority), "nosys" (cost 2, no system
 * messages), "sysonly" (cost 3, only system messages), and "internet" on "*".
 */
static void
test_restrictions_table(void **state)
{
    (void)state;
    static const char *const org[] = {"*@*.example.org", NULL};
    static const char *const intern[] = {"intern@example.org", NULL};
    static const struct restrict_case cases[] = {
        {NULL, ROUTER_SIZE_UNKNOWN, ROUTER_PRIORITY_UNKNOWN, false, ROUTER_OK, "small", 0},
        {"a@example.org", 1000, CONNECTOR_PRIORITY_HIGH, false, ROUTER_OK, "small", 0},
        {"a@example.org", 1001, ROUTER_PRIORITY_UNKNOWN, false, ROUTER_OK, "nosys",
         ROUTER_REASON_TOO_LARGE},
        {"a@example.net", 10, ROUTER_PRIORITY_UNKNOWN, false, ROUTER_OK, "nosys",
         ROUTER_REASON_SENDER_REFUSED},
        {"intern@example.org", 10, ROUTER_PRIORITY_UNKNOWN, false, ROUTER_OK, "nosys",
         ROUTER_REASON_SENDER_REFUSED},
        {NULL, ROUTER_SIZE_UNKNOWN, CONNECTOR_PRIORITY_LOW, false, ROUTER_OK, "nosys",
         ROUTER_REASON_PRIORITY_REFUSED},
        {NULL, ROUTER_SIZE_UNKNOWN, CONNECTOR_PRIORITY_NORMAL, true, ROUTER_OK, "small", 0},
        {"", ROUTER_SIZE_UNKNOWN, ROUTER_PRIORITY_UNKNOWN, true, ROUTER_OK, "sysonly",
         ROUTER_REASON_SENDER_REFUSED},
        /* Several refusals: sender comes first. */
        {"a@example.net", 5000, CONNECTOR_PRIORITY_LOW, false, ROUTER_OK, "nosys",
         ROUTER_REASON_SENDER_REFUSED},
        /* Size before priority. */
        {NULL, 5000, CONNECTOR_PRIORITY_LOW, false, ROUTER_OK, "nosys", ROUTER_REASON_TOO_LARGE},
        /* Out-of-range priorities count as unknown. */
        {NULL, ROUTER_SIZE_UNKNOWN, 3, false, ROUTER_OK, "small", 0},
        {NULL, ROUTER_SIZE_UNKNOWN, 1000, false, ROUTER_OK, "small", 0},
    };
    struct fixture *f = fixture_new();
    struct connector *small = add(f, "small", "*.contoso.com:1");
    small->max_message_size = 1000;
    small->senders.default_accept = false;
    set_patterns(&small->senders.accept, &small->senders.naccept, org);
    set_patterns(&small->senders.reject, &small->senders.nreject, intern);
    small->priorities = (1u << CONNECTOR_PRIORITY_NORMAL) | (1u << CONNECTOR_PRIORITY_HIGH);
    add(f, "nosys", "*.contoso.com:2")->system_messages = false;
    add(f, "sysonly", "*.contoso.com:3")->non_system_messages = false;
    add(f, "internet", "*");
    struct router *r = router_new(&f->c);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct restrict_case *c = &cases[i];
        struct router_query q = {c->sender, c->size, c->priority, c->system};
        struct router_result res;
        assert_int_equal(router_route(r, "x@contoso.com", &q, &res), c->status);
        if (strcmp(res.connector->name, c->winner) != 0)
            fail_msg("case %zu: %s, want %s", i, res.connector->name, c->winner);
        for (size_t k = 0; k < res.nconsidered; k++) {
            const struct router_considered *x = &res.considered[k];
            if (strcmp(x->connector->name, "small") == 0 && x->reason != c->small_reason)
                fail_msg("case %zu: small: %s", i, router_reason_name(x->reason));
            if (strcmp(x->connector->name, "internet") == 0)
                assert_int_equal(x->reason, ROUTER_REASON_LESS_SPECIFIC);
        }
        router_result_fini(&res);
    }
    router_free(r);
    fixture_free(f);
}

static void
check_refused(const struct router *r, const struct router_query *q, enum router_status want,
              const char *error)
{
    struct router_result res;
    assert_int_equal(router_route(r, "x@contoso.com", q, &res), want);
    assert_null(res.connector);
    assert_null(res.space);
    if (error != NULL)
        assert_string_equal(res.error, error);
    router_result_fini(&res);
}

static void
test_too_large_vs_refused(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct connector *a = add(f, "a", "contoso.com");
    struct connector *b = add(f, "b", "contoso.com:2");
    add(f, "wide", "*.contoso.com");
    a->max_message_size = 100;
    b->max_message_size = 200;
    struct router *r = router_new(&f->c);
    struct router_query q = unknown;

    q.size = 201; /* too large everywhere, nothing else: 552 */
    check_refused(r, &q, ROUTER_TOO_LARGE,
                  "every connector for contoso.com refuses this message (a: too large, "
                  "b: too large)");
    q.size = 200; /* fits b exactly */
    struct router_result res;
    assert_int_equal(router_route(r, "x@contoso.com", &q, &res), ROUTER_OK);
    assert_string_equal(res.connector->name, "b");
    router_result_fini(&res);

    /* One refuses for size, the other for the system flag: 550. */
    q.size = 150;
    q.system = true;
    b->system_messages = false;
    check_refused(r, &q, ROUTER_REFUSED,
                  "every connector for contoso.com refuses this message (a: too large, "
                  "b: system message refused)");
    /* Too large and refused for another reason by the same connector. */
    b->system_messages = true;
    b->priorities = 1u << CONNECTOR_PRIORITY_HIGH;
    q.size = 300;
    q.system = false;
    q.priority = CONNECTOR_PRIORITY_LOW;
    check_refused(r, &q, ROUTER_REFUSED, NULL);
    /* Non-system refused. */
    b->priorities = CONNECTOR_PRIORITY_ALL;
    b->non_system_messages = false;
    q.priority = ROUTER_PRIORITY_UNKNOWN;
    q.size = 150;
    check_refused(r, &q, ROUTER_REFUSED,
                  "every connector for contoso.com refuses this message (a: too large, "
                  "b: non-system message refused)");
    router_free(r);
    fixture_free(f);
}

static void
test_refused_error_truncated(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    for (int i = 0; i < MAXCONN; i++) {
        char name[80];
        snprintf(name, sizeof(name), "a-rather-long-connector-name-number-%02d", i);
        add(f, name, "*.contoso.com")->max_message_size = 1;
    }
    struct router *r = router_new(&f->c);
    struct router_query q = unknown;
    q.size = 2;
    struct router_result res;
    assert_int_equal(router_route(r, "x@contoso.com", &q, &res), ROUTER_TOO_LARGE);
    assert_true(strlen(res.error) == sizeof(res.error) - 1);
    assert_string_equal(res.error + strlen(res.error) - 4, "...)");
    assert_int_equal(res.nconsidered, MAXCONN);
    router_result_fini(&res);
    router_free(r);
    fixture_free(f);
}

/* ---- construction ------------------------------------------------------- */

static void
test_router_new_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {"Contoso.com", "*.*", "a*b.com", "*com", "", "x.org.", "1.2.3.4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fixture *f = fixture_new();
        add(f, "ok", "* contoso.com");
        struct connector *c = add(f, "bad", "x.org");
        free(c->aspaces[0].space);
        c->aspaces[0].space = xstrdup(bad[i]);
        assert_null(router_new(&f->c));
        fixture_free(f);
    }
    assert_null(router_new(NULL));
    struct fixture *f = fixture_new();
    add(f, "x", "x.org");
    free(f->v[0].name);
    f->v[0].name = NULL;
    assert_null(router_new(&f->c));
    fixture_free(f);
    router_free(NULL);
    router_result_fini(NULL);
}

static void
test_names(void **state)
{
    (void)state;
    static const char *want[] = {"less specific",
                                 "higher cost",
                                 "name order",
                                 "sender refused",
                                 "too large",
                                 "priority refused",
                                 "system message refused",
                                 "non-system message refused"};
    for (int i = 0; i < 8; i++)
        assert_string_equal(router_reason_name((enum router_reason)i), want[i]);
    assert_string_equal(router_status_name(ROUTER_OK), "ok");
    assert_string_equal(router_status_name(ROUTER_REFUSED), "refused");
}

/* Selection does not depend on the order of connectors in the file. */
static void
test_order_independent(void **state)
{
    (void)state;
    static const char *names[] = {"c", "a", "b", "d"};
    static const char *spaces[] = {"*.x.org:2", "*.x.org:2", "x.org:9", "*"};
    for (int rot = 0; rot < 4; rot++) {
        struct fixture *f = fixture_new();
        for (int i = 0; i < 4; i++)
            add(f, names[(i + rot) % 4], spaces[(i + rot) % 4]);
        struct router *r = router_new(&f->c);
        struct router_result res;
        router_route(r, "u@x.org", NULL, &res);
        assert_string_equal(res.connector->name, "b");
        router_result_fini(&res);
        router_route(r, "u@y.x.org", NULL, &res);
        assert_string_equal(res.connector->name, "a");
        assert_int_equal(res.nconsidered, 2);
        assert_string_equal(res.considered[0].connector->name, "c");
        assert_int_equal(res.considered[0].reason, ROUTER_REASON_NAME_ORDER);
        assert_string_equal(res.considered[1].connector->name, "d");
        router_result_fini(&res);
        router_free(r);
        fixture_free(f);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specificity_ladder),
        cmocka_unit_test(test_considered_ladder),
        cmocka_unit_test(test_bad_domains),
        cmocka_unit_test(test_long_domain_ok),
        cmocka_unit_test(test_no_match),
        cmocka_unit_test(test_no_fallback_to_star),
        cmocka_unit_test(test_cost_then_name),
        cmocka_unit_test(test_exact_beats_cost),
        cmocka_unit_test(test_best_match_cost),
        cmocka_unit_test(test_restrictions_table),
        cmocka_unit_test(test_too_large_vs_refused),
        cmocka_unit_test(test_refused_error_truncated),
        cmocka_unit_test(test_router_new_rejects),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_order_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
