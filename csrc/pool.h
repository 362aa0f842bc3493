// Max pooling of channels-last float32 feature maps: the pooling layers of the FID Inception's
// inference fast path (python/fastperc/models/_base.py, max_pool2d). The spec is
// torch.nn.functional.max_pool2d (ceil_mode=False, dilation 1; a NaN in a window gives NaN),
// optionally followed by a ReLU, which commutes with the max. Parameters arrive validated
// (pool_bindings.cpp); nothing here touches Python.
#pragma once

#include <cstdint>

#include "common.h"

namespace fastperc {
namespace pool {

struct MaxPoolParams {
  // [N, C, H, W] float32 views whose channels are contiguous (stride[1] == 1), as the memory of
  // a channels_last tensor; dst is [N, C, Ho, Wo] with Ho = (H + 2 pad - k) / stride + 1 (and
  // the same for W), writeable and not overlapping src.
  Tensor4 src, dst;
  int64_t k = 3, stride = 2, pad = 0;  // k >= 1, stride >= 1, 0 <= pad <= k / 2
  bool relu = false;                   // max(x, 0) of each result; NaN stays NaN
};

void max_pool(const MaxPoolParams& p);

}  // namespace pool
}  // namespace fastperc
