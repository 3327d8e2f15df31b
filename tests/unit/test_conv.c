/* The CPU backend's convolutions (forward, backward data with and without
 * accumulation, backward filter accumulating) against a direct-loop
 * reference in double precision, on the shapes the models use and on odd
 * ones. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define TOL 1e-5

/* Sizes of one shape's tensors, in floats. */
typedef struct conv_sizes {
    size_t x, w, y; /* (N, C, H, W), (K, C, R, S), (N, K, P, Q) */
} conv_sizes;

static conv_sizes sizes_of(const eg_conv_shape *cs)
{
    return (conv_sizes){(size_t)cs->n * cs->c * cs->h * cs->w,
                        (size_t)cs->k * cs->c * cs->r * cs->s,
                        (size_t)cs->n * cs->k * cs->p * cs->q};
}

/* The three products of the convolution, straight from the definition:
 * y = conv(x, w), dx = conv_transpose(dy, w), dw = correlation of x with dy.
 * Outputs are overwritten and computed in double. */
static void reference(const eg_conv_shape *cs, const float *x, const float *w,
                      const float *dy, float *y, float *dx, float *dw)
{
    conv_sizes sz = sizes_of(cs);
    double *ay = calloc(sz.y, sizeof(double));
    double *adx = calloc(sz.x, sizeof(double));
    double *adw = calloc(sz.w, sizeof(double));
    assert_non_null(ay);
    assert_non_null(adx);
    assert_non_null(adw);
    for (int n = 0; n < cs->n; n++)
        for (int k = 0; k < cs->k; k++)
            for (int p = 0; p < cs->p; p++)
                for (int q = 0; q < cs->q; q++) {
                    size_t yi = (((size_t)n * cs->k + k) * cs->p + p) * cs->q + q;
                    for (int c = 0; c < cs->c; c++)
                        for (int r = 0; r < cs->r; r++)
                            for (int s = 0; s < cs->s; s++) {
                                int ih = p * cs->stride - cs->pad + r;
                                int iw = q * cs->stride - cs->pad + s;
                                if (ih < 0 || ih >= cs->h || iw < 0 || iw >= cs->w) continue;
                                size_t xi = (((size_t)n * cs->c + c) * cs->h + ih) * cs->w + iw;
                                size_t wi = (((size_t)k * cs->c + c) * cs->r + r) * cs->s + s;
                                ay[yi] += (double)x[xi] * w[wi];
                                adx[xi] += (double)dy[yi] * w[wi];
                                adw[wi] += (double)dy[yi] * x[xi];
                            }
                }
    for (size_t i = 0; i < sz.y; i++) y[i] = (float)ay[i];
    for (size_t i = 0; i < sz.x; i++) dx[i] = (float)adx[i];
    for (size_t i = 0; i < sz.w; i++) dw[i] = (float)adw[i];
    free(ay);
    free(adx);
    free(adw);
}

static float *floats(size_t n)
{
    float *p = malloc(n * sizeof(float));
    assert_non_null(p);
    return p;
}

/* Runs the three convolutions on cs with seeded data and compares each
 * with the reference; every direction runs twice on different data, so
 * the second call goes through the cached plan with new buffers. */
static void check_shape(int n, int c, int h, int w, int k, int r, int s, int stride,
                        int pad)
{
    eg_conv_shape cs = {.n = n, .c = c, .h = h, .w = w, .k = k, .r = r, .s = s,
                        .stride = stride, .pad = pad};
    assert_int_equal(eg_conv_shape_finish(&cs), 0);
    conv_sizes sz = sizes_of(&cs);
    eg_backend *be = tu_cpu();
    float *x = floats(sz.x), *wt = floats(sz.w), *dy = floats(sz.y);
    float *y = floats(sz.y), *dx = floats(sz.x), *dw = floats(sz.w);
    float *ry = floats(sz.y), *rdx = floats(sz.x), *rdw = floats(sz.w);
    float *base_x = floats(sz.x), *base_w = floats(sz.w);
    for (int round = 0; round < 2; round++) {
        uint64_t seed = 100 + 10 * (uint64_t)round;
        tu_fill_uniform(x, sz.x, seed, -1.0f, 1.0f);
        tu_fill_uniform(wt, sz.w, seed + 1, -1.0f, 1.0f);
        tu_fill_uniform(dy, sz.y, seed + 2, -1.0f, 1.0f);
        tu_fill_uniform(base_x, sz.x, seed + 3, -2.0f, 2.0f);
        tu_fill_uniform(base_w, sz.w, seed + 4, -2.0f, 2.0f);
        reference(&cs, x, wt, dy, ry, rdx, rdw);

        /* Forward overwrites whatever y held. */
        for (size_t i = 0; i < sz.y; i++) y[i] = 1e3f;
        if (be->conv_fwd(be, &cs, x, wt, y) != 0) fail_msg("fwd: %s", eg_last_error());
        double e = tu_rel_err(y, ry, sz.y);
        if (e > TOL) fail_msg("fwd: relative error %g", e);

        /* Backward data with acc = 0 overwrites dx. */
        for (size_t i = 0; i < sz.x; i++) dx[i] = 1e3f;
        if (be->conv_bwd_data(be, &cs, wt, dy, dx, 0) != 0)
            fail_msg("bwd data: %s", eg_last_error());
        e = tu_rel_err(dx, rdx, sz.x);
        if (e > TOL) fail_msg("bwd data, acc 0: relative error %g", e);

        /* With acc = 1 it adds onto what dx held. */
        memcpy(dx, base_x, sz.x * sizeof(float));
        if (be->conv_bwd_data(be, &cs, wt, dy, dx, 1) != 0)
            fail_msg("bwd data: %s", eg_last_error());
        for (size_t i = 0; i < sz.x; i++) rdx[i] += base_x[i];
        e = tu_rel_err(dx, rdx, sz.x);
        if (e > TOL) fail_msg("bwd data, acc 1: relative error %g", e);

        /* Backward filter always adds onto dw. */
        memcpy(dw, base_w, sz.w * sizeof(float));
        if (be->conv_bwd_filter(be, &cs, x, dy, dw) != 0)
            fail_msg("bwd filter: %s", eg_last_error());
        for (size_t i = 0; i < sz.w; i++) rdw[i] += base_w[i];
        e = tu_rel_err(dw, rdw, sz.w);
        if (e > TOL) fail_msg("bwd filter: relative error %g", e);
    }
    /* The filter gradient waits in scratch before it is added to dw, and
     * that scratch came from the backend's allocator. */
    assert_true(be->cur_bytes >= sz.w * sizeof(float));
    float *bufs[] = {x, wt, dy, y, dx, dw, ry, rdx, rdw, base_x, base_w};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    be->destroy(be);
}

static void test_lenet_conv1(void **st) { check_shape(3, 1, 28, 28, 6, 5, 5, 1, 2); }
static void test_lenet_conv2(void **st) { check_shape(3, 6, 14, 14, 16, 5, 5, 1, 0); }
static void test_resnet_same(void **st) { check_shape(2, 16, 8, 8, 16, 3, 3, 1, 1); }
static void test_resnet_down(void **st) { check_shape(2, 16, 8, 8, 32, 3, 3, 2, 1); }
static void test_rgb_stem(void **st) { check_shape(2, 3, 10, 10, 16, 3, 3, 1, 1); }
static void test_odd_stride2_batch1(void **st) { check_shape(1, 4, 7, 9, 5, 3, 3, 2, 1); }
static void test_odd_kernel(void **st) { check_shape(2, 5, 9, 6, 7, 3, 2, 2, 1); }
static void test_pointwise(void **st) { check_shape(2, 24, 5, 5, 8, 1, 1, 1, 0); }

/* The same shape twice on one backend reuses the plan: a second forward
 * allocates nothing more. */
static void test_plan_reused(void **st)
{
    eg_conv_shape cs = {.n = 4, .c = 16, .h = 12, .w = 12, .k = 32, .r = 3, .s = 3,
                        .stride = 2, .pad = 1};
    assert_int_equal(eg_conv_shape_finish(&cs), 0);
    conv_sizes sz = sizes_of(&cs);
    eg_backend *be = tu_cpu();
    float *x = floats(sz.x), *wt = floats(sz.w), *y = floats(sz.y);
    tu_fill_uniform(x, sz.x, 1, -1.0f, 1.0f);
    tu_fill_uniform(wt, sz.w, 2, -1.0f, 1.0f);
    assert_int_equal(be->conv_fwd(be, &cs, x, wt, y), 0);
    size_t cur = be->cur_bytes, peak = be->peak_bytes;
    assert_int_equal(be->conv_fwd(be, &cs, x, wt, y), 0);
    assert_int_equal(be->cur_bytes, cur);
    assert_int_equal(be->peak_bytes, peak);
    free(x);
    free(wt);
    free(y);
    be->destroy(be);
}

/* A shape oneDNN rejects (the output size does not follow from the rest)
 * fails with a message instead of aborting. */
static void test_bad_shape_fails(void **st)
{
    eg_conv_shape cs = {.n = 1, .c = 2, .h = 8, .w = 8, .k = 2, .r = 3, .s = 3,
                        .stride = 1, .pad = 1};
    assert_int_equal(eg_conv_shape_finish(&cs), 0);
    cs.p += 3;
    conv_sizes sz = sizes_of(&cs);
    eg_backend *be = tu_cpu();
    float *x = calloc(sz.x, sizeof(float)), *wt = calloc(sz.w, sizeof(float));
    float *y = calloc(sz.y, sizeof(float));
    eg_clear_error();
    assert_int_equal(be->conv_fwd(be, &cs, x, wt, y), -1);
    assert_non_null(strstr(eg_last_error(), "conv forward"));
    assert_int_equal(be->conv_bwd_data(be, &cs, wt, y, x, 1), -1);
    assert_non_null(strstr(eg_last_error(), "conv backward data"));
    free(x);
    free(wt);
    free(y);
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet_conv1),
        cmocka_unit_test(test_lenet_conv2),
        cmocka_unit_test(test_resnet_same),
        cmocka_unit_test(test_resnet_down),
        cmocka_unit_test(test_rgb_stem),
        cmocka_unit_test(test_odd_stride2_batch1),
        cmocka_unit_test(test_odd_kernel),
        cmocka_unit_test(test_pointwise),
        cmocka_unit_test(test_plan_reused),
        cmocka_unit_test(test_bad_shape_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
