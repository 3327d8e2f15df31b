/* The batching write queue (writeq.h). */
#include "store/writeq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_ops.h"
#include "util/err.h"
#include "util/log.h"

#define BATCH_DELAY_MS 50 /* the longest a row waits for company */
#define QUEUE_START 1024
#define QUEUE_MAX (1u << 17) /* rows queued before appends fail */

static void deadline_in(struct timespec *t, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_nsec += (ms % 1000) * 1000000L;
    t->tv_sec += ms / 1000 + t->tv_nsec / 1000000000L;
    t->tv_nsec %= 1000000000L;
}

static void *writer_main(void *arg)
{
    eg_writeq *q = arg;
    pthread_setname_np(pthread_self(), "eg-store");
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->len == 0 && !q->stopping) pthread_cond_wait(&q->wake, &q->lock);
        if (q->len == 0) break; /* stopping, and everything is written */
        /* Let a batch gather, unless it is full or someone waits. */
        struct timespec until;
        deadline_in(&until, BATCH_DELAY_MS);
        while (q->len < EG_WRITEQ_BATCH && !q->stopping && q->flushers == 0)
            if (pthread_cond_timedwait(&q->wake, &q->lock, &until) == ETIMEDOUT) break;
        size_t n = q->len < EG_WRITEQ_BATCH ? q->len : EG_WRITEQ_BATCH;
        for (size_t i = 0; i < n; i++) q->batch[i] = q->q[(q->head + i) % q->cap];
        q->head = (q->head + n) % q->cap;
        q->len -= n;
        pthread_mutex_unlock(&q->lock);

        int rc = -1;
        for (int tries = 0; tries < q->tries && rc != 0; tries++) {
            if (tries > 0)
                nanosleep(&(struct timespec){q->retry_ms / 1000, (q->retry_ms % 1000) * 1000000L},
                          NULL);
            rc = q->commit(q->ctx, q->batch, n);
            /* A full disk: the rows are lost, and their jobs must end. */
            if (rc != 0 && eg_store_failed_full()) {
                if (q->on_full) q->on_full(q->ctx);
                break;
            }
            if (rc != 0 && tries == 0)
                EG_LOG(WARN, "store: committing %zu rows: %s (trying again)", n, eg_last_error());
        }
        if (rc != 0) EG_LOG(ERROR, "store: %zu rows lost: %s", n, eg_last_error());

        pthread_mutex_lock(&q->lock);
        q->handled += n;
        if (rc != 0) {
            q->failed_from = q->handled - n;
            q->failed_upto = q->handled;
            snprintf(q->failed_msg, sizeof q->failed_msg, "%s", eg_last_error());
        }
        pthread_cond_broadcast(&q->done);
    }
    pthread_cond_broadcast(&q->done);
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int eg_writeq_start(eg_writeq *q)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&q->done, NULL);
    q->q = malloc(QUEUE_START * sizeof *q->q);
    q->batch = malloc(EG_WRITEQ_BATCH * sizeof *q->batch);
    if (!q->q || !q->batch) return eg_errorf("store: out of memory");
    q->cap = QUEUE_START;
    if (q->tries < 1) q->tries = 1;
    int rc = pthread_create(&q->thread, NULL, writer_main, q);
    if (rc != 0) return eg_errorf("store: cannot start the writer thread: %s", strerror(rc));
    q->started = 1;
    return 0;
}

void eg_writeq_stop(eg_writeq *q)
{
    if (q->started) {
        pthread_mutex_lock(&q->lock);
        q->stopping = 1;
        pthread_cond_signal(&q->wake);
        pthread_mutex_unlock(&q->lock);
        pthread_join(q->thread, NULL);
        q->started = 0;
    }
    if (!q->q && !q->batch) return;
    free(q->q);
    free(q->batch);
    q->q = q->batch = NULL;
    pthread_cond_destroy(&q->done);
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
}

int eg_writeq_push(eg_writeq *q, const eg_item *it)
{
    pthread_mutex_lock(&q->lock);
    int rc = 0;
    if (q->stopping) {
        rc = eg_errorf("store: closing, no more writes");
        goto out;
    }
    if (q->full) {
        eg_store_note_failure(1);
        rc = eg_errorf("store: the disk holding %s is full: the step log cannot grow (%s)", q->name,
                       q->failed_msg[0] ? q->failed_msg : "no space");
        goto out;
    }
    if (q->len == q->cap) {
        eg_item *n = q->cap < QUEUE_MAX ? malloc(2 * q->cap * sizeof *n) : NULL;
        if (!n) {
            rc = eg_errorf("store: write queue full (%zu rows): the database is not "
                           "keeping up",
                           q->len);
            goto out;
        }
        for (size_t i = 0; i < q->len; i++) n[i] = q->q[(q->head + i) % q->cap];
        free(q->q);
        q->q = n;
        q->cap *= 2;
        q->head = 0;
    }
    q->q[(q->head + q->len) % q->cap] = *it;
    q->len++;
    q->enqueued++;
    if (q->len == 1 || q->len >= EG_WRITEQ_BATCH) pthread_cond_signal(&q->wake);
out:
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int eg_writeq_step(eg_writeq *q, int64_t job, int attempt, const eg_step_record *r)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    eg_item it = {
        .kind = EG_ITEM_STEP, .job = job, .attempt = attempt, .at = now.tv_sec + now.tv_nsec / 1e9};
    it.u.step = *r;
    return eg_writeq_push(q, &it);
}

int eg_writeq_eval(eg_writeq *q, int64_t job, int attempt, long step, const eg_eval *ev)
{
    eg_item it = {.kind = EG_ITEM_EVAL, .job = job, .attempt = attempt};
    it.u.eval.step = step;
    it.u.eval.ev = *ev;
    return eg_writeq_push(q, &it);
}

int eg_writeq_flush(eg_writeq *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t target = q->enqueued, start = q->handled;
    q->flushers++;
    pthread_cond_signal(&q->wake);
    /* The thread only ends once the queue is empty, so this ends. */
    while (q->handled < target) pthread_cond_wait(&q->done, &q->lock);
    q->flushers--;
    int rc = 0;
    if (q->failed_from < target && q->failed_upto > start)
        rc = eg_errorf("store: queued rows were lost: %s", q->failed_msg);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int eg_writeq_set_full(eg_writeq *q, int full)
{
    pthread_mutex_lock(&q->lock);
    int was = q->full;
    q->full = full;
    pthread_mutex_unlock(&q->lock);
    return was;
}

int eg_writeq_is_full(eg_writeq *q)
{
    pthread_mutex_lock(&q->lock);
    int full = q->full;
    pthread_mutex_unlock(&q->lock);
    return full;
}
