/* Activations: ReLU on cuDNN; the sigmoid as two small kernels, because its
 * backward here starts from the output alone (the forward may have run in
 * place), which cuDNN's interface does not promise to accept. Vectors are
 * described to cuDNN as (1, 1, 1, len) in pieces of at most CHUNK. */
#include "cuda_impl.h"

#define CHUNK ((size_t)1 << 30)

static int vec_desc(cudnnTensorDescriptor_t d, size_t len)
{
    CU_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1,
                                        (int)len));
    return 0;
}

int cuda_relu_fwd(eg_backend *be, size_t n, const float *x, float *y)
{
    cuda_impl *impl = cuda_of(be);
    const float one = 1.0f, zero = 0.0f;
    for (size_t lo = 0; lo < n; lo += CHUNK) {
        size_t len = n - lo < CHUNK ? n - lo : CHUNK;
        EG_TRY(vec_desc(impl->t_c, len));
        CU_CHECK(cudnnActivationForward(impl->dnn, impl->relu, &one, impl->t_c, x + lo, &zero,
                                        impl->t_c, y + lo));
    }
    return 0;
}

/* ReLU's derivative is read from its output: y > 0 exactly where x > 0, so
 * y serves as cuDNN's x too. */
int cuda_relu_bwd(eg_backend *be, size_t n, const float *y, const float *dy, float *dx)
{
    cuda_impl *impl = cuda_of(be);
    const float one = 1.0f, zero = 0.0f;
    for (size_t lo = 0; lo < n; lo += CHUNK) {
        size_t len = n - lo < CHUNK ? n - lo : CHUNK;
        EG_TRY(vec_desc(impl->t_c, len));
        CU_CHECK(cudnnActivationBackward(impl->dnn, impl->relu, &one, impl->t_c, y + lo,
                                         impl->t_c, dy + lo, impl->t_c, y + lo, &zero, impl->t_c,
                                         dx + lo));
    }
    return 0;
}

__global__ void sigmoid_fwd_kernel(size_t n, const float *x, float *y) // (n), (n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

__global__ void sigmoid_bwd_kernel(size_t n, const float *y, const float *dy, float *dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float s = y[i];
        dx[i] = dy[i] * s * (1.0f - s);
    }
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
