#include "core/msg.h"

#include <string.h>
#include <time.h>

#include "connectors/util.h"

void
msg_date(struct util_buf *out, int64_t t)
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    util_buf_printf(out, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday], tm.tm_mday,
                    mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Append a client-given token with anything outside printable ASCII, and
 * the characters that would break the header's structure, replaced. */
static void
append_safe(struct util_buf *out, const char *s, size_t max)
{
    size_t n = 0;
    for (; *s && n < max; s++, n++) {
        char c = *s;
        if (c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == ';' || c == '\\')
            c = '_';
        util_buf_append(out, &c, 1);
    }
}

static const char *
protocol(const struct msg_received *r)
{
    if (!r->esmtp)
        return "SMTP";
    if (r->tls && r->auth)
        return "ESMTPSA";
    if (r->tls)
        return "ESMTPS";
    if (r->auth)
        return "ESMTPA";
    return "ESMTP";
}

void
msg_received(struct util_buf *out, const struct msg_received *r)
{
    util_buf_puts(out, "Received: from ");
    append_safe(out, r->helo && *r->helo ? r->helo : "unknown", 255);
    util_buf_printf(out, " ([%s])\r\n\tby %s (bridgehead) with %s", r->client_ip, r->hostname,
                    protocol(r));
    if (r->tls && r->tls_version)
        util_buf_printf(out, "\r\n\t(version=%s cipher=%s)", r->tls_version,
                        r->tls_cipher ? r->tls_cipher : "unknown");
    util_buf_printf(out, " id %s", r->id);
    if (r->for_rcpt) {
        util_buf_puts(out, "\r\n\tfor <");
        append_safe(out, r->for_rcpt, 256);
        util_buf_puts(out, ">");
    }
    util_buf_puts(out, "; ");
    msg_date(out, r->when);
    util_buf_puts(out, "\r\n");
}
