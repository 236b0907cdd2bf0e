/* Unit tests for routing/balance: smooth weighted round robin (exact
 * shares, smooth interleaving), weighted random with a seeded source,
 * failover, down items, and the order after a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "routing/balance.h"

static uint64_t
splitmix(void *arg)
{
    uint64_t *s = arg;
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t
always_zero(void *arg)
{
    (void)arg;
    return 0;
}

static void
test_round_robin_shares(void **state)
{
    (void)state;
    struct balance_item v[2] = {{3, true, 0}, {1, true, 0}};
    int count[2] = {0, 0};
    for (int i = 0; i < 200; i++)
        count[balance_round_robin(v, 2)]++;
    assert_int_equal(count[0], 150);
    assert_int_equal(count[1], 50);
}

static void
test_round_robin_smooth(void **state)
{
    (void)state;
    /* nginx's example: weights 5, 1, 1 give a a b a c a a, not a a a a a b c. */
    struct balance_item v[3] = {{5, true, 0}, {1, true, 0}, {1, true, 0}};
    static const int want7[] = {0, 0, 1, 0, 2, 0, 0};
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 7; i++)
            assert_int_equal(balance_round_robin(v, 3), want7[i]);
    /* 3:1 repeats a a b a. */
    struct balance_item w[2] = {{3, true, 0}, {1, true, 0}};
    static const int want4[] = {0, 0, 1, 0};
    for (int i = 0; i < 40; i++)
        assert_int_equal(balance_round_robin(w, 2), want4[i % 4]);
    /* Equal weights alternate. */
    struct balance_item e[3] = {{1, true, 0}, {1, true, 0}, {1, true, 0}};
    for (int i = 0; i < 9; i++)
        assert_int_equal(balance_round_robin(e, 3), i % 3);
}

static void
test_round_robin_down(void **state)
{
    (void)state;
    struct balance_item v[3] = {{3, true, 0}, {1, true, 0}, {2, false, 0}};
    int count[3] = {0, 0, 0};
    for (int i = 0; i < 400; i++)
        count[balance_round_robin(v, 3)]++;
    assert_int_equal(count[0], 300);
    assert_int_equal(count[1], 100);
    assert_int_equal(count[2], 0);
    v[0].up = v[1].up = false;
    assert_int_equal(balance_round_robin(v, 3), -1);
    assert_int_equal(balance_round_robin(v, 0), -1);
    /* Back up: it gets its share again. */
    v[2].up = true;
    assert_int_equal(balance_round_robin(v, 3), 2);
    /* Weight 0 counts as 1. */
    struct balance_item z[2] = {{0, true, 0}, {1, true, 0}};
    int zc[2] = {0, 0};
    for (int i = 0; i < 10; i++)
        zc[balance_round_robin(z, 2)]++;
    assert_int_equal(zc[0], 5);
}

static void
test_random_weights(void **state)
{
    (void)state;
    uint64_t seed = 42;
    struct balance_item v[3] = {{3, true, 0}, {1, true, 0}, {5, false, 0}};
    int count[3] = {0, 0, 0};
    enum { N = 40000 };
    for (int i = 0; i < N; i++)
        count[balance_random(v, 3, splitmix, &seed)]++;
    assert_int_equal(count[2], 0);
    /* Expect 30000/10000; allow 2 % of N (about 9 standard deviations). */
    assert_in_range(count[0], 30000 - 800, 30000 + 800);
    assert_in_range(count[1], 10000 - 800, 10000 + 800);
    v[0].up = v[1].up = false;
    assert_int_equal(balance_random(v, 3, splitmix, &seed), -1);
    /* A degenerate source still returns (no endless rejection loop). */
    struct balance_item w[2] = {{1, true, 0}, {2, true, 0}};
    assert_int_equal(balance_random(w, 2, always_zero, NULL), 0);
}

static void
test_failover(void **state)
{
    (void)state;
    struct balance_item v[3] = {{1, false, 0}, {9, true, 0}, {1, true, 0}};
    for (int i = 0; i < 5; i++)
        assert_int_equal(balance_failover(v, 3), 1);
    v[1].up = false;
    assert_int_equal(balance_failover(v, 3), 2);
    v[0].up = true;
    assert_int_equal(balance_failover(v, 3), 0);
    v[0].up = v[2].up = false;
    assert_int_equal(balance_failover(v, 3), -1);
    assert_int_equal(balance_pick(v, 3, CONNECTOR_BALANCE_FAILOVER, NULL, NULL), -1);
}

static void
test_order_after_failure(void **state)
{
    (void)state;
    size_t order[4];
    struct balance_item v[4] = {{1, true, 0}, {1, false, 0}, {1, true, 0}, {1, true, 0}};
    /* Failover: list order, without the failed one and the down one. */
    assert_int_equal(balance_order(v, 4, CONNECTOR_BALANCE_FAILOVER, 0, NULL, NULL, order), 2);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 3);
    assert_int_equal(balance_order(v, 4, CONNECTOR_BALANCE_FAILOVER, -1, NULL, NULL, order), 3);
    assert_int_equal(order[0], 0);

    /* Round robin: what it would pick next, on a copy. */
    struct balance_item w[3] = {{1, true, 0}, {5, true, 0}, {2, true, 0}};
    int first = balance_round_robin(w, 3);
    assert_int_equal(first, 1);
    struct balance_item saved[3];
    memcpy(saved, w, sizeof(w));
    assert_int_equal(balance_order(w, 3, CONNECTOR_BALANCE_ROUND_ROBIN, first, NULL, NULL, order),
                     2);
    assert_int_equal(order[0], 2); /* the heavier of the rest first */
    assert_int_equal(order[1], 0);
    assert_memory_equal(saved, w, sizeof(w)); /* state untouched */

    /* Random: a permutation of the other up items. */
    uint64_t seed = 7;
    struct balance_item r[4] = {{1, true, 0}, {2, true, 0}, {3, false, 0}, {4, true, 0}};
    for (int k = 0; k < 50; k++) {
        size_t n = balance_order(r, 4, CONNECTOR_BALANCE_RANDOM, 3, splitmix, &seed, order);
        assert_int_equal(n, 2);
        assert_true((order[0] == 0 && order[1] == 1) || (order[0] == 1 && order[1] == 0));
    }
    assert_int_equal(balance_order(r, 0, CONNECTOR_BALANCE_RANDOM, -1, splitmix, &seed, order), 0);
    /* A failed index out of range is ignored. */
    assert_int_equal(balance_order(r, 4, CONNECTOR_BALANCE_FAILOVER, 99, NULL, NULL, order), 3);
}

static void
test_pick_dispatch(void **state)
{
    (void)state;
    uint64_t seed = 1;
    struct balance_item v[2] = {{1, false, 0}, {1, true, 0}};
    assert_int_equal(balance_pick(v, 2, CONNECTOR_BALANCE_ROUND_ROBIN, NULL, NULL), 1);
    assert_int_equal(balance_pick(v, 2, CONNECTOR_BALANCE_RANDOM, splitmix, &seed), 1);
    assert_int_equal(balance_pick(v, 2, CONNECTOR_BALANCE_FAILOVER, NULL, NULL), 1);
    /* Random without a source falls back to round robin. */
    assert_int_equal(balance_pick(v, 2, CONNECTOR_BALANCE_RANDOM, NULL, NULL), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_shares), cmocka_unit_test(test_round_robin_smooth),
        cmocka_unit_test(test_round_robin_down),   cmocka_unit_test(test_random_weights),
        cmocka_unit_test(test_failover),           cmocka_unit_test(test_order_after_failure),
        cmocka_unit_test(test_pick_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
