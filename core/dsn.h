/*
 * dsn: builds RFC 3464 delivery status notifications (multipart/report;
 * report-type=delivery-status) from <> to the envelope sender. Pure: the
 * caller decides who gets one (never a null sender, NOTIFY honoured) and
 * enqueues the result as a system message. Any thread.
 */
#ifndef BH_CORE_DSN_H
#define BH_CORE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct util_buf;

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };

struct dsn_rcpt {
    const char *recipient;  /* the address as we had it */
    const char *orcpt;      /* ORCPT parameter ("rfc822;a@b"), or NULL */
    enum dsn_action action;
    const char *status;     /* "5.7.1", "4.4.7" */
    const char *remote_mta; /* host that answered, or NULL */
    const char *diagnostic; /* the remote reply or our reason, or NULL */
    int64_t last_attempt;   /* 0: none */
};

struct dsn_report {
    const char *hostname;  /* our name: Reporting-MTA, From: MAILER-DAEMON@ */
    const char *sender;    /* the original envelope sender, the DSN's To: */
    const char *queue_id;  /* the original message's ID */
    const char *envid;     /* ENVID parameter or NULL */
    int64_t arrival;       /* when we accepted the original */
    int64_t now;
    bool full;             /* RET=FULL: return the whole message, else headers */
    const char *original;  /* the original message (headers at least) */
    size_t original_len;
    const char *boundary_seed; /* makes the MIME boundary unique, e.g. a fresh queue ID */
};

/* Append the whole DSN message (headers and body, CRLF line ends) to out. */
void dsn_build(struct util_buf *out, const struct dsn_report *r, const struct dsn_rcpt *rcpts,
               size_t n);

/* The length of the header section of msg (through the blank line), or len
 * when there is none. */
size_t dsn_header_length(const char *msg, size_t len);

#endif
