/* Unit tests for connectors/tz: zone names, offsets and transitions from the
 * system's TZif files and from footer rules alone, and hostile files (every
 * truncation of a real file, broken counts, a truncated zone under $TZDIR). */
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

#include "connectors/tz.h"
#include "connectors/util.h"

#define H 3600L

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

/* ---- names ------------------------------------------------------------- */

static void
test_names(void **state)
{
    static const struct {
        const char *name;
        bool ok;
    } cases[] = {
        {"UTC", true},
        {"Europe/Berlin", true},
        {"America/Argentina/Buenos_Aires", true},
        {"Etc/GMT+5", true},
        {"Etc/GMT-14", true},
        {"", false},
        {"/etc/passwd", false},
        {"../etc/passwd", false},
        {"Europe/../UTC", false},
        {"Europe/./Berlin", false},
        {"Europe//Berlin", false},
        {"Europe/", false},
        {"Europe/Berlin ", false},
        {"Europe\\Berlin", false},
        {"Europe/Ber\nlin", false},
        {"Asia/Ho.Chi", false},
    };
    char longname[TZ_NAME_MAX + 2];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(tz_name_valid(cases[i].name), cases[i].ok);
    assert_false(tz_name_valid(NULL));
    memset(longname, 'a', sizeof(longname) - 1);
    longname[TZ_NAME_MAX] = '\0';
    assert_true(tz_name_valid(longname));
    longname[TZ_NAME_MAX] = 'a';
    longname[TZ_NAME_MAX + 1] = '\0';
    assert_false(tz_name_valid(longname));
}

static void
test_load_bad_names(void **state)
{
    static const char *const bad[] = {
        "../etc/passwd", "/etc/passwd", "Nope/Nowhere", "Europe", "", NULL};
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_null(tz_load(bad[i], err, sizeof(err)));
        assert_true(strlen(err) > 0);
    }
    assert_null(tz_load("Nope/Nowhere", err, sizeof(err)));
    assert_non_null(strstr(err, "no zone file"));
    assert_non_null(strstr(err, "/Nope/Nowhere"));
    assert_null(tz_load("../etc/passwd", err, sizeof(err)));
    assert_non_null(strstr(err, "invalid timezone name"));
    assert_null(tz_load("../etc/passwd", NULL, 0)); /* no error buffer: still fine */
}

/* ---- offsets from the system zones ------------------------------------- */

struct off_case {
    const char *zone;
    int64_t t;
    long off;
};

static void
test_offsets(void **state)
{
    const struct off_case cases[] = {
        {"UTC", 0, 0},
        {"UTC", utc(2040, 7, 1, 0, 0), 0},
        /* Berlin, 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00 UTC. */
        {"Europe/Berlin", utc(2026, 3, 29, 0, 59) + 59, 1 * H},
        {"Europe/Berlin", utc(2026, 3, 29, 1, 0), 2 * H},
        /* 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC. */
        {"Europe/Berlin", utc(2026, 10, 25, 0, 59) + 59, 2 * H},
        {"Europe/Berlin", utc(2026, 10, 25, 1, 0), 1 * H},
        /* 2040 lies past the table of the files: the footer rule answers. */
        {"Europe/Berlin", utc(2040, 3, 25, 0, 59) + 59, 1 * H},
        {"Europe/Berlin", utc(2040, 3, 25, 1, 0), 2 * H},
        {"Europe/Berlin", utc(2040, 10, 28, 0, 59), 2 * H},
        {"Europe/Berlin", utc(2040, 10, 28, 1, 0), 1 * H},
        {"Europe/Berlin", utc(2300, 1, 1, 0, 0), 1 * H},
        /* New York, 2026-03-08 02:00 EST and 2026-11-01 02:00 EDT. */
        {"America/New_York", utc(2026, 3, 8, 6, 59), -5 * H},
        {"America/New_York", utc(2026, 3, 8, 7, 0), -4 * H},
        {"America/New_York", utc(2026, 11, 1, 5, 59), -4 * H},
        {"America/New_York", utc(2026, 11, 1, 6, 0), -5 * H},
        {"America/New_York", utc(2040, 3, 11, 7, 0), -4 * H},
        {"America/New_York", utc(2040, 11, 4, 5, 59), -4 * H},
        {"America/New_York", utc(2040, 11, 4, 6, 0), -5 * H},
        /* History before the table's first transition: local mean time. */
        {"Europe/Berlin", utc(1800, 1, 1, 0, 0), 3208},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tz *z = tz_load(cases[i].zone, err, sizeof(err));
        assert_non_null(z);
        if (tz_offset(z, cases[i].t) != cases[i].off)
            fail_msg("case %zu: %s at %lld: %ld, want %ld", i, cases[i].zone, (long long)cases[i].t,
                     tz_offset(z, cases[i].t), cases[i].off);
        tz_free(z);
    }
}

static void
test_transitions(void **state)
{
    char err[256];
    struct tz *b = tz_load("Europe/Berlin", err, sizeof(err));
    struct tz *n = tz_load("America/New_York", err, sizeof(err));
    struct tz *u = tz_load("UTC", err, sizeof(err));

    (void)state;
    assert_non_null(b);
    assert_non_null(n);
    assert_non_null(u);
    assert_int_equal(tz_next_transition(b, utc(2026, 1, 1, 0, 0)), utc(2026, 3, 29, 1, 0));
    assert_int_equal(tz_next_transition(b, utc(2026, 3, 29, 1, 0)), utc(2026, 10, 25, 1, 0));
    assert_int_equal(tz_next_transition(b, utc(2040, 1, 1, 0, 0)), utc(2040, 3, 25, 1, 0));
    assert_int_equal(tz_next_transition(b, utc(2040, 3, 25, 1, 0)), utc(2040, 10, 28, 1, 0));
    assert_int_equal(tz_next_transition(n, utc(2026, 3, 1, 0, 0)), utc(2026, 3, 8, 7, 0));
    assert_int_equal(tz_next_transition(n, utc(2026, 3, 8, 7, 0)), utc(2026, 11, 1, 6, 0));
    assert_int_equal(tz_next_transition(n, utc(2040, 6, 1, 0, 0)), utc(2040, 11, 4, 6, 0));
    assert_int_equal(tz_next_transition(u, 0), INT64_MAX);
    /* Extremes are clamped, never overflow. */
    assert_int_equal(tz_next_transition(b, INT64_MAX), INT64_MAX);
    assert_in_range(tz_offset(b, INT64_MAX), 1 * H, 2 * H); /* the rule, clamped */
    assert_true(tz_next_transition(b, INT64_MIN) > INT64_MIN);
    assert_int_equal(tz_offset(b, INT64_MIN), 3208);
    tz_free(b);
    tz_free(n);
    tz_free(u);
    tz_free(NULL);
}

/* ---- footer rules alone ------------------------------------------------ */

struct rule_case {
    const char *rule;
    int64_t t;
    long off;
};

static void
test_rules(void **state)
{
    const struct rule_case cases[] = {
        {"UTC0", utc(2026, 7, 1, 0, 0), 0},
        {"<-03>3", utc(2026, 7, 1, 0, 0), -3 * H},
        {"<+0530>-5:30", utc(2026, 7, 1, 0, 0), 5 * H + 1800},
        {"CET-1CEST,M3.5.0,M10.5.0/3", utc(2026, 3, 29, 0, 59), 1 * H},
        {"CET-1CEST,M3.5.0,M10.5.0/3", utc(2026, 3, 29, 1, 0), 2 * H},
        {"CET-1CEST,M3.5.0,M10.5.0/3", utc(2026, 10, 25, 0, 59), 2 * H},
        {"CET-1CEST,M3.5.0,M10.5.0/3", utc(2026, 10, 25, 1, 0), 1 * H},
        {"EST5EDT,M3.2.0,M11.1.0", utc(2026, 3, 8, 6, 59), -5 * H},
        {"EST5EDT,M3.2.0,M11.1.0", utc(2026, 3, 8, 7, 0), -4 * H},
        {"EST5EDT,M3.2.0,M11.1.0", utc(2026, 11, 1, 5, 59), -4 * H},
        {"EST5EDT,M3.2.0,M11.1.0", utc(2026, 11, 1, 6, 0), -5 * H},
        /* No rule after the names: glibc's US default. */
        {"EST5EDT", utc(2026, 3, 8, 7, 0), -4 * H},
        /* Southern hemisphere, half-hour DST (Lord Howe): DST spans the new year. */
        {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", utc(2026, 1, 15, 0, 0), 11 * H},
        {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", utc(2026, 6, 15, 0, 0), 10 * H + 1800},
        {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", utc(2026, 12, 31, 23, 0), 11 * H},
        /* Negative transition times (America/Nuuk): -1 is 23:00 the day before. */
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", utc(2026, 3, 29, 0, 59), -2 * H},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", utc(2026, 3, 29, 1, 0), -1 * H},
        /* Julian days: J60 is March 1 in any year; zero-based 59 is Feb 29 in
         * a leap year. Local midnight at UTC+1 is 23:00 UTC the day before. */
        {"AAA-1BBB,J60/0,J300/0", utc(2028, 2, 29, 12, 0), 1 * H},
        {"AAA-1BBB,J60/0,J300/0", utc(2028, 3, 1, 0, 0), 2 * H},
        {"AAA-1BBB,59/0,300/0", utc(2028, 2, 28, 22, 0), 1 * H},
        {"AAA-1BBB,59/0,300/0", utc(2028, 2, 29, 12, 0), 2 * H},
        {"AAA-1BBB,59/0,300/0", utc(2027, 2, 28, 23, 0), 2 * H},
        /* Permanent DST written the RFC 9636 way. */
        {"EST5EDT,0/0,J365/25", utc(2026, 1, 1, 4, 0), -4 * H},
        {"EST5EDT,0/0,J365/25", utc(2026, 12, 31, 23, 59), -4 * H},
        {"EST5EDT,0/0,J365/25", utc(2027, 1, 1, 5, 0), -4 * H},
        /* Week 5 is the last such weekday: February 2026 has four Sundays
         * (the 22nd is the last), October 2026 five Saturdays (the 31st). */
        {"AAA0BBB,M2.5.0,M10.5.6", utc(2026, 2, 22, 1, 59), 0},
        {"AAA0BBB,M2.5.0,M10.5.6", utc(2026, 2, 22, 2, 0), 1 * H},
        {"AAA0BBB,M2.5.0,M10.5.6", utc(2026, 10, 31, 0, 59), 1 * H},
        {"AAA0BBB,M2.5.0,M10.5.6", utc(2026, 10, 31, 1, 0), 0},
    };
    char err[128];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tz *z = tz_from_rule(cases[i].rule, err, sizeof(err));
        if (z == NULL)
            fail_msg("case %zu: %s: %s", i, cases[i].rule, err);
        if (tz_offset(z, cases[i].t) != cases[i].off)
            fail_msg("case %zu: %s: %ld, want %ld", i, cases[i].rule, tz_offset(z, cases[i].t),
                     cases[i].off);
        tz_free(z);
    }
}

static void
test_bad_rules(void **state)
{
    static const char *const bad[] = {
        "",
        "CET",
        "CE-1",
        "<CET-1",
        "CET-25",
        "CET-1:60",
        "CET-1 ",
        "CET-1CEST,M13.1.0,M10.5.0",
        "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0",
        "CET-1CEST,M3.5.0",
        "CET-1CEST,M3.5.0,",
        "CET-1CEST,M3.5.0,M10.5.0/168",
        "CET-1CEST,M3.5.0,M10.5.0/3x",
        "CET-1CEST,J0,J365",
        "CET-1CEST,366,J365",
        "CET-1CEST,M3.5.0,M10.5.0,M11.1.0",
        "CET-1CEST,M3.5",
        "CET-1CEST,M03.5.0.1,M10.5.0",
        "CET-1CEST-2:00:60,M3.5.0,M10.5.0",
        "CET-99999999999999999999",
    };
    char err[128];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        struct tz *z = tz_from_rule(bad[i], err, sizeof(err));
        if (z != NULL) {
            tz_free(z);
            fail_msg("case %zu: \"%s\" accepted", i, bad[i]);
        }
        assert_true(strlen(err) > 0);
    }
    assert_null(tz_from_rule(NULL, err, sizeof(err)));
}

/* ---- TZif files built here --------------------------------------------- */

static size_t
put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
    return 4;
}

static size_t
put_header(unsigned char *p, char version, uint32_t timecnt, uint32_t typecnt, uint32_t charcnt)
{
    memset(p, 0, 44);
    memcpy(p, "TZif", 4);
    p[4] = (unsigned char)version;
    put32(p + 32, timecnt);
    put32(p + 36, typecnt);
    put32(p + 40, charcnt);
    return 44;
}

/* A version 2 file: an empty v1 block, then n transitions to types[idx[i]]
 * (offsets in seconds), designations "AAA\0", and the footer. */
static size_t
build_tzif(unsigned char *buf, const int64_t *times, const unsigned char *idx, size_t n,
           const long *types, size_t ntypes, const char *footer)
{
    size_t pos = put_header(buf, '2', 0, 0, 0);

    pos += put_header(buf + pos, '2', (uint32_t)n, (uint32_t)ntypes, 4);
    for (size_t i = 0; i < n; i++) {
        pos += put32(buf + pos, (uint32_t)((uint64_t)times[i] >> 32));
        pos += put32(buf + pos, (uint32_t)times[i]);
    }
    for (size_t i = 0; i < n; i++)
        buf[pos++] = idx[i];
    for (size_t i = 0; i < ntypes; i++) {
        pos += put32(buf + pos, (uint32_t)types[i]);
        buf[pos++] = 0;
        buf[pos++] = 0;
    }
    memcpy(buf + pos, "AAA", 4);
    pos += 4;
    pos += (size_t)sprintf((char *)buf + pos, "\n%s\n", footer);
    return pos;
}

static void
test_tzif_built(void **state)
{
    unsigned char buf[512];
    char err[128];
    const long types[] = {3600, 7200, -18000};
    const int64_t times[] = {utc(2000, 1, 1, 0, 0), utc(2001, 1, 1, 0, 0)};
    const unsigned char idx[] = {1, 2};

    (void)state;
    /* A "slim" file: no transitions at all, the footer rule does everything. */
    size_t len = build_tzif(buf, NULL, NULL, 0, types, 1, "CET-1CEST,M3.5.0,M10.5.0/3");
    struct tz *z = tz_parse(buf, len, err, sizeof(err));
    assert_non_null(z);
    assert_int_equal(tz_offset(z, utc(2026, 3, 29, 0, 59)), 3600);
    assert_int_equal(tz_offset(z, utc(2026, 3, 29, 1, 0)), 7200);
    assert_int_equal(tz_next_transition(z, utc(2026, 5, 1, 0, 0)), utc(2026, 10, 25, 1, 0));
    tz_free(z);

    /* Two transitions, an empty footer: the last type holds forever. */
    len = build_tzif(buf, times, idx, 2, types, 3, "");
    z = tz_parse(buf, len, err, sizeof(err));
    assert_non_null(z);
    assert_int_equal(tz_offset(z, utc(1999, 1, 1, 0, 0)), 3600);
    assert_int_equal(tz_offset(z, utc(2000, 6, 1, 0, 0)), 7200);
    assert_int_equal(tz_offset(z, utc(2040, 6, 1, 0, 0)), -18000);
    assert_int_equal(tz_next_transition(z, utc(1999, 1, 1, 0, 0)), times[0]);
    assert_int_equal(tz_next_transition(z, times[0]), times[1]);
    assert_int_equal(tz_next_transition(z, times[1]), INT64_MAX);
    tz_free(z);
}

/* Each mutation of a good file must be refused with a reason. */
static void
test_tzif_corrupt(void **state)
{
    unsigned char good[512], buf[512];
    char err[128];
    const long types[] = {3600, 7200};
    const int64_t times[] = {1000, 2000};
    const unsigned char idx[] = {1, 0};
    size_t len = build_tzif(good, times, idx, 2, types, 2, "CET-1");
    size_t v2 = 44 + 44; /* the v2 data block starts here */

    (void)state;
    struct tz *z = tz_parse(good, len, err, sizeof(err));
    assert_non_null(z);
    tz_free(z);
#define MUTATE(stmt, want)                                                                         \
    do {                                                                                           \
        size_t l = len;                                                                            \
        memcpy(buf, good, len);                                                                    \
        stmt;                                                                                      \
        assert_null(tz_parse(buf, l, err, sizeof(err)));                                           \
        if (strstr(err, want) == NULL)                                                             \
            fail_msg("%s: got \"%s\"", #stmt, err);                                                \
    } while (0)
    MUTATE(buf[0] = 'X', "not a TZif");
    MUTATE(buf[4] = 0, "version 1");
    MUTATE(buf[44 + 4] = '1', "second header");
    MUTATE(put32(buf + 32, 0xffffffffu), "truncated");      /* v1 timecnt */
    MUTATE(put32(buf + 44 + 32, 0xffffffffu), "truncated"); /* v2 timecnt */
    MUTATE(put32(buf + 44 + 36, 0), "time types");          /* typecnt 0 */
    MUTATE(put32(buf + 44 + 36, 300), "time types");        /* typecnt > 256 */
    MUTATE(put32(buf + 44 + 40, 0), "designations");        /* charcnt 0 */
    MUTATE(put32(buf + 44 + 28, 1), "leap-second");         /* leapcnt */
    MUTATE(put32(buf + 44 + 24, 1), "indicator");           /* isstdcnt != typecnt */
    MUTATE(buf[v2 + 8 + 6] = 0, "ascending");               /* times[1] = 208 */
    MUTATE(buf[v2 + 16] = 2, "type index");                 /* idx[0] == typecnt */
    MUTATE(put32(buf + v2 + 18, 0x80000000u), "offset");    /* utoff INT32_MIN */
    MUTATE(put32(buf + v2 + 18, 200000), "offset");         /* utoff > 26h */
    MUTATE(buf[v2 + 18 + 4] = 2, "local time type");        /* isdst 2 */
    MUTATE(buf[v2 + 18 + 5] = 4, "local time type");        /* desigidx >= charcnt */
    MUTATE(buf[len - 4] = '\n', "TZ rule");                 /* footer "CE" */
    MUTATE(buf[len - 2] = 1, "footer");                     /* control character */
    /* cppcheck-suppress redundantInitialization ; the macro's l = len is the default */
    MUTATE(l = len - 1, "footer");                          /* unterminated */
    MUTATE(buf[v2 + 34] = 'x', "footer");                   /* no leading newline */
#undef MUTATE
    assert_null(tz_parse(NULL, 0, err, sizeof(err)));
}

static unsigned char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = xmalloc(1 << 16);

    assert_non_null(f);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* Every proper prefix of a real file is an error, never an over-read. */
static void
test_tzif_truncations(void **state)
{
    size_t len;
    unsigned char *file = slurp("/usr/share/zoneinfo/America/New_York", &len);
    char err[128];

    (void)state;
    for (size_t n = 0; n < len; n++) {
        /* A private copy of exactly n bytes, so ASan sees any over-read. */
        unsigned char *p = xmalloc(n);
        memcpy(p, file, n);
        struct tz *z = tz_parse(p, n, err, sizeof(err));
        free(p);
        if (z != NULL) {
            tz_free(z);
            fail_msg("prefix of %zu bytes accepted", n);
        }
    }
    struct tz *z = tz_parse(file, len, err, sizeof(err));
    assert_non_null(z);
    tz_free(z);
    free(file);
}

/* A truncated copy of a zone under $TZDIR: tz_load reports it, and "UTC"
 * needs no file at all. */
static void
test_tzdir(void **state)
{
    char dir[] = "/tmp/bh_tz_XXXXXX", sub[64], path[96], err[256];
    size_t len;
    unsigned char *file = slurp("/usr/share/zoneinfo/Europe/Berlin", &len);
    const char *old = getenv("TZDIR");
    char *saved = old != NULL ? xstrdup(old) : NULL;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/Europe", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/Berlin", sub);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(file, 1, len / 2, f), len / 2);
    fclose(f);
    assert_int_equal(setenv("TZDIR", dir, 1), 0);

    assert_null(tz_load("Europe/Berlin", err, sizeof(err)));
    assert_non_null(strstr(err, "Europe/Berlin"));
    assert_non_null(strstr(err, "truncated"));
    assert_null(tz_load("America/New_York", err, sizeof(err)));
    assert_non_null(strstr(err, "no zone file"));
    struct tz *z = tz_load("UTC", err, sizeof(err));
    assert_non_null(z);
    assert_int_equal(tz_offset(z, utc(2026, 7, 1, 0, 0)), 0);
    tz_free(z);

    /* The whole file under the same name loads. */
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(file, 1, len, f), len);
    fclose(f);
    z = tz_load("Europe/Berlin", err, sizeof(err));
    assert_non_null(z);
    assert_int_equal(tz_offset(z, utc(2026, 7, 1, 0, 0)), 2 * H);
    tz_free(z);

    if (saved != NULL)
        setenv("TZDIR", saved, 1);
    else
        unsetenv("TZDIR");
    free(saved);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
    free(file);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_load_bad_names),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_transitions),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_bad_rules),
        cmocka_unit_test(test_tzif_built),
        cmocka_unit_test(test_tzif_corrupt),
        cmocka_unit_test(test_tzif_truncations),
        cmocka_unit_test(test_tzdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
