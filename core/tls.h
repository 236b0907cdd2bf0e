/*
 * tls: OpenSSL over memory BIOs. A struct tls_conn is one TLS session with
 * no socket and no event loop inside: the glue feeds it the ciphertext read
 * from the network, takes the ciphertext it has to send, and exchanges
 * plaintext with it. So one connection interface serves plain and TLS, and
 * the whole thing is testable by shuttling bytes between two tls_conns.
 *
 * Contexts: a struct tls_server_ctx holds the inbound certificate, key and
 * min_version (SPEC §2 server.tls, §9); a struct tls_client_ctx holds one
 * connector's outbound policy toward one destination host (SPEC §4 "TLS
 * modes"). Both are reference-counted: a reload builds new contexts and
 * drops its references to the old ones; sessions already running keep
 * theirs (each SSL holds its own reference to the OpenSSL context), so
 * they finish undisturbed.
 *
 * Ownership: *_new returns an object with one reference (a tls_conn has a
 * single owner and is freed with tls_conn_free). Strings returned by the
 * info functions belong to the conn and live until tls_conn_free. Paths,
 * host names and the struct connector_tls are borrowed for the call.
 *
 * Threads: a tls_conn is used by the loop thread only (one thread at a time
 * in general: OpenSSL's error queue is per thread and is cleared around
 * every call here). Contexts may be built on any thread (building reads
 * files, so a reload may do it on a worker); ref/unref are atomic.
 *
 * The byte loop, after any call on a conn: while tls_conn_pending_out()
 * returns bytes, copy them to the socket and tls_conn_consume_out() them.
 */
#ifndef BH_CORE_TLS_H
#define BH_CORE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "connectors/connector.h"

struct tls_server_ctx;
struct tls_client_ctx;
struct tls_conn;

/*
 * Server context from PEM files: cert_path holds the certificate then its
 * chain, key_path the unencrypted private key. min_version is
 * CONNECTOR_TLS1_2 or CONNECTOR_TLS1_3. No compression, no renegotiation,
 * no session cache (TLS 1.3 tickets stay stateless), buffers released
 * while a session is idle. Returns NULL with a message in err on failure.
 */
struct tls_server_ctx *tls_server_ctx_new(const char *cert_path, const char *key_path,
                                          int min_version, char *err, size_t errlen);
void tls_server_ctx_ref(struct tls_server_ctx *ctx);
void tls_server_ctx_unref(struct tls_server_ctx *ctx); /* NULL does nothing */

/*
 * Client context for one connector toward one destination host (the
 * bridgehead or MX host name, or an IP address). t->mode must not be
 * CONNECTOR_TLS_NONE. min_version from t. The trust store is t->ca_file or
 * the system default paths, and the reference names are those of
 * tlspolicy_names(t, host) checked with the RFC 6125 flags of SPEC §4.
 * Mode verify: SSL_VERIFY_PEER, a failed chain or name fails the handshake
 * and a trust store that cannot be loaded fails here. Modes opportunistic
 * and required: SSL_VERIFY_NONE, yet the verification result is recorded
 * (see tls_conn_verify_result) and a trust store that cannot be loaded is
 * not an error. Returns NULL with a message in err on failure.
 */
struct tls_client_ctx *tls_client_ctx_new(const struct connector_tls *t, const char *host,
                                          char *err, size_t errlen);
void tls_client_ctx_ref(struct tls_client_ctx *ctx);
void tls_client_ctx_unref(struct tls_client_ctx *ctx); /* NULL does nothing */

/* A server session (STARTTLS or an implicit-TLS listener). */
struct tls_conn *tls_conn_new_server(struct tls_server_ctx *ctx);

/*
 * A client session. sni_host: sent as SNI (one trailing dot dropped) unless
 * NULL or an IP address literal (tlspolicy_sni_ok). The client speaks
 * first: call tls_conn_handshake() at once to produce the ClientHello.
 */
struct tls_conn *tls_conn_new_client(struct tls_client_ctx *ctx, const char *sni_host);

void tls_conn_free(struct tls_conn *c); /* NULL does nothing */

/*
 * Hand over ciphertext read from the network (copied). Returns 0, BH_EIO,
 * or BH_ENOSPC when more than 1 MiB would sit unread: drive the conn
 * (handshake or read) after every feed and it never comes near that.
 */
int tls_conn_feed(struct tls_conn *c, const void *data, size_t len);

/*
 * Drive the handshake. Returns 0 when it is complete (again 0 on later
 * calls), BH_EAGAIN when more input is needed (send the pending output
 * first), BH_EIO when it failed: tls_conn_error() says why and
 * tls_conn_cert_failed() whether the certificate was the cause. A failed
 * conn stays failed; it may hold an alert to send before closing.
 */
int tls_conn_handshake(struct tls_conn *c);

/*
 * Plaintext out. Returns 0 with *n > 0 bytes in buf; 0 with *n == 0 when
 * the peer closed the TLS session (close_notify); BH_EAGAIN when no
 * plaintext is available yet (send the pending output: reading may have
 * produced some); BH_EIO on a protocol error (tls_conn_error); BH_EINVAL
 * before the handshake is complete or when len is 0.
 */
int tls_conn_read(struct tls_conn *c, void *buf, size_t len, size_t *n);

/* Plaintext in: all of it is encrypted into the pending output. 0, BH_EIO,
 * or BH_EINVAL before the handshake is complete or after a failure. */
int tls_conn_write(struct tls_conn *c, const void *buf, size_t len);

/* Queue a close_notify alert in the pending output. */
void tls_conn_shutdown(struct tls_conn *c);

/*
 * Ciphertext to send: returns how many bytes are pending and points *data
 * at them (valid until the next call on c). tls_conn_consume_out() drops
 * the first n of them once they are copied.
 */
size_t tls_conn_pending_out(struct tls_conn *c, const char **data);
void tls_conn_consume_out(struct tls_conn *c, size_t n);

/* Information, valid until tls_conn_free. */
bool tls_conn_is_server(const struct tls_conn *c);
bool tls_conn_done(const struct tls_conn *c);           /* handshake complete */
const char *tls_conn_version(const struct tls_conn *c); /* "TLSv1.3"; "" before */
const char *tls_conn_cipher(const struct tls_conn *c);  /* "TLS_AES_256_GCM_SHA384"; "" before */
const char *tls_conn_error(const struct tls_conn *c);   /* why it failed; "" if it did not */
bool tls_conn_cert_failed(const struct tls_conn *c);    /* failed on the peer certificate */
/* Server side: the SNI the client sent, NULL when none. */
const char *tls_conn_sni(const struct tls_conn *c);
/*
 * Client side: "ok" when the chain verified against the trust store and a
 * reference name matched, the X509 error text ("certificate has expired",
 * "hostname mismatch", ...) when it did not, "not checked" before the
 * handshake or without a peer certificate.
 */
const char *tls_conn_verify_result(const struct tls_conn *c);

#endif
