/*
 * atrn_client: one ATRN request and its turnaround (RFC 2645, SPEC §5).
 * It checks the request (core/atrn), leases the recipients waiting for the
 * domains on their triggered connectors, and answers: 451 (storage error),
 * 453 (no mail), or 250, after which the session turns around and
 * bridgehead is the SMTP client over the same connection and TLS session:
 * it waits for the peer's 220, sends EHLO (never STARTTLS: TLS is already
 * on; the connectors' tls.names do not apply, the peer proved itself by
 * password) and delivers the mail through the client machine
 * (core/smtp_out), one job (the recipients of one message on one
 * connector) after another, leasing more when a batch is done, then QUIT.
 * Verdicts are settled by the scheduler's settler (core/sched_settle) like
 * any delivery: 2xx delivered and removed, 5xx bounced with a DSN, 4xx or a
 * lost connection back to state triggered for the next ATRN; one log line
 * per recipient with the queue ID. Jobs never tried go back to triggered.
 *
 * The session owns the connection: the client writes and arms the
 * session's timer through ops, and the session feeds it what it reads.
 *
 * Ownership: atrn_client_start returns the client, or answers at once. A
 * refusal answered later (451, 453) comes after the client freed itself:
 * forget it in ops->answer. After a 250, or after atrn_client_stop, the
 * session frees it with atrn_client_free once atrn_client_busy() is false;
 * ops->idle tells when that became so (called last, so the session may free
 * the client in it). Loop thread only.
 */
#ifndef BH_CORE_ATRN_CLIENT_H
#define BH_CORE_ATRN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server_env;
struct server_conf;
struct atrn_client;

struct atrn_client_ops {
    /* The reply to ATRN: code and the text after it (NULL for 250: the
     * machine's default). With 250 the session sends it, drops what it
     * read but did not handle, and is the client from then on. */
    void (*answer)(void *owner, int code, const char *text);
    /* Send bytes to the peer. */
    void (*write)(void *owner, const char *data, size_t len);
    /* (Re)start the session's timer to call atrn_client_timeout in ms; 0
     * stops it. */
    void (*arm)(void *owner, uint64_t ms);
    /* The turnaround is over (QUIT sent, or failed): close the connection. */
    void (*done)(void *owner);
    /* atrn_client_busy() just became false. Called only from the client's
     * own asynchronous completions, as their last step. */
    void (*idle)(void *owner);
};

/* Who asks, for the checks and the log lines. */
struct atrn_client_peer {
    const char *user;   /* the authenticated user */
    const char *relay;  /* the peer in the delivery log lines: "ip:port" */
    const char *tls;    /* the session's TLS version ("TLSv1.3") */
    const char *cipher; /* and cipher */
};

/*
 * Start "ATRN arg". Returns the client (its answer comes later through
 * ops->answer), or NULL when the request is refused at once: then *code
 * and text (the text after the code) are the reply.
 */
struct atrn_client *atrn_client_start(struct server_env *env, struct server_conf *conf,
                                      const struct atrn_client_peer *peer, const char *arg,
                                      const struct atrn_client_ops *ops, void *owner, int *code,
                                      char *text, size_t len);
/* Bytes from the peer, after the turnaround. */
void atrn_client_feed(struct atrn_client *c, const char *data, size_t len);
/* The peer closed the connection or it failed. */
void atrn_client_eof(struct atrn_client *c);
/* The timer armed through ops->arm fired. */
void atrn_client_timeout(struct atrn_client *c);
/* The session is closing: no more ops calls but idle; what is in hand is
 * settled (or given back) and the rest goes back to triggered. */
void atrn_client_stop(struct atrn_client *c);
bool atrn_client_busy(const struct atrn_client *c);
void atrn_client_free(struct atrn_client *c);

#endif
