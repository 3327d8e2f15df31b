/* Elementwise activations and softmax cross-entropy on the CPU. */
#include <math.h>

#include "cpu.h"
#include "util/err.h"

/* Elementwise loops over more than this many values are split over the
 * OpenMP threads; each thread's part is a branch-free SIMD loop. */
#define PARALLEL_MIN 32768

int cpu_relu_fwd(eg_backend *be, size_t n, const float *x, float *y)
{
#pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
    return 0;
}

int cpu_relu_bwd(eg_backend *be, size_t n, const float *y, const float *dy,
                 float *dx)
{
#pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i];
        dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
    return 0;
}

int cpu_sigmoid_fwd(eg_backend *be, size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
    return 0;
}

int cpu_sigmoid_bwd(eg_backend *be, size_t n, const float *y, const float *dy,
                    float *dx)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
    return 0;
}

int cpu_xent_fwd(eg_backend *be, int n, int classes, const float *logits,
                 const int32_t *labels, float *loss, float *probs)
{
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= classes)
            return eg_errorf("cross-entropy: label %d of sample %d outside [0, %d)",
                             labels[i], i, classes);
        const float *z = logits + (size_t)i * classes; // (classes)
        float *p = probs + (size_t)i * classes;        // (classes)
        float zmax = z[0];
        for (int j = 1; j < classes; j++) zmax = fmaxf(zmax, z[j]);
        double sum = 0;
        for (int j = 0; j < classes; j++) sum += exp((double)z[j] - zmax);
        double logsum = log(sum) + zmax;
        for (int j = 0; j < classes; j++) p[j] = (float)exp((double)z[j] - logsum);
        loss[i] = (float)(logsum - z[labels[i]]);
    }
    return 0;
}

int cpu_xent_bwd(eg_backend *be, int n, int classes, const float *probs,
                 const int32_t *labels, const float *weight, float scale,
                 float *dlogits)
{
    for (int i = 0; i < n; i++) {
        float s = scale * (weight ? weight[i] : 1.0f);
        const float *p = probs + (size_t)i * classes; // (classes)
        float *d = dlogits + (size_t)i * classes;     // (classes)
        for (int j = 0; j < classes; j++) d[j] = s * p[j];
        d[labels[i]] -= s;
    }
    return 0;
}
