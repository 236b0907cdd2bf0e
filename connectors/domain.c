#include "connectors/domain.h"

#include <string.h>

#include "connectors/util.h"

static int
is_ldh(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Check one label [s, s+n) of a lowercased name. */
static int
label_ok(const char *s, size_t n)
{
    if (n == 0 || n > DOMAIN_LABEL_MAX)
        return 0;
    if (s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_ldh((unsigned char)s[i]))
            return 0;
    return 1;
}

/* All labels numeric: a dotted IPv4 address or a numeric TLD, neither of
 * which is a host name we route on. */
static int
last_label_numeric(const char *d, size_t len)
{
    size_t i = len;
    while (i > 0 && d[i - 1] != '.')
        i--;
    for (size_t j = i; j < len; j++)
        if (d[j] < '0' || d[j] > '9')
            return 0;
    return 1;
}

int
domain_normalise(const char *in, size_t len, char *out)
{
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > DOMAIN_MAX)
        return BH_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
    }
    out[len] = '\0';
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && out[i] != '.')
            continue;
        if (!label_ok(out + start, i - start))
            return BH_EINVAL;
        start = i + 1;
    }
    if (last_label_numeric(out, len))
        return BH_EINVAL;
    return 0;
}

int
domain_space_normalise(const char *in, char *out, const char **why)
{
    size_t len = strlen(in);
    *why = NULL;
    if (strcmp(in, "*") == 0) {
        memcpy(out, "*", 2);
        return 0;
    }
    if (len >= 2 && in[0] == '*' && in[1] == '.') {
        if (domain_normalise(in + 2, len - 2, out + 2) < 0) {
            *why = "the part after \"*.\" is not a valid domain";
            return BH_EINVAL;
        }
        out[0] = '*';
        out[1] = '.';
        return 0;
    }
    if (memchr(in, '*', len) != NULL) {
        *why = "a wildcard is allowed only as \"*\" or a leading \"*.\"";
        return BH_EINVAL;
    }
    if (domain_normalise(in, len, out) < 0) {
        *why = len == 0 ? "empty address space" : "not a valid domain (LDH labels, no IP address)";
        return BH_EINVAL;
    }
    return 0;
}

unsigned
domain_labels(const char *d)
{
    if (*d == '\0')
        return 0;
    unsigned n = 1;
    for (; *d; d++)
        if (*d == '.')
            n++;
    return n;
}
