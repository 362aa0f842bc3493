// Max pooling of channels-last float32 maps (pool.h). One task is an output row of one image;
// every output pixel starts from the first input pixel of its window (clipped to the image, as
// the padding never wins a max) and folds the others in, channel vectors at a time: the inner
// loop runs along the contiguous channels, so it vectorizes.
#include "pool.h"

#include <algorithm>

namespace fastperc {
namespace pool {
namespace {

// out[c] = max(out[c], in[c]) with NaN winning (as torch's max pooling).
FASTPERC_INLINE void fold_max(float* FASTPERC_RESTRICT out, const float* FASTPERC_RESTRICT in,
                              int64_t c) {
  for (int64_t i = 0; i < c; ++i) {
    const float v = in[i], m = out[i];
    out[i] = ((v > m) | (v != v)) ? v : m;
  }
}

FASTPERC_INLINE void relu_row(float* out, int64_t c) {
  for (int64_t i = 0; i < c; ++i) out[i] = out[i] < 0.0f ? 0.0f : out[i];  // NaN < 0 is false
}

}  // namespace

FASTPERC_CLONES void max_pool(const MaxPoolParams& p) {
  const int64_t n_img = p.src.shape[0], ch = p.src.shape[1];
  const int64_t h = p.src.shape[2], w = p.src.shape[3];
  const int64_t ho = p.dst.shape[2], wo = p.dst.shape[3];
  const int64_t k = p.k, s = p.stride, pad = p.pad;
  const float* src = static_cast<const float*>(p.src.data);
  float* dst = static_cast<float*>(p.dst.data);
  const int64_t sn = p.src.stride[0], sy = p.src.stride[2], sx = p.src.stride[3];
  const int64_t dn = p.dst.stride[0], dy = p.dst.stride[2], dx = p.dst.stride[3];
  const double cost = static_cast<double>(wo * ch * k * k);
  parallel_rows(n_img * ho, cost, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / ho, oy = r % ho;
      const int64_t y0 = std::max<int64_t>(oy * s - pad, 0);
      const int64_t y1 = std::min<int64_t>(oy * s - pad + k, h);
      const float* img = src + n * sn;
      float* out_row = dst + n * dn + oy * dy;
      for (int64_t ox = 0; ox < wo; ++ox) {
        const int64_t x0 = std::max<int64_t>(ox * s - pad, 0);
        const int64_t x1 = std::min<int64_t>(ox * s - pad + k, w);
        float* out = out_row + ox * dx;
        const float* first = img + y0 * sy + x0 * sx;
        std::copy(first, first + ch, out);
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = (y == y0 ? x0 + 1 : x0); x < x1; ++x)
            fold_max(out, img + y * sy + x * sx, ch);
        if (p.relu) relu_row(out, ch);
      }
    }
  });
}

}  // namespace pool
}  // namespace fastperc
