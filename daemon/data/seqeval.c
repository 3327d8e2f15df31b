/* Entity-level scores of tag sequences, seqeval's way (see seqeval.h). */
#include "data/seqeval.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* An entity: words [begin, end] (global indices) of type `type`. */
typedef struct entity {
    long begin, end;
    int type;
} entity;

typedef struct entity_list {
    entity *e;
    long n, cap;
} entity_list;

static int push(entity_list *l, long begin, long end, int type)
{
    if (l->n == l->cap) {
        long cap = l->cap ? 2 * l->cap : 256;
        entity *bigger = realloc(l->e, sizeof *bigger * (size_t)cap);
        if (!bigger) return eg_errorf("out of memory for the entities");
        l->e = bigger;
        l->cap = cap;
    }
    l->e[l->n++] = (entity){begin, end, type};
    return 0;
}

/* What the scorer needs of a tag: its prefix ('O', 'B', 'I') and type. */
typedef struct tag_info {
    char prefix;
    int type; /* index into the sorted type names; -1 for O */
} tag_info;

/* seqeval's get_entities over one sentence, words [b, e): an entity ends
 * before O, B or a change of type, starts at B, at I after O, or at a
 * change of type; the sentence end is an O. */
static int entities_default(const tag_info *info, const int32_t *tags, long b, long e,
                            entity_list *out)
{
    char prev = 'O';
    int prev_type = -1;
    long begin = b;
    for (long i = b; i <= e; i++) {
        char p = 'O';
        int type = -1;
        if (i < e) {
            p = info[tags[i]].prefix;
            type = info[tags[i]].type;
        }
        int ends = prev != 'O' && (p == 'B' || p == 'O' || prev_type != type);
        int starts = p == 'B' || (prev == 'O' && p == 'I') || (p != 'O' && prev_type != type);
        if (ends) EG_TRY(push(out, begin, i - 1, prev_type));
        if (starts) begin = i;
        prev = p;
        prev_type = type;
    }
    return 0;
}

/* seqeval's IOB2 Tokens.entities() over one sentence: each B-X with the
 * I-X of its type that follow it. */
static int entities_strict(const tag_info *info, const int32_t *tags, long b, long e,
                           entity_list *out)
{
    for (long i = b; i < e;) {
        if (info[tags[i]].prefix != 'B') {
            i++;
            continue;
        }
        int type = info[tags[i]].type;
        long j = i + 1;
        while (j < e && info[tags[j]].prefix == 'I' && info[tags[j]].type == type) j++;
        EG_TRY(push(out, i, j - 1, type));
        i = j;
    }
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fills info for each tag of ts and the sorted, distinct type names. */
static int tag_infos(const eg_tagset *ts, tag_info *info, const char **types, int *n_types)
{
    int n = 0;
    for (int i = 0; i < ts->n; i++) {
        const char *t = ts->names[i];
        if (!eg_tag_valid(t, strlen(t)))
            return eg_errorf("tag set entry %d, \"%.64s\", is not a tag", i, t);
        info[i].prefix = t[0];
        if (t[0] != 'O') types[n++] = t + 2;
    }
    qsort(types, (size_t)n, sizeof *types, cmp_name);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || strcmp(types[i], types[m - 1]) != 0) types[m++] = types[i];
    *n_types = m;
    for (int i = 0; i < ts->n; i++) {
        info[i].type = -1;
        if (info[i].prefix == 'O') continue;
        const char *key = ts->names[i] + 2;
        const char **hit = bsearch(&key, types, (size_t)m, sizeof *types, cmp_name);
        info[i].type = (int)(hit - types);
    }
    return 0;
}

/* P, R and F1 from counts, as seqeval computes them. */
static void prf(long correct, long predicted, long support, double *p, double *r, double *f)
{
    *p = predicted ? (double)correct / (double)predicted : 0;
    *r = support ? (double)correct / (double)support : 0;
    double denom = *p + *r;
    *f = denom == 0 ? 0 : 2.0 * *p * *r / denom;
}

int eg_seqeval_score(const eg_tagset *ts, const long *start, int n_sent, const int32_t *gold,
                     const int32_t *pred, int mode, eg_seqeval *out)
{
    memset(out, 0, sizeof *out);
    if (mode != EG_SEQEVAL_DEFAULT && mode != EG_SEQEVAL_STRICT)
        return eg_errorf("seqeval: mode %d is neither default (0) nor strict (1)", mode);
    tag_info *info = malloc(sizeof *info * (size_t)(ts->n + 1));
    const char **types = malloc(sizeof *types * (size_t)(ts->n + 1));
    long *counts = NULL; /* (n_types, 3): support, predicted, correct */
    entity_list g = {0}, p = {0};
    int n_types = 0, rc = -1;
    if (!info || !types) {
        eg_errorf("seqeval: out of memory");
        goto out;
    }
    if (tag_infos(ts, info, types, &n_types) != 0) goto out;
    long n_words = n_sent > 0 ? start[n_sent] : 0;
    for (int s = 0; s < n_sent; s++)
        if (start[s + 1] < start[s] || start[s] < 0) {
            eg_errorf("seqeval: sentence %d ends before it starts", s);
            goto out;
        }
    for (long i = 0; i < n_words; i++)
        if (gold[i] < 0 || gold[i] >= ts->n || pred[i] < 0 || pred[i] >= ts->n) {
            eg_errorf("seqeval: word %ld has tag id %d outside the tag set of %d", i,
                      (int)(gold[i] < 0 || gold[i] >= ts->n ? gold[i] : pred[i]), ts->n);
            goto out;
        }
    int (*extract)(const tag_info *, const int32_t *, long, long, entity_list *) =
        mode == EG_SEQEVAL_STRICT ? entities_strict : entities_default;
    for (int s = 0; s < n_sent; s++)
        if (extract(info, gold, start[s], start[s + 1], &g) != 0 ||
            extract(info, pred, start[s], start[s + 1], &p) != 0)
            goto out;

    counts = calloc((size_t)n_types * 3 + 1, sizeof *counts);
    if (!counts) {
        eg_errorf("seqeval: out of memory");
        goto out;
    }
    for (long i = 0; i < g.n; i++) counts[3 * g.e[i].type]++;
    for (long i = 0; i < p.n; i++) counts[3 * p.e[i].type + 1]++;
    /* Both lists run in order of first word without overlaps: a merge. */
    for (long i = 0, j = 0; i < g.n && j < p.n;) {
        if (g.e[i].begin < p.e[j].begin) i++;
        else if (p.e[j].begin < g.e[i].begin) j++;
        else {
            if (g.e[i].end == p.e[j].end && g.e[i].type == p.e[j].type)
                counts[3 * g.e[i].type + 2]++;
            i++;
            j++;
        }
    }
    int n_rows = 0;
    for (int t = 0; t < n_types; t++) n_rows += counts[3 * t] || counts[3 * t + 1];
    out->types = calloc((size_t)n_rows + 1, sizeof *out->types);
    if (!out->types) {
        eg_errorf("seqeval: out of memory");
        goto out;
    }
    for (int t = 0; t < n_types; t++) {
        if (!counts[3 * t] && !counts[3 * t + 1]) continue;
        eg_seqeval_type *row = &out->types[out->n_types++];
        row->name = types[t];
        row->support = counts[3 * t];
        row->predicted = counts[3 * t + 1];
        row->correct = counts[3 * t + 2];
        prf(row->correct, row->predicted, row->support, &row->precision, &row->recall,
            &row->f1);
        out->support += row->support;
        out->predicted += row->predicted;
        out->correct += row->correct;
        out->macro_precision += row->precision;
        out->macro_recall += row->recall;
        out->macro_f1 += row->f1;
        out->weighted_precision += row->precision * (double)row->support;
        out->weighted_recall += row->recall * (double)row->support;
        out->weighted_f1 += row->f1 * (double)row->support;
    }
    prf(out->correct, out->predicted, out->support, &out->precision, &out->recall, &out->f1);
    if (out->n_types) {
        out->macro_precision /= out->n_types;
        out->macro_recall /= out->n_types;
        out->macro_f1 /= out->n_types;
    }
    if (out->support) {
        out->weighted_precision /= (double)out->support;
        out->weighted_recall /= (double)out->support;
        out->weighted_f1 /= (double)out->support;
    } else {
        out->weighted_precision = out->weighted_recall = out->weighted_f1 = 0;
    }
    rc = 0;
out:
    if (rc != 0) eg_seqeval_free(out);
    free(info);
    free(types);
    free(counts);
    free(g.e);
    free(p.e);
    return rc;
}

void eg_seqeval_free(eg_seqeval *s)
{
    if (!s) return;
    free(s->types);
    memset(s, 0, sizeof *s);
}
