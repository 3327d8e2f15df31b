/* Synthetic NER languages (see synth_lang.h). */
#include "data/synth_lang.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/err.h"

/* ---- the PRNG: splitmix64 ------------------------------------------------ */

static uint64_t sm_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Nearly uniform in [0, n), n >= 1 (bias below 2^-32 n). */
static int sm_below(uint64_t *s, int n)
{
    return (int)(((sm_next(s) >> 32) * (uint64_t)n) >> 32);
}

/* 1 with probability percent / 100. */
static int sm_chance(uint64_t *s, int percent) { return sm_below(s, 100) < percent; }

/* A stream seeded by the seed and up to three labels. */
static uint64_t sm_stream(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t s = seed ^ 0x5DEECE66Dull;
    s = sm_next(&s) ^ a;
    s = sm_next(&s) ^ b;
    s = sm_next(&s) ^ c;
    sm_next(&s);
    return s;
}

/* ---- the vocabulary ------------------------------------------------------ */

enum word_class {
    W_DET, W_PREP, W_ADV, W_ADJ, W_NOUN, W_VERB,        /* filler */
    W_CUE_PER, W_CUE_LOC, W_CUE_ORG, W_CUE_MISC,        /* context cues */
    W_PER_FIRST, W_PER_LAST, W_LOC, W_ORG, W_ORG_SUFFIX, W_MISC, /* entity words */
    N_CLASSES
};
static const int class_size[N_CLASSES] = {10, 12, 20, 60, 150, 60, 6, 6, 6, 6,
                                          50, 60, 70, 50, 6, 50};
#define FIRST_ENTITY_CLASS W_PER_FIRST

/* The entity types, in the order of their tag ids (B = 1 + 2t, I = 2 + 2t). */
enum { T_LOC, T_MISC, T_ORG, T_PER, N_TYPES };
static const char *const labels[] = {"O",     "B-LOC", "I-LOC", "B-MISC", "I-MISC",
                                     "B-ORG", "I-ORG", "B-PER", "I-PER"};

#define LEXICON 150 /* entities per type */
typedef struct lex_entity {
    int n;
    unsigned char cls[3];
    short idx[3];
} lex_entity;

struct eg_synth_lang {
    char **form[2][N_CLASSES]; /* [target][class][i] */
    lex_entity lex[N_TYPES][LEXICON];
    char *pool;                /* every form's bytes */
    uint64_t seed;
};

/* Syllable inventories: the source's and the target's new forms. */
static const char *const onsets[2][19] = {
    {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kl",
     "st", "tr"},
    {"c", "h", "j", "q", "w", "x", "y", "sh", "ch", "th", "kh", "gw", "hl", "ts", "ny", "qu",
     "wh", "xy", "jh"}};
static const char *const vowels[2][7] = {{"a", "e", "i", "o", "u", "ai", "ou"},
                                         {"a", "e", "i", "o", "u", "aa", "ei"}};
static const char *const codas[2][7] = {{"", "", "", "n", "r", "s", "l"},
                                        {"", "", "m", "ng", "t", "k", ""}};

/* A set of strings by open addressing, to keep forms distinct. */
typedef struct form_set {
    const char **slot;
    size_t cap;
} form_set;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* 1 when s was added, 0 when it was there. */
static int set_add(form_set *set, const char *s)
{
    size_t i = hash_str(s) & (set->cap - 1);
    while (set->slot[i]) {
        if (strcmp(set->slot[i], s) == 0) return 0;
        i = (i + 1) & (set->cap - 1);
    }
    set->slot[i] = s;
    return 1;
}

#define FORM_MAX 24 /* bytes of a form, NUL included */

/* Writes a new form of inventory `inv` into buf: 2 syllables, 3 one time in
 * four, the first letter capitalised for entity words. */
static void invent(uint64_t *s, int inv, int capital, char *buf)
{
    int syll = sm_chance(s, 25) ? 3 : 2;
    buf[0] = '\0';
    for (int k = 0; k < syll; k++) {
        strcat(buf, onsets[inv][sm_below(s, 19)]);
        strcat(buf, vowels[inv][sm_below(s, 7)]);
        if (k == syll - 1 || sm_chance(s, 30)) strcat(buf, codas[inv][sm_below(s, 7)]);
    }
    if (capital) buf[0] = (char)(buf[0] - 'a' + 'A');
}

static int total_words(void)
{
    int n = 0;
    for (int c = 0; c < N_CLASSES; c++) n += class_size[c];
    return n;
}

/* Fills the forms: the source's, then the target's (the source's or a new
 * one for the remapped words). */
static int make_forms(eg_synth_lang *g, uint64_t seed, double remap)
{
    int n = total_words();
    g->pool = malloc((size_t)2 * n * FORM_MAX);
    form_set set = {.cap = 4096};
    set.slot = calloc(set.cap, sizeof *set.slot);
    if (!g->pool || !set.slot) {
        free(set.slot);
        return eg_errorf("synth-ner: out of memory for the vocabulary");
    }
    char *next = g->pool;
    for (int target = 0; target < 2; target++) {
        uint64_t s = sm_stream(seed, 1, (uint64_t)target, 0);
        for (int c = 0; c < N_CLASSES; c++) {
            g->form[target][c] = malloc(sizeof(char *) * (size_t)class_size[c]);
            if (!g->form[target][c]) {
                free(set.slot);
                return eg_errorf("synth-ner: out of memory for the vocabulary");
            }
            for (int i = 0; i < class_size[c]; i++) {
                do invent(&s, target, c >= FIRST_ENTITY_CLASS, next);
                while (!set_add(&set, next));
                g->form[target][c][i] = next;
                next += FORM_MAX;
            }
        }
    }
    free(set.slot);
    /* Which words the target re-maps: the first round(remap * size) of a
     * seeded shuffle of each class, the shuffle independent of remap. */
    uint64_t s = sm_stream(seed, 2, 0, 0);
    for (int c = 0; c < N_CLASSES; c++) {
        int size = class_size[c], order[150];
        for (int i = 0; i < size; i++) order[i] = i;
        for (int i = size - 1; i > 0; i--) {
            int j = sm_below(&s, i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        int k = (int)lround(remap * size);
        for (int i = k; i < size; i++) g->form[1][c][order[i]] = g->form[0][c][order[i]];
    }
    return 0;
}

/* The entity lexicons: word sequences of 1 to 3 entity words per type. */
static void make_lexicons(eg_synth_lang *g, uint64_t seed)
{
    uint64_t s = sm_stream(seed, 3, 0, 0);
    for (int t = 0; t < N_TYPES; t++)
        for (int e = 0; e < LEXICON; e++) {
            lex_entity *x = &g->lex[t][e];
            int r = sm_below(&s, 100);
            x->n = 0;
#define ADD(cl) (x->cls[x->n] = (cl), x->idx[x->n] = (short)sm_below(&s, class_size[cl]), x->n++)
            switch (t) {
            case T_PER: /* Last | First Last | First First Last */
                if (r >= 20) ADD(W_PER_FIRST);
                if (r >= 80) ADD(W_PER_FIRST);
                ADD(W_PER_LAST);
                break;
            case T_LOC: /* 1 (60%), 2 (30%) or 3 (10%) place words */
                ADD(W_LOC);
                if (r >= 60) ADD(W_LOC);
                if (r >= 90) ADD(W_LOC);
                break;
            case T_ORG: /* 1 or 2 words, then a suffix half the time */
                ADD(W_ORG);
                if (r >= 60) ADD(W_ORG);
                if (sm_chance(&s, 50)) ADD(W_ORG_SUFFIX);
                break;
            default: /* MISC: 1 to 3 words */
                ADD(W_MISC);
                if (r >= 50) ADD(W_MISC);
                if (r >= 85) ADD(W_MISC);
            }
#undef ADD
        }
}

int eg_synth_lang_create(uint64_t seed, double remap, eg_synth_lang **out)
{
    *out = NULL;
    if (!(remap >= 0 && remap <= 1))
        return eg_errorf("synth-ner: remap fraction %g outside [0, 1]", remap);
    eg_synth_lang *g = calloc(1, sizeof *g);
    if (!g) return eg_errorf("synth-ner: out of memory");
    if (make_forms(g, seed, remap) != 0) {
        eg_synth_lang_free(g);
        return -1;
    }
    make_lexicons(g, seed);
    g->seed = seed;
    *out = g;
    return 0;
}

void eg_synth_lang_free(eg_synth_lang *g)
{
    if (!g) return;
    for (int t = 0; t < 2; t++)
        for (int c = 0; c < N_CLASSES; c++) free(g->form[t][c]);
    free(g->pool);
    free(g);
}

int eg_synth_lang_tagset(eg_tagset *ts)
{
    return eg_tagset_fixed(ts, labels, (int)(sizeof labels / sizeof *labels));
}

/* ---- sentences --------------------------------------------------------------- */

#define PHRASE_MAX 8
#define SENT_PHRASES 12
#define SENT_MAX 30
#define SENT_MIN 5

/* A phrase: words as (class, index) with tags; a phrase led by a
 * preposition has marker 1 (the target puts it last). */
typedef struct phrase {
    int n, marker;
    unsigned char cls[PHRASE_MAX];
    short idx[PHRASE_MAX];
    int32_t tag[PHRASE_MAX];
} phrase;

static void put(phrase *p, uint64_t *s, int cls, int32_t tag)
{
    p->cls[p->n] = (unsigned char)cls;
    p->idx[p->n] = (short)sm_below(s, class_size[cls]);
    p->tag[p->n++] = tag;
}

static void put_entity(const eg_synth_lang *g, phrase *p, uint64_t *s, int type)
{
    const lex_entity *x = &g->lex[type][sm_below(s, LEXICON)];
    for (int k = 0; k < x->n; k++) {
        p->cls[p->n] = x->cls[k];
        p->idx[p->n] = x->idx[k];
        p->tag[p->n++] = k == 0 ? 1 + 2 * type : 2 + 2 * type;
    }
}

enum { P_NP, P_PER, P_ORG, P_MISC, P_LOC_PP, P_ORG_PP, P_PP, P_ADV, P_VERB };

/* The words of a phrase of kind k. */
static phrase make_phrase(const eg_synth_lang *g, uint64_t *s, int k)
{
    phrase p = {0};
    switch (k) {
    case P_NP: /* [det] adj{0,2} noun */
    case P_PP: /* prep [det] adj{0,2} noun */
        if (k == P_PP) {
            put(&p, s, W_PREP, 0);
            p.marker = 1;
        }
        if (sm_chance(s, 70)) put(&p, s, W_DET, 0);
        for (int a = sm_below(s, 3); a > 0; a--) put(&p, s, W_ADJ, 0);
        put(&p, s, W_NOUN, 0);
        break;
    case P_PER: /* [title] PER */
        if (sm_chance(s, 50)) put(&p, s, W_CUE_PER, 0);
        put_entity(g, &p, s, T_PER);
        break;
    case P_ORG: /* [det] ORG */
        if (sm_chance(s, 30)) put(&p, s, W_DET, 0);
        put_entity(g, &p, s, T_ORG);
        break;
    case P_MISC: /* [det] MISC cue */
        if (sm_chance(s, 60)) put(&p, s, W_DET, 0);
        put_entity(g, &p, s, T_MISC);
        put(&p, s, W_CUE_MISC, 0);
        break;
    case P_LOC_PP: /* cue LOC */
        put(&p, s, W_CUE_LOC, 0);
        p.marker = 1;
        put_entity(g, &p, s, T_LOC);
        break;
    case P_ORG_PP: /* cue ORG */
        put(&p, s, W_CUE_ORG, 0);
        p.marker = 1;
        put_entity(g, &p, s, T_ORG);
        break;
    case P_ADV: put(&p, s, W_ADV, 0); break;
    default: put(&p, s, W_VERB, 0); break;
    }
    return p;
}

static int pick_subject(uint64_t *s)
{
    int r = sm_below(s, 100);
    return r < 35 ? P_PER : r < 60 ? P_ORG : P_NP;
}

static int pick_object(uint64_t *s)
{
    int r = sm_below(s, 100);
    return r < 50 ? P_NP : r < 70 ? P_MISC : r < 85 ? P_PER : P_ORG;
}

static int pick_adjunct(uint64_t *s)
{
    int r = sm_below(s, 100);
    return r < 35 ? P_LOC_PP : r < 50 ? P_ORG_PP : r < 85 ? P_PP : P_ADV;
}

/* Sentence i of (target, split): a template's phrases in source order,
 * v the verb's index among them. */
static int make_plan(const eg_synth_lang *g, uint64_t *s, phrase *ph, int *v)
{
    int n = 0, tmpl = sm_below(s, 3);
    if (tmpl == 2) ph[n++] = make_phrase(g, s, pick_adjunct(s));
    ph[n++] = make_phrase(g, s, pick_subject(s));
    *v = n;
    ph[n++] = make_phrase(g, s, P_VERB);
    if (tmpl != 1) ph[n++] = make_phrase(g, s, pick_object(s));
    int extra = sm_below(s, 5) + (tmpl == 1);
    for (int k = 0; k < extra; k++) ph[n++] = make_phrase(g, s, pick_adjunct(s));
    int words = 0;
    for (int k = 0; k < n; k++) words += ph[k].n;
    while (words > SENT_MAX) words -= ph[--n].n; /* the core is at most 15 words */
    while (words < SENT_MIN && n < SENT_PHRASES) {
        ph[n] = make_phrase(g, s, pick_adjunct(s));
        words += ph[n++].n;
    }
    return n;
}

int eg_synth_lang_sentences(const eg_synth_lang *g, int target, int split, int n,
                            eg_conll *out)
{
    if (split < EG_SYNTH_TRAIN || split > EG_SYNTH_TEST || n < 0)
        return eg_errorf("synth-ner: bad split %d or count %d", split, n);
    target = target != 0;
    const char *lang = target ? EG_SYNTH_TARGET_LANG : EG_SYNTH_SOURCE_LANG;
    for (int i = 0; i < n; i++) {
        uint64_t s = sm_stream(g->seed, 4 + (uint64_t)target, (uint64_t)split, (uint64_t)i);
        phrase ph[SENT_PHRASES];
        int v, np = make_plan(g, &s, ph, &v);
        int order[SENT_PHRASES], m = 0;
        if (!target) {
            for (int k = 0; k < np; k++) order[m++] = k;
        } else { /* before the verb as is, after it reversed, the verb last */
            for (int k = 0; k < v; k++) order[m++] = k;
            for (int k = np - 1; k > v; k--) order[m++] = k;
            order[m++] = v;
        }
        const char *words[SENT_MAX + PHRASE_MAX];
        int32_t tags[SENT_MAX + PHRASE_MAX];
        int w = 0;
        for (int k = 0; k < m; k++) {
            const phrase *p = &ph[order[k]];
            int post = target && p->marker; /* the preposition goes last */
            for (int j = post; j < p->n; j++) {
                words[w] = g->form[target][p->cls[j]][p->idx[j]];
                tags[w++] = p->tag[j];
            }
            if (post) {
                words[w] = g->form[target][p->cls[0]][p->idx[0]];
                tags[w++] = p->tag[0];
            }
        }
        EG_TRY(eg_conll_add(out, words, tags, w, lang));
    }
    return 0;
}

/* ---- files ------------------------------------------------------------------- */

const char *const eg_synth_ner_files[EG_SYNTH_NER_FILES] = {
    "src/train.txt", "src/dev.txt", "src/test.txt",
    "tgt/train.txt", "tgt/dev.txt", "tgt/test.txt"};

eg_synth_ner_opts eg_synth_ner_defaults(void)
{
    return (eg_synth_ner_opts){.seed = 1, .source_train = 5000, .target_train = 100,
                               .dev = 500, .test = 500, .remap = 0.5};
}

/* mkdir -p path. */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return eg_errorf("synth-ner: folder name too long");
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return eg_errorf("%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return eg_errorf("%s: cannot create: %s", buf, strerror(errno));
    return 0;
}

int eg_synth_ner_write(const char *dir, const eg_synth_ner_opts *o)
{
    const int counts[EG_SYNTH_NER_FILES] = {o->source_train, o->dev, o->test,
                                            o->target_train, o->dev, o->test};
    for (int f = 0; f < EG_SYNTH_NER_FILES; f++)
        if (counts[f] < 1)
            return eg_errorf("synth-ner: %s would have %d sentences (at least 1)",
                             eg_synth_ner_files[f], counts[f]);
    char path[4096];
    for (int target = 0; target < 2; target++) {
        snprintf(path, sizeof path, "%s/%s", dir, target ? "tgt" : "src");
        EG_TRY(make_dirs(path));
    }
    eg_synth_lang *g;
    EG_TRY(eg_synth_lang_create(o->seed, o->remap, &g));
    eg_tagset ts;
    if (eg_synth_lang_tagset(&ts) != 0) {
        eg_synth_lang_free(g);
        return -1;
    }
    int rc = 0;
    for (int f = 0; f < EG_SYNTH_NER_FILES && rc == 0; f++) {
        eg_conll c = {0};
        if (snprintf(path, sizeof path, "%s/%s", dir, eg_synth_ner_files[f]) >= (int)sizeof path)
            rc = eg_errorf("synth-ner: folder name too long");
        if (rc == 0) rc = eg_synth_lang_sentences(g, f >= 3, f % 3, counts[f], &c);
        if (rc == 0) rc = eg_conll_write(path, &c, &ts, o->lang_prefix);
        eg_conll_free(&c);
    }
    eg_tagset_free(&ts);
    eg_synth_lang_free(g);
    return rc;
}
