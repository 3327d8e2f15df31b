/* evogradctl's subcommands. Each takes the connection and the parsed
 * command line (its operands already counted and its options checked by
 * main), prints what it has to stdout and failures to stderr, and returns
 * the process exit status (CTL_EXIT_*). */
#ifndef CTL_COMMANDS_H
#define CTL_COMMANDS_H

#include "ctl_args.h"
#include "ctl_http.h"

/* Largest job spec sent, as the server caps request bodies. */
#define CTL_SPEC_MAX (1u << 20)

/* Reads all of f (named name in messages) into a new NUL-terminated
 * buffer of at most CTL_SPEC_MAX bytes. NULL with eg_errorf when it
 * cannot. */
char *ctl_read_body(FILE *f, const char *name, size_t *len);

/* ctl_read_body of the file called name, or of stdin for "-". */
char *ctl_read_named(const char *name, size_t *len);

int ctl_cmd_submit(ctl_conn *c, const ctl_opts *o);  /* submit FILE|- */
int ctl_cmd_sweep(ctl_conn *c, const ctl_opts *o);   /* sweep submit|list|show|watch|cancel|delete */
int ctl_cmd_list(ctl_conn *c, const ctl_opts *o);    /* list */
int ctl_cmd_show(ctl_conn *c, const ctl_opts *o);    /* show ID */
int ctl_cmd_watch(ctl_conn *c, const ctl_opts *o);   /* watch ID */
int ctl_cmd_steps(ctl_conn *c, const ctl_opts *o);   /* steps ID */
int ctl_cmd_cancel(ctl_conn *c, const ctl_opts *o);  /* cancel ID */
int ctl_cmd_delete(ctl_conn *c, const ctl_opts *o);  /* delete ID */
int ctl_cmd_devices(ctl_conn *c, const ctl_opts *o); /* devices */
int ctl_cmd_workers(ctl_conn *c, const ctl_opts *o); /* workers */

#endif
