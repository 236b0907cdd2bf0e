/*
 * Unit tests for connectors/config_conn and config_sched: each connector's
 * keys, forms and cross-key rules, schedules, and a config with many
 * problems that must all be reported (SPEC §2, §9). Each bad config is
 * written inline next to the exact "LINE:COL: message" it must produce, so
 * a reader can count.
 */
#include "config_test.h"

static void
test_bridgehead_forms(void **state)
{
    (void)state;
    struct config *c = load_ok("connectors:\n"
                               "  - name: c\n"
                               "    address_spaces: [\"*\"]\n"
                               "    bridgeheads:\n"
                               "      - \"[::1]:2525\"\n"
                               "      - \"[2001:db8::1]\"\n"
                               "      - relay.example.org:587\n"
                               "      - 192.0.2.1\n"
                               "      - {host: \"::2\", port: 26, weight: 7}\n"
                               "      - {host: \"[::3]\"}\n");
    const struct connector *k = &c->connectors[0];
    assert_int_equal(k->nbridgeheads, 6);
    const char *hosts[] = {"::1", "2001:db8::1", "relay.example.org", "192.0.2.1", "::2", "::3"};
    const unsigned ports[] = {2525, 25, 587, 25, 26, 25};
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(k->bridgeheads[i].host, hosts[i]);
        assert_int_equal(k->bridgeheads[i].port, ports[i]);
    }
    assert_int_equal(k->bridgeheads[4].weight, 7);
    config_unref(c);
}

/* ---- connectors */

static void
test_connectors_required(void **state)
{
    (void)state;
    expect_err("server: {}\n", /* the root's first key at 1:1 */
               "1:1: missing key \"connectors\" (at least one connector is required)");
    expect_err("connectors: []\n", "1:13: connectors: at least one connector is required");
    expect_err("connectors:\n  - address_spaces: [x.org]\n", "2:5: missing key \"name\"");
    expect_err("connectors:\n  - name: c\n",
               "2:5: missing key \"address_spaces\" (a connector needs at least one)");
    /* An empty mapping: both at the mapping itself. */
    const char *want[] = {
        "2:5: missing key \"name\"",
        "2:5: missing key \"address_spaces\" (a connector needs at least one)",
    };
    expect_errs("connectors:\n  - {}\n", want, 2);
    expect_err("connectors: {a: b}\n", "1:13: connectors: expected a list, got a mapping");
    expect_err("connectors:\n  - x\n", "2:5: connector: expected a mapping, got \"x\"");
}

static void
test_connector_names(void **state)
{
    (void)state;
    expect_err("connectors:\n"
               "  - name: a\n" /* the first "a" at 2:11 */
               "    address_spaces: [x.org]\n"
               "  - name: a\n" /* the second at 4:11 */
               "    address_spaces: [y.org]\n",
               "4:11: name: duplicate connector name \"a\" (first at 2:11)");
    expect_err("connectors:\n  - name: \"a b\"\n    address_spaces: [x.org]\n",
               "2:11: name: \"a b\" must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
    char *yaml = xasprintf("connectors:\n  - name: %065d\n    address_spaces: [x.org]\n", 0);
    char *want =
        xasprintf("2:11: name: \"%065d\" must be 1 to 64 characters of A-Z a-z 0-9 _ . -", 0);
    expect_err(yaml, want);
    free(yaml);
    free(want);
    struct config *c = load_ok("connectors:\n  - name: A-z_0.9\n    address_spaces: [x.org]\n");
    config_unref(c);
}

static void
test_address_spaces(void **state)
{
    (void)state;
    const char *want[] = {
        "4:9: address space \"*.*\": the part after \"*.\" is not a valid domain",
        "5:9: address space \"a*b.com\": a wildcard is allowed only as \"*\" or a leading \"*.\"",
        "6:9: address space \"\": empty address space",
        "7:9: address space \"*com\": a wildcard is allowed only as \"*\" or a leading \"*.\"",
        "8:9: address space \"10.0.0.1\": not a valid domain (LDH labels, no IP address)",
        "9:10: missing key \"space\"",
        "10:30: cost: expected an integer, got \"-1\"",
        "11:9: address_spaces: expected a domain pattern or {space, cost}, got null",
    };
    expect_errs("connectors:\n"
                "  - name: a\n"
                "    address_spaces:\n"
                "      - \"*.*\"\n"                  /* 4:9 */
                "      - a*b.com\n"                  /* 5:9 */
                "      - \"\"\n"                     /* 6:9 */
                "      - \"*com\"\n"                 /* 7:9 */
                "      - 10.0.0.1\n"                 /* 8:9 */
                "      - {cost: 2}\n"                /* first key at 9:10 */
                "      - {space: x.org, cost: -1}\n" /* -1 at 10:30 */
                "      - ~\n",                       /* 11:9 */
                want, 8);
    /* The same space twice after normalising, whatever the costs. */
    expect_err("connectors:\n"
               "  - name: a\n"
               "    address_spaces:\n"
               "      - Contoso.com\n"                         /* 4:9 */
               "      - {space: \"contoso.com.\", cost: 5}\n", /* the space at 5:17 */
               "5:17: address_spaces: duplicate address space \"contoso.com\" (first at 4:9)");
    expect_err("connectors:\n  - name: a\n    address_spaces: []\n",
               "3:21: address_spaces: must not be empty");
    struct config *c = load_ok("connectors:\n  - name: a\n    address_spaces: [\"*.TLD.\", "
                               "Mail.Example.COM]\n");
    assert_string_equal(c->connectors[0].aspaces[0].space, "*.tld");
    assert_string_equal(c->connectors[0].aspaces[1].space, "mail.example.com");
    config_unref(c);
}

static void
test_route_rules(void **state)
{
    (void)state;
    expect_err(CONN_A "    route: smarthost\n", /* the connector's first key at 2:5 */
               "2:5: missing key \"bridgeheads\" (route smarthost needs bridgeheads)");
    /* route dns with bridgeheads: at the later key. */
    expect_err("connectors:\n"
               "  - name: a\n"
               "    route: dns\n"
               "    address_spaces: [x.org]\n"
               "    bridgeheads: [h.org]\n", /* 5:5 */
               "5:5: route dns and bridgeheads do not go together (bridgeheads need route "
               "smarthost)");
    expect_err("connectors:\n"
               "  - name: a\n"
               "    bridgeheads: [h.org]\n"
               "    route: dns\n" /* 4:5 */
               "    address_spaces: [x.org]\n",
               "4:5: route dns and bridgeheads do not go together (bridgeheads need route "
               "smarthost)");
    /* port on a smarthost connector, implied by bridgeheads or explicit. */
    expect_err(CONN_A "    bridgeheads: [h.org]\n"
                      "    port: 2525\n", /* 5:5 */
               "5:5: port is only for route dns (each bridgehead has its own port)");
    expect_err("connectors:\n"
               "  - name: a\n"
               "    port: 2525\n"
               "    address_spaces: [x.org]\n"
               "    bridgeheads: [h.org]\n"
               "    route: smarthost\n", /* 6:5 */
               "6:5: port is only for route dns (each bridgehead has its own port)");
    expect_err(CONN_A "    port: 0\n", "4:11: port: must be between 1 and 65535");
    expect_err(CONN_A "    port: \"25\"\n",
               "4:11: port: expected an integer, got a quoted string \"25\"");
    expect_err(CONN_A "    route: mx\n",
               "4:12: route: expected one of smarthost or dns, got \"mx\"");
}

static void
test_tls_rules(void **state)
{
    (void)state;
    /* "    tls: {" is 10 characters: mode at column 11. */
    expect_err(CONN_A "    ehlo: false\n"
                      "    tls: {mode: verify, names: [x.org]}\n", /* mode at 5:11 */
               "5:11: tls.mode verify needs ehlo true (STARTTLS is an ESMTP extension)");
    expect_err(CONN_A "    tls: {mode: required}\n"
                      "    ehlo: false\n", /* 5:5 */
               "5:5: tls.mode required needs ehlo true (STARTTLS is an ESMTP extension)");
    expect_err(CONN_A "    auth: {username: u, password_file: secrets/contoso.pw}\n", /* 4:5 */
               "4:5: auth needs tls.mode required or verify (credentials never go in clear)");
    expect_err(CONN_A "    auth: {username: u, password_file: secrets/contoso.pw}\n"
                      "    tls: {mode: opportunistic}\n", /* mode at 5:11 */
               "5:11: auth needs tls.mode required or verify (credentials never go in clear)");
    expect_err(CONN_A "    tls:\n"
                      "      mode: verify\n", /* the first key of tls at 5:7 */
               "5:7: missing key \"names\" (tls.mode verify on a dns connector needs tls.names)");
    expect_err(CONN_A "    bridgeheads: [relay.x.org, \"10.1.1.5:25\"]\n"
                      "    tls: {mode: verify}\n", /* 5:11 */
               "5:11: missing key \"names\" (tls.mode verify toward bridgehead 10.1.1.5, an "
               "IP address, needs tls.names)");
    struct config *c = load_ok(CONN_A "    bridgeheads: [relay.x.org]\n"
                                      "    tls: {mode: verify, ca_file: certs/partner-ca.pem}\n");
    assert_int_equal(c->connectors[0].tls.mode, CONNECTOR_TLS_VERIFY);
    char *ca = xasprintf("%s/certs/partner-ca.pem", dir);
    assert_string_equal(c->connectors[0].tls.ca_file, ca);
    free(ca);
    config_unref(c);
    /* "    tls: {names: [" is 18 characters. */
    const char *want[] = {
        "4:19: names: \"*\" is not a host name or \"*.domain\"",
        "4:24: names: \"a_b.org\" is not a host name or \"*.domain\"",
    };
    expect_errs(CONN_A "    tls: {names: [\"*\", a_b.org]}\n", want, 2);
    expect_err(CONN_A "    tls: {names: []}\n", "4:18: names: must not be empty");
    expect_err(CONN_A "    tls: {mode: always}\n",
               "4:17: mode: expected one of none, opportunistic, required or verify, got "
               "\"always\"");
    /* "    tls: {ca_file: " is 19 characters. */
    char *w = xasprintf("4:20: unreadable CA file %s/certdir: not a regular file", dir);
    expect_err(CONN_A "    tls: {ca_file: certdir}\n", w);
    free(w);
    w = xasprintf("4:20: CA file %s/notpem.txt: no PEM certificate in it", dir);
    expect_err(CONN_A "    tls: {ca_file: notpem.txt}\n", w);
    free(w);
}

static void
test_auth(void **state)
{
    (void)state;
    /* "    auth: {username: u, password_file: " is 39 characters. */
    char *w = xasprintf("4:40: password_file: the first line of %s/secrets/empty.pw is empty", dir);
    expect_err(CONN_A "    auth: {username: u, password_file: secrets/empty.pw}\n"
                      "    tls: {mode: required}\n",
               w);
    free(w);
    w = xasprintf("4:40: unreadable password file %s/secrets/none.pw: No such file or directory",
                  dir);
    expect_err(CONN_A "    auth: {username: u, password_file: secrets/none.pw}\n"
                      "    tls: {mode: required}\n",
               w);
    free(w);
    w = xasprintf("4:40: unreadable password file %s/certdir: a directory, not a regular file",
                  dir);
    expect_err(CONN_A "    auth: {username: u, password_file: certdir}\n"
                      "    tls: {mode: required}\n",
               w);
    free(w);
    expect_err(CONN_A "    auth: {username: u}\n" /* username at 4:12 */
                      "    tls: {mode: required}\n",
               "4:12: missing key \"password_file\" (auth needs a username and a "
               "password_file)");
}

/* A connector with one schedule window written at 6:11. */
#define WINDOW(w) CONN_A "    schedule:\n      windows:\n        - " w "\n"

static void
test_schedule_rules(void **state)
{
    (void)state;
    /* In "        - {days: mon, from: "01:00", to: "01:00"}" the days value is
     * at column 18, the from value at 29, the to key at 38, its value 42. */
    expect_err(WINDOW("{days: mon, from: \"01:00\", to: \"01:00\"}"),
               "6:38: from and to are the same time: the window would be empty");
    expect_err(WINDOW("{days: mon, from: \"25:00\", to: \"02:00\"}"),
               "6:29: from: \"25:00\" is not a time (HH:MM, 00:00 to 23:59; only to may be 24:00)");
    expect_err(WINDOW("{days: mon, from: \"10:60\", to: \"02:00\"}"),
               "6:29: from: \"10:60\" is not a time (HH:MM, 00:00 to 23:59; only to may be 24:00)");
    expect_err(WINDOW("{days: mon, from: \"24:00\", to: \"02:00\"}"),
               "6:29: from: \"24:00\" is not a time (HH:MM, 00:00 to 23:59; only to may be 24:00)");
    expect_err(WINDOW("{days: mon, from: \"01:00\", to: \"24:01\"}"),
               "6:42: to: \"24:01\" is not a time (HH:MM, 00:00 to 24:00)");
    expect_err(WINDOW("{days: funday, from: \"01:00\", to: \"02:00\"}"),
               "6:18: days: \"funday\" is not a day list (mon, mon-fri, fri-mon, \"sat,sun\")");
    expect_err(WINDOW("{days: [mon, xyz], from: \"01:00\", to: \"02:00\"}"),
               "6:24: days: \"xyz\" is not a day list (mon, mon-fri, fri-mon, \"sat,sun\")");
    expect_err(WINDOW("{days: Mon, from: \"01:00\", to: \"02:00\"}"),
               "6:18: days: \"Mon\" is not a day list (mon, mon-fri, fri-mon, \"sat,sun\")");
    expect_err(WINDOW("{days: mon, from: \"01:00\"}"), "6:12: missing key \"to\"");
    struct config *c = load_ok(WINDOW("{days: \"sat,sun\", from: \"00:00\", to: \"24:00\"}"));
    assert_non_null(c->connectors[0].schedule);
    assert_false(schedule_has_oversized(c->connectors[0].schedule));
    config_unref(c);
    expect_err(CONN_A "    schedule:\n"
                      "      timezone: UTC\n", /* the first key of schedule at 5:7 */
               "5:7: missing key \"windows\"");
    expect_err(CONN_A "    schedule:\n"
                      "      windows: [{days: mon, from: \"01:00\", to: \"02:00\"}]\n"
                      "      oversized:\n"
                      "        windows: [{days: sun, from: \"01:00\", to: \"05:00\"}]\n", /* 7:9 */
               "7:9: missing key \"threshold\" (oversized windows need a threshold)");
}

static void
test_timezones(void **state)
{
    (void)state;
    /* "      timezone: " is 16 characters. */
    const char *bad[] = {"../etc/passwd", "/UTC", "Europe//Paris", "Europe/", "a b"};
    for (size_t i = 0; i < 5; i++) {
        char *yaml = xasprintf(CONN_A "    schedule:\n"
                                      "      timezone: \"%s\"\n"
                                      "      windows: [{days: mon, from: \"01:00\", to: "
                                      "\"02:00\"}]\n",
                               bad[i]);
        char *want = xasprintf("5:17: timezone: \"%s\" is not a timezone name (like "
                               "Europe/Paris)",
                               bad[i]);
        expect_err(yaml, want);
        free(yaml);
        free(want);
    }
    struct config_diags d = {0};
    char *path = write_cfg("tz.yaml", CONN_A "    schedule:\n"
                                             "      timezone: Mars/Olympus_Mons\n"
                                             "      windows: [{days: mon, from: \"01:00\", to: "
                                             "\"02:00\"}]\n");
    assert_null(config_load(path, &d));
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].line, 5);
    assert_int_equal(d.v[0].col, 17);
    const char *prefix = "timezone: unknown timezone \"Mars/Olympus_Mons\": ";
    assert_memory_equal(d.v[0].msg, prefix, strlen(prefix));
    config_diags_fini(&d);
    free(path);
}

static void
test_connector_values(void **state)
{
    (void)state;
    /* "    bridgeheads: [" is 18 characters: the first item at column 19. */
    expect_err(CONN_A "    bridgeheads: [{host: h.org, weight: 0}]\n",
               "4:41: weight: must be between 1 and 1000000");
    expect_err(CONN_A "    bridgeheads: [{host: h.org, port: 65536}]\n",
               "4:39: port: must be between 1 and 65535");
    expect_err(CONN_A "    bridgeheads: [\"h.org:0\"]\n",
               "4:19: bridgeheads: \"h.org:0\": the port must be 1 to 65535");
    expect_err(CONN_A "    bridgeheads: [\"::1\"]\n",
               "4:19: bridgeheads: \"::1\": an IPv6 address goes in brackets: "
               "\"[2001:db8::1]:25\"");
    expect_err(CONN_A "    bridgeheads: [\"[relay.org]:25\"]\n",
               "4:19: bridgeheads: \"[relay.org]:25\": only an IPv6 address goes in brackets");
    expect_err(CONN_A "    bridgeheads: [a_b.org]\n",
               "4:19: bridgeheads: \"a_b.org\": not a host name or IP address");
    expect_err(CONN_A "    bridgeheads: [{host: \"a b\"}]\n",
               "4:26: host: \"a b\" is not a host name or IP address");
    expect_err(CONN_A "    bridgeheads: [{port: 26}]\n", "4:20: missing key \"host\"");
    expect_err(CONN_A "    bridgeheads: [h.org, \"H.org:25\"]\n",
               "4:26: bridgeheads: duplicate bridgehead \"h.org:25\" (first at 4:19)");
    expect_err(CONN_A "    bridgeheads: []\n", "4:18: bridgeheads: must not be empty");
    expect_err(CONN_A "    senders: {accept: [\"a@@b\"]}\n",
               "4:24: accept: \"a@@b\" is not a sender pattern (an address, \"*@domain\", "
               "\"*@*.domain\" or \"<>\")");
    expect_err(CONN_A "    senders: {default: maybe}\n",
               "4:24: default: expected one of accept or reject, got \"maybe\"");
    expect_err(CONN_A "    content: {priorities: [low, urgent]}\n",
               "4:33: priorities: expected one of low, normal or high, got \"urgent\"");
    expect_err(CONN_A "    content: {priorities: []}\n", "4:27: priorities: must not be empty");
    expect_err(CONN_A "    source_nodes: [\"a b\"]\n",
               "4:20: source_nodes: \"a b\" is not a node name (1 to 64 of A-Z a-z 0-9 _ . -)");
    expect_err(CONN_A "    health: {retry_initial: 5m, retry_max: 1m}\n",
               "4:33: retry_max must not be less than retry_initial");
    expect_err(CONN_A "    timeouts: {connect: 0}\n", "4:25: connect: must not be 0");
    expect_err(CONN_A "    balance: weighted\n",
               "4:14: balance: expected one of round_robin, random or failover, got \"weighted\"");
    expect_err(CONN_A "    helo_name: \"bad name\"\n", "4:16: helo_name: not a valid host name");
    expect_err(CONN_A "    max_connections: 0\n",
               "4:22: max_connections: must be between 1 and 4294967295");
    expect_err(CONN_A "    max_message_size: 1TB\n",
               "4:23: max_message_size: expected a size (512, 10KiB, 25MiB, 1GiB), got \"1TB\"");
    /* 0 would silently mean "no limit": omit the key for that. */
    expect_err(CONN_A "    max_message_size: 0\n", "4:23: max_message_size: must not be 0");
    expect_err(CONN_A "    schedule:\n"
                      "      windows: [ {days: sun, from: \"01:00\", to: \"05:00\"} ]\n"
                      "      oversized: {threshold: 0, windows: [ {days: sun, from: \"01:00\", "
                      "to: \"02:00\"} ]}\n",
               "6:30: threshold: must not be 0");
}

/* ---- many problems at once */

static void
test_all_errors_reported(void **state)
{
    (void)state;
    const char *want[] = {
        "2:19: max_recipients: expected an integer, got a quoted string \"10\"",
        "3:3: unknown key \"bogus\" in server",
        "5:13: lifetime: expected a duration (30s, 5m, 4h, 5d), got \"5w\"",
        "8:29: address_spaces: duplicate address space \"x.org\" (first at 8:22)",
        "9:11: ehlo: expected true or false, got \"yes\"",
        "10:5: missing key \"bridgeheads\" (route smarthost needs bridgeheads)",
        "10:11: name: duplicate connector name \"a\" (first at 7:11)",
    };
    expect_errs("server:\n"
                "  max_recipients: \"10\"\n" /* 2:19 */
                "  bogus: 1\n"               /* 3:3 */
                "queue:\n"
                "  lifetime: 5w\n" /* 5:13 */
                "connectors:\n"
                "  - name: a\n"                         /* 7:11 */
                "    address_spaces: [x.org, X.org.]\n" /* 8:22 and 8:29 */
                "    ehlo: yes\n"                       /* 9:11 */
                "  - name: a\n"                         /* 10:5 and 10:11 */
                "    address_spaces: [\"*\"]\n"
                "    route: smarthost\n",
                want, 7);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bridgehead_forms),
        cmocka_unit_test(test_connectors_required),
        cmocka_unit_test(test_connector_names),
        cmocka_unit_test(test_address_spaces),
        cmocka_unit_test(test_route_rules),
        cmocka_unit_test(test_tls_rules),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_schedule_rules),
        cmocka_unit_test(test_timezones),
        cmocka_unit_test(test_connector_values),
        cmocka_unit_test(test_all_errors_reported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
