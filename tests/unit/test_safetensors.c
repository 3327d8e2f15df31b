/* Hugging Face checkpoints (daemon/data): safetensors files written here
 * byte by byte, read back exactly (F32; F16 with subnormals, infinities,
 * NaN and negative zero; BF16), metadata skipped, scalars and empty
 * tensors, shape checks; every kind of corrupt header refused at open
 * with a message naming the file and the tensor; reads of the wrong dtype
 * or count, and of a file cut short after it was opened. Then config.json:
 * an XLM-R config read back, defaults, and the configs refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/hf_config.h"
#include "data/safetensors.h"
#include "testutil.h"
#include "util/err.h"

/* ---- writing safetensors files ------------------------------------------ */

/* dir/name in a rotating set of static buffers. */
/* A safetensors file: the header length hlen (the header's own length
 * when hlen is 0), the header text, then len bytes of data. */
static void write_st_len(const char *path, uint64_t hlen, const char *header,
                         const void *data, size_t len)
{
    size_t n = strlen(header);
    if (!hlen) hlen = n;
    unsigned char *buf = malloc(8 + n + len + 1);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, header, n);
    if (len) memcpy(buf + 8 + n, data, len);
    tu_write_bytes(path, buf, 8 + n + len);
    free(buf);
}

static void write_st(const char *path, const char *header, const void *data, size_t len)
{
    write_st_len(path, 0, header, data, len);
}

static uint32_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* Asserts that got and want are the same float, bit for bit (any NaN
 * matching any NaN). */
static void assert_same_float(float got, float want, int i)
{
    if (isnan(want)) {
        if (!isnan(got)) fail_msg("[%d]: %g, expected NaN", i, (double)got);
        return;
    }
    if (f32_bits(got) != f32_bits(want))
        fail_msg("[%d]: %a (0x%08x), expected %a (0x%08x)", i, (double)got, f32_bits(got),
                 (double)want, f32_bits(want));
}

/* ---- reading ------------------------------------------------------------- */

/* Halves with their exact values: normals, the extreme subnormals, the
 * smallest and largest normal, infinities, NaN, both zeros. */
static const struct {
    uint16_t bits;
    float value;
} halves[] = {
    {0x3c00, 1.0f},          {0xc000, -2.0f},          {0x3555, 0x1.554p-2f},
    {0x0001, 0x1p-24f},      {0x8001, -0x1p-24f},      {0x03ff, 0x1.ff8p-15f},
    {0x0200, 0x1p-15f},      {0x0400, 0x1p-14f},       {0x7bff, 65504.0f},
    {0x7c00, INFINITY},      {0xfc00, -INFINITY},      {0x7e00, NAN},
    {0x0000, 0.0f},          {0x8000, -0.0f},          {0xd140, -42.0f},
};

/* bfloat16 values: the high halves of these floats, so exact. */
static const float bf16_values[] = {1.0f,      -2.5f,     3.140625f, 0x1p-133f, -0x1p100f,
                                    INFINITY,  -INFINITY, NAN,       -0.0f,     0.0f,
                                    65536.0f,  0x1.fep127f};

static void test_read_values(void **state)
{
    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "model.safetensors");
    enum { NH = sizeof halves / sizeof halves[0], NB = sizeof bf16_values / sizeof bf16_values[0] };
    const float f32[6] = {1.5f, -2.25f, 0x1p-149f, -0.0f, 3.4028235e38f, INFINITY};
    unsigned char data[24 + 2 * NH + 2 * NB + 8 * 4 + 4];
    size_t o = 0;
    for (int i = 0; i < 6; i++, o += 4) {
        uint32_t b = f32_bits(f32[i]);
        for (int k = 0; k < 4; k++) data[o + k] = (unsigned char)(b >> 8 * k);
    }
    for (int i = 0; i < NH; i++, o += 2) {
        data[o] = (unsigned char)halves[i].bits;
        data[o + 1] = (unsigned char)(halves[i].bits >> 8);
    }
    for (int i = 0; i < NB; i++, o += 2) {
        uint32_t b = f32_bits(bf16_values[i]) >> 16;
        data[o] = (unsigned char)b;
        data[o + 1] = (unsigned char)(b >> 8);
    }
    size_t ids = o; /* four I64 position ids */
    for (int i = 0; i < 4; i++, o += 8) {
        memset(data + o, 0, 8);
        data[o] = (unsigned char)(i + 2);
    }
    size_t scalar = o;
    const float half_pi = 1.5707964f;
    uint32_t hb = f32_bits(half_pi);
    for (int k = 0; k < 4; k++) data[o + k] = (unsigned char)(hb >> 8 * k);
    o += 4;
    assert_int_equal(o, sizeof data);
    char header[1024];
    snprintf(header, sizeof header,
             "{\"__metadata__\": {\"format\": \"pt\"},"
             " \"roberta.embeddings.word_embeddings.weight\":"
             " {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},"
             " \"h\": {\"dtype\": \"F16\", \"shape\": [%d], \"data_offsets\": [24, %d]},"
             " \"b\": {\"dtype\": \"BF16\", \"shape\": [1, %d, 1], \"data_offsets\": [%d, %d]},"
             " \"roberta.embeddings.position_ids\":"
             " {\"dtype\": \"I64\", \"shape\": [1, 4], \"data_offsets\": [%zu, %zu]},"
             " \"empty\": {\"dtype\": \"F16\", \"shape\": [0, 4096], \"data_offsets\": [%zu, %zu]},"
             " \"scale\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [%zu, %zu]}}      ",
             NH, 24 + 2 * NH, NB, 24 + 2 * NH, 24 + 2 * NH + 2 * NB, ids, ids + 32, scalar,
             scalar, scalar, scalar + 4);
    write_st(path, header, data, sizeof data);

    eg_st_file st;
    if (eg_st_open(path, &st) != 0) fail_msg("open: %s", eg_last_error());
    assert_int_equal(st.n_tensors, 6); /* __metadata__ is no tensor */
    assert_int_equal(st.file_size, 8 + strlen(header) + sizeof data);
    assert_int_equal(st.data_start, 8 + strlen(header));
    assert_null(eg_st_find(&st, "__metadata__"));
    assert_null(eg_st_find(&st, "nope"));

    const eg_st_tensor *w = eg_st_find(&st, "roberta.embeddings.word_embeddings.weight");
    assert_non_null(w);
    assert_ptr_equal(w, &st.tensors[0]); /* the header's order */
    assert_int_equal(w->dtype, EG_ST_F32);
    assert_string_equal(w->dtype_name, "F32");
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->shape[0], 2);
    assert_int_equal(w->shape[1], 3);
    assert_int_equal(w->numel, 6);
    assert_int_equal(w->nbytes, 24);
    assert_int_equal(w->offset, st.data_start);
    float out[64];
    assert_int_equal(eg_st_read_f32(&st, w, out, 6), 0);
    for (int i = 0; i < 6; i++) assert_same_float(out[i], f32[i], i);
    assert_int_equal(eg_st_check_shape(&st, w, (const int64_t[]){2, 3}, 2), 0);

    const eg_st_tensor *h = eg_st_find(&st, "h");
    assert_non_null(h);
    assert_int_equal(h->dtype, EG_ST_F16);
    assert_int_equal(h->offset, st.data_start + 24);
    assert_int_equal(eg_st_read_f32(&st, h, out, NH), 0);
    for (int i = 0; i < NH; i++) assert_same_float(out[i], halves[i].value, i);
    assert_true(signbit(out[13]));

    const eg_st_tensor *b = eg_st_find(&st, "b");
    assert_non_null(b);
    assert_int_equal(b->dtype, EG_ST_BF16);
    assert_int_equal(b->ndim, 3);
    assert_int_equal(eg_st_read_f32(&st, b, out, NB), 0);
    for (int i = 0; i < NB; i++) assert_same_float(out[i], bf16_values[i], i);

    /* Reads in any order, again and again. */
    assert_int_equal(eg_st_read_f32(&st, w, out, 6), 0);
    assert_same_float(out[1], -2.25f, 1);

    const eg_st_tensor *pos = eg_st_find(&st, "roberta.embeddings.position_ids");
    assert_non_null(pos);
    assert_int_equal(pos->dtype, EG_ST_OTHER);
    assert_string_equal(pos->dtype_name, "I64");
    assert_int_equal(pos->numel, 4);
    assert_int_equal(pos->nbytes, 32);
    tu_fails_with(eg_st_read_f32(&st, pos, out, 4),
                  "roberta.embeddings.position_ids: dtype I64 cannot be read as float");
    assert_non_null(strstr(eg_last_error(), path));

    const eg_st_tensor *e = eg_st_find(&st, "empty");
    assert_non_null(e);
    assert_int_equal(e->numel, 0);
    assert_int_equal(e->nbytes, 0);
    assert_int_equal(eg_st_read_f32(&st, e, out, 0), 0);

    const eg_st_tensor *s = eg_st_find(&st, "scale");
    assert_non_null(s);
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->numel, 1);
    assert_int_equal(eg_st_read_f32(&st, s, out, 1), 0);
    assert_same_float(out[0], half_pi, 0);
    assert_int_equal(eg_st_check_shape(&st, s, NULL, 0), 0);

    /* eg_st_load_f32: find, check, read. */
    memset(out, 0, sizeof out);
    assert_int_equal(eg_st_load_f32(&st, "roberta.embeddings.word_embeddings.weight",
                                    (const int64_t[]){2, 3}, 2, out), 0);
    assert_same_float(out[0], 1.5f, 0);
    tu_fails_with(eg_st_load_f32(&st, "roberta.pooler.dense.weight", (const int64_t[]){2}, 1, out),
                  "no tensor roberta.pooler.dense.weight");
    tu_fails_with(eg_st_load_f32(&st, "h", (const int64_t[]){3, 5}, 2, out),
                  "h: shape [15], expected [3, 5]");
    eg_st_close(&st);
    assert_null(st.tensors);
    eg_st_close(&st); /* twice is harmless */
    eg_st_close(NULL);
}

/* Tensors longer than one read: every element lands in its place, and
 * all 65536 halves convert as the formula says. */
static void test_read_large(void **state)
{
    const char *path = tu_path(tu_tmpdir(), "large.safetensors");
    enum { N = 256 * 256, M = 5000 }; /* F16 (256, 256): 128 KiB; F32 (5000) */
    unsigned char *data = malloc(2 * N + 4 * M);
    float *out = malloc(N * sizeof *out);
    assert_non_null(data);
    assert_non_null(out);
    for (int i = 0; i < N; i++) { /* every half, 0x0000 to 0xffff */
        data[2 * i] = (unsigned char)i;
        data[2 * i + 1] = (unsigned char)(i >> 8);
    }
    for (int i = 0; i < M; i++) {
        uint32_t b = f32_bits((float)i * 0.25f - 7.0f);
        for (int k = 0; k < 4; k++) data[2 * N + 4 * i + k] = (unsigned char)(b >> 8 * k);
    }
    char header[512];
    snprintf(header, sizeof header,
             "{\"h\": {\"dtype\": \"F16\", \"shape\": [256, 256], \"data_offsets\": [0, %d]},"
             " \"f\": {\"dtype\": \"F32\", \"shape\": [%d], \"data_offsets\": [%d, %d]}}",
             2 * N, M, 2 * N, 2 * N + 4 * M);
    write_st(path, header, data, 2 * N + 4 * M);
    eg_st_file st;
    if (eg_st_open(path, &st) != 0) fail_msg("open: %s", eg_last_error());
    assert_int_equal(eg_st_load_f32(&st, "h", (const int64_t[]){256, 256}, 2, out), 0);
    for (int i = 0; i < N; i++) {
        int neg = i >> 15, e = (i >> 10) & 0x1f, m = i & 0x3ff;
        assert_int_equal(!!signbit(out[i]), neg);
        if (e == 0x1f) { /* infinities, NaNs */
            assert_true(m ? isnan(out[i]) : isinf(out[i]));
            continue;
        }
        /* exp 0: man * 2^-24; else (1024 + man) * 2^(exp - 25) */
        float want = e ? ldexpf((float)(1024 + m), e - 25) : ldexpf((float)m, -24);
        assert_same_float(out[i], neg ? -want : want, i);
    }
    assert_int_equal(eg_st_load_f32(&st, "f", (const int64_t[]){M}, 1, out), 0);
    for (int i = 0; i < M; i++) assert_same_float(out[i], (float)i * 0.25f - 7.0f, i);
    eg_st_close(&st);
    free(data);
    free(out);
}

/* The dtype sizes and the messages of reads that cannot be done. */
static void test_read_errors(void **state)
{
    assert_int_equal(eg_st_dtype_size(EG_ST_F32), 4);
    assert_int_equal(eg_st_dtype_size(EG_ST_F16), 2);
    assert_int_equal(eg_st_dtype_size(EG_ST_BF16), 2);
    assert_int_equal(eg_st_dtype_size(EG_ST_OTHER), 0);

    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "q.safetensors");
    float q[16 * 8];
    for (int i = 0; i < 16 * 8; i++) q[i] = (float)i - 64.0f; /* little-endian host */
    write_st(path,
             "{\"roberta.encoder.layer.0.attention.self.query.weight\": "
             "{\"dtype\": \"F32\", \"shape\": [8, 16], \"data_offsets\": [0, 512]}}",
             q, sizeof q);
    eg_st_file st;
    if (eg_st_open(path, &st) != 0) fail_msg("open: %s", eg_last_error());
    const eg_st_tensor *t = &st.tensors[0];
    float out[16 * 16];
    tu_fails_with(eg_st_check_shape(&st, t, (const int64_t[]){16, 16}, 2),
                  "roberta.encoder.layer.0.attention.self.query.weight: shape [8, 16], "
                  "expected [16, 16]");
    assert_non_null(strstr(eg_last_error(), path));
    tu_fails_with(eg_st_check_shape(&st, t, (const int64_t[]){8, 16, 1}, 3),
                  "shape [8, 16], expected [8, 16, 1]");
    tu_fails_with(eg_st_check_shape(&st, t, (const int64_t[]){128}, 1),
                  "shape [8, 16], expected [128]");
    tu_fails_with(eg_st_read_f32(&st, t, out, 256),
                  "query.weight: 256 floats asked for, but it has 128 elements");
    tu_fails_with(eg_st_read_f32(&st, t, out, 127), "127 floats asked for");
    assert_int_equal(eg_st_read_f32(&st, t, out, 128), 0);
    assert_memory_equal(out, q, sizeof q);

    /* Cut short after opening: the read notices. */
    assert_int_equal(truncate(path, (off_t)(st.data_start + 100)), 0);
    tu_fails_with(eg_st_read_f32(&st, t, out, 128),
                  "roberta.encoder.layer.0.attention.self.query.weight: truncated");
    assert_int_equal(truncate(path, (off_t)st.data_start), 0);
    tu_fails_with(eg_st_read_f32(&st, t, out, 128), "truncated");
    eg_st_close(&st);
    /* ...and opening it again is refused up front. */
    tu_fails_with(eg_st_open(path, &st), "truncated: tensor "
                  "roberta.encoder.layer.0.attention.self.query.weight ends at byte 512");
    assert_null(st.tensors);
}

/* ---- corrupt files --------------------------------------------------------- */

/* Headers refused at open, each with its message; data is this many
 * bytes of zeros after the header. */
static const struct {
    const char *header;
    size_t data;
    const char *what;
} bad_headers[] = {
    {"{not json", 0, "header is not valid JSON"},
    {"", 0, "implausible header length 0"},
    {"{", 0, "implausible header length 1"},
    {"[1, 2]", 0, "header is not a JSON object"},
    {"\"w\"", 0, "header is not a JSON object"},
    {"{\"w\": 3}", 0, "tensor w: entry is not an object"},
    {"{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, "tensor w: missing \"dtype\""},
    {"{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", 8, "tensor w: missing \"shape\""},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, "tensor w: missing \"data_offsets\""},
    {"{\"w\": {\"dtype\": 4, \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
     "tensor w: \"dtype\" is not a string"},
    {"{\"w\": {\"dtype\": \"\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
     "tensor w: implausible dtype \"\""},
    {"{\"w\": {\"dtype\": \"FLOAT32_BUT_LONGER\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
     "implausible dtype \"FLOAT32_BUT_LONGER\""},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": \"2\", \"data_offsets\": [0, 8]}}", 8,
     "tensor w: \"shape\" is not an array"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8,
     "tensor w: shape[0] is not an integer >= 0"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 2.0], \"data_offsets\": [0, 8]}}", 8,
     "tensor w: shape[1] is not an integer >= 0"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,2], \"data_offsets\": [0, 8]}}", 8,
     "tensor w: shape has 9 dimensions"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 2],"
     " \"data_offsets\": [0, 8]}}",
     8, "tensor w: shape's element count overflows"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8,
     "tensor w: \"data_offsets\" is not two integers"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": {\"0\": 8}}}", 8,
     "tensor w: \"data_offsets\" is not two integers"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, \"8\"]}}", 8,
     "tensor w: \"data_offsets\" is not two integers"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [-8, 0]}}", 8,
     "tensor w: \"data_offsets\" is not two integers"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 0]}}", 8,
     "tensor w: data_offsets [8, 0] begin after end"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8,
     "tensor w: 8 bytes of data, but 3 elements of F32 take 12"},
    {"{\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}", 16,
     "tensor w: 16 bytes of data, but 4 elements of BF16 take 8"},
    {"{\"ids\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
     "tensor ids: 8 bytes of data, but 2 elements of I64 take 16"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8,
     "truncated: tensor w ends at byte 16 of the data, which has 8"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 9223372036854775807]}}", 8,
     "truncated: tensor w ends at byte 9223372036854775807"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
     " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12,
     "tensors a and b overlap"},
    {"{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
     " \"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 16,
     "tensors a and b overlap"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
     " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
     "tensors a and b overlap"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
     " \"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}", 16,
     "duplicate"},
    {"{\"__metadata__\": \"pt\"}", 0, "\"__metadata__\" is not an object"},
};

static void test_bad_headers(void **state)
{
    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "bad.safetensors");
    unsigned char zeros[64] = {0};
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        write_st(path, bad_headers[i].header, zeros, bad_headers[i].data);
        eg_st_file st;
        eg_clear_error();
        int rc = eg_st_open(path, &st);
        if (rc != -1 || !strstr(eg_last_error(), bad_headers[i].what) ||
            !strstr(eg_last_error(), path))
            fail_msg("header %zu (%s): rc %d, message \"%s\", wanted \"%s\" and the path", i,
                     bad_headers[i].header, rc, eg_last_error(), bad_headers[i].what);
        assert_null(st.tensors);
            assert_null(st.path);
        assert_int_equal(st.n_tensors, 0);
    }

    /* Touching and zero-length tensors are no overlap. */
    write_st(path,
             "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
             " \"z\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]},"
             " \"x\": {\"dtype\": \"F8_E4M3\", \"shape\": [3], \"data_offsets\": [16, 19]},"
             " \"new\": {\"dtype\": \"F4\", \"shape\": [7], \"data_offsets\": [19, 23]}}",
             zeros, 23);
    eg_st_file st;
    if (eg_st_open(path, &st) != 0) fail_msg("open: %s", eg_last_error());
    assert_int_equal(st.n_tensors, 5);
    const eg_st_tensor *n = eg_st_find(&st, "new"); /* unknown size: not checked */
    assert_non_null(n);
    assert_int_equal(n->dtype, EG_ST_OTHER);
    assert_string_equal(n->dtype_name, "F4");
    float out[7];
    tu_fails_with(eg_st_read_f32(&st, n, out, 7), "tensor new: dtype F4 cannot be read as float");
    eg_st_close(&st);
}

/* Files too short, header lengths out of bounds, missing files. */
static void test_bad_files(void **state)
{
    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "f.safetensors");
    eg_st_file st;

    tu_write_bytes(path, "", 0);
    tu_fails_with(eg_st_open(path, &st), "empty file");
    assert_non_null(strstr(eg_last_error(), path));
    tu_write_bytes(path, "\x10\0\0\0", 4);
    tu_fails_with(eg_st_open(path, &st), "4 bytes, too short for the 8-byte header length");

    const char *header = "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}";
    write_st_len(path, 1000, header, "abcd", 4);
    tu_fails_with(eg_st_open(path, &st), "header length 1000 runs past the end of the file");
    write_st_len(path, strlen(header) + 5, header, "abcd", 4);
    tu_fails_with(eg_st_open(path, &st), "runs past the end of the file");
    write_st_len(path, ((uint64_t)100 << 20) + 1, header, "abcd", 4);
    tu_fails_with(eg_st_open(path, &st), "implausible header length 104857601");
    write_st_len(path, UINT64_MAX, header, "abcd", 4);
    tu_fails_with(eg_st_open(path, &st), "implausible header length 18446744073709551615");
    /* A header length one short cuts the JSON. */
    write_st_len(path, strlen(header) - 1, header, "abcd", 4);
    tu_fails_with(eg_st_open(path, &st), "header is not valid JSON");
    /* The right length opens (the control for the cases above). */
    write_st(path, header, "abcd", 4);
    if (eg_st_open(path, &st) != 0) fail_msg("open: %s", eg_last_error());
    eg_st_close(&st);

    tu_fails_with(eg_st_open(tu_path(dir, "absent.safetensors"), &st),
                  "absent.safetensors: no such file");
    tu_fails_with(eg_st_open(dir, &st), "not a regular file");
}

/* ---- config.json ----------------------------------------------------------- */

static const char xlmr_config[] =
    "{\n"
    "  \"architectures\": [\"XLMRobertaForMaskedLM\"],\n"
    "  \"attention_probs_dropout_prob\": 0.1,\n"
    "  \"bos_token_id\": 0,\n"
    "  \"eos_token_id\": 2,\n"
    "  \"hidden_act\": \"gelu\",\n"
    "  \"hidden_dropout_prob\": 0.2,\n"
    "  \"hidden_size\": 768,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 3072,\n"
    "  \"layer_norm_eps\": 1e-05,\n"
    "  \"max_position_embeddings\": 514,\n"
    "  \"model_type\": \"xlm-roberta\",\n"
    "  \"num_attention_heads\": 12,\n"
    "  \"num_hidden_layers\": 12,\n"
    "  \"output_past\": true,\n"
    "  \"pad_token_id\": 1,\n"
    "  \"position_embedding_type\": \"absolute\",\n"
    "  \"transformers_version\": \"4.17.0.dev0\",\n"
    "  \"type_vocab_size\": 1,\n"
    "  \"use_cache\": true,\n"
    "  \"classifier_dropout\": null,\n"
    "  \"vocab_size\": 250002\n"
    "}\n";

/* Writes text as dir/config.json. */
static void write_config(const char *dir, const char *text)
{
    tu_write_bytes(tu_path(dir, "config.json"), text, strlen(text));
}

/* xlmr_config with the line holding `key` replaced by `line` (a JSON
 * member with its trailing comma; "" drops the key). */
static char *config_with(const char *key, const char *line)
{
    static char buf[4096];
    const char *p = strstr(xlmr_config, key);
    if (!p) fail_msg("no %s in the config", key);
    while (p > xlmr_config && p[-1] != '\n') p--;
    const char *end = strchr(p, '\n') + 1;
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - xlmr_config), xlmr_config, line, end);
    return buf;
}

static void test_config(void **state)
{
    const char *dir = tu_tmpdir();
    eg_hf_config c;
    write_config(dir, xlmr_config);
    if (eg_hf_config_load(dir, &c) != 0) fail_msg("load: %s", eg_last_error());
    assert_string_equal(c.model_type, "xlm-roberta");
    assert_int_equal(c.vocab_size, 250002);
    assert_int_equal(c.hidden_size, 768);
    assert_int_equal(c.num_hidden_layers, 12);
    assert_int_equal(c.num_attention_heads, 12);
    assert_int_equal(c.intermediate_size, 3072);
    assert_int_equal(c.max_position_embeddings, 514);
    assert_int_equal(c.type_vocab_size, 1);
    assert_true(c.layer_norm_eps == 1e-5);
    assert_int_equal(c.pad_token_id, 1);
    assert_true(c.hidden_dropout_prob == 0.2);
    assert_true(c.attention_probs_dropout_prob == 0.1);
    assert_string_equal(c.hidden_act, "gelu");
    assert_int_equal(c.num_labels, 0);

    /* The smallest config: the defaults fill in the rest. */
    write_config(dir, "{\"model_type\": \"roberta\", \"vocab_size\": 100, \"hidden_size\": 16,"
                      " \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
                      " \"intermediate_size\": 37, \"max_position_embeddings\": 20}");
    if (eg_hf_config_load(dir, &c) != 0) fail_msg("load: %s", eg_last_error());
    assert_string_equal(c.model_type, "roberta");
    assert_int_equal(c.hidden_size, 16);
    assert_int_equal(c.intermediate_size, 37);
    assert_int_equal(c.type_vocab_size, 1);
    assert_true(c.layer_norm_eps == 1e-5);
    assert_int_equal(c.pad_token_id, 1);
    assert_true(c.hidden_dropout_prob == 0.1);
    assert_true(c.attention_probs_dropout_prob == 0.1);
    assert_string_equal(c.hidden_act, "gelu");
    assert_int_equal(c.num_labels, 0);

    /* A fine-tuned classifier: the labels are counted; integer eps. */
    write_config(dir, config_with("\"use_cache\"", "  \"id2label\": {\"0\": \"O\","
                                                   " \"1\": \"B-PER\", \"2\": \"I-PER\"},\n"));
    if (eg_hf_config_load(dir, &c) != 0) fail_msg("load: %s", eg_last_error());
    assert_int_equal(c.num_labels, 3);
    write_config(dir, config_with("\"use_cache\"", "  \"num_labels\": 7,\n"));
    if (eg_hf_config_load(dir, &c) != 0) fail_msg("load: %s", eg_last_error());
    assert_int_equal(c.num_labels, 7);

    /* The parser on text, as the fuzz harness calls it. */
    assert_int_equal(eg_hf_config_parse("mem", xlmr_config, strlen(xlmr_config), &c), 0);
    assert_int_equal(c.vocab_size, 250002);
}

static void test_config_errors(void **state)
{
    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "config.json");
    eg_hf_config c;
    static const struct {
        const char *key, *line, *what;
    } cases[] = {
        {"\"hidden_size\"", "", "missing \"hidden_size\""},
        {"\"vocab_size\"", "  \"vocab\": 250002\n", "missing \"vocab_size\""},
        {"\"model_type\"", "", "missing \"model_type\""},
        {"\"num_attention_heads\"", "  \"num_attention_heads\": 10,\n",
         "hidden_size 768 is not divisible by num_attention_heads 10"},
        {"\"hidden_act\"", "  \"hidden_act\": \"relu\",\n", "hidden_act \"relu\" is not supported"},
        {"\"hidden_act\"", "  \"hidden_act\": \"gelu_new\",\n", "hidden_act \"gelu_new\""},
        {"\"hidden_act\"", "  \"hidden_act\": 1,\n", "\"hidden_act\" is not a string"},
        {"\"model_type\"", "  \"model_type\": \"bert\",\n", "model_type \"bert\" is not supported"},
        {"\"model_type\"", "  \"model_type\": null,\n", "\"model_type\" is not a string"},
        {"\"hidden_size\"", "  \"hidden_size\": \"768\",\n", "\"hidden_size\" is not an integer"},
        {"\"hidden_size\"", "  \"hidden_size\": 768.0,\n", "\"hidden_size\" is not an integer"},
        {"\"hidden_size\"", "  \"hidden_size\": 0,\n", "hidden_size 0 out of range"},
        {"\"hidden_size\"", "  \"hidden_size\": -768,\n", "hidden_size -768 out of range"},
        {"\"hidden_size\"", "  \"hidden_size\": 98304,\n",
         "hidden_size 98304 out of range (1 to 65536)"},
        {"\"num_hidden_layers\"", "  \"num_hidden_layers\": 1001,\n",
         "num_hidden_layers 1001 out of range"},
        {"\"vocab_size\"", "  \"vocab_size\": 99999999999\n",
         "vocab_size 99999999999 out of range"},
        {"\"intermediate_size\"", "  \"intermediate_size\": 0,\n",
         "intermediate_size 0 out of range"},
        {"\"type_vocab_size\"", "  \"type_vocab_size\": 0,\n", "type_vocab_size 0 out of range"},
        {"\"layer_norm_eps\"", "  \"layer_norm_eps\": 0,\n", "layer_norm_eps 0 out of range"},
        {"\"layer_norm_eps\"", "  \"layer_norm_eps\": \"1e-5\",\n",
         "\"layer_norm_eps\" is not a number"},
        {"\"hidden_dropout_prob\"", "  \"hidden_dropout_prob\": 1.0,\n",
         "hidden_dropout_prob 1 out of range"},
        {"\"attention_probs_dropout_prob\"", "  \"attention_probs_dropout_prob\": -0.1,\n",
         "attention_probs_dropout_prob -0.1 out of range"},
        {"\"pad_token_id\"", "  \"pad_token_id\": 250002,\n", "pad_token_id 250002 out of range"},
        {"\"max_position_embeddings\"", "  \"max_position_embeddings\": 2,\n",
         "max_position_embeddings 2 leaves no position"},
        {"\"position_embedding_type\"", "  \"position_embedding_type\": \"relative_key\",\n",
         "position_embedding_type \"relative_key\" is not supported"},
        {"\"use_cache\"",
         "  \"num_labels\": 2, \"id2label\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"},\n",
         "num_labels 2 but id2label has 3 labels"},
        {"\"use_cache\"", "  \"num_labels\": 0,\n", "num_labels 0 out of range"},
        {"\"use_cache\"", "  \"num_labels\": \"3\",\n", "\"num_labels\" is not an integer"},
        {"\"use_cache\"", "  \"id2label\": [\"a\"],\n", "\"id2label\" is not an object"},
        {"\"use_cache\"", "  \"hidden_size\": 768,\n", "duplicate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_config(dir, config_with(cases[i].key, cases[i].line));
        eg_clear_error();
        memset(&c, 0x5a, sizeof c);
        int rc = eg_hf_config_load(dir, &c);
        if (rc != -1 || !strstr(eg_last_error(), cases[i].what) || !strstr(eg_last_error(), path))
            fail_msg("case %zu: rc %d, message \"%s\", wanted \"%s\" and %s", i, rc,
                     eg_last_error(), cases[i].what, path);
        assert_int_equal(c.hidden_size, 0); /* zeroed on failure */
    }

    write_config(dir, "{\"model_type\": \"roberta\",");
    tu_fails_with(eg_hf_config_load(dir, &c), "config.json: not valid JSON");
    write_config(dir, "[]");
    tu_fails_with(eg_hf_config_load(dir, &c), "config.json: not a JSON object");
    write_config(dir, "");
    tu_fails_with(eg_hf_config_load(dir, &c), "config.json: not valid JSON");
    tu_fails_with(eg_hf_config_load(tu_path(dir, "nowhere"), &c), "nowhere/config.json: no such file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_values),
        cmocka_unit_test(test_read_large),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
