// Colour kernels: affine conversions (YCbCr, gray), transfer curves / XYZ / Lab, and libjpeg's
// chroma down/upsampling. The spec is python/fastperc/reference/color.py.
//
// Structure of every op:
//   op()                 plain function: picks the memory layout, splits rows over threads
//   *_rows_entry()       FASTPERC_CLONES (AVX2 + baseline): switches over dtype/layout/mode
//   templated row code   FASTPERC_INLINE, so each clone compiles it for its own target
// The W loops are written so GCC vectorizes them: unit strides known at compile time in the
// planar (NCHW) case, constant interleave factors in the packed NHWC case, __restrict pointers.
#include "color.h"

#include "common.h"

#if defined(__GNUC__) || defined(__clang__)
#define FASTPERC_LAMBDA_INLINE __attribute__((always_inline))
#else
#define FASTPERC_LAMBDA_INLINE
#endif

namespace fastperc {
namespace color {
namespace {

// ---------------------------------------------------------------------------------------------
// Pixel maps: f(const TS in[CI], TD out[CO]) applied to every pixel of a range of rows
// ---------------------------------------------------------------------------------------------

enum Layout : int {
  kPlanar = 0,       // W stride 1 on both sides (NCHW contiguous rows)
  kInterleaved = 1,  // packed pixels on both sides: W stride = channels, channel stride 1 (NHWC)
  kGeneric = 2,      // anything else
};

inline bool w_stride_is(const Tensor4& t, int64_t s) { return t.shape[3] <= 1 || t.stride[3] == s; }
inline bool c_stride_is(const Tensor4& t, int64_t s) { return t.shape[1] <= 1 || t.stride[1] == s; }

int pick_layout(const Tensor4& s, const Tensor4& d) {
  const int64_t ci = s.shape[1], co = d.shape[1];
  if (w_stride_is(s, 1) && w_stride_is(d, 1)) return kPlanar;
  if (ci <= 3 && co <= 3 && w_stride_is(s, ci) && c_stride_is(s, 1) && w_stride_is(d, co) &&
      c_stride_is(d, 1))
    return kInterleaved;
  return kGeneric;
}

// Planar / generic: one pointer per channel; W strides SW, DW (0: run-time value).
template <class TS, class TD, int CI, int CO, int64_t SW, int64_t DW, class F>
FASTPERC_INLINE void map_row_planes(const TS* FASTPERC_RESTRICT i0, const TS* FASTPERC_RESTRICT i1,
                                    const TS* FASTPERC_RESTRICT i2, TD* FASTPERC_RESTRICT o0,
                                    TD* FASTPERC_RESTRICT o1, TD* FASTPERC_RESTRICT o2, int64_t w,
                                    Step<SW> sw, Step<DW> dw, const F& f) {
  for (int64_t x = 0; x < w; ++x) {
    TS v[3] = {};
    v[0] = i0[x * sw.get()];
    if constexpr (CI > 1) v[1] = i1[x * sw.get()];
    if constexpr (CI > 2) v[2] = i2[x * sw.get()];
    TD o[3] = {};
    f(v, o);
    o0[x * dw.get()] = o[0];
    if constexpr (CO > 1) o1[x * dw.get()] = o[1];
    if constexpr (CO > 2) o2[x * dw.get()] = o[2];
  }
}

// Packed pixels: one pointer per side and constant interleave factors, which GCC vectorizes
// with permutes for 16/32/64-bit elements (8-bit groups of 3 stay scalar).
template <class TS, class TD, int CI, int CO, class F>
FASTPERC_INLINE void map_row_interleaved(const TS* FASTPERC_RESTRICT in, TD* FASTPERC_RESTRICT out,
                                         int64_t w, const F& f) {
  for (int64_t x = 0; x < w; ++x) {
    TS v[3] = {};
    for (int c = 0; c < CI; ++c) v[c] = in[x * CI + c];
    TD o[3] = {};
    f(v, o);
    for (int c = 0; c < CO; ++c) out[x * CO + c] = o[c];
  }
}

// Rows are (n, y) pairs, row = n * H + y. (Gathering generic-stride rows into contiguous tiles
// first was measured slower: GCC vectorizes the strided loops by assembling vectors itself.)
template <class TS, class TD, int CI, int CO, int L, class F>
FASTPERC_INLINE void map_rows(const Tensor4& s, const Tensor4& d, int64_t r0, int64_t r1,
                              const F& f) {
  const int64_t h = s.shape[2], w = s.shape[3];
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / h, y = r - n * h;
    const TS* sp = s.ptr<const TS>(n, 0, y);
    TD* dp = d.ptr<TD>(n, 0, y);
    if constexpr (L == kInterleaved) {
      map_row_interleaved<TS, TD, CI, CO>(sp, dp, w, f);
    } else {
      const TS* i1 = CI > 1 ? sp + s.stride[1] : sp;
      const TS* i2 = CI > 2 ? sp + 2 * s.stride[1] : sp;
      TD* o1 = CO > 1 ? dp + d.stride[1] : nullptr;
      TD* o2 = CO > 2 ? dp + 2 * d.stride[1] : nullptr;
      if constexpr (L == kPlanar)
        map_row_planes<TS, TD, CI, CO, 1, 1>(sp, i1, i2, dp, o1, o2, w, Step<1>(1), Step<1>(1), f);
      else
        map_row_planes<TS, TD, CI, CO, 0, 0>(sp, i1, i2, dp, o1, o2, w, Step<0>(s.stride[3]),
                                             Step<0>(d.stride[3]), f);
    }
  }
}

// Rows are (n, c, y) triples, row = (n * C + c) * H + y; one channel in, one out.
template <class TS, class TD, bool Contig, class F>
FASTPERC_INLINE void map_rows_per_channel(const Tensor4& s, const Tensor4& d, int64_t r0,
                                          int64_t r1, const F& f) {
  const int64_t k = s.shape[1], h = s.shape[2], w = s.shape[3];
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t nc = r / h, y = r - nc * h;
    const int64_t n = nc / k, c = nc - n * k;
    const TS* sp = s.ptr<const TS>(n, c, y);
    TD* dp = d.ptr<TD>(n, c, y);
    if constexpr (Contig)
      map_row_planes<TS, TD, 1, 1, 1, 1>(sp, sp, sp, dp, nullptr, nullptr, w, Step<1>(1),
                                         Step<1>(1), f);
    else
      map_row_planes<TS, TD, 1, 1, 0, 0>(sp, sp, sp, dp, nullptr, nullptr, w,
                                         Step<0>(s.stride[3]), Step<0>(d.stride[3]), f);
  }
}

// ---------------------------------------------------------------------------------------------
// Affine
// ---------------------------------------------------------------------------------------------

// uint8, 16-bit fixed point: the input shift is folded into the offset (exact in integers; the
// bindings check that no intermediate can leave int32), then acc >> 16 (arithmetic: floor) and
// a clamp to 0..255. Plain int32 arithmetic (libjpeg's tables are just FIX(c) * x), so the
// planar loop vectorizes: vpmulld with AVX2, an emulated 32-bit multiply on baseline SSE2.
template <int K, int L>
FASTPERC_INLINE void affine_fixed_rows(const AffineParams& p, int64_t r0, int64_t r1) {
  int32_t m[9] = {}, o[3] = {};
  for (int i = 0; i < K; ++i) {
    int64_t off = static_cast<int64_t>(p.offset[i]);
    for (int j = 0; j < 3; ++j) {
      m[3 * i + j] = static_cast<int32_t>(p.matrix[3 * i + j]);
      off -= static_cast<int64_t>(p.matrix[3 * i + j]) * static_cast<int64_t>(p.shift[j]);
    }
    o[i] = static_cast<int32_t>(off);
  }
  const int32_t m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3], m4 = m[4], m5 = m[5], m6 = m[6],
                m7 = m[7], m8 = m[8], o0 = o[0], o1 = o[1], o2 = o[2];
  auto f = [=](const uint8_t* v, uint8_t* out) FASTPERC_LAMBDA_INLINE {
    const int32_t a = v[0], b = v[1], c = v[2];
    const int32_t y0 = (m0 * a + m1 * b + m2 * c + o0) >> 16;
    out[0] = static_cast<uint8_t>(std::min(std::max(y0, 0), 255));
    if constexpr (K > 1) {
      const int32_t y1 = (m3 * a + m4 * b + m5 * c + o1) >> 16;
      const int32_t y2 = (m6 * a + m7 * b + m8 * c + o2) >> 16;
      out[1] = static_cast<uint8_t>(std::min(std::max(y1, 0), 255));
      out[2] = static_cast<uint8_t>(std::min(std::max(y2, 0), 255));
    }
  };
  map_rows<uint8_t, uint8_t, 3, K, L>(p.src, p.dst, r0, r1, f);
}

// Floating: out[i] = ((m[i][0] (x0 - s0) + m[i][1] (x1 - s1)) + m[i][2] (x2 - s2)) + o[i], the
// reference's order of operations, in float32 (float64 for f64).
template <DType D, int K, int L>
FASTPERC_INLINE void affine_float_rows(const AffineParams& p, int64_t r0, int64_t r1) {
  using Tr = Traits<D>;
  using T = typename Tr::T;
  using C = typename Tr::C;
  const C m0 = C(p.matrix[0]), m1 = C(p.matrix[1]), m2 = C(p.matrix[2]), m3 = C(p.matrix[3]),
          m4 = C(p.matrix[4]), m5 = C(p.matrix[5]), m6 = C(p.matrix[6]), m7 = C(p.matrix[7]),
          m8 = C(p.matrix[8]);
  const C s0 = C(p.shift[0]), s1 = C(p.shift[1]), s2 = C(p.shift[2]);
  const C o0 = C(p.offset[0]), o1 = C(p.offset[1]), o2 = C(p.offset[2]);
  auto f = [=](const T* v, T* out) FASTPERC_LAMBDA_INLINE {
    const C a = Tr::load(v[0]) - s0, b = Tr::load(v[1]) - s1, c = Tr::load(v[2]) - s2;
    out[0] = Tr::store(((m0 * a + m1 * b) + m2 * c) + o0);
    if constexpr (K > 1) {
      out[1] = Tr::store(((m3 * a + m4 * b) + m5 * c) + o1);
      out[2] = Tr::store(((m6 * a + m7 * b) + m8 * c) + o2);
    }
  };
  map_rows<T, T, 3, K, L>(p.src, p.dst, r0, r1, f);
}

template <int K, int L>
FASTPERC_INLINE void affine_rows_kl(const AffineParams& p, int64_t r0, int64_t r1) {
  switch (p.src.dtype) {
    case DType::U8: affine_fixed_rows<K, L>(p, r0, r1); break;
    case DType::F16: affine_float_rows<DType::F16, K, L>(p, r0, r1); break;
    case DType::BF16: affine_float_rows<DType::BF16, K, L>(p, r0, r1); break;
    case DType::F32: affine_float_rows<DType::F32, K, L>(p, r0, r1); break;
    case DType::F64: affine_float_rows<DType::F64, K, L>(p, r0, r1); break;
  }
}

template <int L>
FASTPERC_INLINE void affine_rows_l(const AffineParams& p, int64_t r0, int64_t r1) {
  if (p.k == 3)
    affine_rows_kl<3, L>(p, r0, r1);
  else
    affine_rows_kl<1, L>(p, r0, r1);
}

FASTPERC_CLONES void affine_rows_entry(const AffineParams& p, int layout, int64_t r0, int64_t r1) {
  switch (layout) {
    case kPlanar: affine_rows_l<kPlanar>(p, r0, r1); break;
    case kInterleaved: affine_rows_l<kInterleaved>(p, r0, r1); break;
    default: affine_rows_l<kGeneric>(p, r0, r1); break;
  }
}

// ---------------------------------------------------------------------------------------------
// Transfer curves, XYZ, Lab
// ---------------------------------------------------------------------------------------------
//
// Everything here runs in float64, whatever the dtype: the 3x3 products cancel (RGB_FROM_XYZ has
// entries of both signs, L* = 116 f - 16) right before the steep start of the sRGB curve, where
// float32 sums would cost ~1e-5 relative; with float64 the float32 results are the reference's
// up to its last-bit rounding. The powers are not libm calls (which would keep the loops scalar)
// but division-free root iterations that vectorize: ~1e-15 relative, well inside the float64
// tolerance, 2-10x faster than powf/cbrtf.

// x^(-1/N), N = 3 or 5, to within ~15% from the exponent: the high word of x divided by N (in
// float32, plenty for a first guess) and negated around the exponent bias.
template <int N>
FASTPERC_INLINE double rroot_guess(double x) {
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  const int32_t hi = static_cast<int32_t>(static_cast<uint32_t>(b >> 32));
  const int32_t q = static_cast<int32_t>(static_cast<float>(hi) * (1.0f / N));
  constexpr int32_t kMagic = N == 3 ? 0x553EF0FF : 1287232307;  // ~ (1023 << 20) * (N + 1) / N
  const uint64_t g = static_cast<uint64_t>(static_cast<uint32_t>(kMagic - q)) << 32;
  double r;
  std::memcpy(&r, &g, sizeof r);
  return r;
}

constexpr double kMaxFinite = std::numeric_limits<double>::max();

// Cube root of x >= 0 (and +inf; garbage for x < 0 or NaN, which callers select away): four
// Newton steps on r = x^(-1/3), then x r^2. Max relative error ~1e-15.
FASTPERC_INLINE double cbrt_pos(double x) {
  double r = rroot_guess<3>(x);
  for (int i = 0; i < 4; ++i) r = r * (4.0 - x * (r * r * r)) * (1.0 / 3.0);
  const double c = x * (r * r);
  return x <= kMaxFinite ? c : x;
}

// x^2.4 for x >= 0: r = x^(-1/5) by three third-order steps (r += r e (1/5 + 3/25 e) with
// e = 1 - x r^5), then (x r)^3 = x^(12/5). Max relative error ~1e-15 for results within
// 1e-100..1e100, ~3e-14 towards the ends of the double range.
FASTPERC_INLINE double pow_12_5(double x) {
  double r = rroot_guess<5>(x);
  for (int i = 0; i < 3; ++i) {
    const double r2 = r * r;
    const double e = 1.0 - x * (r2 * r2 * r);
    r = r + r * (e * (0.2 + e * 0.12));
  }
  const double y = x * r;
  return x <= kMaxFinite ? y * y * y : x;
}

// x^(1/2.4) = x^(5/12) = c * c^(1/4) with c = x^(1/3), for x >= 0.
FASTPERC_INLINE double pow_5_12(double x) {
  const double c = cbrt_pos(x);
  return c * std::sqrt(std::sqrt(c));
}

// IEC 61966-2-1 decoding and encoding curves on 0..1 values (reference: srgb_to_linear_f64,
// linear_to_srgb_f64). Both arms are computed and one selected, so loops vectorize.
FASTPERC_INLINE double srgb_decode(double v) {
  return v > 0.04045 ? pow_12_5(std::max((v + 0.055) / 1.055, 0.0)) : v / 12.92;
}

FASTPERC_INLINE double srgb_encode(double v) {
  return v > 0.0031308 ? 1.055 * pow_5_12(std::max(v, 0.0)) - 0.055 : v * 12.92;
}

FASTPERC_INLINE double lab_f(double t) {
  return t > 0.008856 ? cbrt_pos(std::max(t, 0.0)) : 7.787 * t + 16.0 / 116.0;
}

FASTPERC_INLINE double lab_finv(double t) {
  return t > 0.2068966 ? t * t * t : (t - 16.0 / 116.0) / 7.787;
}

// NaN-propagating clamp to [0, 1] (as torch.clamp).
FASTPERC_INLINE double clamp01(double v) { return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v); }

template <DType D>
FASTPERC_INLINE double load_f64(typename Traits<D>::T v) {
  return static_cast<double>(Traits<D>::load(v));
}

template <DType D>
FASTPERC_INLINE typename Traits<D>::T store_f64(double v) {
  if constexpr (D == DType::F64)
    return v;
  else
    return Traits<D>::store(static_cast<float>(v));  // f16/bf16: via float32 (1/2 ulp apart)
}

constexpr bool is_curve(PointOp op) {
  return op == PointOp::SrgbToLinear || op == PointOp::LinearToSrgb;
}

// Does the op's input stage decode sRGB? (A uint8 lookup table then includes it.)
inline bool decodes_input(const PointwiseParams& p) {
  return p.op == PointOp::SrgbToLinear ||
         ((p.op == PointOp::RgbToXyz || p.op == PointOp::RgbToLab) && p.encoded);
}

// Transfer curves, per channel. uint8 input: the whole map is a 256-entry table.
template <DType DS, DType DD, PointOp OP, bool Contig>
FASTPERC_INLINE void curve_rows(const PointwiseParams& p, const double* lut, int64_t r0,
                                int64_t r1) {
  using TS = typename Traits<DS>::T;
  using TD = typename Traits<DD>::T;
  if constexpr (DS == DType::U8) {
    auto f = [=](const TS* v, TD* o) FASTPERC_LAMBDA_INLINE { o[0] = store_f64<DD>(lut[v[0]]); };
    map_rows_per_channel<TS, TD, Contig>(p.src, p.dst, r0, r1, f);
  } else {
    const double in_scale = p.in_scale, out_scale = p.out_scale;
    auto f = [=](const TS* v, TD* o) FASTPERC_LAMBDA_INLINE {
      const double a = load_f64<DS>(v[0]) * in_scale;
      const double r = OP == PointOp::SrgbToLinear ? srgb_decode(a) : srgb_encode(a);
      o[0] = store_f64<DD>(r * out_scale);
    };
    map_rows_per_channel<TS, TD, Contig>(p.src, p.dst, r0, r1, f);
  }
}

// 3-channel ops, the reference's order of operations. uint8 input: a table holds in_scale * x,
// sRGB-decoded when the op decodes its input.
// Enc: sRGB-encoded RGB side; Clip: clamp RGB to 0..1 (compile-time so the loops vectorize).
template <DType DS, DType DD, PointOp OP, int L, bool Enc, bool Clip>
FASTPERC_INLINE void pixel_rows(const PointwiseParams& p, const double* lut, int64_t r0,
                                int64_t r1) {
  using TS = typename Traits<DS>::T;
  using TD = typename Traits<DD>::T;
  constexpr bool kLut = DS == DType::U8;
  const double m0 = p.matrix[0], m1 = p.matrix[1], m2 = p.matrix[2], m3 = p.matrix[3],
               m4 = p.matrix[4], m5 = p.matrix[5], m6 = p.matrix[6], m7 = p.matrix[7],
               m8 = p.matrix[8], w0 = p.white[0], w1 = p.white[1], w2 = p.white[2];
  const double in_scale = p.in_scale, out_scale = p.out_scale;
  auto f = [=](const TS* v, TD* o) FASTPERC_LAMBDA_INLINE {
    double a0, a1, a2;
    if constexpr (kLut) {
      a0 = lut[v[0]];
      a1 = lut[v[1]];
      a2 = lut[v[2]];
    } else {
      a0 = load_f64<DS>(v[0]) * in_scale;
      a1 = load_f64<DS>(v[1]) * in_scale;
      a2 = load_f64<DS>(v[2]) * in_scale;
    }
    double r0_, r1_, r2_;
    if constexpr (OP == PointOp::RgbToXyz || OP == PointOp::RgbToLab) {
      if constexpr (!kLut && Enc) {
        a0 = srgb_decode(a0);
        a1 = srgb_decode(a1);
        a2 = srgb_decode(a2);
      }
      const double x = (m0 * a0 + m1 * a1) + m2 * a2;
      const double y = (m3 * a0 + m4 * a1) + m5 * a2;
      const double z = (m6 * a0 + m7 * a1) + m8 * a2;
      if constexpr (OP == PointOp::RgbToXyz) {
        r0_ = x;
        r1_ = y;
        r2_ = z;
      } else {
        const double fx = lab_f(x / w0), fy = lab_f(y / w1), fz = lab_f(z / w2);
        r0_ = 116.0 * fy - 16.0;
        r1_ = 500.0 * (fx - fy);
        r2_ = 200.0 * (fy - fz);
      }
    } else {  // XyzToRgb, LabToRgb
      if constexpr (OP == PointOp::LabToRgb) {
        const double fy = (a0 + 16.0) / 116.0;
        const double fx = a1 / 500.0 + fy;
        const double fz = std::max(fy - a2 / 200.0, 0.0);  // NaN-propagating: max(NaN, 0) = NaN
        a0 = lab_finv(fx) * w0;
        a1 = lab_finv(fy) * w1;
        a2 = lab_finv(fz) * w2;
      }
      r0_ = (m0 * a0 + m1 * a1) + m2 * a2;
      r1_ = (m3 * a0 + m4 * a1) + m5 * a2;
      r2_ = (m6 * a0 + m7 * a1) + m8 * a2;
      if constexpr (Enc) {
        r0_ = srgb_encode(r0_);
        r1_ = srgb_encode(r1_);
        r2_ = srgb_encode(r2_);
      }
      if constexpr (Clip) {
        r0_ = clamp01(r0_);
        r1_ = clamp01(r1_);
        r2_ = clamp01(r2_);
      }
    }
    o[0] = store_f64<DD>(r0_ * out_scale);
    o[1] = store_f64<DD>(r1_ * out_scale);
    o[2] = store_f64<DD>(r2_ * out_scale);
  };
  map_rows<TS, TD, 3, 3, L>(p.src, p.dst, r0, r1, f);
}

// The (encoded, clip) pairs each op takes: Lab ops are always sRGB-encoded (the bindings check
// it), only the *_to_rgb ops clip, and the uint8 table already holds the decoding.
template <DType DS, DType DD, PointOp OP, int L>
FASTPERC_INLINE void pixel_rows_ec(const PointwiseParams& p, const double* lut, int64_t r0,
                                   int64_t r1) {
  if constexpr (OP == PointOp::RgbToXyz) {
    if (p.encoded && DS != DType::U8)
      pixel_rows<DS, DD, OP, L, true, false>(p, lut, r0, r1);
    else
      pixel_rows<DS, DD, OP, L, false, false>(p, lut, r0, r1);
  } else if constexpr (OP == PointOp::RgbToLab) {
    pixel_rows<DS, DD, OP, L, DS != DType::U8, false>(p, lut, r0, r1);
  } else if constexpr (OP == PointOp::LabToRgb) {
    if (p.clip)
      pixel_rows<DS, DD, OP, L, true, true>(p, lut, r0, r1);
    else
      pixel_rows<DS, DD, OP, L, true, false>(p, lut, r0, r1);
  } else {  // XyzToRgb
    if (p.encoded)
      p.clip ? pixel_rows<DS, DD, OP, L, true, true>(p, lut, r0, r1)
             : pixel_rows<DS, DD, OP, L, true, false>(p, lut, r0, r1);
    else
      p.clip ? pixel_rows<DS, DD, OP, L, false, true>(p, lut, r0, r1)
             : pixel_rows<DS, DD, OP, L, false, false>(p, lut, r0, r1);
  }
}

template <DType DS, DType DD, PointOp OP>
FASTPERC_INLINE void pointwise_rows_t(const PointwiseParams& p, const double* lut, bool contig,
                                      int64_t r0, int64_t r1) {
  if constexpr (is_curve(OP)) {
    if (contig)
      curve_rows<DS, DD, OP, true>(p, lut, r0, r1);
    else
      curve_rows<DS, DD, OP, false>(p, lut, r0, r1);
  } else {
    if (contig)
      pixel_rows_ec<DS, DD, OP, kPlanar>(p, lut, r0, r1);
    else
      pixel_rows_ec<DS, DD, OP, kGeneric>(p, lut, r0, r1);
  }
}

template <PointOp OP>
FASTPERC_INLINE void pointwise_rows_op(const PointwiseParams& p, const double* lut, bool contig,
                                       int64_t r0, int64_t r1) {
  switch (p.src.dtype) {
    case DType::U8: pointwise_rows_t<DType::U8, DType::F32, OP>(p, lut, contig, r0, r1); break;
    case DType::F16: pointwise_rows_t<DType::F16, DType::F16, OP>(p, lut, contig, r0, r1); break;
    case DType::BF16:
      pointwise_rows_t<DType::BF16, DType::BF16, OP>(p, lut, contig, r0, r1);
      break;
    case DType::F32: pointwise_rows_t<DType::F32, DType::F32, OP>(p, lut, contig, r0, r1); break;
    case DType::F64: pointwise_rows_t<DType::F64, DType::F64, OP>(p, lut, contig, r0, r1); break;
  }
}

FASTPERC_CLONES void pointwise_rows_entry(const PointwiseParams& p, const double* lut, bool contig,
                                          int64_t r0, int64_t r1) {
  switch (p.op) {
    case PointOp::SrgbToLinear:
      pointwise_rows_op<PointOp::SrgbToLinear>(p, lut, contig, r0, r1);
      break;
    case PointOp::LinearToSrgb:
      pointwise_rows_op<PointOp::LinearToSrgb>(p, lut, contig, r0, r1);
      break;
    case PointOp::RgbToXyz: pointwise_rows_op<PointOp::RgbToXyz>(p, lut, contig, r0, r1); break;
    case PointOp::XyzToRgb: pointwise_rows_op<PointOp::XyzToRgb>(p, lut, contig, r0, r1); break;
    case PointOp::RgbToLab: pointwise_rows_op<PointOp::RgbToLab>(p, lut, contig, r0, r1); break;
    case PointOp::LabToRgb: pointwise_rows_op<PointOp::LabToRgb>(p, lut, contig, r0, r1); break;
  }
}

// ---------------------------------------------------------------------------------------------
// Chroma downsampling (jcsample.c: h2v2_downsample, h2v1_downsample, fullsize_downsample)
// ---------------------------------------------------------------------------------------------

template <class T, int64_t SW, int64_t DW>
FASTPERC_INLINE void copy_row(const T* FASTPERC_RESTRICT s, T* FASTPERC_RESTRICT o, int64_t w,
                              Step<SW> sw, Step<DW> dw) {
  for (int64_t x = 0; x < w; ++x) o[x * dw.get()] = s[x * sw.get()];
}

// Floating chroma is summed in float64, as the reference: exact for float16/bfloat16/float32
// inputs, so those results equal the reference's bit for bit.

// Two input rows a, b (b == a on a replicated bottom row) -> one output row of ceil(w / 2).
// uint8: (sum of 4 + 1, 2, 1, 2, ...) >> 2; floats: the mean.
template <DType D, int64_t SW, int64_t DW>
FASTPERC_INLINE void h2v2_down_row(const typename Traits<D>::T* FASTPERC_RESTRICT a,
                                   const typename Traits<D>::T* FASTPERC_RESTRICT b,
                                   typename Traits<D>::T* FASTPERC_RESTRICT o, int64_t w,
                                   Step<SW> sw, Step<DW> dw) {
  using T = typename Traits<D>::T;
  const int64_t full = w / 2;
  const int64_t s = sw.get();
  if constexpr (D == DType::U8) {
    for (int64_t x = 0; x < full; ++x) {
      const int32_t sum = int32_t(a[2 * x * s]) + int32_t(a[(2 * x + 1) * s]) +
                          int32_t(b[2 * x * s]) + int32_t(b[(2 * x + 1) * s]);
      o[x * dw.get()] = T((sum + 1 + int32_t(x & 1)) >> 2);
    }
    if (w & 1) {
      const int32_t sum = 2 * (int32_t(a[(w - 1) * s]) + int32_t(b[(w - 1) * s]));
      o[full * dw.get()] = T((sum + 1 + int32_t(full & 1)) >> 2);
    }
  } else {
    for (int64_t x = 0; x < full; ++x) {
      const double sum = (load_f64<D>(a[2 * x * s]) + load_f64<D>(a[(2 * x + 1) * s])) +
                         (load_f64<D>(b[2 * x * s]) + load_f64<D>(b[(2 * x + 1) * s]));
      o[x * dw.get()] = store_f64<D>(sum * 0.25);
    }
    if (w & 1) {
      const double pa = load_f64<D>(a[(w - 1) * s]), pb = load_f64<D>(b[(w - 1) * s]);
      o[full * dw.get()] = store_f64<D>(((pa + pa) + (pb + pb)) * 0.25);
    }
  }
}

// One input row -> ceil(w / 2). uint8: (a + b + 0, 1, 0, 1, ...) >> 1; floats: the mean.
template <DType D, int64_t SW, int64_t DW>
FASTPERC_INLINE void h2v1_down_row(const typename Traits<D>::T* FASTPERC_RESTRICT a,
                                   typename Traits<D>::T* FASTPERC_RESTRICT o, int64_t w,
                                   Step<SW> sw, Step<DW> dw) {
  using T = typename Traits<D>::T;
  const int64_t full = w / 2;
  const int64_t s = sw.get();
  if constexpr (D == DType::U8) {
    for (int64_t x = 0; x < full; ++x) {
      const int32_t sum = int32_t(a[2 * x * s]) + int32_t(a[(2 * x + 1) * s]);
      o[x * dw.get()] = T((sum + int32_t(x & 1)) >> 1);
    }
    if (w & 1) {
      const int32_t sum = 2 * int32_t(a[(w - 1) * s]);
      o[full * dw.get()] = T((sum + int32_t(full & 1)) >> 1);
    }
  } else {
    for (int64_t x = 0; x < full; ++x) {
      const double sum = load_f64<D>(a[2 * x * s]) + load_f64<D>(a[(2 * x + 1) * s]);
      o[x * dw.get()] = store_f64<D>(sum * 0.5);
    }
    if (w & 1) {
      const double pa = load_f64<D>(a[(w - 1) * s]);
      o[full * dw.get()] = store_f64<D>((pa + pa) * 0.5);
    }
  }
}

// Rows are (n, c, yo) output rows.
template <DType D, int FH, int FV, bool Contig>
FASTPERC_INLINE void down_rows(const ChromaParams& p, int64_t r0, int64_t r1) {
  using T = typename Traits<D>::T;
  constexpr int64_t kS = Contig ? 1 : 0;
  const Tensor4& s = p.src;
  const Tensor4& d = p.dst;
  const int64_t k = s.shape[1], h = s.shape[2], w = s.shape[3], hc = d.shape[2];
  const Step<kS> sw(s.stride[3]);
  const Step<kS> dw(d.stride[3]);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t nc = r / hc, yo = r - nc * hc;
    const int64_t n = nc / k, c = nc - n * k;
    const int64_t y0 = yo * FV, y1 = std::min<int64_t>(y0 + FV - 1, h - 1);
    const T* a = s.ptr<const T>(n, c, y0);
    T* o = d.ptr<T>(n, c, yo);
    if constexpr (FH == 1) {
      copy_row<T>(a, o, w, sw, dw);
    } else if constexpr (FV == 2) {
      h2v2_down_row<D>(a, s.ptr<const T>(n, c, y1), o, w, sw, dw);
    } else {
      h2v1_down_row<D>(a, o, w, sw, dw);
    }
  }
}

template <DType D, bool Contig>
FASTPERC_INLINE void down_rows_d(const ChromaParams& p, int64_t r0, int64_t r1) {
  if (p.fh == 1)
    down_rows<D, 1, 1, Contig>(p, r0, r1);
  else if (p.fv == 2)
    down_rows<D, 2, 2, Contig>(p, r0, r1);
  else
    down_rows<D, 2, 1, Contig>(p, r0, r1);
}

template <bool Contig>
FASTPERC_INLINE void down_rows_c(const ChromaParams& p, int64_t r0, int64_t r1) {
  switch (p.src.dtype) {
    case DType::U8: down_rows_d<DType::U8, Contig>(p, r0, r1); break;
    case DType::F16: down_rows_d<DType::F16, Contig>(p, r0, r1); break;
    case DType::BF16: down_rows_d<DType::BF16, Contig>(p, r0, r1); break;
    case DType::F32: down_rows_d<DType::F32, Contig>(p, r0, r1); break;
    case DType::F64: down_rows_d<DType::F64, Contig>(p, r0, r1); break;
  }
}

FASTPERC_CLONES void down_rows_entry(const ChromaParams& p, bool contig, int64_t r0, int64_t r1) {
  if (contig)
    down_rows_c<true>(p, r0, r1);
  else
    down_rows_c<false>(p, r0, r1);
}

// ---------------------------------------------------------------------------------------------
// Chroma upsampling (jdsample.c: h2v1/h2v2 (nearest), h2v1_fancy_upsample, h2v2_fancy_upsample)
// ---------------------------------------------------------------------------------------------

template <class T, int64_t SW, int64_t DW>
FASTPERC_INLINE void nearest_row(const T* FASTPERC_RESTRICT s, T* FASTPERC_RESTRICT o, int64_t w,
                                 Step<SW> sw, Step<DW> dw) {
  const int64_t full = w / 2;
  for (int64_t j = 0; j < full; ++j) {
    const T v = s[j * sw.get()];
    o[2 * j * dw.get()] = v;
    o[(2 * j + 1) * dw.get()] = v;
  }
  if (w & 1) o[(w - 1) * dw.get()] = s[full * sw.get()];
}

// The horizontal triangle filter. Output x = 2j takes 3/4 of v(j) and 1/4 of v(j - 1), x = 2j + 1
// 3/4 of v(j) and 1/4 of v(j + 1), neighbours clamped to 0..wc-1. v(j) is the chroma sample itself
// (h2v1, Shift = 2, rounding +1 / +2) or the column sum 3 * near + far (h2v2, Shift = 4,
// rounding +8 / +7); floats divide by 4 / 16. Needs wc > 2 (the caller falls back to nearest).
template <DType D, int Shift, int64_t DW, class V>
FASTPERC_INLINE void fancy_h_row(const V& v, typename Traits<D>::T* FASTPERC_RESTRICT o, int64_t w,
                                 int64_t wc, Step<DW> dw) {
  using T = typename Traits<D>::T;
  auto out = [&](int64_t x, decltype(v(0)) near, decltype(v(0)) far) FASTPERC_LAMBDA_INLINE {
    if constexpr (D == DType::U8) {
      constexpr int32_t kEven = Shift == 2 ? 1 : 8;
      constexpr int32_t kOdd = Shift == 2 ? 2 : 7;
      o[x * dw.get()] = T((3 * near + far + ((x & 1) ? kOdd : kEven)) >> Shift);
    } else {
      constexpr double kScale = Shift == 2 ? 0.25 : 0.0625;
      o[x * dw.get()] = store_f64<D>((3.0 * near + far) * kScale);
    }
  };
  // j = 0 (left neighbour clamped to itself)
  out(0, v(0), v(0));
  out(1, v(0), v(1));
  for (int64_t j = 1; j < wc - 1; ++j) {
    const auto vj = v(j);
    out(2 * j, vj, v(j - 1));
    out(2 * j + 1, vj, v(j + 1));
  }
  // j = wc - 1 (right neighbour clamped to itself); its odd output exists only for even w
  const int64_t j = wc - 1;
  out(2 * j, v(j), v(j - 1));
  if (2 * j + 1 < w) out(2 * j + 1, v(j), v(j));
}

// Rows are (n, c, y) output rows.
template <DType D, int FH, int FV, bool Fancy, bool Contig>
FASTPERC_INLINE void up_rows(const ChromaParams& p, int64_t r0, int64_t r1) {
  using T = typename Traits<D>::T;
  constexpr int64_t kS = Contig ? 1 : 0;
  const Tensor4& s = p.src;
  const Tensor4& d = p.dst;
  const int64_t k = d.shape[1], h = d.shape[2], w = d.shape[3], hc = s.shape[2], wc = s.shape[3];
  const Step<kS> sw(s.stride[3]);
  const Step<kS> dw(d.stride[3]);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t nc = r / h, y = r - nc * h;
    const int64_t n = nc / k, c = nc - n * k;
    const int64_t i = y / FV;
    const T* FASTPERC_RESTRICT a = s.ptr<const T>(n, c, i);
    T* o = d.ptr<T>(n, c, y);
    if constexpr (FH == 1) {
      copy_row<T>(a, o, w, sw, dw);
    } else if constexpr (!Fancy) {
      nearest_row<T>(a, o, w, sw, dw);
    } else if constexpr (FV == 1) {
      if constexpr (D == DType::U8) {
        auto v = [=](int64_t j) FASTPERC_LAMBDA_INLINE { return int32_t(a[j * sw.get()]); };
        fancy_h_row<D, 2>(v, o, w, wc, dw);
      } else {
        auto v = [=](int64_t j) FASTPERC_LAMBDA_INLINE { return load_f64<D>(a[j * sw.get()]); };
        fancy_h_row<D, 2>(v, o, w, wc, dw);
      }
    } else {
      // vertical neighbour: the row above for even y, below for odd y, clamped
      const int64_t inb = (y & 1) ? std::min<int64_t>(i + 1, hc - 1) : std::max<int64_t>(i - 1, 0);
      const T* FASTPERC_RESTRICT b = s.ptr<const T>(n, c, inb);
      if constexpr (D == DType::U8) {
        auto v = [=](int64_t j) FASTPERC_LAMBDA_INLINE {
          return 3 * int32_t(a[j * sw.get()]) + int32_t(b[j * sw.get()]);
        };
        fancy_h_row<D, 4>(v, o, w, wc, dw);
      } else {
        auto v = [=](int64_t j) FASTPERC_LAMBDA_INLINE {
          return 3.0 * load_f64<D>(a[j * sw.get()]) + load_f64<D>(b[j * sw.get()]);
        };
        fancy_h_row<D, 4>(v, o, w, wc, dw);
      }
    }
  }
}

template <DType D, bool Contig>
FASTPERC_INLINE void up_rows_d(const ChromaParams& p, bool fancy, int64_t r0, int64_t r1) {
  if (p.fh == 1)
    up_rows<D, 1, 1, false, Contig>(p, r0, r1);
  else if (p.fv == 2)
    fancy ? up_rows<D, 2, 2, true, Contig>(p, r0, r1) : up_rows<D, 2, 2, false, Contig>(p, r0, r1);
  else
    fancy ? up_rows<D, 2, 1, true, Contig>(p, r0, r1) : up_rows<D, 2, 1, false, Contig>(p, r0, r1);
}

template <bool Contig>
FASTPERC_INLINE void up_rows_c(const ChromaParams& p, bool fancy, int64_t r0, int64_t r1) {
  switch (p.src.dtype) {
    case DType::U8: up_rows_d<DType::U8, Contig>(p, fancy, r0, r1); break;
    case DType::F16: up_rows_d<DType::F16, Contig>(p, fancy, r0, r1); break;
    case DType::BF16: up_rows_d<DType::BF16, Contig>(p, fancy, r0, r1); break;
    case DType::F32: up_rows_d<DType::F32, Contig>(p, fancy, r0, r1); break;
    case DType::F64: up_rows_d<DType::F64, Contig>(p, fancy, r0, r1); break;
  }
}

FASTPERC_CLONES void up_rows_entry(const ChromaParams& p, bool fancy, bool contig, int64_t r0,
                                   int64_t r1) {
  if (contig)
    up_rows_c<true>(p, fancy, r0, r1);
  else
    up_rows_c<false>(p, fancy, r0, r1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

void affine(const AffineParams& p) {
  const Tensor4& s = p.src;
  if (s.numel() == 0) return;
  const int layout = pick_layout(s, p.dst);
  const double cost_per_row = double(s.shape[3]) * (3 + p.k);
  parallel_rows(s.shape[0] * s.shape[2], cost_per_row,
                [&](int64_t r0, int64_t r1) { affine_rows_entry(p, layout, r0, r1); });
}

void pointwise(const PointwiseParams& p) {
  const Tensor4& s = p.src;
  if (s.numel() == 0) return;
  // uint8 input: tabulate the input stage in float64 (curves: the whole map).
  double lut[256];
  if (s.dtype == DType::U8) {
    const bool dec = decodes_input(p);
    for (int i = 0; i < 256; ++i) {
      double v = double(i) * p.in_scale;
      if (p.op == PointOp::LinearToSrgb)
        v = srgb_encode(v);
      else if (dec)
        v = srgb_decode(v);
      if (is_curve(p.op)) v *= p.out_scale;
      lut[i] = v;
    }
  }
  const bool curve = is_curve(p.op);
  const bool contig = w_stride_is(s, 1) && w_stride_is(p.dst, 1);
  // libm calls dominate: weigh an element as ~16 loads.
  const double cost_per_row = double(s.shape[3]) * (curve ? 1 : 3) * 16.0;
  const int64_t rows = s.shape[0] * (curve ? s.shape[1] : 1) * s.shape[2];
  parallel_rows(rows, cost_per_row, [&](int64_t r0, int64_t r1) {
    pointwise_rows_entry(p, lut, contig, r0, r1);
  });
}

void chroma_downsample(const ChromaParams& p) {
  const Tensor4& d = p.dst;
  if (d.numel() == 0) return;
  const bool contig = w_stride_is(p.src, 1) && w_stride_is(d, 1);
  const double cost_per_row = double(d.shape[3]) * (1 + p.fh * p.fv);
  parallel_rows(d.shape[0] * d.shape[1] * d.shape[2], cost_per_row,
                [&](int64_t r0, int64_t r1) { down_rows_entry(p, contig, r0, r1); });
}

void chroma_upsample(const ChromaParams& p) {
  const Tensor4& d = p.dst;
  if (d.numel() == 0) return;
  const bool contig = w_stride_is(p.src, 1) && w_stride_is(d, 1);
  // libjpeg: fancy upsampling needs more than 2 chroma columns, else plain replication.
  const bool fancy = p.fancy && p.src.shape[3] > 2;
  const double cost_per_row = double(d.shape[3]) * 2;
  parallel_rows(d.shape[0] * d.shape[1] * d.shape[2], cost_per_row,
                [&](int64_t r0, int64_t r1) { up_rows_entry(p, fancy, contig, r0, r1); });
}

}  // namespace color
}  // namespace fastperc
