/* Unit tests for routing/health: down, backoff doubling to the cap, probe
 * after the retry time, up again; the opportunistic clear hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "routing/health.h"

static void
test_backoff(void **state)
{
    (void)state;
    struct health *h = health_new();
    assert_true(health_is_up(h, "10.0.0.1:25", 1000));
    assert_int_equal(health_retry_at(h, "10.0.0.1:25", 1000), 1000);
    health_mark_down(h, "10.0.0.1:25", 1000, 30, 600);
    assert_false(health_is_up(h, "10.0.0.1:25", 1029));
    assert_true(health_is_up(h, "10.0.0.1:25", 1030));
    assert_true(health_is_up(h, "10.0.0.2:25", 1001));
    assert_int_equal(health_retry_at(h, "10.0.0.1:25", 1001), 1030);
    health_mark_down(h, "10.0.0.1:25", 1030, 30, 600); /* the probe failed: 60 s */
    assert_int_equal(health_retry_at(h, "10.0.0.1:25", 1031), 1090);
    for (int i = 0; i < 10; i++)
        health_mark_down(h, "10.0.0.1:25", 2000, 30, 600);
    assert_int_equal(health_retry_at(h, "10.0.0.1:25", 2000), 2600); /* capped */
    health_mark_up(h, "10.0.0.1:25");
    assert_true(health_is_up(h, "10.0.0.1:25", 2001));
    health_mark_down(h, "10.0.0.1:25", 3000, 30, 600); /* reset to initial */
    assert_int_equal(health_retry_at(h, "10.0.0.1:25", 3000), 3030);
    health_free(h);
}

static void
test_clear_hold(void **state)
{
    (void)state;
    struct health *h = health_new();
    assert_false(health_clear_hold(h, "mx.example.org", 0));
    health_set_clear(h, "mx.example.org", 3600);
    assert_true(health_clear_hold(h, "mx.example.org", 3599));
    assert_false(health_clear_hold(h, "mx.example.org", 3600));
    assert_true(health_is_up(h, "mx.example.org", 10)); /* a hold is not down */
    health_free(h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_clear_hold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
