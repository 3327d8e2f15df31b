/* The CPU backend's oneDNN engine, stream and plan cache. */
#include <stdlib.h>
#include <string.h>

#include <dnnl_debug.h>

#include "cpu_dnnl.h"
#include "util/err.h"

int cpu_dnnl_check(dnnl_status_t st, const char *what)
{
    if (st == dnnl_success) return 0;
    return eg_errorf("onednn: %s failed: %s", what, dnnl_status2str(st));
}

cpu_dnnl *cpu_dnnl_create(void)
{
    cpu_dnnl *d = calloc(1, sizeof *d);
    if (!d) {
        eg_errorf("cpu: out of memory creating the oneDNN state");
        return NULL;
    }
    if (cpu_dnnl_check(dnnl_engine_create(&d->engine, dnnl_cpu, 0), "creating the CPU engine") ||
        cpu_dnnl_check(dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags),
                       "creating the stream")) {
        cpu_dnnl_destroy(d);
        return NULL;
    }
    return d;
}

void cpu_dnnl_destroy(cpu_dnnl *d)
{
    if (!d) return;
    for (int i = 0; i < d->n_entries; i++) d->entries[i].free_plan(d->entries[i].plan);
    free(d->entries);
    if (d->stream) dnnl_stream_destroy(d->stream);
    if (d->engine) dnnl_engine_destroy(d->engine);
    free(d);
}

void *cpu_dnnl_find(cpu_dnnl *d, const void *key, size_t key_bytes)
{
    for (int i = 0; i < d->n_entries; i++) {
        cpu_dnnl_entry *e = &d->entries[i];
        if (e->key_bytes == key_bytes && memcmp(e->key, key, key_bytes) == 0) return e->plan;
    }
    return NULL;
}

int cpu_dnnl_insert(cpu_dnnl *d, const void *key, size_t key_bytes, void *plan,
                    void (*free_plan)(void *plan))
{
    if (key_bytes > CPU_DNNL_KEY_MAX) {
        free_plan(plan);
        return eg_errorf("onednn: cache key of %zu bytes (at most %d)", key_bytes,
                         CPU_DNNL_KEY_MAX);
    }
    if (d->n_entries == d->cap_entries) {
        int cap = d->cap_entries ? 2 * d->cap_entries : 16;
        cpu_dnnl_entry *e = realloc(d->entries, (size_t)cap * sizeof *e);
        if (!e) {
            free_plan(plan);
            return eg_errorf("cpu: out of memory growing the oneDNN plan cache");
        }
        d->entries = e;
        d->cap_entries = cap;
    }
    cpu_dnnl_entry *e = &d->entries[d->n_entries++];
    memset(e->key, 0, sizeof e->key);
    memcpy(e->key, key, key_bytes);
    e->key_bytes = key_bytes;
    e->plan = plan;
    e->free_plan = free_plan;
    return 0;
}
