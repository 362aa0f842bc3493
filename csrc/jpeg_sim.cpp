// JPEG round trip of image batches (jpeg_sim.h), fused per MCU row: the spec is
// python/fastperc/reference/jpeg.py (simulate_exact / simulate_float / simulate_differentiable)
// with the input and output conversions of python/fastperc/jpeg.py.
//
// One task is a range of MCU rows (16 pixel rows for 4:2:0, 8 otherwise) of one image. For each
// MCU row the pipeline
//   1. reads the input rows (any dtype and strides) into planar scratch rows,
//   2. converts them to Y, Cb, Cr and pads them as libjpeg does (right edge replicated to whole
//      blocks, chroma padded at full resolution before h2v1/h2v2 downsampling, bottom rows
//      replicated),
//   3. codes every 8x8 block in place: forward DCT, quantization, dequantization, inverse DCT,
//   4. upsamples the chroma (fancy triangle filter, or replication when it is at most 2 wide),
//      converts back to RGB and writes the output rows.
// 4:2:0 upsampling reads one chroma row above and below each MCU row, so a task keeps three MCU
// rows of decoded planes (previous, current, next) and codes the chroma of the row before its
// first one again; tasks are whole images whenever the batch has enough of them. The planes hold
// int32 8-bit samples (exact mode), or the work type: integral values (float mode) or not
// (differentiable mode). For packed 8-bit RGB the float mode's steps 1-2 and 4 are fused row
// kernels (FastU8, jpeg_sim_fast.inc) with the general rows' values.
//
// Block transforms run as butterflies on 8-lane vectors, every 1-D pass on eight columns (or
// blocks) at once:
//   exact:          jfdctint.c / jidctint.c (LL&M, 13-bit constants) on int32 lanes, one block
//                   at a time (its rows, transposed between the passes), divide rounding half
//                   away from zero through an exact float reciprocal, saturation after the
//                   inverse DCT (libjpeg-turbo's SIMD IDCTs saturate);
//   float:          the same butterfly structure with exact cosines in float32 (float64 for
//                   float64 images), rounded at libjpeg's points (reference.fdct_float/idct_float);
//                   eight blocks at a time, one per lane (code_row_float);
//   differentiable: orthonormal transforms without intermediate rounding, one block at a time.
#include "jpeg_sim.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "common.h"
#include "jpeg_sim_simd.h"

// The AVX2 build of the fused rows (jpeg_sim_fast.inc): GCC on x86-64, picked at run time.
#if FASTPERC_JPEG_GNU_VECTORS && defined(__x86_64__) && defined(__GNUC__) && \
    !defined(__clang__) && !defined(FASTPERC_NO_CLONES)
#define FASTPERC_JPEG_FAST_AVX2_BUILD 1
#include <immintrin.h>
#else
#define FASTPERC_JPEG_FAST_AVX2_BUILD 0
#endif

// The vector helpers pass and return 32/64-byte vectors, always inlined into the entries of one
// target: no call crosses a target boundary, so the ABI note GCC attaches to them does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FASTPERC_JPEG_LAMBDA_INLINE __attribute__((always_inline))
#else
#define FASTPERC_JPEG_LAMBDA_INLINE
#endif

// Complete unrolling of a short loop over a block's vectors (which then stay in registers).
#if defined(__GNUC__) && !defined(__clang__)
#define FASTPERC_JPEG_UNROLL _Pragma("GCC unroll 8")
#elif defined(__clang__)
#define FASTPERC_JPEG_UNROLL _Pragma("unroll")
#else
#define FASTPERC_JPEG_UNROLL
#endif

namespace fastperc {
namespace jpeg_sim {
namespace {

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------
// Geometry of one image (libjpeg's: jcmaster.c / jdmaster.c initial_setup)
// ---------------------------------------------------------------------------------------------

struct Geometry {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int fh = 1, fv = 1;        // chroma factors; (1, 1) for 4:4:4 and greyscale
  int64_t mcu_h = 8;         // pixel rows per MCU row: 8 * fv
  int64_t mcu_rows = 0;      // ceil(h / mcu_h)
  int64_t hb = 0, wb = 0;    // luma blocks: height_in_blocks, width_in_blocks
  int64_t ypad = 0;          // padded luma width, wb * 8 (also w rounded up to 8: row scratch)
  int64_t hc = 0, wc = 0;    // chroma size: ceil(h / fv), ceil(w / fh)
  int64_t cwb = 0;           // chroma width_in_blocks: ceil(w / (8 fh))
  int64_t cpad = 0;          // padded chroma width, cwb * 8
  int64_t cfull = 0;         // full-resolution chroma width before downsampling, cpad * fh
};

Geometry make_geometry(const SimParams& p) {
  Geometry g;
  g.n = p.src.shape[0];
  g.c = p.src.shape[1];
  g.h = p.src.shape[2];
  g.w = p.src.shape[3];
  if (g.c == 3) {
    g.fh = p.fh;
    g.fv = p.fv;
  }
  g.mcu_h = 8 * g.fv;
  g.mcu_rows = ceil_div(g.h, g.mcu_h);
  g.hb = ceil_div(g.h, 8);
  g.wb = ceil_div(g.w, 8);
  g.ypad = g.wb * 8;
  g.hc = ceil_div(g.h, g.fv);
  g.wc = ceil_div(g.w, g.fh);
  g.cwb = ceil_div(g.w, 8 * g.fh);
  g.cpad = g.cwb * 8;
  g.cfull = g.cpad * g.fh;
  return g;
}

// ---------------------------------------------------------------------------------------------
// Tables, prepared once per call
// ---------------------------------------------------------------------------------------------

template <class T>
struct FloatTables {
  T q[3][64];        // q (float: dequantization)
  T q8[3][64];       // 8 q: float-mode divisor (non-integer tables)
  T rcp8[3][64];     // 1 / (8 q)
  T half8[3][64];    // 4 q + 1/2: float-mode rounding offset (integer tables)
  T q_over8[3][64];  // q / 8: differentiable dequantization with the IDCT's 1/8 folded in
  // q, half8, rcp8 with each entry in 8 lanes: the float mode's code_row_float, which holds
  // one block per lane, loads them as vectors.
  T qv[3][64][8], half8v[3][64][8], rcp8v[3][64][8];
  // 0 and 255 where the compiler cannot see them: clamping to constants compiles to a compare
  // and a blend, to unknown bounds to one min / max instruction each.
  T lo = 0, hi = 255;
};

struct Prepared {
  int32_t q[3][64];     // exact: dequantization multiplier
  int32_t half[3][64];  // exact: (8 q) >> 1
  float rcp[3][64];     // exact: 1 / (8 q), correctly rounded
  bool integer_tables = true;
  FloatTables<float> f32;
  FloatTables<double> f64;
  // Exact mode, float outputs: the 256 values k * value_range / 255 in the output dtype's bits.
  uint64_t out_lut[256];
  double in_scale = 1.0;   // 255 / value_range (float inputs)
  double out_scale = 1.0;  // value_range / 255 (float outputs)
  // Float-mode colour matrices (exact JFIF coefficients; reference.color._ycbcr_float_matrix
  // and its inverse).
  double fwd[9], inv[9];
  float fwd32[9], inv32[9];  // the same in float32 (the float32 work type)
};

template <class T>
const FloatTables<T>& float_tables(const Prepared& p) {
  if constexpr (std::is_same_v<T, float>)
    return p.f32;
  else
    return p.f64;
}

template <class T>
void fill_float_tables(FloatTables<T>& t, const SimParams& p) {
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 64; ++i) {
      const double q = p.tables[k][i];
      t.q[k][i] = static_cast<T>(q);
      t.q8[k][i] = static_cast<T>(8.0 * q);
      t.rcp8[k][i] = static_cast<T>(1.0 / (8.0 * q));
      t.half8[k][i] = static_cast<T>(4.0 * q + 0.5);
      t.q_over8[k][i] = static_cast<T>(q / 8.0);
      for (int j = 0; j < 8; ++j) {
        t.qv[k][i][j] = t.q[k][i];
        t.half8v[k][i][j] = t.half8[k][i];
        t.rcp8v[k][i][j] = t.rcp8[k][i];
      }
    }
}

template <DType D>
uint64_t store_bits(double v) {
  using T = typename Traits<D>::T;
  T t;
  if constexpr (D == DType::F64)
    t = v;
  else if constexpr (D == DType::U8)
    t = static_cast<T>(v);
  else
    t = Traits<D>::store(static_cast<float>(v));  // float16/bfloat16: via float32, as torch
  uint64_t bits = 0;
  std::memcpy(&bits, &t, sizeof t);
  return bits;
}

void prepare(const SimParams& p, Prepared& out) {
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 64; ++i) {
      const double q = p.tables[k][i];
      if (q != std::floor(q)) out.integer_tables = false;
      const int32_t qi = p.mode == Mode::Exact ? static_cast<int32_t>(q) : 1;
      out.q[k][i] = qi;
      out.half[k][i] = (8 * qi) >> 1;
      out.rcp[k][i] = static_cast<float>(1.0 / (8.0 * qi));
    }
  fill_float_tables(out.f32, p);
  fill_float_tables(out.f64, p);
  const bool u8 = p.src.dtype == DType::U8;
  out.in_scale = u8 ? 1.0 : 255.0 / p.value_range;
  out.out_scale = u8 ? 1.0 : p.value_range / 255.0;
  for (int v = 0; v < 256; ++v) {
    const double x = static_cast<double>(v) * out.out_scale;
    switch (p.dst.dtype) {
      case DType::U8: out.out_lut[v] = store_bits<DType::U8>(v); break;
      case DType::F16: out.out_lut[v] = store_bits<DType::F16>(x); break;
      case DType::BF16: out.out_lut[v] = store_bits<DType::BF16>(x); break;
      case DType::F32: out.out_lut[v] = store_bits<DType::F32>(x); break;
      case DType::F64: out.out_lut[v] = store_bits<DType::F64>(x); break;
    }
  }
  // Y = kr R + kg G + kb B, Cb = (B - Y) / (2 (1 - kb)), Cr = (R - Y) / (2 (1 - kr)), and the
  // inverse in closed form (what np.linalg.inv gives, to rounding).
  const double kr = 0.299, kb = 0.114, kg = 1.0 - kr - kb;
  const double fwd[9] = {kr, kg, kb,
                         -0.5 * kr / (1 - kb), -0.5 * kg / (1 - kb), 0.5,
                         0.5, -0.5 * kg / (1 - kr), -0.5 * kb / (1 - kr)};
  const double inv[9] = {1.0, 0.0, 2 * (1 - kr),
                         1.0, -2 * kb * (1 - kb) / kg, -2 * kr * (1 - kr) / kg,
                         1.0, 2 * (1 - kb), 0.0};
  std::memcpy(out.fwd, fwd, sizeof fwd);
  std::memcpy(out.inv, inv, sizeof inv);
  for (int i = 0; i < 9; ++i) {
    out.fwd32[i] = static_cast<float>(fwd[i]);
    out.inv32[i] = static_cast<float>(inv[i]);
  }
}

// ---------------------------------------------------------------------------------------------
// ISLOW integer DCTs (jfdctint.c, jidctint.c), on eight int32 lanes
// ---------------------------------------------------------------------------------------------

constexpr int kConstBits = 13;
constexpr int kPass1Bits = 2;
constexpr int32_t kF0298 = 2446, kF0390 = 3196, kF0541 = 4433, kF0765 = 6270, kF0899 = 7373,
                  kF1175 = 9633, kF1501 = 12299, kF1847 = 15137, kF1961 = 16069,
                  kF2053 = 16819, kF2562 = 20995, kF3072 = 25172;

// DESCALE: add half, arithmetic shift right.
template <int N>
FASTPERC_INLINE I8 descale(I8 x) {
  return (x + (1 << (N - 1))) >> N;
}

// The odd part shared by both transforms (reference jpeg._odd_rotations): inputs in the
// forward transform's order tmp4..tmp7 (the inverse passes y7, y5, y3, y1).
FASTPERC_INLINE void odd_part(I8 t4, I8 t5, I8 t6, I8 t7, I8& r4, I8& r5, I8& r6, I8& r7) {
  const I8 z5 = ((t4 + t6) + (t5 + t7)) * kF1175;
  const I8 z1 = (t4 + t7) * -kF0899;
  const I8 z2 = (t5 + t6) * -kF2562;
  const I8 z3 = (t4 + t6) * -kF1961 + z5;
  const I8 z4 = (t5 + t7) * -kF0390 + z5;
  r4 = t4 * kF0298 + z1 + z3;
  r5 = t5 * kF2053 + z2 + z4;
  r6 = t6 * kF3072 + z2 + z3;
  r7 = t7 * kF1501 + z1 + z4;
}

// One pass of jpeg_fdct_islow over d[0..7] (the 1-D transform runs across the array, lane by
// lane). First pass: keep PASS1_BITS extra bits; second: remove them (output scaled by 8).
template <bool First>
FASTPERC_INLINE void fdct_islow_pass(I8 (&d)[8]) {
  constexpr int kShift = First ? kConstBits - kPass1Bits : kConstBits + kPass1Bits;
  const I8 t0 = d[0] + d[7], t7 = d[0] - d[7];
  const I8 t1 = d[1] + d[6], t6 = d[1] - d[6];
  const I8 t2 = d[2] + d[5], t5 = d[2] - d[5];
  const I8 t3 = d[3] + d[4], t4 = d[3] - d[4];
  const I8 t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;
  if constexpr (First) {
    d[0] = (t10 + t11) << kPass1Bits;
    d[4] = (t10 - t11) << kPass1Bits;
  } else {
    d[0] = descale<kPass1Bits>(t10 + t11);
    d[4] = descale<kPass1Bits>(t10 - t11);
  }
  const I8 z1 = (t12 + t13) * kF0541;
  d[2] = descale<kShift>(z1 + t13 * kF0765);
  d[6] = descale<kShift>(z1 - t12 * kF1847);
  I8 r4, r5, r6, r7;
  odd_part(t4, t5, t6, t7, r4, r5, r6, r7);
  d[7] = descale<kShift>(r4);
  d[5] = descale<kShift>(r5);
  d[3] = descale<kShift>(r6);
  d[1] = descale<kShift>(r7);
}

// One pass of jpeg_idct_islow (before range limiting); Shift is CONST_BITS - PASS1_BITS for
// the column pass, CONST_BITS + PASS1_BITS + 3 for the row pass. The all-zero-AC shortcuts of
// jidctint.c give the same values and are not taken.
template <int Shift>
FASTPERC_INLINE void idct_islow_pass(I8 (&d)[8]) {
  const I8 z1 = (d[2] + d[6]) * kF0541;
  const I8 t2 = z1 - d[6] * kF1847;
  const I8 t3 = z1 + d[2] * kF0765;
  const I8 t0 = (d[0] + d[4]) << kConstBits;
  const I8 t1 = (d[0] - d[4]) << kConstBits;
  const I8 t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;
  I8 o7, o5, o3, o1;
  odd_part(d[7], d[5], d[3], d[1], o7, o5, o3, o1);
  d[0] = descale<Shift>(t10 + o1);
  d[7] = descale<Shift>(t10 - o1);
  d[1] = descale<Shift>(t11 + o3);
  d[6] = descale<Shift>(t11 - o3);
  d[2] = descale<Shift>(t12 + o5);
  d[5] = descale<Shift>(t12 - o5);
  d[3] = descale<Shift>(t13 + o7);
  d[4] = descale<Shift>(t13 - o7);
}

// Exact mode, one block of 8-bit samples held in int32 (rows `stride` apart), coded in place.
// Quantization: |c| + (8q >> 1) is below 2^16, so floor((|c| + 4q + 0.5) * fl(1 / 8q)) in
// float32 is the exact integer quotient (the relative error, < 2^-22, is far below the distance
// to the next integer, >= 2^-17 of the value), i.e. libjpeg's division rounded half away from
// zero (what its reciprocal multiplication computes too).
FASTPERC_INLINE void code_block_exact(int32_t* p, int64_t stride, const int32_t* q,
                                      const int32_t* half, const float* rcp) {
  I8 d[8];
  for (int i = 0; i < 8; ++i) d[i] = load<I8>(p + i * stride) - 128;
  transpose8(d);                // d[x], lanes y
  fdct_islow_pass<true>(d);     // d[u], lanes y
  transpose8(d);                // d[y], lanes u
  fdct_islow_pass<false>(d);    // d[v], lanes u: coefficients scaled by 8
  for (int v = 0; v < 8; ++v) {
    const I8 c = d[v];
    const I8 a = select<I8>(c < 0, -c, c) + load<I8>(half + 8 * v);
    const F8 t = (convert<F8>(a) + 0.5f) * load<F8>(rcp + 8 * v);
    const I8 qa = convert<I8>(t);  // t >= 0: truncation is floor
    d[v] = select<I8>(c < 0, -qa, qa) * load<I8>(q + 8 * v);
  }
  idct_islow_pass<kConstBits - kPass1Bits>(d);      // d[y], lanes u
  transpose8(d);                                     // d[u], lanes y
  idct_islow_pass<kConstBits + kPass1Bits + 3>(d);  // d[x], lanes y
  transpose8(d);                                     // d[y], lanes x
  const I8 lo = splat<I8>(0), hi = splat<I8>(255);
  for (int i = 0; i < 8; ++i) store<I8>(p + i * stride, vmin(vmax(d[i] + 128, lo), hi));
}

// ---------------------------------------------------------------------------------------------
// Float DCTs: sqrt(8) times the orthonormal 1-D transform (reference.scaled_dct_matrix), as
// butterflies with exact cosines; outputs 0 and 4 are exact sums and differences.
// ---------------------------------------------------------------------------------------------

constexpr double kK1 = 1.3870398453221475;  // sqrt(2) cos(k pi / 16)
constexpr double kK2 = 1.3065629648763766;
constexpr double kK3 = 1.1758756024193588;
constexpr double kK5 = 0.7856949583871022;
constexpr double kK6 = 0.5411961001461970;
constexpr double kK7 = 0.2758993792829431;

// d <- s * C d (forward 1-D across the array); s is a power of two in the float mode, so
// folding it into the constants does not change any rounding.
template <class V>
FASTPERC_INLINE void fdct_float_pass(V (&d)[8], typename Lanes<V>::T s) {
  using T = typename Lanes<V>::T;
  const T k1 = T(kK1 * s), k2 = T(kK2 * s), k3 = T(kK3 * s), k5 = T(kK5 * s), k6 = T(kK6 * s),
          k7 = T(kK7 * s);
  const V e0 = d[0] + d[7], o0 = d[0] - d[7];
  const V e1 = d[1] + d[6], o1 = d[1] - d[6];
  const V e2 = d[2] + d[5], o2 = d[2] - d[5];
  const V e3 = d[3] + d[4], o3 = d[3] - d[4];
  const V a = e0 + e3, b = e1 + e2, c = e0 - e3, e = e1 - e2;
  d[0] = (a + b) * s;
  d[4] = (a - b) * s;
  d[2] = c * k2 + e * k6;
  d[6] = c * k6 - e * k2;
  d[1] = ((o0 * k1 + o1 * k3) + o2 * k5) + o3 * k7;
  d[3] = ((o0 * k3 - o1 * k7) - o2 * k1) - o3 * k5;
  d[5] = ((o0 * k5 - o1 * k1) + o2 * k7) + o3 * k3;
  d[7] = ((o0 * k7 - o1 * k5) + o2 * k3) - o3 * k1;
}

// d <- s * C^T d (inverse 1-D across the array); with Biased, `bias` is added to every output,
// in the two sums every output starts from (a and b below): for the float mode, whose outputs
// are rounded down after adding 1/2 (and 128). Without it nothing is added (not even 0).
template <bool Biased, class V>
FASTPERC_INLINE void idct_float_pass_impl(V (&d)[8], typename Lanes<V>::T s,
                                          typename Lanes<V>::T bias) {
  using T = typename Lanes<V>::T;
  const T k1 = T(kK1 * s), k2 = T(kK2 * s), k3 = T(kK3 * s), k5 = T(kK5 * s), k6 = T(kK6 * s),
          k7 = T(kK7 * s);
  V a = (d[0] + d[4]) * s, b = (d[0] - d[4]) * s;
  if constexpr (Biased) {
    a = a + bias;
    b = b + bias;
  } else {
    (void)bias;
  }
  const V c = d[2] * k2 + d[6] * k6, e = d[2] * k6 - d[6] * k2;
  const V ee0 = a + c, ee3 = a - c, ee1 = b + e, ee2 = b - e;
  const V x1 = d[1], x3 = d[3], x5 = d[5], x7 = d[7];
  const V oo0 = ((x1 * k1 + x3 * k3) + x5 * k5) + x7 * k7;
  const V oo1 = ((x1 * k3 - x3 * k7) - x5 * k1) - x7 * k5;
  const V oo2 = ((x1 * k5 - x3 * k1) + x5 * k7) + x7 * k3;
  const V oo3 = ((x1 * k7 - x3 * k5) + x5 * k3) - x7 * k1;
  d[0] = ee0 + oo0;
  d[7] = ee0 - oo0;
  d[1] = ee1 + oo1;
  d[6] = ee1 - oo1;
  d[2] = ee2 + oo2;
  d[5] = ee2 - oo2;
  d[3] = ee3 + oo3;
  d[4] = ee3 - oo3;
}

template <class V>
FASTPERC_INLINE void idct_float_pass(V (&d)[8], typename Lanes<V>::T s) {
  idct_float_pass_impl<false>(d, s, typename Lanes<V>::T(0));
}

template <class V>
FASTPERC_INLINE void idct_float_pass_biased(V (&d)[8], typename Lanes<V>::T s,
                                            typename Lanes<V>::T bias) {
  idct_float_pass_impl<true>(d, s, bias);
}

template <class V>
FASTPERC_INLINE V round_half_up(V x) {  // floor(x + 0.5)
  using T = typename Lanes<V>::T;
  return vfloor<V>(x + T(0.5));
}

// Float mode: a row of nblocks blocks of 8-bit samples held in T (integral values, rows
// `stride` apart) coded in place, reference.simulate_float's `code`. Eight blocks at a time
// with one block per lane: each group is transposed once on the way in (row y of the eight
// blocks -> element (y, x) of every block in one vector) and once on the way out, and every
// 1-D pass in between is a butterfly across vectors of the group's scratch: no transposes
// between the passes, eight independent transforms in each. The passes are separate loops
// (short bodies, whose iterations the processor overlaps).
template <class V, bool IntegerTables>
FASTPERC_INLINE void code_row_float(typename Lanes<V>::T* base, int64_t stride, int64_t nblocks,
                                    const FloatTables<typename Lanes<V>::T>& t, int k) {
  using T = typename Lanes<V>::T;
  V buf[64];  // element (r, c) of the eight blocks: buf[8 r + c]
  const T* q8 = t.q8[k];
  for (int64_t b0 = 0; b0 < nblocks; b0 += 8) {
    const int nb = static_cast<int>(std::min<int64_t>(8, nblocks - b0));
    T* g = base + 8 * b0;
    // In: lane j = block j (the last block again where the row has fewer than eight).
    for (int y = 0; y < 8; ++y) {
      V r[8];
      if (nb == 8) {
        for (int j = 0; j < 8; ++j) r[j] = load<V>(g + y * stride + 8 * j);
      } else {
        for (int j = 0; j < 8; ++j) r[j] = load<V>(g + y * stride + 8 * std::min(j, nb - 1));
      }
      transpose8(r);
      for (int x = 0; x < 8; ++x) buf[8 * y + x] = r[x];
    }
    // Rows, kept in quarters (PASS1_BITS); the level shift (-128 per sample) changes only the
    // exact sums of output 0: -1024 x 4.
    for (int y = 0; y < 8; ++y) {
      V d[8];
      for (int x = 0; x < 8; ++x) d[x] = buf[8 * y + x];
      fdct_float_pass<V>(d, T(4));
      buf[8 * y] = vfloor<V>(d[0] - T(4095.5));  // (exact: round_half_up(d[0] - 4096))
      for (int u = 1; u < 8; ++u) buf[8 * y + u] = round_half_up<V>(d[u]);
    }
    // Columns: coefficients scaled by 8, rounded to integers; quantization, dequantization.
    for (int u = 0; u < 8; ++u) {
      V d[8];
      for (int y = 0; y < 8; ++y) d[y] = buf[8 * y + u];
      fdct_float_pass<V>(d, T(0.25));
      FASTPERC_JPEG_UNROLL
      for (int v = 0; v < 8; ++v) {
        const V c = round_half_up<V>(d[v]);
        const int i = 8 * v + u;
        if constexpr (IntegerTables && std::is_same_v<T, float>) {
          // The exact integer quotient (as in the exact mode): sign(c) floor((|c| + 4 q) /
          // 8 q) as the truncation of (c + sign(c) 4 q) / 8 q (the product is odd in c).
          const V h = with_sign_of(load<V>(t.half8v[k][i]), c);
          d[v] = vtrunc((c + h) * load<V>(t.rcp8v[k][i])) * load<V>(t.qv[k][i]);
        } else {
          const V a = vabs(c);
          V qa;
          if constexpr (IntegerTables)  // exact integer quotient, as in the exact mode
            qa = vfloor<V>((a + load<V>(t.half8v[k][i])) * load<V>(t.rcp8v[k][i]));
          else  // the reference's correctly rounded division
            qa = vfloor<V>(a / splat<V>(q8[i]) + T(0.5));
          d[v] = with_sign_of(qa, c) * load<V>(t.qv[k][i]);
        }
      }
      for (int v = 0; v < 8; ++v) buf[8 * v + u] = d[v];
    }
    // Inverse columns, in quarters. The rounding's 1/2 (and below, 128.5: the level shift too)
    // enters the sums every output starts from, so each output is rounded once less than
    // round_half_up(x) (+ 128) would; they differ only where x is within an ulp of a half, as
    // the work type's own error does.
    for (int u = 0; u < 8; ++u) {
      V d[8];
      for (int v = 0; v < 8; ++v) d[v] = buf[8 * v + u];
      idct_float_pass_biased<V>(d, T(4), T(0.5));
      for (int y = 0; y < 8; ++y) buf[8 * y + u] = vfloor<V>(d[y]);
    }
    // Rows: remove the quarters and the factor 8; samples rounded, level shift, 0..255.
    const V lo = splat<V>(t.lo), hi = splat<V>(t.hi);
    for (int y = 0; y < 8; ++y) {
      V d[8];
      for (int u = 0; u < 8; ++u) d[u] = buf[8 * y + u];
      idct_float_pass_biased<V>(d, T(1.0 / 32), T(128.5));
      for (int x = 0; x < 8; ++x) d[x] = vmin(vmax(vfloor<V>(d[x]), lo), hi);
      transpose8(d);
      if (nb == 8) {  // (a constant count: eight vector stores, not a copy loop)
        for (int j = 0; j < 8; ++j) store<V>(g + y * stride + 8 * j, d[j]);
      } else {
        for (int j = 0; j < nb; ++j) store<V>(g + y * stride + 8 * j, d[j]);
      }
    }
  }
}

// Differentiable mode, one block of float samples, in place: reference._code_plane_float with
// rounding Ste (forward values: half away from zero) or Cubic.
template <class V, Rounding R>
FASTPERC_INLINE void code_block_diff(typename Lanes<V>::T* p, int64_t stride,
                                     const FloatTables<typename Lanes<V>::T>& t, int k) {
  using T = typename Lanes<V>::T;
  V d[8];
  for (int i = 0; i < 8; ++i) d[i] = load<V>(p + i * stride) - T(128);
  transpose8(d);
  fdct_float_pass<V>(d, T(1));
  transpose8(d);
  fdct_float_pass<V>(d, T(1));  // 8 x the orthonormal coefficients
  for (int v = 0; v < 8; ++v) {
    const V x = d[v] * load<V>(t.rcp8[k] + 8 * v);  // coefficient / q
    const V ra = vfloor<V>(select<V>(x < T(0), -x, x) + T(0.5));
    const V r = select<V>(x < T(0), -ra, ra);
    V y = r;
    if constexpr (R == Rounding::Cubic) {
      const V e = x - r;
      y = r + e * e * e;
    }
    d[v] = y * load<V>(t.q_over8[k] + 8 * v);  // dequantized, with the inverse's 1/8 folded in
  }
  idct_float_pass<V>(d, T(1));
  transpose8(d);
  idct_float_pass<V>(d, T(1));
  transpose8(d);
  for (int i = 0; i < 8; ++i) store<V>(p + i * stride, clamp_keep_nan<V>(d[i] + T(128), T(0), T(255)));
}

// ---------------------------------------------------------------------------------------------
// Row helpers
// ---------------------------------------------------------------------------------------------

// Replicate element n - 1 into [n, len).
template <class T>
FASTPERC_INLINE void pad_right(T* row, int64_t n, int64_t len) {
  const T v = row[n - 1];
  for (int64_t x = n; x < len; ++x) row[x] = v;
}

// 8-bit h2v2 / h2v1 downsampling with libjpeg's bias (jcsample.c), on int32 samples; floats:
// the mean.
FASTPERC_INLINE void down_h2v2_i(const int32_t* FASTPERC_RESTRICT a,
                                 const int32_t* FASTPERC_RESTRICT b, int32_t* FASTPERC_RESTRICT o,
                                 int64_t n) {
  for (int64_t x = 0; x < n; ++x)
    o[x] = (a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1] + 1 + int32_t(x & 1)) >> 2;
}

FASTPERC_INLINE void down_h2v1_i(const int32_t* FASTPERC_RESTRICT a, int32_t* FASTPERC_RESTRICT o,
                                 int64_t n) {
  for (int64_t x = 0; x < n; ++x) o[x] = (a[2 * x] + a[2 * x + 1] + int32_t(x & 1)) >> 1;
}

template <class T>
FASTPERC_INLINE void down_h2v2_f(const T* FASTPERC_RESTRICT a, const T* FASTPERC_RESTRICT b,
                                 T* FASTPERC_RESTRICT o, int64_t n) {
  for (int64_t x = 0; x < n; ++x)
    o[x] = ((a[2 * x] + a[2 * x + 1]) + (b[2 * x] + b[2 * x + 1])) * T(0.25);
}

template <class T>
FASTPERC_INLINE void down_h2v1_f(const T* FASTPERC_RESTRICT a, T* FASTPERC_RESTRICT o, int64_t n) {
  for (int64_t x = 0; x < n; ++x) o[x] = (a[2 * x] + a[2 * x + 1]) * T(0.5);
}

// The 8-bit downsampling of the float mode on integral floats: the same sums and biases,
// floor((sum + bias) / 4 or / 2) (exact: the sums are small integers).
template <class T>
FASTPERC_INLINE void down_h2v2_q(const T* FASTPERC_RESTRICT a, const T* FASTPERC_RESTRICT b,
                                 T* FASTPERC_RESTRICT o, int64_t n) {
  for (int64_t x = 0; x < n; ++x)
    o[x] = std::floor((((a[2 * x] + a[2 * x + 1]) + (b[2 * x] + b[2 * x + 1])) +
                       ((x & 1) ? T(2) : T(1))) * T(0.25));
}

template <class T>
FASTPERC_INLINE void down_h2v1_q(const T* FASTPERC_RESTRICT a, T* FASTPERC_RESTRICT o, int64_t n) {
  for (int64_t x = 0; x < n; ++x)
    o[x] = std::floor(((a[2 * x] + a[2 * x + 1]) + ((x & 1) ? T(1) : T(0))) * T(0.5));
}

// 8-bit colour conversions (jccolor.c rgb_ycc_convert, jdcolor.c ycc_rgb_convert with its
// tables written as one 16-bit fixed-point sum), as plain loops: GCC's loop vectorizer widens the
// bytes and narrows the results well. Cb and Cr never reach 256; RGB is clamped.
FASTPERC_INLINE void rgb_to_ycc_exact(const uint8_t* FASTPERC_RESTRICT r,
                                      const uint8_t* FASTPERC_RESTRICT g,
                                      const uint8_t* FASTPERC_RESTRICT b,
                                      int32_t* FASTPERC_RESTRICT y, int32_t* FASTPERC_RESTRICT cb,
                                      int32_t* FASTPERC_RESTRICT cr, int64_t n) {
  for (int64_t x = 0; x < n; ++x) {
    const int32_t vr = r[x], vg = g[x], vb = b[x];
    y[x] = (vr * 19595 + vg * 38470 + vb * 7471 + 32768) >> 16;
    cb[x] = ((vb << 15) - vr * 11059 - vg * 21709 + ((128 << 16) + 32767)) >> 16;
    cr[x] = ((vr << 15) - vg * 27439 - vb * 5329 + ((128 << 16) + 32767)) >> 16;
  }
}

FASTPERC_INLINE uint8_t clamp255(int32_t v) {
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

FASTPERC_INLINE void ycc_to_rgb_exact(const int32_t* FASTPERC_RESTRICT y,
                                      const int32_t* FASTPERC_RESTRICT cb,
                                      const int32_t* FASTPERC_RESTRICT cr,
                                      uint8_t* FASTPERC_RESTRICT r, uint8_t* FASTPERC_RESTRICT g,
                                      uint8_t* FASTPERC_RESTRICT b, int64_t n) {
  for (int64_t x = 0; x < n; ++x) {
    const int32_t vy = (y[x] << 16) + 32768, vb = cb[x] - 128, vr = cr[x] - 128;
    r[x] = clamp255((vy + vr * 91881) >> 16);
    g[x] = clamp255((vy - vb * 22554 - vr * 46802) >> 16);
    b[x] = clamp255((vy + vb * 116130) >> 16);
  }
}

FASTPERC_INLINE void narrow_row(const int32_t* FASTPERC_RESTRICT a, uint8_t* FASTPERC_RESTRICT o,
                                int64_t n) {
  for (int64_t x = 0; x < n; ++x) o[x] = static_cast<uint8_t>(a[x]);
}

// Chroma upsampling of one output row (jdsample.c; reference.color.chroma_upsample). The
// source row(s) hold wc samples; out gets w. U: int32 (8-bit samples, libjpeg's rounding) or a
// float type (exact weights).
template <class S, class U>
FASTPERC_INLINE U up_value(S v) {
  return static_cast<U>(v);
}

// Horizontal triangle filter of v(j) = a[j] (h2v1: Shift 2, biases 1 / 2) or of the column
// sums v(j) = 3 a[j] + b[j] (h2v2: Shift 4, biases 8 / 7), for wc > 2 chroma samples. The sums
// are formed in the loop: storing them first and reading them back one element off stalls
// store-to-load forwarding. U: int32 (libjpeg's integer rounding), or a float type: exact
// weights (Floor = false, differentiable mode) or libjpeg's rounding on integral floats
// (Floor = true, float mode: floor((sum + bias) / 2^Shift), exact).
template <int Shift, class U, bool Floor = false>
FASTPERC_INLINE void fancy_row(const U* FASTPERC_RESTRICT a, const U* FASTPERC_RESTRICT b,
                               U* FASTPERC_RESTRICT o, int64_t wc, int64_t w) {
  auto v = [=](int64_t j) FASTPERC_JPEG_LAMBDA_INLINE -> U {
    if constexpr (Shift == 2)
      return a[j];
    else
      return U(3) * a[j] + b[j];
  };
  auto out = [](U near, U far, bool odd) FASTPERC_JPEG_LAMBDA_INLINE -> U {
    if constexpr (std::is_integral_v<U>)
      return (3 * near + far + (odd ? (Shift == 2 ? 2 : 7) : (Shift == 2 ? 1 : 8))) >> Shift;
    else if constexpr (Floor)
      return std::floor(((U(3) * near + far) +
                         U(odd ? (Shift == 2 ? 2 : 7) : (Shift == 2 ? 1 : 8))) *
                        (Shift == 2 ? U(0.25) : U(0.0625)));
    else
      return (U(3) * near + far) * (Shift == 2 ? U(0.25) : U(0.0625));
  };
  o[0] = out(v(0), v(0), false);
  o[1] = out(v(0), v(1), true);
  for (int64_t j = 1; j < wc - 1; ++j) {
    const U vj = v(j);
    o[2 * j] = out(vj, v(j - 1), false);
    o[2 * j + 1] = out(vj, v(j + 1), true);
  }
  const int64_t j = wc - 1;
  o[2 * j] = out(v(j), v(j - 1), false);
  if (2 * j + 1 < w) o[2 * j + 1] = out(v(j), v(j), true);
}

template <class S, class U>
FASTPERC_INLINE void widen_row(const S* FASTPERC_RESTRICT a, U* FASTPERC_RESTRICT o, int64_t n) {
  for (int64_t j = 0; j < n; ++j) o[j] = up_value<S, U>(a[j]);
}

template <class S, class U>
FASTPERC_INLINE void nearest_row(const S* FASTPERC_RESTRICT a, U* FASTPERC_RESTRICT o, int64_t w) {
  for (int64_t x = 0; x < w; ++x) o[x] = up_value<S, U>(a[x >> 1]);
}

// ---------------------------------------------------------------------------------------------
// Row and block stages of each mode
// ---------------------------------------------------------------------------------------------

// The pipelines. Kind = mode and float work type (float32 for every dtype but float64).
enum Kind : int { kExact = 0, kFloat32, kFloat64, kDiff32, kDiff64 };

// Per-thread scratch rows (types: see Pipe).
struct Scratch {
  void* in8[3];  // loaded input rows as bytes, planar, ypad each
  void* in[3];   // loaded input rows as F (float and differentiable modes), ypad each
  void* up[2];   // upsampled Cb, Cr of one output row, ypad (+ 32) each
  void* out8[3];  // RGB (or grey) rows as bytes before the store, ypad + 16 each (slack)
  void* out[3];   // the same as F (float and differentiable modes, float outputs), ypad each
};

struct Ctx {
  const SimParams* p;
  const Geometry* g;
  const Prepared* t;
  Kind kind;
  Scratch s;
};

// Mode M with work type F (unused by the exact mode). Element types:
//   S  planes: int32 holding 8-bit samples (exact, float) or F (differentiable)
//   U  upsampled chroma: int32 (8-bit planes) or F
template <Mode M, class F>
struct Pipe {
  static constexpr bool kDiff = M == Mode::Differentiable;
  static constexpr bool kF64 = std::is_same_v<F, double>;
  // Planes: int32 holding 8-bit samples (exact), F holding them (float: integral values) or F
  // (differentiable).
  using S = std::conditional_t<M == Mode::Exact, int32_t, F>;
  using U = S;
  using V = std::conditional_t<kF64, D8, F8>;

  // Source / destination dtypes this pipeline meets (float64 work only for float64 images).
  static constexpr bool handles(DType d) {
    if constexpr (M == Mode::Exact) return true;
    if constexpr (kF64) return d == DType::F64;
    return d != DType::F64;
  }

  // ---- input: load one image row, convert to Y, Cb, Cr, pad ---------------------------------
  //
  // uint8 images (every mode) and the exact mode of float images go through byte rows
  // (c.s.in8); the float and differentiable modes of float images through F rows (c.s.in),
  // holding x * 255 / value_range in F, as jpeg.py scales them.

  // Exact mode of a float image: round(x * 255 / range) to 8 bits in float64 (NaN -> 0).
  template <DType DS>
  static FASTPERC_INLINE uint8_t quantize_input(typename Traits<DS>::T v, double in_scale) {
    double x = static_cast<double>(Traits<DS>::load(v)) * in_scale;
    x = x >= -1.0 ? x : -1.0;  // NaN -> -1 -> 0
    x = x <= 256.0 ? x : 256.0;
    const double r = std::floor(x + 0.5);
    return static_cast<uint8_t>(r < 0.0 ? 0.0 : (r > 255.0 ? 255.0 : r));
  }

  // One image element -> a byte (uint8 images; exact mode of float images) or F.
  template <DType DS, class TO>
  static FASTPERC_INLINE TO load_value(typename Traits<DS>::T v, double in_scale, F fscale) {
    if constexpr (DS == DType::U8)
      return static_cast<TO>(v);
    else if constexpr (std::is_same_v<TO, uint8_t>)
      return quantize_input<DS>(v, in_scale);
    else
      return static_cast<F>(Traits<DS>::load(v)) * fscale;
  }

  template <DType DS, class TO>
  static FASTPERC_INLINE void load_plane(const typename Traits<DS>::T* FASTPERC_RESTRICT s,
                                         TO* FASTPERC_RESTRICT o, int64_t w, double in_scale,
                                         F fscale) {
    if constexpr (DS == DType::U8) {
      std::memcpy(o, s, static_cast<size_t>(w));
    } else {
      for (int64_t x = 0; x < w; ++x) o[x] = load_value<DS, TO>(s[x], in_scale, fscale);
    }
  }

  template <DType DS, class TO>
  static FASTPERC_INLINE void load_packed3(const typename Traits<DS>::T* FASTPERC_RESTRICT s,
                                           TO* FASTPERC_RESTRICT o0, TO* FASTPERC_RESTRICT o1,
                                           TO* FASTPERC_RESTRICT o2, int64_t w, double in_scale,
                                           F fscale) {
    int64_t x = 0;
    if constexpr (DS == DType::U8)
      for (; x + 8 <= w; x += 8) deinterleave3_u8(s + 3 * x, o0 + x, o1 + x, o2 + x);
    for (; x < w; ++x) {
      o0[x] = load_value<DS, TO>(s[3 * x], in_scale, fscale);
      o1[x] = load_value<DS, TO>(s[3 * x + 1], in_scale, fscale);
      o2[x] = load_value<DS, TO>(s[3 * x + 2], in_scale, fscale);
    }
  }

  template <DType DS, class TO>
  static FASTPERC_INLINE void load_strided(const typename Traits<DS>::T* s, int64_t step,
                                           TO* FASTPERC_RESTRICT o, int64_t w, double in_scale,
                                           F fscale) {
    for (int64_t x = 0; x < w; ++x) o[x] = load_value<DS, TO>(s[x * step], in_scale, fscale);
  }

  // Image row (n, y) -> planar rows in[0..C) of TO (w valid).
  template <DType DS, class TO>
  static FASTPERC_INLINE void load_row_t(const Ctx& c, int64_t n, int64_t y, TO* const* in) {
    using TS = typename Traits<DS>::T;
    const Tensor4& s = c.p->src;
    const Geometry& g = *c.g;
    const int64_t w = g.w, sc = s.stride[1], sw = s.stride[3];
    const TS* base = s.ptr<const TS>(n, 0, y);
    const double in_scale = c.t->in_scale;
    const F fscale = static_cast<F>(c.t->in_scale);
    constexpr bool kPacked = DS == DType::U8 || DS == DType::F32;  // the common packed inputs
    if (w == 1 || sw == 1) {
      for (int64_t k = 0; k < g.c; ++k)
        load_plane<DS, TO>(base + k * sc, in[k], w, in_scale, fscale);
    } else if (kPacked && g.c == 3 && sw == 3 && sc == 1) {
      load_packed3<DS, TO>(base, in[0], in[1], in[2], w, in_scale, fscale);
    } else {
      for (int64_t k = 0; k < g.c; ++k)
        load_strided<DS, TO>(base + k * sc, sw, in[k], w, in_scale, fscale);
    }
  }

  // Loads row (n, y) into c.s.in8 (bytes) and returns true, or into c.s.in (F) and false.
  static FASTPERC_INLINE bool load_row(const Ctx& c, int64_t n, int64_t y) {
    uint8_t* const* in8 = reinterpret_cast<uint8_t* const*>(c.s.in8);
    [[maybe_unused]] F* const* inf = reinterpret_cast<F* const*>(c.s.in);
    switch (c.p->src.dtype) {
      case DType::U8: load_row_t<DType::U8, uint8_t>(c, n, y, in8); return true;
#define FASTPERC_JPEG_LOAD_FLOAT(D)                              \
  case D:                                                        \
    if constexpr (M == Mode::Exact) {                            \
      load_row_t<D, uint8_t>(c, n, y, in8);                      \
      return true;                                               \
    } else if constexpr (handles(D)) {                           \
      load_row_t<D, F>(c, n, y, inf);                            \
    }                                                            \
    return false;
      FASTPERC_JPEG_LOAD_FLOAT(DType::F16)
      FASTPERC_JPEG_LOAD_FLOAT(DType::BF16)
      FASTPERC_JPEG_LOAD_FLOAT(DType::F32)
      FASTPERC_JPEG_LOAD_FLOAT(DType::F64)
#undef FASTPERC_JPEG_LOAD_FLOAT
    }
    return true;
  }

  // Float mode: Y to 8 bits, rounding half up, then 0..255. Sanitize (float images): NaN -> 0,
  // huge values cut first. (Each `a > b ? a : b` is one max instruction, which also turns NaN
  // into b.)
  template <bool Sanitize>
  static FASTPERC_INLINE F round8(F v) {
    if constexpr (Sanitize) {
      v = v > F(-1) ? v : F(-1);  // NaN -> -1
      v = v < F(256) ? v : F(256);
    }
    const F r = std::floor(v + F(0.5));
    const F lo = r > F(0) ? r : F(0);
    return lo < F(255) ? lo : F(255);
  }

  // Float mode: a chroma value s - 128 (s: the matrix product, without the offset 128) to 8
  // bits, rounding half down (jccolor.c adds ONE_HALF - 1), then 0..255:
  // ceil(s + 128 - 1/2) computed as -floor(-127.5 - s), one rounding of the sum.
  template <bool Sanitize>
  static FASTPERC_INLINE F round8_chroma(F s) {
    if constexpr (Sanitize) {
      s = s > F(-129) ? s : F(-129);  // NaN -> -129
      s = s < F(128) ? s : F(128);
    }
    const F r = -std::floor(F(-127.5) - s);
    const F lo = r > F(0) ? r : F(0);  // (-0 -> 0)
    return lo < F(255) ? lo : F(255);
  }

  // Float and differentiable modes: RGB rows (bytes or F) -> Y, Cb, Cr planes in the
  // reference's order of operations, ((m0 R + m1 G) + m2 B) + offset; rounded to 8 bits in
  // the float mode. Plain loops: GCC vectorizes them (vroundps for the floors with AVX2).
  template <class TI, bool Sanitize>
  static FASTPERC_INLINE void ycc_float(const TI* FASTPERC_RESTRICT r, const TI* FASTPERC_RESTRICT g,
                                        const TI* FASTPERC_RESTRICT b, S* FASTPERC_RESTRICT y,
                                        S* FASTPERC_RESTRICT cb, S* FASTPERC_RESTRICT cr, int64_t n,
                                        const double* m) {
    const F m0 = F(m[0]), m1 = F(m[1]), m2 = F(m[2]), m3 = F(m[3]), m4 = F(m[4]), m5 = F(m[5]),
            m6 = F(m[6]), m7 = F(m[7]), m8 = F(m[8]);
    for (int64_t x = 0; x < n; ++x) {
      const F vr = static_cast<F>(r[x]), vg = static_cast<F>(g[x]), vb = static_cast<F>(b[x]);
      const F yv = (vr * m0 + vg * m1) + vb * m2;
      const F cbs = (vr * m3 + vg * m4) + vb * m5;
      const F crs = (vr * m6 + vg * m7) + vb * m8;
      if constexpr (M == Mode::Float) {
        y[x] = round8<Sanitize>(yv);
        cb[x] = round8_chroma<Sanitize>(cbs);
        cr[x] = round8_chroma<Sanitize>(crs);
      } else {
        y[x] = yv;
        cb[x] = cbs + F(128);
        cr[x] = crs + F(128);
      }
    }
  }

  template <class TI, bool Sanitize>
  static FASTPERC_INLINE void grey_float(const TI* FASTPERC_RESTRICT a, S* FASTPERC_RESTRICT y,
                                         int64_t n) {
    for (int64_t x = 0; x < n; ++x) {
      if constexpr (M == Mode::Float)
        y[x] = round8<Sanitize>(static_cast<F>(a[x]));
      else
        y[x] = static_cast<F>(a[x]);
    }
  }

  template <class TI, bool Sanitize>
  static FASTPERC_INLINE void convert_rows(const Ctx& c, const TI* const* in, S* yo, S* cbo,
                                           S* cro) {
    const int64_t w = c.g->w;
    if (c.g->c == 1) {
      if constexpr (M == Mode::Exact)
        widen_row<uint8_t, int32_t>(in[0], yo, w);
      else
        grey_float<TI, Sanitize>(in[0], yo, w);
    } else if constexpr (M == Mode::Exact) {
      rgb_to_ycc_exact(in[0], in[1], in[2], yo, cbo, cro, w);
    } else {
      ycc_float<TI, Sanitize>(in[0], in[1], in[2], yo, cbo, cro, w, c.t->fwd);
    }
  }

  // Image row (n, y) -> Y row (ypad) and full-resolution Cb, Cr rows (cfull), padded.
  static FASTPERC_INLINE void input_row(const Ctx& c, int64_t n, int64_t y, S* yo, S* cbo,
                                        S* cro) {
    if (load_row(c, n, y)) {
      convert_rows<uint8_t, false>(c, reinterpret_cast<const uint8_t* const*>(c.s.in8), yo, cbo,
                                   cro);
    } else if constexpr (M != Mode::Exact) {
      convert_rows<F, true>(c, reinterpret_cast<const F* const*>(c.s.in), yo, cbo, cro);
    }
    const Geometry& g = *c.g;
    pad_right(yo, g.w, g.ypad);
    if (g.c == 3) {
      pad_right(cbo, g.w, g.cfull);
      pad_right(cro, g.w, g.cfull);
    }
  }

  // Full-resolution chroma rows a (and b, the row below, for h2v2) -> one downsampled row.
  static FASTPERC_INLINE void downsample(const Ctx& c, const S* a, const S* b, S* o) {
    const Geometry& g = *c.g;
    if constexpr (kDiff) {
      if (g.fv == 2)
        down_h2v2_f<F>(a, b, o, g.cpad);
      else
        down_h2v1_f<F>(a, o, g.cpad);
    } else if constexpr (M == Mode::Float) {
      if (g.fv == 2)
        down_h2v2_q<F>(a, b, o, g.cpad);
      else
        down_h2v1_q<F>(a, o, g.cpad);
    } else {
      if (g.fv == 2)
        down_h2v2_i(a, b, o, g.cpad);
      else
        down_h2v1_i(a, o, g.cpad);
    }
  }

  // ---- blocks -------------------------------------------------------------------------------

  // nblocks consecutive blocks of component k starting at base (rows `stride` apart).
  static FASTPERC_INLINE void code_row(const Ctx& c, S* base, int64_t stride, int64_t nblocks,
                                       int k) {
    const Prepared& t = *c.t;
    if constexpr (M == Mode::Float) {
      if (t.integer_tables)
        code_row_float<V, true>(base, stride, nblocks, float_tables<F>(t), k);
      else
        code_row_float<V, false>(base, stride, nblocks, float_tables<F>(t), k);
      return;
    }
    for (int64_t bx = 0; bx < nblocks; ++bx) {
      S* blk = base + 8 * bx;
      if constexpr (M == Mode::Exact) {
        code_block_exact(blk, stride, t.q[k], t.half[k], t.rcp[k]);
      } else {
        if (c.p->rounding == Rounding::Cubic)
          code_block_diff<V, Rounding::Cubic>(blk, stride, float_tables<F>(t), k);
        else
          code_block_diff<V, Rounding::Nearest>(blk, stride, float_tables<F>(t), k);
      }
    }
  }

  // ---- output: upsample, colour back, store -------------------------------------------------

  // Chroma of one output row into c.s.up[k]: a is the nearer chroma row, b (4:2:0) the other.
  static FASTPERC_INLINE void upsample(const Ctx& c, int k, const S* a, const S* b) {
    const Geometry& g = *c.g;
    const int64_t w = g.w, wc = g.wc;
    static_assert(std::is_same_v<S, U>, "chroma planes and upsampled rows share a type");
    U* o = static_cast<U*>(c.s.up[k]);
    if (g.fh == 1)
      std::memcpy(o, a, sizeof(U) * static_cast<size_t>(g.ypad));
    else if (wc <= 2)
      nearest_row<S, U>(a, o, w);
    else if (g.fv == 1)
      fancy_row<2, U, M == Mode::Float>(a, a, o, wc, w);
    else
      fancy_row<4, U, M == Mode::Float>(a, b, o, wc, w);
  }

  // Float and differentiable modes: clamp to 0..255 (NaN stays NaN, as torch.clamp), then for
  // uint8 outputs round half up (jpeg.py; uint8 images never give NaN).
  // Halved: v already holds the rounding's 1/2 (rgb_float of the float mode).
  template <class TO, bool Halved = false>
  static FASTPERC_INLINE TO finish(F v) {
    if constexpr (std::is_same_v<TO, uint8_t>) {
      // floor(clamp(v, 0, 255) + 0.5) == clamp(floor(v + 0.5), 0, 255), clamped as int32
      // (|v| is bounded: the planes are finite, uint8 images).
      const int32_t r = static_cast<int32_t>(std::floor(Halved ? v : v + F(0.5)));
      return static_cast<uint8_t>(std::min(std::max(r, 0), 255));
    } else {
      v = v < F(0) ? F(0) : v;
      return v > F(255) ? F(255) : v;
    }
  }

  // YCbCr -> RGB in the reference's order, ((m0 Y + m1 Cb') + m2 Cr'), as plain loops (GCC
  // vectorizes them); TO: uint8 (rounded) or F. The float mode's uint8 outputs add the
  // rounding's 1/2 to Y (exact, Y being an integer) rather than to each sum: one addition per
  // pixel, one rounding of each sum (FastU8::rgb8 computes the same).
  template <class TO>
  static FASTPERC_INLINE void rgb_float(const S* FASTPERC_RESTRICT y, const S* FASTPERC_RESTRICT cb,
                                        const S* FASTPERC_RESTRICT cr, TO* FASTPERC_RESTRICT r,
                                        TO* FASTPERC_RESTRICT g, TO* FASTPERC_RESTRICT b, int64_t n,
                                        const double* m) {
    const F m0 = F(m[0]), m1 = F(m[1]), m2 = F(m[2]), m3 = F(m[3]), m4 = F(m[4]), m5 = F(m[5]),
            m6 = F(m[6]), m7 = F(m[7]), m8 = F(m[8]);
    constexpr bool kHalved = M == Mode::Float && std::is_same_v<TO, uint8_t>;
    for (int64_t x = 0; x < n; ++x) {
      F vy = static_cast<F>(y[x]);
      if constexpr (kHalved) vy += F(0.5);
      const F vb = static_cast<F>(cb[x]) - F(128), vr = static_cast<F>(cr[x]) - F(128);
      r[x] = finish<TO, kHalved>((vy * m0 + vb * m1) + vr * m2);
      g[x] = finish<TO, kHalved>((vy * m3 + vb * m4) + vr * m5);
      b[x] = finish<TO, kHalved>((vy * m6 + vb * m7) + vr * m8);
    }
  }

  template <class TO>
  static FASTPERC_INLINE void grey_out(const S* FASTPERC_RESTRICT y, TO* FASTPERC_RESTRICT o,
                                       int64_t n) {
    for (int64_t x = 0; x < n; ++x) o[x] = finish<TO>(static_cast<F>(y[x]));
  }

  // Y row and c.s.up -> RGB (or grey) rows: bytes in c.s.out8 (exact mode, and uint8 outputs),
  // else F in c.s.out.
  static FASTPERC_INLINE void colour_back(const Ctx& c, const S* FASTPERC_RESTRICT yr) {
    const Geometry& g = *c.g;
    uint8_t* const* out8 = reinterpret_cast<uint8_t* const*>(c.s.out8);
    const S* cb = static_cast<const S*>(c.s.up[0]);
    const S* cr = static_cast<const S*>(c.s.up[1]);
    if constexpr (M == Mode::Exact) {
      if (g.c == 1)
        narrow_row(yr, out8[0], g.w);
      else
        ycc_to_rgb_exact(yr, cb, cr, out8[0], out8[1], out8[2], g.w);
    } else if (c.p->dst.dtype == DType::U8) {
      if (g.c == 1)
        grey_out<uint8_t>(yr, out8[0], g.w);
      else
        rgb_float<uint8_t>(yr, cb, cr, out8[0], out8[1], out8[2], g.w, c.t->inv);
    } else {
      F* const* out = reinterpret_cast<F* const*>(c.s.out);
      if (g.c == 1)
        grey_out<F>(yr, out[0], g.w);
      else
        rgb_float<F>(yr, cb, cr, out[0], out[1], out[2], g.w, c.t->inv);
    }
  }

  // One output value from a byte row: uint8 itself, or (exact mode of float images)
  // k * value_range / 255 in the output dtype, from a table.
  template <DType DD>
  static FASTPERC_INLINE typename Traits<DD>::T from_byte(uint8_t v, const uint64_t* lut) {
    using TD = typename Traits<DD>::T;
    if constexpr (DD == DType::U8) {
      return v;
    } else {
      TD r;
      std::memcpy(&r, lut + v, sizeof r);
      return r;
    }
  }

  // One output value from an F row (float and differentiable modes, float outputs): scaled by
  // value_range / 255 in F, as jpeg.py.
  template <DType DD>
  static FASTPERC_INLINE typename Traits<DD>::T from_float(F v, F oscale) {
    if constexpr (DD == DType::F64)
      return static_cast<double>(v * oscale);
    else if constexpr (DD == DType::U8)
      return static_cast<uint8_t>(v);  // not used: uint8 outputs go through bytes
    else
      return Traits<DD>::store(static_cast<float>(v * oscale));
  }

  template <DType DD, class TI>
  static FASTPERC_INLINE typename Traits<DD>::T out_value(TI v, const uint64_t* lut, F oscale) {
    if constexpr (std::is_same_v<TI, uint8_t>)
      return from_byte<DD>(v, lut);
    else
      return from_float<DD>(v, oscale);
  }

  template <DType DD, class TI>
  static FASTPERC_INLINE void store_plane(const TI* FASTPERC_RESTRICT s,
                                          typename Traits<DD>::T* FASTPERC_RESTRICT o, int64_t w,
                                          const uint64_t* lut, F oscale) {
    if constexpr (DD == DType::U8) {
      std::memcpy(o, s, static_cast<size_t>(w));
    } else {
      for (int64_t x = 0; x < w; ++x) o[x] = out_value<DD, TI>(s[x], lut, oscale);
    }
  }

  template <DType DD, class TI>
  static FASTPERC_INLINE void store_packed3(const TI* FASTPERC_RESTRICT s0,
                                            const TI* FASTPERC_RESTRICT s1,
                                            const TI* FASTPERC_RESTRICT s2,
                                            typename Traits<DD>::T* FASTPERC_RESTRICT o, int64_t w,
                                            const uint64_t* lut, F oscale) {
    int64_t x = 0;
    if constexpr (DD == DType::U8)
      for (; x + 8 <= w; x += 8) interleave3_u8(s0 + x, s1 + x, s2 + x, o + 3 * x);
    for (; x < w; ++x) {
      o[3 * x] = out_value<DD, TI>(s0[x], lut, oscale);
      o[3 * x + 1] = out_value<DD, TI>(s1[x], lut, oscale);
      o[3 * x + 2] = out_value<DD, TI>(s2[x], lut, oscale);
    }
  }

  template <DType DD, class TI>
  static FASTPERC_INLINE void store_strided(const TI* FASTPERC_RESTRICT s,
                                            typename Traits<DD>::T* o, int64_t step, int64_t w,
                                            const uint64_t* lut, F oscale) {
    for (int64_t x = 0; x < w; ++x) o[x * step] = out_value<DD, TI>(s[x], lut, oscale);
  }

  template <DType DD, class TI>
  static FASTPERC_INLINE void store_row_t(const Ctx& c, int64_t n, int64_t y,
                                          const TI* const* out) {
    using TD = typename Traits<DD>::T;
    const Tensor4& d = c.p->dst;
    const Geometry& g = *c.g;
    const int64_t w = g.w, dc = d.stride[1], dw = d.stride[3];
    TD* base = d.ptr<TD>(n, 0, y);
    const uint64_t* lut = c.t->out_lut;
    const F oscale = static_cast<F>(c.t->out_scale);
    constexpr bool kPacked = DD == DType::U8 || DD == DType::F32;
    if (w == 1 || dw == 1) {
      for (int64_t k = 0; k < g.c; ++k) store_plane<DD, TI>(out[k], base + k * dc, w, lut, oscale);
    } else if (kPacked && g.c == 3 && dw == 3 && dc == 1) {
      store_packed3<DD, TI>(out[0], out[1], out[2], base, w, lut, oscale);
    } else {
      for (int64_t k = 0; k < g.c; ++k)
        store_strided<DD, TI>(out[k], base + k * dc, dw, w, lut, oscale);
    }
  }

  static FASTPERC_INLINE void store_row(const Ctx& c, int64_t n, int64_t y) {
    const auto* out8 = reinterpret_cast<const uint8_t* const*>(c.s.out8);
    [[maybe_unused]] const auto* outf = reinterpret_cast<const F* const*>(c.s.out);
    switch (c.p->dst.dtype) {
      case DType::U8: store_row_t<DType::U8, uint8_t>(c, n, y, out8); break;
#define FASTPERC_JPEG_STORE_FLOAT(D)                  \
  case D:                                             \
    if constexpr (M == Mode::Exact)                   \
      store_row_t<D, uint8_t>(c, n, y, out8);         \
    else if constexpr (handles(D))                    \
      store_row_t<D, F>(c, n, y, outf);               \
    break;
      FASTPERC_JPEG_STORE_FLOAT(DType::F16)
      FASTPERC_JPEG_STORE_FLOAT(DType::BF16)
      FASTPERC_JPEG_STORE_FLOAT(DType::F32)
      FASTPERC_JPEG_STORE_FLOAT(DType::F64)
#undef FASTPERC_JPEG_STORE_FLOAT
    }
  }

  // chroma: [Cb nearer, Cb other, Cr nearer, Cr other] rows (unused for greyscale).
  static FASTPERC_INLINE void output_row(const Ctx& c, int64_t n, int64_t y, const S* yrow,
                                         const S* const* chroma) {
    if (c.g->c == 3) {
      upsample(c, 0, chroma[0], chroma[1]);
      upsample(c, 1, chroma[2], chroma[3]);
    }
    colour_back(c, yrow);
    store_row(c, n, y);
  }
};

// ---------------------------------------------------------------------------------------------
// The float mode of packed 8-bit RGB (uint8 [N, H, W, 3] images, float32 work): fused rows
// ---------------------------------------------------------------------------------------------
//
// The same values as the row stages above (Pipe<Mode::Float, float>: input_row + downsample,
// upsample + colour_back + store_row), in one pass over each row, eight or sixteen pixels at a
// time in registers:
//   * input: packed RGB -> Y row and the row of each chroma plane (full resolution for 4:4:4;
//     h2v1 pairs of one image row, h2v2 squares of two), padded;
//   * output: chroma upsampling of sixteen pixels (the fancy filter's even and odd outputs
//     separately), YCbCr -> RGB on the even and the odd pixels, rounding, packing.
// Every sum of the 8-bit resampling is an exact small integer in float, so any order gives
// the same values. The colour sums keep ycc_float / rgb_float's order (terms of the inverse
// matrix that are exactly 1 or 0 are left out: y * 1 = y and adding +-0 change no value that
// is rounded to 8 bits). For 8-bit RGB the rounded Y, Cb, Cr lie in 0..255 without clamping
// (checked over all 2^24 colours), so the input needs no clamp.
#if FASTPERC_JPEG_GNU_VECTORS
#define FASTPERC_JPEG_FAST_U8 1

namespace fast_base {
#define FASTPERC_JPEG_FAST_AVX2 0
#include "jpeg_sim_fast.inc"
#undef FASTPERC_JPEG_FAST_AVX2
}  // namespace fast_base

#if FASTPERC_JPEG_FAST_AVX2_BUILD
#pragma GCC push_options
#pragma GCC target("avx2")
namespace fast_avx2 {
#define FASTPERC_JPEG_FAST_AVX2 1
#include "jpeg_sim_fast.inc"
#undef FASTPERC_JPEG_FAST_AVX2
}  // namespace fast_avx2
#pragma GCC pop_options
#endif

// The FastU8 rows for this processor.
struct FastRows {
  void (*input)(const Ctx&, int64_t, int64_t, bool, void*, void*, void*, void*);
  void (*output)(const Ctx&, int64_t, int64_t, const void*, const void* const*);
};

FastRows fast_rows() {
#if FASTPERC_JPEG_FAST_AVX2_BUILD
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return {fast_avx2::input_entry, fast_avx2::output_entry};
#endif
  return {fast_base::input_entry, fast_base::output_entry};
}

#else
#define FASTPERC_JPEG_FAST_U8 0
#endif

// ---------------------------------------------------------------------------------------------
// Entries: the hot loops, compiled for AVX2 and for baseline x86-64 (FASTPERC_CLONES). Each
// dispatches on the pipeline kind; called once per row or row of blocks.
// ---------------------------------------------------------------------------------------------

#define FASTPERC_JPEG_DISPATCH(c, CALL)                                   \
  switch ((c).kind) {                                                     \
    case kExact: { using P = Pipe<Mode::Exact, float>; CALL; } break;     \
    case kFloat32: { using P = Pipe<Mode::Float, float>; CALL; } break;   \
    case kFloat64: { using P = Pipe<Mode::Float, double>; CALL; } break;  \
    case kDiff32: { using P = Pipe<Mode::Differentiable, float>; CALL; } break; \
    case kDiff64: { using P = Pipe<Mode::Differentiable, double>; CALL; } break; \
  }

FASTPERC_CLONES void input_row_entry(const Ctx& c, int64_t n, int64_t y, void* yo, void* cbo,
                                     void* cro) {
  FASTPERC_JPEG_DISPATCH(c, P::input_row(c, n, y, static_cast<P::S*>(yo), static_cast<P::S*>(cbo),
                                         static_cast<P::S*>(cro)))
}

FASTPERC_CLONES void downsample_entry(const Ctx& c, const void* a, const void* b, void* o) {
  FASTPERC_JPEG_DISPATCH(c, P::downsample(c, static_cast<const P::S*>(a),
                                          static_cast<const P::S*>(b), static_cast<P::S*>(o)))
}

FASTPERC_CLONES void code_row_entry(const Ctx& c, void* base, int64_t stride, int64_t nblocks,
                                    int k) {
  FASTPERC_JPEG_DISPATCH(c, P::code_row(c, static_cast<P::S*>(base), stride, nblocks, k))
}

FASTPERC_CLONES void output_row_entry(const Ctx& c, int64_t n, int64_t y, const void* yrow,
                                      const void* const* chroma) {
  FASTPERC_JPEG_DISPATCH(c, P::output_row(c, n, y, static_cast<const P::S*>(yrow),
                                          reinterpret_cast<const P::S* const*>(chroma)))
}

#undef FASTPERC_JPEG_DISPATCH


// ---------------------------------------------------------------------------------------------
// Orchestration of one task (plain code: the entries hold the loops)
// ---------------------------------------------------------------------------------------------

struct Task {
  int64_t n, r0, r1;  // image, MCU rows [r0, r1)
};

// Element sizes: planes (S, also the upsampled rows) and float rows (F; 0 for the exact mode).
struct Sizes {
  int64_t s, f;
};

Sizes sizes_of(Kind k) {
  switch (k) {
    case kExact: return {4, 0};
    case kFloat32: return {4, 4};
    case kFloat64: return {8, 8};
    case kDiff32: return {4, 4};
    case kDiff64: return {8, 8};
  }
  return {8, 8};
}

class Runner {
 public:
  Runner(const SimParams& p, const Geometry& g, const Prepared& t, Kind kind)
      : g_(g), sz_(sizes_of(kind)), cstride_(g.cpad + 16) {
    ctx_.p = &p;
    ctx_.g = &g;
    ctx_.t = &t;
    ctx_.kind = kind;
#if FASTPERC_JPEG_FAST_U8
    // The fused rows of FastU8: float32 work, packed 8-bit RGB (channels adjacent).
    const auto packed_rgb8 = [&](const Tensor4& a) {
      return a.dtype == DType::U8 && g.c == 3 && a.stride[1] == 1 && a.stride[3] == 3;
    };
    const bool unit = t.inv[0] == 1.0 && t.inv[3] == 1.0 && t.inv[6] == 1.0 && t.inv[1] == 0.0 &&
                      t.inv[8] == 0.0;  // the terms FastU8::rgb8 leaves out
    fast_in_ = kind == kFloat32 && packed_rgb8(p.src);
    fast_out_ = kind == kFloat32 && packed_rgb8(p.dst) && unit && (g.fh == 1 || g.wc > 2);
    if (fast_in_ || fast_out_) fast_ = fast_rows();
#endif
  }

  // Scratch bytes per thread.
  int64_t bytes() const {
    int64_t b = 64;
    for (int64_t part : parts()) b += part;
    return b;
  }

  // Carves the scratch out of ws (bytes() long, zeroed).
  void attach(unsigned char* ws) {
    unsigned char* cur = reinterpret_cast<unsigned char*>(
        (reinterpret_cast<uintptr_t>(ws) + 63) & ~uintptr_t{63});
    const auto sizes = parts();
    unsigned char* part[kParts];
    for (int i = 0; i < kParts; ++i) {
      part[i] = cur;
      cur += sizes[i];
    }
    const int64_t strip = strip_bytes();
    for (int i = 0; i < 3; ++i) {
      strips_[i].y = part[kStrips] + i * strip;
      // Chroma rows cstride_ apart, from element 8 of theirs: room for one sample on the left
      // and eight on the right (set_margins), rows stay 32-byte aligned.
      strips_[i].cb = strips_[i].y + (g_.mcu_h * g_.ypad + 8) * sz_.s;
      strips_[i].cr = strips_[i].cb + 8 * cstride_ * sz_.s;
      ctx_.s.in8[i] = part[kIn8] + i * g_.ypad;
      ctx_.s.in[i] = part[kInF] + i * g_.ypad * sz_.f;
      ctx_.s.out8[i] = part[kOut8] + i * (g_.ypad + 16);
      ctx_.s.out[i] = part[kOutF] + i * g_.ypad * sz_.f;
    }
    for (int i = 0; i < 4; ++i) full_[i] = part[kFull] + i * g_.cfull * sz_.s;
    for (int i = 0; i < 2; ++i) ctx_.s.up[i] = part[kUp] + i * (g_.ypad + 32) * sz_.s;
  }

  void run(const Task& task) {
    Strip st[3] = {strips_[0], strips_[1], strips_[2]};  // previous, current, next MCU row
    if (!(g_.c == 3 && g_.fv == 2)) {
      for (int64_t r = task.r0; r < task.r1; ++r) {
        fill(st[1], task.n, r, true);
        emit(task.n, r, st);
      }
      return;
    }
    if (task.r0 > 0) fill(st[0], task.n, task.r0 - 1, false);
    fill(st[1], task.n, task.r0, true);
    for (int64_t r = task.r0; r < task.r1; ++r) {
      if (r + 1 < g_.mcu_rows) fill(st[2], task.n, r + 1, r + 1 < task.r1);
      emit(task.n, r, st);
      const Strip old = st[0];
      st[0] = st[1];
      st[1] = st[2];
      st[2] = old;
    }
  }

 private:
  struct Strip {
    unsigned char* y;   // mcu_h rows of ypad
    unsigned char* cb;  // 8 rows of cpad
    unsigned char* cr;
  };

  static int64_t round64(int64_t b) { return (b + 63) / 64 * 64; }

  int64_t strip_bytes() const {
    return round64((g_.mcu_h * g_.ypad + 2 * 8 * cstride_) * static_cast<int64_t>(sz_.s));
  }

  // The scratch: three MCU rows of planes, four full-resolution chroma rows, loaded rows
  // (bytes, F), two upsampled chroma rows, output rows (bytes with 16 of slack, F).
  enum { kStrips, kFull, kIn8, kInF, kUp, kOut8, kOutF, kParts };

  std::array<int64_t, kParts> parts() const {
    return {3 * strip_bytes(),
            round64(4 * g_.cfull * sz_.s),
            round64(3 * g_.ypad),
            round64(3 * g_.ypad * sz_.f),
            round64(2 * (g_.ypad + 32) * sz_.s),
            round64(3 * (g_.ypad + 16)),
            round64(3 * g_.ypad * sz_.f)};
  }

  unsigned char* yrow(const Strip& s, int64_t k) const { return s.y + k * g_.ypad * sz_.s; }
  unsigned char* cbrow(const Strip& s, int64_t k) const { return s.cb + k * cstride_ * sz_.s; }
  unsigned char* crrow(const Strip& s, int64_t k) const { return s.cr + k * cstride_ * sz_.s; }

  // FastU8's upsampling: row[-1] = row[0] and row[wc] = row[wc - 1] in every chroma row of the
  // strip (samples wc.. are padding, which the output never reads).
  void set_margins(const Strip& st) {
    for (int64_t k = 0; k < 8; ++k)
      for (unsigned char* row : {cbrow(st, k), crrow(st, k)}) {
        float* r = reinterpret_cast<float*>(row);
        r[-1] = r[0];
        r[g_.wc] = r[g_.wc - 1];
      }
  }

  void copy_y(const Strip& s, int64_t to, int64_t from) {
    std::memcpy(yrow(s, to), yrow(s, from), static_cast<size_t>(g_.ypad) * sz_.s);
  }
  void copy_c(const Strip& s, int64_t to, int64_t from) {
    std::memcpy(cbrow(s, to), cbrow(s, from), static_cast<size_t>(g_.cpad) * sz_.s);
    std::memcpy(crrow(s, to), crrow(s, from), static_cast<size_t>(g_.cpad) * sz_.s);
  }

  // Reads, converts, pads and codes MCU row r of image n into st (luma blocks only if luma).
  void fill(const Strip& st, int64_t n, int64_t r, bool luma) {
    const Geometry& g = g_;
    const int64_t y0 = r * g.mcu_h;
    const int64_t ny = std::min(g.mcu_h, g.hb * 8 - y0);  // luma rows with blocks
    const int64_t last = g.h - 1 - y0;                    // strip row of the image's last row
    if (g.c == 1) {
      for (int64_t k = 0; k < ny; ++k) {
        if (k <= last)
          input_row_entry(ctx_, n, y0 + k, yrow(st, k), nullptr, nullptr);
        else
          copy_y(st, k, last);
      }
    } else if (g.fv == 1) {  // 4:4:4, 4:2:2: one chroma row per pixel row
      const bool sub = g.fh == 2;
      for (int64_t k = 0; k < 8; ++k) {
        if (k <= last && fast_in_) {
#if FASTPERC_JPEG_FAST_U8
          fast_.input(ctx_, n, y0 + k, false, yrow(st, k), nullptr, cbrow(st, k), crrow(st, k));
#endif
        } else if (k <= last) {
          input_row_entry(ctx_, n, y0 + k, yrow(st, k), sub ? full_[0] : cbrow(st, k),
                          sub ? full_[2] : crrow(st, k));
          if (sub) {
            downsample_entry(ctx_, full_[0], nullptr, cbrow(st, k));
            downsample_entry(ctx_, full_[2], nullptr, crrow(st, k));
          }
        } else {
          copy_y(st, k, last);
          copy_c(st, k, last);
        }
      }
    } else {  // 4:2:0: chroma row 8 r + k from pixel rows 2 (8 r + k) and the next (or itself)
      const int64_t clast = g.hc - 1 - 8 * r;
      for (int64_t k = 0; k < 8; ++k) {
        if (k <= clast && fast_in_) {
#if FASTPERC_JPEG_FAST_U8
          const bool pair = 2 * k + 1 <= last;
          fast_.input(ctx_, n, y0 + 2 * k, pair, yrow(st, 2 * k),
                      pair ? yrow(st, 2 * k + 1) : nullptr, cbrow(st, k), crrow(st, k));
          if (!pair && 2 * k + 1 < ny) copy_y(st, 2 * k + 1, 2 * k);
#endif
        } else if (k <= clast) {
          input_row_entry(ctx_, n, y0 + 2 * k, yrow(st, 2 * k), full_[0], full_[2]);
          const bool pair = 2 * k + 1 <= last;
          if (pair)
            input_row_entry(ctx_, n, y0 + 2 * k + 1, yrow(st, 2 * k + 1), full_[1], full_[3]);
          else if (2 * k + 1 < ny)
            copy_y(st, 2 * k + 1, 2 * k);
          downsample_entry(ctx_, full_[0], pair ? full_[1] : full_[0], cbrow(st, k));
          downsample_entry(ctx_, full_[2], pair ? full_[3] : full_[2], crrow(st, k));
        } else {
          copy_c(st, k, clast);
          for (int64_t k2 = 2 * k; k2 < std::min<int64_t>(2 * k + 2, ny); ++k2) copy_y(st, k2, last);
        }
      }
    }
    if (luma)
      for (int64_t by = 0; by < ny; by += 8) code_row_entry(ctx_, yrow(st, by), g.ypad, g.wb, 0);
    if (g.c == 3) {
      code_row_entry(ctx_, st.cb, cstride_, g.cwb, 1);
      code_row_entry(ctx_, st.cr, cstride_, g.cwb, 2);
      if (fast_out_) set_margins(st);
    }
  }

  // Writes the output rows of MCU row r; st: previous, current, next MCU rows.
  void emit(int64_t n, int64_t r, const Strip* st) {
    const Geometry& g = g_;
    const int64_t y0 = r * g.mcu_h, y1 = std::min(y0 + g.mcu_h, g.h);
    for (int64_t y = y0; y < y1; ++y) {
      const void* chroma[4] = {nullptr, nullptr, nullptr, nullptr};
      if (g.c == 3) {
        int64_t i = y - y0, j = i;  // chroma rows within the current MCU row
        if (g.fv == 2) {
          const int64_t gi = y >> 1;  // image chroma row, and its vertical neighbour
          const int64_t gj = (y & 1) ? std::min(gi + 1, g.hc - 1) : std::max<int64_t>(gi - 1, 0);
          i = gi - 8 * r;
          j = gj - 8 * r;
        }
        // Row k of the current MCU row, or (k = -1, k = 8) a row of its neighbours.
        const Strip& si = st[i < 0 ? 0 : (i >= 8 ? 2 : 1)];
        const Strip& sj = st[j < 0 ? 0 : (j >= 8 ? 2 : 1)];
        chroma[0] = cbrow(si, i & 7);
        chroma[1] = cbrow(sj, j & 7);
        chroma[2] = crrow(si, i & 7);
        chroma[3] = crrow(sj, j & 7);
      }
#if FASTPERC_JPEG_FAST_U8
      if (fast_out_) {
        fast_.output(ctx_, n, y, yrow(st[1], y - y0), chroma);
        continue;
      }
#endif
      output_row_entry(ctx_, n, y, yrow(st[1], y - y0), chroma);
    }
  }

  const Geometry& g_;
  Sizes sz_;
  int64_t cstride_;  // elements from one chroma row to the next
  bool fast_in_ = false, fast_out_ = false;  // FastU8 rows
#if FASTPERC_JPEG_FAST_U8
  FastRows fast_{};
#endif
  Ctx ctx_{};
  Strip strips_[3]{};
  unsigned char* full_[4]{};  // full-resolution chroma rows: Cb a, Cb b, Cr a, Cr b
};

Kind kind_of(const SimParams& p) {
  const bool f64 = p.src.dtype == DType::F64;
  switch (p.mode) {
    case Mode::Exact: return kExact;
    case Mode::Float: return f64 ? kFloat64 : kFloat32;
    case Mode::Differentiable: return f64 ? kDiff64 : kDiff32;
  }
  return kExact;
}

#ifdef FASTPERC_HAVE_OPENMP
// Pixels per thread below which a call stays on one thread.
constexpr double kPixelsPerThread = 1 << 15;
#endif

}  // namespace

bool simulate(const SimParams& p) {
  const Geometry g = make_geometry(p);
  if (g.n == 0 || g.h == 0 || g.w == 0) return true;
  std::unique_ptr<Prepared> prep(new (std::nothrow) Prepared());
  if (!prep) return false;
  prepare(p, *prep);
  const Kind kind = kind_of(p);
  const int64_t ws_bytes = Runner(p, g, *prep, kind).bytes();

  int threads = 1;
#ifdef FASTPERC_HAVE_OPENMP
  const double pixels = double(g.n) * double(g.h) * double(g.w);
  threads = static_cast<int>(
      std::min<double>(omp_get_max_threads(), std::max(1.0, pixels / kPixelsPerThread)));
#endif
  // Tasks: whole images when the batch has a few per thread, else each image cut into pieces
  // of MCU rows (a 4:2:0 piece codes the chroma of the MCU row before it again).
  std::vector<Task> tasks;
  try {
    const int64_t want = threads > 1 ? int64_t{4} * threads : 1;
    const int64_t pieces = g.n >= want ? 1 : std::min<int64_t>(g.mcu_rows, ceil_div(want, g.n));
    tasks.reserve(static_cast<size_t>(g.n * pieces));
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t k = 0; k < pieces; ++k) {
        const int64_t r0 = g.mcu_rows * k / pieces, r1 = g.mcu_rows * (k + 1) / pieces;
        if (r1 > r0) tasks.push_back(Task{n, r0, r1});
      }
  } catch (const std::bad_alloc&) {
    return false;
  }
  auto scratch = [&]() {
    unsigned char* ws = new (std::nothrow) unsigned char[static_cast<size_t>(ws_bytes)];
    if (ws) std::memset(ws, 0, static_cast<size_t>(ws_bytes));
    return std::unique_ptr<unsigned char[]>(ws);
  };
#ifdef FASTPERC_HAVE_OPENMP
  if (threads > 1) {
    std::atomic<bool> ok{true};
#pragma omp parallel num_threads(threads)
    {
      const auto ws = scratch();
      Runner runner(p, g, *prep, kind);
      if (ws)
        runner.attach(ws.get());
      else
        ok = false;
      const int64_t ntasks = static_cast<int64_t>(tasks.size());
#pragma omp for schedule(dynamic, 1)
      for (int64_t i = 0; i < ntasks; ++i)
        if (ws) runner.run(tasks[static_cast<size_t>(i)]);
    }
    if (ok) return true;
    // A thread could not allocate its scratch and skipped its tasks: run them all here.
  }
#endif
  const auto ws = scratch();
  if (!ws) return false;
  Runner runner(p, g, *prep, kind);
  runner.attach(ws.get());
  for (const Task& task : tasks) runner.run(task);
  return true;
}

int get_num_threads() {
#ifdef FASTPERC_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
#ifdef FASTPERC_HAVE_OPENMP
  omp_set_num_threads(std::max(1, n));
#else
  (void)n;
#endif
}

}  // namespace jpeg_sim
}  // namespace fastperc
