/*
 * aspace: the address-space index (SPEC §3). It maps a domain to every
 * address space that matches it, most specific first, at a cost of
 * O(labels of the domain) hash probes whatever the number of spaces.
 *
 * The index is a hash table keyed by the domain X of each space "X" or
 * "*.X"; the key's hash is computed over the bytes from right to left, so a
 * lookup walks the domain once from its last label to its first and probes
 * one suffix per label. "*" entries sit in a list of their own.
 *
 * Ownership: the index borrows the space strings given to aspace_add(); they
 * must outlive it (the router passes the config's strings, which the config
 * owns). Threads: build it on one thread with aspace_new()/aspace_add();
 * after the last aspace_add() it is read-only, and any number of threads may
 * call aspace_lookup() at the same time.
 */
#ifndef BH_ROUTING_ASPACE_H
#define BH_ROUTING_ASPACE_H

#include <stdbool.h>
#include <stddef.h>

struct aspace;

/* One matching space. */
struct aspace_hit {
    const char *space; /* as given to aspace_add(): "*", "*.x.org" or "x.org" */
    unsigned owner;    /* the caller's id given to aspace_add() (a connector index) */
    unsigned cost;
    unsigned labels; /* labels of X; 0 for "*" */
    bool exact;      /* "X" rather than "*.X" or "*" */
};

/* Called for each hit; return 0 to go on, anything else to stop the lookup
 * (aspace_lookup() then returns that value). */
typedef int (*aspace_cb)(void *arg, const struct aspace_hit *hit);

struct aspace *aspace_new(void);
void aspace_free(struct aspace *a); /* NULL is a no-op */

/*
 * Add a space for owner. space must already be normalised (as
 * domain_space_normalise() writes it); it is borrowed. Returns 0, BH_EINVAL
 * for a space that is not a normalised "*", "*.X" or "X", or BH_ENOSPC past
 * 2^31 spaces.
 */
int aspace_add(struct aspace *a, const char *space, unsigned owner, unsigned cost);

/* Number of spaces added. */
size_t aspace_count(const struct aspace *a);

/*
 * Call cb for every space matching domain (a normalised domain, as
 * domain_normalise() writes it), most specific first: "X" for the whole
 * domain, then "*.X" from the longest X to the shortest, then "*". Hits of
 * equal specificity come in no particular order. If probes is not NULL, the
 * number of hash-table probes made is added to *probes (one per label).
 * Returns 0, cb's stop value, or BH_EINVAL for a domain that is empty or
 * longer than DOMAIN_MAX.
 */
int aspace_lookup(const struct aspace *a, const char *domain, aspace_cb cb, void *arg,
                  unsigned *probes);

/*
 * The specificity of a hit as one number that orders like the pair
 * (labels, exact): labels * 2 + exact. "*" is 0.
 */
unsigned aspace_specificity(unsigned labels, bool exact);

/*
 * The reference matcher, without an index: does normalised space match
 * normalised domain? On a match, *spec (if not NULL) gets its specificity.
 */
bool aspace_matches(const char *space, const char *domain, unsigned *spec);

#endif
