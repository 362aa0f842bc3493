// Colour kernels (CPU). Parameters arrive already validated (see color_bindings.cpp); these
// functions only compute, and may be called without the GIL.
#pragma once

#include <cstdint>

#include "common.h"

namespace fastperc {
namespace color {

// out[i] = sum_j matrix[i][j] * (x[j] - shift[j]) + offset[i], i < k (1 or 3), for src
// [N, 3, H, W] and dst [N, k, H, W] of the same dtype.
// fixed_point (uint8 only, and required for it): integer coefficients at 2**16 scale, int32
// accumulation, arithmetic >> 16, clamp to 0..255 (libjpeg's jccolor.c/jdcolor.c arithmetic).
// Otherwise float32 arithmetic (float64 for f64) in the reference's order, no clamping.
struct AffineParams {
  Tensor4 src, dst;
  int k = 3;
  bool fixed_point = false;
  double matrix[9] = {};
  double shift[3] = {};
  double offset[3] = {};
};
void affine(const AffineParams& p);

enum class PointOp : int {
  SrgbToLinear = 0,
  LinearToSrgb = 1,
  RgbToXyz = 2,
  XyzToRgb = 3,
  RgbToLab = 4,
  LabToRgb = 5,
};

// out = out_scale * f(in_scale * x), f one of PointOp (see reference/color.py):
// the two transfer curves act on each channel (any channel count), the others on 3 channels.
// src dtype: u8 (dst f32) or a float dtype (dst the same). Computed in float64 for every dtype
// (rounded once on store); uint8 inputs go through a 256-entry table for the input stage.
struct PointwiseParams {
  PointOp op = PointOp::SrgbToLinear;
  Tensor4 src, dst;
  double matrix[9] = {};  // XYZ_FROM_RGB for rgb_to_*, RGB_FROM_XYZ for *_to_rgb
  double white[3] = {};   // reference white (Lab)
  double in_scale = 1.0;
  double out_scale = 1.0;
  bool encoded = true;  // sRGB-encoded RGB side (rgb_to_xyz, xyz_to_rgb; must be true for Lab)
  bool clip = false;    // clamp RGB to 0..1 before out_scale (xyz_to_rgb, lab_to_rgb only)
};
void pointwise(const PointwiseParams& p);

// Chroma planes [N, K, H, W] <-> [N, K, ceil(H / fv), ceil(W / fh)], (fh, fv) in
// {(2, 2), (2, 1), (1, 1)}; same dtype on both sides. libjpeg's jcsample.c / jdsample.c.
struct ChromaParams {
  Tensor4 src, dst;
  int fh = 2, fv = 2;
  bool fancy = true;  // upsampling only
};
void chroma_downsample(const ChromaParams& p);
void chroma_upsample(const ChromaParams& p);

}  // namespace color
}  // namespace fastperc
