/* Dense algebra on the CPU: OpenBLAS sgemm and bias broadcasts. */
#include <cblas.h>

#include "cpu.h"

int cpu_gemm(eg_backend *be, int trans_a, int trans_b, int m, int n, int k,
             float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b,
                ldb, beta, c, ldc);
    return 0;
}

int cpu_bias_add(eg_backend *be, int rows, int cols, int inner, float *y,
                 const float *b)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            float *p = y + ((size_t)r * cols + c) * inner; // (inner)
            float bc = b[c];
            for (int i = 0; i < inner; i++) p[i] += bc;
        }
    return 0;
}

int cpu_bias_grad(eg_backend *be, int rows, int cols, int inner,
                  const float *dy, float *db)
{
    for (int c = 0; c < cols; c++) {
        double s = 0;
        for (int r = 0; r < rows; r++) {
            const float *p = dy + ((size_t)r * cols + c) * inner; // (inner)
            for (int i = 0; i < inner; i++) s += p[i];
        }
        db[c] += (float)s;
    }
    return 0;
}
