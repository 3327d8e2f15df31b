/* Flat-vector operations of the CPU backend: fills, axpy, dot products,
 * Philox Rademacher noise and the SGD / Adam steps over parameter arenas.
 *
 * Elementwise loops run as SIMD loops, on several threads for large n;
 * each element's result depends on neither. Reductions split the vector
 * into chunks whose boundaries depend only on n, sum each chunk in double
 * in a fixed order and combine the chunk sums in index order, so a dot
 * product gives the same bits with any number of threads. */
#include <math.h>

#include "cpu.h"
#include "nn/philox.h"
#include "util/err.h"

/* Vectors shorter than this run on one thread. */
#define PAR_MIN ((size_t)1 << 15)

/* Reductions use at most MAX_CHUNKS chunks of at least MIN_CHUNK elements;
 * both are multiples of the Rademacher block (128). */
#define MAX_CHUNKS 256
#define MIN_CHUNK ((size_t)1 << 14)
#define BLOCK 128

/* Chunk length for a reduction over n elements: a multiple of BLOCK, at
 * least MIN_CHUNK, and small enough that ceil(n / chunk) <= MAX_CHUNKS. */
static size_t reduce_chunk(size_t n)
{
    size_t chunk = (n + MAX_CHUNKS - 1) / MAX_CHUNKS;
    chunk = (chunk + BLOCK - 1) / BLOCK * BLOCK;
    return chunk < MIN_CHUNK ? MIN_CHUNK : chunk;
}

int cpu_fill(eg_backend *be, size_t n, float value, float *x)
{
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] = value;
    return 0;
}

int cpu_axpy(eg_backend *be, size_t n, float alpha, const float *x, float *y)
{
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
    return 0;
}

int cpu_scale(eg_backend *be, size_t n, float alpha, float *x)
{
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= alpha;
    return 0;
}

/* x . y over n elements in double: eight interleaved partial sums (lane j
 * takes the elements i with i mod 8 = j), then the lanes in order, then
 * the tail. */
static double dot_run(size_t n, const float *x, const float *y)
{
    double lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lane[j] += (double)x[i + j] * (double)y[i + j];
    double s = 0;
    for (int j = 0; j < 8; j++) s += lane[j];
    for (; i < n; i++) s += (double)x[i] * (double)y[i];
    return s;
}

int cpu_dot(eg_backend *be, size_t n, const float *x, const float *y,
            double *out)
{
    size_t chunk = reduce_chunk(n);
    long nchunks = (long)((n + chunk - 1) / chunk);
    double part[MAX_CHUNKS];
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (long c = 0; c < nchunks; c++) {
        size_t lo = (size_t)c * chunk;
        size_t len = n - lo < chunk ? n - lo : chunk;
        part[c] = dot_run(len, x + lo, y + lo);
    }
    double s = 0;
    for (long c = 0; c < nchunks; c++) s += part[c];
    *out = s;
    return 0;
}

/* Expands block b of the Rademacher vector (key, stream) into its 128
 * signs, r[j] = element 128 b + j. */
static void rademacher_signs(uint64_t key, uint64_t stream, uint64_t b,
                             float r[BLOCK])
{
    eg_philox_ctr bits = eg_rademacher_block(key, stream, b);
    for (unsigned j = 0; j < BLOCK; j++)
        r[j] = eg_rademacher_from_block(bits, (uint64_t)b * BLOCK + j);
}

static int noise_check(int k)
{
    if (k < 1 || k > EG_NOISE_MAX)
        return eg_errorf("noise: %d vectors in one call, 1..%d allowed", k, EG_NOISE_MAX);
    return 0;
}

int cpu_noise_combine(eg_backend *be, size_t n, int gaussian, uint64_t key, int k,
                      const uint64_t *streams, const float *alpha, const float *x, float *y)
{
    EG_TRY(noise_check(k));
    long nblocks = (long)((n + BLOCK - 1) / BLOCK);
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (long b = 0; b < nblocks; b++) {
        size_t lo = (size_t)b * BLOCK;
        size_t len = n - lo < BLOCK ? n - lo : BLOCK;
        const float *xb = x + lo; // (len)
        float *yb = y + lo;       // (len)
        float t[BLOCK], r[BLOCK];
        for (size_t i = 0; i < len; i++) t[i] = xb[i];
        for (int j = 0; j < k; j++) {
            if (gaussian) {
                for (size_t i = 0; i < len; i++)
                    r[i] = (float)eg_gaussian(key, streams[j], lo + i);
            } else {
                rademacher_signs(key, streams[j], (uint64_t)b, r);
            }
            const float a = alpha[j];
#pragma omp simd
            for (size_t i = 0; i < len; i++) t[i] += a * r[i];
        }
        for (size_t i = 0; i < len; i++) yb[i] = t[i];
    }
    return 0;
}

/* e . g over elements [lo, lo + len) of the noise vector (key, stream), lo
 * a multiple of BLOCK: per block of 128 in index order, in double. */
static double noise_dot_run(int gaussian, uint64_t key, uint64_t stream, size_t lo, size_t len,
                            const float *g)
{
    double s = 0;
    float r[BLOCK];
    for (size_t off = 0; off < len; off += BLOCK) {
        size_t m = len - off < BLOCK ? len - off : BLOCK;
        if (gaussian) {
            for (size_t i = 0; i < m; i++) r[i] = (float)eg_gaussian(key, stream, lo + off + i);
        } else {
            rademacher_signs(key, stream, (lo + off) / BLOCK, r);
        }
        const float *gb = g + lo + off; // (m)
        double bs = 0;
        for (size_t i = 0; i < m; i++) bs += (double)r[i] * (double)gb[i];
        s += bs;
    }
    return s;
}

/* Chunks as for dot (boundaries from n alone); within a chunk the k
 * vectors one after the other, so the chunk of g is read from cache. */
int cpu_noise_dots(eg_backend *be, size_t n, int gaussian, uint64_t key, int k,
                   const uint64_t *streams, const float *g, double *out)
{
    EG_TRY(noise_check(k));
    size_t chunk = reduce_chunk(n);
    long nchunks = (long)((n + chunk - 1) / chunk);
    double part[EG_NOISE_MAX][MAX_CHUNKS];
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (long c = 0; c < nchunks; c++) {
        size_t lo = (size_t)c * chunk;
        size_t len = n - lo < chunk ? n - lo : chunk;
        for (int j = 0; j < k; j++) part[j][c] = noise_dot_run(gaussian, key, streams[j], lo, len, g);
    }
    for (int j = 0; j < k; j++) {
        double s = 0;
        for (long c = 0; c < nchunks; c++) s += part[j][c];
        out[j] = s;
    }
    return 0;
}

/* Follows torch.optim.SGD (dampening 0) operation by operation in float:
 * g = grad + wd theta (only when wd != 0), buf = momentum buf + g or
 * buf = g when first, step = g + momentum buf (nesterov) or buf,
 * theta = theta + (-lr) step. Both sides of each choice are computed and
 * then selected, leaving a branch-free body for the vectoriser. */
int cpu_sgd_step(eg_backend *be, size_t n, float *theta, const float *grad,
                 float *buf, float lr, float momentum, float wd, int nesterov,
                 int first)
{
    if (momentum != 0.0f && !buf)
        return eg_errorf("sgd step: momentum %g needs a momentum buffer",
                         (double)momentum);
    const float neg_lr = -lr;
    const int use_wd = wd != 0.0f;
    if (momentum == 0.0f) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float th = theta[i], gr = grad[i];
            float gw = gr + wd * th;
            float g = use_wd ? gw : gr;
            theta[i] = th + neg_lr * g;
        }
        return 0;
    }
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float th = theta[i], gr = grad[i], prev = buf[i];
        float gw = gr + wd * th;
        float g = use_wd ? gw : gr;
        float bm = prev * momentum + g;
        float b = first ? g : bm;
        buf[i] = b;
        float sn = g + momentum * b;
        float s = nesterov ? sn : b;
        theta[i] = th + neg_lr * s;
    }
    return 0;
}

/* Follows torch.optim.Adam (amsgrad off) operation by operation: the
 * scalars lr / (1 - beta1^t) and sqrt(1 - beta2^t) are computed in double
 * and rounded to float, then in float
 *   g = grad + wd theta (only when wd != 0)
 *   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g g
 *   theta = theta - step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),
 * which is theta - lr mhat / (sqrt(vhat) + eps) up to rounding. */
int cpu_adam_step(eg_backend *be, size_t n, float *theta, const float *grad,
                  float *m, float *v, float lr, float beta1, float beta2,
                  float eps, float wd, int t)
{
    eg_adam_scalars k;
    EG_TRY(eg_adam_scalars_get(lr, beta1, beta2, t, m, v, &k));
    const float neg_step = k.neg_step, bc2_sqrt = k.bc2_sqrt, c1 = k.c1, c2 = k.c2;
    const int use_wd = wd != 0.0f;
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float th = theta[i], gr = grad[i];
        float gw = gr + wd * th;
        float g = use_wd ? gw : gr;
        float mi = m[i] * beta1 + c1 * g;
        float vi = v[i] * beta2 + c2 * g * g;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        theta[i] = th + neg_step * (mi / denom);
    }
    return 0;
}
