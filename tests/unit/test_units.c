/*
 * Unit tests for connectors/units: every size and duration unit of SPEC §2
 * with its exact multiplier, the malformed and overflowing forms, and the
 * human forms that `check` prints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connectors/units.h"
#include "connectors/util.h"

/* The value parse makes of s, which must parse. */
static uint64_t
parsed(int (*parse)(const char *, uint64_t *), const char *s)
{
    uint64_t v = 0;
    if (parse(s, &v) != 0)
        fail_msg("\"%s\" did not parse", s);
    return v;
}

#define size_of(s) parsed(units_parse_size, (s))
#define duration_of(s) parsed(units_parse_duration, (s))

static void
test_sizes(void **state)
{
    (void)state;
    assert_int_equal(size_of("512"), 512);
    assert_int_equal(size_of("0"), 0);
    assert_int_equal(size_of("7B"), 7);
    assert_int_equal(size_of("10KiB"), 10240);
    assert_int_equal(size_of("10KB"), 10240);
    assert_int_equal(size_of("25MiB"), 25ull << 20);
    assert_int_equal(size_of("25MB"), 25ull << 20);
    assert_int_equal(size_of("1GiB"), 1ull << 30);
    assert_int_equal(size_of("3GB"), 3ull << 30);
    assert_int_equal(size_of("18446744073709551615"), UINT64_MAX);
    uint64_t v;
    static const char *const bad[] = {"", "KiB", "10 KiB", "10kib", "10TB", "-1", "+1", "1.5MiB",
                                      "10KiBx", " 10", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (units_parse_size(bad[i], &v) != BH_EINVAL)
            fail_msg("\"%s\" was not refused as malformed", bad[i]);
    assert_int_equal(units_parse_size("18446744073709551616", &v), BH_ERANGE);
    assert_int_equal(units_parse_size("17179869184GiB", &v), BH_ERANGE); /* 2^34 GiB = 2^64 */
    assert_int_equal(units_parse_size("17179869183GiB", &v), 0);
}

static void
test_durations(void **state)
{
    (void)state;
    assert_int_equal(duration_of("45"), 45);
    assert_int_equal(duration_of("30s"), 30);
    assert_int_equal(duration_of("5m"), 300);
    assert_int_equal(duration_of("4h"), 14400);
    assert_int_equal(duration_of("5d"), 432000);
    assert_int_equal(duration_of("0s"), 0);
    uint64_t v;
    static const char *const bad[] = {"", "m", "5 m", "5M", "5min", "1w", "-5s", "1.5h", "5ms"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (units_parse_duration(bad[i], &v) != BH_EINVAL)
            fail_msg("\"%s\" was not refused as malformed", bad[i]);
    assert_int_equal(units_parse_duration("213503982334602d", &v), BH_ERANGE);
    assert_int_equal(units_parse_duration("213503982334601d", &v), 0);
    assert_int_equal(units_parse_uint("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(units_parse_uint("42s", &v), BH_EINVAL);
}

static void
test_formats(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(units_format_size(512, b, sizeof b), "512");
    assert_string_equal(units_format_size(10240, b, sizeof b), "10KiB");
    assert_string_equal(units_format_size(25ull << 20, b, sizeof b), "25MiB");
    assert_string_equal(units_format_size(1ull << 30, b, sizeof b), "1GiB");
    assert_string_equal(units_format_size(1536, b, sizeof b), "1536");
    assert_string_equal(units_format_duration(30, b, sizeof b), "30s");
    assert_string_equal(units_format_duration(300, b, sizeof b), "5m");
    assert_string_equal(units_format_duration(14400, b, sizeof b), "4h");
    assert_string_equal(units_format_duration(432000, b, sizeof b), "5d");
    assert_string_equal(units_format_duration(90, b, sizeof b), "90s");
    char tiny[4];
    assert_string_equal(units_format_size(25ull << 20, tiny, sizeof tiny), "25M");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
