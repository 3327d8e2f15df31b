/* Batch normalisation and LFT's feature-wise transformation on the CPU, one
 * channel per OpenMP iteration. Statistics are accumulated in double. */
#include <math.h>

#include "cpu.h"

/* Element k of channel ch in sample b of an (N, C, HW) tensor. */
#define AT(t, b, ch, k) (t)[((size_t)(b) * c + (ch)) * hw + (k)]

/* Sums in double over 8 fixed lanes, combined in a fixed order: the
 * compiler can vectorise them and the result does not depend on it. */
#define LANES 8

/* *s1 += Σ (p[k] - m), *s2 += Σ (p[k] - m)^2 over p[0..n). */
static void plane_moments(const float *p, int n, double m, double *s1, double *s2)
{
    double a[LANES] = {0}, b[LANES] = {0};
    int k = 0;
    for (; k + LANES <= n; k += LANES)
#pragma omp simd
        for (int j = 0; j < LANES; j++) {
            double d = p[k + j] - m;
            a[j] += d;
            b[j] += d * d;
        }
    for (; k < n; k++) {
        double d = p[k] - m;
        a[0] += d;
        b[0] += d * d;
    }
    for (int j = 0; j < LANES; j++) *s1 += a[j], *s2 += b[j];
}

/* *sg += Σ g[k], *sgx += Σ g[k] (x[k] - m) over [0..n). */
static void plane_grad_sums(const float *g, const float *x, int n, double m, double *sg,
                            double *sgx)
{
    double a[LANES] = {0}, b[LANES] = {0};
    int k = 0;
    for (; k + LANES <= n; k += LANES)
#pragma omp simd
        for (int j = 0; j < LANES; j++) {
            a[j] += g[k + j];
            b[j] += (double)g[k + j] * (x[k + j] - m);
        }
    for (; k < n; k++) {
        a[0] += g[k];
        b[0] += (double)g[k] * (x[k] - m);
    }
    for (int j = 0; j < LANES; j++) *sg += a[j], *sgx += b[j];
}

int cpu_bn_fwd_train(eg_backend *be, int n, int c, int hw, const float *x,
                     const float *gamma, const float *beta, float *y,
                     float *run_mean, float *run_var, float momentum,
                     float eps, float *save_mean, float *save_invstd)
{
    double count = (double)n * hw;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        /* Moments about the first value, then shifted: one pass, and no
         * cancellation for data far from zero. */
        double shift = x[(size_t)ch * hw], s = 0, ss = 0;
        for (int b = 0; b < n; b++) plane_moments(&AT(x, b, ch, 0), hw, shift, &s, &ss);
        double mean = shift + s / count;
        ss -= s * s / count;
        if (ss < 0) ss = 0;
        double var = ss / count;
        float invstd = (float)(1.0 / sqrt(var + eps));
        float scale = gamma[ch] * invstd, m = (float)mean;
        float bias = beta[ch];
        for (int b = 0; b < n; b++) {
            const float *xp = &AT(x, b, ch, 0);
            float *yp = &AT(y, b, ch, 0);
#pragma omp simd
            for (int k = 0; k < hw; k++) yp[k] = (xp[k] - m) * scale + bias;
        }
        save_mean[ch] = m;
        save_invstd[ch] = invstd;
        if (run_mean) {
            double unbiased = count > 1 ? ss / (count - 1) : ss;
            run_mean[ch] = (1.0f - momentum) * run_mean[ch] + momentum * m;
            run_var[ch] = (1.0f - momentum) * run_var[ch] + momentum * (float)unbiased;
        }
    }
    return 0;
}

int cpu_bn_fwd_eval(eg_backend *be, int n, int c, int hw, const float *x,
                    const float *gamma, const float *beta, float *y,
                    const float *run_mean, const float *run_var, float eps)
{
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float scale = gamma[ch] / sqrtf(run_var[ch] + eps);
        float shift = beta[ch] - run_mean[ch] * scale;
        for (int b = 0; b < n; b++) {
            const float *xp = &AT(x, b, ch, 0);
            float *yp = &AT(y, b, ch, 0);
#pragma omp simd
            for (int k = 0; k < hw; k++) yp[k] = xp[k] * scale + shift;
        }
    }
    return 0;
}

int cpu_bn_bwd(eg_backend *be, int n, int c, int hw, const float *x,
               const float *dy, const float *gamma, const float *save_mean,
               const float *save_invstd, float *dx, float *dgamma,
               float *dbeta)
{
    double count = (double)n * hw;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float m = save_mean[ch], is = save_invstd[ch];
        double sdy = 0, sdyx = 0;
        for (int b = 0; b < n; b++)
            plane_grad_sums(&AT(dy, b, ch, 0), &AT(x, b, ch, 0), hw, m, &sdy, &sdyx);
        sdyx *= is;
        float k1 = gamma[ch] * is;
        float mdy = (float)(sdy / count), mdyx = (float)(sdyx / count);
        for (int b = 0; b < n; b++) {
            const float *xp = &AT(x, b, ch, 0), *gp = &AT(dy, b, ch, 0);
            float *dp = &AT(dx, b, ch, 0);
#pragma omp simd
            for (int k = 0; k < hw; k++) {
                float xhat = (xp[k] - m) * is;
                dp[k] = k1 * (gp[k] - mdy - xhat * mdyx);
            }
        }
        dgamma[ch] += (float)sdyx;
        dbeta[ch] += (float)sdy;
    }
    return 0;
}

int cpu_bn_bwd_eval(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
                    const float *gamma, const float *run_mean, const float *run_var, float eps,
                    float *dx, float *dgamma, float *dbeta)
{
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float is = 1.0f / sqrtf(run_var[ch] + eps);
        float scale = gamma[ch] / sqrtf(run_var[ch] + eps); /* as the forward */
        double m = run_mean[ch], sdy = 0, sdyx = 0;
        for (int b = 0; b < n; b++) {
            plane_grad_sums(&AT(dy, b, ch, 0), &AT(x, b, ch, 0), hw, m, &sdy, &sdyx);
            if (!dx) continue;
            const float *gp = &AT(dy, b, ch, 0);
            float *dp = &AT(dx, b, ch, 0);
#pragma omp simd
            for (int k = 0; k < hw; k++) dp[k] = gp[k] * scale;
        }
        dgamma[ch] += (float)(sdyx * is);
        dbeta[ch] += (float)sdy;
    }
    return 0;
}

/* ---- feature-wise transformation ---- */

/* PyTorch's softplus at beta 100, threshold 20, in float. */
static float softplus100(float t)
{
    float z = t * 100.0f;
    return z > 20.0f ? t : log1pf(expf(z)) / 100.0f;
}

/* Its derivative as PyTorch's backward computes it: 1 above the threshold,
 * else e^z / (e^z + 1). */
static float softplus100_grad(float t)
{
    float z = t * 100.0f;
    if (z > 20.0f) return 1.0f;
    float e = expf(z);
    return e / (e + 1.0f);
}

int cpu_ft_fwd(eg_backend *be, int n, int c, int hw, const float *x, const float *meta,
               const float *noise, float *y)
{
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float g = 1.0f + noise[ch] * softplus100(meta[ch]);
        float bt = noise[c + ch] * softplus100(meta[c + ch]);
        for (int b = 0; b < n; b++) {
            const float *xp = &AT(x, b, ch, 0);
            float *yp = &AT(y, b, ch, 0);
#pragma omp simd
            for (int k = 0; k < hw; k++) yp[k] = g * xp[k] + bt;
        }
    }
    return 0;
}

int cpu_ft_bwd(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
               const float *meta, const float *noise, float *dx, int acc, float *dmeta)
{
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float g = 1.0f + noise[ch] * softplus100(meta[ch]);
        double sdy = 0, sdyx = 0;
        for (int b = 0; b < n; b++) {
            const float *gp = &AT(dy, b, ch, 0);
            if (dmeta) plane_grad_sums(gp, &AT(x, b, ch, 0), hw, 0.0, &sdy, &sdyx);
            if (!dx) continue;
            float *dp = &AT(dx, b, ch, 0);
            if (acc) {
#pragma omp simd
                for (int k = 0; k < hw; k++) dp[k] += g * gp[k];
            } else {
#pragma omp simd
                for (int k = 0; k < hw; k++) dp[k] = g * gp[k];
            }
        }
        if (dmeta) {
            dmeta[ch] += noise[ch] * softplus100_grad(meta[ch]) * (float)sdyx;
            dmeta[c + ch] += noise[c + ch] * softplus100_grad(meta[c + ch]) * (float)sdy;
        }
    }
    return 0;
}
