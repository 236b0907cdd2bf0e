/*
 * Fuzz connectors/config: the input is a YAML configuration file, written
 * to a temporary file under /tmp (unlinked afterwards) and loaded.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "connectors/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/bh-fuzz-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    if (off == size) {
        struct config_diags diags = {0};
        struct config *c = config_load(path, &diags);
        config_unref(c);
        config_diags_fini(&diags);
    }
    unlink(path);
    return 0;
}
