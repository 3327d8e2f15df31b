/* Image rotation on the CPU: PyTorch's
 *
 *     theta = [[cos a, -sin a, 0], [sin a, cos a, 0]]
 *     grid  = affine_grid(theta, (N, C, H, W), align_corners=False)
 *     y     = grid_sample(x, grid, 'bilinear', 'zeros', align_corners=False)
 *
 * The sampling grid is the same for every sample and channel, so it is
 * computed once per call as a table of four corner offsets and bilinear
 * weights per output pixel (with the weights' derivatives w.r.t. the angle
 * for the backward pass); every (sample, channel) plane is then one pass
 * over the table. Planes run in parallel; the angle gradient is summed per
 * plane in double and the plane sums are added in plane order, so results
 * do not depend on the number of threads. */
#include <math.h>
#include <stdlib.h>

#include "cpu.h"
#include "util/err.h"

/* Below this many output elements a call stays on one thread. */
#define ROT_PARALLEL_MIN 32768

/* How output pixel p reads its input plane: y[p] = sum_k wt[k] x[off[k]],
 * over the corners k = (top-left, top-right, bottom-left, bottom-right)
 * that lie inside the image; a corner outside has off = -1 and is skipped
 * (zeros padding). dwt[k] = d wt[k] / d angle. */
typedef struct rot_tap {
    int off[4];
    float wt[4];
    double dwt[4];
} rot_tap;

/* Fills tab (H * W) for the rotation by `angle` radians.
 *
 * Output pixel (i, j) has normalised coordinates xn = (2j+1)/W - 1,
 * yn = (2i+1)/H - 1 and reads the input at gx = cos a xn - sin a yn,
 * gy = sin a xn + cos a yn, i.e. at pixel coordinates
 * ix = ((gx+1) W - 1)/2, iy = ((gy+1) H - 1)/2. Since dgx/da = -gy and
 * dgy/da = gx, dix/da = -gy W/2 and diy/da = gx H/2. Where a sample
 * lies exactly on a pixel row or column (e.g. at angle 0) the derivative is
 * the one of the cell floor() picks, as in PyTorch. */
static void rot_table_build(int h, int w, double angle, rot_tap *tab)
{
    double ca = cos(angle), sa = sin(angle);
    for (int i = 0; i < h; i++) {
        double yn = (2.0 * i + 1.0) / h - 1.0;
        for (int j = 0; j < w; j++) {
            double xn = (2.0 * j + 1.0) / w - 1.0;
            double gx = ca * xn - sa * yn, gy = sa * xn + ca * yn;
            double ix = ((gx + 1.0) * w - 1.0) * 0.5;
            double iy = ((gy + 1.0) * h - 1.0) * 0.5;
            double dix = -gy * w * 0.5, diy = gx * h * 0.5;
            double fx = floor(ix), fy = floor(iy);
            double tx = ix - fx, ty = iy - fy;
            int x0 = (int)fx, y0 = (int)fy;

            /* Corner weights and their angle derivatives, in corner order. */
            double wk[4] = {(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty,
                            tx * ty};
            double dk[4] = {-(1 - ty) * dix - (1 - tx) * diy,
                            (1 - ty) * dix - tx * diy,
                            -ty * dix + (1 - tx) * diy, ty * dix + tx * diy};
            rot_tap *t = &tab[(size_t)i * w + j];
            for (int k = 0; k < 4; k++) {
                int cx = x0 + (k & 1), cy = y0 + (k >> 1);
                int inside = cx >= 0 && cx < w && cy >= 0 && cy < h;
                t->off[k] = inside ? cy * w + cx : -1;
                t->wt[k] = inside ? (float)wk[k] : 0.0f;
                t->dwt[k] = inside ? dk[k] : 0.0;
            }
        }
    }
}

/* Checks the arguments shared by both directions and builds the table.
 * Returns the table (caller frees), or NULL with *rc = 0 when there is
 * nothing to do, or NULL with *rc = -1 after eg_errorf(). */
static rot_tap *rot_prepare(const char *fn, int n, int c, int h, int w,
                            const float *angle, int *rc)
{
    *rc = 0;
    if (n < 0 || c < 0 || h < 0 || w < 0) {
        *rc = eg_errorf("%s: bad shape (%d, %d, %d, %d)", fn, n, c, h, w);
        return NULL;
    }
    if (!angle) {
        *rc = eg_errorf("%s: angle is NULL", fn);
        return NULL;
    }
    if (!isfinite(angle[0])) {
        *rc = eg_errorf("%s: angle is not finite (%g)", fn, (double)angle[0]);
        return NULL;
    }
    if (n == 0 || c == 0 || h == 0 || w == 0) return NULL;
    if ((size_t)h * w > (size_t)INT32_MAX) {
        *rc = eg_errorf("%s: image %d x %d too large", fn, h, w);
        return NULL;
    }
    rot_tap *tab = malloc((size_t)h * w * sizeof *tab);
    if (!tab) {
        *rc = eg_errorf("%s: out of memory for a %d x %d grid", fn, h, w);
        return NULL;
    }
    rot_table_build(h, w, angle[0], tab);
    return tab;
}

/* y (N, C, H, W) = x (N, C, H, W) rotated by angle[0] radians. A
 * non-finite angle is an error. */
int cpu_rotate_fwd(eg_backend *be, int n, int c, int h, int w,
                   const float *angle, const float *x, float *y)
{
    int rc;
    rot_tap *tab = rot_prepare("cpu_rotate_fwd", n, c, h, w, angle, &rc);
    if (!tab) return rc;
    long planes = (long)n * c;
    size_t hw = (size_t)h * w;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= ROT_PARALLEL_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * hw; // (H, W)
        float *yp = y + pl * hw;       // (H, W)
        for (size_t p = 0; p < hw; p++) {
            const rot_tap *t = &tab[p];
            float v = 0.0f;
            for (int k = 0; k < 4; k++)
                if (t->off[k] >= 0) v += t->wt[k] * xp[t->off[k]];
            yp[p] = v;
        }
    }
    free(tab);
    return 0;
}

/* dx (may be NULL) is overwritten with the scatter of dy through the
 * bilinear weights; dangle[0] += sum over outputs of dy * dy_out/d angle,
 * where dy_out/d angle = sum_k dwt[k] x[off[k]]. */
int cpu_rotate_bwd(eg_backend *be, int n, int c, int h, int w,
                   const float *angle, const float *x, const float *dy,
                   float *dx, float *dangle)
{
    if (!dangle) return eg_errorf("cpu_rotate_bwd: dangle is NULL");
    int rc;
    rot_tap *tab = rot_prepare("cpu_rotate_bwd", n, c, h, w, angle, &rc);
    if (!tab) return rc;
    long planes = (long)n * c;
    size_t hw = (size_t)h * w;
    double *part = malloc((size_t)planes * sizeof *part); // (N * C)
    if (!part) {
        free(tab);
        return eg_errorf("cpu_rotate_bwd: out of memory for %ld partial sums",
                         planes);
    }
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= ROT_PARALLEL_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * hw;   // (H, W)
        const float *dyp = dy + pl * hw; // (H, W)
        float *dxp = dx ? dx + pl * hw : NULL; // (H, W)
        double ga = 0;
        if (dxp)
            for (size_t p = 0; p < hw; p++) dxp[p] = 0.0f;
        for (size_t p = 0; p < hw; p++) {
            const rot_tap *t = &tab[p];
            float g = dyp[p];
            double s = 0;
            for (int k = 0; k < 4; k++) {
                if (t->off[k] < 0) continue;
                s += t->dwt[k] * xp[t->off[k]];
                if (dxp) dxp[t->off[k]] += t->wt[k] * g;
            }
            ga += g * s;
        }
        part[pl] = ga;
    }
    double total = 0;
    for (long pl = 0; pl < planes; pl++) total += part[pl];
    dangle[0] = (float)(dangle[0] + total);
    free(part);
    free(tab);
    return 0;
}
