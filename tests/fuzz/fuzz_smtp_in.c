/*
 * Fuzz core/smtp_in: byte 0 holds flags (bit 0: refuse checks with 550
 * instead of 250, bit 1: alternate between 250 and 550, bit 2: greet
 * after the first piece), byte 1 seeds the split points; the rest is the
 * client's byte stream, fed in pieces. Every check is answered and
 * STARTTLS is reported as done, so the machine goes as deep as it can.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/smtp_in.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
    uint8_t flags;
    unsigned nchecks;
    bool turned; /* ATRN turned the session around, or it closed */
};

static bool
is_check(enum smtp_in_type t)
{
    return t == SMTP_IN_AUTH_CHECK || t == SMTP_IN_CHECK_MAIL || t == SMTP_IN_CHECK_RCPT ||
           t == SMTP_IN_COMMIT || t == SMTP_IN_ETRN || t == SMTP_IN_ATRN;
}

static void
drain(struct smtp_in *m, struct state *st)
{
    struct smtp_in_action act;
    volatile size_t sink = 0;
    while (smtp_in_next(m, &act)) {
        switch (act.type) {
        case SMTP_IN_REPLY:
        case SMTP_IN_DATA:
            /* Touch every byte so ASan sees a bad pointer or length. */
            for (size_t i = 0; i < act.len; i++)
                sink += (unsigned char)act.text[i];
            break;
        case SMTP_IN_STARTTLS:
            smtp_in_tls_started(m);
            break;
        case SMTP_IN_CLOSE:
            st->turned = true;
            break;
        default:
            break;
        }
        if (act.type == SMTP_IN_CHECK_MAIL && act.mail != NULL && act.mail->sender != NULL)
            sink += strlen(act.mail->sender);
        if (act.type == SMTP_IN_CHECK_RCPT && act.rcpt != NULL && act.rcpt->addr != NULL)
            sink += strlen(act.rcpt->addr);
        if (is_check(act.type)) {
            bool refuse = (st->flags & 1) != 0;
            if (st->flags & 2)
                refuse = (st->nchecks & 1) != 0;
            st->nchecks++;
            if (act.type == SMTP_IN_ATRN && !refuse)
                st->turned = true;
            if (refuse)
                smtp_in_result(m, 550, "5.7.1 no");
            else
                smtp_in_result(m, 250, "2.0.0 ok");
        }
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

    struct smtp_in_params p = {
        .hostname = "mx.example.org",
        .max_message_size = 10000,
        .max_recipients = 5,
        .tls_available = true,
        .auth_available = true,
        .odmr = (st.flags & 8) != 0,
    };
    struct smtp_in *m = smtp_in_new(&p);
    if (m == NULL)
        return 0;
    bool greeted = false;
    if (!(st.flags & 4)) {
        smtp_in_greet(m);
        greeted = true;
    }
    drain(m, &st);

    size_t off = 0;
    while (off < size && !st.turned) {
        size_t n = fuzz_piece(&rng, size - off, 64);
        size_t took = smtp_in_feed(m, (const char *)data + off, n);
        if (!greeted) {
            smtp_in_greet(m);
            greeted = true;
        }
        drain(m, &st);
        if (took == 0) {
            /* Full buffer with nothing to act on, or turned around: a
             * second try after draining must make progress. */
            took = smtp_in_feed(m, (const char *)data + off, n);
            drain(m, &st);
            if (took == 0)
                break;
        }
        off += took;
    }
    if (st.flags & 16) {
        smtp_in_shutdown(m);
        drain(m, &st);
    }
    smtp_in_free(m);
    return 0;
}
