#include "core/etrn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/config.h"
#include "connectors/domain.h"
#include "connectors/util.h"
#include "core/log.h"
#include "core/server.h"
#include "core/store.h"
#include "routing/router.h"
#include "storage/queue_admin.h"

struct etrn {
    struct server_env *env;
    etrn_cb *cb;
    void *owner;
    char domain[DOMAIN_MAX + 1];
    char connector[128];
    bool subdomains;
    int64_t now;
    int changed;
};

/* Is the recipient's domain D (or, with @D, under it)? */
static bool
matches(const struct etrn *e, const char *rcpt)
{
    const char *at = strrchr(rcpt, '@');
    if (at == NULL)
        return false;
    const char *d = at + 1;
    if (util_strcasecmp(d, e->domain) == 0)
        return true;
    size_t n = strlen(d), m = strlen(e->domain);
    return e->subdomains && n > m + 1 && d[n - m - 1] == '.' &&
           util_strcasecmp(d + n - m, e->domain) == 0;
}

/* Every waiting entry of D goes: triggered, but also scheduled or deferred
 * (a plain `queue flush` in a closed window, or a retry), since ETRN starts
 * the domain's queue ignoring schedules. Held entries stay held. */
static bool
make_due(const struct queue_entry *q, struct queue_admin_change *c, void *arg)
{
    struct etrn *e = arg;
    if (q->held || !matches(e, q->rcpt))
        return false;
    c->state = QUEUE_QUEUED;
    c->next_attempt = e->now;
    c->ignore_schedule = true; /* SPEC §4: ETRN ignores schedules */
    return true;
}

static int
etrn_run(struct queue *q, void *arg)
{
    struct etrn *e = arg;
    struct queue_admin_filter f = {.connector = e->connector, .state = QUEUE_STATE_ANY};
    e->changed = queue_admin_reroute(q, &f, make_due, e);
    return e->changed < 0 ? e->changed : 0;
}

static void
etrn_done(void *arg, int status)
{
    struct etrn *e = arg;
    char text[400];
    int code;
    if (status < 0) {
        code = 458;
        snprintf(text, sizeof text, "4.3.0 Unable to queue messages for %s", e->domain);
    } else if (e->changed > 0) {
        code = 250;
        snprintf(text, sizeof text, "2.0.0 queuing for %s started", e->domain);
        if (e->env->queued)
            e->env->queued(e->env->queued_arg);
    } else {
        code = 251;
        snprintf(text, sizeof text, "2.0.0 no messages waiting for %s", e->domain);
    }
    char dom[LOG_VALUE_MAX];
    log_info(e->env->log, "event=etrn domain=%s%s connector=%s changed=%d", e->subdomains ? "@" : "",
             log_token(dom, sizeof dom, e->domain), e->connector, e->changed);
    e->cb(e->owner, code, text);
    free(e);
}

/* The triggered connector that serves domain, or NULL. */
static const char *
triggered_connector(struct server_conf *conf, const char *domain)
{
    char rcpt[DOMAIN_MAX + 16];
    snprintf(rcpt, sizeof rcpt, "postmaster@%s", domain);
    struct router_result res;
    const char *name = NULL;
    if (router_route(conf->router, rcpt, NULL, &res) == ROUTER_OK && res.connector->triggered)
        name = res.connector->name;
    router_result_fini(&res);
    return name;
}

void
etrn_start(struct server_env *env, struct server_conf *conf, bool allowed, const char *arg,
           etrn_cb *cb, void *owner)
{
    char text[400];
    bool sub = arg[0] == '@';
    char domain[DOMAIN_MAX + 1];
    if (arg[0] == '#' || domain_normalise(arg + sub, strlen(arg + sub), domain) < 0) {
        cb(owner, 501, "5.5.4 Syntax: ETRN domain, or ETRN @domain");
        return;
    }
    const char *name = allowed ? triggered_connector(conf, domain) : NULL;
    if (name == NULL || strlen(name) >= sizeof(((struct etrn *)0)->connector)) {
        snprintf(text, sizeof text, "4.7.1 %s not allowed", domain);
        cb(owner, 459, text);
        return;
    }
    struct etrn *e = xcalloc(1, sizeof *e);
    *e = (struct etrn){.env = env, .cb = cb, .owner = owner, .subdomains = sub,
                       .now = (int64_t)time(NULL)};
    snprintf(e->domain, sizeof e->domain, "%s", domain);
    snprintf(e->connector, sizeof e->connector, "%s", name);
    store_call(env->store, etrn_run, etrn_done, e);
}
