#include "storage/queue_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "connectors/util.h"
#include "storage/fsutil.h"

/* Read the holder's PID from the lock file, 0 if unknown. */
static long
holder_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return (end != buf && pid > 0) ? pid : 0;
}

static void
record_pid(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    /* The PID is only for the message a second serve prints: best effort. */
    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) != n)
        (void)ftruncate(fd, 0);
}

static int
open_lock_file(const char *db_path, const char *lock_path, char *err, size_t errlen)
{
    char *dir = fsutil_dirname(db_path);
    int rc = fsutil_mkdirs(dir, 0750);
    if (rc != 0)
        snprintf(err, errlen, "%s: cannot create folder %s", db_path, dir);
    free(dir);
    if (rc != 0)
        return rc;
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", lock_path, strerror(errno));
        return fsutil_write_error(errno);
    }
    return fd;
}

int
queue_lock_acquire(const char *db_path, char *err, size_t errlen)
{
    char *lock_path = xasprintf("%s.lock", db_path);
    int fd = open_lock_file(db_path, lock_path, err, errlen);
    if (fd < 0)
        goto done;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        int busy = e == EWOULDBLOCK;
        long pid = busy ? holder_pid(fd) : 0;
        if (pid > 0)
            snprintf(err, errlen, "%s is in use by another bridgehead serve (pid %ld)", db_path,
                     pid);
        else if (busy)
            snprintf(err, errlen, "%s is in use by another bridgehead serve", db_path);
        else
            snprintf(err, errlen, "%s: cannot lock: %s", lock_path, strerror(e));
        close(fd);
        fd = busy ? BH_EBUSY : BH_EIO;
        goto done;
    }
    record_pid(fd);
done:
    free(lock_path);
    return fd;
}

void
queue_lock_release(int fd)
{
    if (fd >= 0)
        close(fd);
}
