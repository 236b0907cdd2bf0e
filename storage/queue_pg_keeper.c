#include "storage/queue_pg_keeper.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "connectors/util.h"
#include "storage/pg_schema.h"
#include "storage/pgdb.h"
#include "storage/queue_lease.h"

#define RECONNECT_MS 1000

struct queue_pg_keeper {
    PGconn *conn;
    char *node;
    struct queue_leases *ls;
    int lease_secs;
    int writer_pid;
    int wake_fd; /* eventfd: new work from another node */
    int stop_fd; /* eventfd: stop the thread */
    pthread_t thread;
};

static void
signal_fd(int fd)
{
    uint64_t one = 1;
    while (write(fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static bool
ok(PGresult *r)
{
    bool good = pgdb_status(r) == 0;
    PQclear(r);
    return good;
}

/* Take the node's lock and LISTEN, on a fresh session. */
static int
session_setup(struct queue_pg_keeper *k, char *err, size_t errlen)
{
    char key[16];
    snprintf(key, sizeof key, "%d", PG_NODE_LOCK_KEY);
    const char *vals[2] = {key, k->node};
    PGresult *r = PQexecParams(k->conn, "SELECT pg_try_advisory_lock($1::int, hashtext($2))", 2,
                               NULL, vals, NULL, NULL, 0);
    if (pgdb_status(r) != 0 || PQntuples(r) != 1) {
        snprintf(err, errlen, "postgres: cannot take the node lock: %.*s",
                 (int)strcspn(PQerrorMessage(k->conn), "\n"), PQerrorMessage(k->conn));
        PQclear(r);
        return BH_EIO;
    }
    bool got = pgdb_bool(r, 0, 0);
    PQclear(r);
    if (!got) {
        snprintf(err, errlen,
                 "postgres: node %s is already running (another bridgehead serve with this "
                 "server.node holds its lock)",
                 k->node);
        return BH_EBUSY;
    }
    if (!ok(PQexec(k->conn, "LISTEN " PG_CHANNEL))) {
        snprintf(err, errlen, "postgres: LISTEN failed: %.*s",
                 (int)strcspn(PQerrorMessage(k->conn), "\n"), PQerrorMessage(k->conn));
        return BH_EIO;
    }
    return 0;
}

/* Extend this node's leases; confirm the ones the database renewed. */
static void
renew(struct queue_pg_keeper *k)
{
    char secs[12];
    snprintf(secs, sizeof secs, "%d", k->lease_secs);
    const char *vals[2] = {k->node, secs};
    int64_t sent = queue_leases_now_ms();
    PGresult *r = PQexecParams(k->conn,
                               "UPDATE entries SET lease_until = now() + make_interval(secs => $2)"
                               " WHERE lease_node = $1 AND state = 5 RETURNING eid",
                               2, NULL, vals, NULL, NULL, 0);
    if (pgdb_status(r) != 0) {
        PQclear(r);
        queue_leases_invalidate(k->ls);
        return;
    }
    int64_t deadline = sent + (int64_t)k->lease_secs * 1000 - (int64_t)k->lease_secs * 1000 / 6;
    for (int i = 0; i < PQntuples(r); i++)
        queue_leases_renew(k->ls, pgdb_int(r, i, 0, 0), deadline);
    PQclear(r);
    /* A held entry whose holder died stays held, no longer delivering. */
    PQclear(PQexec(k->conn, "UPDATE entries SET state = 0, lease_node = NULL,"
                            " lease_until = NULL WHERE state = 5 AND held"
                            " AND lease_until < now()"));
}

/* Read what arrived; wake the loop for NOTIFYs from other connections. */
static void
drain(struct queue_pg_keeper *k)
{
    if (PQconsumeInput(k->conn) == 0)
        return;
    bool wake = false;
    PGnotify *n;
    while ((n = PQnotifies(k->conn)) != NULL) {
        if (n->be_pid != k->writer_pid)
            wake = true;
        PQfreemem(n);
    }
    if (wake)
        signal_fd(k->wake_fd);
}

/* After a lost connection: the leases are in doubt until a renewal. */
static void
reconnect(struct queue_pg_keeper *k)
{
    char err[256];
    queue_leases_invalidate(k->ls);
    PQreset(k->conn);
    if (PQstatus(k->conn) == CONNECTION_OK && session_setup(k, err, sizeof err) == 0) {
        renew(k);
        signal_fd(k->wake_fd); /* we may have missed NOTIFYs */
    }
}

/* Wait for the socket, the stop signal or the timeout; false: stop. */
static bool
wait_events(struct queue_pg_keeper *k, int timeout_ms)
{
    struct pollfd fds[2] = {{.fd = k->stop_fd, .events = POLLIN},
                            {.fd = PQsocket(k->conn), .events = POLLIN}};
    int nfds = fds[1].fd >= 0 ? 2 : 1;
    int n = poll(fds, (nfds_t)nfds, timeout_ms);
    if (n > 0 && (fds[0].revents & POLLIN) != 0)
        return false;
    if (n > 0 && nfds == 2 && fds[1].revents != 0)
        drain(k);
    return true;
}

static void *
keeper_main(void *arg)
{
    struct queue_pg_keeper *k = arg;
    int64_t period = (int64_t)k->lease_secs * 1000 / 3;
    int64_t next = queue_leases_now_ms() + period;
    for (;;) {
        if (PQstatus(k->conn) != CONNECTION_OK) {
            if (!wait_events(k, RECONNECT_MS))
                break;
            reconnect(k);
            next = queue_leases_now_ms() + period;
            continue;
        }
        int64_t now = queue_leases_now_ms();
        if (!wait_events(k, (int)(next > now ? next - now : 0)))
            break;
        if (queue_leases_now_ms() >= next) {
            renew(k);
            next = queue_leases_now_ms() + period;
        }
    }
    return NULL;
}

int
queue_pg_keeper_start(const char *dsn, const char *node, struct queue_leases *ls, int lease_secs,
                      int writer_pid, struct queue_pg_keeper **out, char *err, size_t errlen)
{
    struct queue_pg_keeper *k = xcalloc(1, sizeof *k);
    k->node = xstrdup(node);
    k->ls = ls;
    k->lease_secs = lease_secs;
    k->writer_pid = writer_pid;
    k->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    k->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    k->conn = PQconnectdb(dsn);
    int rc = 0;
    if (k->wake_fd < 0 || k->stop_fd < 0) {
        snprintf(err, errlen, "postgres: eventfd: %s", strerror(errno));
        rc = BH_EIO;
    } else if (k->conn == NULL || PQstatus(k->conn) != CONNECTION_OK) {
        snprintf(err, errlen, "postgres: cannot connect: %.*s",
                 (int)strcspn(PQerrorMessage(k->conn), "\n"), PQerrorMessage(k->conn));
        rc = BH_EIO;
    } else {
        rc = session_setup(k, err, errlen);
    }
    if (rc == 0 && pthread_create(&k->thread, NULL, keeper_main, k) != 0) {
        snprintf(err, errlen, "postgres: cannot start the lease keeper thread");
        rc = BH_EIO;
    }
    if (rc != 0) {
        PQfinish(k->conn);
        if (k->wake_fd >= 0)
            close(k->wake_fd);
        if (k->stop_fd >= 0)
            close(k->stop_fd);
        free(k->node);
        free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void
queue_pg_keeper_stop(struct queue_pg_keeper *k)
{
    if (k == NULL)
        return;
    signal_fd(k->stop_fd);
    pthread_join(k->thread, NULL);
    PQfinish(k->conn);
    close(k->wake_fd);
    close(k->stop_fd);
    free(k->node);
    free(k);
}

int
queue_pg_keeper_fd(const struct queue_pg_keeper *k)
{
    return k->wake_fd;
}

void
queue_pg_keeper_clear(struct queue_pg_keeper *k)
{
    uint64_t v;
    while (read(k->wake_fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
}
