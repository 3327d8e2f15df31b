/* Convolution, batch normalisation and max pooling on cuDNN (the stable
 * v9 "legacy" API). Each convolution shape gets a plan once: descriptors
 * plus, per direction, an algorithm cudnnFind* measured (see pick()).
 * TF32 tensor cores are used only when the backend's `tf32` option is on;
 * otherwise FMA math. */
#include <stdlib.h>
#include <string.h>

#include "cuda_impl.h"

/* The largest cuDNN workspace an algorithm may ask for. */
#define MAX_WORKSPACE ((size_t)64 << 20)

enum { DIR_FWD, DIR_DATA, DIR_FILTER, N_DIRS };

typedef struct cuda_conv_plan {
    eg_conv_shape cs;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    int chosen[N_DIRS];     /* direction planned yet */
    int algo[N_DIRS];       /* cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t */
    cudnnMathType_t math[N_DIRS];
    size_t work[N_DIRS];    /* workspace bytes */
    struct cuda_conv_plan *next;
} cuda_conv_plan;

static void plan_free(cuda_conv_plan *p)
{
    if (p->x) cudnnDestroyTensorDescriptor(p->x);
    if (p->y) cudnnDestroyTensorDescriptor(p->y);
    if (p->w) cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
    free(p);
}

static int plan_descriptors(cuda_conv_plan *p)
{
    const eg_conv_shape *cs = &p->cs;
    CU_CHECK(cudnnCreateTensorDescriptor(&p->x));
    CU_CHECK(cudnnCreateTensorDescriptor(&p->y));
    CU_CHECK(cudnnCreateFilterDescriptor(&p->w));
    CU_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    CU_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, cs->n, cs->c,
                                        cs->h, cs->w));
    CU_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, cs->n, cs->k,
                                        cs->p, cs->q));
    CU_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, cs->k, cs->c,
                                        cs->r, cs->s));
    CU_CHECK(cudnnSetConvolution2dDescriptor(p->conv, cs->pad, cs->pad, cs->stride, cs->stride, 1,
                                             1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    return 0;
}

/* The plan for shape cs, made on first use. */
static cuda_conv_plan *plan_for(eg_backend *be, const eg_conv_shape *cs)
{
    cuda_impl *impl = cuda_of(be);
    for (cuda_conv_plan *p = impl->plans; p; p = p->next)
        if (memcmp(&p->cs, cs, sizeof *cs) == 0) return p;
    cuda_conv_plan *p = (cuda_conv_plan *)calloc(1, sizeof *p);
    if (!p) {
        eg_errorf("%s: out of host memory for a convolution plan", be->name);
        return NULL;
    }
    p->cs = *cs;
    if (plan_descriptors(p) != 0) {
        plan_free(p);
        return NULL;
    }
    p->next = impl->plans;
    impl->plans = p;
    return p;
}

/* Whether a cudnnFind* result may be used: it succeeded, fits
 * MAX_WORKSPACE, is deterministic unless the backend allows otherwise, and
 * uses tensor cores only when TF32 is allowed. */
template <typename Perf>
static int usable(const Perf &r, const cuda_impl *impl)
{
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > MAX_WORKSPACE) return 0;
    if (!impl->opt.nondeterministic && r.determinism != CUDNN_DETERMINISTIC) return 0;
    return impl->opt.tf32 || r.mathType == CUDNN_FMA_MATH || r.mathType == CUDNN_DEFAULT_MATH;
}

/* Picks among cudnnFind* results: of the usable ones within 10 % of the
 * fastest, the one with the smallest workspace (the workspace counts in a
 * job's peak memory). Without TF32 the chosen algorithm runs under
 * CUDNN_FMA_MATH, as the search did. Perf is one of
 * cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t. */
template <typename Perf>
static void pick(const Perf *r, int count, const cuda_impl *impl, cuda_conv_plan *p, int dir)
{
    float fastest = -1;
    for (int i = 0; i < count; i++)
        if (usable(r[i], impl) && (fastest < 0 || r[i].time < fastest)) fastest = r[i].time;
    int best = -1;
    for (int i = 0; i < count; i++)
        if (usable(r[i], impl) && r[i].time <= 1.1f * fastest &&
            (best < 0 || r[i].memory < r[best].memory))
            best = i;
    if (best < 0) return;
    p->algo[dir] = (int)r[best].algo;
    p->math[dir] = impl->opt.tf32 ? r[best].mathType : CUDNN_FMA_MATH;
    p->work[dir] = r[best].memory;
    p->chosen[dir] = 1;
}

static int choose(eg_backend *be, cuda_conv_plan *p, int dir)
{
    if (p->chosen[dir]) return 0;
    cuda_impl *impl = cuda_of(be);
    CU_CHECK(cudnnSetConvolutionMathType(p->conv, impl->opt.tf32 ? CUDNN_TENSOR_OP_MATH
                                                                 : CUDNN_FMA_MATH));
    int got = 0;
    if (dir == DIR_FWD) {
        cudnnConvolutionFwdAlgoPerf_t r[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        CU_CHECK(cudnnFindConvolutionForwardAlgorithm(impl->dnn, p->x, p->w, p->conv, p->y,
                                                      CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, r));
        pick(r, got, impl, p, dir);
    } else if (dir == DIR_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        CU_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(
            impl->dnn, p->w, p->y, p->conv, p->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, r));
        pick(r, got, impl, p, dir);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        CU_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(
            impl->dnn, p->x, p->y, p->conv, p->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got,
            r));
        pick(r, got, impl, p, dir);
    }
    if (!p->chosen[dir]) {
        static const char *const names[] = {"forward", "backward data", "backward filter"};
        const eg_conv_shape *cs = &p->cs;
        return eg_errorf("%s: cuDNN has no usable %s algorithm for convolution %dx%dx%dx%d "
                         "* %dx%dx%dx%d stride %d pad %d%s",
                         be->name, names[dir], cs->n, cs->c, cs->h, cs->w, cs->k, cs->c, cs->r,
                         cs->s, cs->stride, cs->pad,
                         impl->opt.nondeterministic ? "" : " (deterministic ones asked for)");
    }
    return 0;
}

/* Plans direction dir of shape cs and returns the workspace it needs. */
static cuda_conv_plan *ready(eg_backend *be, const eg_conv_shape *cs, int dir, void **work)
{
    cuda_conv_plan *p = plan_for(be, cs);
    if (!p || choose(be, p, dir) != 0) return NULL;
    if (cuda_status(cudnnSetConvolutionMathType(p->conv, p->math[dir]),
                    "cudnnSetConvolutionMathType", __FILE__, __LINE__) != 0)
        return NULL;
    *work = NULL;
    if (p->work[dir] && !(*work = cuda_workspace(be, p->work[dir]))) return NULL;
    return p;
}

int cuda_conv_fwd(eg_backend *be, const eg_conv_shape *cs, const float *x, const float *w,
                  float *y)
{
    void *work;
    cuda_conv_plan *p = ready(be, cs, DIR_FWD, &work);
    if (!p) return -1;
    const float one = 1.0f, zero = 0.0f;
    CU_CHECK(cudnnConvolutionForward(cuda_of(be)->dnn, &one, p->x, x, p->w, w, p->conv,
                                     (cudnnConvolutionFwdAlgo_t)p->algo[DIR_FWD], work,
                                     p->work[DIR_FWD], &zero, p->y, y));
    return 0;
}

int cuda_conv_bwd_data(eg_backend *be, const eg_conv_shape *cs, const float *w, const float *dy,
                       float *dx, int acc)
{
    void *work;
    cuda_conv_plan *p = ready(be, cs, DIR_DATA, &work);
    if (!p) return -1;
    const float one = 1.0f, beta = acc ? 1.0f : 0.0f;
    CU_CHECK(cudnnConvolutionBackwardData(cuda_of(be)->dnn, &one, p->w, w, p->y, dy, p->conv,
                                          (cudnnConvolutionBwdDataAlgo_t)p->algo[DIR_DATA], work,
                                          p->work[DIR_DATA], &beta, p->x, dx));
    return 0;
}

int cuda_conv_bwd_filter(eg_backend *be, const eg_conv_shape *cs, const float *x,
                         const float *dy, float *dw)
{
    void *work;
    cuda_conv_plan *p = ready(be, cs, DIR_FILTER, &work);
    if (!p) return -1;
    const float one = 1.0f;
    CU_CHECK(cudnnConvolutionBackwardFilter(
        cuda_of(be)->dnn, &one, p->x, x, p->y, dy, p->conv,
        (cudnnConvolutionBwdFilterAlgo_t)p->algo[DIR_FILTER], work, p->work[DIR_FILTER], &one,
        p->w, dw));
    return 0;
}

/* ---- batch normalisation: t_a describes (N, C, HW, 1), t_b (1, C, 1, 1) ---- */

static int bn_descs(eg_backend *be, int n, int c, int hw)
{
    cuda_impl *impl = cuda_of(be);
    CU_CHECK(cudnnSetTensor4dDescriptor(impl->t_a, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, hw,
                                        1));
    CU_CHECK(cudnnSetTensor4dDescriptor(impl->t_b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, c, 1,
                                        1));
    return 0;
}

static int check_eps(eg_backend *be, float eps)
{
    if ((double)eps < CUDNN_BN_MIN_EPSILON)
        return eg_errorf("%s: batchnorm eps %g is below cuDNN's minimum %g", be->name,
                         (double)eps, CUDNN_BN_MIN_EPSILON);
    return 0;
}

int cuda_bn_fwd_train(eg_backend *be, int n, int c, int hw, const float *x, const float *gamma,
                      const float *beta, float *y, float *run_mean, float *run_var,
                      float momentum, float eps, float *save_mean, float *save_invstd)
{
    cuda_impl *impl = cuda_of(be);
    EG_TRY(check_eps(be, eps));
    EG_TRY(bn_descs(be, n, c, hw));
    const float one = 1.0f, zero = 0.0f;
    CU_CHECK(cudnnBatchNormalizationForwardTraining(
        impl->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, impl->t_a, x, impl->t_a, y, impl->t_b,
        gamma, beta, (double)momentum, run_mean, run_mean ? run_var : NULL, (double)eps,
        save_mean, save_invstd));
    return 0;
}

int cuda_bn_fwd_eval(eg_backend *be, int n, int c, int hw, const float *x, const float *gamma,
                     const float *beta, float *y, const float *run_mean, const float *run_var,
                     float eps)
{
    cuda_impl *impl = cuda_of(be);
    EG_TRY(check_eps(be, eps));
    EG_TRY(bn_descs(be, n, c, hw));
    const float one = 1.0f, zero = 0.0f;
    CU_CHECK(cudnnBatchNormalizationForwardInference(
        impl->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, impl->t_a, x, impl->t_a, y, impl->t_b,
        gamma, beta, run_mean, run_var, (double)eps));
    return 0;
}

/* cuDNN takes the forward's saved mean and 1/sqrt(var + eps); the eps it
 * also asks for is the engine's (nn/net.c), the one the forward used. */
#define BN_EPS 1e-5
int cuda_bn_bwd(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
                const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                float *dgamma, float *dbeta)
{
    cuda_impl *impl = cuda_of(be);
    EG_TRY(bn_descs(be, n, c, hw));
    const float one = 1.0f, zero = 0.0f;
    CU_CHECK(cudnnBatchNormalizationBackward(impl->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                             &one, &one, impl->t_a, x, impl->t_a, dy, impl->t_a,
                                             dx, impl->t_b, gamma, dgamma, dbeta,
                                             BN_EPS, save_mean, save_invstd));
    return 0;
}

/* ---- max pooling: t_a describes x (N, C, H, W), t_b y (N, C, P, Q); with
 * padding, cuda_lft.cu's kernels (-inf padding, PyTorch's first-maximum
 * routing) ---- */

static int pool_descs(eg_backend *be, const eg_pool_shape *ps)
{
    cuda_impl *impl = cuda_of(be);
    CU_CHECK(cudnnSetPooling2dDescriptor(impl->pool_desc, CUDNN_POOLING_MAX_DETERMINISTIC,
                                         CUDNN_NOT_PROPAGATE_NAN, ps->size, ps->size, 0, 0,
                                         ps->stride, ps->stride));
    CU_CHECK(cudnnSetTensor4dDescriptor(impl->t_a, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, ps->n,
                                        ps->c, ps->h, ps->w));
    CU_CHECK(cudnnSetTensor4dDescriptor(impl->t_b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, ps->n,
                                        ps->c, ps->p, ps->q));
    return 0;
}

int cuda_maxpool_fwd(eg_backend *be, const eg_pool_shape *ps, const float *x, float *y)
{
    if (ps->pad) return cuda_maxpool_pad_fwd(be, ps, x, y);
    cuda_impl *impl = cuda_of(be);
    EG_TRY(pool_descs(be, ps));
    const float one = 1.0f, zero = 0.0f;
    CU_CHECK(cudnnPoolingForward(impl->dnn, impl->pool_desc, &one, impl->t_a, x, &zero,
                                 impl->t_b, y));
    return 0;
}

int cuda_maxpool_bwd(eg_backend *be, const eg_pool_shape *ps, const float *x, const float *y,
                     const float *dy, float *dx)
{
    if (ps->pad) return cuda_maxpool_pad_bwd(be, ps, x, y, dy, dx);
    cuda_impl *impl = cuda_of(be);
    EG_TRY(pool_descs(be, ps));
    const float one = 1.0f, zero = 0.0f;
    CU_CHECK(cudnnPoolingBackward(impl->dnn, impl->pool_desc, &one, impl->t_b, y, impl->t_b, dy,
                                  impl->t_a, x, &zero, impl->t_a, dx));
    return 0;
}

int cuda_dnn_init(eg_backend *be)
{
    cuda_impl *impl = cuda_of(be);
    CU_CHECK(cudnnCreateTensorDescriptor(&impl->t_a));
    CU_CHECK(cudnnCreateTensorDescriptor(&impl->t_b));
    CU_CHECK(cudnnCreatePoolingDescriptor(&impl->pool_desc));
    return 0;
}

void cuda_dnn_destroy(eg_backend *be)
{
    cuda_impl *impl = cuda_of(be);
    while (impl->plans) {
        cuda_conv_plan *next = impl->plans->next;
        plan_free(impl->plans);
        impl->plans = next;
    }
    if (impl->t_a) cudnnDestroyTensorDescriptor(impl->t_a);
    if (impl->t_b) cudnnDestroyTensorDescriptor(impl->t_b);
    if (impl->pool_desc) cudnnDestroyPoolingDescriptor(impl->pool_desc);
}
