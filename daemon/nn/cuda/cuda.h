/* The CUDA backend's entry points, callable from C; built only when the
 * build has the CUDA backend (EG_HAVE_CUDA). nn/device.h is the interface
 * the rest of the daemon uses. */
#ifndef EG_CUDA_H
#define EG_CUDA_H

#include "nn/device.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The number of CUDA devices, 0 when there is no driver or device. */
int eg_cuda_device_count(void);

/* Name, memory and compute capability of device `ordinal`. */
int eg_cuda_device_info(int ordinal, eg_gpu_info *info);

/* Creates the backend on device `ordinal` (its own stream, cuBLAS and cuDNN
 * handles, caching allocator); NULL with eg_errorf on failure. */
eg_backend *eg_cuda_backend_create(int ordinal, const eg_device_options *opt);

#ifdef __cplusplus
}
#endif

#endif
