// Full-reference metric kernels: fused SSIM statistics, squared-error sums, 2x2 pooling,
// CIEDE2000. See metrics.h for the contracts and python/fastperc/reference/metrics.py for the
// spec.
//
// Structure (as color.cpp): op() splits tasks over threads with parallel_rows; a FASTPERC_CLONES
// entry (AVX2 + baseline) switches over dtype/mode; FASTPERC_INLINE templates hold the loops.
//
// SSIM, one task = one plane (n, p) and a band of output rows [o0, o1):
//   for every input row r of the band (o0 .. o1 + 9, reflected in reflect mode):
//     load row r of a and b as CT (luma mixed on load), pad it by reflection if asked,
//     form a*a, b*b, a*b, filter the five rows horizontally (valid, symmetric 11 taps) into
//     slot r % 11 of a ring buffer;
//     once 11 rows are in: filter the ring vertically (all five maps in one loop), evaluate the
//     SSIM and cs terms for output row r - 10 and add them to float64 lane sums.
// Scratch per thread: 5 input-width rows + 12 x 5 output-width rows + 2 output-width rows, so the
// working set stays in L2 and the five full-size filtered maps are never materialised.
#include "metrics.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <new>
#include <vector>

#include "common.h"

namespace fastperc {
namespace metrics {
namespace {

constexpr int kRadius = 5;
constexpr int kTaps = 2 * kRadius + 1;
constexpr int kLanes = 8;  // float64 partial sums per accumulator

// Scratch buffer of doubles (enough room for float CT too), nullptr when out of memory.
std::unique_ptr<double[]> scratch(int64_t n) {
  return std::unique_ptr<double[]>(new (std::nothrow) double[static_cast<size_t>(n)]);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Row y of plane pl of image n as CT values (luma mixed when asked), W elements into out.
template <DType D, class CT>
FASTPERC_INLINE void load_row(const Tensor4& t, const PlaneMix& mix, int64_t n, int64_t pl,
                              int64_t y, CT* FASTPERC_RESTRICT out) {
  using Tr = Traits<D>;
  using T = typename Tr::T;
  const int64_t W = t.shape[3], sw = t.stride[3];
  if (!mix.luma) {
    const T* FASTPERC_RESTRICT s = t.ptr<const T>(n, pl, y);
    if (sw == 1) {
      for (int64_t x = 0; x < W; ++x) out[x] = static_cast<CT>(Tr::load(s[x]));
    } else {
      for (int64_t x = 0; x < W; ++x) out[x] = static_cast<CT>(Tr::load(s[x * sw]));
    }
    return;
  }
  const T* FASTPERC_RESTRICT r = t.ptr<const T>(n, 0, y);
  const T* FASTPERC_RESTRICT g = t.ptr<const T>(n, 1, y);
  const T* FASTPERC_RESTRICT b = t.ptr<const T>(n, 2, y);
  const CT w0 = static_cast<CT>(mix.w[0]), w1 = static_cast<CT>(mix.w[1]);
  const CT w2 = static_cast<CT>(mix.w[2]), off = static_cast<CT>(mix.off);
  if (sw == 1) {
    for (int64_t x = 0; x < W; ++x)
      out[x] = (w0 * static_cast<CT>(Tr::load(r[x])) + w1 * static_cast<CT>(Tr::load(g[x])) +
                w2 * static_cast<CT>(Tr::load(b[x]))) +
               off;
  } else {
    for (int64_t x = 0; x < W; ++x)
      out[x] = (w0 * static_cast<CT>(Tr::load(r[x * sw])) +
                w1 * static_cast<CT>(Tr::load(g[x * sw])) +
                w2 * static_cast<CT>(Tr::load(b[x * sw]))) +
               off;
  }
}

// numpy/torch "reflect" index (edge not repeated) of v in [-(n - 1), 2 (n - 1)].
FASTPERC_INLINE int64_t reflect(int64_t v, int64_t n) {
  if (v < 0) v = -v;
  if (v >= n) v = 2 * (n - 1) - v;
  return v;
}

// Valid correlation of s (Wo + 10 values) with a symmetric 11-tap window into d (Wo values).
template <class CT>
FASTPERC_INLINE void hfilter(const CT* FASTPERC_RESTRICT s, CT* FASTPERC_RESTRICT d, int64_t wo,
                             const CT* g) {
  const CT g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3], g4 = g[4], g5 = g[5];
  for (int64_t x = 0; x < wo; ++x)
    d[x] = g5 * s[x + 5] + g4 * (s[x + 4] + s[x + 6]) + g3 * (s[x + 3] + s[x + 7]) +
           g2 * (s[x + 2] + s[x + 8]) + g1 * (s[x + 1] + s[x + 9]) + g0 * (s[x] + s[x + 10]);
}

// d[i] = sum_k g[k] * rows[k][i] for a symmetric 11-tap window.
template <class CT>
FASTPERC_INLINE void vfilter(const CT* FASTPERC_RESTRICT r0, const CT* FASTPERC_RESTRICT r1,
                             const CT* FASTPERC_RESTRICT r2, const CT* FASTPERC_RESTRICT r3,
                             const CT* FASTPERC_RESTRICT r4, const CT* FASTPERC_RESTRICT r5,
                             const CT* FASTPERC_RESTRICT r6, const CT* FASTPERC_RESTRICT r7,
                             const CT* FASTPERC_RESTRICT r8, const CT* FASTPERC_RESTRICT r9,
                             const CT* FASTPERC_RESTRICT r10, CT* FASTPERC_RESTRICT d, int64_t n,
                             const CT* g) {
  const CT g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3], g4 = g[4], g5 = g[5];
  for (int64_t i = 0; i < n; ++i)
    d[i] = g5 * r5[i] + g4 * (r4[i] + r6[i]) + g3 * (r3[i] + r7[i]) + g2 * (r2[i] + r8[i]) +
           g1 * (r1[i] + r9[i]) + g0 * (r0[i] + r10[i]);
}

// acc[l] += v[x] for x = l (mod kLanes): independent float64 lanes, so the loop vectorizes
// without reassociating any sum.
template <class CT>
FASTPERC_INLINE void add_lanes(const CT* FASTPERC_RESTRICT v, int64_t n,
                               double* FASTPERC_RESTRICT acc) {
  int64_t x = 0;
  for (; x + kLanes <= n; x += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(v[x + l]);
  for (int l = 0; x < n; ++x, ++l) acc[l] += static_cast<double>(v[x]);
}

FASTPERC_INLINE double lane_total(const double* acc) {
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// Scratch (in CT elements) of one SSIM task.
int64_t ssim_scratch(int64_t wp, int64_t wo) { return 5 * wp + (kTaps + 1) * 5 * wo + 2 * wo; }

// One SSIM task: plane (n, pl), output rows [o0, o1). res[0] += ssim sum, res[1] += cs sum.
template <DType D, bool REFLECT>
FASTPERC_INLINE void ssim_task(const SsimParams& p, int64_t n, int64_t pl, int64_t o0, int64_t o1,
                               typename Traits<D>::C* buf, double* res) {
  using CT = typename Traits<D>::C;
  const int64_t H = p.a.shape[2], W = p.a.shape[3];
  const int64_t pad = REFLECT ? kRadius : 0;
  const int64_t Hp = H + 2 * pad, Wp = W + 2 * pad;
  const int64_t Ho = Hp - 2 * kRadius, Wo = Wp - 2 * kRadius;
  CT* xa = buf;
  CT* xb = xa + Wp;
  CT* xaa = xb + Wp;
  CT* xbb = xaa + Wp;
  CT* xab = xbb + Wp;
  CT* ring = xab + Wp;  // kTaps slots of [5][Wo]
  CT* vert = ring + kTaps * 5 * Wo;  // [5][Wo]
  CT* ss = vert + 5 * Wo;
  CT* cs = ss + Wo;
  CT g[kTaps];
  for (int k = 0; k < kTaps; ++k) g[k] = static_cast<CT>(p.win[k]);
  const CT c1 = static_cast<CT>(p.c1), c2 = static_cast<CT>(p.c2);
  double acc_s[kLanes] = {}, acc_c[kLanes] = {};
  (void)Ho;

  for (int64_t r = o0; r < o1 + 2 * kRadius; ++r) {
    const int64_t y = REFLECT ? reflect(r - pad, H) : r;
    load_row<D, CT>(p.a, p.mix, n, pl, y, xa + pad);
    load_row<D, CT>(p.b, p.mix, n, pl, y, xb + pad);
    if (REFLECT) {
      for (int64_t k = 1; k <= pad; ++k) {
        xa[pad - k] = xa[pad + k];
        xb[pad - k] = xb[pad + k];
        xa[pad + W - 1 + k] = xa[pad + W - 1 - k];
        xb[pad + W - 1 + k] = xb[pad + W - 1 - k];
      }
    }
    for (int64_t x = 0; x < Wp; ++x) {
      xaa[x] = xa[x] * xa[x];
      xbb[x] = xb[x] * xb[x];
      xab[x] = xa[x] * xb[x];
    }
    CT* slot = ring + ((r - o0) % kTaps) * 5 * Wo;
    hfilter<CT>(xa, slot, Wo, g);
    hfilter<CT>(xb, slot + Wo, Wo, g);
    hfilter<CT>(xaa, slot + 2 * Wo, Wo, g);
    hfilter<CT>(xbb, slot + 3 * Wo, Wo, g);
    hfilter<CT>(xab, slot + 4 * Wo, Wo, g);
    if (r < o0 + 2 * kRadius) continue;

    const int64_t o = r - 2 * kRadius;  // output row; its window covers input rows o .. r
    const CT* rows[kTaps];
    for (int k = 0; k < kTaps; ++k) rows[k] = ring + ((o + k - o0) % kTaps) * 5 * Wo;
    vfilter<CT>(rows[0], rows[1], rows[2], rows[3], rows[4], rows[5], rows[6], rows[7], rows[8],
                rows[9], rows[10], vert, 5 * Wo, g);
    const CT* FASTPERC_RESTRICT ma = vert;
    const CT* FASTPERC_RESTRICT mb = vert + Wo;
    const CT* FASTPERC_RESTRICT eaa = vert + 2 * Wo;
    const CT* FASTPERC_RESTRICT ebb = vert + 3 * Wo;
    const CT* FASTPERC_RESTRICT eab = vert + 4 * Wo;
    CT* FASTPERC_RESTRICT ssr = ss;
    CT* FASTPERC_RESTRICT csr = cs;
    for (int64_t x = 0; x < Wo; ++x) {
      const CT maa = ma[x] * ma[x], mbb = mb[x] * mb[x], mab = ma[x] * mb[x];
      CT saa = eaa[x] - maa, sbb = ebb[x] - mbb;
      const CT sab = eab[x] - mab;
      if (REFLECT) {
        saa = saa < CT(0) ? CT(0) : saa;
        sbb = sbb < CT(0) ? CT(0) : sbb;
      }
      const CT c = (CT(2) * sab + c2) / (saa + sbb + c2);
      ssr[x] = (CT(2) * mab + c1) / (maa + mbb + c1) * c;
      csr[x] = c;
    }
    add_lanes<CT>(ss, Wo, acc_s);
    if (p.want_cs) {
      if (!REFLECT) {
        add_lanes<CT>(cs, Wo, acc_c);
      } else if (o >= kRadius && o < Ho - kRadius) {
        add_lanes<CT>(cs + kRadius, Wo - 2 * kRadius, acc_c);
      }
    }
  }
  res[0] += lane_total(acc_s);
  res[1] += lane_total(acc_c);
}

template <DType D, bool REFLECT>
FASTPERC_INLINE void ssim_tasks(const SsimParams& p, int64_t t0, int64_t t1, int64_t bands,
                                int64_t band_h, int64_t ho, int64_t planes_per_image, double* buf,
                                double* part) {
  using CT = typename Traits<D>::C;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t plane = t / bands, band = t % bands;
    const int64_t o0 = band * band_h, o1 = std::min(ho, o0 + band_h);
    part[2 * t] = part[2 * t + 1] = 0.0;
    ssim_task<D, REFLECT>(p, plane / planes_per_image, plane % planes_per_image, o0, o1,
                          reinterpret_cast<CT*>(buf), part + 2 * t);
  }
}

template <DType D>
FASTPERC_INLINE void ssim_tasks_d(const SsimParams& p, int64_t t0, int64_t t1, int64_t bands,
                                  int64_t band_h, int64_t ho, int64_t ppi, double* buf,
                                  double* part) {
  if (p.reflect)
    ssim_tasks<D, true>(p, t0, t1, bands, band_h, ho, ppi, buf, part);
  else
    ssim_tasks<D, false>(p, t0, t1, bands, band_h, ho, ppi, buf, part);
}

FASTPERC_CLONES void ssim_entry(const SsimParams& p, int64_t t0, int64_t t1, int64_t bands,
                                int64_t band_h, int64_t ho, int64_t ppi, double* buf,
                                double* part) {
  switch (p.a.dtype) {
    case DType::U8: ssim_tasks_d<DType::U8>(p, t0, t1, bands, band_h, ho, ppi, buf, part); break;
    case DType::F16: ssim_tasks_d<DType::F16>(p, t0, t1, bands, band_h, ho, ppi, buf, part); break;
    case DType::BF16:
      ssim_tasks_d<DType::BF16>(p, t0, t1, bands, band_h, ho, ppi, buf, part);
      break;
    case DType::F32: ssim_tasks_d<DType::F32>(p, t0, t1, bands, band_h, ho, ppi, buf, part); break;
    case DType::F64: ssim_tasks_d<DType::F64>(p, t0, t1, bands, band_h, ho, ppi, buf, part); break;
  }
}

// ---------------------------------------------------------------------------------------------
// Squared-error sums (PSNR)
// ---------------------------------------------------------------------------------------------

template <DType D>
FASTPERC_INLINE void sq_rows(const SqErrParams& p, int64_t r0, int64_t r1, int64_t planes,
                             double* buf, double* part) {
  const int64_t H = p.a.shape[2], W = p.a.shape[3];
  double* FASTPERC_RESTRICT ra = buf;
  double* FASTPERC_RESTRICT rb = buf + W;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t y = r % H, plane = r / H;
    const int64_t n = plane / planes, pl = plane % planes;
    load_row<D, double>(p.a, p.mix, n, pl, y, ra);
    load_row<D, double>(p.b, p.mix, n, pl, y, rb);
    double acc[kLanes] = {};
    int64_t x = 0;
    for (; x + kLanes <= W; x += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const double d = ra[x + l] - rb[x + l];
        acc[l] += d * d;
      }
    for (int l = 0; x < W; ++x, ++l) {
      const double d = ra[x] - rb[x];
      acc[l] += d * d;
    }
    part[r] = lane_total(acc);
  }
}

FASTPERC_CLONES void sq_entry(const SqErrParams& p, int64_t r0, int64_t r1, int64_t planes,
                              double* buf, double* part) {
  switch (p.a.dtype) {
    case DType::U8: sq_rows<DType::U8>(p, r0, r1, planes, buf, part); break;
    case DType::F16: sq_rows<DType::F16>(p, r0, r1, planes, buf, part); break;
    case DType::BF16: sq_rows<DType::BF16>(p, r0, r1, planes, buf, part); break;
    case DType::F32: sq_rows<DType::F32>(p, r0, r1, planes, buf, part); break;
    case DType::F64: sq_rows<DType::F64>(p, r0, r1, planes, buf, part); break;
  }
}

// ---------------------------------------------------------------------------------------------
// 2x2 average pooling
// ---------------------------------------------------------------------------------------------

template <DType D>
FASTPERC_INLINE void pool_rows(const PoolParams& p, int64_t r0, int64_t r1, double* buf) {
  using CT = typename Traits<D>::C;
  const int64_t H = p.src.shape[2], W = p.src.shape[3];
  const int64_t Hd = p.dst.shape[2], Wd = p.dst.shape[3], P = p.dst.shape[1];
  const int64_t pt = p.pad_odd ? H % 2 : 0, pl = p.pad_odd ? W % 2 : 0;
  CT* FASTPERC_RESTRICT t0 = reinterpret_cast<CT*>(buf);  // 2 * Wd + 2 values each
  CT* FASTPERC_RESTRICT t1 = t0 + 2 * Wd + 2;
  const int64_t sd = p.dst.stride[3];
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t yd = r % Hd, plane = r / Hd, n = plane / P, c = plane % P;
    CT* rows[2] = {t0, t1};
    for (int k = 0; k < 2; ++k) {
      const int64_t y = 2 * yd - pt + k;
      CT* q = rows[k];
      for (int64_t x = 0; x < 2 * Wd; ++x) q[x] = CT(0);
      if (y >= 0 && y < H) {
        load_row<D, CT>(p.src, p.mix, n, c, y, q + pl);
        for (int64_t x = pl + W; x < 2 * Wd; ++x) q[x] = CT(0);  // right pad / floor drop
      }
    }
    CT* d = p.dst.ptr<CT>(n, c, yd);
    for (int64_t x = 0; x < Wd; ++x)
      d[x * sd] = (((t0[2 * x] + t0[2 * x + 1]) + t1[2 * x]) + t1[2 * x + 1]) / CT(4);
  }
}

FASTPERC_CLONES void pool_entry(const PoolParams& p, int64_t r0, int64_t r1, double* buf) {
  switch (p.src.dtype) {
    case DType::U8: pool_rows<DType::U8>(p, r0, r1, buf); break;
    case DType::F16: pool_rows<DType::F16>(p, r0, r1, buf); break;
    case DType::BF16: pool_rows<DType::BF16>(p, r0, r1, buf); break;
    case DType::F32: pool_rows<DType::F32>(p, r0, r1, buf); break;
    case DType::F64: pool_rows<DType::F64>(p, r0, r1, buf); break;
  }
}

// ---------------------------------------------------------------------------------------------
// CIEDE2000
// ---------------------------------------------------------------------------------------------

constexpr double kPi = 3.14159265358979323846;

FASTPERC_INLINE double deg2rad(double d) { return d * (kPi / 180.0); }

FASTPERC_INLINE double ciede2000_px(double L1, double a1, double b1, double L2, double a2,
                                    double b2) {
  const double p7 = 6103515625.0;  // 25**7
  double cbar = 0.5 * (std::hypot(a1, b1) + std::hypot(a2, b2));
  double c7 = std::pow(cbar, 7.0);
  const double g = 0.5 * (1.0 - std::sqrt(c7 / (c7 + p7)));
  const double ap1 = a1 * (1.0 + g), ap2 = a2 * (1.0 + g);
  const double c1 = std::hypot(ap1, b1), c2 = std::hypot(ap2, b2);
  double h1 = std::atan2(b1, ap1), h2 = std::atan2(b2, ap2);
  if (h1 < 0.0) h1 += 2.0 * kPi;
  if (h2 < 0.0) h2 += 2.0 * kPi;

  const double lbar = 0.5 * (L1 + L2);
  const double tmp = (lbar - 50.0) * (lbar - 50.0);
  const double sl = 1.0 + 0.015 * tmp / std::sqrt(20.0 + tmp);
  const double l_term = (L2 - L1) / sl;

  cbar = 0.5 * (c1 + c2);
  const double sc = 1.0 + 0.045 * cbar;
  const double c_term = (c2 - c1) / sc;

  const double h_diff = h2 - h1, h_sum = h1 + h2, cc = c1 * c2;
  const bool zero = cc == 0.0;
  double dh = h_diff;
  if (h_diff > kPi) dh = h_diff - 2.0 * kPi;
  if (h_diff < -kPi) dh = h_diff + 2.0 * kPi;
  if (zero) dh = 0.0;
  const double dh_term = 2.0 * std::sqrt(cc) * std::sin(dh / 2.0);

  double hbar = h_sum;
  if (!zero && std::fabs(h_diff) > kPi) hbar = h_sum < 2.0 * kPi ? h_sum + 2.0 * kPi : h_sum - 2.0 * kPi;
  if (zero) hbar = hbar * 2.0;
  hbar = hbar * 0.5;

  const double t = 1.0 - 0.17 * std::cos(hbar - deg2rad(30.0)) + 0.24 * std::cos(2.0 * hbar) +
                   0.32 * std::cos(3.0 * hbar + deg2rad(6.0)) -
                   0.20 * std::cos(4.0 * hbar - deg2rad(63.0));
  const double sh = 1.0 + 0.015 * cbar * t;
  const double h_term = dh_term / sh;

  c7 = std::pow(cbar, 7.0);
  const double rc = 2.0 * std::sqrt(c7 / (c7 + p7));
  const double e = (hbar * (180.0 / kPi) - 275.0) / 25.0;
  const double dtheta = deg2rad(30.0) * std::exp(-(e * e));
  const double r_term = -std::sin(2.0 * dtheta) * rc * c_term * h_term;

  const double de2 = l_term * l_term + c_term * c_term + h_term * h_term + r_term;
  return std::sqrt(de2 < 0.0 ? 0.0 : de2);  // NaN stays NaN
}

template <class T>
void ciede_rows(const DeltaEParams& p, int64_t r0, int64_t r1) {
  const int64_t H = p.a.shape[2], W = p.a.shape[3];
  const int64_t sa = p.a.stride[3], sb = p.b.stride[3], sd = p.dst.stride[3];
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / H, y = r % H;
    const T* a0 = p.a.ptr<const T>(n, 0, y);
    const T* a1 = p.a.ptr<const T>(n, 1, y);
    const T* a2 = p.a.ptr<const T>(n, 2, y);
    const T* b0 = p.b.ptr<const T>(n, 0, y);
    const T* b1 = p.b.ptr<const T>(n, 1, y);
    const T* b2 = p.b.ptr<const T>(n, 2, y);
    T* d = p.dst.ptr<T>(n, 0, y);
    for (int64_t x = 0; x < W; ++x)
      d[x * sd] = static_cast<T>(ciede2000_px(a0[x * sa], a1[x * sa], a2[x * sa], b0[x * sb],
                                              b1[x * sb], b2[x * sb]));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

int ssim_sums(const SsimParams& p) {
  const int64_t N = p.a.shape[0], C = p.a.shape[1], H = p.a.shape[2], W = p.a.shape[3];
  const int64_t ppi = p.mix.luma ? 1 : C;
  const int64_t pad = p.reflect ? kRadius : 0;
  const int64_t Wp = W + 2 * pad, Ho = H + 2 * pad - 2 * kRadius, Wo = Wp - 2 * kRadius;
  const int64_t planes = N * ppi;
  // Enough tasks to balance threads even for a single image, never bands under ~32 rows (each
  // band refilters 10 rows); the split depends on the shape only, not on the thread count.
  int64_t bands = std::max<int64_t>(1, std::min(ceil_div(32, planes), Ho / 32));
  const int64_t band_h = ceil_div(Ho, bands);
  bands = ceil_div(Ho, band_h);
  const int64_t tasks = planes * bands;
  std::vector<double> part;
  try {
    part.assign(static_cast<size_t>(2 * tasks), 0.0);
  } catch (const std::bad_alloc&) {
    return 1;
  }
  std::atomic<int> failed{0};
  const int64_t need = ssim_scratch(Wp, Wo);
  const double cost = static_cast<double>(band_h + 2 * kRadius) * static_cast<double>(Wp) * 40.0;
  parallel_rows(tasks, cost, [&](int64_t t0, int64_t t1) {
    auto buf = scratch(need);
    if (!buf) {
      failed.store(1);
      return;
    }
    ssim_entry(p, t0, t1, bands, band_h, Ho, ppi, buf.get(), part.data());
  });
  if (failed.load()) return 1;
  const double n_ss = static_cast<double>(Ho) * static_cast<double>(Wo);
  const double n_cs = p.reflect ? static_cast<double>(Ho - 2 * kRadius) *
                                      static_cast<double>(Wo - 2 * kRadius)
                                : n_ss;
  for (int64_t pl = 0; pl < planes; ++pl) {
    double s = 0.0, c = 0.0;
    for (int64_t b = 0; b < bands; ++b) {
      s += part[static_cast<size_t>(2 * (pl * bands + b))];
      c += part[static_cast<size_t>(2 * (pl * bands + b) + 1)];
    }
    p.out[2 * pl] = s / n_ss;
    p.out[2 * pl + 1] = p.want_cs ? c / n_cs : 0.0;
  }
  return 0;
}

int sq_error_sums(const SqErrParams& p) {
  const int64_t N = p.a.shape[0], C = p.a.shape[1], H = p.a.shape[2], W = p.a.shape[3];
  const int64_t planes = p.mix.luma ? 1 : C;
  const int64_t rows = N * planes * H;
  std::vector<double> part;
  try {
    part.assign(static_cast<size_t>(rows), 0.0);
  } catch (const std::bad_alloc&) {
    return 1;
  }
  std::atomic<int> failed{0};
  parallel_rows(rows, static_cast<double>(W) * (p.mix.luma ? 6.0 : 2.0),
                [&](int64_t r0, int64_t r1) {
                  auto buf = scratch(2 * W);
                  if (!buf) {
                    failed.store(1);
                    return;
                  }
                  sq_entry(p, r0, r1, planes, buf.get(), part.data());
                });
  if (failed.load()) return 1;
  const int64_t per = planes * H;
  for (int64_t n = 0; n < N; ++n) {
    double s = 0.0;
    for (int64_t r = 0; r < per; ++r) s += part[static_cast<size_t>(n * per + r)];
    p.out[n] = s;
  }
  return 0;
}

void avg_pool2(const PoolParams& p) {
  const int64_t rows = p.dst.shape[0] * p.dst.shape[1] * p.dst.shape[2];
  const int64_t wd = p.dst.shape[3];
  parallel_rows(rows, static_cast<double>(wd) * 8.0, [&](int64_t r0, int64_t r1) {
    // 2 rows of 2 * Wd + 2 values plus room for the loaded row (W <= 2 * Wd + 1).
    auto buf = scratch(2 * (2 * wd + 2) + 8);
    if (!buf) return;  // cannot happen for any size that fits in memory; dst stays unwritten
    pool_entry(p, r0, r1, buf.get());
  });
}

void ciede2000(const DeltaEParams& p) {
  const int64_t rows = p.a.shape[0] * p.a.shape[2];
  parallel_rows(rows, static_cast<double>(p.a.shape[3]) * 60.0, [&](int64_t r0, int64_t r1) {
    if (p.a.dtype == DType::F64)
      ciede_rows<double>(p, r0, r1);
    else
      ciede_rows<float>(p, r0, r1);
  });
}

}  // namespace metrics
}  // namespace fastperc
