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
 * block, blocks = ceil(n / chunk) <= CU_MAX_PARTS. */
typedef struct red_geom {
    size_t chunk;
    unsigned blocks;
} red_geom;

static red_geom reduce_geometry(size_t n)
{
    red_geom g;
    size_t chunk = (n + CU_MAX_PARTS - 1) / CU_MAX_PARTS;
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

/* parts[b] = sum of r[i] g[i] over block b's chunk, r the Rademacher
 * vector (key, stream). Quad q of the chunk is lane q mod 32 of Rademacher
 * block lo / 128 + q / 32; the chunk starts on a block boundary and a warp's
 * 32 threads always hold the 32 lanes of one block. */
static __global__ void rademacher_dot_kernel(size_t n, size_t chunk, uint64_t key,
                                             uint64_t stream, const float *g,
                                             double *parts)
{
    size_t lo = (size_t)blockIdx.x * chunk;
    size_t hi = n - lo < chunk ? n : lo + chunk;
    size_t nq = (hi - lo + RB_LEN - 1) / RB_LEN * RB_LANES;
    double s = 0;
    for (size_t q = threadIdx.x; q < nq; q += CU_THREADS) {
        uint64_t rb = lo / RB_LEN + q / RB_LANES;
        eg_philox_ctr bits = eg_rademacher_block(key, stream, rb);
        size_t i = (size_t)rb * RB_LEN + q % RB_LANES;
        for (int k = 0; k < RB_LEN / RB_LANES; k++, i += RB_LANES)
            if (i < hi) s += (double)eg_rademacher_from_block(bits, i) * (double)g[i];
    }
    s = cu_block_sum(s);
    if (threadIdx.x == 0) parts[blockIdx.x] = s;
}

/* parts[b] = sum of (float)e[i] g[i] over block b's chunk, e the Gaussian
 * vector (key, stream). */
static __global__ void gaussian_dot_kernel(size_t n, size_t chunk, uint64_t key,
                                           uint64_t stream, const float *g,
                                           double *parts)
{
    size_t lo = (size_t)blockIdx.x * chunk;
    size_t hi = n - lo < chunk ? n : lo + chunk;
    double s = 0;
    for (size_t i = lo + threadIdx.x; i < hi; i += CU_THREADS)
        s += (double)(float)eg_gaussian(key, stream, i) * (double)g[i];
    s = cu_block_sum(s);
    if (threadIdx.x == 0) parts[blockIdx.x] = s;
}

/* parts[0] = parts[0] + ... + parts[nparts - 1], left to right; one thread
 * reads every partial before writing. */
static __global__ void parts_sum_kernel(int nparts, double *parts)
{
    double s = 0;
    for (int i = 0; i < nparts; i++) s += parts[i];
    parts[0] = s;
}

/* acc[0] = (float)(acc[0] + (parts[0] + ... + parts[nparts - 1])), the sum left
 * to right in double, as the CPU adds its double total to the float. */
static __global__ void parts_accumulate_kernel(int nparts, const double *parts, float *acc)
{
    double s = 0;
    for (int i = 0; i < nparts; i++) s += parts[i];
    acc[0] = (float)__dadd_rn((double)acc[0], s);
}

int cuda_parts_result(eg_backend *be, int nparts, double *out)
{
    if (nparts < 0 || nparts > CU_MAX_PARTS)
        return eg_errorf("cuda: %d reduction partials, room for %d", nparts,
                         CU_MAX_PARTS);
    cuda_impl *impl = cuda_of(be);
    parts_sum_kernel<<<1, 1, 0, impl->stream>>>(nparts, impl->parts);
    CU_CHECK_LAUNCH();
    CU_CHECK(cudaMemcpyAsync(impl->result_host, impl->parts, sizeof(double),
                             cudaMemcpyDeviceToHost, impl->stream));
    CU_CHECK(cudaStreamSynchronize(impl->stream));
    *out = *impl->result_host;
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
    red_geom g = reduce_geometry(n);
    dot_kernel<<<g.blocks, CU_THREADS, 0, cuda_stream(be)>>>(n, g.chunk, x, y,
                                                             cuda_of(be)->parts);
    CU_CHECK_LAUNCH();
    return cuda_parts_result(be, (int)g.blocks, out);
}

/* ---- Philox noise ---- */

/* y[i] += alpha r[i] over quads as in rademacher_dot_kernel, grid-stride;
 * the stride is a multiple of 32, so a warp still shares one block. */
static __global__ void rademacher_axpy_kernel(size_t n, float alpha, uint64_t key,
                                              uint64_t stream, float *y)
{
    size_t nq = (n + RB_LEN - 1) / RB_LEN * RB_LANES;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < nq; q += stride) {
        uint64_t rb = q / RB_LANES;
        eg_philox_ctr bits = eg_rademacher_block(key, stream, rb);
        size_t i = (size_t)rb * RB_LEN + q % RB_LANES;
        for (int k = 0; k < RB_LEN / RB_LANES; k++, i += RB_LANES)
            if (i < n)
                y[i] = __fadd_rn(y[i], __fmul_rn(alpha, eg_rademacher_from_block(bits, i)));
    }
}

static __global__ void gaussian_axpy_kernel(size_t n, float alpha, uint64_t key,
                                            uint64_t stream, float *y)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = __fadd_rn(y[i], __fmul_rn(alpha, (float)eg_gaussian(key, stream, i)));
}

int cuda_rademacher_axpy(eg_backend *be, size_t n, float alpha, uint64_t key,
                         uint64_t stream, float *y)
{
    if (n == 0) return 0;
    size_t nq = (n + RB_LEN - 1) / RB_LEN * RB_LANES;
    rademacher_axpy_kernel<<<cu_blocks(nq), CU_THREADS, 0, cuda_stream(be)>>>(
        n, alpha, key, stream, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_rademacher_dot(eg_backend *be, size_t n, uint64_t key,
                        uint64_t stream, const float *g, double *out)
{
    if (n == 0) {
        *out = 0;
        return 0;
    }
    red_geom geo = reduce_geometry(n);
    rademacher_dot_kernel<<<geo.blocks, CU_THREADS, 0, cuda_stream(be)>>>(
        n, geo.chunk, key, stream, g, cuda_of(be)->parts);
    CU_CHECK_LAUNCH();
    return cuda_parts_result(be, (int)geo.blocks, out);
}

int cuda_gaussian_axpy(eg_backend *be, size_t n, float alpha, uint64_t key,
                       uint64_t stream, float *y)
{
    if (n == 0) return 0;
    gaussian_axpy_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(
        n, alpha, key, stream, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_gaussian_dot(eg_backend *be, size_t n, uint64_t key, uint64_t stream,
                      const float *g, double *out)
{
    if (n == 0) {
        *out = 0;
        return 0;
    }
    red_geom geo = reduce_geometry(n);
    gaussian_dot_kernel<<<geo.blocks, CU_THREADS, 0, cuda_stream(be)>>>(
        n, geo.chunk, key, stream, g, cuda_of(be)->parts);
    CU_CHECK_LAUNCH();
    return cuda_parts_result(be, (int)geo.blocks, out);
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
