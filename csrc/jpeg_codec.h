// JPEG marker parser and Huffman coefficient decoder that treats every input byte as hostile.
//
// Header-only, no dependency on Python: the pybind11 bindings live in jpeg_io.cpp, and the
// libFuzzer harness in fuzz/fuzz_jpeg.cc compiles this file on its own.
//
//   Parser(data, size, max_pixels).inspect()  -> Info          markers up to the first scan
//   Parser(data, size, max_pixels).decode()   -> Coefficients  every scan, up to EOI
//
// Supported for decode(): Huffman-coded sequential DCT (SOF0 baseline, SOF1 extended; 8- or
// 12-bit precision) and Huffman-coded progressive DCT (SOF2), any sampling factors 1..4,
// interleaved and single-component scans, restart intervals. Arithmetic coding, lossless and
// hierarchical frames are parsed by inspect() and rejected by decode() with Unsupported.
//
// Failure model: every malformed input throws Error (offset + reason); a well-formed input that
// uses an unsupported feature throws Unsupported. Every read is bounds-checked, every loop
// advances through the input or is bounded by the frame geometry, and allocation is bounded by
// two limits checked before anything is allocated:
//   * width * height <= max_pixels (kDefaultMaxPixels = 2^28 unless the caller passes another);
//   * the number of 8x8 blocks the frame needs is at most 8 per byte of data following the first
//     scan header (every block costs at least one bit in a complete file), so a small input can
//     never make the decoder allocate a large coefficient buffer.
// Decoding work is bounded by the frame too: a sequential component is coded in one scan, and a
// progressive scan must continue the successive approximation of every coefficient it codes
// (checked; libjpeg only warns), so a coefficient takes part in at most 14 scans and a file of
// many tiny scans cannot make the work grow with the square of its size.
//
// Stricter than libjpeg, which decodes these with a warning: corrupt entropy-coded data (an
// invalid Huffman code, a run past the end of a block or band, data that ends early), a missing
// or out-of-sequence RSTn marker, a bogus progression, a missing EOI. Bytes between the end of
// a restart interval or scan and the next marker are skipped, as libjpeg does.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace fastperc {
namespace jpeg {

// Largest width * height accepted by default (268,435,456 pixels, e.g. 16384 x 16384).
constexpr uint64_t kDefaultMaxPixels = uint64_t{1} << 28;
// Components per frame supported (the most any interleaved scan can carry; CMYK needs 4).
constexpr int kMaxComponents = 4;
// Blocks per MCU of an interleaved scan (T.81 B.2.3 and libjpeg's D_MAX_BLOCKS_IN_MCU).
constexpr int kMaxBlocksInMcu = 10;

// Zigzag index -> natural (row-major) index within an 8x8 block.
constexpr uint8_t kNaturalOrder[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

inline std::string hex_byte(unsigned v) {
  static const char* digits = "0123456789ABCDEF";
  std::string s = "0x";
  s += digits[(v >> 4) & 15];
  s += digits[v & 15];
  return s;
}

inline std::string marker_name(unsigned code) {
  return "0xFF" + hex_byte(code).substr(2);
}

// Malformed data. truncated(): the data ended before the structure being read was complete,
// so a longer prefix of the same file might parse (inspect() of a partly read file uses this).
class Error : public std::runtime_error {
 public:
  Error(size_t offset, const std::string& reason, bool truncated = false)
      : std::runtime_error("invalid JPEG data at byte offset " + std::to_string(offset) + ": " +
                           reason),
        offset_(offset),
        truncated_(truncated) {}
  size_t offset() const noexcept { return offset_; }
  bool truncated() const noexcept { return truncated_; }

 private:
  size_t offset_;
  bool truncated_;
};

// A well-formed file that uses a coding process this decoder does not implement.
class Unsupported : public std::runtime_error {
 public:
  Unsupported(size_t offset, const std::string& what)
      : std::runtime_error(what + " (marker at byte offset " + std::to_string(offset) + ")") {}
};

// ---------------------------------------------------------------------------------------------
// Parsed structures
// ---------------------------------------------------------------------------------------------

enum class Mode : int { Baseline = 0, Extended = 1, Progressive = 2, Lossless = 3 };

inline const char* mode_name(Mode m) {
  switch (m) {
    case Mode::Baseline: return "baseline";
    case Mode::Extended: return "extended";
    case Mode::Progressive: return "progressive";
    case Mode::Lossless: return "lossless";
  }
  return "?";
}

struct Component {
  int id = 0;  // component identifier Ci
  int h = 1;   // horizontal sampling factor, 1..4
  int v = 1;   // vertical sampling factor, 1..4
  int tq = 0;  // quantization table selector, 0..3
  // Derived from the frame geometry:
  int width = 0, height = 0;        // samples: ceil(W * h / hmax), ceil(H * v / vmax)
  int coded_bw = 0, coded_bh = 0;   // blocks of a single-component scan: ceil(width / 8), ...
  int blocks_h = 0, blocks_v = 0;   // block grid padded to whole MCUs: mcus_x * h, mcus_y * v
};

struct QuantTable {
  bool defined = false;
  int bits = 8;       // 8 or 16 (Pq)
  uint16_t q[64]{};   // natural (row-major) order
};

struct HuffSpec {
  bool defined = false;
  uint8_t counts[17]{};   // counts[l]: number of codes of length l, l = 1..16
  uint8_t symbols[256]{};
  int nsymbols = 0;
};

struct AppSegment {
  int n = 0;            // APPn
  size_t offset = 0;    // offset of the marker
  size_t length = 0;    // payload bytes (segment length - 2)
  std::string ident;    // leading NUL-terminated printable identifier, e.g. "JFIF", "Exif"
};

struct Info {
  int sof_marker = -1;      // 0xC0..0xCF
  size_t sof_offset = 0;
  Mode mode = Mode::Baseline;
  bool arithmetic = false;
  bool hierarchical = false;  // differential SOF5-7 / SOF13-15
  int precision = 0;
  int width = 0, height = 0;
  int hmax = 1, vmax = 1;
  int mcus_x = 0, mcus_y = 0;  // MCUs of an interleaved scan
  std::vector<Component> comps;
  QuantTable qt[4];            // tables defined when the first scan starts
  int restart_interval = 0;    // in effect when the first scan starts
  bool has_jfif = false, has_exif = false, has_icc = false, has_adobe = false, has_xmp = false;
  int adobe_transform = -1;    // APP14 "Adobe" transform flag, -1 without the segment
  std::vector<AppSegment> apps;
  std::vector<std::string> comments;
  size_t first_scan_offset = 0;
};

// Quantized DCT coefficients per component: blocks_v * blocks_h blocks of 64 int16 in natural
// order, row-major over the MCU-padded block grid. Blocks a file never codes (the MCU padding of
// a component coded in a single-component scan) are zero.
struct Coefficients {
  Info info;
  std::vector<std::vector<int16_t>> coefs;  // per component
  std::vector<QuantTable> qt;               // per component: its table when first scanned
  int scans = 0;
};

// ---------------------------------------------------------------------------------------------
// Huffman decoding tables
// ---------------------------------------------------------------------------------------------

constexpr int kLookBits = 9;

// An AC code and its value bits decoded by one lookup (when both fit in kLookBits).
struct FastAc {
  int16_t value;  // the coefficient
  uint8_t run;    // zeros before it
  uint8_t len;    // code + value bits; 0: not in the table
};

struct HuffDecoder {
  uint16_t look[1 << kLookBits];  // (length << 8) | symbol for codes <= kLookBits, 0 otherwise
  FastAc fast[1 << kLookBits];    // AC tables only
  int32_t maxcode[18];            // largest code of each length, -1 when none
  int32_t valoff[18];             // symbol index of a code of length l = valoff[l] + code
  uint8_t symbols[256];
  int nsymbols;
};

// ---------------------------------------------------------------------------------------------
// Bit reader over entropy-coded data: byte unstuffing, markers end the data, zero padding
// ---------------------------------------------------------------------------------------------

class BitReader {
 public:
  BitReader(const uint8_t* d, size_t n, size_t pos) : d_(d), n_(n), pos_(pos) {}

  // Refill to more than 56 valid bits; past a marker or the end, appends zero bytes (counted
  // in pad_ so that consuming them is detected by overrun()).
  void fill() {
    while (bits_ <= 56) {
      unsigned b = 0;
      if (!stopped_) {
        if (pos_ >= n_) {
          stop(n_);
        } else if (d_[pos_] != 0xFF) {
          b = d_[pos_++];
        } else {
          size_t p = pos_ + 1;
          while (p < n_ && d_[p] == 0xFF) ++p;  // fill bytes
          if (p < n_ && d_[p] == 0x00) {
            b = 0xFF;  // stuffed 0xFF
            pos_ = p + 1;
          } else {
            stop(pos_);
          }
        }
      }
      if (stopped_) pad_ += 8;
      acc_ = (acc_ << 8) | b;
      bits_ += 8;
    }
  }

  // Next s bits (s <= 16) as an unsigned number.
  inline int get(int s) {
    if (bits_ < s) fill();
    bits_ -= s;
    return static_cast<int>((acc_ >> bits_) & ((1u << s) - 1u));
  }

  // Next Huffman symbol, or -1 for a bit string that is no code of the table.
  inline int decode(const HuffDecoder& h) {
    if (bits_ < 16) fill();
    const unsigned e = h.look[(acc_ >> (bits_ - kLookBits)) & ((1u << kLookBits) - 1u)];
    if (e) {
      bits_ -= static_cast<int>(e >> 8);
      return static_cast<int>(e & 0xFF);
    }
    for (int l = kLookBits + 1; l <= 16; ++l) {
      const int32_t code = static_cast<int32_t>((acc_ >> (bits_ - l)) & ((1u << l) - 1u));
      if (code <= h.maxcode[l]) {
        const int32_t idx = h.valoff[l] + code;
        if (idx < 0 || idx >= h.nsymbols) return -1;
        bits_ -= l;
        return h.symbols[idx];
      }
    }
    return -1;
  }

  // The next kLookBits bits (at least 16 are buffered after ensure16()).
  inline void ensure16() {
    if (bits_ < 16) fill();
  }
  inline unsigned peek_look() const {
    return static_cast<unsigned>(acc_ >> (bits_ - kLookBits)) & ((1u << kLookBits) - 1u);
  }
  inline void skip(int n) { bits_ -= n; }

  // True once bits past the end of the data (zero padding) have been consumed.
  bool overrun() const { return pad_ > bits_; }
  // Whether the data ended (marker or end of input) while filling.
  bool stopped() const { return stopped_; }
  // Offset of the next byte not yet loaded (an approximate position for error messages).
  size_t position() const { return pos_; }

  // Drops the buffered bits and skips any bytes left before the next marker. Returns the offset
  // of the marker's first 0xFF, or the input size when the data ends without one.
  size_t skip_to_marker() {
    while (!stopped_) {
      bits_ = 0;
      fill();
    }
    bits_ = 0;
    pad_ = 0;
    return marker_pos_;
  }

  // Restart after a marker that ends at pos.
  void reset(size_t pos) {
    pos_ = pos;
    acc_ = 0;
    bits_ = 0;
    pad_ = 0;
    stopped_ = false;
    marker_pos_ = 0;
  }

 private:
  void stop(size_t at) {
    stopped_ = true;
    marker_pos_ = at;
  }

  const uint8_t* d_;
  size_t n_;
  size_t pos_;
  uint64_t acc_ = 0;
  int bits_ = 0;
  int pad_ = 0;
  bool stopped_ = false;
  size_t marker_pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Parser / decoder
// ---------------------------------------------------------------------------------------------

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, uint64_t max_pixels = kDefaultMaxPixels)
      : d_(data), n_(size), max_pixels_(max_pixels) {}

  // Markers from SOI up to and including the first scan header.
  Info inspect() {
    Scan scan;
    read_to_first_scan(scan);
    return info_;
  }

  // The whole file: every scan, up to EOI.
  Coefficients decode() {
    Scan scan;
    read_to_first_scan(scan);
    check_decodable();
    Coefficients out;
    out.info = info_;  // the header as inspect() reports it
    allocate(out, scan);
    std::vector<bool> scanned(info_.comps.size(), false);
    coef_bits_.assign(info_.comps.size() * 64, -1);
    for (;;) {
      decode_scan(out, scan, scanned);
      ++out.scans;
      if (!read_markers(scan, /*first=*/false)) break;  // EOI
    }
    for (size_t c = 0; c < info_.comps.size(); ++c) {
      if (!scanned[c] && info_.mode != Mode::Progressive)
        fail(pos_, "component " + std::to_string(info_.comps[c].id) +
                       " is not coded in any scan before EOI");
    }
    return out;
  }

 private:
  struct Scan {
    size_t offset = 0;
    int ns = 0;
    int comp[kMaxComponents]{};  // indices into info_.comps
    int td[kMaxComponents]{};
    int ta[kMaxComponents]{};
    int ss = 0, se = 63, ah = 0, al = 0;
  };

  // ----- errors and bounded reads -----

  [[noreturn]] void fail(size_t off, const std::string& reason) const { throw Error(off, reason); }
  [[noreturn]] void truncated(size_t off, const std::string& reason) const {
    throw Error(off, reason, true);
  }

  uint8_t u8(size_t off) const {
    if (off >= n_) truncated(off, "data ends (" + std::to_string(n_) + " bytes) inside a segment");
    return d_[off];
  }
  unsigned u16(size_t off) const { return (unsigned{u8(off)} << 8) | u8(off + 1); }

  // Reads a marker at pos_: 0xFF, any number of 0xFF fill bytes, then the code.
  int read_marker(size_t& marker_off) {
    if (pos_ >= n_) truncated(pos_, "data ends before the next marker (missing EOI?)");
    if (d_[pos_] != 0xFF)
      fail(pos_, "expected a marker (0xFF), found byte " + hex_byte(d_[pos_]));
    size_t p = pos_ + 1;
    while (p < n_ && d_[p] == 0xFF) ++p;
    if (p >= n_) truncated(pos_, "data ends inside a marker");
    if (d_[p] == 0x00) fail(pos_, "stuffed byte 0xFF00 outside entropy-coded data");
    marker_off = p - 1;
    pos_ = p + 1;
    return d_[p];
  }

  // Reads a segment length at pos_ and returns the payload [begin, end); advances pos_ past it.
  std::pair<size_t, size_t> read_segment(int marker, size_t marker_off) {
    const size_t len_off = pos_;
    if (len_off + 2 > n_)
      truncated(len_off, "data ends inside the length of segment " + marker_name(marker));
    const size_t len = u16(len_off);
    if (len < 2)
      fail(len_off, "segment " + marker_name(marker) + " at offset " +
                        std::to_string(marker_off) + " has length " + std::to_string(len) +
                        " (less than 2)");
    if (len > n_ - len_off)
      truncated(len_off, "segment " + marker_name(marker) + " of length " + std::to_string(len) +
                             " runs past the end of the data (" + std::to_string(n_) +
                             " bytes)");
    pos_ = len_off + len;
    return {len_off + 2, len_off + len};
  }

  // ----- marker loop -----

  void read_to_first_scan(Scan& scan) {
    if (n_ < 2) truncated(0, "data ends before the SOI marker");
    if (d_[0] != 0xFF || d_[1] != 0xD8)
      fail(0, "not a JPEG file: expected SOI marker 0xFFD8, found " + hex_byte(d_[0]) + " " +
                  hex_byte(d_[1]));
    pos_ = 2;
    if (!read_markers(scan, /*first=*/true)) fail(pos_, "EOI before any scan");
    info_.first_scan_offset = scan.offset;
    for (int i = 0; i < 4; ++i) info_.qt[i] = qt_[i];
    info_.restart_interval = ri_;
  }

  // Reads segments until a scan header (true, scan filled in) or EOI (false).
  bool read_markers(Scan& scan, bool first) {
    for (;;) {
      size_t off = 0;
      const int m = read_marker(off);
      if (m == 0xD8) fail(off, "second SOI marker");
      if (m == 0xD9) {
        if (first) fail(off, "EOI before any scan (no SOS marker)");
        return false;
      }
      if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // TEM, stray RSTn: no payload
      if (m < 0xC0) fail(off, "reserved marker " + marker_name(m));
      const auto seg = read_segment(m, off);
      const size_t b = seg.first, e = seg.second;
      if (m == 0xDA) {
        if (info_.sof_marker < 0) fail(off, "SOS before the frame header (no SOF marker)");
        parse_sos(off, b, e, scan);
        return true;
      }
      if (m == 0xC4) {
        parse_dht(b, e);
      } else if (m == 0xCC || m == 0xC8) {
        // DAC (arithmetic conditioning) and JPG (reserved): skipped.
      } else if (m >= 0xC0 && m <= 0xCF) {
        parse_sof(m, off, b, e);
      } else if (m == 0xDB) {
        parse_dqt(b, e);
      } else if (m == 0xDD) {
        if (e - b != 2) fail(b - 2, "DRI segment length " + std::to_string(e - b + 2) + " is not 4");
        ri_ = static_cast<int>(u16(b));
      } else if (m >= 0xE0 && m <= 0xEF) {
        parse_app(m - 0xE0, off, b, e);
      } else if (m == 0xFE) {
        info_.comments.emplace_back(reinterpret_cast<const char*>(d_ + b), e - b);
      } else if (m == 0xDC) {
        if (e - b != 2) fail(b - 2, "DNL segment length " + std::to_string(e - b + 2) + " is not 4");
      }
      // DHP, EXP, JPGn, and other segments with a length: skipped.
    }
  }

  void parse_sof(int m, size_t off, size_t b, size_t e) {
    if (info_.sof_marker >= 0)
      fail(off, "second frame header " + marker_name(m) + " (the first, " +
                    marker_name(info_.sof_marker) + ", is at offset " +
                    std::to_string(info_.sof_offset) + ")");
    if (e - b < 6) fail(b - 2, "SOF segment too short (" + std::to_string(e - b + 2) + " bytes)");
    const int p = u8(b);
    const int y = static_cast<int>(u16(b + 1));
    const int x = static_cast<int>(u16(b + 3));
    const int nf = u8(b + 5);
    if (e - b != 6 + 3 * static_cast<size_t>(nf))
      fail(b - 2, "SOF segment length " + std::to_string(e - b + 2) + " does not match its " +
                      std::to_string(nf) + " components (expected " +
                      std::to_string(8 + 3 * nf) + ")");
    info_.sof_marker = m;
    info_.sof_offset = off;
    info_.arithmetic = m >= 0xC9;
    info_.hierarchical = (m & 0x07) >= 5;
    if (m == 0xC0) {
      info_.mode = Mode::Baseline;
    } else if ((m & 3) == 2) {
      info_.mode = Mode::Progressive;
    } else if ((m & 3) == 3) {
      info_.mode = Mode::Lossless;
    } else {
      info_.mode = Mode::Extended;
    }
    info_.precision = p;
    if (info_.mode == Mode::Lossless) {
      if (p < 2 || p > 16) fail(b, "sample precision " + std::to_string(p) + " is not in 2..16");
    } else if (info_.mode == Mode::Baseline) {
      if (p != 8) fail(b, "baseline frame with sample precision " + std::to_string(p) + " (not 8)");
    } else if (p != 8 && p != 12) {
      fail(b, "DCT frame with sample precision " + std::to_string(p) + " (not 8 or 12)");
    }
    if (x == 0) fail(b + 3, "image width is 0");
    if (y == 0)
      throw Unsupported(off, "image height 0 (height defined by a later DNL marker) is not supported");
    const uint64_t pixels = static_cast<uint64_t>(x) * static_cast<uint64_t>(y);
    if (pixels > max_pixels_)
      fail(b + 1, "image of " + std::to_string(x) + " x " + std::to_string(y) + " = " +
                      std::to_string(pixels) + " pixels exceeds the limit of " +
                      std::to_string(max_pixels_) + " pixels");
    if (nf == 0) fail(b + 5, "frame with 0 components");
    if (nf > kMaxComponents)
      throw Unsupported(off, "frames with " + std::to_string(nf) + " components (more than " +
                                 std::to_string(kMaxComponents) + ") are not supported");
    info_.width = x;
    info_.height = y;
    info_.comps.clear();
    for (int i = 0; i < nf; ++i) {
      const size_t o = b + 6 + 3 * static_cast<size_t>(i);
      Component c;
      c.id = u8(o);
      c.h = u8(o + 1) >> 4;
      c.v = u8(o + 1) & 15;
      c.tq = u8(o + 2);
      if (c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4)
        fail(o + 1, "component " + std::to_string(c.id) + " has sampling factors " +
                        std::to_string(c.h) + "x" + std::to_string(c.v) + " (each must be 1..4)");
      if (c.tq > 3)
        fail(o + 2, "component " + std::to_string(c.id) + " selects quantization table " +
                        std::to_string(c.tq) + " (must be 0..3)");
      for (const Component& o2 : info_.comps)
        if (o2.id == c.id) fail(o, "duplicate component id " + std::to_string(c.id));
      info_.comps.push_back(c);
    }
    int hmax = 1, vmax = 1;
    for (const Component& c : info_.comps) {
      hmax = std::max(hmax, c.h);
      vmax = std::max(vmax, c.v);
    }
    info_.hmax = hmax;
    info_.vmax = vmax;
    info_.mcus_x = static_cast<int>(ceil_div(x, 8 * hmax));
    info_.mcus_y = static_cast<int>(ceil_div(y, 8 * vmax));
    for (Component& c : info_.comps) {
      c.width = static_cast<int>(ceil_div(int64_t{x} * c.h, hmax));
      c.height = static_cast<int>(ceil_div(int64_t{y} * c.v, vmax));
      c.coded_bw = static_cast<int>(ceil_div(c.width, 8));
      c.coded_bh = static_cast<int>(ceil_div(c.height, 8));
      c.blocks_h = info_.mcus_x * c.h;
      c.blocks_v = info_.mcus_y * c.v;
    }
  }

  void parse_dqt(size_t b, size_t e) {
    size_t p = b;
    if (p == e) fail(b - 2, "empty DQT segment");
    while (p < e) {
      const int pq = d_[p] >> 4, tq = d_[p] & 15;
      if (pq > 1) fail(p, "quantization table precision " + std::to_string(pq) + " (must be 0 or 1)");
      if (tq > 3) fail(p, "quantization table id " + std::to_string(tq) + " (must be 0..3)");
      const size_t need = 1 + 64 * static_cast<size_t>(pq + 1);
      if (e - p < need)
        fail(p, "DQT segment too short for table " + std::to_string(tq) + " (" +
                    std::to_string(e - p) + " of " + std::to_string(need) + " bytes)");
      QuantTable& t = qt_[tq];
      t.defined = true;
      t.bits = pq ? 16 : 8;
      for (int k = 0; k < 64; ++k) {
        const unsigned v = pq ? u16(p + 1 + 2 * k) : u8(p + 1 + k);
        t.q[kNaturalOrder[k]] = static_cast<uint16_t>(v);
      }
      p += need;
    }
  }

  void parse_dht(size_t b, size_t e) {
    size_t p = b;
    if (p == e) fail(b - 2, "empty DHT segment");
    while (p < e) {
      const int tc = d_[p] >> 4, th = d_[p] & 15;
      if (tc > 1) fail(p, "Huffman table class " + std::to_string(tc) + " (must be 0 or 1)");
      if (th > 3) fail(p, "Huffman table id " + std::to_string(th) + " (must be 0..3)");
      if (e - p < 17) fail(p, "DHT segment too short for the code length counts");
      HuffSpec s;
      int total = 0;
      for (int l = 1; l <= 16; ++l) {
        s.counts[l] = d_[p + l];
        total += s.counts[l];
      }
      if (total > 256) fail(p + 1, "Huffman table with " + std::to_string(total) + " codes (more than 256)");
      if (e - p - 17 < static_cast<size_t>(total))
        fail(p, "DHT segment too short for " + std::to_string(total) + " symbols");
      std::memcpy(s.symbols, d_ + p + 17, static_cast<size_t>(total));
      s.nsymbols = total;
      // The code lengths must describe a prefix code that leaves the all-ones code unused.
      int32_t code = 0;
      for (int l = 1; l <= 16; ++l) {
        code += s.counts[l];
        if (code >= (int32_t{1} << l))
          fail(p + 1, "Huffman code lengths overflow the code space at length " + std::to_string(l));
        code <<= 1;
      }
      s.defined = true;
      (tc == 0 ? dc_ : ac_)[th] = s;
      p += 17 + static_cast<size_t>(total);
    }
  }

  void parse_app(int n, size_t off, size_t b, size_t e) {
    const size_t len = e - b;
    auto starts = [&](const char* sig, size_t sig_len) {
      return len >= sig_len && std::memcmp(d_ + b, sig, sig_len) == 0;
    };
    AppSegment a;
    a.n = n;
    a.offset = off;
    a.length = len;
    for (size_t i = 0; i < len && i < 40; ++i) {
      const uint8_t c = d_[b + i];
      if (c == 0) break;
      if (c < 0x20 || c > 0x7E) {
        a.ident.clear();
        break;
      }
      a.ident += static_cast<char>(c);
    }
    if (n == 0 && starts("JFIF\0", 5)) info_.has_jfif = true;
    if (n == 1 && starts("Exif\0\0", 6)) info_.has_exif = true;
    if (n == 1 && starts("http://ns.adobe.com/xap/1.0/\0", 29)) info_.has_xmp = true;
    if (n == 2 && starts("ICC_PROFILE\0", 12)) info_.has_icc = true;
    if (n == 14 && starts("Adobe", 5) && len >= 12) {
      info_.has_adobe = true;
      info_.adobe_transform = d_[b + 11];
    }
    info_.apps.push_back(std::move(a));
  }

  void parse_sos(size_t off, size_t b, size_t e, Scan& s) {
    s = Scan();
    s.offset = off;
    if (e - b < 1) fail(b - 2, "empty SOS segment");
    const int ns = d_[b];
    if (ns < 1 || ns > kMaxComponents)
      fail(b, "scan with " + std::to_string(ns) + " components (must be 1..4)");
    if (e - b != 4 + 2 * static_cast<size_t>(ns))
      fail(b - 2, "SOS segment length " + std::to_string(e - b + 2) + " does not match its " +
                      std::to_string(ns) + " components (expected " + std::to_string(6 + 2 * ns) + ")");
    s.ns = ns;
    int blocks = 0;
    for (int i = 0; i < ns; ++i) {
      const size_t o = b + 1 + 2 * static_cast<size_t>(i);
      const int cs = d_[o];
      int ci = -1;
      for (size_t c = 0; c < info_.comps.size(); ++c)
        if (info_.comps[c].id == cs) ci = static_cast<int>(c);
      if (ci < 0) fail(o, "scan references component id " + std::to_string(cs) + ", not in the frame");
      for (int j = 0; j < i; ++j)
        if (s.comp[j] == ci) fail(o, "component id " + std::to_string(cs) + " twice in one scan");
      s.comp[i] = ci;
      s.td[i] = d_[o + 1] >> 4;
      s.ta[i] = d_[o + 1] & 15;
      if (s.td[i] > 3 || s.ta[i] > 3)
        fail(o + 1, "scan selects Huffman table " + std::to_string(s.td[i]) + "/" +
                        std::to_string(s.ta[i]) + " (each must be 0..3)");
      blocks += info_.comps[ci].h * info_.comps[ci].v;
    }
    const size_t q = b + 1 + 2 * static_cast<size_t>(ns);
    s.ss = d_[q];
    s.se = d_[q + 1];
    s.ah = d_[q + 2] >> 4;
    s.al = d_[q + 2] & 15;
    if (ns > 1 && blocks > kMaxBlocksInMcu)
      fail(b, "interleaved scan with " + std::to_string(blocks) + " blocks per MCU (more than " +
                  std::to_string(kMaxBlocksInMcu) + ")");
    if (info_.mode == Mode::Progressive) {
      bool bad = false;
      if (s.ss == 0) {
        bad = s.se != 0;
      } else {
        bad = s.se < s.ss || s.se > 63 || ns != 1;
      }
      if (s.ah != 0 && s.al != s.ah - 1) bad = true;
      if (s.al > 13) bad = true;
      if (bad)
        fail(q, "invalid progressive scan parameters Ss=" + std::to_string(s.ss) + " Se=" +
                    std::to_string(s.se) + " Ah=" + std::to_string(s.ah) + " Al=" +
                    std::to_string(s.al) + " for " + std::to_string(ns) + " component(s)");
    }
    // Tables the scan needs must be defined by now.
    for (int i = 0; i < ns; ++i) {
      const Component& c = info_.comps[s.comp[i]];
      if (info_.mode != Mode::Lossless && !qt_[c.tq].defined)
        fail(off, "component " + std::to_string(c.id) + " uses quantization table " +
                      std::to_string(c.tq) + ", which is not defined");
      if (info_.arithmetic) continue;
      bool need_dc = false, need_ac = false;
      switch (info_.mode) {
        case Mode::Baseline:
        case Mode::Extended: need_dc = need_ac = true; break;
        case Mode::Progressive:
          need_dc = s.ss == 0 && s.ah == 0;
          need_ac = s.ss != 0;
          break;
        case Mode::Lossless: need_dc = true; break;
      }
      if (need_dc && !dc_[s.td[i]].defined)
        fail(off, "scan uses DC Huffman table " + std::to_string(s.td[i]) + ", which is not defined");
      if (need_ac && !ac_[s.ta[i]].defined)
        fail(off, "scan uses AC Huffman table " + std::to_string(s.ta[i]) + ", which is not defined");
    }
  }

  // ----- decoding -----

  static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

  void check_decodable() const {
    const size_t off = info_.sof_offset;
    const std::string sof = marker_name(static_cast<unsigned>(info_.sof_marker));
    if (info_.hierarchical)
      throw Unsupported(off, "hierarchical (differential) JPEG, frame " + sof + ", is not supported");
    if (info_.arithmetic)
      throw Unsupported(off, "arithmetic-coded JPEG, frame " + sof + ", is not supported");
    if (info_.mode == Mode::Lossless)
      throw Unsupported(off, "lossless JPEG, frame " + sof + ", is not supported");
  }

  void allocate(Coefficients& out, const Scan& first) {
    // A complete file codes every block of every component with at least one bit (the DC
    // coefficient), all after the first scan header: reject before allocating otherwise.
    uint64_t min_blocks = 0;
    for (const Component& c : info_.comps)
      min_blocks += static_cast<uint64_t>(c.coded_bw) * static_cast<uint64_t>(c.coded_bh);
    const uint64_t avail = n_ - pos_;
    if (min_blocks > 8 * avail)
      truncated(first.offset, "the " + std::to_string(info_.width) + " x " +
                                  std::to_string(info_.height) + " frame has at least " +
                                  std::to_string(min_blocks) + " blocks but only " +
                                  std::to_string(avail) + " bytes of scan data follow");
    out.coefs.resize(info_.comps.size());
    out.qt.resize(info_.comps.size());
    for (size_t c = 0; c < info_.comps.size(); ++c) {
      const Component& k = info_.comps[c];
      out.coefs[c].assign(static_cast<size_t>(k.blocks_h) * static_cast<size_t>(k.blocks_v) * 64, 0);
    }
  }

  static void make_decoder(const HuffSpec& s, bool dc, HuffDecoder& h, size_t off) {
    std::memset(h.look, 0, sizeof h.look);
    std::memset(h.fast, 0, sizeof h.fast);
    std::memcpy(h.symbols, s.symbols, sizeof h.symbols);
    h.nsymbols = s.nsymbols;
    if (dc)
      for (int i = 0; i < s.nsymbols; ++i)
        if (s.symbols[i] > 15)
          throw Error(off, "DC Huffman table has symbol " + std::to_string(s.symbols[i]) +
                               " (must be 0..15)");
    int32_t code = 0;
    int k = 0;
    for (int l = 1; l <= 16; ++l) {
      h.valoff[l] = k - code;
      if (s.counts[l]) {
        for (int i = 0; i < s.counts[l]; ++i, ++k, ++code) {
          if (l <= kLookBits) {
            const int shift = kLookBits - l;
            const int base = code << shift;
            const int rs = s.symbols[k], run = rs >> 4, size = rs & 15;
            for (int j = 0; j < (1 << shift); ++j) {
              h.look[base + j] = static_cast<uint16_t>((l << 8) | rs);
              if (!dc && size != 0 && l + size <= kLookBits) {
                const int extra = (j >> (shift - size)) & ((1 << size) - 1);
                h.fast[base + j] = FastAc{static_cast<int16_t>(extend(extra, size)),
                                          static_cast<uint8_t>(run),
                                          static_cast<uint8_t>(l + size)};
              }
            }
          }
        }
        h.maxcode[l] = code - 1;
      } else {
        h.maxcode[l] = -1;
      }
      code <<= 1;
    }
    h.maxcode[0] = h.maxcode[17] = -1;
    h.valoff[0] = h.valoff[17] = 0;
  }

  static inline int extend(int v, int s) { return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v; }
  static inline int16_t wrap16(uint32_t v) {
    return static_cast<int16_t>(static_cast<uint16_t>(v & 0xFFFFu));
  }

  // Per-scan state.
  struct ScanState {
    BitReader br;
    const HuffDecoder* dc[kMaxComponents]{};
    const HuffDecoder* ac[kMaxComponents]{};
    uint32_t pred[kMaxComponents]{};
    uint32_t eobrun = 0;
    size_t scan_offset = 0;
    uint64_t mcu = 0, mcus = 0;
    explicit ScanState(BitReader b) : br(b) {}
  };

  [[noreturn]] void scan_fail(const ScanState& st, const std::string& what) const {
    scan_fail(st, st.br, what);
  }
  [[noreturn]] void scan_fail(const ScanState& st, const BitReader& br,
                              const std::string& what) const {
    if (br.stopped())
      truncated(br.position(), "scan data (scan at offset " + std::to_string(st.scan_offset) +
                                      ") ends in MCU " + std::to_string(st.mcu) + " of " +
                                      std::to_string(st.mcus) + " (" + what + ")");
    fail(br.position(), what + " in MCU " + std::to_string(st.mcu) + " of " +
                               std::to_string(st.mcus) + " (scan at offset " +
                               std::to_string(st.scan_offset) + ")");
  }

  inline int huff(ScanState& st, const HuffDecoder& h) {
    const int s = st.br.decode(h);
    if (s < 0) scan_fail(st, "invalid Huffman code");
    return s;
  }

  void block_sequential(ScanState& st, int i, int16_t* blk) {
    // Works on a local copy of the bit reader so that its state stays in registers.
    BitReader br = st.br;
    int s = br.decode(*st.dc[i]);
    if (s < 0) scan_fail(st, br, "invalid Huffman code");
    const int diff = s ? extend(br.get(s), s) : 0;
    st.pred[i] += static_cast<uint32_t>(diff);
    blk[0] = wrap16(st.pred[i]);
    const HuffDecoder& ac = *st.ac[i];
    for (int k = 1; k < 64; ++k) {
      br.ensure16();
      const FastAc f = ac.fast[br.peek_look()];
      if (f.len) {
        br.skip(f.len);
        k += f.run;
        if (k > 63) scan_fail(st, br, "AC coefficient run past the end of the block");
        blk[kNaturalOrder[k]] = f.value;
        continue;
      }
      const int rs = br.decode(ac);
      if (rs < 0) scan_fail(st, br, "invalid Huffman code");
      const int r = rs >> 4;
      s = rs & 15;
      if (s) {
        k += r;
        if (k > 63) scan_fail(st, br, "AC coefficient run past the end of the block");
        blk[kNaturalOrder[k]] = static_cast<int16_t>(extend(br.get(s), s));
      } else {
        if (r != 15) break;
        k += 15;
      }
    }
    st.br = br;
  }

  void block_dc_first(ScanState& st, int i, int al, int16_t* blk) {
    const int s = huff(st, *st.dc[i]);
    const int diff = s ? extend(st.br.get(s), s) : 0;
    st.pred[i] += static_cast<uint32_t>(diff);
    blk[0] = wrap16(st.pred[i] << al);
  }

  void block_dc_refine(ScanState& st, int al, int16_t* blk) {
    if (st.br.get(1)) blk[0] = wrap16(static_cast<uint16_t>(blk[0]) | (1u << al));
  }

  void block_ac_first(ScanState& st, const Scan& sc, int16_t* blk) {
    if (st.eobrun > 0) {
      --st.eobrun;
      return;
    }
    const HuffDecoder& ac = *st.ac[0];
    for (int k = sc.ss; k <= sc.se; ++k) {
      const int rs = huff(st, ac);
      const int r = rs >> 4, s = rs & 15;
      if (s) {
        k += r;
        if (k > sc.se) scan_fail(st, "AC coefficient run past the end of the spectral band");
        const int v = extend(st.br.get(s), s);
        blk[kNaturalOrder[k]] = wrap16(static_cast<uint32_t>(v) << sc.al);
      } else if (r == 15) {
        k += 15;
      } else {
        uint32_t run = 1u << r;
        if (r) run += static_cast<uint32_t>(st.br.get(r));
        st.eobrun = run - 1;
        break;
      }
    }
  }

  // Correction bit for an already nonzero coefficient (T.81 G.1.2.3).
  inline void refine_nonzero(ScanState& st, int16_t& c, int p1) {
    if (st.br.get(1) && (c & p1) == 0) c = wrap16(static_cast<uint32_t>(c + (c >= 0 ? p1 : -p1)));
  }

  void block_ac_refine(ScanState& st, const Scan& sc, int16_t* blk) {
    const int p1 = 1 << sc.al;
    int k = sc.ss;
    if (st.eobrun == 0) {
      const HuffDecoder& ac = *st.ac[0];
      for (; k <= sc.se; ++k) {
        const int rs = huff(st, ac);
        int r = rs >> 4;
        int s = rs & 15;
        if (s) {
          if (s != 1) scan_fail(st, "refinement scan codes a coefficient of size " + std::to_string(s) + " (not 1)");
          s = st.br.get(1) ? p1 : -p1;
        } else if (r != 15) {
          uint32_t run = 1u << r;
          if (r) run += static_cast<uint32_t>(st.br.get(r));
          st.eobrun = run;
          break;
        }
        // Skip r zero coefficients (refining nonzero ones on the way), stop on the next zero.
        do {
          int16_t& c = blk[kNaturalOrder[k]];
          if (c != 0) {
            refine_nonzero(st, c, p1);
          } else {
            if (--r < 0) break;
          }
          ++k;
        } while (k <= sc.se);
        if (s) {
          if (k > sc.se) scan_fail(st, "AC coefficient run past the end of the spectral band");
          blk[kNaturalOrder[k]] = static_cast<int16_t>(s);
        }
      }
    }
    if (st.eobrun > 0) {
      for (; k <= sc.se; ++k) {
        int16_t& c = blk[kNaturalOrder[k]];
        if (c != 0) refine_nonzero(st, c, p1);
      }
      --st.eobrun;
    }
  }

  void decode_block(ScanState& st, const Scan& sc, int i, int16_t* blk) {
    if (info_.mode != Mode::Progressive) {
      block_sequential(st, i, blk);
    } else if (sc.ss == 0) {
      if (sc.ah == 0) {
        block_dc_first(st, i, sc.al, blk);
      } else {
        block_dc_refine(st, sc.al, blk);
      }
    } else if (sc.ah == 0) {
      block_ac_first(st, sc, blk);
    } else {
      block_ac_refine(st, sc, blk);
    }
    if (st.br.overrun()) scan_fail(st, "entropy-coded data exhausted");
  }

  // Expects RSTn (n = index mod 8) after the data of a restart interval.
  void restart(ScanState& st, uint64_t index) {
    if (st.br.overrun()) scan_fail(st, "entropy-coded data exhausted");
    pos_ = st.br.skip_to_marker();
    const int want = 0xD0 + static_cast<int>(index & 7);
    if (pos_ >= n_)
      truncated(pos_, "data ends where restart marker " + marker_name(want) + " was expected");
    size_t off = 0;
    const int m = read_marker(off);
    if (m != want)
      fail(off, "expected restart marker " + marker_name(want) + " after MCU " +
                    std::to_string(st.mcu) + ", found " + marker_name(m));
    st.br.reset(pos_);
    for (uint32_t& p : st.pred) p = 0;
    st.eobrun = 0;
  }

  // Successive approximation must progress (T.81 G.1.1.1): a coefficient gets one first scan
  // (Ah = 0) and then refinements whose Ah is the previous scan's Al. So each coefficient is in
  // at most 14 scans, which bounds the decoding work by the frame size. (libjpeg only warns
  // about a bogus progression.)
  void check_progression(const Scan& sc) {
    for (int i = 0; i < sc.ns; ++i) {
      const int ci = sc.comp[i];
      int8_t* bits = &coef_bits_[static_cast<size_t>(ci) * 64];
      for (int k = sc.ss; k <= sc.se; ++k) {
        const bool ok = sc.ah == 0 ? bits[k] < 0 : bits[k] == sc.ah;
        if (!ok)
          fail(sc.offset, "progressive scan (Ss=" + std::to_string(sc.ss) + " Se=" +
                              std::to_string(sc.se) + " Ah=" + std::to_string(sc.ah) + " Al=" +
                              std::to_string(sc.al) + ") does not continue the successive "
                              "approximation of coefficient " + std::to_string(k) +
                              " of component " + std::to_string(info_.comps[ci].id));
        bits[k] = static_cast<int8_t>(sc.al);
      }
    }
  }

  void decode_scan(Coefficients& out, const Scan& sc, std::vector<bool>& scanned) {
    const bool progressive = info_.mode == Mode::Progressive;
    if (progressive) check_progression(sc);
    HuffDecoder dcd[kMaxComponents], acd[kMaxComponents];
    ScanState st{BitReader(d_, n_, pos_)};
    st.scan_offset = sc.offset;
    for (int i = 0; i < sc.ns; ++i) {
      const int ci = sc.comp[i];
      if (!scanned[ci]) {
        out.qt[ci] = qt_[info_.comps[ci].tq];  // tables are latched at a component's first scan
        scanned[ci] = true;
      } else if (!progressive) {
        fail(sc.offset, "component " + std::to_string(info_.comps[ci].id) +
                            " appears in a second sequential scan");
      }
      const bool need_dc = !progressive || (sc.ss == 0 && sc.ah == 0);
      const bool need_ac = !progressive ? true : sc.ss != 0;
      if (need_dc) {
        make_decoder(dc_[sc.td[i]], true, dcd[i], sc.offset);
        st.dc[i] = &dcd[i];
      }
      if (need_ac) {
        make_decoder(ac_[sc.ta[i]], false, acd[i], sc.offset);
        st.ac[i] = &acd[i];
      }
    }
    const int ri = ri_;
    if (sc.ns == 1) {
      const int ci = sc.comp[0];
      const Component& c = info_.comps[ci];
      int16_t* base = out.coefs[ci].data();
      st.mcus = static_cast<uint64_t>(c.coded_bw) * static_cast<uint64_t>(c.coded_bh);
      uint64_t restarts = 0;
      for (int by = 0; by < c.coded_bh; ++by) {
        for (int bx = 0; bx < c.coded_bw; ++bx) {
          if (ri > 0 && st.mcu > 0 && st.mcu % static_cast<uint64_t>(ri) == 0) restart(st, restarts++);
          int16_t* blk = base + (static_cast<size_t>(by) * c.blocks_h + bx) * 64;
          decode_block(st, sc, 0, blk);
          ++st.mcu;
        }
      }
    } else {
      st.mcus = static_cast<uint64_t>(info_.mcus_x) * static_cast<uint64_t>(info_.mcus_y);
      uint64_t restarts = 0;
      for (int my = 0; my < info_.mcus_y; ++my) {
        for (int mx = 0; mx < info_.mcus_x; ++mx) {
          if (ri > 0 && st.mcu > 0 && st.mcu % static_cast<uint64_t>(ri) == 0) restart(st, restarts++);
          for (int i = 0; i < sc.ns; ++i) {
            const int ci = sc.comp[i];
            const Component& c = info_.comps[ci];
            int16_t* base = out.coefs[ci].data();
            for (int yy = 0; yy < c.v; ++yy) {
              const size_t row = static_cast<size_t>(my) * c.v + yy;
              for (int xx = 0; xx < c.h; ++xx) {
                const size_t col = static_cast<size_t>(mx) * c.h + xx;
                decode_block(st, sc, i, base + (row * c.blocks_h + col) * 64);
              }
            }
          }
          ++st.mcu;
        }
      }
    }
    if (st.br.overrun()) scan_fail(st, "entropy-coded data exhausted");
    pos_ = st.br.skip_to_marker();
  }

  const uint8_t* d_;
  size_t n_;
  uint64_t max_pixels_;
  size_t pos_ = 0;
  Info info_;
  QuantTable qt_[4];
  HuffSpec dc_[4], ac_[4];
  int ri_ = 0;
  std::vector<int8_t> coef_bits_;  // per component and coefficient: Al of its last scan, -1: none
};

}  // namespace jpeg
}  // namespace fastperc
