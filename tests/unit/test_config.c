/*
 * Unit tests for connectors/config (config.c, config_val.c, with ytree.c
 * underneath): defaults, the full SPEC §2 and §8 examples, value forms,
 * relative paths, the file checks, refused YAML features, the type rules of
 * SPEC §9 "Config", CIDRs, relaying and accepted domains. The server and
 * connector rules are in test_config_server.c and test_config_conn.c. Each
 * bad config is written inline next to the exact "LINE:COL: message" it
 * must produce, so a reader can count.
 */
#include "config_test.h"

/* ---- defaults and full examples */

static void
test_defaults(void **state)
{
    (void)state;
    struct config *c = load_ok(CONN);
    char host[256] = "";
    gethostname(host, sizeof host);
    assert_string_equal(c->hostname, host);
    assert_string_equal(c->node, host);
    assert_int_equal(c->nlistens, 1);
    assert_string_equal(c->listens[0].address, "127.0.0.1:2525");
    const struct sockaddr_in *in = (const struct sockaddr_in *)&c->listens[0].addr;
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohs(in->sin_port), 2525);
    assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000001);
    assert_int_equal(c->listens[0].tls, CONFIG_LISTEN_NONE);
    assert_false(c->listens[0].odmr);
    assert_false(c->has_tls);
    assert_null(c->tls_certificate);
    assert_int_equal(c->tls_min_version, CONNECTOR_TLS1_2);
    assert_int_equal(c->naccepted_domains, 0);
    assert_int_equal(c->nrelay_networks, 2);
    assert_int_equal(c->relay_networks[0].family, AF_INET);
    assert_int_equal(c->relay_networks[0].prefix, 8);
    assert_int_equal(c->relay_networks[1].family, AF_INET6);
    assert_int_equal(c->relay_networks[1].prefix, 128);
    assert_null(c->users_file);
    assert_int_equal(c->nusers, 0);
    assert_int_equal(c->max_message_size, 25 * 1024 * 1024);
    assert_int_equal(c->max_recipients, 1000);
    assert_int_equal(c->max_connections, 10000);
    assert_int_equal(c->max_connections_per_ip, 100);
    assert_int_equal(c->timeout_command, 300);
    assert_int_equal(c->timeout_data, 600);
    assert_int_equal(c->greet_delay, 0);
    assert_null(c->postmaster);
    assert_int_equal(c->backend, CONFIG_BACKEND_SQLITE);
    char *qdb = xasprintf("%s/var/queue.db", dir);
    assert_string_equal(c->storage_path, qdb);
    free(qdb);
    assert_null(c->storage_dsn);
    assert_int_equal(c->retry_initial, 60);
    assert_int_equal(c->retry_max, 3600);
    assert_int_equal(c->lifetime, 5 * 86400);
    assert_int_equal(c->delay_warning, 4 * 3600);
    assert_int_equal(c->ndns_servers, 0);
    assert_null(c->metrics_listen);
    assert_string_equal(c->dir, dir);
    config_unref(c);
}

static void
test_defaults_connector(void **state)
{
    (void)state;
    struct config *c = load_ok(CONN);
    char host[256] = "";
    gethostname(host, sizeof host);
    assert_int_equal(c->nconnectors, 1);
    const struct connector *k = &c->connectors[0];
    assert_string_equal(k->name, "c");
    assert_int_equal(k->line, 2);
    assert_int_equal(k->col, 5);
    assert_int_equal(k->naspaces, 1);
    assert_string_equal(k->aspaces[0].space, "*");
    assert_int_equal(k->aspaces[0].cost, 1);
    assert_int_equal(k->route, CONNECTOR_ROUTE_DNS); /* no bridgeheads */
    assert_int_equal(k->port, 25);
    assert_int_equal(k->nbridgeheads, 0);
    assert_int_equal(k->balance, CONNECTOR_BALANCE_ROUND_ROBIN);
    assert_int_equal(k->max_connections, 10);
    assert_int_equal(k->max_messages_per_connection, 100);
    assert_int_equal(k->max_message_size, 0);
    assert_true(k->ehlo);
    assert_string_equal(k->helo_name, host);
    assert_null(k->auth_username);
    assert_null(k->auth_password);
    assert_int_equal(k->tls.mode, CONNECTOR_TLS_OPPORTUNISTIC);
    assert_null(k->tls.ca_file);
    assert_int_equal(k->tls.nnames, 0);
    assert_int_equal(k->tls.min_version, CONNECTOR_TLS1_2);
    assert_null(k->schedule);
    assert_int_equal(k->priorities, CONNECTOR_PRIORITY_ALL);
    assert_true(k->system_messages);
    assert_true(k->non_system_messages);
    assert_true(k->senders.default_accept);
    assert_int_equal(k->senders.naccept, 0);
    assert_int_equal(k->senders.nreject, 0);
    assert_false(k->triggered);
    assert_int_equal(k->timeouts.connect, 30);
    assert_int_equal(k->timeouts.greeting, 300);
    assert_int_equal(k->timeouts.command, 300);
    assert_int_equal(k->timeouts.data_block, 180);
    assert_int_equal(k->timeouts.data_end, 600);
    assert_int_equal(k->health_retry_initial, 30);
    assert_int_equal(k->health_retry_max, 600);
    assert_int_equal(k->nsource_nodes, 0);
    assert_ptr_equal(config_connector(c, "c"), k);
    assert_null(config_connector(c, "d"));

    /* Reference counting: two references, two unrefs. */
    assert_ptr_equal(config_ref(c), c);
    config_unref(c);
    config_unref(c);
    config_unref(NULL);
}

static void
test_defaults_with_tls(void **state)
{
    (void)state;
    /* server.tls set: listeners default to starttls, the route to
     * smarthost when bridgeheads are given. */
    struct config *c = load_ok("server:\n" TLS "  listen: [{address: \"[::]:25\"}]\n"
                               "connectors:\n"
                               "  - name: c\n"
                               "    address_spaces: [\"*\"]\n"
                               "    bridgeheads: [relay.example.org]\n");
    assert_true(c->has_tls);
    assert_int_equal(c->listens[0].tls, CONFIG_LISTEN_STARTTLS);
    assert_int_equal(c->listens[0].addr.ss_family, AF_INET6);
    assert_int_equal(c->connectors[0].route, CONNECTOR_ROUTE_SMARTHOST);
    assert_string_equal(c->connectors[0].bridgeheads[0].host, "relay.example.org");
    assert_int_equal(c->connectors[0].bridgeheads[0].port, 25);
    assert_int_equal(c->connectors[0].bridgeheads[0].weight, 1);
    config_unref(c);
}

static char *
read_fixture(const char *name)
{
    char *path = xasprintf("tests/fixtures/config/%s", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (run the test from the top of the tree)", path);
    char *buf = xmalloc(65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    free(path);
    return buf;
}

static void
test_spec_example(void **state)
{
    (void)state;
    char *yaml = read_fixture("spec2.yaml");
    struct config *c = load_ok(yaml);
    free(yaml);
    assert_string_equal(c->hostname, "relay.example.org");
    assert_string_equal(c->node, "relay.example.org");
    assert_int_equal(c->nlistens, 1);
    assert_string_equal(c->listens[0].address, "0.0.0.0:25");
    assert_int_equal(c->listens[0].tls, CONFIG_LISTEN_STARTTLS);
    assert_false(c->listens[0].odmr);
    assert_true(c->has_tls);
    char *cert = xasprintf("%s/certs/relay.pem", dir);
    assert_string_equal(c->tls_certificate, cert);
    free(cert);
    assert_int_equal(c->tls_min_version, CONNECTOR_TLS1_2);
    assert_int_equal(c->naccepted_domains, 2);
    assert_string_equal(c->accepted_domains[0], "example.org");
    assert_string_equal(c->accepted_domains[1], "*.example.org");
    assert_int_equal(c->nrelay_networks, 2);
    assert_int_equal(c->nusers, 2);
    assert_string_equal(c->users[0].name, "alice");
    assert_string_equal(c->users[0].hash, "$y$j9T$salt$hash");
    assert_int_equal(c->users[0].ndomains, 2);
    assert_string_equal(c->users[0].domains[0], "example.org");
    assert_string_equal(c->users[0].domains[1], "example.net");
    assert_string_equal(c->users[1].name, "bob");
    assert_int_equal(c->users[1].ndomains, 0);
    assert_int_equal(c->max_message_size, 25 * 1024 * 1024);
    assert_int_equal(c->timeout_command, 300);
    assert_int_equal(c->timeout_data, 600);
    assert_string_equal(c->postmaster, "postmaster@example.org");
    assert_int_equal(c->lifetime, 5 * 86400);
    assert_int_equal(c->ndns_servers, 1);
    assert_string_equal(c->dns_servers[0], "127.0.0.1:5353");
    assert_string_equal(c->metrics_listen, "127.0.0.1:9025");

    const struct connector *k = config_connector(c, "partner-contoso");
    assert_non_null(k);
    assert_int_equal(k->naspaces, 2);
    assert_string_equal(k->aspaces[0].space, "contoso.com");
    assert_int_equal(k->aspaces[0].cost, 1);
    assert_string_equal(k->aspaces[1].space, "*.contoso.com");
    assert_int_equal(k->aspaces[1].cost, 5);
    assert_int_equal(k->route, CONNECTOR_ROUTE_SMARTHOST);
    assert_int_equal(k->nbridgeheads, 2);
    assert_string_equal(k->bridgeheads[0].host, "10.1.1.5");
    assert_int_equal(k->bridgeheads[0].port, 25);
    assert_int_equal(k->bridgeheads[0].weight, 2);
    assert_string_equal(k->bridgeheads[1].host, "relay2.contoso.com");
    assert_int_equal(k->bridgeheads[1].port, 587);
    assert_int_equal(k->bridgeheads[1].weight, 1);
    assert_int_equal(k->max_message_size, 10 * 1024 * 1024);
    assert_string_equal(k->helo_name, "relay.example.org");
    assert_string_equal(k->auth_username, "relay");
    assert_string_equal(k->auth_password, "s3cret pw");
    assert_int_equal(k->tls.mode, CONNECTOR_TLS_VERIFY);
    assert_int_equal(k->tls.nnames, 2);
    assert_string_equal(k->tls.names[1], "*.contoso.com");
    assert_non_null(k->schedule);
    assert_string_equal(schedule_timezone(k->schedule), "UTC");
    assert_true(schedule_has_oversized(k->schedule));
    assert_int_equal(schedule_threshold(k->schedule), 2 * 1024 * 1024);
    /* Monday 2026-11-30 03:00 UTC is closed (SPEC: Monday 00:00-06:00 is
     * closed); 23:00 that day is open. */
    assert_false(schedule_is_open(k->schedule, 1796007600, 100));
    assert_true(schedule_is_open(k->schedule, 1796079600, 100));
    assert_int_equal(k->priorities, CONNECTOR_PRIORITY_ALL);
    assert_true(k->senders.default_accept);
    assert_int_equal(k->senders.naccept, 1);
    assert_string_equal(k->senders.accept[0], "*@example.org");
    assert_string_equal(k->senders.reject[0], "intern@example.org");
    assert_int_equal(k->timeouts.data_block, 180);
    assert_int_equal(k->health_retry_max, 600);
    config_unref(c);
}

static void
test_scale_out_keys(void **state)
{
    (void)state;
    /* SPEC §8. */
    struct config *c = load_ok("server:\n"
                               "  node: relay-a\n"
                               "storage:\n"
                               "  backend: postgres\n"
                               "  dsn: \"host=127.0.0.1 port=5432 dbname=bridgehead\"\n"
                               "connectors:\n"
                               "  - name: partner-contoso\n"
                               "    address_spaces: [contoso.com]\n"
                               "    source_nodes: [relay-a, relay-b]\n");
    assert_string_equal(c->node, "relay-a");
    assert_int_equal(c->backend, CONFIG_BACKEND_POSTGRES);
    assert_string_equal(c->storage_dsn, "host=127.0.0.1 port=5432 dbname=bridgehead");
    assert_int_equal(c->connectors[0].nsource_nodes, 2);
    assert_string_equal(c->connectors[0].source_nodes[1], "relay-b");
    config_unref(c);
}

static void
test_values(void **state)
{
    (void)state;
    struct config *c = load_ok("server:\n" TLS "  listen:\n"
                               "    - {address: \"127.0.0.1:2526\", tls: implicit}\n"
                               "    - {address: \"[::1]:2525\", tls: none}\n"
                               "  max_message_size: 10KB\n"
                               "  greet_delay: 2\n"
                               "  relay_networks: [10.0.0.0/8, \"2001:db8::/32\", 192.0.2.7]\n"
                               "  accepted_domains: [Example.ORG.]\n"
                               "queue: {retry_initial: 30s, retry_max: 30s, delay_warning: 0}\n"
                               "connectors:\n"
                               "  - name: c\n"
                               "    address_spaces: [{space: \"*\", cost: 0}]\n"
                               "    port: 2525\n"
                               "    balance: failover\n"
                               "    ehlo: false\n"
                               "    tls: {mode: none, min_version: 1.3}\n"
                               "    content: {priorities: [high, low], system_messages: false}\n"
                               "    senders: {default: reject, accept: [\"*@*.Example.ORG\", "
                               "\"<>\"]}\n"
                               "    triggered: true\n"
                               "    schedule:\n"
                               "      timezone: Europe/Paris\n"
                               "      windows: [{days: [mon, \"wed-fri\"], from: \"22:00\", "
                               "to: \"00:00\"}]\n");
    assert_int_equal(c->listens[0].tls, CONFIG_LISTEN_IMPLICIT);
    assert_int_equal(c->listens[1].tls, CONFIG_LISTEN_NONE);
    assert_int_equal(c->max_message_size, 10240);
    assert_int_equal(c->greet_delay, 2);
    assert_int_equal(c->nrelay_networks, 3);
    assert_int_equal(c->relay_networks[2].prefix, 32);
    assert_string_equal(c->accepted_domains[0], "example.org");
    assert_int_equal(c->delay_warning, 0);
    const struct connector *k = &c->connectors[0];
    assert_int_equal(k->aspaces[0].cost, 0);
    assert_int_equal(k->route, CONNECTOR_ROUTE_DNS);
    assert_int_equal(k->port, 2525);
    assert_int_equal(k->balance, CONNECTOR_BALANCE_FAILOVER);
    assert_false(k->ehlo);
    assert_int_equal(k->tls.mode, CONNECTOR_TLS_NONE);
    assert_int_equal(k->tls.min_version, CONNECTOR_TLS1_3);
    assert_int_equal(k->priorities,
                     (1u << CONNECTOR_PRIORITY_HIGH) | (1u << CONNECTOR_PRIORITY_LOW));
    assert_false(k->system_messages);
    assert_true(k->non_system_messages);
    assert_false(k->senders.default_accept);
    assert_string_equal(k->senders.accept[0], "*@*.example.org");
    assert_string_equal(k->senders.accept[1], "<>");
    assert_true(k->triggered);
    assert_string_equal(schedule_timezone(k->schedule), "Europe/Paris");
    config_unref(c);
}

static void
test_relative_paths(void **state)
{
    (void)state;
    /* The config lives in DIR/sub; its paths resolve against DIR/sub, and
     * a relative config path is made absolute with the working folder. */
    char *path = xasprintf("%s/sub/c.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("server:\n"
          "  tls: {certificate: ../certs/relay.pem, key: ./../certs//relay.key}\n"
          "storage: {path: q/./queue.db}\n" CONN,
          f);
    fclose(f);
    char cwd[4096], *old = getcwd(cwd, sizeof cwd) ? xstrdup(cwd) : NULL;
    assert_non_null(old);
    assert_int_equal(chdir(dir), 0);
    char real[4096];
    assert_non_null(getcwd(real, sizeof real));
    struct config_diags d = {0};
    struct config *c = config_load("sub/c.yaml", &d);
    assert_int_equal(chdir(old), 0);
    if (c == NULL)
        print_diags(&d);
    assert_non_null(c);
    char *want = xasprintf("%s/sub", real);
    assert_string_equal(c->dir, want);
    free(want);
    assert_string_equal(c->path, "sub/c.yaml");
    want = xasprintf("%s/sub/q/queue.db", real);
    assert_string_equal(c->storage_path, want);
    free(want);
    want = xasprintf("%s/sub/../certs/relay.pem", real);
    assert_string_equal(c->tls_certificate, want);
    free(want);
    want = xasprintf("%s/sub/../certs/relay.key", real);
    assert_string_equal(c->tls_key, want);
    free(want);
    config_unref(c);
    free(old);
    free(path);
}

/* ---- the file itself */

static void
test_file_problems(void **state)
{
    (void)state;
    struct config_diags d = {0};
    /* A folder as the config path. */
    assert_null(config_load(dir, &d));
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].file, dir);
    assert_int_equal(d.v[0].line, 0);
    assert_string_equal(d.v[0].msg, "cannot read the file: a directory, not a regular file");
    config_diags_fini(&d);
    /* 16 MiB + 1. */
    char *path = xasprintf("%s/big.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < CONFIG_MAX_FILE / 16; i++)
        fputs("# padding .....\n", f);
    fputc('\n', f);
    fclose(f);
    assert_null(config_load(path, &d));
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].msg, "cannot read the file: larger than 16 MiB");
    config_diags_fini(&d);
    unlink(path);
    free(path);
    expect_err("", "1:1: empty file: no YAML document");
    expect_err("- a\n", "1:1: the top level: expected a mapping, got a list");
    expect_err(CONN "---\n" CONN, "4:1: more than one YAML document in the file");
    expect_err(CONN "x: caf\xe9\n", "4:7: not UTF-8 (byte 0xe9)");
}

static void
test_yaml_features_refused(void **state)
{
    (void)state;
    expect_err("server:\n"
               "  max_recipients: &n 5\n" /* &n at 2:19 */
               CONN,
               "2:19: YAML anchors are not allowed: \"n\"");
    const char *aliases[] = {
        "1:8: YAML anchors are not allowed: \"s\"",
        "4:15: YAML aliases are not allowed: \"s\"",
    };
    expect_errs("queue: &s {lifetime: 5d}\n" /* &s at 1:8 */
                "connectors:\n"
                "  - name: c\n"
                "    timeouts: *s\n" /* *s at 4:15 */
                "    address_spaces: [\"*\"]\n",
                aliases, 2);
    expect_err("server:\n"
               "  max_recipients: !!int 5\n" /* !!int at 2:19 */
               CONN,
               "2:19: YAML tags are not allowed: \"tag:yaml.org,2002:int\"");
    expect_err("server:\n"
               "  max_recipients: 5\n"
               "  max_recipients: 6\n" /* the later key at 3:3 */
               CONN,
               "3:3: duplicate key \"max_recipients\" (first at 2:3)");
}

/* ---- types */

static void
test_types(void **state)
{
    (void)state;
    /* "  max_recipients: " is 18 characters: values start at column 19. */
    expect_err("server:\n  max_recipients: \"25\"\n" CONN,
               "2:19: max_recipients: expected an integer, got a quoted string \"25\"");
    expect_err("server:\n  max_recipients: -1\n" CONN,
               "2:19: max_recipients: expected an integer, got \"-1\"");
    expect_err("server:\n  max_recipients: 1e3\n" CONN,
               "2:19: max_recipients: expected an integer, got \"1e3\"");
    expect_err("server:\n  max_recipients: 0\n" CONN,
               "2:19: max_recipients: must be between 1 and 4294967295");
    expect_err("server:\n  max_recipients: 99999999999999999999999\n" CONN,
               "2:19: max_recipients: must be between 1 and 4294967295");
    expect_err("server:\n  max_recipients: ~\n" CONN,
               "2:19: max_recipients: expected an integer, got null");
    expect_err("server:\n  max_recipients: [1]\n" CONN,
               "2:19: max_recipients: expected an integer, got a list");
    /* An empty value: libyaml puts the null where the line ends. */
    expect_err("server:\n  max_recipients:\n" CONN,
               "2:18: max_recipients: expected an integer, got null");
    /* Sizes and durations: plain only. */
    expect_err("server:\n  max_message_size: \"10MiB\"\n" CONN,
               "2:21: max_message_size: expected a size (512, 10KiB, 25MiB, 1GiB), got a quoted "
               "string \"10MiB\"");
    expect_err("server:\n  max_message_size: 10XB\n" CONN,
               "2:21: max_message_size: expected a size (512, 10KiB, 25MiB, 1GiB), got \"10XB\"");
    expect_err("queue:\n  lifetime: 5w\n" CONN,
               "2:13: lifetime: expected a duration (30s, 5m, 4h, 5d), got \"5w\"");
    expect_err("queue:\n  lifetime: 0\n" CONN, "2:13: lifetime: must not be 0");
    /* Strings: plain or quoted, but not null, empty or a collection. */
    expect_err("server:\n  hostname: \"\"\n" CONN,
               "2:13: hostname: expected a string, got an empty string");
    expect_err("server:\n  hostname: {a: b}\n" CONN,
               "2:13: hostname: expected a string, got a mapping");
    expect_err("server: null\n" CONN, "1:9: server: expected a mapping, got null");
    expect_err("server: [a]\n" CONN, "1:9: server: expected a mapping, got a list");
}

static void
test_booleans(void **state)
{
    (void)state;
    /* "    ehlo: " is 10 characters: values at column 11. */
    const char *bad[] = {"yes", "on", "True", "TRUE", "1", "\"true\""};
    const char *got[] = {"\"yes\"",  "\"on\"", "\"True\"",
                         "\"TRUE\"", "\"1\"",  "a quoted string \"true\""};
    for (size_t i = 0; i < 6; i++) {
        char *yaml = xasprintf(CONN "    ehlo: %s\n", bad[i]);
        char *want = xasprintf("4:11: ehlo: expected true or false, got %s", got[i]);
        expect_err(yaml, want);
        free(yaml);
        free(want);
    }
    struct config *c = load_ok(CONN "    ehlo: false\n    triggered: true\n");
    assert_false(c->connectors[0].ehlo);
    assert_true(c->connectors[0].triggered);
    config_unref(c);
}

static void
test_unknown_keys(void **state)
{
    (void)state;
    expect_err("srever: {}\n" CONN, "1:1: unknown key \"srever\" in the top level");
    expect_err("server:\n  hostnam: x\n" CONN, "2:3: unknown key \"hostnam\" in server");
    expect_err(CONN "    tls: {mode: none, verify: true}\n", "4:23: unknown key \"verify\" in tls");
    expect_err(CONN "    schedule: {windows: [{days: mon, from: \"01:00\", to: \"02:00\", "
                    "at: x}]}\n",
               "4:66: unknown key \"at\" in windows");
    expect_err("server:\n  ? [a]\n  : b\n" CONN, "2:5: server: a key must be a string");
}

static void
test_min_version(void **state)
{
    (void)state;
    /* "1.2" and 1.3 (plain) are both taken as the version string. */
    struct config *c = load_ok("server:\n"
                               "  tls: {certificate: certs/relay.pem, key: certs/relay.key, "
                               "min_version: 1.3}\n" CONN "    tls: {min_version: \"1.2\"}\n");
    assert_int_equal(c->tls_min_version, CONNECTOR_TLS1_3);
    assert_int_equal(c->connectors[0].tls.min_version, CONNECTOR_TLS1_2);
    config_unref(c);
    /* "  tls: {min_version: " is 21 characters. */
    expect_err(CONN "    tls: {min_version: \"1.1\"}\n",
               "4:24: min_version: expected one of 1.2 or 1.3, got a quoted string \"1.1\"");
    expect_err(CONN "    tls: {min_version: 1.30}\n",
               "4:24: min_version: expected one of 1.2 or 1.3, got \"1.30\"");
}

/* ---- CIDRs, relay and accepted domains */

static struct sockaddr_storage
addr(const char *s)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s, &in->sin_addr) == 1)
        in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    else
        fail_msg("bad test address %s", s);
    return ss;
}

static bool
cidr_has(const char *cidr, const char *a)
{
    struct config_cidr c;
    const char *why;
    if (config_cidr_parse(cidr, &c, &why) != 0)
        fail_msg("%s: %s", cidr, why);
    struct sockaddr_storage ss = addr(a);
    return config_cidr_match(&c, (const struct sockaddr *)&ss);
}

static void
test_cidr(void **state)
{
    (void)state;
    struct config_cidr c;
    const char *why;
    assert_int_equal(config_cidr_parse("10.0.0.0/8", &c, &why), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(config_cidr_parse("192.0.2.1", &c, &why), 0);
    assert_int_equal(c.prefix, 32);
    assert_int_equal(config_cidr_parse("2001:db8::/32", &c, &why), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(config_cidr_parse("0.0.0.0/0", &c, &why), 0);
    /* Host bits. */
    assert_int_equal(config_cidr_parse("10.0.0.1/8", &c, &why), BH_EINVAL);
    assert_string_equal(why, "host bits set");
    assert_int_equal(config_cidr_parse("2001:db8::1/32", &c, &why), BH_EINVAL);
    assert_string_equal(why, "host bits set");
    assert_int_equal(config_cidr_parse("10.0.0.128/25", &c, &why), 0);
    assert_int_equal(config_cidr_parse("10.0.0.64/25", &c, &why), BH_EINVAL);
    /* Malformed. */
    const char *bad[] = {"",         "10.0.0.0/",    "10.0.0.0/-1", "10.0.0.0/33", "::/129",
                         "10.0.0/8", "10.0.0.0/8/8", "x/8",         "10.0.0.0/ 8", "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(config_cidr_parse(bad[i], &c, &why), BH_EINVAL);
    /* Matching, with IPv4-mapped IPv6 clients counted as IPv4. */
    assert_true(cidr_has("127.0.0.0/8", "127.0.0.1"));
    assert_true(cidr_has("127.0.0.0/8", "::ffff:127.0.0.1"));
    assert_false(cidr_has("127.0.0.0/8", "::1"));
    assert_false(cidr_has("127.0.0.0/8", "128.0.0.1"));
    assert_true(cidr_has("10.0.0.128/25", "10.0.0.255"));
    assert_false(cidr_has("10.0.0.128/25", "10.0.0.127"));
    assert_true(cidr_has("::1/128", "::1"));
    assert_false(cidr_has("::1/128", "::2"));
    assert_true(cidr_has("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(cidr_has("2001:db8::/32", "2001:db9::1"));
    assert_true(cidr_has("0.0.0.0/0", "203.0.113.9"));
    assert_false(cidr_has("0.0.0.0/0", "2001:db8::1"));
    /* A mapped CIDR is an IPv4 CIDR. */
    assert_int_equal(config_cidr_parse("::ffff:10.0.0.0/104", &c, &why), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_true(cidr_has("::ffff:10.0.0.0/104", "10.1.2.3"));
    assert_true(cidr_has("::ffff:10.0.0.0/104", "::ffff:10.1.2.3"));
}

static void
test_relay_allowed(void **state)
{
    (void)state;
    struct config *c = load_ok(CONN);
    const char *yes[] = {"127.0.0.1", "127.255.0.9", "::ffff:127.0.0.1", "::1"};
    const char *no[] = {"10.0.0.1", "::2", "::ffff:10.0.0.1", "128.0.0.1"};
    for (size_t i = 0; i < 4; i++) {
        struct sockaddr_storage y = addr(yes[i]), n = addr(no[i]);
        assert_true(config_relay_allowed(c, (const struct sockaddr *)&y));
        assert_false(config_relay_allowed(c, (const struct sockaddr *)&n));
    }
    config_unref(c);
    c = load_ok("server:\n  relay_networks: [\"192.0.2.0/24\"]\n" CONN);
    struct sockaddr_storage a = addr("192.0.2.77"), b = addr("127.0.0.1");
    assert_true(config_relay_allowed(c, (const struct sockaddr *)&a));
    assert_false(config_relay_allowed(c, (const struct sockaddr *)&b));
    config_unref(c);
}

static void
test_domain_accepted(void **state)
{
    (void)state;
    struct config *c =
        load_ok("server:\n"
                "  accepted_domains: [example.org, \"*.example.net\", \"*.tld\"]\n" CONN);
    assert_true(config_domain_accepted(c, "example.org"));
    assert_false(config_domain_accepted(c, "sub.example.org"));
    assert_false(config_domain_accepted(c, "xexample.org"));
    assert_true(config_domain_accepted(c, "example.net"));
    assert_true(config_domain_accepted(c, "a.example.net"));
    assert_true(config_domain_accepted(c, "a.b.example.net"));
    assert_false(config_domain_accepted(c, "aexample.net"));
    assert_false(config_domain_accepted(c, "example.com"));
    assert_false(config_domain_accepted(c, "net"));
    assert_true(config_domain_accepted(c, "tld"));
    assert_true(config_domain_accepted(c, "x.tld"));
    assert_false(config_domain_accepted(c, ""));
    config_unref(c);
    c = load_ok(CONN);
    assert_false(config_domain_accepted(c, "example.org"));
    config_unref(c);
}

static void
test_diags_api(void **state)
{
    (void)state;
    struct config_diags d = {0};
    config_diag_add(&d, "f.yaml", 3, 4, "bad %s %d", "thing", 7);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].file, "f.yaml");
    assert_int_equal(d.v[0].line, 3);
    assert_int_equal(d.v[0].col, 4);
    assert_string_equal(d.v[0].msg, "bad thing 7");
    /* A load appends after what is already there. */
    char *path = write_cfg("d.yaml", "server: 1\n" CONN);
    assert_null(config_load(path, &d));
    assert_int_equal(d.n, 2);
    assert_string_equal(d.v[0].msg, "bad thing 7");
    assert_string_equal(d.v[1].msg, "server: expected a mapping, got \"1\"");
    config_diags_fini(&d);
    assert_int_equal(d.n, 0);
    config_diags_fini(&d);
    free(path);
}

/* A schedule without a timezone runs on UTC (SPEC §2): 21:30 UTC on a
 * Monday is inside a 21:00-22:00 window, whatever TZ the process has. */
static void
test_schedule_default_timezone(void **state)
{
    (void)state;
    setenv("TZ", "America/New_York", 1);
    struct config *c = load_ok("connectors:\n"
                               "  - name: c\n"
                               "    address_spaces: [\"*\"]\n"
                               "    schedule:\n"
                               "      windows: [ {days: mon, from: \"21:00\", to: \"22:00\"} ]\n");
    const struct schedule *s = c->connectors[0].schedule;
    assert_non_null(s);
    assert_string_equal(schedule_timezone(s), "UTC");
    int64_t mon_2130 = 1796074200; /* 2026-11-30 21:30:00 UTC, a Monday */
    assert_true(schedule_is_open(s, mon_2130, 0));
    assert_false(schedule_is_open(s, mon_2130 + 3600, 0));
    assert_int_equal(schedule_next_open(s, mon_2130 + 3600, 0), mon_2130 - 1800 + 7 * 86400);
    config_unref(c);
    unsetenv("TZ");
}

/* ---- reload: what a restart changes keeps its running value */

static void
count_note(const char *setting, void *arg)
{
    char *seen = arg;
    strcat(seen, setting);
    strcat(seen, " ");
}

static void
test_keep_restart_settings(void **state)
{
    (void)state;
    struct config *old = load_ok("server:\n"
                                 "  listen: [ {address: \"127.0.0.1:2525\"} ]\n"
                                 "  node: a\n"
                                 "storage: {path: q1.db}\n"
                                 "dns: {servers: [\"127.0.0.1:53\"]}\n"
                                 "metrics: {listen: \"127.0.0.1:9100\"}\n" CONN);
    /* The same settings: nothing noted, nothing changed. */
    struct config *same = load_ok("server:\n"
                                  "  hostname: other.example\n"
                                  "  listen: [ {address: \"127.0.0.1:2525\"} ]\n"
                                  "  node: a\n"
                                  "storage: {path: q1.db}\n"
                                  "dns: {servers: [\"127.0.0.1:53\"]}\n"
                                  "metrics: {listen: \"127.0.0.1:9100\"}\n" CONN);
    char seen[256] = "";
    config_keep_restart_settings(same, old, count_note, seen);
    assert_string_equal(seen, "");
    assert_string_equal(same->hostname, "other.example");
    config_unref(same);
    /* All of them changed: each noted once, each back to its old value;
     * what a reload may change (hostname) is the new one. */
    struct config *c = load_ok("server:\n"
                               "  hostname: new.example\n"
                               "  listen: [ {address: \"127.0.0.1:2526\"}, {address: \"[::1]:2525\"} ]\n"
                               "  node: b\n"
                               "storage: {path: q2.db}\n"
                               "dns: {servers: [\"127.0.0.2:53\", \"127.0.0.3:53\"]}\n" CONN);
    config_keep_restart_settings(c, old, count_note, seen);
    assert_string_equal(seen, "server.listen server.node storage dns.servers metrics.listen ");
    assert_int_equal(c->nlistens, 1);
    assert_string_equal(c->listens[0].address, "127.0.0.1:2525");
    assert_string_equal(c->node, "a");
    assert_string_equal(c->storage_path, old->storage_path);
    assert_int_equal(c->ndns_servers, 1);
    assert_string_equal(c->dns_servers[0], "127.0.0.1:53");
    assert_string_equal(c->metrics_listen, "127.0.0.1:9100");
    assert_string_equal(c->hostname, "new.example");
    config_unref(c);
    /* Unset in the old config: the new value goes away again. */
    struct config *bare = load_ok(CONN);
    c = load_ok("metrics: {listen: \"127.0.0.1:9100\"}\n"
                "dns: {servers: [\"127.0.0.2:53\"]}\n" CONN);
    seen[0] = '\0';
    config_keep_restart_settings(c, bare, count_note, seen);
    assert_string_equal(seen, "dns.servers metrics.listen ");
    assert_null(c->metrics_listen);
    assert_int_equal(c->ndns_servers, 0);
    config_unref(c);
    config_unref(bare);
    config_unref(old);
}

static void
test_same_transport(void **state)
{
    (void)state;
    static const char base[] = "connectors:\n"
                               "  - name: out\n"
                               "    address_spaces: [\"*\"]\n"
                               "    bridgeheads: [\"a.example:25\", \"b.example:2525\"]\n"
                               "    tls: {mode: required}\n";
    struct config *a = load_ok(base);
    struct config *b = load_ok(base);
    assert_true(connector_same_transport(&a->connectors[0], &a->connectors[0]));
    assert_true(connector_same_transport(&a->connectors[0], &b->connectors[0]));
    config_unref(b);
    /* What only routing and scheduling use does not matter to a session. */
    b = load_ok("connectors:\n"
                "  - name: out\n"
                "    address_spaces: [\"*.net\", example.com]\n"
                "    bridgeheads: [{host: a.example, port: 25, weight: 5}, \"b.example:2525\"]\n"
                "    tls: {mode: required}\n"
                "    max_message_size: 1MiB\n"
                "    senders: {default: reject}\n");
    assert_true(connector_same_transport(&a->connectors[0], &b->connectors[0]));
    config_unref(b);
    static const char *const changed[] = {
        "  - name: other\n    address_spaces: [\"*\"]\n"
        "    bridgeheads: [\"a.example:25\", \"b.example:2525\"]\n    tls: {mode: required}\n",
        "  - name: out\n    address_spaces: [\"*\"]\n"
        "    bridgeheads: [\"a.example:25\"]\n    tls: {mode: required}\n",
        "  - name: out\n    address_spaces: [\"*\"]\n"
        "    bridgeheads: [\"a.example:25\", \"b.example:2526\"]\n    tls: {mode: required}\n",
        "  - name: out\n    address_spaces: [\"*\"]\n"
        "    bridgeheads: [\"a.example:25\", \"b.example:2525\"]\n    tls: {mode: opportunistic}\n",
        "  - name: out\n    address_spaces: [\"*\"]\n"
        "    bridgeheads: [\"a.example:25\", \"b.example:2525\"]\n    tls: {mode: required}\n"
        "    helo_name: me.example\n",
        "  - name: out\n    address_spaces: [\"*\"]\n"
        "    bridgeheads: [\"a.example:25\", \"b.example:2525\"]\n    tls: {mode: required}\n"
        "    auth: {username: relay, password_file: secrets/contoso.pw}\n",
        "  - name: out\n    address_spaces: [\"*\"]\n"
        "    bridgeheads: [\"a.example:25\", \"b.example:2525\"]\n    tls: {mode: required}\n"
        "    timeouts: {command: 7s}\n",
    };
    for (size_t i = 0; i < sizeof changed / sizeof *changed; i++) {
        char *yaml = xasprintf("connectors:\n%s", changed[i]);
        b = load_ok(yaml);
        if (connector_same_transport(&a->connectors[0], &b->connectors[0]))
            fail_msg("case %zu counts as unchanged", i);
        config_unref(b);
        free(yaml);
    }
    config_unref(a);
    /* verify: never the same across two configs (the CA is re-read). */
    static const char ver[] = "connectors:\n"
                              "  - name: p\n"
                              "    address_spaces: [\"*\"]\n"
                              "    bridgeheads: [\"a.example:25\"]\n"
                              "    tls: {mode: verify, ca_file: certs/partner-ca.pem, names: [a.example]}\n";
    a = load_ok(ver);
    b = load_ok(ver);
    assert_true(connector_same_transport(&a->connectors[0], &a->connectors[0]));
    assert_false(connector_same_transport(&a->connectors[0], &b->connectors[0]));
    config_unref(a);
    config_unref(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_defaults_connector),
        cmocka_unit_test(test_defaults_with_tls),
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_scale_out_keys),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_file_problems),
        cmocka_unit_test(test_yaml_features_refused),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_min_version),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_relay_allowed),
        cmocka_unit_test(test_domain_accepted),
        cmocka_unit_test(test_diags_api),
        cmocka_unit_test(test_schedule_default_timezone),
        cmocka_unit_test(test_keep_restart_settings),
        cmocka_unit_test(test_same_transport),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
