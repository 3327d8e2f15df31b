/* Tokenisation (daemon/data/tokenizer.h). A tiny SentencePiece BPE model
 * is trained here by /usr/bin/python3 (Debian's python3-sentencepiece) on
 * a small multilingual text; python prints, for a list of words (ASCII,
 * accented Latin, CJK, characters the model never saw, digits,
 * punctuation, words that give no pieces), the ids Hugging Face's
 * XLMRobertaTokenizer gives (pieces through _convert_token_to_id: the
 * fairseq specials, else piece id + 1, piece id 0 -> <unk> 3), checked in
 * python against sp.encode's ids mapped the same way, and the test compares
 * ours with them exactly. Then: sentence encoding (first piece labelled,
 * the rest and the specials -100, words without pieces dropped, truncation
 * keeping </s>), padding, RoBERTa position ids, the word-level vocabulary,
 * and each bad input failing with a message that names it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/tokenizer.h"
#include "testutil.h"
#include "util/err.h"

/* ---- the model and python's expectations --------------------------------- */

/* The training text: English, French, German, Japanese and Chinese, digits
 * and punctuation. Characters not in it (Greek, Cyrillic, emoji) are
 * unknown to the model. */
static const char *const corpus[] = {
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Paris is the capital of France and London is the capital of England.",
    "Le café de la gare est fermé le dimanche, mais l'hôtel reste ouvert.",
    "Müller und Schäfer wohnen in München, nicht in Zürich.",
    "東京は日本の首都です。北京は中国の首都です。",
    "In 2019, 3500 people visited the museum; 42% came by train (or by bus)!",
    "John Smith works for the United Nations in New York City.",
    "International organisations: the World Health Organization, UNESCO.",
};

/* The words compared with python; none holds a newline (one a line in the
 * file python reads). */
static const char *const words[] = {
    "Paris", "London", "the", "The", "capital", "internationalisation",
    "café", "hôtel", "l'hôtel", "Müller", "Zürich", "fermé",
    "e\xcc\x81t\xc3\xa9",        /* "e" + U+0301 combining acute: NFKC composes it */
    "\xef\xbd\x86\xef\xbd\x95\xef\xbd\x8c\xef\xbd\x8c", /* fullwidth "ｆｕｌｌ" */
    "東京", "北京", "首都です", "日本の",
    "Ωψ", "Жук", "\xf0\x9f\x99\x82", "Ωψa", /* unseen: Greek, Cyrillic, an emoji */
    "2019", "3500", "42%", "3.14", "007",
    ",", ".", ";", "!", "(or", "New-York", "<s>", "<mask>",
    "a", "",
    " ",                         /* whitespace only: no pieces */
    "\xe2\x80\x8b",              /* U+200B zero width space: normalised away */
};
#define N_WORDS ((int)(sizeof words / sizeof words[0]))
/* Indices of words the sentence tests use. */
enum { W_PARIS = 0, W_THE = 2, W_LONG = 5, W_TOKYO = 14, W_2019 = 22, W_EMPTY = 36,
       W_SPACE = 37, W_ZWSP = 38 };
#define MAX_IDS 64

static const char *python_script =
    "import sys\n"
    "try:\n"
    "    import sentencepiece as spm\n"
    "except ImportError:\n"
    "    sys.exit('no sentencepiece module: install python3-sentencepiece')\n"
    "d = sys.argv[1]\n"
    "spm.SentencePieceTrainer.train(input=d + '/corpus.txt', model_prefix=d + '/m',\n"
    "    vocab_size=160, model_type='bpe', character_coverage=1.0, minloglevel=2)\n"
    "sp = spm.SentencePieceProcessor(model_file=d + '/m.model')\n"
    "fairseq = {'<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3}\n"
    "def hf(piece):  # XLMRobertaTokenizer._convert_token_to_id\n"
    "    if piece in fairseq: return fairseq[piece]\n"
    "    i = sp.piece_to_id(piece)\n"
    "    return i + 1 if i else 3\n"
    "with open(d + '/expected.txt', 'w') as out:\n"
    "    out.write('%d\\n' % sp.get_piece_size())\n"
    "    for line in open(d + '/words.txt', 'rb').read().split(b'\\n')[:-1]:\n"
    "        w = line.decode('utf-8')\n"
    "        a = [hf(p) for p in sp.encode(w, out_type=str)]\n"
    "        b = [3 if i == 0 else i + 1 for i in sp.encode(w)]\n"
    "        if a != b: sys.exit('%r: pieces give %r, ids give %r' % (w, a, b))\n"
    "        out.write(' '.join(map(str, a)) + '\\n')\n";

static char dir[512];        /* the scratch folder */
static char model[600];      /* dir/m.model */
static int pieces;           /* SentencePiece pieces of the model */
static int expect_n[N_WORDS];
static int32_t expect[N_WORDS][MAX_IDS];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) fail_msg("%s: cannot write", path);
}

static const char *in_dir(const char *name)
{
    static char bufs[4][700];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* Trains the model and reads python's ids for every word. */
static int group_setup(void **state)
{
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(model, sizeof model, "%s/m.model", dir);

    FILE *f = fopen(in_dir("corpus.txt"), "wb");
    assert_non_null(f);
    for (int rep = 0; rep < 4; rep++)
        for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++)
            fprintf(f, "%s\n", corpus[i]);
    assert_int_equal(fclose(f), 0);
    f = fopen(in_dir("words.txt"), "wb");
    assert_non_null(f);
    for (int i = 0; i < N_WORDS; i++) fprintf(f, "%s\n", words[i]);
    assert_int_equal(fclose(f), 0);
    write_file(in_dir("ref.py"), python_script);

    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' 1>&2", in_dir("ref.py"), dir);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("the SentencePiece reference (/usr/bin/python3 with Debian's "
                 "python3-sentencepiece) failed: status %d",
                 rc);

    f = fopen(in_dir("expected.txt"), "r");
    assert_non_null(f);
    char line[4096];
    assert_non_null(fgets(line, sizeof line, f));
    pieces = atoi(line);
    assert_true(pieces > 100);
    for (int i = 0; i < N_WORDS; i++) {
        if (!fgets(line, sizeof line, f)) fail_msg("expected.txt: no line for word %d", i);
        int n = 0;
        char *p = line, *end;
        for (long v; (v = strtol(p, &end, 10)), end != p; p = end) {
            assert_true(n < MAX_IDS);
            expect[i][n++] = (int32_t)v;
        }
        expect_n[i] = n;
    }
    fclose(f);
    return 0;
}

static eg_tokenizer *open_model(void)
{
    eg_tokenizer *tok;
    if (eg_tokenizer_open_spm(model, &tok) != 0) fail_msg("%s", eg_last_error());
    return tok;
}

/* ---- SentencePiece against python ------------------------------------- */

static void test_spm_matches_python(void **state)
{
    eg_tokenizer *tok = open_model();
    assert_int_equal(eg_tokenizer_vocab(tok), pieces + 2);
    assert_int_equal(eg_tokenizer_mask_id(tok), pieces + 1);
    int unknown = 0, empty = 0;
    for (int i = 0; i < N_WORDS; i++) {
        int32_t ids[MAX_IDS + 1];
        int n = eg_tokenizer_encode_word(tok, words[i], strlen(words[i]), ids, MAX_IDS + 1);
        int same = n == expect_n[i];
        for (int k = 0; same && k < n; k++) same = ids[k] == expect[i][k];
        if (!same) {
            fprintf(stderr, "word \"%s\": ours", words[i]);
            for (int k = 0; k < n && k <= MAX_IDS; k++) fprintf(stderr, " %d", ids[k]);
            fprintf(stderr, ", python's");
            for (int k = 0; k < expect_n[i]; k++) fprintf(stderr, " %d", expect[i][k]);
            fprintf(stderr, "\n");
            fail_msg("word %d (\"%s\") encodes differently from python", i, words[i]);
        }
        for (int k = 0; k < n; k++) {
            assert_true(ids[k] >= EG_TOK_UNK && ids[k] < eg_tokenizer_mask_id(tok));
            unknown += ids[k] == EG_TOK_UNK;
        }
        empty += n == 0;
    }
    /* The list reaches the cases it is meant to: unknown pieces, words
     * without pieces ("", " ", U+200B), multi-piece words. */
    assert_true(unknown >= 3);
    assert_int_equal(empty, 3);
    assert_int_equal(expect_n[W_EMPTY] + expect_n[W_SPACE] + expect_n[W_ZWSP], 0);
    assert_true(expect_n[W_LONG] >= 3);

    /* Invalid UTF-8 is not refused, nor does it crash. */
    int32_t ids[MAX_IDS];
    assert_true(eg_tokenizer_encode_word(tok, "\xff\xfe" "ab\xc3", 5, ids, MAX_IDS) >= 0);
    eg_tokenizer_free(tok);
}

/* The count is the word's whole count whatever cap is; only cap ids are
 * written. A folder holding sentencepiece.bpe.model opens it. */
static void test_spm_cap_and_folder(void **state)
{
    eg_tokenizer *tok = open_model();
    const char *w = "internationalisation";
    int full = expect_n[W_LONG];
    assert_int_equal(eg_tokenizer_encode_word(tok, w, strlen(w), NULL, 0), full);
    int32_t ids[MAX_IDS];
    for (int k = 0; k < MAX_IDS; k++) ids[k] = -7;
    assert_int_equal(eg_tokenizer_encode_word(tok, w, strlen(w), ids, 2), full);
    assert_int_equal(ids[0], expect[W_LONG][0]);
    assert_int_equal(ids[1], expect[W_LONG][1]);
    assert_int_equal(ids[2], -7);
    /* a word given by length, not NUL-terminated */
    assert_int_equal(eg_tokenizer_encode_word(tok, "Parisxyz", 5, ids, MAX_IDS),
                     expect_n[W_PARIS]);
    assert_memory_equal(ids, expect[W_PARIS], sizeof(int32_t) * (size_t)expect_n[W_PARIS]);
    eg_tokenizer_free(tok);

    /* the checkpoint folder form */
    char ckpt[700], copy[800];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);
    assert_int_equal(mkdir(ckpt, 0700), 0);
    snprintf(copy, sizeof copy, "%s/" EG_TOK_SPM_FILE, ckpt);
    size_t len;
    unsigned char *bytes = tu_read_all(model, &len);
    FILE *f = fopen(copy, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(bytes);
    assert_int_equal(eg_tokenizer_open_spm(ckpt, &tok), 0);
    assert_int_equal(eg_tokenizer_vocab(tok), pieces + 2);
    const char *tokyo = words[W_TOKYO];
    assert_int_equal(eg_tokenizer_encode_word(tok, tokyo, strlen(tokyo), ids, MAX_IDS),
                     expect_n[W_TOKYO]);
    assert_memory_equal(ids, expect[W_TOKYO], sizeof(int32_t) * (size_t)expect_n[W_TOKYO]);
    eg_tokenizer_free(tok);
}

/* ---- sentences ------------------------------------------------------------ */

/* Builds the row the HF NER example makes from python's per-word ids:
 * <s>, each word's ids (first labelled), </s>, cut to max_len. */
static int reference_row(const int *which, const int32_t *labels, int n, int max_len,
                         int32_t *ids, int32_t *lab)
{
    int len = 0;
    ids[len] = EG_TOK_BOS;
    lab[len++] = EG_TOK_IGNORE;
    for (int w = 0; w < n; w++)
        for (int k = 0; k < expect_n[which[w]] && len < max_len - 1; k++) {
            ids[len] = expect[which[w]][k];
            lab[len++] = k == 0 ? labels[w] : EG_TOK_IGNORE;
        }
    ids[len] = EG_TOK_EOS;
    lab[len++] = EG_TOK_IGNORE;
    return len;
}

static void test_sentence_labels(void **state)
{
    eg_tokenizer *tok = open_model();
    /* Paris the internationalisation <U+200B> 東京 "" 2019 */
    const int which[] = {W_PARIS, W_THE, W_LONG, W_ZWSP, W_TOKYO, W_EMPTY, W_2019};
    const int32_t labels[] = {1, 0, 3, 4, 5, 6, 2};
    enum { N = 7 };
    assert_int_equal(expect_n[W_ZWSP], 0);
    assert_int_equal(expect_n[W_EMPTY], 0);
    assert_true(expect_n[W_LONG] >= 3);
    const char *sent[N];
    for (int w = 0; w < N; w++) sent[w] = words[which[w]];

    int32_t ids[128], lab[128], want_ids[128], want_lab[128];
    int n_tok = -1;
    assert_int_equal(eg_tokenizer_encode_sentence(tok, sent, NULL, labels, N, 128, ids, lab,
                                                  &n_tok),
                     0);
    int want = reference_row(which, labels, N, 128, want_ids, want_lab);
    assert_int_equal(n_tok, want);
    assert_memory_equal(ids, want_ids, sizeof(int32_t) * (size_t)want);
    assert_memory_equal(lab, want_lab, sizeof(int32_t) * (size_t)want);
    /* One labelled token per word with pieces; the dropped words' labels
     * (4 and 6) appear nowhere. */
    int labelled = 0;
    for (int i = 0; i < n_tok; i++) {
        labelled += lab[i] != EG_TOK_IGNORE;
        assert_true(lab[i] != 4 && lab[i] != 6);
    }
    assert_int_equal(labelled, 5);
    assert_int_equal(ids[0], EG_TOK_BOS);
    assert_int_equal(ids[n_tok - 1], EG_TOK_EOS);

    /* Truncated inside "internationalisation": </s> still ends the row,
     * the later words are gone. */
    int cut = 1 + expect_n[W_PARIS] + expect_n[W_THE] + 2 + 1;
    for (int i = 0; i < 128; i++) ids[i] = lab[i] = -7;
    assert_int_equal(eg_tokenizer_encode_sentence(tok, sent, NULL, labels, N, cut, ids, lab,
                                                  &n_tok),
                     0);
    want = reference_row(which, labels, N, cut, want_ids, want_lab);
    assert_int_equal(n_tok, cut);
    assert_int_equal(want, cut);
    assert_memory_equal(ids, want_ids, sizeof(int32_t) * (size_t)cut);
    assert_memory_equal(lab, want_lab, sizeof(int32_t) * (size_t)cut);
    assert_int_equal(ids[cut - 1], EG_TOK_EOS);
    assert_int_equal(lab[cut - 2], EG_TOK_IGNORE); /* the second piece of the cut word */
    assert_int_equal(lab[cut - 3], 3);             /* its first */
    assert_int_equal(ids[cut], -7);                /* nothing written past max_len */

    /* Padding, and max_len 2: <s></s> only. */
    eg_tokenizer_pad(ids, lab, n_tok, 128);
    for (int i = cut; i < 128; i++) {
        assert_int_equal(ids[i], EG_TOK_PAD);
        assert_int_equal(lab[i], EG_TOK_IGNORE);
    }
    assert_int_equal(eg_tokenizer_encode_sentence(tok, sent, NULL, labels, N, 2, ids, lab,
                                                  &n_tok),
                     0);
    assert_int_equal(n_tok, 2);
    assert_int_equal(ids[0], EG_TOK_BOS);
    assert_int_equal(ids[1], EG_TOK_EOS);
    assert_int_equal(lab[0], EG_TOK_IGNORE);
    assert_int_equal(lab[1], EG_TOK_IGNORE);

    /* No words, no labels wanted. */
    assert_int_equal(eg_tokenizer_encode_sentence(tok, NULL, NULL, NULL, 0, 8, ids, NULL,
                                                  &n_tok),
                     0);
    assert_int_equal(n_tok, 2);

    /* Words given by length. */
    const char *buf[] = {"Parisian", "theory"};
    const size_t lens[] = {5, 3};
    const int which2[] = {W_PARIS, W_THE};
    const int32_t labels2[] = {8, 9};
    assert_int_equal(eg_tokenizer_encode_sentence(tok, buf, lens, labels2, 2, 64, ids, lab,
                                                  &n_tok),
                     0);
    want = reference_row(which2, labels2, 2, 64, want_ids, want_lab);
    assert_int_equal(n_tok, want);
    assert_memory_equal(ids, want_ids, sizeof(int32_t) * (size_t)want);
    assert_memory_equal(lab, want_lab, sizeof(int32_t) * (size_t)want);
    eg_tokenizer_free(tok);
}

static void test_positions(void **state)
{
    /* padded at the end: 2, 3, ... then padding_idx */
    const int32_t row[] = {0, 17, 5, 2, 1, 1};
    const int32_t want[] = {2, 3, 4, 5, 1, 1};
    int32_t pos[6];
    eg_tokenizer_positions(row, 6, EG_TOK_PAD, pos);
    assert_memory_equal(pos, want, sizeof want);
    /* a pad id inside the row: create_position_ids_from_input_ids counts
     * only the tokens that are not pads (cumsum of the mask) */
    const int32_t odd[] = {0, 1, 9, 2, 1};
    const int32_t want_odd[] = {2, 1, 3, 4, 1};
    eg_tokenizer_positions(odd, 5, EG_TOK_PAD, pos);
    assert_memory_equal(pos, want_odd, sizeof want_odd);
    /* another padding_idx */
    const int32_t z[] = {4, 0, 4};
    const int32_t want_z[] = {1, 0, 2};
    eg_tokenizer_positions(z, 3, 0, pos);
    assert_memory_equal(pos, want_z, sizeof want_z);
}

/* ---- the word-level vocabulary ------------------------------------------- */

static void test_word_level(void **state)
{
    const char *list[] = {"the", "cat", "the", "sat", "on", "the", "mat", "cat", "Mat"};
    eg_tokenizer *tok;
    assert_int_equal(eg_tokenizer_open_words(list, NULL, 9, &tok), 0);
    /* specials 0..3, the 6 distinct words 4..9 in first-appearance order,
     * <mask> 10 */
    assert_int_equal(eg_tokenizer_vocab(tok), 11);
    assert_int_equal(eg_tokenizer_mask_id(tok), 10);
    const char *probe[] = {"the", "cat", "sat", "on", "mat", "Mat", "dog", "The", "mat "};
    const int32_t want[] = {4, 5, 6, 7, 8, 9, 3, 3, 3};
    for (int i = 0; i < 9; i++) {
        int32_t id = -1;
        assert_int_equal(eg_tokenizer_encode_word(tok, probe[i], strlen(probe[i]), &id, 1), 1);
        assert_int_equal(id, want[i]);
    }
    int32_t id = -1;
    assert_int_equal(eg_tokenizer_encode_word(tok, "", 0, &id, 1), 0);
    assert_int_equal(id, -1);
    assert_int_equal(eg_tokenizer_encode_word(tok, "cat", 3, NULL, 0), 1);

    /* sentences: one id per word, the empty word dropped */
    const char *sent[] = {"the", "dog", "", "sat"};
    const int32_t labels[] = {1, 2, 3, 4};
    int32_t ids[8], lab[8];
    int n_tok;
    assert_int_equal(eg_tokenizer_encode_sentence(tok, sent, NULL, labels, 4, 8, ids, lab,
                                                  &n_tok),
                     0);
    const int32_t want_ids[] = {0, 4, 3, 6, 2}, want_lab[] = {-100, 1, 2, 4, -100};
    assert_int_equal(n_tok, 5);
    assert_memory_equal(ids, want_ids, sizeof want_ids);
    assert_memory_equal(lab, want_lab, sizeof want_lab);
    eg_tokenizer_free(tok);

    /* words by length, and enough of them to grow the table many times:
     * ids stay in first-appearance order */
    enum { MANY = 5000 };
    char *buf = malloc(MANY * 16);
    const char **many = malloc(sizeof *many * 2 * MANY);
    size_t *lens = malloc(sizeof *lens * 2 * MANY);
    assert_non_null(buf);
    assert_non_null(many);
    assert_non_null(lens);
    for (int i = 0; i < MANY; i++) {
        int n = snprintf(buf + 16 * i, 16, "w%dx", i);
        many[i] = many[MANY + i] = buf + 16 * i;
        lens[i] = lens[MANY + i] = (size_t)n - 1; /* without the x */
    }
    assert_int_equal(eg_tokenizer_open_words(many, lens, 2 * MANY, &tok), 0);
    assert_int_equal(eg_tokenizer_vocab(tok), 4 + MANY + 1);
    for (int i = 0; i < MANY; i += 7) {
        char w[16];
        snprintf(w, sizeof w, "w%d", i);
        assert_int_equal(eg_tokenizer_encode_word(tok, w, strlen(w), &id, 1), 1);
        assert_int_equal(id, 4 + i);
    }
    assert_int_equal(eg_tokenizer_encode_word(tok, "w1x", 3, &id, 1), 1);
    assert_int_equal(id, EG_TOK_UNK);
    eg_tokenizer_free(tok);
    free(buf);
    free(many);
    free(lens);
}

/* ---- bad inputs ------------------------------------------------------------- */

static void check_names(const char *what)
{
    if (!strstr(eg_last_error(), what))
        fail_msg("message \"%s\" does not name %s", eg_last_error(), what);
}

static void test_bad_inputs(void **state)
{
    static int sentinel;
    eg_tokenizer *tok = (eg_tokenizer *)&sentinel; /* must come back NULL */
    const char *missing = in_dir("no-such.model");
    tu_fails_with(eg_tokenizer_open_spm(missing, &tok), "cannot open");
    check_names(missing);
    assert_null(tok);

    /* a folder without the model: the file it looked for is named */
    char empty_dir[700];
    snprintf(empty_dir, sizeof empty_dir, "%s/empty-ckpt", dir);
    assert_int_equal(mkdir(empty_dir, 0700), 0);
    tu_fails_with(eg_tokenizer_open_spm(empty_dir, &tok), "cannot open");
    check_names("empty-ckpt/" EG_TOK_SPM_FILE);

    const char *text = in_dir("text.model");
    write_file(text, "this is not a model\n");
    tu_fails_with(eg_tokenizer_open_spm(text, &tok), "not a SentencePiece model");
    check_names(text);
    assert_null(tok);

    const char *empty = in_dir("empty.model");
    write_file(empty, "");
    tu_fails_with(eg_tokenizer_open_spm(empty, &tok), "not a SentencePiece model");
    check_names(empty);

    /* the model cut in half */
    size_t len;
    unsigned char *bytes = tu_read_all(model, &len);
    const char *half = in_dir("half.model");
    FILE *f = fopen(half, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len / 2, f), len / 2);
    assert_int_equal(fclose(f), 0);
    free(bytes);
    tu_fails_with(eg_tokenizer_open_spm(half, &tok), "not a SentencePiece model");
    check_names(half);

    /* the word-level vocabulary */
    const char *list[] = {"a", "", "b"};
    tu_fails_with(eg_tokenizer_open_words(list, NULL, 0, &tok), "no words");
    tu_fails_with(eg_tokenizer_open_words(list, NULL, 3, &tok), "word 1 is empty");
    assert_null(tok);
    const char *nul_list[] = {"a", "b", "c\0d"};
    const size_t nul_lens[] = {1, 1, 3};
    tu_fails_with(eg_tokenizer_open_words(nul_list, nul_lens, 3, &tok),
                  "word 2 holds a NUL byte");
    assert_null(tok);

    /* encoding */
    assert_int_equal(eg_tokenizer_open_words(nul_list, NULL, 2, &tok), 0);
    int32_t ids[8], lab[8];
    int n_tok;
    tu_fails_with(eg_tokenizer_encode_word(tok, "c\0d", 3, ids, 8), "NUL byte");
    const int32_t labels[] = {0, 1, 2};
    tu_fails_with(eg_tokenizer_encode_sentence(tok, nul_list, nul_lens, labels, 3, 8, ids, lab,
                                               &n_tok),
                  "word 2: the word holds a NUL byte");
    tu_fails_with(eg_tokenizer_encode_sentence(tok, nul_list, NULL, labels, 2, 1, ids, lab,
                                               &n_tok),
                  "max_len 1");
    tu_fails_with(eg_tokenizer_encode_sentence(tok, nul_list, NULL, labels, -1, 8, ids, lab,
                                               &n_tok),
                  "n_words -1");
    tu_fails_with(eg_tokenizer_encode_sentence(tok, nul_list, NULL, NULL, 2, 8, ids, lab,
                                               &n_tok),
                  "without the words' labels");
    eg_tokenizer_free(tok);

    tok = open_model();
    tu_fails_with(eg_tokenizer_encode_word(tok, "ab\0", 3, ids, 8), "NUL byte");
    eg_tokenizer_free(tok);
    eg_tokenizer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_matches_python), cmocka_unit_test(test_spm_cap_and_folder),
        cmocka_unit_test(test_sentence_labels),    cmocka_unit_test(test_positions),
        cmocka_unit_test(test_word_level),         cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
