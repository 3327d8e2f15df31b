/* The safetensors reader: header parsing and checks (jansson), tensor
 * reads with F16 / BF16 conversion. */
#include "data/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "util/err.h"

/* Tensor names in messages are cut to this many bytes, so that a long
 * name cannot push the rest of the message out of eg_errorf's buffer. */
#define NAME "%.200s"

/* The dtypes of the safetensors format and their element sizes; 0 marks
 * those that are not converted to float by eg_st_read_f32. */
static const struct {
    const char *name;
    eg_st_dtype dtype;
    size_t size;
} dtypes[] = {
    {"F32", EG_ST_F32, 4},     {"F16", EG_ST_F16, 2},     {"BF16", EG_ST_BF16, 2},
    {"F64", EG_ST_OTHER, 8},   {"I64", EG_ST_OTHER, 8},   {"I32", EG_ST_OTHER, 4},
    {"I16", EG_ST_OTHER, 2},   {"I8", EG_ST_OTHER, 1},    {"U64", EG_ST_OTHER, 8},
    {"U32", EG_ST_OTHER, 4},   {"U16", EG_ST_OTHER, 2},   {"U8", EG_ST_OTHER, 1},
    {"BOOL", EG_ST_OTHER, 1},  {"F8_E5M2", EG_ST_OTHER, 1}, {"F8_E4M3", EG_ST_OTHER, 1},
    {"F8_E8M0", EG_ST_OTHER, 1},
};

size_t eg_st_dtype_size(eg_st_dtype dtype)
{
    switch (dtype) {
    case EG_ST_F32: return 4;
    case EG_ST_F16:
    case EG_ST_BF16: return 2;
    default: return 0;
    }
}

/* The element size of a dtype named in a header, 0 when unknown (a newer
 * dtype, perhaps of sub-byte elements: its byte count is not checked). */
static size_t dtype_lookup(const char *name, eg_st_dtype *dtype)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, name) == 0) {
            *dtype = dtypes[i].dtype;
            return dtypes[i].size;
        }
    *dtype = EG_ST_OTHER;
    return 0;
}

/* pread()s len bytes at offset; returns the count read (short only at the
 * end of the file) or -1 with errno set. */
static int64_t read_at(int fd, void *buf, size_t len, uint64_t offset)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* A JSON integer >= 0 in *v; -1 (no message) when j is anything else. */
static int json_uint(const json_t *j, uint64_t *v)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0) return -1;
    *v = (uint64_t)json_integer_value(j);
    return 0;
}

/* Fills t (name already set) from its header entry e; data_size is the
 * number of bytes after the header. */
static int parse_entry(const char *path, const json_t *e, uint64_t data_size,
                       uint64_t data_start, eg_st_tensor *t)
{
    const char *name = t->name;
    if (!json_is_object(e))
        return eg_errorf("%s: tensor " NAME ": entry is not an object", path, name);

    const json_t *dt = json_object_get(e, "dtype");
    if (!dt) return eg_errorf("%s: tensor " NAME ": missing \"dtype\"", path, name);
    if (!json_is_string(dt))
        return eg_errorf("%s: tensor " NAME ": \"dtype\" is not a string", path, name);
    const char *dts = json_string_value(dt);
    if (!*dts || strlen(dts) >= sizeof t->dtype_name)
        return eg_errorf("%s: tensor " NAME ": implausible dtype \"%.40s\"", path, name, dts);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dts);
    size_t esize = dtype_lookup(dts, &t->dtype);

    const json_t *sh = json_object_get(e, "shape");
    if (!sh) return eg_errorf("%s: tensor " NAME ": missing \"shape\"", path, name);
    if (!json_is_array(sh))
        return eg_errorf("%s: tensor " NAME ": \"shape\" is not an array", path, name);
    if (json_array_size(sh) > EG_ST_MAX_DIMS)
        return eg_errorf("%s: tensor " NAME ": shape has %zu dimensions (at most %d)", path,
                         name, json_array_size(sh), EG_ST_MAX_DIMS);
    t->ndim = (int)json_array_size(sh);
    int empty = 0;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (json_uint(json_array_get(sh, (size_t)i), &d) != 0)
            return eg_errorf("%s: tensor " NAME ": shape[%d] is not an integer >= 0", path,
                             name, i);
        t->shape[i] = (int64_t)d;
        if (d == 0) empty = 1;
    }
    t->numel = empty ? 0 : 1;
    for (int i = 0; i < t->ndim && !empty; i++) {
        if ((uint64_t)t->shape[i] > (uint64_t)INT64_MAX / t->numel)
            return eg_errorf("%s: tensor " NAME ": shape's element count overflows", path,
                             name);
        t->numel *= (uint64_t)t->shape[i];
    }

    const json_t *off = json_object_get(e, "data_offsets");
    if (!off) return eg_errorf("%s: tensor " NAME ": missing \"data_offsets\"", path, name);
    uint64_t begin, end;
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        json_uint(json_array_get(off, 0), &begin) != 0 ||
        json_uint(json_array_get(off, 1), &end) != 0)
        return eg_errorf("%s: tensor " NAME ": \"data_offsets\" is not two integers >= 0",
                         path, name);
    if (begin > end)
        return eg_errorf("%s: tensor " NAME ": data_offsets [%" PRIu64 ", %" PRIu64
                         "] begin after end", path, name, begin, end);
    if (end > data_size)
        return eg_errorf("%s: truncated: tensor " NAME " ends at byte %" PRIu64
                         " of the data, which has %" PRIu64, path, name, end, data_size);
    t->offset = data_start + begin;
    t->nbytes = end - begin;
    if (esize && (t->numel > UINT64_MAX / esize || t->numel * esize != t->nbytes))
        return eg_errorf("%s: tensor " NAME ": %" PRIu64 " bytes of data, but %" PRIu64
                         " elements of %s take %" PRIu64, path, name, t->nbytes, t->numel,
                         t->dtype_name,
                         t->numel > UINT64_MAX / esize ? UINT64_MAX : t->numel * esize);
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const eg_st_tensor *x = *(const eg_st_tensor *const *)a, *y = *(const eg_st_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return x < y ? -1 : x > y; /* the header's order */
}

/* Fails when two tensors with data share a byte. */
static int check_overlap(const char *path, eg_st_tensor *t, int n)
{
    if (n < 2) return 0;
    eg_st_tensor **order = malloc((size_t)n * sizeof *order);
    if (!order) return eg_errorf("%s: out of memory for %d tensors", path, n);
    for (int i = 0; i < n; i++) order[i] = &t[i];
    qsort(order, (size_t)n, sizeof *order, by_offset);
    const eg_st_tensor *last = NULL; /* the nonempty one reaching furthest so far */
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const eg_st_tensor *c = order[i];
        if (c->nbytes == 0) continue;
        if (last && c->offset < last->offset + last->nbytes)
            rc = eg_errorf("%s: tensors " NAME " and " NAME " overlap (bytes [%" PRIu64
                           ", %" PRIu64 ") and [%" PRIu64 ", %" PRIu64 ") of the file)",
                           path, last->name, c->name, last->offset,
                           last->offset + last->nbytes, c->offset, c->offset + c->nbytes);
        if (!last || c->offset + c->nbytes > last->offset + last->nbytes) last = c;
    }
    free(order);
    return rc;
}

/* Parses and checks the header text into st->tensors. */
static int parse_header(eg_st_file *st, const char *text, size_t len)
{
    const char *path = st->path;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (json_error_code(&je) == json_error_duplicate_key)
            return eg_errorf("%s: header repeats a tensor name or field: %s (at byte %d)",
                             path, je.text, je.position);
        return eg_errorf("%s: header is not valid JSON: %s (at byte %d)", path, je.text,
                         je.position);
    }
    int rc = 0;
    if (!json_is_object(root)) {
        rc = eg_errorf("%s: header is not a JSON object", path);
        goto done;
    }
    size_t n = json_object_size(root);
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    if (!st->tensors) {
        rc = eg_errorf("%s: out of memory for %zu tensors", path, n);
        goto done;
    }
    uint64_t data_size = st->file_size - st->data_start;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(value)) {
                rc = eg_errorf("%s: \"__metadata__\" is not an object", path);
                goto done;
            }
            continue;
        }
        eg_st_tensor *t = &st->tensors[st->n_tensors];
        t->name = strdup(key);
        if (!t->name) {
            rc = eg_errorf("%s: out of memory", path);
            goto done;
        }
        st->n_tensors++;
        if ((rc = parse_entry(path, value, data_size, st->data_start, t)) != 0) goto done;
    }
    rc = check_overlap(path, st->tensors, st->n_tensors);
done:
    json_decref(root);
    return rc;
}

int eg_st_open(const char *path, eg_st_file *out)
{
    memset(out, 0, sizeof *out);
    eg_st_file st = {0};
    char *header = NULL;
    errno = 0;
    st.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (st.fd < 0) {
        if (errno == ENOENT) return eg_errorf("%s: no such file", path);
        return eg_errorf("%s: cannot open: %s", path, strerror(errno));
    }
    st.path = strdup(path);
    if (!st.path) {
        close(st.fd);
        return eg_errorf("%s: out of memory", path);
    }
    struct stat sb;
    if (fstat(st.fd, &sb) != 0) {
        eg_errorf("%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        eg_errorf("%s: not a regular file", path);
        goto fail;
    }
    st.file_size = (uint64_t)sb.st_size;
    if (st.file_size == 0) {
        eg_errorf("%s: empty file, not safetensors", path);
        goto fail;
    }
    unsigned char head[8];
    if (st.file_size < 8 || read_at(st.fd, head, 8, 0) != 8) {
        eg_errorf("%s: truncated: %" PRIu64 " bytes, too short for the 8-byte header length",
                  path, st.file_size);
        goto fail;
    }
    uint64_t n = le64(head);
    if (n < 2 || n > EG_ST_MAX_HEADER) {
        eg_errorf("%s: implausible header length %" PRIu64 " (2 to %" PRIu64 " bytes)", path,
                  n, EG_ST_MAX_HEADER);
        goto fail;
    }
    if (n > st.file_size - 8) {
        eg_errorf("%s: truncated: header length %" PRIu64 " runs past the end of the file (%"
                  PRIu64 " bytes)", path, n, st.file_size);
        goto fail;
    }
    st.data_start = 8 + n;
    header = malloc((size_t)n);
    if (!header) {
        eg_errorf("%s: out of memory for a %" PRIu64 "-byte header", path, n);
        goto fail;
    }
    int64_t got = read_at(st.fd, header, (size_t)n, 8);
    if (got != (int64_t)n) {
        eg_errorf("%s: %s reading the header", path, got < 0 ? strerror(errno) : "truncated");
        goto fail;
    }
    if (parse_header(&st, header, (size_t)n) != 0) goto fail;
    free(header);
    *out = st;
    return 0;
fail:
    free(header);
    eg_st_close(&st);
    return -1;
}

const eg_st_tensor *eg_st_find(const eg_st_file *st, const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

/* binary16 to binary32, exactly: normals rebias the exponent, subnormals
 * are m * 2^-24 (exact in float), infinities and NaN keep their payload. */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13;
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else {
        float v = (float)man * 0x1p-24f;
        memcpy(&bits, &v, 4);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float bits_to_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int eg_st_read_f32(eg_st_file *st, const eg_st_tensor *t, float *out, size_t count)
{
    const char *path = st->path;
    if ((uint64_t)count != t->numel)
        return eg_errorf("%s: tensor " NAME ": %zu floats asked for, but it has %" PRIu64
                         " elements", path, t->name, count, t->numel);
    size_t esize = eg_st_dtype_size(t->dtype);
    if (!esize)
        return eg_errorf("%s: tensor " NAME ": dtype %s cannot be read as float", path,
                         t->name, t->dtype_name);
    if (count == 0) return 0;
    unsigned char buf[1 << 14];
    size_t per = sizeof buf / esize;
    for (size_t done = 0; done < count;) {
        size_t want = count - done < per ? count - done : per;
        int64_t got = read_at(st->fd, buf, want * esize, t->offset + done * esize);
        if (got < 0)
            return eg_errorf("%s: tensor " NAME ": read error: %s", path, t->name,
                             strerror(errno));
        if ((size_t)got < want * esize)
            return eg_errorf("%s: tensor " NAME ": truncated: %" PRIu64
                             " bytes expected, the file ends after %zu", path, t->name,
                             t->nbytes, done * esize + (size_t)got);
        const unsigned char *p = buf;
        float *o = out + done;
        switch (t->dtype) {
        case EG_ST_F32:
            for (size_t i = 0; i < want; i++, p += 4)
                o[i] = bits_to_float((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                                     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
            break;
        case EG_ST_F16:
            for (size_t i = 0; i < want; i++, p += 2)
                o[i] = half_to_float((uint16_t)(p[0] | p[1] << 8));
            break;
        default: /* EG_ST_BF16 */
            for (size_t i = 0; i < want; i++, p += 2)
                o[i] = bits_to_float((uint32_t)p[0] << 16 | (uint32_t)p[1] << 24);
            break;
        }
        done += want;
    }
    return 0;
}

/* "[8, 16]" into buf. */
static void fmt_shape(char *buf, size_t cap, const int64_t *shape, int ndim)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

int eg_st_check_shape(const eg_st_file *st, const eg_st_tensor *t, const int64_t *shape,
                      int ndim)
{
    int same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i];
    if (same) return 0;
    char found[256], want[256];
    fmt_shape(found, sizeof found, t->shape, t->ndim);
    fmt_shape(want, sizeof want, shape, ndim);
    return eg_errorf("%s: " NAME ": shape %s, expected %s", st->path, t->name, found, want);
}

int eg_st_load_f32(eg_st_file *st, const char *name, const int64_t *shape, int ndim,
                   float *out)
{
    const eg_st_tensor *t = eg_st_find(st, name);
    if (!t) return eg_errorf("%s: no tensor " NAME, st->path, name);
    EG_TRY(eg_st_check_shape(st, t, shape, ndim));
    return eg_st_read_f32(st, t, out, (size_t)t->numel);
}

void eg_st_close(eg_st_file *st)
{
    if (!st) return;
    if (st->path) close(st->fd); /* path is set exactly while fd is open */
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    free(st->path);
    memset(st, 0, sizeof *st);
}
