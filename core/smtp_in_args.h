/*
 * smtp_in_args: the argument parsers of the smtp_in machine. MAIL and RCPT
 * paths per RFC 5321 (Mailbox with quoted local parts, address literals,
 * source routes stripped, the 64/255/256 length limits, <Postmaster>), their
 * ESMTP parameters (SIZE, BODY, RET, ENVID, AUTH; NOTIFY, ORCPT), and the
 * arguments of HELO/EHLO, ETRN and ATRN.
 *
 * Part of the protocol machine: libc only, pure functions on caller-owned
 * memory, any thread. Errors come back as the reply line to send (no CRLF).
 */
#ifndef BH_CORE_SMTP_IN_ARGS_H
#define BH_CORE_SMTP_IN_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/smtp_in.h"

#define SMTP_IN_ARGS_ENVID_MAX 100 /* RFC 3461 §4.4 */
#define SMTP_IN_ARGS_ORCPT_MAX 500 /* RFC 3461 §4.2 */

/* What one MAIL or RCPT argument says. Caller-owned; filled by the parsers. */
struct smtp_in_args {
    char addr[SMTP_IN_ADDR_MAX + 1];        /* the mailbox, "" for <> */
    char xtext[SMTP_IN_ARGS_ORCPT_MAX + 1]; /* ENVID (MAIL) or ORCPT (RCPT) */
    bool has_xtext;
    bool has_size;
    uint64_t size;
    enum smtp_in_body body;
    enum smtp_in_ret ret;
    unsigned notify;
};

/* Parse the NUL-terminated text after "MAIL " ("FROM:<a@b> SIZE=1"). esmtp:
 * the client said EHLO (else any parameter is 555); auth: AUTH is offered
 * (so AUTH= is known). Returns NULL and fills *out, or the reply line. */
const char *smtp_in_args_mail(const char *s, bool esmtp, bool auth, struct smtp_in_args *out);
/* The same for "RCPT " ("TO:<a@b> NOTIFY=NEVER"). <Postmaster> in any case
 * becomes "postmaster@" hostname. */
const char *smtp_in_args_rcpt(const char *s, bool esmtp, const char *hostname,
                              struct smtp_in_args *out);
/* Is s[0..n) a domain (RFC 5321 Domain, one trailing dot allowed)? */
bool smtp_in_args_domain(const char *s, size_t n);
/* ATRN's argument: "" or a comma-separated list of domains. */
bool smtp_in_args_domains(const char *s);
/* HELO/EHLO: the first word of arg, printable ASCII, 1..255 octets, copied
 * to out (at least 256 octets). Clients' names are often not domains, so
 * nothing more is asked of it. */
bool smtp_in_args_helo(const char *arg, char *out);

#endif
