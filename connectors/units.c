#include "connectors/units.h"

#include <stdio.h>
#include <string.h>

#include "connectors/util.h"

struct unit {
    const char *suffix;
    uint64_t mult;
};

static const struct unit size_units[] = {
    {"", 1},
    {"B", 1},
    {"KiB", 1024ull},
    {"KB", 1024ull},
    {"MiB", 1024ull * 1024},
    {"MB", 1024ull * 1024},
    {"GiB", 1024ull * 1024 * 1024},
    {"GB", 1024ull * 1024 * 1024},
};

static const struct unit duration_units[] = {
    {"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400},
};

/* Parse the leading [0-9]+ of s; *end points past the digits. */
static int
parse_digits(const char *s, uint64_t *v, const char **end)
{
    uint64_t n = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return BH_EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return BH_ERANGE;
        n = n * 10 + d;
    }
    *v = n;
    *end = p;
    return 0;
}

static int
parse_with_units(const char *s, const struct unit *units, size_t nunits, uint64_t *out)
{
    uint64_t n;
    const char *end;
    int rc = parse_digits(s, &n, &end);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (n > UINT64_MAX / units[i].mult)
            return BH_ERANGE;
        *out = n * units[i].mult;
        return 0;
    }
    return BH_EINVAL;
}

int
units_parse_size(const char *s, uint64_t *bytes)
{
    return parse_with_units(s, size_units, sizeof size_units / sizeof size_units[0], bytes);
}

int
units_parse_duration(const char *s, uint64_t *seconds)
{
    return parse_with_units(s, duration_units, sizeof duration_units / sizeof duration_units[0],
                            seconds);
}

int
units_parse_uint(const char *s, uint64_t *v)
{
    const char *end;
    int rc = parse_digits(s, v, &end);
    if (rc == 0 && *end != '\0')
        return BH_EINVAL;
    return rc;
}

char *
units_format_size(uint64_t bytes, char *buf, unsigned len)
{
    static const char *names[] = {"", "KiB", "MiB", "GiB"};
    unsigned i = 0;
    while (i < 3 && bytes != 0 && bytes % 1024 == 0) {
        bytes /= 1024;
        i++;
    }
    snprintf(buf, len, "%llu%s", (unsigned long long)bytes, names[i]);
    return buf;
}

char *
units_format_duration(uint64_t seconds, char *buf, unsigned len)
{
    if (seconds != 0 && seconds % 86400 == 0)
        snprintf(buf, len, "%llud", (unsigned long long)(seconds / 86400));
    else if (seconds != 0 && seconds % 3600 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(seconds / 3600));
    else if (seconds != 0 && seconds % 60 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(seconds / 60));
    else
        snprintf(buf, len, "%llus", (unsigned long long)seconds);
    return buf;
}
