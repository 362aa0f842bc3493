#include "moments.h"

#include <algorithm>
#include <vector>

namespace fastperc {
namespace moments {
namespace {

// One chunk of rows: dst = src - shift, acc = column sums of dst (float64).
template <class T>
FASTPERC_INLINE void center_chunk(const T* FASTPERC_RESTRICT src, int64_t src_stride,
                                  T* FASTPERC_RESTRICT dst, int64_t dst_stride,
                                  const T* FASTPERC_RESTRICT shift, double* FASTPERC_RESTRICT acc,
                                  int64_t rows, int64_t d) {
  for (int64_t j = 0; j < d; ++j) acc[j] = 0.0;
  for (int64_t i = 0; i < rows; ++i) {
    const T* s = src + i * src_stride;
    T* o = dst + i * dst_stride;
    for (int64_t j = 0; j < d; ++j) {
      const T z = s[j] - shift[j];
      o[j] = z;
      acc[j] += static_cast<double>(z);
    }
  }
}

template <class T>
FASTPERC_INLINE void center_chunks(const CenterParams& p, const T* shift, double* partial,
                                   int64_t c0, int64_t c1) {
  const int64_t n = p.src.shape[2], d = p.src.shape[3];
  const T* src = static_cast<const T*>(p.src.data);
  T* dst = static_cast<T*>(p.dst.data);
  for (int64_t c = c0; c < c1; ++c) {
    const int64_t r0 = c * kChunkRows, rows = std::min(kChunkRows, n - r0);
    center_chunk<T>(src + r0 * p.src.stride[2], p.src.stride[2], dst + r0 * p.dst.stride[2],
                    p.dst.stride[2], shift, partial + c * d, rows, d);
  }
}

FASTPERC_CLONES void center_entry(const CenterParams& p, const void* shift, double* partial,
                                  int64_t c0, int64_t c1) {
  if (p.src.dtype == DType::F32)
    center_chunks<float>(p, static_cast<const float*>(shift), partial, c0, c1);
  else
    center_chunks<double>(p, static_cast<const double*>(shift), partial, c0, c1);
}

template <class G>
FASTPERC_INLINE void scatter_rows(const ScatterParams& p, int64_t r0, int64_t r1) {
  const int64_t d = p.m2.shape[3];
  for (int64_t i = r0; i < r1; ++i) {
    double* FASTPERC_RESTRICT m = p.m2.ptr<double>(0, 0, i);
    const G* FASTPERC_RESTRICT g = p.g.ptr<G>(0, 0, i);
    for (int64_t j = 0; j < d; ++j) m[j] += static_cast<double>(g[j]);
    for (int64_t q = 0; q < p.k; ++q) {
      const double* FASTPERC_RESTRICT u = p.u + q * d;
      const double a = p.w[q] * u[i];
      for (int64_t j = 0; j < d; ++j) m[j] += a * u[j];
    }
  }
}

FASTPERC_CLONES void scatter_entry(const ScatterParams& p, int64_t r0, int64_t r1) {
  if (p.g.dtype == DType::F32)
    scatter_rows<float>(p, r0, r1);
  else
    scatter_rows<double>(p, r0, r1);
}

}  // namespace

void accumulate_scatter(const ScatterParams& p) {
  const int64_t d = p.m2.shape[3];
  parallel_rows(p.m2.shape[2], static_cast<double>(d * (1 + p.k)),
                [&](int64_t r0, int64_t r1) { scatter_entry(p, r0, r1); });
}

void center_columns(const CenterParams& p) {
  const int64_t n = p.src.shape[2], d = p.src.shape[3];
  std::fill(p.colsum, p.colsum + d, 0.0);
  if (n == 0 || d == 0) return;
  const int64_t chunks = (n + kChunkRows - 1) / kChunkRows;
  std::vector<double> partial(static_cast<size_t>(chunks * d));
  std::vector<float> shift32;
  const void* shift = p.shift;
  if (p.src.dtype == DType::F32) {
    shift32.assign(p.shift, p.shift + d);
    shift = shift32.data();
  }
  parallel_rows(chunks, static_cast<double>(kChunkRows * d),
                [&](int64_t c0, int64_t c1) { center_entry(p, shift, partial.data(), c0, c1); });
  for (int64_t c = 0; c < chunks; ++c) {
    const double* part = partial.data() + c * d;
    for (int64_t j = 0; j < d; ++j) p.colsum[j] += part[j];
  }
}

}  // namespace moments
}  // namespace fastperc
