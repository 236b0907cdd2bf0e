/*
 * Fuzz core/dsn: the input is split at the first two NUL bytes into an
 * ENVID, a diagnostic and the original message; byte 0 of the envid piece
 * also picks the action and RET. dsn_build must never fail on it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "core/dsn.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    data++;
    size--;
    const uint8_t *z1 = memchr(data, '\0', size);
    size_t l1 = z1 ? (size_t)(z1 - data) : 0;
    const uint8_t *rest = z1 ? z1 + 1 : data;
    size_t rlen = size - (size_t)(rest - data);
    const uint8_t *z2 = memchr(rest, '\0', rlen);
    size_t l2 = z2 ? (size_t)(z2 - rest) : 0;
    const uint8_t *orig = z2 ? z2 + 1 : rest;
    size_t olen = rlen - (size_t)(orig - rest);

    char *envid = fuzz_strndup(data, l1);
    char *diag = fuzz_strndup(rest, l2);
    /* The original as an exact-size heap copy, so ASan sees an over-read. */
    char *original = malloc(olen ? olen : 1);
    if (original == NULL)
        abort();
    memcpy(original, orig, olen);

    struct dsn_rcpt rc[2] = {
        {.recipient = "b@contoso.com", .orcpt = (flags & 8) ? diag : "rfc822;B@contoso.com",
         .action = (enum dsn_action)(flags % 5), .status = "5.7.1",
         .remote_mta = (flags & 16) ? envid : "mx.contoso.com", .diagnostic = diag,
         .last_attempt = 1795000050},
        {.recipient = (flags & 32) ? envid : "c@contoso.com", .action = DSN_DELAYED,
         .status = "4.4.7"},
    };
    struct dsn_report r = {
        .hostname = "relay.example.org",
        .sender = (flags & 64) ? diag : "a@example.org",
        .queue_id = "ABCDEFGHIJKLMNOP",
        .envid = (flags & 128) ? NULL : envid,
        .arrival = 1795000000,
        .now = 1795000100,
        .full = (flags & 4) != 0,
        .original = original,
        .original_len = olen,
        .boundary_seed = "SEED",
    };
    struct util_buf b = {0};
    dsn_build(&b, &r, rc, (flags & 2) ? 2 : 1);
    (void)dsn_header_length(original, olen);
    util_buf_fini(&b);
    free(original);
    free(diag);
    free(envid);
    return 0;
}
