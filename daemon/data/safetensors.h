/* Reading Hugging Face safetensors files (XLM-R / RoBERTa checkpoints),
 * without the safetensors library.
 *
 * The format: an 8-byte little-endian u64 N, then N bytes of JSON (may be
 * padded with spaces), then the data. The JSON object maps each tensor's
 * name to {"dtype": "F32", "shape": [768, 768], "data_offsets": [b, e]},
 * b and e counted from the first byte after the JSON; an optional
 * "__metadata__" object (string to string) is skipped.
 *
 * eg_st_open() checks the whole header before anything is read, so that a
 * corrupt or truncated file fails there, with a message naming the file
 * and, where one is at fault, the tensor; reading a tensor afterwards can
 * fail only when the file changed underneath or a read fails. F32, F16 and
 * BF16 tensors read as float; other dtypes are described (their byte count
 * checked where the size is known) but not converted. */
#ifndef EG_SAFETENSORS_H
#define EG_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/* The most dimensions a tensor may have and the largest header accepted
 * (bytes of JSON). */
#define EG_ST_MAX_DIMS 8
#define EG_ST_MAX_HEADER ((uint64_t)100 << 20)

typedef enum eg_st_dtype {
    EG_ST_F32,
    EG_ST_F16,   /* IEEE 754 binary16 */
    EG_ST_BF16,  /* bfloat16: the high half of a float32 */
    EG_ST_OTHER, /* anything else ("I64", "U8", ...): see dtype_name */
} eg_st_dtype;

typedef struct eg_st_tensor {
    char *name;             /* as in the header; owned by the eg_st_file */
    eg_st_dtype dtype;
    char dtype_name[16];    /* the header's dtype string, for messages */
    int ndim;               /* 0..EG_ST_MAX_DIMS; 0 is a scalar */
    int64_t shape[EG_ST_MAX_DIMS];
    uint64_t offset;        /* of the first byte, from the start of the file */
    uint64_t nbytes;        /* data_offsets[1] - data_offsets[0] */
    uint64_t numel;         /* product of shape (1 for a scalar) */
} eg_st_tensor;

typedef struct eg_st_file {
    char *path;
    int fd;                 /* open (read-only) while path is set */
    eg_st_tensor *tensors;  /* in the header's order */
    int n_tensors;
    uint64_t data_start;    /* 8 + N */
    uint64_t file_size;
} eg_st_file;

/* Bytes one element of dtype takes: 4, 2, 2, or 0 for EG_ST_OTHER. */
size_t eg_st_dtype_size(eg_st_dtype dtype);

/* Opens path and reads and checks its header into *out (eg_st_close frees
 * it). Fails on: a file shorter than 8 bytes or empty; N < 2, N >
 * EG_ST_MAX_HEADER or past the end of the file; a header that is not JSON
 * or not an object; a repeated tensor name; an entry that is not an object
 * or lacks, or mistypes, "dtype" (a string), "shape" (an array of at most
 * EG_ST_MAX_DIMS integers >= 0 whose product fits in int64) or
 * "data_offsets" (two integers, begin <= end); data ending past the end of
 * the file ("truncated"); a byte count other than elements x element size
 * for a dtype of known size; two tensors sharing bytes; a "__metadata__"
 * that is not an object. On failure returns -1 after eg_errorf() and
 * leaves *out zeroed. The file stays open until eg_st_close; reads use
 * pread(), so threads may read tensors of one eg_st_file at once. */
int eg_st_open(const char *path, eg_st_file *out);

/* The tensor called name, or NULL when the file has none. */
const eg_st_tensor *eg_st_find(const eg_st_file *st, const char *name);

/* Reads tensor t of st (one of st->tensors) into out (count floats),
 * converting F16 (subnormals, infinities and NaN included) and BF16
 * exactly. count must equal t->numel. Fails, naming the tensor, on a count
 * mismatch, a dtype that is not F32, F16 or BF16, a read error, or data
 * that ends early ("truncated": the file shrank since it was opened). */
int eg_st_read_f32(eg_st_file *st, const eg_st_tensor *t, float *out, size_t count);

/* 0 when t has exactly the ndim dimensions shape[]; else -1 after
 * eg_errorf("FILE: NAME: shape [8, 16], expected [16, 16]"). */
int eg_st_check_shape(const eg_st_file *st, const eg_st_tensor *t,
                      const int64_t *shape, int ndim);

/* The usual way to load a weight: finds name ("FILE: no tensor NAME" when
 * absent), checks its shape against shape[0..ndim) and reads it into out,
 * which holds the product of shape floats. */
int eg_st_load_f32(eg_st_file *st, const char *name, const int64_t *shape,
                   int ndim, float *out);

/* Closes the file and frees the table, then zeroes *st. Harmless on a
 * zeroed eg_st_file; NULL is allowed. */
void eg_st_close(eg_st_file *st);

#endif
