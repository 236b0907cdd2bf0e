/*
 * config_val: the typed readers the config loader (config.c,
 * config_server.c, config_conn.c) uses on ytree nodes. Internal to the
 * loader; nothing outside connectors/config*.c should include it.
 *
 * Every reader checks one value against SPEC §9 "Config" (numbers, sizes,
 * durations and booleans are plain scalars; integers are [0-9]+; null and
 * empty values are type errors; strings are plain or quoted) and reports a
 * problem as FILE:LINE:COL: message at the value, through the struct
 * config_val the load carries. A reader given a key that is absent leaves
 * *out alone (the caller set the default) and returns 0; a bad value leaves
 * *out alone too and returns BH_EINVAL after reporting it.
 *
 * Ownership: strings stored into *out are fresh copies the config owns;
 * the previous *out is freed. Threads: one load, one thread.
 */
#ifndef BH_CONNECTORS_CONFIG_VAL_H
#define BH_CONNECTORS_CONFIG_VAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connectors/config.h"
#include "connectors/tlspolicy.h"
#include "connectors/ytree.h"

struct config_val {
    const char *file;           /* the config file as given */
    const char *dir;            /* its absolute folder */
    struct config_diags *diags; /* where problems go */
    size_t errors;              /* problems reported by this load */
};

/* Report a problem at node n (or at 0:0 when n is NULL). */
void config_val_err(struct config_val *v, const struct ytree_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Describe what a node is, for "expected X, got Y": "null", "a list",
 * "a mapping", "a quoted string" or the plain value quoted. Returns buf. */
const char *config_val_what(const struct ytree_node *n, char *buf, size_t len);

/* Is n a mapping (else report "KEY: expected a mapping") whose keys are all
 * scalars among keys (a NULL-terminated list; else "unknown key")? Returns
 * false only when n is not a mapping. */
bool config_val_map(struct config_val *v, const struct ytree_node *n, const char *key,
                    const char *const *keys);
/* Is n a sequence (else report)? */
bool config_val_seq(struct config_val *v, const struct ytree_node *n, const char *key);
/* Report that map lacks key, at the first key of map (or at map when it is
 * empty); why (may be NULL) says why it is needed. */
void config_val_missing(struct config_val *v, const struct ytree_node *map, const char *key,
                        const char *why);
/* Of two key nodes (either may be NULL), the one later in the file. */
const struct ytree_node *config_val_later(const struct ytree_node *a, const struct ytree_node *b);
/* The key node of map's key, or NULL. */
const struct ytree_node *config_val_key(const struct ytree_node *map, const char *key);

/* Node readers: n is the value node; key names it in messages. */
const char *config_val_string(struct config_val *v, const struct ytree_node *n, const char *key);
int config_val_u64_node(struct config_val *v, const struct ytree_node *n, const char *key,
                        uint64_t min, uint64_t max, uint64_t *out);

/* Key readers: map is a mapping (config_val_map said so) or NULL. */
int config_val_str(struct config_val *v, const struct ytree_node *map, const char *key, char **out);
int config_val_u64(struct config_val *v, const struct ytree_node *map, const char *key,
                   uint64_t min, uint64_t max, uint64_t *out);
int config_val_uint(struct config_val *v, const struct ytree_node *map, const char *key,
                    unsigned min, unsigned max, unsigned *out);
int config_val_size(struct config_val *v, const struct ytree_node *map, const char *key,
                    uint64_t min, uint64_t *out);
int config_val_duration(struct config_val *v, const struct ytree_node *map, const char *key,
                        uint64_t min, uint64_t *out);
int config_val_bool(struct config_val *v, const struct ytree_node *map, const char *key, bool *out);
/* One of names (NULL-terminated); *out is its index. */
int config_val_enum_node(struct config_val *v, const struct ytree_node *n, const char *key,
                         const char *const *names, int *out);
int config_val_enum(struct config_val *v, const struct ytree_node *map, const char *key,
                    const char *const *names, int *out);
/* "1.2" or "1.3", quoted or plain: CONNECTOR_TLS1_2 or CONNECTOR_TLS1_3. */
int config_val_tls_version(struct config_val *v, const struct ytree_node *map, int *out);
/* A list of strings, each checked by check(v, item, key, s) (NULL: any
 * string), which reports its own problem and returns false. An empty list is an error when
 * nonempty is true. */
int config_val_strings(struct config_val *v, const struct ytree_node *map, const char *key,
                       bool nonempty,
                       bool (*check)(struct config_val *, const struct ytree_node *, const char *,
                                     const char *),
                       char ***out, size_t *n);
/* A file name made absolute against the config's folder. */
int config_val_path(struct config_val *v, const struct ytree_node *map, const char *key,
                    char **out);
char *config_val_abspath(const struct config_val *v, const char *p);
/* p made absolute against dir (itself absolute), with "." segments and
 * repeated slashes dropped; ".." stays, since with symbolic links it cannot
 * be resolved by hand. Returns a fresh string. */
char *config_val_join(const char *dir, const char *p);

/* "a.b.c.d:port" or "[v6]:port" with port 1..65535 into sa; 0 or BH_EINVAL. */
int config_val_sockaddr(const char *s, struct sockaddr_storage *sa);
/* Report duplicates among n strings (strs[i] written at nodes[i]) at the
 * later one: "KEY: duplicate WHAT S (first at L:C)". Costs n log n. */
void config_val_dups(struct config_val *v, const char *const *strs,
                     const struct ytree_node *const *nodes, size_t n, const char *key,
                     const char *what);
/* A connector or node name: [A-Za-z0-9_.-]{1,64}. */
bool config_val_name_ok(const char *s);
/* A certificate, key or CA file at n: a readable PEM file of that kind
 * (tlspolicy_check_pem). Reports "unreadable ..." or the PEM problem at n
 * and returns false when it is not. */
bool config_val_pem(struct config_val *v, const struct ytree_node *n, const char *path,
                    enum tlspolicy_pem kind);
/* Read a whole small file for the users or password file; on failure
 * report "unreadable KIND PATH: WHY" at n and return BH_EIO. */
int config_val_slurp(struct config_val *v, const struct ytree_node *n, const char *kind,
                     const char *path, char **data, size_t *len);

#endif
