/*
 * dns_wire: DNS messages on the wire (RFC 1035) for the resolver in
 * core/dns. It builds a query and parses an answer into the records of one
 * type found at the end of the answer's CNAME chain, and it puts MX hosts in
 * delivery order. Pure functions: libc only (plus connectors/domain for the
 * host-name syntax), no sockets, no allocation. Any thread.
 *
 * Every answer is hostile. Each read is bounds-checked against the packet.
 * A compression pointer must point before the place where the previous
 * jump landed (before the start of the name, for the first jump), so the
 * targets strictly decrease and a loop is impossible; at most 64 jumps are
 * taken. A name is at most 255 octets on the wire. Label octets must be
 * printable ASCII other than '.', so a name cannot be made ambiguous.
 * Record counts are believed only as far as the packet goes. A CNAME chain
 * is followed for at most DNS_WIRE_CNAME_MAX steps, and at most
 * DNS_WIRE_MAX_RECS records are kept (for MX, those of lowest preference).
 *
 * Ownership: the caller owns every buffer and struct; nothing is kept.
 */
#ifndef BH_CORE_DNS_WIRE_H
#define BH_CORE_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_WIRE_NAME_MAX 253 /* octets of a name in text, without the root dot */
#define DNS_WIRE_QUERY_MAX (12 + 255 + 4)
#define DNS_WIRE_MAX_RECS 32
#define DNS_WIRE_CNAME_MAX 8

/* Record types and response codes that the resolver uses. */
enum { DNS_WIRE_A = 1, DNS_WIRE_CNAME = 5, DNS_WIRE_MX = 15, DNS_WIRE_AAAA = 28 };
enum {
    DNS_WIRE_NOERROR = 0,
    DNS_WIRE_FORMERR = 1,
    DNS_WIRE_SERVFAIL = 2,
    DNS_WIRE_NXDOMAIN = 3,
    DNS_WIRE_NOTIMP = 4,
    DNS_WIRE_REFUSED = 5,
};

/* One MX record. host is lowercase without a trailing dot; "" is the root
 * ("."), the exchange of a null MX (RFC 7505). */
struct dns_wire_mx {
    uint16_t pref;
    char host[DNS_WIRE_NAME_MAX + 1];
};

/* What one answer says about the question asked. */
struct dns_wire_answer {
    int rcode;      /* DNS_WIRE_* response code */
    bool truncated; /* TC: ask again over TCP; the answer section was not read */
    size_t n;       /* records kept in mx[] (MX) or addr[] (A: 4 octets, AAAA: 16) */
    size_t bad;     /* MX records dropped because the exchange is not a host name */
    struct dns_wire_mx mx[DNS_WIRE_MAX_RECS];
    uint8_t addr[DNS_WIRE_MAX_RECS][16];
};

/*
 * Normalise a name to ask about: lowercase, one trailing dot dropped,
 * labels of 1..63 printable ASCII octets other than '.', at most 253 octets.
 * out holds DNS_WIRE_NAME_MAX + 1 bytes. Returns 0 or BH_EINVAL.
 */
int dns_wire_name_norm(const char *in, char *out);

/*
 * Build a query (RD set, one question of class IN) for name, which is
 * normalised first, into buf (cap octets; DNS_WIRE_QUERY_MAX is always
 * enough). Returns the length, BH_EINVAL for a bad name, or BH_ENOSPC.
 */
int dns_wire_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype);

/*
 * Parse an answer to the query (id, qname, qtype), qname as normalised by
 * dns_wire_name_norm. Returns
 *   0           out is filled: rcode, truncated, and for NOERROR the records
 *               of qtype owned by the end of the CNAME chain that starts at
 *               qname (for MX, exchanges that are not host names are counted
 *               in bad; the root is kept as "");
 *   BH_ENOENT   not an answer to this query (too short for a header, wrong
 *               ID, not a response, another opcode or question): ignore it
 *               and keep waiting;
 *   BH_EINVAL   an answer to this query, but malformed (truncated, a bad
 *               name or pointer, a bad record length, a CNAME chain that is
 *               too long or loops).
 */
int dns_wire_parse(const uint8_t *pkt, size_t len, uint16_t id, const char *qname, uint16_t qtype,
                   struct dns_wire_answer *out);

/* True when the MX records in a say the domain takes no mail (RFC 7505):
 * there is at least one and every exchange is the root. */
bool dns_wire_mx_null(const struct dns_wire_answer *a);

/* A source of random numbers for the shuffle (tests inject their own). */
typedef uint64_t dns_wire_rand_fn(void *arg);

/*
 * Put MX hosts in delivery order, in place: drop root exchanges, sort by
 * preference (lowest first), shuffle each run of equal preference with rnd,
 * and keep only the first occurrence of a host. *n is updated.
 */
void dns_wire_mx_sort(struct dns_wire_mx *v, size_t *n, dns_wire_rand_fn *rnd, void *arg);

#endif
