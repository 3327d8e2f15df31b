/* The queue of step and evaluation rows both stores write in batches: a
 * job logging thousands of steps a second costs one transaction per batch
 * (up to EG_WRITEQ_BATCH rows, or what arrived within 50 ms), committed
 * by the queue's own thread through the store's commit function. */
#ifndef EG_STORE_WRITEQ_H
#define EG_STORE_WRITEQ_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "meta/loop.h"
#include "meta/task.h"

#define EG_WRITEQ_BATCH 1000

/* A queued write. */
typedef enum { EG_ITEM_STEP, EG_ITEM_EVAL } eg_item_kind;

typedef struct eg_item {
    eg_item_kind kind;
    int64_t job;
    int attempt;
    double at; /* when it was queued: Unix time, seconds */
    union {
        eg_step_record step;
        struct {
            long step;
            eg_eval ev;
        } eval;
    } u;
} eg_item;

typedef struct eg_writeq {
    /* Set by the store before eg_writeq_start. */
    const char *name; /* the database, for messages */
    /* Writes the rows b[0..n) in one transaction: 0 or -1 after eg_errorf. */
    int (*commit)(void *ctx, const eg_item *b, size_t n);
    /* Called when a commit failed for a full disk (NULL: none). */
    void (*on_full)(void *ctx);
    void *ctx;
    int tries;     /* commits of one batch before its rows are lost */
    long retry_ms; /* the wait between them */

    pthread_mutex_t lock;
    pthread_cond_t wake; /* to the thread: work, a flush or the stop */
    pthread_cond_t done; /* from the thread: a batch was handled */
    eg_item *q;          /* a ring of len items from head */
    size_t cap, head, len;
    uint64_t enqueued;                 /* items ever queued */
    uint64_t handled;                  /* items ever taken and committed (or lost) */
    uint64_t failed_from, failed_upto; /* items (from, upto] were in the last
                                          batch that failed */
    char failed_msg[256];
    int flushers; /* threads waiting in eg_writeq_flush */
    int stopping, started;
    int full; /* the disk is full: appends are refused */
    pthread_t thread;
    eg_item *batch; /* the thread's copy of the batch in hand */
} eg_writeq;

/* Starts the thread (named eg-store). */
int eg_writeq_start(eg_writeq *q);

/* Commits what is queued, stops the thread and frees the queue. */
void eg_writeq_stop(eg_writeq *q);

/* Appends a copy of *it (refused while full or stopping, or when the
 * queue holds its most rows). */
int eg_writeq_push(eg_writeq *q, const eg_item *it);

/* Pushes a step row / an evaluation of a job's attempt (a step's time
 * is now). */
int eg_writeq_step(eg_writeq *q, int64_t job, int attempt, const eg_step_record *r);
int eg_writeq_eval(eg_writeq *q, int64_t job, int attempt, long step, const eg_eval *ev);

/* Blocks until every item queued before the call is handled; -1 when some
 * of them were lost (eg_errorf says why). */
int eg_writeq_flush(eg_writeq *q);

/* Marks the queue full (returns whether it was already) or not full. */
int eg_writeq_set_full(eg_writeq *q, int full);
int eg_writeq_is_full(eg_writeq *q);

#endif
