/* Few-shot episode operations (RelationNet and ProtoNet heads) over a
 * backbone's features, class-major: feats (n_way (shot + query), D), where
 * class j's rows are j (shot + query) + 0 .. shot - 1 (its support set)
 * and then its queries. Queries are numbered class-major, q = class query +
 * i. All pointers are device pointers of be; every function returns 0 or
 * -1 with eg_errorf. */
#ifndef EG_FEWSHOT_H
#define EG_FEWSHOT_H

#include "backend.h"

/* protos (n_way, d) = the mean of each class's support rows. */
int eg_fewshot_protos(eg_backend *be, int n_way, int shot, int query, int d, const float *feats,
                      float *protos);

/* Backward of eg_fewshot_protos: each class's support rows of dfeats += its
 * dprotos row / shot; query rows untouched. */
int eg_fewshot_protos_bwd(eg_backend *be, int n_way, int shot, int query, int d,
                          const float *dprotos, float *dfeats);

/* RelationNet pairs (n_way query n_way, 2c, hw): pair q n_way + j =
 * [protos_j ; query_q] stacked on channels; protos (n_way, c, hw), feats
 * (n_way (shot + query), c, hw). */
int eg_fewshot_pairs(eg_backend *be, int n_way, int shot, int query, int c, int hw,
                     const float *protos, const float *feats, float *pairs);

/* Backward of eg_fewshot_pairs from dpairs: dprotos (n_way, c, hw) is
 * overwritten; dfeats' query rows are overwritten, its support rows left
 * untouched. */
int eg_fewshot_pairs_bwd(eg_backend *be, int n_way, int shot, int query, int c, int hw,
                         const float *dpairs, float *dprotos, float *dfeats);

/* ProtoNet scores (n_way query, n_way) = -|query_q - protos_j|^2. */
int eg_fewshot_sqdist(eg_backend *be, int n_way, int shot, int query, int d, const float *feats,
                      const float *protos, float *scores);

/* Backward of eg_fewshot_sqdist from dscores: dprotos (n_way, d) is
 * overwritten; dfeats' query rows are overwritten, its support rows left
 * untouched. */
int eg_fewshot_sqdist_bwd(eg_backend *be, int n_way, int shot, int query, int d, const float *feats,
                          const float *protos, const float *dscores, float *dprotos, float *dfeats);

#endif
