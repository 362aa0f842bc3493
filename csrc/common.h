// Shared building blocks of the CPU kernels: dtypes, strided 4-D views, float16/bfloat16 bit
// conversions, OpenMP row splitting and the runtime-dispatch (function multiversioning) macro.
//
// Nothing here depends on Python or pybind11: kernels see plain pointers and element strides.
// Argument checking lives in the *_bindings.cpp files (see pyarray.h).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#ifdef FASTPERC_HAVE_OPENMP
#include <omp.h>
#endif

// ---------------------------------------------------------------------------------------------
// Compiler helpers
// ---------------------------------------------------------------------------------------------

#if defined(__GNUC__) || defined(__clang__)
#define FASTPERC_INLINE inline __attribute__((always_inline))
#define FASTPERC_RESTRICT __restrict__
#elif defined(_MSC_VER)
#define FASTPERC_INLINE __forceinline
#define FASTPERC_RESTRICT __restrict
#else
#define FASTPERC_INLINE inline
#define FASTPERC_RESTRICT
#endif

// Runtime CPU dispatch. FASTPERC_CLONES goes on the non-template "entry" functions that hold
// the hot loops (their templated bodies are FASTPERC_INLINE, so each clone compiles them for its
// own target): GCC emits an AVX2 and a baseline x86-64 version and picks one at load time
// through an ifunc. Only GCC on x86-64 ELF/glibc (ifunc support); elsewhere the macro is empty
// and the baseline build is used. Nothing is ever compiled with -march=native.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__) && \
    defined(__GLIBC__) && !defined(FASTPERC_NO_CLONES)
#define FASTPERC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FASTPERC_CLONES
#endif

namespace fastperc {

// ---------------------------------------------------------------------------------------------
// Dtypes
// ---------------------------------------------------------------------------------------------

enum class DType : int { U8 = 0, F16 = 1, BF16 = 2, F32 = 3, F64 = 4 };

inline int itemsize(DType d) {
  switch (d) {
    case DType::U8: return 1;
    case DType::F16:
    case DType::BF16: return 2;
    case DType::F32: return 4;
    case DType::F64: return 8;
  }
  return 0;
}

inline const char* dtype_code(DType d) {
  switch (d) {
    case DType::U8: return "u8";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::F32: return "f32";
    case DType::F64: return "f64";
  }
  return "?";
}

// A strided 4-D view [N, C, H, W]; strides are in elements and may be negative or zero.
struct Tensor4 {
  void* data = nullptr;
  int64_t shape[4] = {0, 0, 0, 0};
  int64_t stride[4] = {0, 0, 0, 0};
  DType dtype = DType::U8;

  int64_t numel() const { return shape[0] * shape[1] * shape[2] * shape[3]; }
  template <class T>
  T* ptr(int64_t n, int64_t c, int64_t y) const {
    return static_cast<T*>(data) + n * stride[0] + c * stride[1] + y * stride[2];
  }
};

// ---------------------------------------------------------------------------------------------
// float16 / bfloat16 <-> float32, branch-free so loops over them vectorize
// ---------------------------------------------------------------------------------------------

FASTPERC_INLINE float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

FASTPERC_INLINE uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// IEEE binary16 -> binary32, exact for every input (subnormals, +-inf, NaN payloads kept).
// The normal/inf/NaN case rebiases the exponent with one multiply; subnormals come from a
// magic-number subtraction (the method of Maratyszcza's FP16 library, used by PyTorch).
FASTPERC_INLINE float f16_to_f32(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xE0u << 23;
  const float normalized = bits_to_f32((two_w >> 4) + exp_offset) * 0x1.0p-112f;
  const float denormalized = bits_to_f32((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t result =
      sign | (two_w < (1u << 27) ? f32_to_bits(denormalized) : f32_to_bits(normalized));
  return bits_to_f32(result);
}

// binary32 -> binary16 with round-to-nearest-even, overflow to inf, gradual underflow to
// subnormals; NaN becomes the quiet NaN 0x7E00 with the input's sign (as PyTorch's c10::Half).
FASTPERC_INLINE uint16_t f32_to_f16(float f) {
  float base = (std::fabs(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = f32_to_bits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  bias = bias < 0x71000000u ? 0x71000000u : bias;
  base = bits_to_f32((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = f32_to_bits(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

// bfloat16 is the upper half of a binary32.
FASTPERC_INLINE float bf16_to_f32(uint16_t b) {
  return bits_to_f32(static_cast<uint32_t>(b) << 16);
}

// binary32 -> bfloat16 with round-to-nearest-even; NaN stays NaN (sign and upper payload kept,
// quiet bit set) instead of rounding into inf.
FASTPERC_INLINE uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_to_bits(f);
  const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>(nan ? ((u >> 16) | 0x0040u) : rounded);
}

// ---------------------------------------------------------------------------------------------
// Per-dtype traits: storage type T, compute type C (float32, float64 for f64), load/store
// ---------------------------------------------------------------------------------------------

template <DType D>
struct Traits;

template <>
struct Traits<DType::U8> {
  using T = uint8_t;
  using C = float;
  static FASTPERC_INLINE C load(T v) { return static_cast<C>(v); }
};

template <>
struct Traits<DType::F16> {
  using T = uint16_t;
  using C = float;
  static FASTPERC_INLINE C load(T v) { return f16_to_f32(v); }
  static FASTPERC_INLINE T store(C v) { return f32_to_f16(v); }
};

template <>
struct Traits<DType::BF16> {
  using T = uint16_t;
  using C = float;
  static FASTPERC_INLINE C load(T v) { return bf16_to_f32(v); }
  static FASTPERC_INLINE T store(C v) { return f32_to_bf16(v); }
};

template <>
struct Traits<DType::F32> {
  using T = float;
  using C = float;
  static FASTPERC_INLINE C load(T v) { return v; }
  static FASTPERC_INLINE T store(C v) { return v; }
};

template <>
struct Traits<DType::F64> {
  using T = double;
  using C = double;
  static FASTPERC_INLINE C load(T v) { return v; }
  static FASTPERC_INLINE T store(C v) { return v; }
};

// ---------------------------------------------------------------------------------------------
// Strides known at compile time (S > 0) or at run time (S == 0)
// ---------------------------------------------------------------------------------------------

template <int64_t S>
struct Step {
  explicit Step(int64_t) {}
  static constexpr int64_t get() { return S; }
};

template <>
struct Step<0> {
  int64_t v;
  explicit Step(int64_t s) : v(s) {}
  int64_t get() const { return v; }
};

// ---------------------------------------------------------------------------------------------
// Parallel loop over rows
// ---------------------------------------------------------------------------------------------

// Work (roughly: elements touched, weighted by cost) below which one thread does everything,
// and the amount each extra thread should get at least; keeps tiny images free of OpenMP's
// start-up and barrier costs.
constexpr double kWorkPerThread = 65536.0;
// Dynamic scheduling: at least this many chunks per thread, and chunks of at most ~this work.
constexpr int kChunksPerThread = 8;
constexpr double kWorkPerChunk = 1 << 20;

// Calls body(r0, r1) on disjoint contiguous ranges covering [0, rows), in parallel.
// cost_per_row: estimated work of one row in the units of kWorkPerThread.
// The rows are cut into a few chunks per thread, handed out dynamically, so threads of uneven
// speed (SMT siblings, shared or virtualised cores) balance out instead of the slowest one
// holding half the image.
template <class F>
void parallel_rows(int64_t rows, double cost_per_row, const F& body) {
  if (rows <= 0) return;
#ifdef FASTPERC_HAVE_OPENMP
  const double work = cost_per_row * static_cast<double>(rows);
  int64_t want = static_cast<int64_t>(work / kWorkPerThread);
  want = std::min<int64_t>(want, rows);
  want = std::min<int64_t>(want, omp_get_max_threads());
  const int nthreads = static_cast<int>(std::max<int64_t>(want, 1));
  if (nthreads > 1) {
    const int64_t chunks = std::min<int64_t>(rows, std::max<int64_t>(
        int64_t{kChunksPerThread} * nthreads, static_cast<int64_t>(work / kWorkPerChunk)));
    const int64_t base = rows / chunks, extra = rows % chunks;  // first `extra` chunks get +1
    auto start = [=](int64_t c) { return c * base + std::min(c, extra); };
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) body(start(c), start(c + 1));
    return;
  }
#endif
  (void)cost_per_row;
  body(int64_t{0}, rows);
}

}  // namespace fastperc
