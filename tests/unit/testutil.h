/* Helpers shared by the unit tests: the CPU backend, seeded fills, error
 * metrics, finite-difference gradient checks, scratch folders, running the
 * PyTorch reference scripts. */
#ifndef EG_TESTUTIL_H
#define EG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nn/backend.h"
#include "util/err.h"

/* A CPU backend for one test; fails the test if it cannot be made. */
eg_backend *tu_cpu(void);

/* x[i] uniform in [lo, hi), deterministic in seed. */
void tu_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);

/* max_i |a_i - b_i| / (max_i |b_i| + 1e-12): the relative error of a
 * against the reference b, measured against the reference's scale. */
double tu_rel_err(const float *a, const float *b, size_t n);

/* sum_i w_i y_i in double: a scalar loss that sees every output. */
double tu_project(const float *y, const float *w, size_t n);

/* Recomputes the scalar loss at the current inputs. */
typedef double (*tu_loss_fn)(void *ctx);

/* Compares the analytic gradient g (n) of loss(x) with central differences,
 * perturbing x in place by +-eps at up to max_probe indices spread over the
 * vector. An index fails when |fd - g| > tol * max(|fd|, |g|) + atol.
 * Prints each failure with `what`; returns the number of failures. */
int tu_check_grad(const char *what, float *x, const float *g, size_t n,
                  tu_loss_fn loss, void *ctx, float eps, double tol,
                  double atol, size_t max_probe);

/* Fails the test unless `call` (an int expression) returns -1 with an
 * eg_last_error() that contains `what`; the message says which call, the
 * substring wanted and the message got. The message is cleared before the
 * call, so a stale one left by an earlier failure cannot pass the check,
 * but `what` must still be specific to this call's failure: the field or
 * parameter it names, the bad value, or its key phrase ("truncated",
 * "out of range"), never a word every message has ("error", "store"). */
#define tu_fails_with(call, what)                                              \
    do {                                                                       \
        eg_clear_error();                                                      \
        tu_check_failure((call), (what), #call, __FILE__, __LINE__);           \
    } while (0)

/* The check behind tu_fails_with: rc is the call's result, expr its text. */
void tu_check_failure(int rc, const char *what, const char *expr, const char *file,
                      int line);

/* A fresh scratch folder under $TMPDIR (or /tmp), removed with its
 * contents when the test binary exits; the returned path is static. */
const char *tu_tmpdir(void);

/* How many times longer the load, storm and fault tests run: $EG_SOAK
 * (`make soak` sets it), at least 1. */
int tu_soak(void);

/* Removes a folder and everything under it. */
void tu_rmtree(const char *path);

/* Runs `/usr/bin/python3 tests/parity/SCRIPT ARGS...` from the repository
 * root; returns the exit status (0 = ok). Output goes to stderr. */
int tu_python(const char *script, const char *args);

/* Writes/reads a raw float32 file; 0 on success. */
int tu_write_f32(const char *path, const float *x, size_t n);

/* Writes len bytes of buf (may be empty) to path; fails the test if it
 * cannot. */
void tu_write_bytes(const char *path, const void *buf, size_t len);

/* "dir/name" in one of 8 rotating static buffers (so a few can be used in
 * one call); fails the test when it does not fit. */
const char *tu_path(const char *dir, const char *name);
int tu_read_f32(const char *path, float *x, size_t n);

/* The whole file at path in a malloc'd buffer (*len bytes); fails the test
 * when it cannot be read. */
unsigned char *tu_read_all(const char *path, size_t *len);

#endif
