/* Unit tests for the DATA phase of core/smtp_in (core/smtp_in_data): the
 * end of data and every SMTP smuggling variant, dot-unstuffing, bare CR/LF
 * and NUL, line length, RFC 1870 size and the size limit, the Received:
 * loop limit, and the priority read from the headers. Every transcript is
 * replayed split at every byte offset and byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>

#include "core/smtp_in_data.h"
#include "tests/unit/test_smtp_in_drv.h"

#define PRE "EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\n"
#define PRE_LOG                                                                                    \
    "220 mx.example.org ESMTP bridgehead\r\n250-mx.example.org\r\n250-PIPELINING\r\n"              \
    "250-SIZE 10000\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-ETRN\r\n"         \
    "250 STARTTLS\r\n[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n[RCPT <b@x.org>]\n250 2.1.5 Ok\r\n"         \
    "[BEGIN]\n354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED "250 2.0.0 Ok: queued as TESTID\r\n"
#define BARE "[ABORT]\n554 5.6.0 Message contains bare CR, bare LF or NUL\r\n"
/* After a refused message the transaction is gone but the session lives. */
#define AFTER "RCPT TO:<b@x.org>\r\nNOOP\r\n"
#define AFTER_LOG "503 5.5.1 Need MAIL command first\r\n250 2.0.0 Ok\r\n"

/* PRE + data, checked against PRE_LOG + want. */
static void
data_case(const struct smtp_in_params *p, const char *data, const char *want)
{
    char *in = drv_fmt("%s%s", PRE, data);
    char *log = want ? drv_fmt("%s%s", PRE_LOG, want) : NULL;
    drv_check(p, (const char *const[]){in, NULL}, log);
    free(in);
    free(log);
}

static void
test_end_of_data(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    data_case(&p, "hello\r\n.\r\nNOOP\r\n",
              "[COMMIT size=7 prio=1 rcvd=0 body=hello\\r\\n]\n" QUEUED "250 2.0.0 Ok\r\n");
    /* an empty body is accepted */
    data_case(&p, ".\r\n", "[COMMIT size=0 prio=1 rcvd=0 body=]\n" QUEUED);
    /* commands in the body are only text */
    data_case(&p, "QUIT\r\nRSET\r\n.\r\n",
              "[COMMIT size=12 prio=1 rcvd=0 body=QUIT\\r\\nRSET\\r\\n]\n" QUEUED);
}

/* Only CRLF.CRLF ends the data; the smuggling variants are bare CR/LF, so
 * the message is refused once, and the commands hidden after them are
 * never run. */
static void
test_smuggling(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    const char *variants[] = {
        "\n.\n",   "\r.\r", "\n.\r\n",  "\r\n.\n",     "\r\n.\r",
        "\r.\r\n", "\n.\r", "\r\n.\rX", "\r\n.\r\r\n", "\r\n.\n\r\n",
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        char *data = drv_fmt("a\r\n%sMAIL FROM:<evil@x.org>\r\nRCPT TO:<v@x.org>\r\nDATA\r\n"
                             "evil\r\n\r\n.\r\n" AFTER,
                             variants[i]);
        data_case(&p, data, BARE AFTER_LOG);
        free(data);
    }
    /* a body line that is only a stuffed dot is content */
    data_case(&p, "a\r\n..\r\n.\r\n", "[COMMIT size=6 prio=1 rcvd=0 body=a\\r\\n.\\r\\n]\n" QUEUED);
}

static void
test_bad_octets(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    data_case(&p, "a\rb\r\n.\r\n" AFTER, BARE AFTER_LOG);
    data_case(&p, "a\nb\r\n.\r\n" AFTER, BARE AFTER_LOG);
    data_case(&p, "ab\r\r\n.\r\n" AFTER, BARE AFTER_LOG);
    /* NUL, fed through the driver directly (strings stop at NUL) */
    struct drv d;
    drv_init(&d, &p, true);
    drv_feed_str(&d, PRE);
    drv_feed(&d, "a\0b\r\n.\r\n", 8);
    drv_feed_str(&d, AFTER);
    assert_string_equal(d.log, PRE_LOG BARE AFTER_LOG);
    drv_fini(&d);
}

static void
test_dot_unstuffing(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    data_case(&p, "..a\r\n.b\r\n...\r\nc.\r\n.\r\n",
              "[COMMIT size=15 prio=1 rcvd=0 body=.a\\r\\nb\\r\\n..\\r\\nc.\\r\\n]\n" QUEUED);
}

/* 1000 octets with CRLF is the longest line; a stuffed dot is not counted. */
static void
test_line_length(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    char *ok = drv_line("", 'x', 998, "\r\n.\r\n");
    char *stuffed = drv_line(".", 'x', 998, "\r\n.\r\n");
    char *longer = drv_line("", 'x', 999, "\r\n.\r\n" AFTER);
    char *way_longer = drv_line("", 'x', 30000, "\r\nok\r\n.\r\n" AFTER);
    data_case(&p, ok, NULL);
    data_case(&p, stuffed, NULL);
    struct drv d;
    drv_init(&d, &p, true);
    drv_feed_str(&d, PRE);
    drv_feed_str(&d, stuffed);
    assert_non_null(strstr(d.log, "[COMMIT size=1000 "));
    drv_fini(&d);
    data_case(&p, longer, "[ABORT]\n554 5.6.0 line too long\r\n" AFTER_LOG);
    data_case(&p, way_longer, "[ABORT]\n554 5.6.0 line too long\r\n" AFTER_LOG);
    free(ok);
    free(stuffed);
    free(longer);
    free(way_longer);
}

/* RFC 1870 §4: CRLF counted, stuffed dots and the final dot not; over the
 * limit the data is read to its end, then 552 5.3.4. */
static void
test_size_limit(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    p.max_message_size = 10;
    /* a 10-octet message: ".abcdefg" CRLF */
    drv_check(&p, (const char *const[]){"EHLO c\r\nMAIL FROM:<a@x.org> SIZE=11\r\n", NULL},
              "220 mx.example.org ESMTP bridgehead\r\n250-mx.example.org\r\n250-PIPELINING\r\n"
              "250-SIZE 10\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-ETRN\r\n"
              "250 STARTTLS\r\n552 5.3.4 Message size exceeds fixed maximum message size\r\n");
    struct drv d;
    drv_init(&d, &p, true);
    drv_feed_str(&d, PRE "..abcdefg\r\n.\r\n");
    assert_non_null(strstr(d.log, "[COMMIT size=10 prio=1 rcvd=0 body=.abcdefg\\r\\n]\n" QUEUED));
    drv_feed_str(&d, "MAIL FROM:<a@x.org> SIZE=10\r\nRCPT TO:<b@x.org>\r\nDATA\r\n"
                     "..abcdefgh\r\n.\r\nNOOP\r\n");
    assert_non_null(strstr(d.log, "[MAIL <a@x.org> SIZE=10]\n"));
    assert_non_null(strstr(d.log, "[BEGIN]\n354 End data with <CR><LF>.<CR><LF>\r\n[ABORT]\n"
                                  "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
                                  "250 2.0.0 Ok\r\n"));
    drv_fini(&d);
    /* a big message is not spooled beyond the limit */
    p.max_message_size = 10000;
    drv_init(&d, &p, true);
    drv_feed_str(&d, PRE);
    for (int i = 0; i < 1000; i++)
        drv_feed_str(&d, "0123456789012345678901234567890123456789012345678\r\n");
    drv_feed_str(&d, ".\r\n");
    assert_true(d.blen <= 10000 + 1000);
    assert_non_null(strstr(d.log, "[ABORT]\n552 5.3.4 "));
    drv_fini(&d);
    /* max_message_size 0: no limit; a large body arrives whole */
    p.max_message_size = 0;
    drv_init(&d, &p, true);
    drv_feed_str(&d, PRE);
    char *big = drv_line("", 'z', 997, "\r\n");
    for (int i = 0; i < 300; i++)
        drv_feed_str(&d, big);
    drv_feed_str(&d, ".\r\n");
    assert_non_null(strstr(d.log, "[COMMIT size=299700 "));
    assert_int_equal(d.blen, 299700);
    free(big);
    drv_fini(&d);
}

/* The same long message split everywhere (strided): identical results. */
static void
test_long_message_splits(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    p.max_message_size = 0;
    char body[20000] = "";
    for (int i = 0; i < 200; i++)
        strcat(body, i % 3 ? "line of text\r\n" : ".stuffed line\r\n");
    char *in = drv_fmt("%s%s.\r\nNOOP\r\n", PRE, body);
    drv_check(&p, (const char *const[]){in, NULL}, NULL);
    free(in);
}

static void
test_received_loop(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    p.max_message_size = 0;
    char hdrs[4096] = "";
    for (int i = 0; i < 100; i++)
        strcat(hdrs, i % 2 ? "Received: x\r\n" : "received : y\r\n");
    char *ok = drv_fmt("%s\r\nReceived: in body\r\n.\r\n", hdrs);
    char *loop = drv_fmt("%sReceived: z\r\n\r\nbody\r\n.\r\n" AFTER, hdrs);
    struct drv d;
    drv_init(&d, &p, true);
    drv_feed_str(&d, PRE);
    drv_feed_str(&d, ok);
    assert_non_null(strstr(d.log, " rcvd=100 body="));
    drv_fini(&d);
    drv_init(&d, &p, true);
    drv_feed_str(&d, PRE);
    drv_feed_str(&d, loop);
    assert_non_null(strstr(d.log, "[ABORT]\n554 5.4.6 Too many Received: headers, mail loop\r\n"
                                  "503 5.5.1 Need MAIL command first\r\n"));
    drv_fini(&d);
    free(ok);
    free(loop);
}

static void
test_priority(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    static const struct {
        const char *msg;
        int prio;
    } cases[] = {
        {"Subject: x\r\n\r\nbody\r\n", 1},
        {"Importance: high\r\n\r\n", 2},
        {"importance:   LOW  \r\n", 0},
        {"Importance: high (really)\r\n", 2},
        {"Importance:\r\n high\r\n", 2},
        {"Importance:\r\n\t\r\n  normal\r\n", 1},
        {"Importance : low\r\n", 0},
        {"Importance: high;\r\n", 1},
        {"Importance: hi gh\r\n", 1},
        {"Importance: low\r\nImportance: high\r\n", 0},
        {"X-Priority: 1 (Highest)\r\n", 2},
        {"X-Priority: 2\r\n", 2},
        {"X-Priority: 3\r\n", 1},
        {"X-Priority: 4\r\n", 0},
        {"X-Priority: 5\r\n", 0},
        {"X-Priority: 6\r\n", 1},
        {"X-Priority: 1\r\nImportance: low\r\n", 0},
        {"Importance: bogus\r\nX-Priority: 2\r\n", 2},
        {"Priority: urgent\r\n", 2},
        {"Priority: non-urgent\r\n", 0},
        {"Priority: normal\r\nX-Priority: 5\r\n", 0},
        {"Subject: x\r\n\r\nImportance: high\r\n", 1},
        {"From someone\r\nImportance: high\r\n", 1},
        {" folded first\r\nImportance: high\r\n", 1},
        {"Subject: a\r\n b\r\nX-Priority: 1\r\n", 2},
        {"X-Importance: high\r\nPriorityX: urgent\r\n", 1},
        {"Importance: an-extremely-long-token\r\n", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *in = drv_fmt("%s%s.\r\n", PRE, cases[i].msg);
        char *want = drv_fmt("prio=%d ", cases[i].prio);
        char *log = drv_run(&p, (const char *const[]){in, NULL}, DRV_WHOLE, 0);
        if (strstr(log, want) == NULL)
            fail_msg("case %zu (%s): want %s in\n%s", i, cases[i].msg, want, log);
        drv_check(&p, (const char *const[]){in, NULL}, log);
        free(log);
        free(want);
        free(in);
    }
}

/* Commands pipelined after the final dot wait for the COMMIT answer. */
static void
test_commit_pending(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    struct drv d;
    drv_init(&d, &p, true);
    drv_feed_str(&d, PRE);
    d.manual = true;
    d.len = 0;
    drv_feed_str(&d, "x\r\n.\r\nNOOP\r\n");
    assert_string_equal(d.log, "[COMMIT size=3 prio=1 rcvd=0 body=x\\r\\n]\n");
    assert_int_equal(smtp_in_result(d.m, 250, "2.0.0 Ok: queued as ABCDEFGHIJKL"), 0);
    drv_drain(&d);
    assert_string_equal(d.log, "[COMMIT size=3 prio=1 rcvd=0 body=x\\r\\n]\n"
                               "250 2.0.0 Ok: queued as ABCDEFGHIJKL\r\n250 2.0.0 Ok\r\n");
    assert_null(smtp_in_mail(d.m));
    drv_fini(&d);
}

/* The scanner on its own: in place, output never overtakes input. */
static void
test_scanner_direct(void **state)
{
    (void)state;
    struct smtp_in_data s;
    char buf[] = "..a\r\nb\r\n.\r\nrest";
    size_t out = 0;
    smtp_in_data_init(&s, 0);
    size_t used = smtp_in_data_scan(&s, buf, strlen(buf), &out);
    assert_true(s.done);
    assert_int_equal(used, strlen("..a\r\nb\r\n.\r\n"));
    assert_int_equal(out, 7);
    assert_memory_equal(buf, ".a\r\nb\r\n", 7);
    assert_int_equal(s.size, 7);
    assert_int_equal(s.err, SMTP_IN_DATA_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_end_of_data),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_bad_octets),
        cmocka_unit_test(test_dot_unstuffing),
        cmocka_unit_test(test_line_length),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_long_message_splits),
        cmocka_unit_test(test_received_loop),
        cmocka_unit_test(test_priority),
        cmocka_unit_test(test_commit_pending),
        cmocka_unit_test(test_scanner_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
