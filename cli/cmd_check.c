/*
 * bridgehead check: validate the config; on success print a summary table of
 * the connectors (name, spaces with costs, route, bridgeheads, balance, TLS
 * mode, schedule) and exit 0, else print every positioned error and exit 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "connectors/config.h"
#include "connectors/schedule.h"
#include "connectors/units.h"
#include "connectors/util.h"

#define NCOLS 7

static const char usage[] = "usage: bridgehead check [-c FILE]\n"
                            "Validate the configuration and print a summary of its connectors.\n";

static const char *const headings[NCOLS] = {
    "CONNECTOR", "ADDRESS SPACES", "ROUTE", "BRIDGEHEADS", "BALANCE", "TLS", "SCHEDULE",
};

/* "host:port", with IPv6 literals in brackets. */
static void
append_hostport(struct util_buf *b, const char *host, unsigned port)
{
    if (strchr(host, ':'))
        util_buf_printf(b, "[%s]:%u", host, port);
    else
        util_buf_printf(b, "%s:%u", host, port);
}

static void
fill_row(const struct connector *c, struct util_buf row[NCOLS])
{
    util_buf_puts(&row[0], c->name);
    for (size_t i = 0; i < c->naspaces; i++)
        util_buf_printf(&row[1], "%s%s(%u)", i ? " " : "", c->aspaces[i].space,
                        c->aspaces[i].cost);
    util_buf_puts(&row[2], connector_route_name(c->route));
    if (c->route == CONNECTOR_ROUTE_DNS)
        util_buf_printf(&row[3], "MX, port %u", c->port);
    for (size_t i = 0; i < c->nbridgeheads; i++) {
        if (i)
            util_buf_puts(&row[3], " ");
        append_hostport(&row[3], c->bridgeheads[i].host, c->bridgeheads[i].port);
        if (c->bridgeheads[i].weight != 1)
            util_buf_printf(&row[3], "*%u", c->bridgeheads[i].weight);
    }
    util_buf_puts(&row[4], c->route == CONNECTOR_ROUTE_DNS ? "-"
                                                           : connector_balance_name(c->balance));
    util_buf_puts(&row[5], connector_tls_mode_name(c->tls.mode));
    if (c->triggered)
        util_buf_puts(&row[6], "triggered");
    else if (c->schedule == NULL)
        util_buf_puts(&row[6], "always");
    else {
        char desc[512];
        schedule_describe(c->schedule, desc, sizeof desc);
        util_buf_puts(&row[6], desc);
    }
}

static void
print_table(struct util_buf (*rows)[NCOLS], size_t nrows)
{
    size_t width[NCOLS];
    for (int k = 0; k < NCOLS; k++) {
        width[k] = strlen(headings[k]);
        for (size_t r = 0; r < nrows; r++)
            if (rows[r][k].len > width[k])
                width[k] = rows[r][k].len;
    }
    for (int k = 0; k < NCOLS; k++)
        printf(k < NCOLS - 1 ? "%-*s  " : "%-*s\n", k < NCOLS - 1 ? (int)width[k] : 0,
               headings[k]);
    for (size_t r = 0; r < nrows; r++)
        for (int k = 0; k < NCOLS; k++)
            printf(k < NCOLS - 1 ? "%-*s  " : "%-*s\n", k < NCOLS - 1 ? (int)width[k] : 0,
                   rows[r][k].p ? rows[r][k].p : "");
}

static void
print_summary(const struct config *c)
{
    char size[32];
    printf("%s: OK: %zu connector%s, %zu listener%s, hostname %s, queue %s, max message %s\n",
           c->path, c->nconnectors, c->nconnectors == 1 ? "" : "s", c->nlistens,
           c->nlistens == 1 ? "" : "s", c->hostname, c->storage_path,
           units_format_size(c->max_message_size, size, sizeof size));
    struct util_buf(*rows)[NCOLS] = xcalloc(c->nconnectors, sizeof *rows);
    for (size_t i = 0; i < c->nconnectors; i++)
        fill_row(&c->connectors[i], rows[i]);
    print_table(rows, c->nconnectors);
    for (size_t i = 0; i < c->nconnectors; i++)
        for (int k = 0; k < NCOLS; k++)
            util_buf_fini(&rows[i][k]);
    free(rows);
}

int
cmd_check(int argc, char **argv, const char *config_path)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        if (ch == 'c')
            config_path = optarg;
        else if (ch == 'h') {
            fputs(usage, stdout);
            return CMD_EX_OK;
        } else if (ch == ':')
            return cmd_usage_error(usage, "option %s needs an argument", argv[optind - 1]);
        else
            return cmd_usage_error(usage, "unknown option %s", argv[optind - 1]);
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    struct config *c = cmd_load_config(config_path);
    if (c == NULL)
        return CMD_EX_ERROR;
    print_summary(c);
    config_unref(c);
    return CMD_EX_OK;
}
