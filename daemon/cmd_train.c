/* `evogradd train`: plain supervised training of one model on one dataset
 * in the foreground, on the CPU. Progress goes to stderr, one JSON summary
 * line to stdout. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "data/dataset.h"
#include "nn/classifier.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/json_num.h"

typedef struct train_opts {
    const char *model, *dataset, *data_dir, *optimizer;
    int width, epochs, batch;
    double lr, momentum, weight_decay;
    int nesterov;
    long seed;
} train_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: evogradd train [options]\n"
            "  --model NAME        lenet (default), mlp, resnet20, resnet32, resnet44, resnet56\n"
            "  --width N           ResNet width multiplier (default 1)\n"
            "  --dataset NAME      fashion-mnist (default), mnist, cifar10, cifar100\n"
            "  --data-dir DIR      dataset folder (default: Debian's, for fashion-mnist)\n"
            "  --epochs N          default 1\n"
            "  --batch N           default 128\n"
            "  --optimizer NAME    adam (default) or sgd\n"
            "  --lr X              default 1e-3 (adam), 0.1 (sgd)\n"
            "  --momentum X        sgd momentum (default 0.9)\n"
            "  --weight-decay X    default 0\n"
            "  --nesterov          sgd with Nesterov momentum\n"
            "  --seed N            default 1\n");
}

/* Parses a number in [lo, hi]; returns -1 with a message naming the flag. */
static int parse_num(const char *flag, const char *text, double lo, double hi,
                     double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return eg_errorf("--%s: \"%s\" is not a number in [%g, %g]", flag, text, lo, hi);
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, train_opts *o)
{
    static const struct option longs[] = {
        {"model", 1, 0, 'm'},    {"width", 1, 0, 'W'},      {"dataset", 1, 0, 'd'},
        {"data-dir", 1, 0, 'D'}, {"epochs", 1, 0, 'e'},     {"batch", 1, 0, 'b'},
        {"optimizer", 1, 0, 'o'}, {"lr", 1, 0, 'l'},        {"momentum", 1, 0, 'M'},
        {"weight-decay", 1, 0, 'w'}, {"nesterov", 0, 0, 'n'}, {"seed", 1, 0, 's'},
        {"help", 0, 0, 'h'},     {0, 0, 0, 0},
    };
    *o = (train_opts){.model = "lenet", .dataset = "fashion-mnist", .optimizer = "adam",
                      .width = 1, .epochs = 1, .batch = 128, .lr = NAN, .momentum = 0.9,
                      .seed = 1};
    double v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        const char *name = NULL;
        for (int i = 0; longs[i].name; i++)
            if (longs[i].val == c) name = longs[i].name;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'd': o->dataset = optarg; break;
        case 'D': o->data_dir = optarg; break;
        case 'o': o->optimizer = optarg; break;
        case 'n': o->nesterov = 1; break;
        case 'W': EG_TRY(parse_num(name, optarg, 1, 64, &v)); o->width = (int)v; break;
        case 'e': EG_TRY(parse_num(name, optarg, 1, 100000, &v)); o->epochs = (int)v; break;
        case 'b': EG_TRY(parse_num(name, optarg, 1, 65536, &v)); o->batch = (int)v; break;
        case 'l': EG_TRY(parse_num(name, optarg, 1e-12, 1e3, &o->lr)); break;
        case 'M': EG_TRY(parse_num(name, optarg, 0, 0.999999, &o->momentum)); break;
        case 'w': EG_TRY(parse_num(name, optarg, 0, 1, &o->weight_decay)); break;
        case 's': EG_TRY(parse_num(name, optarg, 0, 1e15, &v)); o->seed = (long)v; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return eg_errorf("bad command line");
        }
    }
    if (optind < argc) return eg_errorf("unexpected argument \"%s\"", argv[optind]);
    return 0;
}

static int optimizer_config(const train_opts *o, eg_optim_config *cfg)
{
    if (strcmp(o->optimizer, "adam") == 0) {
        *cfg = eg_optim_adam_defaults();
        if (!isnan(o->lr)) cfg->lr = (float)o->lr;
    } else if (strcmp(o->optimizer, "sgd") == 0) {
        *cfg = eg_optim_sgd_defaults(isnan(o->lr) ? 0.1f : (float)o->lr);
        cfg->momentum = (float)o->momentum;
        cfg->nesterov = o->nesterov;
    } else {
        return eg_errorf("--optimizer: \"%s\" is not adam or sgd", o->optimizer);
    }
    cfg->weight_decay = (float)o->weight_decay;
    return eg_optim_check(cfg);
}

/* Loads both splits and normalises them with the training set's per-channel
 * statistics. */
static int load_data(const train_opts *o, eg_dataset *train, eg_dataset *test)
{
    if (eg_dataset_open(o->dataset, o->data_dir, 1, train) != 0) return -1;
    if (eg_dataset_open(o->dataset, o->data_dir, 0, test) != 0) {
        eg_dataset_free(train);
        return -1;
    }
    float mean[3], std[3];
    eg_dataset_channel_stats(train, mean, std);
    eg_dataset_normalize(train, mean, std);
    eg_dataset_normalize(test, mean, std);
    return 0;
}

static int train(const train_opts *o)
{
    eg_optim_config cfg;
    EG_TRY(optimizer_config(o, &cfg));
    eg_dataset tr, te;
    EG_TRY(load_data(o, &tr, &te));
    eg_backend *be = eg_cpu_backend_create();
    eg_classifier m = {0};
    eg_batcher b = {0};
    int rc = -1;
    if (!be) goto out;
    if (eg_classifier_init(&m, be, o->model, o->width, tr.c, tr.h, tr.w, tr.classes, o->batch,
                           &cfg, (uint64_t)o->seed, 0) != 0 ||
        eg_batcher_init(&b, tr.n, o->batch, (uint64_t)o->seed, 1, 0) != 0)
        goto out;
    int per_epoch = eg_batcher_batches_per_epoch(&b), tty = isatty(STDERR_FILENO);
    long steps = 0;
    double step_ms = 0, loss = 0, acc = 0, test_loss = 0;
    for (int epoch = 0; epoch < o->epochs; epoch++) {
        for (int i = 0; i < per_epoch; i++, steps++) {
            const uint32_t *idx;
            int count;
            double t0 = eg_now_ms();
            if (eg_batcher_next(&b, &idx, &count) != 0 ||
                eg_classifier_load(&m, &tr, idx, count) != 0 ||
                eg_classifier_step(&m, m.batch.x, m.batch.y, count, &loss) != 0)
                goto out;
            if (!isfinite(loss)) {
                eg_errorf("training loss is %g at step %ld", loss, steps);
                goto out;
            }
            step_ms += eg_now_ms() - t0;
            if (tty || (i + 1) % 100 == 0 || i + 1 == per_epoch)
                fprintf(stderr, tty ? "\repoch %d/%d  step %d/%d  loss %.4f " :
                                      "epoch %d/%d step %d/%d loss %.4f\n",
                        epoch + 1, o->epochs, i + 1, per_epoch, loss);
        }
        if (eg_classifier_evaluate(&m, &te, &acc, &test_loss) != 0) goto out;
        fprintf(stderr, "%sepoch %d/%d test accuracy %.2f%% test loss %.4f\n", tty ? "\n" : "",
                epoch + 1, o->epochs, 100 * acc, test_loss);
    }
    json_t *summary = json_pack("{s:s, s:s, s:i, s:i, s:f, s:f, s:f, s:f, s:I}", "model",
                                o->model, "dataset", o->dataset, "epochs", o->epochs, "steps",
                                (int)steps, "train_loss", loss, "test_acc", 100 * acc,
                                "test_loss", test_loss, "mean_step_ms",
                                steps ? step_ms / steps : 0.0, "peak_mem_bytes",
                                (json_int_t)be->peak_bytes);
    char *text = eg_json_dumps(summary, JSON_COMPACT);
    puts(text);
    free(text);
    json_decref(summary);
    rc = 0;
out:
    eg_batcher_free(&b);
    eg_classifier_free(&m);
    if (be) be->destroy(be);
    eg_dataset_free(&tr);
    eg_dataset_free(&te);
    return rc;
}

int eg_cmd_train(int argc, char **argv)
{
    train_opts o;
    if (parse_args(argc, argv, &o) != 0 || train(&o) != 0) {
        EG_LOG(ERROR, "train: %s", eg_last_error());
        return 1;
    }
    return 0;
}
