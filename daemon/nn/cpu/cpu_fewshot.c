/* Strided block sums and negative squared distances on the CPU: the
 * operations few-shot episodes are built from (nn/fewshot.c). Sums run in
 * double, in index order. */
#include "cpu.h"

int cpu_block_sum(eg_backend *be, const eg_blocks *bs, float alpha, const float *x, float *y,
                  int acc)
{
    long outer = (long)bs->n0 * bs->n1;
#pragma omp parallel for schedule(static) if (outer * bs->len >= 32768)
    for (long o = 0; o < outer; o++) {
        size_t i = (size_t)(o / bs->n1), j = (size_t)(o % bs->n1);
        const float *xp = x + i * bs->xs0 + j * bs->xs1; // (reps, len), row stride xsr
        float *yp = y + i * bs->ys0 + j * bs->ys1;       // (len)
        for (int k = 0; k < bs->len; k++) {
            double s = 0;
            for (int r = 0; r < bs->reps; r++) s += xp[(size_t)r * bs->xsr + k];
            float v = (float)(s * alpha);
            yp[k] = acc ? yp[k] + v : v;
        }
    }
    return 0;
}

/* Row i of a grouped matrix (see backend.h's sqdist_fwd). */
static size_t grouped_row(int i, int group, int gstride)
{
    return (size_t)(i / group) * gstride + i % group;
}

int cpu_sqdist_fwd(eg_backend *be, int m, int n, int d, const float *a, int group, int gstride,
                   const float *b, float *out)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < m; i++) {
        const float *ap = a + grouped_row(i, group, gstride) * d; // (d)
        for (int j = 0; j < n; j++) {
            const float *bp = b + (size_t)j * d; // (d)
            double s = 0;
            for (int k = 0; k < d; k++) {
                double t = (double)ap[k] - bp[k];
                s += t * t;
            }
            out[(size_t)i * n + j] = (float)-s;
        }
    }
    return 0;
}

int cpu_sqdist_bwd(eg_backend *be, int m, int n, int d, const float *a, int group, int gstride,
                   const float *b, const float *dout, float *da, float *db, int acc)
{
    if (da) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < m; i++) {
            size_t row = grouped_row(i, group, gstride) * d;
            for (int k = 0; k < d; k++) {
                double s = 0;
                for (int j = 0; j < n; j++)
                    s += -2.0 * dout[(size_t)i * n + j] *
                         ((double)a[row + k] - b[(size_t)j * d + k]);
                da[row + k] = acc ? da[row + k] + (float)s : (float)s;
            }
        }
    }
    if (db) {
#pragma omp parallel for schedule(static)
        for (int j = 0; j < n; j++)
            for (int k = 0; k < d; k++) {
                double s = 0;
                for (int i = 0; i < m; i++) {
                    size_t row = grouped_row(i, group, gstride) * d;
                    s +=
                        2.0 * dout[(size_t)i * n + j] * ((double)a[row + k] - b[(size_t)j * d + k]);
                }
                float v = (float)s;
                db[(size_t)j * d + k] = acc ? db[(size_t)j * d + k] + v : v;
            }
    }
    return 0;
}
