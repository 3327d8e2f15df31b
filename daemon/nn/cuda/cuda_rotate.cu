/* Image rotation on the GPU: PyTorch's
 *
 *     theta = [[cos a, -sin a, 0], [sin a, cos a, 0]]
 *     grid  = affine_grid(theta, (N, C, H, W), align_corners=False)
 *     y     = grid_sample(x, grid, 'bilinear', 'zeros', align_corners=False)
 *
 * the same computation as nn/cpu/cpu_rotate.c. One kernel builds the
 * sampling table (four corner offsets, bilinear weights and their angle
 * derivatives per output pixel) in the backend's workspace, with the same
 * double-precision arithmetic as the CPU written with explicitly rounded
 * intrinsics so that no multiply-add is fused; the forward and backward
 * passes then read it for every (sample, channel) plane.
 *
 * The backward pass computes dx as a gather: each input pixel scans the
 * small box of output pixels whose sampling cell can touch it (the inverse
 * rotation of its 2 x 2 cell neighbourhood, plus a pixel of slack) and adds
 * their contributions in output-pixel order, the order of the CPU's
 * scatter. There are no atomics, so dx is deterministic and matches the
 * CPU bit for bit whenever the two tables agree. The angle gradient is
 * summed per block in double and the block sums are added in block order.
 *
 * The angle stays on the device. The CPU rejects a non-finite angle with
 * an error; here it cannot be seen without waiting for the stream, so the
 * outputs (y, dx and dangle) are set to NaN instead. */
#include <math.h>
#include <stdio.h>

#include "cuda_impl.h"

/* How output pixel p reads its input plane: y[p] = sum_k wt[k] x[off[k]]
 * over the corners k = (top-left, top-right, bottom-left, bottom-right)
 * inside the image; a corner outside has off = -1 (zeros padding).
 * dwt[k] = d wt[k] / d angle. */
typedef struct rot_tap {
    int off[4];
    float wt[4];
    double dwt[4];
} rot_tap;

/* The output pixels [i0, i1] x [j0, j1] (rows, columns) whose samples may
 * read a given input pixel; empty when i0 > i1 or j0 > j1. */
typedef struct rot_box {
    int i0, i1, j0, j1;
} rot_box;

/* Double arithmetic rounded after every operation, never fused, as the CPU
 * evaluates it. */
#define DADD(a, b) __dadd_rn((a), (b))
#define DSUB(a, b) __dsub_rn((a), (b))
#define DMUL(a, b) __dmul_rn((a), (b))
#define DDIV(a, b) __ddiv_rn((a), (b))

/* Fills *t for output pixel (i, j) of an h x w image rotated with cos a =
 * ca, sin a = sa: rot_table_build() of cpu_rotate.c for one pixel. */
static __device__ void rot_tap_at(int i, int j, int h, int w, double ca,
                                  double sa, rot_tap *t)
{
    double dh = (double)h, dw = (double)w;
    double yn = DSUB(DDIV(DADD(DMUL(2.0, (double)i), 1.0), dh), 1.0);
    double xn = DSUB(DDIV(DADD(DMUL(2.0, (double)j), 1.0), dw), 1.0);
    double gx = DSUB(DMUL(ca, xn), DMUL(sa, yn));
    double gy = DADD(DMUL(sa, xn), DMUL(ca, yn));
    double ix = DMUL(DSUB(DMUL(DADD(gx, 1.0), dw), 1.0), 0.5);
    double iy = DMUL(DSUB(DMUL(DADD(gy, 1.0), dh), 1.0), 0.5);
    double dix = DMUL(DMUL(-gy, dw), 0.5), diy = DMUL(DMUL(gx, dh), 0.5);
    double fx = floor(ix), fy = floor(iy);
    double tx = DSUB(ix, fx), ty = DSUB(iy, fy);
    double ux = DSUB(1.0, tx), uy = DSUB(1.0, ty);
    int x0 = (int)fx, y0 = (int)fy;

    double wk[4] = {DMUL(ux, uy), DMUL(tx, uy), DMUL(ux, ty), DMUL(tx, ty)};
    double dk[4] = {DSUB(DMUL(-uy, dix), DMUL(ux, diy)),
                    DSUB(DMUL(uy, dix), DMUL(tx, diy)),
                    DADD(DMUL(-ty, dix), DMUL(ux, diy)),
                    DADD(DMUL(ty, dix), DMUL(tx, diy))};
    for (int k = 0; k < 4; k++) {
        int cx = x0 + (k & 1), cy = y0 + (k >> 1);
        int inside = cx >= 0 && cx < w && cy >= 0 && cy < h;
        t->off[k] = inside ? cy * w + cx : -1;
        t->wt[k] = inside ? (float)wk[k] : 0.0f;
        t->dwt[k] = inside ? dk[k] : 0.0;
    }
}

/* Fills *b for input pixel (qi, qj). Output pixel (i, j) reads corner
 * (qi, qj) iff its sample (ix, iy) lies in [qj-1, qj+1) x [qi-1, qi+1),
 * i.e. iff its normalised sample (gx, gy) lies in a box around
 * ((2qj+1)/w - 1, (2qi+1)/h - 1) of half-sizes (2/w, 2/h). The output
 * coordinates (xn, yn) = R(-a) (gx, gy) then lie in a box of half-sizes
 * (|ca| 2/w + |sa| 2/h, |sa| 2/w + |ca| 2/h), which in pixels is
 * (|ca| + |sa| w/h, |sa| h/w + |ca|) around the centre. One pixel of slack
 * on each side absorbs rounding; the scan tests every candidate exactly. */
static __device__ void rot_box_at(int qi, int qj, int h, int w, double ca,
                                  double sa, rot_box *b)
{
    double dh = (double)h, dw = (double)w;
    double gxc = (2.0 * qj + 1.0) / dw - 1.0;
    double gyc = (2.0 * qi + 1.0) / dh - 1.0;
    double xnc = ca * gxc + sa * gyc, ync = -sa * gxc + ca * gyc;
    double jc = ((xnc + 1.0) * dw - 1.0) * 0.5;
    double ic = ((ync + 1.0) * dh - 1.0) * 0.5;
    double hj = fabs(ca) + fabs(sa) * dw / dh;
    double hi = fabs(sa) * dh / dw + fabs(ca);
    double j0 = fmax(0.0, floor(jc - hj) - 1.0);
    double j1 = fmin(dw - 1.0, ceil(jc + hj) + 1.0);
    double i0 = fmax(0.0, floor(ic - hi) - 1.0);
    double i1 = fmin(dh - 1.0, ceil(ic + hi) + 1.0);
    if (j0 > j1 || i0 > i1) {
        b->i0 = 1, b->i1 = 0, b->j0 = 1, b->j1 = 0;
        return;
    }
    b->i0 = (int)i0, b->i1 = (int)i1, b->j0 = (int)j0, b->j1 = (int)j1;
}

/* tab (H * W) = the taps of every output pixel; box (H * W), if not NULL,
 * = the scan box of every input pixel. A non-finite angle leaves both
 * unwritten (the consumers check the angle themselves). */
static __global__ void rot_table_kernel(int h, int w, const float *angle,
                                        rot_tap *tab, rot_box *box)
{
    double a = (double)angle[0];
    if (!isfinite(a)) return;
    double ca = cos(a), sa = sin(a);
    size_t hw = (size_t)h * w;
    for (size_t p = (size_t)blockIdx.x * blockDim.x + threadIdx.x; p < hw;
         p += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(p / (size_t)w), j = (int)(p % (size_t)w);
        rot_tap_at(i, j, h, w, ca, sa, &tab[p]);
        if (box) rot_box_at(i, j, h, w, ca, sa, &box[p]);
    }
}

/* y (planes, H*W) = the table applied to x (planes, H*W), or NaN
 * everywhere for a non-finite angle. */
static __global__ void rot_fwd_kernel(size_t planes, size_t hw,
                                      const float *angle,
                                      const rot_tap *__restrict__ tab,
                                      const float *__restrict__ x,
                                      float *__restrict__ y)
{
    int bad = !isfinite(angle[0]);
    size_t total = planes * hw;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        if (bad) {
            y[e] = nanf("");
            continue;
        }
        size_t p = e % hw;
        const float *xp = x + (e - p); // (H, W)
        const rot_tap *t = &tab[p];
        float v = 0.0f;
        for (int k = 0; k < 4; k++)
            if (t->off[k] >= 0) v = __fadd_rn(v, __fmul_rn(t->wt[k], xp[t->off[k]]));
        y[e] = v;
    }
}

/* For every element e = (plane, pixel):
 *  - as an output pixel p, adds dy[e] * sum_k dwt[k] x[off[k]] to this
 *    thread's angle sum; the block's sum goes to parts[blockIdx.x];
 *  - as an input pixel q, if dx is not NULL, sets dx[e] to the sum over
 *    output pixels p in q's box (in increasing p) and corners k with
 *    off[k] = q of wt[k] dy[plane, p], rounded as the CPU's scatter.
 * Launched with CU_THREADS threads per block. */
static __global__ void rot_bwd_kernel(size_t planes, int h, int w,
                                      const float *angle,
                                      const rot_tap *__restrict__ tab,
                                      const rot_box *__restrict__ box,
                                      const float *__restrict__ x,
                                      const float *__restrict__ dy,
                                      float *__restrict__ dx,
                                      double *__restrict__ parts)
{
    int bad = !isfinite(angle[0]);
    size_t hw = (size_t)h * w, total = planes * hw;
    double ga = 0;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        if (bad) {
            if (dx) dx[e] = nanf("");
            continue;
        }
        size_t p = e % hw;
        const float *xp = x + (e - p);   // (H, W)
        const float *dyp = dy + (e - p); // (H, W)
        const rot_tap *t = &tab[p];
        double s = 0;
        for (int k = 0; k < 4; k++)
            if (t->off[k] >= 0) s += t->dwt[k] * xp[t->off[k]];
        ga += (double)dyp[p] * s;

        if (!dx) continue;
        const rot_box b = box[p];
        int q = (int)p;
        float acc = 0.0f;
        for (int i = b.i0; i <= b.i1; i++)
            for (int j = b.j0; j <= b.j1; j++) {
                int o = i * w + j;
                const rot_tap *u = &tab[o];
                for (int k = 0; k < 4; k++)
                    if (u->off[k] == q)
                        acc = __fadd_rn(acc, __fmul_rn(u->wt[k], dyp[o]));
            }
        dx[e] = acc;
    }
    if (bad) ga = nan("");

    ga = cu_block_sum(ga);
    if (threadIdx.x == 0) parts[blockIdx.x] = ga;
}

/* Checks the arguments shared by both directions, as cpu_rotate.c does
 * (a non-finite angle excepted: it is not read here). Returns 1 when there
 * is work, 0 when a dimension is zero, -1 after eg_errorf(). */
static int rot_check(const char *fn, int n, int c, int h, int w,
                     const float *angle)
{
    if (n < 0 || c < 0 || h < 0 || w < 0)
        return eg_errorf("%s: bad shape (%d, %d, %d, %d)", fn, n, c, h, w);
    if (!angle) return eg_errorf("%s: angle is NULL", fn);
    if (n == 0 || c == 0 || h == 0 || w == 0) return 0;
    if ((size_t)h * w > (size_t)INT32_MAX)
        return eg_errorf("%s: image %d x %d too large", fn, h, w);
    return 1;
}

/* Queues the table kernel for an h x w image into the workspace; *tab and
 * (if box is not NULL) *box point into it. */
static int rot_table(eg_backend *be, const char *fn, int h, int w,
                     const float *angle, rot_tap **tab, rot_box **box)
{
    size_t hw = (size_t)h * w;
    size_t tab_bytes = hw * sizeof(rot_tap);
    size_t bytes = tab_bytes + (box ? hw * sizeof(rot_box) : 0);
    char *ws = (char *)cuda_workspace(be, bytes);
    if (!ws) {
        char why[512];
        snprintf(why, sizeof why, "%s", eg_last_error());
        return eg_errorf("%s: no workspace for a %d x %d grid: %s", fn, h, w,
                         why);
    }
    *tab = (rot_tap *)ws;
    if (box) *box = (rot_box *)(ws + tab_bytes);
    rot_table_kernel<<<cu_blocks(hw), CU_THREADS, 0, cuda_stream(be)>>>(
        h, w, angle, *tab, box ? *box : NULL);
    CU_CHECK_LAUNCH();
    return 0;
}

/* y (N, C, H, W) = x (N, C, H, W) rotated by angle[0] radians. */
int cuda_rotate_fwd(eg_backend *be, int n, int c, int h, int w,
                    const float *angle, const float *x, float *y)
{
    int rc = rot_check("cuda_rotate_fwd", n, c, h, w, angle);
    if (rc <= 0) return rc;
    rot_tap *tab;
    if (rot_table(be, "cuda_rotate_fwd", h, w, angle, &tab, NULL) != 0)
        return -1;
    size_t planes = (size_t)n * c, hw = (size_t)h * w;
    rot_fwd_kernel<<<cu_blocks(planes * hw), CU_THREADS, 0, cuda_stream(be)>>>(
        planes, hw, angle, tab, x, y);
    CU_CHECK_LAUNCH();
    return 0;
}

/* dx (may be NULL) is overwritten with the transpose of the sampling
 * applied to dy; dangle[0] += sum over outputs of dy * d y_out / d angle. */
int cuda_rotate_bwd(eg_backend *be, int n, int c, int h, int w,
                    const float *angle, const float *x, const float *dy,
                    float *dx, float *dangle)
{
    if (!dangle) return eg_errorf("cuda_rotate_bwd: dangle is NULL");
    int rc = rot_check("cuda_rotate_bwd", n, c, h, w, angle);
    if (rc <= 0) return rc;
    rot_tap *tab;
    rot_box *box = NULL;
    if (rot_table(be, "cuda_rotate_bwd", h, w, angle, &tab,
                  dx ? &box : NULL) != 0)
        return -1;
    size_t planes = (size_t)n * c, hw = (size_t)h * w;
    unsigned blocks = cu_blocks(planes * hw);
    if (blocks > CU_MAX_PARTS) blocks = CU_MAX_PARTS;
    rot_bwd_kernel<<<blocks, CU_THREADS, 0, cuda_stream(be)>>>(
        planes, h, w, angle, tab, box, x, dy, dx, cuda_of(be)->parts);
    CU_CHECK_LAUNCH();
    return cuda_parts_accumulate(be, (int)blocks, dangle);
}
