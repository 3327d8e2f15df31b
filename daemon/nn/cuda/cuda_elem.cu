/* Bias broadcasts, global average pooling, the ResNet option-A shortcut and
 * softmax cross-entropy on the CUDA backend, mirroring nn/cpu/cpu_gemm.c
 * (bias), cpu_pool.c and cpu_act.c.
 *
 * Every output element is written by one thread and no float is ever
 * accumulated with atomics, so results are deterministic. Float arithmetic
 * is spelled with rounding intrinsics (__fmul_rn, __fadd_rn, ...), which
 * nvcc never fuses, so elementwise results match the CPU's bits. */
#include <math.h>

#include "cuda_impl.h"

#define FULL_WARP 0xffffffffu

/* A quiet NaN, the loss of a sample whose label is out of range. */
#define XENT_BAD_LABEL __int_as_float(0x7fc00000)

/* ---- bias ---- */

/* y (rows, cols, inner) += b[c], one thread per element, grid-stride. */
static __global__ void bias_add_kernel(size_t total, int cols, int inner, float *y,
                                       const float *b)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int c = (int)((i / (size_t)inner) % (size_t)cols);
        y[i] = __fadd_rn(y[i], b[c]);
    }
}

/* One block per column c: db[c] += (float)(sum over rows and inner of dy),
 * summed in double; thread t takes elements t, t + CU_THREADS, ... of the
 * column's rows * inner values (row-major over (row, inner)). */
static __global__ void bias_grad_kernel(int rows, int cols, int inner, const float *dy,
                                        float *db)
{
    int c = blockIdx.x;
    size_t m = (size_t)rows * (size_t)inner;
    double s = 0;
    for (size_t e = threadIdx.x; e < m; e += CU_THREADS) {
        size_t r = e / (size_t)inner, k = e % (size_t)inner;
        s += dy[((size_t)r * cols + c) * inner + k];
    }
    s = cu_block_sum(s);
    if (threadIdx.x == 0) db[c] = __fadd_rn(db[c], (float)s);
}

int cuda_bias_add(eg_backend *be, int rows, int cols, int inner, float *y,
                  const float *b)
{
    if (rows <= 0 || cols <= 0 || inner <= 0) return 0;
    size_t total = (size_t)rows * cols * inner;
    bias_add_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(
        total, cols, inner, y, b);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_bias_grad(eg_backend *be, int rows, int cols, int inner,
                   const float *dy, float *db)
{
    if (cols <= 0) return 0;
    if (rows < 0) rows = 0;
    if (inner < 0) inner = 0;
    if (inner == 0) rows = 0; /* no elements; also keeps e / inner defined */
    bias_grad_kernel<<<(unsigned)cols, CU_THREADS, 0, cuda_stream(be)>>>(
        rows, cols, inner, dy, db);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- global average pooling ---- */

/* y[p] = (float)(sum of x[p hw .. p hw + hw) in double, in order / hw):
 * one thread per (sample, channel) plane, the CPU's order exactly. */
static __global__ void avgpool_fwd_kernel(size_t planes, int hw, const float *x, float *y)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t p = (size_t)blockIdx.x * blockDim.x + threadIdx.x; p < planes; p += stride) {
        const float *xp = x + p * (size_t)hw; // (hw)
        double s = 0;
        for (int k = 0; k < hw; k++) s += xp[k];
        y[p] = (float)(s / hw);
    }
}

/* dx[p hw + k] (+)= dy[p] / hw, one thread per element of dx. */
static __global__ void avgpool_bwd_kernel(size_t total, int hw, const float *dy,
                                          float *dx, int acc)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        float g = __fdiv_rn(dy[i / (size_t)hw], (float)hw);
        dx[i] = acc ? __fadd_rn(dx[i], g) : g;
    }
}

int cuda_avgpool_fwd(eg_backend *be, int n, int c, int hw, const float *x,
                     float *y)
{
    if (n <= 0 || c <= 0) return 0;
    size_t planes = (size_t)n * c;
    avgpool_fwd_kernel<<<cu_blocks(planes), CU_THREADS, 0, cuda_stream(be)>>>(
        planes, hw, x, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_avgpool_bwd(eg_backend *be, int n, int c, int hw, const float *dy,
                     float *dx, int acc)
{
    if (n <= 0 || c <= 0 || hw <= 0) return 0;
    size_t total = (size_t)n * c * hw;
    avgpool_bwd_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(
        total, hw, dy, dx, acc);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- option-A shortcut ---- */

/* Checks the shortcut's arguments the CPU loops take for granted. */
static int shortcut_check(const char *what, int ci, int co, int stride)
{
    if (stride < 1) return eg_errorf("%s: stride %d must be >= 1", what, stride);
    if (co < ci)
        return eg_errorf("%s: %d output channels, fewer than the %d input channels",
                         what, co, ci);
    return 0;
}

/* y (N, co, ho, wo) channel c + pad += x (N, ci, H, W) at (i stride,
 * j stride): one thread per element (b, c, i, j) of the subsampled x. */
static __global__ void shortcut_fwd_kernel(size_t total, int ci, int h, int w, int co,
                                           int stride, int ho, int wo, int pad,
                                           const float *x, float *y)
{
    size_t gstride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += gstride) {
        size_t j = e % (size_t)wo;
        size_t i = (e / (size_t)wo) % (size_t)ho;
        size_t c = (e / ((size_t)wo * ho)) % (size_t)ci;
        size_t b = e / ((size_t)wo * ho * ci);
        size_t xi = ((b * ci + c) * h + i * stride) * w + j * stride;
        size_t yi = ((b * co + c + pad) * ho + i) * wo + j;
        y[yi] = __fadd_rn(y[yi], x[xi]);
    }
}

/* dx (N, ci, H, W) (+)= the shortcut's transpose of dy (N, co, ho, wo): one
 * thread per element of dx. Positions on the stride grid get dy's value,
 * added to 0 (as the CPU's memset then +=) or to dx; the others become 0
 * or stay. */
static __global__ void shortcut_bwd_kernel(size_t total, int ci, int h, int w, int co,
                                           int stride, int ho, int wo, int pad,
                                           const float *dy, float *dx, int acc)
{
    size_t gstride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += gstride) {
        size_t xx = e % (size_t)w;
        size_t yy = (e / (size_t)w) % (size_t)h;
        size_t c = (e / ((size_t)w * h)) % (size_t)ci;
        size_t b = e / ((size_t)w * h * ci);
        if (yy % (size_t)stride == 0 && xx % (size_t)stride == 0) {
            size_t yi = ((b * co + c + pad) * ho + yy / stride) * wo + xx / stride;
            dx[e] = __fadd_rn(acc ? dx[e] : 0.0f, dy[yi]);
        } else if (!acc) {
            dx[e] = 0.0f;
        }
    }
}

int cuda_shortcut_fwd(eg_backend *be, int n, int ci, int h, int w, int co,
                      int stride, const float *x, float *y)
{
    EG_TRY(shortcut_check("shortcut", ci, co, stride));
    if (n <= 0 || ci <= 0 || h <= 0 || w <= 0) return 0;
    int ho = (h + stride - 1) / stride, wo = (w + stride - 1) / stride;
    int pad = (co - ci) / 2;
    size_t total = (size_t)n * ci * ho * wo;
    shortcut_fwd_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(
        total, ci, h, w, co, stride, ho, wo, pad, x, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_shortcut_bwd(eg_backend *be, int n, int ci, int h, int w, int co,
                      int stride, const float *dy, float *dx, int acc)
{
    EG_TRY(shortcut_check("shortcut backward", ci, co, stride));
    if (n <= 0 || ci <= 0 || h <= 0 || w <= 0) return 0;
    int ho = (h + stride - 1) / stride, wo = (w + stride - 1) / stride;
    int pad = (co - ci) / 2;
    size_t total = (size_t)n * ci * h * w;
    shortcut_bwd_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(
        total, ci, h, w, co, stride, ho, wo, pad, dy, dx, acc);
    CU_CHECK_LAUNCH();
    return 0;
}

/* ---- softmax cross-entropy ---- */

/* One warp per sample (warp-stride over samples). As cpu_xent_fwd: zmax =
 * max of the logits in float, sum = sum of exp(z - zmax) in double,
 * logsum = log(sum) + zmax, probs = (float)exp(z - logsum), loss =
 * (float)(logsum - z[label]). The sum runs lane-strided then over a
 * butterfly, a fixed order (not the CPU's), which every lane ends with
 * bit for bit. A label outside [0, classes) cannot be reported from the
 * device: that sample's loss is NaN (its probabilities are still written)
 * and nothing is read or written out of bounds. */
static __global__ void xent_fwd_kernel(int n, int classes, const float *logits,
                                       const int32_t *labels, float *loss, float *probs)
{
    unsigned lane = threadIdx.x & 31u;
    size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    size_t nwarps = ((size_t)gridDim.x * blockDim.x) >> 5;
    for (size_t i = warp; i < (size_t)n; i += nwarps) {
        const float *z = logits + i * (size_t)classes; // (classes)
        float *p = probs + i * (size_t)classes;        // (classes)
        float zmax = z[0];
        for (int j = (int)lane; j < classes; j += 32) zmax = fmaxf(zmax, z[j]);
        for (int off = 16; off > 0; off >>= 1)
            zmax = fmaxf(zmax, __shfl_xor_sync(FULL_WARP, zmax, off));
        double sum = 0;
        for (int j = (int)lane; j < classes; j += 32) sum += exp((double)z[j] - zmax);
        for (int off = 16; off > 0; off >>= 1)
            sum += __shfl_xor_sync(FULL_WARP, sum, off);
        double logsum = log(sum) + zmax;
        for (int j = (int)lane; j < classes; j += 32)
            p[j] = (float)exp((double)z[j] - logsum);
        if (lane == 0) {
            int32_t y = labels[i];
            loss[i] = y >= 0 && y < classes ? (float)(logsum - z[y]) : XENT_BAD_LABEL;
        }
    }
}

/* dlogits (N, classes) = s probs - s onehot(label), s = scale weight[i]
 * (scale when weight is NULL), one thread per element; the label's entry
 * is (s p) - s, two roundings as on the CPU. A row whose label is outside
 * [0, classes) becomes NaN. */
static __global__ void xent_bwd_kernel(size_t total, int classes, const float *probs,
                                       const int32_t *labels, const float *weight,
                                       float scale, float *dlogits)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        size_t i = e / (size_t)classes;
        int j = (int)(e % (size_t)classes);
        int32_t y = labels[i];
        float s = __fmul_rn(scale, weight ? weight[i] : 1.0f);
        float d;
        if (y < 0 || y >= classes) {
            d = XENT_BAD_LABEL;
        } else {
            d = __fmul_rn(s, probs[e]);
            if (j == y) d = __fsub_rn(d, s);
        }
        dlogits[e] = d;
    }
}

int cuda_xent_fwd(eg_backend *be, int n, int classes, const float *logits,
                  const int32_t *labels, float *loss, float *probs)
{
    if (n <= 0) return 0;
    if (classes < 1)
        return eg_errorf("cross-entropy: %d classes, need at least 1", classes);
    xent_fwd_kernel<<<cu_blocks((size_t)n * 32), CU_THREADS, 0, cuda_stream(be)>>>(
        n, classes, logits, labels, loss, probs);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_xent_bwd(eg_backend *be, int n, int classes, const float *probs,
                  const int32_t *labels, const float *weight, float scale,
                  float *dlogits)
{
    if (n <= 0 || classes <= 0) return 0;
    size_t total = (size_t)n * classes;
    xent_bwd_kernel<<<cu_blocks(total), CU_THREADS, 0, cuda_stream(be)>>>(
        total, classes, probs, labels, weight, scale, dlogits);
    CU_CHECK_LAUNCH();
    return 0;
}
