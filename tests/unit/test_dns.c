/* Unit tests for core/dns: dns.servers strings, resolv.conf lines, IP
 * literals, and the request life cycle on a real uv loop for the answers
 * that need no query (a literal, an invalid name): the callback runs on
 * the loop, never inside the call; a cancelled request is never called
 * back; dns_free drops what is pending. No socket is opened: nothing here
 * sends a query (the wire format is tested in test_dns_wire). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "connectors/util.h"
#include "core/dns.h"

static void
assert_v4(const struct sockaddr_storage *sa, const char *addr, unsigned port)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(sa->ss_family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &in->sin_addr, text, sizeof text));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(in->sin_port), port);
}

static void
assert_v6(const struct sockaddr_storage *sa, const char *addr, unsigned port)
{
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    char text[INET6_ADDRSTRLEN];
    assert_int_equal(sa->ss_family, AF_INET6);
    assert_non_null(inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(in6->sin6_port), port);
}

static void
test_parse_server(void **state)
{
    (void)state;
    struct sockaddr_storage sa;
    assert_int_equal(dns_parse_server("127.0.0.1:5353", &sa), 0);
    assert_v4(&sa, "127.0.0.1", 5353);
    assert_int_equal(dns_parse_server("[::1]:53", &sa), 0);
    assert_v6(&sa, "::1", 53);
    assert_int_equal(dns_parse_server("[2001:db8::5]:65535", &sa), 0);
    assert_v6(&sa, "2001:db8::5", 65535);
    assert_int_equal(dns_parse_server("192.0.2.7", &sa), 0); /* bare: port 53 */
    assert_v4(&sa, "192.0.2.7", 53);
    assert_int_equal(dns_parse_server("2001:db8::1", &sa), 0);
    assert_v6(&sa, "2001:db8::1", 53);
    static const char *const bad[] = {
        "",
        ":53",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:53x",
        "127.0.0.1:-1",
        "127.0.0.1:+53",
        "127.0.0.1:99999999999999999999",
        "1.2.3:53",
        "ns.example.com:53",
        "ns.example.com",
        "[::1]53",
        "[::1]:",
        "[127.0.0.1]:53",
        "::1]:53",
        "[::1:53",
        "[fe80::1%eth0]:53",
        "127.0.0.1:53:53",
        " 127.0.0.1:53",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(dns_parse_server(bad[i], &sa), BH_EINVAL);
}

static void
test_literal(void **state)
{
    (void)state;
    struct sockaddr_storage sa;
    assert_int_equal(dns_literal("10.1.1.5", 25, &sa), 0);
    assert_v4(&sa, "10.1.1.5", 25);
    assert_int_equal(dns_literal("::1", 2525, &sa), 0);
    assert_v6(&sa, "::1", 2525);
    assert_int_equal(dns_literal("[2001:db8::2]", 587, &sa), 0);
    assert_v6(&sa, "2001:db8::2", 587);
    assert_int_equal(dns_literal("mx.example.com", 25, &sa), BH_EINVAL);
    assert_int_equal(dns_literal("10.1.1", 25, &sa), BH_EINVAL);
    assert_int_equal(dns_literal("[10.1.1.5]", 25, &sa), BH_EINVAL);
    assert_int_equal(dns_literal("[]", 25, &sa), BH_EINVAL);
    assert_int_equal(dns_literal("", 25, &sa), BH_EINVAL);
}

static void
test_resolv_conf(void **state)
{
    (void)state;
    struct sockaddr_storage sa[3];
    const char *text = "# generated\n"
                       "search example.org\n"
                       "nameserver 192.0.2.53\n"
                       ";nameserver 192.0.2.99\n"
                       "nameserver\tfe80::1%eth0\n"
                       "nameserver not-an-address\n"
                       "options ndots:2\n"
                       "nameserver 2001:db8::53   # trailing comment\n"
                       "nameserver 192.0.2.54\n"
                       "nameserver 192.0.2.55\n";
    assert_int_equal(dns_parse_resolv_conf(text, sa, 3), 3);
    assert_v4(&sa[0], "192.0.2.53", 53);
    assert_v6(&sa[1], "2001:db8::53", 53);
    assert_v4(&sa[2], "192.0.2.54", 53);
    assert_int_equal(dns_parse_resolv_conf("", sa, 3), 0);
    assert_int_equal(dns_parse_resolv_conf("nameserver", sa, 3), 0);
    assert_int_equal(dns_parse_resolv_conf("nameserver 127.0.0.1", sa, 3), 1); /* no newline */
    assert_int_equal(dns_parse_resolv_conf("nameservers 127.0.0.1\n", sa, 3), 0);
}

/* ---- The request life cycle (no query is sent) ---- */

struct got {
    int calls;
    enum dns_status status;
    size_t n;
    struct sockaddr_storage first;
    const char *why;
};

static void
on_result(void *arg, const struct dns_result *r)
{
    struct got *g = arg;
    g->calls++;
    g->status = r->status;
    g->n = r->n;
    g->why = r->why;
    if (r->addr != NULL && r->n > 0)
        g->first = r->addr[0];
}

static void
run_until(uv_loop_t *loop, const int *calls, int want)
{
    for (int i = 0; i < 100 && *calls < want; i++)
        uv_run(loop, UV_RUN_ONCE);
}

static void
test_bad_server_strings(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    const char *const servers[] = {"127.0.0.1:5353", "ns.example:53"};
    assert_null(dns_new(&loop, servers, 2, 1));
    dns_free(NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_literal_and_invalid(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    const char *const servers[] = {"127.0.0.1:5353", "[::1]:53"};
    struct dns *d = dns_new(&loop, servers, 2, 2);
    assert_non_null(d);
    struct got lit = {0}, lit6 = {0}, badmx = {0}, badhost = {0};
    assert_non_null(dns_addr(d, "192.0.2.25", 2525, on_result, &lit));
    assert_non_null(dns_addr(d, "[2001:db8::25]", 25, on_result, &lit6));
    assert_non_null(dns_mx(d, "bad..example", on_result, &badmx));
    assert_non_null(dns_addr(d, "bad host", 25, on_result, &badhost));
    /* Never called back from inside the call. */
    assert_int_equal(lit.calls + lit6.calls + badmx.calls + badhost.calls, 0);
    run_until(&loop, &badhost.calls, 1);
    assert_int_equal(lit.calls, 1);
    assert_int_equal(lit.status, DNS_OK);
    assert_int_equal(lit.n, 1);
    assert_v4(&lit.first, "192.0.2.25", 2525);
    assert_string_equal(lit.why, "");
    assert_int_equal(lit6.calls, 1);
    assert_v6(&lit6.first, "2001:db8::25", 25);
    assert_int_equal(badmx.calls, 1);
    assert_int_equal(badmx.status, DNS_NXDOMAIN);
    assert_int_equal(badhost.calls, 1);
    assert_int_equal(badhost.status, DNS_NXDOMAIN);
    dns_free(d);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A callback that cancels another request answered in the same batch. */
struct cancel_other {
    struct dns_req *other;
    int calls;
};

static void
on_cancel_other(void *arg, const struct dns_result *r)
{
    struct cancel_other *c = arg;
    (void)r;
    c->calls++;
    dns_cancel(c->other);
}

static void
test_cancel(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    const char *const servers[] = {"127.0.0.1:5353"};
    struct dns *d = dns_new(&loop, servers, 1, 1);
    struct got a = {0}, b = {0}, last = {0};
    struct dns_req *ra = dns_addr(d, "192.0.2.1", 25, on_result, &a);
    dns_cancel(ra);
    struct cancel_other c = {0};
    dns_addr(d, "192.0.2.2", 25, on_cancel_other, &c);
    c.other = dns_addr(d, "192.0.2.3", 25, on_result, &b);
    dns_addr(d, "192.0.2.4", 25, on_result, &last);
    dns_cancel(NULL);
    run_until(&loop, &last.calls, 1);
    assert_int_equal(a.calls, 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(b.calls, 0);
    assert_int_equal(last.calls, 1);
    dns_free(d);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* dns_free with answers not yet delivered: no callback, nothing leaked
 * (LeakSanitizer checks the latter at exit). */
static void
test_free_pending(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    const char *const servers[] = {"127.0.0.1:5353"};
    struct dns *d = dns_new(&loop, servers, 1, 0);
    struct got g = {0};
    dns_addr(d, "192.0.2.1", 25, on_result, &g);
    dns_mx(d, "", on_result, &g);
    dns_free(d);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(g.calls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Without dns.servers the resolver reads /etc/resolv.conf; it must start
 * and stop whatever that file says. */
static void
test_system_lifecycle(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct dns *d = dns_new(&loop, NULL, 0, 3);
    assert_non_null(d);
    struct got g = {0};
    dns_addr(d, "::1", 25, on_result, &g);
    run_until(&loop, &g.calls, 1);
    assert_int_equal(g.calls, 1);
    assert_v6(&g.first, "::1", 25);
    dns_free(d);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_server),        cmocka_unit_test(test_literal),
        cmocka_unit_test(test_resolv_conf),         cmocka_unit_test(test_bad_server_strings),
        cmocka_unit_test(test_literal_and_invalid), cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_pending),        cmocka_unit_test(test_system_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
