/* Opening and closing the PostgreSQL store: the connection, the schema
 * migrations (under an advisory lock, so daemons starting together
 * migrate once), the write queue, and the LISTEN thread that wakes idle
 * workers when another daemon queues a job. */
#include "store/postgres/pg.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/migrations.h"
#include "util/err.h"
#include "util/log.h"

/* Any number, the same in every evogradd: the lock migrations take. */
#define MIGRATION_LOCK "7411031"

static const char SQL_LOCK[] = "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")";
static const char SQL_VERSION_TABLE[] =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";
static const char SQL_VERSION[] = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
static const char SQL_SET_VERSION[] = "INSERT INTO schema_version (version) VALUES ($1)";

/* Brings the schema to the newest version this binary knows, each
 * migration in the one transaction that holds the lock; refuses a
 * database written by a newer evogradd. */
static int migrate(pg_conn *c)
{
    for (int i = 0; i < eg_pg_n_migrations; i++)
        if (eg_pg_migrations[i].version != i + 1)
            return eg_errorf("store: embedded migration %s is out of order",
                             eg_pg_migrations[i].name);
    EG_TRY(pg_begin(c));
    int rc = pg_x(c, SQL_LOCK, 0, NULL, "locking the schema", NULL);
    if (rc == 0) rc = pg_x(c, SQL_VERSION_TABLE, 0, NULL, "the schema version", NULL);
    PGresult *r = rc == 0 ? pg_q(c, SQL_VERSION, 0, NULL, "reading the schema version") : NULL;
    if (rc == 0 && !r) rc = -1;
    int v = r ? (int)pg_get_i64(r, 0, 0) : 0;
    PQclear(r);
    if (rc == 0 && v > eg_pg_n_migrations)
        rc = eg_errorf("store: the database has schema version %d, newer than this evogradd "
                       "knows (%d): it was written by a newer release; use that one",
                       v, eg_pg_n_migrations);
    for (int i = v; rc == 0 && i < eg_pg_n_migrations; i++) {
        /* A migration is several statements: the simple protocol runs
         * them in this transaction. */
        PGresult *m = PQexec(c->pg, eg_pg_migrations[i].sql);
        if (PQresultStatus(m) != PGRES_COMMAND_OK && PQresultStatus(m) != PGRES_TUPLES_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(m));
            msg[strcspn(msg, "\n")] = '\0';
            rc = eg_errorf("store: migration %s: %s", eg_pg_migrations[i].name, msg);
        }
        PQclear(m);
        pg_num n;
        const char *p[] = {pg_i64(&n, eg_pg_migrations[i].version)};
        if (rc == 0) rc = pg_x(c, SQL_SET_VERSION, 1, p, "setting the schema version", NULL);
    }
    return pg_end(c, rc);
}

/* LISTEN on a connection of its own; on each notification (or a lost
 * connection, after which it connects again) calls the store's wake. */
static void *listener_main(void *arg)
{
    eg_pg *s = arg;
    pthread_setname_np(pthread_self(), "eg-listen");
    pg_conn *c = NULL;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int stop = s->stopping;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;
        if (!c) {
            if ((c = pg_connect(s->conninfo))) {
                PGresult *r = PQexec(c->pg, "LISTEN evograd_jobs");
                int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
                PQclear(r);
                if (!ok) {
                    pg_close(c);
                    c = NULL;
                } else {
                    s->wake(s->wake_ctx); /* what was queued while not listening */
                }
            }
            if (!c) {
                nanosleep(&(struct timespec){1, 0}, NULL);
                continue;
            }
        }
        struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
        if (poll(&p, 1, 500) < 0) continue;
        if (!PQconsumeInput(c->pg)) { /* the connection is gone */
            pg_close(c);
            c = NULL;
            continue;
        }
        int woken = 0;
        PGnotify *n;
        while ((n = PQnotifies(c->pg))) {
            PQfreemem(n);
            woken = 1;
        }
        if (woken) s->wake(s->wake_ctx);
    }
    pg_close(c);
    return NULL;
}

/* Stops the LISTEN thread, if one runs. */
static void stop_listening(eg_pg *s)
{
    if (!s->listening) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->listener, NULL);
    s->listening = s->stopping = 0;
}

int pg_op_set_wake(eg_store *base, void (*wake)(void *ctx), void *ctx)
{
    eg_pg *s = (eg_pg *)base;
    stop_listening(s);
    s->wake = wake;
    s->wake_ctx = ctx;
    if (!wake) return 0;
    int rc = pthread_create(&s->listener, NULL, listener_main, s);
    if (rc != 0) return eg_errorf("store: cannot start the LISTEN thread: %s", strerror(rc));
    s->listening = 1;
    return 0;
}

int pg_op_flush(eg_store *base)
{
    return eg_writeq_flush(&((eg_pg *)base)->q);
}

int pg_op_step_append(eg_store *base, int64_t job, int attempt, const eg_step_record *r)
{
    return eg_writeq_step(&((eg_pg *)base)->q, job, attempt, r);
}

int pg_op_eval_append(eg_store *base, int64_t job, int attempt, long step, const eg_eval *ev)
{
    return eg_writeq_eval(&((eg_pg *)base)->q, job, attempt, step, ev);
}

static const eg_store_ops pg_ops = {
    .kind = "postgresql",
    .close = pg_op_close,
    .flush = pg_op_flush,
    .set_wake = pg_op_set_wake,
    .job_insert = pg_op_job_insert,
    .job_get = pg_op_job_get,
    .jobs_list = pg_op_jobs_list,
    .job_counts = pg_op_job_counts,
    .newest_job = pg_op_newest_job,
    .oldest_queued_age = pg_op_oldest_queued_age,
    .job_claim = pg_op_job_claim,
    .job_renew = pg_op_job_renew,
    .leases_expire = pg_op_leases_expire,
    .job_set_total = pg_op_job_set_total,
    .job_finish = pg_op_job_finish,
    .job_cancel = pg_op_job_cancel,
    .job_cancel_requested = pg_op_job_cancel_requested,
    .job_delete = pg_op_job_delete,
    .requeue_running = pg_op_requeue_running,
    .worker_beat = pg_op_worker_beat,
    .workers = pg_op_workers,
    .step_append = pg_op_step_append,
    .steps_read = pg_op_steps_read,
    .steps_minmax = pg_op_steps_minmax,
    .sweep_insert = pg_op_sweep_insert,
    .sweep_get = pg_op_sweep_get,
    .sweeps_list = pg_op_sweeps_list,
    .sweep_cancel = pg_op_sweep_cancel,
    .sweep_delete = pg_op_sweep_delete,
    .eval_append = pg_op_eval_append,
    .evals = pg_op_evals,
    .checkpoint_record = pg_op_checkpoint_record,
    .checkpoint_latest = pg_op_checkpoint_latest,
};

int eg_pg_open(const char *conninfo, eg_store **out)
{
    *out = NULL;
    if (!PQisthreadsafe()) return eg_errorf("store: libpq was built without threads");
    eg_pg *s = calloc(1, sizeof *s);
    if (!s) return eg_errorf("store: out of memory");
    s->base.ops = &pg_ops;
    pthread_mutex_init(&s->lock, NULL);
    if (!(s->conninfo = strdup(conninfo))) {
        eg_errorf("store: out of memory");
        goto fail;
    }
    pg_conn *c = pg_connect(conninfo);
    if (!c) goto fail;
    if (migrate(c) != 0) {
        pg_close(c);
        goto fail;
    }
    s->idle = c;
    /* The server may be away for a while (a restart): a batch is tried
     * again for as long as patient operations wait. */
    s->q = (eg_writeq){.name = "the PostgreSQL database",
                       .commit = pg_commit,
                       .ctx = s,
                       .tries = EG_PG_PATIENCE_S * 2,
                       .retry_ms = 500};
    if (eg_writeq_start(&s->q) != 0) goto fail;
    *out = &s->base;
    return 0;
fail:
    pg_op_close(&s->base);
    return -1;
}

void pg_op_close(eg_store *base)
{
    eg_pg *s = (eg_pg *)base;
    if (!s) return;
    eg_writeq_stop(&s->q);
    stop_listening(s);
    while (s->idle) {
        pg_conn *c = s->idle;
        s->idle = c->next;
        pg_close(c);
    }
    free(s->conninfo);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
