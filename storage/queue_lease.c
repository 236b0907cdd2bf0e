#include "storage/queue_lease.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "connectors/util.h"

#define NBUCKETS 4096

struct item {
    struct item *next;
    int64_t entry;
    uint64_t token;
    int64_t deadline_ms;
};

struct queue_leases {
    pthread_mutex_t mu;
    struct item *b[NBUCKETS];
    uint64_t next_token;
};

int64_t
queue_leases_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct queue_leases *
queue_leases_new(void)
{
    struct queue_leases *ls = xcalloc(1, sizeof *ls);
    pthread_mutex_init(&ls->mu, NULL);
    return ls;
}

void
queue_leases_free(struct queue_leases *ls)
{
    if (ls == NULL)
        return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        while (ls->b[i] != NULL) {
            struct item *it = ls->b[i];
            ls->b[i] = it->next;
            free(it);
        }
    }
    pthread_mutex_destroy(&ls->mu);
    free(ls);
}

static struct item **
slot(struct queue_leases *ls, int64_t entry)
{
    struct item **pp = &ls->b[(uint64_t)entry % NBUCKETS];
    while (*pp != NULL && (*pp)->entry != entry)
        pp = &(*pp)->next;
    return pp;
}

uint64_t
queue_leases_add(struct queue_leases *ls, int64_t entry, int64_t deadline_ms)
{
    pthread_mutex_lock(&ls->mu);
    struct item **pp = slot(ls, entry);
    if (*pp == NULL) {
        *pp = xcalloc(1, sizeof **pp);
        (*pp)->entry = entry;
    }
    uint64_t token = ++ls->next_token;
    (*pp)->token = token;
    (*pp)->deadline_ms = deadline_ms;
    pthread_mutex_unlock(&ls->mu);
    return token;
}

void
queue_leases_remove(struct queue_leases *ls, int64_t entry)
{
    pthread_mutex_lock(&ls->mu);
    struct item **pp = slot(ls, entry);
    if (*pp != NULL) {
        struct item *it = *pp;
        *pp = it->next;
        free(it);
    }
    pthread_mutex_unlock(&ls->mu);
}

void
queue_leases_renew(struct queue_leases *ls, int64_t entry, int64_t deadline_ms)
{
    pthread_mutex_lock(&ls->mu);
    struct item *it = *slot(ls, entry);
    if (it != NULL && it->deadline_ms < deadline_ms)
        it->deadline_ms = deadline_ms;
    pthread_mutex_unlock(&ls->mu);
}

void
queue_leases_invalidate(struct queue_leases *ls)
{
    pthread_mutex_lock(&ls->mu);
    for (size_t i = 0; i < NBUCKETS; i++)
        for (struct item *it = ls->b[i]; it != NULL; it = it->next)
            it->deadline_ms = 0;
    pthread_mutex_unlock(&ls->mu);
}

bool
queue_leases_ok(struct queue_leases *ls, int64_t entry, uint64_t token)
{
    int64_t now = queue_leases_now_ms();
    pthread_mutex_lock(&ls->mu);
    struct item *it = *slot(ls, entry);
    bool ok = it != NULL && it->token == token && now < it->deadline_ms;
    pthread_mutex_unlock(&ls->mu);
    return ok;
}
