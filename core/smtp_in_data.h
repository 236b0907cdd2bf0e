/*
 * smtp_in_data: the DATA phase scanner of the smtp_in machine. It takes the
 * bytes after the 354 reply, removes dot-stuffing in place, and finds the
 * only true end of data, CRLF "." CRLF (never <LF>.<LF>, <CR>.<CR>,
 * <LF>.<CR><LF> or <CR><LF>.<LF>: no SMTP smuggling). On the way it counts
 * the size as RFC 1870 §4 does (CRLF included, stuffed dots and the final
 * dot not), refuses bare CR, bare LF and NUL, lines over 1000 octets (CRLF
 * included, a stuffed dot not), sizes over the limit and more than 100
 * Received: headers, and reads the priority from the header section
 * (Importance, else X-Priority, else Priority; folded values allowed), all
 * in one pass with O(1) memory.
 *
 * Part of the protocol machine: libc only. The caller owns the struct and
 * the buffers; any thread.
 */
#ifndef BH_CORE_SMTP_IN_DATA_H
#define BH_CORE_SMTP_IN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/smtp_in.h"

#define SMTP_IN_DATA_LINE_MAX 1000    /* octets per line, CRLF included */
#define SMTP_IN_DATA_RECEIVED_MAX 100 /* more Received: headers are a loop */

/* The first problem found in a message; the message is refused for it once
 * its end has been read. */
enum smtp_in_data_err {
    SMTP_IN_DATA_OK = 0,
    SMTP_IN_DATA_BARE, /* bare CR, bare LF or NUL */
    SMTP_IN_DATA_LONG, /* a line over SMTP_IN_DATA_LINE_MAX */
    SMTP_IN_DATA_SIZE, /* over max_size */
    SMTP_IN_DATA_LOOP  /* over SMTP_IN_DATA_RECEIVED_MAX Received: headers */
};

/* Scanner state; plain value owned by the caller, set up by _init. */
struct smtp_in_data {
    uint64_t max_size; /* 0: no limit */
    uint64_t size;     /* RFC 1870 §4 so far */
    size_t line;       /* content octets of the current line, CR and LF not */
    unsigned received; /* Received: header fields seen */
    enum smtp_in_data_err err;
    bool done;    /* the final CRLF.CRLF has been read */
    bool bol;     /* at the start of a line (after a real CRLF) */
    bool dotline; /* the line so far is one stuffed dot */
    bool cr;      /* the previous octet was a CR */
    /* Header section scanner (smtp_in_data.c). */
    int hstate, hkind, vstate;
    char name[12];
    size_t nlen;
    char tok[12];
    size_t tlen;
    int rank;
    enum smtp_in_priority prio;
};

void smtp_in_data_init(struct smtp_in_data *d, uint64_t max_size);
/* Scan buf[0..n). While no error has been found, the unstuffed body octets
 * are written back into buf[0..*out) (in place: output never overtakes
 * input). Stops just after the final CRLF.CRLF and sets d->done. Returns the
 * number of octets consumed. */
size_t smtp_in_data_scan(struct smtp_in_data *d, char *buf, size_t n, size_t *out);

#endif
