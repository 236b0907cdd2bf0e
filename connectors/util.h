/*
 * util: the few things every module needs — allocation that aborts on
 * exhaustion, the BH_E* error codes, and small string helpers.
 *
 * This is the one base module of the tree: every directory may include it
 * (storage/ included), and it includes nothing of the project. All functions
 * are thread-safe (they touch no shared state).
 */
#ifndef BH_CONNECTORS_UTIL_H
#define BH_CONNECTORS_UTIL_H

#include <errno.h>
#include <stddef.h>

/* Error codes: 0 or negative, like libuv's (which are negative errno). */
#define BH_EINVAL (-EINVAL)
#define BH_ENOENT (-ENOENT)
#define BH_ENOMEM (-ENOMEM)
#define BH_ENOSPC (-ENOSPC)
#define BH_EIO (-EIO)
#define BH_EEXIST (-EEXIST)
#define BH_ERANGE (-ERANGE)
#define BH_EBUSY (-EBUSY)
#define BH_EAGAIN (-EAGAIN)
#define BH_ENOTSUP (-ENOTSUP)

/* Allocation: never returns NULL; aborts with a message on exhaustion. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ASCII-only helpers (locale-independent). */
int util_strcasecmp(const char *a, const char *b);
void util_lower(char *s);

/*
 * A growable byte buffer, always NUL-terminated. Owned by whoever embeds
 * it; util_buf_fini frees it. Zero-initialised is empty and valid.
 */
struct util_buf {
    char *p;
    size_t len, cap;
};

void util_buf_append(struct util_buf *b, const char *s, size_t n);
void util_buf_puts(struct util_buf *b, const char *s);
void util_buf_printf(struct util_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string with quotes, or null when s is NULL. Bytes
 * below 0x20, '"' and '\\' are escaped; other bytes pass through. */
void util_buf_json_str(struct util_buf *b, const char *s);
void util_buf_reset(struct util_buf *b);
void util_buf_fini(struct util_buf *b);

#endif
