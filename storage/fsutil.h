/*
 * fsutil: the few file-system helpers the storage modules share: the folder
 * of a path and "mkdir -p".
 *
 * Plain blocking functions with no shared state: any thread may call them.
 * Strings they return are heap copies that the caller frees.
 */
#ifndef BH_STORAGE_FSUTIL_H
#define BH_STORAGE_FSUTIL_H

/* The folder part of path ("." when it has none); the caller frees it. */
char *fsutil_dirname(const char *path);

/*
 * Create dir and its missing parents with the given mode (like mkdir -p).
 * Returns 0, BH_ENOSPC when the disk is full, BH_EEXIST when a part of the
 * path is not a folder, or BH_EIO.
 */
int fsutil_mkdirs(const char *dir, unsigned mode);

/* Map an errno value from a failed write or create to BH_ENOSPC or BH_EIO. */
int fsutil_write_error(int err);

#endif
