// Separable image resampling with precomputed weight tables (Pillow's antialiased filters,
// PyTorch's bilinear, the legacy TensorFlow bilinear): the CPU kernel behind
// fastperc.resize. No pybind11 here; resize_bindings.cpp checks the arguments.
//
// out[n, c, y, x] = sum_i sum_j wy[y][i] * wx[x][j] * src[n, c, y_start[y] + i, x_start[x] + j]
//
// The tables come from python/fastperc/reference/resize.py (float64, the spec); every row has
// the same number of taps (zero-padded) and fits inside the image.
#pragma once

#include <cstdint>

#include "common.h"

namespace fastperc {
namespace resize {

struct ResizeParams {
  Tensor4 src;  // [N, C, H_in, W_in], any dtype
  Tensor4 dst;  // [N, C, H_out, W_out], f32 (f64 when src is f64)
  const int64_t* y_start = nullptr;  // [H_out], 0 <= y_start[y] <= H_in - ky
  const int64_t* x_start = nullptr;  // [W_out], 0 <= x_start[x] <= W_in - kx
  const double* y_weight = nullptr;  // [H_out * ky]
  const double* x_weight = nullptr;  // [W_out * kx]
  int64_t ky = 1, kx = 1;            // taps per output row / column
  bool clip = false;                 // clamp the result to [lo, hi] (NaN stays NaN)
  double lo = 0.0, hi = 0.0;
  double* scratch = nullptr;  // scratch_elems(p) elements
};

// Scratch (doubles) the kernel needs for the current OpenMP thread count.
int64_t scratch_elems(const ResizeParams& p);

// Fills p.dst. Assumes validated arguments (see resize_bindings.cpp); never throws.
void resample(const ResizeParams& p);

}  // namespace resize
}  // namespace fastperc
