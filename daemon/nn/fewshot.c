#include "fewshot.h"

#include "util/err.h"

static int check(const char *what, int n_way, int shot, int query, int d)
{
    if (n_way < 1 || shot < 1 || query < 1 || d < 1)
        return eg_errorf("fewshot: %s of %d-way %d-shot %d-query episodes of width %d", what, n_way,
                         shot, query, d);
    return 0;
}

int eg_fewshot_protos(eg_backend *be, int n_way, int shot, int query, int d, const float *feats,
                      float *protos)
{
    EG_TRY(check("prototypes", n_way, shot, query, d));
    size_t row = (size_t)d, per = (size_t)(shot + query) * row;
    eg_blocks bs = {
        .n0 = n_way, .n1 = 1, .reps = shot, .len = d, .xs0 = per, .xsr = row, .ys0 = row};
    return be->block_sum(be, &bs, 1.0f / (float)shot, feats, protos, 0);
}

int eg_fewshot_protos_bwd(eg_backend *be, int n_way, int shot, int query, int d,
                          const float *dprotos, float *dfeats)
{
    EG_TRY(check("prototype gradients", n_way, shot, query, d));
    size_t row = (size_t)d, per = (size_t)(shot + query) * row;
    eg_blocks bs = {
        .n0 = n_way, .n1 = shot, .reps = 1, .len = d, .xs0 = row, .ys0 = per, .ys1 = row};
    return be->block_sum(be, &bs, 1.0f / (float)shot, dprotos, dfeats, 1);
}

int eg_fewshot_pairs(eg_backend *be, int n_way, int shot, int query, int c, int hw,
                     const float *protos, const float *feats, float *pairs)
{
    EG_TRY(check("relation pairs", n_way, shot, query, c * hw));
    size_t row = (size_t)c * hw, pair = 2 * row, per = (size_t)(shot + query) * row;
    int nq = n_way * query;
    // pairs[q, j, 0:row] = protos[j]
    eg_blocks bp = {.n0 = nq,
                    .n1 = n_way,
                    .reps = 1,
                    .len = (int)row,
                    .xs1 = row,
                    .ys0 = n_way * pair,
                    .ys1 = pair};
    EG_TRY(be->block_sum(be, &bp, 1.0f, protos, pairs, 0));
    // pairs[q, j, row:2 row] = feats[class, shot + i], one class at a time
    for (int cls = 0; cls < n_way; cls++) {
        eg_blocks bq = {.n0 = query,
                        .n1 = n_way,
                        .reps = 1,
                        .len = (int)row,
                        .xs0 = row,
                        .ys0 = n_way * pair,
                        .ys1 = pair};
        const float *x = feats + cls * per + shot * row;
        float *y = pairs + (size_t)cls * query * n_way * pair + row;
        EG_TRY(be->block_sum(be, &bq, 1.0f, x, y, 0));
    }
    return 0;
}

int eg_fewshot_pairs_bwd(eg_backend *be, int n_way, int shot, int query, int c, int hw,
                         const float *dpairs, float *dprotos, float *dfeats)
{
    EG_TRY(check("relation pair gradients", n_way, shot, query, c * hw));
    size_t row = (size_t)c * hw, pair = 2 * row, per = (size_t)(shot + query) * row;
    int nq = n_way * query;
    // dprotos[j] = sum over q of dpairs[q, j, 0:row]
    eg_blocks bp = {.n0 = n_way,
                    .n1 = 1,
                    .reps = nq,
                    .len = (int)row,
                    .xs0 = pair,
                    .xsr = n_way * pair,
                    .ys0 = row};
    EG_TRY(be->block_sum(be, &bp, 1.0f, dpairs, dprotos, 0));
    // dfeats[class, shot + i] = sum over j of dpairs[q, j, row:2 row]
    for (int cls = 0; cls < n_way; cls++) {
        eg_blocks bq = {.n0 = query,
                        .n1 = 1,
                        .reps = n_way,
                        .len = (int)row,
                        .xs0 = n_way * pair,
                        .xsr = pair,
                        .ys0 = row};
        const float *x = dpairs + (size_t)cls * query * n_way * pair + row;
        float *y = dfeats + cls * per + shot * row;
        EG_TRY(be->block_sum(be, &bq, 1.0f, x, y, 0));
    }
    return 0;
}

int eg_fewshot_sqdist(eg_backend *be, int n_way, int shot, int query, int d, const float *feats,
                      const float *protos, float *scores)
{
    EG_TRY(check("prototype distances", n_way, shot, query, d));
    return be->sqdist_fwd(be, n_way * query, n_way, d, feats + (size_t)shot * d, query,
                          shot + query, protos, scores);
}

int eg_fewshot_sqdist_bwd(eg_backend *be, int n_way, int shot, int query, int d, const float *feats,
                          const float *protos, const float *dscores, float *dprotos, float *dfeats)
{
    EG_TRY(check("prototype distance gradients", n_way, shot, query, d));
    return be->sqdist_bwd(be, n_way * query, n_way, d, feats + (size_t)shot * d, query,
                          shot + query, protos, dscores, dfeats + (size_t)shot * d, dprotos, 0);
}
