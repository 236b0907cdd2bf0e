/*
 * Unit tests for connectors/config_server: the server, storage, queue, dns
 * and metrics sections, the users file and their rules (SPEC §2, §8, §9).
 * Each bad config is written inline next to the exact "LINE:COL: message"
 * it must produce, so a reader can count.
 */
#include "config_test.h"

/* ---- server rules */

static void
test_server_tls(void **state)
{
    (void)state;
    expect_err("server:\n"
               "  tls:\n"
               "    certificate: certs/relay.pem\n" /* first key of tls at 3:5 */
               CONN,
               "3:5: missing key \"key\" (server.tls needs a certificate and a key)");
    /* An unreadable certificate is reported at its value. */
    char *yaml = xasprintf("server:\n"
                           "  tls:\n"
                           "    certificate: certdir\n" /* a folder; value at 3:18 */
                           "    key: none.key\n"        /* missing; value at 4:10 */
                           CONN);
    char *w1 = xasprintf("3:18: unreadable certificate file %s/certdir: not a regular file", dir);
    char *w2 = xasprintf("4:10: unreadable key file %s/none.key: No such file or directory", dir);
    const char *want[] = {w1, w2};
    expect_errs(yaml, want, 2);
    free(yaml);
    free(w1);
    free(w2);
    /* A file that is not PEM; "  tls: {certificate: " is 21 characters. */
    yaml = xasprintf("server:\n"
                     "  tls: {certificate: notpem.txt, key: certs/relay.pem}\n" CONN);
    w1 = xasprintf("2:22: certificate file %s/notpem.txt: no PEM certificate in it", dir);
    w2 = xasprintf("2:39: key file %s/certs/relay.pem: no PEM private key in it", dir);
    const char *want2[] = {w1, w2};
    expect_errs(yaml, want2, 2);
    free(yaml);
    free(w1);
    free(w2);
}

static void
test_listeners(void **state)
{
    (void)state;
    /* "      tls: " is 11 characters. */
    expect_err("server:\n"
               "  listen:\n"
               "    - address: \"0.0.0.0:25\"\n"
               "      tls: starttls\n" CONN,
               "4:12: tls: starttls needs server.tls (a certificate and key)");
    expect_err("server:\n"
               "  listen:\n"
               "    - address: \"0.0.0.0:465\"\n"
               "      tls: implicit\n" CONN,
               "4:12: tls: implicit needs server.tls (a certificate and key)");
    /* "      odmr: " is 12 characters. */
    expect_err("server:\n"
               "  listen:\n"
               "    - address: \"0.0.0.0:366\"\n"
               "      odmr: true\n" CONN,
               "4:13: odmr: needs server.tls and server.users_file (ATRN follows AUTH in TLS)");
    expect_err("server:\n" TLS "  listen:\n"
               "    - address: \"0.0.0.0:366\"\n"
               "      odmr: true\n" CONN,
               "5:13: odmr: needs server.tls and server.users_file (ATRN follows AUTH in TLS)");
    struct config *c = load_ok("server:\n" TLS "  users_file: users.txt\n"
                               "  listen:\n"
                               "    - address: \"0.0.0.0:366\"\n"
                               "      odmr: true\n" CONN);
    assert_true(c->listens[0].odmr);
    config_unref(c);
    /* "    - address: " is 15 characters. */
    expect_err("server:\n"
               "  listen:\n"
               "    - address: \"0.0.0.0:25\"\n"
               "    - address: 0.0.0.0:25\n" CONN,
               "4:16: address: duplicate listen address \"0.0.0.0:25\" (first at 3:16)");
    expect_err("server:\n"
               "  listen:\n"
               "    - address: \"[::0]:25\"\n"
               "    - address: \"[0::]:25\"\n" CONN,
               "4:16: address: duplicate listen address \"[::]:25\" (first at 3:16)");
    const char *bad[] = {"\"0.0.0.0\"", "\"0.0.0.0:0\"",    "\"0.0.0.0:65536\"",
                         "\"[::1]25\"", "\"localhost:25\"", "\"::1:25\""};
    for (size_t i = 0; i < 6; i++) {
        char *yaml = xasprintf("server:\n  listen:\n    - address: %s\n" CONN, bad[i]);
        char *want = xasprintf("3:16: address: expected \"a.b.c.d:port\" or \"[IPv6]:port\" "
                               "(port 1-65535), got a quoted string %s",
                               bad[i]);
        expect_err(yaml, want);
        free(yaml);
        free(want);
    }
    expect_err("server:\n  listen:\n    - tls: none\n" CONN, "3:7: missing key \"address\"");
    expect_err("server:\n  listen: []\n" CONN, "2:11: listen: must not be empty");
}

static void
test_users_file(void **state)
{
    (void)state;
    expect_err("server:\n"
               "  users_file: users.txt\n" CONN, /* the key at 2:3 */
               "2:3: users_file: needs server.tls (AUTH is offered only inside TLS)");
    char *yaml = xasprintf("server:\n" TLS "  users_file: nousers.txt\n" CONN);
    char *want = xasprintf("3:15: unreadable users file %s/nousers.txt: No such file or "
                           "directory",
                           dir);
    expect_err(yaml, want);
    free(yaml);
    free(want);
    /* Bad lines are reported as USERSFILE:LINE:1, after the config's own. */
    write_file("badusers.txt", "# comment\n"
                               "alice:$y$ok\n"
                               "nocolon\n"
                               "bob:plain\n"
                               "\n"
                               "carol:$6$x:good.org,bad_domain\n"
                               "alice:$6$again\n"
                               " :$y$x\n");
    struct config_diags d = {0};
    char *path = write_cfg("u.yaml", "server:\n" TLS "  users_file: badusers.txt\n" CONN);
    assert_null(config_load(path, &d));
    char *users = xasprintf("%s/badusers.txt", dir);
    const char *want2[] = {
        "3:1: expected name:HASH[:domain,domain...]",
        "4:1: user \"bob\": the hash must be a crypt(3) string starting with $y$ or $6$",
        "6:1: user carol: \"bad_domain\" is not a valid domain",
        "7:1: user \"alice\" appears twice (first on line 2)",
        "8:1: the user name must be 1 to 255 characters without spaces",
    };
    if (d.n != 5)
        print_diags(&d);
    assert_int_equal(d.n, 5);
    for (size_t i = 0; i < d.n; i++) {
        char *got = xasprintf("%d:%d: %s", d.v[i].line, d.v[i].col, d.v[i].msg);
        assert_string_equal(got, want2[i]);
        assert_string_equal(d.v[i].file, users);
        free(got);
    }
    config_diags_fini(&d);
    free(users);
    free(path);
}

static void
test_server_lists(void **state)
{
    (void)state;
    /* "  accepted_domains: [" is 21 characters; "*" is the second item. */
    expect_err("server:\n  accepted_domains: [example.org, \"*\"]\n" CONN,
               "2:35: accepted_domains: \"*\" is not allowed (it would accept mail for every "
               "domain from anyone)");
    expect_err("server:\n  accepted_domains: [\"a*b.com\"]\n" CONN,
               "2:22: accepted_domains: \"a*b.com\": a wildcard is allowed only as \"*\" or a "
               "leading \"*.\"");
    /* "  relay_networks: [" is 19 characters. */
    expect_err("server:\n  relay_networks: [\"10.0.0.1/8\"]\n" CONN,
               "2:20: relay_networks: \"10.0.0.1/8\": host bits set");
    expect_err("server:\n  relay_networks: [\"10.0.0.0/33\"]\n" CONN,
               "2:20: relay_networks: \"10.0.0.0/33\": the prefix length must be 0 to 32");
    expect_err("server:\n  relay_networks: [example.org]\n" CONN,
               "2:20: relay_networks: \"example.org\": not an IP address");
    expect_err("server:\n  relay_networks: \"10.0.0.0/8\"\n" CONN,
               "2:19: relay_networks: expected a list, got a quoted string \"10.0.0.0/8\"");
    /* An empty list is allowed: nobody relays. */
    struct config *c = load_ok("server:\n  relay_networks: []\n" CONN);
    assert_int_equal(c->nrelay_networks, 0);
    config_unref(c);
}

static void
test_server_misc(void **state)
{
    (void)state;
    expect_err("server:\n  hostname: relay_1.example.org\n" CONN,
               "2:13: hostname: not a valid host name");
    expect_err("server:\n  node: \"relay a\"\n" CONN,
               "2:9: node: must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
    expect_err("server:\n  postmaster: postmaster\n" CONN,
               "2:15: postmaster: expected an address like postmaster@example.org");
    expect_err("server:\n  timeouts: {command: 5m, data: 0s}\n" CONN, "2:33: data: must not be 0");
    expect_err("storage:\n  backend: postgres\n" CONN, /* first key of storage at 2:3 */
               "2:3: missing key \"dsn\" (backend postgres needs a dsn)");
    expect_err("storage:\n  dsn: \"host=x\"\n  backend: sqlite\n" CONN, /* later key 3:3 */
               "3:3: dsn: only used with backend postgres");
    expect_err("storage:\n  backend: mysql\n" CONN,
               "2:12: backend: expected one of sqlite or postgres, got \"mysql\"");
    expect_err("queue:\n  retry_max: 1m\n  retry_initial: 5m\n" CONN, /* later key 3:3 */
               "3:3: retry_max must not be less than retry_initial");
    expect_err("dns:\n  servers: [\"127.0.0.1:5353\", dns.example.org]\n" CONN,
               "2:31: servers: \"dns.example.org\" is not an IP address with an optional port "
               "(\"127.0.0.1:53\", \"[::1]:53\")");
    expect_err("dns:\n  servers: []\n" CONN, "2:12: servers: must not be empty");
    expect_err("server:\n  listen: [{address: \"127.0.0.1:9025\"}]\n"
               "metrics:\n  listen: \"127.0.0.1:9025\"\n" CONN,
               "4:11: listen: 127.0.0.1:9025 is already a server.listen address");
    struct config *c = load_ok("dns:\n  servers: [\"::1\", 192.0.2.1, \"[::1]:5353\", "
                               "\"192.0.2.1:53\"]\n" CONN);
    assert_int_equal(c->ndns_servers, 4);
    config_unref(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_tls),  cmocka_unit_test(test_listeners),
        cmocka_unit_test(test_users_file),  cmocka_unit_test(test_server_lists),
        cmocka_unit_test(test_server_misc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
