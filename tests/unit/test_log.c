/* Unit tests for core/log: kv -> JSON, lines reach the fd, and a writer that
 * cannot write never blocks the caller (lines are dropped and counted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "connectors/util.h"
#include "core/log.h"

static void
test_kv_to_json(void **state)
{
    (void)state;
    struct util_buf b = {0};
    log_kv_to_json("id=ABC to=<a@b.c> reply=\"250 2.0.0 ok \\\"x\\\"\" flag", "info", "T", &b);
    assert_string_equal(b.p, "{\"id\":\"ABC\",\"to\":\"<a@b.c>\",\"reply\":\"250 2.0.0 ok "
                             "\\\"x\\\"\",\"flag\":\"\",\"level\":\"info\",\"ts\":\"T\"}");
    util_buf_reset(&b);
    log_kv_to_json("", "warn", "T", &b);
    assert_string_equal(b.p, "{\"level\":\"warn\",\"ts\":\"T\"}");
    util_buf_reset(&b);
    log_kv_to_json("k=\"unterminated", "info", "T", &b);
    assert_string_equal(b.p, "{\"k\":\"unterminated\",\"level\":\"info\",\"ts\":\"T\"}");
    util_buf_fini(&b);
}

static void
test_lines_written(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct log *l = log_new(fds[1], LOG_FORMAT_KV, LOG_INFO, 0);
    log_info(l, "id=%s event=%s", "X1", "accepted");
    log_debug(l, "id=%s event=hidden", "X2");
    assert_false(log_enabled(l, LOG_DEBUG));
    log_free(l);
    close(fds[1]);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "id=X1 event=accepted level=info ts="));
    assert_null(strstr(buf, "X2"));
    close(fds[0]);
}

static void
test_json_format(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct log *l = log_new(fds[1], LOG_FORMAT_JSON, LOG_DEBUG, 0);
    log_warn(l, "id=%s reply=\"%s\"", "Q", "451 4.3.0 later");
    log_free(l);
    close(fds[1]);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "{\"id\":\"Q\",\"reply\":\"451 4.3.0 later\",\"level\":\"warn\""));
    close(fds[0]);
}

/* Nobody reads the pipe: its 64 KiB fill up, the writer thread blocks in
 * write(), and log_msg must still return at once, dropping lines. */
static void
test_slow_reader_never_blocks(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct log *l = log_new(fds[1], LOG_FORMAT_KV, LOG_INFO, 8192);
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 20000; i++)
        log_info(l, "id=%d data=%s", i, big);
    assert_true(log_dropped(l) > 0);
    /* Drain so that log_free can finish its final write. */
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    char buf[65536];
    int spins = 0;
    while (read(fds[0], buf, sizeof buf) > 0 || spins++ < 3)
        usleep(10000);
    close(fds[0]);
    log_free(l); /* writes fail with EPIPE now and are given up */
    close(fds[1]);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_to_json),
        cmocka_unit_test(test_lines_written),
        cmocka_unit_test(test_json_format),
        cmocka_unit_test(test_slow_reader_never_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
