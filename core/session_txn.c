#include "core/session_txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "connectors/config.h"
#include "connectors/domain.h"
#include "connectors/util.h"
#include "core/dsn.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/sched_settle.h"
#include "core/server.h"
#include "core/smtp_in.h"
#include "core/store.h"
#include "routing/router.h"
#include "storage/queue.h"

#define PENDING_HIGH (1024 * 1024) /* stop reading above this backlog */
#define HEADERS_MAX (32 * 1024)    /* header section kept for DSNs */

/* The envelope, copied at COMMIT (the machine resets it when answered). */
struct envelope {
    char *sender, *envid, *helo, *user;
    enum queue_ret ret;
    bool esmtp;
    size_t n;
    struct queue_rcpt *rcpts; /* connector/state filled at commit */
    char **addrs, **orcpts;
};

/* One message on its way to the storage writer. */
struct commit {
    struct session_txn *t;
    struct server_conf *conf;
    struct envelope env;
    struct util_buf received;
    struct queue_msg msgs[2];
    struct sched_settle_dsn dsn;
    size_t nmsgs, nok;
    uint64_t size;
    int priority;
    unsigned received_count;
    char client_ip[64];
    bool tls, auth;
    char tls_version[32], tls_cipher[64];
};

struct session_txn {
    struct server_env *env;
    session_txn_cb *cb;
    void *owner;
    unsigned inflight; /* spool write or commit in flight */
    bool released;
    struct queue_spool *spool;
    struct util_buf pending, writing; /* body bytes not yet in the spool */
    uv_work_t work;
    bool write_busy;                   /* a thread-pool write is in flight */
    struct queue_spool *write_spool;   /* the spool it writes into */
    struct queue_spool *orphan;        /* dropped while written: free after */
    int spool_err;
    bool want_resume;
    struct util_buf headers;
    bool headers_done;
    struct commit *waiting; /* a commit waiting for the spool to catch up */
};

static void start_write(struct session_txn *t);
static void do_commit(struct commit *c);

struct session_txn *
session_txn_new(struct server_env *env, session_txn_cb *cb, void *owner)
{
    struct session_txn *t = xcalloc(1, sizeof *t);
    t->env = env;
    t->cb = cb;
    t->owner = owner;
    return t;
}

static void
drop_body(struct session_txn *t)
{
    if (t->write_busy && t->spool == t->write_spool)
        t->orphan = t->spool; /* the thread still writes into it */
    else
        queue_spool_free(t->spool);
    t->spool = NULL;
    util_buf_fini(&t->pending);
    util_buf_fini(&t->headers);
    t->headers_done = false;
    t->spool_err = 0;
}

static void
txn_free(struct session_txn *t)
{
    queue_spool_free(t->orphan);
    t->orphan = NULL;
    drop_body(t);
    util_buf_fini(&t->writing);
    free(t);
}

void
session_txn_release(struct session_txn *t)
{
    if (t == NULL)
        return;
    t->released = true;
    t->cb = NULL;
    if (t->inflight == 0)
        txn_free(t);
}

static void
finish_inflight(struct session_txn *t)
{
    t->inflight--;
    if (t->released && t->inflight == 0)
        txn_free(t);
}

/* ---- relay check and routing at RCPT ------------------------------------ */

void
session_txn_check_mail(struct session_txn *t, struct server_conf *conf,
                       const struct smtp_in_action *act, int *code, char *text, size_t len)
{
    (void)conf;
    drop_body(t);
    if (act->mail->has_size && t->env->free_space != UINT64_MAX &&
        act->mail->size > t->env->free_space) {
        *code = 452;
        snprintf(text, len, "4.3.1 Insufficient system storage");
        return;
    }
    *code = 250;
    snprintf(text, len, "2.1.0 Ok");
}

static void
route_reply(enum router_status st, const struct router_result *res, int *code, char *text,
            size_t len)
{
    switch (st) {
    case ROUTER_OK:
        *code = 250;
        snprintf(text, len, "2.1.5 Ok");
        break;
    case ROUTER_BAD_DOMAIN:
        *code = 501;
        snprintf(text, len, "5.1.3 Bad recipient address syntax");
        break;
    case ROUTER_NO_MATCH:
        *code = 550;
        snprintf(text, len, "5.4.4 No connector for %s", res->domain);
        break;
    case ROUTER_TOO_LARGE:
        *code = 552;
        snprintf(text, len, "5.3.4 Message too large for the connectors of %s", res->domain);
        break;
    case ROUTER_REFUSED:
        *code = 550;
        snprintf(text, len, "5.7.1 %s", res->error);
        break;
    }
}

void
session_txn_check_rcpt(struct session_txn *t, struct server_conf *conf, struct smtp_in *m,
                       const struct session_txn_client *cl, const struct smtp_in_action *act,
                       int *code, char *text, size_t len)
{
    (void)t;
    const char *addr = act->rcpt->addr;
    const char *at = strrchr(addr, '@');
    char domain[DOMAIN_MAX + 1];
    if (at == NULL || domain_normalise(at + 1, strlen(at + 1), domain) < 0) {
        *code = 501;
        snprintf(text, len, "5.1.3 Bad recipient address syntax");
        return;
    }
    if (!config_domain_accepted(conf->config, domain) && !cl->relay_client &&
        smtp_in_user(m) == NULL) {
        *code = 550;
        snprintf(text, len, "5.7.1 <%s>: Relay access denied (relay denied)", addr);
        return;
    }
    const struct smtp_in_mail *mail = smtp_in_mail(m);
    struct router_query q = {
        .sender = mail ? mail->sender : NULL,
        .size = mail && mail->has_size ? mail->size : ROUTER_SIZE_UNKNOWN,
        .priority = ROUTER_PRIORITY_UNKNOWN,
        .system = false,
    };
    struct router_result res;
    enum router_status st = router_route(conf->router, addr, &q, &res);
    route_reply(st, &res, code, text, len);
    router_result_fini(&res);
}

/* ---- the body spool ------------------------------------------------------ */

void
session_txn_begin(struct session_txn *t)
{
    drop_body(t);
    t->spool = queue_spool_new(t->env->spool_dir);
}

static void
keep_headers(struct session_txn *t, const char *p, size_t len)
{
    if (t->headers_done)
        return;
    size_t room = HEADERS_MAX - t->headers.len;
    util_buf_append(&t->headers, p, len < room ? len : room);
    const char *end = t->headers.len >= 2 ? strstr(t->headers.p, "\r\n\r\n") : NULL;
    if (t->headers.len >= 2 && memcmp(t->headers.p, "\r\n", 2) == 0)
        end = t->headers.p;
    if (end != NULL) {
        t->headers.len = (size_t)(end - t->headers.p) + (end == t->headers.p ? 2 : 4);
        t->headers.p[t->headers.len] = '\0';
        t->headers_done = true;
    } else if (t->headers.len >= HEADERS_MAX) {
        t->headers_done = true;
    }
}

/* Runs on a thread-pool thread: the only file I/O of a spool. */
static void
write_work(uv_work_t *w)
{
    struct session_txn *t = w->data;
    int rc = queue_spool_write(t->write_spool, t->writing.p, t->writing.len);
    if (rc < 0)
        t->spool_err = rc;
}

static void
write_done(uv_work_t *w, int status)
{
    struct session_txn *t = w->data;
    (void)status;
    util_buf_reset(&t->writing);
    t->write_busy = false;
    queue_spool_free(t->orphan);
    t->orphan = NULL;
    if (t->released) {
        finish_inflight(t);
        return;
    }
    if (t->spool && t->pending.len > 0 && (t->pending.len >= QUEUE_SPOOL_MEM_MAX || t->waiting))
        start_write(t);
    struct commit *c = t->waiting;
    if (c != NULL && !t->write_busy) {
        t->waiting = NULL;
        do_commit(c);
    }
    if (t->want_resume && t->pending.len < PENDING_HIGH) {
        t->want_resume = false;
        if (t->cb)
            t->cb(t->owner, 0, NULL);
    }
    finish_inflight(t);
}

static void
start_write(struct session_txn *t)
{
    struct util_buf tmp = t->writing;
    t->writing = t->pending;
    t->pending = tmp;
    util_buf_reset(&t->pending);
    t->work.data = t;
    t->write_busy = true;
    t->write_spool = t->spool;
    t->inflight++;
    uv_queue_work(t->env->loop, &t->work, write_work, write_done);
}

bool
session_txn_data(struct session_txn *t, const char *p, size_t len)
{
    keep_headers(t, p, len);
    if (t->spool == NULL || t->spool_err < 0)
        return true;
    if (!t->write_busy && t->pending.len == 0 &&
        queue_spool_size(t->spool) + len <= QUEUE_SPOOL_MEM_MAX) {
        t->spool_err = queue_spool_write(t->spool, p, len); /* a memcpy: no I/O */
        return true;
    }
    util_buf_append(&t->pending, p, len);
    if (!t->write_busy && t->pending.len >= QUEUE_SPOOL_MEM_MAX)
        start_write(t);
    if (t->pending.len >= PENDING_HIGH) {
        t->want_resume = true;
        return false;
    }
    return true;
}

void
session_txn_abort(struct session_txn *t)
{
    drop_body(t);
}

/* ---- commit ---------------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void
envelope_copy(struct envelope *e, struct smtp_in *m)
{
    const struct smtp_in_mail *mail = smtp_in_mail(m);
    e->sender = xstrdup(mail->sender);
    e->envid = dup_or_null(mail->envid);
    e->ret = (enum queue_ret)mail->ret;
    e->helo = dup_or_null(smtp_in_helo(m));
    e->user = dup_or_null(smtp_in_user(m));
    e->esmtp = smtp_in_esmtp(m);
    e->n = smtp_in_rcpt_count(m);
    e->rcpts = xcalloc(e->n, sizeof *e->rcpts);
    e->addrs = xcalloc(e->n, sizeof *e->addrs);
    e->orcpts = xcalloc(e->n, sizeof *e->orcpts);
    for (size_t i = 0; i < e->n; i++) {
        const struct smtp_in_rcpt *r = smtp_in_rcpt(m, i);
        e->addrs[i] = xstrdup(r->addr);
        e->orcpts[i] = dup_or_null(r->orcpt);
        e->rcpts[i].notify = r->notify;
    }
}

static void
envelope_fini(struct envelope *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->addrs[i]);
        free(e->orcpts[i]);
    }
    free(e->addrs);
    free(e->orcpts);
    free(e->rcpts);
    free(e->sender);
    free(e->envid);
    free(e->helo);
    free(e->user);
}

static void
commit_free(struct commit *c)
{
    envelope_fini(&c->env);
    util_buf_fini(&c->received);
    sched_settle_dsn_fini(&c->dsn);
    server_conf_unref(c->conf);
    free(c);
}

/* Does this recipient want a failure DSN (RFC 3461 NOTIFY)? */
static bool
wants_failure_dsn(unsigned notify)
{
    return notify == 0 || ((notify & QUEUE_NOTIFY_FAILURE) && !(notify & QUEUE_NOTIFY_NEVER));
}

/* Route every recipient again with the real size and priority. Refused ones
 * get rcpts[i].connector NULL and status[i] "5.3.4"/"5.7.1". */
static void
reroute(struct commit *c, int64_t now, const char **status, char **why, bool *all_size)
{
    struct router_query q = {.sender = c->env.sender, .size = c->size,
                             .priority = c->priority, .system = false};
    *all_size = true;
    for (size_t i = 0; i < c->env.n; i++) {
        struct router_result res;
        struct queue_rcpt *r = &c->env.rcpts[i];
        r->address = c->env.addrs[i];
        r->orcpt = c->env.orcpts[i];
        if (router_route(c->conf->router, r->address, &q, &res) == ROUTER_OK) {
            r->connector = res.connector->name;
            sched_settle_initial_state(res.connector, now, c->size, r);
            c->nok++;
        } else {
            status[i] = res.status == ROUTER_TOO_LARGE ? "5.3.4" : "5.7.1";
            why[i] = xstrdup(res.error);
            *all_size = *all_size && res.status == ROUTER_TOO_LARGE;
        }
        router_result_fini(&res);
    }
}

/* Build the failure DSN for the recipients refused after the dot. */
static void
add_dsn(struct commit *c, int64_t now, const char **status, char **why)
{
    struct session_txn *t = c->t;
    struct dsn_rcpt *d = xcalloc(c->env.n, sizeof *d);
    size_t nd = 0;
    for (size_t i = 0; i < c->env.n; i++)
        if (status[i] && wants_failure_dsn(c->env.rcpts[i].notify))
            d[nd++] = (struct dsn_rcpt){.recipient = c->env.addrs[i], .orcpt = c->env.orcpts[i],
                                       .action = DSN_FAILED, .status = status[i],
                                       .diagnostic = why[i]};
    if (nd == 0 || c->env.sender[0] == '\0') {
        free(d);
        return;
    }
    struct dsn_report rep = {.hostname = c->conf->config->hostname, .sender = c->env.sender,
                             .queue_id = c->msgs[0].id, .envid = c->env.envid,
                             .arrival = now, .now = now, .full = false,
                             .original = t->headers.p ? t->headers.p : "",
                             .original_len = t->headers.len};
    bool dropped = false;
    if (sched_settle_dsn_make(c->conf, t->env->log, t->env->spool_dir, rep, d, nd, &c->dsn,
                              &dropped))
        c->msgs[c->nmsgs++] = c->dsn.msg;
    if (dropped)
        t->env->counters.dsn_dropped++;
    free(d);
}

static void
commit_done(void *arg, int status)
{
    struct commit *c = arg;
    struct session_txn *t = c->t;
    if (status == 0) {
        char from[LOG_VALUE_MAX];
        log_token(from, sizeof from, c->env.sender);
        log_info(t->env->log, "id=%s event=accepted from=<%s> nrcpt=%zu size=%llu client=%s",
                 c->msgs[0].id, from, c->nok, (unsigned long long)c->size, c->client_ip);
        if (c->nmsgs > 1)
            log_info(t->env->log, "id=%s event=dsn_queued orig=%s to=<%s>", c->msgs[1].id,
                     c->msgs[0].id, from);
        t->env->counters.received++;
        t->env->counters.dsn_created += c->nmsgs - 1;
        if (t->env->queued)
            t->env->queued(t->env->queued_arg);
    } else {
        log_error(t->env->log, "id=%s event=store_failed error=\"%s\" client=%s",
                  c->msgs[0].id, uv_strerror(status), c->client_ip);
    }
    char text[128];
    if (status == 0)
        snprintf(text, sizeof text, "2.0.0 Ok: queued as %s", c->msgs[0].id);
    else
        snprintf(text, sizeof text, "4.3.0 Error: queue file write error, try again later");
    /* Let go of this message's body before answering: the answer runs the
     * machine on, and a pipelined next message may start its own body. */
    commit_free(c);
    drop_body(t);
    if (t->cb)
        t->cb(t->owner, status == 0 ? 250 : 451, text);
    finish_inflight(t);
}

static void
refuse_all(struct commit *c, bool all_size, char **why)
{
    struct session_txn *t = c->t;
    char text[256];
    if (all_size)
        snprintf(text, sizeof text, "5.3.4 Message too large for its connectors");
    else
        snprintf(text, sizeof text, "5.7.1 %s", why[0] ? why[0] : "refused by every connector");
    commit_free(c);
    drop_body(t);
    t->cb(t->owner, all_size ? 552 : 550, text);
}

/* Fill msgs[0], the message itself, without the refused recipients. */
static void
fill_message(struct commit *c, const char *id, int64_t now, const char **status)
{
    size_t k = 0;
    for (size_t i = 0; i < c->env.n; i++)
        if (status[i] == NULL)
            c->env.rcpts[k++] = c->env.rcpts[i];
    c->msgs[0] = (struct queue_msg){.sender = c->env.sender, .envid = c->env.envid,
                                    .ret = c->env.ret, .priority = c->priority, .system = false,
                                    .size = c->size, .received = now, .header = c->received.p,
                                    .body = c->t->spool, .rcpts = c->env.rcpts, .nrcpts = k};
    memcpy(c->msgs[0].id, id, QUEUE_ID_LEN + 1);
}

static void
do_commit(struct commit *c)
{
    struct session_txn *t = c->t;
    int64_t now = (int64_t)time(NULL);
    size_t n = c->env.n;
    const char **status = xcalloc(n, sizeof *status);
    char **why = xcalloc(n, sizeof *why);
    bool all_size = false;
    if (t->spool_err < 0) {
        commit_free(c);
        drop_body(t);
        t->cb(t->owner, 451, "4.3.0 Error: queue file write error, try again later");
    } else if (reroute(c, now, status, why, &all_size), c->nok == 0) {
        refuse_all(c, all_size, why);
    } else {
        char id[QUEUE_ID_LEN + 1];
        queue_id_new(id);
        memcpy(c->msgs[0].id, id, sizeof id);
        struct msg_received rv = {.helo = c->env.helo, .client_ip = c->client_ip,
                                  .hostname = c->conf->config->hostname, .id = id,
                                  .esmtp = c->env.esmtp, .tls = c->tls, .auth = c->auth,
                                  .tls_version = c->tls_version, .tls_cipher = c->tls_cipher,
                                  .for_rcpt = n == 1 ? c->env.addrs[0] : NULL, .when = now};
        msg_received(&c->received, &rv);
        c->nmsgs = 1;
        add_dsn(c, now, status, why);
        fill_message(c, id, now, status);
        t->inflight++;
        store_commit(t->env->store, c->msgs, c->nmsgs, commit_done, c);
    }
    for (size_t i = 0; i < n; i++)
        free(why[i]);
    free(why);
    free(status);
}

void
session_txn_commit(struct session_txn *t, struct server_conf *conf, struct smtp_in *m,
                   const struct session_txn_client *cl, const struct smtp_in_action *act)
{
    struct commit *c = xcalloc(1, sizeof *c);
    c->t = t;
    c->conf = server_conf_ref(conf);
    envelope_copy(&c->env, m);
    c->size = act->size;
    c->priority = (int)act->priority;
    c->received_count = act->received;
    snprintf(c->client_ip, sizeof c->client_ip, "%s", cl->ip);
    c->tls = cl->tls_version != NULL;
    c->auth = c->env.user != NULL;
    snprintf(c->tls_version, sizeof c->tls_version, "%s", cl->tls_version ? cl->tls_version : "");
    snprintf(c->tls_cipher, sizeof c->tls_cipher, "%s", cl->tls_cipher ? cl->tls_cipher : "");
    if (t->write_busy || t->pending.len > 0) {
        t->waiting = c; /* write_done commits once the spool has caught up */
        if (!t->write_busy)
            start_write(t);
        return;
    }
    do_commit(c);
}
