#include "connectors/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
oom(size_t n)
{
    fprintf(stderr, "bridgehead: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static int
lower_c(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

int
util_strcasecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = lower_c((unsigned char)*a), cb = lower_c((unsigned char)*b);
        if (ca != cb || ca == 0)
            return ca - cb;
    }
}

void
util_lower(char *s)
{
    for (; *s; s++)
        *s = (char)lower_c((unsigned char)*s);
}

static void
buf_reserve(struct util_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void
util_buf_append(struct util_buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
util_buf_puts(struct util_buf *b, const char *s)
{
    util_buf_append(b, s, strlen(s));
}

void
util_buf_printf(struct util_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* The length of the well-formed UTF-8 sequence at s (s[0] >= 0x80), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t
utf8_len(const unsigned char *s)
{
    size_t n;
    unsigned min;
    unsigned cp;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, min = 0x80, cp = s[0] & 0x1fu;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, min = 0x800, cp = s[0] & 0x0fu;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, min = 0x10000, cp = s[0] & 0x07u;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void
util_buf_json_str(struct util_buf *b, const char *s)
{
    if (s == NULL) {
        util_buf_puts(b, "null");
        return;
    }
    util_buf_puts(b, "\"");
    while (*s) {
        unsigned char c = (unsigned char)*s;
        size_t n = c >= 0x80 ? utf8_len((const unsigned char *)s) : 1;
        if (c == '"' || c == '\\')
            util_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            util_buf_puts(b, "\\n");
        else if (c < 0x20 || c == 0x7f)
            util_buf_printf(b, "\\u%04x", c);
        else if (n == 0) /* not UTF-8: JSON text must be */
            util_buf_puts(b, "\\ufffd");
        else
            util_buf_append(b, s, n);
        s += n ? n : 1;
    }
    util_buf_puts(b, "\"");
}

void
util_buf_reset(struct util_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void
util_buf_fini(struct util_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
