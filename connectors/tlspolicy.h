/*
 * tlspolicy: the outbound TLS policy of a connector (SPEC §4 "TLS modes",
 * §9 client side) as pure decisions, plus the config-time checks of PEM
 * files (certificates, private keys, CA bundles).
 *
 * The decision functions take facts (the mode, what the server offered,
 * what failed) and return what the SMTP client must do next; they keep no
 * state, never log and never touch a socket. The one-hour "no STARTTLS"
 * memory for an opportunistic host that failed a handshake is state, so the
 * caller (core/delivery) keeps it and passes it in as clear_hold.
 *
 * Ownership: every argument is borrowed for the call. tlspolicy_names()
 * returns an array the caller frees with free(); its strings stay borrowed.
 *
 * Threads: everything here is pure and may be called from any thread.
 * tlspolicy_check_pem() reads a file (blocking) and uses OpenSSL's
 * thread-local error queue; it is meant for config loading.
 */
#ifndef BH_CONNECTORS_TLSPOLICY_H
#define BH_CONNECTORS_TLSPOLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "connectors/connector.h"

/* How long an opportunistic host is contacted without STARTTLS after a
 * failed handshake (SPEC §9). */
#define TLSPOLICY_CLEAR_HOLD_SECONDS 3600

/* PEM files are small; anything larger is refused before parsing. */
#define TLSPOLICY_PEM_MAX (16u * 1024 * 1024)

/* What the SMTP client does next. */
enum tlspolicy_action {
    TLSPOLICY_STARTTLS, /* send STARTTLS */
    TLSPOLICY_CLEAR,    /* go on in clear in this session (MAIL next) */
    TLSPOLICY_TLS,      /* go on inside the TLS session (failure ignored) */
    /*
     * End this connection (QUIT); the destination stays up and the
     * recipients are not deferred: contact the host again at once without
     * STARTTLS, and keep doing so for TLSPOLICY_CLEAR_HOLD_SECONDS.
     */
    TLSPOLICY_RECONNECT_CLEAR,
    /*
     * Treat it like a failed connection (SPEC §4): end the connection, mark
     * the destination down, try the next destination that is up, and defer
     * the recipients with the reason (tlspolicy_reason) when none is left.
     * No MAIL FROM is ever sent in clear.
     */
    TLSPOLICY_DEFER
};

/* What went wrong. */
enum tlspolicy_failure {
    TLSPOLICY_NOT_OFFERED, /* EHLO reply without STARTTLS (or HELO only) */
    TLSPOLICY_REFUSED,     /* STARTTLS answered with something else than 220 */
    TLSPOLICY_HANDSHAKE,   /* handshake failed, min_version included */
    TLSPOLICY_CERT         /* certificate chain or name not accepted */
};

/* PEM file kinds for tlspolicy_check_pem(). */
enum tlspolicy_pem {
    TLSPOLICY_PEM_CERT, /* a certificate (chain): at least one certificate */
    TLSPOLICY_PEM_KEY,  /* one unencrypted private key */
    TLSPOLICY_PEM_CA    /* a CA bundle: at least one certificate */
};

/*
 * After the EHLO (or HELO) reply: STARTTLS, CLEAR or DEFER.
 * offered: STARTTLS was among the EHLO keywords (false after HELO).
 * clear_hold: the host is within its hour without STARTTLS after a failed
 * opportunistic handshake; only the opportunistic mode heeds it.
 */
enum tlspolicy_action tlspolicy_after_ehlo(enum connector_tls_mode mode, bool offered,
                                           bool clear_hold);

/*
 * After a failure: CLEAR, TLS, RECONNECT_CLEAR or DEFER.
 *   none / opportunistic: not offered or refused (454) -> CLEAR;
 *                         a failed handshake -> RECONNECT_CLEAR;
 *                         certificate -> TLS (it is not checked).
 *   required: any failure -> DEFER, except certificate -> TLS.
 *   verify: any failure -> DEFER.
 * A 421 reply to STARTTLS is a 421 "at any point" (SPEC §4): the caller
 * marks the destination down for it whatever the mode.
 */
enum tlspolicy_action tlspolicy_on_failure(enum connector_tls_mode mode, enum tlspolicy_failure f);

/* Does this action mark the destination down? (Only TLSPOLICY_DEFER.) */
bool tlspolicy_marks_down(enum tlspolicy_action a);

/*
 * The reason recorded with a deferral, written into buf (always
 * terminated when len > 0), e.g. "TLS required but not offered by HOST".
 * detail (NULL allowed) is the remote reply or the TLS error text; it is
 * cut at the first control character, since it may come from outside.
 */
void tlspolicy_reason(enum tlspolicy_failure f, const char *host, const char *detail, char *buf,
                      size_t len);

/*
 * The reference names to verify the certificate against: t->names with
 * each "*.X" passed as ".X" (any one-label host under X, not X itself), or
 * host alone when t has no names. Returns an array of *n borrowed pointers
 * (into t->names or host) that the caller frees with free(); NULL with
 * *n == 0 when there is no name at all (no names and host NULL).
 */
const char **tlspolicy_names(const struct connector_tls *t, const char *host, size_t *n);

/* One names entry as it is handed to OpenSSL: "*.X" -> ".X", else as is. */
const char *tlspolicy_name_ref(const char *name);

/*
 * Whether host may be sent as SNI: false for NULL, "", an IPv4 literal
 * (a last label of digits only), an IPv6 literal (any ':'), or anything
 * bracketed. The caller drops one trailing dot before sending it.
 */
bool tlspolicy_sni_ok(const char *host);

/*
 * Config-load check of a PEM file: it opens, is a regular file (a directory
 * or a FIFO fails), is at most TLSPOLICY_PEM_MAX bytes and parses as PEM of
 * the kind given. Returns 0, or BH_ENOENT (missing), BH_EIO (unreadable,
 * not a regular file) or BH_EINVAL (not PEM of that kind) with a message
 * naming the file in err (always terminated when errlen > 0).
 */
int tlspolicy_check_pem(const char *path, enum tlspolicy_pem kind, char *err, size_t errlen);

#endif
