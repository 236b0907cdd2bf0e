/*
 * Subcommands whose server side is not built yet: they say so and exit 1.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"

static int
not_yet(int argc, char **argv)
{
    const char *verb = argv[0];
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: bridgehead %s [-c FILE] ... (not available in this build yet)\n", verb);
        return CMD_EX_OK;
    }
    fprintf(stderr, "bridgehead: '%s' is not available in this build yet\n", verb);
    return CMD_EX_ERROR;
}

int
cmd_queue(int argc, char **argv, const char *config_path)
{
    (void)config_path;
    return not_yet(argc, argv);
}

int
cmd_reload(int argc, char **argv, const char *config_path)
{
    (void)config_path;
    return not_yet(argc, argv);
}
