/*
 * log: one line per event on stderr, key=value (default) or JSON.
 *
 * Callers always format key=value pairs, id= first, with values that hold
 * spaces in double quotes (reply="250 2.0.0 ok"); the JSON format turns the
 * same pairs into one object per line. The level is checked before
 * formatting. Lines are handed to a writer thread through a bounded buffer,
 * so a slow stderr reader never stalls the event loop: when the buffer is
 * full, lines are dropped and counted, and the count is logged once the
 * writer catches up.
 *
 * A struct log is created once by the program (log_new) and passed to whoever
 * logs; every function may be called from any thread.
 */
#ifndef BH_CORE_LOG_H
#define BH_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_FORMAT_KV, LOG_FORMAT_JSON };

struct log;

/* fd is where lines go (2 for stderr). max_buffer bounds the bytes waiting
 * for the writer (0: 4 MiB). Starts the writer thread. */
struct log *log_new(int fd, enum log_format format, enum log_level level, size_t max_buffer);
/* Write what is buffered, stop the thread and free. NULL is a no-op. */
void log_free(struct log *l);

bool log_enabled(const struct log *l, enum log_level level);
void log_msg(struct log *l, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(struct log *l, enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Lines dropped so far because the writer could not keep up. */
unsigned long log_dropped(struct log *l);

#define log_error(l, ...) log_msg((l), LOG_ERROR, __VA_ARGS__)
#define log_warn(l, ...) log_msg((l), LOG_WARN, __VA_ARGS__)
#define log_info(l, ...) log_msg((l), LOG_INFO, __VA_ARGS__)
#define log_debug(l, ...) log_msg((l), LOG_DEBUG, __VA_ARGS__)

/*
 * Make an outside value (an address, a user name, a remote reply, a config
 * error) safe as one value of a key=value line, so that it can neither end
 * the value early nor add keys:
 *   log_token: for a bare value (to=<%s>): every byte outside '!'..'~', and
 *              '"' and '\\', become \xHH;
 *   log_text:  for a value in double quotes (reply="%s"): '"' and '\\' get a
 *              backslash, control bytes become \xHH.
 * Both write into buf (at most len - 1 bytes, never half an escape) and
 * return it. The JSON format turns the escapes back into the bytes.
 */
#define LOG_VALUE_MAX 1024
const char *log_token(char *buf, size_t len, const char *s);
const char *log_text(char *buf, size_t len, const char *s);

/* Turn one key=value line into a JSON object (no newline) in out; exposed
 * for tests. level and ts are added as "level" and "ts". */
struct util_buf;
void log_kv_to_json(const char *kv, const char *level, const char *ts, struct util_buf *out);

#endif
