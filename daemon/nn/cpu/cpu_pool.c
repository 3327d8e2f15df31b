/* Pooling and the ResNet option-A shortcut on the CPU. */
#include <string.h>

#include "cpu.h"

/* The rows [*a0, *a1) and columns [*b0, *b1) of output (i, j)'s window that
 * lie inside the input: padding is -inf, which never wins. */
static void pool_window(const eg_pool_shape *ps, int i, int j, int *a0, int *a1, int *b0, int *b1)
{
    int r = i * ps->stride - ps->pad, q = j * ps->stride - ps->pad;
    *a0 = r < 0 ? 0 : r;
    *a1 = r + ps->size > ps->h ? ps->h : r + ps->size;
    *b0 = q < 0 ? 0 : q;
    *b1 = q + ps->size > ps->w ? ps->w : q + ps->size;
}

int cpu_maxpool_fwd(eg_backend *be, const eg_pool_shape *ps, const float *x,
                    float *y)
{
    int planes = ps->n * ps->c;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * ps->h * ps->w; // (H, W)
        float *yp = y + (size_t)pl * ps->p * ps->q;       // (P, Q)
        for (int i = 0; i < ps->p; i++)
            for (int j = 0; j < ps->q; j++) {
                int a0, a1, b0, b1;
                pool_window(ps, i, j, &a0, &a1, &b0, &b1);
                float m = xp[(size_t)a0 * ps->w + b0];
                for (int a = a0; a < a1; a++)
                    for (int b = b0; b < b1; b++)
                        if (xp[(size_t)a * ps->w + b] > m) m = xp[(size_t)a * ps->w + b];
                yp[i * ps->q + j] = m;
            }
    }
    return 0;
}

int cpu_maxpool_bwd(eg_backend *be, const eg_pool_shape *ps, const float *x,
                    const float *y, const float *dy, float *dx)
{
    int planes = ps->n * ps->c;
    memset(dx, 0, (size_t)planes * ps->h * ps->w * sizeof(float));
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * ps->h * ps->w; // (H, W)
        float *dxp = dx + (size_t)pl * ps->h * ps->w;     // (H, W)
        const float *yp = y + (size_t)pl * ps->p * ps->q;  // (P, Q)
        const float *dyp = dy + (size_t)pl * ps->p * ps->q;
        for (int i = 0; i < ps->p; i++)
            for (int j = 0; j < ps->q; j++) {
                int a0, a1, b0, b1;
                pool_window(ps, i, j, &a0, &a1, &b0, &b1);
                float m = yp[i * ps->q + j];
                /* Route to the first maximum in row-major order, as PyTorch. */
                for (int a = a0; a < a1; a++)
                    for (int b = b0; b < b1; b++)
                        if (xp[(size_t)a * ps->w + b] == m) {
                            dxp[(size_t)a * ps->w + b] += dyp[i * ps->q + j];
                            goto next;
                        }
            next:;
            }
    }
    return 0;
}

int cpu_avgpool_fwd(eg_backend *be, int n, int c, int hw, const float *x,
                    float *y)
{
    for (int i = 0; i < n * c; i++) {
        const float *p = x + (size_t)i * hw; // (hw)
        double s = 0;
        for (int k = 0; k < hw; k++) s += p[k];
        y[i] = (float)(s / hw);
    }
    return 0;
}

int cpu_avgpool_bwd(eg_backend *be, int n, int c, int hw, const float *dy,
                    float *dx, int acc)
{
    for (int i = 0; i < n * c; i++) {
        float g = dy[i] / (float)hw;
        float *p = dx + (size_t)i * hw; // (hw)
        if (acc)
            for (int k = 0; k < hw; k++) p[k] += g;
        else
            for (int k = 0; k < hw; k++) p[k] = g;
    }
    return 0;
}

int cpu_shortcut_fwd(eg_backend *be, int n, int ci, int h, int w, int co,
                     int stride, const float *x, float *y)
{
    int ho = (h + stride - 1) / stride, wo = (w + stride - 1) / stride;
    int pad = (co - ci) / 2;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < ci; c++) {
            const float *xp = x + ((size_t)b * ci + c) * h * w;           // (H, W)
            float *yp = y + ((size_t)b * co + c + pad) * ho * wo;         // (Ho, Wo)
            for (int i = 0; i < ho; i++)
                for (int j = 0; j < wo; j++)
                    yp[i * wo + j] += xp[(size_t)i * stride * w + j * stride];
        }
    return 0;
}

int cpu_shortcut_bwd(eg_backend *be, int n, int ci, int h, int w, int co,
                     int stride, const float *dy, float *dx, int acc)
{
    int ho = (h + stride - 1) / stride, wo = (w + stride - 1) / stride;
    int pad = (co - ci) / 2;
    if (!acc) memset(dx, 0, (size_t)n * ci * h * w * sizeof(float));
    for (int b = 0; b < n; b++)
        for (int c = 0; c < ci; c++) {
            float *dxp = dx + ((size_t)b * ci + c) * h * w;                // (H, W)
            const float *dyp = dy + ((size_t)b * co + c + pad) * ho * wo;  // (Ho, Wo)
            for (int i = 0; i < ho; i++)
                for (int j = 0; j < wo; j++)
                    dxp[(size_t)i * stride * w + j * stride] += dyp[i * wo + j];
        }
    return 0;
}
