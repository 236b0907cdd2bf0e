/*
 * msg: message text that bridgehead writes itself: the Received: header it
 * prepends (RFC 5321 4.4) and RFC 5322 dates. Pure functions, any thread;
 * results are appended to a caller-owned util_buf.
 */
#ifndef BH_CORE_MSG_H
#define BH_CORE_MSG_H

#include <stdbool.h>
#include <stdint.h>

struct util_buf;

struct msg_received {
    const char *helo;     /* the client's HELO/EHLO name, may be NULL */
    const char *client_ip;
    const char *hostname; /* ours */
    const char *id;       /* queue ID */
    bool esmtp, tls, auth;
    const char *tls_version; /* "TLSv1.3" or NULL */
    const char *tls_cipher;
    const char *for_rcpt; /* the one recipient, or NULL */
    int64_t when;
};

/* Append "Received: from ... ; DATE\r\n", folded below 78 columns. Control
 * characters and spaces in the client-given HELO are replaced. */
void msg_received(struct util_buf *out, const struct msg_received *r);
/* Append an RFC 5322 date in UTC: "Sat, 28 Nov 2026 12:00:00 +0000". */
void msg_date(struct util_buf *out, int64_t t);

#endif
