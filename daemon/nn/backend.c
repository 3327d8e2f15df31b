#include "backend.h"

#include <math.h>

#include "util/err.h"

int eg_conv_shape_finish(eg_conv_shape *cs)
{
    if (cs->stride < 1 || cs->pad < 0 || cs->r < 1 || cs->s < 1)
        return eg_errorf("conv: bad kernel %dx%d, stride %d, pad %d", cs->r,
                         cs->s, cs->stride, cs->pad);
    cs->p = (cs->h + 2 * cs->pad - cs->r) / cs->stride + 1;
    cs->q = (cs->w + 2 * cs->pad - cs->s) / cs->stride + 1;
    if (cs->h + 2 * cs->pad < cs->r || cs->w + 2 * cs->pad < cs->s)
        return eg_errorf("conv: kernel %dx%d larger than padded input %dx%d",
                         cs->r, cs->s, cs->h + 2 * cs->pad, cs->w + 2 * cs->pad);
    return 0;
}

int eg_adam_scalars_get(float lr, float beta1, float beta2, int t, const float *m,
                        const float *v, eg_adam_scalars *out)
{
    if (t < 1) return eg_errorf("adam step: step number %d must be >= 1", t);
    if (!m || !v) return eg_errorf("adam step: moment buffers missing");
    const double bc1 = 1.0 - pow((double)beta1, (double)t);
    const double bc2 = 1.0 - pow((double)beta2, (double)t);
    if (!(bc1 > 0.0) || !(bc2 > 0.0))
        return eg_errorf("adam step: betas %g, %g give no bias correction", (double)beta1,
                         (double)beta2);
    out->neg_step = (float)(-((double)lr / bc1));
    out->bc2_sqrt = (float)sqrt(bc2);
    out->c1 = (float)(1.0 - (double)beta1);
    out->c2 = (float)(1.0 - (double)beta2);
    return 0;
}

float *eg_alloc_floats(eg_backend *be, size_t n)
{
    return be->alloc(be, n * sizeof(float));
}
