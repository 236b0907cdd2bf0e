/* Unit tests for core/smtp_out, the SMTP client machine: scripted server
 * transcripts. Each transcript is a list of steps (server bytes, glue
 * calls); the machine's actions are written to a log (WRITE bytes as they
 * are, other actions as <TAGS>) that must match the expected text. Every
 * transcript is also replayed with each server chunk and body chunk split
 * at every byte offset, and byte by byte, with the same log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "core/smtp_out.h"

enum step_kind { FEED, SEND, BODY, BODY_LAST, TLS_OK, TLS_FAIL, QUIT, EOF_, TIMEOUT, END };

struct step {
    enum step_kind kind;
    const char *s;
    const struct smtp_out_msg *msg;
};

#define S(x)                                                                                       \
    {                                                                                              \
        FEED, x, NULL                                                                              \
    }
#define MSG(m)                                                                                     \
    {                                                                                              \
        SEND, NULL, m                                                                              \
    }

#define GREET "220 mx.contoso.com ESMTP\r\n"
#define EHLO "EHLO relay.example.org\r\n"
#define HELO "HELO relay.example.org\r\n"

static const struct smtp_out_params plain = {.helo_name = "relay.example.org", .use_ehlo = true};

static const struct smtp_out_rcpt one_rcpt[] = {{.address = "b@contoso.com"}};
static const struct smtp_out_msg msg1 = {
    .sender = "a@example.org", .rcpts = one_rcpt, .nrcpts = 1, .size = 1234};

static const struct smtp_out_rcpt three_rcpts[] = {
    {.address = "r1@contoso.com"}, {.address = "r2@contoso.com"}, {.address = "r3@contoso.com"}};
static const struct smtp_out_msg msg3 = {
    .sender = "a@example.org", .rcpts = three_rcpts, .nrcpts = 3, .size = 1234};

static const struct smtp_out_rcpt dsn_rcpts[] = {
    {.address = "b@contoso.com",
     .notify = SMTP_OUT_NOTIFY_SUCCESS | SMTP_OUT_NOTIFY_FAILURE,
     .orcpt = "rfc822;B@contoso.com"},
    {.address = "c@contoso.com", .notify = SMTP_OUT_NOTIFY_NEVER}};
static const struct smtp_out_msg msg_dsn = {.sender = "a@example.org",
                                            .rcpts = dsn_rcpts,
                                            .nrcpts = 2,
                                            .envid = "ENV+2B1",
                                            .ret = SMTP_OUT_RET_FULL,
                                            .size = 99,
                                            .body_8bit = true};

/* ---- the driver ------------------------------------------------------- */

static void
log_actions(struct smtp_out *m, struct util_buf *log)
{
    static const char *const tags[] = {[SMTP_OUT_START_TLS] = "<TLS>",
                                       [SMTP_OUT_READY] = "<READY>",
                                       [SMTP_OUT_BODY_WANTED] = "<BODY>"};
    struct smtp_out_act a;
    while (smtp_out_next(m, &a)) {
        if (a.type == SMTP_OUT_WRITE) {
            util_buf_append(log, a.data, a.len);
        } else if (a.type == SMTP_OUT_MESSAGE_DONE) {
            util_buf_puts(log, "<DONE");
            for (size_t i = 0; i < a.nresults; i++) {
                const struct smtp_out_result *r = &a.results[i];
                util_buf_printf(log, " %d%s%s%s[%s]", r->code, r->status[0] ? "/" : "", r->status,
                                r->relayed ? "+R" : "", r->text);
            }
            util_buf_puts(log, ">");
        } else if (a.type == SMTP_OUT_CLOSE) {
            util_buf_printf(log, "<CLOSE %s %d %s>", smtp_out_outcome_name(a.outcome), a.code,
                            a.text);
        } else {
            util_buf_puts(log, tags[a.type]);
        }
    }
}

/* Feed or stream s, split at offset k (0: byte by byte). */
static int
apply_chunks(struct smtp_out *m, const struct step *st, size_t k)
{
    size_t len = strlen(st->s), off = 0;
    int rc = 0;
    do {
        size_t n = k == 0 ? 1 : (off == 0 ? k : len - off);
        n = n > len - off ? len - off : n;
        bool last = off + n == len;
        if (st->kind == FEED)
            smtp_out_feed(m, st->s + off, n);
        else
            rc = smtp_out_body(m, st->s + off, n, st->kind == BODY_LAST && last);
        off += n;
    } while (off < len && rc == 0);
    return rc;
}

static int
apply(struct smtp_out *m, const struct step *st, size_t k)
{
    switch (st->kind) {
    case FEED:
    case BODY:
    case BODY_LAST:
        return apply_chunks(m, st, k);
    case SEND:
        return smtp_out_send(m, st->msg);
    case TLS_OK:
    case TLS_FAIL:
        return smtp_out_tls_done(m, st->kind == TLS_OK);
    case QUIT:
        return smtp_out_quit(m);
    case EOF_:
        smtp_out_eof(m);
        return 0;
    default:
        smtp_out_timeout(m);
        return 0;
    }
}

/* Run a transcript; the log is returned (the caller frees it). */
static char *
run(const struct smtp_out_params *p, const struct step *steps, size_t k)
{
    struct util_buf log = {0};
    struct smtp_out *m = smtp_out_new(p);
    assert_non_null(m);
    util_buf_puts(&log, "");
    for (const struct step *st = steps; st->kind != END; st++) {
        int rc = apply(m, st, k);
        if (rc != 0)
            util_buf_printf(&log, "<ERR %d>", rc);
        log_actions(m, &log);
    }
    smtp_out_free(m);
    return log.p;
}

static size_t
longest_chunk(const struct step *steps)
{
    size_t n = 0;
    for (const struct step *st = steps; st->kind != END; st++)
        if (st->s != NULL && strlen(st->s) > n)
            n = strlen(st->s);
    return n;
}

/* The transcript gives want whole, byte by byte, and split anywhere. */
static void
check(const struct smtp_out_params *p, const struct step *steps, const char *want)
{
    size_t n = longest_chunk(steps);
    for (size_t k = SIZE_MAX;; k = k == SIZE_MAX ? 0 : k + 1) {
        char *got = run(p, steps, k);
        bool same = strcmp(got, want) == 0;
        if (!same)
            print_error("split at %zu:\n got: %s\nwant: %s\n", k, got, want);
        free(got);
        if (!same)
            fail();
        if (k == n)
            break;
    }
}

/* ---- delivery ------------------------------------------------------------ */

static void
test_simple(void **state)
{
    (void)state;
    const struct step steps[] = {S(GREET),
                                 S("250 mx.contoso.com\r\n"),
                                 MSG(&msg1),
                                 S("250 2.1.0 ok\r\n"),
                                 S("250 2.1.5 ok\r\n"),
                                 S("354 go ahead\r\n"),
                                 {BODY_LAST, "Subject: x\r\n\r\nhello\r\n", NULL},
                                 S("250 2.0.0 queued as X\r\n"),
                                 {QUIT, NULL, NULL},
                                 {END, NULL, NULL}};
    check(&plain, steps,
          EHLO "<READY>"
               "MAIL FROM:<a@example.org>\r\n"
               "RCPT TO:<b@contoso.com>\r\n"
               "DATA\r\n"
               "<BODY>"
               "Subject: x\r\n\r\nhello\r\n.\r\n"
               "<DONE 250/2.0.0[250 2.0.0 queued as X]><READY>"
               "QUIT\r\n<CLOSE ok 0 >");
}

#define EHLO_PIPE                                                                                  \
    "250-mx.contoso.com\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 ENHANCEDSTATUSCODES\r\n"

static void
test_pipelining_mixed(void **state)
{
    (void)state;
    const struct step steps[] = {
        S(GREET),
        S(EHLO_PIPE),
        MSG(&msg3),
        S("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n451 4.3.0 try later\r\n"
          "354 go\r\n"),
        {BODY_LAST, "hi\r\n", NULL},
        S("250 2.0.0 ok\r\n"),
        {END, NULL, NULL}};
    check(&plain, steps,
          EHLO "<READY>"
               "MAIL FROM:<a@example.org> SIZE=1234\r\n"
               "RCPT TO:<r1@contoso.com>\r\nRCPT TO:<r2@contoso.com>\r\n"
               "RCPT TO:<r3@contoso.com>\r\nDATA\r\n"
               "<BODY>hi\r\n.\r\n"
               "<DONE 250/2.0.0[250 2.0.0 ok] 550/5.1.1[550 5.1.1 no such user] "
               "451/4.3.0[451 4.3.0 try later]><READY>");
}

static void
test_no_pipelining(void **state)
{
    (void)state;
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250 SIZE\r\n"),
                                 MSG(&msg3),
                                 S("250 ok\r\n"),
                                 S("550 5.1.1 no\r\n"),
                                 S("250 ok\r\n"),
                                 S("451 later\r\n"),
                                 S("354 go\r\n"),
                                 {BODY_LAST, "x", NULL},
                                 S("554 5.7.1 spam\r\n"),
                                 {END, NULL, NULL}};
    check(&plain, steps,
          EHLO "<READY>"
               "MAIL FROM:<a@example.org> SIZE=1234\r\n"
               "RCPT TO:<r1@contoso.com>\r\n"
               "RCPT TO:<r2@contoso.com>\r\n"
               "RCPT TO:<r3@contoso.com>\r\n"
               "DATA\r\n<BODY>x\r\n.\r\n"
               "<DONE 550/5.1.1[550 5.1.1 no] 554/5.7.1[554 5.7.1 spam] 451[451 later]><READY>");
}

static void
test_dsn_offered(void **state)
{
    (void)state;
    const struct step steps[] = {
        S(GREET),        S("250-mx\r\n250-DSN\r\n250-8BITMIME\r\n250 SIZE 0\r\n"),
        MSG(&msg_dsn),   S("250 ok\r\n"),
        S("250 ok\r\n"), S("250 ok\r\n"),
        S("354 go\r\n"), {BODY_LAST, "", NULL},
        S("250 ok\r\n"), {END, NULL, NULL}};
    check(&plain, steps,
          EHLO "<READY>"
               "MAIL FROM:<a@example.org> SIZE=99 BODY=8BITMIME RET=FULL ENVID=ENV+2B1\r\n"
               "RCPT TO:<b@contoso.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;B@contoso.com\r\n"
               "RCPT TO:<c@contoso.com> NOTIFY=NEVER\r\n"
               "DATA\r\n<BODY>.\r\n"
               "<DONE 250[250 ok] 250[250 ok]><READY>");
}

static void
test_dsn_not_offered(void **state)
{
    (void)state;
    const struct step steps[] = {S(GREET),         S("250 mx\r\n"),       MSG(&msg_dsn),
                                 S("250 ok\r\n"),  S("250 ok\r\n"),       S("250 ok\r\n"),
                                 S("354 go\r\n"),  {BODY_LAST, "", NULL}, S("250 ok\r\n"),
                                 {END, NULL, NULL}};
    /* No SIZE=, BODY=, RET, ENVID, NOTIFY or ORCPT; the NOTIFY=SUCCESS
     * recipient is reported "relayed". */
    check(&plain, steps,
          EHLO "<READY>"
               "MAIL FROM:<a@example.org>\r\n"
               "RCPT TO:<b@contoso.com>\r\n"
               "RCPT TO:<c@contoso.com>\r\n"
               "DATA\r\n<BODY>.\r\n"
               "<DONE 250+R[250 ok] 250[250 ok]><READY>");
}

static void
test_helo_mode(void **state)
{
    (void)state;
    struct smtp_out_params p = plain;
    p.use_ehlo = false;
    const struct step steps[] = {S(GREET),        S("250 mx\r\n"),    MSG(&msg_dsn),
                                 S("250 ok\r\n"), {EOF_, NULL, NULL}, {END, NULL, NULL}};
    check(&p, steps,
          HELO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\n"
               "<DONE 0[connection lost] 0[connection lost]>"
               "<CLOSE connection_lost 0 connection lost>");
}

static void
test_ehlo_refused(void **state)
{
    (void)state;
    /* 5xx to EHLO: HELO, and no extension even if the 5xx listed some. */
    const struct step fallback[] = {S(GREET),
                                    S("502-5.5.1 what\r\n502 PIPELINING\r\n"),
                                    S("250 mx\r\n"),
                                    MSG(&msg1),
                                    {END, NULL, NULL}};
    check(&plain, fallback, EHLO HELO "<READY>MAIL FROM:<a@example.org>\r\n");
    const struct step both[] = {
        S(GREET), S("500 no\r\n"), S("501 no either\r\n"), {END, NULL, NULL}};
    check(&plain, both, EHLO HELO "QUIT\r\n<CLOSE helo_failed 501 501 no either>");
    const struct step temp[] = {S(GREET), S("450 busy\r\n"), {END, NULL, NULL}};
    check(&plain, temp, EHLO "QUIT\r\n<CLOSE helo_failed 450 450 busy>");
}

static void
test_reuse_rset(void **state)
{
    (void)state;
    const struct step steps[] = {S(GREET),
                                 S("250 mx\r\n"),
                                 MSG(&msg1),
                                 S("250 ok\r\n"),
                                 S("550 no\r\n"),
                                 MSG(&msg1),
                                 S("250 2.0.0 flushed\r\n"),
                                 S("250 ok\r\n"),
                                 S("250 ok\r\n"),
                                 S("354 go\r\n"),
                                 {BODY_LAST, "x\r\n", NULL},
                                 S("250 ok\r\n"),
                                 MSG(&msg1),
                                 S("500 what\r\n"),
                                 {END, NULL, NULL}};
    check(&plain, steps,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\n"
               "<DONE 550[550 no]><READY>"
               "RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n"
               "<BODY>x\r\n.\r\n<DONE 250[250 ok]><READY>"
               "RSET\r\n<DONE 0[500 what]><CLOSE protocol_error 500 500 what>");
}

static void
test_reuse_pipelined(void **state)
{
    (void)state;
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250 PIPELINING\r\n"),
                                 MSG(&msg1),
                                 S("250 ok\r\n250 ok\r\n354 go\r\n"),
                                 {BODY_LAST, "x\r\n", NULL},
                                 S("250 ok\r\n"),
                                 MSG(&msg1),
                                 S("250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
                                 {BODY_LAST, "y\r\n", NULL},
                                 S("250 ok\r\n"),
                                 {QUIT, NULL, NULL},
                                 {END, NULL, NULL}};
    check(&plain, steps,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n"
               "<BODY>x\r\n.\r\n<DONE 250[250 ok]><READY>"
               "RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n"
               "<BODY>y\r\n.\r\n<DONE 250[250 ok]><READY>QUIT\r\n<CLOSE ok 0 >");
}

static void
test_mail_refused(void **state)
{
    (void)state;
    /* Without PIPELINING nothing follows a refused MAIL. */
    const struct step one[] = {
        S(GREET), S("250 mx\r\n"), MSG(&msg3), S("452 4.3.1 full\r\n"), {END, NULL, NULL}};
    check(&plain, one,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\n"
               "<DONE 452/4.3.1[452 4.3.1 full] 452/4.3.1[452 4.3.1 full] "
               "452/4.3.1[452 4.3.1 full]><READY>");
    /* Pipelined: the RCPT replies do not count, and a 354 gets a dot. */
    const struct step pipe[] = {
        S(GREET),        S("250-mx\r\n250 PIPELINING\r\n"),
        MSG(&msg1),      S("550 5.7.1 sender refused\r\n250 ok\r\n354 go\r\n"),
        S("250 ok\r\n"), {END, NULL, NULL}};
    check(&plain, pipe,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n"
               ".\r\n<DONE 550/5.7.1[550 5.7.1 sender refused]><READY>");
}

static void
test_all_rcpts_refused(void **state)
{
    (void)state;
    /* Without PIPELINING no DATA is sent. */
    const struct step one[] = {S(GREET),        S("250 mx\r\n"), MSG(&msg1),
                               S("250 ok\r\n"), S("550 no\r\n"), {END, NULL, NULL}};
    check(&plain, one,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\n"
               "<DONE 550[550 no]><READY>");
    /* Pipelined, a broken server answers DATA with 354: end it with a dot
     * at once (RFC 2920), the verdicts stand. */
    const struct step pipe[] = {S(GREET),
                                S("250-mx\r\n250 PIPELINING\r\n"),
                                MSG(&msg3),
                                S("250 ok\r\n550 a\r\n550 b\r\n450 c\r\n354 go\r\n"),
                                S("250 ok, empty message\r\n"),
                                MSG(&msg1),
                                {END, NULL, NULL}};
    check(&plain, pipe,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<r1@contoso.com>\r\n"
               "RCPT TO:<r2@contoso.com>\r\nRCPT TO:<r3@contoso.com>\r\nDATA\r\n"
               ".\r\n<DONE 550[550 a] 550[550 b] 450[450 c]><READY>"
               "RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n");
    /* The normal answer to DATA then is 554. */
    const struct step normal[] = {S(GREET),
                                  S("250-mx\r\n250 PIPELINING\r\n"),
                                  MSG(&msg1),
                                  S("250 ok\r\n550 a\r\n554 no valid recipients\r\n"),
                                  {END, NULL, NULL}};
    check(&plain, normal,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n"
               "<DONE 550[550 a]><READY>");
}

static void
test_data_refused(void **state)
{
    (void)state;
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250 PIPELINING\r\n"),
                                 MSG(&msg3),
                                 S("250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n451 4.3.0 later\r\n"),
                                 {END, NULL, NULL}};
    check(&plain, steps,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<r1@contoso.com>\r\n"
               "RCPT TO:<r2@contoso.com>\r\nRCPT TO:<r3@contoso.com>\r\nDATA\r\n"
               "<DONE 451/4.3.0[451 4.3.0 later] 550[550 no] 451/4.3.0[451 4.3.0 later]><READY>");
}

/* ---- STARTTLS ------------------------------------------------------------ */

static void
test_starttls_must(void **state)
{
    (void)state;
    struct smtp_out_params p = plain;
    p.starttls = SMTP_OUT_STARTTLS_MUST;
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250-SIZE 100\r\n250 STARTTLS\r\n"),
                                 S("220 2.0.0 ready\r\n"),
                                 {TLS_OK, NULL, NULL},
                                 S("250-mx\r\n250 PIPELINING\r\n"),
                                 MSG(&msg1),
                                 {END, NULL, NULL}};
    check(&p, steps,
          EHLO "STARTTLS\r\n<TLS>" EHLO "<READY>"
               "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n");
}

static void
test_starttls_not_offered(void **state)
{
    (void)state;
    struct smtp_out_params p = plain;
    const struct step steps[] = {
        S(GREET), S("250-mx\r\n250 PIPELINING\r\n"), MSG(&msg1), {END, NULL, NULL}};
    p.starttls = SMTP_OUT_STARTTLS_MUST;
    check(&p, steps,
          EHLO "QUIT\r\n<CLOSE tls_not_offered 0 TLS required but not offered>"
               "<ERR -22>");
    p.starttls = SMTP_OUT_STARTTLS_IF_OFFERED;
    check(&p, steps,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n");
    /* HELO mode has no STARTTLS at all. */
    p.starttls = SMTP_OUT_STARTTLS_MUST;
    p.use_ehlo = false;
    const struct step helo[] = {S(GREET), S("250 mx\r\n"), {END, NULL, NULL}};
    check(&p, helo, HELO "QUIT\r\n<CLOSE tls_not_offered 0 TLS required but not offered>");
}

static void
test_starttls_454(void **state)
{
    (void)state;
    struct smtp_out_params p = plain;
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250 STARTTLS\r\n"),
                                 S("454 4.7.0 TLS not available\r\n"),
                                 MSG(&msg1),
                                 {END, NULL, NULL}};
    p.starttls = SMTP_OUT_STARTTLS_IF_OFFERED;
    check(&p, steps, EHLO "STARTTLS\r\n<READY>MAIL FROM:<a@example.org>\r\n");
    p.starttls = SMTP_OUT_STARTTLS_MUST;
    check(&p, steps,
          EHLO "STARTTLS\r\nQUIT\r\n"
               "<CLOSE tls_refused 454 454 4.7.0 TLS not available><ERR -22>");
    p.starttls = SMTP_OUT_STARTTLS_NEVER;
    check(&p, steps, EHLO "<READY><CLOSE protocol_error 0 unexpected reply><ERR -22>");
}

static void
test_starttls_handshake_failed(void **state)
{
    (void)state;
    struct smtp_out_params p = plain;
    p.starttls = SMTP_OUT_STARTTLS_IF_OFFERED;
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250 STARTTLS\r\n"),
                                 S("220 go\r\n"),
                                 {TLS_FAIL, NULL, NULL},
                                 {END, NULL, NULL}};
    check(&p, steps, EHLO "STARTTLS\r\n<TLS><CLOSE tls_failed 0 TLS handshake failed>");
}

static void
test_starttls_discards_plaintext(void **state)
{
    (void)state;
    struct smtp_out_params p = plain;
    p.starttls = SMTP_OUT_STARTTLS_MUST;
    /* A man in the middle appends replies after the 220 and before the
     * handshake; none of them may count after it. */
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250 STARTTLS\r\n"),
                                 S("220 go\r\n250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n25"),
                                 S("0 injected\r\n421 injected\r\n"),
                                 {TLS_OK, NULL, NULL},
                                 S("250 mx\r\n"),
                                 MSG(&msg1),
                                 {END, NULL, NULL}};
    check(&p, steps, EHLO "STARTTLS\r\n<TLS>" EHLO "<READY>MAIL FROM:<a@example.org>\r\n");
    struct smtp_out *m = smtp_out_new(&p);
    for (const struct step *st = steps; st->kind != SEND; st++) {
        apply(m, st, SIZE_MAX);
        struct smtp_out_act a;
        while (smtp_out_next(m, &a))
            ;
    }
    assert_int_equal(smtp_out_extensions(m), 0);
    smtp_out_free(m);
}

/* ---- AUTH ---------------------------------------------------------------- */

static const struct smtp_out_params auth_tls = {.helo_name = "relay.example.org",
                                                .use_ehlo = true,
                                                .starttls = SMTP_OUT_STARTTLS_MUST,
                                                .auth_user = "user",
                                                .auth_pass = "secret"};

static void
test_auth_plain(void **state)
{
    (void)state;
    /* AUTH offered before TLS is not used there. */
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"),
                                 S("220 go\r\n"),
                                 {TLS_OK, NULL, NULL},
                                 S("250-mx\r\n250 AUTH LOGIN PLAIN\r\n"),
                                 S("235 2.7.0 ok\r\n"),
                                 {END, NULL, NULL}};
    check(&auth_tls, steps, EHLO "STARTTLS\r\n<TLS>" EHLO "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n<READY>");
}

/* The ATRN turnaround (RFC 2645): TLS is on from the start, so an offered
 * STARTTLS is never used, whatever the policy would say, and the message
 * goes out at once. */
static void
test_tls_from_the_start(void **state)
{
    (void)state;
    struct smtp_out_params p = plain;
    p.tls_active = true;
    p.starttls = SMTP_OUT_STARTTLS_IF_OFFERED;
    const struct step steps[] = {S(GREET),
                                 S("250-mx.contoso.com\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
                                 MSG(&msg1),
                                 S("250 2.1.0 ok\r\n"),
                                 S("250 2.1.5 ok\r\n"),
                                 S("354 go ahead\r\n"),
                                 {BODY_LAST, "hi\r\n", NULL},
                                 S("250 2.0.0 ok\r\n"),
                                 {QUIT, NULL, NULL},
                                 {END, NULL, NULL}};
    const char *want = EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\n"
                            "DATA\r\n<BODY>hi\r\n.\r\n<DONE 250/2.0.0[250 2.0.0 ok]><READY>"
                            "QUIT\r\n<CLOSE ok 0 >";
    check(&p, steps, want);
    p.starttls = SMTP_OUT_STARTTLS_MUST; /* a MUST is met by the TLS already on */
    check(&p, steps, want);
}

static void
test_auth_login(void **state)
{
    (void)state;
    struct smtp_out_params p = auth_tls;
    p.tls_active = true;
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250-STARTTLS\r\n250 AUTH=LOGIN\r\n"),
                                 S("334 VXNlcm5hbWU6\r\n"),
                                 S("334 UGFzc3dvcmQ6\r\n"),
                                 S("235 ok\r\n"),
                                 {END, NULL, NULL}};
    check(&p, steps, EHLO "AUTH LOGIN\r\ndXNlcg==\r\nc2VjcmV0\r\n<READY>");
}

static void
test_auth_failures(void **state)
{
    (void)state;
    struct smtp_out_params p = auth_tls;
    p.tls_active = true;
    const struct step refused[] = {S(GREET),
                                   S("250-mx\r\n250 AUTH PLAIN\r\n"),
                                   S("535 5.7.8 bad credentials\r\n"),
                                   {END, NULL, NULL}};
    check(&p, refused,
          EHLO "AUTH PLAIN AHVzZXIAc2VjcmV0\r\nQUIT\r\n"
               "<CLOSE auth_failed 535 535 5.7.8 bad credentials>");
    const struct step temp[] = {
        S(GREET), S("250-mx\r\n250 AUTH LOGIN\r\n"), S("454 4.7.0 no\r\n"), {END, NULL, NULL}};
    check(&p, temp, EHLO "AUTH LOGIN\r\nQUIT\r\n<CLOSE auth_failed 454 454 4.7.0 no>");
    const struct step none[] = {S(GREET), S("250-mx\r\n250 AUTH CRAM-MD5\r\n"), {END, NULL, NULL}};
    check(&p, none, EHLO "QUIT\r\n<CLOSE auth_failed 0 AUTH PLAIN or LOGIN not offered>");
    /* Credentials but no TLS (opportunistic, not offered): never in clear. */
    p.tls_active = false;
    p.starttls = SMTP_OUT_STARTTLS_IF_OFFERED;
    const struct step clear[] = {S(GREET), S("250-mx\r\n250 AUTH PLAIN\r\n"), {END, NULL, NULL}};
    check(&p, clear, EHLO "QUIT\r\n<CLOSE auth_failed 0 AUTH is used only inside TLS>");
}

/* ---- server trouble ------------------------------------------------------ */

static void
test_greeting_refused(void **state)
{
    (void)state;
    const struct step s554[] = {S("554 5.7.1 go away\r\n"), {END, NULL, NULL}};
    check(&plain, s554, "QUIT\r\n<CLOSE greeting_failed 554 554 5.7.1 go away>");
    const struct step s450[] = {S("450-busy\r\n450 really\r\n"), {END, NULL, NULL}};
    check(&plain, s450, "QUIT\r\n<CLOSE greeting_failed 450 450 busy really>");
    const struct step s421[] = {S("421 4.3.2 not now\r\n"), {END, NULL, NULL}};
    check(&plain, s421, "<CLOSE server_shutdown 421 421 4.3.2 not now>");
    const struct step multi[] = {S("220-hello\r\n220-there\r\n220 ESMTP\r\n"), {END, NULL, NULL}};
    check(&plain, multi, EHLO);
}

static void
test_421_mid_session(void **state)
{
    (void)state;
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250 PIPELINING\r\n"),
                                 MSG(&msg3),
                                 S("250 ok\r\n550 5.1.1 no\r\n250 ok\r\n"),
                                 S("421 4.3.2 shutting down\r\n"),
                                 {END, NULL, NULL}};
    check(&plain, steps,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<r1@contoso.com>\r\n"
               "RCPT TO:<r2@contoso.com>\r\nRCPT TO:<r3@contoso.com>\r\nDATA\r\n"
               "<DONE 550/5.1.1[550 5.1.1 no] 421/4.3.2[421 4.3.2 shutting down] "
               "421/4.3.2[421 4.3.2 shutting down]>"
               "<CLOSE server_shutdown 421 421 4.3.2 shutting down>");
    /* While idle, and in the middle of the body. */
    const struct step idle[] = {S(GREET), S("250 mx\r\n"), S("421 bye\r\n"), {END, NULL, NULL}};
    check(&plain, idle, EHLO "<READY><CLOSE server_shutdown 421 421 bye>");
    const struct step body[] = {S(GREET),
                                S("250 mx\r\n"),
                                MSG(&msg1),
                                S("250 ok\r\n"),
                                S("250 ok\r\n"),
                                S("354 go\r\n"),
                                {BODY, "abc", NULL},
                                S("421 bye\r\n"),
                                {BODY_LAST, "d", NULL},
                                {END, NULL, NULL}};
    check(&plain, body,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n"
               "<BODY>abc<DONE 421[421 bye]><CLOSE server_shutdown 421 421 bye><ERR -22>");
}

static void
test_final_dot_replies(void **state)
{
    (void)state;
    const struct step steps[] = {S(GREET),
                                 S("250-mx\r\n250 PIPELINING\r\n"),
                                 MSG(&msg3),
                                 S("250 ok\r\n250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n"),
                                 {BODY_LAST, "x\r\n", NULL},
                                 S("552-5.3.4 too\r\n552 5.3.4 big\r\n"),
                                 {END, NULL, NULL}};
    check(&plain, steps,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<r1@contoso.com>\r\n"
               "RCPT TO:<r2@contoso.com>\r\nRCPT TO:<r3@contoso.com>\r\nDATA\r\n"
               "<BODY>x\r\n.\r\n"
               "<DONE 552/5.3.4[552 5.3.4 too big] 552/5.3.4[552 5.3.4 too big] "
               "550/5.1.1[550 5.1.1 no]><READY>");
}

static void
test_eof_and_timeout(void **state)
{
    (void)state;
    const struct step greet[] = {{TIMEOUT, NULL, NULL}, {END, NULL, NULL}};
    check(&plain, greet, "<CLOSE timeout 0 timeout waiting for the greeting>");
    const struct step dot[] = {S(GREET),
                               S("250-mx\r\n250 PIPELINING\r\n"),
                               MSG(&msg1),
                               S("250 ok\r\n250 ok\r\n354 go\r\n"),
                               {BODY_LAST, "x\r\n", NULL},
                               {TIMEOUT, NULL, NULL},
                               {EOF_, NULL, NULL},
                               {END, NULL, NULL}};
    check(&plain, dot,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n"
               "<BODY>x\r\n.\r\n"
               "<DONE 0[timeout waiting for the reply to the final dot]>"
               "<CLOSE timeout 0 timeout waiting for the reply to the final dot>");
    const struct step lost[] = {S(GREET), S("250 m"), {EOF_, NULL, NULL}, {END, NULL, NULL}};
    check(&plain, lost, EHLO "<CLOSE connection_lost 0 connection lost>");
}

/* ---- the body ------------------------------------------------------------ */

static void
check_body(const struct step *body, const char *want_data)
{
    struct step steps[12] = {S(GREET),        S("250 mx\r\n"), MSG(&msg1),
                             S("250 ok\r\n"), S("250 ok\r\n"), S("354 go\r\n")};
    size_t n = 6;
    for (; body->kind != END; body++)
        steps[n++] = *body;
    steps[n] = (struct step){END, NULL, NULL};
    char want[512];
    snprintf(want, sizeof want,
             EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n"
                  "<BODY>%s",
             want_data);
    check(&plain, steps, want);
}

static void
test_dot_stuffing(void **state)
{
    (void)state;
    const struct step dots[] = {{BODY_LAST, ".\r\n..x\r\n.\r\nend", NULL}, {END, NULL, NULL}};
    check_body(dots, "..\r\n...x\r\n..\r\nend\r\n.\r\n");
    const struct step lf[] = {{BODY_LAST, "a\nb\n.\n", NULL}, {END, NULL, NULL}};
    check_body(lf, "a\r\nb\r\n..\r\n.\r\n");
    const struct step cr[] = {{BODY_LAST, "a\rb\r\r\n.c\r", NULL}, {END, NULL, NULL}};
    check_body(cr, "a\r\nb\r\n\r\n..c\r\n.\r\n");
    const struct step empty[] = {{BODY_LAST, "", NULL}, {END, NULL, NULL}};
    check_body(empty, ".\r\n");
    const struct step blank[] = {{BODY_LAST, "\r\n", NULL}, {END, NULL, NULL}};
    check_body(blank, "\r\n.\r\n");
    /* Chunks that end in a CR, or just before a dot. */
    const struct step chunks[] = {{BODY, "a\r", NULL},    {BODY, "\n", NULL},
                                  {BODY, ".b\r\n", NULL}, {BODY, "", NULL},
                                  {BODY_LAST, ".", NULL}, {END, NULL, NULL}};
    check_body(chunks, "a\r\n..b\r\n..\r\n.\r\n");
    /* A smuggling attempt in the stored body ("\n.\n") stays data. */
    const struct step smuggle[] = {{BODY_LAST, "x\n.\nMAIL FROM:<e@vil>\r\n", NULL},
                                   {END, NULL, NULL}};
    check_body(smuggle, "x\r\n..\r\nMAIL FROM:<e@vil>\r\n.\r\n");
}

/* ---- hostile replies ----------------------------------------------------- */

static char *
repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    struct util_buf b = {0};
    util_buf_puts(&b, head);
    for (size_t i = 0; i < n; i++)
        util_buf_puts(&b, unit);
    util_buf_puts(&b, tail);
    return b.p;
}

static void
test_long_lines(void **state)
{
    (void)state;
    /* 512 octets with CRLF pass; 513 and 600 do not. */
    char *ok = repeat("220 ", "x", 506, "\r\n");
    char *over = repeat("220 ", "x", 507, "\r\n");
    char *big = repeat("220 ", "x", 594, "\r\n");
    char *endless = repeat("220 ", "x", 5000, "");
    const struct step s_ok[] = {{FEED, ok, NULL}, {END, NULL, NULL}};
    check(&plain, s_ok, EHLO);
    const struct step s_over[] = {{FEED, over, NULL}, {END, NULL, NULL}};
    check(&plain, s_over, "<CLOSE protocol_error 0 reply line too long>");
    const struct step s_big[] = {S(GREET), {FEED, big, NULL}, {END, NULL, NULL}};
    check(&plain, s_big, EHLO "<CLOSE protocol_error 0 reply line too long>");
    const struct step s_endless[] = {{FEED, endless, NULL}, {END, NULL, NULL}};
    check(&plain, s_endless, "<CLOSE protocol_error 0 reply line too long>");
    free(ok);
    free(over);
    free(big);
    free(endless);
}

static void
test_many_lines(void **state)
{
    (void)state;
    char *hundred = repeat("", "250-x\r\n", 99, "250 x\r\n");
    char *flood = repeat("", "250-x\r\n", 10000, "250 x\r\n");
    const struct step s_ok[] = {S(GREET), {FEED, hundred, NULL}, {END, NULL, NULL}};
    check(&plain, s_ok, EHLO "<READY>");
    const struct step s_flood[] = {S(GREET), {FEED, flood, NULL}, {END, NULL, NULL}};
    check(&plain, s_flood, EHLO "<CLOSE protocol_error 0 reply with too many lines>");
    free(hundred);
    free(flood);
}

static void
test_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\n", "\r\n",   "2200 x\r\n", "199 x\r\n",   "620 x\r\n",
        "2x0 x\r\n",           "22\r\n", "220\tx\r\n", "\x01\x02\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const struct step steps[] = {S(bad[i]), {END, NULL, NULL}};
        check(&plain, steps, "<CLOSE protocol_error 0 malformed reply line>");
    }
    const struct step mismatch[] = {S(GREET), S("250-mx\r\n251 PIPELINING\r\n"), {END, NULL, NULL}};
    check(&plain, mismatch,
          EHLO "<CLOSE protocol_error 0 reply continuation line with another code>");
    /* Bare LF line ends and a code without text are fine. */
    const struct step lf[] = {S("220\n"), S("250-mx\n250 PIPELINING\n"), {END, NULL, NULL}};
    check(&plain, lf, EHLO "<READY>");
    /* A reply to DATA that is not 354, 4xx or 5xx; one nobody asked for. */
    const struct step data2xx[] = {S(GREET),         S("250 mx\r\n"), MSG(&msg1),
                                   S("250 ok\r\n"),  S("250 ok\r\n"), S("250 ok\r\n"),
                                   {END, NULL, NULL}};
    check(&plain, data2xx,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n"
               "<DONE 0[unexpected 2xx reply to DATA]>"
               "<CLOSE protocol_error 0 unexpected 2xx reply to DATA>");
    const struct step extra[] = {S(GREET), S("250 mx\r\n250 again\r\n"), {END, NULL, NULL}};
    check(&plain, extra, EHLO "<READY><CLOSE protocol_error 0 unexpected reply>");
}

static void
test_reply_text(void **state)
{
    (void)state;
    /* Control bytes and 8-bit bytes become '?', the text stays bounded. */
    const struct step ctl[] = {S("554 5.7.1 bad\x01\x7f\xc3\xa9 \"x\"\r\n"), {END, NULL, NULL}};
    check(&plain, ctl, "QUIT\r\n<CLOSE greeting_failed 554 554 5.7.1 bad???? \"x\">");
    char *lines = repeat("", "554-5.7.1 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", 40,
                         "554 5.7.1 end\r\n");
    struct smtp_out *m = smtp_out_new(&plain);
    smtp_out_feed(m, lines, strlen(lines));
    struct smtp_out_act a, close = {0};
    while (smtp_out_next(m, &a))
        if (a.type == SMTP_OUT_CLOSE)
            close = a;
    assert_int_equal(close.type, SMTP_OUT_CLOSE);
    assert_int_equal(strlen(close.text), 1024);
    assert_memory_equal(close.text, "554 5.7.1 xxxxxxxxx", 19);
    assert_null(strstr(close.text, "5.7.1 x 5.7.1")); /* the status is not repeated */
    assert_string_equal(close.text + 1021, "...");
    smtp_out_free(m);
    free(lines);
    /* An enhanced status only when it is well formed and of the same class. */
    const struct step st[] = {S(GREET),
                              S("250 mx\r\n"),
                              MSG(&msg3),
                              S("250 2.1.0\r\n"),
                              S("550 4.1.1 x\r\n"),
                              S("550 5.1.1234 x\r\n"),
                              S("550 5.1.10\r\n"),
                              {END, NULL, NULL}};
    check(&plain, st,
          EHLO "<READY>MAIL FROM:<a@example.org>\r\nRCPT TO:<r1@contoso.com>\r\n"
               "RCPT TO:<r2@contoso.com>\r\nRCPT TO:<r3@contoso.com>\r\n"
               "<DONE 550[550 4.1.1 x] 550[550 5.1.1234 x] 550/5.1.10[550 5.1.10]><READY>");
}

/* ---- the interface ------------------------------------------------------- */

static void
drain(struct smtp_out *m)
{
    struct smtp_out_act a;
    while (smtp_out_next(m, &a))
        ;
}

static void
test_api_misuse(void **state)
{
    (void)state;
    struct smtp_out_params p = plain;
    p.helo_name = "bad name";
    assert_null(smtp_out_new(&p));
    p.helo_name = "";
    assert_null(smtp_out_new(&p));
    p = plain;
    p.auth_user = "u";
    assert_null(smtp_out_new(&p));
    p.auth_user = NULL;
    p.max_line = 8;
    assert_null(smtp_out_new(&p));
    assert_null(smtp_out_new(NULL));
    smtp_out_free(NULL);
}

static void
test_send_misuse(void **state)
{
    (void)state;
    struct smtp_out *m = smtp_out_new(&plain);
    assert_int_equal(smtp_out_send(m, &msg1), -EINVAL);
    assert_int_equal(smtp_out_body(m, "x", 1, true), -EINVAL);
    assert_int_equal(smtp_out_tls_done(m, true), -EINVAL);
    assert_int_equal(smtp_out_quit(m), -EINVAL);
    smtp_out_feed(m, GREET "250 mx\r\n", strlen(GREET "250 mx\r\n"));
    assert_int_equal(smtp_out_send(m, &msg1), -EBUSY); /* READY not taken yet */
    drain(m);
    const struct smtp_out_rcpt inject[] = {{.address = "b@c.com>\r\nRCPT TO:<e@vil"}};
    struct smtp_out_msg bad = msg1;
    bad.rcpts = inject;
    assert_int_equal(smtp_out_send(m, &bad), -EINVAL);
    bad = msg1;
    bad.sender = "a@b\n";
    assert_int_equal(smtp_out_send(m, &bad), -EINVAL);
    bad = msg1;
    bad.envid = "a b";
    assert_int_equal(smtp_out_send(m, &bad), -EINVAL);
    bad = msg1;
    bad.nrcpts = 0;
    assert_int_equal(smtp_out_send(m, &bad), -EINVAL);
    const struct smtp_out_rcpt empty[] = {{.address = ""}};
    bad = msg1;
    bad.rcpts = empty;
    assert_int_equal(smtp_out_send(m, &bad), -EINVAL);
    assert_int_equal(smtp_out_send(m, &msg1), 0);
    smtp_out_free(m);
}

static void
test_waiting_and_info(void **state)
{
    (void)state;
    struct smtp_out_params p = plain;
    p.starttls = SMTP_OUT_STARTTLS_IF_OFFERED;
    struct smtp_out *m = smtp_out_new(&p);
    assert_int_equal(smtp_out_waiting(m), SMTP_OUT_WAIT_GREETING);
    smtp_out_feed(m, GREET, strlen(GREET));
    assert_int_equal(smtp_out_waiting(m), SMTP_OUT_WAIT_COMMAND);
    const char *ehlo = "250-mx\r\n250-STARTTLS\r\n250 SIZE 52428800\r\n";
    smtp_out_feed(m, ehlo, strlen(ehlo));
    assert_int_equal(smtp_out_size_limit(m), 52428800);
    assert_int_equal(smtp_out_extensions(m), SMTP_OUT_EXT_STARTTLS | SMTP_OUT_EXT_SIZE);
    smtp_out_feed(m, "220 go\r\n", 8);
    assert_int_equal(smtp_out_waiting(m), SMTP_OUT_WAIT_TLS);
    assert_int_equal(smtp_out_tls_done(m, true), 0);
    const char *ehlo2 = "250-mx\r\n250-pipelining\r\n250-dsn\r\n250-8bitmime\r\n"
                        "250 enhancedstatuscodes\r\n";
    smtp_out_feed(m, ehlo2, strlen(ehlo2));
    assert_int_equal(smtp_out_extensions(m), SMTP_OUT_EXT_PIPELINING | SMTP_OUT_EXT_DSN |
                                                 SMTP_OUT_EXT_8BITMIME |
                                                 SMTP_OUT_EXT_ENHANCEDSTATUSCODES);
    assert_int_equal(smtp_out_size_limit(m), 0);
    drain(m);
    assert_int_equal(smtp_out_waiting(m), SMTP_OUT_WAIT_NONE);
    assert_int_equal(smtp_out_send(m, &msg1), 0);
    assert_int_equal(smtp_out_waiting(m), SMTP_OUT_WAIT_COMMAND);
    smtp_out_feed(m, "250 a\r\n250 b\r\n354 c\r\n", 21);
    assert_int_equal(smtp_out_waiting(m), SMTP_OUT_WAIT_DATA_BLOCK);
    assert_int_equal(smtp_out_body(m, "x", 1, true), 0);
    assert_int_equal(smtp_out_waiting(m), SMTP_OUT_WAIT_DATA_END);
    smtp_out_free(m);
}

static void
test_after_close(void **state)
{
    (void)state;
    struct smtp_out *m = smtp_out_new(&plain);
    smtp_out_eof(m);
    assert_int_equal(smtp_out_waiting(m), SMTP_OUT_WAIT_NONE);
    smtp_out_feed(m, "250 late\r\n", 10); /* ignored after CLOSE */
    smtp_out_eof(m);
    smtp_out_timeout(m);
    struct smtp_out_act a;
    int closes = 0;
    while (smtp_out_next(m, &a))
        closes += a.type == SMTP_OUT_CLOSE;
    assert_int_equal(closes, 1);
    assert_string_equal(smtp_out_outcome_name(SMTP_OUT_AUTH_FAILED), "auth_failed");
    smtp_out_free(m);
}

static void
test_ehlo_size_stale_bytes(void **state)
{
    (void)state;
    /* SIZE at the very end of an LF-terminated line, after a longer line
     * whose digits are still in the buffer behind it. */
    struct smtp_out *m = smtp_out_new(&plain);
    const char *stale = GREET "250-abcdef99999\n250 SIZE 1\n";
    smtp_out_feed(m, stale, strlen(stale));
    assert_int_equal(smtp_out_size_limit(m), 1);
    smtp_out_free(m);
}

static void
test_result_stages(void **state)
{
    (void)state;
    const struct smtp_out_rcpt rc[] = {{.address = "r1@c.com", .notify = SMTP_OUT_NOTIFY_SUCCESS},
                                       {.address = "r2@c.com", .notify = SMTP_OUT_NOTIFY_SUCCESS},
                                       {.address = "r3@c.com"}};
    const struct smtp_out_msg msg = {.sender = "", .rcpts = rc, .nrcpts = 3};
    struct smtp_out *m = smtp_out_new(&plain);
    const char *s1 = GREET "250-mx\r\n250 PIPELINING\r\n";
    smtp_out_feed(m, s1, strlen(s1));
    drain(m);
    assert_int_equal(smtp_out_send(m, &msg), 0);
    struct smtp_out_act a;
    assert_true(smtp_out_next(m, &a));
    assert_int_equal(a.type, SMTP_OUT_WRITE);
    assert_memory_equal(a.data, "MAIL FROM:<>\r\n", 14);
    drain(m);
    const char *s2 = "250 ok\r\n550 5.1.1 no\r\n250 ok\r\n250 ok\r\n354 go\r\n";
    smtp_out_feed(m, s2, strlen(s2));
    drain(m);
    assert_int_equal(smtp_out_body(m, "\0", 1, true), 0); /* a NUL byte is data */
    assert_true(smtp_out_next(m, &a));
    assert_int_equal(a.len, 6);
    assert_memory_equal(a.data, "\0\r\n.\r\n", 6);
    smtp_out_feed(m, "250 2.0.0 ok\r\n", 14);
    assert_true(smtp_out_next(m, &a));
    assert_int_equal(a.type, SMTP_OUT_MESSAGE_DONE);
    assert_int_equal(a.nresults, 3);
    assert_int_equal(a.results[0].stage, SMTP_OUT_STAGE_RCPT);
    assert_false(a.results[0].relayed); /* refused: no "relayed" DSN */
    assert_string_equal(a.results[0].status, "5.1.1");
    assert_int_equal(a.results[1].stage, SMTP_OUT_STAGE_DOT);
    assert_true(a.results[1].relayed);
    assert_int_equal(a.results[2].stage, SMTP_OUT_STAGE_DOT);
    assert_false(a.results[2].relayed);
    assert_ptr_equal(a.results[1].text, a.results[2].text); /* one copy per reply */
    assert_true(smtp_out_next(m, &a));
    assert_int_equal(a.type, SMTP_OUT_READY);
    assert_false(smtp_out_next(m, &a));
    smtp_out_free(m);
}

static void
test_nul_in_reply(void **state)
{
    (void)state;
    struct smtp_out *m = smtp_out_new(&plain);
    smtp_out_feed(m, "554 a\0b\r\n", 9);
    struct smtp_out_act a;
    assert_true(smtp_out_next(m, &a));
    assert_int_equal(a.type, SMTP_OUT_WRITE);
    assert_true(smtp_out_next(m, &a));
    assert_int_equal(a.type, SMTP_OUT_CLOSE);
    assert_string_equal(a.text, "554 a?b");
    smtp_out_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_pipelining_mixed),
        cmocka_unit_test(test_no_pipelining),
        cmocka_unit_test(test_dsn_offered),
        cmocka_unit_test(test_dsn_not_offered),
        cmocka_unit_test(test_helo_mode),
        cmocka_unit_test(test_ehlo_refused),
        cmocka_unit_test(test_reuse_rset),
        cmocka_unit_test(test_reuse_pipelined),
        cmocka_unit_test(test_mail_refused),
        cmocka_unit_test(test_all_rcpts_refused),
        cmocka_unit_test(test_data_refused),
        cmocka_unit_test(test_starttls_must),
        cmocka_unit_test(test_starttls_not_offered),
        cmocka_unit_test(test_starttls_454),
        cmocka_unit_test(test_starttls_handshake_failed),
        cmocka_unit_test(test_starttls_discards_plaintext),
        cmocka_unit_test(test_auth_plain),
        cmocka_unit_test(test_tls_from_the_start),
        cmocka_unit_test(test_auth_login),
        cmocka_unit_test(test_auth_failures),
        cmocka_unit_test(test_greeting_refused),
        cmocka_unit_test(test_421_mid_session),
        cmocka_unit_test(test_final_dot_replies),
        cmocka_unit_test(test_eof_and_timeout),
        cmocka_unit_test(test_dot_stuffing),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_many_lines),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_reply_text),
        cmocka_unit_test(test_api_misuse),
        cmocka_unit_test(test_send_misuse),
        cmocka_unit_test(test_waiting_and_info),
        cmocka_unit_test(test_after_close),
        cmocka_unit_test(test_ehlo_size_stale_bytes),
        cmocka_unit_test(test_result_stages),
        cmocka_unit_test(test_nul_in_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
