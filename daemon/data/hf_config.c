/* config.json of XLM-R / RoBERTa checkpoints: a table of the numeric
 * fields (name, required or default, bounds), then the string fields. */
#include "data/hf_config.h"

#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "util/err.h"

enum kind { INT, REAL };

/* One numeric field: an INT must be a JSON integer in [lo, hi]; a REAL any
 * JSON number in [lo, hi). An optional field absent takes def. */
static const struct field {
    const char *name;
    enum kind kind;
    size_t offset;
    int required;
    double def, lo, hi;
    const char *range; /* the bounds, for messages */
} fields[] = {
#define F(name, kind, req, def, lo, hi, range)                                         \
    {#name, kind, offsetof(eg_hf_config, name), req, def, lo, hi, range}
    F(vocab_size, INT, 1, 0, 1, 1 << 24, "1 to 16777216"),
    F(hidden_size, INT, 1, 0, 1, 65536, "1 to 65536"),
    F(num_hidden_layers, INT, 1, 0, 1, 1000, "1 to 1000"),
    F(num_attention_heads, INT, 1, 0, 1, 65536, "1 to 65536"),
    F(intermediate_size, INT, 1, 0, 1, 1 << 20, "1 to 1048576"),
    F(max_position_embeddings, INT, 1, 0, 1, 1 << 20, "1 to 1048576"),
    F(type_vocab_size, INT, 0, 1, 1, 1024, "1 to 1024"),
    F(pad_token_id, INT, 0, 1, 0, (1 << 24) - 1, "0 to 16777215"),
    F(layer_norm_eps, REAL, 0, 1e-5, DBL_MIN, 1, "> 0 and < 1"),
    F(hidden_dropout_prob, REAL, 0, 0.1, 0, 1, ">= 0 and < 1"),
    F(attention_probs_dropout_prob, REAL, 0, 0.1, 0, 1, ">= 0 and < 1"),
#undef F
};

/* Reads one numeric field of root into c. */
static int read_field(const char *name, const json_t *root, const struct field *f,
                      eg_hf_config *c)
{
    const json_t *j = json_object_get(root, f->name);
    double v = f->def;
    if (!j) {
        if (f->required) return eg_errorf("%s: missing \"%s\"", name, f->name);
    } else if (f->kind == INT) {
        if (!json_is_integer(j))
            return eg_errorf("%s: \"%s\" is not an integer", name, f->name);
        json_int_t i = json_integer_value(j);
        if (i < f->lo || i > f->hi)
            return eg_errorf("%s: %s %lld out of range (%s)", name, f->name, (long long)i,
                             f->range);
        v = (double)i;
    } else {
        if (!json_is_number(j)) return eg_errorf("%s: \"%s\" is not a number", name, f->name);
        v = json_number_value(j);
        if (!(v >= f->lo && v < f->hi))
            return eg_errorf("%s: %s %g out of range (%s)", name, f->name, v, f->range);
    }
    char *at = (char *)c + f->offset;
    if (f->kind == INT) *(int *)at = (int)v;
    else *(double *)at = v;
    return 0;
}

/* The string field key of root, or def when absent (def NULL: required);
 * *s NULL after eg_errorf() when it is missing or not a string. */
static int read_string(const char *name, const json_t *root, const char *key,
                       const char *def, const char **s)
{
    const json_t *j = json_object_get(root, key);
    *s = def;
    if (!j) return def ? 0 : eg_errorf("%s: missing \"%s\"", name, key);
    if (!json_is_string(j)) return eg_errorf("%s: \"%s\" is not a string", name, key);
    *s = json_string_value(j);
    return 0;
}

/* The checks across fields and the string and label fields. */
static int read_config(const char *name, const json_t *root, eg_hf_config *c)
{
    const char *s;
    EG_TRY(read_string(name, root, "model_type", NULL, &s));
    if (strcmp(s, "xlm-roberta") != 0 && strcmp(s, "roberta") != 0)
        return eg_errorf("%s: model_type \"%.60s\" is not supported (\"xlm-roberta\" or "
                         "\"roberta\")", name, s);
    snprintf(c->model_type, sizeof c->model_type, "%s", s);

    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        EG_TRY(read_field(name, root, &fields[i], c));
    if (c->hidden_size % c->num_attention_heads != 0)
        return eg_errorf("%s: hidden_size %d is not divisible by num_attention_heads %d", name,
                         c->hidden_size, c->num_attention_heads);
    if (c->pad_token_id >= c->vocab_size)
        return eg_errorf("%s: pad_token_id %d out of range (vocab_size %d)", name,
                         c->pad_token_id, c->vocab_size);
    /* RoBERTa numbers positions from pad_token_id + 1. */
    if (c->max_position_embeddings < c->pad_token_id + 2)
        return eg_errorf("%s: max_position_embeddings %d leaves no position after "
                         "pad_token_id %d", name, c->max_position_embeddings,
                         c->pad_token_id);

    EG_TRY(read_string(name, root, "hidden_act", "gelu", &s));
    if (strcmp(s, "gelu") != 0)
        return eg_errorf("%s: hidden_act \"%.60s\" is not supported (only \"gelu\")", name, s);
    snprintf(c->hidden_act, sizeof c->hidden_act, "%s", s);
    EG_TRY(read_string(name, root, "position_embedding_type", "absolute", &s));
    if (strcmp(s, "absolute") != 0)
        return eg_errorf("%s: position_embedding_type \"%.60s\" is not supported (only "
                         "\"absolute\")", name, s);

    const json_t *labels = json_object_get(root, "num_labels");
    const json_t *id2label = json_object_get(root, "id2label");
    if (id2label && !json_is_object(id2label))
        return eg_errorf("%s: \"id2label\" is not an object", name);
    if (labels) {
        if (!json_is_integer(labels))
            return eg_errorf("%s: \"num_labels\" is not an integer", name);
        json_int_t n = json_integer_value(labels);
        if (n < 1 || n > 1 << 20)
            return eg_errorf("%s: num_labels %lld out of range (1 to 1048576)", name,
                             (long long)n);
        if (id2label && json_object_size(id2label) != (size_t)n)
            return eg_errorf("%s: num_labels %lld but id2label has %zu labels", name,
                             (long long)n, json_object_size(id2label));
        c->num_labels = (int)n;
    } else if (id2label) {
        if (json_object_size(id2label) > 1 << 20)
            return eg_errorf("%s: id2label has %zu labels (at most 1048576)", name,
                             json_object_size(id2label));
        c->num_labels = (int)json_object_size(id2label);
    }
    return 0;
}

int eg_hf_config_parse(const char *name, const char *text, size_t len, eg_hf_config *out)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return eg_errorf("%s: not valid JSON: %s (line %d, column %d)", name, je.text,
                         je.line, je.column);
    eg_hf_config c = {0};
    int rc = json_is_object(root) ? read_config(name, root, &c)
                                  : eg_errorf("%s: not a JSON object", name);
    json_decref(root);
    if (rc == 0) *out = c;
    return rc;
}

int eg_hf_config_load(const char *dir, eg_hf_config *out)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path)
        return eg_errorf("%.200s...: checkpoint folder path too long", dir);
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return eg_errorf("%s: no such file", path);
        return eg_errorf("%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return eg_errorf("%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > EG_HF_CONFIG_MAX_FILE) {
        fclose(f);
        return eg_errorf("%s: %lld bytes, more than a config.json may have (%zu)", path,
                         (long long)sb.st_size, EG_HF_CONFIG_MAX_FILE);
    }
    size_t len = (size_t)sb.st_size;
    char *text = malloc(len ? len : 1);
    if (!text) {
        fclose(f);
        return eg_errorf("%s: out of memory", path);
    }
    size_t got = fread(text, 1, len, f);
    int bad = ferror(f);
    fclose(f);
    int rc = got != len ? eg_errorf("%s: %s", path, bad ? "read error" : "truncated while read")
                        : eg_hf_config_parse(path, text, len, out);
    free(text);
    return rc;
}
