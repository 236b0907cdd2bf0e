/* Unit tests for connectors/tlspolicy: the outbound TLS decisions, the
 * reference names, SNI, and the PEM checks on files made in a temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "connectors/tlspolicy.h"
#include "connectors/util.h"

/* ---- decisions --------------------------------------------------------- */

struct ehlo_case {
    enum connector_tls_mode mode;
    bool offered, hold;
    enum tlspolicy_action want;
};

static void
test_after_ehlo_table(void **state)
{
    (void)state;
    static const struct ehlo_case cases[] = {
        {CONNECTOR_TLS_NONE, true, false, TLSPOLICY_CLEAR},
        {CONNECTOR_TLS_NONE, false, false, TLSPOLICY_CLEAR},
        {CONNECTOR_TLS_OPPORTUNISTIC, true, false, TLSPOLICY_STARTTLS},
        {CONNECTOR_TLS_OPPORTUNISTIC, false, false, TLSPOLICY_CLEAR},
        {CONNECTOR_TLS_OPPORTUNISTIC, true, true, TLSPOLICY_CLEAR},
        {CONNECTOR_TLS_REQUIRED, true, false, TLSPOLICY_STARTTLS},
        {CONNECTOR_TLS_REQUIRED, true, true, TLSPOLICY_STARTTLS},
        {CONNECTOR_TLS_REQUIRED, false, false, TLSPOLICY_DEFER},
        {CONNECTOR_TLS_VERIFY, true, true, TLSPOLICY_STARTTLS},
        {CONNECTOR_TLS_VERIFY, false, false, TLSPOLICY_DEFER},
        {CONNECTOR_TLS_VERIFY, false, true, TLSPOLICY_DEFER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(tlspolicy_after_ehlo(cases[i].mode, cases[i].offered, cases[i].hold),
                         cases[i].want);
}

static void
test_on_failure_table(void **state)
{
    (void)state;
    static const enum tlspolicy_action want[4][4] = {
        /* NOT_OFFERED, REFUSED, HANDSHAKE, CERT */
        [CONNECTOR_TLS_NONE] = {TLSPOLICY_CLEAR, TLSPOLICY_CLEAR, TLSPOLICY_RECONNECT_CLEAR,
                                TLSPOLICY_TLS},
        [CONNECTOR_TLS_OPPORTUNISTIC] = {TLSPOLICY_CLEAR, TLSPOLICY_CLEAR,
                                         TLSPOLICY_RECONNECT_CLEAR, TLSPOLICY_TLS},
        [CONNECTOR_TLS_REQUIRED] = {TLSPOLICY_DEFER, TLSPOLICY_DEFER, TLSPOLICY_DEFER,
                                    TLSPOLICY_TLS},
        [CONNECTOR_TLS_VERIFY] = {TLSPOLICY_DEFER, TLSPOLICY_DEFER, TLSPOLICY_DEFER,
                                  TLSPOLICY_DEFER},
    };
    for (int m = 0; m < 4; m++)
        for (int f = 0; f < 4; f++)
            assert_int_equal(
                tlspolicy_on_failure((enum connector_tls_mode)m, (enum tlspolicy_failure)f),
                want[m][f]);
}

static void
test_marks_down(void **state)
{
    (void)state;
    assert_true(tlspolicy_marks_down(TLSPOLICY_DEFER));
    assert_false(tlspolicy_marks_down(TLSPOLICY_RECONNECT_CLEAR));
    assert_false(tlspolicy_marks_down(TLSPOLICY_CLEAR));
    assert_false(tlspolicy_marks_down(TLSPOLICY_STARTTLS));
    assert_false(tlspolicy_marks_down(TLSPOLICY_TLS));
    /* Opportunistic failures never mark the destination down. */
    for (int f = 0; f < 4; f++)
        assert_false(tlspolicy_marks_down(
            tlspolicy_on_failure(CONNECTOR_TLS_OPPORTUNISTIC, (enum tlspolicy_failure)f)));
    assert_int_equal(TLSPOLICY_CLEAR_HOLD_SECONDS, 3600);
}

static void
test_reason(void **state)
{
    (void)state;
    char buf[200];
    tlspolicy_reason(TLSPOLICY_NOT_OFFERED, "mx.contoso.com", NULL, buf, sizeof(buf));
    assert_string_equal(buf, "TLS required but not offered by mx.contoso.com");
    tlspolicy_reason(TLSPOLICY_REFUSED, "h", "454 4.7.0 not now\r\nX-Evil: 1", buf, sizeof(buf));
    assert_string_equal(buf, "STARTTLS refused by h: 454 4.7.0 not now");
    tlspolicy_reason(TLSPOLICY_HANDSHAKE, "h", "", buf, sizeof(buf));
    assert_string_equal(buf, "TLS handshake with h failed: no detail");
    tlspolicy_reason(TLSPOLICY_CERT, "h", "hostname mismatch", buf, sizeof(buf));
    assert_string_equal(buf, "certificate of h not accepted: hostname mismatch");
    tlspolicy_reason(TLSPOLICY_CERT, NULL, "x", buf, 10);
    assert_int_equal(strlen(buf), 9);
    tlspolicy_reason(TLSPOLICY_CERT, "h", "x", buf, 0); /* must not write */
}

/* ---- names and SNI ----------------------------------------------------- */

static void
test_names(void **state)
{
    (void)state;
    char *names[] = {"mx.contoso.com", "*.contoso.com", "*", "*."};
    struct connector_tls t = {.mode = CONNECTOR_TLS_VERIFY, .names = names, .nnames = 4};
    size_t n;
    const char **v = tlspolicy_names(&t, "ignored.example", &n);
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "mx.contoso.com");
    assert_string_equal(v[1], ".contoso.com");
    assert_string_equal(v[2], "*");  /* not "*.X": left alone */
    assert_string_equal(v[3], "*."); /* no X: left alone */
    free(v);

    struct connector_tls none = {.mode = CONNECTOR_TLS_VERIFY};
    v = tlspolicy_names(&none, "relay2.contoso.com", &n);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "relay2.contoso.com");
    free(v);
    v = tlspolicy_names(&none, NULL, &n);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_string_equal(tlspolicy_name_ref("*.x.org"), ".x.org");
}

static void
test_sni(void **state)
{
    (void)state;
    assert_true(tlspolicy_sni_ok("mx.example.com"));
    assert_true(tlspolicy_sni_ok("mx.example.com."));
    assert_true(tlspolicy_sni_ok("localhost"));
    assert_true(tlspolicy_sni_ok("1.2.3.4a"));
    assert_true(tlspolicy_sni_ok("123.example"));
    assert_false(tlspolicy_sni_ok(NULL));
    assert_false(tlspolicy_sni_ok(""));
    assert_false(tlspolicy_sni_ok("."));
    assert_false(tlspolicy_sni_ok("10.1.1.5"));
    assert_false(tlspolicy_sni_ok("10.1.1.5."));
    assert_false(tlspolicy_sni_ok("10.1"));
    assert_false(tlspolicy_sni_ok("2001:db8::1"));
    assert_false(tlspolicy_sni_ok("::ffff:10.0.0.1"));
    assert_false(tlspolicy_sni_ok("[2001:db8::1]"));
    assert_false(tlspolicy_sni_ok("fe80::1%eth0"));
}

/* ---- PEM checks -------------------------------------------------------- */

struct pemdir {
    char dir[64];
    char cert[128], key[128], ca[128], garbage[128], empty[128], enckey[128], fifo[128];
};

static void
write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A self-signed EC certificate; the files hold the cert, the key, a bundle
 * of two certs and an encrypted key. */
static void
make_pem_files(struct pemdir *d)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);

    FILE *f = fopen(d->cert, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(d->ca, "w");
    PEM_write_X509(f, x);
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(d->key, "w");
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    f = fopen(d->enckey, "w");
    PEM_write_PrivateKey(f, key, EVP_aes_128_cbc(), (unsigned char *)"secret", 6, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

static int
setup_pem(void **state)
{
    struct pemdir *d = xcalloc(1, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/bh_tlspolicy_XXXXXX");
    if (mkdtemp(d->dir) == NULL)
        return -1;
    snprintf(d->cert, sizeof(d->cert), "%s/cert.pem", d->dir);
    snprintf(d->key, sizeof(d->key), "%s/key.pem", d->dir);
    snprintf(d->ca, sizeof(d->ca), "%s/ca.pem", d->dir);
    snprintf(d->garbage, sizeof(d->garbage), "%s/garbage.pem", d->dir);
    snprintf(d->empty, sizeof(d->empty), "%s/empty.pem", d->dir);
    snprintf(d->enckey, sizeof(d->enckey), "%s/enc.key", d->dir);
    snprintf(d->fifo, sizeof(d->fifo), "%s/fifo", d->dir);
    make_pem_files(d);
    static const char junk[] = "-----BEGIN CERTIFICATE-----\n@@not base64@@\n"
                               "-----END CERTIFICATE-----\n\x01\x02\xff";
    write_file(d->garbage, junk, sizeof(junk) - 1);
    write_file(d->empty, "", 0);
    if (mkfifo(d->fifo, 0600) != 0)
        return -1;
    *state = d;
    return 0;
}

static int
teardown_pem(void **state)
{
    struct pemdir *d = *state;
    const char *files[] = {d->cert, d->key, d->ca, d->garbage, d->empty, d->enckey, d->fifo};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(d->dir);
    free(d);
    return 0;
}

static void
test_pem_good(void **state)
{
    struct pemdir *d = *state;
    char err[256] = "";
    assert_int_equal(tlspolicy_check_pem(d->cert, TLSPOLICY_PEM_CERT, err, sizeof(err)), 0);
    assert_int_equal(tlspolicy_check_pem(d->key, TLSPOLICY_PEM_KEY, err, sizeof(err)), 0);
    assert_int_equal(tlspolicy_check_pem(d->ca, TLSPOLICY_PEM_CA, err, sizeof(err)), 0);
    assert_int_equal(tlspolicy_check_pem(d->cert, TLSPOLICY_PEM_CA, err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

static void
expect_pem(const char *path, enum tlspolicy_pem kind, int rc, const char *needle)
{
    char err[512] = "";
    assert_int_equal(tlspolicy_check_pem(path, kind, err, sizeof(err)), rc);
    if (strstr(err, needle) == NULL || strstr(err, path) == NULL)
        fail_msg("error \"%s\" lacks \"%s\" or the path", err, needle);
}

static void
test_pem_bad(void **state)
{
    struct pemdir *d = *state;
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.pem", d->dir);
    expect_pem(d->garbage, TLSPOLICY_PEM_CERT, BH_EINVAL, "certificate file");
    expect_pem(d->garbage, TLSPOLICY_PEM_CA, BH_EINVAL, "CA file");
    expect_pem(d->garbage, TLSPOLICY_PEM_KEY, BH_EINVAL, "key file");
    expect_pem(d->empty, TLSPOLICY_PEM_CERT, BH_EINVAL, "no PEM certificate");
    expect_pem(d->empty, TLSPOLICY_PEM_KEY, BH_EINVAL, "no PEM private key");
    expect_pem(d->dir, TLSPOLICY_PEM_CERT, BH_EIO, "not a regular file");
    expect_pem(d->dir, TLSPOLICY_PEM_KEY, BH_EIO, "not a regular file");
    expect_pem(d->fifo, TLSPOLICY_PEM_CA, BH_EIO, "not a regular file");
    expect_pem(missing, TLSPOLICY_PEM_CERT, BH_ENOENT, "No such file");
    /* The wrong kind of PEM. */
    expect_pem(d->key, TLSPOLICY_PEM_CERT, BH_EINVAL, "no PEM certificate");
    expect_pem(d->cert, TLSPOLICY_PEM_KEY, BH_EINVAL, "no PEM private key");
    expect_pem(d->enckey, TLSPOLICY_PEM_KEY, BH_EINVAL, "encrypted");
    char badkey[160];
    snprintf(badkey, sizeof(badkey), "%s/bad.key", d->dir);
    static const char bad[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    write_file(badkey, bad, sizeof(bad) - 1);
    expect_pem(badkey, TLSPOLICY_PEM_KEY, BH_EINVAL, "not a usable PEM private key");
    unlink(badkey);
    /* A small buffer is still terminated; no buffer is fine. */
    char small[8];
    assert_int_equal(tlspolicy_check_pem(missing, TLSPOLICY_PEM_CA, small, sizeof(small)),
                     BH_ENOENT);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(tlspolicy_check_pem(missing, TLSPOLICY_PEM_CA, NULL, 0), BH_ENOENT);
}

static void
test_pem_unreadable(void **state)
{
    struct pemdir *d = *state;
    if (geteuid() == 0)
        skip(); /* root reads anything */
    chmod(d->cert, 0);
    expect_pem(d->cert, TLSPOLICY_PEM_CERT, BH_EIO, "Permission denied");
    chmod(d->cert, 0600);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_after_ehlo_table),
        cmocka_unit_test(test_on_failure_table),
        cmocka_unit_test(test_marks_down),
        cmocka_unit_test(test_reason),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_sni),
        cmocka_unit_test(test_pem_good),
        cmocka_unit_test(test_pem_bad),
        cmocka_unit_test(test_pem_unreadable),
    };
    return cmocka_run_group_tests(tests, setup_pem, teardown_pem);
}
