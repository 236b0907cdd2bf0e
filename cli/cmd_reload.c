/*
 * bridgehead reload: ask the running server to reload its config (SPEC §6,
 * §9). The config is validated here first: a bad one is reported with its
 * positions and nothing is sent. Otherwise the server is asked through its
 * control socket and its own result decides the exit status: 0 when it
 * swapped configs, 1 with its positioned errors when it kept the old one,
 * 69 when no server runs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cmd.h"
#include "connectors/config.h"
#include "connectors/util.h"
#include "core/control.h"

#define RELOAD_TIMEOUT_MS 120000

static const char usage[] = "usage: bridgehead reload [-c FILE]\n"
                            "Ask the running server to reload its config (checked here first).\n";

static int
parse_args(int argc, char **argv, const char **config_path)
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
        if (ch == 'c') {
            *config_path = optarg;
        } else if (ch == 'h') {
            fputs(usage, stdout);
            return -1;
        } else if (ch == ':') {
            return cmd_usage_error(usage, "option %s needs an argument", argv[optind - 1]);
        } else {
            return cmd_usage_error(usage, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    return 0;
}

int
cmd_reload(int argc, char **argv, const char *config_path)
{
    int rc = parse_args(argc, argv, &config_path);
    if (rc != 0)
        return rc < 0 ? CMD_EX_OK : rc;
    struct config *c = cmd_load_config(config_path);
    if (c == NULL)
        return CMD_EX_ERROR;
    char *sock = control_socket_path(c->storage_path);
    config_unref(c);
    char msg[512];
    int status = 0;
    rc =
        control_call(sock, "reload\n", stdout, stderr, &status, RELOAD_TIMEOUT_MS, msg, sizeof msg);
    if (rc == BH_ENOENT) {
        fprintf(stderr, "bridgehead: no server runs for %s (nothing answers on %s)\n", config_path,
                sock);
        rc = CMD_EX_UNAVAILABLE;
    } else if (rc != 0) {
        fprintf(stderr, "bridgehead: %s\n", msg);
        rc = CMD_EX_ERROR;
    } else if (status != 0) {
        fprintf(stderr, "bridgehead: the server did not apply the config; the old one stays "
                        "in force\n");
        rc = CMD_EX_ERROR;
    } else {
        printf("reloaded\n");
        rc = CMD_EX_OK;
    }
    free(sock);
    return rc;
}
