/*
 * bridgehead: the command line. main() finds the verb (global -c FILE may
 * come before it), then hands the rest to cmd_<verb>().
 */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"

static const char usage[] =
    "usage: bridgehead [-c FILE] COMMAND [ARGS]\n"
    "commands:\n"
    "  serve   [-c FILE] [--log-format kv|json]   run the relay in the foreground\n"
    "  check   [-c FILE]                          validate the config, print a summary\n"
    "  route   [-c FILE] [--from ADDR] [--size BYTES] [--system]\n"
    "          [--priority low|normal|high] [--at ISO8601] [--json] RCPT...\n"
    "  queue   [-c FILE] list|show|flush|hold|release|delete|stats ...\n"
    "  reload  [-c FILE]                          ask the running server to reload\n"
    "  version                                    print the version\n"
    "Run 'bridgehead COMMAND --help' for a command's options.\n";

struct verb {
    const char *name;
    int (*run)(int argc, char **argv, const char *config_path);
};

static const struct verb verbs[] = {
    {"serve", cmd_serve}, {"check", cmd_check},   {"route", cmd_route},
    {"queue", cmd_queue}, {"reload", cmd_reload},
};

int
main(int argc, char **argv)
{
    const char *config_path = "bridgehead.yaml";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return CMD_EX_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("bridgehead %s\n", BH_VERSION);
            return CMD_EX_OK;
        }
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                return cmd_usage_error(usage, "option %s needs a FILE", argv[i]);
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else {
            return cmd_usage_error(usage, "unknown option %s", argv[i]);
        }
    }
    if (i >= argc)
        return cmd_usage_error(usage, "no command given");
    if (strcmp(argv[i], "version") == 0) {
        if (argc - i > 1 && strcmp(argv[i + 1], "--help") != 0)
            return cmd_usage_error(usage, "version takes no arguments");
        printf("bridgehead %s\n", BH_VERSION);
        return CMD_EX_OK;
    }
    if (strcmp(argv[i], "help") == 0) {
        fputs(usage, stdout);
        return CMD_EX_OK;
    }
    for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++)
        if (strcmp(argv[i], verbs[v].name) == 0)
            return verbs[v].run(argc - i, argv + i, config_path);
    return cmd_usage_error(usage, "unknown command '%s'", argv[i]);
}
