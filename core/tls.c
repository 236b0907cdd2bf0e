#include "core/tls.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "connectors/tlspolicy.h"
#include "connectors/util.h"

_Static_assert(CONNECTOR_TLS1_2 == TLS1_2_VERSION,
               "CONNECTOR_TLS1_2 is OpenSSL's number");
_Static_assert(CONNECTOR_TLS1_3 == TLS1_3_VERSION,
               "CONNECTOR_TLS1_3 is OpenSSL's number");

#define TLS_REASON_MAX 256
#define TLS_SNI_MAX 253
/* Unread ciphertext a conn accepts: the glue drains after every feed, so
 * only a glue bug or a peer flooding during the handshake comes near it. */
#define TLS_IN_MAX (1024u * 1024)

struct tls_server_ctx {
  atomic_int refs;
  SSL_CTX *ssl;
};

struct tls_client_ctx {
  atomic_int refs;
  SSL_CTX *ssl;
  bool verify; /* mode verify: the certificate decides */
};

struct tls_conn {
  SSL *ssl;
  BIO *in;  /* network -> SSL; owned by ssl */
  BIO *out; /* SSL -> network; owned by ssl */
  bool server;
  bool verify;
  bool done;
  bool failed;
  bool cert_failed;
  bool eof;
  char reason[TLS_REASON_MAX];
};

/* ---- errors ------------------------------------------------------------ */

/* The text of the most recent OpenSSL error; the queue is then cleared. */
static const char *ossl_text(char *buf, size_t len) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
  if (r == NULL && e != 0) {
    ERR_error_string_n(e, buf, len);
    r = buf;
  }
  ERR_clear_error();
  return r != NULL ? r : "unknown error";
}

static void ossl_fail(char *err, size_t errlen, const char *what,
                      const char *path) {
  char tmp[128];
  const char *r = ossl_text(tmp, sizeof(tmp));
  if (errlen > 0)
    snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
             r);
}

/* Never prompt on a terminal for a pass phrase: encrypted keys fail. */
static int no_password(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

/* ---- contexts ---------------------------------------------------------- */

/* Settings shared by both sides: protocol floor, no compression, no
 * renegotiation, small idle sessions. */
static int ctx_common(SSL_CTX *ssl, int min_version, char *err, size_t errlen) {
  if (min_version != CONNECTOR_TLS1_2 && min_version != CONNECTOR_TLS1_3) {
    if (errlen > 0)
      snprintf(err, errlen, "unsupported TLS min_version 0x%x",
               (unsigned)min_version);
    return BH_EINVAL;
  }
  if (SSL_CTX_set_min_proto_version(ssl, min_version) != 1) {
    ossl_fail(err, errlen, "TLS min_version", NULL);
    return BH_EINVAL;
  }
  SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(ssl, no_password);
  return 0;
}

static int server_load(SSL_CTX *ssl, const char *cert_path,
                       const char *key_path, char *err, size_t errlen) {
  if (SSL_CTX_use_certificate_chain_file(ssl, cert_path) != 1) {
    ossl_fail(err, errlen, "certificate file", cert_path);
    return BH_EINVAL;
  }
  if (SSL_CTX_use_PrivateKey_file(ssl, key_path, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ssl) != 1) {
    ossl_fail(err, errlen, "key file", key_path);
    return BH_EINVAL;
  }
  return 0;
}

struct tls_server_ctx *tls_server_ctx_new(const char *cert_path,
                                          const char *key_path, int min_version,
                                          char *err, size_t errlen) {
  /* The PEM checks give clear messages for a missing file, a directory
   * or garbage before OpenSSL's loaders see them. */
  if (tlspolicy_check_pem(cert_path, TLSPOLICY_PEM_CERT, err, errlen) != 0 ||
      tlspolicy_check_pem(key_path, TLSPOLICY_PEM_KEY, err, errlen) != 0)
    return NULL;
  ERR_clear_error();
  SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
  if (ssl == NULL) {
    ossl_fail(err, errlen, "TLS server context", NULL);
    return NULL;
  }
  if (ctx_common(ssl, min_version, err, errlen) != 0 ||
      server_load(ssl, cert_path, key_path, err, errlen) != 0)
    goto fail;
  SSL_CTX_set_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
  struct tls_server_ctx *ctx = xcalloc(1, sizeof(*ctx));
  atomic_init(&ctx->refs, 1);
  ctx->ssl = ssl;
  return ctx;
fail:
  SSL_CTX_free(ssl);
  ERR_clear_error();
  return NULL;
}

void tls_server_ctx_ref(struct tls_server_ctx *ctx) {
  atomic_fetch_add(&ctx->refs, 1);
}

void tls_server_ctx_unref(struct tls_server_ctx *ctx) {
  if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
    return;
  SSL_CTX_free(ctx->ssl);
  free(ctx);
}

static int client_trust(SSL_CTX *ssl, const struct connector_tls *t, char *err,
                        size_t errlen) {
  if (t->ca_file == NULL) {
    if (SSL_CTX_set_default_verify_paths(ssl) != 1) {
      ossl_fail(err, errlen, "system trust store", NULL);
      return BH_EIO;
    }
    return 0;
  }
  int rc = tlspolicy_check_pem(t->ca_file, TLSPOLICY_PEM_CA, err, errlen);
  if (rc != 0)
    return rc;
  if (SSL_CTX_load_verify_locations(ssl, t->ca_file, NULL) != 1) {
    ossl_fail(err, errlen, "CA file", t->ca_file);
    return BH_EINVAL;
  }
  return 0;
}

/* One reference name; one trailing dot is dropped, as in SNI. */
static int client_add_name(X509_VERIFY_PARAM *param, const char *name) {
  size_t len = strlen(name);
  if (len > 1 && name[len - 1] == '.')
    len--;
  return X509_VERIFY_PARAM_add1_host(param, name, len) == 1 ? 0 : BH_EINVAL;
}

static int client_names(SSL_CTX *ssl, const struct connector_tls *t,
                        const char *host, char *err, size_t errlen) {
  X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param,
                                  X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                      X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
                                      X509_CHECK_FLAG_SINGLE_LABEL_SUBDOMAINS);
  /* A destination given as an address, with no names (only possible
   * outside mode verify), is checked against the SAN iPAddress entries. */
  if (t->nnames == 0 && host != NULL && !tlspolicy_sni_ok(host) &&
      X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1)
    return 0;
  size_t n;
  const char **names = tlspolicy_names(t, host, &n);
  int rc = n == 0 ? BH_EINVAL : 0;
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = client_add_name(param, names[i]);
  free(names);
  ERR_clear_error();
  if (rc != 0 && errlen > 0)
    snprintf(err, errlen, "no usable TLS name to verify");
  return rc;
}

/*
 * SPEC §4: '*' counts only as the whole leftmost label. OpenSSL's
 * NO_PARTIAL_WILDCARDS covers full reference names, but a ".X" reference
 * (from a names entry "*.X") compares a SAN like "m*.X" as a plain label
 * and accepts it. So a SAN dNSName with any other '*' is treated as absent.
 */
static bool san_pattern_bad(const ASN1_IA5STRING *s) {
  const unsigned char *p = ASN1_STRING_get0_data(s);
  int len = ASN1_STRING_length(s);
  for (int i = 0; i < len; i++)
    if (p[i] == '*' && !(i == 0 && len > 2 && p[1] == '.'))
      return true;
  return false;
}

/* Does a reference name still match once the bad SAN entries are gone?
 * The check runs on a copy of the leaf whose SAN keeps only good entries,
 * so OpenSSL's own matching decides everything else. */
static bool names_match_strict(X509 *leaf, X509_VERIFY_PARAM *param) {
  GENERAL_NAMES *all = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
  GENERAL_NAMES *good = sk_GENERAL_NAME_new_null();
  bool any_bad = good == NULL, match = false; /* out of memory: refuse */
  for (int i = 0; all != NULL && good != NULL && i < sk_GENERAL_NAME_num(all);
       i++) {
    GENERAL_NAME *g = sk_GENERAL_NAME_value(all, i);
    if (g->type == GEN_DNS && san_pattern_bad(g->d.dNSName))
      any_bad = true;
    else
      sk_GENERAL_NAME_push(good, g); /* borrowed from all */
  }
  X509 *copy = any_bad && good != NULL ? X509_dup(leaf) : NULL;
  if (!any_bad || X509_VERIFY_PARAM_get0_host(param, 0) == NULL)
    match = true;
  else if (copy != NULL && X509_add1_ext_i2d(copy, NID_subject_alt_name, good,
                                             0, X509V3_ADD_REPLACE) == 1) {
    unsigned flags = X509_VERIFY_PARAM_get_hostflags(param);
    for (int i = 0; !match && X509_VERIFY_PARAM_get0_host(param, i) != NULL;
         i++)
      match = X509_check_host(copy, X509_VERIFY_PARAM_get0_host(param, i), 0,
                              flags, NULL) == 1;
  }
  X509_free(copy);
  sk_GENERAL_NAME_free(good);
  GENERAL_NAMES_free(all);
  return match;
}

/* After OpenSSL accepted the leaf (chain and name), apply the stricter
 * wildcard rule. Also runs under SSL_VERIFY_NONE, so the recorded result
 * is the same as mode verify would get. */
static int client_verify_cb(int ok, X509_STORE_CTX *store) {
  if (!ok || X509_STORE_CTX_get_error_depth(store) != 0)
    return ok;
  X509 *leaf = X509_STORE_CTX_get_current_cert(store);
  if (leaf == NULL ||
      names_match_strict(leaf, X509_STORE_CTX_get0_param(store)))
    return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
  return 0;
}

struct tls_client_ctx *tls_client_ctx_new(const struct connector_tls *t,
                                          const char *host, char *err,
                                          size_t errlen) {
  if (t->mode == CONNECTOR_TLS_NONE) {
    if (errlen > 0)
      snprintf(err, errlen, "TLS mode none uses no TLS");
    return NULL;
  }
  bool verify = t->mode == CONNECTOR_TLS_VERIFY;
  ERR_clear_error();
  SSL_CTX *ssl = SSL_CTX_new(TLS_client_method());
  if (ssl == NULL) {
    ossl_fail(err, errlen, "TLS client context", NULL);
    return NULL;
  }
  if (ctx_common(ssl, t->min_version, err, errlen) != 0)
    goto fail;
  /* Outside mode verify the trust store only feeds the recorded result. */
  if (client_trust(ssl, t, err, errlen) != 0 && verify)
    goto fail;
  if (client_names(ssl, t, host, err, errlen) != 0)
    goto fail;
  SSL_CTX_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                     client_verify_cb);
  ERR_clear_error();
  if (errlen > 0)
    err[0] = '\0'; /* an unusable trust store outside verify is no error */
  struct tls_client_ctx *ctx = xcalloc(1, sizeof(*ctx));
  atomic_init(&ctx->refs, 1);
  ctx->ssl = ssl;
  ctx->verify = verify;
  return ctx;
fail:
  SSL_CTX_free(ssl);
  ERR_clear_error();
  return NULL;
}

void tls_client_ctx_ref(struct tls_client_ctx *ctx) {
  atomic_fetch_add(&ctx->refs, 1);
}

void tls_client_ctx_unref(struct tls_client_ctx *ctx) {
  if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
    return;
  SSL_CTX_free(ctx->ssl);
  free(ctx);
}

/* ---- sessions ---------------------------------------------------------- */

/* The SSL holds its own reference to the SSL_CTX, so a conn outlives a
 * context that a reload dropped. */
static struct tls_conn *conn_new(SSL_CTX *ctx, bool server) {
  ERR_clear_error();
  SSL *ssl = SSL_new(ctx);
  BIO *in = BIO_new(BIO_s_mem());
  BIO *out = BIO_new(BIO_s_mem());
  if (ssl == NULL || in == NULL || out == NULL) {
    BIO_free(in);
    BIO_free(out);
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
  }
  /* An empty BIO means "wait for more", never end of file. */
  BIO_set_mem_eof_return(in, -1);
  BIO_set_mem_eof_return(out, -1);
  SSL_set_bio(ssl, in, out);
  if (server)
    SSL_set_accept_state(ssl);
  else
    SSL_set_connect_state(ssl);
  struct tls_conn *c = xcalloc(1, sizeof(*c));
  c->ssl = ssl;
  c->in = in;
  c->out = out;
  c->server = server;
  return c;
}

struct tls_conn *tls_conn_new_server(struct tls_server_ctx *ctx) {
  return conn_new(ctx->ssl, true);
}

struct tls_conn *tls_conn_new_client(struct tls_client_ctx *ctx,
                                     const char *sni_host) {
  struct tls_conn *c = conn_new(ctx->ssl, false);
  if (c == NULL)
    return NULL;
  c->verify = ctx->verify;
  if (!tlspolicy_sni_ok(sni_host))
    return c;
  char name[TLS_SNI_MAX + 2];
  size_t len = strlen(sni_host);
  if (sni_host[len - 1] == '.')
    len--;
  if (len > TLS_SNI_MAX)
    return c; /* not a host name: send none rather than fail */
  memcpy(name, sni_host, len);
  name[len] = '\0';
  if (SSL_set_tlsext_host_name(c->ssl, name) != 1) {
    tls_conn_free(c);
    ERR_clear_error();
    return NULL;
  }
  return c;
}

void tls_conn_free(struct tls_conn *c) {
  if (c == NULL)
    return;
  SSL_free(c->ssl);
  free(c);
}

int tls_conn_feed(struct tls_conn *c, const void *data, size_t len) {
  if (len > TLS_IN_MAX || BIO_ctrl_pending(c->in) > TLS_IN_MAX - len)
    return BH_ENOSPC;
  if (len > 0 && BIO_write(c->in, data, (int)len) != (int)len) {
    ERR_clear_error();
    return BH_EIO;
  }
  return 0;
}

/* Record why the session failed, telling a rejected certificate apart. */
static void conn_fail(struct tls_conn *c, int sslerr) {
  char tmp[128];
  long v = SSL_get_verify_result(c->ssl);
  c->failed = true;
  if (!c->server && c->verify && v != X509_V_OK) {
    c->cert_failed = true;
    snprintf(c->reason, sizeof(c->reason), "%s",
             X509_verify_cert_error_string(v));
    ERR_clear_error();
  } else if (sslerr == SSL_ERROR_SSL) {
    snprintf(c->reason, sizeof(c->reason), "%s", ossl_text(tmp, sizeof(tmp)));
  } else if (sslerr == SSL_ERROR_ZERO_RETURN) {
    snprintf(c->reason, sizeof(c->reason), "peer closed the TLS session");
    ERR_clear_error();
  } else {
    snprintf(c->reason, sizeof(c->reason), "TLS error %d", sslerr);
    ERR_clear_error();
  }
}

int tls_conn_handshake(struct tls_conn *c) {
  if (c->failed)
    return BH_EIO;
  if (c->done)
    return 0;
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->done = true;
    return 0;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    return BH_EAGAIN;
  }
  conn_fail(c, e);
  return BH_EIO;
}

int tls_conn_read(struct tls_conn *c, void *buf, size_t len, size_t *n) {
  *n = 0;
  if (c->failed)
    return BH_EIO;
  if (!c->done || len == 0)
    return BH_EINVAL;
  if (c->eof)
    return 0;
  ERR_clear_error();
  size_t got = 0;
  int r = SSL_read_ex(c->ssl, buf, len, &got);
  if (r == 1) {
    *n = got;
    return 0;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    return BH_EAGAIN;
  }
  if (e == SSL_ERROR_ZERO_RETURN) {
    c->eof = true;
    ERR_clear_error();
    return 0;
  }
  conn_fail(c, e);
  return BH_EIO;
}

int tls_conn_write(struct tls_conn *c, const void *buf, size_t len) {
  if (c->failed || !c->done)
    return BH_EINVAL;
  if (len == 0)
    return 0;
  ERR_clear_error();
  size_t written = 0;
  int r = SSL_write_ex(c->ssl, buf, len, &written);
  if (r == 1 && written == len)
    return 0;
  conn_fail(c, SSL_get_error(c->ssl, r));
  return BH_EIO;
}

void tls_conn_shutdown(struct tls_conn *c) {
  if (c->failed || !c->done)
    return;
  ERR_clear_error();
  (void)SSL_shutdown(c->ssl);
  ERR_clear_error();
}

size_t tls_conn_pending_out(struct tls_conn *c, const char **data) {
  char *p = NULL;
  long n = BIO_get_mem_data(c->out, &p);
  *data = p;
  return n > 0 ? (size_t)n : 0;
}

void tls_conn_consume_out(struct tls_conn *c, size_t n) {
  /* Reading a memory BIO only moves its read pointer; the scratch copy
   * is the price of using the public API. */
  char scratch[4096];
  while (n > 0) {
    int k = BIO_read(c->out, scratch,
                     n < sizeof(scratch) ? (int)n : (int)sizeof(scratch));
    if (k <= 0)
      break;
    n -= (size_t)k;
  }
}

bool tls_conn_is_server(const struct tls_conn *c) { return c->server; }

bool tls_conn_done(const struct tls_conn *c) { return c->done && !c->failed; }

const char *tls_conn_version(const struct tls_conn *c) {
  return c->done ? SSL_get_version(c->ssl) : "";
}

const char *tls_conn_cipher(const struct tls_conn *c) {
  const char *name = c->done ? SSL_get_cipher_name(c->ssl) : NULL;
  return name != NULL ? name : "";
}

const char *tls_conn_error(const struct tls_conn *c) { return c->reason; }

bool tls_conn_cert_failed(const struct tls_conn *c) { return c->cert_failed; }

const char *tls_conn_sni(const struct tls_conn *c) {
  if (!c->server)
    return NULL;
  return SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *tls_conn_verify_result(const struct tls_conn *c) {
  if (c->server)
    return "not checked";
  long v = SSL_get_verify_result(c->ssl);
  if (c->cert_failed)
    return X509_verify_cert_error_string(v);
  if (!c->done || SSL_get0_peer_certificate(c->ssl) == NULL)
    return "not checked";
  return v == X509_V_OK ? "ok" : X509_verify_cert_error_string(v);
}
