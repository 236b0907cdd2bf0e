/* The smtp_in machine's action queue and reply arena. */
#include "core/smtp_in_queue.h"

#include <string.h>

void
smtp_in_queue_push(struct smtp_in_queue *q, enum smtp_in_type type, size_t off, size_t len)
{
    if (q->n == SMTP_IN_QUEUE_LEN)
        return; /* cannot happen: a step queues at most four actions */
    q->q[(q->head + q->n) % SMTP_IN_QUEUE_LEN] = (struct smtp_in_slot){type, off, len};
    q->n++;
}

void
smtp_in_queue_reply(struct smtp_in_queue *q, const char *text)
{
    /* The texts of actions already taken are no longer needed. */
    if (q->n == 0)
        q->arena_len = 0;
    size_t n = strlen(text), room = SMTP_IN_QUEUE_ARENA - q->arena_len;
    if (room < 3)
        return; /* cannot happen: replies are short and the queue drains */
    if (n > room - 2)
        n = room - 2;
    memcpy(q->arena + q->arena_len, text, n);
    memcpy(q->arena + q->arena_len + n, "\r\n", 2);
    smtp_in_queue_push(q, SMTP_IN_REPLY, q->arena_len, n + 2);
    q->arena_len += n + 2;
}

bool
smtp_in_queue_pop(struct smtp_in_queue *q, struct smtp_in_slot *s)
{
    if (q->n == 0)
        return false;
    *s = q->q[q->head];
    q->head = (q->head + 1) % SMTP_IN_QUEUE_LEN;
    q->n--;
    return true;
}
