/* Unit tests for core/dsn and core/msg: DSN structure (RFC 3464), RET=HDRS
 * vs FULL, header injection through ENVID/diagnostics, Received: header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "connectors/util.h"
#include "core/dsn.h"
#include "core/msg.h"

static const char original[] = "Subject: hello\r\nFrom: a@example.org\r\n\r\nsecret body\r\n";

static struct dsn_report
report(bool full)
{
    struct dsn_report r = {
        .hostname = "relay.example.org", .sender = "a@example.org", .queue_id = "ABCDEFGHIJKLMNOP",
        .envid = "env\r\nBcc: victim@x", .arrival = 1795000000, .now = 1795000100, .full = full,
        .original = original, .original_len = sizeof original - 1, .boundary_seed = "SEED",
    };
    return r;
}

static void
test_failed_hdrs(void **state)
{
    (void)state;
    struct dsn_rcpt rc[2] = {
        {.recipient = "b@contoso.com", .action = DSN_FAILED, .status = "5.7.1",
         .diagnostic = "550 5.7.1 no\r\nX-Evil: 1", .remote_mta = "mx.contoso.com"},
        {.recipient = "c@contoso.com", .orcpt = "rfc822;C@contoso.com", .action = DSN_FAILED,
         .status = "5.3.4"},
    };
    struct dsn_report r = report(false);
    struct util_buf b = {0};
    dsn_build(&b, &r, rc, 2);
    assert_non_null(strstr(b.p, "Content-Type: multipart/report; report-type=delivery-status;"));
    assert_non_null(strstr(b.p, "To: <a@example.org>\r\n"));
    assert_non_null(strstr(b.p, "Subject: Undelivered Mail Returned to Sender\r\n"));
    assert_non_null(strstr(b.p, "Final-Recipient: rfc822; b@contoso.com\r\nAction: failed\r\n"
                                "Status: 5.7.1\r\nRemote-MTA: dns; mx.contoso.com\r\n"));
    assert_non_null(strstr(b.p, "Original-Recipient: rfc822;C@contoso.com\r\n"));
    assert_non_null(strstr(b.p, "Status: 5.3.4\r\n"));
    /* No injected header lines. */
    assert_null(strstr(b.p, "\r\nBcc:"));
    assert_null(strstr(b.p, "\r\nX-Evil:"));
    assert_non_null(strstr(b.p, "Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\n"));
    assert_null(strstr(b.p, "secret body"));
    assert_non_null(strstr(b.p, "--SEED/relay.example.org--\r\n"));
    util_buf_fini(&b);
}

static void
test_delayed_full(void **state)
{
    (void)state;
    struct dsn_rcpt rc = {.recipient = "b@x.org", .action = DSN_DELAYED, .status = "4.4.1"};
    struct dsn_report r = report(true);
    r.envid = NULL;
    struct util_buf b = {0};
    dsn_build(&b, &r, &rc, 1);
    assert_non_null(strstr(b.p, "Subject: Delayed Mail (still being retried)"));
    assert_non_null(strstr(b.p, "Action: delayed\r\n"));
    assert_non_null(strstr(b.p, "Content-Type: message/rfc822\r\n\r\nSubject: hello"));
    assert_non_null(strstr(b.p, "secret body\r\n"));
    assert_null(strstr(b.p, "Original-Envelope-Id"));
    util_buf_fini(&b);
}

static void
test_header_length(void **state)
{
    (void)state;
    assert_int_equal(dsn_header_length(original, sizeof original - 1), 39);
    assert_int_equal(dsn_header_length("\r\nbody", 6), 2);
    assert_int_equal(dsn_header_length("no blank line", 13), 13);
    assert_int_equal(dsn_header_length("", 0), 0);
}

static void
test_received(void **state)
{
    (void)state;
    struct util_buf b = {0};
    struct msg_received r = {.helo = "evil (x); y\r\n", .client_ip = "127.0.0.1",
                             .hostname = "relay.example.org", .id = "ID1", .esmtp = true,
                             .tls = true, .tls_version = "TLSv1.3", .tls_cipher = "X",
                             .for_rcpt = "b@c.org", .when = 0};
    msg_received(&b, &r);
    assert_string_equal(b.p, "Received: from evil__x___y__ ([127.0.0.1])\r\n"
                             "\tby relay.example.org (bridgehead) with ESMTPS\r\n"
                             "\t(version=TLSv1.3 cipher=X) id ID1\r\n"
                             "\tfor <b@c.org>; Thu, 01 Jan 1970 00:00:00 +0000\r\n");
    util_buf_fini(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_hdrs),
        cmocka_unit_test(test_delayed_full),
        cmocka_unit_test(test_header_length),
        cmocka_unit_test(test_received),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
