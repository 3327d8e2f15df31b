/* The SQLite migrations sql/NNN_*.sql, embedded at build time by
 * sql/embed.sh into a generated C file: eg_migrations[i] has version i + 1. */
#ifndef EG_STORE_MIGRATIONS_H
#define EG_STORE_MIGRATIONS_H

typedef struct eg_migration {
    int version;       /* NNN of the file name */
    const char *name;  /* the file name, for messages */
    const char *sql;   /* its text, run in one transaction */
} eg_migration;

extern const eg_migration eg_migrations[];
extern const int eg_n_migrations;

#endif
