#include "cli/cmd.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "connectors/config.h"
#include "connectors/connector.h"
#include "connectors/util.h"
#include "storage/queue.h"

struct config *
cmd_load_config(const char *path)
{
    struct config_diags d = {0};
    struct config *c = config_load(path, &d);
    for (size_t i = 0; i < d.n; i++) {
        const struct config_diag *g = &d.v[i];
        if (g->line > 0)
            fprintf(stderr, "%s:%d:%d: %s\n", g->file, g->line, g->col, g->msg);
        else
            fprintf(stderr, "%s: %s\n", g->file, g->msg);
    }
    config_diags_fini(&d);
    return c;
}

void
cmd_queue_cfg(const struct config *c, struct queue_cfg *out)
{
    out->backend =
        c->backend == CONFIG_BACKEND_POSTGRES ? QUEUE_BACKEND_POSTGRES : QUEUE_BACKEND_SQLITE;
    out->path = c->storage_path;
    out->dsn = c->storage_dsn;
    out->node = c->node;
}

void
cmd_queue_exclude(const struct config *c, struct queue *q)
{
    const char **names = xcalloc(c->nconnectors ? c->nconnectors : 1, sizeof *names);
    size_t n = 0;
    for (size_t i = 0; i < c->nconnectors; i++) {
        const struct connector *k = &c->connectors[i];
        bool mine = k->nsource_nodes == 0;
        for (size_t j = 0; j < k->nsource_nodes && !mine; j++)
            mine = strcmp(k->source_nodes[j], c->node) == 0;
        if (!mine)
            names[n++] = k->name;
    }
    queue_set_excluded(q, names, n);
    free(names);
}

int
cmd_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    fputs("bridgehead: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return CMD_EX_USAGE;
}

/* Read exactly n digits. */
static bool
digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool
expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool
parse_offset(const char *p, int *off)
{
    int sign, oh, om;
    if (*p == 'Z' || *p == 'z') {
        *off = 0;
        return p[1] == '\0';
    }
    if (*p != '+' && *p != '-')
        return false;
    sign = *p == '-' ? -1 : 1;
    p++;
    if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || *p != '\0')
        return false;
    if (oh > 23 || om > 59)
        return false;
    *off = sign * (oh * 3600 + om * 60);
    return true;
}

int
cmd_parse_iso8601(const char *s, int64_t *t)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec = 0, off;
    const char *p = s;
    if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
        !digits(&p, 2, &d) || !expect(&p, 'T') || !digits(&p, 2, &h) || !expect(&p, ':') ||
        !digits(&p, 2, &mi))
        return BH_EINVAL;
    if (*p == ':' && (p++, !digits(&p, 2, &sec)))
        return BH_EINVAL;
    if (!parse_offset(p, &off))
        return BH_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59)
        return BH_EINVAL;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return BH_EINVAL;
    *t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    return 0;
}

char *
cmd_format_iso8601(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
    return buf;
}
