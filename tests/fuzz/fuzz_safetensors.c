/* libFuzzer harness: the safetensors reader, and the config.json parser on
 * the same bytes.
 *
 * The input is the file. An open either fails with a message naming it or
 * gives a table whose tensors lie inside the file, hold as many bytes as
 * their shape and dtype announce and do not overlap; every tensor of a
 * float dtype then reads (its values are all looked at), every other one
 * is refused. A config either fails naming its file or has sizes the
 * engine can use. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/hf_config.h"
#include "data/safetensors.h"
#include "fuzz_file.h"
#include "util/err.h"

static void check_config(const uint8_t *data, size_t size)
{
    eg_hf_config c;
    eg_clear_error();
    if (eg_hf_config_parse("evograd-fuzz-config", (const char *)data, size, &c) != 0) {
        if (!strstr(eg_last_error(), "evograd-fuzz-config")) abort();
        if (c.hidden_size != 0) abort(); /* zeroed */
        return;
    }
    if (c.hidden_size < 1 || c.num_attention_heads < 1 ||
        c.hidden_size % c.num_attention_heads != 0 || c.num_hidden_layers < 1 ||
        c.vocab_size <= c.pad_token_id || c.max_position_embeddings < c.pad_token_id + 2 ||
        !(c.layer_norm_eps > 0) || c.num_labels < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_config(data, size);
    const char *path = fuzz_file("safetensors", data, size);
    if (!path) return 0;
    eg_st_file st;
    eg_clear_error();
    if (eg_st_open(path, &st) != 0) {
        if (!strstr(eg_last_error(), path)) abort(); /* names the file */
        if (st.tensors || st.path || st.n_tensors) abort();
        return 0;
    }
    if (st.file_size != size || st.data_start < 10 || st.data_start > size) abort();
    for (int i = 0; i < st.n_tensors; i++) {
        const eg_st_tensor *t = &st.tensors[i];
        if (eg_st_find(&st, t->name) != t) abort(); /* names are unique */
        if (t->ndim < 0 || t->ndim > EG_ST_MAX_DIMS) abort();
        if (t->offset < st.data_start || t->offset + t->nbytes > size) abort();
        size_t esize = eg_st_dtype_size(t->dtype);
        if (eg_st_check_shape(&st, t, t->shape, t->ndim) != 0) abort();
        if (!esize) {
            float one;
            if (t->numel == 1 && eg_st_read_f32(&st, t, &one, 1) != -1) abort();
            continue;
        }
        if (t->numel * esize != t->nbytes) abort();
        float *x = malloc(t->numel ? (size_t)t->numel * sizeof *x : 1);
        if (!x) abort();
        eg_clear_error();
        if (t->numel > 0 && eg_st_read_f32(&st, t, x, (size_t)t->numel - 1) != -1) abort();
        if (eg_st_read_f32(&st, t, x, (size_t)t->numel) != 0) abort();
        unsigned nan = 0;
        for (uint64_t k = 0; k < t->numel; k++) nan += x[k] != x[k];
        if (nan > t->numel) abort();
        free(x);
    }
    for (int i = 0; i < st.n_tensors; i++)
        for (int j = i + 1; j < st.n_tensors && j < i + 64; j++) {
            const eg_st_tensor *a = &st.tensors[i], *b = &st.tensors[j];
            if (a->nbytes && b->nbytes && a->offset < b->offset + b->nbytes &&
                b->offset < a->offset + a->nbytes)
                abort(); /* overlap */
        }
    eg_st_close(&st);
    return 0;
}
