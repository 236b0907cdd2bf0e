/*
 * smtp_in_auth: the AUTH exchange of the smtp_in machine (RFC 4954) for the
 * PLAIN (RFC 4616, with or without an initial response) and LOGIN
 * mechanisms: challenges, base64 decoding, "*" to cancel. It only collects
 * the user name and password; the glue checks them (AUTH_CHECK), and the
 * machine decides who may AUTH at all (TLS, users configured, once).
 *
 * Part of the protocol machine: libc only. The caller owns the struct; the
 * strings in it are heap copies it owns until smtp_in_auth_clear(), which
 * wipes the password. Any thread.
 */
#ifndef BH_CORE_SMTP_IN_AUTH_H
#define BH_CORE_SMTP_IN_AUTH_H

#include <stdbool.h>

enum smtp_in_auth_res {
    SMTP_IN_AUTH_CONTINUE, /* send *reply (a 334 challenge); a response line follows */
    SMTP_IN_AUTH_READY,    /* user and pass are set: check them */
    SMTP_IN_AUTH_ERROR,    /* send *reply; the exchange is over (malformed) */
    SMTP_IN_AUTH_CANCEL    /* send *reply; the client cancelled with "*" */
};

struct smtp_in_auth {
    int state;  /* 0: no exchange under way (zero-initialised is idle) */
    char *user; /* NUL-terminated, no control octets; NULL until known */
    char *pass; /* NUL-terminated; NULL until known */
};

/* The text after "AUTH ": "PLAIN [initial-response]" or "LOGIN [user]". */
enum smtp_in_auth_res smtp_in_auth_start(struct smtp_in_auth *a, const char *arg,
                                         const char **reply);
/* A response line (CRLF removed) while an exchange is under way. */
enum smtp_in_auth_res smtp_in_auth_line(struct smtp_in_auth *a, const char *line,
                                        const char **reply);
/* Is an exchange waiting for a response line? */
bool smtp_in_auth_active(const struct smtp_in_auth *a);
/* Wipe and free the credentials; back to idle. */
void smtp_in_auth_clear(struct smtp_in_auth *a);

#endif
