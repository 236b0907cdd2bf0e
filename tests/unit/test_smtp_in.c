/* Unit tests for core/smtp_in, the SMTP server machine: greeting, EHLO
 * keywords, command sequencing and replies, line limits and bare CR/LF in
 * commands, pipelining (replies in order while checks are pending),
 * STARTTLS (and injection after it), AUTH, ETRN, ATRN, session limits and
 * shutdown. DATA is in test_smtp_in_data.c, addresses and parameters in
 * test_smtp_in_args.c. Every transcript is also replayed split at every
 * byte offset and byte by byte (drv_check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "tests/unit/test_smtp_in_drv.h"

#define BANNER "220 mx.example.org ESMTP bridgehead\r\n"
#define EHLO_HEAD                                                                                  \
    "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n"                   \
    "250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
#define EHLO_STARTTLS EHLO_HEAD "250-ETRN\r\n250 STARTTLS\r\n"
#define EHLO_TLS_AUTH EHLO_HEAD "250-ETRN\r\n250 AUTH PLAIN LOGIN\r\n"
/* AUTH PLAIN, base64 of "\0alice\0secret" and "\0alice\0wrong". */
#define PLAIN_OK "AGFsaWNlAHNlY3JldA=="
#define PLAIN_BAD "AGFsaWNlAHdyb25n"

static struct smtp_in_params
tls_params(void)
{
    struct smtp_in_params p = drv_params();
    p.tls_active = true;
    p.auth_available = true;
    return p;
}

static void
test_ehlo_keywords(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    drv_check(&p, (const char *const[]){"EHLO client.example\r\n", NULL}, BANNER EHLO_STARTTLS);

    p.tls_available = false;
    drv_check(&p, (const char *const[]){"EHLO c\r\n", NULL}, BANNER EHLO_HEAD "250 ETRN\r\n");

    /* users configured but no TLS yet: AUTH is not offered */
    p = drv_params();
    p.auth_available = true;
    p.odmr = true;
    drv_check(&p, (const char *const[]){"EHLO c\r\n", NULL}, BANNER EHLO_STARTTLS);

    p = tls_params();
    drv_check(&p, (const char *const[]){"EHLO c\r\n", NULL}, BANNER EHLO_TLS_AUTH);

    p.odmr = true;
    drv_check(&p, (const char *const[]){"EHLO c\r\n", NULL},
              BANNER EHLO_HEAD "250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n250 ATRN\r\n");

    /* TLS without users: neither STARTTLS nor AUTH */
    p.auth_available = false;
    drv_check(&p, (const char *const[]){"EHLO c\r\n", NULL}, BANNER EHLO_HEAD "250 ETRN\r\n");
}

static void
test_helo(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    drv_check(&p,
              (const char *const[]){"HELO\r\nEHLO\r\nHELO client.example\r\n"
                                    "MAIL FROM:<a@example.org> SIZE=10\r\n"
                                    "MAIL FROM:<a@example.org>\r\n"
                                    "RCPT TO:<b@example.org> NOTIFY=NEVER\r\n",
                                    NULL},
              BANNER "501 5.5.4 Syntax: HELO hostname\r\n"
                     "501 5.5.4 Syntax: EHLO hostname\r\n"
                     "250 mx.example.org\r\n"
                     "555 5.5.4 Parameters need EHLO\r\n"
                     "[MAIL <a@example.org>]\n250 2.1.0 Ok\r\n"
                     "555 5.5.4 Parameters need EHLO\r\n");

    struct drv d;
    drv_init(&d, &p, true);
    assert_null(smtp_in_helo(d.m));
    drv_feed_str(&d, "helo  client.example  \r\n");
    assert_string_equal(smtp_in_helo(d.m), "client.example");
    assert_false(smtp_in_esmtp(d.m));
    drv_feed_str(&d, "ehlo other\r\n");
    assert_string_equal(smtp_in_helo(d.m), "other");
    assert_true(smtp_in_esmtp(d.m));
    drv_fini(&d);
}

static void
test_transaction(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    drv_check(&p,
              (const char *const[]){"EHLO c\r\nMAIL FROM:<a@example.org>\r\n"
                                    "RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"
                                    "DATA\r\n",
                                    "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n", NULL},
              BANNER EHLO_STARTTLS "[MAIL <a@example.org>]\n250 2.1.0 Ok\r\n"
                                   "[RCPT <b@example.org>]\n250 2.1.5 Ok\r\n"
                                   "[RCPT <c@example.org>]\n250 2.1.5 Ok\r\n"
                                   "[BEGIN]\n354 End data with <CR><LF>.<CR><LF>\r\n"
                                   "[COMMIT size=21 prio=1 rcvd=0 body=Subject: hi\\r\\n\\r\\n"
                                   "body\\r\\n]\n250 2.0.0 Ok: queued as TESTID\r\n"
                                   "221 2.0.0 Bye\r\n[CLOSE]\n");
}

static void
test_sequence_errors(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    drv_check(&p,
              (const char *const[]){"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\n"
                                    "EHLO c\r\nRCPT TO:<b@x.org>\r\nDATA\r\n"
                                    "MAIL FROM:<a@x.org>\r\nMAIL FROM:<a@x.org>\r\n"
                                    "DATA\r\nRCPT TO:<deny@y.org>\r\nDATA\r\n"
                                    "RSET\r\nRCPT TO:<b@x.org>\r\n",
                                    NULL},
              BANNER "503 5.5.1 Send HELO or EHLO first\r\n"
                     "503 5.5.1 Need MAIL command first\r\n"
                     "503 5.5.1 Need MAIL command first\r\n" EHLO_STARTTLS
                     "503 5.5.1 Need MAIL command first\r\n"
                     "503 5.5.1 Need MAIL command first\r\n"
                     "[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n"
                     "503 5.5.1 Nested MAIL command\r\n"
                     "503 5.5.1 No valid recipients\r\n"
                     "[RCPT <deny@y.org>]\n550 5.7.1 relay denied\r\n"
                     "503 5.5.1 No valid recipients\r\n"
                     "250 2.0.0 Ok\r\n"
                     "503 5.5.1 Need MAIL command first\r\n");
}

static void
test_refused_sender(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    drv_check(&p,
              (const char *const[]){"EHLO c\r\nMAIL FROM:<bad@x.org>\r\nRCPT TO:<b@x.org>\r\n"
                                    "MAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\n",
                                    NULL},
              BANNER EHLO_STARTTLS "[MAIL <bad@x.org>]\n550 5.7.1 sender refused\r\n"
                                   "503 5.5.1 Need MAIL command first\r\n"
                                   "[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n"
                                   "[RCPT <b@x.org>]\n250 2.1.5 Ok\r\n");
}

static void
test_simple_commands(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    drv_check(&p,
              (const char *const[]){"NOOP\r\nnoop whatever\r\nRSET\r\nHELP\r\nVRFY\r\n"
                                    "VRFY postmaster\r\nEXPN list\r\nTURN\r\nFOO bar\r\n\r\n"
                                    "MAILX FROM:<a@b.org>\r\nQuit\r\nNOOP\r\n",
                                    NULL},
              BANNER "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
                     "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY "
                     "ETRN STARTTLS AUTH ATRN\r\n"
                     "501 5.5.4 Syntax: VRFY address\r\n"
                     "252 2.5.2 Cannot VRFY user, but will accept message and attempt "
                     "delivery\r\n"
                     "502 5.5.1 EXPN not supported\r\n"
                     "502 5.5.1 TURN not supported\r\n"
                     "500 5.5.1 Command unrecognized\r\n"
                     "500 5.5.1 Command unrecognized\r\n"
                     "500 5.5.1 Command unrecognized\r\n"
                     "221 2.0.0 Bye\r\n[CLOSE]\n");
}

static void
test_max_recipients(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    p.max_recipients = 2;
    drv_check(&p,
              (const char *const[]){"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.org>\r\n"
                                    "RCPT TO:<deny@x.org>\r\nRCPT TO:<b@x.org>\r\n"
                                    "RCPT TO:<c@x.org>\r\n",
                                    NULL},
              BANNER EHLO_STARTTLS "[MAIL <>]\n250 2.1.0 Ok\r\n"
                                   "[RCPT <a@x.org>]\n250 2.1.5 Ok\r\n"
                                   "[RCPT <deny@x.org>]\n550 5.7.1 relay denied\r\n"
                                   "[RCPT <b@x.org>]\n250 2.1.5 Ok\r\n"
                                   "452 4.5.3 Too many recipients\r\n");
}

/* 10 unknown or malformed commands: 421 and close. */
static void
test_error_limit(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    char *in = drv_fmt("%s%s%s", "EHLO c\r\nXX1\r\nMAIL FROM:a@b\r\nNOOP\r\n",
                       "XX\r\nXX\r\nXX\r\nXX\r\nXX\r\nXX\r\n", "XX\r\nXX\r\nNOOP\r\n");
    char *want = drv_fmt("%s%s%s%s%s", BANNER EHLO_STARTTLS, "500 5.5.1 Command unrecognized\r\n",
                         "501 5.5.4 Syntax: MAIL FROM:<address>\r\n250 2.0.0 Ok\r\n",
                         "500 5.5.1 Command unrecognized\r\n500 5.5.1 Command unrecognized\r\n"
                         "500 5.5.1 Command unrecognized\r\n500 5.5.1 Command unrecognized\r\n"
                         "500 5.5.1 Command unrecognized\r\n500 5.5.1 Command unrecognized\r\n"
                         "500 5.5.1 Command unrecognized\r\n500 5.5.1 Command unrecognized\r\n",
                         "421 4.7.0 Too many errors, closing connection\r\n[CLOSE]\n");
    drv_check(&p, (const char *const[]){in, NULL}, want);
    free(in);
    free(want);
}

/* 20 refused recipients: 421 and close. */
static void
test_refused_limit(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    char in[2048] = "EHLO c\r\nMAIL FROM:<a@x.org>\r\n";
    char want[4096] = BANNER EHLO_STARTTLS "[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n";
    for (int i = 0; i < 21; i++) {
        strcat(in, i % 2 ? "RCPT TO:<deny@y.org>\r\n" : "RCPT TO:<temp@y.org>\r\n");
        if (i < 20)
            strcat(want, i % 2 ? "[RCPT <deny@y.org>]\n550 5.7.1 relay denied\r\n"
                               : "[RCPT <temp@y.org>]\n451 4.3.0 try again later\r\n");
    }
    strcat(want, "421 4.7.0 Too many refused recipients, closing connection\r\n[CLOSE]\n");
    drv_check(&p, (const char *const[]){in, NULL}, want);

    struct drv d;
    drv_init(&d, &p, true);
    drv_feed_str(&d, "EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<deny@y.org>\r\n");
    assert_int_equal(smtp_in_refused_count(d.m), 1);
    drv_fini(&d);
}

/* Over-long command lines of each kind; the limits include the CRLF. */
static void
test_line_limits(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    /* "NOOP " + pad + CRLF: 512 is fine, 513 is too long */
    char *noop512 = drv_line("NOOP ", 'x', 505, "\r\n");
    char *noop513 = drv_line("NOOP ", 'x', 506, "\r\n");
    /* MAIL 512+626 (trailing blanks are allowed), RCPT 512+500 */
    char *mail_ok = drv_line("MAIL FROM:<a@x.org>", ' ', 1138 - 21, "\r\n");
    char *mail_long = drv_line("MAIL FROM:<a@x.org>", ' ', 1139 - 21, "\r\n");
    char *rcpt_ok = drv_line("RCPT TO:<b@x.org>", ' ', 1012 - 19, "\r\n");
    char *rcpt_long = drv_line("RCPT TO:<b@x.org>", ' ', 1013 - 19, "\r\n");
    char *in = drv_fmt("EHLO c\r\n%s%s%s%s%s%sNOOP\r\n", noop512, noop513, mail_long, mail_ok,
                       rcpt_long, rcpt_ok);
    drv_check(&p, (const char *const[]){in, NULL},
              BANNER EHLO_STARTTLS "250 2.0.0 Ok\r\n500 5.5.2 Line too long\r\n"
                                   "500 5.5.2 Line too long\r\n"
                                   "[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n"
                                   "500 5.5.2 Line too long\r\n"
                                   "[RCPT <b@x.org>]\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n");
    free(in);
    /* A line far beyond the buffer is discarded as it comes. */
    char *huge = drv_line("NOOP ", 'y', 40000, "\r\nNOOP\r\n");
    drv_check(&p, (const char *const[]){huge, NULL},
              BANNER "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
    free(huge);
    free(noop512);
    free(noop513);
    free(mail_ok);
    free(mail_long);
    free(rcpt_ok);
    free(rcpt_long);
}

/* AUTH lines may be 12288 octets; longer ones get 500 5.5.6. */
static void
test_auth_line_limits(void **state)
{
    (void)state;
    struct smtp_in_params p = tls_params();
    /* "AUTH PLAIN " is 11 octets; base64 of 12276 octets is 4*4092 = too
     * long, so the payload is arbitrary valid-looking base64 */
    char *ok = drv_line("AUTH PLAIN ", 'A', 12288 - 13, "\r\n");
    char *too_long = drv_line("AUTH PLAIN ", 'A', 12288 - 12, "\r\n");
    char *resp_long = drv_line("", 'A', 12288 - 1, "\r\n");
    char *in = drv_fmt("EHLO c\r\n%s%sAUTH LOGIN\r\n%sNOOP\r\n", too_long, ok, resp_long);
    drv_check(&p, (const char *const[]){in, NULL},
              BANNER EHLO_TLS_AUTH "500 5.5.6 Authentication exchange line is too long\r\n"
                                   "501 5.5.2 Cannot decode the response\r\n"
                                   "334 VXNlcm5hbWU6\r\n"
                                   "500 5.5.6 Authentication exchange line is too long\r\n"
                                   "250 2.0.0 Ok\r\n");
    free(in);
    free(ok);
    free(too_long);
    free(resp_long);
}

/* Bare CR, bare LF or NUL in a command line: 500 5.5.2 and close. */
static void
test_bare_line_endings(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    const char *want =
        BANNER "250 2.0.0 Ok\r\n500 5.5.2 Bare CR, bare LF or NUL in command line\r\n"
               "[CLOSE]\n";
    drv_check(&p, (const char *const[]){"NOOP\r\nNOOP\nNOOP\r\n", NULL}, want);
    drv_check(&p, (const char *const[]){"NOOP\r\nNO\rOP\r\nNOOP\r\n", NULL}, want);
    drv_check(&p, (const char *const[]){"NOOP\r\n\nNOOP\r\n", NULL}, want);
    drv_check(&p, (const char *const[]){"NOOP\r\nNOOP\r\r\n", NULL}, want);
    struct drv d;
    drv_init(&d, &p, true);
    drv_feed(&d, "NOOP\r\nNO\0OP\r\nNOOP\r\n", 19);
    assert_string_equal(d.log, want);
    drv_fini(&d);
    /* a too-long line ending in a bare LF is closed too */
    char *in = drv_line("NOOP\r\nNOOP ", 'x', 600, "\nNOOP\r\n");
    drv_check(&p, (const char *const[]){in, NULL}, want);
    free(in);
    /* ... and so is one with a bare CR inside, near its start or its end,
     * in one piece or discarded as it arrives (split at every offset) */
    static const char *const heads[] = {"NOOP\r\nNO\rOP ", "NOOP\r\nNOOP "};
    static const char *const tails[] = {"\r\nNOOP\r\n", "y\rz\r\nNOOP\r\n"};
    for (int i = 0; i < 2; i++)
        for (size_t len = 600; len <= 5000; len += 4400) {
            in = drv_line(heads[i], 'x', len, tails[i]);
            drv_check(&p, (const char *const[]){in, NULL}, want);
            free(in);
        }
    /* a NUL in a too-long line, whole or in pieces */
    for (size_t len = 600; len <= 5000; len += 4400) {
        size_t n = 6 + len + 8;
        char *buf = malloc(n);
        assert_non_null(buf);
        memcpy(buf, "NOOP\r\n", 6);
        memset(buf + 6, 'x', len);
        buf[6 + len / 2] = '\0';
        memcpy(buf + 6 + len, "\r\nNOOP\r\n", 8);
        for (size_t step = 1; step <= n; step = step * 3 + 1) {
            drv_init(&d, &p, true);
            for (size_t off = 0; off < n; off += step)
                drv_feed(&d, buf + off, off + step <= n ? step : n - off);
            assert_string_equal(d.log, want);
            drv_fini(&d);
        }
        free(buf);
    }
}

/* MAIL+RCPT+RCPT+DATA in one read, answers given later: replies in order,
 * nothing runs ahead of a pending check. */
static void
test_pipelining(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    struct drv d;
    struct smtp_in_action a;
    drv_init(&d, &p, true);
    drv_feed_str(&d, "EHLO c\r\n");
    d.manual = true;
    d.len = 0;
    drv_feed_str(&d, "MAIL FROM:<a@x.org> SIZE=100 RET=HDRS ENVID=e1\r\n"
                     "RCPT TO:<b@x.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b@x.org\r\n"
                     "RCPT TO:<c@x.org>\r\nDATA\r\nline\r\n.\r\nNOOP\r\n");
    assert_string_equal(d.log, "[MAIL <a@x.org> SIZE=100 RET=HDRS ENVID=e1]\n");
    assert_false(smtp_in_next(d.m, &a));
    const struct smtp_in_mail *mail = smtp_in_mail(d.m);
    assert_non_null(mail);
    assert_string_equal(mail->sender, "a@x.org");
    assert_int_equal(smtp_in_result(d.m, 250, "2.1.0 Ok"), 0);
    assert_int_equal(smtp_in_result(d.m, 250, NULL), -EINVAL); /* nothing pending */
    drv_drain(&d);
    assert_non_null(
        strstr(d.log, "250 2.1.0 Ok\r\n[RCPT <b@x.org> NOTIFY=10 ORCPT=rfc822;b@x.org]\n"));
    assert_int_equal(smtp_in_result(d.m, 250, NULL), 0);
    drv_drain(&d);
    assert_int_equal(smtp_in_rcpt_count(d.m), 1);
    assert_int_equal(smtp_in_result(d.m, 550, "5.1.1 no such user"), 0);
    drv_drain(&d);
    assert_string_equal(d.log, "[MAIL <a@x.org> SIZE=100 RET=HDRS ENVID=e1]\n250 2.1.0 Ok\r\n"
                               "[RCPT <b@x.org> NOTIFY=10 ORCPT=rfc822;b@x.org]\n250 2.1.5 Ok\r\n"
                               "[RCPT <c@x.org>]\n550 5.1.1 no such user\r\n"
                               "[BEGIN]\n354 End data with <CR><LF>.<CR><LF>\r\n"
                               "[COMMIT size=6 prio=1 rcvd=0 body=line\\r\\n]\n");
    /* the envelope is there until COMMIT is answered */
    assert_int_equal(smtp_in_rcpt_count(d.m), 1);
    const struct smtp_in_rcpt *r = smtp_in_rcpt(d.m, 0);
    assert_string_equal(r->addr, "b@x.org");
    assert_int_equal(r->notify, SMTP_IN_NOTIFY_SUCCESS | SMTP_IN_NOTIFY_DELAY);
    assert_string_equal(r->orcpt, "rfc822;b@x.org");
    assert_null(smtp_in_rcpt(d.m, 1));
    assert_int_equal(smtp_in_mail(d.m)->ret, SMTP_IN_RET_HDRS);
    assert_string_equal(smtp_in_mail(d.m)->envid, "e1");
    assert_int_equal(smtp_in_result(d.m, 451, "4.3.0 storage failed\r\nX: y"), 0);
    drv_drain(&d);
    assert_non_null(strstr(d.log, "]\n451 4.3.0 storage failed  X: y\r\n250 2.0.0 Ok\r\n"));
    assert_null(smtp_in_mail(d.m));
    assert_int_equal(smtp_in_rcpt_count(d.m), 0);
    drv_fini(&d);
}

/* While a check is pending the machine takes no more than its bounded
 * buffer; the rest waits with the glue. */
static void
test_pending_backpressure(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    struct drv d;
    drv_init(&d, &p, true);
    drv_feed_str(&d, "EHLO c\r\n");
    d.manual = true;
    char *flood = drv_line("MAIL FROM:<a@x.org>\r\n", '\n', 100000, "");
    size_t n = smtp_in_feed(d.m, flood, strlen(flood));
    assert_true(n < strlen(flood));
    drv_drain(&d);
    /* the MAIL line itself was taken out of the buffer: room for 21 more */
    n += smtp_in_feed(d.m, flood + n, strlen(flood) - n);
    assert_int_equal(smtp_in_feed(d.m, flood + n, strlen(flood) - n), 0);
    assert_true(n <= 16384 + 21);
    assert_int_equal(smtp_in_result(d.m, 250, NULL), 0);
    drv_drain(&d);
    assert_true(d.closed); /* the bare LF that followed */
    free(flood);
    drv_fini(&d);
}

static void
test_result_codes(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    struct drv d;
    drv_init(&d, &p, true);
    d.manual = true;
    drv_feed_str(&d, "EHLO c\r\nMAIL FROM:<a@x.org>\r\n");
    assert_int_equal(smtp_in_result(d.m, 354, NULL), -EINVAL);
    assert_int_equal(smtp_in_result(d.m, 199, NULL), -EINVAL);
    assert_int_equal(smtp_in_result(d.m, 600, NULL), -EINVAL);
    assert_int_equal(smtp_in_result(d.m, 250, NULL), 0);
    drv_drain(&d);
    assert_non_null(strstr(d.log, "[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n"));
    drv_fini(&d);
}

static void
test_starttls(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    p.auth_available = true;
    /* the MAIL pipelined after STARTTLS is dropped; after the handshake
     * the session starts over (MAIL needs a new EHLO) */
    drv_check(&p,
              (const char *const[]){"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<x@evil.org>\r\n",
                                    "MAIL FROM:<a@x.org>\r\nEHLO c\r\nSTARTTLS\r\n", NULL},
              BANNER EHLO_STARTTLS "220 2.0.0 Ready to start TLS\r\n[STARTTLS]\n[TLS]\n"
                                   "503 5.5.1 Send HELO or EHLO first\r\n" EHLO_TLS_AUTH
                                   "503 5.5.1 TLS already active\r\n");
    p.tls_available = false;
    drv_check(&p, (const char *const[]){"EHLO c\r\nSTARTTLS\r\nSTARTTLS now\r\n", NULL},
              BANNER EHLO_HEAD "250 ETRN\r\n502 5.5.1 STARTTLS not available\r\n"
                               "502 5.5.1 STARTTLS not available\r\n");
    p.tls_available = true;
    drv_check(&p, (const char *const[]){"STARTTLS now\r\n", NULL},
              BANNER "501 5.5.4 Syntax: STARTTLS\r\n");

    struct drv d;
    drv_init(&d, &p, true);
    drv_feed_str(&d, "EHLO c\r\nMAIL FROM:<a@x.org>\r\nSTARTTLS\r\nRSET\r\n");
    assert_true(d.tls_pending);
    assert_false(smtp_in_tls_active(d.m));
    /* input before the handshake completes is dropped */
    assert_int_equal(smtp_in_feed(d.m, "NOOP\r\n", 6), 6);
    drv_segment_end(&d);
    assert_true(smtp_in_tls_active(d.m));
    assert_null(smtp_in_mail(d.m));
    assert_null(smtp_in_helo(d.m));
    drv_feed_str(&d, "NOOP\r\n");
    assert_non_null(strstr(d.log, "[STARTTLS]\n[TLS]\n250 2.0.0 Ok\r\n"));
    drv_fini(&d);
}

static void
test_auth_refusals(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    drv_check(&p, (const char *const[]){"EHLO c\r\nAUTH PLAIN " PLAIN_OK "\r\n", NULL},
              BANNER EHLO_STARTTLS "502 5.5.1 AUTH not available\r\n");
    p.auth_available = true;
    drv_check(&p, (const char *const[]){"EHLO c\r\nAUTH PLAIN " PLAIN_OK "\r\n", NULL},
              BANNER EHLO_STARTTLS "530 5.7.0 Must issue a STARTTLS command first\r\n");
    p = tls_params();
    drv_check(&p,
              (const char *const[]){"AUTH PLAIN " PLAIN_OK "\r\nEHLO c\r\nAUTH CRAM-MD5\r\n"
                                    "AUTH\r\nAUTH PLAIN a b\r\nMAIL FROM:<a@x.org>\r\n"
                                    "AUTH PLAIN " PLAIN_OK "\r\n",
                                    NULL},
              BANNER "503 5.5.1 Send EHLO first\r\n" EHLO_TLS_AUTH
                     "504 5.5.4 Unrecognized authentication mechanism\r\n"
                     "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"
                     "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"
                     "[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n"
                     "503 5.5.1 AUTH not allowed during a mail transaction\r\n");
}

static void
test_auth_plain(void **state)
{
    (void)state;
    struct smtp_in_params p = tls_params();
    drv_check(&p,
              (const char *const[]){"EHLO c\r\nAUTH PLAIN " PLAIN_BAD "\r\n"
                                    "auth plain\r\n" PLAIN_OK "\r\nAUTH PLAIN " PLAIN_OK "\r\n",
                                    NULL},
              BANNER EHLO_TLS_AUTH "[AUTH alice:wrong]\n"
                                   "535 5.7.8 Authentication credentials invalid\r\n"
                                   "334 \r\n[AUTH alice:secret]\n"
                                   "235 2.7.0 Authentication successful\r\n"
                                   "503 5.5.1 Already authenticated\r\n");
    /* authzid equal to authcid is fine, another one is not; bad base64 */
    drv_check(&p,
              (const char *const[]){"EHLO c\r\n"
                                    "AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\n" /* bob/alice */
                                    "AUTH PLAIN YWxpY2UAYWxpY2UAc2VjcmV0\r\n" /* alice/alice */
                                    ,
                                    NULL},
              BANNER EHLO_TLS_AUTH "501 5.5.2 Malformed credentials\r\n[AUTH alice:secret]\n"
                                   "235 2.7.0 Authentication successful\r\n");
    drv_check(&p,
              (const char *const[]){"EHLO c\r\nAUTH PLAIN AGFsaWNl*\r\nAUTH PLAIN =\r\n"
                                    "AUTH PLAIN\r\n*\r\nNOOP\r\n",
                                    NULL},
              BANNER EHLO_TLS_AUTH "501 5.5.2 Cannot decode the response\r\n"
                                   "501 5.5.2 Malformed credentials\r\n334 \r\n"
                                   "501 5.7.0 Authentication cancelled\r\n250 2.0.0 Ok\r\n");
    struct drv d;
    drv_init(&d, &p, true);
    assert_null(smtp_in_user(d.m));
    drv_feed_str(&d, "EHLO c\r\nAUTH PLAIN " PLAIN_OK "\r\n");
    assert_string_equal(smtp_in_user(d.m), "alice");
    drv_fini(&d);
}

static void
test_auth_login(void **state)
{
    (void)state;
    struct smtp_in_params p = tls_params();
    /* YWxpY2U= "alice", c2VjcmV0 "secret", d3Jvbmc= "wrong" */
    drv_check(&p,
              (const char *const[]){"EHLO c\r\nAUTH LOGIN\r\nYWxpY2U=\r\nd3Jvbmc=\r\n"
                                    "AUTH LOGIN YWxpY2U=\r\n*\r\n"
                                    "AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n",
                                    NULL},
              BANNER EHLO_TLS_AUTH "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n[AUTH alice:wrong]\n"
                                   "535 5.7.8 Authentication credentials invalid\r\n"
                                   "334 UGFzc3dvcmQ6\r\n501 5.7.0 Authentication cancelled\r\n"
                                   "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n[AUTH alice:secret]\n"
                                   "235 2.7.0 Authentication successful\r\n");
    /* a user name with a control octet ("a\tb" = YQli) is refused */
    drv_check(&p, (const char *const[]){"EHLO c\r\nAUTH LOGIN YQli\r\n", NULL},
              BANNER EHLO_TLS_AUTH "501 5.5.2 Malformed credentials\r\n");
}

/* Three failed AUTH: 421 and close. */
static void
test_auth_failure_limit(void **state)
{
    (void)state;
    struct smtp_in_params p = tls_params();
    drv_check(&p,
              (const char *const[]){"EHLO c\r\nAUTH PLAIN " PLAIN_BAD "\r\nAUTH PLAIN " PLAIN_BAD
                                    "\r\nAUTH PLAIN " PLAIN_BAD "\r\nAUTH PLAIN " PLAIN_OK "\r\n",
                                    NULL},
              BANNER EHLO_TLS_AUTH
              "[AUTH alice:wrong]\n535 5.7.8 Authentication credentials invalid\r\n"
              "[AUTH alice:wrong]\n535 5.7.8 Authentication credentials invalid\r\n"
              "[AUTH alice:wrong]\n535 5.7.8 Authentication credentials invalid\r\n"
              "421 4.7.0 Too many authentication failures, closing connection\r\n[CLOSE]\n");
    /* a temporary failure (454) does not count */
    struct drv d;
    drv_init(&d, &p, true);
    d.manual = true;
    for (int i = 0; i < 4; i++) {
        drv_feed_str(&d, "EHLO c\r\nAUTH PLAIN " PLAIN_OK "\r\n");
        assert_int_equal(smtp_in_result(d.m, 454, "4.7.0 Temporary authentication failure"), 0);
        drv_drain(&d);
    }
    assert_false(d.closed);
    drv_fini(&d);
}

static void
test_etrn(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    drv_check(&p,
              (const char *const[]){"ETRN example.org\r\nEHLO c\r\nETRN\r\nETRN #queue\r\n"
                                    "ETRN bad..domain\r\nETRN example.org\r\n"
                                    "ETRN @example.org\r\nMAIL FROM:<a@x.org>\r\n"
                                    "ETRN example.org\r\n",
                                    NULL},
              BANNER "503 5.5.1 Send HELO or EHLO first\r\n" EHLO_STARTTLS
                     "501 5.5.4 Syntax: ETRN domain\r\n"
                     "501 5.5.4 ETRN #queue is not supported\r\n"
                     "501 5.5.4 Syntax: ETRN domain\r\n"
                     "[ETRN example.org]\n250 2.0.0 Ok\r\n"
                     "[ETRN @example.org]\n250 2.0.0 Ok\r\n"
                     "[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n"
                     "503 5.5.1 ETRN not allowed during a mail transaction\r\n");
}

static void
test_atrn(void **state)
{
    (void)state;
    struct smtp_in_params p = tls_params();
    drv_check(&p, (const char *const[]){"EHLO c\r\nAUTH PLAIN " PLAIN_OK "\r\nATRN\r\n", NULL},
              BANNER EHLO_TLS_AUTH "[AUTH alice:secret]\n235 2.7.0 Authentication successful\r\n"
                                   "502 5.5.1 ATRN not available\r\n");
    p.odmr = true;
    const char *ehlo = EHLO_HEAD "250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n250 ATRN\r\n";
    char *want = drv_fmt("%s%s%s", BANNER, ehlo,
                         "530 5.7.0 Authentication required\r\n[AUTH alice:secret]\n"
                         "235 2.7.0 Authentication successful\r\n"
                         "501 5.5.4 Syntax: ATRN [domain[,domain...]]\r\n"
                         "501 5.5.4 Syntax: ATRN [domain[,domain...]]\r\n"
                         "[ATRN a.example,b.example]\n"
                         "250 2.0.0 Ok now reversing the connection\r\n");
    drv_check(&p,
              (const char *const[]){"EHLO c\r\nATRN\r\nAUTH PLAIN " PLAIN_OK "\r\n"
                                    "ATRN a.example,\r\nATRN a..b\r\n"
                                    "ATRN a.example,b.example\r\n",
                                    NULL},
              want);
    free(want);
    /* after a 2xx the machine takes nothing more: the glue is the client */
    struct drv d;
    drv_init(&d, &p, true);
    drv_feed_str(&d, "EHLO c\r\nAUTH PLAIN " PLAIN_OK "\r\nATRN\r\n");
    assert_non_null(strstr(d.log, "[ATRN ]\n250 2.0.0 Ok now reversing the connection\r\n"));
    assert_int_equal(smtp_in_feed(d.m, "220 hi\r\n", 8), 0);
    drv_fini(&d);
    /* a refusal keeps the session going */
    drv_init(&d, &p, true);
    drv_feed_str(&d, "EHLO c\r\nAUTH PLAIN " PLAIN_OK "\r\n");
    d.manual = true;
    drv_feed_str(&d, "ATRN z.example\r\nNOOP\r\n");
    assert_int_equal(smtp_in_result(d.m, 453, "4.3.0 You have no mail"), 0);
    drv_drain(&d);
    assert_non_null(
        strstr(d.log, "[ATRN z.example]\n453 4.3.0 You have no mail\r\n250 2.0.0 Ok\r\n"));
    drv_fini(&d);
}

static void
test_shutdown(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    struct drv d;
    drv_init(&d, &p, true);
    drv_feed_str(&d, "EHLO c\r\n");
    smtp_in_shutdown(d.m);
    drv_feed_str(&d, "NOOP\r\nNOOP\r\n");
    assert_non_null(strstr(d.log, "\r\n421 4.3.2 shutting down\r\n[CLOSE]\n"));
    assert_null(strstr(d.log, "250 2.0.0 Ok"));
    assert_int_equal(smtp_in_feed(d.m, "NOOP\r\n", 6), 6); /* dropped */
    drv_drain(&d);
    drv_fini(&d);
}

static void
test_greet_delay(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    p.greet_delay = true;
    struct drv d;
    drv_init(&d, &p, false);
    drv_feed_str(&d, "EHLO c\r\n");
    assert_string_equal(d.log, "554 5.5.1 Protocol error: client spoke before the greeting\r\n"
                               "[CLOSE]\n");
    smtp_in_greet(d.m);
    drv_drain(&d);
    drv_fini(&d);
    /* feeding just before the greeting is due (no next() in between) */
    drv_init(&d, &p, false);
    assert_int_equal(smtp_in_feed(d.m, "EHLO c\r\n", 8), 8);
    smtp_in_greet(d.m);
    drv_drain(&d);
    assert_string_equal(d.log, "554 5.5.1 Protocol error: client spoke before the greeting\r\n"
                               "[CLOSE]\n");
    drv_fini(&d);
    /* a patient client */
    drv_init(&d, &p, false);
    drv_drain(&d);
    smtp_in_greet(d.m);
    drv_feed_str(&d, "NOOP\r\n");
    assert_string_equal(d.log, BANNER "250 2.0.0 Ok\r\n");
    drv_fini(&d);
    /* without greet_delay input waits for the banner */
    p.greet_delay = false;
    drv_init(&d, &p, false);
    drv_feed_str(&d, "NOOP\r\n");
    assert_string_equal(d.log, "");
    smtp_in_greet(d.m);
    drv_drain(&d);
    assert_string_equal(d.log, BANNER "250 2.0.0 Ok\r\n");
    drv_fini(&d);
}

/* Random transcripts from a vocabulary of commands, body lines and bad
 * line endings: no crash, no leak, and the same result however split. */
static void
test_random_transcripts(void **state)
{
    (void)state;
    static const char *const vocab[] = {
        "EHLO c\r\n",
        "HELO c\r\n",
        "MAIL FROM:<a@x.org>\r\n",
        "MAIL FROM:<bad@x.org>\r\n",
        "RCPT TO:<b@x.org>\r\n",
        "RCPT TO:<deny@x.org>\r\n",
        "DATA\r\n",
        "x\r\n",
        ".\r\n",
        "..\r\n",
        "\r\n",
        "\n",
        "\r",
        ".",
        "RSET\r\n",
        "NOOP\r\n",
        "AUTH PLAIN\r\n",
        "AUTH LOGIN\r\n",
        "YWxpY2U=\r\n",
        "c2VjcmV0\r\n",
        "*\r\n",
        "STARTTLS\r\n",
        "Importance: high\r\n",
        "Received: x\r\n",
        " folded\r\n",
        "QUIT\r\n",
        "ETRN x.org\r\n",
        "ATRN\r\n",
        "BDAT 1\r\n",
        "AUTH PLAIN " PLAIN_OK "\r\n",
    };
    uint32_t seed = 12345;
    for (int t = 0; t < 150; t++) {
        char in[512] = "";
        struct smtp_in_params p = t % 3 ? drv_params() : tls_params();
        p.max_message_size = t % 2 ? 10000 : 20;
        p.odmr = t % 5 == 0;
        while (strlen(in) < 300) {
            seed = seed * 1103515245u + 12345u;
            strcat(in, vocab[(seed >> 16) % (sizeof vocab / sizeof vocab[0])]);
        }
        drv_check(&p, (const char *const[]){in, NULL}, NULL);
    }
}

/* Freeing in every state leaks nothing (ASan checks). */
static void
test_free_anywhere(void **state)
{
    (void)state;
    struct smtp_in_params p = tls_params();
    const char *inputs[] = {
        "EHLO c\r\nAUTH LOGIN\r\nYWxpY2U=\r\n",
        "EHLO c\r\nAUTH PLAIN " PLAIN_OK "\r\n",
        "EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org> ORCPT=rfc822;b@x.org\r\n",
        "EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\nabc",
        "EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\nabc\r\n.\r\n",
        "NOOP " /* partial */,
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        for (int manual = 0; manual < 2; manual++) {
            struct drv d;
            drv_init(&d, &p, true);
            d.manual = manual;
            drv_feed_str(&d, inputs[i]);
            drv_fini(&d);
        }
    }
    smtp_in_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ehlo_keywords),
        cmocka_unit_test(test_helo),
        cmocka_unit_test(test_transaction),
        cmocka_unit_test(test_sequence_errors),
        cmocka_unit_test(test_refused_sender),
        cmocka_unit_test(test_simple_commands),
        cmocka_unit_test(test_max_recipients),
        cmocka_unit_test(test_error_limit),
        cmocka_unit_test(test_refused_limit),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_auth_line_limits),
        cmocka_unit_test(test_bare_line_endings),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_pending_backpressure),
        cmocka_unit_test(test_result_codes),
        cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_auth_refusals),
        cmocka_unit_test(test_auth_plain),
        cmocka_unit_test(test_auth_login),
        cmocka_unit_test(test_auth_failure_limit),
        cmocka_unit_test(test_etrn),
        cmocka_unit_test(test_atrn),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_greet_delay),
        cmocka_unit_test(test_random_transcripts),
        cmocka_unit_test(test_free_anywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
