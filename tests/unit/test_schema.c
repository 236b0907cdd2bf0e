/*
 * Unit tests for storage/schema (through queue_open, which runs it): a new
 * queue, migration from version 1, foreign, newer and corrupt files.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/util.h"
#include "storage/queue.h"
#include "storage/schema.h"

struct fx {
    char dir[64];
    char *path;
    char err[512];
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
    strcpy(fx->dir, "/tmp/bh-schema-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    fx->path = xasprintf("%s/queue.db", fx->dir);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    nftw(fx->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(fx->path);
    free(fx);
    unsetenv("BRIDGEHEAD_TEST_MAX_PAGES");
    return 0;
}

static long long
sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    long long v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void
sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void
write_file(const char *path, const void *data, size_t len, off_t at)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
    close(fd);
}

static void
test_create(void **state)
{
    struct fx *fx = *state;
    char *deep = xasprintf("%s/a/b/c/queue.db", fx->dir);
    struct queue *q;
    assert_int_equal(queue_open(deep, 0, &q, fx->err, sizeof fx->err), 0);
    queue_close(q);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(sql_int(deep, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_int_equal(sql_int(deep, "PRAGMA application_id"), SCHEMA_APPLICATION_ID);
    assert_int_equal(sql_int(deep, "SELECT count(*) FROM pragma_journal_mode WHERE"
                                   " journal_mode = 'wal'"),
                     1);
    /* Open again: nothing to migrate; and read-only works too. */
    assert_int_equal(queue_open(deep, 0, &q, fx->err, sizeof fx->err), 0);
    queue_close(q);
    assert_int_equal(queue_open(deep, QUEUE_READONLY, &q, fx->err, sizeof fx->err), 0);
    queue_close(q);
    queue_close(NULL);
    free(deep);
}

static void
test_readonly_missing(void **state)
{
    struct fx *fx = *state;
    struct queue *q = (struct queue *)1;
    assert_true(queue_open(fx->path, QUEUE_READONLY, &q, fx->err, sizeof fx->err) < 0);
    assert_null(q);
    assert_non_null(strstr(fx->err, fx->path));
    assert_int_equal(access(fx->path, F_OK), -1);
    /* An empty file is not a queue yet for a reader. */
    write_file(fx->path, "", 0, 0);
    assert_int_equal(queue_open(fx->path, QUEUE_READONLY, &q, fx->err, sizeof fx->err), BH_EINVAL);
    /* A writer makes it one. */
    assert_int_equal(queue_open(fx->path, 0, &q, fx->err, sizeof fx->err), 0);
    queue_close(q);
}

/* Version 1 as it was released, built by hand. */
static const char *const v1 =
    "CREATE TABLE messages (mid INTEGER PRIMARY KEY, qid TEXT NOT NULL UNIQUE,"
    " sender TEXT NOT NULL, envid TEXT, ret INTEGER NOT NULL DEFAULT 0,"
    " priority INTEGER NOT NULL DEFAULT 1, system INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL, received INTEGER NOT NULL);"
    "CREATE TABLE bodies (mid INTEGER PRIMARY KEY REFERENCES messages(mid) ON DELETE CASCADE,"
    " data BLOB NOT NULL);"
    "CREATE TABLE entries (eid INTEGER PRIMARY KEY,"
    " mid INTEGER NOT NULL REFERENCES messages(mid) ON DELETE CASCADE,"
    " rcpt TEXT NOT NULL, connector TEXT NOT NULL,"
    " state INTEGER NOT NULL CHECK (state IN (0, 1, 2, 3, 5)),"
    " held INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER, last_reply TEXT, notify INTEGER NOT NULL DEFAULT 0, orcpt TEXT);"
    "CREATE INDEX entries_mid ON entries(mid);"
    "CREATE INDEX entries_due ON entries(state, next_attempt);"
    "INSERT INTO messages VALUES (1, 'AAAAAAAAAAAAAAAA', 'a@b.org', NULL, 0, 2, 0, 5, 100);"
    "INSERT INTO bodies VALUES (1, x'68656c6c6f');"
    "INSERT INTO entries (mid, rcpt, connector, state, next_attempt)"
    " VALUES (1, 'x@y.org', 'internet', 0, 100);"
    "PRAGMA application_id = 1112032337;" /* 0x42484451 */
    "PRAGMA user_version = 1;";

static void
test_migrate_v1(void **state)
{
    struct fx *fx = *state;
    sql_exec(fx->path, v1);
    struct queue *q;
    /* A reader cannot migrate. */
    assert_int_equal(queue_open(fx->path, QUEUE_READONLY, &q, fx->err, sizeof fx->err), BH_EINVAL);
    assert_non_null(strstr(fx->err, "migration"));
    assert_int_equal(queue_open(fx->path, 0, &q, fx->err, sizeof fx->err), 0);
    /* The old message survived and can be leased through the new indexes. */
    struct queue_entry e;
    assert_int_equal(queue_lease_due(q, 1000, NULL, 1, &e), 1);
    assert_string_equal(e.id, "AAAAAAAAAAAAAAAA");
    assert_string_equal(e.rcpt, "x@y.org");
    assert_false(e.warned);
    assert_false(e.ignore_schedule);
    assert_int_equal(e.priority, 2);
    queue_entry_fini(&e);
    char *body;
    size_t len;
    assert_int_equal(queue_read_body(q, "AAAAAAAAAAAAAAAA", &body, &len), 0);
    assert_memory_equal(body, "hello", 5);
    free(body);
    queue_close(q);
    assert_int_equal(sql_int(fx->path, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM sqlite_schema WHERE"
                                       " name = 'entries_due_conn'"),
                     1);
    assert_int_equal(sql_int(fx->path, "SELECT ignore_schedule FROM entries"), 0);
}

static void
expect_refused(struct fx *fx, const char *why)
{
    struct queue *q = (struct queue *)1;
    int rc = queue_open(fx->path, 0, &q, fx->err, sizeof fx->err);
    assert_true(rc < 0);
    assert_null(q);
    assert_non_null(strstr(fx->err, fx->path));
    if (strstr(fx->err, why) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", fx->err, why);
}

static void
test_text_file(void **state)
{
    struct fx *fx = *state;
    const char text[] = "this is my shopping list, not a queue\n"
                        "more lines to make it longer than a header........................\n"
                        "................................................................\n";
    write_file(fx->path, text, sizeof text - 1, 0);
    expect_refused(fx, "not a bridgehead queue (not an SQLite database)");
    /* And it was not touched. */
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_size, sizeof text - 1);
    char *wal = xasprintf("%s-wal", fx->path);
    assert_int_equal(access(wal, F_OK), -1);
    free(wal);
}

static void
test_other_app(void **state)
{
    struct fx *fx = *state;
    sql_exec(fx->path, "CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');");
    expect_refused(fx, "other tables");
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM contacts"), 1);
    assert_int_equal(sql_int(fx->path, "PRAGMA user_version"), 0);
}

static void
test_other_app_id(void **state)
{
    struct fx *fx = *state;
    sql_exec(fx->path, "PRAGMA application_id = 1234; PRAGMA user_version = 2;"
                       "CREATE TABLE messages (x);");
    expect_refused(fx, "application_id 0x000004d2");
}

static void
test_newer(void **state)
{
    struct fx *fx = *state;
    struct queue *q;
    assert_int_equal(queue_open(fx->path, 0, &q, fx->err, sizeof fx->err), 0);
    queue_close(q);
    sql_exec(fx->path, "PRAGMA user_version = 99");
    expect_refused(fx, "schema version 99");
}

static void
test_damaged(void **state)
{
    struct fx *fx = *state;
    struct queue *q;
    assert_int_equal(queue_open(fx->path, 0, &q, fx->err, sizeof fx->err), 0);
    queue_close(q);
    sql_exec(fx->path, "DROP TABLE bodies");
    expect_refused(fx, "table bodies is missing");
}

/* A valid SQLite header followed by garbage: an error, not a crash. */
static void
test_corrupt_after_header(void **state)
{
    struct fx *fx = *state;
    struct queue *q;
    assert_int_equal(queue_open(fx->path, 0, &q, fx->err, sizeof fx->err), 0);
    queue_close(q);
    unsigned char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 7919 >> 3);
    write_file(fx->path, junk, sizeof junk - 100, 100);
    expect_refused(fx, "corrupt");
}

/* Garbage in the pages of the tables but not the schema: the open's page
 * check refuses the file, read-write and read-only, naming it (before it,
 * serve started on such a file and `queue list` showed an empty queue). */
static void
test_corrupt_pages(void **state)
{
    struct fx *fx = *state;
    struct queue *q;
    assert_int_equal(queue_open(fx->path, 0, &q, fx->err, sizeof fx->err), 0);
    queue_close(q);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(db);
    long long pages = sql_int(fx->path, "PRAGMA page_count");
    unsigned char junk[4096];
    memset(junk, 0xA5, sizeof junk);
    for (long long p = 1; p < pages; p++)
        write_file(fx->path, junk, sizeof junk, (off_t)(p * 4096));
    expect_refused(fx, "corrupt");
    assert_true(queue_open(fx->path, QUEUE_READONLY, &q, fx->err, sizeof fx->err) < 0);
    assert_non_null(strstr(fx->err, "corrupt"));
    assert_non_null(strstr(fx->err, fx->path));
}

static void
test_bad_max_pages(void **state)
{
    struct fx *fx = *state;
    struct queue *q;
    setenv("BRIDGEHEAD_TEST_MAX_PAGES", "12abc", 1);
    assert_int_equal(queue_open(fx->path, 0, &q, fx->err, sizeof fx->err), BH_EINVAL);
    assert_non_null(strstr(fx->err, "BRIDGEHEAD_TEST_MAX_PAGES"));
    setenv("BRIDGEHEAD_TEST_MAX_PAGES", "-5", 1);
    assert_int_equal(queue_open(fx->path, 0, &q, fx->err, sizeof fx->err), BH_EINVAL);
    setenv("BRIDGEHEAD_TEST_MAX_PAGES", "100", 1);
    assert_int_equal(queue_open(fx->path, 0, &q, fx->err, sizeof fx->err), 0);
    queue_close(q);
}

static void
test_directory_as_file(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(mkdir(fx->path, 0700), 0);
    struct queue *q;
    assert_true(queue_open(fx->path, 0, &q, fx->err, sizeof fx->err) < 0);
    assert_non_null(strstr(fx->err, fx->path));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_app, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_app_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_after_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_max_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_as_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
