// Python binding of the feature-centring kernel: argument checking, then the kernel without
// the GIL. Called by python/fastperc/stats.py (FeatureStats._add_block) with numpy views.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "moments.h"
#include "pyarray.h"

namespace fastperc {
namespace {

// The `dtype` argument: 'f32' or 'f64'.
DType float_dtype(py::handle dtype_obj) {
  const DType dt = parse_dtype(as_str(dtype_obj, "dtype"), "dtype");
  if (dt != DType::F32 && dt != DType::F64)
    throw py::value_error(std::string("Expected `dtype` 'f32' or 'f64', got '") +
                          dtype_code(dt) + "'");
  return dt;
}

py::array_t<double> py_center_columns(py::object src_obj, py::object dst_obj,
                                      py::object shift_obj, py::object dtype_obj) {
  const DType dt = float_dtype(dtype_obj);
  moments::CenterParams p;
  p.src = as_tensor4(src_obj, "src", dt, false);
  p.dst = as_tensor4(dst_obj, "dst", dt, true);
  for (int i = 0; i < 4; ++i)
    if (p.dst.shape[i] != p.src.shape[i])
      throw py::value_error("Expected `dst` of the shape of `src` " + shape_str(p.src) +
                            ", got " + shape_str(p.dst));
  if (p.src.shape[0] != 1 || p.src.shape[1] != 1)
    throw py::value_error("Expected `src` of shape [1, 1, N, D], got " + shape_str(p.src));
  const int64_t d = p.src.shape[3];
  if (p.src.numel() > 0 && (p.src.stride[3] != 1 || p.dst.stride[3] != 1))
    throw py::value_error("Expected `src` and `dst` with contiguous rows (last stride 1)");
  const std::vector<double> shift = as_doubles(shift_obj, "shift", static_cast<py::ssize_t>(d));
  check_no_overlap(p.src, "src", p.dst, "dst");
  py::array_t<double> colsum(static_cast<py::ssize_t>(d));
  p.shift = shift.data();
  p.colsum = colsum.mutable_data();
  {
    py::gil_scoped_release release;
    advise_huge_pages(p.dst);
    moments::center_columns(p);
  }
  return colsum;
}

void py_accumulate_scatter(py::object m2_obj, py::object g_obj, py::object u_obj,
                           py::object w_obj, py::object dtype_obj) {
  const DType dt = float_dtype(dtype_obj);
  moments::ScatterParams p;
  p.m2 = as_tensor4(m2_obj, "m2", DType::F64, true);
  p.g = as_tensor4(g_obj, "g", dt, false);
  const int64_t d = p.m2.shape[3];
  if (p.m2.shape[0] != 1 || p.m2.shape[1] != 1 || p.m2.shape[2] != d)
    throw py::value_error("Expected `m2` of shape [1, 1, D, D], got " + shape_str(p.m2));
  for (int i = 0; i < 4; ++i)
    if (p.g.shape[i] != p.m2.shape[i])
      throw py::value_error("Expected `g` of the shape of `m2` " + shape_str(p.m2) + ", got " +
                            shape_str(p.g));
  if (d > 0 && (p.m2.stride[3] != 1 || p.g.stride[3] != 1))
    throw py::value_error("Expected `m2` and `g` with contiguous rows (last stride 1)");
  const std::vector<double> w = as_doubles(w_obj, "w", -1);
  const int64_t k = static_cast<int64_t>(w.size());
  if (k > 64) throw py::value_error("Expected at most 64 rank-one terms, got " + std::to_string(k));
  const std::vector<double> u = as_doubles(u_obj, "u", static_cast<py::ssize_t>(k * d));
  check_no_overlap(p.g, "g", p.m2, "m2");
  p.u = u.data();
  p.w = w.data();
  p.k = k;
  py::gil_scoped_release release;
  moments::accumulate_scatter(p);
}

}  // namespace
}  // namespace fastperc

void init_moments(pybind11::module_& m) {
  using fastperc::py_accumulate_scatter;
  using fastperc::py_center_columns;
  m.def("center_columns", &py_center_columns, pybind11::arg("src"), pybind11::arg("dst"),
        pybind11::arg("shift"), pybind11::arg("dtype"),
        "dst = src - shift for [1, 1, N, D] float32/float64 rows (contiguous last dimension), "
        "returning the float64 column sums of dst (summed in fixed chunks of rows: the same "
        "bits whatever the thread count).");
  m.def("accumulate_scatter", &py_accumulate_scatter, pybind11::arg("m2"), pybind11::arg("g"),
        pybind11::arg("u"), pybind11::arg("w"), pybind11::arg("dtype"),
        "m2 += g + sum_k w[k] u[k] u[k]^T for [1, 1, D, D] float64 m2, float32/float64 g "
        "(dtype), u: K x D float64 values, w: K weights; one pass over m2.");
}
