// Eight-lane vectors for the JPEG round trip (jpeg_sim.cpp): int32, float32 and float64 lanes,
// the operations the block transforms and the row loops need, and an 8x8 transpose.
//
// With GCC and Clang the types are the compilers' generic vectors (vector_size), so the same
// source becomes AVX2 code in the AVX2 clone of an entry function and pairs of SSE2
// instructions in the baseline clone. Other compilers (or FASTPERC_JPEG_PORTABLE_VECTORS) get
// small structs with the same operators, written as loops over the lanes.
//
// Every function here is FASTPERC_INLINE: they must be compiled inside the cloned entry
// functions, never called across a target boundary.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common.h"

#if (defined(__GNUC__) || defined(__clang__)) && !defined(FASTPERC_JPEG_PORTABLE_VECTORS)
#define FASTPERC_JPEG_GNU_VECTORS 1
#else
#define FASTPERC_JPEG_GNU_VECTORS 0
#endif

// The helpers pass and return 32/64-byte vectors but are always inlined into the entries of
// one target: no call crosses a target boundary, so GCC's ABI note about them does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace fastperc {
namespace jpeg_sim {

#if FASTPERC_JPEG_GNU_VECTORS

typedef int32_t I8 __attribute__((vector_size(32)));  // 8 x int32 (also the mask of F8)
typedef float F8 __attribute__((vector_size(32)));    // 8 x float32
typedef int64_t L8 __attribute__((vector_size(64)));  // 8 x int64 (the mask of D8)
typedef double D8 __attribute__((vector_size(64)));   // 8 x float64
typedef uint8_t B16 __attribute__((vector_size(16)));  // 16 x uint8 (byte shuffles)
typedef double D4 __attribute__((vector_size(32)));    // 4 x float64 (64-bit lane moves of F8)
typedef int64_t L4 __attribute__((vector_size(32)));   // 4 x int64 (the mask of D4)

template <class V> struct Lanes;
template <> struct Lanes<I8> { using T = int32_t; using M = I8; };
template <> struct Lanes<F8> { using T = float; using M = I8; };
template <> struct Lanes<D8> { using T = double; using M = L8; };
template <> struct Lanes<D4> { using T = double; using M = L4; };

template <class V>
FASTPERC_INLINE V splat(typename Lanes<V>::T x) {
  // (One broadcast; V{} + x would add, and turn -0.0 into +0.0.)
  return V{x, x, x, x, x, x, x, x};
}

// m ? a : b lane by lane (m: all ones or zero per lane, as comparisons give).
template <class V>
FASTPERC_INLINE V select(typename Lanes<V>::M m, V a, V b) {
  return m ? a : b;
}

template <class To, class From>
FASTPERC_INLINE To convert(From v) {  // lane-wise static_cast (float -> int truncates)
  return __builtin_convertvector(v, To);
}

#if defined(__clang__)
#define FASTPERC_JPEG_SHUFFLE(V, a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define FASTPERC_JPEG_SHUFFLE(V, a, b, ...) \
  __builtin_shuffle(a, b, typename Lanes<V>::M{__VA_ARGS__})
#endif

// In place: rows r[i] (lane j = element (i, j)) become columns (lane j = element (j, i)).
// Three rounds of two-input shuffles (unpack 32-bit pairs, unpack 64-bit pairs, swap halves):
// 24 shuffles, each one instruction with AVX2 for 32-bit lanes.
template <class V>
FASTPERC_INLINE void transpose8(V (&r)[8]) {
  V b[8], c[8];
  for (int i = 0; i < 8; i += 2) {
    b[i] = FASTPERC_JPEG_SHUFFLE(V, r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    b[i + 1] = FASTPERC_JPEG_SHUFFLE(V, r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4) {
    c[i] = FASTPERC_JPEG_SHUFFLE(V, b[i], b[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
    c[i + 1] = FASTPERC_JPEG_SHUFFLE(V, b[i], b[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    c[i + 2] = FASTPERC_JPEG_SHUFFLE(V, b[i + 1], b[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
    c[i + 3] = FASTPERC_JPEG_SHUFFLE(V, b[i + 1], b[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = FASTPERC_JPEG_SHUFFLE(V, c[i], c[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[i + 4] = FASTPERC_JPEG_SHUFFLE(V, c[i], c[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// 8 packed RGB pixels (24 bytes) -> three planar rows of 8 bytes, and back.
FASTPERC_INLINE void deinterleave3_u8(const uint8_t* p, uint8_t* r, uint8_t* g, uint8_t* b) {
  B16 lo, hi;  // bytes 0..15 and 8..23: two loads inside the 24 bytes
  std::memcpy(&lo, p, 16);
  std::memcpy(&hi, p + 8, 16);
#if defined(__clang__)
  const B16 vr = __builtin_shufflevector(lo, hi, 0, 3, 6, 9, 12, 15, 26, 29, 0, 0, 0, 0, 0, 0, 0, 0);
  const B16 vg = __builtin_shufflevector(lo, hi, 1, 4, 7, 10, 13, 24, 27, 30, 0, 0, 0, 0, 0, 0, 0, 0);
  const B16 vb = __builtin_shufflevector(lo, hi, 2, 5, 8, 11, 14, 25, 28, 31, 0, 0, 0, 0, 0, 0, 0, 0);
#else
  const B16 vr = __builtin_shuffle(lo, hi, B16{0, 3, 6, 9, 12, 15, 26, 29, 0, 0, 0, 0, 0, 0, 0, 0});
  const B16 vg = __builtin_shuffle(lo, hi, B16{1, 4, 7, 10, 13, 24, 27, 30, 0, 0, 0, 0, 0, 0, 0, 0});
  const B16 vb = __builtin_shuffle(lo, hi, B16{2, 5, 8, 11, 14, 25, 28, 31, 0, 0, 0, 0, 0, 0, 0, 0});
#endif
  std::memcpy(r, &vr, 8);
  std::memcpy(g, &vg, 8);
  std::memcpy(b, &vb, 8);
}

FASTPERC_INLINE void interleave3_u8(const uint8_t* r, const uint8_t* g, const uint8_t* b,
                                    uint8_t* p) {
  // Reads 16 bytes from each row (8 past the pixels: callers leave that much slack).
  B16 vr, vg, vb;
  std::memcpy(&vr, r, 16);
  std::memcpy(&vg, g, 16);
  std::memcpy(&vb, b, 16);
#if defined(__clang__)
  const B16 rg = __builtin_shufflevector(vr, vg, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const B16 lo = __builtin_shufflevector(rg, vb, 0, 8, 16, 1, 9, 17, 2, 10, 18, 3, 11, 19, 4, 12, 20, 5);
  const B16 hi = __builtin_shufflevector(rg, vb, 13, 21, 6, 14, 22, 7, 15, 23, 0, 0, 0, 0, 0, 0, 0, 0);
#else
  const B16 rg = __builtin_shuffle(vr, vg, B16{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23});
  const B16 lo = __builtin_shuffle(rg, vb, B16{0, 8, 16, 1, 9, 17, 2, 10, 18, 3, 11, 19, 4, 12, 20, 5});
  const B16 hi = __builtin_shuffle(rg, vb, B16{13, 21, 6, 14, 22, 7, 15, 23, 0, 0, 0, 0, 0, 0, 0, 0});
#endif
  std::memcpy(p, &lo, 16);
  std::memcpy(p + 16, &hi, 8);
}

// The even (or odd) elements of the 16 in a, b, as with vshufps (within 128-bit halves:
// elements 0, 2, 8, 10 | 4, 6, 12, 14, or odd ones) ...
template <bool Odd>
FASTPERC_INLINE F8 pick_pairs(F8 a, F8 b) {
  if constexpr (Odd)
    return FASTPERC_JPEG_SHUFFLE(F8, a, b, 1, 3, 9, 11, 5, 7, 13, 15);
  else
    return FASTPERC_JPEG_SHUFFLE(F8, a, b, 0, 2, 8, 10, 4, 6, 12, 14);
}

// ... and in order (vpermpd of that): the 64-bit lanes 0, 2, 1, 3.
FASTPERC_INLINE F8 swap_middle(F8 v) {
  return (F8)FASTPERC_JPEG_SHUFFLE(D4, (D4)v, (D4)v, 0, 2, 1, 3);
}

template <bool Odd>
FASTPERC_INLINE F8 pick_half(F8 a, F8 b) {
  return swap_middle(pick_pairs<Odd>(a, b));
}

#else  // portable lane loops

template <class T>
struct Vec8 {
  T v[8];
};

template <class T> struct MaskOf { using type = int32_t; };
template <> struct MaskOf<double> { using type = int64_t; };

using I8 = Vec8<int32_t>;
using F8 = Vec8<float>;
using L8 = Vec8<int64_t>;
using D8 = Vec8<double>;

template <class V> struct Lanes;
template <class E> struct Lanes<Vec8<E>> {
  using T = E;
  using M = Vec8<typename MaskOf<E>::type>;
};

#define FASTPERC_JPEG_BINOP(op)                                                      \
  template <class T>                                                                 \
  FASTPERC_INLINE Vec8<T> operator op(Vec8<T> a, Vec8<T> b) {                        \
    Vec8<T> r;                                                                       \
    for (int i = 0; i < 8; ++i) r.v[i] = static_cast<T>(a.v[i] op b.v[i]);           \
    return r;                                                                        \
  }                                                                                  \
  template <class T>                                                                 \
  FASTPERC_INLINE Vec8<T> operator op(Vec8<T> a, T b) {                              \
    Vec8<T> r;                                                                       \
    for (int i = 0; i < 8; ++i) r.v[i] = static_cast<T>(a.v[i] op b);                \
    return r;                                                                        \
  }                                                                                  \
  template <class T>                                                                 \
  FASTPERC_INLINE Vec8<T>& operator op##=(Vec8<T>& a, Vec8<T> b) { return a = a op b; }
FASTPERC_JPEG_BINOP(+)
FASTPERC_JPEG_BINOP(-)
FASTPERC_JPEG_BINOP(*)
FASTPERC_JPEG_BINOP(/)
#undef FASTPERC_JPEG_BINOP

template <class T>
FASTPERC_INLINE Vec8<T> operator-(Vec8<T> a) {
  Vec8<T> r;
  for (int i = 0; i < 8; ++i) r.v[i] = -a.v[i];
  return r;
}

// Integer shifts (arithmetic right shift, as GCC and every two's-complement target do).
FASTPERC_INLINE I8 operator<<(I8 a, int n) {
  I8 r;
  for (int i = 0; i < 8; ++i) r.v[i] = static_cast<int32_t>(static_cast<uint32_t>(a.v[i]) << n);
  return r;
}
FASTPERC_INLINE I8 operator>>(I8 a, int n) {
  I8 r;
  for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] >> n;
  return r;
}

#define FASTPERC_JPEG_CMP(op)                                                          \
  template <class T>                                                                   \
  FASTPERC_INLINE typename Lanes<Vec8<T>>::M operator op(Vec8<T> a, Vec8<T> b) {       \
    typename Lanes<Vec8<T>>::M r;                                                      \
    for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] op b.v[i] ? -1 : 0;                    \
    return r;                                                                          \
  }                                                                                    \
  template <class T>                                                                   \
  FASTPERC_INLINE typename Lanes<Vec8<T>>::M operator op(Vec8<T> a, T b) {             \
    typename Lanes<Vec8<T>>::M r;                                                      \
    for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] op b ? -1 : 0;                         \
    return r;                                                                          \
  }
FASTPERC_JPEG_CMP(<)
FASTPERC_JPEG_CMP(>)
FASTPERC_JPEG_CMP(<=)
FASTPERC_JPEG_CMP(>=)
FASTPERC_JPEG_CMP(==)
#undef FASTPERC_JPEG_CMP

template <class V>
FASTPERC_INLINE V splat(typename Lanes<V>::T x) {
  V r;
  for (int i = 0; i < 8; ++i) r.v[i] = x;
  return r;
}

template <class V>
FASTPERC_INLINE V select(typename Lanes<V>::M m, V a, V b) {
  V r;
  for (int i = 0; i < 8; ++i) r.v[i] = m.v[i] ? a.v[i] : b.v[i];
  return r;
}

template <class To, class From>
FASTPERC_INLINE To convert(From v) {
  To r;
  for (int i = 0; i < 8; ++i) r.v[i] = static_cast<typename Lanes<To>::T>(v.v[i]);
  return r;
}

template <class V>
FASTPERC_INLINE void transpose8(V (&r)[8]) {
  for (int i = 0; i < 8; ++i)
    for (int j = i + 1; j < 8; ++j) {
      const auto t = r[i].v[j];
      r[i].v[j] = r[j].v[i];
      r[j].v[i] = t;
    }
}

FASTPERC_INLINE void deinterleave3_u8(const uint8_t* p, uint8_t* r, uint8_t* g, uint8_t* b) {
  for (int i = 0; i < 8; ++i) {
    r[i] = p[3 * i];
    g[i] = p[3 * i + 1];
    b[i] = p[3 * i + 2];
  }
}

FASTPERC_INLINE void interleave3_u8(const uint8_t* r, const uint8_t* g, const uint8_t* b,
                                    uint8_t* p) {
  for (int i = 0; i < 8; ++i) {
    p[3 * i] = r[i];
    p[3 * i + 1] = g[i];
    p[3 * i + 2] = b[i];
  }
}

#endif

// ---------------------------------------------------------------------------------------------
// Shared helpers built on the above
// ---------------------------------------------------------------------------------------------

template <class V>
FASTPERC_INLINE V load(const typename Lanes<V>::T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class V>
FASTPERC_INLINE void store(typename Lanes<V>::T* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

// min / max (a NaN in a gives b). Written as the comparison itself under GNU vectors, the form
// GCC turns into one min / max instruction (a select on the comparison's mask is not).
template <class V>
FASTPERC_INLINE V vmin(V a, V b) {
#if FASTPERC_JPEG_GNU_VECTORS
  return a < b ? a : b;
#else
  return select<V>(a < b, a, b);
#endif
}

template <class V>
FASTPERC_INLINE V vmax(V a, V b) {
#if FASTPERC_JPEG_GNU_VECTORS
  return a > b ? a : b;
#else
  return select<V>(a > b, a, b);
#endif
}

// |x| and, for y >= 0, y with the sign of s: sign-bit operations (one instruction each).
template <class V>
FASTPERC_INLINE V vabs(V x) {
#if FASTPERC_JPEG_GNU_VECTORS
  using M = typename Lanes<V>::M;
  return (V)((M)x & ~(M)(-V{}));  // -V{}: -0.0, the sign bit alone (0.0 + -0.0 is +0.0)
#else
  V r;
  for (int i = 0; i < 8; ++i) r.v[i] = std::fabs(x.v[i]);
  return r;
#endif
}

template <class V>
FASTPERC_INLINE V with_sign_of(V y, V s) {
#if FASTPERC_JPEG_GNU_VECTORS
  using M = typename Lanes<V>::M;
  return (V)((M)y ^ ((M)s & (M)(-V{})));
#else
  V r;
  for (int i = 0; i < 8; ++i) r.v[i] = std::copysign(y.v[i], s.v[i]);
  return r;
#endif
}

// clamp(x, lo, hi); a NaN lane stays NaN (both comparisons are false), as torch.clamp.
template <class V>
FASTPERC_INLINE V clamp_keep_nan(V x, typename Lanes<V>::T lo, typename Lanes<V>::T hi) {
  x = select<V>(x < lo, splat<V>(lo), x);
  return select<V>(x > hi, splat<V>(hi), x);
}

// The magnitude from which every float is an integer: 2^23 (float), 2^52 (double).
template <class T>
constexpr T kIntegralFrom = sizeof(T) == 4 ? T(8388608.0) : T(4503599627370496.0);

// floor, lane by lane, exact for every value (NaN stays NaN).
template <class V>
FASTPERC_INLINE V vfloor(V x) {
  using T [[maybe_unused]] = typename Lanes<V>::T;
#if FASTPERC_JPEG_GNU_VECTORS
  if constexpr (sizeof(T) == 4) {
    // GCC turns this into one vroundps in the AVX2 clone (and a short sequence per lane in the
    // baseline one).
    V r;
    for (int i = 0; i < 8; ++i) r[i] = __builtin_floorf(x[i]);
    return r;
  } else {
    // (x + 1.5 * 2^52) - 1.5 * 2^52 rounds to nearest, one is subtracted where that went up;
    // from 2^52 on (and for NaN) x is its own floor.
    const T magic = kIntegralFrom<T> + kIntegralFrom<T> / 2;
    const V r = (x + magic) - magic;
    const V f = select<V>(r > x, r - T(1), r);
    const V ax = select<V>(x < T(0), -x, x);
    return select<V>(ax < kIntegralFrom<T> / 2, f, x);
  }
#else
  V r;
  for (int i = 0; i < 8; ++i) r.v[i] = std::floor(x.v[i]);
  return r;
#endif
}

// Truncation toward zero of float lanes (one vroundps with AVX2).
FASTPERC_INLINE F8 vtrunc(F8 x) {
  F8 r;
#if FASTPERC_JPEG_GNU_VECTORS
  for (int i = 0; i < 8; ++i) r[i] = __builtin_truncf(x[i]);
#else
  for (int i = 0; i < 8; ++i) r.v[i] = std::trunc(x.v[i]);
#endif
  return r;
}

}  // namespace jpeg_sim
}  // namespace fastperc

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
