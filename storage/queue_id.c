#include "storage/queue_id.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "connectors/util.h"

#define SEQ_BITS 19
#define SEQ_START_MAX (1u << (SEQ_BITS - 1))

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* (ms << SEQ_BITS | seq) of the last ID made by this process. */
static _Atomic uint64_t last_stamp;

static void
random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        p += n;
        len -= (size_t)n;
    }
    if (len > 0) {
        /* No getrandom: the clock's nanoseconds are a poor but harmless stand-in. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        for (size_t i = 0; i < len; i++)
            p[i] = (unsigned char)((uint64_t)ts.tv_nsec >> (8 * (i % 4)));
    }
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The next stamp: the current millisecond with a random sequence start, or
 * the last stamp plus one when the clock has not moved on (or went back). */
static uint64_t
next_stamp(uint32_t rnd)
{
    uint64_t fresh = (now_ms() & ((UINT64_C(1) << 45) - 1)) << SEQ_BITS;
    fresh |= rnd % SEQ_START_MAX;
    uint64_t old = atomic_load(&last_stamp);
    for (;;) {
        uint64_t next = (fresh >> SEQ_BITS > old >> SEQ_BITS) ? fresh : old + 1;
        if (atomic_compare_exchange_weak(&last_stamp, &old, next))
            return next;
    }
}

void
queue_id_new(char out[QUEUE_ID_LEN + 1])
{
    unsigned char r[6];
    random_bytes(r, sizeof r);
    uint32_t rnd =
        (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
    uint64_t hi = next_stamp(rnd);
    uint32_t lo = (uint32_t)r[4] << 8 | r[5];
    /* 80 bits, most significant first: 12 characters from hi's top 60 bits,
     * then hi's low 4 bits and the 16 random bits in 4 characters. */
    for (int i = 0; i < 12; i++)
        out[i] = alphabet[(hi >> (59 - 5 * i)) & 31];
    uint32_t tail = (uint32_t)(hi & 15) << 16 | lo;
    for (int i = 0; i < 4; i++)
        out[12 + i] = alphabet[(tail >> (15 - 5 * i)) & 31];
    out[QUEUE_ID_LEN] = '\0';
}

static int
id_char(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    if ((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'))
        return c;
    return 0;
}

bool
queue_id_valid(const char *s)
{
    if (s == NULL)
        return false;
    for (size_t i = 0; i < QUEUE_ID_LEN; i++)
        if (id_char(s[i]) == 0)
            return false;
    return s[QUEUE_ID_LEN] == '\0';
}

int
queue_id_normalise(const char *s, char out[QUEUE_ID_LEN + 1])
{
    out[0] = '\0';
    if (!queue_id_valid(s))
        return BH_EINVAL;
    for (size_t i = 0; i < QUEUE_ID_LEN; i++)
        out[i] = (char)id_char(s[i]);
    out[QUEUE_ID_LEN] = '\0';
    return 0;
}
