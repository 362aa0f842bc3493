// Full-reference metric kernels (CPU): fused SSIM statistics, squared-error sums for PSNR,
// MS-SSIM's 2x2 average pooling, per-pixel CIEDE2000. Parameters arrive validated (see
// metrics_bindings.cpp); these functions only compute and may run without the GIL. The spec is
// python/fastperc/reference/metrics.py.
#pragma once

#include <cstdint>

#include "common.h"

namespace fastperc {
namespace metrics {

// How the compared planes are read from an [N, C, H, W] image: every channel as it is, or one
// luma plane off + w[0] R + w[1] G + w[2] B of a 3-channel image (computed on load).
struct PlaneMix {
  bool luma = false;
  double w[3] = {0.0, 0.0, 0.0};
  double off = 0.0;
};

// Mean SSIM and mean contrast-structure of every compared plane of a and b (same shape and
// dtype). out: [N * P * 2] doubles (P = C, or 1 with mix.luma), (ssim, cs) per plane.
// Valid mode: separable valid filtering with win (11 taps), maps (H - 10) x (W - 10).
// Reflect mode (torchmetrics): both images reflect-padded by 5, variances clamped at 0, the SSIM
// map averaged over H x W, the cs map over the interior (H - 10) x (W - 10) (want_cs needs
// H, W > 10). Computed in float32 (float64 for f64); sums in float64. One pass per row band:
// horizontal filtering into an 11-row ring buffer, vertical filtering, SSIM terms, sums; the
// filtered maps are never stored whole.
struct SsimParams {
  Tensor4 a, b;
  double* out = nullptr;
  PlaneMix mix;
  double win[11] = {};
  double c1 = 0.0, c2 = 0.0;
  bool reflect = false;
  bool want_cs = true;
};
// Returns 0, or 1 when scratch memory could not be allocated (out is then unspecified).
int ssim_sums(const SsimParams& p);

// Sum over each image of the squared differences of the compared planes (float64).
// out: [N] doubles.
struct SqErrParams {
  Tensor4 a, b;
  double* out = nullptr;
  PlaneMix mix;
};
int sq_error_sums(const SqErrParams& p);

// 2x2 average pooling of the compared planes of src into dst ([N, P, H', W'], f32 or f64 as the
// compute type of src: f64 for f64, f32 otherwise). pad_odd (pytorch_msssim): an odd size is
// padded with one zero row/column on each side and the zeros count in the average,
// H' = H / 2 + H % 2; otherwise H' = H / 2 (floor, as avg_pool2d without padding).
struct PoolParams {
  Tensor4 src, dst;
  PlaneMix mix;
  bool pad_odd = true;
};
void avg_pool2(const PoolParams& p);

// Per-pixel CIEDE2000 (kL = kC = kH = 1) of two [N, 3, H, W] L*a*b* images into dst
// [N, 1, H, W]; f32 or f64, the same for all three; computed in float64.
struct DeltaEParams {
  Tensor4 a, b, dst;
};
void ciede2000(const DeltaEParams& p);

}  // namespace metrics
}  // namespace fastperc
