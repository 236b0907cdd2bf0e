/* Unit tests for connectors/connector: sender patterns (precedence, ties,
 * the null sender, case), pattern syntax, priorities from headers, and the
 * enum names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "connectors/connector.h"
#include "connectors/util.h"

/* ---- sender restrictions ------------------------------------------------ */

#define MAXPAT 6

struct sender_case {
    bool default_accept;
    const char *accept[MAXPAT];
    const char *reject[MAXPAT];
    const char *sender;
    bool want;
};

static size_t
count(const char *const *v)
{
    size_t n = 0;
    while (n < MAXPAT && v[n] != NULL)
        n++;
    return n;
}

static void
test_sender_table(void **state)
{
    (void)state;
    static const struct sender_case cases[] = {
        /* No pattern matches: the default decides. */
        {true, {NULL}, {NULL}, "a@example.org", true},
        {false, {NULL}, {NULL}, "a@example.org", false},
        {false, {"*@example.org"}, {NULL}, "a@example.net", false},
        {true, {NULL}, {"*@example.org"}, "a@example.net", true},
        /* *@domain matches the domain only, not its subdomains. */
        {false, {"*@example.org"}, {NULL}, "a@example.org", true},
        {false, {"*@example.org"}, {NULL}, "a@mail.example.org", false},
        /* *@*.domain matches the domain and its subdomains. */
        {false, {"*@*.example.org"}, {NULL}, "a@example.org", true},
        {false, {"*@*.example.org"}, {NULL}, "a@deep.mail.example.org", true},
        {false, {"*@*.example.org"}, {NULL}, "a@badexample.org", false},
        /* Exact beats *@domain, which beats *@*.domain. */
        {true, {"boss@example.org"}, {"*@example.org"}, "boss@example.org", true},
        {true, {"boss@example.org"}, {"*@example.org"}, "intern@example.org", false},
        {true, {"*@*.example.org"}, {"intern@example.org"}, "intern@example.org", false},
        {true, {"*@example.org"}, {"*@*.example.org"}, "a@example.org", true},
        {false, {"*@example.org"}, {"*@*.example.org"}, "a@sub.example.org", false},
        /* Among *@*.domain the longest domain wins, whatever the list. */
        {true, {"*@*.eu.example.org"}, {"*@*.example.org"}, "a@x.eu.example.org", true},
        {true, {"*@*.example.org"}, {"*@*.eu.example.org"}, "a@x.eu.example.org", false},
        {true, {"*@*.example.org"}, {"*@*.eu.example.org"}, "a@us.example.org", true},
        {false, {"*@*.org", "*@*.eu.example.org"}, {"*@*.example.org"}, "a@eu.example.org", true},
        /* A tie goes to reject. */
        {true, {"a@example.org"}, {"a@example.org"}, "a@example.org", false},
        {true, {"*@example.org"}, {"*@example.org"}, "a@example.org", false},
        {true, {"*@*.example.org"}, {"*@*.example.org"}, "a@x.example.org", false},
        {true, {"<>"}, {"<>"}, "", false},
        /* Case is ignored in the local part and in the domain. */
        {false, {"boss@example.org"}, {NULL}, "BOSS@Example.ORG", true},
        {false, {"*@*.example.org"}, {NULL}, "x@MAIL.EXAMPLE.ORG", true},
        {true, {NULL}, {"*@example.org"}, "x@EXAMPLE.org.", false},
        /* The null sender matches only "<>". */
        {false, {"<>"}, {NULL}, "", true},
        {true, {NULL}, {"<>"}, "", false},
        {true, {NULL}, {"<>"}, "<>", false},
        {false, {"*@*.org", "*@example.org"}, {NULL}, "", false},
        {true, {NULL}, {"*@*.org"}, "", true},
        {false, {"<>"}, {NULL}, "a@example.org", false},
        /* Only the part after the last '@' is the domain. */
        {false, {"*@example.org"}, {NULL}, "\"a@evil.net\"@example.org", true},
        {false, {"*@evil.net"}, {NULL}, "\"a@evil.net\"@example.org", false},
        {false, {"\"a@b\"@example.org"}, {NULL}, "\"A@B\"@example.org", true},
        /* A sender without a domain matches no pattern. */
        {false, {"*@*.org"}, {NULL}, "postmaster", false},
        {true, {NULL}, {"*@*.org"}, "postmaster", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct sender_case *c = &cases[i];
        struct connector_senders s = {c->default_accept, (char **)c->accept, count(c->accept),
                                      (char **)c->reject, count(c->reject)};
        bool got = connector_sender_allowed(&s, c->sender);
        if (got != c->want)
            fail_msg("case %zu: sender \"%s\": got %d, want %d", i, c->sender, got, c->want);
    }
}

static void
test_sender_null_means_unknown(void **state)
{
    (void)state;
    struct connector_senders s = {false, NULL, 0, NULL, 0};
    assert_true(connector_sender_allowed(&s, NULL));
    assert_false(connector_sender_allowed(&s, "a@b.org"));
}

struct pattern_case {
    const char *pattern;
    int want;
};

static void
test_pattern_check(void **state)
{
    (void)state;
    static const struct pattern_case cases[] = {
        {"<>", 0},
        {"a@example.org", 0},
        {"first.last+tag@example.org", 0},
        {"\"a@b\"@example.org", 0},
        {"*@example.org", 0},
        {"*@*.example.org", 0},
        {"*@*.org", 0},
        {"*@Example.ORG", 0},
        {"", BH_EINVAL},
        {"*", BH_EINVAL},
        {"*@*", BH_EINVAL},
        {"*@*.*", BH_EINVAL},
        {"a*@example.org", BH_EINVAL},
        {"*a@example.org", BH_EINVAL},
        {"a@*.example.org", BH_EINVAL},
        {"@example.org", BH_EINVAL},
        {"a@", BH_EINVAL},
        {"a@b@example.org", BH_EINVAL},
        {"a b@example.org", BH_EINVAL},
        {"a@[1.2.3.4]", BH_EINVAL},
        {"a@1.2.3.4", BH_EINVAL},
        {"*@-bad.org", BH_EINVAL},
        {"*@exa_mple.org", BH_EINVAL},
        {"example.org", BH_EINVAL},
        {"<a@example.org>", BH_EINVAL},
        {"a\x01@example.org", BH_EINVAL},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.org", BH_EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (connector_sender_pattern_check(cases[i].pattern) != cases[i].want)
            fail_msg("pattern \"%s\": want %d", cases[i].pattern, cases[i].want);
    assert_int_equal(connector_sender_pattern_check(NULL), BH_EINVAL);
}

/* ---- priorities --------------------------------------------------------- */

struct prio_case {
    const char *name, *value;
    int rank;
    enum connector_priority want;
};

static void
test_priority_from_header(void **state)
{
    (void)state;
    static const struct prio_case cases[] = {
        {"Importance", "high", 3, CONNECTOR_PRIORITY_HIGH},
        {"importance", "Normal", 3, CONNECTOR_PRIORITY_NORMAL},
        {"IMPORTANCE", " LOW ", 3, CONNECTOR_PRIORITY_LOW},
        {"Importance", "high (boss)", 3, CONNECTOR_PRIORITY_HIGH},
        {"Importance", "urgent", 0, 0},
        {"Importance", "highest", 0, 0},
        {"Importance", "", 0, 0},
        {"Importance", "high low", 0, 0},
        {"X-Priority", "1", 2, CONNECTOR_PRIORITY_HIGH},
        {"x-priority", "1 (Highest)", 2, CONNECTOR_PRIORITY_HIGH},
        {"X-Priority", "2 (High)", 2, CONNECTOR_PRIORITY_HIGH},
        {"X-PRIORITY", "\t3", 2, CONNECTOR_PRIORITY_NORMAL},
        {"X-Priority", "3 (Normal)", 2, CONNECTOR_PRIORITY_NORMAL},
        {"X-Priority", "4 (Low)", 2, CONNECTOR_PRIORITY_LOW},
        {"X-Priority", "5 (Lowest)", 2, CONNECTOR_PRIORITY_LOW},
        {"X-Priority", "0", 0, 0},
        {"X-Priority", "6", 0, 0},
        {"X-Priority", "10", 0, 0},
        {"X-Priority", "1x", 0, 0},
        {"X-Priority", "high", 0, 0},
        {"Priority", "urgent", 1, CONNECTOR_PRIORITY_HIGH},
        {"priority", "Normal", 1, CONNECTOR_PRIORITY_NORMAL},
        {"Priority", "NON-URGENT", 1, CONNECTOR_PRIORITY_LOW},
        {"Priority", "high", 0, 0},
        {"Priority", "non", 0, 0},
        {"X-Importance", "high", 0, 0},
        {"Subject", "high", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct prio_case *c = &cases[i];
        enum connector_priority p = (enum connector_priority)99;
        int rank = connector_priority_from_header(c->name, c->value, &p);
        if (rank != c->rank)
            fail_msg("%s: \"%s\": rank %d, want %d", c->name, c->value, rank, c->rank);
        if (rank > 0 && p != c->want)
            fail_msg("%s: \"%s\": priority %d, want %d", c->name, c->value, p, c->want);
    }
    enum connector_priority p;
    assert_int_equal(connector_priority_from_header(NULL, "high", &p), 0);
    assert_int_equal(connector_priority_from_header("Importance", NULL, &p), 0);
}

/* The caller keeps the highest rank: Importance beats X-Priority beats
 * Priority, whatever the header order. */
static void
test_priority_precedence(void **state)
{
    (void)state;
    static const char *hdrs[][2] = {
        {"Priority", "urgent"}, {"X-Priority", "5"}, {"Importance", "normal"}, {"X-Priority", "1"}};
    int best = 0;
    enum connector_priority prio = CONNECTOR_PRIORITY_NORMAL;
    for (size_t i = 0; i < 4; i++) {
        enum connector_priority p;
        int rank = connector_priority_from_header(hdrs[i][0], hdrs[i][1], &p);
        if (rank > best) {
            best = rank;
            prio = p;
        }
    }
    assert_int_equal(best, 3);
    assert_int_equal(prio, CONNECTOR_PRIORITY_NORMAL);
}

static void
test_names(void **state)
{
    (void)state;
    enum connector_priority p;
    static const char *names[] = {"low", "normal", "high"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(connector_priority_name((enum connector_priority)i), names[i]);
        assert_int_equal(connector_priority_parse(names[i], &p), 0);
        assert_int_equal(p, i);
    }
    assert_int_equal(connector_priority_parse("HIGH", &p), 0);
    assert_int_equal(p, CONNECTOR_PRIORITY_HIGH);
    assert_int_equal(connector_priority_parse("urgent", &p), BH_EINVAL);
    assert_int_equal(connector_priority_parse("", &p), BH_EINVAL);
    assert_int_equal(connector_priority_parse(NULL, &p), BH_EINVAL);
    assert_string_equal(connector_priority_name((enum connector_priority)9), "unknown");
    assert_string_equal(connector_route_name(CONNECTOR_ROUTE_SMARTHOST), "smarthost");
    assert_string_equal(connector_route_name(CONNECTOR_ROUTE_DNS), "dns");
    assert_string_equal(connector_balance_name(CONNECTOR_BALANCE_ROUND_ROBIN), "round_robin");
    assert_string_equal(connector_balance_name(CONNECTOR_BALANCE_RANDOM), "random");
    assert_string_equal(connector_balance_name(CONNECTOR_BALANCE_FAILOVER), "failover");
    assert_string_equal(connector_tls_mode_name(CONNECTOR_TLS_NONE), "none");
    assert_string_equal(connector_tls_mode_name(CONNECTOR_TLS_OPPORTUNISTIC), "opportunistic");
    assert_string_equal(connector_tls_mode_name(CONNECTOR_TLS_REQUIRED), "required");
    assert_string_equal(connector_tls_mode_name(CONNECTOR_TLS_VERIFY), "verify");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sender_table),
        cmocka_unit_test(test_sender_null_means_unknown),
        cmocka_unit_test(test_pattern_check),
        cmocka_unit_test(test_priority_from_header),
        cmocka_unit_test(test_priority_precedence),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
