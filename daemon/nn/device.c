/* Device names to backends; the GPU list. With no CUDA backend in the
 * build every GPU question answers "none". */
#include "nn/device.h"

#include <stdio.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"

#ifdef EG_HAVE_CUDA
#include "nn/cuda/cuda.h"
#endif

int eg_gpu_count(void)
{
#ifdef EG_HAVE_CUDA
    return eg_cuda_device_count();
#else
    return 0;
#endif
}

int eg_gpu_info_get(int ordinal, eg_gpu_info *info)
{
#ifdef EG_HAVE_CUDA
    return eg_cuda_device_info(ordinal, info);
#else
    (void)info;
    return eg_errorf("cuda:%d: this build has no CUDA backend (built with CUDA=0)", ordinal);
#endif
}

int eg_device_parse(const char *name, int *ordinal)
{
    *ordinal = -1;
    if (strcmp(name, "cpu") == 0 || strcmp(name, "auto") == 0) return 0;
    if (strcmp(name, "cuda") == 0) {
        *ordinal = 0;
        return 0;
    }
    size_t n = strlen(name);
    if (strncmp(name, "cuda:", 5) == 0 && (n == 6 || n == 7) &&
        strspn(name + 5, "0123456789") == n - 5) {
        *ordinal = (name[5] - '0') * (n == 7 ? 10 : 1) + (n == 7 ? name[6] - '0' : 0);
        return 0;
    }
    return eg_errorf("must be \"cpu\", \"auto\", \"cuda\" or \"cuda:N\", not \"%s\"", name);
}

static void set_resolved(char *resolved, size_t len, const char *name)
{
    if (resolved && len) snprintf(resolved, len, "%s", name);
}

eg_backend *eg_device_open(const char *name, const eg_device_options *opt, char *resolved,
                           size_t len)
{
    int ordinal;
    if (eg_device_parse(name, &ordinal) != 0) {
        eg_errorf("device: %s", eg_last_error());
        return NULL;
    }
    int gpus = eg_gpu_count();
    if (strcmp(name, "auto") == 0) {
        if (gpus > 0) {
            ordinal = 0;
        } else {
            EG_LOG(INFO, "device auto: no usable GPU%s, running on the cpu",
#ifdef EG_HAVE_CUDA
                   ""
#else
                   " (built without the CUDA backend)"
#endif
            );
        }
    }
    if (ordinal < 0) {
        set_resolved(resolved, len, "cpu");
        return eg_cpu_backend_create();
    }
#ifdef EG_HAVE_CUDA
    if (ordinal >= gpus) {
        eg_errorf("device: \"%s\" asked for, but %s", name,
                  gpus ? "there is no such GPU" : "this machine has no usable GPU (no CUDA "
                                                  "driver or device); use \"cpu\" or \"auto\"");
        return NULL;
    }
    eg_backend *be = eg_cuda_backend_create(ordinal, opt);
    if (be) set_resolved(resolved, len, be->name);
    return be;
#else
    (void)opt;
    eg_errorf("device: \"%s\" asked for, but this build has no CUDA backend (built with "
              "CUDA=0); use \"cpu\" or \"auto\"", name);
    return NULL;
#endif
}
