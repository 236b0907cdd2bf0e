/* Unit tests for core/control_req: the wire line (format, parse, hostile
 * input), argument checks, and running queue requests on a real queue. */
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
#include "core/control_req.h"
#include "storage/queue.h"
#include "storage/queue_admin.h"

#define NOW 1700000000 /* 2023-11-14T22:13:20Z */

struct fx {
    char dir[64];
    char *path;
    struct queue *q;
    char id[2][QUEUE_ID_LEN + 1]; /* two recipients from a@, one from <> */
    struct util_buf out, err;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
fill(struct fx *fx)
{
    struct queue_rcpt r0[2] = {
        {"x@example.net", "hold", QUEUE_TRIGGERED, 0, 0, NULL},
        {"y@example.com", "hold", QUEUE_DEFERRED, NOW + 600, 0, NULL},
    };
    struct queue_rcpt r1[1] = {
        {"z@\x1b[31mexample.net", "sched", QUEUE_SCHEDULED, NOW + 60, 0, NULL}};
    struct queue_msg m[2];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 2; i++) {
        queue_id_new(m[i].id);
        strcpy(fx->id[i], m[i].id);
        m[i].priority = 1;
        m[i].size = 100;
        m[i].received = NOW - 700;
    }
    m[0].sender = "a@example.org";
    m[0].rcpts = r0;
    m[0].nrcpts = 2;
    m[1].sender = "";
    m[1].rcpts = r1;
    m[1].nrcpts = 1;
    assert_int_equal(queue_commit(fx->q, m, 2), 0);
}

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    char err[256];
    if (fx == NULL)
        return -1;
    strcpy(fx->dir, "/tmp/bh-ctl-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    fx->path = xasprintf("%s/queue.db", fx->dir);
    if (queue_open(fx->path, 0, &fx->q, err, sizeof err) != 0) {
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
    util_buf_fini(&fx->out);
    util_buf_fini(&fx->err);
    free(fx->path);
    free(fx);
    return 0;
}

/* Run a wire line on the fixture's queue; out and err are reset first. */
static int
run(struct fx *fx, const char *line)
{
    struct control_req r;
    char err[160];
    util_buf_reset(&fx->out);
    util_buf_reset(&fx->err);
    assert_int_equal(control_req_parse(line, &r, err, sizeof err), 0);
    return control_req_run(fx->q, &r, NOW, &fx->out, &fx->err);
}

static void
test_format_parse_round_trip(void **state)
{
    (void)state;
    struct control_req r, back;
    struct util_buf b = {0};
    char err[160];
    control_req_init(&r, CONTROL_LIST);
    r.json = true;
    r.state = QUEUE_HELD;
    strcpy(r.connector, "partner-contoso");
    control_req_format(&r, &b);
    assert_string_equal(b.p, "list json connector=partner-contoso state=held\n");
    assert_int_equal(control_req_parse(b.p, &back, err, sizeof err), 0);
    assert_memory_equal(&r, &back, sizeof r);
    util_buf_reset(&b);
    control_req_init(&r, CONTROL_FLUSH);
    r.now = true;
    strcpy(r.id, "ABCDEFGHIJKLMNOP");
    control_req_format(&r, &b);
    assert_string_equal(b.p, "flush now id=ABCDEFGHIJKLMNOP\n");
    assert_int_equal(control_req_parse(b.p, &back, err, sizeof err), 0);
    assert_memory_equal(&r, &back, sizeof r);
    util_buf_fini(&b);
}

static void
test_parse_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "\n",
        "frobnicate",
        "list bogus",
        "list state=nope",
        "list connector=a b",
        "list connector=",
        "list connector=a\x01",
        "list id=ABCDEFGHIJKLMNOP",
        "hold",
        "show json now id=ABCDEFGHIJKLMNOP",
        "flush connector=hold id=ABCDEFGHIJKLMNOP",
        "stats now",
        "reload json",
        "list\nlist\n",
        "hold id=\x80\x81",
    };
    struct control_req r;
    char err[160];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(control_req_parse(bad[i], &r, err, sizeof err), BH_EINVAL);
        assert_true(err[0] != '\0');
    }
    char *longline = xmalloc(CONTROL_REQ_MAX_LINE + 10);
    memset(longline, 'a', CONTROL_REQ_MAX_LINE + 9);
    memcpy(longline, "list id=", 8);
    longline[CONTROL_REQ_MAX_LINE + 9] = '\0';
    assert_int_equal(control_req_parse(longline, &r, err, sizeof err), BH_EINVAL);
    free(longline);
    assert_int_equal(control_req_parse("reload\n", &r, err, sizeof err), 0);
    assert_int_equal(r.verb, CONTROL_RELOAD);
}

static void
test_list_json(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(run(fx, "list json"), 0);
    char *want = xasprintf(
        "{\"id\":\"%s\",\"recipient\":\"x@example.net\",\"sender\":\"a@example.org\","
        "\"connector\":\"hold\",\"state\":\"triggered\",\"attempts\":0,\"size\":100,"
        "\"received\":\"2023-11-14T22:01:40Z\",\"next_attempt\":null,\"last_reply\":null,"
        "\"node\":null}\n"
        "{\"id\":\"%s\",\"recipient\":\"y@example.com\",\"sender\":\"a@example.org\","
        "\"connector\":\"hold\",\"state\":\"deferred\",\"attempts\":0,\"size\":100,"
        "\"received\":\"2023-11-14T22:01:40Z\",\"next_attempt\":\"2023-11-14T22:23:20Z\","
        "\"last_reply\":null,\"node\":null}\n"
        "{\"id\":\"%s\",\"recipient\":\"z@\\u001b[31mexample.net\",\"sender\":\"<>\","
        "\"connector\":\"sched\",\"state\":\"scheduled\",\"attempts\":0,\"size\":100,"
        "\"received\":\"2023-11-14T22:01:40Z\",\"next_attempt\":\"2023-11-14T22:14:20Z\","
        "\"last_reply\":null,\"node\":null}\n",
        fx->id[0], fx->id[0], fx->id[1]);
    assert_string_equal(fx->out.p, want);
    free(want);
    assert_int_equal(fx->err.len, 0);
}

static void
test_list_text_is_sanitised(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(run(fx, "list state=scheduled"), 0);
    assert_non_null(strstr(fx->out.p, "<> -> <z@?[31mexample.net>"));
    assert_null(strchr(fx->out.p, '\x1b'));
    assert_int_equal(strncmp(fx->out.p, "ID ", 3), 0);
}

static void
test_show_and_unknown(void **state)
{
    struct fx *fx = *state;
    char line[64];
    snprintf(line, sizeof line, "show json id=%s", fx->id[0]);
    for (char *p = line + 13; *p; p++)
        *p = (char)(*p | 0x20); /* IDs in any case */
    assert_int_equal(run(fx, line), 0);
    assert_non_null(strstr(fx->out.p, "\"recipients\":[{\"recipient\":\"x@example.net\""));
    assert_non_null(strstr(fx->out.p, "]}\n"));
    assert_int_equal(run(fx, "show id=AAAAAAAAAAAAAAAA"), BH_ENOENT);
    assert_string_equal(fx->err.p, "bridgehead: no such message in the queue: AAAAAAAAAAAAAAAA\n");
    assert_int_equal(run(fx, "hold id=nope"), BH_EINVAL);
    assert_non_null(strstr(fx->err.p, "not a queue ID"));
}

static int
count_marked(const struct queue_entry *e, void *arg)
{
    *(int *)arg += e->ignore_schedule;
    return 0;
}

/* How many entries carry the mark that their next attempt ignores the
 * connector's schedule. */
static int
marked(struct fx *fx)
{
    int n = 0;
    assert_int_equal(queue_admin_list(fx->q, NULL, count_marked, &n), 0);
    return n;
}

static void
test_hold_and_flush(void **state)
{
    struct fx *fx = *state;
    char line[64];
    snprintf(line, sizeof line, "hold id=%s", fx->id[1]);
    assert_int_equal(run(fx, line), 0);
    /* Without now: the triggered entry is queued, the deferred one due; the
     * held scheduled one stays. */
    assert_int_equal(run(fx, "flush"), 0);
    assert_string_equal(fx->out.p, "2 entries due now\n");
    assert_int_equal(run(fx, "list json state=queued"), 0);
    assert_non_null(strstr(fx->out.p, "\"next_attempt\":\"2023-11-14T22:13:20Z\""));
    assert_int_equal(marked(fx), 0); /* the windows still apply */
    snprintf(line, sizeof line, "release id=%s", fx->id[1]);
    assert_int_equal(run(fx, line), 0);
    assert_int_equal(run(fx, "flush connector=sched"), 0);
    assert_string_equal(fx->out.p, "0 entries due now\n");
    assert_int_equal(run(fx, "flush now connector=sched"), 0);
    assert_string_equal(fx->out.p, "1 entry due now\n");
    assert_int_equal(run(fx, "list state=scheduled"), 0);
    assert_int_equal(fx->out.len, 0);
    assert_int_equal(marked(fx), 1); /* its attempt ignores the window */
    assert_int_equal(run(fx, "flush now"), 0);
    assert_string_equal(fx->out.p, "3 entries due now\n");
    assert_int_equal(marked(fx), 3);
}

static void
test_stats(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(run(fx, "stats json"), 0);
    assert_string_equal(
        fx->out.p,
        "{\"connector\":\"hold\",\"state\":\"deferred\",\"total\":1,\"buckets\":{\"0-5m\":0,"
        "\"5-10m\":0,\"10-20m\":1,\"20-40m\":0,\"40-80m\":0,\"80-160m\":0,\"160-320m\":0,"
        "\"320-640m\":0,\"640-1280m\":0,\"1280m+\":0}}\n"
        "{\"connector\":\"hold\",\"state\":\"triggered\",\"total\":1,\"buckets\":{\"0-5m\":0,"
        "\"5-10m\":0,\"10-20m\":1,\"20-40m\":0,\"40-80m\":0,\"80-160m\":0,\"160-320m\":0,"
        "\"320-640m\":0,\"640-1280m\":0,\"1280m+\":0}}\n"
        "{\"connector\":\"sched\",\"state\":\"scheduled\",\"total\":1,\"buckets\":{\"0-5m\":0,"
        "\"5-10m\":0,\"10-20m\":1,\"20-40m\":0,\"40-80m\":0,\"80-160m\":0,\"160-320m\":0,"
        "\"320-640m\":0,\"640-1280m\":0,\"1280m+\":0}}\n");
    assert_int_equal(run(fx, "stats"), 0);
    assert_non_null(strstr(fx->out.p, "TOTAL"));
}

static void
test_no_queue(void **state)
{
    (void)state;
    struct control_req r;
    struct util_buf out = {0}, err = {0};
    char e[160];
    assert_int_equal(control_req_parse("list json", &r, e, sizeof e), 0);
    assert_int_equal(control_req_run(NULL, &r, NOW, &out, &err), 0);
    assert_int_equal(control_req_parse("stats", &r, e, sizeof e), 0);
    assert_int_equal(control_req_run(NULL, &r, NOW, &out, &err), 0);
    assert_int_equal(out.len + err.len, 0);
    assert_int_equal(control_req_parse("delete id=AAAAAAAAAAAAAAAA", &r, e, sizeof e), 0);
    assert_int_equal(control_req_run(NULL, &r, NOW, &out, &err), BH_ENOENT);
    assert_int_equal(control_req_parse("reload", &r, e, sizeof e), 0);
    assert_int_equal(control_req_run(NULL, &r, NOW, &out, &err), BH_EINVAL);
    util_buf_fini(&out);
    util_buf_fini(&err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_parse_round_trip),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test_setup_teardown(test_list_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_text_is_sanitised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_and_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_and_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test(test_no_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
