/* Flat-vector operations of the CUDA backend: fills, axpy, dot products,
 * Philox Rademacher and Gaussian noise, the SGD / Adam steps over parameter
 * arenas, and the deterministic reduction behind every dot product.
 *
 * Elementwise kernels write each element from one thread and spell every
 * float operation with a rounding intrinsic (__fmul_rn, __fadd_rn, ...),
 * which nvcc never contracts into a fused multiply-add, so each result has
 * the same bits as the CPU backend's (nn/cpu/cpu_vec.c).
 *
 * Reductions: block b of a reduction over n elements sums the range
 * [b chunk, (b + 1) chunk) in double, chunk a function of n alone; each
 * thread walks its own fixed subsequence of the range, the block combines
 * its threads with a fixed shared-memory tree, writes one partial to
 * parts[b], and one device thread adds the partials in index order. The
 * result depends only on n and the data, never on timing. */
#include <math.h>

#include "cuda_impl.h"
#include "nn/philox.h"

/* Elements of one Rademacher block (one Philox call), and the threads that
 * share it: each of RB_LANES threads takes RB_LEN / RB_LANES elements
 * lane, lane + 32, lane + 64, lane + 96, so a warp reads 128 consecutive
 * floats and every sign comes from the block's own bits. */
#define RB_LEN 128
#define RB_LANES 32

/* Reduction chunks: multiples of RED_ALIGN (a multiple of RB_LEN and of
 * CU_THREADS), at least RED_MIN elements. */
#define RED_ALIGN ((size_t)1024)
#define RED_MIN ((size_t)4096)

/* Block geometry of a reduction over n > 0 elements: chunk elements per
 * block, blocks = ceil(n / chunk) <= max_blocks. */
typedef struct red_geom {
    size_t chunk;
    unsigned blocks;
} red_geom;

static red_geom reduce_geometry(size_t n, size_t max_blocks)
{
    red_geom g;
    size_t chunk = (n + max_blocks - 1) / max_blocks;
    chunk = (chunk + RED_ALIGN - 1) / RED_ALIGN * RED_ALIGN;
    if (chunk < RED_MIN) chunk = RED_MIN;
    g.chunk = chunk;
    g.blocks = (unsigned)((n + chunk - 1) / chunk);
    return g;
}

/* ---- elementwise ---- */

static __global__ void fill_kernel(size_t n, float value, float *x)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        x[i] = value;
}

static __global__ void axpy_kernel(size_t n, float alpha, const float *x, float *y)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i]));
}

static __global__ void scale_kernel(size_t n, float alpha, float *x)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        x[i] = __fmul_rn(x[i], alpha);
}

int cuda_fill(eg_backend *be, size_t n, float value, float *x)
{
    if (n == 0) return 0;
    fill_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(n, value, x);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_axpy(eg_backend *be, size_t n, float alpha, const float *x, float *y)
{
    if (n == 0) return 0;
    axpy_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(n, alpha, x, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_scale(eg_backend *be, size_t n, float alpha, float *x)
{
    if (n == 0) return 0;
    scale_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(n, alpha, x);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- reductions ---- */

/* parts[b] = sum of x[i] y[i] over block b's chunk, in double. */
static __global__ void dot_kernel(size_t n, size_t chunk, const float *x, const float *y,
                                  double *parts)
{
    size_t lo = (size_t)blockIdx.x * chunk;
    size_t hi = n - lo < chunk ? n : lo + chunk;
    double s = 0;
    for (size_t i = lo + threadIdx.x; i < hi; i += CU_THREADS)
        s += (double)x[i] * (double)y[i];
    s = cu_block_sum(s);
    if (threadIdx.x == 0) parts[blockIdx.x] = s;
}

/* acc[0] = (float)(acc[0] + (parts[0] + ... + parts[nparts - 1])), the sum left
 * to right in double, as the CPU adds its double total to the float. */
static __global__ void parts_accumulate_kernel(int nparts, const double *parts, float *acc)
{
    double s = 0;
    for (int i = 0; i < nparts; i++) s += parts[i];
    acc[0] = (float)__dadd_rn((double)acc[0], s);
}

/* parts[j] = parts[j nb] + ... + parts[j nb + nb - 1] for j < k, left to
 * right on one thread; range j is read before parts[j] is written, and
 * parts[j] lies in a range already read. */
static __global__ void parts_sums_kernel(int k, int nb, double *parts)
{
    for (int j = 0; j < k; j++) {
        double s = 0;
        for (int b = 0; b < nb; b++) s += parts[(size_t)j * nb + b];
        parts[j] = s;
    }
}

/* out[j] = the sum of the nb partials of reduction j in cuda_of(be)->parts
 * (laid out j nb + b), for j < k; waits for the stream. */
static int parts_results(eg_backend *be, int k, int nb, double *out)
{
    if (k < 1 || nb < 0 || (long)k * nb > CU_MAX_PARTS)
        return eg_errorf("cuda: %d x %d reduction partials, room for %d", k, nb, CU_MAX_PARTS);
    cuda_impl *impl = cuda_of(be);
    parts_sums_kernel<<<1, 1, 0, impl->stream>>>(k, nb, impl->parts);
    CU_CHECK_LAUNCH();
    CU_CHECK(cudaMemcpyAsync(impl->result_host, impl->parts, (size_t)k * sizeof(double),
                             cudaMemcpyDeviceToHost, impl->stream));
    CU_CHECK(cudaStreamSynchronize(impl->stream));
    for (int j = 0; j < k; j++) out[j] = impl->result_host[j];
    return 0;
}

int cuda_parts_accumulate(eg_backend *be, int nparts, float *acc)
{
    if (nparts < 0 || nparts > CU_MAX_PARTS)
        return eg_errorf("cuda: %d reduction partials, room for %d", nparts,
                         CU_MAX_PARTS);
    cuda_impl *impl = cuda_of(be);
    parts_accumulate_kernel<<<1, 1, 0, impl->stream>>>(nparts, impl->parts, acc);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_dot(eg_backend *be, size_t n, const float *x, const float *y,
             double *out)
{
    if (n == 0) {
        *out = 0;
        return 0;
    }
    red_geom g = reduce_geometry(n, CU_MAX_PARTS);
    dot_kernel<<<g.blocks, CU_THREADS, 0, cuda_stream(be)>>>(n, g.chunk, x, y,
                                                             cuda_of(be)->parts);
    CU_CHECK_LAUNCH();
    return parts_results(be, 1, (int)g.blocks, out);
}

/* ---- Philox noise ---- */

/* The noise vectors of one call, passed to kernels by value. */
typedef struct noise_set {
    uint64_t key;
    uint64_t streams[EG_NOISE_MAX];
    float alpha[EG_NOISE_MAX];
    int k;
} noise_set;

/* Elements of a quad: lane, lane + 32, lane + 64, lane + 96 of a block. */
#define QUAD (RB_LEN / RB_LANES)

/* y = x + Σ_j alpha_j r_j, the terms left to right in float. Quad q is
 * lane q mod 32 of Rademacher block q / 32 (grid-stride with a stride that
 * is a multiple of 32, so a warp shares one block); the thread computes
 * that block's bits once per vector. Each element is read and written by
 * one thread, so y may alias x. */
static __global__ void rademacher_combine_kernel(size_t n, noise_set s, const float *x,
                                                 float *y)
{
    size_t nq = (n + RB_LEN - 1) / RB_LEN * RB_LANES;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < nq; q += stride) {
        uint64_t rb = q / RB_LANES;
        size_t i0 = (size_t)rb * RB_LEN + q % RB_LANES;
        float t[QUAD];
#pragma unroll
        for (int e = 0; e < QUAD; e++) t[e] = i0 + e * RB_LANES < n ? x[i0 + e * RB_LANES] : 0.0f;
#pragma unroll
        for (int j = 0; j < EG_NOISE_MAX; j++) {
            if (j >= s.k) break;
            eg_philox_ctr bits = eg_rademacher_block(s.key, s.streams[j], rb);
#pragma unroll
            for (int e = 0; e < QUAD; e++)
                t[e] = __fadd_rn(t[e], __fmul_rn(s.alpha[j],
                                                 eg_rademacher_from_block(bits, i0 + e * RB_LANES)));
        }
#pragma unroll
        for (int e = 0; e < QUAD; e++)
            if (i0 + e * RB_LANES < n) y[i0 + e * RB_LANES] = t[e];
    }
}

/* The same with the Gaussian vectors, one thread per element. */
static __global__ void gaussian_combine_kernel(size_t n, noise_set s, const float *x, float *y)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float t = x[i];
        for (int j = 0; j < s.k; j++)
            t = __fadd_rn(t, __fmul_rn(s.alpha[j], (float)eg_gaussian(s.key, s.streams[j], i)));
        y[i] = t;
    }
}

/* parts[j * gridDim.x + b] = Σ e_j[i] g[i] over block b's chunk [b chunk,
 * (b + 1) chunk), in double, for j < k: each thread keeps k sums over its
 * fixed subsequence (Rademacher: its quads of the chunk, as in
 * rademacher_combine_kernel; the chunk starts on a block boundary), then
 * the block combines each with the fixed tree of cu_block_sum. */
template <int GAUSSIAN>
static __global__ void noise_dots_kernel(size_t n, size_t chunk, noise_set s, const float *g,
                                         double *parts)
{
    size_t lo = (size_t)blockIdx.x * chunk;
    size_t hi = n - lo < chunk ? n : lo + chunk;
    double acc[EG_NOISE_MAX];
#pragma unroll
    for (int j = 0; j < EG_NOISE_MAX; j++) acc[j] = 0;
    if (GAUSSIAN) {
        for (size_t i = lo + threadIdx.x; i < hi; i += CU_THREADS) {
            double gi = g[i];
#pragma unroll
            for (int j = 0; j < EG_NOISE_MAX; j++)
                if (j < s.k) acc[j] += (double)(float)eg_gaussian(s.key, s.streams[j], i) * gi;
        }
    } else {
        size_t nq = (hi - lo + RB_LEN - 1) / RB_LEN * RB_LANES;
        for (size_t q = threadIdx.x; q < nq; q += CU_THREADS) {
            uint64_t rb = lo / RB_LEN + q / RB_LANES;
            size_t i0 = (size_t)rb * RB_LEN + q % RB_LANES;
            float gv[QUAD];
#pragma unroll
            for (int e = 0; e < QUAD; e++) gv[e] = i0 + e * RB_LANES < hi ? g[i0 + e * RB_LANES] : 0.0f;
#pragma unroll
            for (int j = 0; j < EG_NOISE_MAX; j++) {
                if (j >= s.k) break;
                eg_philox_ctr bits = eg_rademacher_block(s.key, s.streams[j], rb);
#pragma unroll
                for (int e = 0; e < QUAD; e++)
                    if (i0 + e * RB_LANES < hi)
                        acc[j] += (double)eg_rademacher_from_block(bits, i0 + e * RB_LANES) *
                                  (double)gv[e];
            }
        }
    }
    /* Unrolled, so acc stays in registers; k is the same for the whole
     * block, as cu_block_sum needs. */
#pragma unroll
    for (int j = 0; j < EG_NOISE_MAX; j++) {
        if (j >= s.k) break;
        double t = cu_block_sum(acc[j]);
        if (threadIdx.x == 0) parts[(size_t)j * gridDim.x + blockIdx.x] = t;
    }
}

static int noise_set_make(uint64_t key, int k, const uint64_t *streams, const float *alpha,
                          noise_set *s)
{
    if (k < 1 || k > EG_NOISE_MAX)
        return eg_errorf("noise: %d vectors in one call, 1..%d allowed", k, EG_NOISE_MAX);
    *s = noise_set{};
    s->key = key;
    s->k = k;
    for (int j = 0; j < k; j++) {
        s->streams[j] = streams[j];
        s->alpha[j] = alpha ? alpha[j] : 0.0f;
    }
    return 0;
}

int cuda_noise_combine(eg_backend *be, size_t n, int gaussian, uint64_t key, int k,
                       const uint64_t *streams, const float *alpha, const float *x, float *y)
{
    noise_set s;
    EG_TRY(noise_set_make(key, k, streams, alpha, &s));
    if (n == 0) return 0;
    if (gaussian) {
        gaussian_combine_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(n, s, x, y);
    } else {
        size_t nq = (n + RB_LEN - 1) / RB_LEN * RB_LANES;
        rademacher_combine_kernel<<<cu_blocks(nq), CU_THREADS, 0, cuda_stream(be)>>>(n, s, x, y);
    }
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_noise_dots(eg_backend *be, size_t n, int gaussian, uint64_t key, int k,
                    const uint64_t *streams, const float *g, double *out)
{
    noise_set s;
    EG_TRY(noise_set_make(key, k, streams, NULL, &s));
    if (n == 0) {
        for (int j = 0; j < k; j++) out[j] = 0;
        return 0;
    }
    red_geom geo = reduce_geometry(n, CU_MAX_PARTS / k);
    cuda_impl *impl = cuda_of(be);
    if (gaussian)
        noise_dots_kernel<1><<<geo.blocks, CU_THREADS, 0, impl->stream>>>(n, geo.chunk, s, g,
                                                                         impl->parts);
    else
        noise_dots_kernel<0><<<geo.blocks, CU_THREADS, 0, impl->stream>>>(n, geo.chunk, s, g,
                                                                         impl->parts);
    CU_CHECK_LAUNCH();
    return parts_results(be, k, (int)geo.blocks, out);
}

/* ---- optimisers ---- */

/* SGD without momentum: theta = theta + (-lr) g, g = grad (+ wd theta). */
static __global__ void sgd_plain_kernel(size_t n, float *theta, const float *grad,
                                        float neg_lr, float wd, int use_wd)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float th = theta[i], gr = grad[i];
        float g = use_wd ? __fadd_rn(gr, __fmul_rn(wd, th)) : gr;
        theta[i] = __fadd_rn(th, __fmul_rn(neg_lr, g));
    }
}

/* SGD with momentum, cpu_sgd_step's operations in the same order. */
static __global__ void sgd_momentum_kernel(size_t n, float *theta, const float *grad,
                                           float *buf, float neg_lr, float momentum,
                                           float wd, int use_wd, int nesterov, int first)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float th = theta[i], gr = grad[i];
        float g = use_wd ? __fadd_rn(gr, __fmul_rn(wd, th)) : gr;
        float b = first ? g : __fadd_rn(__fmul_rn(buf[i], momentum), g);
        buf[i] = b;
        float s = nesterov ? __fadd_rn(g, __fmul_rn(momentum, b)) : b;
        theta[i] = __fadd_rn(th, __fmul_rn(neg_lr, s));
    }
}

int cuda_sgd_step(eg_backend *be, size_t n, float *theta, const float *grad,
                  float *buf, float lr, float momentum, float wd, int nesterov,
                  int first)
{
    if (momentum != 0.0f && !buf)
        return eg_errorf("sgd step: momentum %g needs a momentum buffer",
                         (double)momentum);
    if (n == 0) return 0;
    const float neg_lr = -lr;
    const int use_wd = wd != 0.0f;
    if (momentum == 0.0f)
        sgd_plain_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(
            n, theta, grad, neg_lr, wd, use_wd);
    else
        sgd_momentum_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(
            n, theta, grad, buf, neg_lr, momentum, wd, use_wd, nesterov, first);
    CU_CHECK_LAUNCH();
    return 0;
}

/* Adam, cpu_adam_step's float operations in the same order:
 * m = m beta1 + c1 g, v = v beta2 + (c2 g) g,
 * theta = theta + neg_step (m / (sqrt(v) / bc2_sqrt + eps)). */
static __global__ void adam_kernel(size_t n, float *theta, const float *grad, float *m,
                                   float *v, float neg_step, float bc2_sqrt, float c1,
                                   float c2, float beta1, float beta2, float eps,
                                   float wd, int use_wd)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float th = theta[i], gr = grad[i];
        float g = use_wd ? __fadd_rn(gr, __fmul_rn(wd, th)) : gr;
        float mi = __fadd_rn(__fmul_rn(m[i], beta1), __fmul_rn(c1, g));
        float vi = __fadd_rn(__fmul_rn(v[i], beta2), __fmul_rn(__fmul_rn(c2, g), g));
        m[i] = mi;
        v[i] = vi;
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
        theta[i] = __fadd_rn(th, __fmul_rn(neg_step, __fdiv_rn(mi, denom)));
    }
}

int cuda_adam_step(eg_backend *be, size_t n, float *theta, const float *grad,
                   float *m, float *v, float lr, float beta1, float beta2,
                   float eps, float wd, int t)
{
    eg_adam_scalars k;
    EG_TRY(eg_adam_scalars_get(lr, beta1, beta2, t, m, v, &k));
    if (n == 0) return 0;
    const int use_wd = wd != 0.0f;
    adam_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(
        n, theta, grad, m, v, k.neg_step, k.bc2_sqrt, k.c1, k.c2, beta1, beta2, eps, wd,
        use_wd);
    CU_CHECK_LAUNCH();
    return 0;
}
