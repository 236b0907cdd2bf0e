/*
 * session_txn: the mail-transaction half of an inbound session — the relay
 * check and routing of each RCPT, the body spool (kept off the loop thread
 * once it outgrows memory), and the commit after the final dot: routing
 * again with the real size and priority, the failure DSN for recipients
 * refused then, and the hand-over to the storage writer.
 *
 * A struct session_txn belongs to its session and lives as long as it; it
 * may outlive it while a spool write or a commit is in flight, which is why
 * the session asks session_txn_busy() before freeing itself. Loop thread
 * only.
 */
#ifndef BH_CORE_SESSION_TXN_H
#define BH_CORE_SESSION_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server_env;
struct server_conf;
struct smtp_in;
struct smtp_in_action;
struct util_buf;

/* What the session tells the transaction about its client. */
struct session_txn_client {
    const char *ip;
    bool relay_client; /* in relay_networks */
    const char *tls_version, *tls_cipher;
};

/* Called when an asynchronous step has finished: the session answers the
 * machine (code, text) and carries on. code 0: nothing to answer (a spool
 * write finished and reading may resume). */
typedef void session_txn_cb(void *owner, int code, const char *text);

struct session_txn;

struct session_txn *session_txn_new(struct server_env *env, session_txn_cb *cb, void *owner);
/* Free now, or as soon as the work in flight has finished. */
void session_txn_release(struct session_txn *t);

/* CHECK_MAIL and CHECK_RCPT: answered at once into *code/text. */
void session_txn_check_mail(struct session_txn *t, struct server_conf *conf,
                            const struct smtp_in_action *act, int *code, char *text, size_t len);
void session_txn_check_rcpt(struct session_txn *t, struct server_conf *conf, struct smtp_in *m,
                            const struct session_txn_client *cl, const struct smtp_in_action *act,
                            int *code, char *text, size_t len);

/* DATA_BEGIN, DATA, DATA_ABORT. data returns false when the session
 * should stop reading until the callback says the spool caught up. */
void session_txn_begin(struct session_txn *t);
bool session_txn_data(struct session_txn *t, const char *p, size_t len);
void session_txn_abort(struct session_txn *t);

/* COMMIT: answered later through the callback. */
void session_txn_commit(struct session_txn *t, struct server_conf *conf, struct smtp_in *m,
                        const struct session_txn_client *cl, const struct smtp_in_action *act);

#endif
