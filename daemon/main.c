/* evogradd: the evograd daemon and its foreground commands. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

#define EG_VERSION "0.1.0"

static const struct {
    const char *name, *help;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"train", "train a model on a dataset in the foreground", eg_cmd_train},
    {"run", "run a meta-learning job (a JSON job spec) in the foreground", eg_cmd_run},
    {"serve", "the daemon: the HTTP API and the job workers (the default command)",
     eg_cmd_serve},
    {"synth-ner", "write a synthetic source and target NER language (CoNLL files)",
     eg_cmd_synth_ner},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: evogradd [COMMAND] [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nWith no command, or options alone, evogradd runs serve.\n"
               "'evogradd COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        char *serve_argv[] = {"serve", NULL};
        return eg_cmd_serve(1, serve_argv);
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("evogradd %s\n", EG_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    /* Options without a command are serve's: `evogradd --config FILE`. */
    if (strncmp(argv[1], "--", 2) == 0) {
        argv[0] = "serve";
        return eg_cmd_serve(argc, argv);
    }
    fprintf(stderr, "evogradd: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
