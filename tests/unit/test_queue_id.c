/* Unit tests for storage/queue_id: well-formed, unique, time-ordered IDs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "storage/queue_id.h"

#define N 20000
#define THREADS 4
#define PER_THREAD 5000

static int
cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The 45-bit millisecond prefix (first 9 characters) as a number. */
static uint64_t
decode_prefix(const char *id)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint64_t v = 0;
    for (int i = 0; i < 9; i++)
        v = v << 5 | (uint64_t)(strchr(alphabet, id[i]) - alphabet);
    return v;
}

static void
test_well_formed(void **state)
{
    (void)state;
    char id[QUEUE_ID_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        queue_id_new(id);
        assert_int_equal(strlen(id), QUEUE_ID_LEN);
        for (int k = 0; k < QUEUE_ID_LEN; k++)
            assert_true((id[k] >= 'A' && id[k] <= 'Z') || (id[k] >= '2' && id[k] <= '7'));
        assert_true(queue_id_valid(id));
    }
}

static void
test_unique_and_ordered(void **state)
{
    (void)state;
    char(*ids)[QUEUE_ID_LEN + 1] = calloc(N, sizeof *ids);
    uint64_t prev = 0;
    for (int i = 0; i < N; i++) {
        queue_id_new(ids[i]);
        uint64_t t = decode_prefix(ids[i]);
        assert_true(t >= prev); /* the time prefix never goes back */
        prev = t;
    }
    qsort(ids, N, sizeof *ids, cmp_str);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void *
make_many(void *arg)
{
    char(*ids)[QUEUE_ID_LEN + 1] = arg;
    for (int i = 0; i < PER_THREAD; i++)
        queue_id_new(ids[i]);
    return NULL;
}

static void
test_threads(void **state)
{
    (void)state;
    char(*ids)[QUEUE_ID_LEN + 1] = calloc(THREADS * PER_THREAD, sizeof *ids);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, make_many, ids + i * PER_THREAD), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    qsort(ids, THREADS * PER_THREAD, sizeof *ids, cmp_str);
    for (int i = 1; i < THREADS * PER_THREAD; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void
test_valid(void **state)
{
    (void)state;
    char out[QUEUE_ID_LEN + 1];
    assert_true(queue_id_valid("ABCDEFGHIJKLMN23"));
    assert_true(queue_id_valid("abcdefghijklmn23"));
    assert_false(queue_id_valid(NULL));
    assert_false(queue_id_valid(""));
    assert_false(queue_id_valid("ABCDEFGHIJKLMN2"));   /* 15 */
    assert_false(queue_id_valid("ABCDEFGHIJKLMN234")); /* 17 */
    assert_false(queue_id_valid("ABCDEFGHIJKLMN01"));  /* 0 and 1 are not base32 */
    assert_false(queue_id_valid("ABCDEFGHIJKLMN2-"));
    assert_false(queue_id_valid("ABCDEFGH\nJKLMN23"));
    assert_int_equal(queue_id_normalise("abcdefghijklmn23", out), 0);
    assert_string_equal(out, "ABCDEFGHIJKLMN23");
    assert_int_not_equal(queue_id_normalise("../../etc/passwd", out), 0);
    assert_string_equal(out, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed),
        cmocka_unit_test(test_unique_and_ordered),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
