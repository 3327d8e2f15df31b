/* Tokenisation for token classification (see tokenizer.h): the word-level
 * vocabulary, the fairseq id mapping over the SentencePiece shim, sentence
 * encoding with labels, padding and RoBERTa position ids. */
#include "data/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/err.h"

enum tok_kind { TOK_SPM, TOK_WORDS };

/* A distinct word of a word-level vocabulary: id EG_TOK_UNK + 1 + index. */
typedef struct tok_word {
    size_t off, len; /* bytes arena[off .. off + len) */
    uint64_t hash;
} tok_word;

struct eg_tokenizer {
    enum tok_kind kind;
    int32_t vocab;    /* ids 0 .. vocab - 1, <mask> the last */
    eg_spm *spm;      /* TOK_SPM */
    /* TOK_WORDS: the words, and an open-addressing table of word indices
     * (-1 empty), n_slots a power of two at least twice n_words. */
    char *arena;
    size_t arena_len, arena_cap;
    tok_word *words;  // (n_words)
    int32_t n_words, words_cap;
    int32_t *slots;   // (n_slots)
    size_t n_slots;
};

/* ---- the word-level vocabulary ------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The slot holding word s[0..len) (hash h), or the empty slot where it
 * would go. */
static size_t words_slot(const eg_tokenizer *tok, const char *s, size_t len, uint64_t h)
{
    size_t mask = tok->n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        int32_t k = tok->slots[i];
        if (k < 0) return i;
        const tok_word *w = &tok->words[k];
        if (w->hash == h && w->len == len && memcmp(tok->arena + w->off, s, len) == 0)
            return i;
    }
}

/* Doubles the slot table and reinserts every word. */
static int words_grow_slots(eg_tokenizer *tok)
{
    size_t n_slots = tok->n_slots ? 2 * tok->n_slots : 64;
    int32_t *slots = malloc(sizeof *slots * n_slots);
    if (!slots) return eg_errorf("word-level vocabulary: out of memory");
    for (size_t i = 0; i < n_slots; i++) slots[i] = -1;
    free(tok->slots);
    tok->slots = slots;
    tok->n_slots = n_slots;
    for (int32_t k = 0; k < tok->n_words; k++) {
        size_t i = (size_t)tok->words[k].hash & (n_slots - 1);
        while (slots[i] >= 0) i = (i + 1) & (n_slots - 1);
        slots[i] = k;
    }
    return 0;
}

/* Adds s[0..len) unless it is already there. */
static int words_add(eg_tokenizer *tok, const char *s, size_t len)
{
    uint64_t h = fnv1a(s, len);
    size_t at = words_slot(tok, s, len, h);
    if (tok->slots[at] >= 0) return 0;
    if (tok->n_words >= INT32_MAX - (EG_TOK_UNK + 2))
        return eg_errorf("word-level vocabulary: more than %d distinct words",
                         INT32_MAX - (EG_TOK_UNK + 2));
    if (tok->n_words == tok->words_cap) {
        int32_t cap = tok->words_cap ? (tok->words_cap > INT32_MAX / 2 ? INT32_MAX
                                                                       : 2 * tok->words_cap)
                                     : 256;
        tok_word *bigger = realloc(tok->words, sizeof *bigger * (size_t)cap);
        if (!bigger) return eg_errorf("word-level vocabulary: out of memory");
        tok->words = bigger;
        tok->words_cap = cap;
    }
    if (len > tok->arena_cap - tok->arena_len) {
        size_t cap = tok->arena_cap ? tok->arena_cap : 4096;
        while (cap - tok->arena_len < len) {
            if (cap > SIZE_MAX / 2) return eg_errorf("word-level vocabulary: out of memory");
            cap *= 2;
        }
        char *bigger = realloc(tok->arena, cap);
        if (!bigger) return eg_errorf("word-level vocabulary: out of memory");
        tok->arena = bigger;
        tok->arena_cap = cap;
    }
    memcpy(tok->arena + tok->arena_len, s, len);
    tok->words[tok->n_words] = (tok_word){.off = tok->arena_len, .len = len, .hash = h};
    tok->arena_len += len;
    tok->slots[at] = tok->n_words++;
    if ((size_t)tok->n_words * 2 > tok->n_slots) EG_TRY(words_grow_slots(tok));
    return 0;
}

int eg_tokenizer_open_words(const char *const *words, const size_t *lens, long n,
                            eg_tokenizer **out)
{
    *out = NULL;
    if (n < 1) return eg_errorf("word-level vocabulary: no words");
    eg_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return eg_errorf("word-level vocabulary: out of memory");
    tok->kind = TOK_WORDS;
    if (words_grow_slots(tok) != 0) goto fail;
    for (long i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(words[i]);
        if (len == 0) {
            eg_errorf("word-level vocabulary: word %ld is empty", i);
            goto fail;
        }
        if (memchr(words[i], '\0', len)) {
            eg_errorf("word-level vocabulary: word %ld holds a NUL byte", i);
            goto fail;
        }
        if (words_add(tok, words[i], len) != 0) goto fail;
    }
    tok->vocab = EG_TOK_UNK + 1 + tok->n_words + 1;
    *out = tok;
    return 0;
fail:
    eg_tokenizer_free(tok);
    return -1;
}

/* ---- SentencePiece --------------------------------------------------------- */

/* Reads the whole of path into a fresh buffer (*len bytes). */
static int read_model_file(const char *path, unsigned char **bytes, size_t *len)
{
    *bytes = NULL;
    *len = 0;
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return eg_errorf("%s: cannot open: %s", path, errno ? strerror(errno) : "?");
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        eg_errorf("%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        eg_errorf("%s: cannot read: not a regular file", path);
        goto fail;
    }
    if ((unsigned long long)st.st_size >= EG_TOK_SPM_MAX_BYTES) {
        eg_errorf("%s: %lld bytes, too large for a SentencePiece model (limit %u)", path,
                  (long long)st.st_size, EG_TOK_SPM_MAX_BYTES);
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    *bytes = malloc(size ? size : 1);
    if (!*bytes) {
        eg_errorf("%s: out of memory for %zu bytes", path, size);
        goto fail;
    }
    errno = 0;
    size_t got = fread(*bytes, 1, size, f);
    if (got != size || ferror(f)) {
        eg_errorf("%s: cannot read: %s", path,
                  ferror(f) && errno ? strerror(errno) : "the file shrank while read");
        goto fail;
    }
    fclose(f);
    *len = size;
    return 0;
fail:
    free(*bytes);
    *bytes = NULL;
    fclose(f);
    return -1;
}

int eg_tokenizer_open_spm(const char *path, eg_tokenizer **out)
{
    *out = NULL;
    char file[4096];
    struct stat st;
    int n = (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                ? snprintf(file, sizeof file, "%s/%s", path, EG_TOK_SPM_FILE)
                : snprintf(file, sizeof file, "%s", path);
    if (n < 0 || (size_t)n >= sizeof file)
        return eg_errorf("%.200s...: path too long for a SentencePiece model", path);

    unsigned char *bytes;
    size_t len = 0;
    EG_TRY(read_model_file(file, &bytes, &len));
    eg_spm *m;
    int rc = eg_spm_load(bytes, len, file, &m);
    free(bytes);
    EG_TRY(rc);
    eg_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        eg_spm_free(m);
        return eg_errorf("%s: out of memory", file);
    }
    tok->kind = TOK_SPM;
    tok->spm = m;
    tok->vocab = (int32_t)eg_spm_pieces(m) + 2; /* the shim keeps pieces <= INT32_MAX - 2 */
    *out = tok;
    return 0;
}

void eg_tokenizer_free(eg_tokenizer *tok)
{
    if (!tok) return;
    eg_spm_free(tok->spm);
    free(tok->arena);
    free(tok->words);
    free(tok->slots);
    free(tok);
}

/* ---- encoding -------------------------------------------------------------- */

int32_t eg_tokenizer_vocab(const eg_tokenizer *tok) { return tok->vocab; }

int32_t eg_tokenizer_mask_id(const eg_tokenizer *tok) { return tok->vocab - 1; }

int eg_tokenizer_encode_word(const eg_tokenizer *tok, const char *word, size_t len,
                             int32_t *ids, int cap)
{
    if (len == 0) return 0;
    if (memchr(word, '\0', len)) return eg_errorf("the word holds a NUL byte");
    if (cap < 0) cap = 0;
    if (tok->kind == TOK_WORDS) {
        size_t at = words_slot(tok, word, len, fnv1a(word, len));
        int32_t k = tok->slots[at];
        if (cap > 0) ids[0] = k < 0 ? EG_TOK_UNK : EG_TOK_UNK + 1 + k;
        return 1;
    }
    int count = eg_spm_encode(tok->spm, word, len, ids, cap);
    if (count < 0) return -1;
    /* XLMRobertaTokenizer._convert_token_to_id: SentencePiece's unknown
     * (0) is <unk>, any other piece moves up by the fairseq offset 1. */
    for (int i = 0; i < count && i < cap; i++) ids[i] = ids[i] == 0 ? EG_TOK_UNK : ids[i] + 1;
    return count;
}

int eg_tokenizer_encode_sentence(const eg_tokenizer *tok, const char *const *words,
                                 const size_t *lens, const int32_t *labels, int n_words,
                                 int max_len, int32_t *ids, int32_t *out_labels,
                                 int *n_tokens)
{
    if (max_len < 2)
        return eg_errorf("max_len %d leaves no room for <s> and </s> (at least 2)", max_len);
    if (n_words < 0) return eg_errorf("n_words %d is negative", n_words);
    if (out_labels && !labels && n_words > 0)
        return eg_errorf("out_labels given without the words' labels");
    int n = 0;
    ids[n] = EG_TOK_BOS;
    if (out_labels) out_labels[n] = EG_TOK_IGNORE;
    n++;
    const int end = max_len - 1; /* the word pieces go in [1, end) */
    for (int w = 0; w < n_words && n < end; w++) {
        size_t len = lens ? lens[w] : strlen(words[w]);
        int got = eg_tokenizer_encode_word(tok, words[w], len, ids + n, end - n);
        if (got < 0) return eg_errorf("word %d: %s", w, eg_last_error());
        int kept = got < end - n ? got : end - n;
        if (out_labels)
            for (int k = 0; k < kept; k++) out_labels[n + k] = k == 0 ? labels[w] : EG_TOK_IGNORE;
        n += kept;
    }
    ids[n] = EG_TOK_EOS;
    if (out_labels) out_labels[n] = EG_TOK_IGNORE;
    n++;
    *n_tokens = n;
    return 0;
}

void eg_tokenizer_pad(int32_t *ids, int32_t *labels, int n_tokens, int max_len)
{
    for (int i = n_tokens; i < max_len; i++) {
        ids[i] = EG_TOK_PAD;
        if (labels) labels[i] = EG_TOK_IGNORE;
    }
}

void eg_tokenizer_positions(const int32_t *ids, int n, int32_t pad_id, int32_t *pos)
{
    int32_t seen = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] == pad_id) {
            pos[i] = pad_id;
        } else {
            seen++;
            pos[i] = pad_id + seen;
        }
    }
}
