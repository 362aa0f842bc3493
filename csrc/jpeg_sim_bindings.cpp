// Bindings of the JPEG round trip (jpeg_sim.h) and of the OpenMP thread count:
//
//   jpeg_simulate(src, dst, dtype, mode, rounding, subsampling, tables, value_range) -> None
//   get_num_threads() -> int
//   set_num_threads(n) -> None
//
// jpeg_simulate checks every argument (ValueError / TypeError naming it), then releases the GIL
// while the kernel fills dst. Called by python/fastperc/jpeg.py (torch tensors arrive as numpy
// views, bfloat16 as int16 bits with the dtype code "bf16").
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "jpeg_sim.h"
#include "pyarray.h"

namespace {

namespace py = pybind11;
using fastperc::DType;
using fastperc::Tensor4;
namespace js = fastperc::jpeg_sim;

// Largest table entry of the exact mode: libjpeg-turbo keeps the divisor 8 q in 16 bits.
constexpr double kExactTableMax = 8191.0;

std::string expected(const char* name) { return std::string("Expected `") + name + "`"; }

// tables: (8, 8) or (K, 8, 8), K in 1..3, real numbers; component k uses table min(k, K - 1).
void parse_tables(py::handle obj, js::SimParams& p) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(expected("tables") + " to be a numpy.ndarray, got " +
                         fastperc::type_name(obj));
  const auto raw = py::reinterpret_borrow<py::array>(obj);
  const char kind = raw.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw py::type_error(expected("tables") + " with a real numeric dtype, got " +
                         std::string(py::str(static_cast<py::object>(raw.dtype()))));
  const auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a) throw py::type_error(expected("tables") + " convertible to float64");
  const py::ssize_t nd = a.ndim();
  const bool ok = (nd == 2 && a.shape(0) == 8 && a.shape(1) == 8) ||
                  (nd == 3 && a.shape(0) >= 1 && a.shape(0) <= 3 && a.shape(1) == 8 &&
                   a.shape(2) == 8);
  if (!ok) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < nd; ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    throw py::value_error(expected("tables") +
                          " of shape (8, 8) or (K, 8, 8) with K in 1..3 (natural order), got " +
                          s + (nd == 1 ? ",)" : ")"));
  }
  const int64_t k_count = nd == 2 ? 1 : static_cast<int64_t>(a.shape(0));
  const double* v = a.data();
  for (int64_t i = 0; i < k_count * 64; ++i) {
    if (!std::isfinite(v[i]) || !(v[i] > 0))
      throw py::value_error(expected("tables") + " with finite entries > 0");
    if (p.mode == js::Mode::Exact && (v[i] != std::floor(v[i]) || v[i] > kExactTableMax))
      throw py::value_error(expected("tables") +
                            " with integer entries in 1..8191 for mode='exact' (libjpeg-turbo "
                            "keeps the divisor 8 * q in 16 bits)");
  }
  for (int k = 0; k < 3; ++k) {
    const int64_t src = std::min<int64_t>(k, k_count - 1);
    for (int i = 0; i < 64; ++i) p.tables[k][i] = v[src * 64 + i];
  }
}

void py_jpeg_simulate(py::object src, py::object dst, py::object dtype_obj, py::object mode_obj,
                      py::object rounding_obj, py::object subsampling_obj, py::object tables,
                      py::object value_range_obj) {
  const DType dt = fastperc::parse_dtype(fastperc::as_str(dtype_obj, "dtype"), "dtype");
  const std::string mode = fastperc::as_str(mode_obj, "mode");
  const std::string rounding = fastperc::as_str(rounding_obj, "rounding");
  const std::string subsampling = fastperc::as_str(subsampling_obj, "subsampling");
  const double value_range = fastperc::as_double(value_range_obj, "value_range");

  js::SimParams p;
  if (mode == "exact")
    p.mode = js::Mode::Exact;
  else if (mode == "float")
    p.mode = js::Mode::Float;
  else if (mode == "differentiable")
    p.mode = js::Mode::Differentiable;
  else
    throw py::value_error(expected("mode") +
                          " to be one of 'exact', 'float', 'differentiable', got '" + mode + "'");
  if (p.mode == js::Mode::Differentiable) {
    if (rounding == "ste")
      p.rounding = js::Rounding::Ste;
    else if (rounding == "cubic")
      p.rounding = js::Rounding::Cubic;
    else
      throw py::value_error(expected("rounding") +
                            " to be 'ste' or 'cubic' for mode='differentiable', got '" + rounding +
                            "'");
  } else if (rounding == "nearest") {
    p.rounding = js::Rounding::Nearest;
  } else {
    throw py::value_error(expected("rounding") + " to be 'nearest' for mode='" + mode +
                          "', got '" + rounding + "'");
  }
  if (subsampling == "4:4:4") {
    p.fh = 1;
    p.fv = 1;
  } else if (subsampling == "4:2:2") {
    p.fh = 2;
    p.fv = 1;
  } else if (subsampling == "4:2:0") {
    p.fh = 2;
    p.fv = 2;
  } else {
    throw py::value_error(expected("subsampling") +
                          " to be one of '4:4:4', '4:2:2', '4:2:0', got '" + subsampling + "'");
  }
  if (!std::isfinite(value_range) || !(value_range > 0))
    throw py::value_error(expected("value_range") + " to be a positive finite number, got " +
                          std::to_string(value_range));
  if (dt == DType::U8 && value_range != 255.0)
    throw py::value_error(expected("value_range") + " = 255 for dtype 'u8', got " +
                          std::to_string(value_range));
  p.value_range = value_range;

  p.src = fastperc::as_tensor4(src, "src", dt, false);
  p.dst = fastperc::as_tensor4(dst, "dst", dt, true);
  fastperc::advise_huge_pages(p.dst);
  const Tensor4& s = p.src;
  if (s.shape[1] != 1 && s.shape[1] != 3)
    throw py::value_error(expected("src") + " of shape [N, C, H, W] with C = 1 or 3, got " +
                          fastperc::shape_str(s));
  if (s.shape[2] < 1 || s.shape[3] < 1)
    throw py::value_error(expected("src") + " with H, W >= 1, got shape " + fastperc::shape_str(s));
  for (int i = 0; i < 4; ++i)
    if (p.dst.shape[i] != s.shape[i])
      throw py::value_error(expected("dst") + " of shape " + fastperc::shape_str(s) +
                            " (that of `src`), got " + fastperc::shape_str(p.dst));
  parse_tables(tables, p);
  fastperc::check_no_overlap(p.src, "src", p.dst, "dst");

  bool ok;
  {
    py::gil_scoped_release nogil;
    ok = js::simulate(p);
  }
  if (!ok) throw std::bad_alloc();  // pybind11 turns it into MemoryError
}

void py_set_num_threads(py::object n_obj) {
  const int64_t n = fastperc::as_int(n_obj, "n");
  if (n < 1 || n > 4096)
    throw py::value_error(expected("n") + " in 1..4096, got " + std::to_string(n));
  js::set_num_threads(static_cast<int>(n));
}

}  // namespace

void init_jpeg_sim(pybind11::module_& m) {
  using namespace pybind11::literals;
  m.def("jpeg_simulate", &py_jpeg_simulate, "src"_a, "dst"_a, "dtype"_a, "mode"_a, "rounding"_a,
        "subsampling"_a, "tables"_a, "value_range"_a,
        "JPEG round trip of [N, C, H, W] images (C = 1 or 3) into dst of the same shape and "
        "dtype: mode 'exact' (libjpeg-turbo's integer pipeline), 'float' or 'differentiable' "
        "(forward values; rounding 'ste' or 'cubic'); tables (8, 8) or (K, 8, 8) in natural "
        "order; float images hold 0..value_range.");
  m.def("get_num_threads", &js::get_num_threads,
        "Threads the extension's OpenMP regions use (omp_get_max_threads; 1 without OpenMP).");
  m.def("set_num_threads", &py_set_num_threads, "n"_a,
        "Set the threads of the extension's OpenMP regions (omp_set_num_threads) for calls "
        "made from this thread.");
}
