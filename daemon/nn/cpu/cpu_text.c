/* Token-encoder operations on the CPU: batched GEMMs, embeddings,
 * LayerNorm, GELU, masked softmax, Philox dropout, MetaXL's RTN gate. */
#include <cblas.h>
#include <math.h>

#include "cpu.h"
#include "nn/philox.h"

#define PARALLEL_MIN 32768

int cpu_gemm_batched(eg_backend *be, const eg_gemm_batch *gb, int trans_a, int trans_b, int m,
                     int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                     float beta, float *c, int ldc)
{
    for (int i = 0; i < gb->n0; i++)
        for (int j = 0; j < gb->n1; j++)
            cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                        trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                        a + i * gb->sa0 + j * gb->sa1, lda, b + i * gb->sb0 + j * gb->sb1, ldb,
                        beta, c + i * gb->sc0 + j * gb->sc1, ldc);
    return 0;
}

int cpu_embed_fwd(eg_backend *be, int n, int d, const int32_t *ids, const float *table, float *y,
                  int acc)
{
#pragma omp parallel for schedule(static) if ((size_t)n * d > PARALLEL_MIN)
    for (int i = 0; i < n; i++) {
        const float *row = table + (size_t)ids[i] * d; // (d)
        float *out = y + (size_t)i * d;                // (d)
        if (acc)
            for (int j = 0; j < d; j++) out[j] += row[j];
        else
            for (int j = 0; j < d; j++) out[j] = row[j];
    }
    return 0;
}

int cpu_embed_bwd(eg_backend *be, int n, int d, const int32_t *ids, int skip, const float *dy,
                  float *dtable)
{
    for (int i = 0; i < n; i++) {
        if (ids[i] == skip) continue;
        float *row = dtable + (size_t)ids[i] * d; // (d)
        const float *g = dy + (size_t)i * d;      // (d)
        for (int j = 0; j < d; j++) row[j] += g[j];
    }
    return 0;
}

int cpu_layernorm_fwd(eg_backend *be, int n, int d, const float *x, const float *gamma,
                      const float *beta, float eps, float *y, float *save_mean, float *save_rstd)
{
#pragma omp parallel for schedule(static) if ((size_t)n * d > PARALLEL_MIN)
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * d; // (d)
        float *yr = y + (size_t)r * d;       // (d)
        double s = 0, ss = 0;
        for (int j = 0; j < d; j++) s += xr[j];
        double mean = s / d;
        for (int j = 0; j < d; j++) {
            double c = xr[j] - mean;
            ss += c * c;
        }
        double rstd = 1.0 / sqrt(ss / d + eps);
        float fm = (float)mean, fr = (float)rstd;
        for (int j = 0; j < d; j++) yr[j] = (xr[j] - fm) * fr * gamma[j] + beta[j];
        save_mean[r] = fm;
        save_rstd[r] = fr;
    }
    return 0;
}

int cpu_layernorm_bwd(eg_backend *be, int n, int d, const float *x, const float *dy,
                      const float *gamma, const float *save_mean, const float *save_rstd,
                      float *dx, int acc, float *dgamma, float *dbeta)
{
    if (dx) {
#pragma omp parallel for schedule(static) if ((size_t)n * d > PARALLEL_MIN)
        for (int r = 0; r < n; r++) {
            const float *xr = x + (size_t)r * d;   // (d)
            const float *gr = dy + (size_t)r * d;  // (d)
            float *out = dx + (size_t)r * d;       // (d)
            float m = save_mean[r], rs = save_rstd[r];
            double sg = 0, sgx = 0;
            for (int j = 0; j < d; j++) {
                double g = (double)gr[j] * gamma[j];
                sg += g;
                sgx += g * ((xr[j] - m) * rs);
            }
            float mg = (float)(sg / d), mgx = (float)(sgx / d);
            for (int j = 0; j < d; j++) {
                float xh = (xr[j] - m) * rs;
                float v = rs * (gr[j] * gamma[j] - mg - xh * mgx);
                out[j] = acc ? out[j] + v : v;
            }
        }
    }
#pragma omp parallel for schedule(static) if ((size_t)n * d > PARALLEL_MIN)
    for (int j = 0; j < d; j++) {
        double sg = 0, sb = 0;
        for (int r = 0; r < n; r++) {
            float g = dy[(size_t)r * d + j];
            sg += (double)g * ((x[(size_t)r * d + j] - save_mean[r]) * save_rstd[r]);
            sb += g;
        }
        dgamma[j] += (float)sg;
        dbeta[j] += (float)sb;
    }
    return 0;
}

int cpu_gelu_fwd(eg_backend *be, size_t n, const float *x, float *y)
{
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
    }
    return 0;
}

int cpu_gelu_bwd(eg_backend *be, size_t n, const float *x, const float *dy, float *dx)
{
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
        float pdf = expf(-0.5f * v * v) * (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
    return 0;
}

int cpu_softmax_fwd(eg_backend *be, int rows, int cols, int group, const int32_t *lens,
                    const float *x, float *y)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols; // (cols)
        float *yr = y + (size_t)r * cols;       // (cols)
        int len = lens ? lens[r / group] : cols;
        if (len < 1 || len > cols) len = cols;
        float mx = xr[0];
        for (int j = 1; j < len; j++) mx = fmaxf(mx, xr[j]);
        double s = 0;
        for (int j = 0; j < len; j++) {
            float e = expf(xr[j] - mx);
            yr[j] = e;
            s += e;
        }
        float inv = (float)(1.0 / s);
        for (int j = 0; j < len; j++) yr[j] *= inv;
        for (int j = len; j < cols; j++) yr[j] = 0.0f;
    }
    return 0;
}

int cpu_softmax_bwd(eg_backend *be, int rows, int cols, const float *y, const float *dy,
                    float *dx)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        const float *yr = y + (size_t)r * cols;  // (cols)
        const float *gr = dy + (size_t)r * cols; // (cols)
        float *out = dx + (size_t)r * cols;      // (cols)
        double s = 0;
        for (int j = 0; j < cols; j++) s += (double)yr[j] * gr[j];
        float fs = (float)s;
        for (int j = 0; j < cols; j++) out[j] = yr[j] * (gr[j] - fs);
    }
    return 0;
}

int cpu_dropout(eg_backend *be, size_t n, float p, uint64_t key, uint64_t stream, const float *x,
                float *y)
{
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = eg_dropout_keep(p, key, stream, i) ? x[i] * scale : 0.0f;
    return 0;
}

/* sigmoid as cpu_sigmoid_fwd computes it. */
static float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

int cpu_rtn_gate_fwd(eg_backend *be, int n, int d, const float *h, const float *o, float *y)
{
    for (int r = 0; r < n; r++) {
        const float *orow = o + (size_t)r * (d + 1); // (d + 1)
        float s = sigm(orow[d]);
        for (int j = 0; j < d; j++) y[(size_t)r * d + j] = h[(size_t)r * d + j] + s * orow[j];
    }
    return 0;
}

int cpu_rtn_gate_bwd(eg_backend *be, int n, int d, const float *o, const float *dy, float *dout)
{
    for (int r = 0; r < n; r++) {
        const float *orow = o + (size_t)r * (d + 1); // (d + 1)
        const float *g = dy + (size_t)r * d;         // (d)
        float *out = dout + (size_t)r * (d + 1);     // (d + 1)
        float s = sigm(orow[d]);
        double sum = 0;
        for (int j = 0; j < d; j++) {
            out[j] = s * g[j];
            sum += (double)g[j] * orow[j];
        }
        out[d] = (float)(s * (1.0f - s) * sum);
    }
    return 0;
}
