#include "net_replay.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"

/* Recorded passes kept per net; the least recently used makes room. */
#define MAX_UNITS 16

struct eg_net_unit {
    eg_pass_key key;
    int eager_runs;          /* runs before recording */
    int failed;              /* cannot be recorded: always eager */
    void *unit;              /* the backend's recording, or NULL */
    unsigned long epoch;     /* be->capture_epoch when recorded */
    unsigned long used;      /* last use, for eviction */
};

static int same_key(const eg_pass_key *a, const eg_pass_key *b)
{
    return a->backward == b->backward && a->batch == b->batch && a->mode == b->mode &&
           memcmp(a->p, b->p, sizeof a->p) == 0;
}

/* The slot of key, made (or taken from the least recently used) when
 * missing; NULL when the table cannot be allocated. */
static struct eg_net_unit *unit_for(eg_net *net, const eg_pass_key *key)
{
    if (!net->units && !(net->units = calloc(MAX_UNITS, sizeof *net->units))) return NULL;
    struct eg_net_unit *u = NULL;
    for (int i = 0; i < net->n_units; i++)
        if (same_key(&net->units[i].key, key)) u = &net->units[i];
    if (!u) {
        if (net->n_units < MAX_UNITS) {
            u = &net->units[net->n_units++];
        } else {
            u = &net->units[0];
            for (int i = 1; i < MAX_UNITS; i++)
                if (net->units[i].used < u->used) u = &net->units[i];
            if (u->unit) net->be->unit_free(net->be, u->unit);
        }
        *u = (struct eg_net_unit){.key = *key};
    }
    u->used = ++net->unit_clock;
    return u;
}

int eg_net_run_pass(eg_net *net, const eg_pass_key *key, eg_pass_fn fn, const void *args)
{
    eg_backend *be = net->be;
    if (!be->capture_begin) return fn(net, args);
    struct eg_net_unit *u = unit_for(net, key);
    if (!u) {
        be->passes.eager++;
        return fn(net, args);
    }
    if (u->unit && u->epoch != be->capture_epoch) { /* the workspace moved */
        be->unit_free(be, u->unit);
        u->unit = NULL;
        u->eager_runs = 0;
    }
    if (u->unit) {
        be->passes.replayed++;
        return be->replay(be, u->unit);
    }
    if (u->failed || u->eager_runs++ < 1) {
        be->passes.eager++;
        return fn(net, args);
    }
    unsigned long epoch = be->capture_epoch;
    if (be->capture_begin(be) == 0) {
        int rc = fn(net, args);
        void *unit = NULL;
        int ended = be->capture_end(be, &unit);
        if (rc == 0 && ended == 0 && unit && be->capture_epoch == epoch) {
            u->unit = unit;
            u->epoch = epoch;
            be->passes.recorded++;
            return be->replay(be, unit);
        }
        if (unit) be->unit_free(be, unit);
    }
    u->failed = 1;
    be->passes.failed++;
    be->passes.eager++;
    EG_LOG(WARN, "net: a %s pass at batch %d could not be recorded (%s); it runs eagerly",
           key->backward ? "backward" : "forward", key->batch, eg_last_error());
    eg_clear_error();
    return fn(net, args);
}

void eg_net_units_free(eg_net *net)
{
    for (int i = 0; i < net->n_units; i++)
        if (net->units[i].unit) net->be->unit_free(net->be, net->units[i].unit);
    free(net->units);
    net->units = NULL;
    net->n_units = 0;
}
