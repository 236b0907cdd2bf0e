/*
 * smtp_in_queue: the smtp_in machine's queue of actions waiting for
 * smtp_in_next, with an arena for the text of its replies. Bounded: one
 * step of the machine queues at most a few actions, and a step runs only
 * when the queue is empty.
 *
 * Part of the protocol machine: libc only. The caller embeds the struct
 * (zero is empty); reply texts stay in the arena until the next push after
 * the queue has run empty. Any thread.
 */
#ifndef BH_CORE_SMTP_IN_QUEUE_H
#define BH_CORE_SMTP_IN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/smtp_in.h"

#define SMTP_IN_QUEUE_LEN 8
#define SMTP_IN_QUEUE_ARENA 2048

/* One queued action: REPLY text is arena[off..off+len); DATA says where
 * the bytes are in the machine's input buffer. */
struct smtp_in_slot {
    enum smtp_in_type type;
    size_t off, len;
};

struct smtp_in_queue {
    struct smtp_in_slot q[SMTP_IN_QUEUE_LEN];
    unsigned head, n;
    char arena[SMTP_IN_QUEUE_ARENA];
    size_t arena_len;
};

void smtp_in_queue_push(struct smtp_in_queue *q, enum smtp_in_type type, size_t off, size_t len);
/* Queue a REPLY: text (no final CRLF; inner CRLFs for multi-line replies)
 * is copied with a CRLF added. */
void smtp_in_queue_reply(struct smtp_in_queue *q, const char *text);
/* Take the oldest action; false when the queue is empty. */
bool smtp_in_queue_pop(struct smtp_in_queue *q, struct smtp_in_slot *s);

#endif
