/* GEMM on cuBLAS. The engine's matrices are row-major; cuBLAS's are
 * column-major, and a row-major (M, N) matrix is the column-major (N, M)
 * transpose, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T with
 * the operands swapped and the dimensions unchanged. */
#include "cuda_impl.h"

int cuda_gemm(eg_backend *be, int trans_a, int trans_b, int m, int n, int k,
              float alpha, const float *a, int lda, const float *b, int ldb,
              float beta, float *c, int ldc)
{
    if (m == 0 || n == 0) return 0;
    CU_CHECK(cublasSgemm(cuda_of(be)->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                         trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb, a,
                         lda, &beta, c, ldc));
    return 0;
}
