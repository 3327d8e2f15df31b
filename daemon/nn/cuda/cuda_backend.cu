/* The CUDA backend: device selection, the error check behind CU_CHECK,
 * memory transfers, and the eg_backend table. The operations live in
 * cuda_blas.cu, cuda_dnn.cu, cuda_elem.cu, cuda_lft.cu, cuda_rotate.cu,
 * cuda_text.cu and cuda_vec.cu. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_impl.h"

extern "C" {
#include "nn/cuda/cuda.h"
}

int cuda_status(cudaError_t e, const char *expr, const char *file, int line)
{
    if (e == cudaSuccess) return 0;
    cudaGetLastError(); /* clears a non-sticky error so the next job starts clean */
    if (e == cudaErrorMemoryAllocation)
        return eg_errorf("cuda: out of GPU memory (%s at %s:%d)", expr, file, line);
    return eg_errorf("cuda: %s failed at %s:%d: %s (%s)", expr, file, line,
                     cudaGetErrorString(e), cudaGetErrorName(e));
}

int cuda_status(cublasStatus_t e, const char *expr, const char *file, int line)
{
    if (e == CUBLAS_STATUS_SUCCESS) return 0;
    if (e == CUBLAS_STATUS_ALLOC_FAILED)
        return eg_errorf("cublas: out of GPU memory (%s at %s:%d)", expr, file, line);
    return eg_errorf("cublas: %s failed at %s:%d: %s", expr, file, line,
                     cublasGetStatusString(e));
}

int cuda_status(cudnnStatus_t e, const char *expr, const char *file, int line)
{
    if (e == CUDNN_STATUS_SUCCESS) return 0;
    if (e == CUDNN_STATUS_ALLOC_FAILED)
        return eg_errorf("cudnn: out of GPU memory (%s at %s:%d)", expr, file, line);
    return eg_errorf("cudnn: %s failed at %s:%d: %s", expr, file, line,
                     cudnnGetErrorString(e));
}

extern "C" int eg_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" int eg_cuda_device_info(int ordinal, eg_gpu_info *info)
{
    int n = eg_cuda_device_count();
    if (ordinal < 0 || ordinal >= n)
        return eg_errorf("cuda:%d: no such GPU (%d found)", ordinal, n);
    cudaDeviceProp prop;
    CU_CHECK(cudaGetDeviceProperties(&prop, ordinal));
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", prop.name);
    info->total_bytes = prop.totalGlobalMem;
    info->major = prop.major;
    info->minor = prop.minor;
    int prev = 0;
    CU_CHECK(cudaGetDevice(&prev));
    CU_CHECK(cudaSetDevice(ordinal));
    size_t free_bytes = 0, total = 0;
    int rc = cuda_status(cudaMemGetInfo(&free_bytes, &total), "cudaMemGetInfo", __FILE__, __LINE__);
    cudaSetDevice(prev);
    if (rc != 0) return -1;
    info->free_bytes = free_bytes;
    return 0;
}

static int cuda_upload(eg_backend *be, void *dst, const void *host, size_t bytes)
{
    if (!bytes) return 0;
    CU_CHECK(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, cuda_stream(be)));
    /* The host buffer may be reused as soon as this returns. */
    CU_CHECK(cudaStreamSynchronize(cuda_stream(be)));
    return 0;
}

static int cuda_download(eg_backend *be, void *host, const void *src, size_t bytes)
{
    if (!bytes) return 0;
    CU_CHECK(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, cuda_stream(be)));
    CU_CHECK(cudaStreamSynchronize(cuda_stream(be)));
    return 0;
}

static int cuda_copy(eg_backend *be, void *dst, const void *src, size_t bytes)
{
    if (!bytes || dst == src) return 0;
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_stream(be)));
    return 0;
}

static int cuda_sync(eg_backend *be)
{
    CU_CHECK(cudaStreamSynchronize(cuda_stream(be)));
    return 0;
}

static void cuda_destroy(eg_backend *be)
{
    if (!be) return;
    cuda_impl *impl = cuda_of(be);
    if (impl) {
        cudaSetDevice(impl->ordinal);
        if (impl->stream) cudaStreamSynchronize(impl->stream);
        cuda_dnn_destroy(be);
        if (impl->blas) cublasDestroy(impl->blas);
        if (impl->dnn) cudnnDestroy(impl->dnn);
        cuda_pool_destroy(be);
        if (impl->result_host) cudaFreeHost(impl->result_host);
        if (impl->stream) cudaStreamDestroy(impl->stream);
        /* A sticky error (an illegal address, say) poisons the device's
         * context for the whole process; resetting it lets the next job on
         * this device start clean. The daemon runs one worker, hence one
         * backend at a time, per device. */
        if (cudaDeviceSynchronize() != cudaSuccess) cudaDeviceReset();
        cudaGetLastError();
        free(impl);
    }
    free(be);
}

/* Everything create() sets up after the table: stream, library handles on
 * it, TF32 policy, reduction buffers and the cuDNN descriptors. */
static int cuda_setup(eg_backend *be)
{
    cuda_impl *impl = cuda_of(be);
    CU_CHECK(cudaSetDevice(impl->ordinal));
    CU_CHECK(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
    CU_CHECK(cublasCreate(&impl->blas));
    CU_CHECK(cublasSetStream(impl->blas, impl->stream));
    CU_CHECK(cublasSetMathMode(impl->blas, impl->opt.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                          : CUBLAS_PEDANTIC_MATH));
    CU_CHECK(cudnnCreate(&impl->dnn));
    CU_CHECK(cudnnSetStream(impl->dnn, impl->stream));
    CU_CHECK(cudaMallocHost((void **)&impl->result_host, EG_NOISE_MAX * sizeof(double)));
    if (!(impl->parts = (double *)cuda_alloc(be, CU_MAX_PARTS * sizeof(double)))) return -1;
    if (!(impl->blas_work = cuda_alloc(be, BLAS_WORKSPACE))) return -1;
    CU_CHECK(cublasSetWorkspace(impl->blas, impl->blas_work, BLAS_WORKSPACE));
    return cuda_dnn_init(be);
}

extern "C" eg_backend *eg_cuda_backend_create(int ordinal, const eg_device_options *opt)
{
    int n = eg_cuda_device_count();
    if (ordinal < 0 || ordinal >= n) {
        eg_errorf("cuda:%d: no such GPU (%d found%s)", ordinal, n,
                  n ? "" : ": no CUDA driver or device on this machine");
        return NULL;
    }
    eg_backend *be = (eg_backend *)calloc(1, sizeof *be);
    cuda_impl *impl = (cuda_impl *)calloc(1, sizeof *impl);
    if (!be || !impl) {
        free(be);
        free(impl);
        eg_errorf("cuda: out of host memory creating the backend");
        return NULL;
    }
    impl->ordinal = ordinal;
    snprintf(impl->name, sizeof impl->name, "cuda:%d", ordinal);
    if (opt) impl->opt = *opt;
    be->name = impl->name;
    be->impl = impl;
    be->recompute = 1; /* GPU memory is the scarce resource, arithmetic is not */
    be->alloc = cuda_alloc;
    be->free = cuda_free;
    be->upload = cuda_upload;
    be->download = cuda_download;
    be->copy = cuda_copy;
    be->sync = cuda_sync;
    be->destroy = cuda_destroy;
    if (!impl->opt.no_graphs) {
        be->capture_begin = cuda_capture_begin;
        be->capture_end = cuda_capture_end;
        be->replay = cuda_replay;
        be->unit_free = cuda_unit_free;
    }
    be->gemm = cuda_gemm;
    be->gemm_batched = cuda_gemm_batched;
    be->bias_add = cuda_bias_add;
    be->bias_grad = cuda_bias_grad;
    be->conv_fwd = cuda_conv_fwd;
    be->conv_bwd_data = cuda_conv_bwd_data;
    be->conv_bwd_filter = cuda_conv_bwd_filter;
    be->bn_fwd_train = cuda_bn_fwd_train;
    be->bn_fwd_eval = cuda_bn_fwd_eval;
    be->bn_bwd = cuda_bn_bwd;
    be->bn_bwd_eval = cuda_bn_bwd_eval;
    be->ft_fwd = cuda_ft_fwd;
    be->ft_bwd = cuda_ft_bwd;
    be->embed_fwd = cuda_embed_fwd;
    be->embed_bwd = cuda_embed_bwd;
    be->layernorm_fwd = cuda_layernorm_fwd;
    be->layernorm_bwd = cuda_layernorm_bwd;
    be->gelu_fwd = cuda_gelu_fwd;
    be->gelu_bwd = cuda_gelu_bwd;
    be->softmax_fwd = cuda_softmax_fwd;
    be->softmax_bwd = cuda_softmax_bwd;
    be->dropout = cuda_dropout;
    be->rtn_gate_fwd = cuda_rtn_gate_fwd;
    be->rtn_gate_bwd = cuda_rtn_gate_bwd;
    be->relu_fwd = cuda_relu_fwd;
    be->relu_bwd = cuda_relu_bwd;
    be->sigmoid_fwd = cuda_sigmoid_fwd;
    be->sigmoid_bwd = cuda_sigmoid_bwd;
    be->maxpool_fwd = cuda_maxpool_fwd;
    be->maxpool_bwd = cuda_maxpool_bwd;
    be->avgpool_fwd = cuda_avgpool_fwd;
    be->avgpool_bwd = cuda_avgpool_bwd;
    be->block_sum = cuda_block_sum;
    be->sqdist_fwd = cuda_sqdist_fwd;
    be->sqdist_bwd = cuda_sqdist_bwd;
    be->shortcut_fwd = cuda_shortcut_fwd;
    be->shortcut_bwd = cuda_shortcut_bwd;
    be->xent_fwd = cuda_xent_fwd;
    be->xent_bwd = cuda_xent_bwd;
    be->rotate_fwd = cuda_rotate_fwd;
    be->rotate_bwd = cuda_rotate_bwd;
    be->fill = cuda_fill;
    be->axpy = cuda_axpy;
    be->scale = cuda_scale;
    be->dot = cuda_dot;
    be->noise_combine = cuda_noise_combine;
    be->noise_dots = cuda_noise_dots;
    be->sgd_step = cuda_sgd_step;
    be->adam_step = cuda_adam_step;
    if (cuda_setup(be) != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", eg_last_error());
        cuda_destroy(be);
        eg_errorf("cuda:%d: cannot start the backend: %s", ordinal, why);
        return NULL;
    }
    return be;
}
