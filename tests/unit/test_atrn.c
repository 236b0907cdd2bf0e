/* Unit tests for core/atrn: which domains an ATRN may pull (the user's
 * domains, each on a triggered connector; SPEC §5 reply codes), the lease
 * of exactly the triggered recipients of those domains from a real SQLite
 * queue, and their grouping into jobs. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connectors/config.h"
#include "connectors/util.h"
#include "core/atrn.h"
#include "core/delivery.h"
#include "routing/router.h"
#include "storage/queue.h"
#include "storage/queue_admin.h"

#define NOW 1700000000

struct fx {
    char dir[64];
    char *path;
    char err[512];
    struct config *c;
    struct router *r;
    struct queue *q;
    char id[4][QUEUE_ID_LEN + 1];
};

static const char yaml[] = "server:\n"
                           "  hostname: relay.example.org\n"
                           "storage:\n"
                           "  path: queue.db\n"
                           "connectors:\n"
                           "  - name: odmr-a\n"
                           "    address_spaces: [a.test, \"*.sub.test\"]\n"
                           "    bridgeheads: [\"127.0.0.1:9\"]\n"
                           "    triggered: true\n"
                           "  - name: odmr-b\n"
                           "    address_spaces: [b.test]\n"
                           "    bridgeheads: [\"127.0.0.1:9\"]\n"
                           "    triggered: true\n"
                           "  - name: out\n"
                           "    address_spaces: [\"*\"]\n"
                           "    bridgeheads: [\"127.0.0.1:9\"]\n";

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Four messages: m0 to a.test (twice, one spelled A.Test.), b.test and
 * other.test, all triggered; m1 to a.test but deferred (a failed ETRN); m2
 * to a.test, triggered, then held; m3 to a.test, triggered, younger. */
static void
fill(struct fx *fx)
{
    struct queue_rcpt r0[] = {
        {"x@a.test", "odmr-a", QUEUE_TRIGGERED, 0, 0, NULL},
        {"y@A.Test.", "odmr-a", QUEUE_TRIGGERED, 0, 0, NULL},
        {"z@b.test", "odmr-b", QUEUE_TRIGGERED, 0, 0, NULL},
        {"w@other.test", "odmr-a", QUEUE_TRIGGERED, 0, 0, NULL},
    };
    struct queue_rcpt r1[] = {{"v@a.test", "odmr-a", QUEUE_DEFERRED, NOW + 3600, 0, NULL}};
    struct queue_rcpt r2[] = {{"u@a.test", "odmr-a", QUEUE_TRIGGERED, 0, 0, NULL}};
    struct queue_rcpt r3[] = {{"t@a.test", "odmr-a", QUEUE_TRIGGERED, 0, 0, NULL}};
    struct queue_msg m[4];
    memset(m, 0, sizeof m);
    const struct queue_rcpt *rs[] = {r0, r1, r2, r3};
    const size_t ns[] = {4, 1, 1, 1};
    for (int i = 0; i < 4; i++) {
        queue_id_new(m[i].id);
        strcpy(fx->id[i], m[i].id);
        m[i].sender = "s@example.org";
        m[i].priority = 1;
        m[i].size = 10;
        m[i].received = NOW - 100 + i;
        m[i].rcpts = rs[i];
        m[i].nrcpts = ns[i];
    }
    assert_int_equal(queue_commit(fx->q, m, 4), 0);
    assert_int_equal(queue_admin_hold(fx->q, fx->id[2]), 0);
}

static int
teardown(void **state);

/* A setup that fails hands what it made to teardown. */
static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    strcpy(fx->dir, "/tmp/bh-atrn-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    *state = fx;
    char *cfg = xasprintf("%s/bridgehead.yaml", fx->dir);
    FILE *f = fopen(cfg, "w");
    if (f == NULL) {
        free(cfg);
        return teardown(state), -1;
    }
    fputs(yaml, f);
    fclose(f);
    struct config_diags d = {0};
    fx->c = config_load(cfg, &d);
    free(cfg);
    config_diags_fini(&d);
    if (fx->c == NULL)
        return teardown(state), -1;
    fx->r = router_new(fx->c);
    fx->path = xasprintf("%s/queue.db", fx->dir);
    if (queue_open(fx->path, 0, &fx->q, fx->err, sizeof fx->err) != 0)
        return teardown(state), -1;
    fill(fx);
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    queue_close(fx->q);
    router_free(fx->r);
    config_unref(fx->c);
    nftw(fx->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(fx->path);
    free(fx);
    return 0;
}

/* ---- targets --------------------------------------------------------------- */

static char *alice_domains[] = {"a.test", "b.test", "x.sub.test", "c.test"};
static const struct config_user alice = {"alice", "$6$x$y", alice_domains, 4};
static char *bob_domains[] = {"b.test", "a.test"};
static const struct config_user bob = {"bob", "$6$x$y", bob_domains, 2};
static const struct config_user nobody = {"nobody", "$6$x$y", NULL, 0};

/* "code text" of a refusal, or "domain=connector ..." of the targets. */
static char *
targets(struct fx *fx, const struct config_user *u, const char *arg)
{
    struct atrn_targets t = {0};
    char text[400] = "";
    int code = atrn_targets(fx->r, u, arg, &t, text, sizeof text);
    if (code != 0) {
        assert_null(t.v);
        return xasprintf("%d %s", code, text);
    }
    struct util_buf b = {0};
    for (size_t i = 0; i < t.n; i++)
        util_buf_printf(&b, "%s%s=%s", i ? " " : "", t.v[i].domain, t.v[i].connector);
    atrn_targets_fini(&t);
    char *s = xasprintf("%s", b.p ? b.p : "");
    util_buf_fini(&b);
    return s;
}

static void
expect(struct fx *fx, const struct config_user *u, const char *arg, const char *want)
{
    char *got = targets(fx, u, arg);
    assert_string_equal(got, want);
    free(got);
}

static void
test_targets(void **state)
{
    struct fx *fx = *state;
    /* None given: all of the user's domains. */
    expect(fx, &bob, "", "b.test=odmr-b a.test=odmr-a");
    /* Given: normalised, duplicates dropped, subdomain spaces routed. */
    expect(fx, &alice, "A.TEST.,b.test,a.test,x.sub.test",
           "a.test=odmr-a b.test=odmr-b x.sub.test=odmr-a");
    /* Not among the user's domains, or not on a triggered connector. */
    expect(fx, &bob, "a.test,x.sub.test", "450 4.7.1 ATRN request refused: x.sub.test not allowed");
    expect(fx, &alice, "c.test", "450 4.7.1 ATRN request refused: c.test not allowed");
    expect(fx, &alice, "", "450 4.7.1 ATRN request refused: c.test not allowed");
    expect(fx, NULL, "a.test", "450 4.7.1 ATRN request refused: a.test not allowed");
    expect(fx, &nobody, "", "450 4.7.1 ATRN request refused: no domain to pull");
    /* Not host names. */
    expect(fx, &alice, "[127.0.0.1]", "501 5.5.4 Syntax: ATRN [domain[,domain...]]");
    expect(fx, &alice, "a.test,,b.test", "501 5.5.4 Syntax: ATRN [domain[,domain...]]");
    expect(fx, &alice, "1.2.3.4", "501 5.5.4 Syntax: ATRN [domain[,domain...]]");
}

static void
test_user(void **state)
{
    struct fx *fx = *state;
    assert_null(atrn_user(fx->c, "alice")); /* this config has no users_file */
    assert_null(atrn_user(fx->c, NULL));
}

/* ---- the lease ----------------------------------------------------------------- */

static int
count_state(const struct queue_entry *e, void *arg)
{
    int *n = arg;
    (void)e;
    (*n)++;
    return 0;
}

static int
in_state(struct fx *fx, const char *conn, enum queue_state st)
{
    int n = 0;
    struct queue_admin_filter f = {conn, st, NULL};
    assert_int_equal(queue_admin_list(fx->q, &f, count_state, &n), 0);
    return n;
}

static struct atrn_target tv[2] = {{"a.test", "odmr-a"}, {"b.test", "odmr-b"}};

static void
test_lease(void **state)
{
    struct fx *fx = *state;
    struct queue_entry out[ATRN_BATCH];
    struct atrn_targets t = {tv, 1};
    int n = atrn_lease(fx->q, &t, ATRN_BATCH, out);
    /* x and y of m0, v of m1 and t of m3: not the held, other-domain or
     * other-connector ones; oldest first. */
    assert_int_equal(n, 4);
    assert_string_equal(out[0].rcpt, "x@a.test");
    assert_string_equal(out[1].rcpt, "y@A.Test.");
    assert_string_equal(out[2].rcpt, "v@a.test");
    assert_string_equal(out[3].rcpt, "t@a.test");
    assert_string_equal(out[3].id, fx->id[3]);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out[i].state, QUEUE_DELIVERING);
        queue_entry_fini(&out[i]);
    }
    assert_int_equal(in_state(fx, "odmr-a", QUEUE_DELIVERING), 4);
    assert_int_equal(in_state(fx, "odmr-a", QUEUE_DEFERRED), 0);
    assert_int_equal(in_state(fx, "odmr-a", QUEUE_HELD), 1);      /* u */
    assert_int_equal(in_state(fx, "odmr-a", QUEUE_TRIGGERED), 1); /* w */
    assert_int_equal(in_state(fx, "odmr-b", QUEUE_TRIGGERED), 1); /* z */
    /* They are out: a second ATRN finds nothing. */
    assert_int_equal(atrn_lease(fx->q, &t, ATRN_BATCH, out), 0);
    /* The scheduler's own lease does not see ATRN's marks either. */
    assert_int_equal(queue_lease_due(fx->q, 0, NULL, 10, out), 0);
}

static void
test_lease_limit(void **state)
{
    struct fx *fx = *state;
    struct queue_entry out[ATRN_BATCH];
    struct atrn_targets t = {tv, 2};
    int total = 0, n;
    while ((n = atrn_lease(fx->q, &t, 1, out)) > 0) {
        assert_int_equal(n, 1);
        queue_entry_fini(&out[0]);
        total++;
    }
    assert_int_equal(n, 0);
    assert_int_equal(total, 5); /* x, y, z, v, t */
    assert_int_equal(in_state(fx, NULL, QUEUE_DELIVERING), 5);
    assert_int_equal(in_state(fx, NULL, QUEUE_TRIGGERED), 1); /* w */
}

/* ---- jobs ------------------------------------------------------------------------ */

static void
test_jobs(void **state)
{
    struct fx *fx = *state;
    struct queue_entry out[ATRN_BATCH];
    struct atrn_targets t = {tv, 2};
    int n = atrn_lease(fx->q, &t, ATRN_BATCH, out);
    assert_int_equal(n, 5);
    struct delivery_job *jobs = atrn_jobs(out, (size_t)n), *j = jobs;
    for (int i = 0; i < n; i++)
        assert_null(out[i].rcpt); /* taken over */
    /* m0 on odmr-a (x, y), m0 on odmr-b (z), m1 (v), m3 (t). */
    assert_non_null(j);
    assert_string_equal(j->connector, "odmr-a");
    assert_int_equal(j->n, 2);
    assert_string_equal(j->entries[0].id, fx->id[0]);
    assert_string_equal(j->entries[1].rcpt, "y@A.Test.");
    j = j->next;
    assert_non_null(j);
    assert_string_equal(j->connector, "odmr-b");
    assert_int_equal(j->n, 1);
    assert_string_equal(j->entries[0].rcpt, "z@b.test");
    j = j->next;
    assert_non_null(j);
    assert_int_equal(j->n, 1);
    assert_string_equal(j->entries[0].id, fx->id[1]);
    j = j->next;
    assert_non_null(j);
    assert_int_equal(j->n, 1);
    assert_string_equal(j->entries[0].id, fx->id[3]);
    assert_null(j->next);
    while (jobs) {
        j = jobs->next;
        delivery_job_free(jobs);
        jobs = j;
    }
    assert_null(atrn_jobs(out, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
