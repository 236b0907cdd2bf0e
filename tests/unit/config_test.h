/*
 * config_test: what the config loader's unit tests share (test_config.c,
 * test_config_server.c, test_config_conn.c): a temporary folder with real
 * PEM files (openssl req), a password file and a users file, made by the
 * group setup, and helpers that write a config there, load it and compare
 * the diagnostics with "LINE:COL: message" lines. Test code only; each test
 * binary gets its own copy of these static helpers.
 */
#ifndef BH_TESTS_UNIT_CONFIG_TEST_H
#define BH_TESTS_UNIT_CONFIG_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/config.h"
#include "connectors/connector.h"
#include "connectors/schedule.h"
#include "connectors/util.h"

static char dir[64];

/* A connector that makes a config complete, for tests about other keys. */
#define CONN "connectors:\n  - name: c\n    address_spaces: [\"*\"]\n"
/* server.tls with the real certificate and key of the setup. */
#define TLS "  tls: {certificate: certs/relay.pem, key: certs/relay.key}\n"

static __attribute__((unused)) void
write_file(const char *name, const char *data)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
    free(path);
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));

static __attribute__((unused)) int
run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static __attribute__((unused)) int
setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/bh-config-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    if (run("cd '%s' && mkdir certs secrets certdir sub && "
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            "-keyout certs/relay.key -out certs/relay.pem -subj /CN=relay.example.org "
            "-days 2 >/dev/null 2>&1 && cp certs/relay.pem certs/partner-ca.pem",
            dir) != 0)
        return -1;
    write_file("secrets/contoso.pw", "s3cret pw\nsecond line\n");
    write_file("secrets/empty.pw", "\n");
    write_file("notpem.txt", "hello\n");
    write_file("users.txt", "# users\n"
                            "alice:$y$j9T$salt$hash:Example.ORG, example.net.\n"
                            "\n"
                            "bob:$6$salt$hash\n");
    return 0;
}

static __attribute__((unused)) int
teardown(void **state)
{
    (void)state;
    return run("rm -rf '%s'", dir) == 0 ? 0 : -1;
}

static __attribute__((unused)) char *
write_cfg(const char *name, const char *yaml)
{
    write_file(name, yaml);
    return xasprintf("%s/%s", dir, name);
}

static __attribute__((unused)) void
print_diags(const struct config_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        print_message("  %s:%d:%d: %s\n", d->v[i].file, d->v[i].line, d->v[i].col, d->v[i].msg);
}

static __attribute__((unused)) struct config *
load_ok(const char *yaml)
{
    struct config_diags d = {0};
    char *path = write_cfg("ok.yaml", yaml);
    struct config *c = config_load(path, &d);
    if (c == NULL) {
        print_diags(&d);
        fail_msg("config did not load");
    }
    assert_int_equal(d.n, 0);
    free(path);
    return c;
}

/* Load yaml and check that exactly the diagnostics want come out, in order,
 * each "LINE:COL: message" in the config file itself. */
static __attribute__((unused)) void
expect_errs(const char *yaml, const char *const *want, size_t n)
{
    struct config_diags d = {0};
    char *path = write_cfg("bad.yaml", yaml);
    assert_null(config_load(path, &d));
    bool ok = d.n == n;
    for (size_t i = 0; i < d.n && ok; i++) {
        char *got = xasprintf("%d:%d: %s", d.v[i].line, d.v[i].col, d.v[i].msg);
        ok = strcmp(got, want[i]) == 0 && strcmp(d.v[i].file, path) == 0;
        free(got);
    }
    if (!ok) {
        print_message("want:\n");
        for (size_t i = 0; i < n; i++)
            print_message("  %s\n", want[i]);
        print_message("got:\n");
        print_diags(&d);
        fail();
    }
    config_diags_fini(&d);
    free(path);
}

static __attribute__((unused)) void
expect_err(const char *yaml, const char *want)
{
    expect_errs(yaml, &want, 1);
}

/* A connector "a" for x.org (lines 1-3), then the test's lines from 4. */
#define CONN_A "connectors:\n  - name: a\n    address_spaces: [x.org]\n"

#endif
