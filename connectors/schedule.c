#include "connectors/schedule.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/tz.h"
#include "connectors/util.h"

#define DAY 86400LL
#define WEEK (7 * DAY)
/* Local-time transitions next_open/next_close will step over before giving
 * up. Real zones change offset at most a few times a year, so an answer is
 * always found within two or three steps; the cap only bounds the work a
 * hostile zone file with a transition every few seconds can cause. */
#define SCHEDULE_SCAN_MAX 4096

/*
 * The windows of one set are flattened into the set S of "seconds into the
 * local week" (0 = Sunday 00:00 local) that they cover, kept as sorted,
 * disjoint, merged spans of S and of S shifted by one week, i.e. over
 * [0, 2 WEEK). For any position p in [0, WEEK), the first span ending after
 * p then either contains p (its end is where the open stretch ends, even
 * across the Saturday/Sunday wrap) or starts at the next opening, less than
 * a week later.
 *
 * An instant t is open when week_pos(t + offset(t)) is in S, which is the
 * wall-clock definition of the SPEC: skipped local times are never reached,
 * repeated ones are reached twice. Between two transitions of the zone the
 * offset is constant and local time runs at the speed of t, so next_open
 * and next_close need one span lookup per such stretch: they jump from span
 * edge to span edge and from transition to transition, never minute by
 * minute.
 */
struct schedule_span {
    int64_t from, to; /* seconds into the local week, [from, to) */
};

struct schedule_set {
    struct schedule_window *windows; /* as given, for describe */
    size_t nwindows;
    struct schedule_span *spans;
    size_t nspans;
    bool full; /* S is the whole week: open at every instant */
};

struct schedule {
    char *tzname;
    struct tz *tz;
    struct schedule_set normal;
    struct schedule_set over;
    bool has_over;
    uint64_t threshold;
};

static const char day_names[7][4] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* ---- parsing */

/* The weekday named by the three characters at p, or -1. */
static int
day_at(const char *p)
{
    for (int d = 0; d < 7; d++)
        if (strncmp(p, day_names[d], 3) == 0)
            return d;
    return -1;
}

int
schedule_parse_days(const char *s, unsigned *days)
{
    unsigned acc = 0;

    if (s == NULL || days == NULL)
        return BH_EINVAL;
    for (const char *p = s;; p++) {
        int a = day_at(p), b;
        if (a < 0)
            return BH_EINVAL;
        p += 3;
        b = a;
        if (*p == '-') {
            if ((b = day_at(p + 1)) < 0)
                return BH_EINVAL;
            p += 4;
        }
        /* A range runs forward from a to b and wraps past Saturday. */
        for (int d = a;; d = (d + 1) % 7) {
            acc |= 1u << d;
            if (d == b)
                break;
        }
        if (*p == '\0')
            break;
        if (*p != ',')
            return BH_EINVAL;
    }
    *days = acc;
    return 0;
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int
schedule_parse_time(const char *s, bool allow_24, int *minutes)
{
    if (s == NULL || minutes == NULL)
        return BH_EINVAL;
    /* Checked left to right, so a short string stops at its NUL. */
    if (!is_digit(s[0]) || !is_digit(s[1]) || s[2] != ':' || !is_digit(s[3]) || !is_digit(s[4]) ||
        s[5] != '\0')
        return BH_EINVAL;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h == 24 && m == 0 && allow_24) {
        *minutes = 1440;
        return 0;
    }
    if (h > 23 || m > 59)
        return BH_EINVAL;
    *minutes = h * 60 + m;
    return 0;
}

/* ---- building */

static int
span_cmp(const void *a, const void *b)
{
    const struct schedule_span *x = a, *y = b;
    return x->from < y->from ? -1 : x->from > y->from;
}

/* Add [from, to) shifted by -WEEK, 0 and +WEEK, clipped to [0, 2 WEEK). */
static void
add_span(struct schedule_span *v, size_t *n, int64_t from, int64_t to)
{
    for (int64_t shift = -WEEK; shift <= WEEK; shift += WEEK) {
        int64_t a = from + shift, b = to + shift;
        a = a < 0 ? 0 : a;
        b = b > 2 * WEEK ? 2 * WEEK : b;
        /* cppcheck-suppress knownConditionTrueFalse ; false positive: a and b are any int64 */
        if (a < b)
            v[(*n)++] = (struct schedule_span){a, b};
    }
}

/* Sort and merge overlapping or touching spans in place. */
static size_t
merge_spans(struct schedule_span *v, size_t n)
{
    size_t k = 0;

    qsort(v, n, sizeof(*v), span_cmp);
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && v[i].from <= v[k - 1].to) {
            if (v[i].to > v[k - 1].to)
                v[k - 1].to = v[i].to;
        } else {
            v[k++] = v[i];
        }
    }
    return k;
}

static const char *
check_windows(const struct schedule_window *w, size_t n)
{
    if (n > 0 && w == NULL)
        return "window array missing";
    if (n > SIZE_MAX / (21 * sizeof(struct schedule_span)))
        return "too many windows";
    for (size_t i = 0; i < n; i++) {
        if (w[i].days > 0x7f)
            return "window days out of range";
        if (w[i].from < 0 || w[i].from > 1439 || w[i].to < 0 || w[i].to > 1440)
            return "window time out of range";
    }
    return NULL;
}

/* Copy the windows and flatten them into spans. from == to is an empty
 * window (the loader reports it as an error; here it simply covers nothing). */
static void
set_init(struct schedule_set *set, const struct schedule_window *w, size_t n)
{
    set->nwindows = n;
    set->windows = xcalloc(n, sizeof(*w));
    if (n > 0)
        memcpy(set->windows, w, n * sizeof(*w));
    set->spans = xcalloc(n * 21, sizeof(*set->spans));
    set->nspans = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i].from == w[i].to)
            continue;
        int64_t len = (w[i].to > w[i].from ? w[i].to - w[i].from : w[i].to + 1440 - w[i].from);
        for (int d = 0; d < 7; d++) {
            if (!(w[i].days & (1u << d)))
                continue;
            int64_t from = d * DAY + w[i].from * 60LL;
            add_span(set->spans, &set->nspans, from, from + len * 60);
        }
    }
    set->nspans = merge_spans(set->spans, set->nspans);
    set->full = set->nspans == 1 && set->spans[0].from == 0 && set->spans[0].to == 2 * WEEK;
}

static void
set_fini(struct schedule_set *set)
{
    free(set->windows);
    free(set->spans);
}

struct schedule *
schedule_new(const char *tzname, const struct schedule_window *windows, size_t nwindows,
             const struct schedule_window *oversized, size_t noversized, uint64_t threshold,
             char *err, size_t errlen)
{
    const char *why = check_windows(windows, nwindows);

    if (why == NULL)
        why = check_windows(oversized, noversized);
    if (why != NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s", why);
        return NULL;
    }
    struct tz *z = tz_load(tzname, err, errlen);
    if (z == NULL)
        return NULL;
    struct schedule *s = xcalloc(1, sizeof(*s));
    s->tz = z;
    s->tzname = xstrdup(tzname);
    set_init(&s->normal, windows, nwindows);
    s->has_over = noversized > 0;
    set_init(&s->over, oversized, noversized);
    s->threshold = s->has_over ? threshold : 0;
    return s;
}

void
schedule_free(struct schedule *s)
{
    if (s == NULL)
        return;
    set_fini(&s->normal);
    set_fini(&s->over);
    tz_free(s->tz);
    free(s->tzname);
    free(s);
}

/* ---- queries */

static const struct schedule_set *
pick(const struct schedule *s, uint64_t size)
{
    if (s->has_over && size != SCHEDULE_SIZE_UNKNOWN && size > s->threshold)
        return &s->over;
    return &s->normal;
}

/* Seconds into the local week (Sunday 00:00 = 0); the epoch was a Thursday. */
static int64_t
week_pos(int64_t local)
{
    int64_t r = (local + 4 * DAY) % WEEK;
    return r < 0 ? r + WEEK : r;
}

/* The first span ending after p, or NULL (only for an empty set). */
static const struct schedule_span *
span_after(const struct schedule_set *set, int64_t p)
{
    size_t lo = 0, hi = set->nspans;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->spans[mid].to <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < set->nspans ? &set->spans[lo] : NULL;
}

/* Where instant t falls in the local week. t is within the tz range. */
static int64_t
pos_at(const struct schedule *s, int64_t t)
{
    return week_pos(t + tz_offset(s->tz, t));
}

static bool
set_open(const struct schedule *s, const struct schedule_set *set, int64_t t)
{
    if (set->full)
        return true;
    if (set->nspans == 0)
        return false;
    t = t < TZ_TIME_MIN ? TZ_TIME_MIN : t > TZ_TIME_MAX ? TZ_TIME_MAX : t;
    int64_t p = pos_at(s, t);
    const struct schedule_span *sp = span_after(set, p);
    return sp != NULL && sp->from <= p;
}

bool
schedule_is_open(const struct schedule *s, int64_t t, uint64_t size)
{
    return set_open(s, pick(s, size), t);
}

/* Walk the stretches of constant offset from t0 on. In each, the answer is
 * the edge of the span found for the stretch's first instant, if it comes
 * before the next transition; otherwise try the next stretch. want_open:
 * looking for an opening (a span start), else for a closing (a span end). */
static int64_t
walk(const struct schedule *s, const struct schedule_set *set, int64_t t0, bool want_open)
{
    for (int i = 0; i < SCHEDULE_SCAN_MAX && t0 <= TZ_TIME_MAX; i++) {
        int64_t p = pos_at(s, t0);
        int64_t t1 = tz_next_transition(s->tz, t0);
        const struct schedule_span *sp = span_after(set, p);
        if (sp == NULL)
            return SCHEDULE_NEVER;
        bool open = sp->from <= p;
        if (open == want_open)
            return t0;
        int64_t u = t0 + ((want_open ? sp->from : sp->to) - p);
        if (u < t1)
            return u;
        t0 = t1;
    }
    return SCHEDULE_NEVER;
}

int64_t
schedule_next_open(const struct schedule *s, int64_t t, uint64_t size)
{
    const struct schedule_set *set = pick(s, size);

    if (set_open(s, set, t))
        return t;
    if (set->nspans == 0 || t > TZ_TIME_MAX)
        return SCHEDULE_NEVER;
    return walk(s, set, t < TZ_TIME_MIN ? TZ_TIME_MIN : t, true);
}

int64_t
schedule_next_close(const struct schedule *s, int64_t t, uint64_t size)
{
    const struct schedule_set *set = pick(s, size);

    if (!set_open(s, set, t))
        return t;
    if (set->full || t > TZ_TIME_MAX)
        return SCHEDULE_NEVER;
    return walk(s, set, t < TZ_TIME_MIN ? TZ_TIME_MIN : t, false);
}

const char *
schedule_timezone(const struct schedule *s)
{
    return s->tzname;
}

bool
schedule_has_oversized(const struct schedule *s)
{
    return s->has_over;
}

uint64_t
schedule_threshold(const struct schedule *s)
{
    return s->threshold;
}

long
schedule_utc_offset(const struct schedule *s, int64_t t)
{
    return tz_offset(s->tz, t);
}

/* ---- describe */

struct sbuf {
    char *buf;
    size_t len, pos;
};

static void sbuf_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append, truncating silently at the end of the buffer. */
static void
sbuf_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;

    if (b->pos + 1 >= b->len)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->pos, b->len - b->pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->pos = (size_t)n >= b->len - b->pos ? b->len - 1 : b->pos + (size_t)n;
}

/* Days in Monday-first order as runs: "mon-fri", "sat,sun", "fri-mon". */
static void
add_days(struct sbuf *b, unsigned days)
{
    int start = 0, k = 0;
    const char *sep = "";

#define DAY_SET(i) ((days >> (((i) + 1) % 7)) & 1u) /* i: 0 = Monday */
    if ((days & 0x7f) == 0x7f || (days & 0x7f) == 0) {
        sbuf_add(b, "%s", days & 0x7f ? "mon-sun" : "none");
        return;
    }
    if (DAY_SET(0) && DAY_SET(6)) /* a run wraps from Sunday into Monday */
        while (DAY_SET(start))
            start++;
    while (k < 7) {
        int len = 0;
        while (k + len < 7 && DAY_SET((start + k + len) % 7))
            len++;
        if (len > 0) {
            int first = (start + k) % 7, last = (start + k + len - 1) % 7;
            sbuf_add(b, "%s%s%s%s", sep, day_names[(first + 1) % 7],
                     len == 1   ? ""
                     : len == 2 ? ","
                                : "-",
                     len == 1 ? "" : day_names[(last + 1) % 7]);
            sep = ",";
        }
        k += len > 0 ? len : 1;
    }
#undef DAY_SET
}

static void
add_windows(struct sbuf *b, const struct schedule_set *set)
{
    if (set->nwindows == 0)
        sbuf_add(b, " (no windows)");
    for (size_t i = 0; i < set->nwindows; i++) {
        const struct schedule_window *w = &set->windows[i];
        sbuf_add(b, "%s", i > 0 ? ", " : " ");
        add_days(b, w->days);
        sbuf_add(b, " %02d:%02d-%02d:%02d", w->from / 60, w->from % 60, w->to / 60, w->to % 60);
    }
}

void
schedule_describe(const struct schedule *s, char *buf, size_t len)
{
    struct sbuf b = {buf, len, 0};

    if (buf == NULL || len == 0)
        return;
    buf[0] = '\0';
    sbuf_add(&b, "%s", s->tzname);
    add_windows(&b, &s->normal);
    if (s->has_over) {
        sbuf_add(&b, "; over %llu bytes:", (unsigned long long)s->threshold);
        add_windows(&b, &s->over);
    }
}
