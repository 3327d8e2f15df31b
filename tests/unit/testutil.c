#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>

#include "nn/rng.h"
#include "util/err.h"

eg_backend *tu_cpu(void)
{
    eg_backend *be = eg_cpu_backend_create();
    if (!be) fail_msg("cpu backend: %s", eg_last_error());
    return be;
}

void tu_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    eg_rng r;
    eg_rng_seed(&r, seed, 7);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * eg_rng_uniform(&r);
}

double tu_rel_err(const float *a, const float *b, size_t n)
{
    double scale = 1e-12, worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= worst)) worst = d; /* NaN counts as the worst */
    }
    return worst / scale;
}

double tu_project(const float *y, const float *w, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * w[i];
    return s;
}

int tu_check_grad(const char *what, float *x, const float *g, size_t n,
                  tu_loss_fn loss, void *ctx, float eps, double tol,
                  double atol, size_t max_probe)
{
    int failures = 0;
    size_t step = n > max_probe ? n / max_probe : 1;
    for (size_t i = 0; i < n; i += step) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = loss(ctx);
        x[i] = keep - eps;
        double lm = loss(ctx);
        x[i] = keep;
        double fd = (lp - lm) / (2.0 * (double)eps);
        double err = fabs(fd - g[i]);
        double bound = tol * fmax(fabs(fd), fabs(g[i])) + atol;
        if (!(err <= bound)) {
            if (failures < 10)
                fprintf(stderr, "%s[%zu]: analytic %.7g, finite difference %.7g\n",
                        what, i, g[i], fd);
            failures++;
        }
    }
    return failures;
}

void tu_check_failure(int rc, const char *what, const char *expr, const char *file,
                      int line)
{
    const char *msg = eg_last_error();
    if (!what || !*what)
        print_error("%s: no message substring given to check\n", expr);
    else if (rc != -1)
        print_error("%s returned %d, expected -1 (message \"%s\")\n", expr, rc, msg);
    else if (!strstr(msg, what))
        print_error("%s: message \"%s\" lacks \"%s\"\n", expr, msg, what);
    else
        return;
    _fail(file, line);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    return remove(path);
}

void tu_rmtree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Folders made by tu_tmpdir, removed when the test binary exits. */
static char made[64][512];
static int n_made;

static void remove_made(void)
{
    for (int i = 0; i < n_made; i++) tu_rmtree(made[i]);
}

int tu_soak(void)
{
    const char *v = getenv("EG_SOAK");
    int n = v ? atoi(v) : 1;
    return n > 1 ? n : 1;
}

const char *tu_tmpdir(void)
{
    static char path[512];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/evograd-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(path)) fail_msg("mkdtemp %s failed", path);
    if (n_made == 0) atexit(remove_made);
    if (n_made < 64) snprintf(made[n_made++], sizeof made[0], "%s", path);
    return path;
}

int tu_python(const char *script, const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/parity/%s %s 1>&2", script,
             args);
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

void tu_write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    if (len && fwrite(buf, 1, len, f) != len) fail_msg("cannot write %s", path);
    if (fclose(f) != 0) fail_msg("cannot write %s", path);
}

const char *tu_path(const char *dir, const char *name)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    if (snprintf(b, sizeof bufs[0], "%s/%s", dir, name) >= (int)sizeof bufs[0])
        fail_msg("path %s/%s too long", dir, name);
    return b;
}

int tu_write_f32(const char *path, const float *x, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(x, sizeof(float), n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

int tu_read_f32(const char *path, float *x, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t r = fread(x, sizeof(float), n, f);
    fclose(f);
    return r == n ? 0 : -1;
}

unsigned char *tu_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len ? *len : 1);
    if (!b || fread(b, 1, *len, f) != *len) fail_msg("%s: cannot read", path);
    fclose(f);
    return b;
}
