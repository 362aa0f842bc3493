// JPEG round trip of image batches on the CPU (the kernel behind `jpeg_simulate(...,
// backend="cpp")`). The spec is python/fastperc/reference/jpeg.py: simulate_exact,
// simulate_float and simulate_differentiable, with the input and output conversions of
// python/fastperc/jpeg.py. Parameters arrive validated (jpeg_sim_bindings.cpp); nothing here
// touches Python, and the kernel may run without the GIL.
#pragma once

#include <cstdint>

#include "common.h"

namespace fastperc {
namespace jpeg_sim {

enum class Mode : int {
  Exact = 0,           // libjpeg-turbo's integer pipeline (bit-exact)
  Float = 1,           // float colour and DCTs, rounded where libjpeg rounds
  Differentiable = 2,  // the smooth pipeline's forward values
};

enum class Rounding : int {
  Nearest = 0,  // half away from zero (exact, float; also the forward values of Ste)
  Ste = 1,      // differentiable: the forward values of the straight-through estimator
  Cubic = 2,    // differentiable: round(x) + (x - round(x))^3
};

struct SimParams {
  // [N, C, H, W], C = 1 (greyscale JPEG) or 3 (RGB coded as YCbCr), H, W >= 1; dst has src's
  // shape and dtype, is writeable, free of self-overlap and does not overlap src.
  Tensor4 src, dst;
  Mode mode = Mode::Exact;
  Rounding rounding = Rounding::Nearest;
  int fh = 2, fv = 2;  // chroma sampling: (1, 1) 4:4:4, (2, 1) 4:2:2, (2, 2) 4:2:0; C = 1: unused
  // Quantization table of each component (Y, Cb, Cr), natural order: positive and finite;
  // integers in 1..8191 for Mode::Exact.
  double tables[3][64] = {};
  // Float images hold 0..value_range (> 0, finite); 255 for uint8.
  double value_range = 255.0;
};

// Runs the round trip over the batch with OpenMP threads. Returns false (dst partly written)
// only when scratch memory could not be allocated.
bool simulate(const SimParams& p);

// OpenMP thread count used by the extension's parallel regions (1 without OpenMP).
int get_num_threads();
void set_num_threads(int n);

}  // namespace jpeg_sim
}  // namespace fastperc
