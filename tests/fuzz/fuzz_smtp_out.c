/*
 * Fuzz core/smtp_out: byte 0 holds flags (bit 0: the TLS handshake
 * succeeds, bit 1: STARTTLS MUST instead of IF_OFFERED, bit 2: send the
 * body in two chunks, bit 3: end with a timeout instead of EOF), byte 1
 * seeds the split points; the rest is what the server says, fed in
 * pieces. The first READY sends one small message, later ones QUIT.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/smtp_out.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct smtp_out_rcpt rcpts[] = {
    {.address = "bob@example.com", .notify = SMTP_OUT_NOTIFY_FAILURE | SMTP_OUT_NOTIFY_SUCCESS,
     .orcpt = "rfc822;bob@example.com"},
    {.address = "carol@example.com"},
};

static const struct smtp_out_msg msg = {
    .sender = "alice@example.org",
    .rcpts = rcpts,
    .nrcpts = 2,
    .envid = "ENV1",
    .ret = SMTP_OUT_RET_HDRS,
    .size = 120,
};

static const char body[] = "Subject: hi\r\n\r\n.leading dot\nbare lf\rbare cr\r\n.\r\nend";

struct state {
    uint8_t flags;
    bool sent;
    bool closed;
};

static void
drain(struct smtp_out *m, struct state *st)
{
    struct smtp_out_act act;
    volatile size_t sink = 0;
    while (smtp_out_next(m, &act)) {
        switch (act.type) {
        case SMTP_OUT_WRITE:
            for (size_t i = 0; i < act.len; i++)
                sink += (unsigned char)act.data[i];
            break;
        case SMTP_OUT_START_TLS:
            smtp_out_tls_done(m, (st->flags & 1) != 0);
            break;
        case SMTP_OUT_READY:
            if (!st->sent) {
                st->sent = true;
                if (smtp_out_send(m, &msg) != 0)
                    smtp_out_quit(m);
            } else {
                smtp_out_quit(m);
            }
            break;
        case SMTP_OUT_BODY_WANTED:
            if (st->flags & 4) {
                smtp_out_body(m, body, 20, false);
                smtp_out_body(m, body + 20, sizeof body - 1 - 20, true);
            } else {
                smtp_out_body(m, body, sizeof body - 1, true);
            }
            break;
        case SMTP_OUT_MESSAGE_DONE:
            for (size_t i = 0; i < act.nresults; i++)
                sink += strlen(act.results[i].text) + strlen(act.results[i].status);
            break;
        case SMTP_OUT_CLOSE:
            st->closed = true;
            if (act.text != NULL)
                sink += strlen(act.text);
            sink += strlen(smtp_out_outcome_name(act.outcome));
            break;
        default:
            break;
        }
        (void)smtp_out_waiting(m);
    }
    (void)sink;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct state st = {.flags = data[0]};
    struct fuzz_rng rng = {.s = data[1] | (uint32_t)data[0] << 8};
    data += 2;
    size -= 2;

    struct smtp_out_params p = {
        .helo_name = "relay.example.org",
        .use_ehlo = true,
        .starttls = (st.flags & 2) ? SMTP_OUT_STARTTLS_MUST : SMTP_OUT_STARTTLS_IF_OFFERED,
        .auth_user = (st.flags & 16) ? "user" : NULL,
        .auth_pass = (st.flags & 16) ? "secret" : NULL,
    };
    struct smtp_out *m = smtp_out_new(&p);
    if (m == NULL)
        return 0;
    drain(m, &st);
    size_t off = 0;
    while (off < size && !st.closed) {
        size_t n = fuzz_piece(&rng, size - off, 128);
        smtp_out_feed(m, (const char *)data + off, n);
        off += n;
        drain(m, &st);
    }
    if (!st.closed) {
        if (st.flags & 8)
            smtp_out_timeout(m);
        else
            smtp_out_eof(m);
        drain(m, &st);
    }
    (void)smtp_out_extensions(m);
    (void)smtp_out_size_limit(m);
    smtp_out_free(m);
    return 0;
}
