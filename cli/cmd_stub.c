/*
 * Subcommands whose server side is not built yet: they say so and exit 1.
 */
#include <stdio.h>

#include "cli/cmd.h"

static int
not_yet(const char *verb)
{
    fprintf(stderr, "bridgehead: '%s' is not available in this build yet\n", verb);
    return CMD_EX_ERROR;
}

int
cmd_serve(int argc, char **argv, const char *config_path)
{
    (void)argc;
    (void)config_path;
    return not_yet(argv[0]);
}

int
cmd_queue(int argc, char **argv, const char *config_path)
{
    (void)argc;
    (void)config_path;
    return not_yet(argv[0]);
}

int
cmd_reload(int argc, char **argv, const char *config_path)
{
    (void)argc;
    (void)config_path;
    return not_yet(argv[0]);
}
