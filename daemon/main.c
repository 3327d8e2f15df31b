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
};

static void usage(FILE *f)
{
    fprintf(f, "usage: evogradd COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'evogradd COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
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
    fprintf(stderr, "evogradd: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
