/*
 * smtp_in_line: command line framing for the smtp_in machine. It finds the
 * next line in the buffered input, applies the length limits of SPEC §5
 * (CRLF included: MAIL 512+626, RCPT 512+500, AUTH exchange lines 12288,
 * other commands 512) and refuses bare CR, bare LF and NUL. A line that is
 * certain to be too long is discarded as it arrives, up to its end, so the
 * outcome is the same however the bytes were split.
 *
 * Part of the protocol machine: libc only. The caller owns the struct (zero
 * is the initial state) and the buffer; any thread.
 */
#ifndef BH_CORE_SMTP_IN_LINE_H
#define BH_CORE_SMTP_IN_LINE_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_IN_LINE_CMD 512
#define SMTP_IN_LINE_MAIL (512 + 626)
#define SMTP_IN_LINE_RCPT (512 + 500)
#define SMTP_IN_LINE_AUTH 12288

enum smtp_in_line_res {
    SMTP_IN_LINE_MORE, /* no whole line yet */
    SMTP_IN_LINE_OK,   /* a line, NUL-terminated in place, without CRLF or trailing blanks */
    SMTP_IN_LINE_LONG, /* a line over its limit was discarded (auth: an AUTH line) */
    SMTP_IN_LINE_BAD   /* bare CR, bare LF or NUL: the connection must close */
};

struct smtp_in_line {
    bool skipping; /* discarding a too-long line */
    bool cr;       /* the last octet discarded was a CR */
    bool auth;     /* the too-long line belonged to an AUTH exchange */
    bool bad;      /* the discarded part held a bare CR or a NUL */
};

/* Look at buf[0..n). in_auth: an AUTH exchange waits for a response line.
 * *used gets the octets consumed (also with MORE, while discarding); with
 * OK, *line points to the line inside buf. */
enum smtp_in_line_res smtp_in_line_next(struct smtp_in_line *l, char *buf, size_t n, bool in_auth,
                                        size_t *used, char **line);
/* Does buf[0..n) start with this four-letter verb (any case)? */
bool smtp_in_line_verb(const char *buf, size_t n, const char *verb);

#endif
