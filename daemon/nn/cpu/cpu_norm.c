/* Batch normalisation on the CPU, one channel per OpenMP iteration.
 * Statistics are accumulated in double. */
#include <math.h>

#include "cpu.h"

/* Element k of channel ch in sample b of an (N, C, HW) tensor. */
#define AT(t, b, ch, k) (t)[((size_t)(b) * c + (ch)) * hw + (k)]

int cpu_bn_fwd_train(eg_backend *be, int n, int c, int hw, const float *x,
                     const float *gamma, const float *beta, float *y,
                     float *run_mean, float *run_var, float momentum,
                     float eps, float *save_mean, float *save_invstd)
{
    double count = (double)n * hw;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double s = 0, ss = 0;
        for (int b = 0; b < n; b++)
            for (int k = 0; k < hw; k++) s += AT(x, b, ch, k);
        double mean = s / count;
        for (int b = 0; b < n; b++)
            for (int k = 0; k < hw; k++) {
                double d = AT(x, b, ch, k) - mean;
                ss += d * d;
            }
        double var = ss / count;
        float invstd = (float)(1.0 / sqrt(var + eps));
        float scale = gamma[ch] * invstd, m = (float)mean;
        for (int b = 0; b < n; b++)
            for (int k = 0; k < hw; k++)
                AT(y, b, ch, k) = (AT(x, b, ch, k) - m) * scale + beta[ch];
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
        for (int b = 0; b < n; b++)
            for (int k = 0; k < hw; k++) AT(y, b, ch, k) = AT(x, b, ch, k) * scale + shift;
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
            for (int k = 0; k < hw; k++) {
                float g = AT(dy, b, ch, k);
                sdy += g;
                sdyx += (double)g * (AT(x, b, ch, k) - m) * is;
            }
        float k1 = gamma[ch] * is;
        float mdy = (float)(sdy / count), mdyx = (float)(sdyx / count);
        for (int b = 0; b < n; b++)
            for (int k = 0; k < hw; k++) {
                float xhat = (AT(x, b, ch, k) - m) * is;
                AT(dx, b, ch, k) = k1 * (AT(dy, b, ch, k) - mdy - xhat * mdyx);
            }
        dgamma[ch] += (float)sdyx;
        dbeta[ch] += (float)sdy;
    }
    return 0;
}
