/* The envelope of the smtp_in machine's current transaction. */
#include "core/smtp_in_env.h"

#include <stdlib.h>
#include <string.h>

void
smtp_in_env_mail(struct smtp_in_env *e, const struct smtp_in_args *a)
{
    memcpy(e->sender, a->addr, sizeof e->sender);
    memcpy(e->envid, a->xtext, sizeof e->envid - 1);
    e->envid[sizeof e->envid - 1] = '\0';
    e->mail = (struct smtp_in_mail){.sender = e->sender,
                                    .has_size = a->has_size,
                                    .size = a->size,
                                    .body = a->body,
                                    .ret = a->ret,
                                    .envid = a->has_xtext ? e->envid : NULL};
    e->has_mail = true;
}

/* One allocation: the struct, then its strings. */
static struct smtp_in_rcpt *
rcpt_new(const struct smtp_in_args *a)
{
    size_t an = strlen(a->addr) + 1, on = a->has_xtext ? strlen(a->xtext) + 1 : 0;
    struct smtp_in_rcpt *r = malloc(sizeof *r + an + on);
    if (r == NULL)
        return NULL;
    char *p = (char *)(r + 1);
    memcpy(p, a->addr, an);
    r->addr = p;
    r->notify = a->notify;
    r->orcpt = NULL;
    if (on > 0) {
        memcpy(p + an, a->xtext, on);
        r->orcpt = p + an;
    }
    return r;
}

bool
smtp_in_env_cand(struct smtp_in_env *e, const struct smtp_in_args *a)
{
    if (e->nrcpts == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        struct smtp_in_rcpt **p = realloc(e->rcpts, cap * sizeof *p);
        if (p == NULL)
            return false;
        e->rcpts = p;
        e->cap = cap;
    }
    free(e->cand);
    e->cand = rcpt_new(a);
    return e->cand != NULL;
}

void
smtp_in_env_settle(struct smtp_in_env *e, bool accepted)
{
    if (e->cand != NULL && accepted && e->nrcpts < e->cap)
        e->rcpts[e->nrcpts++] = e->cand;
    else
        free(e->cand);
    e->cand = NULL;
}

void
smtp_in_env_reset(struct smtp_in_env *e)
{
    for (size_t i = 0; i < e->nrcpts; i++)
        free(e->rcpts[i]);
    free(e->cand);
    e->cand = NULL;
    e->nrcpts = 0;
    e->has_mail = false;
    memset(&e->mail, 0, sizeof e->mail);
}

void
smtp_in_env_fini(struct smtp_in_env *e)
{
    smtp_in_env_reset(e);
    free(e->rcpts);
    e->rcpts = NULL;
    e->cap = 0;
}
