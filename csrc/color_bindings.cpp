// Python bindings of the colour kernels: argument checking, then the kernel without the GIL.
// Called by python/fastperc/color.py through fastperc._backend_call (torch tensors arrive as
// numpy views; bfloat16 as int16 bits with the dtype code "bf16").
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "color.h"
#include "pyarray.h"

namespace fastperc {
namespace {

using color::PointOp;

std::string err_prefix(const char* name) { return std::string("Expected `") + name + "`"; }

void check_same_nhw(const Tensor4& s, const Tensor4& d, int64_t dst_channels) {
  if (d.shape[0] != s.shape[0] || d.shape[1] != dst_channels || d.shape[2] != s.shape[2] ||
      d.shape[3] != s.shape[3]) {
    const int64_t want[4] = {s.shape[0], dst_channels, s.shape[2], s.shape[3]};
    throw py::value_error(err_prefix("dst") + " of shape " + shape_str(want, 4) +
                          " to match `src` " + shape_str(s) + ", got " + shape_str(d));
  }
}

void check_channels(const Tensor4& t, const char* name, int64_t c) {
  if (t.shape[1] != c)
    throw py::value_error(err_prefix(name) + " with " + std::to_string(c) + " channels [N, " +
                          std::to_string(c) + ", H, W], got shape " + shape_str(t));
}

// ---------------------------------------------------------------------------------------------

void py_affine(py::object src, py::object dst, py::object matrix, py::object shift,
               py::object offset, py::object fixed_point_obj, py::object dtype_obj) {
  const bool fixed_point = as_bool(fixed_point_obj, "fixed_point");
  const std::string dtype = as_str(dtype_obj, "dtype");
  const DType dt = parse_dtype(dtype, "dtype");
  color::AffineParams p;
  p.src = as_tensor4(src, "src", dt, false);
  p.dst = as_tensor4(dst, "dst", dt, true);
  advise_huge_pages(p.dst);
  check_channels(p.src, "src", 3);
  const int64_t k = p.dst.shape[1];
  if (k != 1 && k != 3)
    throw py::value_error(err_prefix("dst") + " with 1 or 3 channels, got shape " +
                          shape_str(p.dst));
  check_same_nhw(p.src, p.dst, k);
  p.k = static_cast<int>(k);
  const std::vector<double> m = as_doubles(matrix, "matrix", 3 * k);
  const std::vector<double> s = as_doubles(shift, "shift", 3);
  const std::vector<double> o = as_doubles(offset, "offset", k);
  if (fixed_point && dt != DType::U8)
    throw py::value_error("`fixed_point`=True needs dtype 'u8', got '" + dtype + "'");
  if (!fixed_point && dt == DType::U8)
    throw py::value_error(
        "dtype 'u8' needs `fixed_point`=True (8-bit conversions are fixed point)");
  p.fixed_point = fixed_point;
  if (fixed_point) {
    // Integer coefficients, and no int32 overflow anywhere in
    // m0 x0 + m1 x1 + m2 x2 + (offset - sum_j m_j shift_j) for x in 0..255.
    const std::pair<const std::vector<double>*, const char*> lists[] = {
        {&m, "matrix"}, {&s, "shift"}, {&o, "offset"}};
    for (const auto& [vals, name] : lists)
      for (double v : *vals)
        if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 2147483647.0)
          throw py::value_error(err_prefix(name) +
                                " to hold int32 integers with fixed_point=True, got " +
                                std::to_string(v));
    for (int64_t i = 0; i < k; ++i) {
      double folded = o[i], spread = 0;
      for (int j = 0; j < 3; ++j) {
        folded -= m[3 * i + j] * s[j];
        spread += std::fabs(m[3 * i + j]) * 255.0;
      }
      if (spread + std::fabs(folded) > 2147483647.0)
        throw py::value_error(
            "Expected fixed-point `matrix`/`shift`/`offset` small enough for int32 "
            "accumulation, row " + std::to_string(i) + " can reach " +
            std::to_string(spread + std::fabs(folded)));
    }
  }
  for (int64_t i = 0; i < 3 * k; ++i) p.matrix[i] = m[i];
  for (int j = 0; j < 3; ++j) p.shift[j] = s[j];
  for (int64_t i = 0; i < k; ++i) p.offset[i] = o[i];
  check_no_overlap(p.src, "src", p.dst, "dst");
  py::gil_scoped_release nogil;
  color::affine(p);
}

// ---------------------------------------------------------------------------------------------

PointOp parse_op(const std::string& op) {
  if (op == "srgb_to_linear") return PointOp::SrgbToLinear;
  if (op == "linear_to_srgb") return PointOp::LinearToSrgb;
  if (op == "rgb_to_xyz") return PointOp::RgbToXyz;
  if (op == "xyz_to_rgb") return PointOp::XyzToRgb;
  if (op == "rgb_to_lab") return PointOp::RgbToLab;
  if (op == "lab_to_rgb") return PointOp::LabToRgb;
  throw py::value_error(
      "Expected `op` to be one of 'srgb_to_linear', 'linear_to_srgb', 'rgb_to_xyz', "
      "'xyz_to_rgb', 'rgb_to_lab', 'lab_to_rgb', got '" + op + "'");
}

void py_pointwise(py::object op_obj, py::object src, py::object dst, py::object src_dtype_obj,
                  py::object dst_dtype_obj, py::object matrix9, py::object white3,
                  py::object in_scale_obj, py::object out_scale_obj, py::object encoded_obj,
                  py::object clip_obj) {
  const std::string op = as_str(op_obj, "op");
  const std::string src_dtype = as_str(src_dtype_obj, "src_dtype");
  const std::string dst_dtype = as_str(dst_dtype_obj, "dst_dtype");
  const double in_scale = as_double(in_scale_obj, "in_scale");
  const double out_scale = as_double(out_scale_obj, "out_scale");
  const bool encoded = as_bool(encoded_obj, "encoded");
  const bool clip = as_bool(clip_obj, "clip");
  color::PointwiseParams p;
  p.op = parse_op(op);
  const DType sd = parse_dtype(src_dtype, "src_dtype");
  const DType dd = parse_dtype(dst_dtype, "dst_dtype");
  const DType want = sd == DType::U8 ? DType::F32 : sd;
  if (dd != want)
    throw py::value_error(std::string("Expected `dst_dtype` '") + dtype_code(want) +
                          "' for `src_dtype` '" + src_dtype +
                          "' (u8 -> f32, floats keep their dtype), got '" + dst_dtype + "'");
  p.src = as_tensor4(src, "src", sd, false);
  p.dst = as_tensor4(dst, "dst", dd, true);
  advise_huge_pages(p.dst);
  const bool curve = p.op == PointOp::SrgbToLinear || p.op == PointOp::LinearToSrgb;
  if (!curve) check_channels(p.src, "src", 3);
  check_same_nhw(p.src, p.dst, p.src.shape[1]);
  const std::vector<double> m = as_doubles(matrix9, "matrix9", 9);
  const std::vector<double> w = as_doubles(white3, "white3", 3);
  if (!encoded && (p.op == PointOp::RgbToLab || p.op == PointOp::LabToRgb))
    throw py::value_error("`encoded`=False is not supported by op '" + op +
                          "' (Lab is defined from sRGB-encoded RGB)");
  if (clip && p.op != PointOp::XyzToRgb && p.op != PointOp::LabToRgb)
    throw py::value_error("`clip`=True applies to 'xyz_to_rgb' and 'lab_to_rgb' only, got op '" +
                          op + "'");
  for (int i = 0; i < 9; ++i) p.matrix[i] = m[i];
  for (int i = 0; i < 3; ++i) p.white[i] = w[i];
  p.in_scale = in_scale;
  p.out_scale = out_scale;
  p.encoded = encoded;
  p.clip = clip;
  check_no_overlap(p.src, "src", p.dst, "dst");
  py::gil_scoped_release nogil;
  color::pointwise(p);
}

// ---------------------------------------------------------------------------------------------

void check_factors(int64_t fh, int64_t fv) {
  if (!((fh == 2 && fv == 2) || (fh == 2 && fv == 1) || (fh == 1 && fv == 1)))
    throw py::value_error("Expected (`fh`, `fv`) to be (2, 2) (4:2:0), (2, 1) (4:2:2) or (1, 1) "
                          "(4:4:4), got (" + std::to_string(fh) + ", " + std::to_string(fv) + ")");
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_chroma_shapes(const Tensor4& full, const char* full_name, const Tensor4& sub,
                         const char* sub_name, int64_t fh, int64_t fv) {
  const int64_t want[4] = {full.shape[0], full.shape[1], ceil_div(full.shape[2], fv),
                           ceil_div(full.shape[3], fh)};
  bool ok = true;
  for (int i = 0; i < 4; ++i) ok = ok && sub.shape[i] == want[i];
  if (ok) return;
  const std::string rule = std::string(" (ceil(H / ") + std::to_string(fv) + "), ceil(W / " +
                           std::to_string(fh) + ") of `" + full_name + "` " + shape_str(full) + ")";
  throw py::value_error(err_prefix(sub_name) + " of shape " + shape_str(want, 4) + rule + ", got " +
                        shape_str(sub));
}

void py_chroma_downsample(py::object src, py::object dst, py::object fh_obj, py::object fv_obj,
                          py::object dtype_obj) {
  const int64_t fh = as_int(fh_obj, "fh"), fv = as_int(fv_obj, "fv");
  const DType dt = parse_dtype(as_str(dtype_obj, "dtype"), "dtype");
  check_factors(fh, fv);
  color::ChromaParams p;
  p.src = as_tensor4(src, "src", dt, false);
  p.dst = as_tensor4(dst, "dst", dt, true);
  advise_huge_pages(p.dst);
  check_chroma_shapes(p.src, "src", p.dst, "dst", fh, fv);
  p.fh = static_cast<int>(fh);
  p.fv = static_cast<int>(fv);
  check_no_overlap(p.src, "src", p.dst, "dst");
  py::gil_scoped_release nogil;
  color::chroma_downsample(p);
}

void py_chroma_upsample(py::object src, py::object dst, py::object fh_obj, py::object fv_obj,
                        py::object fancy_obj, py::object dtype_obj) {
  const int64_t fh = as_int(fh_obj, "fh"), fv = as_int(fv_obj, "fv");
  const bool fancy = as_bool(fancy_obj, "fancy");
  const DType dt = parse_dtype(as_str(dtype_obj, "dtype"), "dtype");
  check_factors(fh, fv);
  color::ChromaParams p;
  p.src = as_tensor4(src, "src", dt, false);
  p.dst = as_tensor4(dst, "dst", dt, true);
  advise_huge_pages(p.dst);
  check_chroma_shapes(p.dst, "dst", p.src, "src", fh, fv);
  p.fh = static_cast<int>(fh);
  p.fv = static_cast<int>(fv);
  p.fancy = fancy;
  check_no_overlap(p.src, "src", p.dst, "dst");
  py::gil_scoped_release nogil;
  color::chroma_upsample(p);
}

}  // namespace

void bind_color(py::module_& m) {
  using namespace pybind11::literals;
  m.def("affine", &py_affine, "src"_a, "dst"_a, "matrix"_a, "shift"_a, "offset"_a,
        "fixed_point"_a, "dtype"_a,
        "dst[:, i] = sum_j matrix[i][j] * (src[:, j] - shift[j]) + offset[i] for [N, 3, H, W] src "
        "and [N, k, H, W] dst (k = 1 or 3), matrix row-major k x 3. fixed_point (u8 only): "
        "integers at 2**16 scale, int32 accumulation, >> 16 (floor), clamp 0..255.");
  m.def("pointwise", &py_pointwise, "op"_a, "src"_a, "dst"_a, "src_dtype"_a, "dst_dtype"_a,
        "matrix9"_a, "white3"_a, "in_scale"_a, "out_scale"_a, "encoded"_a, "clip"_a,
        "dst = out_scale * op(in_scale * src) for op in srgb_to_linear, linear_to_srgb (per "
        "channel), rgb_to_xyz, xyz_to_rgb, rgb_to_lab, lab_to_rgb (3 channels); u8 -> f32 or "
        "float -> same float; computed in float64. matrix9: row-major 3x3 (XYZ_FROM_RGB or "
        "RGB_FROM_XYZ), white3: the Lab white; encoded: sRGB-encoded RGB side (xyz ops; True "
        "for Lab); clip: clamp RGB to 0..1 before out_scale (*_to_rgb ops only).");
  m.def("chroma_downsample", &py_chroma_downsample, "src"_a, "dst"_a, "fh"_a, "fv"_a, "dtype"_a,
        "libjpeg chroma downsampling of [N, K, H, W] planes into [N, K, ceil(H/fv), ceil(W/fh)].");
  m.def("chroma_upsample", &py_chroma_upsample, "src"_a, "dst"_a, "fh"_a, "fv"_a, "fancy"_a,
        "dtype"_a,
        "libjpeg chroma upsampling of [N, K, ceil(H/fv), ceil(W/fh)] planes into [N, K, H, W] "
        "(fancy: triangle filter, nearest when the chroma is at most 2 wide).");
}

}  // namespace fastperc
