/*
 * bridgehead serve: run the relay in the foreground. SIGTERM/SIGINT stop it
 * gracefully (exit 0), SIGHUP reloads the config.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "cli/cmd.h"
#include "connectors/config.h"
#include "connectors/util.h"
#include "core/control.h"
#include "core/dns.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/qwake.h"
#include "core/sched.h"
#include "core/server.h"
#include "core/store.h"
#include "storage/queue.h"
#include "storage/queue_lock.h"
#include "storage/queue_spool.h"

#define FD_RESERVE 64
#define SHUTDOWN_GRACE_MS 10000

static const char usage[] =
    "usage: bridgehead serve [-c FILE] [--log-format kv|json]\n"
    "Run the relay in the foreground. SIGTERM/SIGINT: stop gracefully; SIGHUP: reload.\n";

struct serve {
    uv_loop_t loop;
    const char *config_path;
    struct log *log;
    struct server *server;
    struct store *store;
    struct store *reader; /* bodies for delivery, on a read-only handle */
    struct dns *dns;
    struct metrics *metrics;
    struct sched *sched;
    struct control *control; /* the control socket (SPEC §6) */
    struct qwake *qwake;     /* other nodes' new work (SPEC §8) */
    unsigned stopping_parts; /* server and scheduler still stopping */
    uv_signal_t sigterm, sigint, sighup;
    int lock_fd;
    bool stopping;
};

/* Raise RLIMIT_NOFILE to its hard limit and check max_connections fits. */
static int
raise_nofile(const struct config *c)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY &&
        (rlim_t)c->max_connections + FD_RESERVE > rl.rlim_max) {
        fprintf(stderr,
                "bridgehead: %s: server.max_connections %u needs %u file descriptors, "
                "but the hard limit (RLIMIT_NOFILE) is %llu\n",
                c->path, c->max_connections, c->max_connections + FD_RESERVE,
                (unsigned long long)rl.rlim_max);
        return -1;
    }
    return 0;
}

/* Both the server and the scheduler have stopped: close the store (which
 * finishes the queue work in flight), then the rest. */
static void
on_stopped(void *arg)
{
    struct serve *sv = arg;
    if (--sv->stopping_parts > 0)
        return;
    uv_close((uv_handle_t *)&sv->sigterm, NULL);
    uv_close((uv_handle_t *)&sv->sigint, NULL);
    uv_close((uv_handle_t *)&sv->sighup, NULL);
    control_close(sv->control);
    sv->control = NULL;
    qwake_close(sv->qwake); /* before the store closes the queue and its fd */
    sv->qwake = NULL;
    metrics_close(sv->metrics);
    sv->metrics = NULL;
    server_free(sv->server);
    sv->server = NULL;
    store_close(sv->store);
    sv->store = NULL;
    store_close(sv->reader);
    sv->reader = NULL;
    sched_free(sv->sched);
    sv->sched = NULL;
    dns_free(sv->dns);
    sv->dns = NULL;
}

static void
stop_all(struct serve *sv, uint64_t grace_ms)
{
    sv->stopping_parts = sv->sched ? 2 : 1;
    if (sv->sched)
        sched_stop(sv->sched, on_stopped, sv);
    server_shutdown(sv->server, grace_ms, on_stopped, sv);
}

static void
on_stop_signal(uv_signal_t *h, int signum)
{
    struct serve *sv = h->data;
    if (sv->stopping)
        return;
    sv->stopping = true;
    log_info(sv->log, "event=stopping signal=%s", signum == SIGTERM ? "TERM" : "INT");
    stop_all(sv, SHUTDOWN_GRACE_MS);
}

/* Log one positioned error of a reload and add it to errors, as `check`
 * prints it. */
static void
reload_diag(struct serve *sv, const struct config_diag *g, struct util_buf *errors)
{
    char file[LOG_VALUE_MAX], msg[LOG_VALUE_MAX];
    log_error(sv->log, "event=reload_error file=%s line=%d col=%d msg=\"%s\"",
              log_token(file, sizeof file, g->file), g->line, g->col,
              log_text(msg, sizeof msg, g->msg));
    if (g->line > 0)
        util_buf_printf(errors, "%s:%d:%d: %s\n", g->file, g->line, g->col, g->msg);
    else
        util_buf_printf(errors, "%s: %s\n", g->file, g->msg);
}

/* On the storage thread: the connectors of a reloaded config that this
 * node may not deliver for (source_nodes, SPEC §8). */
static int
exclude_run(struct queue *q, void *arg)
{
    cmd_queue_exclude(arg, q);
    return 0;
}

static void
exclude_done(void *arg, int status)
{
    (void)status;
    config_unref(arg);
}

static void
note_restart(const char *setting, void *arg)
{
    struct serve *sv = arg;
    log_warn(sv->log, "event=reload_restart_needed setting=%s msg=\"changed in the file; it "
             "takes effect at the next restart and keeps its old value until then\"", setting);
}

/* The listeners keep running as they are: may the new config serve them?
 * 0, or BH_EINVAL with the reason in err. */
static int
listeners_fit(const struct config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->nlistens; i++) {
        const struct config_listen *l = &c->listens[i];
        if ((l->tls == CONFIG_LISTEN_IMPLICIT || l->odmr) && !c->has_tls) {
            snprintf(err, errlen, "the listener %s needs server.tls until a restart", l->address);
            return BH_EINVAL;
        }
        if (l->odmr && c->users_file == NULL) {
            snprintf(err, errlen, "the odmr listener %s needs server.users_file until a restart",
                     l->address);
            return BH_EINVAL;
        }
    }
    return 0;
}

/* Build a new config and swap it in (SIGHUP, `bridgehead reload`): new
 * sessions and the scheduler use it; settings that need a restart keep
 * their running values. 0 when swapped; else BH_EINVAL with one
 * positioned error per line in errors, and the old config stays. */
static int
reload_config(struct serve *sv, struct util_buf *errors)
{
    struct config_diags d = {0};
    struct config *c = config_load(sv->config_path, &d);
    for (size_t i = 0; i < d.n; i++)
        reload_diag(sv, &d.v[i], errors);
    config_diags_fini(&d);
    char err[256];
    if (c != NULL) {
        config_keep_restart_settings(c, server_conf(sv->server)->config, note_restart, sv);
        if (listeners_fit(c, err, sizeof err) != 0) {
            char msg[LOG_VALUE_MAX];
            log_error(sv->log, "event=reload_error msg=\"%s\"", log_text(msg, sizeof msg, err));
            util_buf_printf(errors, "%s: %s\n", sv->config_path, err);
            config_unref(c);
            c = NULL;
        }
    }
    struct server_conf *sc = c ? server_conf_new(c, err, sizeof err) : NULL;
    if (sc == NULL) {
        if (c) {
            char msg[LOG_VALUE_MAX];
            log_error(sv->log, "event=reload_error msg=\"%s\"", log_text(msg, sizeof msg, err));
            util_buf_printf(errors, "%s: %s\n", sv->config_path, err);
        }
        log_warn(sv->log, "event=reload status=rejected msg=\"the old config stays in force\"");
        return BH_EINVAL;
    }
    server_set_conf(sv->server, sc);
    sched_set_conf(sv->sched, sc);
    store_call(sv->store, exclude_run, exclude_done, config_ref(c));
    log_info(sv->log, "event=reload status=ok config=%s", sv->config_path);
    return 0;
}

static void
on_hup(uv_signal_t *h, int signum)
{
    struct util_buf errors = {0};
    (void)signum;
    reload_config(h->data, &errors);
    util_buf_fini(&errors);
}

static int
on_control_reload(void *arg, struct util_buf *errors)
{
    return reload_config(arg, errors);
}

/* After `queue flush`: the scheduler looks at the queue now. */
static void
on_control_wake(void *arg)
{
    struct serve *sv = arg;
    if (!sv->stopping && sv->sched != NULL)
        sched_kick(sv->sched);
}

static int
open_queue(struct serve *sv, const struct config *c, struct queue **q)
{
    char err[512];
    sv->lock_fd = queue_lock_acquire(c->storage_path, err, sizeof err);
    if (sv->lock_fd < 0) {
        fprintf(stderr, "bridgehead: %s\n", err);
        return -1;
    }
    struct queue_cfg qc;
    cmd_queue_cfg(c, &qc);
    if (queue_open_cfg(&qc, QUEUE_SERVE, q, err, sizeof err) < 0) {
        fprintf(stderr, "bridgehead: %s\n", err);
        return -1;
    }
    cmd_queue_exclude(c, *q);
    /* postgres: only this node's own leases (it restarted) */
    int n = queue_recover_delivering(*q);
    int s = queue_spool_cleanup(queue_folder(*q));
    log_info(sv->log,
             "event=queue_open backend=%s node=%s path=%s recovered=%d spool_removed=%d",
             c->backend == CONFIG_BACKEND_POSTGRES ? "postgres" : "sqlite", c->node,
             c->storage_path, n < 0 ? 0 : n, s < 0 ? 0 : s);
    return 0;
}

static void
on_queued(void *arg)
{
    sched_kick(arg);
}

/* The control socket "<storage.path>.sock" for `queue` and `reload`. */
static int
start_control(struct serve *sv, const struct config *c)
{
    struct control_ops ops = {.arg = sv, .reload = on_control_reload, .wake = on_control_wake};
    char err[512];
    char *path = control_socket_path(c->storage_path);
    sv->control = control_new(&sv->loop, sv->store, sv->log, &ops);
    int rc = control_listen(sv->control, path, err, sizeof err);
    free(path);
    if (rc != 0)
        fprintf(stderr, "bridgehead: %s\n", err);
    return rc;
}

static int
start(struct serve *sv, struct config *c)
{
    struct queue *q = NULL;
    char err[512];
    if (raise_nofile(c) < 0 || open_queue(sv, c, &q) < 0) {
        queue_close(q);
        config_unref(c);
        return -1;
    }
    struct server_conf *sc = server_conf_new(c, err, sizeof err);
    if (sc == NULL) {
        fprintf(stderr, "bridgehead: %s\n", err);
        queue_close(q);
        return -1;
    }
    sv->store = store_new(&sv->loop, q);
    sv->server = server_new(&sv->loop, sc, sv->store, sv->log, queue_folder(q));
    if (server_listen(sv->server, err, sizeof err) < 0) {
        fprintf(stderr, "bridgehead: %s\n", err);
        return -2;
    }
    const struct config *cfg = sc->config;
    sv->dns = dns_new(&sv->loop, (const char *const *)cfg->dns_servers, cfg->ndns_servers, 0);
    if (sv->dns == NULL) {
        fprintf(stderr, "bridgehead: cannot start the resolver\n");
        return -2;
    }
    struct queue *ro = NULL;
    struct queue_cfg qc;
    cmd_queue_cfg(cfg, &qc);
    if (queue_open_cfg(&qc, QUEUE_READONLY, &ro, err, sizeof err) < 0) {
        fprintf(stderr, "bridgehead: %s\n", err);
        return -2;
    }
    sv->reader = store_new(&sv->loop, ro);
    server_env(sv->server)->reader = sv->reader;
    control_set_reader(sv->control, sv->reader);
    sv->sched = sched_new(&sv->loop, sc, sv->store, sv->reader, sv->dns, sv->log,
                          server_env(sv->server)->shared, &server_env(sv->server)->counters);
    if (cfg->metrics_listen) {
        sv->metrics = metrics_new(&sv->loop, sv->store, sv->server,
                                  &server_env(sv->server)->counters, sched_health(sv->sched));
        if (metrics_listen(sv->metrics, cfg->metrics_listen, err, sizeof err) < 0) {
            fprintf(stderr, "bridgehead: %s\n", err);
            return -2;
        }
    }
    server_env(sv->server)->queued = on_queued;
    server_env(sv->server)->queued_arg = sv->sched;
    sv->qwake = qwake_new(&sv->loop, q, on_queued, sv->sched);
    return start_control(sv, cfg) == 0 ? 0 : -2;
}

static void
watch_signals(struct serve *sv)
{
    uv_signal_t *hs[] = {&sv->sigterm, &sv->sigint, &sv->sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&sv->loop, hs[i]);
        hs[i]->data = sv;
        uv_signal_start(hs[i], i == 2 ? on_hup : on_stop_signal, nums[i]);
    }
}

static int
parse_args(int argc, char **argv, const char **config_path, enum log_format *fmt)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-format", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        if (ch == 'c')
            *config_path = optarg;
        else if (ch == 'l' && (strcmp(optarg, "kv") == 0 || strcmp(optarg, "json") == 0))
            *fmt = strcmp(optarg, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_KV;
        else if (ch == 'l')
            return cmd_usage_error(usage, "--log-format: '%s' is not kv or json", optarg);
        else if (ch == 'h') {
            fputs(usage, stdout);
            return -1;
        } else if (ch == ':')
            return cmd_usage_error(usage, "option %s needs an argument", argv[optind - 1]);
        else
            return cmd_usage_error(usage, "unknown option %s", argv[optind - 1]);
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    return 0;
}

int
cmd_serve(int argc, char **argv, const char *config_path)
{
    enum log_format fmt = LOG_FORMAT_KV;
    int rc = parse_args(argc, argv, &config_path, &fmt);
    if (rc != 0)
        return rc < 0 ? CMD_EX_OK : rc;
    struct config *c = cmd_load_config(config_path);
    if (c == NULL)
        return CMD_EX_ERROR;
    signal(SIGPIPE, SIG_IGN);
    struct serve sv = {.config_path = config_path, .lock_fd = -1};
    sv.log = log_new(2, fmt, LOG_INFO, 0);
    uv_loop_init(&sv.loop);
    rc = start(&sv, c);
    if (rc == 0) {
        watch_signals(&sv);
        log_info(sv.log, "event=started version=%s config=%s", BH_VERSION, config_path);
    } else if (rc == -2) {
        watch_signals(&sv);
        sv.stopping = true;
        stop_all(&sv, 0);
    }
    if (rc != -1)
        uv_run(&sv.loop, UV_RUN_DEFAULT);
    uv_loop_close(&sv.loop);
    if (rc == 0)
        log_info(sv.log, "event=stopped");
    log_free(sv.log);
    queue_lock_release(sv.lock_fd);
    return rc == 0 ? CMD_EX_OK : CMD_EX_ERROR;
}
