#include "task_checks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/loop.h"
#include "meta/method.h"
#include "nn/philox.h"
#include "tasks/tasks.h"
#include "testutil.h"

/* θ + σ Σ_k c_k r_k in double on the task's perturbation scope (θ
 * elsewhere), r_k EvoGrad's Rademacher noise of copy k at step
 * (meta/evograd.c's streams). */
static void combine64(const eg_task *t, double sigma, const double *c, int k, uint64_t seed,
                      long step, float *out)
{
    size_t off = t->scope_n ? t->scope_off : 0, n = t->scope_n ? t->scope_n : t->P;
    memcpy(out, t->theta, t->P * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        double x = t->theta[off + i];
        for (int j = 0; j < k; j++)
            x += sigma * c[j] * eg_rademacher(seed, ((uint64_t)step << 20) | (uint64_t)j, i);
        out[off + i] = (float)x;
    }
}

/* J(λ) of EvoGrad at the task's current batches: the copies' training
 * losses (train_loss, each copy with its own FT noise), softmax weights
 * and the merged θ* in double, ℓ_V(θ*). */
static double objective(eg_task *t, const eg_evograd_opts *o, uint64_t seed, long step,
                        float *buf, float *grad, float *dl)
{
    double loss[8], w[8], lo = INFINITY, sum = 0, one[8] = {0};
    for (int k = 0; k < o->k; k++) {
        for (int j = 0; j < o->k; j++) one[j] = j == k;
        combine64(t, o->sigma, one, o->k, seed, step, buf);
        assert_int_equal(t->ops->train_loss(t, buf, &loss[k], NULL), 0);
        lo = fmin(lo, loss[k]);
    }
    for (int k = 0; k < o->k; k++) sum += w[k] = exp(-(loss[k] - lo) / o->tau);
    for (int k = 0; k < o->k; k++) w[k] /= sum;
    combine64(t, o->sigma, w, o->k, seed, step, buf);
    double v;
    assert_int_equal(t->ops->val_grad(t, buf, &v, grad, dl), 0);
    return v;
}

void tu_check_evograd_fd(eg_task *t, const eg_job *job, const char *what, float h, double tol)
{
    const long step = 0;
    eg_meta m;
    assert_int_equal(eg_meta_init(&m, t, EG_METHOD_EVOGRAD, &job->evograd, job->seed), 0);
    assert_int_equal(eg_meta_hypergrad(&m, t, step), 0);
    float *buf = malloc(t->P * sizeof(float)), *grad = malloc(t->P * sizeof(float));
    float *dl = calloc(t->H, sizeof(float));
    /* The λ entries the hypergradient moves most, and a few others. */
    size_t probe[8];
    int n_probe = 0;
    for (int r = 0; r < 4; r++) {
        size_t best = 0;
        for (size_t i = 0; i < t->H; i++) {
            int taken = 0;
            for (int q = 0; q < n_probe; q++) taken |= probe[q] == i;
            if (!taken && fabsf(m.hyper[i]) > fabsf(m.hyper[best])) best = i;
        }
        probe[n_probe++] = best;
    }
    for (int r = 0; r < 4; r++) {
        size_t i = (size_t)(r * 37 + 5) % t->H;
        int taken = 0;
        for (int q = 0; q < n_probe; q++) taken |= probe[q] == i;
        if (!taken) probe[n_probe++] = i;
    }
    double worst = 0, scale = 0;
    for (int q = 0; q < n_probe; q++) {
        size_t i = probe[q];
        /* Central differences at h and 2h, extrapolated (Richardson) to
         * cancel their h² term: the loss is far from linear in λ over
         * 1e-3 at this width. */
        const float keep = t->lambda[i];
        double d[2];
        for (int r = 0; r < 2; r++) {
            t->lambda[i] = keep + h * (r + 1);
            double jp = objective(t, &job->evograd, job->seed, step, buf, grad, dl);
            t->lambda[i] = keep - h * (r + 1);
            double jm = objective(t, &job->evograd, job->seed, step, buf, grad, dl);
            d[r] = (jp - jm) / (2.0 * h * (r + 1));
        }
        t->lambda[i] = keep;
        double fd = (4 * d[0] - d[1]) / 3;
        fprintf(stderr, "%s dλ[%zu]: evograd %.6e, finite difference %.6e\n", what, i,
                m.hyper[i], fd);
        worst = fmax(worst, fabs(fd - m.hyper[i]));
        scale = fmax(scale, fabs(fd));
    }
    assert_true(scale > 1e-5); /* the objective does depend on λ */
    if (worst > tol * scale) fail_msg("%s: worst error %g of scale %g", what, worst, scale);
    free(buf);
    free(grad);
    free(dl);
    eg_meta_free(&m);
}


void tu_check_resume(const eg_job *job, eg_backend *be, const char *path)
{
    long steps = job->steps, half = steps / 2;
    eg_task *t[3];
    for (int i = 0; i < 3; i++)
        if (eg_task_create(job, be, &t[i]) != 0) fail_msg("task: %s", eg_last_error());
    eg_loop_config cfg = eg_task_loop_config(job, t[0]);
    eg_run ra, rb, rc;
    eg_step_record r;
    assert_int_equal(eg_run_init(&ra, t[0], &cfg), 0);
    assert_int_equal(eg_run_init(&rb, t[1], &cfg), 0);
    for (long i = 0; i < steps; i++) assert_int_equal(eg_run_step(&ra, &r), 0);
    for (long i = 0; i < half; i++) assert_int_equal(eg_run_step(&rb, &r), 0);
    assert_int_equal(eg_run_save(&rb, path), 0);
    assert_int_equal(eg_run_init(&rc, t[2], &cfg), 0);
    assert_int_equal(eg_run_load(&rc, path), 0);
    for (long i = half; i < steps; i++) assert_int_equal(eg_run_step(&rc, &r), 0);
    assert_memory_equal(t[0]->theta, t[2]->theta, t[0]->P * sizeof(float));
    if (t[0]->H) assert_memory_equal(t[0]->lambda, t[2]->lambda, t[0]->H * sizeof(float));
    assert_true(memcmp(t[0]->theta, t[1]->theta, t[0]->P * sizeof(float)) != 0);
    eg_run_free(&ra);
    eg_run_free(&rb);
    eg_run_free(&rc);
    for (int i = 0; i < 3; i++) eg_task_destroy(t[i]);
}
