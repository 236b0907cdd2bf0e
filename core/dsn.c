#include "core/dsn.h"

#include <stdio.h>
#include <string.h>

#include "connectors/util.h"
#include "core/msg.h"

static const char *const action_names[] = {"failed", "delayed", "delivered", "relayed",
                                           "expanded"};

size_t
dsn_header_length(const char *msg, size_t len)
{
    if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
        return 2;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(msg + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return len;
}

static bool
any_action(const struct dsn_rcpt *rcpts, size_t n, enum dsn_action a)
{
    for (size_t i = 0; i < n; i++)
        if (rcpts[i].action == a)
            return true;
    return false;
}

static const char *
subject(const struct dsn_rcpt *rcpts, size_t n)
{
    if (any_action(rcpts, n, DSN_FAILED))
        return "Undelivered Mail Returned to Sender";
    if (any_action(rcpts, n, DSN_DELAYED))
        return "Delayed Mail (still being retried)";
    return "Successful Mail Delivery Report";
}

static void
headers(struct util_buf *out, const struct dsn_report *r, const struct dsn_rcpt *rcpts, size_t n,
        const char *boundary)
{
    util_buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", r->hostname);
    util_buf_printf(out, "To: <%s>\r\nSubject: %s\r\nDate: ", r->sender, subject(rcpts, n));
    msg_date(out, r->now);
    util_buf_printf(out, "\r\nMessage-ID: <%s.dsn@%s>\r\nAuto-Submitted: auto-replied\r\n",
                    boundary, r->hostname);
    util_buf_printf(out,
                    "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
                    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n"
                    "This is a MIME-encapsulated message.\r\n\r\n",
                    boundary);
}

/* Keep client-influenced text on one header line. */
static void
append_line_safe(struct util_buf *out, const char *s)
{
    for (; *s; s++) {
        char c = (*s == '\r' || *s == '\n') ? ' ' : *s;
        util_buf_append(out, &c, 1);
    }
}

static void
human_part(struct util_buf *out, const struct dsn_report *r, const struct dsn_rcpt *rcpts,
           size_t n, const char *boundary)
{
    util_buf_printf(out, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
    util_buf_printf(out, "This is the mail system at host %s.\r\n\r\n", r->hostname);
    util_buf_printf(out, "Your message (queue ID %s) ", r->queue_id);
    if (any_action(rcpts, n, DSN_FAILED))
        util_buf_puts(out, "could not be delivered to one or more recipients.\r\n");
    else if (any_action(rcpts, n, DSN_DELAYED))
        util_buf_puts(out, "has not yet been delivered to every recipient;\r\n"
                           "delivery will be retried.\r\n");
    else
        util_buf_puts(out, "was delivered, or relayed to a system that sends no\r\n"
                           "delivery notifications.\r\n");
    util_buf_puts(out, "\r\n");
    for (size_t i = 0; i < n; i++) {
        util_buf_printf(out, "<%s>: %s (%s)", rcpts[i].recipient, action_names[rcpts[i].action],
                        rcpts[i].status);
        if (rcpts[i].diagnostic) {
            util_buf_puts(out, ": ");
            append_line_safe(out, rcpts[i].diagnostic);
        }
        util_buf_puts(out, "\r\n");
    }
    util_buf_puts(out, "\r\n");
}

static void
status_part(struct util_buf *out, const struct dsn_report *r, const struct dsn_rcpt *rcpts,
            size_t n, const char *boundary)
{
    util_buf_printf(out, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
    util_buf_printf(out, "Reporting-MTA: dns; %s\r\nX-Bridgehead-Queue-ID: %s\r\n", r->hostname,
                    r->queue_id);
    if (r->envid) {
        util_buf_puts(out, "Original-Envelope-Id: ");
        append_line_safe(out, r->envid);
        util_buf_puts(out, "\r\n");
    }
    util_buf_puts(out, "Arrival-Date: ");
    msg_date(out, r->arrival);
    util_buf_puts(out, "\r\n");
    for (size_t i = 0; i < n; i++) {
        const struct dsn_rcpt *d = &rcpts[i];
        util_buf_puts(out, "\r\n");
        if (d->orcpt) {
            util_buf_puts(out, "Original-Recipient: ");
            append_line_safe(out, d->orcpt);
            util_buf_puts(out, "\r\n");
        }
        util_buf_printf(out, "Final-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\n",
                        d->recipient, action_names[d->action], d->status);
        if (d->remote_mta)
            util_buf_printf(out, "Remote-MTA: dns; %s\r\n", d->remote_mta);
        if (d->diagnostic) {
            util_buf_puts(out, "Diagnostic-Code: smtp; ");
            append_line_safe(out, d->diagnostic);
            util_buf_puts(out, "\r\n");
        }
        if (d->last_attempt) {
            util_buf_puts(out, "Last-Attempt-Date: ");
            msg_date(out, d->last_attempt);
            util_buf_puts(out, "\r\n");
        }
    }
    util_buf_puts(out, "\r\n");
}

void
dsn_build(struct util_buf *out, const struct dsn_report *r, const struct dsn_rcpt *rcpts,
          size_t n)
{
    char boundary[96];
    snprintf(boundary, sizeof boundary, "%s/%s", r->boundary_seed, r->hostname);
    headers(out, r, rcpts, n, boundary);
    human_part(out, r, rcpts, n, boundary);
    status_part(out, r, rcpts, n, boundary);
    size_t len = r->full ? r->original_len : dsn_header_length(r->original, r->original_len);
    util_buf_printf(out, "--%s\r\nContent-Type: %s\r\n\r\n", boundary,
                    r->full ? "message/rfc822" : "text/rfc822-headers");
    if (len > 0)
        util_buf_append(out, r->original, len);
    if (len < 2 || memcmp(r->original + len - 2, "\r\n", 2) != 0)
        util_buf_puts(out, "\r\n");
    util_buf_printf(out, "\r\n--%s--\r\n", boundary);
}
