// Centring of feature blocks for the streaming covariance (python/fastperc/stats.py,
// FeatureStats._add_block): z = x - shift and the float64 column sums of z, in one pass over
// the block instead of three (mean, subtraction, sums). Parameters arrive validated
// (moments_bindings.cpp); nothing here touches Python.
#pragma once

#include <cstdint>

#include "common.h"

namespace fastperc {
namespace moments {

struct CenterParams {
  // [1, 1, N, D] views of one dtype (F32 or F64) with contiguous rows (stride[3] == 1); dst is
  // writeable and does not overlap src.
  Tensor4 src, dst;
  const double* shift = nullptr;  // [D], rounded to the dtype before the subtraction
  double* colsum = nullptr;       // [D]: sum over rows of dst, in float64
};

// Rows are summed in fixed chunks of kChunkRows, the chunks' sums added in order: the result
// does not depend on the number of threads.
constexpr int64_t kChunkRows = 256;

void center_columns(const CenterParams& p);

struct ScatterParams {
  // m2: [1, 1, D, D] float64, writeable; g: [1, 1, D, D] float32 or float64; both with
  // contiguous rows (stride[3] == 1), not overlapping.
  Tensor4 m2, g;
  const double* u = nullptr;  // [K, D] rows of rank-one terms
  const double* w = nullptr;  // [K] their weights
  int64_t k = 0;
};

// m2 += g + sum_k w[k] u[k] u[k]^T, in one pass over m2 (the block's Gram matrix and the
// Chan-merge corrections of FeatureStats, which would otherwise take K + 1 passes).
void accumulate_scatter(const ScatterParams& p);

}  // namespace moments
}  // namespace fastperc
