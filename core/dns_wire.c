#include "core/dns_wire.h"

#include <string.h>

#include "connectors/domain.h"
#include "connectors/util.h"

#define CLASS_IN 1
#define FLAG_QR 0x8000u
#define FLAG_TC 0x0200u
#define FLAG_RD 0x0100u
#define NAME_WIRE_MAX 255
/* More jumps than any honest name needs (one pointer per name is usual);
 * the cap keeps a hostile chain of short pointers cheap. */
#define NAME_JUMPS_MAX 64

/* One resource record of the answer section, located in the packet. */
struct rr {
    char owner[DNS_WIRE_NAME_MAX + 1];
    uint16_t type, cls;
    size_t rd, rdlen; /* offset and length of the RDATA */
};

/* The answer being read: packet and where its answer section starts. */
struct scan {
    const uint8_t *p;
    size_t len;
    size_t an_off;
    unsigned ancount;
};

static uint16_t
rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static void
wr16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static char
lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* A label octet that can appear in a name we pass on: printable ASCII and
 * not '.', so that the text form of a name is unambiguous. */
static bool
label_octet_ok(unsigned c)
{
    return c >= 0x21 && c <= 0x7e && c != '.';
}

int
dns_wire_name_norm(const char *in, char *out)
{
    size_t len = strlen(in), label = 0;
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_WIRE_NAME_MAX)
        return BH_EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '.') {
            if (label == 0)
                return BH_EINVAL;
            label = 0;
        } else if (!label_octet_ok(c) || ++label > DOMAIN_LABEL_MAX) {
            return BH_EINVAL;
        }
        out[i] = lower((char)c);
    }
    out[len] = '\0';
    return label == 0 ? BH_EINVAL : 0;
}

int
dns_wire_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype)
{
    char norm[DNS_WIRE_NAME_MAX + 1];
    if (dns_wire_name_norm(name, norm) < 0)
        return BH_EINVAL;
    size_t nlen = strlen(norm), need = 12 + nlen + 2 + 4;
    if (cap < need)
        return BH_ENOSPC;
    memset(buf, 0, 12);
    wr16(buf, id);
    wr16(buf + 2, FLAG_RD);
    wr16(buf + 4, 1);
    size_t o = 12;
    for (const char *s = norm; *s != '\0';) {
        size_t l = strcspn(s, ".");
        buf[o++] = (uint8_t)l;
        memcpy(buf + o, s, l);
        o += l;
        s += l;
        if (*s == '.')
            s++;
    }
    buf[o++] = 0;
    wr16(buf + o, qtype);
    wr16(buf + o + 2, CLASS_IN);
    return (int)(o + 4);
}

/* Append one label (n octets at src) to the text name in out. */
static int
label_copy(char *out, size_t *o, const uint8_t *src, size_t n)
{
    if (*o > 0)
        out[(*o)++] = '.';
    for (size_t i = 0; i < n; i++) {
        if (!label_octet_ok(src[i]))
            return BH_EINVAL;
        out[(*o)++] = lower((char)src[i]);
    }
    return 0;
}

/*
 * Read the (possibly compressed) name at off into out (lowercase text, ""
 * for the root). *end is the offset just past the name where it sits. A
 * pointer must point before where the last jump landed (the name's start,
 * for the first), so the jumps strictly go back and cannot loop; the wire
 * length cap (255) bounds the labels, which bounds the text (253).
 */
static int
read_name(const uint8_t *p, size_t len, size_t off, char *out, size_t *end)
{
    size_t pos = off, limit = off, o = 0, wire = 1;
    unsigned jumps = 0;
    for (;;) {
        if (pos >= len)
            return BH_EINVAL;
        unsigned c = p[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= len || ++jumps > NAME_JUMPS_MAX)
                return BH_EINVAL;
            size_t ptr = (size_t)(c & 0x3f) << 8 | p[pos + 1];
            if (ptr >= limit)
                return BH_EINVAL;
            if (jumps == 1)
                *end = pos + 2;
            pos = limit = ptr;
            continue;
        }
        if ((c & 0xc0) != 0)
            return BH_EINVAL; /* the extended label types are obsolete */
        if (c == 0)
            break;
        wire += c + 1;
        if (wire > NAME_WIRE_MAX || len - pos - 1 < c || label_copy(out, &o, p + pos + 1, c) < 0)
            return BH_EINVAL;
        pos += 1 + c;
    }
    if (jumps == 0)
        *end = pos + 1;
    out[o] = '\0';
    return 0;
}

/* Read the resource record at *off and move *off past it. */
static int
next_rr(const struct scan *s, size_t *off, struct rr *r)
{
    size_t end;
    if (read_name(s->p, s->len, *off, r->owner, &end) < 0 || s->len - end < 10)
        return BH_EINVAL;
    r->type = rd16(s->p + end);
    r->cls = rd16(s->p + end + 2);
    r->rdlen = rd16(s->p + end + 8);
    r->rd = end + 10;
    if (s->len - r->rd < r->rdlen)
        return BH_EINVAL;
    *off = r->rd + r->rdlen;
    return 0;
}

/* Read a name that must lie inside the RDATA of r, starting at off. */
static int
rdata_name(const struct scan *s, const struct rr *r, size_t off, char *out)
{
    size_t end;
    if (off >= r->rd + r->rdlen || read_name(s->p, s->len, off, out, &end) < 0 ||
        end > r->rd + r->rdlen)
        return BH_EINVAL;
    return 0;
}

/* The CNAME owned by name, if any: 1 and its target in next, 0, or an error.
 * The whole section is checked by collect(), which always runs last. */
static int
find_cname(const struct scan *s, const char *name, char *next)
{
    size_t off = s->an_off;
    struct rr r;
    for (unsigned i = 0; i < s->ancount; i++) {
        if (next_rr(s, &off, &r) < 0)
            return BH_EINVAL;
        if (r.type == DNS_WIRE_CNAME && r.cls == CLASS_IN && strcmp(r.owner, name) == 0)
            return rdata_name(s, &r, r.rd, next) < 0 ? BH_EINVAL : 1;
    }
    return 0;
}

static int
keep_mx(const struct scan *s, const struct rr *r, struct dns_wire_answer *out)
{
    struct dns_wire_mx mx;
    char norm[DOMAIN_MAX + 1];
    if (r->rdlen < 3 || rdata_name(s, r, r->rd + 2, mx.host) < 0)
        return BH_EINVAL;
    mx.pref = rd16(s->p + r->rd);
    if (mx.host[0] != '\0' && domain_normalise(mx.host, strlen(mx.host), norm) < 0) {
        out->bad++; /* an IP address or other junk where a host name belongs */
        return 0;
    }
    if (out->n < DNS_WIRE_MAX_RECS) {
        out->mx[out->n++] = mx;
        return 0;
    }
    /* Full: keep the most preferred, whatever order the records came in. */
    size_t worst = 0;
    for (size_t i = 1; i < out->n; i++)
        if (out->mx[i].pref > out->mx[worst].pref)
            worst = i;
    if (mx.pref < out->mx[worst].pref)
        out->mx[worst] = mx;
    return 0;
}

static int
keep_rr(const struct scan *s, const struct rr *r, uint16_t qtype, struct dns_wire_answer *out)
{
    if (qtype == DNS_WIRE_MX)
        return keep_mx(s, r, out);
    size_t want = qtype == DNS_WIRE_A ? 4 : qtype == DNS_WIRE_AAAA ? 16 : 0;
    if (want == 0)
        return 0;
    if (r->rdlen != want)
        return BH_EINVAL;
    if (out->n < DNS_WIRE_MAX_RECS)
        memcpy(out->addr[out->n++], s->p + r->rd, want);
    return 0;
}

/* Walk the whole answer section and keep the records of qtype owned by name. */
static int
collect(const struct scan *s, const char *name, uint16_t qtype, struct dns_wire_answer *out)
{
    size_t off = s->an_off;
    struct rr r;
    for (unsigned i = 0; i < s->ancount; i++) {
        if (next_rr(s, &off, &r) < 0)
            return BH_EINVAL;
        if (r.type != qtype || r.cls != CLASS_IN || strcmp(r.owner, name) != 0)
            continue;
        if (keep_rr(s, &r, qtype, out) < 0)
            return BH_EINVAL;
    }
    return 0;
}

/* Follow the CNAME chain from qname, then collect what its end owns. */
static int
read_answers(const struct scan *s, const char *qname, uint16_t qtype, struct dns_wire_answer *out)
{
    char cur[DNS_WIRE_NAME_MAX + 1], next[DNS_WIRE_NAME_MAX + 1];
    size_t qlen = strlen(qname);
    if (qlen >= sizeof cur)
        return BH_EINVAL;
    memcpy(cur, qname, qlen + 1);
    for (unsigned hops = 0;; hops++) {
        int r = find_cname(s, cur, next);
        if (r < 0)
            return BH_EINVAL;
        if (r == 0)
            break;
        if (hops == DNS_WIRE_CNAME_MAX)
            return BH_EINVAL; /* too long, or a loop */
        memcpy(cur, next, sizeof cur);
    }
    return collect(s, cur, qtype, out);
}

/* Check that the one question is ours; set *off past it. */
static int
check_question(const struct scan *s, const char *qname, uint16_t qtype, size_t *off)
{
    char name[DNS_WIRE_NAME_MAX + 1];
    size_t end;
    if (read_name(s->p, s->len, 12, name, &end) < 0 || s->len - end < 4)
        return BH_EINVAL;
    if (strcmp(name, qname) != 0 || rd16(s->p + end) != qtype || rd16(s->p + end + 2) != CLASS_IN)
        return BH_ENOENT;
    *off = end + 4;
    return 0;
}

int
dns_wire_parse(const uint8_t *pkt, size_t len, uint16_t id, const char *qname, uint16_t qtype,
               struct dns_wire_answer *out)
{
    memset(out, 0, sizeof *out);
    if (len < 12 || rd16(pkt) != id)
        return BH_ENOENT;
    unsigned flags = rd16(pkt + 2), qdcount = rd16(pkt + 4);
    if ((flags & FLAG_QR) == 0 || ((flags >> 11) & 0xf) != 0)
        return BH_ENOENT;
    out->rcode = (int)(flags & 0xf);
    struct scan s = {pkt, len, 0, rd16(pkt + 6)};
    if (qdcount == 0 && out->rcode != DNS_WIRE_NOERROR && out->rcode != DNS_WIRE_NXDOMAIN)
        return 0; /* some servers leave the question out of an error */
    if (qdcount != 1)
        return BH_ENOENT;
    int rc = check_question(&s, qname, qtype, &s.an_off);
    if (rc < 0)
        return rc;
    out->truncated = (flags & FLAG_TC) != 0;
    if (out->truncated || out->rcode != DNS_WIRE_NOERROR)
        return 0;
    return read_answers(&s, qname, qtype, out);
}

bool
dns_wire_mx_null(const struct dns_wire_answer *a)
{
    if (a->n == 0 || a->bad > 0)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->mx[i].host[0] != '\0')
            return false;
    return true;
}

static void
mx_swap(struct dns_wire_mx *a, struct dns_wire_mx *b)
{
    struct dns_wire_mx t = *a;
    *a = *b;
    *b = t;
}

/* Fisher-Yates over v[0..n). The modulo bias is negligible for n <= 32. */
static void
mx_shuffle(struct dns_wire_mx *v, size_t n, dns_wire_rand_fn *rnd, void *arg)
{
    for (size_t i = n; i > 1; i--)
        mx_swap(&v[i - 1], &v[rnd(arg) % i]);
}

void
dns_wire_mx_sort(struct dns_wire_mx *v, size_t *n, dns_wire_rand_fn *rnd, void *arg)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (v[i].host[0] != '\0' && k++ != i)
            v[k - 1] = v[i];
    for (size_t i = 1; i < k; i++) /* insertion sort: stable, n is small */
        for (size_t j = i; j > 0 && v[j - 1].pref > v[j].pref; j--)
            mx_swap(&v[j - 1], &v[j]);
    for (size_t start = 0, end; start < k; start = end) {
        for (end = start + 1; end < k && v[end].pref == v[start].pref; end++)
            ;
        mx_shuffle(v + start, end - start, rnd, arg);
    }
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        size_t j = 0;
        while (j < m && strcmp(v[j].host, v[i].host) != 0)
            j++;
        if (j == m && m++ != i)
            v[m - 1] = v[i];
    }
    *n = m;
}
