/*
 * domain: host-name and address-space syntax shared by the config loader,
 * the router and the SMTP glue. Pure functions, any thread.
 */
#ifndef BH_CONNECTORS_DOMAIN_H
#define BH_CONNECTORS_DOMAIN_H

#include <stddef.h>

#define DOMAIN_MAX 253 /* octets of a normalised domain, without the root dot */
#define DOMAIN_LABEL_MAX 63

/*
 * Normalise a domain: lowercase, drop one trailing dot, then check that it is
 * a host name (LDH labels of 1..63 octets, no leading or trailing hyphen in
 * a label, at most 253 octets, not an IP address, not an address literal).
 * Writes the result into out (at least DOMAIN_MAX + 1 bytes).
 * Returns 0 or BH_EINVAL.
 */
int domain_normalise(const char *in, size_t len, char *out);

/*
 * Normalise an address space: "*", "*.DOMAIN" or "DOMAIN" (DOMAIN as for
 * domain_normalise; "*.TLD" is allowed). out holds at least DOMAIN_MAX + 3
 * bytes. Returns 0, or BH_EINVAL with a reason in *why (static string).
 */
int domain_space_normalise(const char *in, char *out, const char **why);

/* Number of labels of a normalised domain ("" has 0). */
unsigned domain_labels(const char *d);

#endif
