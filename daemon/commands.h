/* The evogradd subcommands; each takes its own argv (argv[0] is the
 * command name) and returns the process exit status. */
#ifndef EG_COMMANDS_H
#define EG_COMMANDS_H

int eg_cmd_train(int argc, char **argv);
int eg_cmd_run(int argc, char **argv);
int eg_cmd_serve(int argc, char **argv);
int eg_cmd_synth_ner(int argc, char **argv);

#endif
