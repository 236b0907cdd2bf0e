/*
 * smtp_out: the pure SMTP client protocol machine (RFC 5321 with
 * PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, DSN, STARTTLS and
 * AUTH PLAIN/LOGIN). It drives one client session that may carry several
 * messages (RSET between them), each in one transaction with one or more
 * recipients. It never touches a socket, a timer or a log: the glue
 * (core/delivery) feeds it the server's bytes and events, then takes its
 * actions until there are none:
 *
 *     smtp_out_feed(m, bytes, len);            (or tls_done, send, body, ...)
 *     while (smtp_out_next(m, &act)) ...carry out act...
 *
 * Actions, in the order they must be carried out:
 *   WRITE       send act.data/act.len to the server.
 *   START_TLS   do the TLS handshake now (after writing every earlier
 *               WRITE), then call smtp_out_tls_done(). The glue also drops
 *               what its connection read but did not feed yet
 *               (conn_discard_input): replies read before the handshake are
 *               never trusted, and the machine drops what it holds.
 *   READY       the session is idle: smtp_out_send() the next message or
 *               smtp_out_quit(). Comes once after the greeting, EHLO,
 *               STARTTLS and AUTH, and again after each MESSAGE_DONE.
 *   BODY_WANTED the server sent 354: stream the body with smtp_out_body().
 *   MESSAGE_DONE one result per recipient of the message, in order.
 *   CLOSE       the session is over (act.outcome says why, act.code and
 *               act.text give the last reply or a fixed reason): write
 *               every earlier WRITE, then close the connection. Nothing
 *               follows a CLOSE.
 * Whenever the session ends while a message is in flight, MESSAGE_DONE
 * comes first: recipients the server already settled keep their reply, the
 * others get the closing reply (421) or code 0 ("no verdict": defer).
 *
 * Timers are the glue's: smtp_out_waiting() says which RFC 5321 4.5.3.2
 * timeout applies now, and smtp_out_timeout() reports one that fired. A
 * timeout is a deadline for a whole reply: the glue restarts it when the
 * wait or smtp_out_replies() changes, not for every byte read.
 *
 * Every byte from the server is hostile: a reply line over max_line octets
 * (CRLF included), a reply of more than max_lines lines, a line that is not
 * "3 digits, then space, dash or end", a continuation line with another
 * code, or a reply nobody asked for ends the session with PROTOCOL_ERROR.
 * Memory is bounded by the parameters and the message handed over, never
 * by what the server sends. Reply texts are kept up to 1 KiB, printable
 * ASCII only (other bytes become '?'), so they are safe in logs and in a
 * DSN's Diagnostic-Code.
 *
 * Ownership: smtp_out_new copies the parameters; the message given to
 * smtp_out_send and the body chunks are borrowed for the call only. The
 * pointers inside an action (data, results, texts) belong to the machine
 * and stay valid until the next call on it other than smtp_out_next,
 * smtp_out_waiting and the info functions. Out of memory aborts the process,
 * as xmalloc does. One thread at a time (the loop thread); no globals.
 *
 * Errors: int functions return 0, -EINVAL (wrong state or a malformed
 * message: CR, LF or another control byte in an address, a space in
 * ENVID/ORCPT), -EBUSY (smtp_out_send while actions still wait for
 * smtp_out_next) or -EPERM (a message while TLS is required and not
 * active). These equal BH_E*.
 */
#ifndef BH_CORE_SMTP_OUT_H
#define BH_CORE_SMTP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* NOTIFY= bits of a recipient (the values of storage's QUEUE_NOTIFY_*). */
#define SMTP_OUT_NOTIFY_NEVER 1u
#define SMTP_OUT_NOTIFY_SUCCESS 2u
#define SMTP_OUT_NOTIFY_FAILURE 4u
#define SMTP_OUT_NOTIFY_DELAY 8u

/* Extensions the server offered in its last EHLO reply. */
#define SMTP_OUT_EXT_PIPELINING 0x01u
#define SMTP_OUT_EXT_SIZE 0x02u
#define SMTP_OUT_EXT_STARTTLS 0x04u
#define SMTP_OUT_EXT_DSN 0x08u
#define SMTP_OUT_EXT_8BITMIME 0x10u
#define SMTP_OUT_EXT_ENHANCEDSTATUSCODES 0x20u
#define SMTP_OUT_EXT_AUTH_PLAIN 0x40u
#define SMTP_OUT_EXT_AUTH_LOGIN 0x80u

/* Whether to STARTTLS: the glue derives it from the connector's tls.mode
 * (none -> NEVER, opportunistic -> IF_OFFERED, required/verify -> MUST). */
enum smtp_out_starttls {
    SMTP_OUT_STARTTLS_NEVER = 0,
    SMTP_OUT_STARTTLS_IF_OFFERED,
    SMTP_OUT_STARTTLS_MUST
};

struct smtp_out_params {
    const char *helo_name; /* for EHLO/HELO: printable ASCII, no space */
    bool use_ehlo;         /* false: HELO and no ESMTP extension at all */
    enum smtp_out_starttls starttls;
    bool tls_active;       /* TLS is on from the start (ATRN turnaround) */
    const char *auth_user; /* NULL: no AUTH; else AUTH, only inside TLS */
    const char *auth_pass; /* user and password: at most 255 octets each */
    size_t max_line;       /* reply line limit with CRLF; 0: 512 */
    unsigned max_lines;    /* lines per reply; 0: 100 */
};

/* RET= (the values of storage's enum queue_ret). */
enum smtp_out_ret { SMTP_OUT_RET_NONE = 0, SMTP_OUT_RET_HDRS = 1, SMTP_OUT_RET_FULL = 2 };

struct smtp_out_rcpt {
    const char *address; /* without angle brackets */
    unsigned notify;     /* SMTP_OUT_NOTIFY_* bits; 0: not given */
    const char *orcpt;   /* ORCPT= value as received ("rfc822;a@b"), or NULL */
};

/* One message. DSN parameters are passed on only when the server offers
 * DSN, SIZE= only with SIZE, BODY=8BITMIME only with 8BITMIME. */
struct smtp_out_msg {
    const char *sender; /* "" is the null sender <> */
    const struct smtp_out_rcpt *rcpts;
    size_t nrcpts;     /* 1 to 100000 */
    const char *envid; /* ENVID= (xtext), or NULL */
    enum smtp_out_ret ret;
    uint64_t size;  /* SIZE= estimate; 0: not sent */
    bool body_8bit; /* BODY=8BITMIME */
};

/* Which command's reply settled a recipient. */
enum smtp_out_stage {
    SMTP_OUT_STAGE_NONE = 0, /* no reply of this message (code 0 or 421) */
    SMTP_OUT_STAGE_MAIL,
    SMTP_OUT_STAGE_RCPT,
    SMTP_OUT_STAGE_DATA,
    SMTP_OUT_STAGE_DOT /* the reply to the final dot */
};

/* The verdict on one recipient. code 2xx: delivered; 4xx: defer; 5xx:
 * bounce; 0: no verdict (connection lost, timeout, protocol error): defer. */
struct smtp_out_result {
    int code;
    char status[12];  /* enhanced status ("5.1.1") when given, else "" */
    const char *text; /* "550 5.1.1 no such user", or why code is 0 */
    enum smtp_out_stage stage;
    bool relayed; /* 2xx, NOTIFY had SUCCESS and the server lacks DSN: the
                     glue sends the sender a "relayed" DSN (RFC 3461 4.1) */
};

enum smtp_out_outcome {
    SMTP_OUT_OK_QUIT = 0,     /* we sent QUIT */
    SMTP_OUT_GREETING_FAILED, /* 4xx/5xx greeting: destination down */
    SMTP_OUT_HELO_FAILED,     /* EHLO and HELO refused */
    SMTP_OUT_SERVER_SHUTDOWN, /* 421 at any point: destination down */
    SMTP_OUT_TLS_NOT_OFFERED, /* MUST and no STARTTLS in the EHLO reply */
    SMTP_OUT_TLS_REFUSED,     /* MUST and STARTTLS got no 220 */
    SMTP_OUT_TLS_FAILED,      /* smtp_out_tls_done(m, false) */
    SMTP_OUT_AUTH_FAILED,     /* AUTH not offered, not in TLS, or refused */
    SMTP_OUT_PROTOCOL_ERROR,  /* garbage, over-long line, too many lines */
    SMTP_OUT_CONNECTION_LOST, /* smtp_out_eof() */
    SMTP_OUT_TIMEOUT          /* smtp_out_timeout() */
};

enum smtp_out_act_type {
    SMTP_OUT_NONE = 0,
    SMTP_OUT_WRITE,
    SMTP_OUT_START_TLS,
    SMTP_OUT_READY,
    SMTP_OUT_BODY_WANTED,
    SMTP_OUT_MESSAGE_DONE,
    SMTP_OUT_CLOSE
};

struct smtp_out_act {
    enum smtp_out_act_type type;
    const char *data; /* WRITE */
    size_t len;
    const struct smtp_out_result *results; /* MESSAGE_DONE: one per recipient */
    size_t nresults;
    enum smtp_out_outcome outcome; /* CLOSE */
    int code;                      /* CLOSE: the last reply's code, or 0 */
    const char *text;              /* CLOSE: that reply, or the reason */
};

/* What the machine waits for, to pick the timer (RFC 5321 4.5.3.2). */
enum smtp_out_wait {
    SMTP_OUT_WAIT_NONE = 0,   /* idle (READY) or closed: no timer */
    SMTP_OUT_WAIT_GREETING,   /* the 220 */
    SMTP_OUT_WAIT_COMMAND,    /* a reply to EHLO, MAIL, RCPT, DATA, ... */
    SMTP_OUT_WAIT_TLS,        /* the glue's TLS handshake */
    SMTP_OUT_WAIT_DATA_BLOCK, /* the glue streaming the body */
    SMTP_OUT_WAIT_DATA_END    /* the reply to the final dot */
};

struct smtp_out;

/* A machine waiting for the greeting. NULL if a parameter is invalid. */
struct smtp_out *smtp_out_new(const struct smtp_out_params *p);
void smtp_out_free(struct smtp_out *m); /* NULL does nothing */

/* Bytes the server sent (plaintext). Ignored after CLOSE and while a TLS
 * handshake is pending. */
void smtp_out_feed(struct smtp_out *m, const char *buf, size_t len);
/* The next action: true and *act, or false when there is none. */
bool smtp_out_next(struct smtp_out *m, struct smtp_out_act *act);

/* After START_TLS: ok is whether the handshake (and any certificate check)
 * succeeded. ok: EHLO again, inside TLS; not ok: CLOSE TLS_FAILED. */
int smtp_out_tls_done(struct smtp_out *m, bool ok);
/* After READY, with no action pending: start a transaction for msg. */
int smtp_out_send(struct smtp_out *m, const struct smtp_out_msg *msg);
/* After BODY_WANTED: the next chunk of the stored body; last on the final
 * one (len may be 0). The machine dot-stuffs, turns a bare LF or CR into
 * CRLF, ends the body with CRLF and adds ".". */
int smtp_out_body(struct smtp_out *m, const char *buf, size_t len, bool last);
/* After READY: QUIT, then CLOSE OK_QUIT (the 221 is not waited for). */
int smtp_out_quit(struct smtp_out *m);
/* The connection closed or failed: CLOSE CONNECTION_LOST. */
void smtp_out_eof(struct smtp_out *m);
/* The timer of smtp_out_waiting() fired: CLOSE TIMEOUT. */
void smtp_out_timeout(struct smtp_out *m);

enum smtp_out_wait smtp_out_waiting(const struct smtp_out *m);
/* How many complete replies the server has sent so far. */
unsigned smtp_out_replies(const struct smtp_out *m);
/* SMTP_OUT_EXT_* bits of the last EHLO reply (0 after HELO). */
unsigned smtp_out_extensions(const struct smtp_out *m);
/* The server's SIZE limit, 0: none given. */
uint64_t smtp_out_size_limit(const struct smtp_out *m);
/* "greeting_failed" and so on, for logs. */
const char *smtp_out_outcome_name(enum smtp_out_outcome o);

#endif
