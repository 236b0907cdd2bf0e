#include "core/reroute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/config.h"
#include "connectors/util.h"
#include "core/log.h"
#include "core/sched_settle.h"
#include "core/server.h"
#include "core/store.h"
#include "routing/router.h"
#include "storage/queue_admin.h"

struct reroute {
    struct server_conf *conf;
    struct log *log;
    void (*done)(void *);
    void *arg;
    int64_t now;
    int changed, bounced, expired;
    bool quiet; /* a periodic pass: log only when it changed something */
    char bounce_554[8], bounce_571[8];
};

static bool
reroute_one(const struct queue_entry *e, struct queue_admin_change *c, void *arg)
{
    struct reroute *r = arg;
    if (e->connector[0] == REROUTE_BOUNCE_PREFIX)
        return false; /* already marked */
    if (!e->held && (e->state == QUEUE_SCHEDULED || e->state == QUEUE_TRIGGERED) &&
        r->now - e->received >= (int64_t)r->conf->config->lifetime) {
        /* Past its lifetime while waiting for a window or a trigger: due
         * now, and the scheduler bounces it (4.4.7) without an attempt. */
        c->state = QUEUE_QUEUED;
        c->next_attempt = r->now;
        r->expired++;
        return true;
    }
    struct router_query q = {.sender = e->sender, .size = e->size, .priority = e->priority,
                             .system = e->system};
    struct router_result res;
    enum router_status st = router_route(r->conf->router, e->rcpt, &q, &res);
    bool change = false;
    if (st != ROUTER_OK) {
        c->connector = st == ROUTER_NO_MATCH || st == ROUTER_BAD_DOMAIN ? r->bounce_554
                                                                       : r->bounce_571;
        c->state = QUEUE_QUEUED;
        c->next_attempt = r->now;
        r->bounced++;
        change = true;
    } else if (strcmp(res.connector->name, e->connector) != 0 ||
               e->state == QUEUE_SCHEDULED || e->state == QUEUE_TRIGGERED) {
        /* Moved, or its schedule or trigger may differ now: start afresh,
         * keeping a deferral's retry time. */
        c->connector = res.connector->name;
        struct queue_rcpt fresh = {0};
        sched_settle_initial_state(res.connector, r->now, e->size, &fresh);
        c->state = e->state == QUEUE_DEFERRED && fresh.state == QUEUE_QUEUED ? QUEUE_DEFERRED
                                                                              : fresh.state;
        c->next_attempt = c->state == QUEUE_DEFERRED ? e->next_attempt : fresh.next_attempt;
        change = strcmp(res.connector->name, e->connector) != 0 || c->state != e->state ||
                 c->next_attempt != e->next_attempt;
    }
    if (e->held)
        c->state = QUEUE_HELD;
    router_result_fini(&res);
    return change;
}

static int
reroute_run(struct queue *q, void *arg)
{
    struct reroute *r = arg;
    struct queue_admin_filter f = {.connector = NULL, .state = QUEUE_STATE_ANY};
    /* The change holds pointers into the router's connectors, which the
     * conf reference keeps alive until reroute_done. */
    r->changed = queue_admin_reroute(q, &f, reroute_one, r);
    return r->changed < 0 ? r->changed : 0;
}

static void
reroute_done(void *arg, int status)
{
    struct reroute *r = arg;
    if (status < 0)
        log_error(r->log, "event=reroute status=failed error=\"%s\"", uv_strerror(status));
    else if (!r->quiet || r->changed > 0)
        log_info(r->log, "event=reroute changed=%d to_bounce=%d expired=%d", r->changed,
                 r->bounced, r->expired);
    if (r->done)
        r->done(r->arg);
    server_conf_unref(r->conf);
    free(r);
}

void
reroute_start(struct store *store, struct server_conf *conf, struct log *log, bool quiet,
              void (*done)(void *arg), void *arg)
{
    struct reroute *r = xcalloc(1, sizeof *r);
    r->quiet = quiet;
    r->conf = server_conf_ref(conf);
    r->log = log;
    r->done = done;
    r->arg = arg;
    r->now = (int64_t)time(NULL);
    snprintf(r->bounce_554, sizeof r->bounce_554, "%c5.4.4", REROUTE_BOUNCE_PREFIX);
    snprintf(r->bounce_571, sizeof r->bounce_571, "%c5.7.1", REROUTE_BOUNCE_PREFIX);
    store_call(store, reroute_run, reroute_done, r);
}
