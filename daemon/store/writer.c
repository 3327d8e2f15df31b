/* The writer thread: step and evaluation rows wait in a queue and are
 * committed in batches, one transaction each, so a job logging thousands
 * of steps a second costs one commit per batch. */
#include "store/store_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"
#include "util/log.h"

#define BATCH_MAX 1000          /* rows per transaction */
#define BATCH_DELAY_MS 50       /* the longest a row waits for company */
#define QUEUE_START 1024
#define QUEUE_MAX (1u << 17)    /* rows queued before appends fail */
#define COMMIT_TRIES 3

static const char SQL_STEPS_DONE[] =
    "UPDATE jobs SET steps_done = "
    "(SELECT COALESCE(MAX(step) + 1, 0) FROM steps WHERE job = ?1) WHERE id = ?1";

/* Writes the rows b[0..n) in one transaction, and the steps_done of each
 * job that logged steps. */
static int commit_batch(eg_store *s, const eg_item *b, size_t n)
{
    EG_TRY(eg_write_begin(s));
    eg_conn *c = s->w;
    int rc = 0;
    int64_t jobs[16];
    int n_jobs = 0, all_jobs = 1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const eg_item *it = &b[i];
        int is_step = it->kind == EG_ITEM_STEP;
        sqlite3_stmt *st = eg_conn_stmt(c, is_step ? eg_sql_step_insert : eg_sql_eval_insert);
        if (!st) {
            rc = -1;
            break;
        }
        int brc = is_step ? eg_bind_step(st, it->job, &it->u.step, it->at)
                          : eg_bind_eval(st, it->job, it->u.eval.step, &it->u.eval.ev);
        if (brc != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
            rc = eg_conn_fail(c, is_step ? "logging a step" : "logging an evaluation");
        sqlite3_reset(st);
        if (!is_step) continue;
        int seen = 0;
        for (int j = 0; j < n_jobs && !seen; j++) seen = jobs[j] == it->job;
        if (seen) continue;
        if (n_jobs < (int)(sizeof jobs / sizeof jobs[0])) jobs[n_jobs++] = it->job;
        else all_jobs = 0;
    }
    /* steps_done follows the rows; with more jobs than the list holds,
     * every job in the batch is updated row by row instead. */
    for (size_t i = 0; i < (all_jobs ? (size_t)n_jobs : n) && rc == 0; i++) {
        int64_t job;
        if (all_jobs) job = jobs[i];
        else if (b[i].kind == EG_ITEM_STEP) job = b[i].job;
        else continue;
        sqlite3_stmt *st = eg_conn_stmt(c, SQL_STEPS_DONE);
        if (!st) {
            rc = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, job);
        if (sqlite3_step(st) != SQLITE_DONE) rc = eg_conn_fail(c, "updating steps_done");
        sqlite3_reset(st);
    }
    return eg_write_end(s, rc);
}

static void deadline_in(struct timespec *t, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_nsec += (ms % 1000) * 1000000L;
    t->tv_sec += ms / 1000 + t->tv_nsec / 1000000000L;
    t->tv_nsec %= 1000000000L;
}

static void *writer_main(void *arg)
{
    eg_store *s = arg;
    pthread_setname_np(pthread_self(), "eg-store");
    pthread_mutex_lock(&s->qlock);
    for (;;) {
        while (s->qlen == 0 && !s->stopping) pthread_cond_wait(&s->qwake, &s->qlock);
        if (s->qlen == 0) break; /* stopping, and everything is written */
        /* Let a batch gather, unless it is full or someone waits. */
        struct timespec until;
        deadline_in(&until, BATCH_DELAY_MS);
        while (s->qlen < BATCH_MAX && !s->stopping && s->flushers == 0)
            if (pthread_cond_timedwait(&s->qwake, &s->qlock, &until) == ETIMEDOUT) break;
        size_t n = s->qlen < BATCH_MAX ? s->qlen : BATCH_MAX;
        for (size_t i = 0; i < n; i++) s->batch[i] = s->q[(s->qhead + i) % s->qcap];
        s->qhead = (s->qhead + n) % s->qcap;
        s->qlen -= n;
        pthread_mutex_unlock(&s->qlock);

        int rc = -1;
        for (int tries = 0; tries < COMMIT_TRIES && rc != 0; tries++) {
            if (tries > 0) nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
            rc = commit_batch(s, s->batch, n);
            /* A full disk: the rows are lost, and their jobs must end. */
            if (rc != 0 && eg_store_failed_full()) {
                eg_reserve_release(s);
                break;
            }
        }
        if (rc != 0) EG_LOG(ERROR, "store: %zu rows lost: %s", n, eg_last_error());

        pthread_mutex_lock(&s->qlock);
        s->handled += n;
        if (rc != 0) {
            s->failed_from = s->handled - n;
            s->failed_upto = s->handled;
            snprintf(s->failed_msg, sizeof s->failed_msg, "%s", eg_last_error());
        }
        pthread_cond_broadcast(&s->qdone);
    }
    pthread_cond_broadcast(&s->qdone);
    pthread_mutex_unlock(&s->qlock);
    return NULL;
}

int eg_writer_start(eg_store *s)
{
    s->q = malloc(QUEUE_START * sizeof *s->q);
    s->batch = malloc(BATCH_MAX * sizeof *s->batch);
    if (!s->q || !s->batch) return eg_errorf("store: out of memory");
    s->qcap = QUEUE_START;
    int rc = pthread_create(&s->writer, NULL, writer_main, s);
    if (rc != 0) return eg_errorf("store: cannot start the writer thread: %s", strerror(rc));
    s->writer_started = 1;
    return 0;
}

void eg_writer_stop(eg_store *s)
{
    if (!s->writer_started) return;
    pthread_mutex_lock(&s->qlock);
    s->stopping = 1;
    pthread_cond_signal(&s->qwake);
    pthread_mutex_unlock(&s->qlock);
    pthread_join(s->writer, NULL);
    s->writer_started = 0;
}

/* Appends a copy of *it to the queue, growing it up to QUEUE_MAX rows. */
static int enqueue(eg_store *s, const eg_item *it)
{
    pthread_mutex_lock(&s->qlock);
    int rc = 0;
    if (s->stopping) {
        rc = eg_errorf("store: closing, no more writes");
        goto out;
    }
    if (s->full) {
        eg_store_note_failure(1);
        rc = eg_errorf("store: the disk holding %s is full: the step log cannot grow (%s)",
                       s->path, s->failed_msg[0] ? s->failed_msg : "no space");
        goto out;
    }
    if (s->qlen == s->qcap) {
        eg_item *q = s->qcap < QUEUE_MAX ? malloc(2 * s->qcap * sizeof *q) : NULL;
        if (!q) {
            rc = eg_errorf("store: write queue full (%zu rows): the database is not "
                           "keeping up", s->qlen);
            goto out;
        }
        for (size_t i = 0; i < s->qlen; i++) q[i] = s->q[(s->qhead + i) % s->qcap];
        free(s->q);
        s->q = q;
        s->qcap *= 2;
        s->qhead = 0;
    }
    s->q[(s->qhead + s->qlen) % s->qcap] = *it;
    s->qlen++;
    s->enqueued++;
    if (s->qlen == 1 || s->qlen >= BATCH_MAX) pthread_cond_signal(&s->qwake);
out:
    pthread_mutex_unlock(&s->qlock);
    return rc;
}

int eg_store_step_append(eg_store *s, int64_t job, const eg_step_record *r)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    eg_item it = {.kind = EG_ITEM_STEP, .job = job, .at = now.tv_sec + now.tv_nsec / 1e9};
    it.u.step = *r;
    return enqueue(s, &it);
}

int eg_store_eval_append(eg_store *s, int64_t job, long step, const eg_eval *ev)
{
    eg_item it = {.kind = EG_ITEM_EVAL, .job = job};
    it.u.eval.step = step;
    it.u.eval.ev = *ev;
    return enqueue(s, &it);
}

int eg_store_flush(eg_store *s)
{
    pthread_mutex_lock(&s->qlock);
    uint64_t target = s->enqueued, start = s->handled;
    s->flushers++;
    pthread_cond_signal(&s->qwake);
    /* The writer only ends once the queue is empty, so this ends. */
    while (s->handled < target) pthread_cond_wait(&s->qdone, &s->qlock);
    s->flushers--;
    int rc = 0;
    if (s->failed_from < target && s->failed_upto > start)
        rc = eg_errorf("store: queued rows were lost: %s", s->failed_msg);
    pthread_mutex_unlock(&s->qlock);
    return rc;
}
