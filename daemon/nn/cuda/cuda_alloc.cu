/* The CUDA backend's caching allocator. Sizes round up to 512 bytes (2 MiB
 * above 1 MiB) and a freed block waits in the pool for the next request of
 * the same rounded size: all work runs on the backend's one stream, so a
 * block reused by a later operation is only touched after the earlier
 * ones. cur_bytes / peak_bytes count the rounded sizes of blocks handed out
 * (like torch.cuda.max_memory_allocated); the pool's reserved bytes also
 * count the cached ones. */
#include <stdlib.h>

#include "cuda_impl.h"

static size_t round_size(size_t bytes)
{
    const size_t small = 512, large = (size_t)2 << 20;
    if (bytes == 0) bytes = 1;
    if (bytes <= ((size_t)1 << 20)) return (bytes + small - 1) / small * small;
    return (bytes + large - 1) / large * large;
}

/* A cached free block of exactly `bytes`, or NULL. */
static cuda_block *find_free(cuda_pool *p, size_t bytes)
{
    for (size_t i = 0; i < p->n; i++)
        if (!p->blocks[i].used && p->blocks[i].bytes == bytes) return &p->blocks[i];
    return NULL;
}

static cuda_block *find_ptr(cuda_pool *p, const void *ptr)
{
    for (size_t i = p->n; i-- > 0;)
        if (p->blocks[i].ptr == ptr) return &p->blocks[i];
    return NULL;
}

void cuda_pool_trim(eg_backend *be)
{
    cuda_impl *impl = cuda_of(be);
    cuda_pool *p = &impl->pool;
    if (impl->stream) cudaStreamSynchronize(impl->stream);
    size_t kept = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->blocks[i].used) {
            p->blocks[kept++] = p->blocks[i];
        } else {
            cudaFree(p->blocks[i].ptr);
            p->reserved_bytes -= p->blocks[i].bytes;
        }
    }
    p->n = kept;
    cudaGetLastError();
}

/* cudaMalloc with one retry after returning the cache to the driver. */
static void *device_malloc(eg_backend *be, size_t bytes)
{
    void *ptr = NULL;
    cudaError_t e = cudaMalloc(&ptr, bytes);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        cuda_pool_trim(be);
        e = cudaMalloc(&ptr, bytes);
    }
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        cudaGetLastError();
        if (e == cudaErrorMemoryAllocation)
            eg_errorf("%s: out of GPU memory allocating %.1f MiB (this job holds %.1f MiB, "
                      "the GPU has %.1f MiB free of %.1f MiB)",
                      be->name, bytes / 1048576.0, cuda_of(be)->pool.reserved_bytes / 1048576.0,
                      free_b / 1048576.0, total_b / 1048576.0);
        else
            eg_errorf("%s: cudaMalloc of %zu bytes failed: %s", be->name, bytes,
                      cudaGetErrorString(e));
        return NULL;
    }
    return ptr;
}

void *cuda_alloc(eg_backend *be, size_t bytes)
{
    cuda_impl *impl = cuda_of(be);
    cuda_pool *p = &impl->pool;
    size_t size = round_size(bytes);
    cuda_block *b = find_free(p, size);
    if (!b) {
        if (p->n == p->cap) {
            size_t cap = p->cap ? 2 * p->cap : 64;
            cuda_block *grown = (cuda_block *)realloc(p->blocks, cap * sizeof *grown);
            if (!grown) {
                eg_errorf("%s: out of host memory for the allocator's table", be->name);
                return NULL;
            }
            p->blocks = grown;
            p->cap = cap;
        }
        void *ptr = device_malloc(be, size);
        if (!ptr) return NULL;
        b = &p->blocks[p->n++];
        *b = (cuda_block){ptr, size, 0};
        p->reserved_bytes += size;
    }
    if (cuda_status(cudaMemsetAsync(b->ptr, 0, size, impl->stream), "cudaMemsetAsync",
                    __FILE__, __LINE__) != 0)
        return NULL;
    b->used = 1;
    be->cur_bytes += size;
    if (be->cur_bytes > be->peak_bytes) be->peak_bytes = be->cur_bytes;
    return b->ptr;
}

void cuda_free(eg_backend *be, void *ptr)
{
    if (!ptr) return;
    cuda_block *b = find_ptr(&cuda_of(be)->pool, ptr);
    if (!b || !b->used) return;
    b->used = 0;
    be->cur_bytes -= b->bytes;
}

void cuda_pool_destroy(eg_backend *be)
{
    cuda_pool *p = &cuda_of(be)->pool;
    for (size_t i = 0; i < p->n; i++) cudaFree(p->blocks[i].ptr);
    free(p->blocks);
    *p = (cuda_pool){0};
}

void *cuda_workspace(eg_backend *be, size_t bytes)
{
    cuda_impl *impl = cuda_of(be);
    if (bytes <= impl->work_bytes) return impl->work;
    cuda_free(be, impl->work);
    impl->work = NULL;
    impl->work_bytes = 0;
    be->capture_epoch++;
    void *w = cuda_alloc(be, bytes);
    if (!w) return NULL;
    impl->work = w;
    impl->work_bytes = bytes;
    return w;
}
