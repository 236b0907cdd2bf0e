/* DATA phase scanning for the smtp_in machine: dot-unstuffing, end of data,
 * RFC 1870 size, line rules, and the header facts (priority, Received:).
 * The priority rules mirror connector_priority_from_header(), which this
 * libc-only machine may not call. */
#include "core/smtp_in_data.h"

#include <string.h>

/* Header scanner states: where in the header section the current octet is. */
enum { H_BOL, H_NAME, H_NAME_WS, H_VALUE, H_BODY };
/* The header field being read: its rank in the priority order (SPEC §3). */
enum { K_OTHER = 0, K_PRIORITY = 1, K_XPRIORITY = 2, K_IMPORTANCE = 3 };
/* Value token states: leading space, the token, after it, a comment, bad. */
enum { V_LEAD, V_TOKEN, V_TRAIL, V_COMMENT, V_BAD };

static int
lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static bool
span_is(const char *s, size_t n, const char *word)
{
    if (strlen(word) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lower((unsigned char)word[i]))
            return false;
    return true;
}

static bool
is_wsp(int c)
{
    return c == ' ' || c == '\t';
}

void
smtp_in_data_init(struct smtp_in_data *d, uint64_t max_size)
{
    memset(d, 0, sizeof *d);
    d->max_size = max_size;
    d->bol = true;
    d->hstate = H_BOL;
    d->prio = SMTP_IN_PRIO_NORMAL;
}

static void
fail(struct smtp_in_data *d, enum smtp_in_data_err e)
{
    if (d->err == SMTP_IN_DATA_OK)
        d->err = e;
}

/* The priority a finished header value states, or -1. */
static int
token_priority(int kind, const char *t, size_t n)
{
    if (kind == K_IMPORTANCE)
        return span_is(t, n, "high")     ? SMTP_IN_PRIO_HIGH
               : span_is(t, n, "normal") ? SMTP_IN_PRIO_NORMAL
               : span_is(t, n, "low")    ? SMTP_IN_PRIO_LOW
                                         : -1;
    if (kind == K_XPRIORITY) {
        if (n != 1 || t[0] < '1' || t[0] > '5')
            return -1;
        return t[0] <= '2'   ? SMTP_IN_PRIO_HIGH
               : t[0] == '3' ? SMTP_IN_PRIO_NORMAL
                             : SMTP_IN_PRIO_LOW;
    }
    return span_is(t, n, "urgent")       ? SMTP_IN_PRIO_HIGH
           : span_is(t, n, "normal")     ? SMTP_IN_PRIO_NORMAL
           : span_is(t, n, "non-urgent") ? SMTP_IN_PRIO_LOW
                                         : -1;
}

/* A header field is complete: keep its priority if it outranks the rest
 * (the first field of the highest rank wins). */
static void
field_end(struct smtp_in_data *d)
{
    int kind = d->hkind;
    d->hkind = K_OTHER;
    if (kind == K_OTHER || d->vstate == V_LEAD || d->vstate == V_BAD)
        return;
    int p = token_priority(kind, d->tok, d->tlen);
    if (p >= 0 && kind > d->rank) {
        d->rank = kind;
        d->prio = (enum smtp_in_priority)p;
    }
}

static void
field_start(struct smtp_in_data *d)
{
    const char *n = d->name;
    size_t len = d->nlen > sizeof d->name ? 0 : d->nlen;
    d->hkind = span_is(n, len, "Importance")   ? K_IMPORTANCE
               : span_is(n, len, "X-Priority") ? K_XPRIORITY
               : span_is(n, len, "Priority")   ? K_PRIORITY
                                               : K_OTHER;
    d->vstate = V_LEAD;
    d->tlen = 0;
    if (span_is(n, len, "Received") && ++d->received > SMTP_IN_DATA_RECEIVED_MAX)
        fail(d, SMTP_IN_DATA_LOOP);
    d->hstate = H_VALUE;
}

/* One octet of an (unfolded) interesting value: the first token, then only
 * white space or a comment. */
static void
value_octet(struct smtp_in_data *d, int c)
{
    bool tokc =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    switch (d->vstate) {
    case V_LEAD:
    case V_TOKEN:
        if (tokc && d->tlen < sizeof d->tok) {
            d->tok[d->tlen++] = (char)c;
            d->vstate = V_TOKEN;
        } else if (is_wsp(c)) {
            d->vstate = d->vstate == V_LEAD ? V_LEAD : V_TRAIL;
        } else {
            d->vstate = (c == '(' && d->vstate == V_TOKEN) ? V_COMMENT : V_BAD;
        }
        break;
    case V_TRAIL:
        if (!is_wsp(c))
            d->vstate = c == '(' ? V_COMMENT : V_BAD;
        break;
    default:
        break;
    }
}

/* One content octet (not the line's CR or LF) of the header section. */
static void
header_octet(struct smtp_in_data *d, int c)
{
    switch (d->hstate) {
    case H_BOL:
        if (is_wsp(c)) {
            /* A folded continuation of the field before. */
            d->hstate = d->hkind == K_OTHER && d->nlen == 0 ? H_BODY : H_VALUE;
            if (d->hkind != K_OTHER)
                value_octet(d, c);
            return;
        }
        field_end(d);
        d->nlen = 0;
        d->hstate = H_NAME;
        /* fall through */
    case H_NAME:
        if (c == ':' && d->nlen > 0)
            field_start(d);
        else if (is_wsp(c) && d->nlen > 0)
            d->hstate = H_NAME_WS;
        else if (c > 32 && c < 127 && c != ':') {
            if (d->nlen < sizeof d->name)
                d->name[d->nlen] = (char)c;
            d->nlen++;
        } else
            d->hstate = H_BODY;
        return;
    case H_NAME_WS:
        if (c == ':')
            field_start(d);
        else if (!is_wsp(c))
            d->hstate = H_BODY;
        return;
    case H_VALUE:
        if (d->hkind != K_OTHER)
            value_octet(d, c);
        return;
    default:
        return;
    }
}

/* The CRLF of a header section line. */
static void
header_eol(struct smtp_in_data *d)
{
    if (d->hstate == H_VALUE) {
        d->hstate = H_BOL;
        return;
    }
    /* An empty line, or a line that is no header field: the body starts. */
    if (d->hstate != H_BODY)
        field_end(d);
    d->hstate = H_BODY;
}

/* A content octet of the current line. */
static void
content(struct smtp_in_data *d, char *buf, size_t *w, int c)
{
    if (c == '\0')
        fail(d, SMTP_IN_DATA_BARE);
    if (++d->line > SMTP_IN_DATA_LINE_MAX - 2)
        fail(d, SMTP_IN_DATA_LONG);
    d->size++;
    if (d->err == SMTP_IN_DATA_OK && d->hstate != H_BODY)
        header_octet(d, c);
    if (d->err == SMTP_IN_DATA_OK)
        buf[(*w)++] = (char)c;
}

/* The LF of a CRLF: the end of a line, or of the data. */
static void
line_end(struct smtp_in_data *d, char *buf, size_t *w)
{
    if (d->dotline) {
        d->done = true;
        if (d->hstate != H_BODY)
            field_end(d);
        return;
    }
    d->size += 2;
    if (d->err == SMTP_IN_DATA_OK && d->hstate != H_BODY)
        header_eol(d);
    if (d->err == SMTP_IN_DATA_OK)
        buf[(*w)++] = '\n';
    d->line = 0;
    d->bol = true;
}

/* A CR: written at once, except after a lone stuffed dot, where it may be
 * the end of data (and is then never part of the body). */
static void
carriage_return(struct smtp_in_data *d, char *buf, size_t *w)
{
    d->cr = true;
    if (!d->dotline && d->err == SMTP_IN_DATA_OK)
        buf[(*w)++] = '\r';
}

static void
octet(struct smtp_in_data *d, char *buf, size_t *w, int c)
{
    if (d->cr) {
        d->cr = false;
        if (c == '\n') {
            line_end(d, buf, w);
            return;
        }
        /* A bare CR: and the line can no longer be the end of data. */
        fail(d, SMTP_IN_DATA_BARE);
        d->dotline = false;
    }
    bool start = d->bol;
    d->bol = false;
    if (start && c == '.') {
        d->dotline = true;
        return;
    }
    if (c == '\r') {
        carriage_return(d, buf, w);
        return;
    }
    d->dotline = false;
    if (c == '\n') {
        /* A bare LF ends nothing: no line start, so no end of data. */
        fail(d, SMTP_IN_DATA_BARE);
        return;
    }
    content(d, buf, w, c);
}

size_t
smtp_in_data_scan(struct smtp_in_data *d, char *buf, size_t n, size_t *out)
{
    size_t r = 0, w = 0;
    while (r < n && !d->done) {
        octet(d, buf, &w, (unsigned char)buf[r]);
        r++;
        if (d->max_size > 0 && d->size > d->max_size)
            fail(d, SMTP_IN_DATA_SIZE);
    }
    *out = w;
    return r;
}
