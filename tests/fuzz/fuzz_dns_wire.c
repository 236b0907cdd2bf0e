/*
 * Fuzz core/dns_wire: byte 0 picks the question (qtype and qname), the
 * rest is the answer packet, parsed from a heap copy of its exact size.
 * The ID is taken from the packet itself so that most inputs get past the
 * header check. MX answers then go through dns_wire_mx_null and
 * dns_wire_mx_sort; the query builder gets a name made of packet bytes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dns_wire.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const qnames[] = {"example.com", "mx.example.org", "a", "x.y.z.example.net"};
static const uint16_t qtypes[] = {DNS_WIRE_MX, DNS_WIRE_A, DNS_WIRE_AAAA, DNS_WIRE_CNAME};

static uint64_t
rnd(void *arg)
{
    return fuzz_rng_next(arg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    const char *qname = qnames[(sel >> 2) & 3];
    uint16_t qtype = qtypes[sel & 3];
    uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
    if (sel & 0x80)
        id ^= 1; /* sometimes the wrong ID */

    uint8_t *pkt = malloc(size ? size : 1);
    if (pkt == NULL)
        abort();
    memcpy(pkt, data, size);
    struct dns_wire_answer *a = malloc(sizeof *a);
    if (a == NULL)
        abort();
    memset(a, 0xa5, sizeof *a);
    int rc = dns_wire_parse(pkt, size, id, qname, qtype, a);
    if (rc == 0 && a->rcode == DNS_WIRE_NOERROR && !a->truncated) {
        if (a->n > DNS_WIRE_MAX_RECS)
            abort();
        if (qtype == DNS_WIRE_MX) {
            for (size_t i = 0; i < a->n; i++)
                if (memchr(a->mx[i].host, '\0', sizeof a->mx[i].host) == NULL)
                    abort();
            (void)dns_wire_mx_null(a);
            struct fuzz_rng r = {.s = sel};
            size_t n = a->n;
            dns_wire_mx_sort(a->mx, &n, rnd, &r);
            if (n > a->n)
                abort();
        }
    }

    /* The name side: the packet bytes as a name to normalise and ask. */
    char *name = fuzz_strndup(data, size < 300 ? size : 300);
    char norm[DNS_WIRE_NAME_MAX + 1];
    uint8_t q[DNS_WIRE_QUERY_MAX];
    if (dns_wire_name_norm(name, norm) == 0) {
        int n = dns_wire_query(q, sizeof q, id, norm, qtype);
        if (n > (int)sizeof q)
            abort();
    }
    free(name);
    free(a);
    free(pkt);
    return 0;
}
