#include "net.h"
#include "net_replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define NONE ((size_t)-1)
#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

static size_t sample_size(const eg_layer *l) { return (size_t)l->c * l->h * l->w; }

/* Appends a layer reading `in`; returns its index or -1. */
static int push(eg_net *net, eg_layer_kind kind, int in)
{
    if (in < 0 || in >= net->n_layers)
        return eg_errorf("net: layer %d reads missing layer %d", net->n_layers, in);
    if (net->max_batch)
        return eg_errorf("net: layers added after eg_net_finish");
    if (net->n_layers == net->cap) {
        int cap = net->cap ? 2 * net->cap : 32;
        eg_layer *l = realloc(net->layers, (size_t)cap * sizeof *l);
        if (!l) return eg_errorf("net: out of memory");
        net->layers = l;
        net->cap = cap;
    }
    const eg_layer *src = &net->layers[in];
    net->layers[net->n_layers] = (eg_layer){
        .kind = kind, .in = in, .skip = -1, .c = src->c, .h = src->h, .w = src->w,
        .weight = NONE, .bias = NONE, .state = NONE, .meta = NONE,
    };
    net->layers[in].consumers++;
    return net->n_layers++;
}

/* Removes layer i, just pushed, so a refused layer leaves the net as it
 * was (builders validate before adding parameter slices); returns -1. */
static int undo(eg_net *net, int i)
{
    net->layers[net->layers[i].in].consumers--;
    net->n_layers = i;
    return -1;
}

/* Adds a parameter slice "name.suffix"; returns its offset or NONE. */
static size_t param(eg_layout *l, const char *name, const char *suffix,
                    size_t count, eg_init init, int fan_in)
{
    char full[40];
    snprintf(full, sizeof full, "%s.%s", name, suffix);
    return eg_layout_add(l, full, count, init, fan_in);
}

int eg_net_init(eg_net *net, eg_backend *be, int c, int h, int w)
{
    *net = (eg_net){.be = be};
    if (c < 1 || h < 1 || w < 1)
        return eg_errorf("net: bad input shape (%d, %d, %d)", c, h, w);
    net->layers = calloc(32, sizeof *net->layers);
    if (!net->layers) return eg_errorf("net: out of memory");
    net->cap = 32;
    net->layers[0] = (eg_layer){.kind = EG_L_INPUT, .in = -1, .skip = -1, .c = c,
                                .h = h, .w = w, .weight = NONE, .bias = NONE,
                                .state = NONE, .meta = NONE};
    net->n_layers = 1;
    return 0;
}

int eg_net_conv(eg_net *net, int in, const char *name, int k, int size,
                int stride, int pad, int bias, eg_init weight_init)
{
    int i = push(net, EG_L_CONV, in);
    if (i < 0) return -1;
    eg_layer *l = &net->layers[i];
    eg_conv_shape cs = {.n = 1, .c = l->c, .h = l->h, .w = l->w, .k = k,
                        .r = size, .s = size, .stride = stride, .pad = pad};
    if (k < 1 || eg_conv_shape_finish(&cs) != 0) {
        eg_errorf("net: conv %s: %s", name, k < 1 ? "no filters" : eg_last_error());
        return undo(net, i);
    }
    int fan_in = l->c * size * size;
    int fan = weight_init == EG_INIT_KAIMING_NORMAL_FAN_OUT ? k * size * size : fan_in;
    l->weight = param(&net->params, name, "weight", (size_t)k * fan_in, weight_init, fan);
    if (bias)
        l->bias = param(&net->params, name, "bias", k, EG_INIT_UNIFORM_FAN_IN, fan_in);
    if (l->weight == NONE || (bias && l->bias == NONE)) return -1;
    l->k = size;
    l->stride = stride;
    l->pad = pad;
    l->c = k;
    l->h = cs.p;
    l->w = cs.q;
    return i;
}

int eg_net_linear(eg_net *net, int in, const char *name, int out, int bias,
                  eg_init weight_init)
{
    int i = push(net, EG_L_LINEAR, in);
    if (i < 0) return -1;
    eg_layer *l = &net->layers[i];
    int fan_in = (int)sample_size(l);
    if (out < 1) {
        eg_errorf("net: linear %s: no outputs", name);
        return undo(net, i);
    }
    int fan = weight_init == EG_INIT_KAIMING_NORMAL_FAN_OUT ? out : fan_in;
    l->weight = param(&net->params, name, "weight", (size_t)out * fan_in, weight_init, fan);
    if (bias)
        l->bias = param(&net->params, name, "bias", out, EG_INIT_UNIFORM_FAN_IN, fan_in);
    if (l->weight == NONE || (bias && l->bias == NONE)) return -1;
    l->c = out;
    l->h = l->w = 1;
    return i;
}

int eg_net_bn(eg_net *net, int in, const char *name)
{
    int i = push(net, EG_L_BN, in);
    if (i < 0) return -1;
    eg_layer *l = &net->layers[i];
    l->weight = param(&net->params, name, "weight", l->c, EG_INIT_ONES, 0);
    l->bias = param(&net->params, name, "bias", l->c, EG_INIT_ZEROS, 0);
    size_t mean = param(&net->state, name, "running_mean", l->c, EG_INIT_ZEROS, 0);
    size_t var = param(&net->state, name, "running_var", l->c, EG_INIT_ONES, 0);
    if (l->weight == NONE || l->bias == NONE || mean == NONE || var == NONE) return -1;
    l->state = mean;
    return i;
}

int eg_net_bn_batch(eg_net *net, int in, const char *name)
{
    int i = push(net, EG_L_BN, in);
    if (i < 0) return -1;
    eg_layer *l = &net->layers[i];
    l->weight = param(&net->params, name, "weight", l->c, EG_INIT_ONES, 0);
    l->bias = param(&net->params, name, "bias", l->c, EG_INIT_ZEROS, 0);
    if (l->weight == NONE || l->bias == NONE) return -1;
    return i;
}

int eg_net_relu(eg_net *net, int in) { return push(net, EG_L_RELU, in); }

int eg_net_sigmoid(eg_net *net, int in) { return push(net, EG_L_SIGMOID, in); }

int eg_net_maxpool(eg_net *net, int in, int size, int stride, int pad)
{
    int i = push(net, EG_L_MAXPOOL, in);
    if (i < 0) return -1;
    eg_layer *l = &net->layers[i];
    if (size < 1 || stride < 1 || pad < 0 || size > l->h + 2 * pad || size > l->w + 2 * pad) {
        eg_errorf("net: maxpool %d/%d does not fit %dx%d", size, stride, l->h, l->w);
        return undo(net, i);
    }
    if (2 * pad > size) {
        eg_errorf("net: maxpool %d/%d: padding %d exceeds half the window", size, stride, pad);
        return undo(net, i);
    }
    l->k = size;
    l->stride = stride;
    l->pad = pad;
    l->h = (l->h + 2 * pad - size) / stride + 1;
    l->w = (l->w + 2 * pad - size) / stride + 1;
    return i;
}

int eg_net_avgpool(eg_net *net, int in)
{
    int i = push(net, EG_L_AVGPOOL, in);
    if (i < 0) return -1;
    net->layers[i].h = net->layers[i].w = 1;
    return i;
}

int eg_net_shortcut(eg_net *net, int in, int skip, int stride)
{
    if (skip < 0 || skip >= net->n_layers)
        return eg_errorf("net: shortcut reads missing layer %d", skip);
    int i = push(net, EG_L_SHORTCUT, in);
    if (i < 0) return -1;
    eg_layer *l = &net->layers[i], *s = &net->layers[skip];
    int ho = stride > 0 ? (s->h + stride - 1) / stride : 0;
    int wo = stride > 0 ? (s->w + stride - 1) / stride : 0;
    if (stride < 1 || ho != l->h || wo != l->w || s->c > l->c || (l->c - s->c) % 2) {
        eg_errorf("net: shortcut from (%d, %d, %d) stride %d cannot add to (%d, %d, %d)",
                  s->c, s->h, s->w, stride, l->c, l->h, l->w);
        return undo(net, i);
    }
    l->skip = skip;
    l->stride = stride;
    s->consumers++;
    return i;
}

int eg_net_add(eg_net *net, int a, int b)
{
    if (b < 0 || b >= net->n_layers) return eg_errorf("net: add reads missing layer %d", b);
    int i = push(net, EG_L_ADD, a);
    if (i < 0) return -1;
    eg_layer *l = &net->layers[i], *s = &net->layers[b];
    if (s->c != l->c || s->h != l->h || s->w != l->w) {
        eg_errorf("net: add of (%d, %d, %d) and (%d, %d, %d)", l->c, l->h, l->w, s->c, s->h, s->w);
        return undo(net, i);
    }
    l->skip = b;
    s->consumers++;
    return i;
}

int eg_net_ft(eg_net *net, int in, const char *name)
{
    int i = push(net, EG_L_FT, in);
    if (i < 0) return -1;
    eg_layer *l = &net->layers[i];
    char full[40];
    snprintf(full, sizeof full, "%s.gamma", name);
    l->meta = eg_layout_add_const(&net->meta, full, l->c, 0.3f);
    snprintf(full, sizeof full, "%s.beta", name);
    size_t beta = eg_layout_add_const(&net->meta, full, l->c, 0.5f);
    if (l->meta == NONE || beta == NONE) return -1;
    if (!net->n_ft++) net->first_ft = i;
    return i;
}

/* Whether the backward of layer kind `k` needs its own output. */
static int needs_own_output(eg_layer_kind k)
{
    return k == EG_L_RELU || k == EG_L_SIGMOID || k == EG_L_MAXPOOL ||
           k == EG_L_INPUT;
}

/* Whether the backward of kind `k` can accumulate into its input's
 * gradient; the others overwrite it, so their input needs one consumer. */
static int accumulates(eg_layer_kind k)
{
    return k == EG_L_CONV || k == EG_L_LINEAR || k == EG_L_AVGPOOL || k == EG_L_FT || k == EG_L_ADD;
}

/* Plans the gradient buffers. A layer's gradient dy is shared with the
 * in-place layers stacked on it (a group, named by its lowest layer).
 * Backward visits layers from the last to the first: a group's buffer is
 * first written by the backward of its highest consumer (`hi`; the last
 * layer's is written before the loop) and last read by the backward of its
 * lowest member (`lo`; the input's by the copy to dx). Groups whose closed
 * intervals [lo, hi] are disjoint share a buffer, so a chain of layers
 * needs two or three whatever its depth. Fills slot[g] for every group g
 * and bytes[] per buffer; returns the number of buffers. */
static int plan_grads(const eg_net *net, const int *group, int *slot, size_t *bytes)
{
    int n = net->n_layers;
    int *lo = malloc((size_t)n * sizeof *lo), *hi = malloc((size_t)n * sizeof *hi);
    int *order = malloc((size_t)n * sizeof *order), *slot_lo = malloc((size_t)n * sizeof *slot_lo);
    int n_slots = -1;
    if (!lo || !hi || !order || !slot_lo) goto out;
    for (int i = 0; i < n; i++) lo[i] = n, hi[i] = -1, slot[i] = -1;
    for (int i = 0; i < n; i++) {
        if (group[i] < i) continue; /* in place: its group's buffer */
        lo[i] = i;
        if (i == n - 1) hi[i] = n;
    }
    for (int i = n - 1; i > 0; i--) {
        const eg_layer *l = &net->layers[i];
        int g = group[l->in];
        if (hi[g] < i) hi[g] = i;
        if (l->skip >= 0 && hi[group[l->skip]] < i) hi[group[l->skip]] = i;
        if (group[i] < i && hi[group[i]] < i) hi[group[i]] = i; /* in place */
    }
    /* Groups by first write, latest layer first, as backward meets them. */
    int m = 0;
    for (int i = 0; i < n; i++)
        if (group[i] == i && (i > 0 || net->need_dx)) order[m++] = i;
    for (int a = 1; a < m; a++)
        for (int b = a; b > 0 && hi[order[b]] > hi[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    n_slots = 0;
    for (int a = 0; a < m; a++) {
        int g = order[a];
        if (hi[g] < lo[g]) hi[g] = lo[g]; /* never written: its own moment */
        size_t need = (size_t)net->max_batch * sample_size(&net->layers[g]) * sizeof(float);
        /* A buffer is free for g when its last group was done reading
         * before g's first write. Take the smallest free one that fits,
         * else grow the largest free one, else add one. */
        int fit = -1, big = -1;
        for (int s = 0; s < n_slots; s++) {
            if (slot_lo[s] <= hi[g]) continue;
            if (bytes[s] >= need && (fit < 0 || bytes[s] < bytes[fit])) fit = s;
            if (big < 0 || bytes[s] > bytes[big]) big = s;
        }
        int best = fit >= 0 ? fit : big;
        if (best < 0) {
            best = n_slots++;
            bytes[best] = 0;
        }
        if (bytes[best] < need) bytes[best] = need;
        slot_lo[best] = lo[g];
        slot[g] = best;
    }
out:
    if (n_slots < 0) eg_errorf("net: out of memory");
    free(lo);
    free(hi);
    free(order);
    free(slot_lo);
    return n_slots;
}

/* Plans transient activations for a recomputing net (see net.h): a group
 * (group[] as for gradients) is kept when its top layer is the input, the
 * output or read by several layers; segments end at kept groups. Transient
 * groups take buffer slots 0, 1, ... within their segment, so slot[g] is
 * shared by one group of every segment; bytes[] gets each slot's size.
 * Returns the number of slots, 0 when the net is a single segment (nothing
 * to gain: it keeps everything), -1 on error. */
static int plan_transient(eg_net *net, const int *group, int *slot, size_t *bytes)
{
    int n = net->n_layers, segs = 0;
    int *top = malloc((size_t)n * sizeof *top);
    if (!top) return eg_errorf("net: out of memory");
    for (int i = 0; i < n; i++) top[group[i]] = i;
    for (int i = 0; i < n; i++) {
        eg_layer *l = &net->layers[i];
        int t = top[group[i]];
        l->transient = !(group[i] == 0 || t == n - 1 || net->layers[t].consumers > 1);
        l->seg = segs;
        if (!l->transient && i == t) segs++;
    }
    /* A transient output must be read inside its own segment. */
    for (int i = 1; i < n; i++) {
        const eg_layer *l = &net->layers[i];
        int srcs[2] = {l->in, l->skip};
        for (int k = 0; k < 2; k++) {
            int s = srcs[k];
            if (s < 0 || !net->layers[s].transient || net->layers[s].seg == l->seg) continue;
            for (int j = 0; j < n; j++)
                if (group[j] == group[s]) net->layers[j].transient = 0;
        }
    }
    int n_slots = 0;
    if (segs > 2) { /* the input alone is a segment */
        int seg = -1, next = 0;
        for (int i = 0; i < n; i++) {
            const eg_layer *l = &net->layers[i];
            if (l->seg != seg) seg = l->seg, next = 0;
            if (!l->transient || group[i] != i) continue;
            size_t need = (size_t)net->max_batch * sample_size(l) * sizeof(float);
            if (next == n_slots) bytes[n_slots++] = 0;
            if (bytes[next] < need) bytes[next] = need;
            slot[i] = next++;
        }
    }
    if (!n_slots)
        for (int i = 0; i < n; i++) net->layers[i].transient = 0;
    free(top);
    return n_slots;
}

int eg_net_finish(eg_net *net, int max_batch, int need_dx)
{
    if (max_batch < 1) return eg_errorf("net: batch capacity %d", max_batch);
    net->max_batch = max_batch;
    net->need_dx = need_dx;
    eg_backend *be = net->be;
    int n = net->n_layers;
    int *group = malloc((size_t)n * sizeof *group), *slot = malloc((size_t)n * sizeof *slot);
    size_t *bytes = malloc((size_t)n * sizeof *bytes);
    int rc = -1;
    if (!group || !slot || !bytes) {
        eg_errorf("net: out of memory");
        goto out;
    }
    group[0] = 0;
    for (int i = 1; i < n; i++) {
        eg_layer *l = &net->layers[i];
        eg_layer *src = &net->layers[l->in];
        if (!accumulates(l->kind) && src->consumers > 1) {
            eg_errorf("net: layer %d overwrites the gradient of layer %d, which has %d "
                      "consumers", i, l->in, src->consumers);
            goto out;
        }
        /* ReLU, sigmoid and the adds run in place when their input has no
         * other reader and does not need its own output later. */
        l->in_place = (l->kind == EG_L_RELU || l->kind == EG_L_SIGMOID ||
                       l->kind == EG_L_SHORTCUT || l->kind == EG_L_ADD) &&
                      src->consumers == 1 && !needs_own_output(src->kind);
        if (l->kind == EG_L_SHORTCUT && !l->in_place) {
            eg_errorf("net: shortcut %d needs its input to itself", i);
            goto out;
        }
        group[i] = l->in_place ? group[l->in] : i;
        if (l->kind == EG_L_BN && !(l->aux = eg_alloc_floats(be, 4 * (size_t)l->c))) goto out;
    }
    if (net->meta.total && !(net->ft_noise = eg_alloc_floats(be, net->meta.total))) goto out;
    int n_acts = be->recompute ? plan_transient(net, group, slot, bytes) : 0;
    if (n_acts < 0) goto out;
    net->recompute = n_acts > 0;
    if (!(net->acts = calloc((size_t)n_acts + 1, sizeof *net->acts))) {
        eg_errorf("net: out of memory");
        goto out;
    }
    for (; net->n_acts < n_acts; net->n_acts++)
        if (!(net->acts[net->n_acts] = be->alloc(be, bytes[net->n_acts]))) goto out;
    for (int i = 1; i < n; i++) {
        eg_layer *l = &net->layers[i];
        if (l->in_place) l->y = net->layers[l->in].y;
        else if (l->transient) l->y = net->acts[slot[i]];
        else if (!(l->y = eg_alloc_floats(be, (size_t)max_batch * sample_size(l)))) goto out;
    }
    int n_grads = plan_grads(net, group, slot, bytes);
    if (n_grads < 0) goto out;
    if (!(net->grads = calloc((size_t)n_grads + 1, sizeof *net->grads))) {
        eg_errorf("net: out of memory");
        goto out;
    }
    for (; net->n_grads < n_grads; net->n_grads++)
        if (!(net->grads[net->n_grads] = be->alloc(be, bytes[net->n_grads]))) goto out;
    for (int i = 0; i < n; i++) {
        int s = slot[group[i]];
        net->layers[i].dy = s >= 0 ? net->grads[s] : NULL;
    }
    rc = 0;
out:
    free(group);
    free(slot);
    free(bytes);
    return rc;
}

const float *eg_net_output(const eg_net *net) { return net->layers[net->n_layers - 1].y; }

int eg_net_out_dim(const eg_net *net)
{
    return (int)sample_size(&net->layers[net->n_layers - 1]);
}

static eg_conv_shape conv_shape(const eg_net *net, const eg_layer *l)
{
    const eg_layer *src = &net->layers[l->in];
    eg_conv_shape cs = {.n = net->batch, .c = src->c, .h = src->h, .w = src->w,
                        .k = l->c, .r = l->k, .s = l->k, .stride = l->stride,
                        .pad = l->pad, .p = l->h, .q = l->w};
    return cs;
}

static eg_pool_shape pool_shape(const eg_net *net, const eg_layer *l)
{
    const eg_layer *src = &net->layers[l->in];
    eg_pool_shape ps = {.n = net->batch, .c = src->c, .h = src->h, .w = src->w,
                        .size = l->k, .stride = l->stride, .pad = l->pad, .p = l->h,
                        .q = l->w};
    return ps;
}

static int layer_forward(eg_net *net, eg_layer *l, const float *theta,
                         float *state, eg_mode mode)
{
    eg_backend *be = net->be;
    int b = net->batch;
    const eg_layer *src = &net->layers[l->in];
    size_t n = (size_t)b * sample_size(l);
    switch (l->kind) {
    case EG_L_INPUT: return 0;
    case EG_L_CONV: {
        eg_conv_shape cs = conv_shape(net, l);
        EG_TRY(be->conv_fwd(be, &cs, src->y, theta + l->weight, l->y));
        if (l->bias != NONE) EG_TRY(be->bias_add(be, b, l->c, l->h * l->w, l->y, theta + l->bias));
        return 0;
    }
    case EG_L_LINEAR: {
        int in = (int)sample_size(src);
        // y (B, out) = x (B, in) W^T, W (out, in)
        EG_TRY(be->gemm(be, 0, 1, b, l->c, in, 1.0f, src->y, in, theta + l->weight, in,
                        0.0f, l->y, l->c));
        if (l->bias != NONE) EG_TRY(be->bias_add(be, b, l->c, 1, l->y, theta + l->bias));
        return 0;
    }
    case EG_L_BN: {
        const float *gamma = theta + l->weight, *beta = theta + l->bias;
        if (l->state == NONE) mode = EG_PROBE; /* batch statistics only */
        float *mean = mode == EG_PROBE ? NULL : state + l->state;
        float *var = mean ? mean + l->c : NULL;
        int hw = l->h * l->w;
        if (mode == EG_EVAL)
            return be->bn_fwd_eval(be, b, l->c, hw, src->y, gamma, beta, l->y, mean, var, BN_EPS);
        return be->bn_fwd_train(be, b, l->c, hw, src->y, gamma, beta, l->y,
                                mean, var,
                                BN_MOMENTUM, BN_EPS, l->aux, l->aux + l->c);
    }
    case EG_L_RELU: return be->relu_fwd(be, n, src->y, l->y);
    case EG_L_SIGMOID: return be->sigmoid_fwd(be, n, src->y, l->y);
    case EG_L_MAXPOOL: {
        eg_pool_shape ps = pool_shape(net, l);
        return be->maxpool_fwd(be, &ps, src->y, l->y);
    }
    case EG_L_AVGPOOL: return be->avgpool_fwd(be, b, l->c, src->h * src->w, src->y, l->y);
    case EG_L_SHORTCUT: {
        const eg_layer *s = &net->layers[l->skip];
        return be->shortcut_fwd(be, b, s->c, s->h, s->w, l->c, l->stride, s->y, l->y);
    }
    case EG_L_ADD:
        if (!l->in_place) EG_TRY(be->copy(be, l->y, src->y, n * sizeof(float)));
        return be->axpy(be, n, 1.0f, net->layers[l->skip].y, l->y);
    case EG_L_FT:
        if (!net->ft_meta) return be->copy(be, l->y, src->y, n * sizeof(float));
        return be->ft_fwd(be, b, l->c, l->h * l->w, src->y, net->ft_meta + l->meta,
                          net->ft_noise + l->meta, l->y);
    }
    return eg_errorf("net: unknown layer kind %d", (int)l->kind);
}

typedef struct pass_args {
    const float *theta, *dout;
    float *state, *dtheta, *dx;
    eg_mode mode;
} pass_args;

static int forward_pass(eg_net *net, const void *args)
{
    const pass_args *a = args;
    for (int i = 1; i < net->n_layers; i++)
        EG_TRY(layer_forward(net, &net->layers[i], a->theta, a->state, a->mode));
    return 0;
}

int eg_net_forward(eg_net *net, const float *theta, float *state,
                   const float *x, int batch, eg_mode mode)
{
    if (!net->max_batch) return eg_errorf("net: forward before eg_net_finish");
    if (batch < 1 || batch > net->max_batch)
        return eg_errorf("net: batch %d outside 1..%d", batch, net->max_batch);
    if (net->ft_meta && net->meta.total && !net->ft_drawn)
        return eg_errorf("net: FT noise not drawn");
    net->batch = batch;
    net->last_mode = mode;
    net->last_state = state;
    net->fwd_meta = net->ft_meta;
    net->fwd_key = net->ft_key;
    net->fwd_stream = net->ft_stream;
    net->layers[0].y = (float *)x; /* read only: nothing writes the input */
    pass_args a = {.theta = theta, .state = state, .mode = mode};
    eg_pass_key key = {
        .backward = 0, .batch = batch, .mode = mode, .p = {theta, state, x, net->ft_meta}};
    return eg_net_run_pass(net, &key, forward_pass, &a);
}

/* Whether layer i's gradient is wanted at all. */
static int wants_grad(const eg_net *net, int i)
{
    return net->layers[i].kind != EG_L_INPUT || net->need_dx;
}

static int layer_backward(eg_net *net, eg_layer *l, const float *theta,
                          float *dtheta)
{
    eg_backend *be = net->be;
    int b = net->batch, in = l->in;
    eg_layer *src = &net->layers[in];
    int want = wants_grad(net, in);
    size_t n = (size_t)b * sample_size(l);
    int acc = src->written;
    switch (l->kind) {
    case EG_L_INPUT: return 0;
    case EG_L_CONV: {
        eg_conv_shape cs = conv_shape(net, l);
        if (dtheta) {
            EG_TRY(be->conv_bwd_filter(be, &cs, src->y, l->dy, dtheta + l->weight));
            if (l->bias != NONE)
                EG_TRY(be->bias_grad(be, b, l->c, l->h * l->w, l->dy, dtheta + l->bias));
        }
        if (want) EG_TRY(be->conv_bwd_data(be, &cs, theta + l->weight, l->dy, src->dy, acc));
        break;
    }
    case EG_L_LINEAR: {
        int k = (int)sample_size(src);
        // dW (out, in) += dy^T (out, B) x (B, in)
        if (dtheta) {
            EG_TRY(be->gemm(be, 1, 0, l->c, k, b, 1.0f, l->dy, l->c, src->y, k, 1.0f,
                            dtheta + l->weight, k));
            if (l->bias != NONE) EG_TRY(be->bias_grad(be, b, l->c, 1, l->dy, dtheta + l->bias));
        }
        // dx (B, in) (+)= dy (B, out) W (out, in)
        if (want)
            EG_TRY(be->gemm(be, 0, 0, b, k, l->c, 1.0f, l->dy, l->c, theta + l->weight, k,
                            acc ? 1.0f : 0.0f, src->dy, k));
        break;
    }
    case EG_L_BN: {
        /* Without dtheta the scale and shift gradients land in aux's
         * second half, which nothing reads. */
        float *dg = dtheta ? dtheta + l->weight : l->aux + 2 * l->c;
        float *db = dtheta ? dtheta + l->bias : l->aux + 3 * l->c;
        if (net->last_mode == EG_EVAL && l->state != NONE) {
            const float *mean = net->last_state + l->state;
            EG_TRY(be->bn_bwd_eval(be, b, l->c, l->h * l->w, src->y, l->dy, theta + l->weight, mean,
                                   mean + l->c, BN_EPS, want ? src->dy : NULL, dg, db));
            break;
        }
        EG_TRY(be->bn_bwd(be, b, l->c, l->h * l->w, src->y, l->dy, theta + l->weight,
                          l->aux, l->aux + l->c, src->dy, dg, db));
        break;
    }
    case EG_L_RELU: EG_TRY(be->relu_bwd(be, n, l->y, l->dy, src->dy)); break;
    case EG_L_SIGMOID: EG_TRY(be->sigmoid_bwd(be, n, l->y, l->dy, src->dy)); break;
    case EG_L_MAXPOOL: {
        eg_pool_shape ps = pool_shape(net, l);
        EG_TRY(be->maxpool_bwd(be, &ps, src->y, l->y, l->dy, src->dy));
        break;
    }
    case EG_L_AVGPOOL:
        EG_TRY(be->avgpool_bwd(be, b, l->c, src->h * src->w, l->dy, src->dy, acc));
        break;
    case EG_L_SHORTCUT: {
        /* The input's gradient is this layer's (same buffer); the skip
         * branch receives the shortcut's transpose. */
        eg_layer *s = &net->layers[l->skip];
        if (wants_grad(net, l->skip)) {
            EG_TRY(be->shortcut_bwd(be, b, s->c, s->h, s->w, l->c, l->stride, l->dy,
                                    s->dy, s->written));
            s->written = 1;
        }
        break;
    }
    case EG_L_ADD: {
        /* In place, the first addend's gradient is this layer's buffer. */
        if (!l->in_place && want) {
            if (acc)
                EG_TRY(be->axpy(be, n, 1.0f, l->dy, src->dy));
            else
                EG_TRY(be->copy(be, src->dy, l->dy, n * sizeof(float)));
        }
        src->written = 1;
        eg_layer *s = &net->layers[l->skip];
        if (wants_grad(net, l->skip)) {
            if (s->written)
                EG_TRY(be->axpy(be, n, 1.0f, l->dy, s->dy));
            else
                EG_TRY(be->copy(be, s->dy, l->dy, n * sizeof(float)));
            s->written = 1;
        }
        break;
    }
    case EG_L_FT: {
        if (!net->ft_meta) {
            if (!want) break;
            if (acc)
                EG_TRY(be->axpy(be, n, 1.0f, l->dy, src->dy));
            else
                EG_TRY(be->copy(be, src->dy, l->dy, n * sizeof(float)));
            break;
        }
        float *dmeta = net->ft_dmeta ? net->ft_dmeta + l->meta : NULL;
        if (!want && !dmeta) break;
        EG_TRY(be->ft_bwd(be, b, l->c, l->h * l->w, src->y, l->dy, net->ft_meta + l->meta,
                          net->ft_noise + l->meta, want ? src->dy : NULL, acc, dmeta));
        break;
    }
    }
    src->written = 1;
    return 0;
}

/* Recomputes the transient activations of the segment ending at layer
 * `last`, in forward order, with the statistics of the forward that made
 * them: its batch statistics (running statistics untouched), or after an
 * EG_EVAL forward the running statistics it read. */
static int recompute_segment(eg_net *net, int last, const float *theta)
{
    int first = last;
    eg_mode mode = net->last_mode == EG_EVAL ? EG_EVAL : EG_PROBE;
    float *state = mode == EG_EVAL ? net->last_state : NULL;
    while (first > 1 && net->layers[first - 1].seg == net->layers[last].seg) first--;
    for (int j = first; j <= last; j++)
        if (net->layers[j].transient)
            EG_TRY(layer_forward(net, &net->layers[j], theta, state, mode));
    return 0;
}

static int backward_pass(eg_net *net, const void *args)
{
    const pass_args *a = args;
    eg_backend *be = net->be;
    for (int i = 0; i < net->n_layers; i++) net->layers[i].written = 0;
    eg_layer *last = &net->layers[net->n_layers - 1];
    EG_TRY(be->copy(be, last->dy, a->dout,
                    (size_t)net->batch * sample_size(last) * sizeof(float)));
    last->written = 1;
    int seg = -1;
    /* With only FT meta-gradients wanted, nothing below the lowest FT
     * layer is. */
    int stop = !a->dtheta && !a->dx && net->n_ft ? net->first_ft : 1;
    for (int i = net->n_layers - 1; i >= stop; i--) {
        eg_layer *l = &net->layers[i];
        if (net->recompute && l->seg != seg) {
            seg = l->seg;
            EG_TRY(recompute_segment(net, i, a->theta));
        }
        if (!l->written) continue; /* no path from the output */
        EG_TRY(layer_backward(net, l, a->theta, a->dtheta));
    }
    if (a->dx) {
        const eg_layer *in = &net->layers[0];
        size_t bytes = (size_t)net->batch * sample_size(in) * sizeof(float);
        if (in->written) return be->copy(be, a->dx, in->dy, bytes);
        return be->fill(be, bytes / sizeof(float), 0.0f, a->dx);
    }
    return 0;
}

int eg_net_backward(eg_net *net, const float *theta, const float *dout,
                    float *dtheta, float *dx)
{
    if (!net->batch) return eg_errorf("net: backward before forward");
    int dmeta = net->ft_meta && net->ft_dmeta && net->n_ft;
    if (!dtheta && !dx && !dmeta)
        return eg_errorf("net: backward asked for neither parameter nor input gradients");
    if (dx && !net->need_dx)
        return eg_errorf("net: input gradient asked of a net built without it");
    if (net->ft_meta != net->fwd_meta ||
        (net->ft_meta && (net->ft_key != net->fwd_key || net->ft_stream != net->fwd_stream)))
        return eg_errorf("net: the FT setting changed between forward and backward");
    pass_args a = {.theta = theta, .dout = dout, .dtheta = dtheta, .dx = dx};
    eg_pass_key key = {
        .backward = 1,
        .batch = net->batch,
        .mode = net->last_mode,
        .p = {theta, dout, dtheta, dx, net->last_state, net->ft_meta, net->ft_dmeta}};
    return eg_net_run_pass(net, &key, backward_pass, &a);
}

int eg_net_set_ft(eg_net *net, const float *meta, float *dmeta, uint64_t key, uint64_t stream)
{
    if (!net->max_batch) return eg_errorf("net: eg_net_set_ft before eg_net_finish");
    if (dmeta && !meta) return eg_errorf("net: FT meta-gradient asked without meta");
    net->ft_meta = meta;
    net->ft_dmeta = dmeta;
    if (!meta || !net->meta.total) return 0;
    if (net->ft_drawn && net->ft_key == key && net->ft_stream == stream) return 0;
    eg_backend *be = net->be;
    const float one = 1.0f;
    net->ft_drawn = 0;
    net->ft_key = key;
    net->ft_stream = stream;
    /* e = 0 + 1 e: the draws' floats exactly. */
    EG_TRY(be->fill(be, net->meta.total, 0.0f, net->ft_noise));
    EG_TRY(be->noise_combine(be, net->meta.total, 1, key, 1, &stream, &one, net->ft_noise,
                             net->ft_noise));
    net->ft_drawn = 1;
    return 0;
}

void eg_net_init_meta(const eg_net *net, float *meta)
{
    eg_layout_init(&net->meta, meta, 0);
}

void eg_net_init_params(const eg_net *net, float *theta, float *state,
                        uint64_t seed)
{
    eg_layout_init(&net->params, theta, seed);
    eg_layout_init(&net->state, state, seed);
}

void eg_net_free(eg_net *net)
{
    if (!net->layers) return;
    for (int i = 0; i < net->n_layers; i++) {
        eg_layer *l = &net->layers[i];
        if (l->kind == EG_L_INPUT) continue;
        if (!l->in_place && !l->transient) net->be->free(net->be, l->y);
        net->be->free(net->be, l->aux);
    }
    for (int i = 0; i < net->n_acts; i++) net->be->free(net->be, net->acts[i]);
    net->be->free(net->be, net->ft_noise);
    free(net->acts);
    eg_net_units_free(net);
    for (int i = 0; i < net->n_grads; i++) net->be->free(net->be, net->grads[i]);
    free(net->grads);
    free(net->layers);
    eg_layout_free(&net->params);
    eg_layout_free(&net->state);
    eg_layout_free(&net->meta);
    *net = (eg_net){0};
}
