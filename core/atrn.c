#include "core/atrn.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/config.h"
#include "connectors/connector.h"
#include "connectors/util.h"
#include "core/delivery.h"
#include "routing/router.h"
#include "storage/queue_admin.h"

/*
 * The lease reuses the queue's own (queue_lease_due), so that ATRN's
 * recipients are marked delivering exactly as the scheduler's are: inside
 * one transaction the wanted waiting entries are first made due at
 * ATRN_MARK, an instant no other entry has (every real next_attempt is a
 * time after 1970, or none), and a lease "due at ATRN_MARK" then takes
 * exactly them. Nothing else runs on the storage thread in between.
 */
#define ATRN_MARK 0

const struct config_user *
atrn_user(const struct config *c, const char *name)
{
    for (size_t i = 0; name != NULL && i < c->nusers; i++)
        if (strcmp(c->users[i].name, name) == 0)
            return &c->users[i];
    return NULL;
}

static bool
user_has(const struct config_user *u, const char *domain)
{
    for (size_t i = 0; u != NULL && i < u->ndomains; i++)
        if (strcmp(u->domains[i], domain) == 0)
            return true;
    return false;
}

/* The triggered connector that serves domain, as ETRN finds it; NULL: none. */
static char *
triggered_connector(const struct router *r, const char *domain)
{
    char rcpt[DOMAIN_MAX + 16];
    snprintf(rcpt, sizeof rcpt, "postmaster@%s", domain);
    struct router_result res;
    char *name = NULL;
    if (router_route(r, rcpt, NULL, &res) == ROUTER_OK && res.connector->triggered)
        name = xstrdup(res.connector->name);
    router_result_fini(&res);
    return name;
}

/* Add one domain as given (len octets at d); 0 or a reply code. */
static int
add_target(const struct router *r, const struct config_user *u, const char *d, size_t len,
           struct atrn_targets *out, char *text, size_t tlen)
{
    char dom[DOMAIN_MAX + 1];
    if (len > DOMAIN_MAX + 1 || domain_normalise(d, len, dom) < 0) {
        snprintf(text, tlen, "5.5.4 Syntax: ATRN [domain[,domain...]]");
        return 501;
    }
    for (size_t i = 0; i < out->n; i++)
        if (strcmp(out->v[i].domain, dom) == 0)
            return 0;
    char *conn = user_has(u, dom) ? triggered_connector(r, dom) : NULL;
    if (conn == NULL) {
        snprintf(text, tlen, "4.7.1 ATRN request refused: %s not allowed", dom);
        return 450;
    }
    out->v = xrealloc(out->v, (out->n + 1) * sizeof *out->v);
    memcpy(out->v[out->n].domain, dom, sizeof dom);
    out->v[out->n++].connector = conn;
    return 0;
}

int
atrn_targets(const struct router *r, const struct config_user *u, const char *arg,
             struct atrn_targets *out, char *text, size_t len)
{
    int code = 0;
    if (arg[0] == '\0') {
        for (size_t i = 0; code == 0 && u != NULL && i < u->ndomains; i++)
            code = add_target(r, u, u->domains[i], strlen(u->domains[i]), out, text, len);
    } else {
        for (const char *p = arg; code == 0; p++) {
            size_t n = strcspn(p, ",");
            code = add_target(r, u, p, n, out, text, len);
            p += n;
            if (*p == '\0')
                break;
        }
    }
    if (code == 0 && out->n == 0) {
        snprintf(text, len, "4.7.1 ATRN request refused: no domain to pull");
        code = 450;
    }
    if (code != 0)
        atrn_targets_fini(out);
    return code;
}

void
atrn_targets_fini(struct atrn_targets *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].connector);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

/* ---- the lease (storage thread) ------------------------------------------ */

struct mark {
    const struct atrn_targets *t;
    size_t limit, marked;
};

/* Is the recipient's domain the target's (one trailing dot and case aside)? */
static bool
wanted(const struct atrn_target *t, const struct queue_entry *e)
{
    const char *at = strrchr(e->rcpt, '@');
    char dom[DOMAIN_MAX + 1];
    return at != NULL && strcmp(e->connector, t->connector) == 0 &&
           domain_normalise(at + 1, strlen(at + 1), dom) == 0 && strcmp(dom, t->domain) == 0;
}

static bool
mark_due(const struct queue_entry *e, struct queue_admin_change *c, void *arg)
{
    struct mark *m = arg;
    if (m->marked >= m->limit || e->state == QUEUE_HELD || e->state == QUEUE_DELIVERING)
        return false;
    for (size_t i = 0; i < m->t->n; i++) {
        if (wanted(&m->t->v[i], e)) {
            c->state = QUEUE_QUEUED;
            c->next_attempt = ATRN_MARK;
            m->marked++;
            return true;
        }
    }
    return false;
}

/* Mark the wanted entries of every target connector (each one walk). */
static int
mark_all(struct queue *q, struct mark *m)
{
    for (size_t i = 0; i < m->t->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || strcmp(m->t->v[j].connector, m->t->v[i].connector) == 0;
        if (seen)
            continue;
        struct queue_admin_filter f = {.connector = m->t->v[i].connector, .state = QUEUE_STATE_ANY};
        int rc = queue_admin_reroute(q, &f, mark_due, m);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int
atrn_lease(struct queue *q, const struct atrn_targets *t, size_t limit, struct queue_entry *out)
{
    struct mark m = {t, limit < ATRN_BATCH ? limit : ATRN_BATCH, 0};
    /* Like the scheduler's delivering marks, not worth an fsync: a crash
     * forgets them and the entries simply wait, triggered, again. */
    queue_set_durable(q, false);
    int rc = queue_txn_begin(q);
    if (rc == 0)
        rc = mark_all(q, &m);
    int n = 0;
    if (rc == 0 && m.marked > 0) {
        n = queue_lease_due(q, ATRN_MARK, NULL, m.marked, out);
        rc = n < 0 ? n : 0;
    }
    if (rc == 0)
        rc = queue_txn_commit(q);
    else
        queue_txn_rollback(q);
    queue_set_durable(q, true);
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            queue_entry_fini(&out[i]);
        return rc;
    }
    return n;
}

/* ---- jobs ------------------------------------------------------------------ */

/* The job of e[first] and every later entry of the same message and
 * connector. */
static struct delivery_job *
take_job(struct queue_entry *e, size_t n, bool *used, size_t first)
{
    struct delivery_job *job = xcalloc(1, sizeof *job);
    char id[QUEUE_ID_LEN + 1];
    memcpy(id, e[first].id, sizeof id);
    job->connector = xstrdup(e[first].connector);
    job->entries = xcalloc(n - first, sizeof *job->entries);
    for (size_t i = first; i < n; i++) {
        if (used[i] || strcmp(e[i].id, id) != 0 || strcmp(e[i].connector, job->connector) != 0)
            continue;
        used[i] = true;
        job->entries[job->n++] = e[i];
        memset(&e[i], 0, sizeof e[i]); /* the job owns its strings now */
    }
    return job;
}

struct delivery_job *
atrn_jobs(struct queue_entry *e, size_t n)
{
    struct delivery_job *head = NULL, **tail = &head;
    bool *used = xcalloc(n ? n : 1, sizeof *used);
    for (size_t i = 0; i < n; i++) {
        if (used[i])
            continue;
        *tail = take_job(e, n, used, i);
        tail = &(*tail)->next;
    }
    free(used);
    return head;
}
