#include "connectors/tlspolicy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "connectors/util.h"

enum tlspolicy_action
tlspolicy_after_ehlo(enum connector_tls_mode mode, bool offered, bool clear_hold)
{
    if (mode == CONNECTOR_TLS_NONE)
        return TLSPOLICY_CLEAR;
    if (!offered)
        return tlspolicy_on_failure(mode, TLSPOLICY_NOT_OFFERED);
    /* The hold exists only because an opportunistic handshake failed; a
     * connector that requires TLS toward the same host still asks for it. */
    if (mode == CONNECTOR_TLS_OPPORTUNISTIC && clear_hold)
        return TLSPOLICY_CLEAR;
    return TLSPOLICY_STARTTLS;
}

enum tlspolicy_action
tlspolicy_on_failure(enum connector_tls_mode mode, enum tlspolicy_failure f)
{
    switch (mode) {
    case CONNECTOR_TLS_VERIFY:
        return TLSPOLICY_DEFER;
    case CONNECTOR_TLS_REQUIRED:
        return f == TLSPOLICY_CERT ? TLSPOLICY_TLS : TLSPOLICY_DEFER;
    case CONNECTOR_TLS_NONE:
    case CONNECTOR_TLS_OPPORTUNISTIC:
        break;
    }
    switch (f) {
    case TLSPOLICY_HANDSHAKE:
        return TLSPOLICY_RECONNECT_CLEAR;
    case TLSPOLICY_CERT:
        return TLSPOLICY_TLS;
    case TLSPOLICY_NOT_OFFERED:
    case TLSPOLICY_REFUSED:
        break;
    }
    return TLSPOLICY_CLEAR;
}

bool
tlspolicy_marks_down(enum tlspolicy_action a)
{
    return a == TLSPOLICY_DEFER;
}

/* Length of the printable prefix of s: remote text stops at the first
 * control character so that it cannot forge log lines or DSN fields. */
static int
printable_len(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0' && (unsigned char)s[n] >= 0x20 && s[n] != 0x7f && n < 400)
        n++;
    return (int)n;
}

void
tlspolicy_reason(enum tlspolicy_failure f, const char *host, const char *detail, char *buf,
                 size_t len)
{
    if (len == 0)
        return;
    if (host == NULL)
        host = "(unknown)";
    int hl = printable_len(host);
    if (detail == NULL || *detail == '\0')
        detail = "no detail";
    int dl = printable_len(detail);
    switch (f) {
    case TLSPOLICY_NOT_OFFERED:
        snprintf(buf, len, "TLS required but not offered by %.*s", hl, host);
        break;
    case TLSPOLICY_REFUSED:
        snprintf(buf, len, "STARTTLS refused by %.*s: %.*s", hl, host, dl, detail);
        break;
    case TLSPOLICY_HANDSHAKE:
        snprintf(buf, len, "TLS handshake with %.*s failed: %.*s", hl, host, dl, detail);
        break;
    case TLSPOLICY_CERT:
        snprintf(buf, len, "certificate of %.*s not accepted: %.*s", hl, host, dl, detail);
        break;
    default:
        snprintf(buf, len, "TLS failure with %.*s", hl, host);
        break;
    }
}

const char *
tlspolicy_name_ref(const char *name)
{
    if (name[0] == '*' && name[1] == '.' && name[2] != '\0')
        return name + 1;
    return name;
}

const char **
tlspolicy_names(const struct connector_tls *t, const char *host, size_t *n)
{
    *n = 0;
    if (t->nnames == 0) {
        if (host == NULL)
            return NULL;
        const char **v = xmalloc(sizeof(*v));
        v[0] = host;
        *n = 1;
        return v;
    }
    const char **v = xcalloc(t->nnames, sizeof(*v));
    for (size_t i = 0; i < t->nnames; i++)
        v[i] = tlspolicy_name_ref(t->names[i]);
    *n = t->nnames;
    return v;
}

bool
tlspolicy_sni_ok(const char *host)
{
    if (host == NULL || *host == '\0')
        return false;
    if (strchr(host, ':') != NULL || strchr(host, '[') != NULL)
        return false;
    size_t len = strlen(host);
    if (host[len - 1] == '.')
        len--;
    if (len == 0)
        return false;
    /* A top-level label is never all digits, so such a name is an IPv4
     * literal (or a shortened one such as "10.1"). */
    size_t i = len;
    while (i > 0 && host[i - 1] != '.')
        i--;
    for (size_t j = i; j < len; j++)
        if (host[j] < '0' || host[j] > '9')
            return true;
    return false;
}

/* ---- PEM checks -------------------------------------------------------- */

static const char *
pem_kind_name(enum tlspolicy_pem kind)
{
    switch (kind) {
    case TLSPOLICY_PEM_CERT:
        return "certificate file";
    case TLSPOLICY_PEM_KEY:
        return "key file";
    case TLSPOLICY_PEM_CA:
        return "CA file";
    }
    return "file";
}

/* Never prompt on a terminal for a pass phrase: encrypted keys fail. */
static int
pem_no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Read up to cap bytes of fd; a file that grew past cap is refused. */
static int
pem_read_all(int fd, size_t cap, char **data, size_t *len, const char **why)
{
    size_t n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        ssize_t r = read(fd, buf + n, cap + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *why = strerror(errno);
            free(buf);
            return BH_EIO;
        }
        n += (size_t)r;
        if (r == 0 || n > cap)
            break;
    }
    if (n > cap) {
        *why = "file changed while being read";
        free(buf);
        return BH_EIO;
    }
    *data = buf;
    *len = n;
    return 0;
}

/*
 * Read a whole regular file into a fresh buffer. O_NONBLOCK keeps a FIFO
 * from blocking the open; fstat on the open descriptor avoids a race
 * between the check and the read.
 */
static int
pem_slurp(const char *path, char **data, size_t *len, const char **why)
{
    *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        *why = strerror(e);
        return e == ENOENT || e == ENOTDIR ? BH_ENOENT : BH_EIO;
    }
    struct stat st;
    int rc = BH_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        *why = "not a regular file";
    else if ((unsigned long long)st.st_size > TLSPOLICY_PEM_MAX)
        *why = "larger than 16 MiB";
    else
        rc = pem_read_all(fd, (size_t)st.st_size, data, len, why);
    close(fd);
    return rc;
}

/* Certificates (and CRLs, keys) as X509_load_cert_crl_file reads them; the
 * file must hold at least one certificate and no broken PEM block. */
static int
pem_parse_certs(BIO *bio, const char **why)
{
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, pem_no_password, NULL);
    if (infos == NULL) {
        *why = "not a PEM certificate file";
        return BH_EINVAL;
    }
    int ncerts = 0;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++)
        if (sk_X509_INFO_value(infos, i)->x509 != NULL)
            ncerts++;
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (ncerts == 0) {
        *why = "no PEM certificate in it";
        return BH_EINVAL;
    }
    return 0;
}

/* Does the text contain the string needle? (memmem is a GNU extension.) */
static bool
pem_contains(const char *data, size_t len, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= len; i++)
        if (data[i] == needle[0] && memcmp(data + i, needle, nl) == 0)
            return true;
    return false;
}

/* OpenSSL's decoder errors do not tell "no key" from "encrypted key", so
 * the text itself is looked at to give a useful message. */
static int
pem_parse_key(BIO *bio, const char *data, size_t len, const char **why)
{
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, pem_no_password, NULL);
    if (key != NULL) {
        EVP_PKEY_free(key);
        return 0;
    }
    if (pem_contains(data, len, "ENCRYPTED PRIVATE KEY-----") ||
        pem_contains(data, len, "Proc-Type: 4,ENCRYPTED"))
        *why = "encrypted private keys are not supported";
    else if (!pem_contains(data, len, "PRIVATE KEY-----"))
        *why = "no PEM private key in it";
    else
        *why = "not a usable PEM private key";
    return BH_EINVAL;
}

int
tlspolicy_check_pem(const char *path, enum tlspolicy_pem kind, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    const char *why = "";
    int rc = pem_slurp(path, &data, &len, &why);
    if (rc == 0) {
        ERR_clear_error();
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio == NULL) {
            why = "out of memory";
            rc = BH_ENOMEM;
        } else {
            rc = kind == TLSPOLICY_PEM_KEY ? pem_parse_key(bio, data, len, &why)
                                           : pem_parse_certs(bio, &why);
            BIO_free(bio);
        }
        ERR_clear_error();
        /* A key file's bytes are secret: do not leave them in freed memory. */
        OPENSSL_cleanse(data, len);
        free(data);
    }
    if (rc != 0 && errlen > 0)
        snprintf(err, errlen, "%s %s: %s", pem_kind_name(kind), path, why);
    return rc;
}
