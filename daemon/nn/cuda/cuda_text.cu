/* The token-encoder operations on the CUDA backend, mirroring
 * nn/cpu/cpu_text.c: batched GEMMs over attention heads, embeddings,
 * LayerNorm, GELU, masked softmax, Philox dropout and the output gate
 * of MetaXL's representation transformation network.
 *
 * Every output element is written by one thread, except embed_bwd's
 * scatter-add (atomics, see there). Row sums run in double in a fixed
 * order (cu_block_sum's tree for a LayerNorm row, a warp butterfly for a
 * softmax or gate row), column sums in double in a fixed order too, and float
 * arithmetic is spelled with rounding intrinsics, which nvcc never fuses,
 * so results are deterministic and match the CPU's up to the last bits of
 * erff and expf and the order of the double sums. Nothing here allocates
 * or waits for the device, so every operation can be recorded in a CUDA
 * graph. */
#include <math.h>

#include "cuda_impl.h"
#include "nn/philox.h"

#define FULL_WARP 0xffffffffu

/* ---- batched GEMM ---- */

/* `count` GEMMs whose A, B and C lie sa, sb, sc floats apart, as one
 * cublasSgemmStridedBatched with the row-major swap of cuda_gemm (C^T =
 * op(B)^T op(A)^T). With sc = 0 every product goes onto the same C, which
 * would race inside one batched call: those run one GEMM at a time, in
 * index order, as the CPU adds them. (C matrices of one batch must not
 * otherwise overlap, as with cuBLAS.) */
static int gemm_strided(eg_backend *be, int trans_a, int trans_b, int m, int n, int k,
                        float alpha, const float *a, int lda, size_t sa, const float *b, int ldb,
                        size_t sb, float beta, float *c, int ldc, size_t sc, int count)
{
    if (sc == 0 && count > 1) {
        for (int t = 0; t < count; t++)
            EG_TRY(cuda_gemm(be, trans_a, trans_b, m, n, k, alpha, a + t * sa, lda, b + t * sb,
                             ldb, beta, c, ldc));
        return 0;
    }
    CU_CHECK(cublasSgemmStridedBatched(cuda_of(be)->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                       trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b,
                                       ldb, (long long)sb, a, lda, (long long)sa, &beta, c, ldc,
                                       (long long)sc, count));
    return 0;
}

/* C_ij = alpha op(A_ij) op(B_ij) + beta C_ij for i < n0, j < n1. One
 * strided-batched call covers all n0 n1 matrices when either count is 1
 * or the outer strides are n1 times the inner ones (heads of dense
 * per-head tensors); otherwise (the heads of a fused QKV projection, say)
 * one call per index of the smaller count, batched over the larger. No
 * allocation and no wait, so it records in a CUDA graph (cuBLAS works in
 * the backend's fixed workspace). */
int cuda_gemm_batched(eg_backend *be, const eg_gemm_batch *gb, int trans_a, int trans_b, int m,
                      int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                      float beta, float *c, int ldc)
{
    int n0 = gb->n0, n1 = gb->n1;
    if (m <= 0 || n <= 0 || n0 <= 0 || n1 <= 0) return 0;
    if (n1 == 1)
        return gemm_strided(be, trans_a, trans_b, m, n, k, alpha, a, lda, gb->sa0, b, ldb, gb->sb0,
                            beta, c, ldc, gb->sc0, n0);
    if (n0 == 1 || (gb->sa0 == (size_t)n1 * gb->sa1 && gb->sb0 == (size_t)n1 * gb->sb1 &&
                    gb->sc0 == (size_t)n1 * gb->sc1))
        return gemm_strided(be, trans_a, trans_b, m, n, k, alpha, a, lda, gb->sa1, b, ldb, gb->sb1,
                            beta, c, ldc, gb->sc1, n0 * n1);
    if (n0 <= n1) {
        for (int i = 0; i < n0; i++)
            EG_TRY(gemm_strided(be, trans_a, trans_b, m, n, k, alpha, a + i * gb->sa0, lda,
                                gb->sa1, b + i * gb->sb0, ldb, gb->sb1, beta, c + i * gb->sc0,
                                ldc, gb->sc1, n1));
    } else {
        for (int j = 0; j < n1; j++)
            EG_TRY(gemm_strided(be, trans_a, trans_b, m, n, k, alpha, a + j * gb->sa1, lda,
                                gb->sa0, b + j * gb->sb1, ldb, gb->sb0, beta, c + j * gb->sc1,
                                ldc, gb->sc0, n0));
    }
    return 0;
}

/* ---- embeddings ---- */

/* y (n, d) (+)= table[ids[i]], one thread per element of y. */
static __global__ void embed_fwd_kernel(size_t total, int d, const int32_t *ids,
                                        const float *table, float *y, int acc)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        size_t i = e / (size_t)d, j = e % (size_t)d;
        float v = table[(size_t)ids[i] * d + j];
        y[e] = acc ? __fadd_rn(y[e], v) : v;
    }
}

/* dtable[ids[i]] += dy[i] for ids[i] != skip, one thread per element of
 * dy, with atomicAdd: where a row repeats in ids its contributions are
 * added in an order that varies from run to run (the last bits of that
 * row may differ from the CPU's, which adds in index order); a row that
 * occurs once gets exactly the CPU's one float addition. */
static __global__ void embed_bwd_kernel(size_t total, int d, const int32_t *ids, int skip,
                                        const float *dy, float *dtable)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        size_t i = e / (size_t)d, j = e % (size_t)d;
        int32_t id = ids[i];
        if (id != skip) atomicAdd(&dtable[(size_t)id * d + j], dy[e]);
    }
}

int cuda_embed_fwd(eg_backend *be, int n, int d, const int32_t *ids, const float *table, float *y,
                   int acc)
{
    if (n <= 0 || d <= 0) return 0;
    size_t total = (size_t)n * d;
    embed_fwd_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(total, d, ids, table, y,
                                                                           acc);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_embed_bwd(eg_backend *be, int n, int d, const int32_t *ids, int skip, const float *dy,
                   float *dtable)
{
    if (n <= 0 || d <= 0) return 0;
    size_t total = (size_t)n * d;
    embed_bwd_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(total, d, ids, skip,
                                                                           dy, dtable);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- LayerNorm ---- */

/* v summed over the block (cu_block_sum), handed to every thread. `slot`
 * must be a __shared__ double not read by a pending sum. */
static __device__ __forceinline__ double block_total(double v, double *slot)
{
    v = cu_block_sum(v);
    if (threadIdx.x == 0) *slot = v;
    __syncthreads();
    return *slot;
}

/* One block per row r of x (n, d): mean and the biased variance about it,
 * each summed in double (thread t takes columns t, t + CU_THREADS, ...,
 * then cu_block_sum's tree), rstd = 1 / sqrt(var + eps) in double; y in
 * float from the float mean and rstd, as the CPU rounds it. */
static __global__ void layernorm_fwd_kernel(int d, const float *x, const float *gamma,
                                            const float *beta, float eps, float *y,
                                            float *save_mean, float *save_rstd)
{
    __shared__ double tot_s, tot_ss;
    size_t r = blockIdx.x;
    const float *xr = x + r * (size_t)d; // (d)
    float *yr = y + r * (size_t)d;       // (d)
    double s = 0;
    for (int j = threadIdx.x; j < d; j += CU_THREADS) s += xr[j];
    double mean = block_total(s, &tot_s) / d;
    double ss = 0;
    for (int j = threadIdx.x; j < d; j += CU_THREADS) {
        double c = xr[j] - mean;
        ss = __dadd_rn(ss, __dmul_rn(c, c)); /* unfused, as the CPU */
    }
    double rstd = 1.0 / sqrt(block_total(ss, &tot_ss) / d + eps);
    float fm = (float)mean, fr = (float)rstd;
    for (int j = threadIdx.x; j < d; j += CU_THREADS)
        yr[j] = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(xr[j], fm), fr), gamma[j]), beta[j]);
    if (threadIdx.x == 0) {
        save_mean[r] = fm;
        save_rstd[r] = fr;
    }
}

/* dx (+)= rstd (g - mean(g) - xhat mean(g xhat)) for row r = blockIdx.x,
 * g = dy gamma; the two means summed in double over the block. */
static __global__ void layernorm_bwd_dx_kernel(int d, const float *x, const float *dy,
                                               const float *gamma, const float *save_mean,
                                               const float *save_rstd, float *dx, int acc)
{
    __shared__ double tot_g, tot_gx;
    size_t r = blockIdx.x;
    const float *xr = x + r * (size_t)d;  // (d)
    const float *gr = dy + r * (size_t)d; // (d)
    float *out = dx + r * (size_t)d;      // (d)
    float m = save_mean[r], rs = save_rstd[r];
    double sg = 0, sgx = 0;
    for (int j = threadIdx.x; j < d; j += CU_THREADS) {
        double g = (double)gr[j] * gamma[j];
        sg += g;
        sgx = __dadd_rn(sgx, __dmul_rn(g, (double)__fmul_rn(__fsub_rn(xr[j], m), rs)));
    }
    float mg = (float)(block_total(sg, &tot_g) / d);
    float mgx = (float)(block_total(sgx, &tot_gx) / d);
    for (int j = threadIdx.x; j < d; j += CU_THREADS) {
        float xh = __fmul_rn(__fsub_rn(xr[j], m), rs);
        float v = __fmul_rn(rs, __fsub_rn(__fsub_rn(__fmul_rn(gr[j], gamma[j]), mg),
                                          __fmul_rn(xh, mgx)));
        out[j] = acc ? __fadd_rn(out[j], v) : v;
    }
}

/* Columns per block of the parameter gradients: LN_COLS adjacent columns
 * (one 32-byte sector of a row) by LN_GROUPS row groups. */
#define LN_COLS 8
#define LN_GROUPS (CU_THREADS / LN_COLS)

/* dgamma[j] += sum_r dy xhat, dbeta[j] += sum_r dy for the LN_COLS
 * columns of block blockIdx.x: thread t takes column j0 + t % LN_COLS at
 * rows t / LN_COLS, + LN_GROUPS, ..., in double; the row groups' partial
 * sums are then added in group order. A fixed order, not the CPU's. */
static __global__ void layernorm_bwd_params_kernel(int n, int d, const float *x, const float *dy,
                                                   const float *save_mean,
                                                   const float *save_rstd, float *dgamma,
                                                   float *dbeta)
{
    __shared__ double pg[LN_GROUPS][LN_COLS], pb[LN_GROUPS][LN_COLS];
    int c = threadIdx.x % LN_COLS, grp = threadIdx.x / LN_COLS;
    int j = blockIdx.x * LN_COLS + c;
    double sg = 0, sb = 0;
    if (j < d)
        for (int r = grp; r < n; r += LN_GROUPS) {
            size_t e = (size_t)r * d + j;
            float g = dy[e];
            sg += (double)g * __fmul_rn(__fsub_rn(x[e], save_mean[r]), save_rstd[r]);
            sb += g;
        }
    pg[grp][c] = sg;
    pb[grp][c] = sb;
    __syncthreads();
    if (grp == 0 && j < d) {
        for (int q = 1; q < LN_GROUPS; q++) {
            sg += pg[q][c];
            sb += pb[q][c];
        }
        dgamma[j] = __fadd_rn(dgamma[j], (float)sg);
        dbeta[j] = __fadd_rn(dbeta[j], (float)sb);
    }
}

int cuda_layernorm_fwd(eg_backend *be, int n, int d, const float *x, const float *gamma,
                       const float *beta, float eps, float *y, float *save_mean, float *save_rstd)
{
    if (n <= 0 || d <= 0) return 0;
    layernorm_fwd_kernel<<<(unsigned)n, CU_THREADS, 0, cuda_stream(be)>>>(
        d, x, gamma, beta, eps, y, save_mean, save_rstd);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_layernorm_bwd(eg_backend *be, int n, int d, const float *x, const float *dy,
                       const float *gamma, const float *save_mean, const float *save_rstd,
                       float *dx, int acc, float *dgamma, float *dbeta)
{
    if (n <= 0 || d <= 0) return 0;
    if (dx) {
        layernorm_bwd_dx_kernel<<<(unsigned)n, CU_THREADS, 0, cuda_stream(be)>>>(
            d, x, dy, gamma, save_mean, save_rstd, dx, acc);
        CU_CHECK_LAUNCH();
    }
    unsigned blocks = (unsigned)((d + LN_COLS - 1) / LN_COLS);
    layernorm_bwd_params_kernel<<<blocks, CU_THREADS, 0, cuda_stream(be)>>>(
        n, d, x, dy, save_mean, save_rstd, dgamma, dbeta);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- GELU ---- */

/* y = (0.5 x) (1 + erf(x / sqrt 2)), the CPU's roundings. */
static __global__ void gelu_fwd_kernel(size_t n, const float *x, float *y) // (n), (n)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = x[i];
        float t = __fadd_rn(1.0f, erff(__fmul_rn(v, (float)M_SQRT1_2)));
        y[i] = __fmul_rn(__fmul_rn(0.5f, v), t);
    }
}

/* dx = dy (Phi(x) + x phi(x)); dx may be dy. */
static __global__ void gelu_bwd_kernel(size_t n, const float *x, const float *dy, float *dx)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = x[i];
        float cdf = __fmul_rn(0.5f, __fadd_rn(1.0f, erff(__fmul_rn(v, (float)M_SQRT1_2))));
        float pdf = __fmul_rn(expf(__fmul_rn(__fmul_rn(-0.5f, v), v)),
                              (float)(0.5 * M_2_SQRTPI * M_SQRT1_2));
        dx[i] = __fmul_rn(dy[i], __fadd_rn(cdf, __fmul_rn(v, pdf)));
    }
}

int cuda_gelu_fwd(eg_backend *be, size_t n, const float *x, float *y)
{
    if (!n) return 0;
    gelu_fwd_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(n, x, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_gelu_bwd(eg_backend *be, size_t n, const float *x, const float *dy, float *dx)
{
    if (!n) return 0;
    gelu_bwd_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(n, x, dy, dx);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- masked softmax ---- */

/* One warp per row (warp-stride over rows); row r sees its first len
 * columns, len = lens[r / group] (cols when lens is NULL or the length is
 * outside [1, cols]). As cpu_softmax_fwd: the maximum in float, e =
 * expf(x - max) stored in y, their sum in double (lane-strided, then a
 * butterfly: a fixed order, which every lane ends with bit for bit), then
 * y = e (float)(1 / sum) and 0 beyond len. Each element is read and
 * written by one lane only, so y may alias x. */
static __global__ void softmax_fwd_kernel(int rows, int cols, int group, const int32_t *lens,
                                          const float *x, float *y)
{
    unsigned lane = threadIdx.x & 31u;
    size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    size_t nwarps = ((size_t)gridDim.x * blockDim.x) >> 5;
    for (size_t r = warp; r < (size_t)rows; r += nwarps) {
        const float *xr = x + r * (size_t)cols; // (cols)
        float *yr = y + r * (size_t)cols;       // (cols)
        int len = lens ? lens[r / (size_t)group] : cols;
        if (len < 1 || len > cols) len = cols;
        float mx = xr[0];
        for (int j = (int)lane; j < len; j += 32) mx = fmaxf(mx, xr[j]);
        for (int off = 16; off > 0; off >>= 1)
            mx = fmaxf(mx, __shfl_xor_sync(FULL_WARP, mx, off));
        double s = 0;
        for (int j = (int)lane; j < len; j += 32) {
            float e = expf(__fsub_rn(xr[j], mx));
            yr[j] = e;
            s += e;
        }
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(FULL_WARP, s, off);
        float inv = (float)(1.0 / s);
        for (int j = (int)lane; j < len; j += 32) yr[j] = __fmul_rn(yr[j], inv);
        for (int j = len + (int)lane; j < cols; j += 32) yr[j] = 0.0f;
    }
}

/* dx = y (dy - sum_j y_j dy_j), one warp per row, the sum in double as in
 * softmax_fwd_kernel; dx may alias dy (each lane rewrites only the
 * elements it read). */
static __global__ void softmax_bwd_kernel(int rows, int cols, const float *y, const float *dy,
                                          float *dx)
{
    unsigned lane = threadIdx.x & 31u;
    size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    size_t nwarps = ((size_t)gridDim.x * blockDim.x) >> 5;
    for (size_t r = warp; r < (size_t)rows; r += nwarps) {
        const float *yr = y + r * (size_t)cols;  // (cols)
        const float *gr = dy + r * (size_t)cols; // (cols)
        float *out = dx + r * (size_t)cols;      // (cols)
        double s = 0;
        for (int j = (int)lane; j < cols; j += 32) s += (double)yr[j] * gr[j];
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(FULL_WARP, s, off);
        float fs = (float)s;
        for (int j = (int)lane; j < cols; j += 32) out[j] = __fmul_rn(yr[j], __fsub_rn(gr[j], fs));
    }
}

int cuda_softmax_fwd(eg_backend *be, int rows, int cols, int group, const int32_t *lens,
                     const float *x, float *y)
{
    if (rows <= 0 || cols <= 0) return 0;
    if (lens && group < 1) return eg_errorf("softmax: rows in groups of %d", group);
    softmax_fwd_kernel<<<cu_blocks((size_t)rows * 32), CU_THREADS, 0, cuda_stream(be)>>>(
        rows, cols, group, lens, x, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_softmax_bwd(eg_backend *be, int rows, int cols, const float *y, const float *dy,
                     float *dx)
{
    if (rows <= 0 || cols <= 0) return 0;
    softmax_bwd_kernel<<<cu_blocks((size_t)rows * 32), CU_THREADS, 0, cuda_stream(be)>>>(
        rows, cols, y, dy, dx);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- dropout ---- */

/* y = x scale where eg_dropout_keep(p, key, stream, i), else 0. Thread q
 * takes elements 4q .. 4q + 3, whose keep bits are the four words of one
 * Philox block (q), so the block is computed once; the test on each word
 * is eg_dropout_keep's. Each element is read and written by one thread,
 * so y may alias x. */
static __global__ void dropout_kernel(size_t n, float p, float scale, uint64_t key,
                                      uint64_t stream, const float *x, float *y)
{
    size_t nq = (n + 3) / 4, stride = (size_t)gridDim.x * blockDim.x;
    double cut = (double)p * 4294967296.0;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < nq; q += stride) {
        eg_philox_ctr b = eg_rademacher_block(key, stream, q);
#pragma unroll
        for (unsigned w = 0; w < 4; w++) {
            size_t i = 4 * q + w;
            if (i < n) y[i] = (double)b.v[w] >= cut ? __fmul_rn(x[i], scale) : 0.0f;
        }
    }
}

int cuda_dropout(eg_backend *be, size_t n, float p, uint64_t key, uint64_t stream, const float *x,
                 float *y)
{
    if (!(p >= 0.0f && p < 1.0f)) return eg_errorf("dropout: rate %g outside [0, 1)", (double)p);
    if (!n) return 0;
    float scale = 1.0f / (1.0f - p); /* on the host, as the CPU rounds it */
    dropout_kernel<<<cu_blocks((n + 3) / 4), CU_THREADS, 0, cuda_stream(be)>>>(n, p, scale, key,
                                                                              stream, x, y);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- MetaXL's RTN output gate ---- */

/* sigmoid as cpu_rtn_gate_fwd (and cuda_sigmoid_fwd) rounds it. */
static __device__ __forceinline__ float gate_sigm(float x)
{
    return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x)));
}

/* y (n, d) = h + sigmoid(o_d) o_0..d-1 with o (n, d + 1), one thread per
 * element of y; each thread computes its row's gate itself (the same bits
 * in every thread of the row). Each element of h is read and that of y
 * written by one thread, so y may alias h. */
static __global__ void rtn_gate_fwd_kernel(size_t total, int d, const float *h, const float *o,
                                           float *y)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        size_t r = e / (size_t)d, j = e % (size_t)d;
        const float *orow = o + r * (size_t)(d + 1); // (d + 1)
        y[e] = __fadd_rn(h[e], __fmul_rn(gate_sigm(orow[d]), orow[j]));
    }
}

/* One warp per row (warp-stride over rows): do_j = s dy_j for j < d and
 * do_d = (float)((double)(s (1 - s)) sum_j dy_j o_j), s = sigmoid(o_d), as
 * cpu_rtn_gate_bwd rounds it. The sum runs in double, lane-strided then a
 * butterfly as in softmax_bwd_kernel: a fixed order, not the CPU's
 * sequential one; each product of two floats is exact in double, so only
 * the additions round. Lane 0 writes do_d. */
static __global__ void rtn_gate_bwd_kernel(int n, int d, const float *o, const float *dy,
                                           float *dout)
{
    unsigned lane = threadIdx.x & 31u;
    size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    size_t nwarps = ((size_t)gridDim.x * blockDim.x) >> 5;
    for (size_t r = warp; r < (size_t)n; r += nwarps) {
        const float *orow = o + r * (size_t)(d + 1); // (d + 1)
        const float *g = dy + r * (size_t)d;         // (d)
        float *out = dout + r * (size_t)(d + 1);     // (d + 1)
        float s = gate_sigm(orow[d]);
        double sum = 0;
        for (int j = (int)lane; j < d; j += 32) {
            out[j] = __fmul_rn(s, g[j]);
            sum = __dadd_rn(sum, (double)g[j] * orow[j]);
        }
        for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(FULL_WARP, sum, off);
        if (lane == 0) out[d] = (float)__dmul_rn((double)__fmul_rn(s, __fsub_rn(1.0f, s)), sum);
    }
}

int cuda_rtn_gate_fwd(eg_backend *be, int n, int d, const float *h, const float *o, float *y)
{
    if (n <= 0 || d <= 0) return 0;
    size_t total = (size_t)n * d;
    rtn_gate_fwd_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(total, d, h, o, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_rtn_gate_bwd(eg_backend *be, int n, int d, const float *o, const float *dy, float *dout)
{
    if (n <= 0 || d <= 0) return 0;
    rtn_gate_bwd_kernel<<<cu_blocks((size_t)n * 32), CU_THREADS, 0, cuda_stream(be)>>>(n, d, o,
                                                                                      dy, dout);
    CU_CHECK_LAUNCH();
    return 0;
}
