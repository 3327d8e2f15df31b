/* NER data (daemon/data): the CoNLL reader on files written here (language
 * prefixes, -DOCSTART-, CRLF, runs of blank lines, a last line without its
 * newline, space-separated and multi-field lines), max_sentences, tag sets
 * and the label list's order, every refusal with its message, the writer's
 * round trip; seqeval's entity scores on hand-worked cases (its README
 * example, stray I- tags where strict and default differ, type mismatches,
 * entities at sentence ends, no predictions); the synthetic languages:
 * determinism in the seed, exact sentence counts, well-formed BIO tags, the
 * share of the source vocabulary the target keeps, the target's word
 * order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/conll.h"
#include "data/seqeval.h"
#include "data/synth_lang.h"
#include "testutil.h"
#include "util/err.h"

/* ---- helpers --------------------------------------------------------------- */

/* dir/name in a rotating set of static buffers. */
static void write_text(const char *path, const char *text) { tu_write_bytes(path, text, strlen(text)); }

static void load_ok(const char *path, eg_tagset *ts, int max, eg_conll *c)
{
    eg_clear_error();
    if (eg_conll_load(path, ts, max, c) != 0) fail_msg("%s: %s", path, eg_last_error());
}

static int sent_len(const eg_conll *c, int s) { return (int)(c->start[s + 1] - c->start[s]); }

/* Fails unless sentence s is `words` (space-separated) with `tags`. */
static void expect_sentence(const eg_conll *c, const eg_tagset *ts, int s, const char *lang,
                            const char *const *words, const char *const *tags, int n)
{
    assert_true(s < c->n_sent);
    assert_string_equal(c->lang[s], lang);
    assert_int_equal(sent_len(c, s), n);
    for (int i = 0; i < n; i++) {
        long w = c->start[s] + i;
        assert_string_equal(c->word[w], words[i]);
        assert_true(c->tag[w] >= 0 && c->tag[w] < ts->n);
        assert_string_equal(ts->names[c->tag[w]], tags[i]);
    }
}

/* ---- reading ---------------------------------------------------------------- */

static void test_read_well_formed(void **state)
{
    const char *dir = tu_tmpdir();
    const char *text = "-DOCSTART-\tO\n"
                       "\n"
                       "en:EU\tB-ORG\n"
                       "en:rejects\tO\n"
                       "en:German\tB-MISC\n"
                       "en:call\tO\n"
                       "\n\n   \n"
                       "Peter\tB-PER\r\n"
                       "Blackburn\tI-PER\r\n"
                       "\r\n"
                       "-DOCSTART- -X- O O\n"
                       "Zürich NNP I-NP B-LOC\n"       /* spaces, 4 fields, UTF-8 */
                       "re:mix\tO\n"                   /* a prefix only one word has */
                       "\n"
                       "de:Köln\tB-LOC\n"
                       "de:re:set\tO\n"                /* the prefix goes, once */
                       "de:x:\tO\n"                    /* "x:" is no prefix, but de: is */
                       "\n"
                       "New York\tB-LOC\n"             /* a tab: the token keeps its space */
                       "City\tI-LOC  \n"              /* trailing blanks dropped */
                       "\n"
                       "last\tO\n"
                       "one\tO";                       /* no final newline */
    write_text(tu_path(dir, "a.txt"), text);
    eg_tagset ts = {0};
    eg_conll c;
    load_ok(tu_path(dir, "a.txt"), &ts, 0, &c);
    assert_int_equal(c.n_sent, 6);
    assert_int_equal(c.n_words, 15);
    expect_sentence(&c, &ts, 0, "en", (const char *[]){"EU", "rejects", "German", "call"},
                    (const char *[]){"B-ORG", "O", "B-MISC", "O"}, 4);
    expect_sentence(&c, &ts, 1, "", (const char *[]){"Peter", "Blackburn"},
                    (const char *[]){"B-PER", "I-PER"}, 2);
    expect_sentence(&c, &ts, 2, "", (const char *[]){"Zürich", "re:mix"},
                    (const char *[]){"B-LOC", "O"}, 2);
    expect_sentence(&c, &ts, 3, "de", (const char *[]){"Köln", "re:set", "x:"},
                    (const char *[]){"B-LOC", "O", "O"}, 3);
    expect_sentence(&c, &ts, 4, "", (const char *[]){"New York", "City"},
                    (const char *[]){"B-LOC", "I-LOC"}, 2);
    expect_sentence(&c, &ts, 5, "", (const char *[]){"last", "one"},
                    (const char *[]){"O", "O"}, 2);
    assert_int_equal(c.start[0], 0);
    assert_int_equal(c.start[6], 15);
    /* The built set holds the tags in the order met. */
    assert_int_equal(ts.n, 7);
    assert_int_equal(ts.fixed, 0);
    const char *order[] = {"B-ORG", "O", "B-MISC", "B-PER", "I-PER", "B-LOC", "I-LOC"};
    for (int i = 0; i < 7; i++) assert_string_equal(ts.names[i], order[i]);
    eg_conll_free(&c);
    assert_null(c.word);
    eg_conll_free(&c); /* twice is harmless */

    /* A second file adds its new tags after the others. */
    write_text(tu_path(dir, "b.txt"), "x\tB-DATE\ny\tI-DATE\nz\tO\n");
    load_ok(tu_path(dir, "b.txt"), &ts, 0, &c);
    assert_int_equal(ts.n, 9);
    assert_string_equal(ts.names[7], "B-DATE");
    assert_int_equal(c.tag[2], 1);
    eg_conll_free(&c);
    eg_tagset_free(&ts);
    tu_rmtree(dir);
}

static void test_max_sentences(void **state)
{
    const char *dir = tu_tmpdir();
    write_text(tu_path(dir, "m.txt"), "a\tB-PER\n\nb\tB-LOC\nc\tI-LOC\n\nd\tB-ORG\n\n\n");
    eg_tagset ts = {0};
    eg_conll c;
    load_ok(tu_path(dir, "m.txt"), &ts, 1, &c);
    assert_int_equal(c.n_sent, 1);
    assert_int_equal(c.n_words, 1);
    assert_int_equal(ts.n, 1); /* nothing past the first sentence was read */
    eg_conll_free(&c);
    load_ok(tu_path(dir, "m.txt"), &ts, 2, &c);
    assert_int_equal(c.n_sent, 2);
    assert_int_equal(c.n_words, 3);
    assert_string_equal(c.word[2], "c");
    eg_conll_free(&c);
    for (int max = 3; max <= 100; max += 97) { /* 3 and 100: all */
        load_ok(tu_path(dir, "m.txt"), &ts, max, &c);
        assert_int_equal(c.n_sent, 3);
        eg_conll_free(&c);
    }
    load_ok(tu_path(dir, "m.txt"), &ts, 0, &c);
    assert_int_equal(c.n_sent, 3);
    assert_int_equal(ts.n, 4);
    eg_conll_free(&c);
    /* The last sentence of the limit may end at the end of the file. */
    write_text(tu_path(dir, "n.txt"), "a\tO\n\nb\tO");
    load_ok(tu_path(dir, "n.txt"), &ts, 2, &c);
    assert_int_equal(c.n_sent, 2);
    eg_conll_free(&c);
    eg_tagset_free(&ts);
    tu_rmtree(dir);
}

static void test_tagsets(void **state)
{
    const char *dir = tu_tmpdir();
    write_text(tu_path(dir, "t.txt"), "a\tI-PER\nb\tO\nc\tB-ORG\n\nd\tB-LOC\ne\tI-LOC\nf\tB-MISC\n"
                                 "g\tB-ORG\nh\tB-A-B\n");
    eg_tagset seen = {0}, labels;
    eg_conll c;
    load_ok(tu_path(dir, "t.txt"), &seen, 0, &c);
    assert_int_equal(eg_tagset_labels(&seen, &labels), 0);
    const char *want[] = {"O",     "B-A-B", "I-A-B", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
                          "B-ORG", "I-ORG", "B-PER", "I-PER"};
    assert_int_equal(labels.n, 11);
    assert_int_equal(labels.fixed, 1);
    for (int i = 0; i < 11; i++) assert_string_equal(labels.names[i], want[i]);
    assert_int_equal(eg_tagset_find(&labels, "I-PER"), 10);
    assert_int_equal(eg_tagset_find(&labels, "I-FOO"), -1);

    /* Retagging to the label list keeps every tag's name. */
    assert_int_equal(c.n_words, 8);
    int32_t before[8];
    memcpy(before, c.tag, sizeof before);
    assert_int_equal(eg_conll_retag(&c, &seen, &labels), 0);
    for (int i = 0; i < 8; i++)
        assert_string_equal(labels.names[c.tag[i]], seen.names[before[i]]);
    assert_int_equal(c.tag[0], 10); /* I-PER */
    eg_tagset only_o;
    assert_int_equal(eg_tagset_fixed(&only_o, (const char *[]){"O"}, 1), 0);
    tu_fails_with(eg_conll_retag(&c, &labels, &only_o), "\"I-PER\" is not in the new tag set");
    assert_int_equal(c.tag[0], 10); /* unchanged */

    /* Reading again with the fixed list gives its ids directly. */
    eg_conll d;
    load_ok(tu_path(dir, "t.txt"), &labels, 0, &d);
    assert_int_equal(labels.n, 11);
    assert_memory_equal(c.tag, d.tag, sizeof before);
    eg_conll_free(&d);
    eg_conll_free(&c);

    /* An empty set's labels are O alone. */
    eg_tagset none = {0}, l0;
    assert_int_equal(eg_tagset_labels(&none, &l0), 0);
    assert_int_equal(l0.n, 1);
    assert_string_equal(l0.names[0], "O");
    eg_tagset_free(&l0);

    /* Tags: O, B-X, I-X. */
    assert_true(eg_tag_valid("O", 1));
    assert_true(eg_tag_valid("B-PER", 5));
    assert_true(eg_tag_valid("I-X", 3));
    assert_true(eg_tag_valid("B-A-B", 5));
    const char *bad[] = {"", "o", "OO", "B", "B-", "X-PER", "E-PER", "S-PER", "BPER", "B--PER",
                         "B-PER-", "B-P R", "I-\tX", "b-per"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (eg_tag_valid(bad[i], strlen(bad[i]))) fail_msg("\"%s\" taken as a tag", bad[i]);

    /* Fixed sets refuse bad, repeated and new tags. */
    eg_tagset f;
    tu_fails_with(eg_tagset_fixed(&f, (const char *[]){"O", "X-PER"}, 2), "bad tag \"X-PER\"");
    assert_null(f.names);
    tu_fails_with(eg_tagset_fixed(&f, (const char *[]){"O", "B-PER", "O"}, 3),
                  "tag \"O\" given twice");
    tu_fails_with(eg_tagset_add(&only_o, "B-PER"), "unknown tag \"B-PER\"");
    tu_fails_with(eg_tagset_add(&none, "PER"), "bad tag \"PER\"");
    assert_int_equal(eg_tagset_add(&only_o, "O"), 0);
    eg_tagset_free(&only_o);
    eg_tagset_free(&labels);
    eg_tagset_free(&seen);
    tu_rmtree(dir);
}

static void test_bad_files(void **state)
{
    const char *dir = tu_tmpdir();
    eg_tagset ts = {0}, fixed;
    assert_int_equal(eg_tagset_add(&ts, "O"), 0);
    assert_int_equal(eg_synth_lang_tagset(&fixed), 0);
    eg_conll c;
    struct {
        const char *name, *text, *what;
    } cases[] = {
        {"badtag", "a\tO\nb\tX-PER\n", "badtag:2: bad tag \"X-PER\""},
        {"badtag2", "a\tB-LOC\n\nb\tB-\n", "badtag2:3: bad tag \"B-\""},
        {"lower", "a o\n", "lower:1: bad tag \"o\""},
        {"missing", "a\tO\n\nword\n", "missing:3: missing tag"},
        {"emptytok", "\tB-PER\n", "emptytok:1: empty token"},
        {"emptytok2", " B-PER\n", "emptytok2:1: empty token"},
        {"empty", "", "empty: no sentences"},
        {"blanks", "\n\n  \n-DOCSTART- -X- O\n\r\n", "blanks: no sentences"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_text(tu_path(dir, cases[i].name), cases[i].text);
        tu_fails_with(eg_conll_load(tu_path(dir, cases[i].name), &ts, 0, &c), cases[i].what);
        assert_null(c.word);
        assert_int_equal(c.n_sent, 0);
    }
    /* An unknown tag with a fixed set; the tag set is left as it was when
     * a built one fails (B-LOC above was dropped again). */
    write_text(tu_path(dir, "unknown"), "a\tO\nb\tB-DATE\n");
    tu_fails_with(eg_conll_load(tu_path(dir, "unknown"), &fixed, 0, &c),
                  "unknown:2: unknown tag \"B-DATE\"");
    assert_int_equal(fixed.n, 9);
    assert_int_equal(ts.n, 1);
    write_text(tu_path(dir, "late"), "a\tB-NEW\n\nb\tI-NEW\nc\tZ\n");
    tu_fails_with(eg_conll_load(tu_path(dir, "late"), &ts, 0, &c), "late:4: bad tag \"Z\"");
    assert_int_equal(ts.n, 1);
    assert_string_equal(ts.names[0], "O");

    /* A NUL byte. */
    const char nul[] = "a\tO\nb\0c\tO\n";
    tu_write_bytes(tu_path(dir, "nul"), nul, sizeof nul - 1);
    tu_fails_with(eg_conll_load(tu_path(dir, "nul"), &ts, 0, &c), "nul:2: NUL byte");

    /* Lines of EG_CONLL_MAX_LINE bytes pass (with LF or CRLF), one more fails. */
    size_t max = EG_CONLL_MAX_LINE;
    char *big = malloc(max + 16);
    assert_non_null(big);
    memset(big, 'w', max);
    memcpy(big + max - 2, "\tO\r\n", 4);
    tu_write_bytes(tu_path(dir, "long_ok"), big, max + 2);
    load_ok(tu_path(dir, "long_ok"), &ts, 0, &c);
    assert_int_equal(strlen(c.word[0]), max - 2);
    eg_conll_free(&c);
    memset(big, 'w', max + 1);
    memcpy(big + max - 1, "\tO\n", 3);
    tu_write_bytes(tu_path(dir, "long"), big, max + 2);
    tu_fails_with(eg_conll_load(tu_path(dir, "long"), &ts, 0, &c), "long:1: line longer than 65536");
    memset(big, 'w', max + 8); /* and without a newline */
    tu_write_bytes(tu_path(dir, "long2"), big, max + 8);
    tu_fails_with(eg_conll_load(tu_path(dir, "long2"), &ts, 0, &c), "long2:1: line longer than");
    free(big);

    /* A sentence of EG_CONLL_MAX_WORDS words passes, one more fails. */
    for (int extra = 0; extra < 2; extra++) {
        FILE *f = fopen(tu_path(dir, "words"), "wb");
        assert_non_null(f);
        fprintf(f, "first\tO\n\n");
        for (int i = 0; i < EG_CONLL_MAX_WORDS + extra; i++) fprintf(f, "w%d\tO\n", i);
        assert_int_equal(fclose(f), 0);
        if (!extra) {
            load_ok(tu_path(dir, "words"), &ts, 0, &c);
            assert_int_equal(sent_len(&c, 1), EG_CONLL_MAX_WORDS);
            eg_conll_free(&c);
        } else {
            tu_fails_with(eg_conll_load(tu_path(dir, "words"), &ts, 0, &c),
                          "words:4099: sentence (from line 3) longer than 4096 words");
        }
    }

    /* Too many distinct tags. */
    FILE *f = fopen(tu_path(dir, "tags"), "wb");
    assert_non_null(f);
    for (int i = 0; i <= EG_TAGSET_MAX; i++) fprintf(f, "w\tB-T%d\n", i);
    assert_int_equal(fclose(f), 0);
    tu_fails_with(eg_conll_load(tu_path(dir, "tags"), &ts, 0, &c), "tags:1024: more than 1024 tags");
    assert_int_equal(ts.n, 1);

    tu_fails_with(eg_conll_load(tu_path(dir, "absent.txt"), &ts, 0, &c), "absent.txt: no such file");
    tu_fails_with(eg_conll_load(dir, &ts, 0, &c), "read error"); /* a folder */
    eg_tagset_free(&ts);
    eg_tagset_free(&fixed);
    tu_rmtree(dir);
}

static void test_write_round_trip(void **state)
{
    const char *dir = tu_tmpdir();
    eg_tagset ts;
    assert_int_equal(eg_synth_lang_tagset(&ts), 0);
    eg_conll c = {0};
    assert_int_equal(eg_conll_add(&c, (const char *[]){"New York", "is", "big"},
                                  (const int32_t[]){1, 0, 0}, 3, "en"),
                     0);
    assert_int_equal(eg_conll_add(&c, (const char *[]){"Ana", "ab:c"}, (const int32_t[]){7, 0}, 2,
                                  NULL),
                     0);
    assert_int_equal(eg_conll_add(&c, (const char *[]){"Łódź"}, (const int32_t[]){1}, 1, "pol"),
                     0);
    tu_fails_with(eg_conll_add(&c, (const char *[]){"x"}, (const int32_t[]){0}, 1, "EN"),
                  "bad language code \"EN\"");
    tu_fails_with(eg_conll_add(&c, (const char *[]){""}, (const int32_t[]){0}, 1, NULL),
                  "word 0 of the sentence is empty");
    tu_fails_with(eg_conll_add(&c, NULL, NULL, 0, NULL), "a sentence of 0 words");
    assert_int_equal(c.n_sent, 3);
    for (int prefix = 0; prefix < 2; prefix++) {
        const char *path = tu_path(dir, prefix ? "p.txt" : "plain.txt");
        assert_int_equal(eg_conll_write(path, &c, &ts, prefix), 0);
        eg_conll d;
        load_ok(path, &ts, 0, &d);
        assert_int_equal(d.n_sent, c.n_sent);
        assert_int_equal(d.n_words, c.n_words);
        for (long i = 0; i < c.n_words; i++) {
            assert_string_equal(d.word[i], c.word[i]);
            assert_int_equal(d.tag[i], c.tag[i]);
        }
        for (int s = 0; s < c.n_sent; s++)
            assert_string_equal(d.lang[s], prefix ? c.lang[s] : "");
        eg_conll_free(&d);
    }
    size_t len;
    unsigned char *bytes = tu_read_all(tu_path(dir, "p.txt"), &len);
    const char *want = "en:New York\tB-LOC\nen:is\tO\nen:big\tO\n\nAna\tB-PER\nab:c\tO\n\n"
                       "pol:Łódź\tB-LOC\n\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(bytes, want, len);
    free(bytes);

    /* What would not read back is refused. */
    eg_conll bad = {0};
    assert_int_equal(eg_conll_add(&bad, (const char *[]){"a\tb"}, (const int32_t[]){0}, 1, NULL),
                     0);
    tu_fails_with(eg_conll_write(tu_path(dir, "bad.txt"), &bad, &ts, 0), "word 0 (\"a\tb\")");
    eg_conll_free(&bad);
    assert_int_equal(eg_conll_add(&bad, (const char *[]){"-DOCSTART-"}, (const int32_t[]){0}, 1,
                                  NULL),
                     0);
    tu_fails_with(eg_conll_write(tu_path(dir, "bad.txt"), &bad, &ts, 0), "document marker");
    eg_conll_free(&bad);
    assert_int_equal(eg_conll_add(&bad, (const char *[]){"a"}, (const int32_t[]){9}, 1, NULL), 0);
    tu_fails_with(eg_conll_write(tu_path(dir, "bad.txt"), &bad, &ts, 0), "tag id 9 outside");
    eg_conll_free(&bad);
    tu_fails_with(eg_conll_write(tu_path(dir, "no/such/dir.txt"), &c, &ts, 0), "cannot create");
    eg_conll_free(&c);
    eg_tagset_free(&ts);
    tu_rmtree(dir);
}

/* ---- seqeval ----------------------------------------------------------------- */

#define MAX_TOKENS 64

/* Sequences as text: sentences separated by "|", tags by spaces. Both
 * texts must have the same shape. */
typedef struct seqs {
    eg_tagset ts;
    long start[MAX_TOKENS];
    int32_t gold[MAX_TOKENS], pred[MAX_TOKENS];
    int n_sent;
} seqs;

static int parse_seqs(const char *text, eg_tagset *ts, int32_t *ids, long *start)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", text);
    int n_sent = 0;
    long n = 0;
    start[0] = 0;
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        if (strcmp(tok, "|") == 0) {
            start[++n_sent] = n;
            continue;
        }
        int id = eg_tagset_add(ts, tok);
        if (id < 0) fail_msg("%s", eg_last_error());
        ids[n++] = id;
    }
    start[++n_sent] = n;
    return n_sent;
}

static seqs scored; /* the last score()'s sequences */

static void score(const char *gold, const char *pred, int mode, eg_seqeval *out)
{
    eg_tagset_free(&scored.ts);
    memset(&scored, 0, sizeof scored);
    long start2[MAX_TOKENS];
    scored.n_sent = parse_seqs(gold, &scored.ts, scored.gold, scored.start);
    int n2 = parse_seqs(pred, &scored.ts, scored.pred, start2);
    assert_int_equal(n2, scored.n_sent);
    assert_memory_equal(start2, scored.start, sizeof(long) * (size_t)(n2 + 1));
    eg_clear_error();
    if (eg_seqeval_score(&scored.ts, scored.start, scored.n_sent, scored.gold, scored.pred, mode,
                         out) != 0)
        fail_msg("%s", eg_last_error());
    /* The names point into scored.ts, alive until the next call. */
}

static void expect_prf(const eg_seqeval *r, long support, long predicted, long correct,
                       double p, double rec, double f1)
{
    assert_int_equal(r->support, support);
    assert_int_equal(r->predicted, predicted);
    assert_int_equal(r->correct, correct);
    assert_float_equal(r->precision, p, 1e-12);
    assert_float_equal(r->recall, rec, 1e-12);
    assert_float_equal(r->f1, f1, 1e-12);
}

static void expect_type(const eg_seqeval *r, int i, const char *name, long support,
                        long predicted, long correct, double p, double rec, double f1)
{
    assert_true(i < r->n_types);
    const eg_seqeval_type *t = &r->types[i];
    assert_string_equal(t->name, name);
    assert_int_equal(t->support, support);
    assert_int_equal(t->predicted, predicted);
    assert_int_equal(t->correct, correct);
    assert_float_equal(t->precision, p, 1e-12);
    assert_float_equal(t->recall, rec, 1e-12);
    assert_float_equal(t->f1, f1, 1e-12);
}

static void test_seqeval_readme(void **state)
{
    /* seqeval's README: f1_score = 0.5 and its classification_report:
     *          precision recall f1-score support
     *   MISC   0.00      0.00   0.00     1
     *   PER    1.00      1.00   1.00     1
     *   micro  0.50      0.50   0.50     2
     *   macro  0.50      0.50   0.50     2
     *   weighted 0.50    0.50   0.50     2 */
    const char *gold = "O O O B-MISC I-MISC I-MISC O | B-PER I-PER O";
    const char *pred = "O O B-MISC I-MISC I-MISC I-MISC O | B-PER I-PER O";
    for (int mode = 0; mode < 2; mode++) {
        eg_seqeval r;
        score(gold, pred, mode, &r);
        expect_prf(&r, 2, 2, 1, 0.5, 0.5, 0.5);
        assert_int_equal(r.n_types, 2);
        expect_type(&r, 0, "MISC", 1, 1, 0, 0, 0, 0);
        expect_type(&r, 1, "PER", 1, 1, 1, 1, 1, 1);
        assert_float_equal(r.macro_precision, 0.5, 1e-12);
        assert_float_equal(r.macro_recall, 0.5, 1e-12);
        assert_float_equal(r.macro_f1, 0.5, 1e-12);
        assert_float_equal(r.weighted_f1, 0.5, 1e-12);
        eg_seqeval_free(&r);
        assert_null(r.types);
    }
}

static void test_seqeval_strict_and_default(void **state)
{
    eg_seqeval r;
    /* Stray I-: the default mode reads I-PER I-PER as an entity, strict
     * mode as none. Default: PER (0,1) and LOC (3,3) both correct. Strict:
     * only LOC predicted, so P = 1/1, R = 1/2, F1 = 2/3. */
    const char *gold = "B-PER I-PER O B-LOC", *pred = "I-PER I-PER O B-LOC";
    score(gold, pred, EG_SEQEVAL_DEFAULT, &r);
    expect_prf(&r, 2, 2, 2, 1, 1, 1);
    eg_seqeval_free(&r);
    score(gold, pred, EG_SEQEVAL_STRICT, &r);
    expect_prf(&r, 2, 1, 1, 1, 0.5, 2.0 / 3);
    expect_type(&r, 0, "LOC", 1, 1, 1, 1, 1, 1);
    expect_type(&r, 1, "PER", 1, 0, 0, 0, 0, 0);
    assert_float_equal(r.macro_f1, 0.5, 1e-12);
    eg_seqeval_free(&r);

    /* A stray I- in the gold: default counts it (support 3), strict not
     * (support 2). Pred B-LOC at 1 and B-ORG I-ORG at 3-4, gold I-LOC at
     * 0, B-LOC at 1, B-ORG I-ORG I-ORG at 3-5.
     *   default: gold LOC(0,0) LOC(1,1) ORG(3,5); pred LOC(1,1) ORG(3,4):
     *            correct 1, P 1/2, R 1/3, F1 2/5
     *   strict:  gold LOC(1,1) ORG(3,5): P 1/2, R 1/2, F1 1/2 */
    gold = "I-LOC B-LOC O B-ORG I-ORG I-ORG";
    pred = "O B-LOC O B-ORG I-ORG O";
    score(gold, pred, EG_SEQEVAL_DEFAULT, &r);
    expect_prf(&r, 3, 2, 1, 0.5, 1.0 / 3, 0.4);
    expect_type(&r, 0, "LOC", 2, 1, 1, 1, 0.5, 2.0 / 3);
    expect_type(&r, 1, "ORG", 1, 1, 0, 0, 0, 0);
    assert_float_equal(r.macro_precision, 0.5, 1e-12);
    assert_float_equal(r.macro_recall, 0.25, 1e-12);
    assert_float_equal(r.macro_f1, 1.0 / 3, 1e-12);
    assert_float_equal(r.weighted_recall, (0.5 * 2 + 0 * 1) / 3, 1e-12);
    assert_float_equal(r.weighted_f1, (2.0 / 3 * 2) / 3, 1e-12);
    eg_seqeval_free(&r);
    score(gold, pred, EG_SEQEVAL_STRICT, &r);
    expect_prf(&r, 2, 2, 1, 0.5, 0.5, 0.5);
    eg_seqeval_free(&r);

    /* A change of type inside a run: default splits B-PER I-ORG into PER
     * (0,0) and ORG (1,1); strict keeps PER (0,0) and drops the I-ORG. */
    gold = "B-PER O O";
    pred = "B-PER I-ORG O";
    score(gold, pred, EG_SEQEVAL_DEFAULT, &r);
    expect_prf(&r, 1, 2, 1, 0.5, 1, 2.0 / 3);
    eg_seqeval_free(&r);
    score(gold, pred, EG_SEQEVAL_STRICT, &r);
    expect_prf(&r, 1, 1, 1, 1, 1, 1);
    eg_seqeval_free(&r);

    /* B after B starts a new entity in both modes; I-PER after I-LOC too
     * in the default mode. Gold: PER(0,0) PER(1,2) LOC(3,3) PER(4,4)
     * (default) or PER(0,0) PER(1,2) LOC(3,3) (strict). */
    gold = "B-PER B-PER I-PER B-LOC I-PER";
    score(gold, gold, EG_SEQEVAL_DEFAULT, &r);
    expect_prf(&r, 4, 4, 4, 1, 1, 1);
    eg_seqeval_free(&r);
    score(gold, gold, EG_SEQEVAL_STRICT, &r);
    expect_prf(&r, 3, 3, 3, 1, 1, 1);
    eg_seqeval_free(&r);
}

static void test_seqeval_edges(void **state)
{
    eg_seqeval r;
    /* Type mismatch over the same span: no entity is correct; both types
     * get a row. */
    score("B-PER I-PER O", "B-ORG I-ORG O", EG_SEQEVAL_DEFAULT, &r);
    expect_prf(&r, 1, 1, 0, 0, 0, 0);
    assert_int_equal(r.n_types, 2);
    expect_type(&r, 0, "ORG", 0, 1, 0, 0, 0, 0);
    expect_type(&r, 1, "PER", 1, 0, 0, 0, 0, 0);
    eg_seqeval_free(&r);

    /* Entities at the ends of sentences do not run into the next one: gold
     * LOC(1,2), LOC(3,3) (an I-LOC opening sentence 2), PER(5,5); pred
     * LOC(1,2), PER(5,5). Default: P 1, R 2/3, F1 4/5. Strict: the gold's
     * stray I-LOC is no entity, so all 1. */
    const char *gold = "O B-LOC I-LOC | I-LOC O | B-PER";
    const char *pred = "O B-LOC I-LOC | O O | B-PER";
    score(gold, pred, EG_SEQEVAL_DEFAULT, &r);
    expect_prf(&r, 3, 2, 2, 1, 2.0 / 3, 0.8);
    eg_seqeval_free(&r);
    score(gold, pred, EG_SEQEVAL_STRICT, &r);
    expect_prf(&r, 2, 2, 2, 1, 1, 1);
    eg_seqeval_free(&r);
    /* One sentence instead of three: the I-LOC now continues the entity. */
    score("O B-LOC I-LOC I-LOC O B-PER", "O B-LOC I-LOC O O B-PER", EG_SEQEVAL_DEFAULT, &r);
    expect_prf(&r, 2, 2, 1, 0.5, 0.5, 0.5);
    eg_seqeval_free(&r);

    /* No predictions: precision and F1 are 0 (seqeval's zero division). */
    score("B-PER I-PER O B-LOC", "O O O O", EG_SEQEVAL_STRICT, &r);
    expect_prf(&r, 2, 0, 0, 0, 0, 0);
    assert_int_equal(r.n_types, 2);
    eg_seqeval_free(&r);
    /* No gold entities, some predicted: recall 0. */
    score("O O", "B-MISC O", EG_SEQEVAL_DEFAULT, &r);
    expect_prf(&r, 0, 1, 0, 0, 0, 0);
    assert_float_equal(r.weighted_f1, 0, 0);
    eg_seqeval_free(&r);
    /* No entities at all. */
    score("O O | O", "O O | O", EG_SEQEVAL_DEFAULT, &r);
    expect_prf(&r, 0, 0, 0, 0, 0, 0);
    assert_int_equal(r.n_types, 0);
    eg_seqeval_free(&r);

    /* No sentences; bad ids, modes and tag sets. */
    eg_tagset ts;
    assert_int_equal(eg_synth_lang_tagset(&ts), 0);
    assert_int_equal(eg_seqeval_score(&ts, NULL, 0, NULL, NULL, EG_SEQEVAL_STRICT, &r), 0);
    expect_prf(&r, 0, 0, 0, 0, 0, 0);
    eg_seqeval_free(&r);
    const long start[2] = {0, 2};
    const int32_t ok[2] = {1, 2}, bad[2] = {1, 9};
    tu_fails_with(eg_seqeval_score(&ts, start, 1, ok, bad, 0, &r), "tag id 9 outside");
    assert_null(r.types);
    tu_fails_with(eg_seqeval_score(&ts, start, 1, ok, ok, 2, &r), "mode 2");
    const long backwards[2] = {2, 0};
    tu_fails_with(eg_seqeval_score(&ts, backwards, 1, ok, ok, 0, &r), "ends before it starts");
    free(ts.names[3]);
    ts.names[3] = strdup("MISC");
    tu_fails_with(eg_seqeval_score(&ts, start, 1, ok, ok, 0, &r), "\"MISC\", is not a tag");
    eg_tagset_free(&ts);
    eg_tagset_free(&scored.ts);
}

/* ---- the synthetic languages ---------------------------------------------------- */

static eg_synth_ner_opts small_opts(uint64_t seed)
{
    eg_synth_ner_opts o = eg_synth_ner_defaults();
    o.seed = seed;
    o.source_train = 300;
    o.target_train = 40;
    o.dev = 30;
    o.test = 50;
    return o;
}

static void write_ok(const char *dir, const eg_synth_ner_opts *o)
{
    eg_clear_error();
    if (eg_synth_ner_write(dir, o) != 0) fail_msg("%s", eg_last_error());
}

/* Fails unless every sentence is 5 to 30 words of well-formed BIO: an I-X
 * only after B-X or I-X. */
static void expect_bio(const eg_conll *c, const eg_tagset *ts)
{
    for (int s = 0; s < c->n_sent; s++) {
        int n = sent_len(c, s);
        if (n < 5 || n > 30) fail_msg("sentence %d has %d words", s, n);
        const char *prev = "O";
        for (long i = c->start[s]; i < c->start[s + 1]; i++) {
            const char *t = ts->names[c->tag[i]];
            if (t[0] == 'I' && (prev[0] == 'O' || strcmp(prev + 2, t + 2) != 0))
                fail_msg("sentence %d: %s after %s", s, t, prev);
            prev = t;
        }
    }
}

static void test_synth_files(void **state)
{
    const char *dir = tu_tmpdir();
    eg_synth_ner_opts o = small_opts(7);
    write_ok(tu_path(dir, "a"), &o);
    write_ok(tu_path(dir, "b"), &o);
    o.seed = 8;
    write_ok(tu_path(dir, "c"), &o);
    o.seed = 7;
    o.lang_prefix = 1;
    write_ok(tu_path(dir, "d/e"), &o); /* parents are made */
    const int counts[6] = {300, 30, 50, 40, 30, 50};
    eg_tagset ts;
    assert_int_equal(eg_synth_lang_tagset(&ts), 0);
    for (int f = 0; f < EG_SYNTH_NER_FILES; f++) {
        char rel[64];
        size_t la, lb, lc;
        snprintf(rel, sizeof rel, "a/%s", eg_synth_ner_files[f]);
        unsigned char *a = tu_read_all(tu_path(dir, rel), &la);
        snprintf(rel, sizeof rel, "b/%s", eg_synth_ner_files[f]);
        unsigned char *b = tu_read_all(tu_path(dir, rel), &lb);
        snprintf(rel, sizeof rel, "c/%s", eg_synth_ner_files[f]);
        unsigned char *c = tu_read_all(tu_path(dir, rel), &lc);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la); /* same seed, same bytes */
        assert_true(la != lc || memcmp(a, c, la) != 0);
        free(a);
        free(b);
        free(c);

        /* Read back with the fixed tag set: exact counts, good BIO, the
         * languages with prefixes and none without. */
        eg_conll plain, pre;
        snprintf(rel, sizeof rel, "a/%s", eg_synth_ner_files[f]);
        load_ok(tu_path(dir, rel), &ts, 0, &plain);
        snprintf(rel, sizeof rel, "d/e/%s", eg_synth_ner_files[f]);
        load_ok(tu_path(dir, rel), &ts, 0, &pre);
        assert_int_equal(plain.n_sent, counts[f]);
        assert_int_equal(pre.n_sent, counts[f]);
        assert_int_equal(pre.n_words, plain.n_words);
        expect_bio(&plain, &ts);
        for (int s = 0; s < plain.n_sent; s++) {
            assert_string_equal(plain.lang[s], "");
            assert_string_equal(pre.lang[s], f < 3 ? "src" : "tgt");
        }
        for (long i = 0; i < plain.n_words; i++) {
            assert_string_equal(plain.word[i], pre.word[i]);
            assert_int_equal(plain.tag[i], pre.tag[i]);
        }
        /* Every entity type occurs, and gold against itself scores 1. */
        eg_seqeval r;
        assert_int_equal(eg_seqeval_score(&ts, plain.start, plain.n_sent, plain.tag, plain.tag,
                                          EG_SEQEVAL_STRICT, &r),
                         0);
        assert_int_equal(r.n_types, 4);
        assert_true(r.support > plain.n_sent / 2);
        assert_float_equal(r.f1, 1, 0);
        eg_seqeval_free(&r);
        eg_conll_free(&plain);
        eg_conll_free(&pre);
    }
    o.dev = 0;
    tu_fails_with(eg_synth_ner_write(tu_path(dir, "f"), &o), "src/dev.txt would have 0 sentences");
    o = small_opts(7);
    o.remap = 1.5;
    tu_fails_with(eg_synth_ner_write(tu_path(dir, "f"), &o), "remap fraction 1.5 outside [0, 1]");
    write_text(tu_path(dir, "file"), "x");
    o = small_opts(7);
    tu_fails_with(eg_synth_ner_write(tu_path(dir, "file"), &o), "cannot create");
    eg_tagset_free(&ts);
    tu_rmtree(dir);
}

/* A set of words (open addressing; the strings are not copied). */
typedef struct word_set {
    const char *slot[1 << 14];
    int n;
} word_set;

static int ws_has_add(word_set *ws, const char *w, int add)
{
    unsigned h = 5381;
    for (const char *p = w; *p; p++) h = h * 33 + (unsigned char)*p;
    for (unsigned i = h & ((1 << 14) - 1);; i = (i + 1) & ((1 << 14) - 1)) {
        if (!ws->slot[i]) {
            if (add) {
                ws->slot[i] = w;
                ws->n++;
            }
            return 0;
        }
        if (strcmp(ws->slot[i], w) == 0) return 1;
    }
}

/* The distinct words of c tagged O (entity 0) or not (entity 1). */
static void collect(const eg_conll *c, int entity, word_set *ws)
{
    memset(ws, 0, sizeof *ws);
    for (long i = 0; i < c->n_words; i++)
        if ((c->tag[i] != 0) == entity) ws_has_add(ws, c->word[i], 1);
}

/* The fraction of the target's distinct words (O or entity) that the
 * source has. */
static double shared(const eg_conll *src, const eg_conll *tgt, int entity)
{
    static word_set s, t;
    collect(src, entity, &s);
    collect(tgt, entity, &t);
    int both = 0;
    for (int i = 0; i < (1 << 14); i++)
        if (t.slot[i]) both += ws_has_add(&s, t.slot[i], 0);
    return (double)both / t.n;
}

static void test_synth_vocabulary(void **state)
{
    const int n = 4000; /* enough for nearly every word to occur */
    const double fractions[] = {0, 0.25, 0.5, 1};
    eg_conll tags_at[4] = {{0}};
    for (int k = 0; k < 4; k++) {
        eg_synth_lang *g;
        assert_int_equal(eg_synth_lang_create(11, fractions[k], &g), 0);
        eg_conll src = {0}, tgt = {0};
        assert_int_equal(eg_synth_lang_sentences(g, 0, EG_SYNTH_TRAIN, n, &src), 0);
        assert_int_equal(eg_synth_lang_sentences(g, 1, EG_SYNTH_TRAIN, n, &tgt), 0);
        assert_int_equal(eg_synth_lang_sentences(g, 1, EG_SYNTH_TEST, 10, &tags_at[k]), 0);
        double o_shared = shared(&src, &tgt, 0), e_shared = shared(&src, &tgt, 1);
        print_message("remap %.2f: %.3f of the target's O words and %.3f of its entity words "
                      "are the source's\n",
                      fractions[k], o_shared, e_shared);
        double want = 1 - fractions[k];
        if (!(o_shared > want - 0.05 && o_shared < want + 0.05))
            fail_msg("remap %g: %.3f of the O words shared", fractions[k], o_shared);
        if (!(e_shared > want - 0.07 && e_shared < want + 0.07))
            fail_msg("remap %g: %.3f of the entity words shared", fractions[k], e_shared);
        if (fractions[k] == 0) assert_true(o_shared > 0.99 && e_shared > 0.99);
        if (fractions[k] == 1) assert_true(o_shared == 0 && e_shared == 0);

        /* The filler vocabulary has a few hundred words; the target's verb
         * ends every sentence, so its sentences end in few words (the 60
         * verbs), the source's in many. */
        word_set *last = calloc(1, sizeof *last);
        assert_non_null(last);
        for (int t = 0; t < 2; t++) {
            const eg_conll *c = t ? &tgt : &src;
            memset(last, 0, sizeof *last);
            for (int s = 0; s < c->n_sent; s++) {
                long w = c->start[s + 1] - 1;
                if (t) assert_int_equal(c->tag[w], 0);
                ws_has_add(last, c->word[w], 1);
            }
            if (t) assert_true(last->n <= 60);
            else assert_true(last->n > 150);
        }
        collect(&src, 0, last);
        assert_true(last->n >= 300 && last->n <= 336);
        free(last);
        eg_conll_free(&src);
        eg_conll_free(&tgt);
        eg_synth_lang_free(g);
    }
    /* The sentences' shapes and tags do not depend on remap. */
    for (int k = 1; k < 4; k++) {
        assert_int_equal(tags_at[k].n_words, tags_at[0].n_words);
        assert_memory_equal(tags_at[k].tag, tags_at[0].tag, sizeof(int32_t) * tags_at[0].n_words);
    }
    for (int k = 0; k < 4; k++) eg_conll_free(&tags_at[k]);
}

static void test_synth_order(void **state)
{
    eg_synth_lang *g;
    assert_int_equal(eg_synth_lang_create(3, 0, &g), 0);
    /* The first sentences do not depend on how many are asked for. */
    eg_conll a = {0}, b = {0};
    assert_int_equal(eg_synth_lang_sentences(g, 0, EG_SYNTH_DEV, 5, &a), 0);
    assert_int_equal(eg_synth_lang_sentences(g, 0, EG_SYNTH_DEV, 9, &b), 0);
    assert_int_equal(b.n_sent, 9);
    assert_int_equal(a.start[5], b.start[5]);
    for (long i = 0; i < a.n_words; i++) assert_string_equal(a.word[i], b.word[i]);
    /* Splits and languages differ. */
    eg_conll c = {0};
    assert_int_equal(eg_synth_lang_sentences(g, 0, EG_SYNTH_TEST, 5, &c), 0);
    assert_true(c.n_words != a.n_words || strcmp(c.word[0], a.word[0]) != 0 ||
                strcmp(c.word[1], a.word[1]) != 0 || strcmp(c.word[2], a.word[2]) != 0);
    eg_conll_free(&a);
    eg_conll_free(&b);
    eg_conll_free(&c);

    /* With nothing re-mapped, target sentences hold the same multiset of
     * entities as some source sentence would: here just check that each
     * target entity is a contiguous B I* run whose words are source entity
     * words (capitalised), and that O words are lowercase. */
    eg_conll t = {0};
    eg_tagset ts;
    assert_int_equal(eg_synth_lang_tagset(&ts), 0);
    assert_int_equal(eg_synth_lang_sentences(g, 1, EG_SYNTH_TRAIN, 200, &t), 0);
    expect_bio(&t, &ts);
    for (long i = 0; i < t.n_words; i++) {
        char first = t.word[i][0];
        if (t.tag[i] == 0) assert_true(first >= 'a' && first <= 'z');
        else assert_true(first >= 'A' && first <= 'Z');
    }
    for (int s = 0; s < t.n_sent; s++) assert_string_equal(t.lang[s], "tgt");
    eg_conll_free(&t);
    eg_tagset_free(&ts);
    tu_fails_with(eg_synth_lang_sentences(g, 0, 3, 1, &t), "bad split 3");
    eg_synth_lang_free(g);
    eg_synth_lang *none = (eg_synth_lang *)1;
    tu_fails_with(eg_synth_lang_create(1, -0.1, &none), "outside [0, 1]");
    assert_null(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_well_formed),
        cmocka_unit_test(test_max_sentences),
        cmocka_unit_test(test_tagsets),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_write_round_trip),
        cmocka_unit_test(test_seqeval_readme),
        cmocka_unit_test(test_seqeval_strict_and_default),
        cmocka_unit_test(test_seqeval_edges),
        cmocka_unit_test(test_synth_files),
        cmocka_unit_test(test_synth_vocabulary),
        cmocka_unit_test(test_synth_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
