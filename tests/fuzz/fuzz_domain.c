/*
 * Fuzz connectors/domain and the sender and priority helpers of
 * connectors/connector: the input is split at NUL or newline bytes into
 * pieces, each used as a domain, an address space, a sender pattern, a
 * sender, and a header name/value pair (NUL-terminated heap copies).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "connectors/connector.h"
#include "connectors/domain.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PIECES 16

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *piece[MAX_PIECES];
    size_t len[MAX_PIECES];
    size_t np = 0, start = 0;
    for (size_t i = 0; i <= size && np < MAX_PIECES; i++) {
        if (i == size || data[i] == '\0' || data[i] == '\n') {
            len[np] = i - start;
            piece[np++] = fuzz_strndup(data + start, i - start);
            start = i + 1;
        }
    }

    /* Patterns that pass the check become the connector's lists. */
    char *accept[MAX_PIECES], *reject[MAX_PIECES];
    size_t na = 0, nr = 0;
    volatile unsigned sink = 0;
    for (size_t i = 0; i < np; i++) {
        char out[DOMAIN_MAX + 3];
        const char *why = NULL;
        /* domain_normalise takes a length: also try it without the NUL. */
        if (domain_normalise(piece[i], len[i], out) == 0)
            sink += domain_labels(out);
        if (domain_space_normalise(piece[i], out, &why) == 0)
            sink += domain_labels(out[0] == '*' && out[1] == '.' ? out + 2 : out);
        else if (why != NULL)
            sink += (unsigned)why[0];
        if (connector_sender_pattern_check(piece[i]) == 0) {
            /* The config hands over lowercased patterns. */
            char *pat = fuzz_strndup((const uint8_t *)piece[i], len[i]);
            for (char *c = pat; *c != '\0'; c++)
                *c = (char)tolower((unsigned char)*c);
            if (i & 1)
                reject[nr++] = pat;
            else
                accept[na++] = pat;
        }
        enum connector_priority prio;
        if (i + 1 < np && connector_priority_from_header(piece[i], piece[i + 1], &prio) > 0)
            sink += (unsigned)prio + (unsigned)connector_priority_name(prio)[0];
        if (connector_priority_parse(piece[i], &prio) == 0)
            sink += (unsigned)prio;
    }
    struct connector_senders s = {
        .default_accept = np > 0 && len[0] > 0 && (piece[0][0] & 1),
        .accept = accept, .naccept = na,
        .reject = reject, .nreject = nr,
    };
    for (size_t i = 0; i < np; i++)
        sink += connector_sender_allowed(&s, piece[i]);
    for (size_t i = 0; i < np; i++)
        free(piece[i]);
    for (size_t i = 0; i < na; i++)
        free(accept[i]);
    for (size_t i = 0; i < nr; i++)
        free(reject[i]);
    (void)sink;
    return 0;
}
