#include "core/delivery.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/config.h"
#include "connectors/connector.h"
#include "connectors/tlspolicy.h"
#include "connectors/util.h"
#include "core/conn.h"
#include "core/dns.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/server.h"
#include "core/smtp_out.h"
#include "core/store.h"
#include "core/tls.h"
#include "routing/health.h"

#define CLEAR_HOLD_SECONDS 3600

/* One TCP connection attempt; freed in its close callback. */
struct dconn {
    struct conn conn;
    uv_connect_t req;
    struct delivery *d; /* NULL once the delivery let go of it */
};

struct body_load {
    struct delivery *d;
    struct delivery_job *job;
    char id[QUEUE_ID_LEN + 1];
    char *body;
    size_t len;
};

struct delivery {
    struct delivery_env env;
    struct server_conf *conf;
    const struct connector *k;
    struct delivery_dest *dests;
    size_t ndests, di;
    struct sockaddr_storage *addrs;
    size_t naddrs, ai;
    struct dns_req *dns_req;
    struct dconn *dc;
    uv_timer_t timer;
    struct smtp_out *m;
    struct tls_client_ctx *tls_ctx;
    struct delivery_job *job;
    bool job_sent;
    const struct delivery_ops *ops;
    void *arg;
    char key[320];
    char relay[80];
    char tls_version[32], tls_cipher[64], verify[96];
    unsigned sent;
    bool ready_once, finishing, loading, clear;
    unsigned refs; /* the timer, a pending body load, the dconn */
    int64_t min_retry;
    char reason[512];
    double job_start;
    int timer_wait;         /* the smtp_out_wait the timer runs for; -1: none */
    unsigned timer_replies; /* smtp_out_replies() when it was started */
};

static void drive(struct delivery *d);
static void next_destination(struct delivery *d);
static void try_addr(struct delivery *d);

static double
mono_now(void)
{
    return uv_hrtime() / 1e9;
}

static void
unref(struct delivery *d)
{
    if (--d->refs > 0)
        return;
    d->ops->closed(d->arg, d);
    for (size_t i = 0; i < d->ndests; i++)
        free(d->dests[i].host);
    free(d->dests);
    free(d->addrs);
    tls_client_ctx_unref(d->tls_ctx);
    server_conf_unref(d->conf);
    free(d);
}

void
delivery_job_free(struct delivery_job *job)
{
    if (job == NULL)
        return;
    for (size_t i = 0; i < job->n; i++)
        queue_entry_fini(&job->entries[i]);
    free(job->entries);
    free(job->connector);
    free(job->domain);
    free(job->body);
    free(job);
}

const char *
delivery_key(const struct delivery *d)
{
    return d->key;
}

const struct server_conf *
delivery_conf(const struct delivery *d)
{
    return d->conf;
}

const struct connector *
delivery_connector(const struct delivery *d)
{
    return d->k;
}

/* ---- settling the job in hand ------------------------------------------- */

static void
give_back(struct delivery *d, struct delivery_verdict *v)
{
    struct delivery_job *job = d->job;
    struct delivery_info info = {
        .relay = d->relay,
        .tls = d->tls_version[0] ? d->tls_version : "none",
        .cipher = d->tls_cipher[0] ? d->tls_cipher : "",
        .verify = d->verify[0] ? d->verify : "",
        .seconds = mono_now() - d->job_start,
    };
    d->job = NULL;
    d->job_sent = false;
    d->ops->job_done(d->arg, d, job, v, &info);
}

/* No verdict for the whole job: code 0 with a reason. */
static void
give_back_all(struct delivery *d, const char *reason, bool counts, int64_t retry_at)
{
    struct delivery_verdict *v = xcalloc(d->job->n, sizeof *v);
    for (size_t i = 0; i < d->job->n; i++) {
        v[i].counts = counts;
        v[i].retry_at = retry_at;
        snprintf(v[i].reply, sizeof v[i].reply, "%s", reason);
    }
    give_back(d, v);
    free(v);
}

/* ---- closing -------------------------------------------------------------- */

static void
on_dconn_closed(struct conn *c)
{
    struct dconn *dc = (struct dconn *)c;
    struct delivery *d = dc->d;
    free(dc);
    if (d)
        unref(d);
}

static void
drop_connection(struct delivery *d, bool graceful)
{
    smtp_out_free(d->m);
    d->m = NULL;
    d->tls_version[0] = d->tls_cipher[0] = d->verify[0] = '\0';
    if (d->dc) {
        conn_close(&d->dc->conn, graceful);
        d->dc = NULL;
    }
    uv_timer_stop(&d->timer);
}

static void
on_timer_closed(uv_handle_t *h)
{
    unref(h->data);
}

static void
finish(struct delivery *d)
{
    if (d->finishing)
        return;
    d->finishing = true;
    dns_cancel(d->dns_req);
    d->dns_req = NULL;
    if (d->job) {
        int64_t now = (int64_t)time(NULL);
        give_back_all(d, d->reason[0] ? d->reason : "no destination could be reached", false,
                      d->min_retry > now ? d->min_retry : now + 1);
    }
    drop_connection(d, true);
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

void
delivery_abort(struct delivery *d)
{
    /* Abandoned: the entries stay "delivering" in the queue, which the next
     * start turns back into "queued" (SPEC §9: they stay queued). */
    delivery_job_free(d->job);
    d->job = NULL;
    finish(d);
}

/* ---- timers ----------------------------------------------------------------- */

/* Mark the address in hand down (SPEC §4). A job that finds no other
 * destination waits for this one's retry, instead of finding it down a
 * second later and losing the reason from its last_reply. */
static void
mark_down(struct delivery *d, int64_t now)
{
    health_mark_down(d->env.health, d->relay, now, d->k->health_retry_initial,
                     d->k->health_retry_max);
    int64_t r = health_retry_at(d->env.health, d->relay, now);
    if (d->min_retry == 0 || r < d->min_retry)
        d->min_retry = r;
}

/* The address in hand could not be reached: mark it down (SPEC §4) and go
 * on with the next one. why is printed after "connect to ADDR: ". */
static void
addr_failed(struct delivery *d, const char *why, bool down)
{
    snprintf(d->reason, sizeof d->reason, "connect to %s: %s", d->relay, why);
    if (down)
        mark_down(d, (int64_t)time(NULL));
    drop_connection(d, false);
    d->ai++;
    try_addr(d);
}

static void
on_timeout(uv_timer_t *t)
{
    struct delivery *d = t->data;
    if (d->m == NULL) { /* connect timeout */
        addr_failed(d, "timed out", true);
        return;
    }
    smtp_out_timeout(d->m);
    drive(d);
}

static void
arm_timer(struct delivery *d)
{
    if (d->m == NULL || d->finishing)
        return;
    const struct connector_timeouts *t = &d->k->timeouts;
    enum smtp_out_wait w = smtp_out_waiting(d->m);
    unsigned replies = smtp_out_replies(d->m);
    /* A deadline is for a whole reply: the bytes of one still coming do
     * not restart it (a server trickling them would hold us forever). */
    if ((int)w == d->timer_wait && replies == d->timer_replies)
        return;
    d->timer_wait = (int)w;
    d->timer_replies = replies;
    uint64_t secs = 0;
    switch (w) {
    case SMTP_OUT_WAIT_GREETING:
        secs = t->greeting;
        break;
    case SMTP_OUT_WAIT_COMMAND:
    case SMTP_OUT_WAIT_TLS:
        secs = t->command;
        break;
    case SMTP_OUT_WAIT_DATA_BLOCK:
        secs = t->data_block;
        break;
    case SMTP_OUT_WAIT_DATA_END:
        secs = t->data_end;
        break;
    case SMTP_OUT_WAIT_NONE:
        uv_timer_stop(&d->timer);
        return;
    }
    uv_timer_start(&d->timer, on_timeout, secs * 1000, 0);
}

/* ---- the connection ------------------------------------------------------ */

static size_t
dc_read(struct conn *c, const char *data, size_t len)
{
    struct dconn *dc = (struct dconn *)c;
    if (dc->d && dc->d->m) {
        smtp_out_feed(dc->d->m, data, len);
        drive(dc->d);
    }
    return len;
}

static void
dc_error(struct conn *c, int status)
{
    struct dconn *dc = (struct dconn *)c;
    struct delivery *d = dc->d;
    if (d == NULL || d->m == NULL)
        return;
    if (c->handshaking) { /* the peer hung up in the handshake: a TLS failure */
        c->handshaking = false;
        snprintf(d->reason, sizeof d->reason, "TLS handshake with %s failed: %s",
                 d->dests[d->di].host, uv_strerror(status));
        smtp_out_tls_done(d->m, false);
    } else {
        smtp_out_eof(d->m);
    }
    drive(d);
}

static void
dc_tls_done(struct conn *c, int status)
{
    struct dconn *dc = (struct dconn *)c;
    struct delivery *d = dc->d;
    if (d == NULL || d->m == NULL)
        return;
    snprintf(d->tls_version, sizeof d->tls_version, "%s", tls_conn_version(c->tls));
    snprintf(d->tls_cipher, sizeof d->tls_cipher, "%s", tls_conn_cipher(c->tls));
    snprintf(d->verify, sizeof d->verify, "%s", tls_conn_verify_result(c->tls));
    if (status < 0)
        d->env.counters->tls_out_failed++;
    else
        d->env.counters->tls_out_ok++;
    if (status < 0)
        snprintf(d->reason, sizeof d->reason, "TLS handshake with %s failed: %s",
                 d->dests[d->di].host, tls_conn_error(c->tls));
    smtp_out_tls_done(d->m, status == 0);
    drive(d);
}

static const struct conn_ops dc_ops = {dc_read, dc_error, dc_tls_done, on_dconn_closed};

static enum smtp_out_starttls
starttls_mode(struct delivery *d)
{
    switch (d->k->tls.mode) {
    case CONNECTOR_TLS_NONE:
        return SMTP_OUT_STARTTLS_NEVER;
    case CONNECTOR_TLS_OPPORTUNISTIC:
        return d->clear ? SMTP_OUT_STARTTLS_NEVER : SMTP_OUT_STARTTLS_IF_OFFERED;
    default:
        return SMTP_OUT_STARTTLS_MUST;
    }
}

static void
on_connect(uv_connect_t *req, int status)
{
    struct dconn *dc = req->data;
    struct delivery *d = dc->d;
    if (d == NULL)
        return;
    if (status < 0) {
        addr_failed(d, uv_strerror(status), true);
        return;
    }
    uv_tcp_nodelay(&dc->conn.tcp, 1);
    conn_start(&dc->conn);
    const struct config *c = d->conf->config;
    struct smtp_out_params p = {
        .helo_name = d->k->helo_name ? d->k->helo_name : c->hostname,
        .use_ehlo = d->k->ehlo,
        .starttls = starttls_mode(d),
        .auth_user = d->k->auth_username,
        .auth_pass = d->k->auth_password,
    };
    d->m = smtp_out_new(&p);
    d->timer_wait = -1; /* the greeting's deadline replaces the connect's */
    if (d->m == NULL) {
        snprintf(d->reason, sizeof d->reason, "bad client parameters for connector %s",
                 d->k->name);
        finish(d);
        return;
    }
    arm_timer(d);
}

static void
format_addr(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(out, len, "%s:%u", ip, port);
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(out, len, "[%s]:%u", ip, port);
    }
}

static void
connect_addr(struct delivery *d, const struct sockaddr_storage *ss)
{
    struct dconn *dc = xcalloc(1, sizeof *dc);
    dc->d = d;
    dc->req.data = dc;
    conn_init(d->env.loop, &dc->conn, d->env.shared, &dc_ops, dc);
    d->dc = dc;
    d->refs++;
    int rc = uv_tcp_connect(&dc->req, &dc->conn.tcp, (const struct sockaddr *)ss, on_connect);
    if (rc < 0) {
        addr_failed(d, uv_strerror(rc), false);
        return;
    }
    uv_timer_start(&d->timer, on_timeout, d->k->timeouts.connect * 1000, 0);
}

/* A bridgehead given by name is one destination to the balancer, which
 * looks its health up as "name:port" (sched.c), while connections mark
 * each address. So the name is marked too: down once none of its
 * addresses could be used, up again as soon as one of them answers. */
static void
name_health(struct delivery *d, bool up)
{
    if (d->di >= d->ndests)
        return;
    const struct delivery_dest *dest = &d->dests[d->di];
    unsigned char ip[16];
    if (inet_pton(AF_INET, dest->host, ip) == 1 || inet_pton(AF_INET6, dest->host, ip) == 1)
        return; /* an address: the connection marks it itself */
    char key[300];
    snprintf(key, sizeof key, "%s:%u", dest->host, dest->port);
    int64_t now = (int64_t)time(NULL);
    if (up)
        health_mark_up(d->env.health, key);
    else if (health_is_up(d->env.health, key, now))
        health_mark_down(d->env.health, key, now, d->k->health_retry_initial,
                         d->k->health_retry_max);
}

/* The next address of the current destination that is up, or the next
 * destination. */
static void
try_addr(struct delivery *d)
{
    int64_t now = (int64_t)time(NULL);
    while (d->ai < d->naddrs && !d->finishing) {
        format_addr(&d->addrs[d->ai], d->relay, sizeof d->relay);
        if (health_is_up(d->env.health, d->relay, now)) {
            connect_addr(d, &d->addrs[d->ai]);
            return;
        }
        int64_t r = health_retry_at(d->env.health, d->relay, now);
        if (d->min_retry == 0 || r < d->min_retry)
            d->min_retry = r;
        if (!d->reason[0])
            snprintf(d->reason, sizeof d->reason, "%s is down", d->relay);
        d->ai++;
    }
    if (!d->finishing)
        name_health(d, false);
    d->di++;
    next_destination(d);
}

static void
on_resolved(void *arg, const struct dns_result *r)
{
    struct delivery *d = arg;
    d->dns_req = NULL;
    free(d->addrs);
    d->addrs = NULL;
    d->naddrs = d->ai = 0;
    if (r->status != DNS_OK || r->n == 0) {
        snprintf(d->reason, sizeof d->reason, "cannot resolve %s: %s", d->dests[d->di].host,
                 r->why);
        name_health(d, false);
        d->di++;
        next_destination(d);
        return;
    }
    d->addrs = xmalloc(r->n * sizeof *d->addrs);
    memcpy(d->addrs, r->addr, r->n * sizeof *d->addrs);
    d->naddrs = r->n;
    try_addr(d);
}

static void
next_destination(struct delivery *d)
{
    if (d->finishing)
        return;
    if (d->di >= d->ndests) {
        finish(d); /* gives the job back: no destination left */
        return;
    }
    d->clear = health_clear_hold(d->env.health, d->dests[d->di].host, (int64_t)time(NULL));
    d->dns_req = dns_addr(d->env.dns, d->dests[d->di].host, d->dests[d->di].port, on_resolved, d);
}

/* ---- the job: body, send, verdicts ----------------------------------------- */

static int
load_run(struct queue *q, void *arg)
{
    struct body_load *b = arg;
    return queue_read_body(q, b->id, &b->body, &b->len);
}

static void send_job(struct delivery *d);

static void
load_done(void *arg, int status)
{
    struct body_load *b = arg;
    struct delivery *d = b->d;
    d->loading = false;
    if (status == 0 && d->job == b->job && d->m && !d->finishing) {
        d->job->body = b->body;
        d->job->body_len = b->len;
        b->body = NULL;
        send_job(d);
    } else if (d->job == b->job && !d->finishing) {
        give_back_all(d, status == BH_ENOENT ? "message deleted" : "cannot read the message",
                      true, 0);
        if (d->m)
            smtp_out_quit(d->m);
        drive(d);
    }
    free(b->body);
    free(b);
    unref(d);
}

static void
load_body(struct delivery *d)
{
    struct body_load *b = xcalloc(1, sizeof *b);
    b->d = d;
    b->job = d->job;
    memcpy(b->id, d->job->entries[0].id, sizeof b->id);
    d->loading = true;
    d->refs++;
    store_call(d->env.reader, load_run, load_done, b);
}

static void
send_job(struct delivery *d)
{
    struct delivery_job *job = d->job;
    const struct queue_entry *e0 = &job->entries[0];
    struct smtp_out_rcpt *r = xcalloc(job->n, sizeof *r);
    for (size_t i = 0; i < job->n; i++)
        r[i] = (struct smtp_out_rcpt){.address = job->entries[i].rcpt,
                                      .notify = job->entries[i].notify,
                                      .orcpt = job->entries[i].orcpt};
    struct smtp_out_msg msg = {.sender = e0->sender, .rcpts = r, .nrcpts = job->n,
                               .envid = e0->envid, .ret = (enum smtp_out_ret)e0->ret,
                               .size = job->body_len};
    int rc = smtp_out_send(d->m, &msg);
    free(r);
    if (rc < 0) {
        give_back_all(d, "the message cannot be sent (bad envelope)", true, 0);
        smtp_out_quit(d->m);
    } else {
        d->job_sent = true;
        d->sent++;
    }
    drive(d);
}

static void
message_done(struct delivery *d, const struct smtp_out_act *act)
{
    struct delivery_verdict *v = xcalloc(d->job->n, sizeof *v);
    for (size_t i = 0; i < d->job->n && i < act->nresults; i++) {
        const struct smtp_out_result *r = &act->results[i];
        v[i].code = r->code;
        v[i].counts = true;
        v[i].relayed = r->relayed;
        snprintf(v[i].status, sizeof v[i].status, "%s", r->status);
        snprintf(v[i].reply, sizeof v[i].reply, "%s", r->text ? r->text : "");
    }
    give_back(d, v);
    free(v);
}

static bool job_leased(const struct delivery *d);
static void lease_lost(struct delivery *d);

/* The machine is idle: the job in hand, another one, or QUIT. */
static void
on_ready(struct delivery *d)
{
    if (!d->ready_once) {
        d->ready_once = true;
        health_mark_up(d->env.health, d->relay);
        name_health(d, true);
    }
    if (d->job == NULL && d->sent < d->k->max_messages_per_connection)
        d->job = d->ops->next_job(d->arg, d);
    if (d->job == NULL) {
        smtp_out_quit(d->m);
        return;
    }
    d->job_start = mono_now();
    if (!job_leased(d)) {
        lease_lost(d);
        return;
    }
    load_body(d);
}

/* Does this ending mean the destination is down (SPEC §4)? */
static bool
marks_down(struct delivery *d, enum smtp_out_outcome o)
{
    switch (o) {
    case SMTP_OUT_GREETING_FAILED:
    case SMTP_OUT_HELO_FAILED:
    case SMTP_OUT_SERVER_SHUTDOWN:
    case SMTP_OUT_AUTH_FAILED:
        return true;
    case SMTP_OUT_TLS_NOT_OFFERED:
    case SMTP_OUT_TLS_REFUSED:
    case SMTP_OUT_TLS_FAILED:
        return d->k->tls.mode >= CONNECTOR_TLS_REQUIRED;
    case SMTP_OUT_TIMEOUT:
        return !d->ready_once;
    default:
        return false;
    }
}

static void
close_reason(struct delivery *d, const struct smtp_out_act *act)
{
    const char *host = d->dests[d->di].host;
    switch (act->outcome) {
    case SMTP_OUT_TLS_NOT_OFFERED:
        snprintf(d->reason, sizeof d->reason, "TLS required but not offered by %s", host);
        break;
    case SMTP_OUT_TLS_REFUSED:
        snprintf(d->reason, sizeof d->reason, "TLS required but refused by %s: %s", host,
                 act->text ? act->text : "");
        break;
    case SMTP_OUT_TLS_FAILED:
        if (!d->reason[0])
            snprintf(d->reason, sizeof d->reason, "TLS handshake with %s failed", host);
        break;
    case SMTP_OUT_AUTH_FAILED:
        snprintf(d->reason, sizeof d->reason, "4.7.0 authentication with %s failed: %s", host,
                 act->text ? act->text : "");
        break;
    default:
        snprintf(d->reason, sizeof d->reason, "%s (%s): %s", d->relay,
                 smtp_out_outcome_name(act->outcome), act->text ? act->text : "");
    }
}

/* The connection is over. With a job that never reached the server, try
 * the next address or destination; else the delivery is done. */
static void
on_close(struct delivery *d, const struct smtp_out_act *act)
{
    bool pending = d->job != NULL && !d->job_sent;
    enum smtp_out_outcome o = act->outcome;
    int64_t now = (int64_t)time(NULL);
    if (o != SMTP_OUT_OK_QUIT)
        close_reason(d, act);
    if (marks_down(d, o))
        mark_down(d, now);
    drop_connection(d, o == SMTP_OUT_OK_QUIT);
    if (!pending || d->loading) {
        finish(d);
        return;
    }
    if (o == SMTP_OUT_TLS_FAILED && d->k->tls.mode == CONNECTOR_TLS_OPPORTUNISTIC) {
        health_set_clear(d->env.health, d->dests[d->di].host, now + CLEAR_HOLD_SECONDS);
        d->clear = true; /* the same address again, in clear */
    } else {
        d->ai++;
    }
    if (marks_down(d, o) || o == SMTP_OUT_TLS_FAILED) {
        d->ready_once = false;
        try_addr(d);
        return;
    }
    /* Not the destination's fault (protocol error, lost connection):
     * defer the job with backoff. */
    give_back_all(d, d->reason, true, 0);
    finish(d);
}

/* SPEC §8: does this node still hold the leases of the job in hand? A node
 * that was stalled past its lease deadline, or whose renewal failed, may
 * see another node deliver the same recipients: it must not send the body. */
static bool
job_leased(const struct delivery *d)
{
    for (size_t i = 0; i < d->job->n; i++)
        if (!queue_entry_lease_ok(&d->job->entries[i]))
            return false;
    return true;
}

/* Abandon the session before the body: the remote has no message, and the
 * entries go back (a no-op when another node holds them now). */
static void
lease_lost(struct delivery *d)
{
    snprintf(d->reason, sizeof d->reason, "4.4.0 lease lost before the body was sent");
    give_back_all(d, d->reason, false, (int64_t)time(NULL) + 1);
    drop_connection(d, false);
    finish(d);
}

static void
drive(struct delivery *d)
{
    struct smtp_out_act act;
    while (d->m && smtp_out_next(d->m, &act)) {
        switch (act.type) {
        case SMTP_OUT_WRITE:
            if (d->dc)
                conn_write(&d->dc->conn, act.data, act.len);
            break;
        case SMTP_OUT_START_TLS:
            d->tls_ctx = d->tls_ctx ? d->tls_ctx : tls_client_ctx_new(&d->k->tls,
                                                  d->dests[d->di].host, d->reason,
                                                  sizeof d->reason);
            if (d->tls_ctx == NULL || conn_start_tls_client(&d->dc->conn, d->tls_ctx,
                                                            d->dests[d->di].host) < 0)
                smtp_out_tls_done(d->m, false);
            break;
        case SMTP_OUT_READY:
            on_ready(d);
            break;
        case SMTP_OUT_BODY_WANTED:
            if (!job_leased(d)) {
                lease_lost(d);
                return;
            }
            smtp_out_body(d->m, d->job->body, d->job->body_len, true);
            break;
        case SMTP_OUT_MESSAGE_DONE:
            message_done(d, &act);
            break;
        case SMTP_OUT_CLOSE:
            on_close(d, &act);
            return;
        case SMTP_OUT_NONE:
            break;
        }
    }
    arm_timer(d);
}

struct delivery *
delivery_start(const struct delivery_env *env, struct server_conf *conf,
               const struct connector *k, const struct delivery_dest *dests, size_t n,
               struct delivery_job *job, const struct delivery_ops *ops, void *arg)
{
    struct delivery *d = xcalloc(1, sizeof *d);
    d->env = *env;
    d->conf = server_conf_ref(conf);
    d->k = k;
    d->dests = xcalloc(n ? n : 1, sizeof *d->dests);
    for (size_t i = 0; i < n; i++)
        d->dests[i] = (struct delivery_dest){xstrdup(dests[i].host), dests[i].port};
    d->ndests = n;
    d->job = job;
    d->ops = ops;
    d->arg = arg;
    d->refs = 1; /* the timer */
    d->job_start = mono_now();
    snprintf(d->key, sizeof d->key, "%s/%s", job->connector, job->domain ? job->domain : "");
    uv_timer_init(env->loop, &d->timer);
    d->timer.data = d;
    next_destination(d);
    return d;
}
