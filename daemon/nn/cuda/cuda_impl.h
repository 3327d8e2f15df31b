/* Internals of the CUDA backend, shared by its .cu files: the backend's
 * state, the one check macro for CUDA, cuBLAS and cuDNN calls, launch
 * geometry, and the operations each file puts in the eg_backend table
 * (contracts in nn/backend.h).
 *
 * Every operation is queued on the backend's one stream; results that come
 * back to the host (dot products) wait for it. A backend is used by one
 * thread, the one that created it (a daemon worker runs a job's whole life
 * on its thread), which made its device current. A failed call records an
 * error with eg_errorf and returns -1, so the job fails and the process
 * goes on. */
#ifndef EG_CUDA_IMPL_H
#define EG_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "nn/backend.h"
#include "nn/device.h"
#include "util/err.h"
}

/* ---- errors ---- */

/* 0 when the status is success; otherwise records "cuda: EXPR failed at
 * FILE:LINE: MESSAGE" and returns -1. One overload per library so a single
 * macro checks every call. */
int cuda_status(cudaError_t e, const char *expr, const char *file, int line);
int cuda_status(cublasStatus_t e, const char *expr, const char *file, int line);
int cuda_status(cudnnStatus_t e, const char *expr, const char *file, int line);

/* Evaluates a CUDA, cuBLAS or cuDNN call; returns -1 from the caller if it
 * failed. */
#define CU_CHECK(call)                                                         \
    do {                                                                       \
        if (cuda_status((call), #call, __FILE__, __LINE__) != 0) return -1;    \
    } while (0)

/* Checks the launch just queued (bad configuration, sticky errors). */
#define CU_CHECK_LAUNCH() CU_CHECK(cudaGetLastError())

/* ---- launch geometry ---- */

#define CU_THREADS 256

/* Blocks for a grid-stride loop over n elements: enough to fill the GPU,
 * never more than one per CU_THREADS elements, at least 1. */
static inline unsigned cu_blocks(size_t n)
{
    size_t b = (n + CU_THREADS - 1) / CU_THREADS;
    if (b > 8192) b = 8192;
    return b ? (unsigned)b : 1u;
}

/* Adds v over the CU_THREADS threads of the block in a fixed tree order,
 * so the result does not depend on timing; thread 0 gets the total (the
 * others partial sums). Every thread of the block must call it. */
static __device__ __forceinline__ double cu_block_sum(double v)
{
    __shared__ double s[CU_THREADS];
    unsigned t = threadIdx.x;
    s[t] = v;
    __syncthreads();
    for (unsigned off = CU_THREADS / 2; off > 0; off >>= 1) {
        if (t < off) s[t] += s[t + off];
        __syncthreads();
    }
    return s[t];
}

/* ---- the backend's state ---- */

/* The caching allocator (cuda_alloc.cu): freed blocks are kept for reuse
 * by allocations of the same rounded size, stream-ordered on the one
 * stream; cudaMalloc failures release the cache and retry once. */
typedef struct cuda_block {
    void *ptr;
    size_t bytes; /* rounded size */
    int used;
} cuda_block;

typedef struct cuda_pool {
    cuda_block *blocks;
    size_t n, cap;
    size_t reserved_bytes; /* held from the driver, used or cached */
} cuda_pool;

struct cuda_conv_plan;

/* cuBLAS's workspace. */
#define BLAS_WORKSPACE ((size_t)4 << 20)

/* Room for the partial sums of one reduction (cuda_vec.cu). */
#define CU_MAX_PARTS 1024

typedef struct cuda_impl {
    int ordinal;
    char name[16];               /* "cuda:N" */
    eg_device_options opt;
    cudaStream_t stream;
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    cuda_pool pool;
    void *work;                  /* cuDNN workspace, from the pool */
    size_t work_bytes;
    void *blas_work;             /* cuBLAS's workspace (BLAS_WORKSPACE), from the
                                    pool, so captured GEMMs allocate nothing */
    double *parts;               /* (CU_MAX_PARTS) reduction partials, device */
    double *result_host;         /* (EG_NOISE_MAX) pinned host words for reduction results */
    struct cuda_conv_plan *plans; /* cached convolution plans (cuda_dnn.cu) */
    cudnnTensorDescriptor_t t_a, t_b; /* scratch descriptors */
    cudnnPoolingDescriptor_t pool_desc;
} cuda_impl;

static inline cuda_impl *cuda_of(eg_backend *be) { return (cuda_impl *)be->impl; }
static inline cudaStream_t cuda_stream(eg_backend *be) { return cuda_of(be)->stream; }

/* ---- cuda_alloc.cu ---- */
void *cuda_alloc(eg_backend *be, size_t bytes);
void cuda_free(eg_backend *be, void *ptr);
/* Returns every cached block to the driver (after the stream drains). */
void cuda_pool_trim(eg_backend *be);
void cuda_pool_destroy(eg_backend *be);
/* A workspace of at least `bytes` (grown through the pool), or NULL. When
 * it moves, be->capture_epoch changes: recorded units refer to the old one. */
void *cuda_workspace(eg_backend *be, size_t bytes);

/* ---- cuda_graph.cu: the capture hooks of nn/backend.h ---- */
int cuda_capture_begin(eg_backend *be);
int cuda_capture_end(eg_backend *be, void **unit);
int cuda_replay(eg_backend *be, void *unit);
void cuda_unit_free(eg_backend *be, void *unit);

/* ---- cuda_blas.cu ---- */
int cuda_gemm(eg_backend *be, int trans_a, int trans_b, int m, int n, int k,
              float alpha, const float *a, int lda, const float *b, int ldb,
              float beta, float *c, int ldc);

/* ---- cuda_dnn.cu: convolution, batchnorm, pooling ---- */
int cuda_dnn_init(eg_backend *be);
void cuda_dnn_destroy(eg_backend *be);
int cuda_conv_fwd(eg_backend *be, const eg_conv_shape *cs, const float *x,
                  const float *w, float *y);
int cuda_conv_bwd_data(eg_backend *be, const eg_conv_shape *cs, const float *w,
                       const float *dy, float *dx, int acc);
int cuda_conv_bwd_filter(eg_backend *be, const eg_conv_shape *cs,
                         const float *x, const float *dy, float *dw);
int cuda_bn_fwd_train(eg_backend *be, int n, int c, int hw, const float *x,
                      const float *gamma, const float *beta, float *y,
                      float *run_mean, float *run_var, float momentum,
                      float eps, float *save_mean, float *save_invstd);
int cuda_bn_fwd_eval(eg_backend *be, int n, int c, int hw, const float *x,
                     const float *gamma, const float *beta, float *y,
                     const float *run_mean, const float *run_var, float eps);
int cuda_bn_bwd(eg_backend *be, int n, int c, int hw, const float *x,
                const float *dy, const float *gamma, const float *save_mean,
                const float *save_invstd, float *dx, float *dgamma,
                float *dbeta);
/* ---- cuda_lft.cu: FT, BN's evaluation-mode backward, padded max pooling,
 * block sums, squared distances ---- */
int cuda_ft_fwd(eg_backend *be, int n, int c, int hw, const float *x, const float *meta,
                const float *noise, float *y);
int cuda_ft_bwd(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
                const float *meta, const float *noise, float *dx, int acc, float *dmeta);
int cuda_bn_bwd_eval(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
                     const float *gamma, const float *run_mean, const float *run_var, float eps,
                     float *dx, float *dgamma, float *dbeta);
/* Max pooling with ps->pad > 0 (cuDNN's pooling serves pad 0). */
int cuda_maxpool_pad_fwd(eg_backend *be, const eg_pool_shape *ps, const float *x, float *y);
int cuda_maxpool_pad_bwd(eg_backend *be, const eg_pool_shape *ps, const float *x, const float *y,
                         const float *dy, float *dx);
int cuda_block_sum(eg_backend *be, const eg_blocks *bs, float alpha, const float *x, float *y,
                   int acc);
int cuda_sqdist_fwd(eg_backend *be, int m, int n, int d, const float *a, int group, int gstride,
                    const float *b, float *out);
int cuda_sqdist_bwd(eg_backend *be, int m, int n, int d, const float *a, int group, int gstride,
                    const float *b, const float *dout, float *da, float *db, int acc);

/* ---- cuda_text.cu: token encoders (batched GEMMs, embeddings,
 * LayerNorm, GELU, masked softmax, dropout) and MetaXL's RTN gate ---- */
int cuda_gemm_batched(eg_backend *be, const eg_gemm_batch *gb, int trans_a, int trans_b, int m,
                      int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                      float beta, float *c, int ldc);
int cuda_embed_fwd(eg_backend *be, int n, int d, const int32_t *ids, const float *table, float *y,
                   int acc);
int cuda_embed_bwd(eg_backend *be, int n, int d, const int32_t *ids, int skip, const float *dy,
                   float *dtable);
int cuda_layernorm_fwd(eg_backend *be, int n, int d, const float *x, const float *gamma,
                       const float *beta, float eps, float *y, float *save_mean, float *save_rstd);
int cuda_layernorm_bwd(eg_backend *be, int n, int d, const float *x, const float *dy,
                       const float *gamma, const float *save_mean, const float *save_rstd,
                       float *dx, int acc, float *dgamma, float *dbeta);
int cuda_gelu_fwd(eg_backend *be, size_t n, const float *x, float *y);
int cuda_gelu_bwd(eg_backend *be, size_t n, const float *x, const float *dy, float *dx);
int cuda_softmax_fwd(eg_backend *be, int rows, int cols, int group, const int32_t *lens,
                     const float *x, float *y);
int cuda_softmax_bwd(eg_backend *be, int rows, int cols, const float *y, const float *dy,
                     float *dx);
int cuda_dropout(eg_backend *be, size_t n, float p, uint64_t key, uint64_t stream, const float *x,
                 float *y);
int cuda_rtn_gate_fwd(eg_backend *be, int n, int d, const float *h, const float *o, float *y);
int cuda_rtn_gate_bwd(eg_backend *be, int n, int d, const float *o, const float *dy, float *dout);

/* ---- cuda_act.cu ---- */
int cuda_relu_fwd(eg_backend *be, size_t n, const float *x, float *y);
int cuda_relu_bwd(eg_backend *be, size_t n, const float *y, const float *dy,
                  float *dx);
int cuda_sigmoid_fwd(eg_backend *be, size_t n, const float *x, float *y);
int cuda_sigmoid_bwd(eg_backend *be, size_t n, const float *y,
                     const float *dy, float *dx);
int cuda_maxpool_fwd(eg_backend *be, const eg_pool_shape *ps, const float *x,
                     float *y);
int cuda_maxpool_bwd(eg_backend *be, const eg_pool_shape *ps, const float *x,
                     const float *y, const float *dy, float *dx);

/* ---- cuda_elem.cu: bias, global average pooling, shortcut, loss ---- */
int cuda_bias_add(eg_backend *be, int rows, int cols, int inner, float *y,
                  const float *b);
int cuda_bias_grad(eg_backend *be, int rows, int cols, int inner,
                   const float *dy, float *db);
int cuda_avgpool_fwd(eg_backend *be, int n, int c, int hw, const float *x,
                     float *y);
int cuda_avgpool_bwd(eg_backend *be, int n, int c, int hw, const float *dy,
                     float *dx, int acc);
int cuda_shortcut_fwd(eg_backend *be, int n, int ci, int h, int w, int co,
                      int stride, const float *x, float *y);
int cuda_shortcut_bwd(eg_backend *be, int n, int ci, int h, int w, int co,
                      int stride, const float *dy, float *dx, int acc);
int cuda_xent_fwd(eg_backend *be, int n, int classes, const float *logits,
                  const int32_t *labels, float *loss, float *probs);
int cuda_xent_bwd(eg_backend *be, int n, int classes, const float *probs,
                  const int32_t *labels, const float *weight, float scale,
                  float *dlogits);

/* ---- cuda_rotate.cu ---- */
int cuda_rotate_fwd(eg_backend *be, int n, int c, int h, int w,
                    const float *angle, const float *x, float *y);
int cuda_rotate_bwd(eg_backend *be, int n, int c, int h, int w,
                    const float *angle, const float *x, const float *dy,
                    float *dx, float *dangle);

/* ---- cuda_vec.cu: flat vectors, Philox noise, optimisers, reductions ---- */
int cuda_fill(eg_backend *be, size_t n, float value, float *x);
int cuda_axpy(eg_backend *be, size_t n, float alpha, const float *x, float *y);
int cuda_scale(eg_backend *be, size_t n, float alpha, float *x);
int cuda_dot(eg_backend *be, size_t n, const float *x, const float *y,
             double *out);
int cuda_noise_combine(eg_backend *be, size_t n, int gaussian, uint64_t key, int k,
                       const uint64_t *streams, const float *alpha, const float *x, float *y);
int cuda_noise_dots(eg_backend *be, size_t n, int gaussian, uint64_t key, int k,
                    const uint64_t *streams, const float *g, double *out);
int cuda_sgd_step(eg_backend *be, size_t n, float *theta, const float *grad,
                  float *buf, float lr, float momentum, float wd, int nesterov,
                  int first);
int cuda_adam_step(eg_backend *be, size_t n, float *theta, const float *grad,
                   float *m, float *v, float lr, float beta1, float beta2,
                   float eps, float wd, int t);

/* *acc (device, float) += the sum of parts[0 .. nparts) of cuda_of(be)->parts
 * in index order (one thread, deterministic), without waiting. parts
 * serves one reduction at a time. */
int cuda_parts_accumulate(eg_backend *be, int nparts, float *acc);

#endif
