/* Recorded network passes: on a backend that records work (CUDA graphs), a
 * forward or backward pass that recurs with the same pointers and sizes is
 * replayed as one unit instead of being issued layer by layer. Used by
 * net.c only. */
#ifndef EG_NET_REPLAY_H
#define EG_NET_REPLAY_H

#include "net.h"

/* What makes two passes the same: direction, batch, mode and the pointers
 * the pass reads and writes outside the net. */
typedef struct eg_pass_key {
    int backward, batch, mode;
    const void *p[8];
} eg_pass_key;

/* Issues the pass's operations; args is the caller's. */
typedef int (*eg_pass_fn)(eg_net *net, const void *args);

/* Runs fn(net, args): eagerly the first time a key is seen (cuDNN picks
 * its algorithms, workspaces grow), recorded the second time, replayed
 * from then on. A pass that cannot be recorded runs eagerly for good. fn
 * must keep all host-side state it sets out of the replayed part (callers
 * set it before). */
int eg_net_run_pass(eg_net *net, const eg_pass_key *key, eg_pass_fn fn, const void *args);

/* Frees the recorded units of net. */
void eg_net_units_free(eg_net *net);

#endif
