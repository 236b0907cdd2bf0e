/*
 * A test driver for core/smtp_in, shared by the test_smtp_in*.c binaries.
 * It feeds a transcript (a list of client segments) to a machine, answers
 * every check automatically (so transcripts stay short), and writes what
 * the machine did into one text log: replies as sent, other actions as
 * "[...]\n" lines. After each segment a pending STARTTLS is completed
 * ("[TLS]\n"). The same transcript can be fed whole, split in two at any
 * byte offset, or byte by byte: the logs must be identical.
 *
 * Automatic answers: AUTH passes when the password is "secret"; MAIL fails
 * (550) when the sender contains "bad"; RCPT fails when the address
 * contains "deny" (550) or "temp" (451); COMMIT, ETRN and ATRN get 250.
 */
#ifndef BH_TESTS_UNIT_TEST_SMTP_IN_DRV_H
#define BH_TESTS_UNIT_TEST_SMTP_IN_DRV_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/smtp_in.h"

struct drv {
    struct smtp_in *m;
    char *log;
    size_t len, cap;
    char *body;
    size_t blen, bcap;
    bool manual;      /* leave checks to the test */
    bool tls_pending; /* STARTTLS seen, handshake not done yet */
    bool closed;
};

static inline void
drv_grow(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1)
            c *= 2;
        *p = realloc(*p, c);
        assert_non_null(*p);
        *cap = c;
    }
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = '\0';
}

static inline void
drv_log(struct drv *d, const char *s)
{
    drv_grow(&d->log, &d->len, &d->cap, s, strlen(s));
}

static inline void drv_logf(struct drv *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void
drv_logf(struct drv *d, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    drv_log(d, buf);
}

static inline struct smtp_in_params
drv_params(void)
{
    struct smtp_in_params p = {
        .hostname = "mx.example.org",
        .max_message_size = 10000,
        .max_recipients = 5,
        .tls_available = true,
    };
    return p;
}

static inline void
drv_init(struct drv *d, const struct smtp_in_params *p, bool greet)
{
    memset(d, 0, sizeof *d);
    d->m = smtp_in_new(p);
    assert_non_null(d->m);
    drv_log(d, "");
    if (greet)
        smtp_in_greet(d->m);
}

static inline void
drv_fini(struct drv *d)
{
    smtp_in_free(d->m);
    free(d->log);
    free(d->body);
}

static inline void
drv_log_escaped(struct drv *d, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c[8];
        if (s[i] == '\r')
            snprintf(c, sizeof c, "\\r");
        else if (s[i] == '\n')
            snprintf(c, sizeof c, "\\n");
        else
            snprintf(c, sizeof c, "%c", s[i]);
        drv_log(d, c);
    }
}

static inline void
drv_log_mail(struct drv *d, const struct smtp_in_mail *mail)
{
    static const char *const body[] = {"", " BODY=7BIT", " BODY=8BITMIME"};
    static const char *const ret[] = {"", " RET=HDRS", " RET=FULL"};
    assert_non_null(mail);
    drv_logf(d, "[MAIL <%s>", mail->sender);
    if (mail->has_size)
        drv_logf(d, " SIZE=%" PRIu64, mail->size);
    drv_logf(d, "%s%s", body[mail->body], ret[mail->ret]);
    if (mail->envid)
        drv_logf(d, " ENVID=%s", mail->envid);
    drv_log(d, "]\n");
}

static inline void
drv_log_rcpt(struct drv *d, const struct smtp_in_rcpt *r)
{
    assert_non_null(r);
    drv_logf(d, "[RCPT <%s>", r->addr);
    if (r->notify)
        drv_logf(d, " NOTIFY=%u", r->notify);
    if (r->orcpt)
        drv_logf(d, " ORCPT=%s", r->orcpt);
    drv_log(d, "]\n");
}

/* The automatic answer to a check. */
static inline void
drv_answer(struct drv *d, const struct smtp_in_action *a)
{
    int code = 250;
    const char *text = NULL;
    if (a->type == SMTP_IN_AUTH_CHECK)
        code = strcmp(a->password, "secret") == 0 ? 235 : 535;
    else if (a->type == SMTP_IN_CHECK_MAIL && strstr(a->mail->sender, "bad"))
        code = 550, text = "5.7.1 sender refused";
    else if (a->type == SMTP_IN_CHECK_RCPT && strstr(a->rcpt->addr, "deny"))
        code = 550, text = "5.7.1 relay denied";
    else if (a->type == SMTP_IN_CHECK_RCPT && strstr(a->rcpt->addr, "temp"))
        code = 451, text = "4.3.0 try again later";
    else if (a->type == SMTP_IN_COMMIT)
        text = "2.0.0 Ok: queued as TESTID";
    assert_int_equal(smtp_in_result(d->m, code, text), 0);
}

static inline void
drv_action(struct drv *d, const struct smtp_in_action *a)
{
    switch (a->type) {
    case SMTP_IN_REPLY:
        assert_true(a->len >= 2 && a->text[a->len - 2] == '\r' && a->text[a->len - 1] == '\n');
        drv_grow(&d->log, &d->len, &d->cap, a->text, a->len);
        return;
    case SMTP_IN_STARTTLS:
        drv_log(d, "[STARTTLS]\n");
        d->tls_pending = true;
        return;
    case SMTP_IN_AUTH_CHECK:
        drv_logf(d, "[AUTH %s:%s]\n", a->user, a->password);
        break;
    case SMTP_IN_CHECK_MAIL:
        drv_log_mail(d, a->mail);
        break;
    case SMTP_IN_CHECK_RCPT:
        drv_log_rcpt(d, a->rcpt);
        break;
    case SMTP_IN_DATA_BEGIN:
        drv_log(d, "[BEGIN]\n");
        d->blen = 0;
        return;
    case SMTP_IN_DATA:
        assert_true(a->len > 0);
        drv_grow(&d->body, &d->blen, &d->bcap, a->text, a->len);
        return;
    case SMTP_IN_COMMIT:
        assert_int_equal(a->size, d->blen); /* RFC 1870 size is the unstuffed body */
        drv_logf(d, "[COMMIT size=%" PRIu64 " prio=%d rcvd=%u body=", a->size, (int)a->priority,
                 a->received);
        drv_log_escaped(d, d->body ? d->body : "", d->blen);
        drv_log(d, "]\n");
        break;
    case SMTP_IN_DATA_ABORT:
        drv_log(d, "[ABORT]\n");
        return;
    case SMTP_IN_ETRN:
    case SMTP_IN_ATRN:
        assert_int_equal(strlen(a->text), a->len);
        drv_logf(d, "[%s %s]\n", a->type == SMTP_IN_ETRN ? "ETRN" : "ATRN", a->text);
        break;
    case SMTP_IN_CLOSE:
        drv_log(d, "[CLOSE]\n");
        d->closed = true;
        return;
    default:
        fail_msg("unexpected action %d", (int)a->type);
    }
    if (!d->manual)
        drv_answer(d, a);
}

/* Carry out every action; true if there was one. */
static inline bool
drv_drain(struct drv *d)
{
    struct smtp_in_action a;
    bool any = false;
    while (smtp_in_next(d->m, &a)) {
        drv_action(d, &a);
        any = true;
    }
    assert_int_equal(a.type, SMTP_IN_NONE);
    return any;
}

/* Feed buf[0..n) as one read, the way the glue does: what the machine does
 * not take is fed again after the actions. */
static inline void
drv_feed(struct drv *d, const char *buf, size_t n)
{
    size_t off = 0;
    drv_drain(d);
    while (off < n) {
        size_t k = smtp_in_feed(d->m, buf + off, n - off);
        off += k;
        bool acted = drv_drain(d);
        if (k == 0 && !acted)
            break; /* turned around, or waiting on a manual answer */
    }
}

static inline void
drv_feed_str(struct drv *d, const char *s)
{
    drv_feed(d, s, strlen(s));
}

/* After a segment: the TLS handshake completes. */
static inline void
drv_segment_end(struct drv *d)
{
    if (d->tls_pending) {
        smtp_in_tls_started(d->m);
        d->tls_pending = false;
        drv_log(d, "[TLS]\n");
    }
    drv_drain(d);
}

/* How to feed a transcript: whole segments, split once at byte offset
 * split of the concatenation, or byte by byte. */
enum drv_mode { DRV_WHOLE, DRV_SPLIT, DRV_BYTES };

static inline char *
drv_run(const struct smtp_in_params *p, const char *const *segs, enum drv_mode mode, size_t split)
{
    struct drv d;
    size_t pos = 0;
    drv_init(&d, p, true);
    for (size_t i = 0; segs[i] != NULL; i++) {
        size_t n = strlen(segs[i]);
        if (mode == DRV_BYTES) {
            for (size_t k = 0; k < n; k++)
                drv_feed(&d, segs[i] + k, 1);
        } else if (mode == DRV_SPLIT && split > pos && split < pos + n) {
            drv_feed(&d, segs[i], split - pos);
            drv_feed(&d, segs[i] + (split - pos), n - (split - pos));
        } else {
            drv_feed(&d, segs[i], n);
        }
        pos += n;
        drv_segment_end(&d);
    }
    char *log = d.log;
    d.log = NULL;
    drv_fini(&d);
    return log;
}

static inline void
drv_assert_same(const char *want, const char *got, const char *how, size_t split)
{
    if (strcmp(want, got) != 0)
        fail_msg("transcript differs (%s at %zu)\n--- whole ---\n%s\n--- this ---\n%s", how, split,
                 want, got);
}

/*
 * Run a transcript whole and compare with want (when not NULL), then split
 * at every byte offset (or, for long transcripts, at every offset near a
 * line end and every 37th elsewhere) and byte by byte: every log must be
 * the same.
 */
static inline void
drv_check(const struct smtp_in_params *p, const char *const *segs, const char *want)
{
    size_t total = 0;
    for (size_t i = 0; segs[i] != NULL; i++)
        total += strlen(segs[i]);
    char *all = malloc(total + 1), *whole = drv_run(p, segs, DRV_WHOLE, 0);
    assert_non_null(all);
    all[0] = '\0';
    for (size_t i = 0; segs[i] != NULL; i++)
        strcat(all, segs[i]);
    if (want != NULL && strcmp(want, whole) != 0)
        fail_msg("transcript\n--- want ---\n%s\n--- got ---\n%s", want, whole);
    for (size_t k = 1; k < total; k++) {
        bool near = false;
        for (size_t j = k > 16 ? k - 16 : 0; j < k + 16 && j < total && !near; j++)
            near = all[j] == '\n';
        if (total > 4096 && !near && k % 37 != 0)
            continue;
        char *got = drv_run(p, segs, DRV_SPLIT, k);
        drv_assert_same(whole, got, "split", k);
        free(got);
    }
    char *bytes = drv_run(p, segs, DRV_BYTES, 0);
    drv_assert_same(whole, bytes, "byte by byte", 0);
    free(bytes);
    free(whole);
    free(all);
}

/* A string of n copies of c (caller frees). */
static inline char *
drv_repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* prefix, n copies of c, suffix, in a fresh string (caller frees). */
static inline char *
drv_line(const char *prefix, char c, size_t n, const char *suffix)
{
    size_t a = strlen(prefix), b = strlen(suffix);
    char *s = malloc(a + n + b + 1);
    if (s == NULL)
        abort();
    memcpy(s, prefix, a);
    memset(s + a, c, n);
    memcpy(s + a + n, suffix, b + 1);
    return s;
}

/* printf into a fresh string (caller frees). */
static inline char *drv_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline char *
drv_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

#endif
