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

/* Outside values cannot end a value early or add keys, in either format. */
static void
test_hostile_values(void **state)
{
    (void)state;
    char a[LOG_VALUE_MAX], t[LOG_VALUE_MAX];
    assert_string_equal(log_token(a, sizeof a, "plain@example.org"), "plain@example.org");
    assert_string_equal(log_token(a, sizeof a, "\"a status=sent x\"@e.org"),
                        "\\x22a\\x20status=sent\\x20x\\x22@e.org");
    assert_string_equal(log_token(a, sizeof a, "a\\b\n\xff"), "a\\x5cb\\x0a\\xff");
    assert_string_equal(log_text(t, sizeof t, "x\" result=ok z=\"\\\r"),
                        "x\\\" result=ok z=\\\"\\\\\\x0d");
    assert_string_equal(log_token(a, sizeof a, NULL), "");
    /* Cut at a whole escape, never half of one. */
    char small[6];
    assert_string_equal(log_token(small, sizeof small, "ab\"cd"), "ab");
    assert_string_equal(log_text(small, sizeof small, "abcd\"e"), "abcd");

    char line[3 * LOG_VALUE_MAX];
    snprintf(line, sizeof line, "event=accepted from=<%s> user=\"%s\" client=1.2.3.4",
             log_token(a, sizeof a, "\"a status=sent x\"@e.org"),
             log_text(t, sizeof t, "x\" result=ok client=9.9.9.9 z=\""));
    assert_null(strstr(line, " status="));
    struct util_buf b = {0};
    log_kv_to_json(line, "info", "T", &b);
    assert_string_equal(b.p, "{\"event\":\"accepted\",\"from\":\"<\\\"a status=sent x\\\"@e.org>\","
                             "\"user\":\"x\\\" result=ok client=9.9.9.9 z=\\\"\","
                             "\"client\":\"1.2.3.4\",\"level\":\"info\",\"ts\":\"T\"}");
    /* Bytes that are not UTF-8 come out as U+FFFD: the line stays JSON. */
    util_buf_reset(&b);
    snprintf(line, sizeof line, "to=<%s> ok=\"h\xc3\xa9\"", log_token(a, sizeof a, "x\xff\xc3@e"));
    log_kv_to_json(line, "info", "T", &b);
    assert_string_equal(b.p, "{\"to\":\"<x\\ufffd\\ufffd@e>\",\"ok\":\"h\xc3\xa9\","
                             "\"level\":\"info\",\"ts\":\"T\"}");
    util_buf_fini(&b);
}

/* The notice of dropped lines is in the log's own format. */
static void
test_dropped_notice_json(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct log *l = log_new(fds[1], LOG_FORMAT_JSON, LOG_INFO, 4096);
    for (int i = 0; i < 5000; i++)
        log_info(l, "id=%d data=%0100d", i, 0);
    assert_true(log_dropped(l) > 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    struct util_buf got = {0};
    char buf[65536];
    for (int spins = 0; spins < 500 && (got.p == NULL || !strstr(got.p, "log_dropped")); spins++) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n > 0)
            util_buf_append(&got, buf, (size_t)n);
        else
            usleep(10000);
    }
    log_free(l);
    close(fds[1]);
    close(fds[0]);
    assert_non_null(got.p);
    const char *d = strstr(got.p, "{\"event\":\"log_dropped\",\"lines\":\"");
    assert_non_null(d);
    assert_non_null(strstr(d, "\"level\":\"warn\",\"ts\":\""));
    util_buf_fini(&got);
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
        cmocka_unit_test(test_hostile_values),
        cmocka_unit_test(test_dropped_notice_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
