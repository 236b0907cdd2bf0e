/* Unit tests for storage/queue_lock: the second-serve lock. */
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

#include "connectors/util.h"
#include "storage/queue_lock.h"

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
    char *dir = strdup("/tmp/bh-lock-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    *state = dir;
    return 0;
}

static int
teardown(void **state)
{
    nftw(*state, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(*state);
    return 0;
}

static void
test_second_serve(void **state)
{
    char *db = xasprintf("%s/var/q/queue.db", (char *)*state);
    char err[256] = "";
    int fd = queue_lock_acquire(db, err, sizeof err);
    assert_true(fd >= 0);
    assert_int_equal(access(db, F_OK), -1); /* the lock does not make the queue */

    /* A second acquire fails, even from this process, and names the holder. */
    int fd2 = queue_lock_acquire(db, err, sizeof err);
    assert_int_equal(fd2, BH_EBUSY);
    assert_non_null(strstr(err, "in use by another bridgehead serve"));
    char pid[32];
    snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
    assert_non_null(strstr(err, pid));

    queue_lock_release(fd);
    fd = queue_lock_acquire(db, err, sizeof err);
    assert_true(fd >= 0);
    queue_lock_release(fd);
    queue_lock_release(-1);
    free(db);
}

static void
test_bad_folder(void **state)
{
    /* A file where the folder should be. */
    char *file = xasprintf("%s/plain", (char *)*state);
    FILE *f = fopen(file, "w");
    fclose(f);
    char *db = xasprintf("%s/queue.db", file);
    char err[256] = "";
    int fd = queue_lock_acquire(db, err, sizeof err);
    assert_true(fd < 0);
    assert_int_not_equal(fd, BH_EBUSY);
    assert_true(strlen(err) > 0);
    free(db);
    free(file);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_second_serve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_folder, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
