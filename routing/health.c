#include "routing/health.h"

#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"

#define HEALTH_BUCKETS 256

struct health_entry {
    struct health_entry *next;
    char *key;
    bool down;
    int64_t retry_at;    /* when down */
    uint64_t backoff;    /* the last delay, doubled on the next failure */
    int64_t clear_until; /* opportunistic TLS hold */
};

struct health {
    struct health_entry *b[HEALTH_BUCKETS];
};

static unsigned
hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % HEALTH_BUCKETS;
}

static struct health_entry *
find(const struct health *h, const char *key)
{
    for (struct health_entry *e = h->b[hash(key)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static struct health_entry *
get(struct health *h, const char *key)
{
    struct health_entry *e = find(h, key);
    if (e == NULL) {
        unsigned i = hash(key);
        e = xcalloc(1, sizeof *e);
        e->key = xstrdup(key);
        e->next = h->b[i];
        h->b[i] = e;
    }
    return e;
}

struct health *
health_new(void)
{
    return xcalloc(1, sizeof(struct health));
}

void
health_free(struct health *h)
{
    if (h == NULL)
        return;
    for (int i = 0; i < HEALTH_BUCKETS; i++)
        while (h->b[i]) {
            struct health_entry *e = h->b[i];
            h->b[i] = e->next;
            free(e->key);
            free(e);
        }
    free(h);
}

bool
health_is_up(const struct health *h, const char *key, int64_t now)
{
    const struct health_entry *e = find(h, key);
    return e == NULL || !e->down || now >= e->retry_at;
}

int64_t
health_retry_at(const struct health *h, const char *key, int64_t now)
{
    const struct health_entry *e = find(h, key);
    if (e == NULL || !e->down || e->retry_at < now)
        return now;
    return e->retry_at;
}

void
health_mark_down(struct health *h, const char *key, int64_t now, uint64_t initial, uint64_t max)
{
    struct health_entry *e = get(h, key);
    uint64_t next = e->down && e->backoff ? e->backoff * 2 : initial;
    if (next > max)
        next = max;
    if (next == 0)
        next = 1;
    e->down = true;
    e->backoff = next;
    e->retry_at = now + (int64_t)next;
}

void
health_mark_up(struct health *h, const char *key)
{
    struct health_entry *e = find(h, key);
    if (e != NULL) {
        e->down = false;
        e->backoff = 0;
    }
}

void
health_foreach(const struct health *h, int64_t now, health_visit_cb *cb, void *arg)
{
    for (int i = 0; i < HEALTH_BUCKETS; i++)
        for (const struct health_entry *e = h->b[i]; e; e = e->next)
            if (e->backoff || e->down || e->clear_until == 0)
                cb(e->key, !e->down || now >= e->retry_at, arg);
}

void
health_set_clear(struct health *h, const char *host, int64_t until)
{
    get(h, host)->clear_until = until;
}

bool
health_clear_hold(const struct health *h, const char *host, int64_t now)
{
    const struct health_entry *e = find(h, host);
    return e != NULL && now < e->clear_until;
}
