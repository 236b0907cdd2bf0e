/*
 * Unit tests for storage/queue: group commit, bodies through the spool, the
 * full-disk rollback, leasing and the delivery's answers, recovery,
 * transactions, read-only handles, and the leasing plan.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ftw.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "connectors/util.h"
#include "storage/queue.h"
#include "storage/queue_sql.h"
#include "tests/unit/queue_backend.h"

#define NOW 1700000000

struct fx {
    char dir[64];
    char *path;
    char err[512];
    struct queue *q;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    strcpy(fx->dir, "/tmp/bh-queue-XXXXXX");
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
    unsetenv("BRIDGEHEAD_TEST_MAX_PAGES");
    return 0;
}

/* An independent look at the file, through SQLite itself. */
static long long
sql_int(struct fx *fx, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    long long v = -1;
    if (tq_pg())
        return tq_pg_int(sql);
    assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A message with nr recipients on connector conn, all queued at `due`. */
struct tmsg {
    struct queue_msg m;
    struct queue_rcpt r[4];
    char addr[4][32];
};

static void
tmsg_init(struct tmsg *t, const char *conn, int priority, int64_t received, int64_t due, int nr)
{
    memset(t, 0, sizeof *t);
    queue_id_new(t->m.id);
    t->m.sender = "sender@example.org";
    t->m.ret = QUEUE_RET_FULL;
    t->m.envid = "env-1";
    t->m.priority = priority;
    t->m.size = 5;
    t->m.received = received;
    t->m.header = "Received: by test\r\n";
    t->m.rcpts = t->r;
    t->m.nrcpts = (size_t)nr;
    for (int i = 0; i < nr; i++) {
        snprintf(t->addr[i], sizeof t->addr[i], "rcpt%d@example.com", i);
        t->r[i] = (struct queue_rcpt){
            t->addr[i], conn, QUEUE_QUEUED, due, QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY, NULL};
    }
}

static void
commit_one(struct fx *fx, struct tmsg *t)
{
    assert_int_equal(queue_commit(fx->q, &t->m, 1), 0);
}

static void
fini_all(struct queue_entry *e, int n)
{
    for (int i = 0; i < n; i++)
        queue_entry_fini(&e[i]);
}

static void
test_commit_many(void **state)
{
    struct fx *fx = *state;
    enum { N = 300 };
    struct tmsg *t = calloc(N, sizeof *t);
    struct queue_msg *msgs = calloc(N, sizeof *msgs);
    for (int i = 0; i < N; i++) {
        tmsg_init(&t[i], i % 2 ? "a" : "b", 1, NOW, NOW, 3);
        msgs[i] = t[i].m;
    }
    assert_int_equal(queue_commit(fx->q, msgs, N), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), N);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM entries"), 3 * N);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM bodies"), N);
    assert_int_equal(queue_commit(fx->q, msgs, 0), 0);
    /* The same IDs again: refused as a whole, nothing added. */
    assert_int_equal(queue_commit(fx->q, msgs, N), BH_EEXIST);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), N);
    free(msgs);
    free(t);
}

static void
test_commit_fields(void **state)
{
    struct fx *fx = *state;
    struct tmsg t;
    tmsg_init(&t, "partner", 2, NOW - 10, NOW, 1);
    t.m.system = true;
    t.m.sender = "";
    t.r[0].orcpt = "rfc822;X@Example.com";
    struct queue_spool *sp = queue_spool_new(fx->dir);
    assert_int_equal(queue_spool_write(sp, "Subject: hi\r\n\r\nbody\r\n", 21), 0);
    t.m.body = sp;
    commit_one(fx, &t);
    queue_spool_free(sp);

    struct queue_entry e;
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 1, &e), 1);
    assert_string_equal(e.id, t.m.id);
    assert_string_equal(e.sender, "");
    assert_string_equal(e.envid, "env-1");
    assert_string_equal(e.orcpt, "rfc822;X@Example.com");
    assert_string_equal(e.connector, "partner");
    assert_null(e.last_reply);
    assert_int_equal(e.ret, QUEUE_RET_FULL);
    assert_int_equal(e.priority, 2);
    assert_true(e.system);
    assert_int_equal(e.notify, QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY);
    assert_int_equal(e.received, NOW - 10);
    assert_int_equal(e.state, QUEUE_DELIVERING);
    queue_entry_fini(&e);

    char *body;
    size_t len;
    assert_int_equal(queue_read_body(fx->q, t.m.id, &body, &len), 0);
    assert_int_equal(len, 19 + 21);
    assert_memory_equal(body, "Received: by test\r\nSubject: hi\r\n\r\nbody\r\n", len);
    free(body);
    assert_int_equal(queue_read_body(fx->q, "AAAAAAAAAAAAAAAA", &body, &len), BH_ENOENT);
    assert_int_equal(queue_read_body(fx->q, "bad id", &body, &len), BH_EINVAL);
}

static unsigned char
pattern(uint64_t i)
{
    return (unsigned char)((i * 2654435761u) >> 11);
}

/* A 1 MiB body through a file spool, read back whole and in pieces. */
static void
test_big_body(void **state)
{
    struct fx *fx = *state;
    enum { SIZE = 1024 * 1024 + 333 };
    struct queue_spool *sp = queue_spool_new(queue_folder(fx->q));
    unsigned char *buf = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        buf[i] = pattern(i);
    for (size_t off = 0; off < SIZE; off += 1000)
        assert_int_equal(queue_spool_write(sp, buf + off, SIZE - off < 1000 ? SIZE - off : 1000),
                         0);
    assert_true(queue_spool_on_disk(sp));
    struct tmsg t;
    tmsg_init(&t, "a", 1, NOW, NOW, 1);
    t.m.body = sp;
    t.m.header = NULL;
    commit_one(fx, &t);
    queue_spool_free(sp);

    char *body;
    size_t len;
    assert_int_equal(queue_read_body(fx->q, t.m.id, &body, &len), 0);
    assert_int_equal(len, SIZE);
    assert_memory_equal(body, buf, SIZE);
    free(body);

    unsigned char piece[65536];
    uint64_t off = 0, total = 0;
    for (;;) {
        size_t got;
        assert_int_equal(queue_read_body_at(fx->q, t.m.id, off, piece, sizeof piece, &got, &total),
                         0);
        if (got == 0)
            break;
        assert_memory_equal(piece, buf + off, got);
        off += got;
    }
    assert_int_equal(off, SIZE);
    assert_int_equal(total, SIZE);
    free(buf);
}

/* The disk fills in the middle of a batch: nothing of it is stored, the
 * handle stays usable. */
static void
test_full_disk(void **state)
{
    struct fx *fx = *state;
    if (tq_pg())
        skip(); /* SQLite only: its page limit, its query plans */
    queue_close(fx->q);
    setenv("BRIDGEHEAD_TEST_MAX_PAGES", "60", 1);
    assert_int_equal(queue_open(fx->path, 0, &fx->q, fx->err, sizeof fx->err), 0);
    uint64_t room;
    assert_int_equal(queue_free_space(fx->q, &room), 0);
    assert_true(room <= 60 * 4096);

    struct queue_spool *sp = queue_spool_new(fx->dir);
    static unsigned char chunk[50000];
    memset(chunk, 'x', sizeof chunk);
    assert_int_equal(queue_spool_write(sp, chunk, sizeof chunk), 0);
    enum { N = 8 }; /* 8 x 50 KB > 60 pages */
    struct tmsg t[N];
    struct queue_msg msgs[N];
    for (int i = 0; i < N; i++) {
        tmsg_init(&t[i], "a", 1, NOW, NOW, 2);
        t[i].m.body = sp;
        msgs[i] = t[i].m;
    }
    assert_int_equal(queue_commit(fx->q, msgs, N), BH_ENOSPC);
    assert_true(strlen(queue_last_error(fx->q)) > 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM entries"), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM bodies"), 0);

    /* A small one still fits. */
    assert_int_equal(queue_commit(fx->q, msgs, 1), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 1);
    queue_spool_free(sp);
}

static void
test_lease_order(void **state)
{
    struct fx *fx = *state;
    struct tmsg low, old, high, later, other;
    tmsg_init(&low, "a", 0, NOW - 500, NOW - 500, 1);
    tmsg_init(&old, "a", 1, NOW - 400, NOW - 400, 1);
    tmsg_init(&high, "a", 2, NOW - 10, NOW - 10, 1);
    tmsg_init(&later, "a", 2, NOW, NOW + 60, 1); /* not due yet */
    tmsg_init(&other, "b", 1, NOW - 450, NOW - 450, 1);
    struct queue_msg msgs[] = {low.m, old.m, high.m, later.m, other.m};
    assert_int_equal(queue_commit(fx->q, msgs, 5), 0);

    int64_t when;
    assert_int_equal(queue_next_due(fx->q, NULL, &when), 0);
    assert_int_equal(when, NOW - 500);
    assert_int_equal(queue_next_due(fx->q, "b", &when), 0);
    assert_int_equal(when, NOW - 450);
    assert_int_equal(queue_next_due(fx->q, "nope", &when), BH_ENOENT);

    struct queue_entry e[8];
    assert_int_equal(queue_lease_due(fx->q, NOW, "a", 2, e), 2);
    assert_string_equal(e[0].id, high.m.id);
    assert_string_equal(e[1].id, old.m.id);
    fini_all(e, 2);
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 8, e), 2);
    assert_string_equal(e[0].id, other.m.id);
    assert_string_equal(e[1].id, low.m.id);
    fini_all(e, 2);
    /* Leased entries are not leased twice; the future one is not due. */
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 8, e), 0);
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 0, e), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM entries WHERE state = 5"), 4);
    assert_int_equal(queue_next_due(fx->q, NULL, &when), 0);
    assert_int_equal(when, NOW + 60);
    assert_int_equal(queue_lease_due(fx->q, NOW + 60, NULL, 8, e), 1);
    assert_string_equal(e[0].id, later.m.id);
    fini_all(e, 1);
    assert_int_equal(queue_next_due(fx->q, NULL, &when), BH_ENOENT);
}

static void
test_complete_bounce(void **state)
{
    struct fx *fx = *state;
    struct tmsg t;
    tmsg_init(&t, "a", 1, NOW, NOW, 3);
    commit_one(fx, &t);
    struct queue_entry e[3];
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 3, e), 3);
    assert_int_equal(queue_complete(fx->q, e[0].entry), 0);
    assert_int_equal(queue_bounce(fx->q, e[1].entry), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 1);
    assert_int_equal(queue_complete(fx->q, e[0].entry), BH_ENOENT);
    assert_int_equal(queue_complete(fx->q, e[2].entry), 0);
    /* The last entry takes its message and body with it. */
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM bodies"), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM entries"), 0);
    fini_all(e, 3);
}

static void
test_defer(void **state)
{
    struct fx *fx = *state;
    struct tmsg t;
    tmsg_init(&t, "a", 1, NOW, NOW, 1);
    commit_one(fx, &t);
    struct queue_entry e;
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 1, &e), 1);
    int64_t id = e.entry;
    queue_entry_fini(&e);
    assert_int_equal(queue_defer(fx->q, id, NOW + 60, "451 4.3.0 try later", true), 0);
    assert_int_equal(queue_lease_due(fx->q, NOW + 59, NULL, 1, &e), 0);
    assert_int_equal(queue_lease_due(fx->q, NOW + 60, NULL, 1, &e), 1);
    assert_int_equal(e.attempts, 1);
    assert_string_equal(e.last_reply, "451 4.3.0 try later");
    queue_entry_fini(&e);
    /* No destination up: not counted, the old reply kept. */
    assert_int_equal(queue_defer(fx->q, id, NOW + 120, NULL, false), 0);
    assert_int_equal(sql_int(fx, "SELECT attempts FROM entries"), 1);
    assert_int_equal(sql_int(fx, "SELECT state FROM entries"), QUEUE_DEFERRED);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM entries WHERE last_reply ="
                                 " '451 4.3.0 try later'"),
                     1);
    assert_int_equal(queue_defer(fx->q, id + 99, NOW, "x", true), BH_ENOENT);
    assert_int_equal(queue_defer(fx->q, id, QUEUE_NEVER, "x", true), BH_EINVAL);
}

static void
test_set_state(void **state)
{
    struct fx *fx = *state;
    struct tmsg t;
    tmsg_init(&t, "a", 1, NOW, NOW, 1);
    commit_one(fx, &t);
    struct queue_entry e;
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 1, &e), 1);
    int64_t id = e.entry;
    queue_entry_fini(&e);

    /* The window closed: back to scheduled until it opens. */
    assert_int_equal(queue_set_state(fx->q, id, QUEUE_SCHEDULED, NOW + 3600), 0);
    assert_int_equal(queue_lease_due(fx->q, NOW + 3599, NULL, 1, &e), 0);
    assert_int_equal(queue_lease_due(fx->q, NOW + 3600, NULL, 1, &e), 1);
    queue_entry_fini(&e);
    /* Triggered: never due until made so. */
    assert_int_equal(queue_set_state(fx->q, id, QUEUE_TRIGGERED, NOW), 0);
    assert_int_equal(sql_int(fx, "SELECT next_attempt IS NULL FROM entries"), 1);
    assert_int_equal(queue_lease_due(fx->q, INT64_MAX - 1, NULL, 1, &e), 0);
    assert_int_equal(queue_next_due(fx->q, NULL, &(int64_t){0}), BH_ENOENT);
    assert_int_equal(queue_set_state(fx->q, id, QUEUE_QUEUED, NOW), 0);
    /* Held: a flag over the state; not leased while set. */
    assert_int_equal(queue_set_state(fx->q, id, QUEUE_HELD, 0), 0);
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 1, &e), 0);
    assert_int_equal(sql_int(fx, "SELECT state FROM entries"), QUEUE_QUEUED);
    assert_int_equal(queue_set_state(fx->q, id, QUEUE_DELIVERING, NOW), BH_EINVAL);
    assert_int_equal(queue_set_state(fx->q, id, QUEUE_QUEUED, QUEUE_NEVER), BH_EINVAL);
    assert_int_equal(queue_set_state(fx->q, id + 5, QUEUE_QUEUED, NOW), BH_ENOENT);
    assert_int_equal(queue_set_warned(fx->q, t.m.id), 0);
    assert_int_equal(sql_int(fx, "SELECT warned FROM messages"), 1);
    assert_int_equal(queue_set_warned(fx->q, t.m.id), BH_ENOENT); /* once only */
    assert_int_equal(queue_set_warned(fx->q, "AAAAAAAAAAAAAAAA"), BH_ENOENT);
}

static void
test_commit_states(void **state)
{
    struct fx *fx = *state;
    struct tmsg t;
    tmsg_init(&t, "a", 1, NOW, NOW, 4);
    t.r[1].state = QUEUE_TRIGGERED;
    t.r[2].state = QUEUE_HELD;
    t.r[3].state = QUEUE_SCHEDULED;
    t.r[3].next_attempt = NOW + 100;
    commit_one(fx, &t);
    struct queue_entry e[4];
    assert_int_equal(queue_lease_due(fx->q, NOW + 100, NULL, 4, e), 2);
    assert_string_equal(e[0].rcpt, "rcpt0@example.com");
    assert_string_equal(e[1].rcpt, "rcpt3@example.com");
    fini_all(e, 2);
    /* Bad input is refused and nothing is stored. */
    tmsg_init(&t, "a", 1, NOW, NOW, 1);
    t.r[0].state = QUEUE_DELIVERING;
    assert_int_equal(queue_commit(fx->q, &t.m, 1), BH_EINVAL);
    tmsg_init(&t, "a", 7, NOW, NOW, 1);
    assert_int_equal(queue_commit(fx->q, &t.m, 1), BH_EINVAL);
    tmsg_init(&t, "a", 1, NOW, NOW, 1);
    strcpy(t.m.id, "lowercaseidxxxxx");
    assert_int_equal(queue_commit(fx->q, &t.m, 1), BH_EINVAL);
    tmsg_init(&t, "a", 1, NOW, NOW, 0);
    assert_int_equal(queue_commit(fx->q, &t.m, 1), BH_EINVAL);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 1);
}

static void
test_recover(void **state)
{
    struct fx *fx = *state;
    struct tmsg t;
    tmsg_init(&t, "a", 1, NOW, NOW, 3);
    commit_one(fx, &t);
    struct queue_entry e[3];
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 2, e), 2);
    fini_all(e, 2);
    /* A crash: another handle (the next serve) recovers. */
    queue_close(fx->q);
    assert_int_equal(tq_open(fx->path, 0, &fx->q, fx->err, sizeof fx->err), 0);
    assert_int_equal(queue_recover_delivering(fx->q), 2);
    assert_int_equal(queue_recover_delivering(fx->q), 0);
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 3, e), 3);
    fini_all(e, 3);
}

static void
test_txn(void **state)
{
    struct fx *fx = *state;
    struct tmsg a, b;
    tmsg_init(&a, "a", 1, NOW, NOW, 1);
    tmsg_init(&b, "a", 1, NOW, NOW, 1);
    assert_int_equal(queue_txn_begin(fx->q), 0);
    assert_int_equal(queue_txn_begin(fx->q), BH_EINVAL);
    commit_one(fx, &a);
    /* A failing call inside undoes only itself. */
    assert_int_equal(queue_commit(fx->q, &a.m, 1), BH_EEXIST);
    commit_one(fx, &b);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 0); /* not yet */
    assert_int_equal(queue_txn_commit(fx->q), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 2);
    assert_int_equal(queue_txn_commit(fx->q), BH_EINVAL);

    struct tmsg c;
    tmsg_init(&c, "a", 1, NOW, NOW, 1);
    assert_int_equal(queue_txn_begin(fx->q), 0);
    commit_one(fx, &c);
    queue_txn_rollback(fx->q);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 2);
    queue_txn_rollback(fx->q); /* nothing open: no-op */
}

/* The disk fills inside the caller's group: the whole group is lost and
 * the commit says so. */
static void
test_txn_full_disk(void **state)
{
    struct fx *fx = *state;
    if (tq_pg())
        skip(); /* SQLite only: its page limit, its query plans */
    queue_close(fx->q);
    setenv("BRIDGEHEAD_TEST_MAX_PAGES", "60", 1);
    assert_int_equal(queue_open(fx->path, 0, &fx->q, fx->err, sizeof fx->err), 0);
    struct tmsg small, big;
    tmsg_init(&small, "a", 1, NOW, NOW, 1);
    tmsg_init(&big, "a", 1, NOW, NOW, 1);
    struct queue_spool *sp = queue_spool_new(fx->dir);
    static unsigned char chunk[400000];
    assert_int_equal(queue_spool_write(sp, chunk, sizeof chunk), 0);
    big.m.body = sp;
    assert_int_equal(queue_txn_begin(fx->q), 0);
    commit_one(fx, &small);
    assert_int_equal(queue_commit(fx->q, &big.m, 1), BH_ENOSPC);
    int rc = queue_txn_commit(fx->q);
    if (rc == 0) {
        /* SQLite kept the transaction: only the big one is gone. */
        assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 1);
    } else {
        assert_int_equal(rc, BH_ENOSPC);
        assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 0);
    }
    queue_spool_free(sp);
    /* Usable afterwards. */
    struct tmsg again;
    tmsg_init(&again, "a", 1, NOW, NOW, 1);
    commit_one(fx, &again);
}

static void
test_readonly(void **state)
{
    struct fx *fx = *state;
    struct tmsg t;
    tmsg_init(&t, "a", 1, NOW, NOW, 1);
    commit_one(fx, &t);
    struct queue *r;
    assert_int_equal(tq_open(fx->path, QUEUE_READONLY, &r, fx->err, sizeof fx->err), 0);
    char *body;
    size_t len;
    assert_int_equal(queue_read_body(r, t.m.id, &body, &len), 0);
    free(body);
    struct queue_entry e;
    assert_int_equal(queue_lease_due(r, NOW, NULL, 1, &e), BH_EINVAL);
    assert_int_equal(queue_commit(r, &t.m, 1), BH_EINVAL);
    assert_int_equal(queue_recover_delivering(r), BH_EINVAL);
    int64_t when;
    assert_int_equal(queue_next_due(r, NULL, &when), 0);
    /* The writer goes on while the reader is open. */
    assert_int_equal(queue_lease_due(fx->q, NOW, NULL, 1, &e), 1);
    assert_int_equal(queue_complete(fx->q, e.entry), 0);
    queue_entry_fini(&e);
    assert_int_equal(queue_read_body(r, t.m.id, &body, &len), BH_ENOENT);
    queue_close(r);
}

/* The plan SQLite picks for a statement of the queue must use index `want`
 * and scan no table. */
static void
check_plan(sqlite3 *db, enum queue_sql_st id, const char *want)
{
    char *sql = xasprintf("EXPLAIN QUERY PLAN %s", queue_sql_text[id]);
    sqlite3_stmt *st;
    bool found = false;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        if (strncmp(d, "SCAN", 4) == 0)
            fail_msg("statement %d scans: %s", (int)id, d);
        if (strstr(d, want) != NULL)
            found = true;
    }
    if (!found)
        fail_msg("statement %d does not use %s", (int)id, want);
    sqlite3_finalize(st);
    free(sql);
}

/* Leasing, the timer's query and recovery use the partial indexes. */
static void
test_lease_plan(void **state)
{
    struct fx *fx = *state;
    if (tq_pg())
        skip(); /* SQLite only: its page limit, its query plans */
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    check_plan(db, QUEUE_SQL_LEASE_ANY, "INDEX entries_due ");
    check_plan(db, QUEUE_SQL_LEASE_CONN, "INDEX entries_due_conn ");
    check_plan(db, QUEUE_SQL_NEXT_ANY, "INDEX entries_due");
    check_plan(db, QUEUE_SQL_NEXT_CONN, "INDEX entries_due_conn");
    check_plan(db, QUEUE_SQL_RECOVER, "INDEX entries_delivering");
    check_plan(db, QUEUE_SQL_MID, "sqlite_autoindex_messages_1");
    check_plan(db, QUEUE_SQL_HOLD_MSG, "INDEX entries_mid");
    check_plan(db, QUEUE_SQL_LIST_MSG, "INDEX entries_mid");
    sqlite3_close(db);
}

/* SPEC §8, postgres only: two nodes share the queue. A leased entry is not
 * leased again by the other node (SKIP LOCKED), only its holder may settle
 * it, an expired lease is taken over (and the old holder's answers then
 * fail), source_nodes keeps a node away from a connector, a second node of
 * the same name is refused, and new mail wakes the other node. */
static struct queue *
open_node(struct fx *fx, const char *node, unsigned flags, int want)
{
    struct queue_cfg cfg = {QUEUE_BACKEND_POSTGRES, fx->path, tq_dsn(), node};
    struct queue *q = NULL;
    assert_int_equal(queue_open_cfg(&cfg, flags, &q, fx->err, sizeof fx->err), want);
    return q;
}

static void
test_pg_nodes(void **state)
{
    struct fx *fx = *state;
    if (!tq_pg())
        skip(); /* postgres only */
    struct queue *b = open_node(fx, "other", 0, 0);
    struct tmsg t1, t2, t3;
    tmsg_init(&t1, "a", 1, NOW - 10, NOW - 10, 1);
    tmsg_init(&t2, "a", 1, NOW - 5, NOW - 5, 1);
    tmsg_init(&t3, "b", 1, NOW, NOW, 1);
    struct queue_msg msgs[] = {t1.m, t2.m, t3.m};
    assert_int_equal(queue_commit(fx->q, msgs, 3), 0);

    struct queue_entry ea, eb;
    assert_int_equal(queue_lease_due(fx->q, NOW, "a", 1, &ea), 1);
    assert_string_equal(ea.id, t1.m.id);
    assert_int_equal(queue_lease_due(b, NOW, "a", 1, &eb), 1);
    assert_string_equal(eb.id, t2.m.id); /* not t1 again */
    assert_string_equal(eb.node, "other");
    /* Only the holder settles. */
    assert_int_equal(queue_complete(b, ea.entry), BH_ENOENT);
    assert_int_equal(queue_defer(b, ea.entry, NOW + 60, "451 x", true), BH_ENOENT);
    assert_int_equal(queue_complete(b, eb.entry), 0);
    queue_entry_fini(&eb);
    /* source_nodes: b may not deliver for "b". */
    const char *ex[] = {"b"};
    queue_set_excluded(b, ex, 1);
    assert_int_equal(queue_lease_due(b, NOW, NULL, 4, &eb), 0);
    int64_t when = 0; /* not "b": when fx->q's lease on t1 runs out */
    assert_int_equal(queue_next_due(b, NULL, &when), 0);
    assert_true(when > (int64_t)time(NULL) + 30);
    /* fx->q's lease expires (by the database's clock): b takes over. */
    tq_pg_exec("UPDATE entries SET lease_until = now() - interval '1 second' WHERE state = 5");
    assert_int_equal(queue_next_due(b, NULL, &when), 0);
    assert_int_equal(queue_lease_due(b, NOW, NULL, 4, &eb), 1);
    assert_int_equal(eb.entry, ea.entry);
    assert_int_equal(queue_complete(fx->q, ea.entry), BH_ENOENT);
    assert_int_equal(queue_set_state(fx->q, ea.entry, QUEUE_QUEUED, NOW), BH_ENOENT);
    assert_int_equal(queue_defer(b, eb.entry, NOW + 60, "451 y", true), 0);
    queue_entry_fini(&ea);
    queue_entry_fini(&eb);
    queue_close(b);
}

static void
test_pg_serve(void **state)
{
    struct fx *fx = *state;
    if (!tq_pg())
        skip(); /* postgres only */
    struct queue *s = open_node(fx, "srv", QUEUE_SERVE, 0);
    assert_null(open_node(fx, "srv", QUEUE_SERVE, BH_EBUSY)); /* the node's lock */
    assert_true(strstr(fx->err, "already running") != NULL);
    int fd = queue_wake_fd(s);
    assert_true(fd >= 0);
    struct tmsg t;
    tmsg_init(&t, "a", 1, NOW, NOW, 1);
    commit_one(fx, &t); /* another node's commit: NOTIFY */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    queue_wake_clear(s);
    assert_int_equal(poll(&p, 1, 0), 0);
    /* Its own leases are watched. */
    struct queue_entry e;
    assert_int_equal(queue_lease_due(s, NOW, NULL, 1, &e), 1);
    assert_true(queue_entry_lease_ok(&e));
    assert_int_equal(queue_complete(s, e.entry), 0);
    assert_false(queue_entry_lease_ok(&e)); /* settled: no longer held */
    queue_entry_fini(&e);
    queue_close(s);
    s = open_node(fx, "srv", QUEUE_SERVE, 0); /* the lock went with the handle */
    queue_close(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_bounce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_full_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_serve, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
