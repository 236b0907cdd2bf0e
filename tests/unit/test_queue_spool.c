/* Unit tests for storage/queue_spool: memory, then an unlinked file; cleanup. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connectors/util.h"
#include "storage/queue_spool.h"

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
    char *dir = strdup("/tmp/bh-spool-XXXXXX");
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

static int
count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static unsigned char
pattern(uint64_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

/* Write size bytes of the pattern in pieces of odd sizes. */
static void
fill(struct queue_spool *sp, uint64_t size)
{
    unsigned char buf[7001];
    uint64_t off = 0;
    size_t step = 1;
    while (off < size) {
        size_t n = step % sizeof buf + 1;
        if (n > size - off)
            n = (size_t)(size - off);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(off + i);
        assert_int_equal(queue_spool_write(sp, buf, n), 0);
        off += n;
        step = step * 31 + 7;
    }
    assert_int_equal(queue_spool_size(sp), size);
}

/* Read it all back in pieces of 5000 bytes and compare. */
static void
check(struct queue_spool *sp, uint64_t size)
{
    unsigned char buf[5000];
    uint64_t off = 0;
    for (;;) {
        size_t got;
        assert_int_equal(queue_spool_read(sp, off, buf, sizeof buf, &got), 0);
        if (got == 0)
            break;
        for (size_t i = 0; i < got; i++)
            assert_int_equal(buf[i], pattern(off + i));
        off += got;
    }
    assert_int_equal(off, size);
}

static void
test_memory(void **state)
{
    struct queue_spool *sp = queue_spool_new(*state);
    fill(sp, QUEUE_SPOOL_MEM_MAX);
    assert_false(queue_spool_on_disk(sp));
    assert_int_equal(count_files(*state), 0);
    check(sp, QUEUE_SPOOL_MEM_MAX);
    queue_spool_free(sp);
}

static void
test_file(void **state)
{
    uint64_t sizes[] = {QUEUE_SPOOL_MEM_MAX + 1, 3 * QUEUE_SPOOL_MEM_MAX, 1234567};
    for (size_t k = 0; k < 3; k++) {
        struct queue_spool *sp = queue_spool_new(*state);
        fill(sp, sizes[k]);
        assert_true(queue_spool_on_disk(sp));
        /* The file is unlinked at once: nothing to clean after a crash. */
        assert_int_equal(count_files(*state), 0);
        check(sp, sizes[k]);
        /* Reads at odd offsets straddle the file and the buffer. */
        unsigned char b[100];
        size_t got;
        assert_int_equal(queue_spool_read(sp, sizes[k] - 50, b, sizeof b, &got), 0);
        assert_int_equal(got, 50);
        assert_int_equal(b[0], pattern(sizes[k] - 50));
        assert_int_equal(queue_spool_read(sp, sizes[k] + 5, b, sizeof b, &got), 0);
        assert_int_equal(got, 0);
        queue_spool_free(sp);
    }
}

static void
test_empty(void **state)
{
    struct queue_spool *sp = queue_spool_new(*state);
    unsigned char b[10];
    size_t got = 99;
    assert_int_equal(queue_spool_size(sp), 0);
    assert_int_equal(queue_spool_read(sp, 0, b, sizeof b, &got), 0);
    assert_int_equal(got, 0);
    queue_spool_free(sp);
    queue_spool_free(NULL);
}

/* A spool whose folder is gone fails on the write that needs the file, and
 * stays failed. */
static void
test_write_error(void **state)
{
    char *missing = xasprintf("%s/missing", (char *)*state);
    struct queue_spool *sp = queue_spool_new(missing);
    static unsigned char big[QUEUE_SPOOL_MEM_MAX];
    assert_int_equal(queue_spool_write(sp, big, sizeof big), 0);
    assert_int_equal(queue_spool_write(sp, "x", 1), BH_EIO);
    assert_int_equal(queue_spool_write(sp, "x", 1), BH_EIO);
    size_t got;
    assert_int_equal(queue_spool_read(sp, 0, big, 10, &got), BH_EIO);
    queue_spool_free(sp);
    free(missing);
}

static void
touch(const char *dir, const char *name)
{
    char *p = xasprintf("%s/%s", dir, name);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    free(p);
}

static void
test_cleanup(void **state)
{
    const char *dir = *state;
    touch(dir, "spool-abc123");
    touch(dir, "spool-XyZ789");
    touch(dir, "queue.db");
    touch(dir, "spool-toolongname");
    assert_int_equal(queue_spool_cleanup(dir), 2);
    assert_int_equal(count_files(dir), 2);
    assert_int_equal(queue_spool_cleanup(dir), 0);
    char *missing = xasprintf("%s/nope", dir);
    assert_int_equal(queue_spool_cleanup(missing), 0);
    free(missing);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
