/* Command line framing and limits for the smtp_in machine. */
#include "core/smtp_in_line.h"

#include <string.h>

bool
smtp_in_line_verb(const char *buf, size_t n, const char *verb)
{
    size_t k = strlen(verb);
    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++) {
        char c = (buf[i] >= 'a' && buf[i] <= 'z') ? (char)(buf[i] - 'a' + 'A') : buf[i];
        if (c != verb[i])
            return false;
    }
    return true;
}

static bool
is_auth(const char *s, size_t n, bool in_auth)
{
    return in_auth || smtp_in_line_verb(s, n, "AUTH");
}

/* The longest line allowed, CRLF included, for the line starting at s. */
static size_t
limit(const char *s, size_t n, bool in_auth)
{
    if (is_auth(s, n, in_auth))
        return SMTP_IN_LINE_AUTH;
    if (smtp_in_line_verb(s, n, "MAIL"))
        return SMTP_IN_LINE_MAIL;
    if (smtp_in_line_verb(s, n, "RCPT"))
        return SMTP_IN_LINE_RCPT;
    return SMTP_IN_LINE_CMD;
}

/* Discarding a too-long line up to its LF. */
/* Does s[0..n) hold a NUL or a bare CR (one followed by anything but LF)?
 * cr: the octet before s was a CR; a CR at the end of s is left to the
 * next call. */
static bool
tainted(bool cr, const char *s, size_t n)
{
    if (cr && n > 0 && s[0] != '\n')
        return true;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || (s[i] == '\r' && i + 1 < n && s[i + 1] != '\n'))
            return true;
    return false;
}

/* Discarding a too-long line: a bare CR, a bare LF or a NUL in it makes it
 * a bad line (500 5.5.2 and close, SPEC §9), else it is only too long. */
static enum smtp_in_line_res
skip(struct smtp_in_line *l, const char *s, size_t n, size_t *used)
{
    const char *lf = memchr(s, '\n', n);
    size_t k = lf == NULL ? n : (size_t)(lf - s) + 1;
    l->bad = l->bad || tainted(l->cr, s, k);
    *used = k;
    if (lf == NULL) {
        l->cr = s[n - 1] == '\r';
        return SMTP_IN_LINE_MORE;
    }
    bool bare = k == 1 ? !l->cr : s[k - 2] != '\r';
    bool bad = bare || l->bad;
    l->skipping = false;
    l->bad = false;
    return bad ? SMTP_IN_LINE_BAD : SMTP_IN_LINE_LONG;
}

/* No LF yet: when the line is sure to be too long (it is at least this
 * long), start discarding it. */
static enum smtp_in_line_res
partial(struct smtp_in_line *l, const char *s, size_t n, bool in_auth, size_t *used)
{
    bool cr = s[n - 1] == '\r';
    if (n + (cr ? 1 : 2) <= limit(s, n, in_auth))
        return SMTP_IN_LINE_MORE;
    l->skipping = true;
    l->cr = cr;
    l->bad = tainted(false, s, n);
    l->auth = is_auth(s, n, in_auth);
    *used = n;
    return SMTP_IN_LINE_MORE;
}

enum smtp_in_line_res
smtp_in_line_next(struct smtp_in_line *l, char *buf, size_t n, bool in_auth, size_t *used,
                  char **line)
{
    *used = 0;
    if (n == 0)
        return SMTP_IN_LINE_MORE;
    if (l->skipping)
        return skip(l, buf, n, used);
    char *lf = memchr(buf, '\n', n);
    if (lf == NULL)
        return partial(l, buf, n, in_auth, used);
    size_t k = (size_t)(lf - buf) + 1;
    bool bare = k < 2 || buf[k - 2] != '\r';
    *used = k;
    /* Too long first, as when the line is discarded while it arrives. */
    if (k > limit(buf, k, in_auth)) {
        l->auth = is_auth(buf, k, in_auth);
        return bare || tainted(false, buf, k) ? SMTP_IN_LINE_BAD : SMTP_IN_LINE_LONG;
    }
    if (bare || memchr(buf, '\0', k) != NULL || memchr(buf, '\r', k - 2) != NULL)
        return SMTP_IN_LINE_BAD;
    k -= 2;
    while (k > 0 && (buf[k - 1] == ' ' || buf[k - 1] == '\t'))
        k--;
    buf[k] = '\0';
    *line = buf;
    return SMTP_IN_LINE_OK;
}
