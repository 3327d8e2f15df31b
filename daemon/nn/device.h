/* Devices: opening the backend for a device name and listing the GPUs.
 *
 * Names are "cpu", "cuda:N" (GPU N), "cuda" (GPU 0) and "auto" (GPU 0 when
 * one is usable, else the CPU). Builds without the CUDA backend (CUDA=0)
 * see no GPUs. */
#ifndef EG_DEVICE_H
#define EG_DEVICE_H

#include <stddef.h>

#include "nn/backend.h"

/* Options of a GPU backend. Zero (or no options) is the default: full fp32
 * and deterministic cuDNN algorithms, so the same seed on the same device
 * gives the same losses. */
typedef struct eg_device_options {
    int tf32;             /* TF32 tensor cores for convolutions and GEMM */
    int nondeterministic; /* let cuDNN pick algorithms whose sums run in
                             timing-dependent order (often faster) */
    int no_graphs;        /* run every operation eagerly, no CUDA graphs */
} eg_device_options;

/* One GPU as the driver reports it. */
typedef struct eg_gpu_info {
    char name[256];
    size_t total_bytes, free_bytes;
    int major, minor; /* compute capability */
} eg_gpu_info;

/* The number of usable GPUs: 0 with no CUDA backend, driver or device. */
int eg_gpu_count(void);

/* Fills *info for GPU `ordinal`; -1 with eg_errorf if there is none. */
int eg_gpu_info_get(int ordinal, eg_gpu_info *info);

/* Checks a device name ("cpu", "cuda", "cuda:N", "auto") without opening
 * anything; *ordinal gets N (0 for "cuda", -1 for "cpu" and "auto"). */
int eg_device_parse(const char *name, int *ordinal);


/* Opens the backend for device `name` (opt may be NULL). "auto" falls back
 * to the CPU with a log line when no GPU is usable; "cuda" and "cuda:N"
 * fail with an error saying why. `resolved` (len bytes, may be NULL) gets
 * the device actually opened, like "cpu" or "cuda:0". */
eg_backend *eg_device_open(const char *name, const eg_device_options *opt,
                           char *resolved, size_t len);

#endif
