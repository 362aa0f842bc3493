// Bindings of the JPEG marker parser and coefficient decoder (jpeg_codec.h).
//
//   jpeg_inspect(data: bytes, max_pixels: int, partial: bool) -> dict | None
//   jpeg_read_coefficients(data: bytes, max_pixels: int) -> dict
//
// Both release the GIL while parsing (bytes are immutable, so the buffer cannot change under
// the parser). Malformed data raises ValueError with the byte offset and the reason; a coding
// process the decoder does not implement raises NotImplementedError. With partial=True,
// jpeg_inspect returns None instead of raising when the data ends too early, so the caller can
// read more of the file and try again. The Python wrapper is python/fastperc/jpeg_io.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <utility>

#include "jpeg_codec.h"

namespace py = pybind11;

namespace {

using fastperc::jpeg::Coefficients;
using fastperc::jpeg::Info;
using fastperc::jpeg::Parser;
using fastperc::jpeg::QuantTable;

// What a parse ended with, carried out of the GIL-free region.
struct Outcome {
  enum Kind { kOk, kTruncated, kInvalid, kUnsupported, kOther } kind = kOk;
  std::string message;
};

template <class F>
Outcome run_guarded(const F& f) {
  Outcome o;
  try {
    f();
  } catch (const fastperc::jpeg::Error& e) {
    o.kind = e.truncated() ? Outcome::kTruncated : Outcome::kInvalid;
    o.message = e.what();
  } catch (const fastperc::jpeg::Unsupported& e) {
    o.kind = Outcome::kUnsupported;
    o.message = e.what();
  } catch (const std::bad_alloc&) {
    o.kind = Outcome::kOther;
    o.message = "out of memory while decoding the JPEG data";
  }
  return o;
}

[[noreturn]] void raise(const Outcome& o) {
  PyObject* type = PyExc_ValueError;
  if (o.kind == Outcome::kUnsupported) type = PyExc_NotImplementedError;
  if (o.kind == Outcome::kOther) type = PyExc_MemoryError;
  PyErr_SetString(type, o.message.c_str());
  throw py::error_already_set();
}

std::pair<const uint8_t*, size_t> bytes_view(const py::bytes& data) {
  char* ptr = nullptr;
  Py_ssize_t len = 0;
  if (PyBytes_AsStringAndSize(data.ptr(), &ptr, &len) != 0) throw py::error_already_set();
  return {reinterpret_cast<const uint8_t*>(ptr), static_cast<size_t>(len)};
}

// 64 entries in natural order as little-endian uint16 bytes (numpy dtype "<u2").
py::bytes table_bytes(const QuantTable& t) {
  char b[128];
  for (int i = 0; i < 64; ++i) {
    b[2 * i] = static_cast<char>(t.q[i] & 0xFF);
    b[2 * i + 1] = static_cast<char>(t.q[i] >> 8);
  }
  return py::bytes(b, sizeof b);
}

py::dict info_dict(const Info& info) {
  py::dict d;
  d["sof_marker"] = info.sof_marker;
  d["mode"] = fastperc::jpeg::mode_name(info.mode);
  d["arithmetic"] = info.arithmetic;
  d["hierarchical"] = info.hierarchical;
  d["precision"] = info.precision;
  d["width"] = info.width;
  d["height"] = info.height;
  py::list comps;
  for (const auto& c : info.comps) {
    py::dict cd;
    cd["id"] = c.id;
    cd["h"] = c.h;
    cd["v"] = c.v;
    cd["tq"] = c.tq;
    cd["width"] = c.width;
    cd["height"] = c.height;
    cd["blocks_h"] = c.blocks_h;
    cd["blocks_v"] = c.blocks_v;
    comps.append(cd);
  }
  d["components"] = comps;
  py::dict tables;
  for (int i = 0; i < 4; ++i) {
    if (!info.qt[i].defined) continue;
    tables[py::int_(i)] = py::make_tuple(info.qt[i].bits, table_bytes(info.qt[i]));
  }
  d["quant_tables"] = tables;
  d["restart_interval"] = info.restart_interval;
  d["has_jfif"] = info.has_jfif;
  d["has_exif"] = info.has_exif;
  d["has_icc"] = info.has_icc;
  d["has_adobe"] = info.has_adobe;
  d["has_xmp"] = info.has_xmp;
  d["adobe_transform"] = info.adobe_transform;
  py::list apps;
  for (const auto& a : info.apps) apps.append(py::make_tuple(a.n, a.offset, a.length, a.ident));
  d["app_segments"] = apps;
  py::list comments;
  for (const auto& c : info.comments) comments.append(py::bytes(c));
  d["comments"] = comments;
  d["first_scan_offset"] = info.first_scan_offset;
  return d;
}

py::object jpeg_inspect(const py::bytes& data, uint64_t max_pixels, bool partial) {
  const auto view = bytes_view(data);
  Info info;
  Outcome o;
  {
    py::gil_scoped_release release;
    o = run_guarded([&] { info = Parser(view.first, view.second, max_pixels).inspect(); });
  }
  if (o.kind == Outcome::kTruncated && partial) return py::none();
  if (o.kind != Outcome::kOk) raise(o);
  return info_dict(info);
}

py::dict jpeg_read_coefficients(const py::bytes& data, uint64_t max_pixels) {
  const auto view = bytes_view(data);
  auto out = std::make_unique<Coefficients>();
  Outcome o;
  {
    py::gil_scoped_release release;
    o = run_guarded([&] { *out = Parser(view.first, view.second, max_pixels).decode(); });
  }
  if (o.kind != Outcome::kOk) raise(o);
  py::dict d = info_dict(out->info);
  py::list coefs, tables;
  for (size_t c = 0; c < out->coefs.size(); ++c) {
    const auto& comp = out->info.comps[c];
    // The array owns the decoded vector (moved to the heap, freed by the capsule): no copy.
    auto* vec = new std::vector<int16_t>(std::move(out->coefs[c]));
    py::capsule owner(vec, [](void* p) { delete static_cast<std::vector<int16_t>*>(p); });
    const std::vector<py::ssize_t> shape = {comp.blocks_v, comp.blocks_h, 8, 8};
    coefs.append(py::array_t<int16_t>(shape, vec->data(), owner));
    tables.append(py::make_tuple(out->qt[c].bits, table_bytes(out->qt[c])));
  }
  d["coefficients"] = coefs;
  d["component_tables"] = tables;
  d["scans"] = out->scans;
  return d;
}

}  // namespace

void init_jpeg_io(py::module_& m) {
  m.attr("JPEG_DEFAULT_MAX_PIXELS") = py::int_(fastperc::jpeg::kDefaultMaxPixels);
  m.def("jpeg_inspect", &jpeg_inspect, py::arg("data"), py::arg("max_pixels"),
        py::arg("partial") = false,
        "Parse JPEG markers up to the first scan; dict of header fields (see jpeg_io.py). With "
        "partial=True returns None when the data ends too early.");
  m.def("jpeg_read_coefficients", &jpeg_read_coefficients, py::arg("data"),
        py::arg("max_pixels"),
        "Decode the quantized DCT coefficients of a Huffman-coded sequential or progressive "
        "JPEG; dict of header fields plus per-component int16 arrays [blocks_v, blocks_h, 8, 8].");
}
