/* The SMTP server protocol machine: input buffering, the action queue, the
 * commands and the answers to checks. Split out, libc-only like this file:
 * line framing and limits (smtp_in_line), MAIL/RCPT arguments
 * (smtp_in_args), the envelope (smtp_in_env), the AUTH exchange
 * (smtp_in_auth), the DATA scanner (smtp_in_data) and the action queue
 * (smtp_in_queue). */
#include "core/smtp_in.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/smtp_in_args.h"
#include "core/smtp_in_auth.h"
#include "core/smtp_in_data.h"
#include "core/smtp_in_env.h"
#include "core/smtp_in_line.h"
#include "core/smtp_in_queue.h"

/* The input buffer holds the longest line and then some; an idle session
 * keeps at most IN_KEEP of it. */
#define IN_MAX 16384
#define IN_KEEP 4096
#define IN_MIN 1024
/* Session limits (SPEC §9). */
#define MAX_ERRORS 10
#define MAX_AUTH_FAILURES 3
#define MAX_REFUSED 20
#define RESULT_TEXT_MAX 400

enum pending { P_NONE, P_AUTH, P_MAIL, P_RCPT, P_COMMIT, P_ETRN, P_ATRN };
enum helo_kind { HELO_NONE, HELO_HELO, HELO_EHLO };

struct smtp_in {
    /* Settings (smtp_in_params). */
    char hostname[256];
    uint64_t max_size;
    size_t max_rcpts;
    bool tls_available, auth_available, odmr, greet_delay;
    /* Session. */
    bool tls, greeted, closed, tls_wait, turned, stopping, in_data, oom;
    struct smtp_in_line line;
    enum helo_kind helo;
    char helo_name[256];
    char *user; /* authenticated user, owned */
    unsigned errors, auth_failures, refused;
    enum pending pending;
    struct smtp_in_auth auth;
    /* Transaction. */
    struct smtp_in_env env;
    struct smtp_in_data data;
    char arg[SMTP_IN_LINE_CMD]; /* ETRN or ATRN argument */
    /* Input: unread bytes are in[in_off..in_len). */
    char *in;
    size_t in_off, in_len, in_cap;
    struct smtp_in_queue out;
};

/* ---- the action queue ---- */

static void
push(struct smtp_in *m, enum smtp_in_type type, size_t off, size_t len)
{
    smtp_in_queue_push(&m->out, type, off, len);
}

static void
reply(struct smtp_in *m, const char *text)
{
    smtp_in_queue_reply(&m->out, text);
}

/* Reply, then close: nothing more is read. */
static void
close_with(struct smtp_in *m, const char *text)
{
    reply(m, text);
    push(m, SMTP_IN_CLOSE, 0, 0);
    m->closed = true;
    m->in_off = m->in_len;
}

/* The reply to an unknown or malformed command; the tenth closes. */
static void
error_reply(struct smtp_in *m, const char *text)
{
    reply(m, text);
    if (++m->errors >= MAX_ERRORS)
        close_with(m, "421 4.7.0 Too many errors, closing connection");
}

static bool
pop(struct smtp_in *m, struct smtp_in_action *act)
{
    struct smtp_in_slot s;
    if (!smtp_in_queue_pop(&m->out, &s))
        return false;
    memset(act, 0, sizeof *act);
    act->type = s.type;
    switch (s.type) {
    case SMTP_IN_REPLY:
    case SMTP_IN_DATA:
        act->text = (s.type == SMTP_IN_REPLY ? m->out.arena : m->in) + s.off;
        act->len = s.len;
        break;
    case SMTP_IN_ETRN:
    case SMTP_IN_ATRN:
        act->text = m->arg;
        act->len = strlen(m->arg);
        break;
    case SMTP_IN_AUTH_CHECK:
        act->user = m->auth.user;
        act->password = m->auth.pass;
        break;
    case SMTP_IN_CHECK_MAIL:
        act->mail = &m->env.mail;
        break;
    case SMTP_IN_CHECK_RCPT:
        act->rcpt = m->env.cand;
        break;
    case SMTP_IN_COMMIT:
        act->size = m->data.size;
        act->priority = m->data.prio;
        act->received = m->data.received;
        break;
    default:
        break;
    }
    return true;
}

/* ---- the envelope ---- */

static void
reset_transaction(struct smtp_in *m)
{
    smtp_in_env_reset(&m->env);
    m->in_data = false;
}

static bool
auth_offered(const struct smtp_in *m)
{
    return m->tls && m->auth_available;
}

/* ---- commands ---- */

static void
ehlo_reply(struct smtp_in *m)
{
    char size[32], buf[768];
    const char *kw[12];
    size_t n = 0, len = 0;
    snprintf(size, sizeof size, "SIZE %" PRIu64, m->max_size);
    kw[n++] = m->hostname;
    kw[n++] = "PIPELINING";
    kw[n++] = size;
    kw[n++] = "8BITMIME";
    kw[n++] = "ENHANCEDSTATUSCODES";
    kw[n++] = "DSN";
    kw[n++] = "ETRN";
    if (m->tls_available && !m->tls)
        kw[n++] = "STARTTLS";
    if (auth_offered(m)) {
        kw[n++] = "AUTH PLAIN LOGIN";
        if (m->odmr)
            kw[n++] = "ATRN";
    }
    for (size_t i = 0; i < n && len < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "250%c%s%s", i + 1 < n ? '-' : ' ',
                                kw[i], i + 1 < n ? "\r\n" : "");
    reply(m, buf);
}

static void
greeting_cmd(struct smtp_in *m, const char *arg, bool ehlo)
{
    char name[256];
    if (!smtp_in_args_helo(arg, name)) {
        error_reply(m,
                    ehlo ? "501 5.5.4 Syntax: EHLO hostname" : "501 5.5.4 Syntax: HELO hostname");
        return;
    }
    reset_transaction(m);
    m->helo = ehlo ? HELO_EHLO : HELO_HELO;
    memcpy(m->helo_name, name, sizeof name);
    if (ehlo) {
        ehlo_reply(m);
    } else {
        char buf[300];
        snprintf(buf, sizeof buf, "250 %s", m->hostname);
        reply(m, buf);
    }
}

static void
cmd_helo(struct smtp_in *m, const char *arg)
{
    greeting_cmd(m, arg, false);
}

static void
cmd_ehlo(struct smtp_in *m, const char *arg)
{
    greeting_cmd(m, arg, true);
}

static void
cmd_mail(struct smtp_in *m, const char *arg)
{
    struct smtp_in_args a;
    if (m->helo == HELO_NONE) {
        reply(m, "503 5.5.1 Send HELO or EHLO first");
        return;
    }
    if (m->env.has_mail) {
        reply(m, "503 5.5.1 Nested MAIL command");
        return;
    }
    const char *err = smtp_in_args_mail(arg, m->helo == HELO_EHLO, auth_offered(m), &a);
    if (err != NULL) {
        error_reply(m, err);
        return;
    }
    if (a.has_size && m->max_size > 0 && a.size > m->max_size) {
        reply(m, "552 5.3.4 Message size exceeds fixed maximum message size");
        return;
    }
    smtp_in_env_mail(&m->env, &a);
    m->pending = P_MAIL;
    push(m, SMTP_IN_CHECK_MAIL, 0, 0);
}

static void
cmd_rcpt(struct smtp_in *m, const char *arg)
{
    struct smtp_in_args a;
    if (!m->env.has_mail) {
        reply(m, "503 5.5.1 Need MAIL command first");
        return;
    }
    const char *err = smtp_in_args_rcpt(arg, m->helo == HELO_EHLO, m->hostname, &a);
    if (err != NULL) {
        error_reply(m, err);
        return;
    }
    if (m->max_rcpts > 0 && m->env.nrcpts >= m->max_rcpts) {
        reply(m, "452 4.5.3 Too many recipients");
        return;
    }
    if (!smtp_in_env_cand(&m->env, &a)) {
        reply(m, "452 4.3.1 Insufficient system resources");
        return;
    }
    m->pending = P_RCPT;
    push(m, SMTP_IN_CHECK_RCPT, 0, 0);
}

static void
cmd_data(struct smtp_in *m, const char *arg)
{
    if (*arg != '\0') {
        error_reply(m, "501 5.5.4 Syntax: DATA");
    } else if (!m->env.has_mail) {
        reply(m, "503 5.5.1 Need MAIL command first");
    } else if (m->env.nrcpts == 0) {
        reply(m, "503 5.5.1 No valid recipients");
    } else {
        smtp_in_data_init(&m->data, m->max_size);
        m->in_data = true;
        push(m, SMTP_IN_DATA_BEGIN, 0, 0);
        reply(m, "354 End data with <CR><LF>.<CR><LF>");
    }
}

static void
cmd_rset(struct smtp_in *m, const char *arg)
{
    (void)arg;
    reset_transaction(m);
    reply(m, "250 2.0.0 Ok");
}

static void
cmd_vrfy(struct smtp_in *m, const char *arg)
{
    if (*arg == '\0')
        error_reply(m, "501 5.5.4 Syntax: VRFY address");
    else
        reply(m, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

static void
cmd_quit(struct smtp_in *m, const char *arg)
{
    (void)arg;
    close_with(m, "221 2.0.0 Bye");
}

static void
cmd_starttls(struct smtp_in *m, const char *arg)
{
    if (m->tls) {
        reply(m, "503 5.5.1 TLS already active");
    } else if (!m->tls_available) {
        reply(m, "502 5.5.1 STARTTLS not available");
    } else if (*arg != '\0') {
        error_reply(m, "501 5.5.4 Syntax: STARTTLS");
    } else {
        reply(m, "220 2.0.0 Ready to start TLS");
        push(m, SMTP_IN_STARTTLS, 0, 0);
        /* Whatever was pipelined after STARTTLS is dropped, unread
         * (command injection, CVE-2011-0411 and kin). */
        m->tls_wait = true;
        m->in_off = m->in_len;
    }
}

static void
auth_outcome(struct smtp_in *m, enum smtp_in_auth_res r, const char *text)
{
    if (r == SMTP_IN_AUTH_READY) {
        m->pending = P_AUTH;
        push(m, SMTP_IN_AUTH_CHECK, 0, 0);
    } else if (r == SMTP_IN_AUTH_ERROR) {
        error_reply(m, text);
    } else {
        reply(m, text);
    }
}

static void
cmd_auth(struct smtp_in *m, const char *arg)
{
    const char *text = NULL;
    if (!m->auth_available)
        reply(m, "502 5.5.1 AUTH not available");
    else if (!m->tls)
        reply(m, "530 5.7.0 Must issue a STARTTLS command first");
    else if (m->helo != HELO_EHLO)
        reply(m, "503 5.5.1 Send EHLO first");
    else if (m->user != NULL)
        reply(m, "503 5.5.1 Already authenticated");
    else if (m->env.has_mail)
        reply(m, "503 5.5.1 AUTH not allowed during a mail transaction");
    else {
        enum smtp_in_auth_res r = smtp_in_auth_start(&m->auth, arg, &text);
        auth_outcome(m, r, text);
    }
}

/* The argument is kept for the ETRN or ATRN action. */
static void
ask(struct smtp_in *m, enum pending p, enum smtp_in_type t, const char *arg)
{
    snprintf(m->arg, sizeof m->arg, "%s", arg);
    m->pending = p;
    push(m, t, 0, 0);
}

static void
cmd_etrn(struct smtp_in *m, const char *arg)
{
    const char *d = arg[0] == '@' ? arg + 1 : arg;
    if (m->helo == HELO_NONE)
        reply(m, "503 5.5.1 Send HELO or EHLO first");
    else if (m->env.has_mail)
        reply(m, "503 5.5.1 ETRN not allowed during a mail transaction");
    else if (arg[0] == '#')
        error_reply(m, "501 5.5.4 ETRN #queue is not supported");
    else if (!smtp_in_args_domain(d, strlen(d)))
        error_reply(m, "501 5.5.4 Syntax: ETRN domain");
    else
        ask(m, P_ETRN, SMTP_IN_ETRN, arg);
}

static void
cmd_atrn(struct smtp_in *m, const char *arg)
{
    if (!m->odmr)
        reply(m, "502 5.5.1 ATRN not available");
    else if (m->user == NULL)
        reply(m, "530 5.7.0 Authentication required");
    else if (m->env.has_mail)
        reply(m, "503 5.5.1 ATRN not allowed during a mail transaction");
    else if (!smtp_in_args_domains(arg))
        error_reply(m, "501 5.5.4 Syntax: ATRN [domain[,domain...]]");
    else
        ask(m, P_ATRN, SMTP_IN_ATRN, arg);
}

/* The commands; those with a fixed reply have no handler. */
static const struct {
    const char *verb;
    void (*fn)(struct smtp_in *m, const char *arg);
    const char *fixed;
} commands[] = {
    {"HELO", cmd_helo, NULL},
    {"EHLO", cmd_ehlo, NULL},
    {"MAIL", cmd_mail, NULL},
    {"RCPT", cmd_rcpt, NULL},
    {"DATA", cmd_data, NULL},
    {"RSET", cmd_rset, NULL},
    {"VRFY", cmd_vrfy, NULL},
    {"QUIT", cmd_quit, NULL},
    {"AUTH", cmd_auth, NULL},
    {"STARTTLS", cmd_starttls, NULL},
    {"ETRN", cmd_etrn, NULL},
    {"ATRN", cmd_atrn, NULL},
    {"NOOP", NULL, "250 2.0.0 Ok"},
    {"HELP", NULL,
     "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY ETRN STARTTLS AUTH "
     "ATRN"},
    {"EXPN", NULL, "502 5.5.1 EXPN not supported"},
    {"TURN", NULL, "502 5.5.1 TURN not supported"},
};

/* One command line, CRLF and trailing blanks removed. */
static void
command(struct smtp_in *m, const char *line)
{
    if (m->stopping) {
        close_with(m, "421 4.3.2 shutting down");
        return;
    }
    if (smtp_in_auth_active(&m->auth)) {
        const char *text = NULL;
        enum smtp_in_auth_res r = smtp_in_auth_line(&m->auth, line, &text);
        auth_outcome(m, r, text);
        return;
    }
    size_t n = strcspn(line, " ");
    const char *arg = line[n] == ' ' ? line + n + 1 : line + n;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (n != strlen(commands[i].verb) || !smtp_in_line_verb(line, n, commands[i].verb))
            continue;
        if (commands[i].fn != NULL)
            commands[i].fn(m, arg);
        else
            reply(m, commands[i].fixed);
        return;
    }
    error_reply(m, "500 5.5.1 Command unrecognized");
}

/* ---- input ---- */

static void
line_step_result(struct smtp_in *m, enum smtp_in_line_res r, const char *line)
{
    if (r == SMTP_IN_LINE_OK) {
        command(m, line);
    } else if (r == SMTP_IN_LINE_BAD) {
        /* Bare CR, bare LF or NUL in a command line: refuse and close. */
        close_with(m, "500 5.5.2 Bare CR, bare LF or NUL in command line");
    } else if (m->line.auth) {
        smtp_in_auth_clear(&m->auth);
        error_reply(m, "500 5.5.6 Authentication exchange line is too long");
    } else {
        error_reply(m, "500 5.5.2 Line too long");
    }
}

static bool
line_step(struct smtp_in *m)
{
    size_t used = 0;
    char *line = NULL;
    if (m->in_off == m->in_len)
        return false; /* nothing unread (and m->in may still be NULL) */
    enum smtp_in_line_res r = smtp_in_line_next(&m->line, m->in + m->in_off, m->in_len - m->in_off,
                                                smtp_in_auth_active(&m->auth), &used, &line);
    m->in_off += used;
    if (r == SMTP_IN_LINE_MORE)
        return used > 0;
    line_step_result(m, r, line);
    return true;
}

static void
data_end(struct smtp_in *m)
{
    static const char *const why[] = {
        [SMTP_IN_DATA_BARE] = "554 5.6.0 Message contains bare CR, bare LF or NUL",
        [SMTP_IN_DATA_LONG] = "554 5.6.0 line too long",
        [SMTP_IN_DATA_SIZE] = "552 5.3.4 Message size exceeds fixed maximum message size",
        [SMTP_IN_DATA_LOOP] = "554 5.4.6 Too many Received: headers, mail loop",
    };
    m->in_data = false;
    if (m->data.err == SMTP_IN_DATA_OK) {
        m->pending = P_COMMIT;
        push(m, SMTP_IN_COMMIT, 0, 0);
        return;
    }
    push(m, SMTP_IN_DATA_ABORT, 0, 0);
    reply(m, why[m->data.err]);
    reset_transaction(m);
}

static bool
data_step(struct smtp_in *m)
{
    size_t off = m->in_off, avail = m->in_len - m->in_off, out = 0;
    if (avail == 0)
        return false;
    m->in_off += smtp_in_data_scan(&m->data, m->in + off, avail, &out);
    if (out > 0)
        push(m, SMTP_IN_DATA, off, out);
    if (m->data.done)
        data_end(m);
    return true;
}

/* One step of work on buffered input; false when there is nothing to do. */
static bool
step(struct smtp_in *m)
{
    if (m->closed || m->tls_wait || m->turned || m->pending != P_NONE)
        return false;
    if (m->oom) {
        close_with(m, "421 4.3.0 Out of memory, closing connection");
        return true;
    }
    if (!m->greeted) {
        if (!m->greet_delay || m->in_off == m->in_len)
            return false;
        close_with(m, "554 5.5.1 Protocol error: client spoke before the greeting");
        return true;
    }
    if (m->in_data)
        return data_step(m);
    return line_step(m);
}

/* ---- the public interface ---- */

struct smtp_in *
smtp_in_new(const struct smtp_in_params *p)
{
    struct smtp_in *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    snprintf(m->hostname, sizeof m->hostname, "%s", p->hostname ? p->hostname : "localhost");
    m->max_size = p->max_message_size;
    m->max_rcpts = p->max_recipients;
    m->tls_available = p->tls_available;
    m->tls = p->tls_active;
    m->auth_available = p->auth_available;
    m->odmr = p->odmr;
    m->greet_delay = p->greet_delay;
    return m;
}

void
smtp_in_free(struct smtp_in *m)
{
    if (m == NULL)
        return;
    smtp_in_env_fini(&m->env);
    free(m->user);
    smtp_in_auth_clear(&m->auth);
    free(m->in);
    free(m);
}

void
smtp_in_greet(struct smtp_in *m)
{
    char buf[300];
    if (m->greeted || m->closed)
        return;
    if (m->greet_delay && m->in_off < m->in_len) {
        step(m); /* the client spoke first */
        return;
    }
    m->greeted = true;
    snprintf(buf, sizeof buf, "220 %s ESMTP bridgehead", m->hostname);
    reply(m, buf);
}

static bool
in_reserve(struct smtp_in *m, size_t need)
{
    if (need <= m->in_cap)
        return true;
    size_t cap = m->in_cap ? m->in_cap : IN_MIN;
    while (cap < need)
        cap *= 2;
    if (cap > IN_MAX)
        cap = IN_MAX;
    char *p = realloc(m->in, cap);
    if (p == NULL)
        return false;
    m->in = p;
    m->in_cap = cap;
    return true;
}

size_t
smtp_in_feed(struct smtp_in *m, const char *buf, size_t len)
{
    if (m->turned)
        return 0;
    if (m->closed || m->tls_wait)
        return len;
    if (m->in_off > 0) {
        memmove(m->in, m->in + m->in_off, m->in_len - m->in_off);
        m->in_len -= m->in_off;
        m->in_off = 0;
    }
    size_t n = len < IN_MAX - m->in_len ? len : IN_MAX - m->in_len;
    if (n > 0 && !in_reserve(m, m->in_len + n)) {
        n = m->in_cap - m->in_len;
        if (n == 0)
            m->oom = true;
    }
    if (n > 0)
        memcpy(m->in + m->in_len, buf, n);
    m->in_len += n;
    return n;
}

/* Nothing left to read: an idle session gives back a big buffer. */
static void
in_shrink(struct smtp_in *m)
{
    if (m->in_off < m->in_len)
        return;
    m->in_off = m->in_len = 0;
    if (m->in_cap > IN_KEEP && !m->in_data) {
        free(m->in);
        m->in = NULL;
        m->in_cap = 0;
    }
}

bool
smtp_in_next(struct smtp_in *m, struct smtp_in_action *act)
{
    for (;;) {
        if (pop(m, act))
            return true;
        if (!step(m))
            break;
    }
    in_shrink(m);
    memset(act, 0, sizeof *act);
    return false;
}

static const char *
default_text(enum pending p, int code)
{
    if (code >= 400)
        return code >= 500
                   ? (p == P_AUTH ? "5.7.8 Authentication credentials invalid" : "5.7.1 Refused")
                   : "4.3.0 Try again later";
    switch (p) {
    case P_AUTH:
        return "2.7.0 Authentication successful";
    case P_MAIL:
        return "2.1.0 Ok";
    case P_RCPT:
        return "2.1.5 Ok";
    case P_ATRN:
        return "2.0.0 Ok now reversing the connection";
    default:
        return "2.0.0 Ok";
    }
}

/* The glue's reply: one line, control octets made spaces, bounded. */
static void
result_reply(struct smtp_in *m, enum pending p, int code, const char *text)
{
    char buf[RESULT_TEXT_MAX + 8];
    int n = snprintf(buf, sizeof buf, "%d %.*s", code, RESULT_TEXT_MAX,
                     text ? text : default_text(p, code));
    for (int i = 4; i < n && buf[i] != '\0'; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = ' ';
    reply(m, buf);
}

static void
auth_done(struct smtp_in *m, int code)
{
    if (code < 300) {
        m->user = m->auth.user; /* taken over: the session's user */
        m->auth.user = NULL;
    } else if (code >= 500 && ++m->auth_failures >= MAX_AUTH_FAILURES) {
        close_with(m, "421 4.7.0 Too many authentication failures, closing connection");
    }
    smtp_in_auth_clear(&m->auth);
}

static void
rcpt_done(struct smtp_in *m, int code)
{
    smtp_in_env_settle(&m->env, code < 300);
    if (code >= 300 && ++m->refused >= MAX_REFUSED)
        close_with(m, "421 4.7.0 Too many refused recipients, closing connection");
}

int
smtp_in_result(struct smtp_in *m, int code, const char *text)
{
    if (m == NULL || m->pending == P_NONE || code < 200 || code > 599 || code / 100 == 3)
        return -EINVAL;
    enum pending p = m->pending;
    m->pending = P_NONE;
    result_reply(m, p, code, text);
    if (p == P_AUTH) {
        auth_done(m, code);
    } else if (p == P_MAIL && code >= 300) {
        m->env.has_mail = false;
    } else if (p == P_RCPT) {
        rcpt_done(m, code);
    } else if (p == P_COMMIT) {
        reset_transaction(m);
    } else if (p == P_ATRN && code < 300) {
        m->turned = true;
        m->in_off = m->in_len;
    }
    return 0;
}

void
smtp_in_tls_started(struct smtp_in *m)
{
    if (!m->tls_wait)
        return;
    m->tls_wait = false;
    m->tls = true;
    m->helo = HELO_NONE;
    m->helo_name[0] = '\0';
    reset_transaction(m);
    m->in_off = m->in_len;
}

void
smtp_in_shutdown(struct smtp_in *m)
{
    m->stopping = true;
}

const struct smtp_in_mail *
smtp_in_mail(const struct smtp_in *m)
{
    return m->env.has_mail ? &m->env.mail : NULL;
}

size_t
smtp_in_rcpt_count(const struct smtp_in *m)
{
    return m->env.nrcpts;
}

const struct smtp_in_rcpt *
smtp_in_rcpt(const struct smtp_in *m, size_t i)
{
    return i < m->env.nrcpts ? m->env.rcpts[i] : NULL;
}

unsigned
smtp_in_refused_count(const struct smtp_in *m)
{
    return m->refused;
}

const char *
smtp_in_helo(const struct smtp_in *m)
{
    return m->helo == HELO_NONE ? NULL : m->helo_name;
}

bool
smtp_in_esmtp(const struct smtp_in *m)
{
    return m->helo == HELO_EHLO;
}

bool
smtp_in_tls_active(const struct smtp_in *m)
{
    return m->tls;
}

const char *
smtp_in_user(const struct smtp_in *m)
{
    return m->user;
}
