#include "core/sched_settle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "connectors/config.h"
#include "connectors/schedule.h"
#include "connectors/util.h"
#include "core/delivery.h"
#include "core/dsn.h"
#include "core/log.h"
#include "core/reroute.h"
#include "core/metrics.h"
#include "core/server.h"
#include "core/store.h"
#include "routing/router.h"
#include "storage/queue.h"
#include "storage/queue_admin.h"

enum op_kind { OP_COMPLETE, OP_DEFER, OP_BOUNCE, OP_STATE, OP_WARNED };

struct op {
    enum op_kind kind;
    int64_t entry;
    int64_t next;
    char *reply;
    bool count;
    bool retrigger; /* OP_DEFER: then wait for the next trigger */
    enum queue_state state;
    char id[QUEUE_ID_LEN + 1];
};

/* What the storage thread needs to widen a delay warning to every pending
 * recipient of the message (SPEC §4). Copies: the job is freed as soon as
 * the update is submitted. */
struct delay_plan {
    struct server_conf *conf; /* referenced: a reload may swap ss->conf meanwhile */
    struct dsn_report rep;  /* its strings point into owned */
    struct dsn_rcpt *d;     /* this job's delayed recipients */
    size_t nd, cap;
    int64_t *job_entries;   /* every entry of the job */
    size_t njob;
    char **owned;
    size_t nowned, capowned;
};

struct update {
    struct sched_settle *ss;
    struct delay_plan *delay; /* with a delay warning in dsn[delay_dsn] */
    struct op *ops;
    size_t nops;
    struct sched_settle_dsn dsn[3];
    size_t ndsn;
    int delay_dsn;   /* the index of the delay warning in dsn, or -1 */
    bool drop_delay; /* storage thread: the message was warned already */
    int64_t earliest;
    sched_settle_cb *cb;
    void *arg;
    struct update *next; /* in sched_settle.failed */
};

static void widen_delay(struct queue *q, struct update *u);
static bool wants(unsigned notify, unsigned bit);

struct sched_settle {
    struct store *store;
    struct log *log;
    struct server_conf *conf;
    unsigned inflight;
    uint64_t rng;
    char *spool_dir; /* the queue's folder, for DSN spools */
    struct metrics_counters *counters;
    bool retrigger; /* temporary failures wait for the next trigger (ATRN) */
    /* Settlements the storage refused (disk full, read-only, I/O error):
     * kept whole for sched_settle_retry(), since their entries stay
     * delivering in the queue and nothing else would ever move them. */
    struct update *failed;
    unsigned nfailed;
    void (*on_failed)(void *);
    void *on_failed_arg;
};

struct sched_settle *
sched_settle_new(struct store *store, struct log *log, struct server_conf *conf,
                 struct metrics_counters *counters)
{
    struct sched_settle *ss = xcalloc(1, sizeof *ss);
    ss->counters = counters;
    ss->store = store;
    ss->log = log;
    ss->conf = server_conf_ref(conf);
    ss->rng = (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
    ss->spool_dir = xstrdup(conf->config->storage_path);
    char *slash = strrchr(ss->spool_dir, '/');
    if (slash)
        *slash = '\0';
    return ss;
}

void
sched_settle_set_conf(struct sched_settle *ss, struct server_conf *conf)
{
    server_conf_unref(ss->conf);
    ss->conf = server_conf_ref(conf);
}

void
sched_settle_retrigger(struct sched_settle *ss, bool on)
{
    ss->retrigger = on;
}

static void update_free(struct update *u);

void
sched_settle_free(struct sched_settle *ss)
{
    if (ss == NULL)
        return;
    /* Still failed: their entries stay delivering, recovered at start. */
    while (ss->failed) {
        struct update *u = ss->failed;
        ss->failed = u->next;
        update_free(u);
    }
    server_conf_unref(ss->conf);
    free(ss->spool_dir);
    free(ss);
}

unsigned
sched_settle_inflight(const struct sched_settle *ss)
{
    return ss->inflight;
}

void
sched_settle_initial_state(const struct connector *k, int64_t now, uint64_t size,
                           struct queue_rcpt *r)
{
    r->state = QUEUE_QUEUED;
    r->next_attempt = now;
    if (k->triggered) {
        r->state = QUEUE_TRIGGERED;
        r->next_attempt = QUEUE_NEVER;
    } else if (k->schedule && !schedule_is_open(k->schedule, now, size)) {
        int64_t next = schedule_next_open(k->schedule, now, size);
        r->state = QUEUE_SCHEDULED;
        r->next_attempt = next == SCHEDULE_NEVER ? QUEUE_NEVER : next;
    }
}

/* ---- the storage side ------------------------------------------------------ */

static int
apply(struct queue *q, const struct op *o)
{
    switch (o->kind) {
    case OP_COMPLETE:
        return queue_complete(q, o->entry);
    case OP_BOUNCE:
        return queue_bounce(q, o->entry);
    case OP_DEFER: {
        int rc = queue_defer(q, o->entry, o->next, o->reply, o->count);
        if (rc == 0 && o->retrigger) /* reply and attempts kept, then wait */
            rc = queue_set_state(q, o->entry, QUEUE_TRIGGERED, QUEUE_NEVER);
        return rc;
    }
    case OP_STATE:
        return queue_set_state(q, o->entry, o->state, o->next);
    case OP_WARNED:
        return queue_set_warned(q, o->id);
    }
    return 0;
}

static int
update_run(struct queue *q, void *arg)
{
    struct update *u = arg;
    /* A lost settlement only repeats work (a delivery, a deferral): not
     * worth an fsync per job. Acceptance commits stay FULL. */
    queue_set_durable(q, false);
    int rc = queue_txn_begin(q);
    u->drop_delay = false;
    for (size_t i = 0; rc == 0 && i < u->nops; i++) {
        int r = apply(q, &u->ops[i]);
        if (r == BH_ENOENT && u->ops[i].kind == OP_WARNED)
            u->drop_delay = true; /* another settlement sent the warning */
        else if (r < 0 && r != BH_ENOENT) /* deleted meanwhile: nothing to do */
            rc = r;
    }
    if (rc == 0 && u->delay != NULL && !u->drop_delay)
        widen_delay(q, u);
    if (rc == 0 && u->ndsn > 0) {
        struct queue_msg msgs[3];
        size_t n = 0;
        for (size_t i = 0; i < u->ndsn; i++)
            if (!(u->drop_delay && (int)i == u->delay_dsn))
                msgs[n++] = u->dsn[i].msg;
        rc = n > 0 ? queue_commit(q, msgs, n) : 0;
    }
    if (rc < 0)
        queue_txn_rollback(q);
    else
        rc = queue_txn_commit(q);
    queue_set_durable(q, true);
    return rc;
}

static const char *
plan_keep(struct delay_plan *p, const char *s, size_t len)
{
    if (s == NULL)
        return NULL;
    if (p->nowned == p->capowned) {
        p->capowned = p->capowned ? 2 * p->capowned : 16;
        p->owned = xrealloc(p->owned, p->capowned * sizeof *p->owned);
    }
    char *c = xmalloc(len + 1);
    memcpy(c, s, len);
    c[len] = '\0';
    return p->owned[p->nowned++] = c;
}

static const char *
plan_str(struct delay_plan *p, const char *s)
{
    return s ? plan_keep(p, s, strlen(s)) : NULL;
}

static void
plan_add(struct delay_plan *p, struct dsn_rcpt r)
{
    if (p->nd == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 8;
        p->d = xrealloc(p->d, p->cap * sizeof *p->d);
    }
    r.recipient = plan_str(p, r.recipient);
    r.orcpt = plan_str(p, r.orcpt);
    r.status = plan_str(p, r.status);
    r.diagnostic = plan_str(p, r.diagnostic);
    r.remote_mta = plan_str(p, r.remote_mta);
    p->d[p->nd++] = r;
}

static void
plan_free(struct delay_plan *p)
{
    if (p == NULL)
        return;
    server_conf_unref(p->conf);
    for (size_t i = 0; i < p->nowned; i++)
        free(p->owned[i]);
    free(p->owned);
    free(p->d);
    free(p->job_entries);
    free(p);
}

static int
widen_one(const struct queue_entry *e, void *arg)
{
    struct delay_plan *p = arg;
    for (size_t i = 0; i < p->njob; i++)
        if (p->job_entries[i] == e->entry)
            return 0; /* in this job: listed already, or settled */
    if (!wants(e->notify, QUEUE_NOTIFY_DELAY))
        return 0;
    plan_add(p, (struct dsn_rcpt){.recipient = e->rcpt, .orcpt = e->orcpt,
                                  .action = DSN_DELAYED, .status = "4.0.0",
                                  .diagnostic = e->last_reply, .last_attempt = 0});
    return 0;
}

/* Storage thread, inside the settlement's transaction: the one delay
 * warning of the message lists every recipient still pending, also those
 * of other connectors or not tried yet. Kept as built when there are no
 * others or anything fails. */
static void
widen_delay(struct queue *q, struct update *u)
{
    struct delay_plan *p = u->delay;
    size_t mine = p->nd;
    struct queue_admin_filter f = {.connector = NULL, .state = QUEUE_STATE_ANY,
                                   .id = p->rep.queue_id};
    if (queue_admin_list(q, &f, widen_one, p) != 0 || p->nd == mine)
        return;
    struct sched_settle *ss = u->ss;
    struct sched_settle_dsn fresh = {0};
    bool dropped = false;
    p->rep.hostname = p->conf->config->hostname;
    if (sched_settle_dsn_make(p->conf, ss->log, ss->spool_dir, p->rep, p->d, p->nd, &fresh,
                              &dropped)) {
        struct sched_settle_dsn *slot = &u->dsn[u->delay_dsn];
        sched_settle_dsn_fini(slot);
        *slot = fresh;
        slot->msg.rcpts = &slot->rcpt; /* it pointed into fresh */
    }
}

static void
update_free(struct update *u)
{
    plan_free(u->delay);
    for (size_t i = 0; i < u->ndsn; i++)
        sched_settle_dsn_fini(&u->dsn[i]);
    for (size_t i = 0; i < u->nops; i++)
        free(u->ops[i].reply);
    free(u->ops);
    free(u);
}

/* A storage fault that may clear (full, read-only, I/O, locked): worth a retry. */
static bool
transient(int status)
{
    return status == BH_ENOSPC || status == BH_EIO || status == BH_EBUSY;
}

static void
update_done(void *arg, int status)
{
    struct update *u = arg;
    struct sched_settle *ss = u->ss;
    ss->inflight--;
    if (status < 0)
        log_error(ss->log, "event=settle_failed error=\"%s\" nops=%zu retry=%s",
                  uv_strerror(status), u->nops, transient(status) ? "yes" : "no");
    for (size_t i = 0; status == 0 && i < u->ndsn; i++) {
        char to[LOG_VALUE_MAX];
        if (u->drop_delay && (int)i == u->delay_dsn) {
            ss->counters->dsn_created--; /* counted when it was built */
            continue;
        }
        log_info(ss->log, "id=%s event=dsn_queued to=<%s> connector=%s", u->dsn[i].msg.id,
                 log_token(to, sizeof to, u->dsn[i].to), u->dsn[i].connector);
    }
    /* The callback may free ss (an ATRN session ending): it comes last. */
    sched_settle_cb *cb = u->cb;
    void *cb_arg = u->arg;
    int64_t earliest = status == 0 ? u->earliest : QUEUE_NEVER;
    if (status < 0 && transient(status)) {
        u->cb = NULL; /* told once; the retry's result shows in the queue */
        u->next = ss->failed;
        ss->failed = u;
        ss->nfailed++;
        if (ss->on_failed)
            ss->on_failed(ss->on_failed_arg);
    } else {
        update_free(u);
    }
    if (cb)
        cb(cb_arg, earliest);
}

static struct update *
update_new(struct sched_settle *ss, size_t nops, sched_settle_cb *cb, void *arg)
{
    struct update *u = xcalloc(1, sizeof *u);
    u->ss = ss;
    u->ops = xcalloc(nops ? nops : 1, sizeof *u->ops);
    u->earliest = QUEUE_NEVER;
    u->delay_dsn = -1;
    u->cb = cb;
    u->arg = arg;
    return u;
}

static void
update_submit(struct update *u)
{
    u->ss->inflight++;
    store_call(u->ss->store, update_run, update_done, u);
}

void
sched_settle_on_failed(struct sched_settle *ss, void (*fn)(void *), void *arg)
{
    ss->on_failed = fn;
    ss->on_failed_arg = arg;
}

unsigned
sched_settle_retry(struct sched_settle *ss)
{
    unsigned n = ss->nfailed;
    struct update *u = ss->failed;
    ss->failed = NULL;
    ss->nfailed = 0;
    while (u) {
        struct update *next = u->next;
        update_submit(u);
        u = next;
    }
    return n;
}

static struct op *
add_op(struct update *u, enum op_kind kind, int64_t entry)
{
    struct op *o = &u->ops[u->nops++];
    o->kind = kind;
    o->entry = entry;
    return o;
}

/* ---- DSNs ---------------------------------------------------------------------- */

static bool
wants(unsigned notify, unsigned bit)
{
    return notify == 0 ? bit != QUEUE_NOTIFY_SUCCESS
                       : (notify & bit) != 0 && !(notify & QUEUE_NOTIFY_NEVER);
}

/* server.postmaster, unless it is to itself that a DSN could not go. */
static const char *
postmaster_for(const struct server_conf *conf, const char *failed_to)
{
    const char *pm = conf->config->postmaster;
    return pm != NULL && util_strcasecmp(pm, failed_to) != 0 ? pm : NULL;
}

bool
sched_settle_dsn_make(struct server_conf *conf, struct log *log, const char *spool_dir,
                      struct dsn_report rep, const struct dsn_rcpt *d, size_t n,
                      struct sched_settle_dsn *out, bool *dropped)
{
    char id[QUEUE_ID_LEN + 1];
    queue_id_new(id);
    rep.boundary_seed = id;
    struct util_buf text = {0};
    dsn_build(&text, &rep, d, n);
    struct router_query q = {.sender = "", .size = text.len,
                             .priority = CONNECTOR_PRIORITY_NORMAL, .system = true};
    struct router_result res;
    if (router_route(conf->router, rep.sender, &q, &res) != ROUTER_OK) {
        char to[LOG_VALUE_MAX], why[LOG_VALUE_MAX];
        const char *pm = postmaster_for(conf, rep.sender);
        log_warn(log, "id=%s event=dsn status=dropped orig=%s to=<%s> reason=\"%s\" copy=%s", id,
                 rep.queue_id, log_token(to, sizeof to, rep.sender),
                 log_text(why, sizeof why, res.error), pm ? "postmaster" : "none");
        router_result_fini(&res);
        util_buf_fini(&text);
        *dropped = true;
        if (pm == NULL)
            return false;
        rep.sender = pm; /* SPEC §4: the copy goes to server.postmaster */
        bool again = false;
        return sched_settle_dsn_make(conf, log, spool_dir, rep, d, n, out, &again);
    }
    out->to = xstrdup(rep.sender);
    out->connector = xstrdup(res.connector->name);
    out->rcpt = (struct queue_rcpt){.address = out->to, .connector = out->connector};
    sched_settle_initial_state(res.connector, rep.now, text.len, &out->rcpt);
    router_result_fini(&res);
    out->spool = queue_spool_new(spool_dir);
    queue_spool_write(out->spool, text.p, text.len);
    out->msg = (struct queue_msg){.sender = "", .priority = CONNECTOR_PRIORITY_NORMAL,
                                  .system = true, .size = text.len, .received = rep.now,
                                  .body = out->spool, .rcpts = &out->rcpt, .nrcpts = 1};
    memcpy(out->msg.id, id, sizeof id);
    util_buf_fini(&text);
    return true;
}

void
sched_settle_dsn_fini(struct sched_settle_dsn *o)
{
    queue_spool_free(o->spool);
    free(o->to);
    free(o->connector);
    memset(o, 0, sizeof *o);
}

/* A DSN for the recipients d[0..n) of job, stored with the updates.
 * failure: d are bounces. Mail from <> (a DSN itself) gets none (SPEC §4);
 * when it bounces it is dropped, logged and counted, and a copy of the
 * report goes to server.postmaster when that is set. */
static void
add_dsn(struct update *u, const struct delivery_job *job, const struct dsn_rcpt *d, size_t n,
        int64_t now, bool failure)
{
    struct sched_settle *ss = u->ss;
    const struct queue_entry *e0 = &job->entries[0];
    if (n == 0 || u->ndsn >= 3)
        return;
    struct dsn_report rep = {.hostname = ss->conf->config->hostname, .sender = e0->sender,
                             .queue_id = e0->id, .envid = e0->envid, .arrival = e0->received,
                             .now = now, .full = e0->ret == QUEUE_RET_FULL,
                             .original = job->body ? job->body : "",
                             .original_len = job->body ? job->body_len : 0};
    bool dropped = false;
    if (e0->sender[0] == '\0') {
        if (!failure)
            return;
        const char *pm = ss->conf->config->postmaster;
        for (size_t i = 0; pm != NULL && i < n; i++)
            if (postmaster_for(ss->conf, d[i].recipient) == NULL)
                pm = NULL; /* the postmaster's own copy failed: no copy of it */
        char to[LOG_VALUE_MAX], why[LOG_VALUE_MAX];
        log_warn(ss->log, "id=%s event=dsn status=dropped to=<%s> reason=\"%s\" copy=%s", e0->id,
                 log_token(to, sizeof to, d[0].recipient),
                 log_text(why, sizeof why, d[0].diagnostic), pm ? "postmaster" : "none");
        ss->counters->dsn_dropped++;
        if (pm == NULL)
            return;
        rep.sender = pm;
        rep.full = true; /* the undeliverable report itself, for the postmaster */
    }
    if (sched_settle_dsn_make(ss->conf, ss->log, ss->spool_dir, rep, d, n, &u->dsn[u->ndsn],
                              &dropped)) {
        u->ndsn++;
        u->earliest = now; /* the DSN is due at once: wake the scheduler */
        ss->counters->dsn_created++;
    }
    if (dropped)
        ss->counters->dsn_dropped++;
}

/* ---- verdicts ----------------------------------------------------------------- */

static int64_t
backoff(struct sched_settle *ss, unsigned attempts)
{
    const struct config *c = ss->conf->config;
    uint64_t delay = c->retry_initial ? c->retry_initial : 1;
    for (unsigned i = 0; i < attempts && delay < c->retry_max; i++)
        delay *= 2;
    if (delay > c->retry_max)
        delay = c->retry_max;
    ss->rng = ss->rng * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t jitter = delay / 10 ? (ss->rng >> 33) % (delay / 10 + 1) : 0;
    return (int64_t)(delay + jitter);
}

/* One line per attempt (SPEC §6); attempts is the count after it. */
static void
log_attempt(struct sched_settle *ss, const struct queue_entry *e, const struct delivery_info *info,
            const char *status, const char *reply, unsigned attempts)
{
    struct timeval tv;
    /* marked to bounce by a reload: no connector of this config */
    const char *conn = e->connector[0] == REROUTE_BOUNCE_PREFIX ? "none" : e->connector;
    metrics_count_delivery(ss->counters, conn, status);
    gettimeofday(&tv, NULL);
    double delay = (double)tv.tv_sec + tv.tv_usec / 1e6 - (double)e->received;
    char r[LOG_VALUE_MAX], to[LOG_VALUE_MAX], relay[LOG_VALUE_MAX], verify[LOG_VALUE_MAX];
    log_info(ss->log,
             "id=%s to=<%s> connector=%s relay=%s tls=%s cipher=%s verify=\"%s\" status=%s "
             "delay=%.2fs attempts=%u reply=\"%s\"",
             e->id, log_token(to, sizeof to, e->rcpt), conn,
             info && info->relay[0] ? log_token(relay, sizeof relay, info->relay) : "none",
             info ? info->tls : "none", info && info->cipher[0] ? info->cipher : "-",
             info && info->verify[0] ? log_text(verify, sizeof verify, info->verify) : "-",
             status, delay < 0 ? 0 : delay, attempts, log_text(r, sizeof r, reply));
}

struct settle_lists {
    struct dsn_rcpt *failed, *delayed, *relayed;
    size_t nfailed, ndelayed, nrelayed;
};

/* Is r a reply from a remote server ("451 4.3.0 ..."), not our reason? */
static bool
remote_reply(const char *r)
{
    return r != NULL && r[0] >= '2' && r[0] <= '5' && r[1] >= '0' && r[1] <= '9' &&
           r[2] >= '0' && r[2] <= '9' && (r[3] == ' ' || r[3] == '-' || r[3] == '\0');
}

static void
settle_one(struct update *u, const struct queue_entry *e, const struct delivery_verdict *v,
           const struct delivery_info *info, int64_t now, struct settle_lists *l)
{
    const struct config *c = u->ss->conf->config;
    const char *reply = v->reply[0] ? v->reply : "no reply";
    struct dsn_rcpt d = {.recipient = e->rcpt, .orcpt = e->orcpt, .diagnostic = reply,
                         .last_attempt = now, .remote_mta = NULL};
    if (v->code >= 200 && v->code < 300) {
        add_op(u, OP_COMPLETE, e->entry);
        log_attempt(u->ss, e, info, "sent", reply, e->attempts + 1);
        if (v->relayed && (e->notify & QUEUE_NOTIFY_SUCCESS)) { /* RFC 3461 4.1 */
            d.action = DSN_RELAYED;
            d.status = "2.0.0";
            l->relayed[l->nrelayed++] = d;
        }
        return;
    }
    bool expired = now - e->received >= (int64_t)c->lifetime;
    if (v->code >= 500 || expired) {
        /* Expired after an attempt that got no reply (no destination up, a
         * refused connection): the DSN quotes the last reply on record
         * (SPEC §9), not this local failure. */
        if (v->code == 0 && remote_reply(e->last_reply))
            d.diagnostic = e->last_reply;
        add_op(u, OP_BOUNCE, e->entry);
        log_attempt(u->ss, e, info, expired && v->code < 500 ? "expired" : "bounced", reply,
                    e->attempts + 1);
        d.action = DSN_FAILED;
        d.status = v->code >= 500 ? (v->status[0] ? v->status : "5.0.0") : "4.4.7";
        if (wants(e->notify, QUEUE_NOTIFY_FAILURE))
            l->failed[l->nfailed++] = d;
        return;
    }
    struct op *o = add_op(u, OP_DEFER, e->entry);
    o->count = v->counts;
    o->next = v->counts ? now + backoff(u->ss, e->attempts) : (v->retry_at > now ? v->retry_at
                                                                                : now + 1);
    /* A local reason (no destination up, connection refused) does not
     * replace a remote reply on record: the expiry DSN quotes that one. */
    o->reply = v->code == 0 && remote_reply(e->last_reply) ? NULL : xstrdup(reply);
    /* SPEC §4: on a triggered connector a temporary failure waits for the
     * next trigger (ETRN, ATRN, flush), never for a retry time. */
    const struct connector *k = config_connector(c, e->connector);
    o->retrigger = u->ss->retrigger || (k != NULL && k->triggered);
    if (o->next < u->earliest && !o->retrigger)
        u->earliest = o->next;
    log_attempt(u->ss, e, info, "deferred", reply, e->attempts + (v->counts ? 1u : 0u));
    if (c->delay_warning > 0 && !e->warned && now - e->received >= (int64_t)c->delay_warning &&
        wants(e->notify, QUEUE_NOTIFY_DELAY)) {
        d.action = DSN_DELAYED;
        d.status = v->status[0] ? v->status : "4.0.0";
        l->delayed[l->ndelayed++] = d;
    }
}

static struct delay_plan *
plan_new(const struct delivery_job *job, const struct dsn_rcpt *d, size_t n, int64_t now)
{
    struct delay_plan *p = xcalloc(1, sizeof *p);
    const struct queue_entry *e0 = &job->entries[0];
    p->rep = (struct dsn_report){
        .hostname = NULL, .sender = plan_str(p, e0->sender), .queue_id = plan_str(p, e0->id),
        .envid = plan_str(p, e0->envid), .arrival = e0->received, .now = now,
        .full = e0->ret == QUEUE_RET_FULL,
        .original = job->body ? plan_keep(p, job->body, job->body_len) : "",
        .original_len = job->body ? job->body_len : 0};
    for (size_t i = 0; i < n; i++)
        plan_add(p, d[i]);
    p->job_entries = xcalloc(job->n ? job->n : 1, sizeof *p->job_entries);
    for (size_t i = 0; i < job->n; i++)
        p->job_entries[p->njob++] = job->entries[i].entry;
    return p;
}

void
sched_settle_job(struct sched_settle *ss, struct delivery_job *job,
                 const struct delivery_verdict *v, const struct delivery_info *info,
                 sched_settle_cb *cb, void *arg)
{
    int64_t now = (int64_t)time(NULL);
    struct update *u = update_new(ss, job->n + 1, cb, arg);
    struct settle_lists l = {xcalloc(job->n, sizeof *l.failed), xcalloc(job->n, sizeof *l.delayed),
                             xcalloc(job->n, sizeof *l.relayed), 0, 0, 0};
    for (size_t i = 0; i < job->n; i++)
        settle_one(u, &job->entries[i], &v[i], info, now, &l);
    add_dsn(u, job, l.failed, l.nfailed, now, true);
    if (l.ndelayed > 0) {
        size_t before = u->ndsn;
        add_dsn(u, job, l.delayed, l.ndelayed, now, false);
        if (u->ndsn > before) {
            u->delay_dsn = (int)before;
            u->delay = plan_new(job, l.delayed, l.ndelayed, now);
            u->delay->conf = server_conf_ref(ss->conf);
        }
        struct op *o = add_op(u, OP_WARNED, 0);
        memcpy(o->id, job->entries[0].id, sizeof o->id);
    }
    add_dsn(u, job, l.relayed, l.nrelayed, now, false);
    free(l.failed);
    free(l.delayed);
    free(l.relayed);
    update_submit(u);
    delivery_job_free(job);
}

void
sched_settle_defer_all(struct sched_settle *ss, struct delivery_job *job, int64_t next,
                       const char *reason, sched_settle_cb *cb, void *arg)
{
    struct delivery_verdict *v = xcalloc(job->n, sizeof *v);
    for (size_t i = 0; i < job->n; i++) {
        v[i].counts = next == 0;
        v[i].retry_at = next;
        snprintf(v[i].reply, sizeof v[i].reply, "%s", reason ? reason : "");
    }
    if (reason == NULL) { /* back to the queue as it was, due at next */
        struct update *u = update_new(ss, job->n, cb, arg);
        for (size_t i = 0; i < job->n; i++) {
            struct op *o = add_op(u, OP_STATE, job->entries[i].entry);
            o->state = QUEUE_QUEUED;
            o->next = next;
        }
        u->earliest = next;
        update_submit(u);
        delivery_job_free(job);
    } else {
        sched_settle_job(ss, job, v, NULL, cb, arg);
    }
    free(v);
}

void
sched_settle_bounce_all(struct sched_settle *ss, struct delivery_job *job, const char *status,
                        const char *reason, sched_settle_cb *cb, void *arg)
{
    struct delivery_verdict *v = xcalloc(job->n, sizeof *v);
    for (size_t i = 0; i < job->n; i++) {
        v[i].code = 550;
        v[i].counts = true;
        snprintf(v[i].status, sizeof v[i].status, "%s", status);
        snprintf(v[i].reply, sizeof v[i].reply, "%s", reason);
    }
    sched_settle_job(ss, job, v, NULL, cb, arg);
    free(v);
}

/* The whole job back to a waiting state, no attempt made. */
static void
set_state_all(struct sched_settle *ss, struct delivery_job *job, enum queue_state state,
              int64_t next, sched_settle_cb *cb, void *arg)
{
    struct update *u = update_new(ss, job->n, cb, arg);
    for (size_t i = 0; i < job->n; i++) {
        struct op *o = add_op(u, OP_STATE, job->entries[i].entry);
        o->state = state;
        o->next = next;
    }
    update_submit(u);
    delivery_job_free(job);
}

void
sched_settle_scheduled(struct sched_settle *ss, struct delivery_job *job, int64_t next)
{
    set_state_all(ss, job, QUEUE_SCHEDULED, next, NULL, NULL);
}

void
sched_settle_triggered(struct sched_settle *ss, struct delivery_job *job, sched_settle_cb *cb,
                       void *arg)
{
    set_state_all(ss, job, QUEUE_TRIGGERED, QUEUE_NEVER, cb, arg);
}
