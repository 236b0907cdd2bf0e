#include "routing/aspace.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/domain.h"
#include "connectors/util.h"

#define NONE UINT32_MAX
#define MAX_ENTRIES (1u << 31)
#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

/* A distinct domain X, with the spaces "X" and "*.X" that name it. */
struct aspace_node {
    const char *key; /* X, borrowed from a space string */
    uint32_t len;
    uint32_t labels;
    uint32_t exact; /* first entry of "X", or NONE */
    uint32_t wild;  /* first entry of "*.X", or NONE */
};

struct aspace_entry {
    const char *space;
    unsigned owner, cost;
    uint32_t next; /* next entry of the same node and kind, or NONE */
};

/* Open addressing, linear probing; the table is at most half full. */
struct aspace_slot {
    uint32_t hash;
    uint32_t node; /* NONE: empty */
};

struct aspace {
    struct aspace_node *nodes;
    size_t nnodes, capnodes;
    struct aspace_entry *entries;
    size_t nentries, capentries;
    struct aspace_slot *slots;
    size_t nslots; /* a power of two */
    uint32_t star; /* first entry of "*", or NONE */
};

/* FNV-1a is fed the key from its last byte to its first, so the hash of a
 * longer suffix extends that of the shorter one during a lookup. */
static uint32_t
hash_step(uint32_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

/* Murmur3's finaliser: spreads FNV's weak low bits before masking. */
static uint32_t
hash_final(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static uint32_t
hash_key(const char *key, size_t len)
{
    uint32_t h = FNV_BASIS;
    for (size_t i = len; i-- > 0;)
        h = hash_step(h, (unsigned char)key[i]);
    return hash_final(h);
}

struct aspace *
aspace_new(void)
{
    struct aspace *a = xcalloc(1, sizeof(*a));
    a->star = NONE;
    a->nslots = 16;
    a->slots = xmalloc(a->nslots * sizeof(*a->slots));
    for (size_t i = 0; i < a->nslots; i++)
        a->slots[i].node = NONE;
    return a;
}

void
aspace_free(struct aspace *a)
{
    if (a == NULL)
        return;
    free(a->nodes);
    free(a->entries);
    free(a->slots);
    free(a);
}

size_t
aspace_count(const struct aspace *a)
{
    return a->nentries;
}

static uint32_t
find_node(const struct aspace *a, const char *key, size_t len, uint32_t h)
{
    size_t mask = a->nslots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct aspace_slot *s = &a->slots[i];
        if (s->node == NONE)
            return NONE;
        if (s->hash != h)
            continue;
        const struct aspace_node *n = &a->nodes[s->node];
        if (n->len == len && memcmp(n->key, key, len) == 0)
            return s->node;
    }
}

static void
slot_put(struct aspace_slot *slots, size_t nslots, uint32_t h, uint32_t node)
{
    size_t mask = nslots - 1;
    size_t i = h & mask;
    while (slots[i].node != NONE)
        i = (i + 1) & mask;
    slots[i].hash = h;
    slots[i].node = node;
}

static void
grow_slots(struct aspace *a)
{
    size_t n = a->nslots * 2;
    struct aspace_slot *slots = xmalloc(n * sizeof(*slots));
    for (size_t i = 0; i < n; i++)
        slots[i].node = NONE;
    for (size_t i = 0; i < a->nslots; i++)
        if (a->slots[i].node != NONE)
            slot_put(slots, n, a->slots[i].hash, a->slots[i].node);
    free(a->slots);
    a->slots = slots;
    a->nslots = n;
}

/* The node for key X, created when missing. */
static uint32_t
node_get(struct aspace *a, const char *key)
{
    size_t len = strlen(key);
    uint32_t h = hash_key(key, len);
    uint32_t id = find_node(a, key, len, h);
    if (id != NONE)
        return id;
    if ((a->nnodes + 1) * 2 > a->nslots)
        grow_slots(a);
    if (a->nnodes == a->capnodes) {
        a->capnodes = a->capnodes ? a->capnodes * 2 : 16;
        a->nodes = xrealloc(a->nodes, a->capnodes * sizeof(*a->nodes));
    }
    id = (uint32_t)a->nnodes++;
    a->nodes[id] = (struct aspace_node){key, (uint32_t)len, domain_labels(key), NONE, NONE};
    slot_put(a->slots, a->nslots, h, id);
    return id;
}

/* Is space exactly what domain_space_normalise() makes of it? */
static bool
space_normalised(const char *space)
{
    char buf[DOMAIN_MAX + 3];
    const char *why;
    if (strnlen(space, sizeof(buf)) >= sizeof(buf))
        return false;
    return domain_space_normalise(space, buf, &why) == 0 && strcmp(buf, space) == 0;
}

int
aspace_add(struct aspace *a, const char *space, unsigned owner, unsigned cost)
{
    if (space == NULL || !space_normalised(space))
        return BH_EINVAL;
    if (a->nentries >= MAX_ENTRIES)
        return BH_ENOSPC;
    if (a->nentries == a->capentries) {
        a->capentries = a->capentries ? a->capentries * 2 : 16;
        a->entries = xrealloc(a->entries, a->capentries * sizeof(*a->entries));
    }
    uint32_t e = (uint32_t)a->nentries++;
    uint32_t *head;
    if (strcmp(space, "*") == 0) {
        head = &a->star;
    } else if (space[0] == '*') {
        uint32_t id = node_get(a, space + 2); /* may move a->nodes */
        head = &a->nodes[id].wild;
    } else {
        uint32_t id = node_get(a, space);
        head = &a->nodes[id].exact;
    }
    a->entries[e] = (struct aspace_entry){space, owner, cost, *head};
    *head = e;
    return 0;
}

static int
emit(const struct aspace *a, uint32_t e, unsigned labels, bool exact, aspace_cb cb, void *arg)
{
    for (; e != NONE; e = a->entries[e].next) {
        const struct aspace_entry *en = &a->entries[e];
        struct aspace_hit hit = {en->space, en->owner, en->cost, labels, exact};
        int rc = cb(arg, &hit);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Emit the nodes found, longest key first, then the "*" entries. */
static int
emit_found(const struct aspace *a, const uint32_t *found, size_t nfound, size_t len, aspace_cb cb,
           void *arg)
{
    int rc;
    for (size_t k = nfound; k-- > 0;) {
        const struct aspace_node *n = &a->nodes[found[k]];
        if (n->len == len && (rc = emit(a, n->exact, n->labels, true, cb, arg)) != 0)
            return rc;
        if ((rc = emit(a, n->wild, n->labels, false, cb, arg)) != 0)
            return rc;
    }
    return emit(a, a->star, 0, false, cb, arg);
}

int
aspace_lookup(const struct aspace *a, const char *domain, aspace_cb cb, void *arg, unsigned *probes)
{
    size_t len = strnlen(domain, DOMAIN_MAX + 1);
    if (len == 0 || len > DOMAIN_MAX)
        return BH_EINVAL;
    uint32_t found[DOMAIN_MAX];
    size_t nfound = 0;
    unsigned nprobes = 0;
    uint32_t h = FNV_BASIS;
    /* Walk right to left; at each label start probe the suffix from there. */
    for (size_t i = len; i-- > 0;) {
        h = hash_step(h, (unsigned char)domain[i]);
        if (i > 0 && domain[i - 1] != '.')
            continue;
        nprobes++;
        uint32_t id = find_node(a, domain + i, len - i, hash_final(h));
        if (id != NONE)
            found[nfound++] = id;
    }
    if (probes != NULL)
        *probes += nprobes;
    return emit_found(a, found, nfound, len, cb, arg);
}

unsigned
aspace_specificity(unsigned labels, bool exact)
{
    return labels * 2 + (exact ? 1 : 0);
}

bool
aspace_matches(const char *space, const char *domain, unsigned *spec)
{
    unsigned s;
    if (strcmp(space, "*") == 0) {
        s = 0;
    } else if (space[0] == '*' && space[1] == '.') {
        const char *x = space + 2;
        size_t n = strlen(domain), m = strlen(x);
        if (m > n || strcmp(domain + n - m, x) != 0 || (n > m && domain[n - m - 1] != '.'))
            return false;
        s = aspace_specificity(domain_labels(x), false);
    } else {
        if (strcmp(space, domain) != 0)
            return false;
        s = aspace_specificity(domain_labels(space), true);
    }
    if (spec != NULL)
        *spec = s;
    return true;
}
