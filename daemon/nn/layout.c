#include "layout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "rng.h"
#include "util/err.h"

size_t eg_layout_add(eg_layout *l, const char *name, size_t count, eg_init init,
                     int fan_in)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        eg_slice *s = realloc(l->slices, (size_t)cap * sizeof *s);
        if (!s) {
            eg_errorf("layout: out of memory");
            return (size_t)-1;
        }
        l->slices = s;
        l->cap = cap;
    }
    eg_slice *s = &l->slices[l->n++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->offset = l->total;
    s->count = count;
    s->init = init;
    s->fan_in = fan_in;
    s->value = 0.0f;
    l->total += count;
    return s->offset;
}

size_t eg_layout_add_const(eg_layout *l, const char *name, size_t count, float value)
{
    size_t off = eg_layout_add(l, name, count, EG_INIT_CONST, 0);
    if (off != (size_t)-1) l->slices[l->n - 1].value = value;
    return off;
}

size_t eg_layout_add_normal(eg_layout *l, const char *name, size_t count, float std)
{
    size_t off = eg_layout_add(l, name, count, EG_INIT_NORMAL, 0);
    if (off != (size_t)-1) l->slices[l->n - 1].value = std;
    return off;
}

void eg_layout_init(const eg_layout *l, float *x, uint64_t seed)
{
    for (int i = 0; i < l->n; i++) {
        const eg_slice *s = &l->slices[i];
        float *p = x + s->offset;
        eg_rng r;
        eg_rng_seed(&r, seed, 1000 + (uint64_t)i); /* one stream per slice */
        double fan = s->fan_in > 0 ? s->fan_in : 1;
        for (size_t k = 0; k < s->count; k++) {
            switch (s->init) {
            case EG_INIT_ZEROS: p[k] = 0.0f; break;
            case EG_INIT_ONES: p[k] = 1.0f; break;
            case EG_INIT_UNIFORM_FAN_IN:
                p[k] = (float)((2.0 * eg_rng_uniform(&r) - 1.0) / sqrt(fan));
                break;
            case EG_INIT_KAIMING_NORMAL:
            case EG_INIT_KAIMING_NORMAL_FAN_OUT:
                p[k] = (float)(eg_rng_normal(&r) * sqrt(2.0 / fan));
                break;
            case EG_INIT_CONST:
                p[k] = s->value;
                break;
            case EG_INIT_NORMAL:
                p[k] = (float)(eg_rng_normal(&r) * s->value);
                break;
            }
        }
    }
}

void eg_layout_free(eg_layout *l)
{
    free(l->slices);
    *l = (eg_layout){0};
}
