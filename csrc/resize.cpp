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
//
// uint8 images with contiguous rows (planar, or packed RGB: numpy HWC, channels_last) take a
// second implementation of the same arithmetic on CPUs with AVX-512 (the FID resize, 512x512x3
// -> 299x299, is its main use): see "AVX-512 path" below. Its results are bit-identical to the
// portable kernel's (same float64 operations in the same order), so they do not depend on
// the CPU either.
#include "resize.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

// The AVX-512 path: GCC >= 12 on x86-64 (target attributes, __builtin_assoc_barrier,
// __builtin_cpu_supports); elsewhere only the portable kernel is built.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && \
    !defined(FASTPERC_NO_CLONES)
#define FASTPERC_RESIZE_AVX512 1
// GCC 12's AVX-512 headers build some results from a self-initialised "undefined" vector,
// which -Wmaybe-uninitialized reports once inlined (a false positive): silenced for them only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#define FASTPERC_RESIZE_AVX512 0
#endif

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

// One unit of work: a block of output rows of one image and one channel group, from its flat
// index (row blocks vary fastest, then groups, then images).
struct Unit {
  int64_t n, c0, y0, block;
  int rows;
};

inline __attribute__((always_inline)) Unit unit_of(int64_t u, int64_t blocks, int64_t groups,
                                                   int64_t cg, int block_rows, int64_t h_out) {
  Unit t;
  t.block = u % blocks;
  const int64_t rest = u / blocks;
  t.n = rest / groups;
  t.c0 = rest % groups * cg;
  t.y0 = t.block * block_rows;
  t.rows = static_cast<int>(std::min<int64_t>(block_rows, h_out - t.y0));
  return t;
}

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
    const Unit t = unit_of(u, pl.blocks, pl.groups, CG, kRows, h_out);
    const int64_t n = t.n, c0 = t.c0, y0 = t.y0;
    const int rows = t.rows;
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


// ---------------------------------------------------------------------------------------------
// AVX-512 path: uint8 rows (planar, or packed RGB) -> float32
// ---------------------------------------------------------------------------------------------
//
// The same two passes, laid out for 512-bit registers. Work is cut into tiles of kTile output
// rows (of one image and one channel group), handed out by parallel_rows:
//
//  1. vertical, in strips of kStrip samples of the row: the strip of every source row the tile
//     reads is converted to float64 once (an L1-sized buffer), then each output row's sums
//     (8 samples per vector, the taps in order) run for two output rows at a time, so that
//     a vector loaded from a source row the two share feeds both products. The tile's rows are
//     then transposed 8 x 8 into T[sample][row] (float64, an L2-sized buffer);
//  2. horizontal: each output pixel is a sum over its taps of T vectors (lanes: the tile's 8
//     rows, x CG channels), again two pixels at a time sharing the loads of their common
//     taps; the results are clamped, rounded to float32, transposed 8 x 8 back to rows and
//     stored 8 pixels at a time.
//
// Every product and sum is the portable kernel's: float64, each output's taps added in order
// from 0, no FMA (__builtin_assoc_barrier keeps GCC from contracting mul + add), one rounding
// to float32 after the clamp. While a tile runs, the source rows of the next one are
// prefetched (one image is larger than L2; the hardware prefetchers do not follow the ~20 row
// streams of a tile).
#if FASTPERC_RESIZE_AVX512

#define FASTPERC_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define FASTPERC_AVX512_INLINE FASTPERC_AVX512 inline __attribute__((always_inline))
#define FASTPERC_NO_FMA(x) __builtin_assoc_barrier(x)

constexpr int kTile = 8;    // output rows per tile: the lanes of the second pass
constexpr int kStrip = 64;  // samples per strip of the first pass: 8 vectors per row

struct FastPlan {
  bool ok = false;
  int cg = 1;              // channels per pixel: 3 (packed RGB) or 1
  int64_t groups = 1;      // C / cg
  int64_t tiles = 1;       // tiles per image and group: ceil(H_out / kTile)
  int64_t row_len = 0;     // samples per source row: W_in * cg
  int64_t t_len = 0;       // row_len rounded up to whole strips
  int64_t src_rows = 0;    // source rows a tile reads at most
  int64_t per_thread = 0;  // scratch doubles per thread: T, the strip buffer, tile weights
};

FastPlan make_fast_plan(const ResizeParams& p) {
  FastPlan f;
  if (p.src.dtype != DType::U8 || p.dst.dtype != DType::F32) return f;
  const int64_t c = p.src.shape[1];
  const bool packed = c == 3 && p.src.stride[1] == 1 && p.src.stride[3] == 3;
  if (!packed && p.src.stride[3] != 1) return f;
  // Tiles and pixel pairs read windows that only move forward.
  const int64_t h_out = p.dst.shape[2], w_out = p.dst.shape[3];
  for (int64_t y = 1; y < h_out; ++y)
    if (p.y_start[y] < p.y_start[y - 1]) return f;
  for (int64_t x = 1; x < w_out; ++x)
    if (p.x_start[x] < p.x_start[x - 1]) return f;
  f.cg = packed ? 3 : 1;
  f.groups = c / f.cg;
  f.tiles = (h_out + kTile - 1) / kTile;
  f.row_len = p.src.shape[3] * f.cg;
  f.t_len = (f.row_len + kStrip - 1) / kStrip * kStrip;
  for (int64_t y0 = 0; y0 < h_out; y0 += kTile) {
    const int64_t y1 = std::min(h_out, y0 + kTile) - 1;
    f.src_rows = std::max(f.src_rows, p.y_start[y1] + p.ky - p.y_start[y0]);
  }
  f.per_thread = f.t_len * kTile + f.src_rows * kStrip + kTile * p.ky + 8;
  f.ok = true;
  return f;
}

bool have_avx512() {
  static const bool v = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }();
  return v;
}

// r[0..7] (rows) -> columns: r[j][i] becomes r[i][j]. In-lane unpacks, then two rounds of
// 128-bit lane shuffles.
FASTPERC_AVX512_INLINE void transpose8(__m512d* r) {
  __m512d t[8], u[8];
  for (int i = 0; i < 4; ++i) {  // t[2i + h]: rows 2i, 2i + 1 at columns h, 2 + h, 4 + h, 6 + h
    t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    u[4 * h + 0] = _mm512_shuffle_f64x2(t[h], t[2 + h], 0x88);      // rows 0-3, cols h, 4 + h
    u[4 * h + 1] = _mm512_shuffle_f64x2(t[h], t[2 + h], 0xDD);      // rows 0-3, cols 2 + h, 6 + h
    u[4 * h + 2] = _mm512_shuffle_f64x2(t[4 + h], t[6 + h], 0x88);  // rows 4-7, cols h, 4 + h
    u[4 * h + 3] = _mm512_shuffle_f64x2(t[4 + h], t[6 + h], 0xDD);  // rows 4-7, cols 2 + h, 6 + h
  }
  for (int h = 0; h < 2; ++h) {
    r[h] = _mm512_shuffle_f64x2(u[4 * h], u[4 * h + 2], 0x88);
    r[4 + h] = _mm512_shuffle_f64x2(u[4 * h], u[4 * h + 2], 0xDD);
    r[2 + h] = _mm512_shuffle_f64x2(u[4 * h + 1], u[4 * h + 3], 0x88);
    r[6 + h] = _mm512_shuffle_f64x2(u[4 * h + 1], u[4 * h + 3], 0xDD);
  }
}

// The same for 8 x 8 floats.
FASTPERC_AVX512_INLINE void transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// acc + x * w, rounded twice (a product, then a sum), as the portable kernel computes it.
FASTPERC_AVX512_INLINE __m512d mul_add(__m512d acc, __m512d x, __m512d w) {
  return _mm512_add_pd(acc, FASTPERC_NO_FMA(_mm512_mul_pd(x, w)));
}

// n (<= 16) bytes at p -> 16 doubles at o (zeros past n).
FASTPERC_AVX512_INLINE void u8_to_f64(const uint8_t* p, double* o, int n) {
  const __m128i b = n >= 16 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))
                            : _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << n) - 1u), p);
  const __m512i i = _mm512_cvtepu8_epi32(b);
  _mm512_storeu_pd(o, _mm512_cvtepi32_pd(_mm512_castsi512_si256(i)));
  _mm512_storeu_pd(o + 8, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(i, 1)));
}

// The vertical pass of one tile: T[s * kTile + r] = sum_t wy[r * ky + t] * src[rel[r] + t][s]
// for s < len (and whole strips past it, from zeros). src: the tile's first source row;
// rel[r]: output row r's first source row, relative to it (non-decreasing); buf: strip buffer.
// pf / npf: source rows to prefetch (same row stride), strip by strip.
FASTPERC_AVX512_INLINE void avx512_vertical(const uint8_t* src, int64_t row_stride, int64_t nsrc,
                                            const int64_t* rel, const double* wy, int64_t ky,
                                            int64_t len, double* FASTPERC_RESTRICT buf,
                                            double* FASTPERC_RESTRICT T, const uint8_t* pf,
                                            int64_t npf) {
  constexpr int NV = kStrip / 8;
  for (int64_t j = 0; j < len; j += kStrip) {
    for (int64_t i = 0; i < npf; ++i)
      _mm_prefetch(reinterpret_cast<const char*>(pf + i * row_stride + j), _MM_HINT_T0);
    const int64_t n = std::min<int64_t>(kStrip, len - j);
    for (int64_t i = 0; i < nsrc; ++i) {
      const uint8_t* q = src + i * row_stride + j;
      for (int v = 0; v < kStrip / 16; ++v)
        u8_to_f64(q + 16 * v, buf + i * kStrip + 16 * v,
                  static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(16, n - 16 * v))));
    }
    __m512d acc[NV][kTile];
    for (int r = 0; r < kTile; r += 2) {
      // Rows r and r + 1 read source rows rel[r] + u, u < d + ky, d = rel[r + 1] - rel[r]:
      // row r for u < ky (tap u), row r + 1 for u >= d (tap u - d); each row's taps in order.
      __m512d h0[NV], h1[NV];
      for (int v = 0; v < NV; ++v) h0[v] = h1[v] = _mm512_setzero_pd();
      const int64_t d = rel[r + 1] - rel[r];
      const double* b = buf + rel[r] * kStrip;
      const double* w0 = wy + r * ky;
      const double* w1 = w0 + ky - d;  // w1[u]: row r + 1's weight of source row rel[r] + u
      const int64_t both = std::min(d, ky), only1 = std::max(d, ky);
      for (int64_t u = 0; u < both; ++u) {
        const __m512d a = _mm512_set1_pd(w0[u]);
        for (int v = 0; v < NV; ++v) h0[v] = mul_add(h0[v], _mm512_loadu_pd(b + u * kStrip + 8 * v), a);
      }
      for (int64_t u = both; u < ky; ++u) {
        const __m512d a = _mm512_set1_pd(w0[u]), c = _mm512_set1_pd(w1[u]);
        for (int v = 0; v < NV; ++v) {
          __m512d x = _mm512_loadu_pd(b + u * kStrip + 8 * v);
          __asm__("" : "+v"(x));  // one load for both products (not two folded ones)
          h0[v] = mul_add(h0[v], x, a);
          h1[v] = mul_add(h1[v], x, c);
        }
      }
      for (int64_t u = only1; u < d + ky; ++u) {
        const __m512d c = _mm512_set1_pd(w1[u]);
        for (int v = 0; v < NV; ++v) h1[v] = mul_add(h1[v], _mm512_loadu_pd(b + u * kStrip + 8 * v), c);
      }
      for (int v = 0; v < NV; ++v) {
        acc[v][r] = h0[v];
        acc[v][r + 1] = h1[v];
      }
    }
    for (int v = 0; v < NV; ++v) {
      transpose8(acc[v]);
      double* o = T + (j + 8 * v) * kTile;
      for (int s = 0; s < 8; ++s) _mm512_storeu_pd(o + s * kTile, acc[v][s]);
    }
  }
}

FASTPERC_AVX512_INLINE __m256 finish(__m512d a, bool clip, double lo, double hi) {
  if (clip) a = _mm512_min_pd(_mm512_max_pd(a, _mm512_set1_pd(lo)), _mm512_set1_pd(hi));
  return _mm512_cvtpd_ps(a);
}

// Output pixels x and x + 1 of the horizontal pass: res[i * CG + c] for pixel x + i, channel
// c, lanes: the tile's rows. Like the vertical pass's row pairs: the pixels read positions
// xs[x] + u, u < d + kx, d = xs[x + 1] - xs[x].
template <int CG>
FASTPERC_AVX512_INLINE void pixel_pair(const double* FASTPERC_RESTRICT T, const int64_t* xs,
                                       const double* wx, int64_t kx, int64_t x, bool clip,
                                       double lo, double hi, __m256* res) {
  __m512d h0[CG], h1[CG];
  for (int c = 0; c < CG; ++c) h0[c] = h1[c] = _mm512_setzero_pd();
  const int64_t d = xs[x + 1] - xs[x];
  const double* b = T + xs[x] * CG * kTile;
  const double* w0 = wx + x * kx;
  const double* w1 = w0 + kx - d;  // w1[u]: pixel x + 1's weight of position xs[x] + u
  const int64_t both = std::min(d, kx), only1 = std::max(d, kx);
  for (int64_t u = 0; u < both; ++u) {
    const __m512d a = _mm512_set1_pd(w0[u]);
    for (int c = 0; c < CG; ++c) h0[c] = mul_add(h0[c], _mm512_loadu_pd(b + (u * CG + c) * kTile), a);
  }
  for (int64_t u = both; u < kx; ++u) {
    const __m512d a = _mm512_set1_pd(w0[u]), e = _mm512_set1_pd(w1[u]);
    for (int c = 0; c < CG; ++c) {
      __m512d v = _mm512_loadu_pd(b + (u * CG + c) * kTile);
      __asm__("" : "+v"(v));
      h0[c] = mul_add(h0[c], v, a);
      h1[c] = mul_add(h1[c], v, e);
    }
  }
  for (int64_t u = only1; u < d + kx; ++u) {
    const __m512d e = _mm512_set1_pd(w1[u]);
    for (int c = 0; c < CG; ++c) h1[c] = mul_add(h1[c], _mm512_loadu_pd(b + (u * CG + c) * kTile), e);
  }
  for (int c = 0; c < CG; ++c) {
    res[c] = finish(h0[c], clip, lo, hi);
    res[CG + c] = finish(h1[c], clip, lo, hi);
  }
}

// One output pixel of the horizontal pass: res[c].
template <int CG>
FASTPERC_AVX512_INLINE void pixel_one(const double* FASTPERC_RESTRICT T, const int64_t* xs,
                                      const double* wx, int64_t kx, int64_t x, bool clip,
                                      double lo, double hi, __m256* res) {
  __m512d h[CG];
  for (int c = 0; c < CG; ++c) h[c] = _mm512_setzero_pd();
  const double* b = T + xs[x] * CG * kTile;
  for (int64_t u = 0; u < kx; ++u) {
    const __m512d a = _mm512_set1_pd(wx[x * kx + u]);
    for (int c = 0; c < CG; ++c) h[c] = mul_add(h[c], _mm512_loadu_pd(b + (u * CG + c) * kTile), a);
  }
  for (int c = 0; c < CG; ++c) res[c] = finish(h[c], clip, lo, hi);
}

// The horizontal pass of one tile into its `rows` output rows drow[r]: pixel x, channel c at
// drow[r][x * ds + c * dcs]; dense: ds == CG, dcs == 1 (rows of whole pixels, stored 8 at a
// time when the tile is full).
template <int CG>
FASTPERC_AVX512_INLINE void avx512_horizontal(const double* FASTPERC_RESTRICT T,
                                              const ResizeParams& p, float* const* drow,
                                              int rows, bool dense) {
  const int64_t w_out = p.dst.shape[3], kx = p.kx, ds = p.dst.stride[3], dcs = p.dst.stride[1];
  int64_t x = 0;
  if (dense && rows == kTile) {
    for (; x + 8 <= w_out; x += 8) {
      __m256 res[8 * CG];  // [pixel][channel]
      for (int i = 0; i < 8; i += 2)
        pixel_pair<CG>(T, p.x_start, p.x_weight, kx, x + i, p.clip, p.lo, p.hi, res + i * CG);
      for (int b = 0; b < CG; ++b) {  // rows of 8 consecutive floats: pixels x.. x + 7
        transpose8(res + 8 * b);
        for (int r = 0; r < kTile; ++r) _mm256_storeu_ps(drow[r] + x * CG + 8 * b, res[8 * b + r]);
      }
    }
  }
  for (; x < w_out; ++x) {
    __m256 res[CG];
    pixel_one<CG>(T, p.x_start, p.x_weight, kx, x, p.clip, p.lo, p.hi, res);
    for (int c = 0; c < CG; ++c) {
      alignas(32) float v[kTile];
      _mm256_store_ps(v, res[c]);
      for (int r = 0; r < rows; ++r) drow[r][x * ds + c * dcs] = v[r];
    }
  }
}

template <int CG>
FASTPERC_AVX512_INLINE void avx512_tiles(const ResizeParams& p, const FastPlan& f, int64_t u0,
                                         int64_t u1, double* scratch) {
  const int64_t h_out = p.dst.shape[2];
  double* T = scratch;
  double* buf = T + f.t_len * kTile;
  double* wy = buf + f.src_rows * kStrip;
  const bool dense = CG == 3 ? (p.dst.stride[3] == 3 && p.dst.stride[1] == 1) : p.dst.stride[3] == 1;
  for (int64_t u = u0; u < u1; ++u) {
    const Unit t = unit_of(u, f.tiles, f.groups, CG, kTile, h_out);
    const int64_t n = t.n, c0 = t.c0, y0 = t.y0, b = t.block;
    const int rows = t.rows;
    const int64_t first = p.y_start[y0];
    const int64_t nsrc = p.y_start[y0 + rows - 1] + p.ky - first;
    // Rows past the last output row repeat it with zero weights (their sums are not stored).
    int64_t rel[kTile];
    float* drow[kTile];
    for (int r = 0; r < kTile; ++r) {
      const int64_t y = y0 + std::min(r, rows - 1);
      rel[r] = p.y_start[y] - first;
      for (int64_t t = 0; t < p.ky; ++t) wy[r * p.ky + t] = r < rows ? p.y_weight[y * p.ky + t] : 0.0;
      drow[r] = p.dst.ptr<float>(n, c0, y);
    }
    // The source rows the next tile reads and this one does not.
    const uint8_t* pf = nullptr;
    int64_t npf = 0;
    if (u + 1 < u1 && b + 1 < f.tiles) {
      const int64_t lo = first + nsrc;
      const int64_t hi = p.y_start[std::min(h_out, y0 + 2 * kTile) - 1] + p.ky;
      if (hi > lo) {
        pf = p.src.ptr<uint8_t>(n, c0, lo);
        npf = hi - lo;
      }
    }
    avx512_vertical(p.src.ptr<uint8_t>(n, c0, first), p.src.stride[2], nsrc, rel, wy, p.ky,
                    f.row_len, buf, T, pf, npf);
    avx512_horizontal<CG>(T, p, drow, rows, dense);
  }
}

FASTPERC_AVX512 void avx512_entry(const ResizeParams& p, const FastPlan& f, int64_t u0,
                                  int64_t u1, double* scratch) {
  if (f.cg == 3) {
    avx512_tiles<3>(p, f, u0, u1, scratch);
  } else {
    avx512_tiles<1>(p, f, u0, u1, scratch);
  }
}

#undef FASTPERC_NO_FMA
#undef FASTPERC_AVX512_INLINE
#undef FASTPERC_AVX512

#else  // !FASTPERC_RESIZE_AVX512

struct FastPlan {
  bool ok = false;
};
FastPlan make_fast_plan(const ResizeParams&) { return FastPlan{}; }
bool have_avx512() { return false; }

#endif  // FASTPERC_RESIZE_AVX512

// The AVX-512 path's plan when it runs this call, else one with ok == false.
FastPlan fast_plan(const ResizeParams& p) {
  return have_avx512() ? make_fast_plan(p) : FastPlan{};
}

}  // namespace

// Work of one unit of `rows` output rows x `cg` channels, for parallel_rows' split: the
// vertical taps over a source row, the horizontal taps over an output row, the row loads.
static double unit_cost(const ResizeParams& p, int64_t rows, int64_t cg) {
  return static_cast<double>(rows * cg) *
         static_cast<double>(p.ky * p.src.shape[3] + p.kx * p.dst.shape[3] + p.src.shape[3]);
}

int64_t scratch_elems(const ResizeParams& p) {
#if FASTPERC_RESIZE_AVX512
  const FastPlan f = fast_plan(p);
  if (f.ok) return f.per_thread * max_threads();
#endif
  return make_plan(p).per_thread * max_threads();
}

void resample(const ResizeParams& p) {
#if FASTPERC_RESIZE_AVX512
  const FastPlan f = fast_plan(p);
  if (f.ok) {
    double* base = p.scratch;
    parallel_rows(p.src.shape[0] * f.groups * f.tiles, unit_cost(p, kTile, f.cg),
                  [&](int64_t u0, int64_t u1) {
      avx512_entry(p, f, u0, u1, base + static_cast<int64_t>(thread_id()) * f.per_thread);
    });
    return;
  }
#endif
  const Plan pl = make_plan(p);
  double* base = p.scratch;
  parallel_rows(p.src.shape[0] * pl.groups * pl.blocks, unit_cost(p, kRows, pl.cg),
                [&](int64_t u0, int64_t u1) {
    double* mine = base + static_cast<int64_t>(thread_id()) * pl.per_thread;
    resize_units_entry(p, pl, u0, u1, mine);
  });
}

}  // namespace resize
}  // namespace fastperc
