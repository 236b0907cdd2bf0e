/*
 * ytree: a YAML file loaded with libyaml's event API into a tree of
 * mapping, sequence and scalar nodes, each carrying its file, line and
 * column (libyaml marks plus 1; the column counts characters, not bytes),
 * its scalar style and its tag.
 *
 * The loader is strict, because the config is hostile input like any
 * other: it refuses anchors and aliases (no billion laughs), every explicit
 * tag (so ytree_node.tag is always NULL in a tree it returns), duplicate
 * keys in a mapping (reported at the later key), bytes that are not UTF-8,
 * NUL characters in scalars, nesting deeper than YTREE_MAX_DEPTH, more
 * than YTREE_MAX_NODES nodes, a file over YTREE_MAX_FILE bytes, a path that
 * is not a regular file, more than one document and an empty file. Every
 * problem goes into a struct config_diags (config.h) as
 * FILE:LINE:COL: message, FILE being the path as given; problems with the
 * file as a whole (unreadable, too large) have line and column 0.
 *
 * Ownership: ytree_load() and ytree_parse() return a tree the caller frees
 * with ytree_free(); every node, string and array in it belongs to the tree.
 * Threads: no shared state; any thread may load its own trees.
 */
#ifndef BH_CONNECTORS_YTREE_H
#define BH_CONNECTORS_YTREE_H

#include <stdbool.h>
#include <stddef.h>

struct config_diags;

#define YTREE_MAX_FILE (16u * 1024 * 1024)
#define YTREE_MAX_DEPTH 64
#define YTREE_MAX_NODES 1000000u

enum ytree_kind { YTREE_SCALAR, YTREE_SEQUENCE, YTREE_MAPPING };

struct ytree_pair {
    struct ytree_node *key; /* any node; a config wants scalars */
    struct ytree_node *value;
};

struct ytree_node {
    enum ytree_kind kind;
    const char *file;          /* the tree's file name (borrowed from the tree) */
    int line, col;             /* from 1: where the node (or its properties) starts */
    bool plain;                /* scalar: written without quotes or block indicator */
    char *tag;                 /* explicit tag; always NULL since tags are refused */
    char *value;               /* scalar: NUL-terminated, no NUL inside */
    size_t len;                /* scalar: strlen(value) */
    struct ytree_node **items; /* sequence: nitems nodes, in file order */
    size_t nitems;
    struct ytree_pair *pairs; /* mapping: npairs pairs, in file order */
    size_t npairs;
    size_t cap; /* allocated items or pairs */
};

struct ytree {
    char *file;              /* as given */
    struct ytree_node *root; /* the document's root node */
};

/* Read, check and parse path. Returns a tree, or NULL with every problem
 * appended to diags. */
struct ytree *ytree_load(const char *path, struct config_diags *diags);
/* The same on a buffer already in memory; file names the diagnostics. */
struct ytree *ytree_parse(const char *file, const char *buf, size_t len,
                          struct config_diags *diags);
void ytree_free(struct ytree *t); /* NULL is a no-op */

/* The pair whose key is the scalar key in a mapping, or NULL (also when map
 * is NULL or not a mapping). */
const struct ytree_pair *ytree_pair(const struct ytree_node *map, const char *key);
/* The value of that pair, or NULL. */
const struct ytree_node *ytree_get(const struct ytree_node *map, const char *key);

/* Is n a YAML null: a plain scalar "", "~", "null", "Null" or "NULL"? */
bool ytree_is_null(const struct ytree_node *n);

/* Write s into buf as a double-quoted string for a message: control
 * characters, quotes and backslashes escaped, cut (with "...") to fit
 * buflen, never inside a UTF-8 sequence. Returns buf. */
const char *ytree_quote(const char *s, char *buf, size_t buflen);

/*
 * Read a whole regular file of at most max bytes into a fresh NUL-terminated
 * buffer (*data, freed by the caller; *len excludes the NUL). A FIFO does not
 * block the open. Returns 0, or BH_ENOENT (missing), BH_EIO (unreadable, not
 * a regular file) or BH_ERANGE (too large) with a static or strerror() reason
 * in *why. Blocking; used by config for the users and password files too.
 */
int ytree_read_file(const char *path, size_t max, char **data, size_t *len, const char **why);

#endif
