/* `evogradd synth-ner --out DIR`: writes the CoNLL files of a synthetic
 * source and target NER language (data/synth_lang.h) and prints their
 * paths, one a line. Exit status: 0 when written, 1 when writing failed, 2
 * for a bad command line. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "data/synth_lang.h"
#include "util/log.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: evogradd synth-ner --out DIR [options]\n"
            "  --out DIR           folder for src/{train,dev,test}.txt and tgt/...\n"
            "  --seed N            default 1\n"
            "  --source-train N    source training sentences (default 5000)\n"
            "  --target-train N    target training sentences (default 100)\n"
            "  --dev N             development sentences per language (default 500)\n"
            "  --test N            test sentences per language (default 500)\n"
            "  --remap F           fraction of the vocabulary the target re-maps (default 0.5)\n"
            "  --lang-prefix       write tokens as src:word and tgt:word\n");
}

/* Parses a number in [lo, hi]; -1 with a message naming the flag. */
static int parse_num(const char *flag, const char *text, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return eg_errorf("--%s: \"%s\" is not a number in [%g, %g]", flag, text, lo, hi);
    *out = v;
    return 0;
}

/* 1 when --help was asked for, 0 to go on, -1 for a bad command line. */
static int parse_args(int argc, char **argv, const char **dir, eg_synth_ner_opts *o)
{
    static const struct option longs[] = {
        {"out", 1, 0, 'o'},          {"seed", 1, 0, 's'}, {"source-train", 1, 0, 'S'},
        {"target-train", 1, 0, 'T'}, {"dev", 1, 0, 'd'},  {"test", 1, 0, 't'},
        {"remap", 1, 0, 'r'},        {"lang-prefix", 0, 0, 'p'}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0},
    };
    *o = eg_synth_ner_defaults();
    *dir = NULL;
    double v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        const char *name = NULL;
        for (int i = 0; longs[i].name; i++)
            if (longs[i].val == c) name = longs[i].name;
        switch (c) {
        case 'o': *dir = optarg; break;
        case 's': EG_TRY(parse_num(name, optarg, 0, 1e15, &v)); o->seed = (uint64_t)v; break;
        case 'S': EG_TRY(parse_num(name, optarg, 1, 10000000, &v)); o->source_train = (int)v; break;
        case 'T': EG_TRY(parse_num(name, optarg, 1, 10000000, &v)); o->target_train = (int)v; break;
        case 'd': EG_TRY(parse_num(name, optarg, 1, 10000000, &v)); o->dev = (int)v; break;
        case 't': EG_TRY(parse_num(name, optarg, 1, 10000000, &v)); o->test = (int)v; break;
        case 'r': EG_TRY(parse_num(name, optarg, 0, 1, &o->remap)); break;
        case 'p': o->lang_prefix = 1; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return eg_errorf("bad command line");
        }
    }
    if (optind < argc) return eg_errorf("unexpected argument \"%s\"", argv[optind]);
    if (!*dir) {
        usage(stderr);
        return eg_errorf("no --out folder given");
    }
    return 0;
}

int eg_cmd_synth_ner(int argc, char **argv)
{
    const char *dir;
    eg_synth_ner_opts o;
    int rc = parse_args(argc, argv, &dir, &o);
    if (rc == 1) return 0;
    if (rc != 0) {
        EG_LOG(ERROR, "synth-ner: %s", eg_last_error());
        return 2;
    }
    if (eg_synth_ner_write(dir, &o) != 0) {
        EG_LOG(ERROR, "synth-ner: %s", eg_last_error());
        return 1;
    }
    for (int f = 0; f < EG_SYNTH_NER_FILES; f++) printf("%s/%s\n", dir, eg_synth_ner_files[f]);
    return 0;
}
