/*  annal_checkpoint.c: checkpoint files, replaced atomically. */
#include "annal_checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int annal_checkpoint_load(const char *path, uint64_t *position)
{
    *position = 1;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 1 : -1;
    char line[64];
    int rc = -1;
    if (fgets(line, sizeof line, f) && line[0] >= '0' && line[0] <= '9') {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(line, &end, 10);
        if (!errno && end != line && (*end == '\n' || *end == 0) && v >= 1) {
            *position = v;
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

int annal_checkpoint_save(const char *path, uint64_t position)
{
    char tmp[4096], dir[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    char text[32];
    int n = snprintf(text, sizeof text, "%" PRIu64 "\n", position);
    if (write(fd, text, n) != n || fsync(fd)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    close(fd);
    if (rename(tmp, path))
        return -1;
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}
