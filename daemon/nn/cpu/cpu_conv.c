/* 2-D convolution on the CPU with oneDNN.
 *
 * The first call of a direction (forward, backward data, backward filter)
 * on a shape builds a plan: the convolution primitive, created with
 * format_tag_any so oneDNN picks the layouts its fastest kernels want
 * (channel-blocked nChw16c and friends on AVX-512), and reorders between
 * those layouts and the caller's NCHW activations and KCRS weights. Later
 * calls only point the plan's memory objects at the caller's buffers and
 * execute. Reordered copies, results waiting to be accumulated and
 * oneDNN's scratchpad all live in the backend's scratch memory, so the
 * allocator's peak counts them. oneDNN cannot accumulate into its output,
 * so accumulating results go to scratch and a reorder with a sum post-op
 * adds them to the caller's buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "cpu_dnnl.h"
#include "util/err.h"

/* Byte alignment of each block carved out of the scratch memory. */
#define ALIGN 64

#define DN(expr, what) EG_TRY(cpu_dnnl_check((expr), (what)))

typedef enum conv_dir { CONV_FWD, CONV_BWD_DATA, CONV_BWD_FILTER } conv_dir;

static const char *const dir_name[] = {"forward", "backward data", "backward filter"};

/* What a plan is cached under. Only ints: no padding bytes in the key. */
typedef struct conv_key {
    int dir;
    eg_conv_shape cs;
} conv_key;

/* One primitive and the memory object for its scratchpad (NULL when it
 * needs none); every step's scratchpad starts at the plan's pad_offset. */
typedef struct conv_step {
    dnnl_primitive_t prim;
    dnnl_memory_t pad;
} conv_step;

/* One tensor argument of the convolution.
 * user:  over the caller's buffer, in NCHW or KCRS.
 * inner: over scratch at `offset`, in the primitive's layout; NULL for an
 *        input the primitive reads in the caller's layout.
 * move:  for an input, user -> inner; for an output, inner -> user; empty
 *        when both have the same layout.
 * add:   for an accumulating output, user += inner. */
typedef struct conv_tensor {
    int arg;
    dnnl_memory_t user, inner;
    conv_step move, add;
    size_t offset;
} conv_tensor;

typedef struct conv_plan {
    conv_step conv;
    conv_tensor in[2], out;
    size_t pad_offset, pad_bytes; /* the scratchpads' block */
    size_t scratch_bytes;         /* everything the plan needs in scratch */
} conv_plan;

static size_t align_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static void step_free(conv_step *st)
{
    if (st->prim) dnnl_primitive_destroy(st->prim);
    if (st->pad) dnnl_memory_destroy(st->pad);
}

static void tensor_free(conv_tensor *t)
{
    if (t->user) dnnl_memory_destroy(t->user);
    if (t->inner) dnnl_memory_destroy(t->inner);
    step_free(&t->move);
    step_free(&t->add);
}

static void plan_free(void *p)
{
    conv_plan *pl = p;
    if (!pl) return;
    step_free(&pl->conv);
    for (int i = 0; i < 2; i++) tensor_free(&pl->in[i]);
    tensor_free(&pl->out);
    free(pl);
}

/* Attributes with the user-provided scratchpad and, if sum != 0, a sum
 * post-op (dst = dst + result). */
static int make_attr(dnnl_primitive_attr_t *attr, int sum)
{
    dnnl_post_ops_t ops = NULL;
    DN(dnnl_primitive_attr_create(attr), "creating attributes");
    dnnl_status_t st = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && sum) {
        st = dnnl_post_ops_create(&ops);
        if (st == dnnl_success) st = dnnl_post_ops_append_sum(ops, 1.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(*attr, ops);
        if (ops) dnnl_post_ops_destroy(ops);
    }
    if (st != dnnl_success) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
    }
    return cpu_dnnl_check(st, "setting attributes");
}

/* Makes the step's primitive from pd (which stays the caller's) and its
 * scratchpad memory; grows *pad_bytes to the scratchpad's size. */
static int step_init(conv_step *st, cpu_dnnl *d, const_dnnl_primitive_desc_t pd,
                     size_t *pad_bytes)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    if (bytes) {
        DN(dnnl_memory_create(&st->pad, md, d->engine, DNNL_MEMORY_NONE), "creating a scratchpad");
        if (bytes > *pad_bytes) *pad_bytes = bytes;
    }
    DN(dnnl_primitive_create(&st->prim, pd), "creating a primitive");
    return 0;
}

/* A reorder step from src to dst, adding into dst if sum != 0. */
static int reorder_init(conv_step *st, cpu_dnnl *d, const dnnl_memory_desc_t *src,
                        const dnnl_memory_desc_t *dst, int sum, size_t *pad_bytes)
{
    dnnl_primitive_attr_t attr;
    dnnl_primitive_desc_t pd = NULL;
    EG_TRY(make_attr(&attr, sum));
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, src, d->engine, dst, d->engine, attr);
    dnnl_primitive_attr_destroy(attr);
    DN(s, "creating a reorder");
    int rc = step_init(st, d, pd, pad_bytes);
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* Fills t for argument `arg` with the caller's layout `user` and the
 * primitive's layout `prim`. Inputs get an inner copy only when the layouts
 * differ; outputs get one when the layouts differ or when they may
 * accumulate (`add`), and `add` also makes the summing reorder. */
static int tensor_init(conv_tensor *t, cpu_dnnl *d, int arg, int output, int add,
                       const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *prim,
                       size_t *scratch, size_t *pad_bytes)
{
    int same = dnnl_memory_desc_equal(user, prim);
    t->arg = arg;
    DN(dnnl_memory_create(&t->user, user, d->engine, DNNL_MEMORY_NONE), "creating memory");
    if (same && !add) return 0;
    DN(dnnl_memory_create(&t->inner, prim, d->engine, DNNL_MEMORY_NONE), "creating memory");
    t->offset = *scratch;
    *scratch += align_up(dnnl_memory_desc_get_size(prim));
    if (!same) {
        if (output) EG_TRY(reorder_init(&t->move, d, prim, user, 0, pad_bytes));
        else EG_TRY(reorder_init(&t->move, d, user, prim, 0, pad_bytes));
    }
    if (add) EG_TRY(reorder_init(&t->add, d, prim, user, 1, pad_bytes));
    return 0;
}

/* A 4-D f32 memory descriptor with the given dims and tag. */
static int md4(dnnl_memory_desc_t *md, int a, int b, int c, int e, dnnl_format_tag_t tag)
{
    dnnl_dims_t dims = {a, b, c, e};
    DN(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag), "describing a tensor");
    return 0;
}

/* The operation descriptor of direction dir on cs, with every layout left
 * to oneDNN. */
static int conv_desc(dnnl_convolution_desc_t *cd, conv_dir dir, const eg_conv_shape *cs)
{
    dnnl_memory_desc_t x, w, y;
    EG_TRY(md4(&x, cs->n, cs->c, cs->h, cs->w, dnnl_format_tag_any));
    EG_TRY(md4(&w, cs->k, cs->c, cs->r, cs->s, dnnl_format_tag_any));
    EG_TRY(md4(&y, cs->n, cs->k, cs->p, cs->q, dnnl_format_tag_any));
    dnnl_dims_t strides = {cs->stride, cs->stride}, pad = {cs->pad, cs->pad};
    dnnl_status_t st;
    switch (dir) {
    case CONV_FWD:
        st = dnnl_convolution_forward_desc_init(cd, dnnl_forward_training, dnnl_convolution_direct,
                                                &x, &w, NULL, &y, strides, pad, pad);
        break;
    case CONV_BWD_DATA:
        st = dnnl_convolution_backward_data_desc_init(cd, dnnl_convolution_direct, &x, &w, &y,
                                                      strides, pad, pad);
        break;
    default:
        st = dnnl_convolution_backward_weights_desc_init(cd, dnnl_convolution_direct, &x, &w,
                                                         NULL, &y, strides, pad, pad);
        break;
    }
    return cpu_dnnl_check(st, "describing a convolution");
}

/* The convolution's primitive descriptor; backward ones are built with the
 * forward one as their hint, as oneDNN requires. */
static int conv_pd(dnnl_primitive_desc_t *pd, cpu_dnnl *d, conv_dir dir,
                   const eg_conv_shape *cs)
{
    dnnl_convolution_desc_t cd, fd;
    dnnl_primitive_desc_t hint = NULL;
    dnnl_primitive_attr_t attr;
    EG_TRY(conv_desc(&cd, dir, cs));
    if (dir != CONV_FWD) {
        EG_TRY(conv_desc(&fd, CONV_FWD, cs));
        DN(dnnl_primitive_desc_create(&hint, &fd, NULL, d->engine, NULL),
           "creating the forward hint");
    }
    int rc = make_attr(&attr, 0);
    if (rc == 0) {
        rc = cpu_dnnl_check(dnnl_primitive_desc_create(pd, &cd, attr, d->engine, hint),
                            "creating a convolution");
        dnnl_primitive_attr_destroy(attr);
    }
    if (hint) dnnl_primitive_desc_destroy(hint);
    return rc;
}

/* Builds the plan of dir on cs into pl (zeroed; freed by the caller on
 * failure). */
static int plan_init(conv_plan *pl, cpu_dnnl *d, conv_dir dir, const eg_conv_shape *cs)
{
    dnnl_memory_desc_t x, w, y;
    EG_TRY(md4(&x, cs->n, cs->c, cs->h, cs->w, dnnl_nchw));
    EG_TRY(md4(&w, cs->k, cs->c, cs->r, cs->s, dnnl_oihw));
    EG_TRY(md4(&y, cs->n, cs->k, cs->p, cs->q, dnnl_nchw));
    dnnl_primitive_desc_t pd;
    EG_TRY(conv_pd(&pd, d, dir, cs));
    const dnnl_memory_desc_t *pw = dnnl_primitive_desc_query_md(
        pd, dir == CONV_BWD_FILTER ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *px = dnnl_primitive_desc_query_md(
        pd, dir == CONV_BWD_DATA ? dnnl_query_diff_src_md : dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *py = dnnl_primitive_desc_query_md(
        pd, dir == CONV_FWD ? dnnl_query_dst_md : dnnl_query_diff_dst_md, 0);
    /* The two inputs and the output of each direction. */
    struct {
        int arg;
        const dnnl_memory_desc_t *user, *prim;
    } t[3];
    switch (dir) {
    case CONV_FWD: /* y = conv(x, w) */
        t[0].arg = DNNL_ARG_SRC, t[0].user = &x, t[0].prim = px;
        t[1].arg = DNNL_ARG_WEIGHTS, t[1].user = &w, t[1].prim = pw;
        t[2].arg = DNNL_ARG_DST, t[2].user = &y, t[2].prim = py;
        break;
    case CONV_BWD_DATA: /* dx (+)= conv_transpose(dy, w) */
        t[0].arg = DNNL_ARG_WEIGHTS, t[0].user = &w, t[0].prim = pw;
        t[1].arg = DNNL_ARG_DIFF_DST, t[1].user = &y, t[1].prim = py;
        t[2].arg = DNNL_ARG_DIFF_SRC, t[2].user = &x, t[2].prim = px;
        break;
    case CONV_BWD_FILTER: /* dw += correlation(x, dy) */
        t[0].arg = DNNL_ARG_SRC, t[0].user = &x, t[0].prim = px;
        t[1].arg = DNNL_ARG_DIFF_DST, t[1].user = &y, t[1].prim = py;
        t[2].arg = DNNL_ARG_DIFF_WEIGHTS, t[2].user = &w, t[2].prim = pw;
        break;
    }
    size_t scratch = 0;
    int rc = step_init(&pl->conv, d, pd, &pl->pad_bytes);
    for (int i = 0; rc == 0 && i < 3; i++) {
        int output = i == 2;
        rc = tensor_init(output ? &pl->out : &pl->in[i], d, t[i].arg, output,
                         output && dir != CONV_FWD, t[i].user, t[i].prim, &scratch,
                         &pl->pad_bytes);
    }
    dnnl_primitive_desc_destroy(pd);
    pl->pad_offset = scratch;
    pl->scratch_bytes = scratch + align_up(pl->pad_bytes);
    return rc;
}

/* The cached plan of dir on cs, built on first use; NULL with eg_errorf. */
static conv_plan *plan_get(cpu_dnnl *d, conv_dir dir, const eg_conv_shape *cs)
{
    conv_key key;
    memset(&key, 0, sizeof key);
    key.dir = dir;
    key.cs = *cs;
    conv_plan *pl = cpu_dnnl_find(d, &key, sizeof key);
    if (pl) return pl;
    pl = calloc(1, sizeof *pl);
    if (!pl) {
        eg_errorf("cpu: out of memory building a convolution plan");
        return NULL;
    }
    if (plan_init(pl, d, dir, cs) != 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", eg_last_error());
        eg_errorf("conv %s (N %d, C %d, H %d, W %d, K %d, R %d, S %d, stride %d, pad %d): %s",
                  dir_name[dir], cs->n, cs->c, cs->h, cs->w, cs->k, cs->r, cs->s, cs->stride,
                  cs->pad, why);
        plan_free(pl);
        return NULL;
    }
    if (cpu_dnnl_insert(d, &key, sizeof key, pl, plan_free) != 0) return NULL;
    return pl;
}

/* Executes step st with its n args (room for one more: the scratchpad). */
static int step_run(cpu_dnnl *d, const conv_plan *pl, const conv_step *st, char *scratch,
                    dnnl_exec_arg_t *args, int n)
{
    if (st->pad) {
        DN(dnnl_memory_set_data_handle(st->pad, scratch + pl->pad_offset), "binding memory");
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, st->pad};
    }
    DN(dnnl_primitive_execute(st->prim, d->stream, n, args), "executing a primitive");
    return 0;
}

/* Runs a reorder step from memory `from` to memory `to`. */
static int move(cpu_dnnl *d, const conv_plan *pl, const conv_step *st, char *scratch,
                dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return step_run(d, pl, st, scratch, args, 2);
}

/* Runs direction dir of the convolution on cs: out = op(in0, in1), or
 * out += op(in0, in1) when acc != 0. */
static int conv_run(eg_backend *be, conv_dir dir, const eg_conv_shape *cs, const float *in0,
                    const float *in1, float *out, int acc)
{
    cpu_dnnl *d = cpu_dnnl_of(be);
    conv_plan *pl = plan_get(d, dir, cs);
    if (!pl) return -1;
    char *scratch = NULL;
    if (pl->scratch_bytes && !(scratch = (char *)cpu_scratch(be, pl->scratch_bytes))) return -1;

    const float *ins[2] = {in0, in1};
    dnnl_exec_arg_t args[4];
    for (int i = 0; i < 2; i++) {
        conv_tensor *t = &pl->in[i];
        DN(dnnl_memory_set_data_handle(t->user, (void *)ins[i]), "binding memory");
        if (t->inner) {
            DN(dnnl_memory_set_data_handle(t->inner, scratch + t->offset), "binding memory");
            EG_TRY(move(d, pl, &t->move, scratch, t->user, t->inner));
        }
        args[i] = (dnnl_exec_arg_t){t->arg, t->inner ? t->inner : t->user};
    }
    conv_tensor *o = &pl->out;
    int via_inner = acc || o->move.prim;
    DN(dnnl_memory_set_data_handle(o->user, out), "binding memory");
    if (via_inner) DN(dnnl_memory_set_data_handle(o->inner, scratch + o->offset), "binding memory");
    args[2] = (dnnl_exec_arg_t){o->arg, via_inner ? o->inner : o->user};
    EG_TRY(step_run(d, pl, &pl->conv, scratch, args, 3));
    if (via_inner) EG_TRY(move(d, pl, acc ? &o->add : &o->move, scratch, o->inner, o->user));
    DN(dnnl_stream_wait(d->stream), "waiting for the stream");
    return 0;
}

int cpu_conv_fwd(eg_backend *be, const eg_conv_shape *cs, const float *x,
                 const float *w, float *y)
{
    return conv_run(be, CONV_FWD, cs, x, w, y, 0);
}

int cpu_conv_bwd_data(eg_backend *be, const eg_conv_shape *cs, const float *w,
                      const float *dy, float *dx, int acc)
{
    return conv_run(be, CONV_BWD_DATA, cs, w, dy, dx, acc);
}

int cpu_conv_bwd_filter(eg_backend *be, const eg_conv_shape *cs,
                        const float *x, const float *dy, float *dw)
{
    return conv_run(be, CONV_BWD_FILTER, cs, x, dy, dw, 1);
}
