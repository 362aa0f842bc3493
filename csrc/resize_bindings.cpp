// Python binding of the resampling kernel: argument checking, then the kernel without the GIL.
// Called by python/fastperc/resize.py with the weight tables of fastperc.reference.resize.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdlib>
#include <new>
#include <cstdint>
#include <string>
#include <vector>

#include "pyarray.h"
#include "resize.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fastperc {
namespace {

std::string expected(const char* name) { return std::string("Expected `") + name + "`"; }

// A C-contiguous, aligned numpy array of int64 (kind 'i') or float64 (kind 'f') with ndim dims.
py::array as_table(py::handle obj, const char* name, char kind, int ndim) {
  const char* what = kind == 'i' ? "int64" : "float64";
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(expected(name) + " to be a numpy.ndarray of " + what + ", got " +
                         type_name(obj));
  auto a = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = a.dtype();
  if (dt.kind() != kind || dt.itemsize() != 8)
    throw py::type_error(expected(name) + " with dtype " + what + ", got " +
                         std::string(py::str(static_cast<py::object>(dt))));
  if (a.ndim() != ndim)
    throw py::value_error(expected(name) + " with " + std::to_string(ndim) + " dimension(s), got " +
                          std::to_string(a.ndim()));
  if (!(a.flags() & py::array::c_style) ||
      reinterpret_cast<uintptr_t>(a.data()) % static_cast<uintptr_t>(8) != 0)
    throw py::value_error(expected(name) + " to be C-contiguous and aligned");
  const uint16_t one = 1;
  const bool little = *reinterpret_cast<const unsigned char*>(&one) == 1;
  if (dt.byteorder() == (little ? '>' : '<'))
    throw py::type_error(expected(name) + " in native byte order");
  return a;
}

// Checks one axis' table against the sizes; returns the number of taps.
int64_t check_axis(const py::array& start, const char* start_name, const py::array& weight,
                   const char* weight_name, int64_t in_size, int64_t out_size, const char* axis) {
  if (start.shape(0) != out_size)
    throw py::value_error(expected(start_name) + " of length " + std::to_string(out_size) +
                          " (the output's " + axis + "), got " + std::to_string(start.shape(0)));
  if (weight.shape(0) != out_size)
    throw py::value_error(expected(weight_name) + " with " + std::to_string(out_size) +
                          " rows (the output's " + axis + "), got " +
                          std::to_string(weight.shape(0)));
  const int64_t k = weight.shape(1);
  if (k < 1 || k > in_size)
    throw py::value_error(expected(weight_name) + " with 1.." + std::to_string(in_size) +
                          " columns (taps within the input's " + axis + "), got " +
                          std::to_string(k));
  const auto* s = static_cast<const int64_t*>(start.data());
  for (int64_t i = 0; i < out_size; ++i)
    if (s[i] < 0 || s[i] > in_size - k)
      throw py::value_error(expected(start_name) + " to hold values in 0.." +
                            std::to_string(in_size - k) + " (input " + axis + " " +
                            std::to_string(in_size) + ", " + std::to_string(k) +
                            " taps), got " + std::to_string(s[i]) + " at index " +
                            std::to_string(i));
  const auto* w = static_cast<const double*>(weight.data());
  for (int64_t i = 0; i < out_size * k; ++i)
    if (!std::isfinite(w[i]))
      throw py::value_error(expected(weight_name) + " to hold finite numbers");
  return k;
}

// The kernel's scratch: one buffer per calling thread, kept between calls (grown when needed,
// never zeroed: the kernel writes before it reads). A fresh zero-filled vector per call cost a
// measurable share of a 512x512 -> 299x299 resize (allocation, page faults, clearing).
double* thread_scratch(size_t n) {
  struct Buffer {
    double* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buf;
  if (buf.size < n) {
    std::free(buf.data);
    buf.data = static_cast<double*>(std::malloc(n * sizeof(double)));
    buf.size = buf.data ? n : 0;
    if (!buf.data) throw std::bad_alloc();
  }
  return buf.data;
}

void py_resize(py::object src_obj, py::object dst_obj, py::object y_start_obj,
               py::object y_weight_obj, py::object x_start_obj, py::object x_weight_obj,
               py::object clip_obj, py::object lo_obj, py::object hi_obj, py::object dtype_obj) {
  const std::string dtype = as_str(dtype_obj, "dtype");
  const DType dt = parse_dtype(dtype, "dtype");
  const bool clip = as_bool(clip_obj, "clip");
  const double lo = as_double(lo_obj, "lo");
  const double hi = as_double(hi_obj, "hi");
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi)
    throw py::value_error("Expected finite `lo` <= `hi`, got " + std::to_string(lo) + " and " +
                          std::to_string(hi));
  resize::ResizeParams p;
  p.src = as_tensor4(src_obj, "src", dt, false);
  const DType out_dt = dt == DType::F64 ? DType::F64 : DType::F32;
  p.dst = as_tensor4(dst_obj, "dst", out_dt, true);
  if (p.dst.shape[0] != p.src.shape[0] || p.dst.shape[1] != p.src.shape[1])
    throw py::value_error(expected("dst") + " with the batch and channels of `src` " +
                          shape_str(p.src) + ", got " + shape_str(p.dst));
  const py::array ys = as_table(y_start_obj, "y_start", 'i', 1);
  const py::array yw = as_table(y_weight_obj, "y_weight", 'f', 2);
  const py::array xs = as_table(x_start_obj, "x_start", 'i', 1);
  const py::array xw = as_table(x_weight_obj, "x_weight", 'f', 2);
  if (p.src.shape[2] < 1 || p.src.shape[3] < 1)
    throw py::value_error(expected("src") + " with H, W >= 1, got shape " + shape_str(p.src));
  p.ky = check_axis(ys, "y_start", yw, "y_weight", p.src.shape[2], p.dst.shape[2], "height");
  p.kx = check_axis(xs, "x_start", xw, "x_weight", p.src.shape[3], p.dst.shape[3], "width");
  check_no_overlap(p.src, "src", p.dst, "dst");
  if (p.dst.numel() == 0) return;
  p.y_start = static_cast<const int64_t*>(ys.data());
  p.x_start = static_cast<const int64_t*>(xs.data());
  p.y_weight = static_cast<const double*>(yw.data());
  p.x_weight = static_cast<const double*>(xw.data());
  p.clip = clip;
  p.lo = lo;
  p.hi = hi;
  p.scratch = thread_scratch(static_cast<size_t>(resize::scratch_elems(p)));
  py::gil_scoped_release nogil;
  advise_huge_pages(p.dst);
  resize::resample(p);
}

}  // namespace
}  // namespace fastperc

void init_resize(pybind11::module_& m) {
  using namespace pybind11::literals;
  m.def("resize", &fastperc::py_resize, "src"_a, "dst"_a, "y_start"_a, "y_weight"_a,
        "x_start"_a, "x_weight"_a, "clip"_a, "lo"_a, "hi"_a, "dtype"_a,
        "Separable resampling with precomputed weight tables: dst[n, c, y, x] = "
        "sum_ij y_weight[y, i] * x_weight[x, j] * src[n, c, y_start[y] + i, x_start[x] + j], "
        "clamped to [lo, hi] when clip. src [N, C, H, W] of dtype `dtype`; dst [N, C, h, w] "
        "float32 (float64 for 'f64'); y_start int64 [h], y_weight float64 [h, ky], x_start "
        "int64 [w], x_weight float64 [w, kx].");
}
