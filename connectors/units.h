/*
 * units: parsing of the config's sizes ("512", "10KiB", "25MiB", "1GiB";
 * KB/MB/GB are the same powers of 1024) and durations ("30s", "5m", "4h",
 * "5d"; a bare number is seconds). Pure functions, any thread.
 */
#ifndef BH_CONNECTORS_UNITS_H
#define BH_CONNECTORS_UNITS_H

#include <stdint.h>

/* Integers are [0-9]+ with no sign, space or leading '+'. Both return 0, or
 * BH_EINVAL for a malformed string and BH_ERANGE when the value overflows. */
int units_parse_size(const char *s, uint64_t *bytes);
int units_parse_duration(const char *s, uint64_t *seconds);
int units_parse_uint(const char *s, uint64_t *v);

/* Human forms for summaries: "25MiB", "10KiB", "512"; "30s", "5m", "4h".
 * Write at most len bytes into buf, always NUL-terminated; return buf. */
char *units_format_size(uint64_t bytes, char *buf, unsigned len);
char *units_format_duration(uint64_t seconds, char *buf, unsigned len);

#endif
