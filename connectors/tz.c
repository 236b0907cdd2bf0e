#include "connectors/tz.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/util.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
/* Real TZif files are a few KiB; anything this big is not one. */
#define TZ_FILE_MAX (1024 * 1024)
#define TZ_FOOTER_MAX 255
#define TZ_HDR_LEN 44
/* RFC 9636 bounds UT offsets to -89999..93599; every real one is within a
 * day, and this keeps the arithmetic far from overflow. */
#define TZ_OFF_MAX (26L * 3600)
#define DAY 86400LL

/* One date of a POSIX TZ rule: Jn (1..365, Feb 29 never counted), n
 * (0..365, zero-based, Feb 29 counted) or Mm.w.d (weekday d of week w of
 * month m, w = 5 meaning the last). */
struct tz_date {
    char kind; /* 'J', 'N' or 'M' */
    int n, m, w, d;
};

/* A POSIX TZ rule. Offsets are seconds east of UTC; transition times are
 * seconds after local midnight (-167h..167h), in standard time for the
 * start of DST and in daylight time for its end. */
struct tz_rule {
    long std_off;
    long dst_off;
    bool has_dst;
    struct tz_date start, end;
    long start_time, end_time;
};

struct tz {
    int64_t *times; /* transition instants, strictly ascending */
    long *offs;     /* offs[i]: the offset from times[i] on */
    size_t n;
    long off0; /* before the first transition (time type 0) */
    bool has_rule;
    struct tz_rule rule;
};

static void set_err(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* ---- calendar arithmetic (proleptic Gregorian, no overflow for |y| < 1e9) */

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_len(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return len[m - 1] + (m == 2 && is_leap(y));
}

/* Days since 1970-01-01 of y-m-d (H. Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The year that day z (days since the epoch) falls in. */
static int64_t
year_of_days(int64_t z)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10);
}

static int64_t
clamp_time(int64_t t)
{
    return t < TZ_TIME_MIN ? TZ_TIME_MIN : t > TZ_TIME_MAX ? TZ_TIME_MAX : t;
}

/* ---- POSIX TZ rules: parsing */

/* Read 1..maxd decimal digits. */
static bool
parse_num(const char **p, int maxd, long *v)
{
    int nd = 0;

    *v = 0;
    while (**p >= '0' && **p <= '9' && nd < maxd) {
        *v = *v * 10 + (**p - '0');
        (*p)++;
        nd++;
    }
    return nd > 0 && !(**p >= '0' && **p <= '9');
}

/* A zone abbreviation: three or more letters, or <...> of letters, digits,
 * '+' and '-'. Only its syntax matters to us. */
static bool
parse_abbr(const char **p)
{
    const char *s = *p;
    size_t n = 0;

    if (*s == '<') {
        for (s++; (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                  (*s >= '0' && *s <= '9') || *s == '+' || *s == '-';
             s++)
            n++;
        if (*s != '>')
            return false;
        s++;
    } else {
        for (; (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'); s++)
            n++;
    }
    *p = s;
    return n >= 3;
}

/* [+-]h[h[h]][:mm[:ss]] with hours <= maxh, into signed seconds. */
static bool
parse_hms(const char **p, long maxh, long *secs)
{
    long sign = 1, h, m = 0, s = 0;

    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    if (!parse_num(p, 3, &h) || h > maxh)
        return false;
    if (**p == ':') {
        (*p)++;
        if (!parse_num(p, 2, &m) || m > 59)
            return false;
        if (**p == ':') {
            (*p)++;
            if (!parse_num(p, 2, &s) || s > 59)
                return false;
        }
    }
    *secs = sign * (h * 3600 + m * 60 + s);
    return true;
}

static bool
parse_date(const char **p, struct tz_date *d)
{
    long a, b, c;

    memset(d, 0, sizeof(*d));
    if (**p == 'J') {
        (*p)++;
        d->kind = 'J';
        if (!parse_num(p, 3, &a) || a < 1 || a > 365)
            return false;
        d->n = (int)a;
        return true;
    }
    if (**p != 'M') {
        d->kind = 'N';
        if (!parse_num(p, 3, &a) || a > 365)
            return false;
        d->n = (int)a;
        return true;
    }
    (*p)++;
    d->kind = 'M';
    if (!parse_num(p, 2, &a) || a < 1 || a > 12 || *(*p)++ != '.')
        return false;
    if (!parse_num(p, 1, &b) || b < 1 || b > 5 || *(*p)++ != '.')
        return false;
    if (!parse_num(p, 1, &c) || c > 6)
        return false;
    d->m = (int)a, d->w = (int)b, d->d = (int)c;
    return true;
}

/* ",date[/time]" once; the time defaults to 02:00:00. */
static bool
parse_change(const char **p, struct tz_date *d, long *time)
{
    if (*(*p)++ != ',' || !parse_date(p, d))
        return false;
    *time = 7200;
    if (**p == '/') {
        (*p)++;
        return parse_hms(p, 167, time);
    }
    return true;
}

static const char *
parse_rule(const char *s, struct tz_rule *r)
{
    const char *p = s;
    long off;

    memset(r, 0, sizeof(*r));
    if (!parse_abbr(&p) || !parse_hms(&p, 24, &off))
        return "bad standard time in TZ rule";
    r->std_off = -off;
    if (*p == '\0')
        return NULL;
    if (!parse_abbr(&p))
        return "bad daylight time name in TZ rule";
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (!parse_hms(&p, 24, &off))
            return "bad daylight time offset in TZ rule";
        r->dst_off = -off;
    }
    if (*p == '\0')
        p = ",M3.2.0,M11.1.0"; /* POSIX leaves it open; glibc's default */
    if (!parse_change(&p, &r->start, &r->start_time) || !parse_change(&p, &r->end, &r->end_time))
        return "bad DST transition in TZ rule";
    return *p == '\0' ? NULL : "trailing characters in TZ rule";
}

/* ---- POSIX TZ rules: evaluation */

/* Days since the epoch of the local date d in year y. */
static int64_t
rule_day(const struct tz_date *d, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);

    if (d->kind == 'J')
        return jan1 + d->n - 1 + (is_leap(y) && d->n >= 60);
    if (d->kind == 'N')
        return jan1 + d->n;
    int64_t first = days_from_civil(y, d->m, 1);
    int64_t wd = first + 4 - floor_div(first + 4, 7) * 7; /* 0 = Sunday */
    int64_t day = first + (d->d - wd + 7) % 7 + (int64_t)(d->w - 1) * 7;
    while (day >= first + month_len(y, d->m))
        day -= 7;
    return day;
}

/* The UTC instants DST starts and ends in year y. */
static void
rule_year(const struct tz_rule *r, int64_t y, int64_t *start, int64_t *end)
{
    *start = rule_day(&r->start, y) * DAY + r->start_time - r->std_off;
    *end = rule_day(&r->end, y) * DAY + r->end_time - r->dst_off;
}

static int64_t
year_of(int64_t t)
{
    return year_of_days(floor_div(t, DAY));
}

/* The offset is set by the latest change at or before t. Changes move by
 * at most 167h + 26h from their year, so years y-2..y+1 always hold it. A
 * tie (permanent DST written as "J1/0,J365/25") goes to daylight time. */
static long
rule_offset(const struct tz_rule *r, int64_t t)
{
    int64_t y = year_of(t), best = INT64_MIN, s, e;
    bool dst = false;

    if (!r->has_dst)
        return r->std_off;
    for (int64_t k = y - 2; k <= y + 1; k++) {
        rule_year(r, k, &s, &e);
        if (e <= t && e > best)
            best = e, dst = false;
        if (s <= t && s >= best)
            best = s, dst = true;
    }
    return dst ? r->dst_off : r->std_off;
}

static int64_t
rule_next(const struct tz_rule *r, int64_t t)
{
    int64_t y = year_of(t), best = INT64_MAX, s, e;

    if (!r->has_dst)
        return INT64_MAX;
    for (int64_t k = y - 1; k <= y + 2; k++) {
        rule_year(r, k, &s, &e);
        if (s > t && s < best)
            best = s;
        if (e > t && e < best)
            best = e;
    }
    return best;
}

/* ---- TZif files (RFC 9636) */

struct tzif_hdr {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
be64s(const unsigned char *p)
{
    uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
    return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

static long
be32s(const unsigned char *p)
{
    uint32_t u = be32(p);
    return u <= INT32_MAX ? (long)u : -(long)(~u) - 1;
}

/* Read a header at pos; *version is its version byte. */
static const char *
read_header(const unsigned char *buf, size_t len, size_t pos, struct tzif_hdr *h, unsigned *version)
{
    const unsigned char *p = buf + pos;

    if (len - pos < TZ_HDR_LEN)
        return "truncated header";
    if (memcmp(p, "TZif", 4) != 0)
        return "not a TZif file";
    *version = p[4];
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return NULL;
}

/* Size of a data block; the counts are < 2^32, so this cannot overflow. */
static uint64_t
block_size(const struct tzif_hdr *h, unsigned tsize)
{
    return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static const char *
check_counts(const struct tzif_hdr *h)
{
    if (h->typecnt == 0 || h->typecnt > 256)
        return "bad number of time types";
    if (h->charcnt == 0)
        return "no time zone designations";
    if ((h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt))
        return "bad standard/UT indicator count";
    if (h->leapcnt != 0)
        return "leap-second zones (right/...) are not supported";
    return NULL;
}

/* The local time types: 6 bytes each, utoff (int32), isdst, desigidx. */
static const char *
read_types(const unsigned char *p, const struct tzif_hdr *h, long *offs)
{
    for (uint32_t i = 0; i < h->typecnt; i++, p += 6) {
        long off = be32s(p);
        if (off < -TZ_OFF_MAX || off > TZ_OFF_MAX)
            return "UT offset out of range";
        if (p[4] > 1 || p[5] >= h->charcnt)
            return "bad local time type";
        offs[i] = off;
    }
    return NULL;
}

/* The 64-bit data block at p (its size already checked) into z. */
static const char *
read_block(const unsigned char *p, const struct tzif_hdr *h, struct tz *z)
{
    const unsigned char *idx = p + (size_t)h->timecnt * 8;
    long types[256];
    const char *why = read_types(idx + h->timecnt, h, types);

    if (why != NULL)
        return why;
    z->off0 = types[0];
    z->n = h->timecnt;
    z->times = xcalloc(z->n, sizeof(*z->times));
    z->offs = xcalloc(z->n, sizeof(*z->offs));
    for (size_t i = 0; i < z->n; i++) {
        z->times[i] = be64s(p + i * 8);
        if (i > 0 && z->times[i] <= z->times[i - 1])
            return "transition times not ascending";
        if (idx[i] >= h->typecnt)
            return "bad transition type index";
        z->offs[i] = types[idx[i]];
    }
    return NULL;
}

/* "\nRULE\n" at pos; an empty RULE means none. */
static const char *
read_footer(const unsigned char *buf, size_t len, size_t pos, struct tz *z)
{
    char rule[TZ_FOOTER_MAX + 1];
    size_t n = 0;

    if (pos >= len || buf[pos] != '\n')
        return "missing footer";
    for (pos++; pos < len && buf[pos] != '\n'; pos++) {
        if (n == TZ_FOOTER_MAX)
            return "footer too long";
        if (buf[pos] < 0x20 || buf[pos] > 0x7e)
            return "bad character in footer";
        rule[n++] = (char)buf[pos];
    }
    if (pos >= len)
        return "unterminated footer";
    rule[n] = '\0';
    if (n == 0)
        return NULL;
    z->has_rule = true;
    return parse_rule(rule, &z->rule);
}

static const char *
parse_tzif(const unsigned char *buf, size_t len, struct tz *z)
{
    struct tzif_hdr h;
    unsigned version;
    const char *why = read_header(buf, len, 0, &h, &version);

    if (why != NULL)
        return why;
    if (version < '2')
        return "TZif version 1 is not supported (need version 2 or later)";
    uint64_t pos = TZ_HDR_LEN + block_size(&h, 4);
    if (pos > len || (why = read_header(buf, len, (size_t)pos, &h, &version)) != NULL)
        return why != NULL ? why : "truncated version 1 data";
    if (version < '2')
        return "bad second header";
    if ((why = check_counts(&h)) != NULL)
        return why;
    pos += TZ_HDR_LEN;
    uint64_t size = block_size(&h, 8);
    if (size > len - pos)
        return "truncated data";
    if ((why = read_block(buf + pos, &h, z)) != NULL)
        return why;
    return read_footer(buf, len, (size_t)(pos + size), z);
}

struct tz *
tz_parse(const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    struct tz *z = xcalloc(1, sizeof(*z));
    const char *why = buf == NULL ? "no data" : parse_tzif(buf, len, z);

    if (why != NULL) {
        set_err(err, errlen, "%s", why);
        tz_free(z);
        return NULL;
    }
    return z;
}

struct tz *
tz_from_rule(const char *rule, char *err, size_t errlen)
{
    struct tz *z = xcalloc(1, sizeof(*z));
    const char *why = rule == NULL ? "no TZ rule" : parse_rule(rule, &z->rule);

    if (why != NULL) {
        set_err(err, errlen, "%s", why);
        tz_free(z);
        return NULL;
    }
    z->has_rule = true;
    z->off0 = z->rule.std_off;
    return z;
}

void
tz_free(struct tz *z)
{
    if (z == NULL)
        return;
    free(z->times);
    free(z->offs);
    free(z);
}

/* ---- loading by name */

static bool
name_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '+' || c == '-';
}

bool
tz_name_valid(const char *name)
{
    size_t n = 0;
    bool comp_empty = true;

    if (name == NULL)
        return false;
    for (; name[n] != '\0'; n++) {
        if (n >= TZ_NAME_MAX)
            return false;
        if (name[n] == '/') {
            if (comp_empty)
                return false;
            comp_empty = true;
        } else if (name_char((unsigned char)name[n])) {
            comp_empty = false;
        } else {
            return false;
        }
    }
    return !comp_empty;
}

/* Read a whole regular file of at most TZ_FILE_MAX bytes. */
static int
read_file(const char *path, unsigned char **out, size_t *outlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? BH_ENOENT : BH_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return BH_ENOENT;
    }
    unsigned char *buf = xmalloc(TZ_FILE_MAX + 1);
    size_t len = 0;
    while (len <= TZ_FILE_MAX) {
        ssize_t r = read(fd, buf + len, TZ_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                break;
            close(fd);
            free(buf);
            return BH_EIO;
        }
        len += (size_t)r;
    }
    close(fd);
    if (len > TZ_FILE_MAX) {
        free(buf);
        return BH_ERANGE;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

struct tz *
tz_load(const char *name, char *err, size_t errlen)
{
    unsigned char *buf;
    size_t len;
    char why[160];

    if (!tz_name_valid(name)) {
        set_err(err, errlen, "invalid timezone name (want [A-Za-z0-9_+-] parts joined by '/')");
        return NULL;
    }
    if (strcmp(name, "UTC") == 0)
        return xcalloc(1, sizeof(struct tz));
    const char *dir = getenv("TZDIR");
    char *path = xasprintf("%s/%s", dir != NULL && *dir != '\0' ? dir : TZ_DEFAULT_DIR, name);
    int rc = read_file(path, &buf, &len);
    if (rc != 0) {
        set_err(err, errlen, "%s %s",
                rc == BH_ENOENT   ? "no zone file"
                : rc == BH_ERANGE ? "too large for a TZif file:"
                                  : "cannot read",
                path);
        free(path);
        return NULL;
    }
    struct tz *z = tz_parse(buf, len, why, sizeof(why));
    free(buf);
    if (z == NULL)
        set_err(err, errlen, "bad TZif file %s: %s", path, why);
    free(path);
    return z;
}

/* ---- queries */

/* Index of the first transition > t. */
static size_t
upper_bound(const struct tz *z, int64_t t)
{
    size_t lo = 0, hi = z->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->times[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

long
tz_offset(const struct tz *z, int64_t t)
{
    t = clamp_time(t);
    if (z->n == 0 || t >= z->times[z->n - 1]) {
        if (z->has_rule)
            return rule_offset(&z->rule, t);
        if (z->n == 0)
            return z->off0;
    }
    size_t i = upper_bound(z, t);
    return i == 0 ? z->off0 : z->offs[i - 1];
}

int64_t
tz_next_transition(const struct tz *z, int64_t t)
{
    if (t >= TZ_TIME_MAX)
        return INT64_MAX;
    t = clamp_time(t);
    if (z->n > 0 && t < z->times[z->n - 1])
        return z->times[upper_bound(z, t)];
    if (z->has_rule)
        return rule_next(&z->rule, t);
    return INT64_MAX;
}
