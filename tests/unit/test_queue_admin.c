/* Unit tests for storage/queue_admin: list, hold, release, delete, stats,
 * reroute. */
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

#include "connectors/util.h"
#include "storage/queue.h"
#include "storage/queue_admin.h"
#include "tests/unit/queue_backend.h"

#define NOW 1700000000

struct fx {
    char dir[64];
    char *path;
    char err[512];
    struct queue *q;
    char id[3][QUEUE_ID_LEN + 1]; /* messages: 2 on "a", 1 on "b" with 2 rcpts */
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Three messages of different ages: 1 minute, 30 minutes, 2 days. */
static void
fill(struct fx *fx)
{
    static const int64_t age[3] = {60, 1800, 2 * 86400};
    static const char *const conn[3] = {"a", "a", "b"};
    struct queue_rcpt r[3][2];
    struct queue_msg m[3];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 3; i++) {
        queue_id_new(m[i].id);
        strcpy(fx->id[i], m[i].id);
        m[i].sender = "s@example.org";
        m[i].priority = 1;
        m[i].size = 100 * (uint64_t)(i + 1);
        m[i].received = NOW - age[i];
        m[i].rcpts = r[i];
        m[i].nrcpts = i == 2 ? 2 : 1;
        r[i][0] = (struct queue_rcpt){"x@example.com", conn[i], QUEUE_QUEUED, NOW, 0, NULL};
        r[i][1] = (struct queue_rcpt){"y@example.com", conn[i], QUEUE_TRIGGERED, 0, 0, NULL};
    }
    assert_int_equal(queue_commit(fx->q, m, 3), 0);
}

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    strcpy(fx->dir, "/tmp/bh-admin-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    fx->path = xasprintf("%s/queue.db", fx->dir);
    if (tq_open_fresh(fx->path, 0, &fx->q, fx->err, sizeof fx->err) != 0) {
        free(fx->path);
        free(fx);
        return -1;
    }
    fill(fx);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    queue_close(fx->q);
    nftw(fx->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(fx->path);
    free(fx);
    return 0;
}

struct seen {
    int n;
    struct {
        char id[QUEUE_ID_LEN + 1];
        char rcpt[32];
        char connector[16];
        enum queue_state state;
        int64_t next_attempt;
        uint64_t size;
        bool ignore_schedule;
    } e[16];
    int stop_after; /* 0: never */
};

static int
collect(const struct queue_entry *e, void *arg)
{
    struct seen *s = arg;
    assert_true(s->n < 16);
    strcpy(s->e[s->n].id, e->id);
    snprintf(s->e[s->n].rcpt, sizeof s->e[s->n].rcpt, "%s", e->rcpt);
    snprintf(s->e[s->n].connector, sizeof s->e[s->n].connector, "%s", e->connector);
    s->e[s->n].state = e->state;
    s->e[s->n].next_attempt = e->next_attempt;
    s->e[s->n].size = e->size;
    s->e[s->n].ignore_schedule = e->ignore_schedule;
    s->n++;
    return s->stop_after != 0 && s->n == s->stop_after ? 42 : 0;
}

static struct seen
list(struct fx *fx, const char *conn, enum queue_state st, const char *id, int want_rc)
{
    struct seen s = {0};
    struct queue_admin_filter f = {conn, st, id};
    assert_int_equal(queue_admin_list(fx->q, &f, collect, &s), want_rc);
    return s;
}

static void
test_list(void **state)
{
    struct fx *fx = *state;
    struct seen s = {0};
    assert_int_equal(queue_admin_list(fx->q, NULL, collect, &s), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.e[0].id, fx->id[0]);
    assert_string_equal(s.e[3].id, fx->id[2]);
    assert_string_equal(s.e[3].rcpt, "y@example.com");
    assert_int_equal(s.e[3].state, QUEUE_TRIGGERED);
    assert_int_equal(s.e[3].next_attempt, QUEUE_NEVER);
    assert_int_equal(s.e[2].next_attempt, NOW);
    assert_int_equal(s.e[2].size, 300);

    assert_int_equal(list(fx, "a", QUEUE_STATE_ANY, NULL, 0).n, 2);
    assert_int_equal(list(fx, NULL, QUEUE_TRIGGERED, NULL, 0).n, 1);
    assert_int_equal(list(fx, "b", QUEUE_QUEUED, NULL, 0).n, 1);
    assert_int_equal(list(fx, "zzz", QUEUE_STATE_ANY, NULL, 0).n, 0);
    assert_int_equal(list(fx, NULL, QUEUE_STATE_ANY, fx->id[2], 0).n, 2);
    /* `show` of an unknown or malformed ID. */
    list(fx, NULL, QUEUE_STATE_ANY, "AAAAAAAAAAAAAAAA", BH_ENOENT);
    list(fx, NULL, QUEUE_STATE_ANY, "x'; DROP TABLE", BH_EINVAL);
    list(fx, NULL, (enum queue_state)17, NULL, BH_EINVAL);
    /* A callback can stop the walk. */
    struct seen stop = {.stop_after = 2};
    assert_int_equal(queue_admin_list(fx->q, NULL, collect, &stop), 42);
    assert_int_equal(stop.n, 2);
}

static int
counter(const struct queue_entry *e, void *arg)
{
    (void)e;
    (*(int *)arg)++;
    return 0;
}

/* More entries than one batch. */
static void
test_list_batches(void **state)
{
    struct fx *fx = *state;
    enum { N = 300 };
    struct queue_rcpt r = {"z@example.com", "c", QUEUE_QUEUED, NOW, 0, NULL};
    struct queue_msg *m = calloc(N, sizeof *m);
    for (int i = 0; i < N; i++) {
        queue_id_new(m[i].id);
        m[i].sender = "";
        m[i].received = NOW;
        m[i].rcpts = &r;
        m[i].nrcpts = 1;
    }
    assert_int_equal(queue_commit(fx->q, m, N), 0);
    free(m);
    int count = 0;
    struct queue_admin_filter f = {"c", QUEUE_STATE_ANY, NULL};
    assert_int_equal(queue_admin_list(fx->q, &f, counter, &count), 0);
    assert_int_equal(count, N);
}

static void
test_hold_release_delete(void **state)
{
    struct fx *fx = *state;
    struct queue_entry e[4];
    assert_int_equal(queue_admin_hold(fx->q, fx->id[2]), 0);
    struct seen s = list(fx, NULL, QUEUE_STATE_ANY, fx->id[2], 0);
    assert_int_equal(s.e[0].state, QUEUE_HELD);
    assert_int_equal(s.e[1].state, QUEUE_HELD);
    assert_int_equal(s.e[0].next_attempt, QUEUE_NEVER);
    assert_int_equal(queue_lease_due(fx->q, NOW, "b", 4, e), 0);
    /* Release returns each entry to its own state. */
    char lower[QUEUE_ID_LEN + 1];
    for (int i = 0; i <= QUEUE_ID_LEN; i++)
        lower[i] =
            (char)(fx->id[2][i] >= 'A' && fx->id[2][i] <= 'Z' ? fx->id[2][i] + 32 : fx->id[2][i]);
    assert_int_equal(queue_admin_release(fx->q, lower), 0);
    s = list(fx, NULL, QUEUE_STATE_ANY, fx->id[2], 0);
    assert_int_equal(s.e[0].state, QUEUE_QUEUED);
    assert_int_equal(s.e[1].state, QUEUE_TRIGGERED);

    /* Held during delivery: stays delivering, then held when deferred. */
    assert_int_equal(queue_lease_due(fx->q, NOW, "b", 4, e), 1);
    assert_int_equal(queue_admin_hold(fx->q, fx->id[2]), 0);
    s = list(fx, NULL, QUEUE_STATE_ANY, fx->id[2], 0);
    assert_int_equal(s.e[0].state, QUEUE_DELIVERING);
    assert_int_equal(queue_defer(fx->q, e[0].entry, NOW + 60, "451", true), 0);
    s = list(fx, NULL, QUEUE_STATE_ANY, fx->id[2], 0);
    assert_int_equal(s.e[0].state, QUEUE_HELD);
    assert_int_equal(queue_admin_release(fx->q, fx->id[2]), 0);
    s = list(fx, NULL, QUEUE_STATE_ANY, fx->id[2], 0);
    assert_int_equal(s.e[0].state, QUEUE_DEFERRED);
    assert_int_equal(s.e[0].next_attempt, NOW + 60);

    /* Delete takes all entries; the lease holder then finds nothing. */
    assert_int_equal(queue_admin_delete(fx->q, fx->id[2]), 0);
    assert_int_equal(list(fx, NULL, QUEUE_STATE_ANY, NULL, 0).n, 2);
    assert_int_equal(queue_complete(fx->q, e[0].entry), BH_ENOENT);
    queue_entry_fini(&e[0]);

    assert_int_equal(queue_admin_hold(fx->q, fx->id[2]), BH_ENOENT);
    assert_int_equal(queue_admin_release(fx->q, "AAAAAAAAAAAAAAAA"), BH_ENOENT);
    assert_int_equal(queue_admin_delete(fx->q, "AAAAAAAAAAAAAAAA"), BH_ENOENT);
    assert_int_equal(queue_admin_delete(fx->q, ""), BH_EINVAL);
    assert_int_equal(queue_admin_hold(fx->q, "%"), BH_EINVAL);
}

struct stat_seen {
    int n;
    char conn[8][8];
    enum queue_state state[8];
    uint64_t count[8][QUEUE_ADMIN_AGE_BUCKETS];
    int64_t oldest[8];
};

static int
stat_collect(const struct queue_admin_stat *st, void *arg)
{
    struct stat_seen *s = arg;
    snprintf(s->conn[s->n], sizeof s->conn[s->n], "%s", st->connector);
    s->state[s->n] = st->state;
    memcpy(s->count[s->n], st->count, sizeof st->count);
    s->oldest[s->n] = st->oldest_received;
    s->n++;
    return 0;
}

static void
test_stats(void **state)
{
    struct fx *fx = *state;
    struct stat_seen s = {0};
    assert_int_equal(queue_admin_stats(fx->q, NOW, stat_collect, &s), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.conn[0], "a");
    assert_int_equal(s.state[0], QUEUE_QUEUED);
    assert_int_equal(s.count[0][0], 1); /* 1 minute: 0-5m */
    assert_int_equal(s.count[0][3], 1); /* 30 minutes: 20-40m */
    assert_string_equal(s.conn[1], "b");
    assert_int_equal(s.state[1], QUEUE_QUEUED);
    assert_int_equal(s.count[1][9], 1); /* 2 days: 1280m+ */
    assert_int_equal(s.state[2], QUEUE_TRIGGERED);
    assert_int_equal(s.count[2][9], 1);
    /* The oldest message of each row, exactly (for the metrics' age gauge). */
    assert_int_equal(s.oldest[0], NOW - 1800);
    assert_int_equal(s.oldest[1], NOW - 2 * 86400);
    assert_int_equal(s.oldest[2], NOW - 2 * 86400);
    static const char *const names[QUEUE_ADMIN_AGE_BUCKETS] = {
        "0-5m",    "5-10m",    "10-20m",    "20-40m",     "40-80m",
        "80-160m", "160-320m", "320-640m", "640-1280m", "1280m+"};
    for (int i = 0; i < QUEUE_ADMIN_AGE_BUCKETS; i++)
        assert_string_equal(queue_admin_age_bucket_name(i), names[i]);
    /* Every boundary, one second either side, seen through b's message. */
    int64_t received = NOW - 2 * 86400;
    for (int k = 0; k + 1 < QUEUE_ADMIN_AGE_BUCKETS; k++) {
        int64_t bound = 300LL << k; /* 5m, 10m, ... 1280m */
        for (int side = 0; side < 2; side++) {
            struct stat_seen t = {0};
            assert_int_equal(queue_admin_stats(fx->q, received + bound - 1 + side, stat_collect, &t),
                             0);
            int row = 0;
            while (row < t.n && strcmp(t.conn[row], "b") != 0)
                row++;
            if (row == t.n)
                fail_msg("no row for connector b");
            for (int i = 0; i < QUEUE_ADMIN_AGE_BUCKETS; i++)
                if (t.count[row][i] != (i == k + side ? 1u : 0u))
                    fail_msg("age %lld s: bucket %d has %llu", (long long)(bound - 1 + side), i,
                             (unsigned long long)t.count[row][i]);
        }
    }
    assert_null(queue_admin_age_bucket_name(10));
    assert_null(queue_admin_age_bucket_name(-1));
    /* A message from the future (clock skew) counts as new. */
    s = (struct stat_seen){0};
    assert_int_equal(queue_admin_stats(fx->q, NOW - 100000, stat_collect, &s), 0);
    assert_int_equal(s.count[0][0], 2);
}

/* A reload: everything on "a" moves to "b"; triggered ones become due. */
static bool
move_a(const struct queue_entry *e, struct queue_admin_change *c, void *arg)
{
    (void)arg;
    assert_int_not_equal(e->state, QUEUE_DELIVERING);
    if (strcmp(e->connector, "a") == 0) {
        c->connector = "b";
        return true;
    }
    if (c->state == QUEUE_TRIGGERED) {
        c->state = QUEUE_QUEUED;
        c->next_attempt = NOW + 5;
        return true;
    }
    return false;
}

/* Good changes first, then a bad one on the third entry. */
static bool
bad_change(const struct queue_entry *e, struct queue_admin_change *c, void *arg)
{
    (void)e;
    int *calls = arg;
    c->connector = "zz";
    if (++*calls == 3)
        c->state = QUEUE_DELIVERING;
    return true;
}

static bool
hold_all(const struct queue_entry *e, struct queue_admin_change *c, void *arg)
{
    (void)e;
    (void)arg;
    c->state = QUEUE_HELD;
    return true;
}

static void
test_reroute(void **state)
{
    struct fx *fx = *state;
    struct queue_entry e;
    /* The first message of "a" is in delivery: not visited. */
    assert_int_equal(queue_lease_due(fx->q, NOW, "a", 1, &e), 1);
    assert_int_equal(queue_admin_reroute(fx->q, NULL, move_a, NULL), 2);
    struct seen s = list(fx, "b", QUEUE_STATE_ANY, NULL, 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(list(fx, "a", QUEUE_DELIVERING, NULL, 0).n, 1);
    assert_int_equal(list(fx, NULL, QUEUE_TRIGGERED, NULL, 0).n, 0);

    /* A bad change undoes the whole walk. */
    int calls = 0;
    assert_int_equal(queue_admin_reroute(fx->q, NULL, bad_change, &calls), BH_EINVAL);
    assert_int_equal(calls, 3);
    assert_int_equal(list(fx, "zz", QUEUE_STATE_ANY, NULL, 0).n, 0);
    assert_int_equal(list(fx, "b", QUEUE_QUEUED, NULL, 0).n, 3);

    /* Held through a change keeps the state beneath. */
    struct queue_admin_filter f = {"b", QUEUE_STATE_ANY, fx->id[2]};
    assert_int_equal(queue_admin_reroute(fx->q, &f, hold_all, NULL), 2);
    assert_int_equal(list(fx, NULL, QUEUE_HELD, NULL, 0).n, 2);
    assert_int_equal(queue_admin_release(fx->q, fx->id[2]), 0);
    assert_int_equal(list(fx, NULL, QUEUE_QUEUED, fx->id[2], 0).n, 2);
    struct queue_admin_filter unknown = {NULL, QUEUE_STATE_ANY, "AAAAAAAAAAAAAAAA"};
    assert_int_equal(queue_admin_reroute(fx->q, &unknown, hold_all, NULL), BH_ENOENT);
    queue_entry_fini(&e);
}

/* What `queue flush --now` and ETRN do: due now, and ignore the schedule. */
static bool
mark_due(const struct queue_entry *e, struct queue_admin_change *c, void *arg)
{
    (void)e;
    c->state = *(const enum queue_state *)arg;
    c->next_attempt = NOW;
    c->ignore_schedule = true;
    return true;
}

/* The ignore_schedule mark of message id's entries, in entry order. */
static void
expect_marks(struct fx *fx, const char *id, bool m0, bool m1)
{
    struct seen s = list(fx, NULL, QUEUE_STATE_ANY, id, 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.e[0].ignore_schedule, m0);
    assert_int_equal(s.e[1].ignore_schedule, m1);
}

static void
test_ignore_schedule(void **state)
{
    struct fx *fx = *state;
    struct queue_entry e[2];
    enum queue_state to = QUEUE_QUEUED;
    struct queue_admin_filter f = {"b", QUEUE_STATE_ANY, NULL};
    expect_marks(fx, fx->id[2], false, false);
    assert_int_equal(queue_admin_reroute(fx->q, &f, mark_due, &to), 2);
    expect_marks(fx, fx->id[2], true, true);
    /* Leased with the mark, for the scheduler. */
    assert_int_equal(queue_lease_due(fx->q, NOW, "b", 2, e), 2);
    assert_true(e[0].ignore_schedule && e[1].ignore_schedule);
    /* Not tried (no destination up; handed back at a reload): kept. */
    assert_int_equal(queue_defer(fx->q, e[0].entry, NOW + 60, NULL, false), 0);
    assert_int_equal(queue_set_state(fx->q, e[1].entry, QUEUE_QUEUED, NOW), 0);
    expect_marks(fx, fx->id[2], true, true);
    int64_t eid[2] = {e[0].entry, e[1].entry};
    queue_entry_fini(&e[0]);
    queue_entry_fini(&e[1]);
    /* Tried, or waiting for a window again: cleared. */
    assert_int_equal(queue_defer(fx->q, eid[0], NOW + 60, "451 later", true), 0);
    assert_int_equal(queue_set_state(fx->q, eid[1], QUEUE_SCHEDULED, NOW + 3600), 0);
    expect_marks(fx, fx->id[2], false, false);
    /* Only a queued or deferred entry keeps the mark. */
    to = QUEUE_SCHEDULED;
    assert_int_equal(queue_admin_reroute(fx->q, &f, mark_due, &to), 2);
    expect_marks(fx, fx->id[2], false, false);
    to = QUEUE_TRIGGERED;
    assert_int_equal(queue_admin_reroute(fx->q, &f, mark_due, &to), 2);
    expect_marks(fx, fx->id[2], false, false);
    /* A crash in delivery keeps it; so does holding. */
    to = QUEUE_DEFERRED;
    assert_int_equal(queue_admin_reroute(fx->q, &f, mark_due, &to), 2);
    assert_int_equal(queue_lease_due(fx->q, NOW, "b", 2, e), 2);
    queue_entry_fini(&e[0]);
    queue_entry_fini(&e[1]);
    assert_int_equal(queue_recover_delivering(fx->q), 2);
    assert_int_equal(queue_admin_reroute(fx->q, &f, hold_all, NULL), 2);
    expect_marks(fx, fx->id[2], true, true);
    /* The other connector's entries were never touched. */
    assert_false(list(fx, "a", QUEUE_STATE_ANY, NULL, 0).e[0].ignore_schedule);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_release_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reroute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_schedule, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
