/*
 * schedule: when a connector may open connections.
 *
 * A schedule is a set of weekly windows in one IANA timezone (read from
 * $TZDIR or /usr/share/zoneinfo, TZif v2+, with the footer's POSIX TZ rule
 * for instants past the table; no use of the process-global TZ), plus an
 * optional second set for oversized messages. Windows are half-open
 * [from, to) in local wall-clock time; to <= from runs past midnight into
 * the next day and the named day is the day the window starts. An instant
 * is inside a window when its local wall-clock time on a named day lies in
 * [from, to): local times skipped by DST belong to no window, repeated ones
 * belong to it both times.
 *
 * A struct schedule is immutable once built and may be used from any thread.
 * Times are seconds since the epoch (UTC).
 */
#ifndef BH_CONNECTORS_SCHEDULE_H
#define BH_CONNECTORS_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHEDULE_SIZE_UNKNOWN UINT64_MAX
#define SCHEDULE_NEVER INT64_MAX

struct schedule;

struct schedule_window {
    unsigned days; /* bit d set: the window starts on weekday d, 0 = Sunday */
    int from;      /* minutes after local midnight, 0..1439 */
    int to;        /* minutes, 1..1440; to <= from: ends the next day */
};

/*
 * Parse a day list: "mon", "mon-fri", "fri-mon" (wraps the week), "sat,sun",
 * lowercase three-letter names only. Returns 0 and sets *days, or BH_EINVAL.
 */
int schedule_parse_days(const char *s, unsigned *days);
/* Parse "HH:MM" (00..23, 00..59); "24:00" only when allow_24 is true. */
int schedule_parse_time(const char *s, bool allow_24, int *minutes);

/*
 * Build a schedule. tzname is an IANA name matching
 * [A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*. The window arrays are copied.
 * oversized may be NULL (noversized 0) when there are no oversized windows;
 * threshold is then ignored. Returns NULL and a reason in err when the
 * timezone cannot be loaded.
 */
struct schedule *schedule_new(const char *tzname, const struct schedule_window *windows,
                              size_t nwindows, const struct schedule_window *oversized,
                              size_t noversized, uint64_t threshold, char *err, size_t errlen);
void schedule_free(struct schedule *s);

/* Windows that apply to a message of this size: the oversized ones when it
 * has them and size > threshold (SCHEDULE_SIZE_UNKNOWN never is). */
bool schedule_is_open(const struct schedule *s, int64_t t, uint64_t size);
/* The first instant >= t at which schedule_is_open is true; t itself when it
 * is open now; SCHEDULE_NEVER when no window ever opens. */
int64_t schedule_next_open(const struct schedule *s, int64_t t, uint64_t size);
/* The first instant > t at which an open schedule closes (SCHEDULE_NEVER if
 * it never does); t when it is closed now. */
int64_t schedule_next_close(const struct schedule *s, int64_t t, uint64_t size);

const char *schedule_timezone(const struct schedule *s);
bool schedule_has_oversized(const struct schedule *s);
uint64_t schedule_threshold(const struct schedule *s);
/* One-line description for `check`: "UTC mon-fri 22:00-06:00, sat,sun ...". */
void schedule_describe(const struct schedule *s, char *buf, size_t len);

/* UTC offset in seconds of the schedule's zone at instant t (for --at
 * output and tests). */
long schedule_utc_offset(const struct schedule *s, int64_t t);

#endif
