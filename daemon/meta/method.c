#include "meta/method.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

static const char *const names[] = {"none", "evograd", "t1t2"};

int eg_method_parse(const char *name, eg_method *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (eg_method)i;
            return 0;
        }
    return -1;
}

const char *eg_method_name(eg_method m) { return names[m]; }

int eg_evograd_check(const eg_evograd_opts *o)
{
    if (o->k < 2 || o->k > 4096)
        return eg_errorf("evograd.k: %d copies, must be 2..4096", o->k);
    if (o->antithetic && o->k % 2)
        return eg_errorf("evograd.k: antithetic pairs need an even number of copies, not %d", o->k);
    if (!(o->sigma > 0) || !isfinite(o->sigma))
        return eg_errorf("evograd.sigma: %g, must be positive and finite", (double)o->sigma);
    if (!(o->tau > 0) || !isfinite(o->tau))
        return eg_errorf("evograd.tau: %g, must be positive and finite", (double)o->tau);
    return 0;
}

int eg_meta_init(eg_meta *m, eg_task *t, eg_method method,
                 const eg_evograd_opts *evo, uint64_t seed)
{
    *m = (eg_meta){.method = method, .seed = seed, .be = t->be};
    if (method == EG_METHOD_NONE) return 0;
    int k = 2;
    if (method == EG_METHOD_EVOGRAD) {
        EG_TRY(eg_evograd_check(evo));
        m->evo = *evo;
        k = evo->k;
    }
    eg_backend *be = t->be;
    /* A scoped EvoGrad perturbs θ's scope in place and keeps only the
     * scope's original values. */
    int scoped = method == EG_METHOD_EVOGRAD && t->scope_n && t->scope_n < t->P;
    m->buf = eg_alloc_floats(be, scoped ? t->scope_n : t->P);
    m->dl = eg_alloc_floats(be, (size_t)k * t->H);
    m->hyper = eg_alloc_floats(be, t->H);
    m->losses = calloc(k, sizeof(double));
    m->w = calloc(k, sizeof(double));
    m->dot = calloc(k, sizeof(double));
    if (!m->buf || !m->dl || !m->hyper || !m->losses || !m->w || !m->dot) {
        eg_meta_free(m);
        return eg_errorf("meta: out of memory for the %s workspace", names[method]);
    }
    return 0;
}

int eg_meta_hypergrad(eg_meta *m, eg_task *t, long step)
{
    switch (m->method) {
    case EG_METHOD_EVOGRAD: return eg_evograd_hypergrad(m, t, step);
    case EG_METHOD_T1T2: return eg_t1t2_hypergrad(m, t);
    case EG_METHOD_NONE: break;
    }
    return eg_errorf("meta: method none has no hypergradient");
}

void eg_meta_free(eg_meta *m)
{
    if (m->be) {
        m->be->free(m->be, m->buf);
        m->be->free(m->be, m->dl);
        m->be->free(m->be, m->hyper);
    }
    free(m->losses);
    free(m->w);
    free(m->dot);
    *m = (eg_meta){0};
}
