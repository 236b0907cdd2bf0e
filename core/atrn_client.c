#include "core/atrn_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "connectors/config.h"
#include "connectors/connector.h"
#include "connectors/util.h"
#include "core/atrn.h"
#include "core/delivery.h"
#include "core/log.h"
#include "core/sched_settle.h"
#include "core/server.h"
#include "core/smtp_out.h"
#include "core/store.h"

struct atrn_client {
    struct server_env *env;
    struct server_conf *conf;
    const struct connector *k; /* the first target's: EHLO and timeouts */
    const struct atrn_client_ops *ops;
    void *owner;
    char *user, *relay, *tls, *cipher;
    struct atrn_targets targets;
    struct sched_settle *ss;
    struct smtp_out *m;
    struct delivery_job *jobs; /* leased, not started */
    struct delivery_job *job;  /* in hand */
    bool job_sent, loading, more;
    bool turned, over, stopped, in_drive, eof_fed;
    unsigned refs; /* leases, body loads and settlements in flight */
    unsigned messages;
    double job_start;
    int timer_wait;         /* the smtp_out_waiting() the timer is for, -1: none */
    unsigned timer_replies; /* smtp_out_replies() when it was started */
};

struct lease_req {
    struct atrn_client *c;
    int n;
    struct queue_entry out[ATRN_BATCH];
};

struct body_load {
    struct atrn_client *c;
    struct delivery_job *job;
    char id[QUEUE_ID_LEN + 1];
    char *body;
    size_t len;
};

static void drive(struct atrn_client *c);
static void on_ready(struct atrn_client *c);

bool
atrn_client_busy(const struct atrn_client *c)
{
    return c->refs > 0 || !c->over;
}

void
atrn_client_free(struct atrn_client *c)
{
    if (c == NULL)
        return;
    delivery_job_free(c->job);
    while (c->jobs) {
        struct delivery_job *j = c->jobs;
        c->jobs = j->next;
        delivery_job_free(j);
    }
    smtp_out_free(c->m);
    sched_settle_free(c->ss);
    atrn_targets_fini(&c->targets);
    server_conf_unref(c->conf);
    free(c->user);
    free(c->relay);
    free(c->tls);
    free(c->cipher);
    free(c);
}

/* The last step of an asynchronous completion: tell the session when
 * nothing is left in flight (it may free c then). */
static void
maybe_idle(struct atrn_client *c)
{
    if ((c->stopped || c->over) && !atrn_client_busy(c))
        c->ops->idle(c->owner);
}

static double
mono_now(void)
{
    return uv_hrtime() / 1e9;
}

/* ---- settling ---------------------------------------------------------------- */

static void
on_settled(void *arg, int64_t earliest)
{
    struct atrn_client *c = arg;
    (void)earliest; /* deferrals wait for the next trigger: no wake-up */
    c->refs--;
    if (c->env->queued) /* a bounce queued a DSN: the scheduler sends it */
        c->env->queued(c->env->queued_arg);
    maybe_idle(c);
}

/* Back to triggered, untried. */
static void
give_back(struct atrn_client *c, struct delivery_job *job)
{
    c->refs++;
    sched_settle_triggered(c->ss, job, on_settled, c);
}

static void
settle(struct atrn_client *c, struct delivery_job *job, const struct delivery_verdict *v)
{
    struct delivery_info info = {.relay = c->relay,
                                 .tls = c->tls,
                                 .cipher = c->cipher,
                                 .verify = "",
                                 .seconds = mono_now() - c->job_start};
    c->refs++;
    sched_settle_job(c->ss, job, v, &info, on_settled, c);
}

/* The same verdict (no reply: code 0, deferred) for every recipient. */
static void
settle_all(struct atrn_client *c, struct delivery_job *job, const char *reason)
{
    struct delivery_verdict *v = xcalloc(job->n, sizeof *v);
    for (size_t i = 0; i < job->n; i++) {
        v[i].counts = true;
        snprintf(v[i].reply, sizeof v[i].reply, "%s", reason);
    }
    settle(c, job, v);
    free(v);
}

static void
message_done(struct atrn_client *c, const struct smtp_out_act *act)
{
    struct delivery_job *job = c->job;
    struct delivery_verdict *v = xcalloc(job->n, sizeof *v);
    for (size_t i = 0; i < job->n && i < act->nresults; i++) {
        const struct smtp_out_result *r = &act->results[i];
        v[i].code = r->code;
        v[i].counts = true;
        v[i].relayed = r->relayed;
        snprintf(v[i].status, sizeof v[i].status, "%s", r->status);
        snprintf(v[i].reply, sizeof v[i].reply, "%s", r->text ? r->text : "");
    }
    c->job = NULL;
    c->job_sent = false;
    settle(c, job, v);
    free(v);
}

/* ---- leasing ----------------------------------------------------------------- */

static int
lease_run(struct queue *q, void *arg)
{
    struct lease_req *l = arg;
    l->n = atrn_lease(q, &l->c->targets, ATRN_BATCH, l->out);
    return l->n < 0 ? l->n : 0;
}

static void
domains_text(const struct atrn_client *c, char *out, size_t len)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < c->targets.n && k < len; i++)
        k += (size_t)snprintf(out + k, len - k, "%s%s", i ? "," : "", c->targets.v[i].domain);
}

/* The first lease is back: answer ATRN. Refused (451, 453): c is freed
 * before the answer goes out. */
static void
first_answer(struct atrn_client *c, int status, int n)
{
    char doms[512];
    domains_text(c, doms, sizeof doms);
    int code = status < 0 ? 451 : n == 0 ? 453 : 250;
    char user[LOG_VALUE_MAX], dtok[LOG_VALUE_MAX];
    log_info(c->env->log, "event=atrn user=\"%s\" client=%s domains=%s reply=%d recipients=%d",
             log_text(user, sizeof user, c->user), c->relay, log_token(dtok, sizeof dtok, doms),
             code, n > 0 ? n : 0);
    if (code != 250) {
        const struct atrn_client_ops *ops = c->ops;
        void *owner = c->owner;
        atrn_client_free(c); /* nothing is in flight */
        ops->answer(owner, code,
                    code == 451 ? "4.3.0 Unable to process ATRN request now"
                                : "4.3.0 You have no mail");
        return;
    }
    c->turned = true;
    c->in_drive = true; /* a stop inside the answer waits for drive */
    c->ops->answer(c->owner, 250, NULL);
    c->in_drive = false;
    drive(c); /* arms the greeting timer, or ends at once after a stop */
}

static void
lease_done(void *arg, int status)
{
    struct lease_req *l = arg;
    struct atrn_client *c = l->c;
    c->refs--;
    int n = status == 0 ? l->n : 0;
    struct delivery_job *jobs = atrn_jobs(l->out, (size_t)n), **tail = &c->jobs;
    free(l);
    c->more = n == ATRN_BATCH;
    while (*tail)
        tail = &(*tail)->next;
    *tail = jobs;
    if (!c->turned && !c->stopped) {
        bool refused = n == 0;
        first_answer(c, status, n);
        if (refused) /* c is gone */
            return;
    } else if (!c->turned) {
        c->over = true; /* the session went away meanwhile */
    } else if (!c->over && !c->stopped) {
        on_ready(c); /* the machine waited at READY for this lease */
        drive(c);
    }
    if (c->over || c->stopped) {
        while (c->jobs) {
            struct delivery_job *j = c->jobs;
            c->jobs = j->next;
            give_back(c, j);
        }
    }
    maybe_idle(c);
}

static void
lease(struct atrn_client *c)
{
    struct lease_req *l = xcalloc(1, sizeof *l);
    l->c = c;
    c->refs++;
    store_call(c->env->store, lease_run, lease_done, l);
}

/* ---- one job: body, send ----------------------------------------------------- */

static int
load_run(struct queue *q, void *arg)
{
    struct body_load *b = arg;
    return queue_read_body(q, b->id, &b->body, &b->len);
}

static void
send_job(struct atrn_client *c)
{
    struct delivery_job *job = c->job;
    const struct queue_entry *e0 = &job->entries[0];
    struct smtp_out_rcpt *r = xcalloc(job->n, sizeof *r);
    for (size_t i = 0; i < job->n; i++)
        r[i] = (struct smtp_out_rcpt){.address = job->entries[i].rcpt,
                                      .notify = job->entries[i].notify,
                                      .orcpt = job->entries[i].orcpt};
    struct smtp_out_msg msg = {.sender = e0->sender,
                               .rcpts = r,
                               .nrcpts = job->n,
                               .envid = e0->envid,
                               .ret = (enum smtp_out_ret)e0->ret,
                               .size = job->body_len};
    int rc = smtp_out_send(c->m, &msg);
    free(r);
    if (rc == 0) {
        c->job_sent = true;
        c->messages++;
        return;
    }
    c->job = NULL;
    settle_all(c, job, "the message cannot be sent (bad envelope)");
    on_ready(c);
}

static void
load_done(void *arg, int status)
{
    struct body_load *b = arg;
    struct atrn_client *c = b->c;
    c->refs--;
    c->loading = false;
    struct delivery_job *job = b->job;
    c->job = NULL;
    if (c->over || c->stopped) {
        give_back(c, job);
    } else if (status == 0) {
        job->body = b->body;
        job->body_len = b->len;
        b->body = NULL;
        c->job = job;
        send_job(c);
        drive(c);
    } else {
        settle_all(c, job, status == BH_ENOENT ? "message deleted" : "cannot read the message");
        on_ready(c);
        drive(c);
    }
    free(b->body);
    free(b);
    maybe_idle(c);
}

static void
load_body(struct atrn_client *c)
{
    struct body_load *b = xcalloc(1, sizeof *b);
    b->c = c;
    b->job = c->job;
    memcpy(b->id, c->job->entries[0].id, sizeof b->id);
    c->loading = true;
    c->refs++;
    c->job_start = mono_now();
    store_call(c->env->reader ? c->env->reader : c->env->store, load_run, load_done, b);
}

/* The machine is idle: the next job, more mail, or QUIT. */
static void
on_ready(struct atrn_client *c)
{
    if (c->over || c->stopped || c->loading || c->job != NULL)
        return;
    c->job = c->jobs;
    if (c->job != NULL) {
        c->jobs = c->job->next;
        c->job->next = NULL;
        load_body(c);
    } else if (c->more) {
        c->more = false;
        lease(c);
    } else {
        smtp_out_quit(c->m);
    }
}

/* ---- the machine --------------------------------------------------------------- */

static void
on_close(struct atrn_client *c, const struct smtp_out_act *act)
{
    c->over = true;
    char user[LOG_VALUE_MAX];
    log_info(c->env->log, "event=atrn_end user=\"%s\" client=%s outcome=%s messages=%u",
             log_text(user, sizeof user, c->user), c->relay, smtp_out_outcome_name(act->outcome),
             c->messages);
    if (c->job != NULL && !c->loading) { /* never sent: the load_done of a
                                            loading one gives it back */
        give_back(c, c->job);
        c->job = NULL;
    }
    while (c->jobs) {
        struct delivery_job *j = c->jobs;
        c->jobs = j->next;
        give_back(c, j);
    }
    if (!c->stopped)
        c->ops->done(c->owner);
}

static void
arm(struct atrn_client *c)
{
    const struct connector_timeouts *t = &c->k->timeouts;
    uint64_t secs = 0;
    enum smtp_out_wait w = smtp_out_waiting(c->m);
    unsigned replies = smtp_out_replies(c->m);
    /* A deadline is for a whole reply (as in delivery.c): bytes trickling
     * in do not restart it. */
    if ((int)w == c->timer_wait && replies == c->timer_replies)
        return;
    c->timer_wait = (int)w;
    c->timer_replies = replies;
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
        break;
    }
    c->ops->arm(c->owner, secs * 1000);
}

static void
act_on(struct atrn_client *c, const struct smtp_out_act *act)
{
    switch (act->type) {
    case SMTP_OUT_WRITE:
        if (!c->stopped)
            c->ops->write(c->owner, act->data, act->len);
        break;
    case SMTP_OUT_START_TLS: /* never asked for: TLS is on from the start */
        smtp_out_tls_done(c->m, false);
        break;
    case SMTP_OUT_READY:
        on_ready(c);
        break;
    case SMTP_OUT_BODY_WANTED:
        if (c->job != NULL) /* always: the body is asked for the job in hand */
            smtp_out_body(c->m, c->job->body, c->job->body_len, true);
        break;
    case SMTP_OUT_MESSAGE_DONE:
        message_done(c, act);
        break;
    case SMTP_OUT_CLOSE:
        on_close(c, act);
        break;
    case SMTP_OUT_NONE:
        break;
    }
}

/* Carry out the machine's actions. Not re-entered: a stop from inside an
 * ops call is noticed at the next turn of the loop. */
static void
drive(struct atrn_client *c)
{
    struct smtp_out_act act;
    if (c->in_drive || c->m == NULL || c->over)
        return;
    c->in_drive = true;
    for (;;) {
        if (c->stopped && !c->eof_fed) {
            c->eof_fed = true;
            smtp_out_eof(c->m);
        }
        if (!smtp_out_next(c->m, &act))
            break;
        act_on(c, &act);
    }
    c->in_drive = false;
    if (!c->over && !c->stopped)
        arm(c);
}

void
atrn_client_feed(struct atrn_client *c, const char *data, size_t len)
{
    if (!c->turned || c->over)
        return;
    smtp_out_feed(c->m, data, len);
    drive(c);
}

void
atrn_client_eof(struct atrn_client *c)
{
    if (!c->turned || c->over)
        return;
    smtp_out_eof(c->m);
    drive(c);
}

void
atrn_client_timeout(struct atrn_client *c)
{
    if (!c->turned || c->over)
        return;
    smtp_out_timeout(c->m);
    drive(c);
}

void
atrn_client_stop(struct atrn_client *c)
{
    if (c->stopped)
        return;
    c->stopped = true;
    if (c->turned)
        drive(c); /* feeds the machine an end of connection */
}

/* ---- start --------------------------------------------------------------------- */

struct atrn_client *
atrn_client_start(struct server_env *env, struct server_conf *conf,
                  const struct atrn_client_peer *peer, const char *arg,
                  const struct atrn_client_ops *ops, void *owner, int *code, char *text, size_t len)
{
    struct atrn_targets t = {0};
    const struct config *cfg = conf->config;
    *code = atrn_targets(conf->router, atrn_user(cfg, peer->user), arg, &t, text, len);
    if (*code != 0) {
        char user[LOG_VALUE_MAX], doms[LOG_VALUE_MAX];
        log_info(env->log, "event=atrn user=\"%s\" client=%s domains=%s reply=%d",
                 log_text(user, sizeof user, peer->user), peer->relay,
                 arg[0] ? log_token(doms, sizeof doms, arg) : "-", *code);
        return NULL;
    }
    const struct connector *k = config_connector(cfg, t.v[0].connector);
    struct smtp_out_params p = {
        .helo_name = k->helo_name ? k->helo_name : cfg->hostname,
        .use_ehlo = k->ehlo,
        .starttls = SMTP_OUT_STARTTLS_NEVER,
        .tls_active = true,
    };
    struct smtp_out *m = smtp_out_new(&p);
    if (m == NULL) {
        atrn_targets_fini(&t);
        *code = 451;
        snprintf(text, len, "4.3.0 Unable to process ATRN request now");
        return NULL;
    }
    struct atrn_client *c = xcalloc(1, sizeof *c);
    c->timer_wait = -1;
    *c = (struct atrn_client){.env = env,
                              .conf = server_conf_ref(conf),
                              .k = k,
                              .ops = ops,
                              .owner = owner,
                              .targets = t,
                              .m = m};
    c->user = xstrdup(peer->user);
    c->relay = xstrdup(peer->relay);
    c->tls = xstrdup(peer->tls ? peer->tls : "none");
    c->cipher = xstrdup(peer->cipher ? peer->cipher : "");
    c->ss = sched_settle_new(env->store, env->log, conf, &env->counters);
    sched_settle_retrigger(c->ss, true);
    lease(c);
    return c;
}
