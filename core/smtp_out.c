/*
 * smtp_out: the SMTP client machine. Replies are read line by line into a
 * buffer of max_line octets; a complete reply goes to the handler of the
 * state (session set-up) or of the transaction command it answers.
 * Transaction commands are built at smtp_out_send and kept in order: with
 * PIPELINING they go out in one write (RFC 2920) and replies are matched in
 * order, without it one at a time.
 */
#include "core/smtp_out.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX 1024      /* kept reply text */
#define CRED_MAX 255       /* SASL PLAIN authcid/passwd (RFC 4616) */
#define RCPTS_MAX 100000   /* per message, so sizes cannot overflow */
#define LINE_LIMIT 1048576 /* the largest max_line accepted */

enum state {
    ST_GREETING,
    ST_EHLO,
    ST_HELO,
    ST_STARTTLS,
    ST_TLS,
    ST_AUTH_PLAIN,
    ST_LOGIN_USER,
    ST_LOGIN_PASS,
    ST_LOGIN_DONE,
    ST_READY,
    ST_TX,   /* transaction commands in flight */
    ST_BODY, /* the glue streams the body */
    ST_CLOSED
};

enum cmd_kind { CMD_RSET, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_DOT };
enum rcpt_state { RS_PENDING, RS_ACCEPTED, RS_DONE };

struct buf {
    char *p;
    size_t len, cap;
};

struct cmd {
    enum cmd_kind kind;
    size_t off, len; /* the line in tx.lines */
    size_t rcpt;
};

struct event {
    enum smtp_out_act_type type;
    size_t off, len; /* WRITE: the bytes in out */
};

/* The reply being read (complete once nlines is back to 0). */
struct reply {
    int code;
    unsigned nlines;
    unsigned serial; /* counts complete replies */
    char status[12];
    size_t len;
    char text[TEXT_MAX + 1];
};

/* The message in flight. */
struct tx {
    bool active, mail_failed, discard;
    bool bol, cr; /* dot-stuffing: at the start of a line, a CR pending */
    struct buf lines;
    struct cmd *cmds;
    size_t ncmds, nsent, nreplied;
    struct smtp_out_result *res;
    unsigned char *rstate; /* enum rcpt_state */
    unsigned *notify;
    size_t nrcpts, naccepted;
    char **texts; /* the reply texts that results point to */
    size_t ntexts;
    unsigned text_serial; /* reply serial of texts[ntexts - 1] */
};

struct smtp_out {
    char *helo, *user, *pass;
    bool use_ehlo, tls_active, tls_skipped, need_rset;
    enum smtp_out_starttls starttls;
    size_t max_line;
    unsigned max_lines;
    enum state state;
    unsigned ext, pending_ext;
    uint64_t size_limit, pending_size;
    char *line; /* max_line - 1 octets */
    size_t linelen;
    struct reply reply;
    struct buf out;
    struct event *ev;
    size_t nev, evhead, evcap;
    enum smtp_out_outcome outcome;
    int close_code;
    const char *close_text;
    struct tx tx;
};

static void dispatch(struct smtp_out *m);

static void *
alloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

static char *
dup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(alloc(n, 1), s, n);
}

static void
buf_reserve(struct buf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            abort();
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL)
        abort();
    b->p = p;
    b->cap = cap;
}

static void
buf_add(struct buf *b, const char *s, size_t n)
{
    if (n == 0)
        return;
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void
buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* ---- actions ---- */

static struct event *
ev_push(struct smtp_out *m, enum smtp_out_act_type type)
{
    if (m->nev == m->evcap) {
        size_t cap = m->evcap ? m->evcap * 2 : 8;
        struct event *ev = realloc(m->ev, cap * sizeof *ev);
        if (ev == NULL)
            abort();
        m->ev = ev;
        m->evcap = cap;
    }
    struct event *e = &m->ev[m->nev++];
    *e = (struct event){.type = type, .off = m->out.len};
    return e;
}

/* At the start of each call that makes actions: once the glue has taken
 * every action, the output buffer is reused. */
static void
out_begin(struct smtp_out *m)
{
    if (m->evhead == m->nev) {
        m->evhead = m->nev = 0;
        m->out.len = 0;
    }
}

/* Room for n more octets of output, in the trailing WRITE action. */
static char *
out_reserve(struct smtp_out *m, size_t n)
{
    if (m->nev == m->evhead || m->ev[m->nev - 1].type != SMTP_OUT_WRITE)
        ev_push(m, SMTP_OUT_WRITE);
    buf_reserve(&m->out, n);
    return m->out.p + m->out.len;
}

static void
out_commit(struct smtp_out *m, size_t n)
{
    m->out.len += n;
    m->ev[m->nev - 1].len += n;
}

static void
out_add(struct smtp_out *m, const char *s, size_t n)
{
    memcpy(out_reserve(m, n), s, n);
    out_commit(m, n);
}

static void
out_str(struct smtp_out *m, const char *s)
{
    out_add(m, s, strlen(s));
}

/* ---- the transaction ---- */

static void
tx_free(struct tx *t)
{
    for (size_t i = 0; i < t->ntexts; i++)
        free(t->texts[i]);
    free(t->texts);
    free(t->lines.p);
    free(t->cmds);
    free(t->res);
    free(t->rstate);
    free(t->notify);
    *t = (struct tx){0};
}

/* The text of the current reply, kept until the next message. */
static const char *
tx_text(struct smtp_out *m)
{
    struct tx *t = &m->tx;
    if (t->ntexts == 0 || t->text_serial != m->reply.serial) {
        t->texts[t->ntexts++] = dup(m->reply.text);
        t->text_serial = m->reply.serial;
    }
    return t->texts[t->ntexts - 1];
}

static void
settle(struct smtp_out *m, size_t i, int code, const char *text, enum smtp_out_stage stage)
{
    struct tx *t = &m->tx;
    struct smtp_out_result *r = &t->res[i];
    r->code = code;
    r->text = text;
    r->stage = stage;
    r->status[0] = '\0';
    if (code != 0)
        memcpy(r->status, m->reply.status, sizeof r->status);
    r->relayed =
        code / 100 == 2 && (t->notify[i] & SMTP_OUT_NOTIFY_SUCCESS) && !(m->ext & SMTP_OUT_EXT_DSN);
    t->rstate[i] = RS_DONE;
}

/* Settle every recipient still open; code 0 uses text as the reason. */
static void
settle_rest(struct smtp_out *m, int code, const char *text, enum smtp_out_stage stage)
{
    for (size_t i = 0; i < m->tx.nrcpts; i++)
        if (m->tx.rstate[i] != RS_DONE)
            settle(m, i, code, text, stage);
}

static void
tx_done(struct smtp_out *m)
{
    m->tx.active = false;
    m->need_rset = true;
    ev_push(m, SMTP_OUT_MESSAGE_DONE);
}

/* Whether the reply awaited is the one to the final dot. */
static bool
tx_at_dot(const struct tx *t)
{
    return t->nreplied < t->nsent && t->cmds[t->nreplied].kind == CMD_DOT;
}

/* ---- closing ---- */

/* End the session. text NULL: the current reply is the reason. */
static void
close_session(struct smtp_out *m, enum smtp_out_outcome outcome, bool quit, const char *text)
{
    if (m->state == ST_CLOSED)
        return;
    if (m->tx.active) {
        if (text == NULL && m->reply.code == 421)
            settle_rest(m, 421, tx_text(m), SMTP_OUT_STAGE_NONE);
        else
            settle_rest(m, 0, text ? text : tx_text(m), SMTP_OUT_STAGE_NONE);
        tx_done(m);
    }
    /* Never inside DATA or behind pipelined commands: QUIT would be data. */
    if (quit && m->state != ST_TX && m->state != ST_BODY)
        out_str(m, "QUIT\r\n");
    m->outcome = outcome;
    m->close_code = text ? 0 : m->reply.code;
    m->close_text = text ? text : m->reply.text;
    m->state = ST_CLOSED;
    ev_push(m, SMTP_OUT_CLOSE);
}

static void
proto_error(struct smtp_out *m, const char *why)
{
    close_session(m, SMTP_OUT_PROTOCOL_ERROR, false, why);
}

/* ---- session set-up ---- */

static void
send_hello(struct smtp_out *m, const char *verb)
{
    out_str(m, verb);
    out_str(m, m->helo);
    out_str(m, "\r\n");
    m->state = verb[0] == 'E' ? ST_EHLO : ST_HELO;
}

static void
become_ready(struct smtp_out *m)
{
    m->state = ST_READY;
    ev_push(m, SMTP_OUT_READY);
}

static void
b64_line(struct smtp_out *m, const char *prefix, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out_str(m, prefix);
    char *d = out_reserve(m, (n + 2) / 3 * 4 + 2), *p = d;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        v |= i + 1 < n ? (unsigned)s[i + 1] << 8 : 0;
        v |= i + 2 < n ? s[i + 2] : 0;
        *p++ = tab[v >> 18];
        *p++ = tab[(v >> 12) & 63];
        *p++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *p++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *p++ = '\r';
    *p++ = '\n';
    out_commit(m, (size_t)(p - d));
}

/* Clear memory that held a password (a plain memset may be optimised out). */
static void
wipe(char *p, size_t n)
{
    volatile char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

static void
auth_start(struct smtp_out *m)
{
    if (!m->tls_active) {
        close_session(m, SMTP_OUT_AUTH_FAILED, true, "AUTH is used only inside TLS");
    } else if (m->ext & SMTP_OUT_EXT_AUTH_PLAIN) {
        /* authzid empty, then authcid and password (RFC 4616). */
        unsigned char sasl[2 * CRED_MAX + 2];
        size_t u = strlen(m->user), p = strlen(m->pass);
        sasl[0] = 0;
        memcpy(sasl + 1, m->user, u);
        sasl[1 + u] = 0;
        memcpy(sasl + 2 + u, m->pass, p);
        b64_line(m, "AUTH PLAIN ", sasl, u + p + 2);
        wipe((char *)sasl, sizeof sasl);
        m->state = ST_AUTH_PLAIN;
    } else if (m->ext & SMTP_OUT_EXT_AUTH_LOGIN) {
        out_str(m, "AUTH LOGIN\r\n");
        m->state = ST_LOGIN_USER;
    } else {
        close_session(m, SMTP_OUT_AUTH_FAILED, true, "AUTH PLAIN or LOGIN not offered");
    }
}

/* EHLO or HELO succeeded: STARTTLS, AUTH, or ready. */
static void
after_hello(struct smtp_out *m)
{
    if (!m->tls_active && !m->tls_skipped && m->starttls != SMTP_OUT_STARTTLS_NEVER) {
        if (m->ext & SMTP_OUT_EXT_STARTTLS) {
            out_str(m, "STARTTLS\r\n");
            m->state = ST_STARTTLS;
            return;
        }
        if (m->starttls == SMTP_OUT_STARTTLS_MUST) {
            close_session(m, SMTP_OUT_TLS_NOT_OFFERED, true, "TLS required but not offered");
            return;
        }
    }
    if (m->user != NULL)
        auth_start(m);
    else
        become_ready(m);
}

static void
on_greeting(struct smtp_out *m, int code)
{
    if (code / 100 == 2)
        send_hello(m, m->use_ehlo ? "EHLO " : "HELO ");
    else if (code / 100 == 3)
        proto_error(m, "unexpected greeting code");
    else
        close_session(m, SMTP_OUT_GREETING_FAILED, true, NULL);
}

static void
on_hello(struct smtp_out *m, int code)
{
    if (code / 100 == 2) {
        m->ext = m->state == ST_EHLO ? m->pending_ext : 0;
        m->size_limit = m->state == ST_EHLO ? m->pending_size : 0;
        after_hello(m);
    } else if (code / 100 == 3) {
        proto_error(m, "unexpected reply to EHLO/HELO");
    } else if (code / 100 == 5 && m->state == ST_EHLO) {
        send_hello(m, "HELO "); /* RFC 5321 3.2: fall back, no extensions */
    } else {
        close_session(m, SMTP_OUT_HELO_FAILED, true, NULL);
    }
}

static void
on_starttls(struct smtp_out *m, int code)
{
    if (code == 220) {
        /* What follows the 220 in the clear is discarded (RFC 3207 6). */
        m->state = ST_TLS;
        m->linelen = 0;
        ev_push(m, SMTP_OUT_START_TLS);
    } else if (code / 100 != 4 && code / 100 != 5) {
        proto_error(m, "unexpected reply to STARTTLS");
    } else if (m->starttls == SMTP_OUT_STARTTLS_MUST) {
        close_session(m, SMTP_OUT_TLS_REFUSED, true, NULL);
    } else {
        m->tls_skipped = true; /* go on in clear, same session */
        after_hello(m);
    }
}

static void
on_auth(struct smtp_out *m, int code)
{
    const char *next = m->state == ST_LOGIN_USER ? m->user : m->pass;
    if (code == 334 && (m->state == ST_LOGIN_USER || m->state == ST_LOGIN_PASS)) {
        b64_line(m, "", (const unsigned char *)next, strlen(next));
        m->state = m->state == ST_LOGIN_USER ? ST_LOGIN_PASS : ST_LOGIN_DONE;
    } else if (code / 100 == 2 && (m->state == ST_AUTH_PLAIN || m->state == ST_LOGIN_DONE)) {
        become_ready(m);
    } else {
        close_session(m, SMTP_OUT_AUTH_FAILED, true, NULL);
    }
}

/* ---- transaction replies ---- */

static void
cmd_write(struct smtp_out *m, size_t i)
{
    const struct cmd *c = &m->tx.cmds[i];
    out_add(m, m->tx.lines.p + c->off, c->len);
}

static void
cmd_push_dot(struct tx *t)
{
    t->cmds[t->ncmds++] = (struct cmd){.kind = CMD_DOT};
    t->nsent = t->ncmds;
}

/* After a reply: send the next command (no PIPELINING), or finish. */
static void
tx_advance(struct smtp_out *m)
{
    struct tx *t = &m->tx;
    if (m->state != ST_TX || t->nreplied < t->nsent)
        return;
    if (t->nsent < t->ncmds && !t->mail_failed &&
        !(t->cmds[t->nsent].kind == CMD_DATA && t->naccepted == 0)) {
        cmd_write(m, t->nsent++);
        return;
    }
    settle_rest(m, 0, "no reply", SMTP_OUT_STAGE_NONE); /* cannot happen */
    tx_done(m);
    become_ready(m);
}

static bool
on_mail_rcpt(struct smtp_out *m, const struct cmd *c, int code)
{
    struct tx *t = &m->tx;
    if (code / 100 == 3) {
        proto_error(m, "unexpected 3xx reply to MAIL or RCPT");
        return false;
    }
    if (t->mail_failed || code / 100 == 2) {
        if (c->kind == CMD_RCPT && !t->mail_failed) {
            t->rstate[c->rcpt] = RS_ACCEPTED;
            t->naccepted++;
        }
        return true;
    }
    if (c->kind == CMD_MAIL) {
        t->mail_failed = true;
        settle_rest(m, code, tx_text(m), SMTP_OUT_STAGE_MAIL);
    } else {
        settle(m, c->rcpt, code, tx_text(m), SMTP_OUT_STAGE_RCPT);
    }
    return true;
}

static bool
on_data(struct smtp_out *m, int code)
{
    struct tx *t = &m->tx;
    if (code / 100 == 2) {
        proto_error(m, "unexpected 2xx reply to DATA");
        return false;
    }
    if (code / 100 != 3) {
        settle_rest(m, code, tx_text(m), SMTP_OUT_STAGE_DATA);
        return true;
    }
    if (t->mail_failed || t->naccepted == 0) {
        /* Pipelined, nobody accepted, 354 anyway: end the data at once
         * (RFC 2920 3.1); the recipients' verdicts stand. */
        t->discard = true;
        cmd_push_dot(t);
        out_str(m, ".\r\n");
        return true;
    }
    t->bol = true;
    m->state = ST_BODY;
    ev_push(m, SMTP_OUT_BODY_WANTED);
    return false;
}

static void
tx_reply(struct smtp_out *m, int code)
{
    struct tx *t = &m->tx;
    if (t->nreplied >= t->nsent) {
        proto_error(m, "unexpected reply");
        return;
    }
    const struct cmd *c = &t->cmds[t->nreplied++];
    bool go_on = true;
    if (c->kind == CMD_RSET && code / 100 != 2) {
        close_session(m, SMTP_OUT_PROTOCOL_ERROR, false, NULL);
        return;
    } else if (c->kind == CMD_MAIL || c->kind == CMD_RCPT) {
        go_on = on_mail_rcpt(m, c, code);
    } else if (c->kind == CMD_DATA) {
        go_on = on_data(m, code);
    } else if (c->kind == CMD_DOT && code / 100 == 3) {
        proto_error(m, "unexpected 3xx reply to the final dot");
        return;
    } else if (c->kind == CMD_DOT && !t->discard) {
        settle_rest(m, code, tx_text(m), SMTP_OUT_STAGE_DOT);
    }
    if (go_on)
        tx_advance(m);
}

static void
dispatch(struct smtp_out *m)
{
    int code = m->reply.code;
    if (code == 421) {
        close_session(m, SMTP_OUT_SERVER_SHUTDOWN, false, NULL);
        return;
    }
    switch (m->state) {
    case ST_GREETING:
        on_greeting(m, code);
        break;
    case ST_EHLO:
    case ST_HELO:
        on_hello(m, code);
        break;
    case ST_STARTTLS:
        on_starttls(m, code);
        break;
    case ST_AUTH_PLAIN:
    case ST_LOGIN_USER:
    case ST_LOGIN_PASS:
    case ST_LOGIN_DONE:
        on_auth(m, code);
        break;
    case ST_TX:
        tx_reply(m, code);
        break;
    default:
        proto_error(m, "unexpected reply");
        break;
    }
}

/* ---- reply parsing ---- */

static void
reply_add(struct reply *r, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r->len == TEXT_MAX) {
            memcpy(r->text + TEXT_MAX - 3, "...", 3);
            break;
        }
        unsigned char c = (unsigned char)s[i];
        r->text[r->len++] = c >= 32 && c < 127 ? (char)c : '?';
    }
    r->text[r->len] = '\0';
}

/* The number of digits at s, if there are 1 to max of them, else 0. */
static size_t
digits(const char *s, size_t n, size_t max)
{
    size_t i = 0;
    while (i < n && i <= max && s[i] >= '0' && s[i] <= '9')
        i++;
    return i <= max ? i : 0;
}

/* Length of an RFC 3463 status of the reply's class at s ("5.1.1"), or 0. */
static size_t
status_len(int code, const char *s, size_t n)
{
    if (n < 5 || s[0] != (char)('0' + code / 100) || s[1] != '.')
        return 0;
    size_t i = 2, d = digits(s + i, n - i, 3);
    if (d == 0 || i + d >= n || s[i + d] != '.')
        return 0;
    i += d + 1;
    d = digits(s + i, n - i, 3);
    if (d == 0)
        return 0;
    i += d;
    return i == n || s[i] == ' ' ? i : 0;
}

/* Whether s[0..n) is word (upper case), ignoring ASCII case. */
static bool
word_eq(const char *s, size_t n, const char *word)
{
    if (n != strlen(word))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]) != word[i])
            return false;
    return true;
}

/* "SIZE 10240000". The line is not NUL-terminated: no strtoull. */
static uint64_t
ehlo_size(const char *s, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    for (size_t d = 0; i < n && d < 19 && s[i] >= '0' && s[i] <= '9'; i++, d++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return v;
}

/* "AUTH PLAIN LOGIN", or the old "AUTH=LOGIN PLAIN". */
static void
ehlo_auth(struct smtp_out *m, const char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i = k) {
        while (i < n && (s[i] == ' ' || s[i] == '='))
            i++;
        for (k = i; k < n && s[k] != ' ';)
            k++;
        if (word_eq(s + i, k - i, "PLAIN"))
            m->pending_ext |= SMTP_OUT_EXT_AUTH_PLAIN;
        if (word_eq(s + i, k - i, "LOGIN"))
            m->pending_ext |= SMTP_OUT_EXT_AUTH_LOGIN;
    }
}

static void
ehlo_keyword(struct smtp_out *m, const char *s, size_t n)
{
    static const struct {
        const char *word;
        unsigned bit;
    } tab[] = {{"PIPELINING", SMTP_OUT_EXT_PIPELINING},
               {"SIZE", SMTP_OUT_EXT_SIZE},
               {"STARTTLS", SMTP_OUT_EXT_STARTTLS},
               {"DSN", SMTP_OUT_EXT_DSN},
               {"8BITMIME", SMTP_OUT_EXT_8BITMIME},
               {"ENHANCEDSTATUSCODES", SMTP_OUT_EXT_ENHANCEDSTATUSCODES},
               {"AUTH", 0}};
    size_t k = 0;
    while (k < n && s[k] != ' ' && s[k] != '=')
        k++;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (!word_eq(s, k, tab[i].word))
            continue;
        m->pending_ext |= tab[i].bit;
        if (tab[i].bit == SMTP_OUT_EXT_SIZE)
            m->pending_size = ehlo_size(s + k, n - k);
        if (tab[i].bit == 0)
            ehlo_auth(m, s + k, n - k);
    }
}

static void
reply_start(struct smtp_out *m, int code, const char *s, size_t n)
{
    struct reply *r = &m->reply;
    size_t sl = n > 4 ? status_len(code, s + 4, n - 4) : 0;
    r->code = code;
    r->len = 0;
    memcpy(r->status, s + 4, sl);
    r->status[sl] = '\0';
    reply_add(r, s, 3);
    if (n > 4) {
        reply_add(r, " ", 1);
        reply_add(r, s + 4, n - 4);
    }
    m->pending_ext = 0;
    m->pending_size = 0;
}

/* A continuation line joins the text after a space, without repeating
 * the status code of the first line. */
static void
reply_more(struct reply *r, const char *s, size_t n)
{
    size_t sl = strlen(r->status);
    if (n <= 4)
        return;
    s += 4;
    n -= 4;
    if (sl > 0 && n >= sl && memcmp(s, r->status, sl) == 0 && (n == sl || s[sl] == ' ')) {
        s += sl;
        n -= sl;
    }
    while (n > 0 && *s == ' ') {
        s++;
        n--;
    }
    if (n > 0) {
        reply_add(r, " ", 1);
        reply_add(r, s, n);
    }
}

static void
line_parse(struct smtp_out *m, const char *s, size_t n)
{
    struct reply *r = &m->reply;
    if (n < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' || s[2] < '0' || s[2] > '9' ||
        (n > 3 && s[3] != ' ' && s[3] != '-')) {
        proto_error(m, "malformed reply line");
        return;
    }
    int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (r->nlines > 0 && code != r->code) {
        proto_error(m, "reply continuation line with another code");
        return;
    }
    if (++r->nlines > m->max_lines) {
        proto_error(m, "reply with too many lines");
        return;
    }
    if (r->nlines == 1)
        reply_start(m, code, s, n);
    else
        reply_more(r, s, n);
    if (m->state == ST_EHLO && r->nlines > 1 && n > 4)
        ehlo_keyword(m, s + 4, n - 4);
    if (n == 3 || s[3] == ' ') {
        r->nlines = 0;
        r->serial++;
        dispatch(m);
    }
}

static void
line_done(struct smtp_out *m)
{
    size_t n = m->linelen;
    m->linelen = 0;
    if (n > 0 && m->line[n - 1] == '\r')
        n--;
    if (n + 2 > m->max_line)
        proto_error(m, "reply line too long");
    else
        line_parse(m, m->line, n);
}

/* ---- the interface ---- */

void
smtp_out_feed(struct smtp_out *m, const char *buf, size_t len)
{
    out_begin(m);
    while (len > 0 && m->state != ST_CLOSED && m->state != ST_TLS) {
        const char *nl = memchr(buf, '\n', len);
        size_t take = nl ? (size_t)(nl - buf) : len;
        if (take > m->max_line - 1 - m->linelen) {
            proto_error(m, "reply line too long");
            return;
        }
        memcpy(m->line + m->linelen, buf, take);
        m->linelen += take;
        if (nl == NULL)
            return;
        buf += take + 1;
        len -= take + 1;
        line_done(m);
    }
}

bool
smtp_out_next(struct smtp_out *m, struct smtp_out_act *act)
{
    *act = (struct smtp_out_act){.type = SMTP_OUT_NONE};
    while (m->evhead < m->nev) {
        const struct event *e = &m->ev[m->evhead++];
        if (e->type == SMTP_OUT_WRITE && e->len == 0)
            continue;
        act->type = e->type;
        if (e->type == SMTP_OUT_WRITE) {
            act->data = m->out.p + e->off;
            act->len = e->len;
        } else if (e->type == SMTP_OUT_MESSAGE_DONE) {
            act->results = m->tx.res;
            act->nresults = m->tx.nrcpts;
        } else if (e->type == SMTP_OUT_CLOSE) {
            act->outcome = m->outcome;
            act->code = m->close_code;
            act->text = m->close_text;
        }
        return true;
    }
    return false;
}

static bool
text_ok(const char *s, unsigned char lo, unsigned char hi)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < lo || c > hi || c == 127)
            return false;
    }
    return true;
}

static bool
params_ok(const struct smtp_out_params *p)
{
    if (p == NULL || p->helo_name == NULL || p->helo_name[0] == '\0' ||
        !text_ok(p->helo_name, 33, 126) || p->starttls > SMTP_OUT_STARTTLS_MUST)
        return false;
    if ((p->auth_user == NULL) != (p->auth_pass == NULL))
        return false;
    if (p->auth_user && (strlen(p->auth_user) > CRED_MAX || strlen(p->auth_pass) > CRED_MAX))
        return false;
    return p->max_line == 0 || (p->max_line >= 16 && p->max_line <= LINE_LIMIT);
}

struct smtp_out *
smtp_out_new(const struct smtp_out_params *p)
{
    if (!params_ok(p))
        return NULL;
    struct smtp_out *m = alloc(1, sizeof *m);
    m->helo = dup(p->helo_name);
    if (p->auth_user != NULL) {
        m->user = dup(p->auth_user);
        m->pass = dup(p->auth_pass);
    }
    m->use_ehlo = p->use_ehlo;
    m->starttls = p->starttls;
    m->tls_active = p->tls_active;
    m->max_line = p->max_line ? p->max_line : 512;
    m->max_lines = p->max_lines ? p->max_lines : 100;
    m->line = alloc(m->max_line, 1);
    m->state = ST_GREETING;
    return m;
}

void
smtp_out_free(struct smtp_out *m)
{
    if (m == NULL)
        return;
    if (m->pass != NULL)
        wipe(m->pass, strlen(m->pass));
    if (m->user != NULL && m->out.p != NULL)
        wipe(m->out.p, m->out.cap);
    tx_free(&m->tx);
    free(m->helo);
    free(m->user);
    free(m->pass);
    free(m->line);
    free(m->out.p);
    free(m->ev);
    free(m);
}

int
smtp_out_tls_done(struct smtp_out *m, bool ok)
{
    if (m->state != ST_TLS)
        return -EINVAL;
    out_begin(m);
    m->linelen = 0;
    m->reply.nlines = 0;
    if (!ok) {
        close_session(m, SMTP_OUT_TLS_FAILED, false, "TLS handshake failed");
        return 0;
    }
    m->tls_active = true;
    m->ext = 0;
    m->size_limit = 0;
    send_hello(m, "EHLO ");
    return 0;
}

static bool
msg_ok(const struct smtp_out_msg *msg)
{
    if (msg == NULL || msg->sender == NULL || msg->rcpts == NULL || msg->nrcpts == 0 ||
        msg->nrcpts > RCPTS_MAX || msg->ret > SMTP_OUT_RET_FULL)
        return false;
    if (!text_ok(msg->sender, 32, 255) || (msg->envid && !text_ok(msg->envid, 33, 126)))
        return false;
    for (size_t i = 0; i < msg->nrcpts; i++) {
        const struct smtp_out_rcpt *r = &msg->rcpts[i];
        if (r->address == NULL || r->address[0] == '\0' || !text_ok(r->address, 32, 255) ||
            (r->orcpt && !text_ok(r->orcpt, 33, 126)))
            return false;
    }
    return true;
}

static void
tx_cmd(struct tx *t, enum cmd_kind kind, size_t off, size_t rcpt)
{
    t->cmds[t->ncmds++] =
        (struct cmd){.kind = kind, .off = off, .len = t->lines.len - off, .rcpt = rcpt};
}

static void
tx_mail(struct smtp_out *m, const struct smtp_out_msg *msg)
{
    struct buf *b = &m->tx.lines;
    size_t off = b->len;
    buf_str(b, "MAIL FROM:<");
    buf_str(b, msg->sender);
    buf_str(b, ">");
    if ((m->ext & SMTP_OUT_EXT_SIZE) && msg->size > 0) {
        char num[32];
        snprintf(num, sizeof num, " SIZE=%" PRIu64, msg->size);
        buf_str(b, num);
    }
    if (msg->body_8bit && (m->ext & SMTP_OUT_EXT_8BITMIME))
        buf_str(b, " BODY=8BITMIME");
    if ((m->ext & SMTP_OUT_EXT_DSN) && msg->ret != SMTP_OUT_RET_NONE)
        buf_str(b, msg->ret == SMTP_OUT_RET_FULL ? " RET=FULL" : " RET=HDRS");
    if ((m->ext & SMTP_OUT_EXT_DSN) && msg->envid && msg->envid[0]) {
        buf_str(b, " ENVID=");
        buf_str(b, msg->envid);
    }
    buf_str(b, "\r\n");
    tx_cmd(&m->tx, CMD_MAIL, off, 0);
}

static void
tx_rcpt(struct smtp_out *m, const struct smtp_out_rcpt *r, size_t i)
{
    static const struct {
        unsigned bit;
        const char *word;
    } tab[] = {{SMTP_OUT_NOTIFY_NEVER, "NEVER"},
               {SMTP_OUT_NOTIFY_SUCCESS, "SUCCESS"},
               {SMTP_OUT_NOTIFY_FAILURE, "FAILURE"},
               {SMTP_OUT_NOTIFY_DELAY, "DELAY"}};
    struct buf *b = &m->tx.lines;
    size_t off = b->len;
    bool dsn = m->ext & SMTP_OUT_EXT_DSN;
    const char *sep = " NOTIFY=";
    buf_str(b, "RCPT TO:<");
    buf_str(b, r->address);
    buf_str(b, ">");
    for (size_t k = 0; dsn && k < sizeof tab / sizeof tab[0]; k++) {
        if (!(r->notify & tab[k].bit))
            continue;
        buf_str(b, sep);
        buf_str(b, tab[k].word);
        sep = ",";
        if (tab[k].bit == SMTP_OUT_NOTIFY_NEVER)
            break; /* NEVER stands alone (RFC 3461 4.1) */
    }
    if (dsn && r->orcpt && r->orcpt[0]) {
        buf_str(b, " ORCPT=");
        buf_str(b, r->orcpt);
    }
    buf_str(b, "\r\n");
    tx_cmd(&m->tx, CMD_RCPT, off, i);
    m->tx.notify[i] = r->notify;
}

static void
tx_build(struct smtp_out *m, const struct smtp_out_msg *msg)
{
    struct tx *t = &m->tx;
    size_t n = msg->nrcpts;
    tx_free(t);
    /* RSET, MAIL, n RCPT, DATA and the dot; a text per reply and one more. */
    t->cmds = alloc(n + 4, sizeof *t->cmds);
    t->texts = alloc(n + 5, sizeof *t->texts);
    t->res = alloc(n, sizeof *t->res);
    t->rstate = alloc(n, 1);
    t->notify = alloc(n, sizeof *t->notify);
    t->nrcpts = n;
    t->active = true;
    if (m->need_rset) {
        buf_str(&t->lines, "RSET\r\n");
        tx_cmd(t, CMD_RSET, 0, 0);
    }
    tx_mail(m, msg);
    for (size_t i = 0; i < n; i++)
        tx_rcpt(m, &msg->rcpts[i], i);
    size_t off = t->lines.len;
    buf_str(&t->lines, "DATA\r\n");
    tx_cmd(t, CMD_DATA, off, 0);
}

int
smtp_out_send(struct smtp_out *m, const struct smtp_out_msg *msg)
{
    struct tx *t = &m->tx;
    if (m->evhead != m->nev)
        return -EBUSY;
    if (m->state != ST_READY || !msg_ok(msg))
        return -EINVAL;
    if (m->starttls == SMTP_OUT_STARTTLS_MUST && !m->tls_active)
        return -EPERM; /* never MAIL FROM in clear (SPEC §4) */
    out_begin(m);
    tx_build(m, msg);
    m->state = ST_TX;
    if (m->ext & SMTP_OUT_EXT_PIPELINING) {
        out_add(m, t->lines.p, t->lines.len);
        t->nsent = t->ncmds;
    } else {
        cmd_write(m, t->nsent++);
    }
    return 0;
}

/* Dot-stuff s into d (room for 2n + 2): a bare CR or LF becomes CRLF, a
 * line starting with '.' gets another. Returns the end of the output. */
static char *
stuff(struct tx *t, const char *s, size_t n, char *d)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (t->cr) {
            t->cr = false;
            *d++ = '\r';
            *d++ = '\n';
            t->bol = true;
            if (c == '\n')
                continue;
        }
        if (c == '\r' || c == '\n') {
            t->cr = c == '\r';
            if (c == '\n') {
                *d++ = '\r';
                *d++ = '\n';
                t->bol = true;
            }
            continue;
        }
        if (t->bol && c == '.')
            *d++ = '.';
        *d++ = c;
        t->bol = false;
    }
    return d;
}

int
smtp_out_body(struct smtp_out *m, const char *buf, size_t len, bool last)
{
    struct tx *t = &m->tx;
    if (m->state != ST_BODY || (len > 0 && buf == NULL) || len > (SIZE_MAX - 16) / 2)
        return -EINVAL;
    out_begin(m);
    char *d = out_reserve(m, 2 * len + 8), *p = stuff(t, buf, len, d);
    if (last) {
        if (t->cr || !t->bol) {
            memcpy(p, "\r\n", 2);
            p += 2;
        }
        memcpy(p, ".\r\n", 3);
        p += 3;
        cmd_push_dot(t);
        m->state = ST_TX;
    }
    out_commit(m, (size_t)(p - d));
    return 0;
}

int
smtp_out_quit(struct smtp_out *m)
{
    if (m->state != ST_READY)
        return -EINVAL;
    out_begin(m);
    close_session(m, SMTP_OUT_OK_QUIT, true, "");
    return 0;
}

void
smtp_out_eof(struct smtp_out *m)
{
    out_begin(m);
    close_session(m, SMTP_OUT_CONNECTION_LOST, false, "connection lost");
}

void
smtp_out_timeout(struct smtp_out *m)
{
    static const char *const why[] = {[SMTP_OUT_WAIT_NONE] = "timeout",
                                      [SMTP_OUT_WAIT_GREETING] = "timeout waiting for the greeting",
                                      [SMTP_OUT_WAIT_COMMAND] = "timeout waiting for a reply",
                                      [SMTP_OUT_WAIT_TLS] = "timeout in the TLS handshake",
                                      [SMTP_OUT_WAIT_DATA_BLOCK] = "timeout sending the message",
                                      [SMTP_OUT_WAIT_DATA_END] =
                                          "timeout waiting for the reply to the final dot"};
    out_begin(m);
    close_session(m, SMTP_OUT_TIMEOUT, false, why[smtp_out_waiting(m)]);
}

enum smtp_out_wait
smtp_out_waiting(const struct smtp_out *m)
{
    switch (m->state) {
    case ST_GREETING:
        return SMTP_OUT_WAIT_GREETING;
    case ST_TLS:
        return SMTP_OUT_WAIT_TLS;
    case ST_BODY:
        return SMTP_OUT_WAIT_DATA_BLOCK;
    case ST_READY:
    case ST_CLOSED:
        return SMTP_OUT_WAIT_NONE;
    case ST_TX:
        return tx_at_dot(&m->tx) ? SMTP_OUT_WAIT_DATA_END : SMTP_OUT_WAIT_COMMAND;
    default:
        return SMTP_OUT_WAIT_COMMAND;
    }
}

unsigned
smtp_out_replies(const struct smtp_out *m)
{
    return m->reply.serial;
}

unsigned
smtp_out_extensions(const struct smtp_out *m)
{
    return m->ext;
}

uint64_t
smtp_out_size_limit(const struct smtp_out *m)
{
    return m->size_limit;
}

const char *
smtp_out_outcome_name(enum smtp_out_outcome o)
{
    static const char *const names[] = {[SMTP_OUT_OK_QUIT] = "ok",
                                        [SMTP_OUT_GREETING_FAILED] = "greeting_failed",
                                        [SMTP_OUT_HELO_FAILED] = "helo_failed",
                                        [SMTP_OUT_SERVER_SHUTDOWN] = "server_shutdown",
                                        [SMTP_OUT_TLS_NOT_OFFERED] = "tls_not_offered",
                                        [SMTP_OUT_TLS_REFUSED] = "tls_refused",
                                        [SMTP_OUT_TLS_FAILED] = "tls_failed",
                                        [SMTP_OUT_AUTH_FAILED] = "auth_failed",
                                        [SMTP_OUT_PROTOCOL_ERROR] = "protocol_error",
                                        [SMTP_OUT_CONNECTION_LOST] = "connection_lost",
                                        [SMTP_OUT_TIMEOUT] = "timeout"};
    if ((unsigned)o >= sizeof names / sizeof names[0])
        return "unknown";
    return names[o];
}
