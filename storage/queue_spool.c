#include "storage/queue_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connectors/util.h"
#include "storage/fsutil.h"

struct queue_spool {
    char *dir;
    unsigned char *buf; /* QUEUE_SPOOL_MEM_MAX bytes: the body, or the unflushed tail */
    size_t used;        /* bytes in buf */
    uint64_t size;      /* bytes written in all */
    uint64_t flushed;   /* bytes already in the file */
    int fd;             /* -1 while in memory */
    int error;          /* sticky write error, 0 if none */
};

struct queue_spool *
queue_spool_new(const char *dir)
{
    struct queue_spool *sp = xcalloc(1, sizeof *sp);
    sp->dir = xstrdup(dir);
    sp->buf = xmalloc(QUEUE_SPOOL_MEM_MAX);
    sp->fd = -1;
    return sp;
}

void
queue_spool_free(struct queue_spool *sp)
{
    if (sp == NULL)
        return;
    if (sp->fd >= 0)
        close(sp->fd);
    free(sp->buf);
    free(sp->dir);
    free(sp);
}

static int
write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fsutil_write_error(errno);
        if (n == 0)
            return BH_EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Create the unlinked temporary file. */
static int
open_file(struct queue_spool *sp)
{
    char *tmpl = xasprintf("%s/spool-XXXXXX", sp->dir);
    int fd = mkstemp(tmpl);
    int rc = 0;
    if (fd < 0) {
        rc = fsutil_write_error(errno);
    } else {
        unlink(tmpl);
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    free(tmpl);
    if (rc == 0)
        sp->fd = fd;
    return rc;
}

/* Write the buffered bytes to the file, creating it first if need be. */
static int
flush(struct queue_spool *sp)
{
    int rc = 0;
    if (sp->fd < 0)
        rc = open_file(sp);
    if (rc == 0)
        rc = write_all(sp->fd, sp->buf, sp->used);
    if (rc == 0) {
        sp->flushed += sp->used;
        sp->used = 0;
    }
    return rc;
}

int
queue_spool_write(struct queue_spool *sp, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (sp->error != 0)
        return sp->error;
    while (len > 0) {
        if (sp->used == QUEUE_SPOOL_MEM_MAX) {
            int rc = flush(sp);
            if (rc != 0)
                return sp->error = rc;
        }
        size_t n = QUEUE_SPOOL_MEM_MAX - sp->used;
        if (n > len)
            n = len;
        memcpy(sp->buf + sp->used, p, n);
        sp->used += n;
        sp->size += n;
        p += n;
        len -= n;
    }
    return 0;
}

uint64_t
queue_spool_size(const struct queue_spool *sp)
{
    return sp->size;
}

bool
queue_spool_on_disk(const struct queue_spool *sp)
{
    return sp->fd >= 0;
}

/* pread from the file part, which holds bytes [0, flushed). */
static int
read_file(struct queue_spool *sp, uint64_t off, unsigned char *buf, size_t len, size_t *got)
{
    if ((uint64_t)len > sp->flushed - off)
        len = (size_t)(sp->flushed - off);
    while (*got < len) {
        ssize_t n = pread(sp->fd, buf + *got, len - *got, (off_t)(off + *got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return BH_EIO;
        *got += (size_t)n;
    }
    return 0;
}

int
queue_spool_read(struct queue_spool *sp, uint64_t off, void *buf, size_t len, size_t *got)
{
    unsigned char *out = buf;
    *got = 0;
    if (sp->error != 0)
        return sp->error;
    if (off >= sp->size || len == 0)
        return 0;
    if (off < sp->flushed) {
        int rc = read_file(sp, off, out, len, got);
        if (rc != 0)
            return rc;
        off += *got;
        len -= *got;
    }
    if (len > 0 && off >= sp->flushed) {
        size_t at = (size_t)(off - sp->flushed);
        size_t n = sp->used - at < len ? sp->used - at : len;
        memcpy(out + *got, sp->buf + at, n);
        *got += n;
    }
    return 0;
}

static bool
is_spool_name(const char *name)
{
    return strncmp(name, "spool-", 6) == 0 && strlen(name) == 12;
}

int
queue_spool_cleanup(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : BH_EIO;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_spool_name(de->d_name))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
