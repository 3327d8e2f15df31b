/* The CPU backend: the reference implementation of nn/backend.h. Device
 * memory is host memory; the allocator keeps current and peak bytes. */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "cpu_dnnl.h"
#include "util/err.h"

typedef struct cpu_impl {
    float *scratch;
    size_t scratch_bytes;
    cpu_dnnl *dnnl;
} cpu_impl;

/* Each block carries its size in a 64-byte header so free() can count it
 * and the payload stays aligned for vector loads. */
#define HEADER 64

static void *cpu_alloc(eg_backend *be, size_t bytes)
{
    char *p = aligned_alloc(HEADER, HEADER + ((bytes + HEADER - 1) / HEADER) * HEADER);
    if (!p) {
        eg_errorf("cpu: out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p + HEADER, 0, bytes);
    *(size_t *)p = bytes;
    be->cur_bytes += bytes;
    if (be->cur_bytes > be->peak_bytes) be->peak_bytes = be->cur_bytes;
    return p + HEADER;
}

static void cpu_free(eg_backend *be, void *ptr)
{
    if (!ptr) return;
    char *p = (char *)ptr - HEADER;
    be->cur_bytes -= *(size_t *)p;
    free(p);
}

static int cpu_memcpy(eg_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes) memmove(dst, src, bytes);
    return 0;
}

static int cpu_sync(eg_backend *be) { return 0; }

static void cpu_destroy(eg_backend *be)
{
    if (!be) return;
    cpu_impl *impl = be->impl;
    cpu_dnnl_destroy(impl->dnnl);
    cpu_free(be, impl->scratch);
    free(impl);
    free(be);
}

float *cpu_scratch(eg_backend *be, size_t bytes)
{
    cpu_impl *impl = be->impl;
    if (bytes > impl->scratch_bytes) {
        cpu_free(be, impl->scratch);
        impl->scratch_bytes = 0;
        impl->scratch = cpu_alloc(be, bytes);
        if (!impl->scratch) return NULL;
        impl->scratch_bytes = bytes;
    }
    return impl->scratch;
}

cpu_dnnl *cpu_dnnl_of(eg_backend *be) { return ((cpu_impl *)be->impl)->dnnl; }

eg_backend *eg_cpu_backend_create(void)
{
    eg_backend *be = calloc(1, sizeof *be);
    cpu_impl *impl = calloc(1, sizeof *impl);
    if (!be || !impl) {
        free(be);
        free(impl);
        eg_errorf("cpu: out of memory creating the backend");
        return NULL;
    }
    if (!(impl->dnnl = cpu_dnnl_create())) {
        free(be);
        free(impl);
        return NULL;
    }
    *be = (eg_backend){
        .name = "cpu",
        .impl = impl,
        .alloc = cpu_alloc,
        .free = cpu_free,
        .upload = cpu_memcpy,
        .download = cpu_memcpy,
        .copy = cpu_memcpy,
        .sync = cpu_sync,
        .destroy = cpu_destroy,
        .gemm = cpu_gemm,
        .gemm_batched = cpu_gemm_batched,
        .bias_add = cpu_bias_add,
        .bias_grad = cpu_bias_grad,
        .conv_fwd = cpu_conv_fwd,
        .conv_bwd_data = cpu_conv_bwd_data,
        .conv_bwd_filter = cpu_conv_bwd_filter,
        .bn_fwd_train = cpu_bn_fwd_train,
        .bn_fwd_eval = cpu_bn_fwd_eval,
        .bn_bwd = cpu_bn_bwd,
        .bn_bwd_eval = cpu_bn_bwd_eval,
        .ft_fwd = cpu_ft_fwd,
        .ft_bwd = cpu_ft_bwd,
        .embed_fwd = cpu_embed_fwd,
        .embed_bwd = cpu_embed_bwd,
        .layernorm_fwd = cpu_layernorm_fwd,
        .layernorm_bwd = cpu_layernorm_bwd,
        .gelu_fwd = cpu_gelu_fwd,
        .gelu_bwd = cpu_gelu_bwd,
        .softmax_fwd = cpu_softmax_fwd,
        .softmax_bwd = cpu_softmax_bwd,
        .dropout = cpu_dropout,
        .rtn_gate_fwd = cpu_rtn_gate_fwd,
        .rtn_gate_bwd = cpu_rtn_gate_bwd,
        .relu_fwd = cpu_relu_fwd,
        .relu_bwd = cpu_relu_bwd,
        .sigmoid_fwd = cpu_sigmoid_fwd,
        .sigmoid_bwd = cpu_sigmoid_bwd,
        .maxpool_fwd = cpu_maxpool_fwd,
        .maxpool_bwd = cpu_maxpool_bwd,
        .avgpool_fwd = cpu_avgpool_fwd,
        .avgpool_bwd = cpu_avgpool_bwd,
        .block_sum = cpu_block_sum,
        .sqdist_fwd = cpu_sqdist_fwd,
        .sqdist_bwd = cpu_sqdist_bwd,
        .shortcut_fwd = cpu_shortcut_fwd,
        .shortcut_bwd = cpu_shortcut_bwd,
        .xent_fwd = cpu_xent_fwd,
        .xent_bwd = cpu_xent_bwd,
        .rotate_fwd = cpu_rotate_fwd,
        .rotate_bwd = cpu_rotate_bwd,
        .fill = cpu_fill,
        .axpy = cpu_axpy,
        .scale = cpu_scale,
        .dot = cpu_dot,
        .noise_combine = cpu_noise_combine,
        .noise_dots = cpu_noise_dots,
        .sgd_step = cpu_sgd_step,
        .adam_step = cpu_adam_step,
    };
    return be;
}
