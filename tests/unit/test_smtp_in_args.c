/* Unit tests for MAIL and RCPT arguments in core/smtp_in (core/smtp_in_args):
 * RFC 5321 Mailbox parsing (quoted local parts, source routes, address
 * literals, the second unquoted '@', length limits, <Postmaster>, the null
 * sender) and the ESMTP parameters SIZE, BODY, RET, ENVID, AUTH, NOTIFY and
 * ORCPT. Each case runs as a transcript, also split at every offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>

#include "core/smtp_in_args.h"
#include "tests/unit/test_smtp_in_drv.h"

#define E_ADDR "501 5.1.3 Bad address syntax\r\n"
#define E_LONG "501 5.1.3 Address too long\r\n"
#define E_VALUE "501 5.5.4 Bad parameter value\r\n"
#define E_UNKNOWN "555 5.5.4 Unsupported parameter\r\n"

struct arg_case {
    const char *arg;  /* after "MAIL " or "RCPT " */
    const char *want; /* the log of that command */
};

/* EHLO, MAIL FROM:<> and then "RCPT <arg>" (or just "MAIL <arg>"). */
static void
run_case(const struct smtp_in_params *p, bool rcpt, const struct arg_case *c)
{
    char *in = rcpt ? drv_fmt("EHLO c\r\nMAIL FROM:<>\r\nRCPT %s\r\n", c->arg)
                    : drv_fmt("EHLO c\r\nMAIL %s\r\n", c->arg);
    char *log = drv_run(p, (const char *const[]){in, NULL}, DRV_WHOLE, 0);
    const char *marker = rcpt ? "[MAIL <>]\n250 2.1.0 Ok\r\n" : "250 STARTTLS\r\n";
    const char *tail = strstr(log, marker);
    assert_non_null(tail);
    tail += strlen(marker);
    if (strcmp(tail, c->want) != 0)
        fail_msg("%s %s\n--- want ---\n%s--- got ---\n%s", rcpt ? "RCPT" : "MAIL", c->arg, c->want,
                 tail);
    drv_check(p, (const char *const[]){in, NULL}, log);
    free(log);
    free(in);
}

/* A domain of exactly n octets: labels of up to 50 "d", dot-separated. */
static char *
domain_of(size_t n)
{
    char *d = drv_repeat('d', n);
    for (size_t i = 50; i < n - 1; i += 51)
        d[i] = '.';
    return d;
}

static void
test_rcpt_addresses(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    const struct arg_case cases[] = {
        {"TO:<user@example.org>", "[RCPT <user@example.org>]\n250 2.1.5 Ok\r\n"},
        {"to:<User@Example.ORG>", "[RCPT <User@Example.ORG>]\n250 2.1.5 Ok\r\n"},
        {"TO: <u@x.org>", "[RCPT <u@x.org>]\n250 2.1.5 Ok\r\n"},
        {"TO:<\"john doe\"@x.org>", "[RCPT <\"john doe\"@x.org>]\n250 2.1.5 Ok\r\n"},
        {"TO:<\"a\\\"b@c\"@x.org>", "[RCPT <\"a\\\"b@c\"@x.org>]\n250 2.1.5 Ok\r\n"},
        {"TO:<u%v@x.org>", "[RCPT <u%v@x.org>]\n250 2.1.5 Ok\r\n"},
        {"TO:<a!b@x.org>", "[RCPT <a!b@x.org>]\n250 2.1.5 Ok\r\n"},
        {"TO:<@a.org,@b.org:u@c.org>", "[RCPT <u@c.org>]\n250 2.1.5 Ok\r\n"},
        {"TO:<@a.org:u@c.org>", "[RCPT <u@c.org>]\n250 2.1.5 Ok\r\n"},
        {"TO:<u@x.org.>", "[RCPT <u@x.org>]\n250 2.1.5 Ok\r\n"},
        {"TO:<u@[192.0.2.1]>", "[RCPT <u@[192.0.2.1]>]\n250 2.1.5 Ok\r\n"},
        {"TO:<Postmaster>", "[RCPT <postmaster@mx.example.org>]\n250 2.1.5 Ok\r\n"},
        {"TO:<POSTMASTER> NOTIFY=NEVER",
         "[RCPT <postmaster@mx.example.org> NOTIFY=1]\n250 2.1.5 Ok\r\n"},
        {"TO:<a@b@c.org>", E_ADDR},
        {"TO:<a@b.org@c.org>", E_ADDR},
        {"TO:<@a.org,b.org:u@c.org>", E_ADDR},
        {"TO:<@a.org:@b.org:u@c.org>", E_ADDR},
        {"TO:<a..b@x.org>", E_ADDR},
        {"TO:<.a@x.org>", E_ADDR},
        {"TO:<a.@x.org>", E_ADDR},
        {"TO:<a@-x.org>", E_ADDR},
        {"TO:<a@x-.org>", E_ADDR},
        {"TO:<a@x..org>", E_ADDR},
        {"TO:<a@x.org..>", E_ADDR},
        {"TO:<a@.x.org>", E_ADDR},
        {"TO:<a@[]>", E_ADDR},
        {"TO:<a@>", E_ADDR},
        {"TO:<@x.org>", E_ADDR},
        {"TO:<a@x.org", E_ADDR},
        {"TO:<a@x.org>x", E_ADDR},
        {"TO:<a b@x.org>", E_ADDR},
        {"TO:<\"open@x.org>", E_ADDR},
        {"TO:<\xc3\xa9@x.org>", E_ADDR},
        {"TO:<postmaster@>", E_ADDR},
        {"TO:<postmasterx>", E_ADDR},
        {"TO:<>", "501 5.1.3 Null recipient not allowed\r\n"},
        {"TO:b@x.org", "501 5.5.4 Syntax: RCPT TO:<address>\r\n"},
        {"<b@x.org>", "501 5.5.4 Syntax: RCPT TO:<address>\r\n"},
        {"TO:", "501 5.5.4 Syntax: RCPT TO:<address>\r\n"},
        {"", "501 5.5.4 Syntax: RCPT TO:<address>\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&p, true, &cases[i]);
}

/* Local part 64, domain 255, path 256 (brackets included). */
static void
test_length_limits(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    char *l64 = drv_repeat('l', 64), *l65 = drv_repeat('l', 65);
    char *d189 = domain_of(189), *d190 = domain_of(190), *d256 = domain_of(256);
    struct arg_case c;
    char *arg, *want;

    arg = drv_fmt("TO:<%s@x.org>", l64);
    want = drv_fmt("[RCPT <%s@x.org>]\n250 2.1.5 Ok\r\n", l64);
    c = (struct arg_case){arg, want};
    run_case(&p, true, &c);
    free(arg);
    free(want);

    arg = drv_fmt("TO:<%s@x.org>", l65);
    c = (struct arg_case){arg, E_LONG};
    run_case(&p, true, &c);
    free(arg);

    /* 2 + 64 + 1 + 189 = 256 */
    arg = drv_fmt("TO:<%s@%s>", l64, d189);
    want = drv_fmt("[RCPT <%s@%s>]\n250 2.1.5 Ok\r\n", l64, d189);
    c = (struct arg_case){arg, want};
    run_case(&p, true, &c);
    free(arg);
    free(want);

    arg = drv_fmt("TO:<%s@%s>", l64, d190);
    c = (struct arg_case){arg, E_LONG};
    run_case(&p, true, &c);
    free(arg);

    arg = drv_fmt("TO:<a@%s>", d256);
    c = (struct arg_case){arg, E_LONG};
    run_case(&p, true, &c);
    free(arg);

    /* a source route counts in the path */
    arg = drv_fmt("TO:<@%s:%s@x.org>", d189, l64);
    c = (struct arg_case){arg, E_LONG};
    run_case(&p, true, &c);
    free(arg);

    free(l64);
    free(l65);
    free(d189);
    free(d190);
    free(d256);
}

static void
test_rcpt_params(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    const struct arg_case cases[] = {
        {"TO:<a@x.org> NOTIFY=SUCCESS,FAILURE", "[RCPT <a@x.org> NOTIFY=6]\n250 2.1.5 Ok\r\n"},
        {"TO:<a@x.org> notify=failure,delay", "[RCPT <a@x.org> NOTIFY=12]\n250 2.1.5 Ok\r\n"},
        {"TO:<a@x.org> NOTIFY=NEVER", "[RCPT <a@x.org> NOTIFY=1]\n250 2.1.5 Ok\r\n"},
        {"TO:<a@x.org>  ORCPT=rfc822;A+40x.org   NOTIFY=DELAY",
         "[RCPT <a@x.org> NOTIFY=8 ORCPT=rfc822;A+40x.org]\n250 2.1.5 Ok\r\n"},
        {"TO:<a@x.org> NOTIFY=NEVER,SUCCESS", E_VALUE},
        {"TO:<a@x.org> NOTIFY=", E_VALUE},
        {"TO:<a@x.org> NOTIFY", E_VALUE},
        {"TO:<a@x.org> NOTIFY=SUCCESS,", E_VALUE},
        {"TO:<a@x.org> NOTIFY=SOMETIMES", E_VALUE},
        {"TO:<a@x.org> NOTIFY=DELAY NOTIFY=DELAY", "501 5.5.4 Duplicate parameter\r\n"},
        {"TO:<a@x.org> ORCPT=rfc822", E_VALUE},
        {"TO:<a@x.org> ORCPT=;a@x.org", E_VALUE},
        {"TO:<a@x.org> ORCPT=rfc822;", E_VALUE},
        {"TO:<a@x.org> ORCPT=rfc822;a+4", E_VALUE},
        {"TO:<a@x.org> ORCPT=rfc822;a+ZZ", E_VALUE},
        {"TO:<a@x.org> SIZE=10", E_UNKNOWN},
        {"TO:<a@x.org> X-FOO", E_UNKNOWN},
        {"TO:<a@x.org> =x", "501 5.5.4 Syntax: RCPT TO:<address>\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&p, true, &cases[i]);
}

static void
test_mail_args(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    char *envid100 = drv_line("FROM:<a@x.org> ENVID=", 'e', 100, "");
    char *envid101 = drv_line("FROM:<a@x.org> ENVID=", 'e', 101, "");
    char *envid100_log = drv_line("[MAIL <a@x.org> ENVID=", 'e', 100, "]\n250 2.1.0 Ok\r\n");
    const struct arg_case cases[] = {
        {"FROM:<>", "[MAIL <>]\n250 2.1.0 Ok\r\n"},
        {"from:<a@x.org>", "[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n"},
        {"FROM:<@r.org:a@x.org>", "[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n"},
        {"FROM:<a@[IPv6:2001:db8::1]>", "[MAIL <a@[IPv6:2001:db8::1]>]\n250 2.1.0 Ok\r\n"},
        {"FROM:<a@x.org> SIZE=100 BODY=8BITMIME RET=FULL ENVID=abc+2Bdef",
         "[MAIL <a@x.org> SIZE=100 BODY=8BITMIME RET=FULL ENVID=abc+2Bdef]\n250 2.1.0 Ok\r\n"},
        {"FROM:<a@x.org>  body=7bit  ret=hdrs  size=0",
         "[MAIL <a@x.org> SIZE=0 BODY=7BIT RET=HDRS]\n250 2.1.0 Ok\r\n"},
        {"FROM:<a@x.org> SIZE=10000", "[MAIL <a@x.org> SIZE=10000]\n250 2.1.0 Ok\r\n"},
        {"FROM:<a@x.org> SIZE=10001",
         "552 5.3.4 Message size exceeds fixed maximum message size\r\n"},
        {"FROM:<a@x.org> SIZE=18446744073709551616", E_VALUE},
        {"FROM:<a@x.org> SIZE=", E_VALUE},
        {"FROM:<a@x.org> SIZE=1k", E_VALUE},
        {"FROM:<a@x.org> SIZE=1 SIZE=1", "501 5.5.4 Duplicate parameter\r\n"},
        {"FROM:<a@x.org> BODY=BINARYMIME", E_VALUE},
        {"FROM:<a@x.org> RET=ALL", E_VALUE},
        {"FROM:<a@x.org> ENVID=a+zz", E_VALUE},
        {envid100, envid100_log},
        {envid101, E_VALUE},
        {"FROM:<a@x.org> SMTPUTF8", E_UNKNOWN},
        {"FROM:<a@x.org> AUTH=<>", E_UNKNOWN}, /* AUTH is not offered here */
        {"FROM:<a@x.org> NOTIFY=NEVER", E_UNKNOWN},
        {"FROM:<Postmaster>", E_ADDR},
        {"FROM:<a@b@x.org>", E_ADDR},
        {"FROM:a@x.org", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"},
        {"TO:<a@x.org>", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&p, false, &cases[i]);
    free(envid100);
    free(envid101);
    free(envid100_log);
}

/* AUTH= on MAIL is known where AUTH is offered (RFC 4954 §5). */
static void
test_mail_auth_param(void **state)
{
    (void)state;
    struct smtp_in_params p = drv_params();
    p.tls_active = true;
    p.auth_available = true;
    char *log = drv_run(
        &p, (const char *const[]){"EHLO c\r\nMAIL FROM:<a@x.org> AUTH=<>\r\n", NULL}, DRV_WHOLE, 0);
    assert_non_null(strstr(log, "[MAIL <a@x.org>]\n250 2.1.0 Ok\r\n"));
    free(log);
}

static void
test_domain_syntax(void **state)
{
    (void)state;
    assert_true(smtp_in_args_domain("example.org", 11));
    assert_true(smtp_in_args_domain("example.org.", 12));
    assert_true(smtp_in_args_domain("a-b.c", 5));
    assert_true(smtp_in_args_domain("localhost", 9));
    assert_false(smtp_in_args_domain("", 0));
    assert_false(smtp_in_args_domain(".", 1));
    assert_false(smtp_in_args_domain("a..b", 4));
    assert_false(smtp_in_args_domain("-a.b", 4));
    assert_false(smtp_in_args_domain("a_b.c", 5));
    assert_false(smtp_in_args_domain("a.b ", 4));
    char *d = domain_of(256);
    assert_false(smtp_in_args_domain(d, 256));
    assert_true(smtp_in_args_domain(d, 255 - (d[254] == '.' ? 1 : 0)));
    free(d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rcpt_addresses),  cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_rcpt_params),     cmocka_unit_test(test_mail_args),
        cmocka_unit_test(test_mail_auth_param), cmocka_unit_test(test_domain_syntax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
