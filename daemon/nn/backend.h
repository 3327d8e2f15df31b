/* The backend interface: every operation the engine runs on a device.
 *
 * Layers and models are written once above this table; the CPU backend
 * (nn/cpu) is the reference and the CUDA backend (nn/cuda) implements the
 * same contracts. All tensor pointers are device pointers of the backend
 * that owns them, dense, row-major, images in NCHW. Operations that produce
 * a parameter gradient accumulate into it (+=); operations that produce an
 * activation gradient overwrite it unless they take an `acc` flag, in which
 * case acc != 0 means +=. Every operation returns 0 or -1 with eg_errorf(). */
#ifndef EG_BACKEND_H
#define EG_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* Shape of one 2-D convolution (square stride and padding). */
typedef struct eg_conv_shape {
    int n, c, h, w;   /* input (N, C, H, W) */
    int k, r, s;      /* filters (K, C, R, S) */
    int stride, pad;
    int p, q;         /* output (N, K, P, Q) */
} eg_conv_shape;

/* Fills p and q from the rest; returns -1 if the output would be empty. */
int eg_conv_shape_finish(eg_conv_shape *cs);

/* Shape of a max pooling window over (N, C, H, W); output (N, C, P, Q).
 * pad rows and columns of -inf surround the input on each side (PyTorch's
 * padding, 0 <= pad <= size / 2); P = (H + 2 pad - size) / stride + 1. */
typedef struct eg_pool_shape {
    int n, c, h, w;
    int size, stride, pad;
    int p, q;
} eg_pool_shape;

/* Strided block sums (eg_backend.block_sum): for i < n0, j < n1, k < len
 *   y[i ys0 + j ys1 + k] (+)= alpha * sum over r < reps of
 *                              x[i xs0 + j xs1 + r xsr + k],
 * the sum over r in double, in order. With reps = 1 and alpha = 1 it is a
 * strided copy. Strides are in floats. */
typedef struct eg_blocks {
    int n0, n1, reps, len;
    size_t xs0, xs1, xsr;
    size_t ys0, ys1;
} eg_blocks;

/* A two-level batch of GEMMs (eg_backend.gemm_batched): matrix (i, j),
 * i < n0, j < n1, of A starts at a + i sa0 + j sa1 (floats), likewise B
 * and C, so the heads of a fused (tokens, 3 d) projection are addressed
 * in place: i the sequence, j the head. */
typedef struct eg_gemm_batch {
    int n0, n1;
    size_t sa0, sa1, sb0, sb1, sc0, sc1;
} eg_gemm_batch;

/* Noise vectors one noise_combine or noise_dots call handles. */
#define EG_NOISE_MAX 8

typedef struct eg_backend eg_backend;

struct eg_backend {
    const char *name;  /* "cpu", "cuda:0", ... */
    void *impl;        /* backend-private state */

    /* Memory statistics of this backend's allocator, in bytes. */
    size_t cur_bytes, peak_bytes;

    /* Nets on this backend keep only the activations between blocks and
     * recompute the others during backward (nn/net.h): less memory for
     * one more forward's arithmetic. Set by the backend (CUDA: on); may be
     * changed before nets are finished. */
    int recompute;

    /* ---- memory ---- */
    /* Returns zeroed device memory or NULL (with eg_errorf) when out of memory. */
    void *(*alloc)(eg_backend *be, size_t bytes);
    void (*free)(eg_backend *be, void *ptr);
    int (*upload)(eg_backend *be, void *dst, const void *host, size_t bytes);
    int (*download)(eg_backend *be, void *host, const void *src, size_t bytes);
    int (*copy)(eg_backend *be, void *dst, const void *src, size_t bytes);
    /* Waits for queued work; a no-op on the CPU. */
    int (*sync)(eg_backend *be);
    void (*destroy)(eg_backend *be);

    /* ---- captured work (CUDA graphs); NULL where the backend has none ---- */
    /* Between capture_begin and capture_end the operations called are
     * recorded, not run. capture_end returns the recording as a replayable
     * unit in *unit, or fails (and leaves *unit NULL) when something in it
     * cannot be recorded; either way nothing of it ran. A unit replays the
     * same operations on the same pointers and scalars. */
    int (*capture_begin)(eg_backend *be);
    int (*capture_end)(eg_backend *be, void **unit);
    int (*replay)(eg_backend *be, void *unit);
    void (*unit_free)(eg_backend *be, void *unit);
    /* Changes whenever units recorded before may refer to memory the
     * backend has since moved (its convolution workspace). */
    unsigned long capture_epoch;
    /* Network passes on this backend (nn/net_replay.c counts them): run
     * eagerly, recorded (and run as the unit just made), replayed from an
     * earlier recording, and the recordings that failed. */
    struct { unsigned long eager, recorded, replayed, failed; } passes;

    /* ---- dense algebra ---- */
    /* C (M, N) = alpha * op(A) op(B) + beta * C, row-major; op(A) is (M, K). */
    int (*gemm)(eg_backend *be, int trans_a, int trans_b, int m, int n, int k,
                float alpha, const float *a, int lda, const float *b, int ldb,
                float beta, float *c, int ldc);
    /* For each (i, j) of gb: C_ij = alpha op(A_ij) op(B_ij) + beta C_ij,
     * each as gemm() with the same dimensions and leading dimensions. */
    int (*gemm_batched)(eg_backend *be, const eg_gemm_batch *gb, int trans_a, int trans_b,
                        int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc);
    /* y (rows, cols, inner) += b (cols) broadcast over rows and inner. */
    int (*bias_add)(eg_backend *be, int rows, int cols, int inner, float *y,
                    const float *b);
    /* db (cols) += sum over rows and inner of dy (rows, cols, inner). */
    int (*bias_grad)(eg_backend *be, int rows, int cols, int inner,
                     const float *dy, float *db);

    /* ---- convolution ---- */
    /* y = conv(x, w); y (N, K, P, Q), x (N, C, H, W), w (K, C, R, S). */
    int (*conv_fwd)(eg_backend *be, const eg_conv_shape *cs, const float *x,
                    const float *w, float *y);
    /* dx (N, C, H, W) (+)= conv_transpose(dy, w). */
    int (*conv_bwd_data)(eg_backend *be, const eg_conv_shape *cs,
                         const float *w, const float *dy, float *dx, int acc);
    /* dw (K, C, R, S) += correlation of x with dy. */
    int (*conv_bwd_filter)(eg_backend *be, const eg_conv_shape *cs,
                           const float *x, const float *dy, float *dw);

    /* ---- batch normalisation over (N, C, HW), per channel ---- */
    /* Training mode: normalises with the batch statistics and stores the
     * batch mean and 1/sqrt(var + eps) in save_mean, save_invstd (C). If
     * run_mean is not NULL, running stats are updated with the unbiased
     * variance: run = (1 - momentum) run + momentum batch. */
    int (*bn_fwd_train)(eg_backend *be, int n, int c, int hw, const float *x,
                        const float *gamma, const float *beta, float *y,
                        float *run_mean, float *run_var, float momentum,
                        float eps, float *save_mean, float *save_invstd);
    /* Evaluation mode: normalises with the running statistics. */
    int (*bn_fwd_eval)(eg_backend *be, int n, int c, int hw, const float *x,
                       const float *gamma, const float *beta, float *y,
                       const float *run_mean, const float *run_var, float eps);
    /* Backward of the training-mode forward: dx is overwritten, dgamma and
     * dbeta (C) accumulate. */
    int (*bn_bwd)(eg_backend *be, int n, int c, int hw, const float *x,
                  const float *dy, const float *gamma, const float *save_mean,
                  const float *save_invstd, float *dx, float *dgamma,
                  float *dbeta);
    /* Backward of the evaluation-mode forward (running statistics are
     * constants): with s = 1 / sqrt(run_var + eps) and xhat = (x -
     * run_mean) s, dx = dy (gamma / sqrt(run_var + eps)) is overwritten
     * (skipped when NULL), dgamma += sum dy xhat, dbeta += sum dy (C). */
    int (*bn_bwd_eval)(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
                       const float *gamma, const float *run_mean, const float *run_var, float eps,
                       float *dx, float *dgamma, float *dbeta);

    /* ---- feature-wise transformation (LFT, Tseng et al. 2020) over (N, C,
     * HW): meta (2C) holds theta_gamma (C) then theta_beta (C), noise (2C)
     * the matching standard normal draws e; with sp(t) = softplus(t) at
     * beta 100 (PyTorch's: t when 100 t > 20, else log1p(exp(100 t)) /
     * 100), gamma_c = 1 + e_c sp(theta_gamma_c), beta_c = e_{C+c}
     * sp(theta_beta_c). ---- */
    /* y = gamma_c x + beta_c; y may not alias x. */
    int (*ft_fwd)(eg_backend *be, int n, int c, int hw, const float *x, const float *meta,
                  const float *noise, float *y);
    /* dx (N, C, HW) (+)= gamma_c dy when dx is not NULL; when dmeta (2C)
     * is not NULL, dmeta[c] += e_c sp'(theta_gamma_c) sum dy x and
     * dmeta[C + c] += e_{C+c} sp'(theta_beta_c) sum dy, sp' = sigmoid(100
     * t) (1 where 100 t > 20), the sums in double. */
    int (*ft_bwd)(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
                  const float *meta, const float *noise, float *dx, int acc, float *dmeta);

    /* ---- token encoders (transformers) ---- */
    /* Embedding lookup: y (n, d) (+)= table[ids[i]] (rows of d floats);
     * ids (n) int32 in device memory, each a valid row (callers check). */
    int (*embed_fwd)(eg_backend *be, int n, int d, const int32_t *ids, const float *table,
                     float *y, int acc);
    /* Its backward: dtable[ids[i]] += dy[i] (scatter-add; rows repeated in
     * ids add up) for every i with ids[i] != skip (PyTorch's padding_idx:
     * that row gets no gradient; skip = -1 for none). */
    int (*embed_bwd)(eg_backend *be, int n, int d, const int32_t *ids, int skip, const float *dy,
                     float *dtable);
    /* LayerNorm over the last dimension of x (n, d), per row: mean, rstd =
     * 1 / sqrt(biased var + eps) (in double, stored as float in save_mean,
     * save_rstd (n)), y = (x - mean) rstd gamma + beta; y may not alias x. */
    int (*layernorm_fwd)(eg_backend *be, int n, int d, const float *x, const float *gamma,
                         const float *beta, float eps, float *y, float *save_mean,
                         float *save_rstd);
    /* Its backward: with xhat = (x - mean) rstd and g = dy gamma,
     * dx (+)= rstd (g - mean_d(g) - xhat mean_d(g xhat)) (skipped when dx
     * is NULL), dgamma += sum_rows dy xhat, dbeta += sum_rows dy, the sums
     * in double. */
    int (*layernorm_bwd)(eg_backend *be, int n, int d, const float *x, const float *dy,
                         const float *gamma, const float *save_mean, const float *save_rstd,
                         float *dx, int acc, float *dgamma, float *dbeta);
    /* GELU, the erf form: y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2; y may
     * alias x. */
    int (*gelu_fwd)(eg_backend *be, size_t n, const float *x, float *y);
    /* dx = dy (Phi(x) + x phi(x)), from the forward's input x; dx may alias
     * dy. */
    int (*gelu_bwd)(eg_backend *be, size_t n, const float *x, const float *dy, float *dx);
    /* Softmax along rows of x (rows, cols), masked by length: row r sees
     * columns j < lens[r / group] (every column when lens is NULL; a
     * length outside [1, cols] counts as cols) and gets y = 0 elsewhere
     * (an attention padding mask: r / group is the sequence). y may alias
     * x. */
    int (*softmax_fwd)(eg_backend *be, int rows, int cols, int group, const int32_t *lens,
                       const float *x, float *y);
    /* dx = y (dy - sum_j y_j dy_j) per row, from the forward's output y
     * (masked entries, y = 0, get 0); dx may alias dy. */
    int (*softmax_bwd)(eg_backend *be, int rows, int cols, const float *y, const float *dy,
                       float *dx);
    /* Inverted dropout: y_i = x_i / (1 - p) where eg_dropout_keep(p, key,
     * stream, i) (nn/philox.h), else 0; the mask is a function of (key,
     * stream, i) only, so the same call is the forward and the backward
     * (x = dy, y = dx). 0 <= p < 1; y may alias x. */
    int (*dropout)(eg_backend *be, size_t n, float p, uint64_t key, uint64_t stream,
                   const float *x, float *y);

    /* MetaXL's representation transformation network's output gate: with
     * o (n, d + 1) per row, y (n, d) = h + sigmoid(o_d) o_0..d-1 (y may
     * alias h). */
    int (*rtn_gate_fwd)(eg_backend *be, int n, int d, const float *h, const float *o, float *y);
    /* Its backward to o from dy (n, d): do_j = s dy_j for j < d and do_d =
     * s (1 - s) sum_j dy_j o_j (the sum in double), s = sigmoid(o_d); do
     * (n, d + 1) is overwritten. (The gradient to h is dy itself.) */
    int (*rtn_gate_bwd)(eg_backend *be, int n, int d, const float *o, const float *dy, float *dout);

    /* ---- elementwise activations (y may alias x, dx may alias dy) ---- */
    int (*relu_fwd)(eg_backend *be, size_t n, const float *x, float *y);
    /* dx = dy * (y > 0), from the forward's output y. */
    int (*relu_bwd)(eg_backend *be, size_t n, const float *y, const float *dy,
                    float *dx);
    int (*sigmoid_fwd)(eg_backend *be, size_t n, const float *x, float *y);
    /* dx = dy * y (1 - y), from the forward's output y. */
    int (*sigmoid_bwd)(eg_backend *be, size_t n, const float *y,
                       const float *dy, float *dx);

    /* ---- pooling and shape ---- */
    int (*maxpool_fwd)(eg_backend *be, const eg_pool_shape *ps, const float *x,
                       float *y);
    /* dx (N, C, H, W) = routing of dy to each window's first maximum. */
    int (*maxpool_bwd)(eg_backend *be, const eg_pool_shape *ps, const float *x,
                       const float *y, const float *dy, float *dx);
    /* y (N, C) = mean over hw of x (N, C, hw). */
    int (*avgpool_fwd)(eg_backend *be, int n, int c, int hw, const float *x,
                       float *y);
    /* dx (N, C, hw) (+)= dy (N, C) / hw. */
    int (*avgpool_bwd)(eg_backend *be, int n, int c, int hw, const float *dy,
                       float *dx, int acc);
    /* y (+)= alpha * block sums of x (eg_blocks); y must not overlap x. */
    int (*block_sum)(eg_backend *be, const eg_blocks *bs, float alpha, const float *x, float *y,
                     int acc);
    /* Negative squared distances: out (M, N) = -sum_k (a_ik - b_jk)^2,
     * summed in double. Row i of a lives at a + ((i / group) gstride +
     * i % group) d: groups of `group` rows, `gstride` rows apart (group =
     * gstride = M for dense rows); b (N, d) is dense. */
    int (*sqdist_fwd)(eg_backend *be, int m, int n, int d, const float *a, int group, int gstride,
                      const float *b, float *out);
    /* Its backward from dout (M, N): da (rows laid out as a's) (+)=
     * sum_j -2 dout_ij (a_i - b_j), db (N, d) (+)= sum_i 2 dout_ij (a_i -
     * b_j), each summed in double; either may be NULL. */
    int (*sqdist_bwd)(eg_backend *be, int m, int n, int d, const float *a, int group, int gstride,
                      const float *b, const float *dout, float *da, float *db, int acc);
    /* ResNet option-A shortcut: y (N, co, H/stride, W/stride) += x
     * subsampled by stride and zero-padded with (co - ci) / 2 channels on
     * each side; x (N, ci, H, W). */
    int (*shortcut_fwd)(eg_backend *be, int n, int ci, int h, int w, int co,
                        int stride, const float *x, float *y);
    /* dx (N, ci, H, W) (+)= the shortcut's transpose applied to dy. */
    int (*shortcut_bwd)(eg_backend *be, int n, int ci, int h, int w, int co,
                        int stride, const float *dy, float *dx, int acc);

    /* ---- loss ---- */
    /* Softmax cross-entropy per sample: loss (N) = -log softmax(logits)[y],
     * probs (N, classes) = softmax(logits); labels (N) are int32 class
     * indices in device memory. */
    int (*xent_fwd)(eg_backend *be, int n, int classes, const float *logits,
                    const int32_t *labels, float *loss, float *probs);
    /* dlogits (N, classes) = scale * weight[i] * (probs - onehot(labels));
     * weight (N) may be NULL for all ones. */
    int (*xent_bwd)(eg_backend *be, int n, int classes, const float *probs,
                    const int32_t *labels, const float *weight, float scale,
                    float *dlogits);

    /* ---- image rotation (affine_grid + grid_sample, bilinear, zeros
     * padding, align_corners = false) ---- */
    /* y (N, C, H, W) = x rotated by angle[0] radians, angle on the device. */
    int (*rotate_fwd)(eg_backend *be, int n, int c, int h, int w,
                      const float *angle, const float *x, float *y);
    /* dx (may be NULL) = the transpose of the sampling applied to dy;
     * dangle[0] += d(sum dy * y)/d angle. */
    int (*rotate_bwd)(eg_backend *be, int n, int c, int h, int w,
                      const float *angle, const float *x, const float *dy,
                      float *dx, float *dangle);

    /* ---- flat vectors (parameter arenas) ---- */
    int (*fill)(eg_backend *be, size_t n, float value, float *x);
    /* y += alpha * x */
    int (*axpy)(eg_backend *be, size_t n, float alpha, const float *x, float *y);
    int (*scale)(eg_backend *be, size_t n, float alpha, float *x);
    /* *out = x . y, accumulated in double. */
    int (*dot)(eg_backend *be, size_t n, const float *x, const float *y,
               double *out);

    /* ---- Philox noise over flat vectors, fused over up to EG_NOISE_MAX
     * vectors: e_j is the noise vector of (key, streams[j]), Rademacher
     * signs e_j[i] = eg_rademacher(key, streams[j], i) (nn/philox.h), or
     * with `gaussian` set the standard normal e_j[i] =
     * (float)eg_gaussian(key, streams[j], i). 1 <= k <= EG_NOISE_MAX. ---- */
    /* y = x + alpha[0] e_0 + ... + alpha[k-1] e_{k-1}, the terms added left
     * to right in float (the bits of a copy and k axpys); y may alias x. */
    int (*noise_combine)(eg_backend *be, size_t n, int gaussian, uint64_t key, int k,
                         const uint64_t *streams, const float *alpha, const float *x,
                         float *y);
    /* out[j] = e_j . g for j < k, each accumulated in double, g read once
     * for all of them. */
    int (*noise_dots)(eg_backend *be, size_t n, int gaussian, uint64_t key, int k,
                      const uint64_t *streams, const float *g, double *out);

    /* ---- optimiser steps over flat arenas ---- */
    /* PyTorch SGD: g = grad + wd theta; buf = momentum buf + g (buf = g on
     * the first step, signalled by first != 0); step = nesterov ? g +
     * momentum buf : buf; theta -= lr step. buf may be NULL if momentum = 0. */
    int (*sgd_step)(eg_backend *be, size_t n, float *theta, const float *grad,
                    float *buf, float lr, float momentum, float wd,
                    int nesterov, int first);
    /* PyTorch Adam (L2 weight decay folded into the gradient); t >= 1 is the
     * step number after this update. */
    int (*adam_step)(eg_backend *be, size_t n, float *theta, const float *grad,
                     float *m, float *v, float lr, float beta1, float beta2,
                     float eps, float wd, int t);
};

/* The scalars of one Adam step, as torch.optim.Adam computes them: the
 * bias corrections in double, then rounded to float. */
typedef struct eg_adam_scalars {
    float neg_step;  /* -lr / (1 - beta1^t) */
    float bc2_sqrt;  /* sqrt(1 - beta2^t) */
    float c1, c2;    /* 1 - beta1, 1 - beta2 */
} eg_adam_scalars;

/* Fills *out for step t; -1 with eg_errorf when t < 1, a moment buffer is
 * missing or the betas give no bias correction. Shared by the backends'
 * adam_step so they check and round alike. */
int eg_adam_scalars_get(float lr, float beta1, float beta2, int t, const float *m,
                        const float *v, eg_adam_scalars *out);

/* Creates the CPU backend (OpenBLAS); NULL with eg_errorf on failure. */
eg_backend *eg_cpu_backend_create(void);

/* Allocates n floats on be; NULL with eg_errorf when out of memory. */
float *eg_alloc_floats(eg_backend *be, size_t n);

#endif
