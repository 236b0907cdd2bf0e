/*
 * cmd: the subcommands of the bridgehead command line and the helpers they
 * share (loading the config and printing its diagnostics, usage errors,
 * ISO 8601 times). Only cli/ parses flags. Each cmd_<verb>() takes the
 * arguments after the verb plus the global -c value, and returns the exit
 * status (SPEC §6): 0, 1, 2 (route: unroutable), 64 (usage), 69 (no server).
 * Main thread only.
 */
#ifndef BH_CLI_CMD_H
#define BH_CLI_CMD_H

#include <stdint.h>
#include <stdio.h>

#define CMD_EX_OK 0
#define CMD_EX_ERROR 1
#define CMD_EX_UNROUTABLE 2
#define CMD_EX_USAGE 64
#define CMD_EX_UNAVAILABLE 69

struct config;
struct queue;
struct queue_cfg;

/* argv[0] is the verb; options may come before or after operands. */
int cmd_check(int argc, char **argv, const char *config_path);
int cmd_route(int argc, char **argv, const char *config_path);
int cmd_serve(int argc, char **argv, const char *config_path);
int cmd_queue(int argc, char **argv, const char *config_path);
int cmd_reload(int argc, char **argv, const char *config_path);

/* Load the config and print every diagnostic to stderr; NULL on failure. */
struct config *cmd_load_config(const char *path);

/* Print "bridgehead: MSG" and the verb's usage to stderr; return 64. */
int cmd_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Where c's queue is (SPEC §8): backend, path, dsn and node, borrowed
 * from c. */
void cmd_queue_cfg(const struct config *c, struct queue_cfg *out);

/* Tell q which connectors this node may not deliver for (source_nodes). */
void cmd_queue_exclude(const struct config *c, struct queue *q);

/* Parse "2026-11-30T10:00:00Z" or with an offset "+01:00"/"-05:00" (seconds
 * optional, fractions not allowed). 0 or BH_EINVAL. */
int cmd_parse_iso8601(const char *s, int64_t *t);
/* Format t as "2026-11-30T10:00:00Z" into buf (at least 21 bytes). */
char *cmd_format_iso8601(int64_t t, char *buf, size_t len);

#endif
