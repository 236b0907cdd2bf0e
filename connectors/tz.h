/*
 * tz: IANA time zones read straight from TZif files, without the C
 * library's process-global TZ machinery (no setenv("TZ"), tzset or
 * localtime), so any thread may ask for the UTC offset of any instant.
 *
 * tz_load reads $TZDIR/NAME (or /usr/share/zoneinfo/NAME when TZDIR is unset
 * or empty) after checking NAME against [A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*.
 * Only TZif version 2 and later is accepted; the 64-bit section is used and
 * the footer's POSIX TZ rule (e.g. "CET-1CEST,M3.5.0,M10.5.0/3") answers for
 * instants past the last transition. "UTC" is built in and never touches
 * the filesystem. Every count in the file is bounds-checked: a hostile or
 * truncated file is an error with a reason, never an over-read. Zones with
 * leap-second records (the right/ tree) are refused, because our instants
 * are POSIX times.
 *
 * The caller owns the struct tz returned by tz_load/tz_parse/tz_from_rule
 * and frees it with tz_free. A struct tz is immutable once built and may be
 * used from any thread. Instants are seconds since the epoch (UTC); those
 * outside [TZ_TIME_MIN, TZ_TIME_MAX] (about 31 million years either way)
 * are answered as if clamped to that range.
 */
#ifndef BH_CONNECTORS_TZ_H
#define BH_CONNECTORS_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TZ_TIME_MIN (-1000000000000000LL)
#define TZ_TIME_MAX 1000000000000000LL
/* Longest zone name tz_load accepts. */
#define TZ_NAME_MAX 255

struct tz;

/* True when name matches [A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)* and is at most
 * TZ_NAME_MAX bytes long. */
bool tz_name_valid(const char *name);

/* Load a zone by IANA name. Returns NULL and a reason in err (which may be
 * NULL) for a bad name, a missing zone or a corrupt file. */
struct tz *tz_load(const char *name, char *err, size_t errlen);
/* Build a zone from the bytes of a TZif file (borrowed for the call). */
struct tz *tz_parse(const unsigned char *buf, size_t len, char *err, size_t errlen);
/* Build a zone from a POSIX TZ rule alone, as found in a TZif footer:
 * "UTC0", "EST5EDT,M3.2.0,M11.1.0", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0". */
struct tz *tz_from_rule(const char *rule, char *err, size_t errlen);
void tz_free(struct tz *z);

/* Offset of local time from UTC at instant t, in seconds east of UTC. */
long tz_offset(const struct tz *z, int64_t t);
/* The first instant > t at which the offset may change (a transition in the
 * table or of the footer rule), or INT64_MAX when there is none. The offset
 * is constant on [t, tz_next_transition(z, t)). */
int64_t tz_next_transition(const struct tz *z, int64_t t);

#endif
