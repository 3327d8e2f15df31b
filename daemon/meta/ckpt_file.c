#include "meta/ckpt_file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/err.h"

#define MAGIC "EGCKPT2"    /* with its NUL: 8 bytes */
#define MAGIC_V1 "EGCKPT1" /* no checksum */
#define HEAD 12            /* magic and count */
#define NAME_MAX_LEN 127

/* ---- writing ---- */

typedef struct sink {
    FILE *f;
    uLong crc;
    int err; /* errno of the first failed write, or -1 for another failure */
} sink;

static void put(sink *s, const void *p, size_t n)
{
    if (s->err || !n) return;
    if (fwrite(p, n, 1, s->f) != 1) {
        s->err = errno ? errno : EIO;
        return;
    }
    s->crc = crc32_z(s->crc, p, n);
}

int eg_ckpt_file_write(eg_backend *be, const char *path, const eg_ckpt_item *items, int n)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return eg_errorf("checkpoint: path too long: %s", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return eg_errorf("checkpoint: cannot create %s: %s", tmp, strerror(errno));
    sink s = {.f = f, .crc = crc32_z(0, NULL, 0)};
    int32_t count = n;
    put(&s, MAGIC, 8);
    put(&s, &count, sizeof count);
    void *host = NULL;
    for (int i = 0; i < n && !s.err; i++) {
        uint32_t len = (uint32_t)strlen(items[i].name);
        uint64_t bytes = items[i].bytes;
        const void *src = items[i].ptr;
        if (items[i].device && bytes) {
            void *bigger = realloc(host, bytes);
            if (!bigger || be->download(be, bigger, items[i].ptr, bytes) != 0) {
                if (!bigger) eg_errorf("checkpoint: out of memory for %s", items[i].name);
                host = bigger ? bigger : host;
                s.err = -1;
                break;
            }
            src = host = bigger;
        }
        put(&s, &len, sizeof len);
        put(&s, items[i].name, len);
        put(&s, &bytes, sizeof bytes);
        put(&s, src, bytes);
    }
    free(host);
    uint32_t crc = (uint32_t)s.crc;
    if (!s.err && fwrite(&crc, sizeof crc, 1, f) != 1) s.err = errno ? errno : EIO;
    if (!s.err && fflush(f) != 0) s.err = errno;
    if (!s.err && fsync(fileno(f)) != 0) s.err = errno;
    if (fclose(f) != 0 && !s.err) s.err = errno;
    if (!s.err && rename(tmp, path) != 0) s.err = errno;
    if (!s.err) return 0;
    unlink(tmp);
    if (s.err > 0) return eg_errorf("checkpoint: writing %s failed: %s", path, strerror(s.err));
    return eg_errorf("checkpoint: writing %s failed: %s", path, eg_last_error());
}

/* ---- reading ---- */

/* Reads n bytes at the current position, counted into *pos. A header
 * read that runs into the checksum is caught by the checks after it (the
 * payload's bound, the end of the items). */
static int take(FILE *f, uint64_t *pos, void *p, size_t n)
{
    if (n && fread(p, n, 1, f) != 1) return -1;
    *pos += n;
    return 0;
}

/* Checks the checksum over the first `end` bytes of f against the one
 * that follows them: 0, or -1 with eg_errorf ("... is corrupted"). */
static int check_crc(FILE *f, const char *path, uint64_t end)
{
    if (fseeko(f, 0, SEEK_SET) != 0) return eg_errorf("checkpoint: cannot read %s", path);
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) return eg_errorf("checkpoint: out of memory");
    uLong crc = crc32_z(0, NULL, 0);
    for (uint64_t left = end; left > 0;) {
        size_t k = left < CHUNK ? (size_t)left : CHUNK;
        if (fread(buf, k, 1, f) != 1) {
            free(buf);
            return eg_errorf("checkpoint: cannot read %s", path);
        }
        crc = crc32_z(crc, buf, k);
        left -= k;
    }
    free(buf);
    uint32_t stored;
    if (fread(&stored, sizeof stored, 1, f) != 1)
        return eg_errorf("checkpoint: cannot read %s", path);
    if (stored != (uint32_t)crc)
        return eg_errorf("checkpoint: %s is corrupted (checksum %08x, the contents give %08x)",
                         path, stored, (unsigned)crc);
    return 0;
}

/* Pass 1: the file's structure against the items, then its checksum. */
static int check(FILE *f, const char *path, const eg_ckpt_item *items, int n)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0) return eg_errorf("checkpoint: cannot stat %s", path);
    uint64_t size = (uint64_t)st.st_size, pos = 0;
    char magic[8];
    if (take(f, &pos, magic, 8) != 0)
        return eg_errorf("checkpoint: %s is truncated (%llu bytes)", path,
                         (unsigned long long)size);
    int v2 = memcmp(magic, MAGIC, 8) == 0;
    if (!v2 && memcmp(magic, MAGIC_V1, 8) != 0)
        return eg_errorf("checkpoint: %s is not a checkpoint (no EGCKPT magic)", path);
    uint64_t end = size;
    if (v2) {
        if (size < HEAD + 4)
            return eg_errorf("checkpoint: %s is truncated (%llu bytes)", path,
                             (unsigned long long)size);
        end = size - 4;
    }
    int32_t count;
    if (take(f, &pos, &count, sizeof count) != 0)
        return eg_errorf("checkpoint: %s is truncated (%llu bytes)", path,
                         (unsigned long long)size);
    if (count != n)
        return eg_errorf("checkpoint: %s is not a checkpoint of this job (%d items where this "
                         "job has %d)", path, (int)count, n);
    for (int i = 0; i < n; i++) {
        uint32_t len;
        uint64_t bytes;
        char name[NAME_MAX_LEN + 1];
        if (take(f, &pos, &len, sizeof len) != 0)
            return eg_errorf("checkpoint: %s is truncated at item %d of %d", path, i + 1, n);
        if (len > NAME_MAX_LEN)
            return eg_errorf("checkpoint: %s is corrupted (item %d has a %u-byte name)", path,
                             i + 1, len);
        if (take(f, &pos, name, len) != 0 || take(f, &pos, &bytes, sizeof bytes) != 0)
            return eg_errorf("checkpoint: %s is truncated at item %d of %d", path, i + 1, n);
        name[len] = '\0';
        if (strcmp(name, items[i].name) != 0 || bytes != items[i].bytes) {
            /* Another job's checkpoint, or this one's damaged? */
            if (v2 && check_crc(f, path, end) != 0) return -1;
            return eg_errorf("checkpoint: %s holds %s (%llu bytes) where this job has %s (%zu)",
                             path, name, (unsigned long long)bytes, items[i].name,
                             items[i].bytes);
        }
        if (pos > end || bytes > end - pos)
            return eg_errorf("checkpoint: %s is truncated in %s (%llu of %llu bytes)", path,
                             name, (unsigned long long)(end - pos), (unsigned long long)bytes);
        if (fseeko(f, (off_t)bytes, SEEK_CUR) != 0)
            return eg_errorf("checkpoint: cannot read %s", path);
        pos += bytes;
    }
    if (pos != end)
        return eg_errorf("checkpoint: %s is corrupted (%llu bytes after its last item)", path,
                         (unsigned long long)(end - pos));
    return v2 ? check_crc(f, path, end) : 0;
}

/* Pass 2, on a checked file: each payload into its item. */
static int load(eg_backend *be, FILE *f, const char *path, const eg_ckpt_item *items, int n)
{
    if (fseeko(f, HEAD, SEEK_SET) != 0) return eg_errorf("checkpoint: cannot read %s", path);
    void *host = NULL;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        size_t bytes = items[i].bytes;
        if (fseeko(f, (off_t)(4 + strlen(items[i].name) + 8), SEEK_CUR) != 0) {
            rc = eg_errorf("checkpoint: cannot read %s", path);
            break;
        }
        void *dst = items[i].ptr;
        if (items[i].device && bytes) {
            void *bigger = realloc(host, bytes);
            if (!bigger) {
                rc = eg_errorf("checkpoint: out of memory for %s", items[i].name);
                break;
            }
            dst = host = bigger;
        }
        if (bytes && fread(dst, bytes, 1, f) != 1)
            rc = eg_errorf("checkpoint: cannot read %s", path);
        else if (items[i].device && bytes && be->upload(be, items[i].ptr, host, bytes) != 0)
            rc = -1;
    }
    free(host);
    return rc;
}

int eg_ckpt_file_read(eg_backend *be, const char *path, const eg_ckpt_item *items, int n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return eg_errorf("checkpoint: cannot open %s: %s", path, strerror(errno));
    int rc = check(f, path, items, n);
    if (rc == 0) rc = load(be, f, path, items, n);
    fclose(f);
    return rc;
}

int eg_ckpt_file_remove(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return eg_errorf("checkpoint: path too long: %s", path);
    const char *paths[2] = {path, tmp};
    int rc = 0;
    for (int i = 0; i < 2; i++)
        if (unlink(paths[i]) != 0 && errno != ENOENT && rc == 0)
            rc = eg_errorf("checkpoint: cannot remove %s: %s", paths[i], strerror(errno));
    return rc;
}
