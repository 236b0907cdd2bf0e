/* Unit tests for core/dns_wire: the query builder, the answer parser on
 * crafted and hostile answers (MX preferences, null MX, CNAME chains,
 * compression pointers and pointer loops, truncation at every offset,
 * counts larger than the packet, names over 255 octets, wrong ID or
 * question, NXDOMAIN, SERVFAIL, TC), and the MX sort and shuffle with an
 * injected random source. Every packet is parsed from a heap copy of its
 * exact size, so that ASan sees any over-read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/util.h"
#include "core/dns_wire.h"

#define ID 0xbeef
#define QR 0x8000
#define RD 0x0100
#define RA 0x0080
#define TC 0x0200

/* ---- A small packet writer ---- */

struct pkt {
    uint8_t b[4096];
    size_t len;
};

static void
p_u8(struct pkt *p, unsigned v)
{
    assert_true(p->len < sizeof p->b);
    p->b[p->len++] = (uint8_t)v;
}

static void
p_u16(struct pkt *p, unsigned v)
{
    p_u8(p, v >> 8);
    p_u8(p, v & 0xff);
}

static void
p_u32(struct pkt *p, unsigned long v)
{
    p_u16(p, (unsigned)(v >> 16));
    p_u16(p, (unsigned)(v & 0xffff));
}

static void
p_bytes(struct pkt *p, const void *v, size_t n)
{
    assert_true(p->len + n <= sizeof p->b);
    memcpy(p->b + p->len, v, n);
    p->len += n;
}

/* Labels of a dotted name, without the terminating zero ("" writes nothing). */
static void
p_labels(struct pkt *p, const char *name)
{
    while (*name != '\0') {
        size_t l = strcspn(name, ".");
        p_u8(p, (unsigned)l);
        p_bytes(p, name, l);
        name += l;
        if (*name == '.')
            name++;
    }
}

static void
p_name(struct pkt *p, const char *name)
{
    p_labels(p, name);
    p_u8(p, 0);
}

static void
p_ptr(struct pkt *p, size_t off)
{
    p_u16(p, 0xc000 | (unsigned)off);
}

static void
p_hdr(struct pkt *p, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
    p->len = 0;
    p_u16(p, id);
    p_u16(p, flags);
    p_u16(p, qd);
    p_u16(p, an);
    p_u16(p, 0);
    p_u16(p, 0);
}

static void
p_question(struct pkt *p, const char *name, unsigned type)
{
    p_name(p, name);
    p_u16(p, type);
    p_u16(p, 1);
}

/* Type, class IN, TTL and a length to be patched by p_rd_end. */
static size_t
p_rr(struct pkt *p, unsigned type)
{
    p_u16(p, type);
    p_u16(p, 1);
    p_u32(p, 3600);
    p_u16(p, 0);
    return p->len;
}

static void
p_rd_end(struct pkt *p, size_t rd)
{
    size_t n = p->len - rd;
    p->b[rd - 2] = (uint8_t)(n >> 8);
    p->b[rd - 1] = (uint8_t)n;
}

/* An MX record owned by the question name (a pointer to offset 12). */
static void
p_mx12(struct pkt *p, unsigned pref, const char *host)
{
    p_ptr(p, 12);
    size_t rd = p_rr(p, DNS_WIRE_MX);
    p_u16(p, pref);
    p_name(p, host);
    p_rd_end(p, rd);
}

static void
p_cname(struct pkt *p, const char *owner, const char *target)
{
    p_name(p, owner);
    size_t rd = p_rr(p, DNS_WIRE_CNAME);
    p_name(p, target);
    p_rd_end(p, rd);
}

/* Parse from an exact-size heap copy. */
static int
parse(const struct pkt *p, size_t len, const char *qname, unsigned qtype, struct dns_wire_answer *a)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, p->b, len);
    int rc = dns_wire_parse(copy, len, ID, qname, (uint16_t)qtype, a);
    free(copy);
    return rc;
}

static struct dns_wire_answer *
answer(void)
{
    return test_malloc(sizeof(struct dns_wire_answer));
}

/* ---- The query builder ---- */

static void
test_query_bytes(void **state)
{
    (void)state;
    uint8_t buf[DNS_WIRE_QUERY_MAX];
    static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0,   0,
                                   0,    0,    7,    'e',  'x', 'a', 'm', 'p', 'l', 'e',
                                   3,    'c',  'o',  'm',  0,   0,   15,  0,   1};
    int n = dns_wire_query(buf, sizeof buf, 0x1234, "Example.COM.", DNS_WIRE_MX);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    n = dns_wire_query(buf, sizeof buf, 1, "a", DNS_WIRE_AAAA);
    assert_int_equal(n, 12 + 3 + 4);
    assert_int_equal(buf[n - 3], 28);
    assert_int_equal(dns_wire_query(buf, 20, 1, "example.com", DNS_WIRE_MX), BH_ENOSPC);
}

static void
test_query_bad_names(void **state)
{
    (void)state;
    uint8_t buf[DNS_WIRE_QUERY_MAX];
    char long_label[70], name[300];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    static const char *const bad[] = {"", ".", "a..b", ".a", "a b", "a\tb", "caf\xc3\xa9.fr", ".."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(dns_wire_query(buf, sizeof buf, 1, bad[i], DNS_WIRE_MX), BH_EINVAL);
    assert_int_equal(dns_wire_query(buf, sizeof buf, 1, long_label, DNS_WIRE_MX), BH_EINVAL);
    long_label[63] = '\0';
    assert_true(dns_wire_query(buf, sizeof buf, 1, long_label, DNS_WIRE_MX) > 0);
    /* 253 octets in text is the limit (255 on the wire). */
    memset(name, 'a', 253);
    for (size_t i = 50; i < 253; i += 50)
        name[i] = '.';
    name[253] = '\0';
    assert_int_equal(dns_wire_query(buf, sizeof buf, 1, name, DNS_WIRE_MX), 12 + 255 + 4);
    name[253] = '.';
    name[254] = '\0';
    assert_int_equal(dns_wire_query(buf, sizeof buf, 1, name, DNS_WIRE_MX), 12 + 255 + 4);
    name[253] = 'a';
    assert_int_equal(dns_wire_query(buf, sizeof buf, 1, name, DNS_WIRE_MX), BH_EINVAL);
}

static void
test_name_norm(void **state)
{
    (void)state;
    char out[DNS_WIRE_NAME_MAX + 1];
    assert_int_equal(dns_wire_name_norm("MX1.Example.ORG.", out), 0);
    assert_string_equal(out, "mx1.example.org");
    assert_int_equal(dns_wire_name_norm("_srv.x-y.example", out), 0);
    assert_string_equal(out, "_srv.x-y.example");
    assert_int_equal(dns_wire_name_norm("a.b..", out), BH_EINVAL);
}

/* ---- The parser ---- */

/* example.com MX: 20 b, 10 a, 10 c, 30 d (owner by pointer, hosts plain). */
static void
mx_packet(struct pkt *p)
{
    p_hdr(p, ID, QR | RD | RA, 1, 4);
    p_question(p, "example.com", DNS_WIRE_MX);
    p_mx12(p, 20, "b.example.com");
    p_mx12(p, 10, "A.Example.Com");
    p_mx12(p, 10, "c.example.net");
    p_mx12(p, 30, "d.example.org");
}

static void
test_parse_mx(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    mx_packet(&p);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), 0);
    assert_int_equal(a->rcode, DNS_WIRE_NOERROR);
    assert_false(a->truncated);
    assert_int_equal(a->n, 4);
    assert_int_equal(a->bad, 0);
    assert_int_equal(a->mx[0].pref, 20);
    assert_string_equal(a->mx[0].host, "b.example.com");
    assert_string_equal(a->mx[1].host, "a.example.com"); /* lowercased */
    assert_int_equal(a->mx[3].pref, 30);
    assert_false(dns_wire_mx_null(a));
    test_free(a);
}

static void
test_parse_mx_compressed_hosts(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    p_hdr(&p, ID, QR, 1, 2);
    p_question(&p, "example.com", DNS_WIRE_MX);
    /* "mx1" + pointer to example.com in the question. */
    p_ptr(&p, 12);
    size_t rd = p_rr(&p, DNS_WIRE_MX);
    p_u16(&p, 5);
    size_t mx1 = p.len;
    p_labels(&p, "mx1");
    p_ptr(&p, 12);
    p_rd_end(&p, rd);
    /* "backup" + pointer to mx1.example.com: a pointer to a pointer. */
    p_ptr(&p, 12);
    rd = p_rr(&p, DNS_WIRE_MX);
    p_u16(&p, 7);
    p_labels(&p, "backup");
    p_ptr(&p, mx1);
    p_rd_end(&p, rd);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), 0);
    assert_int_equal(a->n, 2);
    assert_string_equal(a->mx[0].host, "mx1.example.com");
    assert_string_equal(a->mx[1].host, "backup.mx1.example.com");
    test_free(a);
}

static void
test_parse_null_mx(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    p_hdr(&p, ID, QR, 1, 1);
    p_question(&p, "nomail.example", DNS_WIRE_MX);
    p_mx12(&p, 0, "");
    assert_int_equal(parse(&p, p.len, "nomail.example", DNS_WIRE_MX, a), 0);
    assert_int_equal(a->n, 1);
    assert_string_equal(a->mx[0].host, "");
    assert_true(dns_wire_mx_null(a));
    /* A root exchange next to a real one is not a null MX. */
    p_hdr(&p, ID, QR, 1, 2);
    p_question(&p, "nomail.example", DNS_WIRE_MX);
    p_mx12(&p, 0, "");
    p_mx12(&p, 10, "mx.nomail.example");
    assert_int_equal(parse(&p, p.len, "nomail.example", DNS_WIRE_MX, a), 0);
    assert_false(dns_wire_mx_null(a));
    test_free(a);
}

static void
test_parse_mx_bad_exchange(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    p_hdr(&p, ID, QR, 1, 3);
    p_question(&p, "example.com", DNS_WIRE_MX);
    p_mx12(&p, 10, "192.0.2.1");    /* an IP address is not a host name */
    p_mx12(&p, 20, "-bad.example"); /* nor a label starting with '-' */
    p_mx12(&p, 30, "good.example");
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), 0);
    assert_int_equal(a->n, 1);
    assert_int_equal(a->bad, 2);
    assert_string_equal(a->mx[0].host, "good.example");
    test_free(a);
}

static void
test_parse_cname_chain(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    p_hdr(&p, ID, QR, 1, 5);
    p_question(&p, "www.example.com", DNS_WIRE_A);
    /* Out of order on purpose, with a decoy A owned by another name. */
    p_name(&p, "decoy.example");
    size_t rd = p_rr(&p, DNS_WIRE_A);
    p_bytes(&p, "\x0a\x00\x00\x09", 4);
    p_rd_end(&p, rd);
    p_cname(&p, "B.example.net", "c.example.org");
    p_name(&p, "c.example.org");
    rd = p_rr(&p, DNS_WIRE_A);
    p_bytes(&p, "\xc0\x00\x02\x01", 4);
    p_rd_end(&p, rd);
    p_ptr(&p, 12);
    rd = p_rr(&p, DNS_WIRE_CNAME);
    p_name(&p, "b.example.net");
    p_rd_end(&p, rd);
    p_name(&p, "c.example.org");
    rd = p_rr(&p, DNS_WIRE_A);
    p_bytes(&p, "\xc0\x00\x02\x02", 4);
    p_rd_end(&p, rd);
    assert_int_equal(parse(&p, p.len, "www.example.com", DNS_WIRE_A, a), 0);
    assert_int_equal(a->n, 2);
    assert_memory_equal(a->addr[0], "\xc0\x00\x02\x01", 4);
    assert_memory_equal(a->addr[1], "\xc0\x00\x02\x02", 4);
    test_free(a);
}

/* A chain of hops CNAMEs from n0 to n<hops>, which owns one AAAA. */
static void
chain_packet(struct pkt *p, unsigned hops, bool loop)
{
    char from[32], to[32];
    p_hdr(p, ID, QR, 1, hops + 1);
    p_question(p, "n0.example", DNS_WIRE_AAAA);
    for (unsigned i = 0; i < hops; i++) {
        snprintf(from, sizeof from, "n%u.example", i);
        snprintf(to, sizeof to, "n%u.example", loop && i + 1 == hops ? 0 : i + 1);
        p_cname(p, from, to);
    }
    snprintf(to, sizeof to, "n%u.example", hops);
    p_name(p, to);
    size_t rd = p_rr(p, DNS_WIRE_AAAA);
    p_bytes(p, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    p_rd_end(p, rd);
}

static void
test_parse_cname_limits(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    chain_packet(&p, DNS_WIRE_CNAME_MAX, false);
    assert_int_equal(parse(&p, p.len, "n0.example", DNS_WIRE_AAAA, a), 0);
    assert_int_equal(a->n, 1);
    assert_int_equal(a->addr[0][15], 1);
    chain_packet(&p, DNS_WIRE_CNAME_MAX + 1, false);
    assert_int_equal(parse(&p, p.len, "n0.example", DNS_WIRE_AAAA, a), BH_EINVAL);
    chain_packet(&p, 3, true); /* n0 -> n1 -> n2 -> n0 */
    assert_int_equal(parse(&p, p.len, "n0.example", DNS_WIRE_AAAA, a), BH_EINVAL);
    chain_packet(&p, 1, true); /* n0 -> n0 */
    assert_int_equal(parse(&p, p.len, "n0.example", DNS_WIRE_AAAA, a), BH_EINVAL);
    test_free(a);
}

static void
test_parse_pointer_loops(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    /* An owner that points at itself. */
    p_hdr(&p, ID, QR, 1, 1);
    p_question(&p, "example.com", DNS_WIRE_A);
    p_ptr(&p, p.len);
    p_rr(&p, DNS_WIRE_A);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_A, a), BH_EINVAL);
    /* A pointer forward. */
    p_hdr(&p, ID, QR, 1, 1);
    p_question(&p, "example.com", DNS_WIRE_A);
    p_ptr(&p, p.len + 2);
    p_name(&p, "x");
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_A, a), BH_EINVAL);
    /* Two pointers pointing at each other (one of them must go forward). */
    p_hdr(&p, ID, QR, 1, 1);
    p_question(&p, "example.com", DNS_WIRE_A);
    size_t first = p.len;
    p_ptr(&p, first + 2);
    p_ptr(&p, first);
    p_rr(&p, DNS_WIRE_A);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_A, a), BH_EINVAL);
    /* A pointer back to a label before it, in the same name: "b.b.b..."
     * forever, which a rule of "pointers only point backwards" lets by. */
    p_hdr(&p, ID, QR, 1, 1);
    p_question(&p, "example.com", DNS_WIRE_A);
    first = p.len;
    p_labels(&p, "b");
    p_ptr(&p, first);
    p_rr(&p, DNS_WIRE_A);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_A, a), BH_EINVAL);
    /* The same reached through an owner that points at it. */
    p_hdr(&p, ID, QR, 1, 2);
    p_question(&p, "example.com", DNS_WIRE_A);
    p_ptr(&p, 12);
    size_t rd = p_rr(&p, DNS_WIRE_CNAME);
    first = p.len;
    p_labels(&p, "b");
    p_ptr(&p, first);
    p_rd_end(&p, rd);
    p_ptr(&p, first);
    p_rr(&p, DNS_WIRE_A);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_A, a), BH_EINVAL);
    /* The 0x40 and 0x80 label types. */
    p_hdr(&p, ID, QR, 1, 1);
    p_question(&p, "example.com", DNS_WIRE_A);
    p_u8(&p, 0x41);
    p_u8(&p, 0);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_A, a), BH_EINVAL);
    test_free(a);
}

static void
test_parse_truncated_everywhere(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    mx_packet(&p);
    for (size_t len = 0; len < p.len; len++) {
        int rc = parse(&p, len, "example.com", DNS_WIRE_MX, a);
        assert_true(rc == BH_EINVAL || rc == BH_ENOENT);
        if (len >= 12 + 17)
            assert_int_equal(rc, BH_EINVAL); /* the question is whole: it is ours */
    }
    test_free(a);
}

static void
test_parse_counts_beyond_packet(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    mx_packet(&p);
    p.b[6] = 0xff; /* 65280 + 4 answers in a packet that holds 4 */
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_EINVAL);
    /* An RDATA length past the end. */
    mx_packet(&p);
    p.b[12 + 17 + 2 + 8] = 0x40;
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_EINVAL);
    /* An MX whose exchange runs past its RDATA. */
    mx_packet(&p);
    p.b[12 + 17 + 2 + 9] = 5;
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_EINVAL);
    test_free(a);
}

static void
test_parse_long_names(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    char l63[64], l61[62], name[300];
    memset(l63, 'x', 63);
    l63[63] = '\0';
    memset(l61, 'y', 61);
    l61[61] = '\0';
    /* 3 x 63 + 61: 255 octets on the wire, 253 in text: the limit. */
    snprintf(name, sizeof name, "%s.%s.%s.%s", l63, l63, l63, l61);
    p_hdr(&p, ID, QR, 1, 1);
    p_question(&p, "example.com", DNS_WIRE_MX);
    p_mx12(&p, 1, name);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), 0);
    assert_int_equal(a->n + a->bad, 1);
    /* One more label octet: 256. */
    snprintf(name, sizeof name, "%s.%s.%s.%sy", l63, l63, l63, l61);
    p_hdr(&p, ID, QR, 1, 1);
    p_question(&p, "example.com", DNS_WIRE_MX);
    p_mx12(&p, 1, name);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_EINVAL);
    /* Over 255 only through a pointer: 243 octets of labels + example.com. */
    l61[50] = '\0';
    snprintf(name, sizeof name, "%s.%s.%s.%s", l63, l63, l63, l61);
    p_hdr(&p, ID, QR, 1, 1);
    p_question(&p, "example.com", DNS_WIRE_MX);
    p_ptr(&p, 12);
    size_t rd = p_rr(&p, DNS_WIRE_MX);
    p_u16(&p, 1);
    p_labels(&p, name);
    p_ptr(&p, 12);
    p_rd_end(&p, rd);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_EINVAL);
    test_free(a);
}

static void
test_parse_bad_label_octets(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    static const char *const bad[] = {"a.b", "a b", "a\001b"};
    for (size_t i = 0; i < 3; i++) {
        p_hdr(&p, ID, QR, 1, 1);
        p_question(&p, "example.com", DNS_WIRE_MX);
        p_ptr(&p, 12);
        size_t rd = p_rr(&p, DNS_WIRE_MX);
        p_u16(&p, 1);
        p_u8(&p, 3);
        p_bytes(&p, bad[i], 3); /* one label holding a dot, a space, a control */
        p_u8(&p, 0);
        p_rd_end(&p, rd);
        assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_EINVAL);
    }
    test_free(a);
}

static void
test_parse_not_ours(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    mx_packet(&p);
    assert_int_equal(parse(&p, p.len, "example.org", DNS_WIRE_MX, a), BH_ENOENT);
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_A, a), BH_ENOENT);
    assert_int_equal(parse(&p, p.len, "sub.example.com", DNS_WIRE_MX, a), BH_ENOENT);
    p.b[1] ^= 1; /* wrong ID */
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_ENOENT);
    mx_packet(&p);
    p.b[2] &= 0x7f; /* a query, not a response */
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_ENOENT);
    mx_packet(&p);
    p.b[2] |= 0x10; /* opcode 2 */
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_ENOENT);
    mx_packet(&p);
    p.b[5] = 2; /* two questions */
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_ENOENT);
    mx_packet(&p);
    p.b[12 + 17 - 1] = 3; /* class CH */
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), BH_ENOENT);
    /* The question is compared without regard to case. */
    mx_packet(&p);
    p.b[13] = 'E';
    assert_int_equal(parse(&p, p.len, "example.com", DNS_WIRE_MX, a), 0);
    test_free(a);
}

static void
test_parse_rcodes(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    p_hdr(&p, ID, QR | RD | RA | DNS_WIRE_NXDOMAIN, 1, 0);
    p_question(&p, "nowhere.example", DNS_WIRE_MX);
    assert_int_equal(parse(&p, p.len, "nowhere.example", DNS_WIRE_MX, a), 0);
    assert_int_equal(a->rcode, DNS_WIRE_NXDOMAIN);
    assert_int_equal(a->n, 0);
    p_hdr(&p, ID, QR | DNS_WIRE_SERVFAIL, 1, 0);
    p_question(&p, "broken.example", DNS_WIRE_MX);
    assert_int_equal(parse(&p, p.len, "broken.example", DNS_WIRE_MX, a), 0);
    assert_int_equal(a->rcode, DNS_WIRE_SERVFAIL);
    /* An error without the question is still the answer to our ID. */
    p_hdr(&p, ID, QR | DNS_WIRE_REFUSED, 0, 0);
    assert_int_equal(parse(&p, p.len, "broken.example", DNS_WIRE_MX, a), 0);
    assert_int_equal(a->rcode, DNS_WIRE_REFUSED);
    /* NOERROR and NXDOMAIN need the question. */
    p_hdr(&p, ID, QR | DNS_WIRE_NXDOMAIN, 0, 0);
    assert_int_equal(parse(&p, p.len, "broken.example", DNS_WIRE_MX, a), BH_ENOENT);
    /* NOERROR with no answer: no data. */
    p_hdr(&p, ID, QR, 1, 0);
    p_question(&p, "nomx.example", DNS_WIRE_MX);
    assert_int_equal(parse(&p, p.len, "nomx.example", DNS_WIRE_MX, a), 0);
    assert_int_equal(a->rcode, DNS_WIRE_NOERROR);
    assert_int_equal(a->n, 0);
    test_free(a);
}

static void
test_parse_tc(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    p_hdr(&p, ID, QR | TC, 1, 9); /* the answers claimed are not there */
    p_question(&p, "big.example", DNS_WIRE_MX);
    assert_int_equal(parse(&p, p.len, "big.example", DNS_WIRE_MX, a), 0);
    assert_true(a->truncated);
    assert_int_equal(a->n, 0);
    test_free(a);
}

static void
test_parse_addresses(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    p_hdr(&p, ID, QR, 1, 40 + 1);
    p_question(&p, "many.example", DNS_WIRE_A);
    for (unsigned i = 0; i < 40; i++) {
        p_ptr(&p, 12);
        size_t rd = p_rr(&p, DNS_WIRE_A);
        p_bytes(&p, "\x0a\x00\x00", 3);
        p_u8(&p, i);
        p_rd_end(&p, rd);
    }
    /* A record of class CH is ignored. */
    p_ptr(&p, 12);
    p_u16(&p, DNS_WIRE_A);
    p_u16(&p, 3);
    p_u32(&p, 0);
    p_u16(&p, 4);
    p_bytes(&p, "\x01\x02\x03\x04", 4);
    assert_int_equal(parse(&p, p.len, "many.example", DNS_WIRE_A, a), 0);
    assert_int_equal(a->n, DNS_WIRE_MAX_RECS);
    assert_int_equal(a->addr[31][3], 31);
    /* An A record of the wrong length. */
    p_hdr(&p, ID, QR, 1, 1);
    p_question(&p, "short.example", DNS_WIRE_A);
    p_ptr(&p, 12);
    size_t rd = p_rr(&p, DNS_WIRE_A);
    p_bytes(&p, "\x0a\x00\x00", 3);
    p_rd_end(&p, rd);
    assert_int_equal(parse(&p, p.len, "short.example", DNS_WIRE_A, a), BH_EINVAL);
    test_free(a);
}

/* More MX records than are kept: the most preferred stay, in any order of
 * the records (here the worst come first). */
static void
test_parse_mx_keeps_best(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_wire_answer *a = answer();
    char host[32];
    p_hdr(&p, ID, QR, 1, 40);
    p_question(&p, "many.example", DNS_WIRE_MX);
    for (unsigned i = 0; i < 40; i++) {
        snprintf(host, sizeof host, "mx%u.many.example", 40 - i);
        p_mx12(&p, 40 - i, host);
    }
    assert_int_equal(parse(&p, p.len, "many.example", DNS_WIRE_MX, a), 0);
    assert_int_equal(a->n, DNS_WIRE_MAX_RECS);
    unsigned seen = 0;
    for (size_t i = 0; i < a->n; i++) {
        assert_true(a->mx[i].pref >= 1 && a->mx[i].pref <= DNS_WIRE_MAX_RECS);
        snprintf(host, sizeof host, "mx%u.many.example", a->mx[i].pref);
        assert_string_equal(a->mx[i].host, host);
        seen++;
    }
    assert_int_equal(seen, DNS_WIRE_MAX_RECS);
    test_free(a);
}

static uint64_t
splitmix(void *arg)
{
    uint64_t *s = arg;
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Random bytes flipped in a good answer: never a crash or an over-read. */
static void
test_parse_mutations(void **state)
{
    (void)state;
    struct pkt good, p;
    struct dns_wire_answer *a = answer();
    uint64_t seed = 42;
    mx_packet(&good);
    for (int round = 0; round < 20000; round++) {
        p = good;
        int flips = 1 + (int)(splitmix(&seed) % 4);
        for (int i = 0; i < flips; i++)
            p.b[splitmix(&seed) % p.len] = (uint8_t)splitmix(&seed);
        size_t len = p.len - (size_t)(splitmix(&seed) % 3);
        int rc = parse(&p, len, "example.com", DNS_WIRE_MX, a);
        assert_true(rc == 0 || rc == BH_EINVAL || rc == BH_ENOENT);
        assert_true(a->n <= DNS_WIRE_MAX_RECS);
        for (size_t i = 0; rc == 0 && i < a->n; i++)
            assert_true(strlen(a->mx[i].host) <= DNS_WIRE_NAME_MAX);
    }
    test_free(a);
}

/* ---- MX order ---- */

static void
set_mx(struct dns_wire_mx *m, unsigned pref, const char *host)
{
    m->pref = (uint16_t)pref;
    snprintf(m->host, sizeof m->host, "%s", host);
}

static uint64_t
always_zero(void *arg)
{
    (void)arg;
    return 0;
}

static void
test_mx_sort(void **state)
{
    (void)state;
    struct dns_wire_mx v[7];
    set_mx(&v[0], 30, "d");
    set_mx(&v[1], 10, "a");
    set_mx(&v[2], 20, "c");
    set_mx(&v[3], 10, "b");
    set_mx(&v[4], 0, "");   /* a root exchange next to real ones is dropped */
    set_mx(&v[5], 40, "a"); /* a second entry for a is dropped */
    set_mx(&v[6], 20, "e");
    size_t n = 7;
    /* With rnd always 0, Fisher-Yates rotates each run of equal preference. */
    dns_wire_mx_sort(v, &n, always_zero, NULL);
    assert_int_equal(n, 5);
    assert_string_equal(v[0].host, "b");
    assert_string_equal(v[1].host, "a");
    assert_string_equal(v[2].host, "e");
    assert_string_equal(v[3].host, "c");
    assert_string_equal(v[4].host, "d");
    assert_int_equal(v[0].pref, 10);
    assert_int_equal(v[2].pref, 20);
    assert_int_equal(v[4].pref, 30);
}

static void
test_mx_shuffle_covers_orders(void **state)
{
    (void)state;
    /* Three hosts of preference 10 between 5 and 20: over many seeds every
     * one of the 6 orders shows up, and 5 and 20 never move. */
    int seen[3][3] = {{0}};
    uint64_t seed = 7;
    for (int round = 0; round < 600; round++) {
        struct dns_wire_mx v[5];
        set_mx(&v[0], 10, "x");
        set_mx(&v[1], 20, "last");
        set_mx(&v[2], 10, "y");
        set_mx(&v[3], 5, "first");
        set_mx(&v[4], 10, "z");
        size_t n = 5;
        dns_wire_mx_sort(v, &n, splitmix, &seed);
        assert_int_equal(n, 5);
        assert_string_equal(v[0].host, "first");
        assert_string_equal(v[4].host, "last");
        for (int i = 0; i < 3; i++) {
            assert_int_equal(v[i + 1].pref, 10);
            seen[i][v[i + 1].host[0] - 'x']++;
        }
    }
    for (int i = 0; i < 3; i++)
        for (int h = 0; h < 3; h++)
            assert_true(seen[i][h] > 120); /* about 200 each */
}

static void
test_mx_sort_empty(void **state)
{
    (void)state;
    struct dns_wire_mx v[2];
    set_mx(&v[0], 0, "");
    set_mx(&v[1], 10, "");
    size_t n = 2;
    dns_wire_mx_sort(v, &n, always_zero, NULL);
    assert_int_equal(n, 0);
    n = 0;
    dns_wire_mx_sort(v, &n, always_zero, NULL);
    assert_int_equal(n, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_bytes),
        cmocka_unit_test(test_query_bad_names),
        cmocka_unit_test(test_name_norm),
        cmocka_unit_test(test_parse_mx),
        cmocka_unit_test(test_parse_mx_compressed_hosts),
        cmocka_unit_test(test_parse_null_mx),
        cmocka_unit_test(test_parse_mx_bad_exchange),
        cmocka_unit_test(test_parse_cname_chain),
        cmocka_unit_test(test_parse_cname_limits),
        cmocka_unit_test(test_parse_pointer_loops),
        cmocka_unit_test(test_parse_truncated_everywhere),
        cmocka_unit_test(test_parse_counts_beyond_packet),
        cmocka_unit_test(test_parse_long_names),
        cmocka_unit_test(test_parse_bad_label_octets),
        cmocka_unit_test(test_parse_not_ours),
        cmocka_unit_test(test_parse_rcodes),
        cmocka_unit_test(test_parse_tc),
        cmocka_unit_test(test_parse_addresses),
        cmocka_unit_test(test_parse_mx_keeps_best),
        cmocka_unit_test(test_parse_mutations),
        cmocka_unit_test(test_mx_sort),
        cmocka_unit_test(test_mx_shuffle_covers_orders),
        cmocka_unit_test(test_mx_sort_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
