// Python binding of the max-pooling kernel: argument checking, then the kernel without the GIL.
// Called by python/fastperc/models/_base.py (max_pool2d) with numpy views of channels_last
// torch tensors.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "pool.h"
#include "pyarray.h"

namespace fastperc {
namespace {

std::string expected(const char* name) { return std::string("Expected `") + name + "`"; }

void py_max_pool(py::object src_obj, py::object dst_obj, py::object k_obj, py::object stride_obj,
                 py::object pad_obj, py::object relu_obj) {
  pool::MaxPoolParams p;
  p.k = as_int(k_obj, "k");
  p.stride = as_int(stride_obj, "stride");
  p.pad = as_int(pad_obj, "pad");
  p.relu = as_bool(relu_obj, "relu");
  if (p.k < 1 || p.k > 4096)
    throw py::value_error(expected("k") + " in 1..4096, got " + std::to_string(p.k));
  if (p.stride < 1 || p.stride > 4096)
    throw py::value_error(expected("stride") + " in 1..4096, got " + std::to_string(p.stride));
  if (p.pad < 0 || 2 * p.pad > p.k)
    throw py::value_error(expected("pad") + " in 0..k/2 = " + std::to_string(p.k / 2) +
                          ", got " + std::to_string(p.pad));
  p.src = as_tensor4(src_obj, "src", DType::F32, false);
  p.dst = as_tensor4(dst_obj, "dst", DType::F32, true);
  const int64_t h = p.src.shape[2], w = p.src.shape[3];
  if (h + 2 * p.pad < p.k || w + 2 * p.pad < p.k)
    throw py::value_error(expected("src") + " at least k - 2 pad = " +
                          std::to_string(p.k - 2 * p.pad) + " high and wide, got " +
                          shape_str(p.src));
  const int64_t ho = (h + 2 * p.pad - p.k) / p.stride + 1;
  const int64_t wo = (w + 2 * p.pad - p.k) / p.stride + 1;
  const int64_t want[4] = {p.src.shape[0], p.src.shape[1], ho, wo};
  for (int i = 0; i < 4; ++i)
    if (p.dst.shape[i] != want[i])
      throw py::value_error(expected("dst") + " of shape " + shape_str(want, 4) + ", got " +
                            shape_str(p.dst));
  if (p.src.numel() == 0 || p.dst.numel() == 0) return;
  if (p.src.stride[1] != 1 || p.dst.stride[1] != 1)
    throw py::value_error(expected("src") + " and `dst` with contiguous channels (stride 1 " +
                          "along dimension 1, a channels_last layout)");
  check_no_overlap(p.src, "src", p.dst, "dst");
  py::gil_scoped_release release;
  pool::max_pool(p);
}

}  // namespace
}  // namespace fastperc

void init_pool(pybind11::module_& m) {
  using fastperc::py_max_pool;
  m.def("max_pool", &py_max_pool, pybind11::arg("src"), pybind11::arg("dst"), pybind11::arg("k"),
        pybind11::arg("stride"), pybind11::arg("pad"), pybind11::arg("relu"),
        "Max pooling of channels-last float32 maps [N, C, H, W] (channel stride 1) into dst "
        "[N, C, (H + 2 pad - k) / stride + 1, ...]; relu: max(., 0) of the result.");
}
