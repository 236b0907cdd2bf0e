/*
 * smtp_in_env: the envelope of one transaction in the smtp_in machine: MAIL
 * FROM with its parameters, the recipient being checked, and the accepted
 * recipients with their DSN parameters.
 *
 * Part of the protocol machine: libc only. The caller embeds the struct
 * (zero is an empty envelope) and the envelope owns every string in it
 * until smtp_in_env_reset or smtp_in_env_fini. Any thread.
 */
#ifndef BH_CORE_SMTP_IN_ENV_H
#define BH_CORE_SMTP_IN_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "core/smtp_in.h"
#include "core/smtp_in_args.h"

struct smtp_in_env {
    bool has_mail; /* MAIL accepted or being checked */
    struct smtp_in_mail mail;
    char sender[SMTP_IN_ADDR_MAX + 1];
    char envid[SMTP_IN_ARGS_ENVID_MAX + 1];
    struct smtp_in_rcpt **rcpts; /* accepted */
    size_t nrcpts, cap;
    struct smtp_in_rcpt *cand; /* being checked, NULL: none */
};

/* Start a transaction with the sender and parameters of a parsed MAIL. */
void smtp_in_env_mail(struct smtp_in_env *e, const struct smtp_in_args *a);
/* Copy a parsed RCPT as the candidate, with room made for it in the list.
 * false: out of memory (nothing changed). */
bool smtp_in_env_cand(struct smtp_in_env *e, const struct smtp_in_args *a);
/* The candidate was accepted (added to the list) or refused (dropped). */
void smtp_in_env_settle(struct smtp_in_env *e, bool accepted);
/* Back to no transaction (the list's memory is kept for the next one). */
void smtp_in_env_reset(struct smtp_in_env *e);
void smtp_in_env_fini(struct smtp_in_env *e);

#endif
