/* The tests' PostgreSQL server (pg_cluster.h). */
#include "pg_cluster.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char bindir[256];
static char root[256]; /* the temporary folder: data/ and the socket */
static int started, server_up;
static pid_t owner; /* the process that started it stops it */

int pgc_wanted(void)
{
    const char *v = getenv("EG_TEST_STORE");
    return v && strcmp(v, "postgresql") == 0;
}

/* Debian keeps the server's programs in /usr/lib/postgresql/N/bin. */
static int find_bindir(void)
{
    if (bindir[0]) return 0;
    DIR *d = opendir("/usr/lib/postgresql");
    if (!d) return -1;
    struct dirent *e;
    int best = -1;
    while ((e = readdir(d))) {
        int v = atoi(e->d_name);
        char p[300];
        snprintf(p, sizeof p, "/usr/lib/postgresql/%s/bin/initdb", e->d_name);
        if (v > best && access(p, X_OK) == 0) {
            best = v;
            snprintf(bindir, sizeof bindir, "/usr/lib/postgresql/%s/bin", e->d_name);
        }
    }
    closedir(d);
    return best < 0 ? -1 : 0;
}

int pgc_available(void)
{
    return find_bindir() == 0;
}

/* Runs a shell command as the server's user; 0 when it exits 0. */
static int run_as_server(const char *cmd)
{
    char line[2048];
    if (geteuid() == 0)
        snprintf(line, sizeof line, "runuser -u postgres -- sh -c '%s' >>%s/pg.log 2>&1", cmd,
                 root);
    else
        snprintf(line, sizeof line, "sh -c '%s' >>%s/pg.log 2>&1", cmd, root);
    int rc = system(line);
    if (rc != 0) {
        fprintf(stderr, "pg_cluster: \"%s\" failed (%d); its log:\n", cmd, rc);
        char show[600];
        snprintf(show, sizeof show, "tail -n 20 %s/pg.log >&2", root);
        if (system(show) != 0) fprintf(stderr, "(no log)\n");
    }
    return rc == 0 ? 0 : -1;
}

int pgc_server_start(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s/pg_ctl -D %s/data -w -t 60 -l %s/server.log -o \"-k %s -c "
             "listen_addresses= -c fsync=off -c synchronous_commit=off -c "
             "full_page_writes=off -c max_connections=200\" start",
             bindir, root, root, root);
    if (run_as_server(cmd) != 0) return -1;
    server_up = 1;
    return 0;
}

int pgc_server_stop(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/pg_ctl -D %s/data -w -t 60 -m fast stop", bindir, root);
    if (run_as_server(cmd) != 0) return -1;
    server_up = 0;
    return 0;
}

static void stop_at_exit(void)
{
    if (!started || getpid() != owner) return;
    if (server_up) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s/pg_ctl -D %s/data -w -t 30 -m immediate stop", bindir, root);
        run_as_server(cmd);
    }
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf %s", root);
    if (system(rm) != 0) fprintf(stderr, "pg_cluster: cannot remove %s\n", root);
}

int pgc_start(void)
{
    if (started) return 0;
    if (find_bindir() != 0) {
        fprintf(stderr, "pg_cluster: no PostgreSQL server programs in /usr/lib/postgresql "
                        "(Debian package postgresql; make deps installs it)\n");
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/egpg.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        fprintf(stderr, "pg_cluster: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw || chown(root, pw->pw_uid, pw->pw_gid) != 0) {
            fprintf(stderr, "pg_cluster: no postgres user to run the server as\n");
            return -1;
        }
    }
    chmod(root, 0755);
    owner = getpid();
    started = 1;
    atexit(stop_at_exit);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/initdb -D %s/data -U evograd -A trust -E UTF8 --no-sync", bindir,
             root);
    if (run_as_server(cmd) != 0) return -1;
    return pgc_server_start();
}

int pgc_database(const char *name, char *conninfo, size_t cap)
{
    if (pgc_start() != 0) return -1;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            fprintf(stderr, "pg_cluster: bad database name %s\n", name);
            return -1;
        }
    char admin[400];
    snprintf(admin, sizeof admin, "host=%s user=evograd dbname=postgres", root);
    PGconn *c = PQconnectdb(admin);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg_cluster: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT 1 FROM pg_database WHERE datname = '%s'", name);
    PGresult *r = PQexec(c, sql);
    int exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
    PQclear(r);
    int rc = 0;
    if (!exists) {
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
        r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "pg_cluster: %s: %s", sql, PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    PQfinish(c);
    snprintf(conninfo, cap, "host=%s user=evograd dbname=%s", root, name);
    return rc;
}

void pgc_name_for(const char *dir, char *name, size_t cap)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = dir; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(name, cap, "t_%016llx", (unsigned long long)h);
}
