/*
 * fuzz_common: helpers shared by the libFuzzer targets in tests/fuzz/.
 * A tiny deterministic random source, seeded from input bytes, picks the
 * split points, so one input always replays the same way.
 */
#ifndef BH_TESTS_FUZZ_COMMON_H
#define BH_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fuzz_rng {
    uint32_t s;
};

static inline uint32_t
fuzz_rng_next(struct fuzz_rng *r)
{
    r->s = r->s * 1103515245u + 12345u;
    return r->s >> 8;
}

/* The length of the next piece of at most left bytes: 1..max (mostly
 * small, sometimes all that is left). */
static inline size_t
fuzz_piece(struct fuzz_rng *r, size_t left, size_t max)
{
    if (left == 0)
        return 0;
    uint32_t v = fuzz_rng_next(r);
    size_t n = (v & 7) == 0 ? left : 1 + (size_t)((v >> 3) % max);
    return n < left ? n : left;
}

/* A NUL-terminated heap copy of p[0..n). */
static inline char *
fuzz_strndup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

#endif
