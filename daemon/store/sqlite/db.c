/* Opening and closing the store: the database file and its folder, the
 * schema migrations, the writer thread. */
#include "store/sqlite/sqlite.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/migrations.h"
#include "util/err.h"
#include "util/log.h"

/* Creates the folder that will hold path, and its parents (mkdir -p). */
static int make_parent_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return eg_errorf("store: path too long: %s", path);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf) return 0;
    *slash = '\0';
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return eg_errorf("store: cannot create %s: %s", buf, strerror(errno));
        if (c == '\0') break;
        *p = c;
    }
    return 0;
}

static const char SQL_USER_VERSION[] = "PRAGMA user_version";

static int user_version(eg_conn *c, int *v)
{
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_USER_VERSION);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *v = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : eg_conn_fail(c, "reading user_version");
}

/* Applies migration m in its own transaction, the new user_version
 * included; another process that migrated first is noticed inside the
 * transaction and left alone. */
static int apply(eg_conn *c, const eg_migration *m)
{
    EG_TRY(eg_conn_exec(c, "BEGIN IMMEDIATE"));
    int v, rc = user_version(c, &v);
    if (rc == 0 && v < m->version) {
        char *msg = NULL;
        if (sqlite3_exec(c->db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
            rc = eg_errorf("store: migration %s: %s", m->name,
                           msg ? msg : sqlite3_errmsg(c->db));
            sqlite3_free(msg);
        } else {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version = %d", m->version);
            if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
                rc = eg_conn_fail(c, "setting user_version");
        }
    }
    if (rc == 0 && eg_conn_exec(c, "COMMIT") == 0) return 0;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", eg_last_error());
    if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return eg_errorf("%s", msg);
}

/* Brings the schema of the database at `path` to the newest version this
 * binary knows; refuses a database written by a newer one. */
static int migrate(eg_conn *c, const char *path)
{
    for (int i = 0; i < eg_sqlite_n_migrations; i++)
        if (eg_sqlite_migrations[i].version != i + 1)
            return eg_errorf("store: embedded migration %s is out of order",
                             eg_sqlite_migrations[i].name);
    int v;
    EG_TRY(user_version(c, &v));
    if (v > eg_sqlite_n_migrations)
        return eg_errorf("store: %s has schema version %d, newer than this evogradd "
                         "knows (%d): it was written by a newer release; use that one",
                         path, v, eg_sqlite_n_migrations);
    for (int i = v; i < eg_sqlite_n_migrations; i++) EG_TRY(apply(c, &eg_sqlite_migrations[i]));
    return 0;
}

static const eg_store_ops sqlite_ops = {
    .kind = "sqlite",
    .close = eg_sq_close,
    .out_of_space = eg_sq_out_of_space,
    .flush = eg_sq_flush,
    .job_insert = eg_sq_job_insert,
    .job_get = eg_sq_job_get,
    .jobs_list = eg_sq_jobs_list,
    .job_counts = eg_sq_job_counts,
    .newest_job = eg_sq_newest_job,
    .oldest_queued_age = eg_sq_oldest_queued_age,
    .job_claim = eg_sq_job_claim,
    .job_renew = eg_sq_job_renew,
    .leases_expire = eg_sq_leases_expire,
    .job_set_total = eg_sq_job_set_total,
    .job_finish = eg_sq_job_finish,
    .job_cancel = eg_sq_job_cancel,
    .job_cancel_requested = eg_sq_job_cancel_requested,
    .job_delete = eg_sq_job_delete,
    .requeue_running = eg_sq_requeue_running,
    .worker_beat = eg_sq_worker_beat,
    .workers = eg_sq_workers,
    .step_append = eg_sq_step_append,
    .steps_read = eg_sq_steps_read,
    .steps_minmax = eg_sq_steps_minmax,
    .sweep_insert = eg_sq_sweep_insert,
    .sweep_get = eg_sq_sweep_get,
    .sweeps_list = eg_sq_sweeps_list,
    .sweep_cancel = eg_sq_sweep_cancel,
    .sweep_delete = eg_sq_sweep_delete,
    .eval_append = eg_sq_eval_append,
    .evals = eg_sq_evals,
    .checkpoint_record = eg_sq_checkpoint_record,
    .checkpoint_latest = eg_sq_checkpoint_latest,
};

int eg_sqlite_open(const char *path, eg_store **out)
{
    *out = NULL;
    if (!path || !*path || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return eg_errorf("store: needs the path of a database file");
    if (!sqlite3_threadsafe()) return eg_errorf("store: SQLite was built without threads");
    EG_TRY(make_parent_dirs(path));
    eg_sqlite *s = calloc(1, sizeof *s);
    if (!s) return eg_errorf("store: out of memory");
    s->base.ops = &sqlite_ops;
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->rlock, NULL);
    if (!(s->path = strdup(path))) {
        eg_errorf("store: out of memory");
        goto fail;
    }
    if (eg_conn_open(path, 0, &s->w) != 0 || migrate(s->w, path) != 0) goto fail;
    s->q = (eg_writeq){.name = s->path, .commit = eg_sq_commit, .ctx = s, .tries = 3,
                       .retry_ms = 100};
    s->q.on_full = (void (*)(void *))eg_reserve_release;
    if (eg_reserve_take(s) != 0) {
        EG_LOG(ERROR, "%s", eg_last_error());
        s->q.full = 1; /* new jobs are refused until there is room */
    }
    if (eg_writeq_start(&s->q) != 0) goto fail;
    *out = &s->base;
    return 0;
fail:
    eg_sq_close(&s->base);
    return -1;
}

void eg_sq_close(eg_store *base)
{
    eg_sqlite *s = (eg_sqlite *)base;
    if (!s) return;
    eg_writeq_stop(&s->q);
    /* Readers first: the last connection to close checkpoints the WAL. */
    while (s->idle) {
        eg_conn *c = s->idle;
        s->idle = c->next;
        eg_conn_close(c);
    }
    eg_conn_close(s->w);
    free(s->path);
    pthread_mutex_destroy(&s->rlock);
    pthread_mutex_destroy(&s->wlock);
    free(s);
}
