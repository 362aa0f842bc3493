// libFuzzer target for the JPEG parser and decoder (csrc/jpeg_codec.h), meant to be built with
// AddressSanitizer and UndefinedBehaviorSanitizer; see README.md in this folder.
//
// Every input runs inspect() and decode(); both may only throw jpeg::Error or
// jpeg::Unsupported. A successful decode is checked for self-consistency: inspect() agrees on
// the header, every coefficient buffer has the size of its block grid, and decoding again gives
// the same coefficients.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "jpeg_codec.h"

namespace jpeg = fastperc::jpeg;

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz_jpeg: invariant violated: %s\n", what);
  std::abort();
}

// Small enough to keep each input fast, large enough for every code path.
constexpr uint64_t kMaxPixels = uint64_t{1} << 24;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bool inspected = false;
  jpeg::Info info;
  try {
    info = jpeg::Parser(data, size, kMaxPixels).inspect();
    inspected = true;
    if (info.width < 1 || info.height < 1 || info.comps.empty()) die("inspect: empty frame");
    if (static_cast<uint64_t>(info.width) * static_cast<uint64_t>(info.height) > kMaxPixels)
      die("inspect: frame over the pixel limit");
  } catch (const jpeg::Error&) {
  } catch (const jpeg::Unsupported&) {
  }
  try {
    const jpeg::Coefficients c = jpeg::Parser(data, size, kMaxPixels).decode();
    if (!inspected) die("decode succeeded where inspect failed");
    if (c.info.width != info.width || c.info.height != info.height) die("size mismatch");
    if (c.coefs.size() != info.comps.size()) die("component count mismatch");
    for (size_t i = 0; i < c.coefs.size(); ++i) {
      const jpeg::Component& k = c.info.comps[i];
      if (c.coefs[i].size() != static_cast<size_t>(k.blocks_h) * k.blocks_v * 64)
        die("coefficient buffer size");
      if (k.coded_bw > k.blocks_h || k.coded_bh > k.blocks_v) die("coded blocks outside grid");
    }
    const jpeg::Coefficients again = jpeg::Parser(data, size, kMaxPixels).decode();
    if (again.coefs != c.coefs) die("decoding is not deterministic");
  } catch (const jpeg::Error&) {
  } catch (const jpeg::Unsupported&) {
  }
  return 0;
}
