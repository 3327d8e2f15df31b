/* EvoGrad and T1−T2 against references:
 *  - on a tiny MLP task (λ scales the training inputs), EvoGrad's
 *    hypergradient equals a float64 finite difference of the EvoGrad
 *    objective J(λ) = ℓ_V(θ*(λ)), evaluated here independently in double;
 *  - regenerated noise gives the hypergradient of a naive implementation
 *    that stores the K perturbed copies;
 *  - T1−T2 on the same task equals a float64 finite difference of its own
 *    objective ℓ_V(θ - α∇_θ ℓ_T(θ, λ)), and on toy1d the exact
 *    one-step-unrolled hypergradient;
 *  - EvoGrad's mean toy1d hypergradient correlates with the closed form. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/method.h"
#include "naive_evograd.h"
#include "nn/loss.h"
#include "nn/models.h"
#include "nn/philox.h"
#include "tasks/toy1d.h"
#include "testutil.h"

enum { IN = 4, HID = 6, OUT = 3, B = 8 };

/* ---- a tiny MLP task: ℓ_T(θ, λ) = CE(MLP_θ(x ⊙ λ)), ℓ_V = CE(MLP_θ(v)) ---- */
typedef struct tiny {
    eg_task base;
    eg_net net;
    eg_xent xe;
    float xt[B * IN], xv[B * IN], input[B * IN], dx[B * IN], state[1];
    int32_t yt[B], yv[B];
} tiny;

static int tiny_next(eg_task *t) { return 0; }

static int tiny_forward(tiny *ty, const float *theta, const float *x, const int32_t *y,
                        double *loss)
{
    EG_TRY(eg_net_forward(&ty->net, theta, ty->state, x, B, EG_PROBE));
    return eg_xent_forward(&ty->xe, eg_net_output(&ty->net), y, B, loss);
}

static int tiny_train_loss(eg_task *t, const float *theta, double *loss, float *dlambda)
{
    tiny *ty = (tiny *)t;
    for (int i = 0; i < B * IN; i++) ty->input[i] = ty->xt[i] * t->lambda[i % IN];
    EG_TRY(tiny_forward(ty, theta, ty->input, ty->yt, loss));
    if (!dlambda) return 0;
    EG_TRY(eg_xent_backward(&ty->xe, ty->yt, NULL, 1.0f / B, B));
    EG_TRY(eg_net_backward(&ty->net, theta, ty->xe.dlogits, NULL, ty->dx));
    for (int j = 0; j < IN; j++) {
        double s = 0;
        for (int b = 0; b < B; b++) s += (double)ty->dx[b * IN + j] * ty->xt[b * IN + j];
        dlambda[j] = (float)s;
    }
    return 0;
}

static int tiny_grad(tiny *ty, const float *theta, const float *x, const int32_t *y,
                     double *loss, float *dtheta)
{
    EG_TRY(tiny_forward(ty, theta, x, y, loss));
    EG_TRY(eg_xent_backward(&ty->xe, y, NULL, 1.0f / B, B));
    memset(dtheta, 0, ty->base.P * sizeof(float));
    return eg_net_backward(&ty->net, theta, ty->xe.dlogits, dtheta, NULL);
}

static int tiny_train_grad(eg_task *t, const float *theta, double *loss, float *dtheta)
{
    tiny *ty = (tiny *)t;
    for (int i = 0; i < B * IN; i++) ty->input[i] = ty->xt[i] * t->lambda[i % IN];
    return tiny_grad(ty, theta, ty->input, ty->yt, loss, dtheta);
}

static int tiny_val_grad(eg_task *t, const float *theta, double *loss, float *dtheta,
                         float *dlambda)
{
    tiny *ty = (tiny *)t;
    return tiny_grad(ty, theta, ty->xv, ty->yv, loss, dtheta);
}

static float tiny_lr(const eg_task *t) { return 0.3f; }

static const eg_task_ops tiny_ops = {
    .next_batch = tiny_next,
    .train_loss = tiny_train_loss,
    .train_grad = tiny_train_grad,
    .val_grad = tiny_val_grad,
    .base_lr = tiny_lr,
};

/* The tiny task with its data and parameters drawn from seeds seed..seed+3. */
static tiny *tiny_create_seeded(uint64_t seed)
{
    tiny *ty = calloc(1, sizeof *ty);
    eg_backend *be = tu_cpu();
    static const int hidden[] = {HID};
    assert_int_equal(eg_model_mlp(&ty->net, be, IN, 1, 1, hidden, 1, OUT), 0);
    assert_int_equal(eg_net_finish(&ty->net, B, 1), 0);
    assert_int_equal(eg_xent_init(&ty->xe, be, B, OUT), 0);
    eg_task *t = &ty->base;
    *t = (eg_task){.ops = &tiny_ops, .be = be, .P = ty->net.params.total, .H = IN};
    t->theta = eg_alloc_floats(be, t->P);
    t->grad = eg_alloc_floats(be, t->P);
    t->lambda = eg_alloc_floats(be, IN);
    float unused[1];
    eg_net_init_params(&ty->net, t->theta, unused, seed);
    tu_fill_uniform(ty->xt, B * IN, seed + 1, -2, 2);
    tu_fill_uniform(ty->xv, B * IN, seed + 2, -2, 2);
    tu_fill_uniform(t->lambda, IN, seed + 3, 0.5f, 1.5f);
    for (int b = 0; b < B; b++) {
        ty->yt[b] = (b * 7 + 1) % OUT;
        ty->yv[b] = (b * 5 + 2) % OUT;
    }
    return ty;
}

static tiny *tiny_create(void) { return tiny_create_seeded(5); }

static void tiny_free(tiny *ty)
{
    eg_backend *be = ty->base.be;
    be->free(be, ty->base.theta);
    be->free(be, ty->base.grad);
    be->free(be, ty->base.lambda);
    eg_xent_free(&ty->xe);
    eg_net_free(&ty->net);
    be->destroy(be);
    free(ty);
}

/* ---- the EvoGrad objective in double, independent of the engine ---- */

enum { P_MLP = HID * IN + HID + OUT * HID + OUT };

/* The MLP at parameters th (fc1.weight (HID, IN), fc1.bias, fc2.weight
 * (OUT, HID), fc2.bias) on sample b of x (B, IN): its hidden activations h
 * and its softmax p; returns the sample's cross-entropy for label y. */
static double mlp_sample64(const double *th, const double *x, int b, int32_t y, double *h,
                           double *p)
{
    const double *w1 = th, *b1 = w1 + HID * IN, *w2 = b1 + HID, *b2 = w2 + OUT * HID;
    double z[OUT], zmax = -INFINITY, sum = 0;
    for (int i = 0; i < HID; i++) {
        h[i] = b1[i];
        for (int j = 0; j < IN; j++) h[i] += w1[i * IN + j] * x[b * IN + j];
        h[i] = h[i] > 0 ? h[i] : 0;
    }
    for (int o = 0; o < OUT; o++) {
        z[o] = b2[o];
        for (int i = 0; i < HID; i++) z[o] += w2[o * HID + i] * h[i];
        zmax = fmax(zmax, z[o]);
    }
    for (int o = 0; o < OUT; o++) sum += exp(z[o] - zmax);
    for (int o = 0; o < OUT; o++) p[o] = exp(z[o] - zmax) / sum;
    return log(sum) + zmax - z[y];
}

/* Mean cross-entropy of the MLP at th on x (B, IN). */
static double mlp_loss64(const double *th, const double *x, const int32_t *y)
{
    double total = 0, h[HID], p[OUT];
    for (int b = 0; b < B; b++) total += mlp_sample64(th, x, b, y[b], h, p);
    return total / B;
}

/* The gradient of mlp_loss64 in th, into g (P_MLP). */
static void mlp_grad64(const double *th, const double *x, const int32_t *y, double *g)
{
    const double *w2 = th + HID * IN + HID;
    double *gw1 = g, *gb1 = gw1 + HID * IN, *gw2 = gb1 + HID, *gb2 = gw2 + OUT * HID;
    memset(g, 0, P_MLP * sizeof(double));
    for (int b = 0; b < B; b++) {
        double h[HID], dz[OUT];
        mlp_sample64(th, x, b, y[b], h, dz);
        for (int o = 0; o < OUT; o++) dz[o] = (dz[o] - (o == y[b])) / B;
        for (int o = 0; o < OUT; o++) {
            gb2[o] += dz[o];
            for (int i = 0; i < HID; i++) gw2[o * HID + i] += dz[o] * h[i];
        }
        for (int i = 0; i < HID; i++) {
            if (h[i] <= 0) continue;
            double dh = 0;
            for (int o = 0; o < OUT; o++) dh += dz[o] * w2[o * HID + i];
            gb1[i] += dh;
            for (int j = 0; j < IN; j++) gw1[i * IN + j] += dh * x[b * IN + j];
        }
    }
}



/* T1−T2's objective: ℓ_V(θ') at θ' = θ - α ∇_θ ℓ_T(θ, λ), training inputs
 * x ⊙ λ; v (may be NULL) gets ∇ℓ_V(θ'). */
static double lookahead64(const tiny *ty, double alpha, const double *lambda, double *v)
{
    double th[P_MLP], g[P_MLP], xs[B * IN], xv[B * IN];
    for (int i = 0; i < B * IN; i++) {
        xs[i] = ty->xt[i] * lambda[i % IN];
        xv[i] = ty->xv[i];
    }
    for (int i = 0; i < P_MLP; i++) th[i] = ty->base.theta[i];
    mlp_grad64(th, xs, ty->yt, g);
    for (int i = 0; i < P_MLP; i++) th[i] -= alpha * g[i];
    if (v) mlp_grad64(th, xv, ty->yv, v);
    return mlp_loss64(th, xv, ty->yv);
}

/* Hidden units whose ReLU input changes sign between θ + εv and θ - εv
 * (ε = 0.01/‖v‖, T1−T2's), on the training batch: where there are none,
 * T1−T2's central difference is the derivative of its objective. */
static int lookahead_kinks(const tiny *ty, double alpha)
{
    double lam[IN], v[P_MLP], vv = 0;
    for (int j = 0; j < IN; j++) lam[j] = ty->base.lambda[j];
    lookahead64(ty, alpha, lam, v);
    for (int i = 0; i < P_MLP; i++) vv += v[i] * v[i];
    double eps = 0.01 / sqrt(vv);
    int kinks = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < HID; i++) {
            double z[2];
            for (int side = 0; side < 2; side++) {
                double e = side ? -eps : eps;
                z[side] = ty->base.theta[HID * IN + i] + e * v[HID * IN + i];
                for (int j = 0; j < IN; j++)
                    z[side] += (ty->base.theta[i * IN + j] + e * v[i * IN + j]) *
                               ty->xt[b * IN + j] * lam[j];
            }
            kinks += (z[0] > 0) != (z[1] > 0);
        }
    return kinks;
}

/* J(λ): copies θ + σ s_k r_k, their training losses at inputs x ⊙ λ,
 * softmax weights, the merged θ*, and its validation loss. */
static double objective64(const tiny *ty, const eg_evograd_opts *o, uint64_t seed, long step,
                          const double *lambda)
{
    size_t P = ty->base.P;
    double *th = malloc(P * sizeof(double)), *star = calloc(P, sizeof(double));
    double xs[B * IN], xv[B * IN], loss[64], w[64], lo = INFINITY, sum = 0;
    for (int i = 0; i < B * IN; i++) {
        xs[i] = ty->xt[i] * lambda[i % IN];
        xv[i] = ty->xv[i];
    }
    for (int k = 0; k < o->k; k++) {
        int base = o->antithetic ? k - (k & 1) : k;
        double s = (o->antithetic && (k & 1)) ? -1 : 1;
        uint64_t stream = ((uint64_t)step << 20) | (uint64_t)base;
        for (size_t i = 0; i < P; i++)
            th[i] = ty->base.theta[i] + o->sigma * s * eg_rademacher(seed, stream, i);
        loss[k] = mlp_loss64(th, xs, ty->yt);
        lo = fmin(lo, loss[k]);
    }
    for (int k = 0; k < o->k; k++) sum += w[k] = exp(-(loss[k] - lo) / o->tau);
    for (int k = 0; k < o->k; k++) {
        int base = o->antithetic ? k - (k & 1) : k;
        double s = (o->antithetic && (k & 1)) ? -1 : 1;
        uint64_t stream = ((uint64_t)step << 20) | (uint64_t)base;
        for (size_t i = 0; i < P; i++)
            star[i] += w[k] / sum *
                       (ty->base.theta[i] + o->sigma * s * eg_rademacher(seed, stream, i));
    }
    double j = mlp_loss64(star, xv, ty->yv);
    free(th);
    free(star);
    return j;
}

static void check_against_fd(const eg_evograd_opts *o)
{
    tiny *ty = tiny_create();
    eg_task *t = &ty->base;
    eg_meta m;
    const uint64_t seed = 99;
    const long step = 17;
    assert_int_equal(eg_meta_init(&m, t, EG_METHOD_EVOGRAD, o, seed), 0);
    assert_int_equal(eg_meta_hypergrad(&m, t, step), 0);
    double lam[IN], worst = 0, scale = 0;
    for (int j = 0; j < IN; j++) lam[j] = t->lambda[j];
    for (int j = 0; j < IN; j++) {
        const double h = 1e-5;
        double keep = lam[j];
        lam[j] = keep + h;
        double jp = objective64(ty, o, seed, step, lam);
        lam[j] = keep - h;
        double jm = objective64(ty, o, seed, step, lam);
        lam[j] = keep;
        double fd = (jp - jm) / (2 * h);
        fprintf(stderr, "k=%d antithetic=%d dλ[%d]: evograd %.6e, float64 FD %.6e\n", o->k,
                o->antithetic, j, m.hyper[j], fd);
        worst = fmax(worst, fabs(fd - m.hyper[j]));
        scale = fmax(scale, fabs(fd));
    }
    assert_true(scale > 1e-4); /* the objective does depend on λ */
    assert_true(worst <= 2e-3 * scale);
    eg_meta_free(&m);
    tiny_free(ty);
}

/* dJ/dλ_j by central differences of a float64 objective J. */
typedef double (*objective_fn)(const tiny *ty, const void *ctx, const double *lambda);

static void fd_gradient(const tiny *ty, objective_fn J, const void *ctx, double *fd)
{
    double lam[IN];
    for (int j = 0; j < IN; j++) lam[j] = ty->base.lambda[j];
    for (int j = 0; j < IN; j++) {
        const double h = 1e-5;
        double keep = lam[j];
        lam[j] = keep + h;
        double jp = J(ty, ctx, lam);
        lam[j] = keep - h;
        double jm = J(ty, ctx, lam);
        lam[j] = keep;
        fd[j] = (jp - jm) / (2 * h);
    }
}

static double t1t2_objective(const tiny *ty, const void *ctx, const double *lambda)
{
    return lookahead64(ty, *(const double *)ctx, lambda, NULL);
}

/* On a draw of the tiny task where θ ± εv crosses no ReLU kink (a
 * central difference across one measures a slope over it, not the
 * derivative). */
static void test_t1t2_fd(void **s)
{
    tiny *ty = NULL;
    uint64_t seed = 5;
    for (; seed < 50; seed += 4) {
        ty = tiny_create_seeded(seed);
        if (lookahead_kinks(ty, tiny_lr(&ty->base)) == 0) break;
        tiny_free(ty);
        ty = NULL;
    }
    if (!ty) fail_msg("no draw of the tiny task without a kink between θ ± εv");
    eg_task *t = &ty->base;
    eg_meta m;
    assert_int_equal(eg_meta_init(&m, t, EG_METHOD_T1T2, NULL, 1), 0);
    assert_int_equal(eg_meta_hypergrad(&m, t, 0), 0);
    double alpha = tiny_lr(t), fd[IN], worst = 0, scale = 0;
    fd_gradient(ty, t1t2_objective, &alpha, fd);
    for (int j = 0; j < IN; j++) {
        fprintf(stderr, "draw %d: t1t2 dλ[%d]: %.6e, float64 FD of the lookahead %.6e\n",
                (int)seed, j, m.hyper[j], fd[j]);
        worst = fmax(worst, fabs(fd[j] - m.hyper[j]));
        scale = fmax(scale, fabs(fd[j]));
    }
    assert_true(scale > 1e-3);
    assert_true(worst <= 2e-3 * scale);
    eg_meta_free(&m);
    tiny_free(ty);
}

static void test_fd_k2(void **s)
{
    eg_evograd_opts o = {.k = 2, .sigma = 0.1f, .tau = 0.05f, .noise = EG_NOISE_RADEMACHER};
    check_against_fd(&o);
}

static void test_fd_k5(void **s)
{
    eg_evograd_opts o = {.k = 5, .sigma = 0.05f, .tau = 0.2f, .noise = EG_NOISE_RADEMACHER};
    check_against_fd(&o);
}

static void test_fd_antithetic(void **s)
{
    eg_evograd_opts o = {.k = 4, .sigma = 0.1f, .tau = 0.1f, .antithetic = 1,
                         .noise = EG_NOISE_RADEMACHER};
    check_against_fd(&o);
}

/* ---- the naive variant stores its K copies ---- */
static void test_matches_stored_copies(void **s)
{
    tiny *ty = tiny_create();
    eg_task *t = &ty->base;
    const uint64_t seed = 5;
    const long step = 3;
    eg_evograd_opts o = {.k = 3, .sigma = 0.01f, .tau = 0.05f, .noise = EG_NOISE_RADEMACHER};
    eg_meta m;
    assert_int_equal(eg_meta_init(&m, t, EG_METHOD_EVOGRAD, &o, seed), 0);
    assert_int_equal(eg_meta_hypergrad(&m, t, step), 0);
    float hyper[IN];
    double vloss;
    assert_int_equal(naive_evograd(t, &o, seed, step, hyper, &vloss), 0);
    for (int h = 0; h < IN; h++) {
        fprintf(stderr, "dλ[%d]: regenerated %.7e, stored copies %.7e\n", h, m.hyper[h], hyper[h]);
        assert_float_equal(m.hyper[h], hyper[h], 2e-3 * fabs(hyper[h]) + 1e-6);
    }
    assert_float_equal(m.val_loss, vloss, 1e-5);
    eg_meta_free(&m);
    tiny_free(ty);
}

/* The workspace is one parameter vector whatever K is. */
static void test_memory_rule(void **s)
{
    tiny *ty = tiny_create();
    eg_task *t = &ty->base;
    size_t before = t->be->cur_bytes;
    for (int k = 2; k <= 64; k *= 4) {
        eg_evograd_opts o = {.k = k, .sigma = 0.01f, .tau = 0.05f};
        eg_meta m;
        assert_int_equal(eg_meta_init(&m, t, EG_METHOD_EVOGRAD, &o, 1), 0);
        size_t extra = t->be->cur_bytes - before;
        assert_true(extra == (t->P + (size_t)(k + 1) * t->H) * sizeof(float));
        eg_meta_free(&m);
    }
    tiny_free(ty);
}

static void test_bad_options(void **s)
{
    eg_evograd_opts bad[] = {
        {.k = 1, .sigma = 1, .tau = 1},
        {.k = 3, .sigma = 1, .tau = 1, .antithetic = 1},
        {.k = 2, .sigma = 0, .tau = 1},
        {.k = 2, .sigma = 1, .tau = -1},
        {.k = 2, .sigma = NAN, .tau = 1},
    };
    const char *field[] = {"evograd.k", "evograd.k", "evograd.sigma", "evograd.tau",
                           "evograd.sigma"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(eg_evograd_check(&bad[i]), -1);
        assert_non_null(strstr(eg_last_error(), field[i]));
    }
}

/* ---- toy1d ---- */
static eg_task *toy(eg_backend *be, eg_method method)
{
    eg_job job;
    eg_job_defaults("toy1d", &job);
    job.method = method;
    eg_task *t;
    assert_int_equal(eg_task_create(&job, be, &t), 0);
    return t;
}

static void test_t1t2_toy_exact(void **s)
{
    eg_backend *be = tu_cpu();
    eg_task *t = toy(be, EG_METHOD_T1T2);
    eg_meta m;
    assert_int_equal(eg_meta_init(&m, t, EG_METHOD_T1T2, NULL, 1), 0);
    const double xs[] = {-1.8, -0.3, 0.4, 1.1, 2.5}, ls[] = {0.2, 1.2, 0.8, 0.1, 1.7};
    float alpha = t->ops->base_lr(t);
    for (int i = 0; i < 5; i++) {
        t->theta[0] = (float)xs[i];
        t->lambda[0] = (float)ls[i];
        double x = t->theta[0], lam = t->lambda[0];
        assert_int_equal(eg_meta_hypergrad(&m, t, i), 0);
        /* x' = x - α (2(x-1) + 2λx); d f_V(x')/dλ = 2 (x' - 0.5) (-2αx) */
        double xp = x - alpha * (2 * (x - 1) + 2 * lam * x);
        double exact = 2 * (xp - 0.5) * (-2 * alpha * x);
        fprintf(stderr, "x %.2f λ %.2f: t1t2 %.6f exact %.6f\n", x, lam, m.hyper[0], exact);
        assert_float_equal(m.hyper[0], exact, 1e-3);
    }
    eg_meta_free(&m);
    eg_task_destroy(t);
    be->destroy(be);
}

static void test_toy_correlation(void **s)
{
    eg_backend *be = tu_cpu();
    eg_task *t = toy(be, EG_METHOD_EVOGRAD);
    enum { POINTS = 20 };
    double lambda[POINTS], truth[POINTS], mean[POINTS];
    eg_evograd_opts o = {.k = 100, .sigma = 1, .tau = 0.5f, .noise = EG_NOISE_GAUSSIAN};
    assert_int_equal(eg_toy1d_curve(t, EG_METHOD_EVOGRAD, &o, 100, POINTS, lambda, truth, mean),
                     0);
    double r = eg_pearson(mean, truth, POINTS);
    fprintf(stderr, "toy1d K=100: Pearson %.4f over λ in [0.1, 2]\n", r);
    assert_true(r >= 0.95);
    eg_task_destroy(t);
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_k2),
        cmocka_unit_test(test_fd_k5),
        cmocka_unit_test(test_fd_antithetic),
        cmocka_unit_test(test_matches_stored_copies),
        cmocka_unit_test(test_memory_rule),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_t1t2_fd),
        cmocka_unit_test(test_t1t2_toy_exact),
        cmocka_unit_test(test_toy_correlation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
