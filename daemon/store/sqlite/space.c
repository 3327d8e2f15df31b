/* The disk-space reserve: a file of EG_RESERVE_BYTES next to the
 * database. When a write finds the disk full the store gives it back, so
 * that what must still be written (the end of the jobs that could not go
 * on) has room, and refuses new work until it can take the reserve again. */
#include "store/sqlite/sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"

#define EG_RESERVE_BYTES (1 << 20)

static void reserve_path(const eg_sqlite *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-reserve", s->path);
}

int eg_reserve_take(eg_sqlite *s)
{
    char path[4200];
    reserve_path(s, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return eg_errorf("store: cannot create %s: %s", path, strerror(errno));
    int rc = posix_fallocate(fd, 0, EG_RESERVE_BYTES);
    if (rc == 0 && fsync(fd) != 0) rc = errno;
    close(fd);
    if (rc != 0) {
        unlink(path);
        return eg_errorf("store: cannot reserve %d bytes in %s: %s", EG_RESERVE_BYTES, path,
                         strerror(rc));
    }
    return 0;
}

void eg_reserve_release(eg_sqlite *s)
{
    if (eg_writeq_set_full(&s->q, 1)) return;
    char path[4200];
    reserve_path(s, path, sizeof path);
    unlink(path);
    EG_LOG(ERROR, "store: the disk holding %s is full: running jobs fail, new jobs are refused "
                  "until there is room again", s->path);
}

int eg_sq_out_of_space(eg_store *base)
{
    eg_sqlite *s = (eg_sqlite *)base;
    if (!eg_writeq_is_full(&s->q)) return 0;
    if (eg_reserve_take(s) != 0) return 1;
    eg_writeq_set_full(&s->q, 0);
    EG_LOG(INFO, "store: there is room on the disk of %s again", s->path);
    return 0;
}
