/* Rotation op of the CPU backend (affine_grid + grid_sample, bilinear,
 * zeros padding, align_corners = false): exact pixel maps at 0, pi/2 and
 * pi, finite-difference gradients w.r.t. the input and the angle, the
 * backward's overwrite/accumulate contract, thread-count independence, and
 * parity with PyTorch (tests/parity/rotate_ref.py). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util/err.h"

static const double PI = 3.14159265358979323846;

/* Random (N, C, H, W) tensor, freed by the caller. */
static float *rand_tensor(size_t count, uint64_t seed)
{
    float *t = malloc(count * sizeof *t);
    assert_non_null(t);
    tu_fill_uniform(t, count, seed, -1.0f, 1.0f);
    return t;
}

static void rotate_fwd_ok(eg_backend *be, int n, int c, int h, int w,
                          float angle, const float *x, float *y)
{
    if (be->rotate_fwd(be, n, c, h, w, &angle, x, y) != 0)
        fail_msg("rotate_fwd: %s", eg_last_error());
}

static void rotate_bwd_ok(eg_backend *be, int n, int c, int h, int w,
                          float angle, const float *x, const float *dy,
                          float *dx, float *dangle)
{
    if (be->rotate_bwd(be, n, c, h, w, &angle, x, dy, dx, dangle) != 0)
        fail_msg("rotate_bwd: %s", eg_last_error());
}

/* max_i |a_i - b_i| */
static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

/* Angle 0 samples every pixel at its own centre: y = x and dx = dy. */
static void test_identity(void **state)
{
    eg_backend *be = tu_cpu();
    enum { N = 2, C = 3, H = 5, W = 7, SZ = N * C * H * W };
    float *x = rand_tensor(SZ, 1), *dy = rand_tensor(SZ, 2);
    float y[SZ], dx[SZ], da = 0;
    rotate_fwd_ok(be, N, C, H, W, 0.0f, x, y);
    assert_true(max_abs_diff(y, x, SZ) <= 1e-6);
    rotate_bwd_ok(be, N, C, H, W, 0.0f, x, dy, dx, &da);
    assert_true(max_abs_diff(dx, dy, SZ) <= 1e-6);
    free(x);
    free(dy);
    be->destroy(be);
}

/* A quarter turn of a square image: output (i, j) reads input
 * (j, W-1-i), so the top row of the output is the right column of the
 * input read downwards (PyTorch's convention for a positive angle). */
static void test_quarter_turn(void **state)
{
    eg_backend *be = tu_cpu();
    enum { N = 2, C = 1, H = 4, W = 4, HW = H * W };
    float x[N * HW], y[N * HW];
    for (int k = 0; k < N * HW; k++) x[k] = (float)(k + 1); /* all distinct */
    rotate_fwd_ok(be, N, C, H, W, (float)(PI / 2), x, y);
    for (int b = 0; b < N; b++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float got = y[b * HW + i * W + j];
                float want = x[b * HW + j * W + (W - 1 - i)];
                if (fabs(got - want) > 1e-5)
                    fail_msg("pi/2: y[%d][%d][%d] = %g, want %g", b, i, j,
                             got, want);
            }
    be->destroy(be);
}

/* A half turn of a non-square image: output (i, j) reads input
 * (H-1-i, W-1-j). */
static void test_half_turn(void **state)
{
    eg_backend *be = tu_cpu();
    enum { N = 1, C = 2, H = 3, W = 5, HW = H * W };
    float x[N * C * HW], y[N * C * HW];
    for (int k = 0; k < N * C * HW; k++) x[k] = (float)(k * k % 37) - 10.0f;
    rotate_fwd_ok(be, N, C, H, W, (float)PI, x, y);
    for (int pl = 0; pl < N * C; pl++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float got = y[pl * HW + i * W + j];
                float want = x[pl * HW + (H - 1 - i) * W + (W - 1 - j)];
                if (fabs(got - want) > 1e-5)
                    fail_msg("pi: y[%d][%d][%d] = %g, want %g", pl, i, j, got,
                             want);
            }
    be->destroy(be);
}

/* The loss sum(proj * rotate(x, angle)) in double, for tu_check_grad. */
typedef struct rot_loss {
    eg_backend *be;
    int n, c, h, w;
    float angle;
    const float *x;    // (N, C, H, W)
    const float *proj; // (N, C, H, W)
    float *y;          // (N, C, H, W), scratch
} rot_loss;

static double rot_loss_eval(void *ctx)
{
    rot_loss *l = ctx;
    rotate_fwd_ok(l->be, l->n, l->c, l->h, l->w, l->angle, l->x, l->y);
    return tu_project(l->y, l->proj, (size_t)l->n * l->c * l->h * l->w);
}

static const float GRAD_ANGLES[] = {0.3f, -1.1f, 2.0f, 0.9f};

/* dx from the backward against central differences in x. */
static void test_grad_input(void **state)
{
    eg_backend *be = tu_cpu();
    enum { N = 2, C = 2, H = 6, W = 7, SZ = N * C * H * W };
    float *x = rand_tensor(SZ, 11), *proj = rand_tensor(SZ, 12);
    float y[SZ], dx[SZ];
    int failures = 0;
    for (size_t a = 0; a < sizeof GRAD_ANGLES / sizeof *GRAD_ANGLES; a++) {
        float da = 0;
        rot_loss l = {be, N, C, H, W, GRAD_ANGLES[a], x, proj, y};
        rotate_bwd_ok(be, N, C, H, W, l.angle, x, proj, dx, &da);
        char what[64];
        snprintf(what, sizeof what, "dx at angle %g", (double)l.angle);
        failures += tu_check_grad(what, x, dx, SZ, rot_loss_eval, &l, 1e-2f,
                                  1e-3, 1e-5, SZ);
    }
    assert_int_equal(failures, 0);
    free(x);
    free(proj);
    be->destroy(be);
}

/* dangle from the backward against central differences in the angle. The
 * step is a power of two so that angle +- eps is exact in float. */
static void test_grad_angle(void **state)
{
    eg_backend *be = tu_cpu();
    enum { N = 3, C = 2, H = 8, W = 9, SZ = N * C * H * W };
    float *x = rand_tensor(SZ, 21), *proj = rand_tensor(SZ, 22);
    float y[SZ];
    int failures = 0;
    for (size_t a = 0; a < sizeof GRAD_ANGLES / sizeof *GRAD_ANGLES; a++) {
        float da = 0;
        rot_loss l = {be, N, C, H, W, GRAD_ANGLES[a], x, proj, y};
        rotate_bwd_ok(be, N, C, H, W, l.angle, x, proj, NULL, &da);
        assert_true(fabs(da) > 1e-3); /* a gradient that can be wrong */
        char what[64];
        snprintf(what, sizeof what, "dangle at angle %g", (double)l.angle);
        failures += tu_check_grad(what, &l.angle, &da, 1, rot_loss_eval, &l,
                                  1.0f / 8192, 2e-3, 1e-4, 1);
    }
    assert_int_equal(failures, 0);
    free(x);
    free(proj);
    be->destroy(be);
}

/* The backward overwrites dx, accumulates into dangle, gives the same
 * dangle with dx = NULL, and dx is the adjoint of the forward:
 * <dy, R x> = <R^T dy, x>. */
static void test_bwd_contract(void **state)
{
    eg_backend *be = tu_cpu();
    enum { N = 2, C = 3, H = 10, W = 6, SZ = N * C * H * W };
    const float angle = -0.6f;
    float *x = rand_tensor(SZ, 31), *dy = rand_tensor(SZ, 32);
    float y[SZ], dx[SZ];
    for (int k = 0; k < SZ; k++) dx[k] = 1e6f; /* must be overwritten */
    float da0 = 0, da1 = 1.5f, da2 = 0;
    rotate_bwd_ok(be, N, C, H, W, angle, x, dy, NULL, &da0);
    rotate_bwd_ok(be, N, C, H, W, angle, x, dy, dx, &da1);
    rotate_bwd_ok(be, N, C, H, W, angle, x, dy, dx, &da2);
    assert_true(da0 != 0);
    assert_true(da2 == da0);
    assert_true(fabs(da1 - (1.5f + da0)) <= 1e-6 * (1.5 + fabs(da0)));

    rotate_fwd_ok(be, N, C, H, W, angle, x, y);
    double lhs = tu_project(y, dy, SZ), rhs = tu_project(dx, x, SZ);
    assert_true(fabs(lhs) > 1e-2);
    if (fabs(lhs - rhs) > 1e-5 * fabs(lhs))
        fail_msg("<dy, R x> = %.9g but <R^T dy, x> = %.9g", lhs, rhs);
    free(x);
    free(dy);
    be->destroy(be);
}

/* A batch large enough to run in parallel gives the same bits on one
 * thread and on many. */
static void test_thread_independent(void **state)
{
    eg_backend *be = tu_cpu();
    enum { N = 64, C = 2, H = 28, W = 28, SZ = N * C * H * W };
    const float angle = 0.41f;
    float *x = rand_tensor(SZ, 41), *dy = rand_tensor(SZ, 42);
    float *y1 = malloc(SZ * sizeof *y1), *y4 = malloc(SZ * sizeof *y4);
    float *dx1 = malloc(SZ * sizeof *dx1), *dx4 = malloc(SZ * sizeof *dx4);
    assert_true(y1 && y4 && dx1 && dx4);
    float da1 = 0, da4 = 0;
    int keep = omp_get_max_threads();
    omp_set_num_threads(1);
    rotate_fwd_ok(be, N, C, H, W, angle, x, y1);
    rotate_bwd_ok(be, N, C, H, W, angle, x, dy, dx1, &da1);
    omp_set_num_threads(4);
    rotate_fwd_ok(be, N, C, H, W, angle, x, y4);
    rotate_bwd_ok(be, N, C, H, W, angle, x, dy, dx4, &da4);
    omp_set_num_threads(keep);
    assert_memory_equal(y1, y4, SZ * sizeof *y1);
    assert_memory_equal(dx1, dx4, SZ * sizeof *dx1);
    assert_memory_equal(&da1, &da4, sizeof da1);
    free(x);
    free(dy);
    free(y1);
    free(y4);
    free(dx1);
    free(dx4);
    be->destroy(be);
}

/* Non-finite angles, negative shapes and a NULL dangle are errors. */
static void test_bad_arguments(void **state)
{
    eg_backend *be = tu_cpu();
    float x[4] = {1, 2, 3, 4}, y[4], dx[4], da = 0;
    float nan_angle = NAN, inf_angle = INFINITY, ok = 0.5f;
    assert_int_equal(be->rotate_fwd(be, 1, 1, 2, 2, &nan_angle, x, y), -1);
    assert_true(strstr(eg_last_error(), "angle") != NULL);
    tu_fails_with(be->rotate_bwd(be, 1, 1, 2, 2, &inf_angle, x, x, dx, &da),
                  "angle is not finite (inf)");
    tu_fails_with(be->rotate_fwd(be, 1, -1, 2, 2, &ok, x, y), "bad shape (1, -1, 2, 2)");
    tu_fails_with(be->rotate_bwd(be, 1, 1, 2, 2, &ok, x, x, dx, NULL), "dangle is NULL");
    assert_true(da == 0);
    be->destroy(be);
}

/* Runs rotate_ref.py on one case and compares y, dx and dangle. */
static void parity_case(int n, int c, int h, int w, float angle, uint64_t seed)
{
    eg_backend *be = tu_cpu();
    size_t sz = (size_t)n * c * h * w;
    float *x = rand_tensor(sz, seed), *dy = rand_tensor(sz, seed + 1);
    float *y = malloc(sz * sizeof *y), *dx = malloc(sz * sizeof *dx);
    float *ry = malloc(sz * sizeof *ry), *rdx = malloc(sz * sizeof *rdx);
    assert_true(y && dx && ry && rdx);
    float da = 0, rda = 0;
    rotate_fwd_ok(be, n, c, h, w, angle, x, y);
    rotate_bwd_ok(be, n, c, h, w, angle, x, dy, dx, &da);

    const char *dir = tu_tmpdir();
    char path[600], args[700];
    snprintf(path, sizeof path, "%s/x.f32", dir);
    assert_int_equal(tu_write_f32(path, x, sz), 0);
    snprintf(path, sizeof path, "%s/dy.f32", dir);
    assert_int_equal(tu_write_f32(path, dy, sz), 0);
    snprintf(path, sizeof path, "%s/angle.f32", dir);
    assert_int_equal(tu_write_f32(path, &angle, 1), 0);
    snprintf(args, sizeof args, "%s %d %d %d %d", dir, n, c, h, w);
    if (tu_python("rotate_ref.py", args) != 0)
        fail_msg("tests/parity/rotate_ref.py failed: the PyTorch reference "
                 "needs /usr/bin/python3 with torch and numpy (a declared "
                 "dependency, see tests/deps.sh)");
    snprintf(path, sizeof path, "%s/y.f32", dir);
    assert_int_equal(tu_read_f32(path, ry, sz), 0);
    snprintf(path, sizeof path, "%s/dx.f32", dir);
    assert_int_equal(tu_read_f32(path, rdx, sz), 0);
    snprintf(path, sizeof path, "%s/dangle.f32", dir);
    assert_int_equal(tu_read_f32(path, &rda, 1), 0);

    double ey = tu_rel_err(y, ry, sz), edx = tu_rel_err(dx, rdx, sz);
    double eda = tu_rel_err(&da, &rda, 1);
    if (!(ey <= 1e-5 && edx <= 1e-5 && eda <= 1e-5))
        fail_msg("(%d,%d,%d,%d) angle %g: rel err y %.3g, dx %.3g, dangle %.3g "
                 "(%.9g vs torch %.9g)", n, c, h, w, (double)angle, ey, edx,
                 eda, (double)da, (double)rda);
    const char *names[] = {"x.f32", "dy.f32", "angle.f32", "y.f32", "dx.f32",
                           "dangle.f32"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        remove(path);
    }
    remove(dir);
    free(x);
    free(dy);
    free(y);
    free(dx);
    free(ry);
    free(rdx);
    be->destroy(be);
}

static void test_parity_torch(void **state)
{
    parity_case(3, 2, 7, 9, 0.7f, 51);
    parity_case(8, 1, 28, 28, -2.3f, 61);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_quarter_turn),
        cmocka_unit_test(test_half_turn),
        cmocka_unit_test(test_grad_input),
        cmocka_unit_test(test_grad_angle),
        cmocka_unit_test(test_bwd_contract),
        cmocka_unit_test(test_thread_independent),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_parity_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
