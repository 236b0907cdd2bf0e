/* MAIL and RCPT argument parsing for the smtp_in machine (RFC 5321 4.1.2,
 * RFC 1870, RFC 6152, RFC 3461). Everything here is hostile input. */
#include "core/smtp_in_args.h"

#include <string.h>

#define MAX_LOCAL 64
#define MAX_DOMAIN 255
#define MAX_PATH 256

static const char E_MAIL_SYNTAX[] = "501 5.5.4 Syntax: MAIL FROM:<address>";
static const char E_RCPT_SYNTAX[] = "501 5.5.4 Syntax: RCPT TO:<address>";
static const char E_ADDR[] = "501 5.1.3 Bad address syntax";
static const char E_ADDR_LONG[] = "501 5.1.3 Address too long";
static const char E_NULL_RCPT[] = "501 5.1.3 Null recipient not allowed";
static const char E_PARAM_HELO[] = "555 5.5.4 Parameters need EHLO";
static const char E_PARAM_UNKNOWN[] = "555 5.5.4 Unsupported parameter";
static const char E_PARAM_VALUE[] = "501 5.5.4 Bad parameter value";
static const char E_PARAM_DUP[] = "501 5.5.4 Duplicate parameter";

static bool
is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int
lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Does s[0..n) equal word, ignoring ASCII case? */
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
is_atext(int c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Dot-string = Atom *("." Atom). Returns octets taken, 0 if none. */
static size_t
dot_string(const char *s)
{
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (is_atext((unsigned char)s[i]))
            i++;
        if (i == start)
            return 0;
        if (s[i] != '.')
            return i;
        i++;
    }
}

/* Quoted-string with qtextSMTP and quoted-pairSMTP. */
static size_t
quoted_string(const char *s)
{
    size_t i = 1;
    for (;;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            unsigned char q = (unsigned char)s[i + 1];
            if (q < 32 || q > 126)
                return 0;
            i += 2;
        } else if (c >= 32 && c <= 126) {
            i++;
        } else {
            return 0;
        }
    }
}

/* sub-domain = Let-dig [Ldh-str]; returns its length or 0. */
static size_t
sub_domain(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '-'))
        i++;
    if (i == 0 || s[0] == '-' || s[i - 1] == '-')
        return 0;
    return i;
}

/* Domain = sub-domain *("." sub-domain), one trailing dot allowed (the
 * router drops it). Returns the octets taken from s[0..n), or 0. */
static size_t
domain_span(const char *s, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t k = sub_domain(s + i, n - i);
        if (k == 0)
            return i; /* 0, or just past a trailing dot */
        i += k;
        if (i >= n || s[i] != '.')
            return i;
        i++;
    }
}

bool
smtp_in_args_domain(const char *s, size_t n)
{
    return n > 0 && domain_span(s, n) == n && n <= MAX_DOMAIN;
}

/* address-literal, loosely: "[" 1*dcontent "]" (the router refuses them as
 * recipients; as senders they are valid). */
static size_t
addr_literal(const char *s)
{
    size_t i = 1;
    while ((s[i] >= 33 && s[i] <= 90) || (s[i] >= 94 && s[i] <= 126))
        i++;
    return (i > 1 && s[i] == ']') ? i + 1 : 0;
}

/* A-d-l ":" (a source route): "@a,@b:". Returns octets taken or 0. */
static size_t
source_route(const char *s)
{
    size_t i = 0;
    for (;;) {
        if (s[i] != '@')
            return 0;
        i++;
        size_t k = domain_span(s + i, strlen(s + i));
        if (k == 0)
            return 0;
        i += k;
        if (s[i] == ':')
            return i + 1;
        if (s[i] != ',')
            return 0;
        i++;
    }
}

/* Mailbox = Local-part "@" (Domain / address-literal). Sets the lengths of
 * the local part and the domain; returns octets taken or 0. */
static size_t
mailbox(const char *s, size_t *local, size_t *dom)
{
    size_t i = s[0] == '"' ? quoted_string(s) : dot_string(s);
    if (i == 0 || s[i] != '@')
        return 0;
    *local = i;
    i++;
    size_t k = s[i] == '[' ? addr_literal(s + i) : domain_span(s + i, strlen(s + i));
    if (k == 0)
        return 0;
    *dom = k;
    return i + k;
}

/* Path = "<" [A-d-l ":"] Mailbox ">", or "<>" when allowed. Copies the
 * mailbox to out; *used gets the octets taken from s. */
static const char *
path(const char *s, bool null_ok, char *out, size_t *used)
{
    size_t i = 1, local = 0, dom = 0;
    if (s[0] != '<')
        return E_ADDR;
    if (s[1] == '>') {
        out[0] = '\0';
        *used = 2;
        return null_ok ? NULL : E_NULL_RCPT;
    }
    if (s[1] == '@') {
        size_t k = source_route(s + 1);
        if (k == 0)
            return E_ADDR;
        i += k;
    }
    size_t k = mailbox(s + i, &local, &dom);
    /* An unquoted second '@' stops the domain and lands here. */
    if (k == 0 || s[i + k] != '>')
        return E_ADDR;
    if (local > MAX_LOCAL || dom > MAX_DOMAIN || i + k + 1 > MAX_PATH)
        return E_ADDR_LONG;
    *used = i + k + 1;
    /* One trailing dot of the domain is tolerated but not kept: the
     * address is passed on, and "u@x.org." is no RFC 5321 Mailbox. */
    if (s[i + k - 1] == '.')
        k--;
    memcpy(out, s + i, k);
    out[k] = '\0';
    return NULL;
}

/* "FROM:" or "TO:" in any case, then optional spaces (a common laxity). */
static const char *
skip_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (!span_is(s, n, prefix))
        return NULL;
    s += n;
    while (*s == ' ')
        s++;
    return s;
}

static bool
xtext_ok(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '+') {
            if (i + 2 >= n)
                return false;
            const char *hex = "0123456789ABCDEFabcdef";
            if (strchr(hex, v[i + 1]) == NULL || strchr(hex, v[i + 2]) == NULL)
                return false;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return n > 0;
}

static bool
parse_size(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *out = x;
    return true;
}

/* NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY. */
static bool
parse_notify(const char *v, size_t n, unsigned *out)
{
    unsigned bits = 0;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        if (span_is(v + i, j - i, "NEVER"))
            bits |= SMTP_IN_NOTIFY_NEVER;
        else if (span_is(v + i, j - i, "SUCCESS"))
            bits |= SMTP_IN_NOTIFY_SUCCESS;
        else if (span_is(v + i, j - i, "FAILURE"))
            bits |= SMTP_IN_NOTIFY_FAILURE;
        else if (span_is(v + i, j - i, "DELAY"))
            bits |= SMTP_IN_NOTIFY_DELAY;
        else
            return false;
        i = j + 1;
    }
    if ((bits & SMTP_IN_NOTIFY_NEVER) && bits != SMTP_IN_NOTIFY_NEVER)
        return false;
    *out = bits;
    return true;
}

/* ORCPT=addr-type ";" xtext. */
static bool
orcpt_ok(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n && is_atext((unsigned char)v[i]))
        i++;
    return i > 0 && i < n && v[i] == ';' && n <= SMTP_IN_ARGS_ORCPT_MAX &&
           xtext_ok(v + i + 1, n - i - 1);
}

static void
keep_xtext(struct smtp_in_args *out, const char *v, size_t n)
{
    memcpy(out->xtext, v, n);
    out->xtext[n] = '\0';
    out->has_xtext = true;
}

/* One MAIL parameter. bit gets the flag used for duplicate detection. */
static const char *
mail_param(const char *k, size_t kn, const char *v, size_t vn, bool auth, struct smtp_in_args *out,
           unsigned *bit)
{
    if (span_is(k, kn, "SIZE")) {
        *bit = 1;
        out->has_size = true;
        return parse_size(v, vn, &out->size) ? NULL : E_PARAM_VALUE;
    }
    if (span_is(k, kn, "BODY")) {
        *bit = 2;
        out->body = span_is(v, vn, "7BIT")       ? SMTP_IN_BODY_7BIT
                    : span_is(v, vn, "8BITMIME") ? SMTP_IN_BODY_8BITMIME
                                                 : SMTP_IN_BODY_NONE;
        return out->body == SMTP_IN_BODY_NONE ? E_PARAM_VALUE : NULL;
    }
    if (span_is(k, kn, "RET")) {
        *bit = 4;
        out->ret = span_is(v, vn, "FULL")   ? SMTP_IN_RET_FULL
                   : span_is(v, vn, "HDRS") ? SMTP_IN_RET_HDRS
                                            : SMTP_IN_RET_NONE;
        return out->ret == SMTP_IN_RET_NONE ? E_PARAM_VALUE : NULL;
    }
    if (span_is(k, kn, "ENVID")) {
        *bit = 8;
        if (vn > SMTP_IN_ARGS_ENVID_MAX || !xtext_ok(v, vn))
            return E_PARAM_VALUE;
        keep_xtext(out, v, vn);
        return NULL;
    }
    if (auth && span_is(k, kn, "AUTH")) {
        /* RFC 4954 §5: accepted and not trusted; we keep nothing of it. */
        *bit = 16;
        return vn > 0 ? NULL : E_PARAM_VALUE;
    }
    return E_PARAM_UNKNOWN;
}

static const char *
rcpt_param(const char *k, size_t kn, const char *v, size_t vn, struct smtp_in_args *out,
           unsigned *bit)
{
    if (span_is(k, kn, "NOTIFY")) {
        *bit = 1;
        return parse_notify(v, vn, &out->notify) ? NULL : E_PARAM_VALUE;
    }
    if (span_is(k, kn, "ORCPT")) {
        *bit = 2;
        if (!orcpt_ok(v, vn))
            return E_PARAM_VALUE;
        keep_xtext(out, v, vn);
        return NULL;
    }
    return E_PARAM_UNKNOWN;
}

/* The parameters after a path: SP-separated keyword[=value]. */
static const char *
params(const char *p, bool esmtp, bool mail, bool auth, struct smtp_in_args *out)
{
    unsigned seen = 0;
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return NULL;
        if (!esmtp)
            return E_PARAM_HELO;
        const char *k = p, *v = NULL;
        while (is_alnum((unsigned char)*p) || (*p == '-' && p != k))
            p++;
        size_t kn = (size_t)(p - k), vn = 0;
        if (*p == '=') {
            v = ++p;
            while ((*p >= 33 && *p <= 60) || (*p >= 62 && *p <= 126))
                p++;
            vn = (size_t)(p - v);
        }
        if (kn == 0 || (*p != ' ' && *p != '\0'))
            return mail ? E_MAIL_SYNTAX : E_RCPT_SYNTAX;
        unsigned bit = 0;
        const char *err = mail ? mail_param(k, kn, v ? v : "", vn, auth, out, &bit)
                               : rcpt_param(k, kn, v ? v : "", vn, out, &bit);
        if (err != NULL)
            return err;
        if (seen & bit)
            return E_PARAM_DUP;
        seen |= bit;
    }
}

static void
args_init(struct smtp_in_args *out)
{
    memset(out, 0, sizeof *out);
}

const char *
smtp_in_args_mail(const char *s, bool esmtp, bool auth, struct smtp_in_args *out)
{
    size_t used = 0;
    args_init(out);
    const char *p = skip_prefix(s, "FROM:");
    if (p == NULL || *p != '<')
        return E_MAIL_SYNTAX;
    const char *err = path(p, true, out->addr, &used);
    if (err != NULL)
        return err;
    p += used;
    if (*p != ' ' && *p != '\0')
        return E_ADDR;
    return params(p, esmtp, true, auth, out);
}

/* "<Postmaster>" in any case, with nothing else in the path. */
static bool
is_postmaster(const char *p)
{
    return span_is(p, 12, "<postmaster>") && (p[12] == ' ' || p[12] == '\0');
}

const char *
smtp_in_args_rcpt(const char *s, bool esmtp, const char *hostname, struct smtp_in_args *out)
{
    size_t used = 0;
    args_init(out);
    const char *p = skip_prefix(s, "TO:");
    if (p == NULL || *p != '<')
        return E_RCPT_SYNTAX;
    if (is_postmaster(p)) {
        size_t n = strlen(hostname);
        memcpy(out->addr, "postmaster@", 11);
        memcpy(out->addr + 11, hostname, n < MAX_DOMAIN ? n : MAX_DOMAIN);
        out->addr[11 + (n < MAX_DOMAIN ? n : MAX_DOMAIN)] = '\0';
        used = 12;
    } else {
        const char *err = path(p, false, out->addr, &used);
        if (err != NULL)
            return err;
    }
    p += used;
    if (*p != ' ' && *p != '\0')
        return E_ADDR;
    return params(p, esmtp, false, false, out);
}

bool
smtp_in_args_helo(const char *arg, char *out)
{
    while (*arg == ' ')
        arg++;
    size_t n = strcspn(arg, " ");
    if (n == 0 || n > MAX_DOMAIN)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)arg[i] <= 32 || (unsigned char)arg[i] >= 127)
            return false;
    memcpy(out, arg, n);
    out[n] = '\0';
    return true;
}

bool
smtp_in_args_domains(const char *s)
{
    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        if (!smtp_in_args_domain(s, n))
            return false;
        s += n;
        if (*s == ',' && *++s == '\0')
            return false;
    }
    return true;
}
