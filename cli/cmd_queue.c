/*
 * bridgehead queue: list, show, flush, hold, release, delete and stats
 * (SPEC §6). When a server answers on the control socket the request goes
 * to it (it runs on the server's storage thread); otherwise the command
 * opens the queue itself: read-only for list, show and stats, read-write
 * under the server lock for the others. Both paths print the same text,
 * made by core/control_req.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "connectors/config.h"
#include "connectors/util.h"
#include "core/control.h"
#include "core/control_req.h"
#include "storage/queue.h"
#include "storage/queue_id.h"
#include "storage/queue_lock.h"

#define CALL_TIMEOUT_MS 300000
#define NO_SERVER (-1)

static const char usage[] =
    "usage: bridgehead queue [-c FILE] list [--connector NAME] [--state STATE] [--json]\n"
    "       bridgehead queue [-c FILE] show ID [--json]\n"
    "       bridgehead queue [-c FILE] flush [--connector NAME | ID] [--now]\n"
    "       bridgehead queue [-c FILE] hold ID | release ID | delete ID\n"
    "       bridgehead queue [-c FILE] stats [--json]\n"
    "States: queued, scheduled, deferred, triggered, held, delivering.\n"
    "flush makes waiting mail due now (triggered mail included); --now also sends\n"
    "scheduled mail outside its windows. Options may come before or after the command.\n";

struct opts {
    const char *connector, *state;
    bool json, now;
};

/* Read the options; the operands stay in argv[optind..]. 0, -1 after
 * --help, or 64. */
static int
read_opts(int argc, char **argv, const char **config_path, struct opts *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"connector", required_argument, NULL, 'C'},
        {"state", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"now", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        if (ch == 'c')
            *config_path = optarg;
        else if (ch == 'C')
            o->connector = optarg;
        else if (ch == 's')
            o->state = optarg;
        else if (ch == 'j' || ch == 'n')
            *(ch == 'j' ? &o->json : &o->now) = true;
        else if (ch == 'h') {
            fputs(usage, stdout);
            return -1;
        } else if (ch == ':')
            return cmd_usage_error(usage, "option %s needs an argument", argv[optind - 1]);
        else
            return cmd_usage_error(usage, "unknown option %s", argv[optind - 1]);
    }
    return 0;
}

/* Fill r from the options and the operands (sub-verb, then an ID). */
static int
build_req(int nops, char **ops, const struct opts *o, struct control_req *r)
{
    enum control_verb v;
    char err[160];
    if (nops == 0)
        return cmd_usage_error(usage, "no queue command given");
    if (control_req_verb_parse(ops[0], &v) != 0 || v == CONTROL_RELOAD)
        return cmd_usage_error(usage, "unknown queue command '%s'", ops[0]);
    if (nops > 2)
        return cmd_usage_error(usage, "unexpected argument '%s'", ops[2]);
    control_req_init(r, v);
    r->json = o->json;
    r->now = o->now;
    if (o->connector != NULL && !control_req_name_valid(o->connector))
        return cmd_usage_error(usage, "--connector: '%s' is not a connector name", o->connector);
    if (o->connector != NULL)
        snprintf(r->connector, sizeof r->connector, "%s", o->connector);
    if (o->state != NULL && queue_state_parse(o->state, &r->state) != 0)
        return cmd_usage_error(usage, "--state: '%s' is not a queue state", o->state);
    if (nops == 2 && !queue_id_valid(ops[1]) && v != CONTROL_LIST && v != CONTROL_STATS) {
        fprintf(stderr, "bridgehead: not a queue ID: %s\n", ops[1]);
        return CMD_EX_ERROR;
    }
    if (nops == 2)
        snprintf(r->id, sizeof r->id, "%.*s", QUEUE_ID_LEN, ops[1]);
    if (control_req_check(r, err, sizeof err) != 0)
        return cmd_usage_error(usage, "%s", err);
    return 0;
}

/* Ask the server; NO_SERVER when none answers. */
static int
via_server(const char *sock, const struct control_req *r)
{
    struct util_buf line = {0};
    char msg[512];
    int status = 0;
    control_req_format(r, &line);
    int rc = control_call(sock, line.p, stdout, stderr, &status, CALL_TIMEOUT_MS, msg, sizeof msg);
    util_buf_fini(&line);
    if (rc == BH_ENOENT)
        return NO_SERVER;
    if (rc != 0) {
        fprintf(stderr, "bridgehead: %s\n", msg);
        return CMD_EX_ERROR;
    }
    return status == 0 ? CMD_EX_OK : CMD_EX_ERROR;
}

/* Run r on q (NULL: no queue file yet) and print what it says. */
static int
run_print(struct queue *q, const struct control_req *r)
{
    struct util_buf out = {0}, err = {0};
    int rc = control_req_run(q, r, (int64_t)time(NULL), &out, &err);
    if (out.len > 0)
        fwrite(out.p, 1, out.len, stdout);
    if (err.len > 0)
        fwrite(err.p, 1, err.len, stderr);
    util_buf_fini(&out);
    util_buf_fini(&err);
    return rc == 0 ? CMD_EX_OK : CMD_EX_ERROR;
}

/* postgres (SPEC §8): the database is the cluster's queue; other nodes
 * run beside us, and row locks keep us apart, so no lock file. Changes
 * NOTIFY the nodes. */
static int
direct_pg(const struct config *c, const struct control_req *r)
{
    struct queue *q = NULL;
    struct queue_cfg qc;
    char err[512];
    int rc = CMD_EX_ERROR;
    cmd_queue_cfg(c, &qc);
    if (queue_open_cfg(&qc, control_req_writes(r) ? 0 : QUEUE_READONLY, &q, err, sizeof err) != 0)
        fprintf(stderr, "bridgehead: %s\n", err);
    else
        rc = run_print(q, r);
    queue_close(q);
    return rc;
}

/* No server runs: work on the queue file. Writes take the server lock, so
 * that a server starting meanwhile cannot run beside us. */
static int
direct(const char *db, const char *sock, const struct control_req *r)
{
    struct queue *q = NULL;
    char err[512];
    int lock = -1, rc = CMD_EX_ERROR;
    bool writes = control_req_writes(r);
    if (access(db, F_OK) != 0)
        return run_print(NULL, r); /* no queue yet: as empty */
    if (writes && (lock = queue_lock_acquire(db, err, sizeof err)) < 0) {
        fprintf(stderr, "bridgehead: %s%s%s\n", err,
                lock == BH_EBUSY ? ", and nothing answers on " : "", lock == BH_EBUSY ? sock : "");
        return CMD_EX_ERROR;
    }
    if (queue_open(db, writes ? 0 : QUEUE_READONLY, &q, err, sizeof err) != 0)
        fprintf(stderr, "bridgehead: %s\n", err);
    else
        rc = run_print(q, r);
    queue_close(q);
    queue_lock_release(lock);
    return rc;
}

int
cmd_queue(int argc, char **argv, const char *config_path)
{
    struct opts o = {0};
    struct control_req r;
    int rc = read_opts(argc, argv, &config_path, &o);
    if (rc == 0)
        rc = build_req(argc - optind, argv + optind, &o, &r);
    if (rc != 0)
        return rc < 0 ? CMD_EX_OK : rc;
    struct config *c = cmd_load_config(config_path);
    if (c == NULL)
        return CMD_EX_ERROR;
    char *sock = control_socket_path(c->storage_path);
    rc = via_server(sock, &r);
    if (rc == NO_SERVER && c->backend == CONFIG_BACKEND_POSTGRES)
        rc = direct_pg(c, &r);
    else if (rc == NO_SERVER)
        rc = direct(c->storage_path, sock, &r);
    free(sock);
    config_unref(c);
    return rc;
}
