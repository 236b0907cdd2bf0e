#include "connectors/ytree.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "connectors/config.h"
#include "connectors/util.h"

/* The state of one event-driven build: the open collections, innermost
 * last, and what has been found wrong so far. */
struct build {
    struct ytree *t;
    struct config_diags *diags;
    const char *buf;
    size_t len;
    struct ytree_node *stack[YTREE_MAX_DEPTH];
    size_t depth;
    size_t nnodes;
    int ndocs;
    bool failed; /* a problem was reported: the tree is freed at the end */
    bool stop;   /* a problem after which parsing cannot go on */
};

/* One key of a mapping for the duplicate check: its node and its index. */
struct keyref {
    const struct ytree_node *key;
    size_t idx;
};

/* Read fd to its end, refusing more than max bytes (the file may have grown
 * since fstat said hint). */
static int
read_all(int fd, size_t hint, size_t max, char **data, size_t *len, const char **why)
{
    size_t n = 0, cap = hint < 4096 ? 4096 : hint + 1;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap = cap > max ? cap : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *why = strerror(errno);
            free(buf);
            return BH_EIO;
        }
        n += (size_t)r;
        if (r == 0 || n > max)
            break;
    }
    if (n > max) {
        *why = max == YTREE_MAX_FILE ? "larger than 16 MiB" : "too large";
        free(buf);
        return BH_ERANGE;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int
ytree_read_file(const char *path, size_t max, char **data, size_t *len, const char **why)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        *why = strerror(e);
        return e == ENOENT || e == ENOTDIR ? BH_ENOENT : BH_EIO;
    }
    struct stat st;
    int rc;
    if (fstat(fd, &st) != 0) {
        *why = strerror(errno);
        rc = BH_EIO;
    } else if (!S_ISREG(st.st_mode)) {
        *why = S_ISDIR(st.st_mode) ? "a directory, not a regular file" : "not a regular file";
        rc = BH_EIO;
    } else if ((unsigned long long)st.st_size > max) {
        *why = max == YTREE_MAX_FILE ? "larger than 16 MiB" : "too large";
        rc = BH_ERANGE;
    } else {
        rc = read_all(fd, (size_t)st.st_size, max, data, len, why);
    }
    close(fd);
    return rc;
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 when it is not
 * well-formed: no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        need = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

/* Offset of the first byte that is not well-formed UTF-8, or len. */
static size_t
utf8_bad_offset(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_seq(s + i, len - i);
        if (k == 0)
            return i;
        i += k;
    }
    return len;
}

/* Line and column (from 1, the column in characters) of a byte offset. */
static void
offset_pos(const char *buf, size_t len, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n' || (ch == '\r' && (i + 1 >= len || buf[i + 1] != '\n'))) {
            l++;
            c = 1;
        } else if ((ch & 0xc0) != 0x80 && ch != '\r') {
            c++;
        }
    }
    *line = l;
    *col = c;
}

const char *
ytree_quote(const char *s, char *buf, size_t buflen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i = 0;
    if (buflen < 8) {
        if (buflen > 0)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; s[i] != '\0' && o + 6 < buflen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            buf[o++] = '\\';
            if (c == '"' || c == '\\') {
                buf[o++] = (char)c;
                continue;
            }
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        } else {
            buf[o++] = (char)c;
        }
    }
    /* Do not cut a UTF-8 sequence in half. */
    while (s[i] != '\0' && o > 1 && ((unsigned char)s[i] & 0xc0) == 0x80) {
        i--;
        o--;
    }
    buf[o++] = '"';
    if (s[i] != '\0' && o + 3 < buflen) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static void
berr(struct build *b, int line, int col, const char *msg)
{
    config_diag_add(b->diags, b->t->file, line, col, "%s", msg);
    b->failed = true;
}

static void
berr_mark(struct build *b, yaml_mark_t m, const char *what, const char *name)
{
    char q[80];
    char *msg = xasprintf("%s %s", what, ytree_quote(name, q, sizeof q));
    berr(b, (int)m.line + 1, (int)m.column + 1, msg);
    free(msg);
}

static void
node_free(struct ytree_node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nitems; i++)
        node_free(n->items[i]);
    for (size_t i = 0; i < n->npairs; i++) {
        node_free(n->pairs[i].key);
        node_free(n->pairs[i].value);
    }
    free(n->items);
    free(n->pairs);
    free(n->value);
    free(n->tag);
    free(n);
}

void
ytree_free(struct ytree *t)
{
    if (t == NULL)
        return;
    node_free(t->root);
    free(t->file);
    free(t);
}

static void
grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return;
    *cap = *cap ? *cap * 2 : 4;
    *p = xrealloc(*p, *cap * size);
}

/* Hang a finished or just opened node on the innermost open collection. */
static void
attach(struct build *b, struct ytree_node *n)
{
    if (b->depth == 0) {
        if (b->t->root == NULL)
            b->t->root = n;
        else
            node_free(n); /* cannot happen: one node per document */
        return;
    }
    struct ytree_node *p = b->stack[b->depth - 1];
    if (p->kind == YTREE_SEQUENCE) {
        grow((void **)&p->items, &p->cap, p->nitems, sizeof *p->items);
        p->items[p->nitems++] = n;
    } else if (p->npairs > 0 && p->pairs[p->npairs - 1].value == NULL) {
        p->pairs[p->npairs - 1].value = n;
    } else {
        grow((void **)&p->pairs, &p->cap, p->npairs, sizeof *p->pairs);
        p->pairs[p->npairs].key = n;
        p->pairs[p->npairs++].value = NULL;
    }
}

/* A new node at mark m with the event's anchor and tag checked. */
static struct ytree_node *
node_new(struct build *b, enum ytree_kind kind, yaml_mark_t m, const yaml_char_t *anchor,
         const yaml_char_t *tag)
{
    if (++b->nnodes > YTREE_MAX_NODES) {
        berr(b, (int)m.line + 1, (int)m.column + 1, "more than 1000000 YAML nodes");
        b->stop = true;
        return NULL;
    }
    if (anchor != NULL)
        berr_mark(b, m, "YAML anchors are not allowed:", (const char *)anchor);
    if (tag != NULL)
        berr_mark(b, m, "YAML tags are not allowed:", (const char *)tag);
    struct ytree_node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->file = b->t->file;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    n->tag = tag != NULL ? xstrdup((const char *)tag) : NULL;
    return n;
}

static void
on_scalar(struct build *b, const yaml_event_t *e)
{
    struct ytree_node *n =
        node_new(b, YTREE_SCALAR, e->start_mark, e->data.scalar.anchor, e->data.scalar.tag);
    if (n == NULL)
        return;
    const char *v = (const char *)e->data.scalar.value;
    n->len = e->data.scalar.length;
    n->value = xmalloc(n->len + 1);
    memcpy(n->value, v, n->len);
    n->value[n->len] = '\0';
    n->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (strlen(n->value) != n->len) {
        berr(b, n->line, n->col, "NUL character in a scalar");
        n->len = strlen(n->value);
    }
    attach(b, n);
}

/* An alias is refused; a null stands in for it so the tree stays whole. */
static void
on_alias(struct build *b, const yaml_event_t *e)
{
    berr_mark(b, e->start_mark,
              "YAML aliases are not allowed:", (const char *)e->data.alias.anchor);
    struct ytree_node *n = node_new(b, YTREE_SCALAR, e->start_mark, NULL, NULL);
    if (n == NULL)
        return;
    n->value = xstrdup("");
    n->plain = true;
    attach(b, n);
}

static void
on_start(struct build *b, const yaml_event_t *e)
{
    bool map = e->type == YAML_MAPPING_START_EVENT;
    const yaml_char_t *anchor = map ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
    const yaml_char_t *tag = map ? e->data.mapping_start.tag : e->data.sequence_start.tag;
    if (b->depth == YTREE_MAX_DEPTH) {
        berr(b, (int)e->start_mark.line + 1, (int)e->start_mark.column + 1,
             "YAML nesting deeper than 64 levels");
        b->stop = true;
        return;
    }
    struct ytree_node *n =
        node_new(b, map ? YTREE_MAPPING : YTREE_SEQUENCE, e->start_mark, anchor, tag);
    if (n == NULL)
        return;
    attach(b, n);
    b->stack[b->depth++] = n;
}

static int
keyref_cmp(const void *pa, const void *pb)
{
    const struct keyref *a = pa, *b = pb;
    size_t la = a->key->len, lb = b->key->len;
    int c = memcmp(a->key->value, b->key->value, la < lb ? la : lb);
    if (c != 0)
        return c;
    if (la != lb)
        return la < lb ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Report every key that repeats an earlier scalar key of map, at the later
 * key, in file order. Sorting keeps a huge mapping from costing n^2. */
static void
check_duplicates(struct build *b, const struct ytree_node *map)
{
    size_t n = 0;
    struct keyref *refs = xcalloc(map->npairs, sizeof *refs);
    size_t *first = xcalloc(map->npairs, sizeof *first);
    for (size_t i = 0; i < map->npairs; i++) {
        first[i] = SIZE_MAX;
        if (map->pairs[i].key->kind == YTREE_SCALAR)
            refs[n++] = (struct keyref){map->pairs[i].key, i};
    }
    qsort(refs, n, sizeof *refs, keyref_cmp);
    for (size_t i = 1, run = 0; i < n; i++) {
        if (keyref_cmp(&(struct keyref){refs[i].key, 0}, &(struct keyref){refs[run].key, 0}))
            run = i;
        else
            first[refs[i].idx] = refs[run].idx;
    }
    for (size_t i = 0; i < map->npairs; i++) {
        if (first[i] == SIZE_MAX)
            continue;
        const struct ytree_node *k = map->pairs[i].key, *f = map->pairs[first[i]].key;
        char q[80];
        char *msg = xasprintf("duplicate key %s (first at %d:%d)",
                              ytree_quote(k->value, q, sizeof q), f->line, f->col);
        berr(b, k->line, k->col, msg);
        free(msg);
    }
    free(refs);
    free(first);
}

static void
on_end(struct build *b)
{
    if (b->depth == 0)
        return;
    struct ytree_node *n = b->stack[--b->depth];
    if (n->kind == YTREE_MAPPING && n->npairs > 1)
        check_duplicates(b, n);
}

static void
on_event(struct build *b, const yaml_event_t *e)
{
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->ndocs > 1) {
            berr(b, (int)e->start_mark.line + 1, (int)e->start_mark.column + 1,
                 "more than one YAML document in the file");
            b->stop = true;
        }
        break;
    case YAML_ALIAS_EVENT:
        on_alias(b, e);
        break;
    case YAML_SCALAR_EVENT:
        on_scalar(b, e);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        on_start(b, e);
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        on_end(b);
        break;
    default:
        break;
    }
}

static void
parse_error(struct build *b, const yaml_parser_t *p)
{
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR)
        offset_pos(b->buf, b->len, p->problem_offset, &line, &col);
    const char *problem = p->problem != NULL ? p->problem : "YAML parse error";
    char *msg = p->context != NULL ? xasprintf("%s (%s)", problem, p->context) : xstrdup(problem);
    berr(b, line, col, msg);
    free(msg);
}

/* Drive libyaml over the buffer, event by event, until the stream ends or a
 * problem stops it. */
static void
run_parser(struct build *b)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        abort();
    yaml_parser_set_input_string(&p, (const unsigned char *)b->buf, b->len);
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            parse_error(b, &p);
            break;
        }
        on_event(b, &e);
        bool end = e.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&e);
        if (end || b->stop)
            break;
    }
    yaml_parser_delete(&p);
}

struct ytree *
ytree_parse(const char *file, const char *buf, size_t len, struct config_diags *diags)
{
    /* A UTF-8 byte order mark is allowed and skipped, so that columns on
     * the first line are those an editor shows. */
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        buf += 3;
        len -= 3;
    }
    struct build b = {.diags = diags, .buf = buf, .len = len};
    b.t = xcalloc(1, sizeof *b.t);
    b.t->file = xstrdup(file);
    size_t bad = utf8_bad_offset(buf, len);
    if (bad < len) {
        int line, col;
        offset_pos(buf, len, bad, &line, &col);
        char *msg = xasprintf("not UTF-8 (byte 0x%02x)", (unsigned char)buf[bad]);
        berr(&b, line, col, msg);
        free(msg);
    } else {
        run_parser(&b);
        if (!b.failed && (b.ndocs == 0 || b.t->root == NULL))
            berr(&b, 1, 1, "empty file: no YAML document");
    }
    if (b.failed) {
        ytree_free(b.t);
        return NULL;
    }
    return b.t;
}

struct ytree *
ytree_load(const char *path, struct config_diags *diags)
{
    char *buf;
    size_t len;
    const char *why;
    int rc = ytree_read_file(path, YTREE_MAX_FILE, &buf, &len, &why);
    if (rc < 0) {
        config_diag_add(diags, path, 0, 0, "cannot read the file: %s", why);
        return NULL;
    }
    struct ytree *t = ytree_parse(path, buf, len, diags);
    free(buf);
    return t;
}

const struct ytree_pair *
ytree_pair(const struct ytree_node *map, const char *key)
{
    if (map == NULL || map->kind != YTREE_MAPPING)
        return NULL;
    for (size_t i = 0; i < map->npairs; i++) {
        const struct ytree_node *k = map->pairs[i].key;
        if (k->kind == YTREE_SCALAR && strcmp(k->value, key) == 0)
            return &map->pairs[i];
    }
    return NULL;
}

const struct ytree_node *
ytree_get(const struct ytree_node *map, const char *key)
{
    const struct ytree_pair *p = ytree_pair(map, key);
    return p != NULL ? p->value : NULL;
}

bool
ytree_is_null(const struct ytree_node *n)
{
    if (n == NULL || n->kind != YTREE_SCALAR || !n->plain)
        return false;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strcmp(n->value, nulls[i]) == 0)
            return true;
    return false;
}
