// Separable resampling kernel (see resize.h).
//
// Work is cut into units of kRows output rows of one image and one channel group; OpenMP hands
// the units out (parallel_rows). A unit runs two passes over a per-thread scratch buffer:
//
//  1. vertical: for each of its output rows, sum the ky source rows it reads, weighted, along
//     the row (contiguous for NCHW planes and for packed RGB rows: numpy HWC, channels_last),
//     and store the sums interleaved sample by sample ([W_in][kRows][group]). uint8 /
//     float16 / bfloat16 rows are first converted once into a float32 cache of the rows the
//     unit reads (exact: each such sample is a float32), half the bytes of float64; those and
//     float32 / float64 samples are widened to float64 as they are loaded;
//  2. horizontal: each output column is sum_j wx[x][j] * (a contiguous vector of the
//     kRows * group lanes of source column x_start[x] + j): the dot products of kRows rows (and
//     3 channels) run side by side in SIMD registers.
//
// All sums are float64, each in its taps' order (no FMA), and the result is rounded once to
// float32 (float64 images stay float64): float32 accumulation drifts up to ~1e-4 from the
// float64 spec on 0..255 data (more with many taps, e.g. strong downscaling), which would eat
// the 1e-4 budget against Pillow; float64 keeps the C++ result within float32 rounding of it.
#include "resize.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

// The 32-byte vectors below are passed and returned only between always-inlined helpers inside
// one cloned entry function, so GCC's note about their ABI without AVX does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace fastperc {
namespace resize {
namespace {

// Full unrolling of the short fixed-count loops that move lanes between vectors and memory.
#if defined(__clang__)
#define FASTPERC_RESIZE_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define FASTPERC_RESIZE_UNROLL _Pragma("GCC unroll 64")
#else
#define FASTPERC_RESIZE_UNROLL
#endif

constexpr int kRows = 8;  // output rows resampled together: the SIMD lanes of the 2nd pass

// Rows cached per unit at most (as float32): beyond this the vertical pass converts the
// samples as it reads them.
constexpr int64_t kCacheBytes = int64_t{1} << 20;

struct Plan {
  int64_t cg = 1;          // channels per group: 3 for packed RGB rows, else 1
  int64_t groups = 1;      // channel groups: C / cg
  int64_t blocks = 1;      // row blocks per image: ceil(H_out / kRows)
  int64_t row_len = 1;     // samples per source row of a group: W_in * cg
  int64_t pitch = 1;       // row_len rounded up: stride of the cached rows
  int64_t cache_rows = 0;  // source rows a unit caches as float32 (0: no cache)
  int64_t per_thread = 0;  // scratch doubles per thread: interleaved rows + cache
};

Plan make_plan(const ResizeParams& p) {
  Plan pl;
  const int64_t c = p.src.shape[1];
  const bool packed_rgb = c == 3 && p.src.stride[1] == 1 && p.src.stride[3] == 3;
  pl.cg = packed_rgb ? 3 : 1;
  pl.groups = c / pl.cg;
  const int64_t h_out = p.dst.shape[2];
  pl.blocks = (h_out + kRows - 1) / kRows;
  pl.row_len = p.src.shape[3] * pl.cg;
  pl.pitch = (pl.row_len + 7) / 8 * 8;
  // Integer sources are converted once per unit into a cache of the rows the unit reads (each
  // source row is read by ~ky / scale output rows); float32/float64 load cheaply as they are.
  const bool convert = p.src.dtype == DType::U8 || p.src.dtype == DType::F16 ||
                       p.src.dtype == DType::BF16;
  int64_t rows = 0;
  for (int64_t y0 = 0; y0 < h_out; y0 += kRows) {
    const int64_t y1 = std::min(h_out, y0 + kRows) - 1;
    rows = std::max(rows, p.y_start[y1] + p.ky - p.y_start[y0]);
  }
  if (convert && rows * pl.pitch * static_cast<int64_t>(sizeof(float)) <= kCacheBytes)
    pl.cache_rows = rows;
  // The float32 cache follows the interleaved rows; pitch is even, so it fills whole doubles.
  pl.per_thread = pl.pitch * kRows + pl.pitch / 2 * pl.cache_rows;
  return pl;
}

int max_threads() {
#ifdef FASTPERC_HAVE_OPENMP
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

int thread_id() {
#ifdef FASTPERC_HAVE_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// ---------------------------------------------------------------------------------------------
// Four float64 lanes: GCC/Clang generic vectors (AVX2 in the AVX2 clone, SSE2 pairs in the
// baseline one), or a plain struct elsewhere.
// ---------------------------------------------------------------------------------------------

#if defined(__GNUC__) || defined(__clang__)
typedef double D4 __attribute__((vector_size(32)));
typedef int32_t I4 __attribute__((vector_size(16)));

FASTPERC_INLINE D4 splat(double x) { return D4{x, x, x, x}; }
FASTPERC_INLINE D4 make4(double a, double b, double c, double d) { return D4{a, b, c, d}; }
FASTPERC_INLINE D4 load_d4(const double* p) {
  D4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
FASTPERC_INLINE void store_d4(double* p, const D4& v) { std::memcpy(p, &v, sizeof v); }
// min(max(v, lo), hi) lane by lane, NaN kept.
FASTPERC_INLINE D4 clamp4(const D4& x, double lo, double hi) {
  const D4 l = splat(lo), h = splat(hi);
  const D4 v = x < l ? l : x;
  return v > h ? h : v;
}
typedef uint8_t B16 __attribute__((vector_size(16)));
// Bytes 4k..4k+3 of b as float64: zero-extended by a byte shuffle (vpshufb / punpck), converted.
#define FASTPERC_RESIZE_U8_QUAD(b, k)                                                          \
  __builtin_convertvector(                                                                     \
      (I4)__builtin_shufflevector(b, B16{}, 4 * k, 16, 16, 16, 4 * k + 1, 16, 16, 16,           \
                                  4 * k + 2, 16, 16, 16, 4 * k + 3, 16, 16, 16),                \
      D4)
FASTPERC_INLINE void from_u8x16(const uint8_t* p, D4* out) {
  B16 b;
  std::memcpy(&b, p, sizeof b);
  out[0] = FASTPERC_RESIZE_U8_QUAD(b, 0);
  out[1] = FASTPERC_RESIZE_U8_QUAD(b, 1);
  out[2] = FASTPERC_RESIZE_U8_QUAD(b, 2);
  out[3] = FASTPERC_RESIZE_U8_QUAD(b, 3);
}
FASTPERC_INLINE D4 from_u8(const uint8_t* p) {
  B16 b = B16{};
  std::memcpy(&b, p, 4);
  return FASTPERC_RESIZE_U8_QUAD(b, 0);
}
#undef FASTPERC_RESIZE_U8_QUAD
// An element loop rather than __builtin_convertvector: GCC 12 lowers the latter to two
// 2-lane conversions, while this one becomes a single vcvtps2pd ymm, m128 under AVX.
FASTPERC_INLINE D4 from_f32(const float* p) {
  D4 d;
  for (int l = 0; l < 4; ++l) d[l] = static_cast<double>(p[l]);
  return d;
}
#else
struct D4 {
  double v[4];
  double& operator[](int i) { return v[i]; }
  double operator[](int i) const { return v[i]; }
};
FASTPERC_INLINE D4 operator+(D4 a, D4 b) {
  for (int i = 0; i < 4; ++i) a.v[i] += b.v[i];
  return a;
}
FASTPERC_INLINE D4 operator*(D4 a, D4 b) {
  for (int i = 0; i < 4; ++i) a.v[i] *= b.v[i];
  return a;
}
FASTPERC_INLINE D4& operator+=(D4& a, D4 b) { return a = a + b; }
FASTPERC_INLINE D4 splat(double x) { return D4{{x, x, x, x}}; }
FASTPERC_INLINE D4 make4(double a, double b, double c, double d) { return D4{{a, b, c, d}}; }
FASTPERC_INLINE D4 load_d4(const double* p) { return D4{{p[0], p[1], p[2], p[3]}}; }
FASTPERC_INLINE void store_d4(double* p, D4 v) { std::memcpy(p, v.v, sizeof v.v); }
FASTPERC_INLINE D4 clamp4(D4 v, double lo, double hi) {
  for (int i = 0; i < 4; ++i) v.v[i] = v.v[i] < lo ? lo : (v.v[i] > hi ? hi : v.v[i]);
  return v;
}
FASTPERC_INLINE D4 from_u8(const uint8_t* p) {
  return D4{{double(p[0]), double(p[1]), double(p[2]), double(p[3])}};
}
FASTPERC_INLINE void from_u8x16(const uint8_t* p, D4* out) {
  for (int k = 0; k < 4; ++k) out[k] = from_u8(p + 4 * k);
}
FASTPERC_INLINE D4 from_f32(const float* p) {
  return D4{{double(p[0]), double(p[1]), double(p[2]), double(p[3])}};
}
#endif

// Four consecutive samples (element step s) as float64.
template <DType D, class S>
FASTPERC_INLINE D4 load4(const typename Traits<D>::T* p, S s) {
  using Tr = Traits<D>;
  constexpr bool unit = std::is_same_v<S, Step<1>>;
  if constexpr (unit && D == DType::U8) {
    return from_u8(p);
  } else if constexpr (unit && D == DType::F32) {
    return from_f32(p);
  } else if constexpr (unit && D == DType::F64) {
    return load_d4(p);
  } else {
    const int64_t k = s.get();
    return make4(static_cast<double>(Tr::load(p[0])), static_cast<double>(Tr::load(p[k])),
                 static_cast<double>(Tr::load(p[2 * k])), static_cast<double>(Tr::load(p[3 * k])));
  }
}

// Sixteen consecutive samples (element step s) as four float64 vectors.
template <DType D, class S>
FASTPERC_INLINE void load16(const typename Traits<D>::T* p, S s, D4* out) {
  if constexpr (std::is_same_v<S, Step<1>> && D == DType::U8) {
    from_u8x16(p, out);
  } else {
    for (int k = 0; k < 4; ++k) out[k] = load4<D, S>(p + 4 * k * s.get(), s);
  }
}

// ---------------------------------------------------------------------------------------------
// The two passes
// ---------------------------------------------------------------------------------------------

// SV vectors (4 * SV consecutive samples, element step s) as float64.
template <DType D, class S, int SV>
FASTPERC_INLINE void load_vecs(const typename Traits<D>::T* p, S s, D4* out) {
  for (int q = 0; q < SV / 4; ++q) load16<D, S>(p + 16 * q * s.get(), s, out + 4 * q);
  for (int v = SV / 4 * 4; v < SV; ++v) out[v] = load4<D, S>(p + 4 * v * s.get(), s);
}

// The vertical pass of one output row into lane r of the interleaved buffer:
// inter[(j / CG) * kRows * CG + r * CG + j % CG] = sum_i w[i] * src[i * tap_stride + j * step]
// for j < len, the taps added in order. Strips of 4 * SV samples stay in registers over the
// taps; a strip holds whole pixels (24 samples = 8 RGB pixels), so its scatter into the
// interleaved buffer has compile-time offsets.
template <DType D, class S, int CG>
FASTPERC_INLINE void vertical(double* FASTPERC_RESTRICT inter, int r,
                              const typename Traits<D>::T* FASTPERC_RESTRICT src,
                              int64_t tap_stride, S step, const double* FASTPERC_RESTRICT w,
                              int64_t k, int64_t len) {
  using T = typename Traits<D>::T;
  constexpr int SV = CG == 3 ? 6 : 8;
  constexpr int SL = 4 * SV;
  constexpr int LANES = kRows * CG;
  const int64_t s = step.get();
  double* lane = inter + r * CG;
  int64_t j = 0;
  for (; j + SL <= len; j += SL) {
    D4 acc[SV];
    for (int v = 0; v < SV; ++v) acc[v] = splat(0.0);
    const T* base = src + j * s;
    for (int64_t i = 0; i < k; ++i) {
      const D4 wi = splat(w[i]);
      D4 x[SV];
      load_vecs<D, S, SV>(base + i * tap_stride, step, x);
      for (int v = 0; v < SV; ++v) acc[v] += wi * x[v];
    }
    double* dst = lane + (j / CG) * LANES;
    FASTPERC_RESIZE_UNROLL
    for (int e = 0; e < SL; ++e) dst[(e / CG) * LANES + e % CG] = acc[e / 4][e % 4];
  }
  for (; j < len; ++j) {
    double acc = 0.0;
    const T* base = src + j * s;
    for (int64_t i = 0; i < k; ++i)
      acc += w[i] * static_cast<double>(Traits<D>::load(base[i * tap_stride]));
    lane[(j / CG) * LANES + j % CG] = acc;
  }
}

// Rows of samples as float32 (exact for the uint8 / float16 / bfloat16 samples cached):
// cache[i * pitch + j] = src[i * row_stride + j * step]. Plain loops, which the compiler
// vectorizes (for uint8: widening loads, then int32 -> float32 conversions).
template <DType D, class S>
FASTPERC_INLINE void fill_cache(float* FASTPERC_RESTRICT cache, int64_t pitch,
                                const typename Traits<D>::T* FASTPERC_RESTRICT src,
                                int64_t row_stride, S step, int64_t rows, int64_t len) {
  const int64_t s = step.get();
  for (int64_t i = 0; i < rows; ++i) {
    const typename Traits<D>::T* FASTPERC_RESTRICT p = src + i * row_stride;
    float* FASTPERC_RESTRICT o = cache + i * pitch;
    if constexpr (std::is_same_v<S, Step<1>>) {
      for (int64_t j = 0; j < len; ++j) o[j] = static_cast<float>(Traits<D>::load(p[j]));
    } else {
      for (int64_t j = 0; j < len; ++j) o[j] = static_cast<float>(Traits<D>::load(p[j * s]));
    }
  }
}

template <int CG>
FASTPERC_INLINE void zero_lane(double* FASTPERC_RESTRICT inter, int r, int64_t w_in) {
  for (int64_t x = 0; x < w_in; ++x)
    for (int c = 0; c < CG; ++c) inter[(x * kRows + r) * CG + c] = 0.0;
}

// NC output columns from x of the horizontal pass: lane l of column x is
// sum_j wx[x * kx + j] * inter[(x_start[x] + j) * LANES + l], stored to dptr[l][x * ds].
template <class O, int CG, int NC, bool CLIP>
FASTPERC_INLINE void columns(const double* FASTPERC_RESTRICT inter,
                             const int64_t* FASTPERC_RESTRICT xs,
                             const double* FASTPERC_RESTRICT wx, int64_t kx, int64_t x,
                             O* const* dptr, int lanes, int64_t ds, double lo, double hi) {
  constexpr int LANES = kRows * CG;
  constexpr int NV = LANES / 4;
  D4 acc[NC][NV];
  for (int c = 0; c < NC; ++c)
    for (int v = 0; v < NV; ++v) acc[c][v] = splat(0.0);
  for (int64_t j = 0; j < kx; ++j) {
    for (int c = 0; c < NC; ++c) {
      const D4 wj = splat(wx[(x + c) * kx + j]);
      const double* t = inter + (xs[x + c] + j) * LANES;
      for (int v = 0; v < NV; ++v) acc[c][v] += wj * load_d4(t + 4 * v);
    }
  }
  for (int c = 0; c < NC; ++c) {
    D4 v[NV];
    for (int q = 0; q < NV; ++q) v[q] = CLIP ? clamp4(acc[c][q], lo, hi) : acc[c][q];
    const int64_t off = (x + c) * ds;
    if (lanes == LANES) {
      FASTPERC_RESIZE_UNROLL
      for (int l = 0; l < LANES; ++l) dptr[l][off] = static_cast<O>(v[l / 4][l % 4]);
    } else {
      for (int l = 0; l < lanes; ++l) dptr[l][off] = static_cast<O>(v[l / 4][l % 4]);
    }
  }
}

template <class O, int CG, bool CLIP>
FASTPERC_INLINE void horizontal(const double* FASTPERC_RESTRICT inter,
                                const int64_t* FASTPERC_RESTRICT xs,
                                const double* FASTPERC_RESTRICT wx, int64_t kx, int64_t w_out,
                                O* const* dptr, int lanes, int64_t ds, double lo, double hi) {
  constexpr int NC = CG == 1 ? 4 : 1;  // enough independent sums to hide the add latency
  int64_t x = 0;
  for (; x + NC <= w_out; x += NC)
    columns<O, CG, NC, CLIP>(inter, xs, wx, kx, x, dptr, lanes, ds, lo, hi);
  for (; x < w_out; ++x) columns<O, CG, 1, CLIP>(inter, xs, wx, kx, x, dptr, lanes, ds, lo, hi);
}

template <DType D, class O, int CG, class S, bool CLIP>
FASTPERC_INLINE void run_units(const ResizeParams& p, const Plan& pl, int64_t u0, int64_t u1,
                               double* scratch) {
  using T = typename Traits<D>::T;
  constexpr int LANES = kRows * CG;
  const int64_t w_in = p.src.shape[3], h_out = p.dst.shape[2], w_out = p.dst.shape[3];
  double* inter = scratch;
  float* cache = reinterpret_cast<float*>(scratch + pl.pitch * kRows);
  const S step(p.src.stride[3]);
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t b = u % pl.blocks;
    const int64_t rest = u / pl.blocks;
    const int64_t g = rest % pl.groups;
    const int64_t n = rest / pl.groups;
    const int64_t y0 = b * kRows;
    const int rows = static_cast<int>(std::min<int64_t>(kRows, h_out - y0));
    const int64_t c0 = g * CG;
    const int64_t first = p.y_start[y0];
    if (pl.cache_rows > 0) {
      const int64_t count = p.y_start[y0 + rows - 1] + p.ky - first;
      fill_cache<D, S>(cache, pl.pitch, p.src.ptr<T>(n, c0, first), p.src.stride[2], step,
                       count, pl.row_len);
    }
    O* dptr[LANES];
    for (int r = 0; r < kRows; ++r) {
      if (r < rows) {
        const int64_t y = y0 + r;
        const double* w = p.y_weight + y * p.ky;
        if (pl.cache_rows > 0) {
          vertical<DType::F32, Step<1>, CG>(inter, r, cache + (p.y_start[y] - first) * pl.pitch,
                                            pl.pitch, Step<1>(1), w, p.ky, pl.row_len);
        } else {
          vertical<D, S, CG>(inter, r, p.src.ptr<T>(n, c0, p.y_start[y]), p.src.stride[2], step,
                             w, p.ky, pl.row_len);
        }
        for (int c = 0; c < CG; ++c) dptr[r * CG + c] = p.dst.ptr<O>(n, c0 + c, y);
      } else {
        zero_lane<CG>(inter, r, w_in);
      }
    }
    horizontal<O, CG, CLIP>(inter, p.x_start, p.x_weight, p.kx, w_out, dptr, rows * CG,
                            p.dst.stride[3], p.lo, p.hi);
  }
}

template <DType D, bool CLIP>
FASTPERC_INLINE void run_dtype(const ResizeParams& p, const Plan& pl, int64_t u0, int64_t u1,
                               double* scratch) {
  using O = std::conditional_t<D == DType::F64, double, float>;
  if (pl.cg == 3) {
    run_units<D, O, 3, Step<1>, CLIP>(p, pl, u0, u1, scratch);  // packed: W_in * 3 contiguous
  } else if (p.src.stride[3] == 1) {
    run_units<D, O, 1, Step<1>, CLIP>(p, pl, u0, u1, scratch);
  } else {
    run_units<D, O, 1, Step<0>, CLIP>(p, pl, u0, u1, scratch);
  }
}

template <bool CLIP>
FASTPERC_INLINE void run_any(const ResizeParams& p, const Plan& pl, int64_t u0, int64_t u1,
                             double* scratch) {
  switch (p.src.dtype) {
    case DType::U8: run_dtype<DType::U8, CLIP>(p, pl, u0, u1, scratch); break;
    case DType::F16: run_dtype<DType::F16, CLIP>(p, pl, u0, u1, scratch); break;
    case DType::BF16: run_dtype<DType::BF16, CLIP>(p, pl, u0, u1, scratch); break;
    case DType::F32: run_dtype<DType::F32, CLIP>(p, pl, u0, u1, scratch); break;
    case DType::F64: run_dtype<DType::F64, CLIP>(p, pl, u0, u1, scratch); break;
  }
}

// The whole hot path, compiled once per CPU target (AVX2 and baseline).
FASTPERC_CLONES void resize_units_entry(const ResizeParams& p, const Plan& pl, int64_t u0,
                                        int64_t u1, double* scratch) {
  if (p.clip) {
    run_any<true>(p, pl, u0, u1, scratch);
  } else {
    run_any<false>(p, pl, u0, u1, scratch);
  }
}

}  // namespace

int64_t scratch_elems(const ResizeParams& p) {
  return make_plan(p).per_thread * max_threads();
}

void resample(const ResizeParams& p) {
  const Plan pl = make_plan(p);
  const int64_t units = p.src.shape[0] * pl.groups * pl.blocks;
  const double cost = static_cast<double>(kRows * pl.cg) *
                      static_cast<double>(p.ky * p.src.shape[3] + p.kx * p.dst.shape[3] +
                                          p.src.shape[3]);
  double* base = p.scratch;
  parallel_rows(units, cost, [&](int64_t u0, int64_t u1) {
    double* mine = base + static_cast<int64_t>(thread_id()) * pl.per_thread;
    resize_units_entry(p, pl, u0, u1, mine);
  });
}

}  // namespace resize
}  // namespace fastperc
