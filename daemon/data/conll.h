/* CoNLL-style token classification files, as the MetaXL (XTREME) NER code
 * reads them, and the tag sets their tags index.
 *
 * A file holds one `token<TAB>tag` per line (or `token tag` when the line
 * has no tab; with several fields the token is the first, the tag the
 * last), sentences separated by blank lines (any number; whitespace-only
 * lines are blank), `-DOCSTART-` lines skipped (they end a sentence), LF or
 * CRLF line ends, a last line with or without its newline. Tokens are kept
 * as bytes (UTF-8 or not; a NUL byte is refused). A token may carry a
 * language prefix, `en:London`: 2 or 3 lowercase ASCII letters, ':', then at
 * least one byte. When every token of a sentence has the same prefix it is
 * stripped from each and becomes the sentence's language; otherwise the
 * tokens are kept as written and the sentence has none.
 *
 * Tags are "O", "B-X" or "I-X" with X a type name: at least one byte, no
 * byte <= 0x20 (space, control characters), not starting or ending with
 * '-' (so that seqeval's two ways of reading the type agree). */
#ifndef EG_CONLL_H
#define EG_CONLL_H

#include <stddef.h>
#include <stdint.h>

#define EG_CONLL_MAX_LINE 65536   /* bytes a line may hold, without its end */
#define EG_CONLL_MAX_WORDS 4096   /* words a sentence may hold */
#define EG_TAGSET_MAX 1024        /* tags a tag set may hold */

/* ---- tag sets ------------------------------------------------------------ */

/* A string table of tags; a tag's id is its index. A zeroed eg_tagset is an
 * empty growable set (loading adds the tags it meets); eg_tagset_fixed()
 * makes one that loading only looks tags up in. */
typedef struct eg_tagset {
    int n;          /* tags: ids 0 .. n - 1 */
    int cap;
    char **names;   // (n) NUL-terminated, owned
    int fixed;      /* 1: a tag not in the set is an error when loading */
} eg_tagset;

/* 1 when tag[0..len) is a well-formed tag (see above), else 0. */
int eg_tag_valid(const char *tag, size_t len);

/* Makes *ts the fixed set of names[0..n) in that order. Fails on a
 * malformed or repeated tag, naming it, and leaves *ts empty. */
int eg_tagset_fixed(eg_tagset *ts, const char *const *names, int n);

/* The id of name in ts, or -1. */
int eg_tagset_find(const eg_tagset *ts, const char *name);

/* The id of name, appending it when it is new: -1 after eg_errorf() for a
 * malformed tag, a new tag in a fixed set, a full set, no memory. */
int eg_tagset_add(eg_tagset *ts, const char *name);

/* The label list of a token classifier for the types of `seen`: "O" first,
 * then for each type, sorted by name (bytewise), "B-X" and "I-X" (both,
 * whether or not seen had both). *labels is a fresh fixed set; seen may be
 * empty (labels is then {"O"}). */
int eg_tagset_labels(const eg_tagset *seen, eg_tagset *labels);

/* Frees the names and zeroes *ts. NULL is allowed. */
void eg_tagset_free(eg_tagset *ts);

/* ---- corpora --------------------------------------------------------------- */

struct eg_conll_block;

/* Sentences as flat arrays: sentence i has words word[start[i]] ..
 * word[start[i + 1] - 1] with tags tag[...] (ids in the tag set it was
 * loaded with). A zeroed eg_conll is an empty corpus. */
typedef struct eg_conll {
    int n_sent;
    long n_words;
    long *start;        // (n_sent + 1); NULL while n_sent is 0
    char **word;        // (n_words) NUL-terminated bytes, never empty
    int32_t *tag;       // (n_words)
    char (*lang)[4];    // (n_sent) the sentence's language code, "" when none
    int sent_cap;
    long word_cap;
    struct eg_conll_block *blocks; /* the words' bytes */
} eg_conll;

/* Reads a CoNLL file into a fresh *out, looking its tags up in ts (a fixed
 * set) or adding them (a growable one). max_sentences > 0 keeps the first
 * max_sentences sentences and reads no further; 0 reads all.
 *
 * Fails, naming path and for a bad line path:LINE, on: a missing or
 * unreadable file; a line longer than EG_CONLL_MAX_LINE bytes; a NUL byte;
 * a token line without a tag ("missing tag") or with an empty token; a
 * malformed tag ("bad tag \"X-PER\""); a tag not in a fixed set ("unknown
 * tag \"B-FOO\""); a sentence of more than EG_CONLL_MAX_WORDS words; more
 * than EG_TAGSET_MAX tags; a file without sentences ("no sentences").
 * On failure *out is zeroed and ts holds what it held before. */
int eg_conll_load(const char *path, eg_tagset *ts, int max_sentences, eg_conll *out);

/* Appends a sentence of n >= 1 words (copied) with tags (ids, not checked
 * against any tag set) and language lang (NULL or "" for none, else 2 or 3
 * lowercase ASCII letters). Words must be non-empty. */
int eg_conll_add(eg_conll *c, const char *const *words, const int32_t *tags, int n,
                 const char *lang);

/* Rewrites c's tag ids from set `from` to set `to`, by name; fails naming
 * the first tag `to` lacks (c is then unchanged). */
int eg_conll_retag(eg_conll *c, const eg_tagset *from, const eg_tagset *to);

/* Writes c in the format eg_conll_load reads: `word<TAB>tag` lines, a blank
 * line after each sentence; lang_prefix != 0 writes `lang:word` for the
 * sentences that have a language. Refuses words holding a tab, CR or LF or
 * starting with "-DOCSTART-", and tag ids outside ts, so that what is
 * written reads back the same. */
int eg_conll_write(const char *path, const eg_conll *c, const eg_tagset *ts, int lang_prefix);

/* Frees what c holds and zeroes *c. NULL is allowed. */
void eg_conll_free(eg_conll *c);

#endif
