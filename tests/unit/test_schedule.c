/* Unit tests for connectors/schedule: day and time parsing, windows past
 * midnight and to 24:00, the SPEC §2 example, oversized windows, next
 * open/close, DST days in Europe/Berlin and America/New_York (2026 from the
 * table, 2040 from the footer rule), and bad or corrupt timezones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/schedule.h"
#include "connectors/util.h"

#define SUN 0x01u
#define MON 0x02u
#define MON_FRI 0x3eu
#define SAT_SUN 0x41u
#define ALL 0x7fu
#define MB2 2097152u

/* Seconds since the epoch of a UTC date and time (proleptic Gregorian). */
static int64_t
utc(int y, int mo, int d, int h, int mi)
{
    int64_t yy = y - (mo <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return days * 86400 + h * 3600 + mi * 60;
}

static struct schedule *
mk(const char *tz, const struct schedule_window *w, size_t n)
{
    char err[256];
    struct schedule *s = schedule_new(tz, w, n, NULL, 0, 0, err, sizeof(err));
    if (s == NULL)
        fail_msg("schedule_new(%s): %s", tz, err);
    return s;
}

/* ---- parsing ----------------------------------------------------------- */

static void
test_parse_days(void **state)
{
    static const struct {
        const char *s;
        unsigned days;
    } good[] = {
        {"mon", MON},         {"sun", SUN},      {"mon-fri", MON_FRI}, {"sat,sun", SAT_SUN},
        {"sat-sun", SAT_SUN}, {"fri-mon", 0x63}, {"sun-sat", ALL},     {"mon,wed-thu", 0x1a},
        {"mon-mon", MON},     {"mon,mon", MON},  {"thu-tue", 0x77},
    };
    static const char *const bad[] = {
        "",     "Mon",     "MON",      "monday",  "mo",   "mon-",        "-fri",
        "mon,", ",mon",    "mon, tue", " mon",    "mon ", "mon-fri-sat", "mon--fri",
        "xyz",  "mon;tue", "mon,,tue", "mon-xyz", "1",    "mon-fr",
    };
    unsigned days;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        days = 0;
        if (schedule_parse_days(good[i].s, &days) != 0 || days != good[i].days)
            fail_msg("\"%s\": 0x%x, want 0x%x", good[i].s, days, good[i].days);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (schedule_parse_days(bad[i], &days) != BH_EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(schedule_parse_days(NULL, &days), BH_EINVAL);
    assert_int_equal(schedule_parse_days("mon", NULL), BH_EINVAL);
}

static void
test_parse_time(void **state)
{
    static const struct {
        const char *s;
        bool allow_24;
        int rc, minutes;
    } cases[] = {
        {"00:00", false, 0, 0},          {"06:00", false, 0, 360},
        {"22:30", false, 0, 1350},       {"23:59", false, 0, 1439},
        {"24:00", true, 0, 1440},        {"00:00", true, 0, 0},
        {"24:00", false, BH_EINVAL, 0},  {"24:01", true, BH_EINVAL, 0},
        {"25:00", true, BH_EINVAL, 0},   {"12:60", false, BH_EINVAL, 0},
        {"7:00", false, BH_EINVAL, 0},   {"07:0", false, BH_EINVAL, 0},
        {"07:000", false, BH_EINVAL, 0}, {"007:00", false, BH_EINVAL, 0},
        {"07:00 ", false, BH_EINVAL, 0}, {" 07:00", false, BH_EINVAL, 0},
        {"07-00", false, BH_EINVAL, 0},  {"0700", false, BH_EINVAL, 0},
        {"ab:cd", false, BH_EINVAL, 0},  {"+7:00", false, BH_EINVAL, 0},
        {"", false, BH_EINVAL, 0},       {"0", false, BH_EINVAL, 0},
    };
    int m;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        m = -1;
        int rc = schedule_parse_time(cases[i].s, cases[i].allow_24, &m);
        if (rc != cases[i].rc || (rc == 0 && m != cases[i].minutes))
            fail_msg("\"%s\": rc %d minutes %d", cases[i].s, rc, m);
    }
    assert_int_equal(schedule_parse_time(NULL, true, &m), BH_EINVAL);
    assert_int_equal(schedule_parse_time("10:00", true, NULL), BH_EINVAL);
}

/* ---- table-driven queries ---------------------------------------------- */

struct at_case {
    int64_t t;
    uint64_t size;
    bool open;
    int64_t next_open, next_close; /* 0: the same as t */
};

static void
check_cases(const struct schedule *s, const struct at_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t t = c[i].t;
        int64_t no = c[i].next_open ? c[i].next_open : t;
        int64_t nc = c[i].next_close ? c[i].next_close : t;
        bool open = schedule_is_open(s, t, c[i].size);
        int64_t got_o = schedule_next_open(s, t, c[i].size);
        int64_t got_c = schedule_next_close(s, t, c[i].size);
        if (open != c[i].open || got_o != no || got_c != nc)
            fail_msg("case %zu (t=%lld): open %d/%d next_open %lld/%lld next_close %lld/%lld", i,
                     (long long)t, open, c[i].open, (long long)got_o, (long long)no,
                     (long long)got_c, (long long)nc);
    }
}

/* SPEC §2: mon-fri 22:00-06:00 and sat,sun 00:00-24:00, in UTC. 2026-11-30
 * is a Monday. Monday 00:00-06:00 is closed: the Sunday window ends at
 * 24:00 and no window starts on Sunday evening. */
static const struct schedule_window spec_windows[] = {
    {MON_FRI, 22 * 60, 6 * 60},
    {SAT_SUN, 0, 1440},
};

static void
test_spec_example(void **state)
{
    const uint64_t U = SCHEDULE_SIZE_UNKNOWN;
    const struct at_case cases[] = {
        {utc(2026, 11, 30, 0, 0), U, false, utc(2026, 11, 30, 22, 0), 0},
        {utc(2026, 11, 30, 5, 59), U, false, utc(2026, 11, 30, 22, 0), 0},
        {utc(2026, 11, 30, 10, 0), U, false, utc(2026, 11, 30, 22, 0), 0},
        {utc(2026, 11, 30, 21, 59), U, false, utc(2026, 11, 30, 22, 0), 0},
        {utc(2026, 11, 30, 22, 0), U, true, 0, utc(2026, 12, 1, 6, 0)},
        {utc(2026, 12, 1, 5, 59), U, true, 0, utc(2026, 12, 1, 6, 0)},
        {utc(2026, 12, 1, 6, 0), U, false, utc(2026, 12, 1, 22, 0), 0},
        {utc(2026, 11, 27, 5, 59), U, true, 0, utc(2026, 11, 27, 6, 0)}, /* Thu's window */
        {utc(2026, 11, 27, 6, 0), U, false, utc(2026, 11, 27, 22, 0), 0},
        /* Friday 22:00 runs on through the weekend to Monday 00:00. */
        {utc(2026, 11, 27, 23, 0), U, true, 0, utc(2026, 11, 30, 0, 0)},
        {utc(2026, 11, 28, 6, 0), U, true, 0, utc(2026, 11, 30, 0, 0)},
        {utc(2026, 11, 29, 23, 59), 100, true, 0, utc(2026, 11, 30, 0, 0)},
    };
    struct schedule *s = mk("UTC", spec_windows, 2);
    char buf[128];

    (void)state;
    check_cases(s, cases, sizeof(cases) / sizeof(cases[0]));
    schedule_describe(s, buf, sizeof(buf));
    assert_string_equal(buf, "UTC mon-fri 22:00-06:00, sat,sun 00:00-24:00");
    assert_string_equal(schedule_timezone(s), "UTC");
    assert_false(schedule_has_oversized(s));
    assert_int_equal(schedule_utc_offset(s, utc(2026, 7, 1, 0, 0)), 0);
    schedule_free(s);
    schedule_free(NULL);
}

static void
test_windows(void **state)
{
    const int64_t NEVER = SCHEDULE_NEVER;
    const uint64_t U = SCHEDULE_SIZE_UNKNOWN;
    /* Saturday 22:00 to Sunday 02:00: crosses the end of the week. */
    const struct schedule_window wrap[] = {{0x40, 22 * 60, 2 * 60}};
    const struct at_case wrap_cases[] = {
        {utc(2026, 11, 28, 21, 59), U, false, utc(2026, 11, 28, 22, 0), 0},
        {utc(2026, 11, 29, 1, 59), U, true, 0, utc(2026, 11, 29, 2, 0)},
        {utc(2026, 11, 29, 2, 0), U, false, utc(2026, 12, 5, 22, 0), 0},
        {utc(2026, 11, 27, 23, 0), U, false, utc(2026, 11, 28, 22, 0), 0},
    };
    /* Sunday to 24:00 and Monday from 00:00 join into one stretch. */
    const struct schedule_window join[] = {{SUN, 22 * 60, 1440}, {MON, 0, 2 * 60}};
    const struct at_case join_cases[] = {
        {utc(2026, 11, 29, 23, 0), U, true, 0, utc(2026, 11, 30, 2, 0)},
        {utc(2026, 11, 30, 0, 0), U, true, 0, utc(2026, 11, 30, 2, 0)},
    };
    /* Every day all day: never closes. from == to: an empty window. */
    const struct schedule_window all[] = {{ALL, 0, 1440}, {MON, 600, 600}};
    const struct at_case all_cases[] = {{utc(2026, 11, 30, 12, 0), U, true, 0, NEVER}};
    const struct schedule_window none[] = {{ALL, 600, 600}};
    const struct at_case none_cases[] = {{utc(2026, 11, 30, 12, 0), U, false, NEVER, 0}};
    /* The same weekly schedule written as seven one-day windows. */
    const struct schedule_window days7[] = {{ALL, 12 * 60, 12 * 60 - 1}};
    const struct at_case days7_cases[] = {
        {utc(2026, 11, 30, 11, 59), U, false, utc(2026, 11, 30, 12, 0), 0},
        {utc(2026, 11, 30, 12, 0), U, true, 0, utc(2026, 12, 1, 11, 59)},
    };
    struct schedule *s;

    (void)state;
#define RUN(w, c)                                                                                  \
    s = mk("UTC", w, sizeof(w) / sizeof(w[0]));                                                    \
    check_cases(s, c, sizeof(c) / sizeof(c[0]));                                                   \
    schedule_free(s)
    RUN(wrap, wrap_cases);
    RUN(join, join_cases);
    RUN(all, all_cases);
    RUN(none, none_cases);
    RUN(days7, days7_cases);
#undef RUN
    s = mk("UTC", NULL, 0); /* no windows at all */
    assert_false(schedule_is_open(s, 0, U));
    assert_int_equal(schedule_next_open(s, 0, U), NEVER);
    assert_int_equal(schedule_next_close(s, 5, U), 5);
    schedule_free(s);
}

static void
test_oversized(void **state)
{
    const uint64_t U = SCHEDULE_SIZE_UNKNOWN;
    const struct schedule_window big[] = {{SUN, 60, 5 * 60}};
    const int64_t sat = utc(2026, 11, 28, 12, 0), sun2 = utc(2026, 11, 29, 2, 0);
    const struct at_case cases[] = {
        {sat, 1000, true, 0, utc(2026, 11, 30, 0, 0)},
        {sat, MB2, true, 0, utc(2026, 11, 30, 0, 0)}, /* == threshold: not oversized */
        {sat, MB2 + 1, false, utc(2026, 11, 29, 1, 0), 0},
        {sat, U, true, 0, utc(2026, 11, 30, 0, 0)}, /* unknown size: normal windows */
        {sun2, MB2 + 1, true, 0, utc(2026, 11, 29, 5, 0)},
        {utc(2026, 11, 29, 5, 0), UINT64_MAX - 1, false, utc(2026, 12, 6, 1, 0), 0},
        {utc(2026, 11, 30, 23, 0), 10 * MB2, false, utc(2026, 12, 6, 1, 0), 0},
        {utc(2026, 11, 30, 23, 0), 10, true, 0, utc(2026, 12, 1, 6, 0)},
    };
    char err[128], buf[128];
    struct schedule *s = schedule_new("UTC", spec_windows, 2, big, 1, MB2, err, sizeof(err));

    (void)state;
    assert_non_null(s);
    assert_true(schedule_has_oversized(s));
    assert_int_equal(schedule_threshold(s), MB2);
    check_cases(s, cases, sizeof(cases) / sizeof(cases[0]));
    schedule_describe(s, buf, sizeof(buf));
    assert_string_equal(buf, "UTC mon-fri 22:00-06:00, sat,sun 00:00-24:00; "
                             "over 2097152 bytes: sun 01:00-05:00");
    schedule_free(s);

    /* Without oversized windows, big messages follow the normal ones. */
    s = schedule_new("UTC", spec_windows, 2, NULL, 0, MB2, err, sizeof(err));
    assert_non_null(s);
    assert_false(schedule_has_oversized(s));
    assert_true(schedule_is_open(s, sat, 100 * (uint64_t)MB2));
    schedule_free(s);
}

/* ---- DST --------------------------------------------------------------- */

static void
test_dst_berlin(void **state)
{
    const uint64_t U = SCHEDULE_SIZE_UNKNOWN;
    /* 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC); 2026-10-25 03:00 CEST ->
     * 02:00 CET (01:00 UTC). 2040 is past the file's table: footer rule. */
    const struct schedule_window skipped[] = {{SUN, 2 * 60, 3 * 60}};
    const struct at_case skipped_cases[] = {
        {utc(2026, 3, 22, 0, 0), U, false, utc(2026, 3, 22, 1, 0), 0},
        {utc(2026, 3, 29, 0, 0), U, false, utc(2026, 4, 5, 0, 0), 0},
        {utc(2026, 3, 29, 0, 59) + 59, U, false, utc(2026, 4, 5, 0, 0), 0},
        {utc(2026, 3, 29, 1, 0), U, false, utc(2026, 4, 5, 0, 0), 0},
        /* Repeated hour: open in CEST and again in CET. */
        {utc(2026, 10, 24, 23, 59), U, false, utc(2026, 10, 25, 0, 0), 0},
        {utc(2026, 10, 25, 0, 30), U, true, 0, utc(2026, 10, 25, 2, 0)},
        {utc(2026, 10, 25, 1, 0), U, true, 0, utc(2026, 10, 25, 2, 0)},
        {utc(2026, 10, 25, 2, 0), U, false, utc(2026, 11, 1, 1, 0), 0},
        {utc(2040, 3, 25, 0, 0), U, false, utc(2040, 4, 1, 0, 0), 0},
        {utc(2040, 10, 28, 0, 30), U, true, 0, utc(2040, 10, 28, 2, 0)},
        {utc(2040, 10, 28, 1, 30), U, true, 0, utc(2040, 10, 28, 2, 0)},
    };
    const struct schedule_window inside[] = {{SUN, 2 * 60 + 15, 2 * 60 + 45}};
    const struct at_case inside_cases[] = {
        {utc(2026, 3, 28, 12, 0), U, false, utc(2026, 4, 5, 0, 15), 0},
        {utc(2026, 10, 25, 0, 35), U, true, 0, utc(2026, 10, 25, 0, 45)},
        {utc(2026, 10, 25, 0, 50), U, false, utc(2026, 10, 25, 1, 15), 0},
        {utc(2026, 10, 25, 1, 15), U, true, 0, utc(2026, 10, 25, 1, 45)},
        {utc(2040, 3, 24, 12, 0), U, false, utc(2040, 4, 1, 0, 15), 0},
    };
    /* Daily 01:00-05:00 lasts 3 hours on the spring day, 5 in the autumn. */
    const struct schedule_window night[] = {{ALL, 60, 5 * 60}};
    const struct at_case night_cases[] = {
        {utc(2026, 3, 28, 23, 0), U, false, utc(2026, 3, 29, 0, 0), 0},
        {utc(2026, 3, 29, 0, 30), U, true, 0, utc(2026, 3, 29, 3, 0)},
        {utc(2026, 10, 24, 22, 0), U, false, utc(2026, 10, 24, 23, 0), 0},
        {utc(2026, 10, 24, 23, 0), U, true, 0, utc(2026, 10, 25, 4, 0)},
        {utc(2040, 3, 25, 0, 30), U, true, 0, utc(2040, 3, 25, 3, 0)},
        {utc(2040, 10, 27, 23, 0), U, true, 0, utc(2040, 10, 28, 4, 0)},
    };
    struct schedule *s;

    (void)state;
    s = mk("Europe/Berlin", skipped, 1);
    check_cases(s, skipped_cases, sizeof(skipped_cases) / sizeof(skipped_cases[0]));
    assert_int_equal(schedule_utc_offset(s, utc(2040, 7, 1, 0, 0)), 7200);
    assert_int_equal(schedule_utc_offset(s, utc(2040, 12, 1, 0, 0)), 3600);
    schedule_free(s);
    s = mk("Europe/Berlin", inside, 1);
    check_cases(s, inside_cases, sizeof(inside_cases) / sizeof(inside_cases[0]));
    schedule_free(s);
    s = mk("Europe/Berlin", night, 1);
    check_cases(s, night_cases, sizeof(night_cases) / sizeof(night_cases[0]));
    schedule_free(s);
}

static void
test_dst_new_york(void **state)
{
    const uint64_t U = SCHEDULE_SIZE_UNKNOWN;
    /* 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT ->
     * 01:00 EST (06:00 UTC). 2040: 03-11 and 11-04 by the footer rule. */
    const struct schedule_window skipped[] = {{SUN, 2 * 60, 3 * 60}};
    const struct at_case skipped_cases[] = {
        {utc(2026, 3, 8, 5, 0), U, false, utc(2026, 3, 15, 6, 0), 0},
        {utc(2040, 3, 11, 5, 0), U, false, utc(2040, 3, 18, 6, 0), 0},
    };
    const struct schedule_window repeated[] = {{SUN, 60, 2 * 60}};
    const struct at_case repeated_cases[] = {
        {utc(2026, 11, 1, 4, 0), U, false, utc(2026, 11, 1, 5, 0), 0},
        {utc(2026, 11, 1, 5, 30), U, true, 0, utc(2026, 11, 1, 7, 0)},
        {utc(2026, 11, 1, 6, 30), U, true, 0, utc(2026, 11, 1, 7, 0)},
        {utc(2040, 11, 4, 5, 30), U, true, 0, utc(2040, 11, 4, 7, 0)},
    };
    const struct schedule_window half[] = {{SUN, 90, 105}};
    const struct at_case half_cases[] = {
        {utc(2026, 11, 1, 5, 40), U, true, 0, utc(2026, 11, 1, 5, 45)},
        {utc(2026, 11, 1, 5, 50), U, false, utc(2026, 11, 1, 6, 30), 0},
    };
    const struct schedule_window night[] = {{ALL, 60, 5 * 60}};
    const struct at_case night_cases[] = {
        {utc(2026, 3, 8, 5, 0), U, false, utc(2026, 3, 8, 6, 0), 0},
        {utc(2026, 3, 8, 6, 30), U, true, 0, utc(2026, 3, 8, 9, 0)},
        {utc(2026, 11, 1, 5, 0), U, true, 0, utc(2026, 11, 1, 10, 0)},
        {utc(2040, 3, 11, 6, 30), U, true, 0, utc(2040, 3, 11, 9, 0)},
    };
    struct schedule *s;

    (void)state;
    s = mk("America/New_York", skipped, 1);
    check_cases(s, skipped_cases, sizeof(skipped_cases) / sizeof(skipped_cases[0]));
    schedule_free(s);
    s = mk("America/New_York", repeated, 1);
    check_cases(s, repeated_cases, sizeof(repeated_cases) / sizeof(repeated_cases[0]));
    schedule_free(s);
    s = mk("America/New_York", half, 1);
    check_cases(s, half_cases, sizeof(half_cases) / sizeof(half_cases[0]));
    schedule_free(s);
    s = mk("America/New_York", night, 1);
    check_cases(s, night_cases, sizeof(night_cases) / sizeof(night_cases[0]));
    schedule_free(s);
}

/* next_open/next_close agree with a minute-by-minute walk of is_open around
 * the DST days (both zones change offset on whole minutes). */
static int64_t
walk_minutes(const struct schedule *s, int64_t t, bool want)
{
    for (int64_t u = t; u < t + 9 * 86400; u += 60)
        if (schedule_is_open(s, u, SCHEDULE_SIZE_UNKNOWN) == want)
            return u;
    return SCHEDULE_NEVER;
}

static void
test_against_walk(void **state)
{
    static const char *const zones[] = {"Europe/Berlin", "America/New_York"};
    const struct schedule_window w[] = {
        {MON_FRI, 22 * 60, 6 * 60}, {SUN, 2 * 60 + 15, 2 * 60 + 45}, {SAT_SUN, 90, 150}};
    const int64_t days[] = {utc(2026, 3, 29, 0, 0), utc(2026, 10, 25, 0, 0),
                            utc(2026, 3, 8, 0, 0),  utc(2026, 11, 1, 0, 0),
                            utc(2040, 3, 25, 0, 0), utc(2040, 11, 4, 0, 0)};

    (void)state;
    for (size_t z = 0; z < 2; z++) {
        struct schedule *s = mk(zones[z], w, 3);
        for (size_t d = 0; d < sizeof(days) / sizeof(days[0]); d++) {
            for (int64_t t = days[d] - 86400; t < days[d] + 86400; t += 37 * 60) {
                int64_t o = schedule_next_open(s, t, SCHEDULE_SIZE_UNKNOWN);
                int64_t c = schedule_next_close(s, t, SCHEDULE_SIZE_UNKNOWN);
                if (o != walk_minutes(s, t, true) || c != walk_minutes(s, t, false))
                    fail_msg("%s t=%lld: next_open %lld next_close %lld", zones[z], (long long)t,
                             (long long)o, (long long)c);
            }
        }
        schedule_free(s);
    }
}

/* ---- bad input --------------------------------------------------------- */

static void
test_bad_input(void **state)
{
    static const char *const bad_tz[] = {"../etc/passwd", "Nope/Nowhere", "/UTC", "", NULL};
    const struct schedule_window bad_w[][1] = {
        {{MON, 1440, 60}}, {{MON, -1, 60}}, {{MON, 60, 1441}}, {{MON, 60, -5}}, {{0x80, 0, 60}}};
    struct schedule_window ok = {MON, 0, 60};
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad_tz) / sizeof(bad_tz[0]); i++) {
        err[0] = '\0';
        assert_null(schedule_new(bad_tz[i], &ok, 1, NULL, 0, 0, err, sizeof(err)));
        assert_true(strlen(err) > 0);
    }
    for (size_t i = 0; i < sizeof(bad_w) / sizeof(bad_w[0]); i++) {
        err[0] = '\0';
        assert_null(schedule_new("UTC", bad_w[i], 1, NULL, 0, 0, err, sizeof(err)));
        assert_true(strlen(err) > 0);
        assert_null(schedule_new("UTC", &ok, 1, bad_w[i], 1, 10, err, sizeof(err)));
    }
    assert_null(schedule_new("UTC", NULL, 1, NULL, 0, 0, err, sizeof(err)));
    assert_null(schedule_new("Nope/Nowhere", &ok, 1, NULL, 0, 0, NULL, 0));
}

/* A truncated Europe/Berlin under $TZDIR: schedule_new says why. */
static void
test_corrupt_tzif(void **state)
{
    char dir[] = "/tmp/bh_sched_XXXXXX", sub[64], path[96], err[256];
    unsigned char data[4096];
    struct schedule_window ok = {MON, 0, 60};
    const char *old = getenv("TZDIR");
    char *saved = old != NULL ? xstrdup(old) : NULL;
    FILE *f = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");

    (void)state;
    assert_non_null(f);
    size_t len = fread(data, 1, sizeof(data), f);
    fclose(f);
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/Europe", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/Berlin", sub);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len - 100, f), len - 100);
    fclose(f);

    assert_int_equal(setenv("TZDIR", dir, 1), 0);
    struct schedule *s = schedule_new("Europe/Berlin", &ok, 1, NULL, 0, 0, err, sizeof(err));
    struct schedule *u = schedule_new("UTC", &ok, 1, NULL, 0, 0, err + 128, 128);
    if (saved != NULL)
        setenv("TZDIR", saved, 1);
    else
        unsetenv("TZDIR");
    free(saved);
    unlink(path);
    rmdir(sub);
    rmdir(dir);

    assert_null(s);
    assert_non_null(strstr(err, "Europe/Berlin"));
    assert_non_null(u); /* UTC is built in */
    schedule_free(u);
}

/* Instants at the ends of int64_t are answered without overflow. */
static void
test_extremes(void **state)
{
    struct schedule *s = mk("Europe/Berlin", spec_windows, 2);
    const uint64_t U = SCHEDULE_SIZE_UNKNOWN;

    (void)state;
    (void)schedule_is_open(s, INT64_MAX, U);
    (void)schedule_is_open(s, INT64_MIN, U);
    assert_int_equal(schedule_next_open(s, INT64_MAX, U), INT64_MAX);
    assert_true(schedule_next_open(s, INT64_MIN, U) >= INT64_MIN);
    assert_true(schedule_next_close(s, INT64_MIN, U) >= INT64_MIN);
    assert_true(schedule_next_close(s, INT64_MAX - 1, U) >= INT64_MAX - 1);
    (void)schedule_utc_offset(s, INT64_MIN);
    schedule_free(s);
}

static void
test_describe(void **state)
{
    static const struct {
        struct schedule_window w;
        const char *want;
    } cases[] = {
        {{0x63, 23 * 60, 60}, "UTC fri-mon 23:00-01:00"},
        {{0x0a, 0, 1440}, "UTC mon,wed 00:00-24:00"},
        {{0x0b, 60, 120}, "UTC wed,sun,mon 01:00-02:00"},
        {{ALL, 0, 1440}, "UTC mon-sun 00:00-24:00"},
        {{0x1c, 9 * 60 + 5, 17 * 60 + 30}, "UTC tue-thu 09:05-17:30"},
        {{0x55, 0, 60}, "UTC tue,thu,sat,sun 00:00-01:00"},
        {{0, 0, 60}, "UTC none 00:00-01:00"},
    };
    char buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct schedule *s = mk("UTC", &cases[i].w, 1);
        schedule_describe(s, buf, sizeof(buf));
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("case %zu: \"%s\", want \"%s\"", i, buf, cases[i].want);
        schedule_free(s);
    }
    struct schedule *s = mk("UTC", spec_windows, 2);
    schedule_describe(s, buf, 8);
    assert_string_equal(buf, "UTC mon");
    schedule_describe(s, buf, 1);
    assert_string_equal(buf, "");
    schedule_describe(s, NULL, 0);
    schedule_free(s);
    s = mk("UTC", NULL, 0);
    schedule_describe(s, buf, sizeof(buf));
    assert_string_equal(buf, "UTC (no windows)");
    schedule_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_days),   cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_spec_example), cmocka_unit_test(test_windows),
        cmocka_unit_test(test_oversized),    cmocka_unit_test(test_dst_berlin),
        cmocka_unit_test(test_dst_new_york), cmocka_unit_test(test_against_walk),
        cmocka_unit_test(test_bad_input),    cmocka_unit_test(test_corrupt_tzif),
        cmocka_unit_test(test_extremes),     cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
