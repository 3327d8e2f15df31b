/* Tokenisation for token classification (NER) with RoBERTa / XLM-R style
 * encoders: words in, token ids and per-token labels out.
 *
 * Two kinds of tokenizer share one id space, fairseq's:
 *
 *   <s> 0   <pad> 1   </s> 2   <unk> 3   ...   <mask> vocab - 1
 *
 * - SentencePiece (eg_tokenizer_open_spm): a checkpoint's
 *   sentencepiece.bpe.model with XLM-R's mapping, as Hugging Face's
 *   XLMRobertaTokenizer does it (_convert_token_to_id): a SentencePiece id
 *   p > 0 becomes p + 1 (the fairseq offset), the SentencePiece unknown
 *   (id 0) becomes <unk> 3, <mask> is pieces + 1; vocab = pieces + 2.
 *   A word is encoded alone, as tokenizer.tokenize(word) does for XLM-R:
 *   SentencePiece's Encode of the word, whose pieces start with "▁". A
 *   word may give no pieces (empty, whitespace, characters the model's
 *   normaliser removes such as U+200B). Text that spells a special token
 *   ("<mask>") is encoded as plain text, not as that token (where
 *   Hugging Face's tokenize() would split it out as the token).
 * - word level (eg_tokenizer_open_words), for encoders trained from
 *   scratch: the specials 0..3, then one id per distinct word in the order
 *   the words first appear in the list the vocabulary is built from, then
 *   <mask>; an unknown word is <unk> 3, the empty word gives no ids.
 *
 * A tokenizer is read-only once made: any number of threads may encode
 * with one at the same time. Functions return 0 (or a count) on success
 * and -1 after eg_errorf() (util/err.h). This header is plain C; the
 * SentencePiece shim behind it (tokenizer_spm.cc) lets no C++ exception
 * out. */
#ifndef EG_TOKENIZER_H
#define EG_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EG_TOK_BOS 0     /* <s>, also the classifier's position (CLS) */
#define EG_TOK_PAD 1     /* <pad>, RoBERTa's padding_idx */
#define EG_TOK_EOS 2     /* </s> */
#define EG_TOK_UNK 3     /* <unk> */
#define EG_TOK_IGNORE (-100) /* the label of a token the loss skips
                              * (PyTorch's CrossEntropyLoss ignore_index) */

/* The file eg_tokenizer_open_spm looks for when given a folder. */
#define EG_TOK_SPM_FILE "sentencepiece.bpe.model"

/* A SentencePiece model file this large (bytes) or larger is refused;
 * XLM-R's is about 5 MB. */
#define EG_TOK_SPM_MAX_BYTES (256u << 20)

typedef struct eg_tokenizer eg_tokenizer;

/* Opens a SentencePiece model: path is the model file, or a checkpoint
 * folder holding EG_TOK_SPM_FILE. Fails, naming the file, when it is
 * missing or unreadable ("cannot open", "cannot read"), too large, or not
 * a SentencePiece model ("not a SentencePiece model"); *out is then NULL. */
int eg_tokenizer_open_spm(const char *path, eg_tokenizer **out);

/* Makes a word-level tokenizer over words[0..n): words[i] is lens[i] bytes
 * (lens NULL: NUL-terminated strings). Repeats are ignored, so words can
 * be every token of the training files in order. Fails on n < 1 ("no
 * words"), an empty word or one holding a NUL byte (naming its index), or
 * more distinct words than int32 ids allow; *out is then NULL. */
int eg_tokenizer_open_words(const char *const *words, const size_t *lens, long n,
                            eg_tokenizer **out);

/* Frees tok. NULL is allowed. */
void eg_tokenizer_free(eg_tokenizer *tok);

/* The number of ids, <mask> (the last) included. */
int32_t eg_tokenizer_vocab(const eg_tokenizer *tok);

/* The id of <mask>: eg_tokenizer_vocab(tok) - 1. */
int32_t eg_tokenizer_mask_id(const eg_tokenizer *tok);

/* Encodes one word, word[0..len) (UTF-8; no NUL byte), into its ids.
 * Returns how many ids the word gives (0 for a word with no pieces) and
 * writes the first min(that, cap) of them to ids (ids may be NULL when cap
 * is 0), so a return above cap means the buffer was short. -1 after
 * eg_errorf() for a NUL byte in the word or a failing encoder. */
int eg_tokenizer_encode_word(const eg_tokenizer *tok, const char *word, size_t len,
                             int32_t *ids, int cap);

/* Encodes one labelled sentence the way the Hugging Face NER example
 * (utils_ner.py) does: <s>, then for each word its pieces, the first piece
 * labelled labels[w] and the others EG_TOK_IGNORE (a word with no pieces
 * is dropped), then </s>; <s> and </s> are labelled EG_TOK_IGNORE. When
 * the pieces do not fit in max_len - 2 they are cut there (possibly inside
 * a word) and </s> still ends the row.
 *
 * words[w] is lens[w] bytes (lens NULL: NUL-terminated), w < n_words
 * (n_words 0 gives <s></s>). ids and out_labels have room for max_len
 * (>= 2) entries; out_labels may be NULL (labels is then not read, and may
 * be NULL too). *n_tokens (2 .. max_len) is the row's length, the
 * attention length; entries past it are left as they were (see
 * eg_tokenizer_pad). Fails on max_len < 2, n_words < 0, out_labels
 * without labels, a word with a NUL byte (naming its index; the words
 * after the cut are not read). */
int eg_tokenizer_encode_sentence(const eg_tokenizer *tok, const char *const *words,
                                 const size_t *lens, const int32_t *labels, int n_words,
                                 int max_len, int32_t *ids, int32_t *out_labels,
                                 int *n_tokens);

/* Pads a row of n_tokens to max_len: ids[n_tokens..max_len) = EG_TOK_PAD and,
 * when labels is not NULL, labels[n_tokens..max_len) = EG_TOK_IGNORE. */
void eg_tokenizer_pad(int32_t *ids, int32_t *labels, int n_tokens, int max_len);

/* RoBERTa's position ids for a row of n ids (create_position_ids_from_input_ids
 * with padding_idx pad_id): a token that is not pad_id gets pad_id plus
 * the number of non-pad tokens up to and including it (pad_id + 1 + index
 * in a row padded at the end), a pad_id token gets pad_id. */
void eg_tokenizer_positions(const int32_t *ids, int n, int32_t pad_id, int32_t *pos);

/* ---- the SentencePiece shim (tokenizer_spm.cc), for tokenizer.c only ---- */

typedef struct eg_spm eg_spm;

/* Parses a serialised SentencePiece model (bytes[0..n), the contents of
 * the file `name`, which messages name) into a fresh *out. */
int eg_spm_load(const void *bytes, size_t n, const char *name, eg_spm **out);

/* The number of SentencePiece pieces (ids 0 .. pieces - 1). */
int eg_spm_pieces(const eg_spm *m);

/* SentencePiece's own ids for word[0..len): returns their count and writes
 * the first min(count, cap) to ids; -1 after eg_errorf(). */
int eg_spm_encode(const eg_spm *m, const char *word, size_t len, int32_t *ids, int cap);

/* Frees m. NULL is allowed. */
void eg_spm_free(eg_spm *m);

#ifdef __cplusplus
}
#endif

#endif
