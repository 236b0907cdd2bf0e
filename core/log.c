#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "connectors/util.h"

struct log {
    int fd;
    enum log_format format;
    enum log_level level;
    size_t max_buffer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    struct util_buf pending; /* lines waiting for the writer; guarded by mu */
    bool stopping;           /* guarded by mu */
    unsigned long dropped;   /* guarded by mu */
    atomic_ulong dropped_total;
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return; /* stderr is gone: nothing sensible is left to do */
        p += w;
        n -= (size_t)w;
    }
}

static void timestamp(char *buf, size_t len);

/* One finished line, newline included, in the log's format. */
static void
format_line(enum log_format format, enum log_level level, const char *text, struct util_buf *line)
{
    char ts[40];
    timestamp(ts, sizeof ts);
    if (format == LOG_FORMAT_JSON)
        log_kv_to_json(text, level_names[level], ts, line);
    else
        util_buf_printf(line, "%s level=%s ts=%s", text, level_names[level], ts);
    util_buf_puts(line, "\n");
}

static void *
writer_main(void *arg)
{
    struct log *l = arg;
    struct util_buf out = {0};
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (l->pending.len == 0 && l->dropped == 0 && !l->stopping)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->pending.len == 0 && l->dropped == 0 && l->stopping)
            break;
        struct util_buf tmp = out;
        out = l->pending;
        l->pending = tmp;
        util_buf_reset(&l->pending);
        unsigned long dropped = l->dropped;
        l->dropped = 0;
        pthread_mutex_unlock(&l->mu);
        if (dropped) {
            char text[64];
            snprintf(text, sizeof text, "event=log_dropped lines=%lu", dropped);
            format_line(l->format, LOG_WARN, text, &out);
        }
        write_all(l->fd, out.p, out.len);
        util_buf_reset(&out);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    util_buf_fini(&out);
    return NULL;
}

struct log *
log_new(int fd, enum log_format format, enum log_level level, size_t max_buffer)
{
    struct log *l = xcalloc(1, sizeof *l);
    l->fd = fd;
    l->format = format;
    l->level = level;
    l->max_buffer = max_buffer ? max_buffer : 4u << 20;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->thread, NULL, writer_main, l) != 0) {
        fprintf(stderr, "bridgehead: cannot start the log writer thread\n");
        abort();
    }
    return l;
}

void
log_free(struct log *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    util_buf_fini(&l->pending);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

bool
log_enabled(const struct log *l, enum log_level level)
{
    return l != NULL && level <= l->level;
}

static void
timestamp(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

/* Append one finished line under the lock, or count it as dropped. */
static void
enqueue(struct log *l, const char *line, size_t n)
{
    pthread_mutex_lock(&l->mu);
    if (l->pending.len + n > l->max_buffer) {
        l->dropped++;
        atomic_fetch_add(&l->dropped_total, 1);
    } else {
        util_buf_append(&l->pending, line, n);
    }
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void
log_vmsg(struct log *l, enum log_level level, const char *fmt, va_list ap)
{
    if (!log_enabled(l, level))
        return;
    char small[1024];
    struct util_buf kv = {0}, line = {0};
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof small) {
        kv.p = xmalloc((size_t)n + 1);
        vsnprintf(kv.p, (size_t)n + 1, fmt, ap);
    }
    format_line(l->format, level, kv.p ? kv.p : small, &line);
    enqueue(l, line.p, line.len);
    util_buf_fini(&line);
    free(kv.p);
}

void
log_msg(struct log *l, enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(l, level, fmt, ap);
    va_end(ap);
}

unsigned long
log_dropped(struct log *l)
{
    return atomic_load(&l->dropped_total);
}

static const char hexdigits[] = "0123456789abcdef";

static int
hexval(char c)
{
    const char *h = c ? strchr(hexdigits, c | 0x20) : NULL;
    return h ? (int)(h - hexdigits) : -1;
}

/* Append s[0] to out, or, for an escape at s, its byte; returns how many
 * bytes of s it took. */
static size_t
unescape_one(const char *s, bool quoted, struct util_buf *out)
{
    if (s[0] == '\\' && s[1] == 'x' && hexval(s[2]) >= 0 && hexval(s[3]) >= 0) {
        char c = (char)(hexval(s[2]) * 16 + hexval(s[3]));
        util_buf_append(out, &c, 1);
        return 4;
    }
    if (quoted && s[0] == '\\' && s[1] != '\0') {
        util_buf_append(out, s + 1, 1);
        return 2;
    }
    util_buf_append(out, s, 1);
    return 1;
}

/* Read one value at *p: "quoted with \" escapes" or up to the next space;
 * \xHH escapes (log_token, log_text) become their bytes. */
static void
kv_value(const char **p, struct util_buf *v)
{
    const char *s = *p;
    bool quoted = *s == '"';
    if (quoted)
        s++;
    while (*s && *s != (quoted ? '"' : ' '))
        s += unescape_one(s, quoted, v);
    if (quoted && *s == '"')
        s++;
    *p = s;
}

static const char *
escape(char *buf, size_t len, const char *s, bool quoted)
{
    size_t k = 0;
    if (len == 0)
        return buf;
    for (; s != NULL && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[5];
        size_t n;
        if (quoted ? (c < 0x20 || c == 0x7f) : (c <= ' ' || c >= 0x7f || c == '"' || c == '\\')) {
            e[0] = '\\', e[1] = 'x', e[2] = hexdigits[c >> 4], e[3] = hexdigits[c & 15];
            n = 4;
        } else if (quoted && (c == '"' || c == '\\')) {
            e[0] = '\\', e[1] = (char)c;
            n = 2;
        } else {
            e[0] = (char)c;
            n = 1;
        }
        if (k + n >= len)
            break;
        memcpy(buf + k, e, n);
        k += n;
    }
    buf[k] = '\0';
    return buf;
}

const char *
log_token(char *buf, size_t len, const char *s)
{
    return escape(buf, len, s, false);
}

const char *
log_text(char *buf, size_t len, const char *s)
{
    return escape(buf, len, s, true);
}

void
log_kv_to_json(const char *kv, const char *level, const char *ts, struct util_buf *out)
{
    struct util_buf k = {0}, v = {0};
    util_buf_puts(out, "{");
    bool first = true;
    for (const char *p = kv; *p;) {
        while (*p == ' ')
            p++;
        const char *eq = p;
        while (*eq && *eq != '=' && *eq != ' ')
            eq++;
        if (eq == p)
            break;
        util_buf_reset(&k);
        util_buf_reset(&v);
        util_buf_append(&k, p, (size_t)(eq - p));
        p = eq;
        if (*p == '=') {
            p++;
            kv_value(&p, &v);
        }
        util_buf_puts(out, first ? "" : ",");
        first = false;
        util_buf_json_str(out, k.p);
        util_buf_puts(out, ":");
        util_buf_json_str(out, v.p ? v.p : "");
    }
    util_buf_printf(out, "%s\"level\":\"%s\",\"ts\":\"%s\"}", first ? "" : ",", level, ts);
    util_buf_fini(&k);
    util_buf_fini(&v);
}
