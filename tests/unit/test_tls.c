/*
 * Unit tests for core/tls: in-memory handshakes between a tls_conn server
 * and client, shuttling bytes by hand (no sockets). The certificates are
 * made here with the OpenSSL API (EC P-256, so it is fast) and written to a
 * temp dir: a CA, a second CA, leaves with SAN dNSName entries, an expired
 * leaf, a self-signed one, one with CN only, one with SAN "m*.example.com".
 * A few peers are raw OpenSSL sessions, to cap a side at TLS 1.2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "connectors/util.h"
#include "core/tls.h"

/* ---- certificates ------------------------------------------------------ */

#define DAY (24L * 3600)

struct fx {
    char dir[64];
    char ca[128], ca2[128], key[128];
    char leaf[128];       /* SAN mx.example.com, mail.example.com; CN leaf.invalid */
    char apex[128];       /* SAN example.com */
    char deep[128];       /* SAN a.b.example.com */
    char expired[128];    /* SAN mx.example.com, expired yesterday */
    char selfsigned[128]; /* SAN mx.example.com, its own issuer */
    char cnonly[128];     /* CN mx.example.com, no SAN */
    char partial[128];    /* SAN m*.example.com */
    char ipcert[128];     /* SAN IP 192.0.2.1 */
};

struct spec {
    const char *cn, *san;
    EVP_PKEY *key;
    X509 *issuer;
    EVP_PKEY *issuer_key;
    long from, to; /* seconds from now */
    bool ca;
};

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ex);
    assert_int_equal(X509_add_ext(x, ex, -1), 1);
    X509_EXTENSION_free(ex);
}

static X509 *
make_cert(const struct spec *s)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), s->from);
    X509_gmtime_adj(X509_getm_notAfter(x), s->to);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)s->cn, -1, -1, 0);
    X509 *issuer = s->issuer ? s->issuer : x;
    X509_set_issuer_name(x, X509_get_subject_name(issuer));
    X509_set_pubkey(x, s->key);
    if (s->ca) {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    if (s->san != NULL)
        add_ext(x, issuer, NID_subject_alt_name, s->san);
    assert_true(X509_sign(x, s->issuer_key ? s->issuer_key : s->key, EVP_sha256()) > 0);
    return x;
}

static void
write_cert(char *path, const char *dir, const char *name, X509 *x)
{
    snprintf(path, 128, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void
make_leaf(char *path, struct fx *f, const char *name, const struct spec *s)
{
    X509 *x = make_cert(s);
    write_cert(path, f->dir, name, x);
    X509_free(x);
}

static void
make_leaves(struct fx *f, EVP_PKEY *key, X509 *ca, EVP_PKEY *cakey)
{
    struct spec s = {
        "leaf.invalid", "DNS:mx.example.com,DNS:mail.example.com", key, ca, cakey, -DAY, DAY,
        false};
    make_leaf(f->leaf, f, "leaf.pem", &s);
    s.san = "DNS:example.com";
    make_leaf(f->apex, f, "apex.pem", &s);
    s.san = "DNS:a.b.example.com";
    make_leaf(f->deep, f, "deep.pem", &s);
    s.san = "DNS:m*.example.com";
    make_leaf(f->partial, f, "partial.pem", &s);
    s.san = "IP:192.0.2.1";
    make_leaf(f->ipcert, f, "ip.pem", &s);
    s.san = NULL;
    s.cn = "mx.example.com";
    make_leaf(f->cnonly, f, "cnonly.pem", &s);
    s.cn = "leaf.invalid";
    s.san = "DNS:mx.example.com";
    s.from = -10 * DAY;
    s.to = -DAY;
    make_leaf(f->expired, f, "expired.pem", &s);
    struct spec self = {"mx.example.com", "DNS:mx.example.com", key, NULL, NULL, -DAY, DAY, false};
    make_leaf(f->selfsigned, f, "self.pem", &self);
}

static int
setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/bh_tls_XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    EVP_PKEY *cakey = EVP_EC_gen("P-256"), *ca2key = EVP_EC_gen("P-256");
    EVP_PKEY *key = EVP_EC_gen("P-256");
    struct spec cas = {"Test CA", NULL, cakey, NULL, NULL, -DAY, 30 * DAY, true};
    X509 *ca = make_cert(&cas);
    write_cert(f->ca, f->dir, "ca.pem", ca);
    cas.key = ca2key;
    cas.cn = "Other CA";
    X509 *ca2 = make_cert(&cas);
    write_cert(f->ca2, f->dir, "ca2.pem", ca2);
    make_leaves(f, key, ca, cakey);
    snprintf(f->key, sizeof(f->key), "%s/key.pem", f->dir);
    FILE *fp = fopen(f->key, "w");
    PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(key);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(ca2key);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    const char *files[] = {f->ca,      f->ca2,        f->key,    f->leaf,    f->apex,  f->deep,
                           f->expired, f->selfsigned, f->cnonly, f->partial, f->ipcert};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- endpoints: a tls_conn, or a raw OpenSSL session ------------------- */

struct ep {
    struct tls_conn *c;
    SSL_CTX *rawctx;
    SSL *raw;
    BIO *rin, *rout;
    int rc; /* last handshake result: 0, BH_EAGAIN or BH_EIO */
};

static size_t
ep_pending(struct ep *e, const char **d)
{
    if (e->c != NULL)
        return tls_conn_pending_out(e->c, d);
    char *p;
    long n = BIO_get_mem_data(e->rout, &p);
    *d = p;
    return (size_t)n;
}

static void
ep_consume(struct ep *e, size_t n)
{
    if (e->c != NULL) {
        tls_conn_consume_out(e->c, n);
        return;
    }
    char *tmp = xmalloc(n);
    assert_int_equal(BIO_read(e->rout, tmp, (int)n), (int)n);
    free(tmp);
}

static void
ep_feed(struct ep *e, const char *d, size_t n)
{
    if (e->c != NULL)
        assert_int_equal(tls_conn_feed(e->c, d, n), 0);
    else
        assert_int_equal(BIO_write(e->rin, d, (int)n), (int)n);
}

/* Move every pending byte from one side to the other, in two pieces so
 * that partial consumption is exercised as well. */
static void
ep_move(struct ep *from, struct ep *to)
{
    const char *d;
    size_t n;
    while ((n = ep_pending(from, &d)) > 0) {
        size_t half = n > 1 ? n / 2 : n;
        ep_feed(to, d, half);
        ep_consume(from, half);
    }
}

static int
ep_step(struct ep *e)
{
    if (e->c != NULL)
        return tls_conn_handshake(e->c);
    int r = SSL_do_handshake(e->raw);
    if (r == 1)
        return 0;
    int err = SSL_get_error(e->raw, r);
    ERR_clear_error();
    return err == SSL_ERROR_WANT_READ ? BH_EAGAIN : BH_EIO;
}

static void
handshake(struct ep *cli, struct ep *srv)
{
    cli->rc = srv->rc = BH_EAGAIN;
    for (int i = 0; i < 20 && (cli->rc == BH_EAGAIN || srv->rc == BH_EAGAIN); i++) {
        cli->rc = ep_step(cli);
        ep_move(cli, srv);
        srv->rc = ep_step(srv);
        ep_move(srv, cli);
    }
}

/* A raw OpenSSL peer whose protocol range the test chooses. */
static void
ep_raw(struct ep *e, const struct fx *f, bool server, int max_version)
{
    e->rawctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    SSL_CTX_set_max_proto_version(e->rawctx, max_version);
    if (server) {
        assert_int_equal(SSL_CTX_use_certificate_file(e->rawctx, f->leaf, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(e->rawctx, f->key, SSL_FILETYPE_PEM), 1);
    }
    e->raw = SSL_new(e->rawctx);
    e->rin = BIO_new(BIO_s_mem());
    e->rout = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(e->rin, -1);
    SSL_set_bio(e->raw, e->rin, e->rout);
    if (server)
        SSL_set_accept_state(e->raw);
    else
        SSL_set_connect_state(e->raw);
}

static void
ep_free(struct ep *e)
{
    tls_conn_free(e->c);
    SSL_free(e->raw);
    SSL_CTX_free(e->rawctx);
}

/* A server endpoint from a certificate file; the context reference is
 * dropped at once, since the session keeps what it needs. */
static void
ep_server(struct ep *e, const struct fx *f, const char *cert, int min_version)
{
    char err[256] = "";
    struct tls_server_ctx *ctx = tls_server_ctx_new(cert, f->key, min_version, err, sizeof(err));
    if (ctx == NULL)
        fail_msg("server ctx: %s", err);
    e->c = tls_conn_new_server(ctx);
    assert_non_null(e->c);
    tls_server_ctx_unref(ctx);
}

static void
ep_client(struct ep *e, const struct connector_tls *t, const char *host)
{
    char err[256] = "";
    struct tls_client_ctx *ctx = tls_client_ctx_new(t, host, err, sizeof(err));
    if (ctx == NULL)
        fail_msg("client ctx: %s", err);
    e->c = tls_conn_new_client(ctx, host);
    assert_non_null(e->c);
    tls_client_ctx_unref(ctx);
}

/* One whole exchange: client with policy t toward host, server with cert. */
static void
run(struct ep *cli, struct ep *srv, const struct fx *f, const struct connector_tls *t,
    const char *host, const char *cert)
{
    memset(cli, 0, sizeof(*cli));
    memset(srv, 0, sizeof(*srv));
    ep_server(srv, f, cert, CONNECTOR_TLS1_2);
    ep_client(cli, t, host);
    handshake(cli, srv);
}

static struct connector_tls
policy(enum connector_tls_mode mode, const char *ca, char **names, size_t nnames)
{
    struct connector_tls t = {mode, (char *)ca, names, nnames, CONNECTOR_TLS1_2};
    return t;
}

/* Expect success, or a client failure whose reason contains want. */
static void
expect_verify(const struct fx *f, const struct connector_tls *t, const char *host, const char *cert,
              const char *want)
{
    struct ep cli, srv;
    run(&cli, &srv, f, t, host, cert);
    if (want == NULL) {
        assert_int_equal(cli.rc, 0);
        assert_int_equal(srv.rc, 0);
        assert_string_equal(tls_conn_verify_result(cli.c), "ok");
    } else {
        assert_int_equal(cli.rc, BH_EIO);
        assert_true(tls_conn_cert_failed(cli.c));
        assert_false(tls_conn_done(cli.c));
        if (strstr(tls_conn_error(cli.c), want) == NULL)
            fail_msg("reason \"%s\" lacks \"%s\"", tls_conn_error(cli.c), want);
        assert_string_equal(tls_conn_verify_result(cli.c), tls_conn_error(cli.c));
        assert_int_equal(srv.rc, BH_EIO); /* the client's alert reached it */
        assert_false(tls_conn_cert_failed(srv.c));
    }
    ep_free(&cli);
    ep_free(&srv);
}

/* ---- handshakes -------------------------------------------------------- */

static void
test_handshake_tls13(void **state)
{
    struct fx *f = *state;
    struct connector_tls t = policy(CONNECTOR_TLS_OPPORTUNISTIC, f->ca, NULL, 0);
    struct ep cli, srv;
    run(&cli, &srv, f, &t, "mx.example.com", f->leaf);
    assert_int_equal(cli.rc, 0);
    assert_int_equal(srv.rc, 0);
    assert_true(tls_conn_done(cli.c) && tls_conn_done(srv.c));
    assert_false(tls_conn_is_server(cli.c));
    assert_true(tls_conn_is_server(srv.c));
    assert_string_equal(tls_conn_version(cli.c), "TLSv1.3");
    assert_string_equal(tls_conn_version(srv.c), "TLSv1.3");
    assert_true(strncmp(tls_conn_cipher(cli.c), "TLS_", 4) == 0);
    assert_string_equal(tls_conn_cipher(cli.c), tls_conn_cipher(srv.c));
    assert_string_equal(tls_conn_error(cli.c), "");
    /* Not enforced in opportunistic mode, but recorded. */
    assert_string_equal(tls_conn_verify_result(cli.c), "ok");
    assert_string_equal(tls_conn_verify_result(srv.c), "not checked");
    assert_string_equal(tls_conn_sni(srv.c), "mx.example.com");
    assert_null(tls_conn_sni(cli.c));
    assert_int_equal(tls_conn_handshake(cli.c), 0); /* done stays done */
    ep_free(&cli);
    ep_free(&srv);
}

static void
test_before_handshake(void **state)
{
    struct fx *f = *state;
    struct connector_tls t = policy(CONNECTOR_TLS_REQUIRED, f->ca, NULL, 0);
    struct ep cli = {0};
    ep_client(&cli, &t, "mx.example.com");
    char buf[16];
    size_t n = 99;
    assert_string_equal(tls_conn_version(cli.c), "");
    assert_string_equal(tls_conn_cipher(cli.c), "");
    assert_string_equal(tls_conn_verify_result(cli.c), "not checked");
    assert_int_equal(tls_conn_read(cli.c, buf, sizeof(buf), &n), BH_EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(tls_conn_write(cli.c, "x", 1), BH_EINVAL);
    const char *d;
    assert_int_equal(tls_conn_pending_out(cli.c, &d), 0);
    assert_int_equal(tls_conn_handshake(cli.c), BH_EAGAIN);
    assert_true(tls_conn_pending_out(cli.c, &d) > 0); /* the ClientHello */
    tls_conn_shutdown(cli.c);                         /* ignored before the handshake */
    ep_free(&cli);
}

static void
test_min12_allows_tls12(void **state)
{
    struct fx *f = *state;
    struct connector_tls t = policy(CONNECTOR_TLS_REQUIRED, f->ca, NULL, 0);
    struct ep cli = {0}, srv = {0};
    ep_raw(&srv, f, true, TLS1_2_VERSION);
    ep_client(&cli, &t, "mx.example.com");
    handshake(&cli, &srv);
    assert_int_equal(cli.rc, 0);
    assert_int_equal(srv.rc, 0);
    assert_string_equal(tls_conn_version(cli.c), "TLSv1.2");
    ep_free(&cli);
    ep_free(&srv);

    /* And the other way round: a TLS 1.2 client to a min 1.2 server. */
    memset(&cli, 0, sizeof(cli));
    memset(&srv, 0, sizeof(srv));
    ep_raw(&cli, f, false, TLS1_2_VERSION);
    ep_server(&srv, f, f->leaf, CONNECTOR_TLS1_2);
    handshake(&cli, &srv);
    assert_int_equal(srv.rc, 0);
    assert_string_equal(tls_conn_version(srv.c), "TLSv1.2");
    ep_free(&cli);
    ep_free(&srv);
}

static void
test_client_min13_vs_server12(void **state)
{
    struct fx *f = *state;
    struct connector_tls t = policy(CONNECTOR_TLS_OPPORTUNISTIC, f->ca, NULL, 0);
    t.min_version = CONNECTOR_TLS1_3;
    struct ep cli = {0}, srv = {0};
    ep_raw(&srv, f, true, TLS1_2_VERSION);
    ep_client(&cli, &t, "mx.example.com");
    handshake(&cli, &srv);
    assert_int_equal(cli.rc, BH_EIO);
    assert_false(tls_conn_cert_failed(cli.c));
    assert_true(strlen(tls_conn_error(cli.c)) > 0);
    print_message("client min 1.3 vs server 1.2: %s\n", tls_conn_error(cli.c));
    /* A failed conn stays failed. */
    assert_int_equal(tls_conn_handshake(cli.c), BH_EIO);
    assert_int_equal(tls_conn_write(cli.c, "x", 1), BH_EINVAL);
    ep_free(&cli);
    ep_free(&srv);
}

static void
test_server_min13_vs_client12(void **state)
{
    struct fx *f = *state;
    struct ep cli = {0}, srv = {0};
    ep_raw(&cli, f, false, TLS1_2_VERSION);
    ep_server(&srv, f, f->leaf, CONNECTOR_TLS1_3);
    handshake(&cli, &srv);
    assert_int_equal(srv.rc, BH_EIO);
    assert_int_equal(cli.rc, BH_EIO);
    assert_string_equal(tls_conn_error(srv.c), "unsupported protocol");
    ep_free(&cli);
    ep_free(&srv);
}

/* ---- certificate checks ------------------------------------------------ */

static void
test_verify_ok(void **state)
{
    struct fx *f = *state;
    struct connector_tls t = policy(CONNECTOR_TLS_VERIFY, f->ca, NULL, 0);
    expect_verify(f, &t, "mx.example.com", f->leaf, NULL);
    expect_verify(f, &t, "MAIL.example.com.", f->leaf, NULL); /* case, root dot */
    char *names[] = {"other.example.net", "mail.example.com"};
    t = policy(CONNECTOR_TLS_VERIFY, f->ca, names, 2);
    expect_verify(f, &t, "10.1.1.5", f->leaf, NULL); /* names, not the host */
}

static void
test_verify_failures(void **state)
{
    struct fx *f = *state;
    struct connector_tls t = policy(CONNECTOR_TLS_VERIFY, f->ca, NULL, 0);
    expect_verify(f, &t, "other.example.com", f->leaf, "hostname mismatch");
    expect_verify(f, &t, "leaf.invalid", f->leaf, "hostname mismatch"); /* CN ignored */
    expect_verify(f, &t, "mx.example.com", f->cnonly, "hostname mismatch");
    expect_verify(f, &t, "mx.example.com", f->expired, "certificate has expired");
    expect_verify(f, &t, "mx.example.com", f->selfsigned, "self-signed certificate");
    expect_verify(f, &t, "mx.example.com", f->partial, "hostname mismatch");
    t = policy(CONNECTOR_TLS_VERIFY, f->ca2, NULL, 0);
    expect_verify(f, &t, "mx.example.com", f->leaf, "unable to get local issuer certificate");
}

static void
test_verify_wildcard_names(void **state)
{
    struct fx *f = *state;
    char *names[] = {"*.example.com"};
    struct connector_tls t = policy(CONNECTOR_TLS_VERIFY, f->ca, names, 1);
    expect_verify(f, &t, "relay.example.org", f->leaf, NULL); /* mx.example.com */
    expect_verify(f, &t, "relay.example.org", f->apex, "hostname mismatch");
    expect_verify(f, &t, "relay.example.org", f->deep, "hostname mismatch");
    expect_verify(f, &t, "relay.example.org", f->partial, "hostname mismatch");
    char *exact[] = {"mx.example.com"};
    t = policy(CONNECTOR_TLS_VERIFY, f->ca, exact, 1);
    expect_verify(f, &t, "relay.example.org", f->partial, "hostname mismatch");

    /* Outside verify the same rule gives the recorded result. */
    t = policy(CONNECTOR_TLS_OPPORTUNISTIC, f->ca, names, 1);
    struct ep cli, srv;
    run(&cli, &srv, f, &t, "relay.example.org", f->partial);
    assert_int_equal(cli.rc, 0);
    assert_string_equal(tls_conn_verify_result(cli.c), "hostname mismatch");
    ep_free(&cli);
    ep_free(&srv);
}

/* Outside mode verify a bad certificate passes, and the result is kept. */
static void
test_unchecked_modes_record(void **state)
{
    struct fx *f = *state;
    static const struct {
        enum connector_tls_mode mode;
        size_t cert; /* offset of the path in struct fx */
        const char *host, *want;
    } cases[] = {
        {CONNECTOR_TLS_OPPORTUNISTIC, offsetof(struct fx, selfsigned), "mx.example.com",
         "self-signed certificate"},
        {CONNECTOR_TLS_REQUIRED, offsetof(struct fx, selfsigned), "mx.example.com",
         "self-signed certificate"},
        {CONNECTOR_TLS_REQUIRED, offsetof(struct fx, expired), "mx.example.com",
         "certificate has expired"},
        {CONNECTOR_TLS_REQUIRED, offsetof(struct fx, leaf), "other.example.com",
         "hostname mismatch"},
        {CONNECTOR_TLS_REQUIRED, offsetof(struct fx, ipcert), "192.0.2.1", "ok"},
        {CONNECTOR_TLS_REQUIRED, offsetof(struct fx, ipcert), "192.0.2.2", "IP address mismatch"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *cert = (const char *)f + cases[i].cert;
        struct connector_tls t = policy(cases[i].mode, f->ca, NULL, 0);
        struct ep cli, srv;
        run(&cli, &srv, f, &t, cases[i].host, cert);
        assert_int_equal(cli.rc, 0);
        assert_int_equal(srv.rc, 0);
        assert_false(tls_conn_cert_failed(cli.c));
        assert_string_equal(tls_conn_verify_result(cli.c), cases[i].want);
        ep_free(&cli);
        ep_free(&srv);
    }
}

/* ---- SNI --------------------------------------------------------------- */

static void
test_sni(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *host, *want;
    } cases[] = {
        {"mx.example.com", "mx.example.com"},
        {"mx.example.com.", "mx.example.com"},
        {"192.0.2.1", NULL},
        {"2001:db8::1", NULL},
        {NULL, NULL},
    };
    char *names[] = {"mx.example.com"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct connector_tls t = policy(CONNECTOR_TLS_REQUIRED, f->ca, names, 1);
        struct ep cli, srv;
        run(&cli, &srv, f, &t, cases[i].host, f->leaf);
        assert_int_equal(cli.rc, 0);
        assert_int_equal(srv.rc, 0);
        if (cases[i].want == NULL)
            assert_null(tls_conn_sni(srv.c));
        else
            assert_string_equal(tls_conn_sni(srv.c), cases[i].want);
        ep_free(&cli);
        ep_free(&srv);
    }
}

/* ---- data -------------------------------------------------------------- */

/* Read exactly len plaintext bytes on to, moving bytes as needed. */
static void
recv_all(struct ep *from, struct ep *to, char *buf, size_t len)
{
    size_t got = 0;
    for (int i = 0; got < len && i < 1000; i++) {
        ep_move(from, to);
        size_t n = 0;
        int rc = tls_conn_read(to->c, buf + got, len - got, &n);
        if (rc == BH_EAGAIN)
            continue;
        assert_int_equal(rc, 0);
        assert_true(n > 0);
        got += n;
    }
    assert_int_equal(got, len);
}

static void
test_round_trip(void **state)
{
    struct fx *f = *state;
    struct connector_tls t = policy(CONNECTOR_TLS_VERIFY, f->ca, NULL, 0);
    struct ep cli, srv;
    run(&cli, &srv, f, &t, "mx.example.com", f->leaf);
    assert_int_equal(cli.rc, 0);
    char buf[64];
    size_t n;
    assert_int_equal(tls_conn_read(srv.c, buf, sizeof(buf), &n), BH_EAGAIN);
    assert_int_equal(tls_conn_write(cli.c, "EHLO client.example\r\n", 21), 0);
    assert_int_equal(tls_conn_write(cli.c, "", 0), 0);
    recv_all(&cli, &srv, buf, 21);
    assert_memory_equal(buf, "EHLO client.example\r\n", 21);
    assert_int_equal(tls_conn_write(srv.c, "250 ok\r\n", 8), 0);
    recv_all(&srv, &cli, buf, 8);
    assert_memory_equal(buf, "250 ok\r\n", 8);
    assert_int_equal(tls_conn_read(cli.c, buf, 0, &n), BH_EINVAL);

    /* A large body crosses many records and both buffers grow. */
    size_t big = 300000;
    char *body = xmalloc(big), *copy = xmalloc(big);
    for (size_t i = 0; i < big; i++)
        body[i] = (char)('a' + i % 26);
    assert_int_equal(tls_conn_write(cli.c, body, big), 0);
    recv_all(&cli, &srv, copy, big);
    assert_memory_equal(body, copy, big);
    free(body);
    free(copy);

    /* close_notify reads as end of file, and stays so. */
    tls_conn_shutdown(srv.c);
    ep_move(&srv, &cli);
    n = 7;
    assert_int_equal(tls_conn_read(cli.c, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tls_conn_read(cli.c, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 0);
    ep_free(&cli);
    ep_free(&srv);
}

/* Hostile bytes: a handshake that is not TLS, then garbage after one. */
static void
test_garbage(void **state)
{
    struct fx *f = *state;
    struct ep srv = {0};
    ep_server(&srv, f, f->leaf, CONNECTOR_TLS1_2);
    static const char junk[] = "EHLO evil\r\n\x16\x03\x01\xff\xff";
    assert_int_equal(tls_conn_feed(srv.c, junk, sizeof(junk) - 1), 0);
    assert_int_equal(tls_conn_handshake(srv.c), BH_EIO);
    assert_true(strlen(tls_conn_error(srv.c)) > 0);
    assert_int_equal(tls_conn_handshake(srv.c), BH_EIO);
    ep_free(&srv);

    /* Fed but never driven: the unread ciphertext is capped at 1 MiB. */
    memset(&srv, 0, sizeof(srv));
    ep_server(&srv, f, f->leaf, CONNECTOR_TLS1_2);
    char *chunk = xcalloc(1, 65536);
    for (int i = 0; i < 16; i++)
        assert_int_equal(tls_conn_feed(srv.c, chunk, 65536), 0);
    assert_int_equal(tls_conn_feed(srv.c, chunk, 1), BH_ENOSPC);
    free(chunk);
    ep_free(&srv);

    struct connector_tls t = policy(CONNECTOR_TLS_OPPORTUNISTIC, f->ca, NULL, 0);
    struct ep cli;
    run(&cli, &srv, f, &t, "mx.example.com", f->leaf);
    assert_int_equal(srv.rc, 0);
    /* A record header announcing application data of a bad length. */
    static const char rec[] = "\x17\x03\x03\x00\x05hello";
    assert_int_equal(tls_conn_feed(srv.c, rec, sizeof(rec) - 1), 0);
    char buf[32];
    size_t n;
    assert_int_equal(tls_conn_read(srv.c, buf, sizeof(buf), &n), BH_EIO);
    assert_true(strlen(tls_conn_error(srv.c)) > 0);
    assert_int_equal(tls_conn_read(srv.c, buf, sizeof(buf), &n), BH_EIO);
    ep_free(&cli);
    ep_free(&srv);
}

/* ---- contexts ---------------------------------------------------------- */

static void
expect_server_ctx_fails(const char *cert, const char *key, int min, const char *want)
{
    char err[512] = "";
    struct tls_server_ctx *ctx = tls_server_ctx_new(cert, key, min, err, sizeof(err));
    assert_null(ctx);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void
test_server_ctx_errors(void **state)
{
    struct fx *f = *state;
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.pem", f->dir);
    expect_server_ctx_fails(missing, f->key, CONNECTOR_TLS1_2, "No such file");
    expect_server_ctx_fails(f->dir, f->key, CONNECTOR_TLS1_2, "not a regular file");
    expect_server_ctx_fails(f->leaf, f->leaf, CONNECTOR_TLS1_2, "no PEM private key");
    expect_server_ctx_fails(f->key, f->key, CONNECTOR_TLS1_2, "no PEM certificate");
    expect_server_ctx_fails(f->leaf, f->key, 0x0301, "min_version");
    /* The CA's certificate does not go with the leaf's key. */
    expect_server_ctx_fails(f->ca, f->key, CONNECTOR_TLS1_2, "key");
    tls_server_ctx_unref(NULL);
}

static void
test_client_ctx(void **state)
{
    struct fx *f = *state;
    char err[512] = "";
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.pem", f->dir);
    struct connector_tls t = policy(CONNECTOR_TLS_NONE, NULL, NULL, 0);
    assert_null(tls_client_ctx_new(&t, "h", err, sizeof(err)));
    t = policy(CONNECTOR_TLS_VERIFY, missing, NULL, 0);
    assert_null(tls_client_ctx_new(&t, "h", err, sizeof(err)));
    assert_non_null(strstr(err, "CA file"));
    t = policy(CONNECTOR_TLS_VERIFY, f->ca, NULL, 0);
    assert_null(tls_client_ctx_new(&t, NULL, err, sizeof(err))); /* no name at all */
    t.min_version = 0;
    assert_null(tls_client_ctx_new(&t, "h", err, sizeof(err)));
    /* Outside verify an unusable CA file only costs the recorded result. */
    t = policy(CONNECTOR_TLS_OPPORTUNISTIC, missing, NULL, 0);
    struct tls_client_ctx *ctx = tls_client_ctx_new(&t, "h", err, sizeof(err));
    assert_non_null(ctx);
    tls_client_ctx_unref(ctx);
    /* The system store. */
    t = policy(CONNECTOR_TLS_VERIFY, NULL, NULL, 0);
    ctx = tls_client_ctx_new(&t, "mx.example.com", err, sizeof(err));
    assert_non_null(ctx);
    tls_client_ctx_ref(ctx);
    tls_client_ctx_unref(ctx);
    tls_client_ctx_unref(ctx);
    tls_client_ctx_unref(NULL);
}

/* A reload drops the old context while a session is still running. */
static void
test_ctx_outlived_by_session(void **state)
{
    struct fx *f = *state;
    char err[256];
    struct tls_server_ctx *ctx =
        tls_server_ctx_new(f->leaf, f->key, CONNECTOR_TLS1_2, err, sizeof(err));
    assert_non_null(ctx);
    tls_server_ctx_ref(ctx); /* a listener's reference */
    struct ep srv = {0}, cli = {0};
    srv.c = tls_conn_new_server(ctx);
    tls_server_ctx_unref(ctx);
    tls_server_ctx_unref(ctx); /* gone */
    struct connector_tls t = policy(CONNECTOR_TLS_VERIFY, f->ca, NULL, 0);
    ep_client(&cli, &t, "mx.example.com");
    handshake(&cli, &srv);
    assert_int_equal(cli.rc, 0);
    assert_int_equal(srv.rc, 0);
    ep_free(&cli);
    ep_free(&srv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_tls13),
        cmocka_unit_test(test_before_handshake),
        cmocka_unit_test(test_min12_allows_tls12),
        cmocka_unit_test(test_client_min13_vs_server12),
        cmocka_unit_test(test_server_min13_vs_client12),
        cmocka_unit_test(test_verify_ok),
        cmocka_unit_test(test_verify_failures),
        cmocka_unit_test(test_verify_wildcard_names),
        cmocka_unit_test(test_unchecked_modes_record),
        cmocka_unit_test(test_sni),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_server_ctx_errors),
        cmocka_unit_test(test_client_ctx),
        cmocka_unit_test(test_ctx_outlived_by_session),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
