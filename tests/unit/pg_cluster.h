/* A real PostgreSQL server for the tests of the shared store: a cluster
 * made with initdb in a temporary folder and started with pg_ctl on a
 * Unix socket there (no TCP), once per test process, stopped and removed
 * at exit. Run as root, the server runs as the postgres user (initdb
 * refuses root). Nothing here calls cmocka: 0 / -1 with a line on stderr.
 *
 * The daemon tests run against it when EG_TEST_STORE=postgresql (the
 * harness gives each daemon folder a database of its own). */
#ifndef EG_TEST_PG_CLUSTER_H
#define EG_TEST_PG_CLUSTER_H

#include <stddef.h>

/* Whether the tests should use PostgreSQL (EG_TEST_STORE=postgresql). */
int pgc_wanted(void);

/* Whether initdb and pg_ctl are installed (Debian's postgresql). */
int pgc_available(void);

/* Starts the cluster when it is not running yet. */
int pgc_start(void);

/* The conninfo of database `name` (letters, digits, _), created when
 * missing. */
int pgc_database(const char *name, char *conninfo, size_t cap);

/* Stops the server (fast shutdown) and starts it again: what a database
 * that goes away for a while looks like to its clients. */
int pgc_server_stop(void);
int pgc_server_start(void);

/* A database name for a folder: "t_" and a hash of its path. */
void pgc_name_for(const char *dir, char *name, size_t cap);

#endif
