// Python bindings of the metric kernels: argument checking, then the kernel without the GIL.
// Called by python/fastperc/metrics.py through fastperc._backend_call (torch tensors arrive as
// numpy views; bfloat16 as int16 bits with the dtype code "bf16").
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "metrics.h"
#include "pyarray.h"

namespace fastperc {
namespace {

std::string want(const char* name) { return std::string("Expected `") + name + "`"; }

void check_same_shape(const Tensor4& a, const Tensor4& b) {
  for (int i = 0; i < 4; ++i)
    if (a.shape[i] != b.shape[i])
      throw py::value_error(want("b") + " of the shape of `a` " + shape_str(a) + ", got " +
                            shape_str(b));
}

// [] (every channel) or [wR, wG, wB, offset] (one luma plane of a 3-channel image).
metrics::PlaneMix parse_mix(py::handle obj, const Tensor4& t) {
  const std::vector<double> v = as_doubles(obj, "mix", -1);
  check_finite(v, "mix");
  metrics::PlaneMix m;
  if (v.empty()) return m;
  if (v.size() != 4)
    throw py::value_error(want("mix") + " to be [] or [wR, wG, wB, offset], got length " +
                          std::to_string(v.size()));
  if (t.shape[1] != 3)
    throw py::value_error(want("a") + " with 3 channels for a luma `mix`, got shape " +
                          shape_str(t));
  m.luma = true;
  for (int i = 0; i < 3; ++i) m.w[i] = v[static_cast<size_t>(i)];
  m.off = v[3];
  return m;
}

// A writeable, C-contiguous float64 numpy array of exactly n elements.
double* as_out_doubles(py::handle obj, const char* name, int64_t n) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(want(name) + " to be a numpy.ndarray, got " + type_name(obj));
  auto a = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = a.dtype();
  if (dt.kind() != 'f' || dt.itemsize() != 8)
    throw py::type_error(want(name) + " with dtype float64, got " +
                         std::string(py::str(static_cast<py::object>(dt))));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(want(name) + " to be C-contiguous");
  if (!a.writeable()) throw py::value_error(want(name) + " to be writeable (it is read-only)");
  if (static_cast<int64_t>(a.size()) != n)
    throw py::value_error(want(name) + " with " + std::to_string(n) + " elements, got " +
                          std::to_string(a.size()));
  return static_cast<double*>(a.mutable_data());
}

void py_ssim_sums(py::object a, py::object b, py::object out, py::object dtype_obj,
                  py::object mix_obj, py::object win_obj, py::object c1_obj, py::object c2_obj,
                  py::object reflect_obj, py::object want_cs_obj) {
  const DType dt = parse_dtype(as_str(dtype_obj, "dtype"), "dtype");
  metrics::SsimParams p;
  p.a = as_tensor4(a, "a", dt, false);
  p.b = as_tensor4(b, "b", dt, false);
  check_same_shape(p.a, p.b);
  p.mix = parse_mix(mix_obj, p.a);
  p.reflect = as_bool(reflect_obj, "reflect");
  p.want_cs = as_bool(want_cs_obj, "want_cs");
  p.c1 = as_double(c1_obj, "c1");
  p.c2 = as_double(c2_obj, "c2");
  if (!(std::isfinite(p.c1) && p.c1 > 0.0 && std::isfinite(p.c2) && p.c2 > 0.0))
    throw py::value_error(want("c1") + " and `c2` positive and finite, got " +
                          std::to_string(p.c1) + " and " + std::to_string(p.c2));
  const std::vector<double> w = as_doubles(win_obj, "win", 11);
  check_finite(w, "win");
  for (int k = 0; k < 11; ++k) {
    if (w[static_cast<size_t>(k)] != w[static_cast<size_t>(10 - k)])
      throw py::value_error(want("win") + " to be symmetric (win[k] == win[10 - k])");
    p.win[k] = w[static_cast<size_t>(k)];
  }
  const int64_t H = p.a.shape[2], W = p.a.shape[3];
  const int64_t lo = p.reflect ? (p.want_cs ? 11 : 6) : 11;
  if (H < lo || W < lo)
    throw py::value_error(want("a") + " with height and width >= " + std::to_string(lo) +
                          (p.reflect ? " (reflect padding by 5" : " (the 11-tap window") +
                          std::string(p.want_cs && p.reflect ? ", and a cs interior)" : ")") +
                          ", got shape " + shape_str(p.a));
  const int64_t planes = p.a.shape[0] * (p.mix.luma ? 1 : p.a.shape[1]);
  p.out = as_out_doubles(out, "out", 2 * planes);
  int rc;
  {
    py::gil_scoped_release nogil;
    rc = metrics::ssim_sums(p);
  }
  if (rc != 0) throw std::bad_alloc();
}

void py_sq_error_sums(py::object a, py::object b, py::object out, py::object dtype_obj,
                      py::object mix_obj) {
  const DType dt = parse_dtype(as_str(dtype_obj, "dtype"), "dtype");
  metrics::SqErrParams p;
  p.a = as_tensor4(a, "a", dt, false);
  p.b = as_tensor4(b, "b", dt, false);
  check_same_shape(p.a, p.b);
  p.mix = parse_mix(mix_obj, p.a);
  p.out = as_out_doubles(out, "out", p.a.shape[0]);
  int rc;
  {
    py::gil_scoped_release nogil;
    rc = metrics::sq_error_sums(p);
  }
  if (rc != 0) throw std::bad_alloc();
}

void py_avg_pool2(py::object src, py::object dst, py::object dtype_obj, py::object mix_obj,
                  py::object pad_odd_obj) {
  const DType dt = parse_dtype(as_str(dtype_obj, "dtype"), "dtype");
  const DType ct = dt == DType::F64 ? DType::F64 : DType::F32;
  metrics::PoolParams p;
  p.src = as_tensor4(src, "src", dt, false);
  p.dst = as_tensor4(dst, "dst", ct, true);
  p.mix = parse_mix(mix_obj, p.src);
  p.pad_odd = as_bool(pad_odd_obj, "pad_odd");
  const int64_t H = p.src.shape[2], W = p.src.shape[3];
  const int64_t planes = p.mix.luma ? 1 : p.src.shape[1];
  const int64_t hd = p.pad_odd ? H / 2 + H % 2 : H / 2, wd = p.pad_odd ? W / 2 + W % 2 : W / 2;
  const int64_t shape[4] = {p.src.shape[0], planes, hd, wd};
  for (int i = 0; i < 4; ++i)
    if (p.dst.shape[i] != shape[i])
      throw py::value_error(want("dst") + " of shape " + shape_str(shape, 4) + " for `src` " +
                            shape_str(p.src) + ", got " + shape_str(p.dst));
  if (hd < 1 || wd < 1)
    throw py::value_error(want("src") + " at least 2x2 without pad_odd, got " + shape_str(p.src));
  check_no_overlap(p.src, "src", p.dst, "dst");
  py::gil_scoped_release nogil;
  metrics::avg_pool2(p);
}

void py_ciede2000(py::object a, py::object b, py::object dst, py::object dtype_obj) {
  const std::string code = as_str(dtype_obj, "dtype");
  const DType dt = parse_dtype(code, "dtype");
  if (dt != DType::F32 && dt != DType::F64)
    throw py::value_error(want("dtype") + " to be 'f32' or 'f64', got '" + code + "'");
  metrics::DeltaEParams p;
  p.a = as_tensor4(a, "a", dt, false);
  p.b = as_tensor4(b, "b", dt, false);
  p.dst = as_tensor4(dst, "dst", dt, true);
  if (p.a.shape[1] != 3)
    throw py::value_error(want("a") + " with 3 channels (L*, a*, b*), got shape " +
                          shape_str(p.a));
  check_same_shape(p.a, p.b);
  const int64_t shape[4] = {p.a.shape[0], 1, p.a.shape[2], p.a.shape[3]};
  for (int i = 0; i < 4; ++i)
    if (p.dst.shape[i] != shape[i])
      throw py::value_error(want("dst") + " of shape " + shape_str(shape, 4) + ", got " +
                            shape_str(p.dst));
  check_no_overlap(p.a, "a", p.dst, "dst");
  check_no_overlap(p.b, "b", p.dst, "dst");
  py::gil_scoped_release nogil;
  metrics::ciede2000(p);
}

}  // namespace
}  // namespace fastperc

void init_metrics(pybind11::module_& m) {
  using namespace pybind11::literals;
  using namespace fastperc;
  m.def("ssim_sums", &py_ssim_sums, "a"_a, "b"_a, "out"_a, "dtype"_a, "mix"_a, "win"_a, "c1"_a,
        "c2"_a, "reflect"_a, "want_cs"_a,
        "Mean SSIM and contrast-structure of every compared plane of [N, C, H, W] a and b into "
        "float64 out [N, P, 2] (P = C, or 1 with a luma mix [wR, wG, wB, offset]). win: the "
        "symmetric 11-tap window; reflect: torchmetrics' padded variant.");
  m.def("sq_error_sums", &py_sq_error_sums, "a"_a, "b"_a, "out"_a, "dtype"_a, "mix"_a,
        "Sum of squared differences of the compared planes per image into float64 out [N].");
  m.def("avg_pool2", &py_avg_pool2, "src"_a, "dst"_a, "dtype"_a, "mix"_a, "pad_odd"_a,
        "2x2 average pooling of the compared planes of src into dst (f64 for f64 src, else f32); "
        "pad_odd: pytorch_msssim's zero padding of odd sizes, else floor.");
  m.def("ciede2000", &py_ciede2000, "a"_a, "b"_a, "dst"_a, "dtype"_a,
        "Per-pixel CIEDE2000 of [N, 3, H, W] L*a*b* a and b into [N, 1, H, W] dst (f32 or f64).");
}
