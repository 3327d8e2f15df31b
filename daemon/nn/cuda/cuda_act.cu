/* Activations as elementwise kernels. (cuDNN's activation functions are
 * deprecated in cuDNN 9 and promise nothing about the in-place backward
 * the engine runs, where dx is dy and the forward's output stands in for
 * its input.) */
#include "cuda_impl.h"

static __global__ void relu_fwd_kernel(size_t n, const float *x, float *y) // (n), (n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* dx = dy where y > 0, else 0; dx may be dy. */
static __global__ void relu_bwd_kernel(size_t n, const float *y, const float *dy, float *dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

static __global__ void sigmoid_fwd_kernel(size_t n, const float *x, float *y) // (n), (n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x[i])));
}

/* dx = dy y (1 - y), as the CPU rounds it; dx may be dy. */
static __global__ void sigmoid_bwd_kernel(size_t n, const float *y, const float *dy, float *dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float s = y[i];
        dx[i] = __fmul_rn(__fmul_rn(dy[i], s), __fsub_rn(1.0f, s));
    }
}

int cuda_relu_fwd(eg_backend *be, size_t n, const float *x, float *y)
{
    if (!n) return 0;
    relu_fwd_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(n, x, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_relu_bwd(eg_backend *be, size_t n, const float *y, const float *dy, float *dx)
{
    if (!n) return 0;
    relu_bwd_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(n, y, dy, dx);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_sigmoid_fwd(eg_backend *be, size_t n, const float *x, float *y)
{
    if (!n) return 0;
    sigmoid_fwd_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(n, x, y);
    CU_CHECK_LAUNCH();
    return 0;
}

int cuda_sigmoid_bwd(eg_backend *be, size_t n, const float *y, const float *dy, float *dx)
{
    if (!n) return 0;
    sigmoid_bwd_kernel<<<cu_blocks(n), CU_THREADS, 0, cuda_stream(be)>>>(n, y, dy, dx);
    CU_CHECK_LAUNCH();
    return 0;
}
