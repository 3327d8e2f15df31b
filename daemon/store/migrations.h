/* The stores' migrations, embedded at build time by sql/embed.sh into
 * generated C files: SQLite's sql/NNN_*.sql as eg_sqlite_migrations,
 * PostgreSQL's sql/postgres/NNN_*.sql as eg_pg_migrations; [i] has
 * version i + 1. */
#ifndef EG_STORE_MIGRATIONS_H
#define EG_STORE_MIGRATIONS_H

typedef struct eg_migration {
    int version;       /* NNN of the file name */
    const char *name;  /* the file name, for messages */
    const char *sql;   /* its text, run in one transaction */
} eg_migration;

extern const eg_migration eg_sqlite_migrations[];
extern const int eg_sqlite_n_migrations;
extern const eg_migration eg_pg_migrations[];
extern const int eg_pg_n_migrations;

#endif
