/* The CPU backend's oneDNN state: one CPU engine, one stream and a cache of
 * plans (primitives and the memory objects around them) built the first
 * time an operation meets a shape and reused on every later call, so a
 * steady-state training step creates nothing. oneDNN runs its parallel
 * loops on the same OpenMP threads as the rest of the backend. */
#ifndef EG_CPU_DNNL_H
#define EG_CPU_DNNL_H

#include <stddef.h>

#include <dnnl.h>

#include "nn/backend.h"

/* Longest cache key, in bytes. */
#define CPU_DNNL_KEY_MAX 64

typedef struct cpu_dnnl_entry {
    unsigned char key[CPU_DNNL_KEY_MAX];
    size_t key_bytes;
    void *plan;
    void (*free_plan)(void *plan);
} cpu_dnnl_entry;

typedef struct cpu_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    cpu_dnnl_entry *entries;
    int n_entries, cap_entries;
} cpu_dnnl;

/* Creates the engine, the stream and an empty cache; NULL with eg_errorf. */
cpu_dnnl *cpu_dnnl_create(void);

/* Frees every cached plan, the stream and the engine. NULL is a no-op. */
void cpu_dnnl_destroy(cpu_dnnl *d);

/* The oneDNN state of a CPU backend (defined in cpu_backend.c). */
cpu_dnnl *cpu_dnnl_of(eg_backend *be);

/* 0 when st is dnnl_success, else -1 with eg_errorf naming `what`. */
int cpu_dnnl_check(dnnl_status_t st, const char *what);

/* The plan cached under key (key_bytes <= CPU_DNNL_KEY_MAX), or NULL. */
void *cpu_dnnl_find(cpu_dnnl *d, const void *key, size_t key_bytes);

/* Caches plan under key; from then on the cache owns it and frees it with
 * free_plan. On failure (-1 with eg_errorf) the plan is freed at once. */
int cpu_dnnl_insert(cpu_dnnl *d, const void *key, size_t key_bytes, void *plan,
                    void (*free_plan)(void *plan));

#endif
