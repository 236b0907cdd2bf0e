/*
 * Fuzz core/smtp_in_data, the DATA scanner that reads the header section
 * (Received: count, priority) and finds the end of data. Byte 0 seeds the
 * split points; the rest is the stream after 354. The same bytes are
 * scanned once whole and once in pieces: both must agree on everything
 * (output, consumed length, size, error, Received: count, priority), and
 * the output may never be longer than the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/smtp_in_data.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
scan(const uint8_t *in, size_t n, struct fuzz_rng *rng, char *out, struct smtp_in_data *d)
{
    size_t off = 0, olen = 0;
    smtp_in_data_init(d, 4096);
    while (off < n && !d->done) {
        size_t piece = rng != NULL ? fuzz_piece(rng, n - off, 64) : n - off;
        char *buf = malloc(piece); /* exact size: ASan sees any overrun */
        if (buf == NULL)
            abort();
        memcpy(buf, in + off, piece);
        size_t produced = 0;
        size_t used = smtp_in_data_scan(d, buf, piece, &produced);
        if (used > piece || produced > used)
            abort();
        memcpy(out + olen, buf, produced);
        olen += produced;
        off += used;
        free(buf);
        if (used == 0 && !d->done)
            abort(); /* no progress on non-empty input */
    }
    return olen;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fuzz_rng rng = {data[0] * 2654435761u + 1};
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    char *a = malloc(n + 1), *b = malloc(n + 1);
    if (a == NULL || b == NULL)
        abort();
    struct smtp_in_data whole, split;
    size_t alen = scan(in, n, NULL, a, &whole);
    size_t blen = scan(in, n, &rng, b, &split);
    if (alen != blen || memcmp(a, b, alen) != 0 || whole.size != split.size ||
        whole.err != split.err || whole.received != split.received ||
        whole.prio != split.prio || whole.done != split.done)
        abort();
    free(a);
    free(b);
    return 0;
}
