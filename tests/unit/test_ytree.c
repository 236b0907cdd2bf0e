/* Unit tests for connectors/ytree: the strict libyaml loader. Each case
 * keeps the expected LINE:COL next to the YAML it is about. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/config.h"
#include "connectors/util.h"
#include "connectors/ytree.h"

/* Parse yaml (len bytes) and check that exactly the diagnostics want
 * ("LINE:COL: message", in order) come out, with file "t.yaml". */
static void
expect_diags_n(const char *yaml, size_t len, const char *const *want, size_t n)
{
    struct config_diags d = {0};
    struct ytree *t = ytree_parse("t.yaml", yaml, len, &d);
    assert_null(t);
    for (size_t i = 0; i < d.n; i++) {
        char *got = xasprintf("%d:%d: %s", d.v[i].line, d.v[i].col, d.v[i].msg);
        if (i >= n || strcmp(got, want[i]) != 0)
            fail_msg("diag %zu: got \"%s\", want \"%s\"", i, got, i < n ? want[i] : "(none)");
        assert_string_equal(d.v[i].file, "t.yaml");
        free(got);
    }
    assert_int_equal(d.n, n);
    config_diags_fini(&d);
}

static void
expect_diag(const char *yaml, const char *want)
{
    expect_diags_n(yaml, strlen(yaml), &want, 1);
}

static struct ytree *
parse_ok(const char *yaml, struct config_diags *d)
{
    struct ytree *t = ytree_parse("t.yaml", yaml, strlen(yaml), d);
    if (t == NULL)
        fail_msg("unexpected: %d:%d: %s", d->v[0].line, d->v[0].col, d->v[0].msg);
    assert_int_equal(d->n, 0);
    return t;
}

static void
test_tree_shape(void **state)
{
    (void)state;
    struct config_diags d = {0};
    struct ytree *t = parse_ok("a: 1\n"           /* a at 1:1, 1 at 1:4 */
                               "b:\n"             /* b at 2:1 */
                               "  - 'x'\n"        /* 'x' at 3:5, quoted */
                               "  - {k: \"v\"}\n" /* { at 4:5, k at 4:6, "v" at 4:9 */
                               "c:\n",            /* c at 5:1, null value at 5:3 */
                               &d);
    const struct ytree_node *r = t->root;
    assert_int_equal(r->kind, YTREE_MAPPING);
    assert_int_equal(r->npairs, 3);
    assert_string_equal(r->file, "t.yaml");
    const struct ytree_node *a = ytree_get(r, "a");
    assert_int_equal(a->kind, YTREE_SCALAR);
    assert_string_equal(a->value, "1");
    assert_true(a->plain);
    assert_null(a->tag);
    assert_int_equal(a->line, 1);
    assert_int_equal(a->col, 4);
    const struct ytree_node *b = ytree_get(r, "b");
    assert_int_equal(b->kind, YTREE_SEQUENCE);
    assert_int_equal(b->nitems, 2);
    assert_false(b->items[0]->plain);
    assert_string_equal(b->items[0]->value, "x");
    assert_int_equal(b->items[0]->line, 3);
    assert_int_equal(b->items[0]->col, 5);
    const struct ytree_node *m = b->items[1];
    assert_int_equal(m->kind, YTREE_MAPPING);
    assert_int_equal(m->line, 4);
    assert_int_equal(m->col, 5);
    assert_int_equal(m->pairs[0].key->col, 6);
    assert_int_equal(ytree_get(m, "k")->col, 9);
    assert_false(ytree_get(m, "k")->plain);
    assert_true(ytree_is_null(ytree_get(r, "c")));
    assert_int_equal(ytree_pair(r, "c")->key->line, 5);
    assert_null(ytree_get(r, "zzz"));
    assert_null(ytree_get(a, "x")); /* not a mapping */
    ytree_free(t);
    config_diags_fini(&d);
}

static void
test_columns_count_characters(void **state)
{
    (void)state;
    struct config_diags d = {0};
    /* "é" and "ü" are two bytes each; "😀" is four. */
    struct ytree *t = parse_ok("é: ü\n"       /* ü at 1:4 */
                               "k: [😀, x]\n", /* x at 2:8 */
                               &d);
    assert_int_equal(ytree_get(t->root, "é")->col, 4);
    const struct ytree_node *k = ytree_get(t->root, "k");
    assert_int_equal(k->items[1]->col, 8);
    ytree_free(t);
    config_diags_fini(&d);
    /* A byte order mark is skipped and takes no column. */
    expect_diag("\xef\xbb\xbf"
                "a: b: c\n", /* the second ":" at 1:5 */
                "1:5: mapping values are not allowed in this context");
    /* And in a parse error: the bad token after "ü" x is at column 8. */
    expect_diag("é: \"ü\" x\n", "1:8: did not find expected key (while parsing a block mapping)");
}

static void
test_null_forms(void **state)
{
    (void)state;
    struct config_diags d = {0};
    struct ytree *t =
        parse_ok("a:\nb: ~\nc: null\nd: Null\ne: NULL\nf: ''\ng: 'null'\nh: nil\n", &d);
    const char *nulls[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++)
        assert_true(ytree_is_null(ytree_get(t->root, nulls[i])));
    assert_false(ytree_is_null(ytree_get(t->root, "f")));
    assert_false(ytree_is_null(ytree_get(t->root, "g")));
    assert_false(ytree_is_null(ytree_get(t->root, "h")));
    assert_false(ytree_is_null(t->root));
    assert_false(ytree_is_null(NULL));
    ytree_free(t);
    config_diags_fini(&d);
}

static void
test_anchor_and_alias(void **state)
{
    (void)state;
    const char *want[] = {
        "1:4: YAML anchors are not allowed: \"x\"", /* &x at 1:4 */
        "2:4: YAML aliases are not allowed: \"x\"", /* *x at 2:4 */
    };
    expect_diags_n("a: &x 1\nb: *x\n", 14, want, 2);
    /* The billion-laughs shape stops at the first anchor, costing nothing. */
    const char *lol = "a: &a [\"lol\",\"lol\"]\n"
                      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n";
    const char *want2[] = {
        "1:4: YAML anchors are not allowed: \"a\"",  "2:4: YAML anchors are not allowed: \"b\"",
        "2:8: YAML aliases are not allowed: \"a\"",  "2:11: YAML aliases are not allowed: \"a\"",
        "2:14: YAML aliases are not allowed: \"a\"", "2:17: YAML aliases are not allowed: \"a\"",
        "2:20: YAML aliases are not allowed: \"a\"", "2:23: YAML aliases are not allowed: \"a\"",
        "2:26: YAML aliases are not allowed: \"a\"", "2:29: YAML aliases are not allowed: \"a\"",
        "2:32: YAML aliases are not allowed: \"a\"",
    };
    expect_diags_n(lol, strlen(lol), want2, 11);
    /* An anchor on a mapping too. */
    expect_diag("a: &m {k: v}\n", "1:4: YAML anchors are not allowed: \"m\"");
}

static void
test_tags(void **state)
{
    (void)state;
    expect_diag("a: !!str 25\n", /* the tag at 1:4 */
                "1:4: YAML tags are not allowed: \"tag:yaml.org,2002:str\"");
    expect_diag("a: ! 25\n", "1:4: YAML tags are not allowed: \"!\"");
    expect_diag("a: !foo [1]\n", "1:4: YAML tags are not allowed: \"!foo\"");
    expect_diag("--- !!map\na: 1\n", "1:5: YAML tags are not allowed: \"tag:yaml.org,2002:map\"");
}

static void
test_duplicate_keys(void **state)
{
    (void)state;
    expect_diag("a: 1\n"
                "b: 2\n"
                "a: 3\n", /* the later a at 3:1 */
                "3:1: duplicate key \"a\" (first at 1:1)");
}

static void
test_duplicate_keys_all(void **state)
{
    (void)state;
    const char *yaml = "x: 1\n"       /* line 1 */
                       "y:\n"         /* line 2 */
                       "  k: 1\n"     /* line 3: k at 3:3 */
                       "  \"k\": 2\n" /* line 4: "k" at 4:3 */
                       "  'k': 3\n"   /* line 5: 'k' at 5:3 */
                       "x: 2\n";      /* line 6: x at 6:1 */
    const char *want[] = {
        "4:3: duplicate key \"k\" (first at 3:3)",
        "5:3: duplicate key \"k\" (first at 3:3)",
        "6:1: duplicate key \"x\" (first at 1:1)",
    };
    expect_diags_n(yaml, strlen(yaml), want, 3);
}

static void
test_documents(void **state)
{
    (void)state;
    expect_diag("a: 1\n---\nb: 2\n", "2:1: more than one YAML document in the file");
    expect_diag("", "1:1: empty file: no YAML document");
    expect_diag("# only a comment\n\n", "1:1: empty file: no YAML document");
    /* One explicit document is fine. */
    struct config_diags d = {0};
    struct ytree *t = parse_ok("---\na: 1\n...\n", &d);
    ytree_free(t);
    config_diags_fini(&d);
}

static void
test_not_utf8(void **state)
{
    (void)state;
    expect_diag("a: \xff\n", "1:4: not UTF-8 (byte 0xff)");
    expect_diag("a: b\nc: x\xc0\xaf\n", "2:5: not UTF-8 (byte 0xc0)");  /* overlong '/' */
    expect_diag("a: \xed\xa0\x80\n", "1:4: not UTF-8 (byte 0xed)");     /* a surrogate */
    expect_diag("a: é\xe2\x82\n", "1:5: not UTF-8 (byte 0xe2)");        /* cut short */
    expect_diag("\xfe\xff\0a\0:\0 \0b", "1:1: not UTF-8 (byte 0xfe)");  /* UTF-16 BOM */
    expect_diag("a: \xf4\x90\x80\x80\n", "1:4: not UTF-8 (byte 0xf4)"); /* past U+10FFFF */
}

static void
test_control_and_nul(void **state)
{
    (void)state;
    /* A raw control character: libyaml's reader error, at its byte. */
    expect_diag("a: b\nc: \x01\n", "2:4: control characters are not allowed");
    /* A NUL byte is a control character too. */
    const char nul[] = "a: b\0c\n";
    const char *want = "1:5: control characters are not allowed";
    expect_diags_n(nul, sizeof nul - 1, &want, 1);
    /* A NUL through an escape would cut the string short. */
    expect_diag("a: \"x\\0y\"\n", "1:4: NUL character in a scalar");
}

static void
test_parse_errors(void **state)
{
    (void)state;
    expect_diag("a: [1, 2\n", "2:1: did not find expected ',' or ']' (while parsing a flow "
                              "sequence)");
    expect_diag("a: b: c\n", "1:5: mapping values are not allowed in this context");
    expect_diag("a:\n  - x\n - y\n", "3:2: did not find expected key (while parsing a block "
                                     "mapping)");
}

static void
test_depth(void **state)
{
    (void)state;
    char yaml[200];
    memset(yaml, '[', 70);
    memset(yaml + 70, ']', 70);
    yaml[140] = '\0';
    /* The 65th "[" (column 65) opens the 65th level. */
    expect_diag(yaml, "1:65: YAML nesting deeper than 64 levels");
    /* 64 levels are fine. */
    memset(yaml, '[', 64);
    memset(yaml + 64, ']', 64);
    yaml[128] = '\0';
    struct config_diags d = {0};
    struct ytree *t = parse_ok(yaml, &d);
    ytree_free(t);
    config_diags_fini(&d);
}

static void
test_many_keys(void **state)
{
    (void)state;
    /* A big flat mapping: the duplicate check sorts, so this is fast. */
    size_t n = 50000;
    char *yaml = xmalloc(n * 16 + 16);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(yaml + o, "k%zu: %zu\n", i, i);
    o += (size_t)sprintf(yaml + o, "k7: dup\n");
    const char *want = "50001:1: duplicate key \"k7\" (first at 8:1)";
    expect_diags_n(yaml, o, &want, 1);
    free(yaml);
}

static void
test_quote(void **state)
{
    (void)state;
    char buf[16];
    assert_string_equal(ytree_quote("abc", buf, sizeof buf), "\"abc\"");
    assert_string_equal(ytree_quote("a\"b\\\n", buf, sizeof buf), "\"a\\\"b\\\\\\x0a\"");
    assert_string_equal(ytree_quote("abcdefghijklmnopqrstuvwxyz", buf, sizeof buf),
                        "\"abcdefghi\"...");
    /* Never cut inside a UTF-8 sequence. */
    assert_string_equal(ytree_quote("abcdefgh\xc3\xa9zzzz", buf, sizeof buf), "\"abcdefgh\"...");
}

/* ---- files */

static char tmpdir[64];

static int
setup_dir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/bh-ytree-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown_dir(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static char *
write_file(const char *name, const char *data, size_t len)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

static void
expect_load_diag(const char *path, const char *want)
{
    struct config_diags d = {0};
    assert_null(ytree_load(path, &d));
    assert_int_equal(d.n, 1);
    char *got = xasprintf("%d:%d: %s", d.v[0].line, d.v[0].col, d.v[0].msg);
    assert_string_equal(got, want);
    assert_string_equal(d.v[0].file, path);
    free(got);
    config_diags_fini(&d);
}

static void
test_load_file(void **state)
{
    (void)state;
    char *p = write_file("ok.yaml", "a: [1, 2]\n", 10);
    struct config_diags d = {0};
    struct ytree *t = ytree_load(p, &d);
    assert_non_null(t);
    assert_string_equal(t->file, p);
    assert_string_equal(t->root->pairs[0].key->file, p);
    ytree_free(t);
    ytree_free(NULL);
    config_diags_fini(&d);
    free(p);
}

static void
test_load_bad_paths(void **state)
{
    (void)state;
    /* A folder, a missing file, a FIFO (which must not block the open). */
    expect_load_diag(tmpdir, "0:0: cannot read the file: a directory, not a regular file");
    char *missing = xasprintf("%s/none.yaml", tmpdir);
    expect_load_diag(missing, "0:0: cannot read the file: No such file or directory");
    char *fifo = xasprintf("%s/fifo.yaml", tmpdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect_load_diag(fifo, "0:0: cannot read the file: not a regular file");
    free(missing);
    free(fifo);
}

static void
test_load_too_large(void **state)
{
    (void)state;
    /* 16 MiB + 1 of comment: refused before parsing. */
    size_t n = YTREE_MAX_FILE + 1;
    char *big = xmalloc(n);
    memset(big, '#', n);
    big[n - 1] = '\n';
    char *p = write_file("big.yaml", big, n);
    expect_load_diag(p, "0:0: cannot read the file: larger than 16 MiB");
    free(p);
    /* Exactly 16 MiB is read (and is an empty document). */
    p = write_file("edge.yaml", big + 1, n - 1);
    expect_load_diag(p, "1:1: empty file: no YAML document");
    free(p);
    free(big);
}

static void
test_read_file(void **state)
{
    (void)state;
    char *p = write_file("small.txt", "hello\n", 6), *data;
    size_t len;
    const char *why;
    assert_int_equal(ytree_read_file(p, 100, &data, &len, &why), 0);
    assert_int_equal(len, 6);
    assert_string_equal(data, "hello\n");
    free(data);
    assert_int_equal(ytree_read_file(p, 5, &data, &len, &why), BH_ERANGE);
    assert_string_equal(why, "too large");
    assert_null(data);
    assert_int_equal(ytree_read_file(tmpdir, 100, &data, &len, &why), BH_EIO);
    free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_shape),
        cmocka_unit_test(test_columns_count_characters),
        cmocka_unit_test(test_null_forms),
        cmocka_unit_test(test_anchor_and_alias),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_duplicate_keys_all),
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_not_utf8),
        cmocka_unit_test(test_control_and_nul),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_bad_paths),
        cmocka_unit_test(test_load_too_large),
        cmocka_unit_test(test_read_file),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
