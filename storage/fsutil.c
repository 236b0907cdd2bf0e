#include "storage/fsutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "connectors/util.h"

char *
fsutil_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

int
fsutil_write_error(int err)
{
    return (err == ENOSPC || err == EDQUOT) ? BH_ENOSPC : BH_EIO;
}

/* mkdir one component; an existing folder is fine. */
static int
mkdir_one(const char *dir, unsigned mode)
{
    struct stat st;
    if (mkdir(dir, (mode_t)mode) == 0)
        return 0;
    if (errno != EEXIST)
        return fsutil_write_error(errno);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return BH_EEXIST;
    return 0;
}

int
fsutil_mkdirs(const char *dir, unsigned mode)
{
    char *p = xstrdup(dir);
    int rc = 0;
    /* Walk every '/' after the first character, creating each prefix. */
    for (char *s = p + 1; *s != '\0' && rc == 0; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        rc = mkdir_one(p, mode);
        *s = '/';
    }
    if (rc == 0)
        rc = mkdir_one(p, mode);
    free(p);
    return rc;
}
