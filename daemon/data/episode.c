/* Class indexes, episode draws and pre-training pools of episode.h. */
#include "data/episode.h"

#include <stdlib.h>
#include <string.h>

#include "nn/rng.h"
#include "util/err.h"

/* Tags that keep the draws' streams apart from each other. */
#define TAG_EPISODE 0x657069736f646531ull /* "episode1" */
#define TAG_POOL 0x706f6f6c65706f63ull    /* "poolepoc" */

static uint64_t splitmix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t eg_stream_mix(uint64_t a, uint64_t b)
{
    return splitmix64(a ^ splitmix64(b));
}

const char *eg_split_name(eg_class_split s)
{
    switch (s) {
    case EG_SPLIT_BASE:
        return "base";
    case EG_SPLIT_VAL:
        return "val";
    case EG_SPLIT_NOVEL:
        return "novel";
    case EG_SPLIT_ALL:
        return "all";
    }
    return "?";
}

/* ---- class index ------------------------------------------------------ */

void eg_class_index_free(eg_class_index *ix)
{
    if (!ix) return;
    free(ix->cls);
    free(ix->start);
    free(ix->sample);
    free(ix);
}

int eg_class_index_new(eg_domain *d, eg_class_split s, eg_class_index **out)
{
    *out = NULL;
    if (d->classes < 1 || d->n < 0) return eg_errorf("domain %s: no classes to index", d->name);
    eg_class_index *ix = calloc(1, sizeof *ix);
    int *rank = malloc((size_t)d->classes * sizeof *rank); /* (classes) k of a class, or -1 */
    if (!ix || !rank) goto oom;
    ix->d = d;
    ix->split = s;
    ix->cls = malloc((size_t)d->classes * sizeof *ix->cls);
    ix->start = calloc((size_t)d->classes + 1, sizeof *ix->start);
    if (!ix->cls || !ix->start) goto oom;
    ix->n_classes = eg_domain_classes(d, s, ix->cls);
    for (int c = 0; c < d->classes; c++) rank[c] = -1;
    for (int k = 0; k < ix->n_classes; k++) rank[ix->cls[k]] = k;
    /* Count each class's samples, turn counts into offsets, then fill. */
    for (int i = 0; i < d->n; i++) {
        int32_t c = d->label[i];
        if (c < 0 || c >= d->classes) {
            eg_errorf("domain %s: sample %d has label %d outside [0, %d)", d->name, i, (int)c,
                      d->classes);
            goto fail;
        }
        if (rank[c] >= 0) ix->start[rank[c] + 1]++;
    }
    for (int k = 0; k < ix->n_classes; k++) ix->start[k + 1] += ix->start[k];
    ix->sample = malloc(((size_t)ix->start[ix->n_classes] + 1) * sizeof *ix->sample);
    int *fill = malloc(((size_t)ix->n_classes + 1) * sizeof *fill);
    if (!ix->sample || !fill) {
        free(fill);
        goto oom;
    }
    memcpy(fill, ix->start, (size_t)ix->n_classes * sizeof *fill);
    for (int i = 0; i < d->n; i++)
        if (rank[d->label[i]] >= 0) ix->sample[fill[rank[d->label[i]]]++] = i;
    free(fill);
    free(rank);
    *out = ix;
    return 0;
oom:
    eg_errorf("domain %s: out of memory indexing its classes", d->name);
fail:
    free(rank);
    eg_class_index_free(ix);
    return -1;
}

static int check_sizes(int n_way, int n_shot, int n_query)
{
    if (n_way < 1) return eg_errorf("n_way %d: must be at least 1", n_way);
    if (n_shot < 1) return eg_errorf("n_shot %d: must be at least 1", n_shot);
    if (n_query < 0) return eg_errorf("n_query %d: must be at least 0", n_query);
    if (n_shot > (1 << 20) || n_query > (1 << 20) || n_way > (1 << 20))
        return eg_errorf("episode of %d x (%d + %d): too large", n_way, n_shot, n_query);
    return 0;
}

int eg_class_index_check(const eg_class_index *ix, int n_way, int n_shot, int n_query)
{
    EG_TRY(check_sizes(n_way, n_shot, n_query));
    const char *dn = ix->d->name, *sn = eg_split_name(ix->split);
    if (ix->n_classes < n_way)
        return eg_errorf("domain %s: the %s split has %d classes, fewer than n_way = %d", dn, sn,
                         ix->n_classes, n_way);
    for (int k = 0; k < ix->n_classes; k++) {
        int have = ix->start[k + 1] - ix->start[k];
        if (have < n_shot + n_query)
            return eg_errorf("domain %s: class %d of the %s split has %d samples, fewer than "
                             "n_shot + n_query = %d + %d",
                             dn, ix->cls[k], sn, have, n_shot, n_query);
    }
    return 0;
}

/* ---- episodes --------------------------------------------------------- */

void eg_episode_free(eg_episode *ep)
{
    if (!ep) return;
    free(ep->cls);
    free(ep->sample);
    free(ep->scratch);
    free(ep);
}

int eg_episode_new(int n_way, int n_shot, int n_query, eg_episode **out)
{
    *out = NULL;
    EG_TRY(check_sizes(n_way, n_shot, n_query));
    int per = n_shot + n_query, k = n_way > per ? n_way : per;
    eg_episode *ep = calloc(1, sizeof *ep);
    if (!ep) return eg_errorf("episode: out of memory");
    ep->n_way = n_way;
    ep->n_shot = n_shot;
    ep->n_query = n_query;
    ep->cls = malloc((size_t)n_way * sizeof *ep->cls);
    ep->sample = malloc((size_t)n_way * per * sizeof *ep->sample);
    ep->scratch = malloc(2 * (size_t)k * sizeof *ep->scratch);
    if (!ep->cls || !ep->sample || !ep->scratch) {
        eg_episode_free(ep);
        return eg_errorf("episode: out of memory");
    }
    *out = ep;
    return 0;
}

/* The first k steps of a Fisher-Yates shuffle of 0 .. n - 1 (k <= n):
 * step t swaps cell t with cell t + below(n - t) and yields cell t. The
 * array is virtual: cell p holds p unless p is among the m cells recorded
 * in (pos, val), which hold at most k entries since each step changes one
 * cell that a later step may read (cell t is never read again). */
static void partial_shuffle(eg_rng *r, int n, int k, int *out, int *pos, int *val)
{
    int m = 0;
    for (int t = 0; t < k; t++) {
        int j = t + (int)eg_rng_below(r, (uint32_t)(n - t));
        int vt = t, vj = j, at_j = -1;
        for (int e = 0; e < m; e++) {
            if (pos[e] == t) vt = val[e];
            if (pos[e] == j) {
                vj = val[e];
                at_j = e;
            }
        }
        out[t] = vj;
        if (at_j < 0) {
            pos[m] = j;
            at_j = m++;
        }
        val[at_j] = vt;
    }
}

int eg_episode_draw(const eg_class_index *ix, uint64_t key, uint64_t stream, eg_episode *ep)
{
    EG_TRY(eg_class_index_check(ix, ep->n_way, ep->n_shot, ep->n_query));
    int per = ep->n_shot + ep->n_query, k = ep->n_way > per ? ep->n_way : per;
    int *pos = ep->scratch, *val = ep->scratch + k;
    eg_rng r;
    eg_rng_seed(&r, key, eg_stream_mix(stream, TAG_EPISODE));
    partial_shuffle(&r, ix->n_classes, ep->n_way, ep->cls, pos, val); /* ranks for now */
    for (int j = 0; j < ep->n_way; j++) {
        int rk = ep->cls[j], first = ix->start[rk];
        int *slot = ep->sample + (size_t)j * per;
        partial_shuffle(&r, ix->start[rk + 1] - first, per, slot, pos, val);
        for (int s = 0; s < per; s++) slot[s] = ix->sample[first + slot[s]];
        ep->cls[j] = ix->cls[rk];
    }
    ep->d = ix->d;
    return 0;
}

int eg_episode_fetch(const eg_episode *ep, int train, uint64_t key, uint64_t stream, int size,
                     float *x, int32_t *y)
{
    if (!ep->d) return eg_errorf("episode: fetched before it was drawn");
    int per = ep->n_shot + ep->n_query, slots = ep->n_way * per;
    size_t img = (size_t)ep->d->c * size * size;
    for (int t = 0; t < slots; t++) {
        if (y) y[t] = t / per;
        if (!x) continue;
        EG_TRY(ep->d->ops->fetch(ep->d, ep->sample[t], train, key, eg_stream_mix(stream, t), size,
                                 x + t * img));
    }
    return 0;
}

/* ---- pre-training pools ----------------------------------------------- */

void eg_pool_free(eg_pool *p)
{
    if (!p) return;
    free(p->domain);
    free(p->label_domain);
    free(p->label_class);
    free(p->entry_domain);
    free(p->entry_sample);
    free(p->entry_label);
    free(p->perm);
    free(p);
}

int eg_pool_new(eg_domain *const *domains, int n_domains, eg_class_split s, eg_pool **out)
{
    *out = NULL;
    if (n_domains < 1) return eg_errorf("pool: needs at least one domain, got %d", n_domains);
    for (int k = 1; k < n_domains; k++)
        if (domains[k]->c != domains[0]->c)
            return eg_errorf("pool: domain %s has %d channels but %s has %d", domains[k]->name,
                             domains[k]->c, domains[0]->name, domains[0]->c);
    eg_pool *p = calloc(1, sizeof *p);
    eg_class_index **ix = calloc((size_t)n_domains, sizeof *ix);
    if (!p || !ix) goto oom;
    p->n_domains = n_domains;
    p->c = domains[0]->c;
    p->domain = malloc((size_t)n_domains * sizeof *p->domain);
    if (!p->domain) goto oom;
    /* Index each domain's split, then count the labels and entries. */
    size_t labels = 0, entries = 0;
    for (int k = 0; k < n_domains; k++) {
        p->domain[k] = domains[k];
        if (eg_class_index_new(domains[k], s, &ix[k]) != 0) goto fail;
        for (int c = 0; c < ix[k]->n_classes; c++) labels += ix[k]->start[c + 1] > ix[k]->start[c];
        entries += (size_t)ix[k]->start[ix[k]->n_classes];
    }
    if (entries == 0) {
        eg_errorf("pool: the %s split of %s%s holds no sample", eg_split_name(s), domains[0]->name,
                  n_domains > 1 ? " and the other domains" : "");
        goto fail;
    }
    if (entries > INT32_MAX / 2) {
        eg_errorf("pool: %zu samples, too many", entries);
        goto fail;
    }
    p->classes = (int)labels;
    p->n = (int)entries;
    p->label_domain = malloc(labels * sizeof *p->label_domain);
    p->label_class = malloc(labels * sizeof *p->label_class);
    p->entry_domain = malloc(entries * sizeof *p->entry_domain);
    p->entry_sample = malloc(entries * sizeof *p->entry_sample);
    p->entry_label = malloc(entries * sizeof *p->entry_label);
    p->perm = malloc(entries * sizeof *p->perm);
    if (!p->label_domain || !p->label_class || !p->entry_domain || !p->entry_sample ||
        !p->entry_label || !p->perm)
        goto oom;
    /* Entries domain by domain, samples ascending: merge each domain's
     * classes back into file order. */
    int b = 0, e = 0;
    for (int k = 0; k < n_domains; k++) {
        const eg_class_index *x = ix[k];
        int first_label = b;
        for (int c = 0; c < x->n_classes; c++) {
            if (x->start[c + 1] == x->start[c]) continue;
            p->label_domain[b] = k;
            p->label_class[b] = x->cls[c];
            b++;
        }
        int *dense = malloc((size_t)domains[k]->classes * sizeof *dense); /* class -> label */
        if (!dense) goto oom;
        for (int c = 0; c < domains[k]->classes; c++) dense[c] = -1;
        for (int l = first_label; l < b; l++) dense[p->label_class[l]] = l;
        for (int i = 0; i < domains[k]->n; i++) {
            int l = dense[domains[k]->label[i]];
            if (l < 0) continue;
            p->entry_domain[e] = k;
            p->entry_sample[e] = i;
            p->entry_label[e] = l;
            e++;
        }
        free(dense);
    }
    for (int k = 0; k < n_domains; k++) eg_class_index_free(ix[k]);
    free(ix);
    *out = p;
    return 0;
oom:
    eg_errorf("pool: out of memory");
fail:
    if (ix)
        for (int k = 0; k < n_domains; k++) eg_class_index_free(ix[k]);
    free(ix);
    eg_pool_free(p);
    return -1;
}

int eg_pool_draw(eg_pool *p, uint64_t key, uint64_t step, int batch, int32_t *entry)
{
    if (batch < 1) return eg_errorf("pool: batch %d: must be at least 1", batch);
    uint64_t n = (uint64_t)p->n;
    for (int t = 0; t < batch; t++) {
        uint64_t q = step * (uint64_t)batch + (uint64_t)t, epoch = q / n;
        if (!p->perm_ok || p->perm_key != key || p->perm_epoch != epoch) {
            eg_rng r;
            eg_rng_seed(&r, key, eg_stream_mix(epoch, TAG_POOL));
            for (uint32_t i = 0; i < (uint32_t)n; i++) p->perm[i] = i;
            eg_rng_shuffle(&r, p->perm, (uint32_t)n);
            p->perm_key = key;
            p->perm_epoch = epoch;
            p->perm_ok = 1;
        }
        entry[t] = (int32_t)p->perm[q % n];
    }
    return 0;
}

int eg_pool_fetch(const eg_pool *p, const int32_t *entry, int count, int train, uint64_t key,
                  uint64_t stream, int size, float *x, int32_t *y)
{
    size_t img = (size_t)p->c * size * size;
    for (int t = 0; t < count; t++) {
        int32_t e = entry[t];
        if (e < 0 || e >= p->n) return eg_errorf("pool: entry %d outside [0, %d)", (int)e, p->n);
        if (y) y[t] = p->entry_label[e];
        if (!x) continue;
        eg_domain *d = p->domain[p->entry_domain[e]];
        EG_TRY(d->ops->fetch(d, p->entry_sample[e], train, key, eg_stream_mix(stream, t), size,
                             x + t * img));
    }
    return 0;
}

int eg_pool_batch(eg_pool *p, uint64_t key, uint64_t step, int batch, int size, float *x,
                  int32_t *y)
{
    if (batch < 1) return eg_errorf("pool: batch %d: must be at least 1", batch);
    int32_t *entry = malloc((size_t)batch * sizeof *entry);
    if (!entry) return eg_errorf("pool: out of memory");
    int rc = eg_pool_draw(p, key, step, batch, entry);
    if (rc == 0) rc = eg_pool_fetch(p, entry, batch, 1, key, step, size, x, y);
    free(entry);
    return rc;
}
