#include "core/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/config.h"
#include "connectors/connector.h"
#include "connectors/schedule.h"
#include "connectors/util.h"
#include "core/delivery.h"
#include "core/dns.h"
#include "core/dns_wire.h"
#include "core/log.h"
#include "core/reroute.h"
#include "core/sched_settle.h"
#include "core/server.h"
#include "core/store.h"
#include "routing/balance.h"
#include "routing/health.h"
#include "storage/queue.h"

#define LEASE_MAX 256
#define BACKLOG_LOW 64     /* lease more when a backlog falls below this */
#define BACKLOG_HIGH 4096  /* hold at most this many leased recipients in memory */
#define TIMER_MAX_S 300  /* look again at least this often */
#define SWEEP_MAX_S 3600 /* the lifetime pass runs at least this often */
#define SETTLE_RETRY_S 5 /* a settlement refused by the storage is tried again */

struct sched_conn {
    const struct connector *k;
    struct delivery_job *head, **tail;
    size_t nbacklog;
    unsigned active;
    struct balance_item *items;
    unsigned *bh_active; /* connections per bridgehead (by the first pick) */
    int pending_pick;    /* a pick that was at its limit: the next job waits for it */
};

/* A delivery in flight, and the bridgehead it was started for (-1: MX). */
struct live {
    struct delivery *d;
    int bh;
};

struct lease {
    struct sched *s;
    int64_t now;
    struct queue_entry out[LEASE_MAX];
    int n;
    int next_rc;
    int64_t next_due;
};

struct mx_wait {
    struct sched *s;
    struct sched_conn *sc;
    struct delivery_job *job;
};

struct sched {
    uv_loop_t *loop;
    struct server_conf *conf;
    struct delivery_env env;
    struct sched_settle *settle;
    struct sched_conn *conns;
    size_t nconns;
    uv_timer_t timer;
    int64_t timer_due;
    bool leasing, again, stopping;
    bool rerouting, reroute_again; /* a reroute pass runs; another is wanted */
    bool reroute_loud;             /* the pass wanted is not only the periodic one */
    int64_t next_sweep;            /* the next periodic pass (lifetime expiry) */
    void (*stopped)(void *);
    void *stopped_arg;
    size_t ndeliveries;
    struct live *live; /* every delivery in flight, for sched_stop */
    size_t nlive, caplive;
    uint64_t rng;
};

static void dispatch(struct sched *s, struct sched_conn *sc);
static void maybe_free(struct sched *s);
static void reroute(struct sched *s, bool quiet);
static void on_settled(void *arg, int64_t earliest);

static uint64_t
rnd(void *arg)
{
    struct sched *s = arg;
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static struct sched_conn *
find_conn(struct sched *s, const char *name)
{
    for (size_t i = 0; i < s->nconns; i++)
        if (strcmp(s->conns[i].k->name, name) == 0)
            return &s->conns[i];
    return NULL;
}

static void
build_conns(struct sched *s)
{
    const struct config *c = s->conf->config;
    s->conns = xcalloc(c->nconnectors ? c->nconnectors : 1, sizeof *s->conns);
    s->nconns = c->nconnectors;
    for (size_t i = 0; i < c->nconnectors; i++) {
        struct sched_conn *sc = &s->conns[i];
        sc->k = &c->connectors[i];
        sc->tail = &sc->head;
        sc->items = xcalloc(sc->k->nbridgeheads ? sc->k->nbridgeheads : 1, sizeof *sc->items);
        sc->bh_active = xcalloc(sc->k->nbridgeheads ? sc->k->nbridgeheads : 1,
                                sizeof *sc->bh_active);
        sc->pending_pick = -1;
        for (size_t b = 0; b < sc->k->nbridgeheads; b++)
            sc->items[b].weight = sc->k->bridgeheads[b].weight;
    }
}

/* ---- timer and leasing --------------------------------------------------- */

static void lease(struct sched *s);

/* Scheduled and triggered recipients are not due by themselves; a pass
 * over the queue every so often finds those past their lifetime. */
static int64_t
sweep_interval(const struct sched *s)
{
    int64_t iv = (int64_t)s->conf->config->lifetime / 4;
    return iv < 1 ? 1 : iv > SWEEP_MAX_S ? SWEEP_MAX_S : iv;
}

static void
on_timer(uv_timer_t *t)
{
    struct sched *s = t->data;
    s->timer_due = 0;
    int64_t now = (int64_t)time(NULL);
    if (now >= s->next_sweep) {
        s->next_sweep = now + sweep_interval(s);
        reroute(s, true); /* then lease */
        return;
    }
    lease(s);
}

/* Wake at t (unix seconds) unless an earlier wake-up is set. */
static void
wake_at(struct sched *s, int64_t t)
{
    int64_t now = (int64_t)time(NULL);
    if (t > s->next_sweep)
        t = s->next_sweep;
    if (t < now)
        t = now;
    if (t > now + TIMER_MAX_S)
        t = now + TIMER_MAX_S;
    if (s->timer_due != 0 && s->timer_due <= t)
        return;
    s->timer_due = t;
    uv_timer_start(&s->timer, on_timer, (uint64_t)(t - now) * 1000 + 10, 0);
}

static int
lease_run(struct queue *q, void *arg)
{
    struct lease *l = arg;
    l->n = queue_lease_due(q, l->now, NULL, LEASE_MAX, l->out);
    l->next_rc = queue_next_due(q, NULL, &l->next_due);
    return l->n < 0 ? l->n : 0;
}

/* Group leased entries into jobs: same message, connector and (dns) domain. */
static struct delivery_job *
take_job(struct lease *l, bool *used, size_t first, const struct sched_conn *sc)
{
    struct delivery_job *job = xcalloc(1, sizeof *job);
    const struct queue_entry *e0 = &l->out[first];
    const char *dom = strrchr(e0->rcpt, '@');
    bool dns = sc && sc->k->route == CONNECTOR_ROUTE_DNS;
    char id[QUEUE_ID_LEN + 1];
    memcpy(id, e0->id, sizeof id); /* e0 is emptied below, when it is taken */
    /* A job's entries all ignore the schedule (flush --now, ETRN) or none. */
    bool ignore = e0->ignore_schedule;
    job->connector = xstrdup(e0->connector);
    job->domain = dns && dom ? xstrdup(dom + 1) : NULL;
    job->entries = xcalloc(LEASE_MAX, sizeof *job->entries);
    for (size_t i = first; i < (size_t)l->n; i++) {
        const struct queue_entry *e = &l->out[i];
        const char *d = strrchr(e->rcpt, '@');
        if (used[i] || strcmp(e->id, id) != 0 || strcmp(e->connector, job->connector) != 0 ||
            e->ignore_schedule != ignore)
            continue;
        if (job->domain && (d == NULL || util_strcasecmp(d + 1, job->domain) != 0))
            continue;
        used[i] = true;
        job->entries[job->n++] = *e;
        memset(&l->out[i], 0, sizeof l->out[i]); /* the job owns its strings now */
    }
    return job;
}

/* Must the job wait for its connector's window? Not when `queue flush
 * --now` or ETRN made it due (SPEC §4: ETRN ignores schedules): those
 * entries carry ignore_schedule until their attempt is made. */
static bool
waits_for_window(const struct sched_conn *sc, const struct delivery_job *job, int64_t now)
{
    const struct queue_entry *e0 = &job->entries[0];
    return sc->k->schedule != NULL && !e0->ignore_schedule &&
           !schedule_is_open(sc->k->schedule, now, e0->size);
}

static void
enqueue_job(struct sched *s, struct delivery_job *job, int64_t now)
{
    struct sched_conn *sc = find_conn(s, job->connector);
    const struct queue_entry *e0 = &job->entries[0];
    if (job->connector[0] == REROUTE_BOUNCE_PREFIX) { /* unroutable since a reload */
        sched_settle_bounce_all(s->settle, job, job->connector + 1,
                                "no longer routable under the reloaded configuration", on_settled,
                                s);
        return;
    }
    if (now - e0->received >= (int64_t)s->conf->config->lifetime) {
        /* Past its lifetime (SPEC §4): bounced (4.4.7, with the last reply
         * on record) without another attempt. */
        sched_settle_defer_all(s->settle, job, 0, "lifetime expired before the next attempt",
                               on_settled, s);
        return;
    }
    if (sc == NULL) {
        /* Committed by a session that began before a reload (or queued
         * before a restart) for a connector that is gone: back to the
         * queue, and a reroute pass gives it a connector of this config
         * and makes it due; the 60 s only matter if that pass fails. */
        log_info(s->env.log, "id=%s event=reroute_wanted connector=%s msg=\"connector no longer "
                 "configured\"", e0->id, job->connector);
        sched_settle_defer_all(s->settle, job, now + 60, NULL, on_settled, s);
        reroute(s, false);
        return;
    }
    if (waits_for_window(sc, job, now)) {
        int64_t next = schedule_next_open(sc->k->schedule, now, e0->size);
        sched_settle_scheduled(s->settle, job, next == SCHEDULE_NEVER ? QUEUE_NEVER : next);
        return;
    }
    *sc->tail = job;
    sc->tail = &job->next;
    job->next = NULL;
    sc->nbacklog++;
}

static size_t
backlog_total(const struct sched *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nconns; i++)
        n += s->conns[i].nbacklog;
    return n;
}

static void
lease_done(void *arg, int status)
{
    struct lease *l = arg;
    struct sched *s = l->s;
    s->leasing = false;
    if (status == 0 && !s->stopping) {
        bool used[LEASE_MAX] = {false};
        for (size_t i = 0; i < (size_t)l->n; i++)
            if (!used[i])
                enqueue_job(s, take_job(l, used, i, find_conn(s, l->out[i].connector)), l->now);
        for (size_t i = 0; i < s->nconns; i++)
            dispatch(s, &s->conns[i]);
        /* With a full backlog, more is leased as deliveries drain it
         * (on_next_job); the timer only looks again later. */
        if (backlog_total(s) >= BACKLOG_HIGH)
            wake_at(s, l->now + TIMER_MAX_S);
        else if (l->next_rc == 0)
            wake_at(s, l->next_due);
        else /* nothing will be due; the lifetime pass still must run */
            wake_at(s, s->next_sweep);
    } else if (status < 0) {
        log_error(s->env.log, "event=lease_failed error=\"%s\"", uv_strerror(status));
        wake_at(s, l->now + 5);
    }
    bool more = status == 0 && l->n == LEASE_MAX && backlog_total(s) < BACKLOG_HIGH;
    if (s->stopping) { /* the leased entries stay delivering: recovered at start */
        for (size_t i = 0; i < (size_t)(l->n > 0 ? l->n : 0); i++)
            queue_entry_fini(&l->out[i]);
        free(l);
        maybe_free(s);
        return;
    }
    for (size_t i = 0; i < (size_t)(l->n > 0 ? l->n : 0); i++)
        queue_entry_fini(&l->out[i]);
    free(l);
    if (more || s->again) {
        s->again = false;
        lease(s);
    }
}

static void
lease(struct sched *s)
{
    if (s->stopping)
        return;
    /* Settlements the storage refused go first, in the same order of work:
     * then the lease sees the entries they move. */
    sched_settle_retry(s->settle);
    if (s->leasing) {
        s->again = true;
        return;
    }
    s->leasing = true;
    struct lease *l = xcalloc(1, sizeof *l);
    l->s = s;
    l->now = (int64_t)time(NULL);
    store_call(s->env.store, lease_run, lease_done, l);
}

/* A settlement failed on a storage fault: try it again in a while, even if
 * nothing else wakes the scheduler (its entries are delivering till then). */
static void
on_settle_failed(void *arg)
{
    struct sched *s = arg;
    if (!s->stopping)
        wake_at(s, (int64_t)time(NULL) + SETTLE_RETRY_S);
}

void
sched_kick(struct sched *s)
{
    lease(s);
}

struct health *
sched_health(struct sched *s)
{
    return s->env.health;
}

/* ---- deliveries -------------------------------------------------------------- */

static struct delivery_job *
pop_job(struct sched_conn *sc, const char *domain)
{
    struct delivery_job **pp = &sc->head;
    while (*pp && domain && util_strcasecmp((*pp)->domain ? (*pp)->domain : "", domain) != 0)
        pp = &(*pp)->next;
    struct delivery_job *job = *pp;
    if (job == NULL)
        return NULL;
    *pp = job->next;
    if (sc->tail == &job->next)
        sc->tail = pp;
    job->next = NULL;
    sc->nbacklog--;
    return job;
}

/* The next job of sc that may go out now; jobs whose window has closed
 * meanwhile go back to the queue as scheduled (SPEC §4: at a window's
 * close, sessions finish the message in hand and start no new one). */
static struct delivery_job *
pop_open_job(struct sched *s, struct sched_conn *sc, const char *domain)
{
    struct delivery_job *job;
    int64_t now = (int64_t)time(NULL);
    while ((job = pop_job(sc, domain)) != NULL) {
        uint64_t size = job->entries[0].size;
        if (!waits_for_window(sc, job, now))
            return job;
        int64_t next = schedule_next_open(sc->k->schedule, now, size);
        sched_settle_scheduled(s->settle, job, next == SCHEDULE_NEVER ? QUEUE_NEVER : next);
    }
    return NULL;
}

/* A connection opened before a reload carries more mail only if its
 * connector did not change (SPEC §9); otherwise it quits and the next job
 * gets a connection made under the new settings. */
static bool
same_session(const struct sched *s, const struct delivery *d, const struct sched_conn *sc)
{
    const struct server_conf *old = delivery_conf(d);
    return old == s->conf ||
           (connector_same_transport(delivery_connector(d), sc->k) &&
            strcmp(old->config->hostname, s->conf->config->hostname) == 0);
}

static struct delivery_job *
on_next_job(void *arg, struct delivery *d)
{
    struct sched *s = arg;
    if (s->stopping)
        return NULL;
    char key[320];
    snprintf(key, sizeof key, "%s", delivery_key(d));
    char *slash = strchr(key, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    struct sched_conn *sc = find_conn(s, key);
    if (sc == NULL || !same_session(s, d, sc))
        return NULL;
    struct delivery_job *job = pop_open_job(s, sc, slash[1] ? slash + 1 : NULL);
    if (sc->nbacklog < BACKLOG_LOW)
        lease(s);
    return job;
}

static void
on_settled(void *arg, int64_t earliest)
{
    struct sched *s = arg;
    if (earliest != QUEUE_NEVER && !s->stopping)
        wake_at(s, earliest);
}

static void
on_job_done(void *arg, struct delivery *d, struct delivery_job *job,
            const struct delivery_verdict *v, const struct delivery_info *info)
{
    struct sched *s = arg;
    (void)d;
    sched_settle_job(s->settle, job, v, info, on_settled, s);
}

static int
live_remove(struct sched *s, const struct delivery *d)
{
    for (size_t i = 0; i < s->nlive; i++)
        if (s->live[i].d == d) {
            int bh = s->live[i].bh;
            s->live[i] = s->live[--s->nlive];
            return bh;
        }
    return -1;
}

static void
on_delivery_closed(void *arg, struct delivery *d)
{
    struct sched *s = arg;
    char key[320];
    snprintf(key, sizeof key, "%s", delivery_key(d));
    int bh = live_remove(s, d);
    s->ndeliveries--;
    char *slash = strchr(key, '/');
    if (slash)
        *slash = '\0';
    struct sched_conn *sc = find_conn(s, key);
    if (sc) {
        sc->active--;
        if (bh >= 0 && (size_t)bh < sc->k->nbridgeheads && sc->bh_active[bh] > 0)
            sc->bh_active[bh]--;
        dispatch(s, sc);
        if (sc->nbacklog < BACKLOG_LOW)
            lease(s);
    }
    maybe_free(s);
}

static const struct delivery_ops delivery_ops = {on_next_job, on_job_done, on_delivery_closed};

static void
start(struct sched *s, struct sched_conn *sc, const struct delivery_dest *dests, size_t n,
      struct delivery_job *job, int bh)
{
    if (s->nlive == s->caplive) {
        s->caplive = s->caplive ? s->caplive * 2 : 16;
        s->live = xrealloc(s->live, s->caplive * sizeof *s->live);
    }
    s->ndeliveries++;
    if (bh >= 0)
        sc->bh_active[bh]++;
    /* delivery_start never calls back before it returns (DNS and closing
     * are asynchronous), so the slot can be filled afterwards. */
    struct delivery *d = delivery_start(&s->env, s->conf, sc->k, dests, n, job, &delivery_ops, s);
    s->live[s->nlive++] = (struct live){d, bh};
}

/* Smarthost: bridgeheads in balance order, the picked one first. When the
 * pick is at its max_connections the job waits (false) and that pick is kept
 * for the next try, so that the weights hold exactly whatever the limits. */
static bool
start_smarthost(struct sched *s, struct sched_conn *sc, struct delivery_job *job)
{
    const struct connector *k = sc->k;
    size_t nb = k->nbridgeheads;
    int64_t now = (int64_t)time(NULL);
    char key[300];
    for (size_t b = 0; b < nb; b++) {
        const struct connector_bridgehead *bh = &k->bridgeheads[b];
        snprintf(key, sizeof key, strchr(bh->host, ':') ? "[%s]:%u" : "%s:%u", bh->host,
                 bh->port);
        sc->items[b].up = health_is_up(s->env.health, key, now);
    }
    int pick = sc->pending_pick;
    if (pick < 0 || (size_t)pick >= nb || !sc->items[pick].up)
        pick = balance_pick(sc->items, nb, k->balance, rnd, s);
    if (pick >= 0 && sc->bh_active[pick] >= k->max_connections) {
        sc->pending_pick = pick;
        return false;
    }
    sc->pending_pick = -1;
    size_t *order = xcalloc(nb + 1, sizeof *order);
    struct delivery_dest *dests = xcalloc(nb + 1, sizeof *dests);
    size_t n = 0;
    if (pick >= 0)
        order[n++] = (size_t)pick;
    n += balance_order(sc->items, nb, k->balance, pick, rnd, s, order + n);
    for (size_t i = 0; i < nb; i++) /* the down ones last: probes */
        if (!sc->items[i].up && sc->bh_active[i] < k->max_connections)
            order[n++] = i;
    if (n == 0) {
        free(order);
        free(dests);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        dests[i] = (struct delivery_dest){k->bridgeheads[order[i]].host,
                                          k->bridgeheads[order[i]].port};
    start(s, sc, dests, n, job, (int)order[0]);
    free(dests);
    free(order);
    return true;
}

static void
on_mx(void *arg, const struct dns_result *r)
{
    struct mx_wait *w = arg;
    struct sched *s = w->s;
    struct sched_conn *sc = w->sc;
    struct delivery_job *job = w->job;
    free(w);
    s->ndeliveries--;
    if (s->stopping) { /* sc is gone: the backlogs were freed */
        delivery_job_free(job);
        maybe_free(s);
        return;
    }
    sc->active--;
    if (r->status == DNS_NULLMX || r->status == DNS_NXDOMAIN) {
        sched_settle_bounce_all(s->settle, job,
                                r->status == DNS_NULLMX ? "5.1.10" : "5.1.2",
                                r->status == DNS_NULLMX ? "domain accepts no mail (null MX)"
                                                        : "domain not found",
                                on_settled, s);
    } else if (r->status == DNS_TEMPFAIL) {
        sched_settle_defer_all(s->settle, job, 0, r->why, on_settled, s);
    } else {
        size_t n = r->status == DNS_OK ? r->n : 1;
        struct delivery_dest *dests = xcalloc(n, sizeof *dests);
        for (size_t i = 0; i < n; i++)
            dests[i] = (struct delivery_dest){r->status == DNS_OK ? (char *)r->mx[i].host
                                                                   : job->domain,
                                              sc->k->port};
        sc->active++;
        start(s, sc, dests, n, job, -1);
        free(dests);
    }
    maybe_free(s);
}

static unsigned
capacity(const struct sched_conn *sc)
{
    size_t hosts = sc->k->route == CONNECTOR_ROUTE_DNS ? 8 : sc->k->nbridgeheads;
    return (unsigned)(hosts * sc->k->max_connections);
}

static void
dispatch(struct sched *s, struct sched_conn *sc)
{
    while (!s->stopping && sc->head && sc->active < capacity(sc)) {
        struct delivery_job *job = pop_open_job(s, sc, NULL);
        if (job == NULL)
            break;
        sc->active++;
        if (sc->k->route == CONNECTOR_ROUTE_SMARTHOST) {
            if (start_smarthost(s, sc, job))
                continue;
            sc->active--; /* every bridgehead is busy: back to the front */
            job->next = sc->head;
            sc->head = job;
            if (sc->tail == &sc->head)
                sc->tail = &job->next;
            sc->nbacklog++;
            break;
        }
        struct mx_wait *w = xcalloc(1, sizeof *w);
        *w = (struct mx_wait){s, sc, job};
        s->ndeliveries++;
        dns_mx(s->env.dns, job->domain, on_mx, w);
    }
}

/* ---- life -------------------------------------------------------------------- */

static void
free_conns(struct sched *s)
{
    for (size_t i = 0; i < s->nconns; i++) {
        struct delivery_job *job;
        while ((job = pop_job(&s->conns[i], NULL)) != NULL)
            delivery_job_free(job); /* stays delivering: recovered at start */
        free(s->conns[i].items);
        free(s->conns[i].bh_active);
    }
    free(s->conns);
    s->conns = NULL;
    s->nconns = 0;
}

struct sched *
sched_new(uv_loop_t *loop, struct server_conf *conf, struct store *store, struct store *reader,
          struct dns *dns, struct log *log, struct conn_shared *shared,
          struct metrics_counters *counters)
{
    struct sched *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->conf = server_conf_ref(conf);
    s->env = (struct delivery_env){loop, store, reader, dns, log, health_new(), shared, counters};
    s->settle = sched_settle_new(store, log, conf, counters);
    sched_settle_on_failed(s->settle, on_settle_failed, s);
    s->rng = (uint64_t)time(NULL) * 2654435761u + (uint64_t)uv_hrtime();
    build_conns(s);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->next_sweep = (int64_t)time(NULL) + sweep_interval(s);
    reroute(s, false); /* then lease */
    return s;
}

static void
on_rerouted(void *arg)
{
    struct sched *s = arg;
    s->rerouting = false;
    if (s->stopping) {
        maybe_free(s);
    } else if (s->reroute_again) {
        bool quiet = !s->reroute_loud;
        s->reroute_again = false;
        s->reroute_loud = false;
        reroute(s, quiet);
    } else {
        lease(s);
    }
}

/* Route every waiting recipient again under the current config, then
 * lease: at start (the config may have changed while the server was
 * down), after a reload, and when an entry names a connector that is
 * gone. One pass at a time; a request during a pass runs one more. */
static void
reroute(struct sched *s, bool quiet)
{
    if (s->rerouting) {
        s->reroute_again = true;
        s->reroute_loud = s->reroute_loud || !quiet;
        return;
    }
    s->rerouting = true;
    reroute_start(s->env.store, s->conf, s->env.log, quiet, on_rerouted, s);
}

void
sched_set_conf(struct sched *s, struct server_conf *conf)
{
    /* Jobs waiting in the backlogs point at the old connectors: give them
     * back to the queue (they are due at once) and start over. */
    for (size_t i = 0; i < s->nconns; i++) {
        struct delivery_job *job;
        while ((job = pop_job(&s->conns[i], NULL)) != NULL)
            sched_settle_defer_all(s->settle, job, (int64_t)time(NULL), NULL, NULL, NULL);
    }
    /* Deliveries in flight keep their conf reference and finish on it. */
    struct server_conf *old_conf = s->conf;
    s->conf = server_conf_ref(conf);
    struct sched_conn *old = s->conns;
    size_t nold = s->nconns;
    build_conns(s);
    for (size_t i = 0; i < nold; i++) {
        struct sched_conn *sc = find_conn(s, old[i].k->name);
        if (sc) {
            sc->active = old[i].active;
            for (size_t b = 0; b < sc->k->nbridgeheads && b < old[i].k->nbridgeheads; b++)
                sc->bh_active[b] = old[i].bh_active[b];
        }
        free(old[i].items);
        free(old[i].bh_active);
    }
    free(old);
    server_conf_unref(old_conf);
    sched_settle_set_conf(s->settle, conf);
    reroute(s, false);
}

static void
on_timer_closed(uv_handle_t *h)
{
    struct sched *s = h->data;
    health_free(s->env.health);
    sched_settle_free(s->settle);
    server_conf_unref(s->conf);
    free(s->live);
    free(s);
}

void
sched_free(struct sched *s)
{
    if (s != NULL)
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

static void
maybe_free(struct sched *s)
{
    if (s->stopping && s->ndeliveries == 0 && !s->leasing && !s->rerouting && s->stopped) {
        void (*done)(void *) = s->stopped;
        s->stopped = NULL;
        done(s->stopped_arg);
    }
}

void
sched_stop(struct sched *s, void (*done)(void *), void *arg)
{
    s->stopping = true;
    s->stopped = done;
    s->stopped_arg = arg;
    uv_timer_stop(&s->timer);
    free_conns(s);
    for (size_t i = 0; i < s->nlive; i++)
        delivery_abort(s->live[i].d);
    maybe_free(s);
}
