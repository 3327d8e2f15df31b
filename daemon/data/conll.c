/* CoNLL token classification files and tag sets (see conll.h). */
#include "data/conll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* ---- tags ------------------------------------------------------------------ */

int eg_tag_valid(const char *tag, size_t len)
{
    if (len == 1 && tag[0] == 'O') return 1;
    if (len < 3 || (tag[0] != 'B' && tag[0] != 'I') || tag[1] != '-') return 0;
    if (tag[2] == '-' || tag[len - 1] == '-') return 0;
    for (size_t i = 2; i < len; i++)
        if ((unsigned char)tag[i] <= 0x20) return 0;
    return 1;
}

int eg_tagset_find(const eg_tagset *ts, const char *name)
{
    for (int i = 0; i < ts->n; i++)
        if (strcmp(ts->names[i], name) == 0) return i;
    return -1;
}

/* Appends name, known to be valid and new. */
static int tagset_push(eg_tagset *ts, const char *name)
{
    if (ts->n >= EG_TAGSET_MAX) return eg_errorf("more than %d tags", EG_TAGSET_MAX);
    if (ts->n == ts->cap) {
        int cap = ts->cap ? 2 * ts->cap : 16;
        char **bigger = realloc(ts->names, sizeof *bigger * (size_t)cap);
        if (!bigger) return eg_errorf("out of memory for the tag set");
        ts->names = bigger;
        ts->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return eg_errorf("out of memory for the tag set");
    ts->names[ts->n++] = copy;
    return 0;
}

int eg_tagset_add(eg_tagset *ts, const char *name)
{
    int id = eg_tagset_find(ts, name);
    if (id >= 0) return id;
    if (!eg_tag_valid(name, strlen(name)))
        return eg_errorf("bad tag \"%.64s\" (expected O, B-TYPE or I-TYPE)", name);
    if (ts->fixed) return eg_errorf("unknown tag \"%.64s\" (not in the fixed tag set)", name);
    EG_TRY(tagset_push(ts, name));
    return ts->n - 1;
}

void eg_tagset_free(eg_tagset *ts)
{
    if (!ts) return;
    for (int i = 0; i < ts->n; i++) free(ts->names[i]);
    free(ts->names);
    memset(ts, 0, sizeof *ts);
}

/* Drops the tags added after the first n. */
static void tagset_truncate(eg_tagset *ts, int n)
{
    while (ts->n > n) free(ts->names[--ts->n]);
}

int eg_tagset_fixed(eg_tagset *ts, const char *const *names, int n)
{
    memset(ts, 0, sizeof *ts);
    for (int i = 0; i < n; i++) {
        if (!eg_tag_valid(names[i], strlen(names[i]))) {
            eg_tagset_free(ts);
            return eg_errorf("bad tag \"%.64s\" (expected O, B-TYPE or I-TYPE)", names[i]);
        }
        if (eg_tagset_find(ts, names[i]) >= 0) {
            eg_tagset_free(ts);
            return eg_errorf("tag \"%.64s\" given twice", names[i]);
        }
        if (tagset_push(ts, names[i]) != 0) {
            eg_tagset_free(ts);
            return -1;
        }
    }
    ts->fixed = 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int eg_tagset_labels(const eg_tagset *seen, eg_tagset *labels)
{
    memset(labels, 0, sizeof *labels);
    const char **types = malloc(sizeof *types * (size_t)(seen->n + 1));
    if (!types) return eg_errorf("out of memory for the label list");
    int n_types = 0;
    for (int i = 0; i < seen->n; i++)
        if (seen->names[i][0] != 'O') types[n_types++] = seen->names[i] + 2;
    qsort(types, (size_t)n_types, sizeof *types, cmp_str);
    int rc = tagset_push(labels, "O");
    char *buf = NULL;
    for (int i = 0; i < n_types && rc == 0; i++) {
        if (i > 0 && strcmp(types[i], types[i - 1]) == 0) continue;
        size_t len = strlen(types[i]);
        char *b = realloc(buf, len + 3);
        if (!b) {
            rc = eg_errorf("out of memory for the label list");
            break;
        }
        buf = b;
        memcpy(buf + 2, types[i], len + 1);
        buf[1] = '-';
        buf[0] = 'B';
        rc = tagset_push(labels, buf);
        buf[0] = 'I';
        if (rc == 0) rc = tagset_push(labels, buf);
    }
    free(buf);
    free(types);
    if (rc != 0) {
        eg_tagset_free(labels);
        return -1;
    }
    labels->fixed = 1;
    return 0;
}

/* ---- corpora --------------------------------------------------------------- */

/* The words' bytes: blocks that never move, so word pointers stay valid;
 * the first of 4 KiB, each next one twice as large up to 64 KiB. */
#define BLOCK_BYTES (1 << 16)
struct eg_conll_block {
    struct eg_conll_block *next;
    size_t used, cap;
    char bytes[];
};

/* A copy of s[0..len) with its NUL in c's blocks; NULL when out of memory. */
static char *conll_store(eg_conll *c, const char *s, size_t len)
{
    struct eg_conll_block *b = c->blocks;
    if (!b || b->cap - b->used < len + 1) {
        size_t cap = b ? (b->cap < BLOCK_BYTES ? 2 * b->cap : BLOCK_BYTES) : 4096;
        if (cap < len + 1) cap = len + 1;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = c->blocks;
        b->used = 0;
        b->cap = cap;
        c->blocks = b;
    }
    char *p = b->bytes + b->used;
    memcpy(p, s, len);
    p[len] = '\0';
    b->used += len + 1;
    return p;
}

/* Room for one more word; -1 when out of memory. */
static int conll_grow_words(eg_conll *c)
{
    if (c->n_words < c->word_cap) return 0;
    long cap = c->word_cap ? 2 * c->word_cap : 1024;
    char **w = realloc(c->word, sizeof *w * (size_t)cap);
    if (!w) return -1;
    c->word = w;
    int32_t *t = realloc(c->tag, sizeof *t * (size_t)cap);
    if (!t) return -1;
    c->tag = t;
    c->word_cap = cap;
    return 0;
}

/* Room for one more sentence (start keeps one extra entry); -1 when out of
 * memory. */
static int conll_grow_sents(eg_conll *c)
{
    if (c->start && c->n_sent < c->sent_cap) return 0;
    int cap = c->sent_cap ? 2 * c->sent_cap : 256;
    long *s = realloc(c->start, sizeof *s * ((size_t)cap + 1));
    if (!s) return -1;
    if (!c->start) s[0] = 0;
    c->start = s;
    char(*l)[4] = realloc(c->lang, sizeof *l * (size_t)cap);
    if (!l) return -1;
    c->lang = l;
    c->sent_cap = cap;
    return 0;
}

/* Appends a word to the sentence being built (not yet closed). */
static int conll_push_word(eg_conll *c, const char *w, size_t len, int32_t tag)
{
    if (conll_grow_words(c) != 0) return -1;
    char *p = conll_store(c, w, len);
    if (!p) return -1;
    c->word[c->n_words] = p;
    c->tag[c->n_words] = tag;
    c->n_words++;
    return 0;
}

/* Ends the sentence of the words added since the last one ended. */
static int conll_close(eg_conll *c, const char *lang)
{
    if (conll_grow_sents(c) != 0) return -1;
    snprintf(c->lang[c->n_sent], sizeof c->lang[0], "%s", lang ? lang : "");
    c->start[++c->n_sent] = c->n_words;
    return 0;
}

/* Length of the language prefix ("en:") w starts with, 0 when none: 2 or 3
 * lowercase ASCII letters, ':' and at least one more byte. */
static size_t lang_prefix_len(const char *w, size_t len)
{
    size_t i = 0;
    while (i < len && i < 4 && w[i] >= 'a' && w[i] <= 'z') i++;
    if (i < 2 || i > 3 || i >= len || w[i] != ':' || i + 1 >= len) return 0;
    return i + 1;
}

static int lang_valid(const char *lang)
{
    size_t n = strlen(lang);
    if (n < 2 || n > 3) return 0;
    for (size_t i = 0; i < n; i++)
        if (lang[i] < 'a' || lang[i] > 'z') return 0;
    return 1;
}

int eg_conll_add(eg_conll *c, const char *const *words, const int32_t *tags, int n,
                 const char *lang)
{
    if (n < 1 || n > EG_CONLL_MAX_WORDS)
        return eg_errorf("a sentence of %d words (expected 1 to %d)", n, EG_CONLL_MAX_WORDS);
    if (lang && *lang && !lang_valid(lang))
        return eg_errorf("bad language code \"%.16s\" (expected 2 or 3 lowercase letters)",
                         lang);
    for (int i = 0; i < n; i++)
        if (!words[i][0]) return eg_errorf("word %d of the sentence is empty", i);
    long keep = c->n_words;
    for (int i = 0; i < n; i++)
        if (conll_push_word(c, words[i], strlen(words[i]), tags[i]) != 0) {
            c->n_words = keep; /* the bytes stay in the blocks until freed */
            return eg_errorf("out of memory for a sentence");
        }
    if (conll_close(c, lang) != 0) {
        c->n_words = keep;
        return eg_errorf("out of memory for a sentence");
    }
    return 0;
}

void eg_conll_free(eg_conll *c)
{
    if (!c) return;
    for (struct eg_conll_block *b = c->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(c->start);
    free(c->word);
    free(c->tag);
    free(c->lang);
    memset(c, 0, sizeof *c);
}

int eg_conll_retag(eg_conll *c, const eg_tagset *from, const eg_tagset *to)
{
    int *map = malloc(sizeof *map * (size_t)(from->n + 1));
    if (!map) return eg_errorf("out of memory for a tag map");
    for (int i = 0; i < from->n; i++) map[i] = eg_tagset_find(to, from->names[i]);
    for (long i = 0; i < c->n_words; i++) {
        int32_t t = c->tag[i];
        if (t < 0 || t >= from->n) {
            free(map);
            return eg_errorf("tag id %d outside the tag set of %d", (int)t, from->n);
        }
        if (map[t] < 0) {
            const char *name = from->names[t];
            free(map);
            return eg_errorf("tag \"%.64s\" is not in the new tag set", name);
        }
    }
    for (long i = 0; i < c->n_words; i++) c->tag[i] = map[c->tag[i]];
    free(map);
    return 0;
}

/* ---- reading --------------------------------------------------------------- */

/* A line's bytes, grown as needed up to EG_CONLL_MAX_LINE + 2. */
typedef struct line_buf {
    char *b;
    size_t cap;
} line_buf;

/* Reads the next line of f into line, without its LF or CRLF, with room
 * for a NUL after it. 1: a line of *len bytes; 0: end of file; -1 after
 * eg_errorf() on a read error, a line too long or no memory. */
static int read_line(FILE *f, const char *path, long lineno, line_buf *lb, size_t *len)
{
    size_t n = 0;
    int c = EOF, any = 0;
    while ((c = getc_unlocked(f)) != EOF) {
        any = 1;
        if (c == '\n') break;
        if (n > EG_CONLL_MAX_LINE) { /* room for a CR that may yet end it */
            if (c == '\r') continue;
            return eg_errorf("%s:%ld: line longer than %d bytes", path, lineno,
                             EG_CONLL_MAX_LINE);
        }
        if (n + 2 > lb->cap) {
            size_t cap = lb->cap ? 2 * lb->cap : 256;
            if (cap > EG_CONLL_MAX_LINE + 2) cap = EG_CONLL_MAX_LINE + 2;
            char *bigger = realloc(lb->b, cap);
            if (!bigger) return eg_errorf("%s:%ld: out of memory for a line", path, lineno);
            lb->b = bigger;
            lb->cap = cap;
        }
        lb->b[n++] = (char)c;
    }
    char *line = lb->b;
    if (ferror(f)) return eg_errorf("%s: read error: %s", path, strerror(errno));
    if (!any) return 0;
    if (n > 0 && line[n - 1] == '\r') n--;
    if (n > EG_CONLL_MAX_LINE)
        return eg_errorf("%s:%ld: line longer than %d bytes", path, lineno,
                         EG_CONLL_MAX_LINE);
    *len = n;
    return 1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* The state of the sentence being read. */
typedef struct sent_state {
    long first;           /* index of its first word */
    long first_line;
    char prefix[4];       /* the first word's language prefix, "" if none */
    int same_prefix;      /* 1 while every word has that prefix */
} sent_state;

/* Ends the sentence being read, if it has words: strips the language
 * prefix when all its words carry the same one. */
static int end_sentence(eg_conll *c, sent_state *s)
{
    if (c->n_words == s->first) return 0;
    const char *lang = NULL;
    if (s->prefix[0] && s->same_prefix) {
        size_t skip = strlen(s->prefix) + 1;
        for (long i = s->first; i < c->n_words; i++) c->word[i] += skip;
        lang = s->prefix;
    }
    if (conll_close(c, lang) != 0) return eg_errorf("out of memory for the sentences");
    s->first = c->n_words;
    return 0;
}

/* Adds the token line line[0..len) (not blank) to the sentence. */
static int token_line(const char *path, long lineno, char *line, size_t len, eg_tagset *ts,
                      eg_conll *c, sent_state *s)
{
    while (len > 0 && is_space(line[len - 1])) len--;
    const char *tab = memchr(line, '\t', len);
    char sep = tab ? '\t' : ' ';
    const char *end_tok = memchr(line, sep, len);
    if (!end_tok) return eg_errorf("%s:%ld: missing tag (a token without a tag)", path, lineno);
    size_t tok_len = (size_t)(end_tok - line);
    if (tok_len == 0) return eg_errorf("%s:%ld: empty token", path, lineno);
    const char *tag = memrchr(line, sep, len) + 1;
    size_t tag_len = len - (size_t)(tag - line);
    line[len] = '\0';
    int id = eg_tagset_find(ts, tag);
    if (id < 0) {
        if (!eg_tag_valid(tag, tag_len))
            return eg_errorf("%s:%ld: bad tag \"%.64s\" (expected O, B-TYPE or I-TYPE)", path,
                             lineno, tag);
        if (ts->fixed)
            return eg_errorf("%s:%ld: unknown tag \"%.64s\" (not in the fixed tag set)", path,
                             lineno, tag);
        id = eg_tagset_add(ts, tag);
        if (id < 0) return eg_errorf("%s:%ld: %s", path, lineno, eg_last_error());
    }
    if (c->n_words - s->first >= EG_CONLL_MAX_WORDS)
        return eg_errorf("%s:%ld: sentence (from line %ld) longer than %d words", path, lineno,
                         s->first_line, EG_CONLL_MAX_WORDS);
    size_t plen = lang_prefix_len(line, tok_len);
    if (c->n_words == s->first) {
        s->first_line = lineno;
        s->same_prefix = 1;
        memcpy(s->prefix, line, plen ? plen - 1 : 0);
        s->prefix[plen ? plen - 1 : 0] = '\0';
    } else if (s->same_prefix) {
        size_t want = strlen(s->prefix);
        if (!want || plen != want + 1 || memcmp(line, s->prefix, want) != 0)
            s->same_prefix = 0;
    }
    if (conll_push_word(c, line, tok_len, id) != 0)
        return eg_errorf("%s:%ld: out of memory for the words", path, lineno);
    return 0;
}

/* 1 when the line is a document marker: -DOCSTART-, bare or prefixed. */
static int is_docstart(const char *line, size_t len)
{
    static const char mark[] = "-DOCSTART-";
    const size_t m = sizeof mark - 1;
    if (len >= m && memcmp(line, mark, m) == 0) return 1;
    size_t p = lang_prefix_len(line, len);
    return p && len - p >= m && memcmp(line + p, mark, m) == 0;
}

int eg_conll_load(const char *path, eg_tagset *ts, int max_sentences, eg_conll *out)
{
    memset(out, 0, sizeof *out);
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return eg_errorf("%s: no such file", path);
        return eg_errorf("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    }
    line_buf lb = {malloc(256), 256};
    if (!lb.b) {
        fclose(f);
        return eg_errorf("%s: out of memory", path);
    }
    int tags_before = ts->n, rc = 0;
    eg_conll c = {0};
    sent_state s = {0};
    size_t len = 0;
    for (long lineno = 1;; lineno++) {
        if (max_sentences > 0 && c.n_sent >= max_sentences) break;
        int r = read_line(f, path, lineno, &lb, &len);
        if (r == 0) break;
        char *line = lb.b;
        if (r < 0 || memchr(line, '\0', len)) {
            rc = r < 0 ? -1 : eg_errorf("%s:%ld: NUL byte", path, lineno);
            break;
        }
        size_t i = 0;
        while (i < len && is_space(line[i])) i++;
        if (i == len || is_docstart(line, len)) rc = end_sentence(&c, &s);
        else rc = token_line(path, lineno, line, len, ts, &c, &s);
        if (rc != 0) break;
        if (c.n_sent == INT32_MAX - 1) {
            rc = eg_errorf("%s:%ld: too many sentences", path, lineno);
            break;
        }
    }
    if (rc == 0 && (max_sentences <= 0 || c.n_sent < max_sentences))
        rc = end_sentence(&c, &s);
    if (rc == 0 && c.n_sent == 0) rc = eg_errorf("%s: no sentences", path);
    free(lb.b);
    fclose(f);
    if (rc != 0) {
        eg_conll_free(&c);
        tagset_truncate(ts, tags_before);
        return -1;
    }
    *out = c;
    return 0;
}

/* ---- writing --------------------------------------------------------------- */

int eg_conll_write(const char *path, const eg_conll *c, const eg_tagset *ts, int lang_prefix)
{
    for (long i = 0; i < c->n_words; i++) {
        const char *w = c->word[i];
        if (!w[0] || strpbrk(w, "\t\r\n") || strncmp(w, "-DOCSTART-", 10) == 0)
            return eg_errorf("%s: word %ld (\"%.64s\") cannot be written: empty, holding a "
                             "tab or line end, or a document marker",
                             path, i, w);
        if (c->tag[i] < 0 || c->tag[i] >= ts->n)
            return eg_errorf("%s: word %ld has tag id %d outside the tag set of %d", path, i,
                             (int)c->tag[i], ts->n);
    }
    errno = 0;
    FILE *f = fopen(path, "wb");
    if (!f) return eg_errorf("%s: cannot create: %s", path, strerror(errno));
    for (int s = 0; s < c->n_sent; s++) {
        const char *lang = lang_prefix ? c->lang[s] : "";
        for (long i = c->start[s]; i < c->start[s + 1]; i++)
            fprintf(f, "%s%s%s\t%s\n", lang, *lang ? ":" : "", c->word[i], ts->names[c->tag[i]]);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return eg_errorf("%s: write error: %s", path, strerror(errno));
    return 0;
}
