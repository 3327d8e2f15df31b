/* 2-D convolution on the CPU: im2col over a chunk of samples and one
 * OpenBLAS sgemm per chunk, so small per-image matrices become one large
 * product. The columns are recomputed in backward rather than kept. */
#include <string.h>

#include "cpu.h"
#include "util/err.h"

/* Columns per chunk are capped at this many floats (64 MiB). */
#define COLS_CAP (16u << 20)

/* Samples per chunk: as many as fit the cap, at least one. */
static int chunk_samples(const eg_conv_shape *cs)
{
    size_t per = (size_t)cs->c * cs->r * cs->s * cs->p * cs->q;
    size_t nb = per ? COLS_CAP / per : (size_t)cs->n;
    if (nb < 1) nb = 1;
    return nb > (size_t)cs->n ? cs->n : (int)nb;
}

/* cols (C*R*S, nb*P*Q) = the receptive fields of samples b0 .. b0+nb-1 of
 * x (N, C, H, W); out-of-image taps are zero. */
static void im2col(const eg_conv_shape *cs, const float *x, int b0, int nb,
                   float *cols)
{
    int pq = cs->p * cs->q, rows = cs->c * cs->r * cs->s;
    size_t width = (size_t)nb * pq;
#pragma omp parallel for schedule(static)
    for (int row = 0; row < rows; row++) {
        int c = row / (cs->r * cs->s), r = row / cs->s % cs->r, s = row % cs->s;
        float *out = cols + (size_t)row * width; // (nb, P, Q)
        for (int b = 0; b < nb; b++) {
            const float *xp = x + ((size_t)(b0 + b) * cs->c + c) * cs->h * cs->w; // (H, W)
            for (int p = 0; p < cs->p; p++) {
                int ih = p * cs->stride - cs->pad + r;
                float *o = out + (size_t)b * pq + p * cs->q;
                if (ih < 0 || ih >= cs->h) {
                    memset(o, 0, cs->q * sizeof(float));
                    continue;
                }
                for (int q = 0; q < cs->q; q++) {
                    int iw = q * cs->stride - cs->pad + s;
                    o[q] = (iw >= 0 && iw < cs->w) ? xp[ih * cs->w + iw] : 0.0f;
                }
            }
        }
    }
}

/* dx (N, C, H, W) += the columns cols (C*R*S, nb*P*Q) folded back onto
 * samples b0 .. b0+nb-1. Parallel over input channels: no two threads touch
 * the same element. */
static void col2im(const eg_conv_shape *cs, const float *cols, int b0, int nb,
                   float *dx)
{
    int pq = cs->p * cs->q;
    size_t width = (size_t)nb * pq;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < cs->c; c++)
        for (int r = 0; r < cs->r; r++)
            for (int s = 0; s < cs->s; s++) {
                const float *in = cols + (size_t)((c * cs->r + r) * cs->s + s) * width;
                for (int b = 0; b < nb; b++) {
                    float *xp = dx + ((size_t)(b0 + b) * cs->c + c) * cs->h * cs->w;
                    for (int p = 0; p < cs->p; p++) {
                        int ih = p * cs->stride - cs->pad + r;
                        if (ih < 0 || ih >= cs->h) continue;
                        const float *i = in + (size_t)b * pq + p * cs->q;
                        for (int q = 0; q < cs->q; q++) {
                            int iw = q * cs->stride - cs->pad + s;
                            if (iw >= 0 && iw < cs->w) xp[ih * cs->w + iw] += i[q];
                        }
                    }
                }
            }
}

/* Moves between (nb, K, PQ) sample-major and (K, nb*PQ) channel-major. */
static void to_channel_major(const float *src, float *dst, int nb, int k, int pq)
{
    for (int b = 0; b < nb; b++)
        for (int ch = 0; ch < k; ch++)
            memcpy(dst + ((size_t)ch * nb + b) * pq, src + ((size_t)b * k + ch) * pq,
                   pq * sizeof(float));
}

static void to_sample_major(const float *src, float *dst, int nb, int k, int pq)
{
    for (int b = 0; b < nb; b++)
        for (int ch = 0; ch < k; ch++)
            memcpy(dst + ((size_t)b * k + ch) * pq, src + ((size_t)ch * nb + b) * pq,
                   pq * sizeof(float));
}

/* Scratch for one chunk: columns, then a (K, nb*PQ) staging block. */
static int chunk_scratch(eg_backend *be, const eg_conv_shape *cs, int nb,
                         float **cols, float **stage)
{
    size_t ncols = (size_t)cs->c * cs->r * cs->s * nb * cs->p * cs->q;
    size_t nstage = (size_t)cs->k * nb * cs->p * cs->q;
    float *base = cpu_scratch(be, (ncols + nstage) * sizeof(float));
    if (!base) return -1;
    *cols = base;
    *stage = base + ncols;
    return 0;
}

int cpu_conv_fwd(eg_backend *be, const eg_conv_shape *cs, const float *x,
                 const float *w, float *y)
{
    int chunk = chunk_samples(cs), pq = cs->p * cs->q, crs = cs->c * cs->r * cs->s;
    float *cols, *stage;
    EG_TRY(chunk_scratch(be, cs, chunk, &cols, &stage));
    for (int b0 = 0; b0 < cs->n; b0 += chunk) {
        int nb = cs->n - b0 < chunk ? cs->n - b0 : chunk;
        im2col(cs, x, b0, nb, cols);
        // stage (K, nb*PQ) = w (K, CRS) x cols (CRS, nb*PQ)
        cpu_gemm(be, 0, 0, cs->k, nb * pq, crs, 1.0f, w, crs, cols, nb * pq, 0.0f,
                 stage, nb * pq);
        to_sample_major(stage, y + (size_t)b0 * cs->k * pq, nb, cs->k, pq);
    }
    return 0;
}

int cpu_conv_bwd_data(eg_backend *be, const eg_conv_shape *cs, const float *w,
                      const float *dy, float *dx, int acc)
{
    int chunk = chunk_samples(cs), pq = cs->p * cs->q, crs = cs->c * cs->r * cs->s;
    float *cols, *stage;
    EG_TRY(chunk_scratch(be, cs, chunk, &cols, &stage));
    if (!acc) memset(dx, 0, (size_t)cs->n * cs->c * cs->h * cs->w * sizeof(float));
    for (int b0 = 0; b0 < cs->n; b0 += chunk) {
        int nb = cs->n - b0 < chunk ? cs->n - b0 : chunk;
        to_channel_major(dy + (size_t)b0 * cs->k * pq, stage, nb, cs->k, pq);
        // cols (CRS, nb*PQ) = w^T (CRS, K) x stage (K, nb*PQ)
        cpu_gemm(be, 1, 0, crs, nb * pq, cs->k, 1.0f, w, crs, stage, nb * pq, 0.0f,
                 cols, nb * pq);
        col2im(cs, cols, b0, nb, dx);
    }
    return 0;
}

int cpu_conv_bwd_filter(eg_backend *be, const eg_conv_shape *cs,
                        const float *x, const float *dy, float *dw)
{
    int chunk = chunk_samples(cs), pq = cs->p * cs->q, crs = cs->c * cs->r * cs->s;
    float *cols, *stage;
    EG_TRY(chunk_scratch(be, cs, chunk, &cols, &stage));
    for (int b0 = 0; b0 < cs->n; b0 += chunk) {
        int nb = cs->n - b0 < chunk ? cs->n - b0 : chunk;
        im2col(cs, x, b0, nb, cols);
        to_channel_major(dy + (size_t)b0 * cs->k * pq, stage, nb, cs->k, pq);
        // dw (K, CRS) += stage (K, nb*PQ) x cols^T (nb*PQ, CRS)
        cpu_gemm(be, 0, 1, cs->k, crs, nb * pq, 1.0f, stage, nb * pq, cols, nb * pq,
                 1.0f, dw, crs);
    }
    return 0;
}
