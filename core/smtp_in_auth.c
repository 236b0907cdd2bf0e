/* AUTH PLAIN and LOGIN exchanges for the smtp_in machine. The decoded
 * credentials are hostile bytes: no NUL in either, no control octets in the
 * user name (it ends up in logs), and the password is wiped when done. */
#include "core/smtp_in_auth.h"

#include <stdlib.h>
#include <string.h>

enum { A_IDLE = 0, A_PLAIN, A_LOGIN_USER, A_LOGIN_PASS };

static const char R_PLAIN[] = "334 ";
static const char R_USER[] = "334 VXNlcm5hbWU6"; /* "Username:" */
static const char R_PASS[] = "334 UGFzc3dvcmQ6"; /* "Password:" */
static const char E_MECH[] = "504 5.5.4 Unrecognized authentication mechanism";
static const char E_SYNTAX[] = "501 5.5.4 Syntax: AUTH mechanism [initial-response]";
static const char E_BASE64[] = "501 5.5.2 Cannot decode the response";
static const char E_CREDS[] = "501 5.5.2 Malformed credentials";
static const char E_CANCEL[] = "501 5.7.0 Authentication cancelled";
static const char E_MEMORY[] = "454 4.7.0 Temporary authentication failure";

static int
b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict base64 (length a multiple of 4, '=' only as padding) into a fresh
 * NUL-terminated buffer; *len gets the decoded length. NULL on bad input or
 * no memory (*nomem tells which). "=" alone is the empty response. */
static char *
b64_decode(const char *s, size_t *len, bool *nomem)
{
    size_t n = strlen(s), o = 0;
    *nomem = false;
    if (strcmp(s, "=") == 0)
        n = 0;
    if (n % 4 != 0)
        return NULL;
    char *out = malloc(n / 4 * 3 + 1);
    if (out == NULL) {
        *nomem = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i += 4) {
        /* '=' only pads the last group: "xx==" or "xxx=". */
        int v[4], pad = 0;
        if (i + 4 == n && s[i + 3] == '=')
            pad = s[i + 2] == '=' ? 2 : 1;
        for (int k = 0; k < 4; k++) {
            v[k] = k >= 4 - pad ? 0 : b64_value((unsigned char)s[i + k]);
            if (v[k] < 0) {
                free(out);
                return NULL;
            }
        }
        unsigned long w = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
                          ((unsigned long)v[2] << 6) | (unsigned long)v[3];
        out[o++] = (char)(w >> 16);
        if (pad < 2)
            out[o++] = (char)(w >> 8 & 0xff);
        if (pad < 1)
            out[o++] = (char)(w & 0xff);
    }
    out[o] = '\0';
    *len = o;
    return out;
}

static void
wipe_free(char *p)
{
    if (p == NULL)
        return;
    for (volatile char *v = p; *v != '\0'; v++)
        *v = '\0';
    free(p);
}

void
smtp_in_auth_clear(struct smtp_in_auth *a)
{
    wipe_free(a->user);
    wipe_free(a->pass);
    a->user = a->pass = NULL;
    a->state = A_IDLE;
}

bool
smtp_in_auth_active(const struct smtp_in_auth *a)
{
    return a->state != A_IDLE;
}

static bool
user_ok(const char *u, size_t n)
{
    if (n == 0 || strlen(u) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f)
            return false;
    return true;
}

static char *
copy(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Ends the exchange with an error reply. */
static enum smtp_in_auth_res
fail(struct smtp_in_auth *a, const char *why, const char **reply)
{
    smtp_in_auth_clear(a);
    *reply = why;
    return SMTP_IN_AUTH_ERROR;
}

/* authzid NUL authcid NUL passwd; authzid empty or the same as authcid. */
static enum smtp_in_auth_res
plain(struct smtp_in_auth *a, const char *resp, const char **reply)
{
    size_t n = 0;
    bool nomem;
    char *d = b64_decode(resp, &n, &nomem);
    if (d == NULL)
        return fail(a, nomem ? E_MEMORY : E_BASE64, reply);
    const char *z = d, *u = memchr(d, '\0', n);
    const char *p = u ? memchr(u + 1, '\0', n - (size_t)(u + 1 - d)) : NULL;
    enum smtp_in_auth_res r = SMTP_IN_AUTH_READY;
    if (p == NULL || !user_ok(u + 1, (size_t)(p - u - 1)) ||
        strlen(p + 1) != n - (size_t)(p + 1 - d) || (*z != '\0' && strcmp(z, u + 1) != 0)) {
        r = fail(a, E_CREDS, reply);
    } else {
        a->user = copy(u + 1, strlen(u + 1));
        a->pass = copy(p + 1, strlen(p + 1));
        if (a->user == NULL || a->pass == NULL)
            r = fail(a, E_MEMORY, reply);
    }
    memset(d, 0, n);
    free(d);
    a->state = A_IDLE;
    return r;
}

/* One LOGIN response: the user name, then the password. */
static enum smtp_in_auth_res
login(struct smtp_in_auth *a, const char *resp, const char **reply)
{
    size_t n = 0;
    bool nomem;
    char *d = b64_decode(resp, &n, &nomem);
    if (d == NULL)
        return fail(a, nomem ? E_MEMORY : E_BASE64, reply);
    if (a->state == A_LOGIN_USER) {
        if (!user_ok(d, n)) {
            free(d);
            return fail(a, E_CREDS, reply);
        }
        a->user = d;
        a->state = A_LOGIN_PASS;
        *reply = R_PASS;
        return SMTP_IN_AUTH_CONTINUE;
    }
    if (strlen(d) != n) {
        memset(d, 0, n);
        free(d);
        return fail(a, E_CREDS, reply);
    }
    a->pass = d;
    a->state = A_IDLE;
    return SMTP_IN_AUTH_READY;
}

enum smtp_in_auth_res
smtp_in_auth_line(struct smtp_in_auth *a, const char *line, const char **reply)
{
    if (strcmp(line, "*") == 0) {
        smtp_in_auth_clear(a);
        *reply = E_CANCEL;
        return SMTP_IN_AUTH_CANCEL;
    }
    if (a->state == A_PLAIN)
        return plain(a, line, reply);
    return login(a, line, reply);
}

static bool
word_is(const char *s, size_t n, const char *w)
{
    if (strlen(w) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 'a' + 'A') : s[i];
        if (c != w[i])
            return false;
    }
    return true;
}

enum smtp_in_auth_res
smtp_in_auth_start(struct smtp_in_auth *a, const char *arg, const char **reply)
{
    smtp_in_auth_clear(a);
    const char *sp = strchr(arg, ' ');
    size_t n = sp ? (size_t)(sp - arg) : strlen(arg);
    const char *ir = sp ? sp + 1 : NULL;
    if (n == 0 || (ir != NULL && (*ir == '\0' || strchr(ir, ' ') != NULL))) {
        *reply = E_SYNTAX;
        return SMTP_IN_AUTH_ERROR;
    }
    if (word_is(arg, n, "PLAIN")) {
        a->state = A_PLAIN;
        if (ir == NULL) {
            *reply = R_PLAIN;
            return SMTP_IN_AUTH_CONTINUE;
        }
    } else if (word_is(arg, n, "LOGIN")) {
        a->state = A_LOGIN_USER;
        if (ir == NULL) {
            *reply = R_USER;
            return SMTP_IN_AUTH_CONTINUE;
        }
    } else {
        *reply = E_MECH;
        return SMTP_IN_AUTH_ERROR;
    }
    return smtp_in_auth_line(a, ir, reply);
}
