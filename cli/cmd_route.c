/*
 * bridgehead route: show which connector each recipient would take and why
 * (SPEC §6). Never queries DNS. Exit 0, or 2 when a recipient is unroutable.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "connectors/config.h"
#include "connectors/schedule.h"
#include "connectors/units.h"
#include "connectors/util.h"
#include "routing/router.h"

static const char usage[] =
    "usage: bridgehead route [-c FILE] [--from ADDR] [--size BYTES] [--system]\n"
    "                        [--priority low|normal|high] [--at ISO8601] [--json] RCPT...\n"
    "Show the connector each recipient routes to, and why the others lost.\n"
    "  --from ADDR     envelope sender ('<>' is the null sender); default: skip sender rules\n"
    "  --size BYTES    message size (512, 10KiB, 25MiB); default: skip size limits\n"
    "  --system        the message is one bridgehead makes itself (a DSN)\n"
    "  --priority P    low, normal or high; default normal\n"
    "  --at TIME       2026-11-30T10:00:00Z or with an offset (+01:00); default now\n"
    "  --json          one JSON object per recipient, one per line\n";

struct route_opts {
    const char *config_path;
    const char *from; /* NULL: no sender; "<>" the null sender */
    struct router_query q;
    int64_t at;
    bool json;
};

static void
append_hostport(struct util_buf *b, const char *host, unsigned port)
{
    if (strchr(host, ':'))
        util_buf_printf(b, "[%s]:%u", host, port);
    else
        util_buf_printf(b, "%s:%u", host, port);
}

/* The schedule as {"open":..,"next_open":..} (JSON) or words (text). */
static void
append_schedule(struct util_buf *b, const struct connector *c, const struct route_opts *o)
{
    char when[32];
    uint64_t size = o->q.size == ROUTER_SIZE_UNKNOWN ? SCHEDULE_SIZE_UNKNOWN : o->q.size;
    bool open = schedule_is_open(c->schedule, o->at, size);
    int64_t next = schedule_next_open(c->schedule, o->at, size);
    if (next == SCHEDULE_NEVER)
        strcpy(when, "never");
    else
        cmd_format_iso8601(next, when, sizeof when);
    if (!o->json) {
        util_buf_printf(b, "%s (%s), next open %s", open ? "open" : "closed",
                        schedule_timezone(c->schedule), when);
        return;
    }
    util_buf_printf(b, "{\"open\":%s,\"next_open\":", open ? "true" : "false");
    util_buf_json_str(b, next == SCHEDULE_NEVER ? NULL : when);
    util_buf_puts(b, "}");
}

static void
json_considered(struct util_buf *b, const struct router_result *r)
{
    util_buf_puts(b, "[");
    for (size_t i = 0; i < r->nconsidered; i++) {
        const struct router_considered *k = &r->considered[i];
        util_buf_puts(b, i ? ",{\"connector\":" : "{\"connector\":");
        util_buf_json_str(b, k->connector->name);
        util_buf_puts(b, ",\"address_space\":");
        util_buf_json_str(b, k->space);
        util_buf_puts(b, ",\"reason\":");
        util_buf_json_str(b, router_reason_name(k->reason));
        util_buf_puts(b, "}");
    }
    util_buf_puts(b, "]");
}

static void
json_connector_fields(struct util_buf *b, const struct router_result *r,
                      const struct route_opts *o)
{
    const struct connector *c = r->connector;
    if (c == NULL) {
        util_buf_puts(b, ",\"connector\":null,\"address_space\":null,\"cost\":null,"
                         "\"route\":null,\"bridgeheads\":null,\"tls\":null,\"schedule\":null");
        return;
    }
    util_buf_puts(b, ",\"connector\":");
    util_buf_json_str(b, c->name);
    util_buf_puts(b, ",\"address_space\":");
    util_buf_json_str(b, r->space);
    util_buf_printf(b, ",\"cost\":%u,\"route\":\"%s\",\"bridgeheads\":[", r->cost,
                    connector_route_name(c->route));
    for (size_t i = 0; i < c->nbridgeheads; i++) {
        struct util_buf hp = {0};
        append_hostport(&hp, c->bridgeheads[i].host, c->bridgeheads[i].port);
        if (i)
            util_buf_puts(b, ",");
        util_buf_json_str(b, hp.p);
        util_buf_fini(&hp);
    }
    util_buf_printf(b, "],\"tls\":\"%s\",\"schedule\":", connector_tls_mode_name(c->tls.mode));
    if (c->schedule == NULL)
        util_buf_puts(b, "null");
    else
        append_schedule(b, c, o);
}

static void
print_json(const char *rcpt, const struct router_result *r, const struct route_opts *o)
{
    struct util_buf b = {0};
    util_buf_puts(&b, "{\"recipient\":");
    util_buf_json_str(&b, rcpt);
    util_buf_puts(&b, ",\"domain\":");
    util_buf_json_str(&b, r->domain[0] ? r->domain : NULL);
    util_buf_puts(&b, ",\"sender\":");
    util_buf_json_str(&b, o->from);
    json_connector_fields(&b, r, o);
    util_buf_puts(&b, ",\"considered\":");
    json_considered(&b, r);
    util_buf_puts(&b, ",\"error\":");
    util_buf_json_str(&b, r->status == ROUTER_OK ? NULL : r->error);
    util_buf_puts(&b, "}\n");
    fputs(b.p, stdout);
    util_buf_fini(&b);
}

static void
text_winner(struct util_buf *b, const struct router_result *r, const struct route_opts *o)
{
    const struct connector *c = r->connector;
    util_buf_printf(b, " -> %s (address space %s, cost %u)\n", c->name, r->space, r->cost);
    if (c->route == CONNECTOR_ROUTE_DNS)
        util_buf_printf(b, "  route: dns (MX of %s, port %u)\n", r->domain, c->port);
    else {
        util_buf_printf(b, "  route: smarthost, %s over", connector_balance_name(c->balance));
        for (size_t i = 0; i < c->nbridgeheads; i++) {
            util_buf_puts(b, " ");
            append_hostport(b, c->bridgeheads[i].host, c->bridgeheads[i].port);
        }
        util_buf_puts(b, "\n");
    }
    util_buf_printf(b, "  tls: %s\n  schedule: ", connector_tls_mode_name(c->tls.mode));
    if (c->triggered)
        util_buf_puts(b, "triggered (waits for ETRN, ATRN or queue flush)\n");
    else if (c->schedule == NULL)
        util_buf_puts(b, "always open\n");
    else {
        append_schedule(b, c, o);
        util_buf_puts(b, "\n");
    }
}

static void
print_text(const char *rcpt, const struct router_result *r, const struct route_opts *o)
{
    struct util_buf b = {0};
    util_buf_puts(&b, rcpt);
    if (r->status == ROUTER_OK)
        text_winner(&b, r, o);
    else
        util_buf_printf(&b, " -> unroutable: %s\n", r->error);
    for (size_t i = 0; i < r->nconsidered; i++) {
        const struct router_considered *k = &r->considered[i];
        util_buf_printf(&b, "  considered %s (%s, cost %u): %s\n", k->connector->name, k->space,
                        k->cost, router_reason_name(k->reason));
    }
    fputs(b.p, stdout);
    util_buf_fini(&b);
}

static int
parse_opt(int ch, struct route_opts *o, char **argv)
{
    uint64_t v;
    int p;
    switch (ch) {
    case 'c':
        o->config_path = optarg;
        return 0;
    case 'f':
        o->from = optarg;
        o->q.sender = strcmp(optarg, "<>") == 0 ? "" : optarg;
        return 0;
    case 's':
        if (units_parse_size(optarg, &v) < 0)
            return cmd_usage_error(usage, "--size: '%s' is not a size", optarg);
        o->q.size = v;
        return 0;
    case 'S':
        o->q.system = true;
        return 0;
    case 'p':
        if (connector_priority_parse(optarg, (enum connector_priority *)&p) < 0)
            return cmd_usage_error(usage, "--priority: '%s' is not low, normal or high", optarg);
        o->q.priority = p;
        return 0;
    case 'a':
        if (cmd_parse_iso8601(optarg, &o->at) < 0)
            return cmd_usage_error(usage, "--at: '%s' is not an ISO 8601 time", optarg);
        return 0;
    case 'j':
        o->json = true;
        return 0;
    case ':':
        return cmd_usage_error(usage, "option %s needs an argument", argv[optind - 1]);
    default:
        return cmd_usage_error(usage, "unknown option %s", argv[optind - 1]);
    }
}

static int
parse_args(int argc, char **argv, struct route_opts *o)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"from", required_argument, NULL, 'f'},
        {"size", required_argument, NULL, 's'},   {"system", no_argument, NULL, 'S'},
        {"priority", required_argument, NULL, 'p'}, {"at", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch, rc;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage, stdout);
            return 1;
        }
        if ((rc = parse_opt(ch, o, argv)) != 0)
            return rc;
    }
    if (optind >= argc)
        return cmd_usage_error(usage, "no recipient given");
    return 0;
}

int
cmd_route(int argc, char **argv, const char *config_path)
{
    struct route_opts o = {
        .config_path = config_path,
        .q = {.sender = NULL, .size = ROUTER_SIZE_UNKNOWN, .priority = CONNECTOR_PRIORITY_NORMAL},
        .at = (int64_t)time(NULL),
    };
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? CMD_EX_OK : rc;
    struct config *c = cmd_load_config(o.config_path);
    if (c == NULL)
        return CMD_EX_ERROR;
    struct router *r = router_new(c);
    int status = CMD_EX_OK;
    for (int i = optind; i < argc; i++) {
        struct router_result res;
        if (router_route(r, argv[i], &o.q, &res) != ROUTER_OK)
            status = CMD_EX_UNROUTABLE;
        if (o.json)
            print_json(argv[i], &res, &o);
        else
            print_text(argv[i], &res, &o);
        router_result_fini(&res);
    }
    router_free(r);
    config_unref(c);
    return status;
}
