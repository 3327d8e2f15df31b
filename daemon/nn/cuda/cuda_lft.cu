/* The operations of cross-domain few-shot learning with feature-wise
 * transformations on the CUDA backend, mirroring nn/cpu/cpu_norm.c (FT,
 * BatchNorm's evaluation-mode backward, which cuDNN's training backward does
 * not cover), nn/cpu/cpu_pool.c (max pooling with padding; cuDNN serves the
 * unpadded case) and nn/cpu/cpu_fewshot.c (strided block sums, squared
 * distances).
 *
 * Every output element is written by one thread, sums run in double in the
 * CPU's order where one thread owns them and in cu_block_sum's fixed tree
 * where a block does, and float arithmetic is spelled with rounding
 * intrinsics, so results are deterministic and match the CPU's up to the
 * last bits of expf and log1pf. */
#include <math.h>

#include "cuda_impl.h"

/* ---- feature-wise transformation ---- */

/* softplus at beta 100 with PyTorch's threshold 20. */
static __device__ __forceinline__ float sp100(float t)
{
    float z = __fmul_rn(t, 100.0f);
    return z > 20.0f ? t : __fdiv_rn(log1pf(expf(z)), 100.0f);
}

/* Its derivative as PyTorch's backward computes it. */
static __device__ __forceinline__ float sp100_grad(float t)
{
    float z = __fmul_rn(t, 100.0f);
    if (z > 20.0f) return 1.0f;
    float e = expf(z);
    return __fdiv_rn(e, __fadd_rn(e, 1.0f));
}

static __device__ __forceinline__ float ft_gamma(const float *meta, const float *noise, int ch)
{
    return __fadd_rn(1.0f, __fmul_rn(noise[ch], sp100(meta[ch])));
}

/* y = gamma_c x + beta_c, one thread per element of (N, C, HW). */
static __global__ void ft_fwd_kernel(size_t total, int c, int hw, const float *x, const float *meta,
                                     const float *noise, float *y)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int ch = (int)((i / (size_t)hw) % (size_t)c);
        float g = ft_gamma(meta, noise, ch);
        float b = __fmul_rn(noise[c + ch], sp100(meta[c + ch]));
        y[i] = __fadd_rn(__fmul_rn(g, x[i]), b);
    }
}

/* dx (+)= gamma_c dy, one thread per element. */
static __global__ void ft_bwd_data_kernel(size_t total, int c, int hw, const float *dy,
                                          const float *meta, const float *noise, float *dx, int acc)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int ch = (int)((i / (size_t)hw) % (size_t)c);
        float v = __fmul_rn(ft_gamma(meta, noise, ch), dy[i]);
        dx[i] = acc ? __fadd_rn(dx[i], v) : v;
    }
}

/* Per-channel sums of dy (x - m) and dy over (N, HW) in double, one block
 * per channel (thread t takes elements t, t + CU_THREADS, ...); m is the
 * channel's mean (NULL: 0). Thread 0 gets both totals. */
static __device__ void channel_grad_sums(int n, int c, int hw, const float *x, const float *dy,
                                         const float *mean, double *sdyx, double *sdy)
{
    int ch = blockIdx.x;
    double m = mean ? (double)mean[ch] : 0.0, a = 0, b = 0;
    size_t count = (size_t)n * (size_t)hw;
    for (size_t e = threadIdx.x; e < count; e += CU_THREADS) {
        size_t i = ((e / (size_t)hw) * c + ch) * (size_t)hw + e % (size_t)hw;
        double g = dy[i];
        a += g * ((double)x[i] - m);
        b += g;
    }
    a = cu_block_sum(a);
    *sdyx = a;
    b = cu_block_sum(b);
    *sdy = b;
}

/* dmeta[c] += e_c sp'(theta_c) sum dy x, dmeta[C + c] += e_{C+c}
 * sp'(theta_{C+c}) sum dy: one block per channel. */
static __global__ void ft_bwd_meta_kernel(int n, int c, int hw, const float *x, const float *dy,
                                          const float *meta, const float *noise, float *dmeta)
{
    double sdyx, sdy;
    channel_grad_sums(n, c, hw, x, dy, NULL, &sdyx, &sdy);
    if (threadIdx.x == 0) {
        int ch = blockIdx.x;
        float gg = __fmul_rn(__fmul_rn(noise[ch], sp100_grad(meta[ch])), (float)sdyx);
        float gb = __fmul_rn(__fmul_rn(noise[c + ch], sp100_grad(meta[c + ch])), (float)sdy);
        dmeta[ch] = __fadd_rn(dmeta[ch], gg);
        dmeta[c + ch] = __fadd_rn(dmeta[c + ch], gb);
    }
}

int cuda_ft_fwd(eg_backend *be, int n, int c, int hw, const float *x, const float *meta,
                const float *noise, float *y)
{
    if (n <= 0 || c <= 0 || hw <= 0) return 0;
    size_t total = (size_t)n * c * hw;
    ft_fwd_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(total, c, hw, x, meta,
                                                                        noise, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_ft_bwd(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
                const float *meta, const float *noise, float *dx, int acc, float *dmeta)
{
    if (n <= 0 || c <= 0 || hw <= 0) return 0;
    size_t total = (size_t)n * c * hw;
    if (dmeta) {
        ft_bwd_meta_kernel<<<(unsigned)c, CU_THREADS, 0, cuda_stream(be)>>>(n, c, hw, x, dy, meta,
                                                                            noise, dmeta);
        CU_CHECK_LAUNCH();
    }
    if (dx) {
        ft_bwd_data_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(
            total, c, hw, dy, meta, noise, dx, acc);
        CU_CHECK_LAUNCH();
    }
    return 0;
}

/* ---- BatchNorm, evaluation-mode backward ---- */

/* dx = dy (gamma / sqrt(var + eps)), one thread per element. */
static __global__ void bn_eval_dx_kernel(size_t total, int c, int hw, const float *dy,
                                         const float *gamma, const float *var, float eps, float *dx)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int ch = (int)((i / (size_t)hw) % (size_t)c);
        float scale = __fdiv_rn(gamma[ch], __fsqrt_rn(__fadd_rn(var[ch], eps)));
        dx[i] = __fmul_rn(dy[i], scale);
    }
}

/* dgamma += (sum dy (x - mean)) / sqrt(var + eps), dbeta += sum dy: one
 * block per channel. */
static __global__ void bn_eval_params_kernel(int n, int c, int hw, const float *x, const float *dy,
                                             const float *mean, const float *var, float eps,
                                             float *dgamma, float *dbeta)
{
    double sdyx, sdy;
    channel_grad_sums(n, c, hw, x, dy, mean, &sdyx, &sdy);
    if (threadIdx.x == 0) {
        int ch = blockIdx.x;
        float is = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(var[ch], eps)));
        dgamma[ch] = __fadd_rn(dgamma[ch], (float)(sdyx * is));
        dbeta[ch] = __fadd_rn(dbeta[ch], (float)sdy);
    }
}

int cuda_bn_bwd_eval(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
                     const float *gamma, const float *run_mean, const float *run_var, float eps,
                     float *dx, float *dgamma, float *dbeta)
{
    if (n <= 0 || c <= 0 || hw <= 0) return 0;
    size_t total = (size_t)n * c * hw;
    bn_eval_params_kernel<<<(unsigned)c, CU_THREADS, 0, cuda_stream(be)>>>(
        n, c, hw, x, dy, run_mean, run_var, eps, dgamma, dbeta);
    CU_CHECK_LAUNCH();
    if (dx) {
        bn_eval_dx_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(
            total, c, hw, dy, gamma, run_var, eps, dx);
        CU_CHECK_LAUNCH();
    }
    return 0;
}

/* ---- max pooling with padding (-inf) ---- */

/* The rows [*a0, *a1) and columns [*b0, *b1) of output (i, j)'s window
 * inside the input. */
static __device__ __forceinline__ void pool_window(const eg_pool_shape ps, int i, int j, int *a0,
                                                   int *a1, int *b0, int *b1)
{
    int r = i * ps.stride - ps.pad, q = j * ps.stride - ps.pad;
    *a0 = r < 0 ? 0 : r;
    *a1 = r + ps.size > ps.h ? ps.h : r + ps.size;
    *b0 = q < 0 ? 0 : q;
    *b1 = q + ps.size > ps.w ? ps.w : q + ps.size;
}

/* y = the window's maximum, one thread per output element. */
static __global__ void maxpool_pad_fwd_kernel(size_t total, eg_pool_shape ps, const float *x,
                                              float *y)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        int j = (int)(o % (size_t)ps.q), i = (int)((o / (size_t)ps.q) % (size_t)ps.p);
        const float *xp = x + (o / ((size_t)ps.p * ps.q)) * (size_t)ps.h * ps.w; // (H, W)
        int a0, a1, b0, b1;
        pool_window(ps, i, j, &a0, &a1, &b0, &b1);
        float m = xp[(size_t)a0 * ps.w + b0];
        for (int a = a0; a < a1; a++)
            for (int b = b0; b < b1; b++) m = fmaxf(m, xp[(size_t)a * ps.w + b]);
        y[o] = m;
    }
}

/* dx = the sum of dy over the windows whose first maximum (row-major, as
 * the CPU and PyTorch route) is this element, in the CPU's order: one
 * thread per input element, no atomics. */
static __global__ void maxpool_pad_bwd_kernel(size_t total, eg_pool_shape ps, const float *x,
                                              const float *y, const float *dy, float *dx)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        int col = (int)(e % (size_t)ps.w), row = (int)((e / (size_t)ps.w) % (size_t)ps.h);
        size_t plane = e / ((size_t)ps.h * ps.w);
        const float *xp = x + plane * (size_t)ps.h * ps.w;   // (H, W)
        const float *yp = y + plane * (size_t)ps.p * ps.q;   // (P, Q)
        const float *dyp = dy + plane * (size_t)ps.p * ps.q; // (P, Q)
        /* Outputs i with i stride - pad <= row < i stride - pad + size. */
        int i0 = row + ps.pad - ps.size + 1, i1 = (row + ps.pad) / ps.stride;
        int j0 = col + ps.pad - ps.size + 1, j1 = (col + ps.pad) / ps.stride;
        i0 = i0 > 0 ? (i0 + ps.stride - 1) / ps.stride : 0;
        j0 = j0 > 0 ? (j0 + ps.stride - 1) / ps.stride : 0;
        if (i1 > ps.p - 1) i1 = ps.p - 1;
        if (j1 > ps.q - 1) j1 = ps.q - 1;
        float g = 0.0f;
        for (int i = i0; i <= i1; i++)
            for (int j = j0; j <= j1; j++) {
                int a0, a1, b0, b1;
                pool_window(ps, i, j, &a0, &a1, &b0, &b1);
                float m = yp[i * ps.q + j];
                int first = -1;
                for (int a = a0; a < a1 && first < 0; a++)
                    for (int b = b0; b < b1; b++)
                        if (xp[(size_t)a * ps.w + b] == m) {
                            first = a * ps.w + b;
                            break;
                        }
                if (first == row * ps.w + col) g = __fadd_rn(g, dyp[i * ps.q + j]);
            }
        dx[e] = g;
    }
}

int cuda_maxpool_pad_fwd(eg_backend *be, const eg_pool_shape *ps, const float *x, float *y)
{
    size_t total = (size_t)ps->n * ps->c * ps->p * ps->q;
    if (!total) return 0;
    maxpool_pad_fwd_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(total, *ps, x, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_maxpool_pad_bwd(eg_backend *be, const eg_pool_shape *ps, const float *x, const float *y,
                         const float *dy, float *dx)
{
    size_t total = (size_t)ps->n * ps->c * ps->h * ps->w;
    if (!total) return 0;
    maxpool_pad_bwd_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(total, *ps, x, y,
                                                                                 dy, dx);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- strided block sums ---- */

/* One thread per output element (i, j, k): the sum over r in double, in
 * order, as cpu_block_sum. */
static __global__ void block_sum_kernel(size_t total, eg_blocks bs, float alpha, const float *x,
                                        float *y, int acc)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        size_t k = e % (size_t)bs.len, o = e / (size_t)bs.len;
        size_t i = o / (size_t)bs.n1, j = o % (size_t)bs.n1;
        const float *xp = x + i * bs.xs0 + j * bs.xs1 + k;
        double s = 0;
        for (int r = 0; r < bs.reps; r++) s += xp[(size_t)r * bs.xsr];
        float v = (float)(s * alpha);
        float *yp = y + i * bs.ys0 + j * bs.ys1 + k;
        *yp = acc ? __fadd_rn(*yp, v) : v;
    }
}

int cuda_block_sum(eg_backend *be, const eg_blocks *bs, float alpha, const float *x, float *y,
                   int acc)
{
    size_t total = (size_t)bs->n0 * bs->n1 * bs->len;
    if (!total || bs->n0 < 0 || bs->n1 < 0 || bs->len < 0) return 0;
    block_sum_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(total, *bs, alpha, x, y,
                                                                           acc);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- negative squared distances ---- */

static __device__ __forceinline__ size_t grouped_row(int i, int group, int gstride)
{
    return (size_t)(i / group) * gstride + i % group;
}

/* out (M, N): one thread per element, the CPU's order and roundings. */
static __global__ void sqdist_fwd_kernel(int m, int n, int d, const float *a, int group,
                                         int gstride, const float *b, float *out)
{
    size_t total = (size_t)m * n, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        int i = (int)(e / (size_t)n), j = (int)(e % (size_t)n);
        const float *ap = a + grouped_row(i, group, gstride) * d, *bp = b + (size_t)j * d;
        double s = 0;
        for (int k = 0; k < d; k++) {
            double t = __dsub_rn((double)ap[k], (double)bp[k]);
            s = __dadd_rn(s, __dmul_rn(t, t));
        }
        out[e] = (float)-s;
    }
}

/* da (rows as a's) (+)= sum_j -2 dout_ij (a_i - b_j): one thread per (i, k). */
static __global__ void sqdist_bwd_a_kernel(int m, int n, int d, const float *a, int group,
                                           int gstride, const float *b, const float *dout,
                                           float *da, int acc)
{
    size_t total = (size_t)m * d, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        int i = (int)(e / (size_t)d), k = (int)(e % (size_t)d);
        size_t at = grouped_row(i, group, gstride) * d + k;
        double s = 0;
        for (int j = 0; j < n; j++) {
            double t = __dsub_rn((double)a[at], (double)b[(size_t)j * d + k]);
            s = __dadd_rn(s, __dmul_rn(__dmul_rn(-2.0, (double)dout[(size_t)i * n + j]), t));
        }
        da[at] = acc ? __fadd_rn(da[at], (float)s) : (float)s;
    }
}

/* db (N, d) (+)= sum_i 2 dout_ij (a_i - b_j): one thread per (j, k). */
static __global__ void sqdist_bwd_b_kernel(int m, int n, int d, const float *a, int group,
                                           int gstride, const float *b, const float *dout,
                                           float *db, int acc)
{
    size_t total = (size_t)n * d, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        int j = (int)(e / (size_t)d), k = (int)(e % (size_t)d);
        double s = 0;
        for (int i = 0; i < m; i++) {
            double t = __dsub_rn((double)a[grouped_row(i, group, gstride) * d + k], (double)b[e]);
            s = __dadd_rn(s, __dmul_rn(__dmul_rn(2.0, (double)dout[(size_t)i * n + j]), t));
        }
        db[e] = acc ? __fadd_rn(db[e], (float)s) : (float)s;
    }
}

int cuda_sqdist_fwd(eg_backend *be, int m, int n, int d, const float *a, int group, int gstride,
                    const float *b, float *out)
{
    if (m <= 0 || n <= 0) return 0;
    if (group < 1) return eg_errorf("sqdist: row groups of %d", group);
    sqdist_fwd_kernel<<<cu_blocks((size_t)m * n), CU_THREADS, 0, cuda_stream(be)>>>(
        m, n, d, a, group, gstride, b, out);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_sqdist_bwd(eg_backend *be, int m, int n, int d, const float *a, int group, int gstride,
                    const float *b, const float *dout, float *da, float *db, int acc)
{
    if (m <= 0 || n <= 0 || d <= 0) return 0;
    if (group < 1) return eg_errorf("sqdist: row groups of %d", group);
    if (da) {
        sqdist_bwd_a_kernel<<<cu_blocks((size_t)m * d), CU_THREADS, 0, cuda_stream(be)>>>(
            m, n, d, a, group, gstride, b, dout, da, acc);
        CU_CHECK_LAUNCH();
    }
    if (db) {
        sqdist_bwd_b_kernel<<<cu_blocks((size_t)n * d), CU_THREADS, 0, cuda_stream(be)>>>(
            m, n, d, a, group, gstride, b, dout, db, acc);
        CU_CHECK_LAUNCH();
    }
    return 0;
}
