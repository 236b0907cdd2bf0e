/*
 * smtp_in: the pure SMTP server protocol machine (SPEC §5 and §9, server
 * side): RFC 5321 with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, DSN,
 * ETRN, STARTTLS, AUTH PLAIN/LOGIN and ATRN. Bytes go in, actions come out.
 * It never blocks, logs, reads or writes a socket, and includes only libc;
 * core/session.c is the glue that carries out its actions.
 *
 * Driving it:
 *
 *     m = smtp_in_new(&params);          NULL: out of memory
 *     smtp_in_greet(m);                  now, or when greet_delay has passed
 *     on every read:
 *         n = smtp_in_feed(m, buf, len); the machine took buf[0..n)
 *         while (smtp_in_next(m, &act))  carry out act (below)
 *         if n < len: keep buf[n..len), stop reading, and feed it again
 *                     after the next smtp_in_result (a check is pending)
 *     smtp_in_free(m);                   after the connection is closed
 *
 * Actions, in the order they must be carried out:
 *   REPLY       write text[0..len): one whole reply, CRLF-terminated, maybe
 *               multi-line.
 *   STARTTLS    the "220 2.0.0" REPLY came just before: flush it, drop every
 *               byte read but not yet fed (conn_discard_input), start the
 *               handshake; call smtp_in_tls_started() when it succeeds,
 *               close when it fails. Until then the machine drops input.
 *   AUTH_CHECK  check user/password (PLAIN or LOGIN, decoded); answer 235
 *               or 535 (5xx answers count towards the 3-failure limit).
 *   CHECK_MAIL  act.mail: sender and MAIL parameters (SIZE= already checked
 *               against max_message_size; the free-space 452 4.3.1 is the
 *               glue's); answer 250 or refuse.
 *   CHECK_RCPT  act.rcpt: recipient and DSN parameters (relay check,
 *               routing); answer 250 or refuse (non-2xx answers count
 *               towards the 20-refusal limit).
 *   DATA_BEGIN  open a spool; the 354 REPLY follows.
 *   DATA        append text[0..len) (dot-unstuffed body bytes) to the spool.
 *   COMMIT      the body ended well: act.size / priority / received are the
 *               facts; store the message, then answer ("250 2.0.0 Ok: queued
 *               as ID" or "451 4.3.0 ..."). The transaction is reset when the
 *               answer is given, so copy the envelope before answering.
 *   DATA_ABORT  drop the spool; the error REPLY follows (the machine made it).
 *   ETRN        text = "D" or "@D" as given; answer (250/251/458/459).
 *   ATRN        text = "" or "d1,d2,..." as given; answer. A 2xx answer turns
 *               the session around: the machine queues that reply and then
 *               stops (smtp_in_feed takes nothing), the glue becomes the
 *               client (buffered input after the ATRN line is dropped).
 *   CLOSE       flush the replies, then close. The machine drops any input.
 *
 * Checks: after AUTH_CHECK, CHECK_MAIL, CHECK_RCPT, COMMIT, ETRN or ATRN the
 * machine waits: smtp_in_next returns nothing until smtp_in_result answers
 * (pipelined input stays buffered, so replies keep their order, RFC 2920).
 * The answer may come from another callback much later.
 *
 * Limits the machine enforces itself (SPEC §5, §9): line lengths, bare CR/LF
 * and NUL, 10 unknown or malformed commands, 3 failed AUTH, 20 refused
 * recipients (421 4.7.0 and CLOSE), max_recipients (452 4.5.3), and in DATA
 * the 1000-octet lines, max_message_size and 100 Received: headers.
 *
 * Ownership: the machine owns its buffers and envelope. Pointers in an
 * action, and those the accessors return, stay valid until the next call of
 * smtp_in_feed, smtp_in_next, smtp_in_result, smtp_in_tls_started,
 * smtp_in_shutdown or smtp_in_free. Params are copied by smtp_in_new.
 *
 * Threads: no shared state; one machine is used by one thread at a time
 * (the loop thread in bridgehead).
 */
#ifndef BH_CORE_SMTP_IN_H
#define BH_CORE_SMTP_IN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_in;

/* Longest address the machine hands out (a path is at most 256 octets;
 * "postmaster@" plus a 255-octet host name is the longest made-up one). */
#define SMTP_IN_ADDR_MAX 300

struct smtp_in_params {
    const char *hostname;      /* banner, EHLO, <Postmaster>; at most 255 used */
    uint64_t max_message_size; /* SIZE; 0: no limit (advertised "SIZE 0") */
    size_t max_recipients;     /* per transaction; 0: no limit */
    bool tls_available;        /* the server has a certificate: offer STARTTLS */
    bool tls_active;           /* implicit TLS listener: TLS from the start */
    bool auth_available;       /* users_file configured: AUTH inside TLS */
    bool odmr;                 /* this listener offers ATRN (after AUTH) */
    bool greet_delay;          /* input before smtp_in_greet: 554 and close */
};

enum smtp_in_type {
    SMTP_IN_NONE = 0,
    SMTP_IN_REPLY,
    SMTP_IN_STARTTLS,
    SMTP_IN_AUTH_CHECK,
    SMTP_IN_CHECK_MAIL,
    SMTP_IN_CHECK_RCPT,
    SMTP_IN_DATA_BEGIN,
    SMTP_IN_DATA,
    SMTP_IN_COMMIT,
    SMTP_IN_DATA_ABORT,
    SMTP_IN_ETRN,
    SMTP_IN_ATRN,
    SMTP_IN_CLOSE
};

/* The numbers match storage/queue.h (enum queue_ret, QUEUE_NOTIFY_*) and
 * connectors/connector.h (enum connector_priority) so the glue may copy. */
enum smtp_in_ret { SMTP_IN_RET_NONE = 0, SMTP_IN_RET_HDRS = 1, SMTP_IN_RET_FULL = 2 };
enum smtp_in_body { SMTP_IN_BODY_NONE = 0, SMTP_IN_BODY_7BIT, SMTP_IN_BODY_8BITMIME };
enum smtp_in_priority { SMTP_IN_PRIO_LOW = 0, SMTP_IN_PRIO_NORMAL = 1, SMTP_IN_PRIO_HIGH = 2 };
#define SMTP_IN_NOTIFY_NEVER 1u
#define SMTP_IN_NOTIFY_SUCCESS 2u
#define SMTP_IN_NOTIFY_FAILURE 4u
#define SMTP_IN_NOTIFY_DELAY 8u

/* MAIL FROM as accepted (or being checked). Plain value, machine-owned. */
struct smtp_in_mail {
    const char *sender; /* "" is the null sender <>; source route stripped */
    bool has_size;
    uint64_t size; /* SIZE=, when has_size */
    enum smtp_in_body body;
    enum smtp_in_ret ret;
    const char *envid; /* ENVID= as received (xtext), NULL: none */
};

/* One RCPT TO. Plain value, machine-owned. */
struct smtp_in_rcpt {
    const char *addr;  /* source route stripped; <Postmaster> made whole */
    unsigned notify;   /* SMTP_IN_NOTIFY_* bits, 0: NOTIFY not given */
    const char *orcpt; /* ORCPT= as received ("rfc822;xtext"), NULL: none */
};

struct smtp_in_action {
    enum smtp_in_type type;
    const char *text; /* REPLY, DATA: bytes; ETRN, ATRN: NUL-terminated arg */
    size_t len;
    const char *user;                /* AUTH_CHECK: NUL-terminated, no control bytes */
    const char *password;            /* AUTH_CHECK: NUL-terminated, wiped after the answer */
    const struct smtp_in_mail *mail; /* CHECK_MAIL */
    const struct smtp_in_rcpt *rcpt; /* CHECK_RCPT */
    uint64_t size;                   /* COMMIT: RFC 1870 §4 size of the body */
    enum smtp_in_priority priority;  /* COMMIT: from the headers (SPEC §3) */
    unsigned received;               /* COMMIT: Received: headers in the message */
};

struct smtp_in *smtp_in_new(const struct smtp_in_params *p);
void smtp_in_free(struct smtp_in *m);

/* Queue the "220 HOST ESMTP bridgehead" banner. Call once. Input that
 * arrives before it waits, or, with greet_delay, gets "554 5.5.1" and CLOSE
 * (also when it was fed but not yet acted on when the delay ends). */
void smtp_in_greet(struct smtp_in *m);
/* Take bytes from the client; returns how many were taken: fewer than len
 * when the bounded buffer (16 KiB) is full, which happens while a check is
 * pending; 0 once the session has turned around after ATRN; all of them
 * (dropped) after CLOSE or while a STARTTLS handshake is under way. */
size_t smtp_in_feed(struct smtp_in *m, const char *buf, size_t len);
/* The next action: true and *act, or false (act->type NONE) when the machine
 * needs more input or waits for smtp_in_result. */
bool smtp_in_next(struct smtp_in *m, struct smtp_in_action *act);
/* Answer the pending check with a reply: code 200..599 and the text after
 * it ("2.1.5 Ok"; NULL gives a default; CR, LF and control bytes become
 * spaces; at most 400 octets are used). 0, or -EINVAL when no check is
 * pending or the code is out of range. */
int smtp_in_result(struct smtp_in *m, int code, const char *text);
/* The STARTTLS handshake succeeded: the session starts over inside TLS. */
void smtp_in_tls_started(struct smtp_in *m);
/* SIGTERM: every further command gets "421 4.3.2" and CLOSE. */
void smtp_in_shutdown(struct smtp_in *m);

/* Envelope and session facts. */
const struct smtp_in_mail *smtp_in_mail(const struct smtp_in *m); /* NULL: no MAIL */
size_t smtp_in_rcpt_count(const struct smtp_in *m);               /* accepted recipients */
const struct smtp_in_rcpt *smtp_in_rcpt(const struct smtp_in *m, size_t i);
unsigned smtp_in_refused_count(const struct smtp_in *m); /* refused RCPTs, session */
const char *smtp_in_helo(const struct smtp_in *m);       /* NULL before HELO/EHLO */
bool smtp_in_esmtp(const struct smtp_in *m);             /* EHLO was used */
bool smtp_in_tls_active(const struct smtp_in *m);
const char *smtp_in_user(const struct smtp_in *m); /* NULL: not authenticated */

#endif
