/* libFuzzer harness: the CoNLL reader (data/conll.h) and seqeval's scores.
 *
 * The input is a file, loaded with a tag set built from it and with the
 * fixed set of the synthetic languages, and with a limit on sentences. A
 * load either fails with a message naming the file, leaving the corpus
 * zeroed and the tag set as it was, or gives a corpus whose sentences,
 * words, tags and languages are well formed. Then: the tags scored against
 * themselves give F1 = 1 in both modes when there is an entity; the label
 * list takes every tag; writing and reading back gives the same corpus; the
 * limited load is the first sentences of the full one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/conll.h"
#include "data/seqeval.h"
#include "data/synth_lang.h"
#include "fuzz_file.h"
#include "util/err.h"

static void check_corpus(const eg_conll *c, const eg_tagset *ts)
{
    if (c->n_sent < 1 || !c->start || c->start[0] != 0 || c->start[c->n_sent] != c->n_words)
        abort();
    for (int s = 0; s < c->n_sent; s++) {
        long n = c->start[s + 1] - c->start[s];
        if (n < 1 || n > EG_CONLL_MAX_WORDS) abort();
        size_t l = strlen(c->lang[s]);
        if (l == 1 || l > 3) abort();
        for (size_t i = 0; i < l; i++)
            if (c->lang[s][i] < 'a' || c->lang[s][i] > 'z') abort();
    }
    for (long i = 0; i < c->n_words; i++) {
        if (!c->word[i][0] || c->tag[i] < 0 || c->tag[i] >= ts->n) abort();
        const char *t = ts->names[c->tag[i]];
        if (!eg_tag_valid(t, strlen(t))) abort();
    }
}

/* Gold against itself: every entity correct. */
static void check_self_score(const eg_conll *c, const eg_tagset *ts)
{
    for (int mode = 0; mode < 2; mode++) {
        eg_seqeval r;
        if (eg_seqeval_score(ts, c->start, c->n_sent, c->tag, c->tag, mode, &r) != 0) abort();
        if (r.support != r.predicted || r.correct != r.support) abort();
        if (r.support > 0 && (r.f1 != 1 || r.precision != 1 || r.recall != 1 || r.n_types < 1))
            abort();
        if (r.support == 0 && (r.f1 != 0 || r.n_types != 0)) abort();
        long sum = 0;
        for (int t = 0; t < r.n_types; t++) {
            if (r.types[t].f1 != 1) abort();
            if (t > 0 && strcmp(r.types[t - 1].name, r.types[t].name) >= 0) abort();
            sum += r.types[t].support;
        }
        if (sum != r.support) abort();
        eg_seqeval_free(&r);
    }
}

static int same(const eg_conll *a, const eg_conll *b, int n_sent)
{
    if (a->n_sent < n_sent || b->n_sent < n_sent) return 0;
    for (int s = 0; s <= n_sent; s++)
        if (a->start[s] != b->start[s]) return 0;
    for (int s = 0; s < n_sent; s++)
        if (strcmp(a->lang[s], b->lang[s]) != 0) return 0;
    for (long i = 0; i < a->start[n_sent]; i++)
        if (strcmp(a->word[i], b->word[i]) != 0 || a->tag[i] != b->tag[i]) return 0;
    return 1;
}

/* Loads path into *c with ts; on failure checks what is left. */
static int load(const char *path, eg_tagset *ts, int max, eg_conll *c)
{
    int before = ts->n;
    eg_clear_error();
    if (eg_conll_load(path, ts, max, c) == 0) {
        check_corpus(c, ts);
        if (max > 0 && c->n_sent > max) abort();
        return 0;
    }
    if (!strstr(eg_last_error(), "evograd-fuzz-")) abort(); /* names the file */
    if (c->word || c->n_sent || c->n_words || ts->n != before) abort();
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("conll", data, size);
    const char *copy = fuzz_file("conll-written", NULL, 0);
    if (!path || !copy) return 0;
    eg_tagset built = {0}, fixed, labels;
    if (eg_synth_lang_tagset(&fixed) != 0) abort();
    eg_conll all, some, back, in_fixed;
    int max = 1 + (int)(size % 3);
    int ok_all = load(path, &built, 0, &all) == 0;
    int ok_some = load(path, &built, max, &some) == 0;
    int ok_fixed = load(path, &fixed, 0, &in_fixed) == 0;
    if (ok_all && !ok_some) abort();
    if (ok_all && ok_some && !same(&all, &some, some.n_sent)) abort();
    if (ok_fixed && !ok_all) abort(); /* the fixed set's tags are all well formed */
    if (ok_all) {
        check_self_score(&all, &built);
        if (eg_tagset_labels(&built, &labels) != 0) abort();
        int32_t *tags = malloc(sizeof *tags * (size_t)all.n_words);
        if (!tags) abort();
        memcpy(tags, all.tag, sizeof *tags * (size_t)all.n_words);
        if (eg_conll_retag(&all, &built, &labels) != 0) abort();
        check_corpus(&all, &labels);
        check_self_score(&all, &labels);
        for (long i = 0; i < all.n_words; i++)
            if (strcmp(labels.names[all.tag[i]], built.names[tags[i]]) != 0) abort();
        free(tags);
        /* What is written reads back the same (with its languages). */
        eg_clear_error();
        if (eg_conll_write(copy, &all, &labels, 1) == 0) {
            if (load(copy, &labels, 0, &back) != 0 || !same(&all, &back, all.n_sent) ||
                back.n_sent != all.n_sent)
                abort();
            eg_conll_free(&back);
        } else if (!strstr(eg_last_error(), "cannot be written")) {
            abort();
        }
        eg_tagset_free(&labels);
        eg_conll_free(&all);
    }
    if (ok_some) eg_conll_free(&some);
    if (ok_fixed) {
        check_self_score(&in_fixed, &fixed);
        eg_conll_free(&in_fixed);
    }
    eg_tagset_free(&built);
    eg_tagset_free(&fixed);
    return 0;
}
