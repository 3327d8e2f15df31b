#include "backend.h"

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

float *eg_alloc_floats(eg_backend *be, size_t n)
{
    return be->alloc(be, n * sizeof(float));
}
