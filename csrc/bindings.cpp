// pybind11 module fastperc._C: argument checking and GIL release around the CPU kernels.
// Each family of ops registers its functions from its own *_bindings.cpp (see README.md).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

namespace fastperc {
void bind_color(py::module_& m);
}  // namespace fastperc

void init_jpeg_io(py::module_& m);
void init_jpeg_sim(py::module_& m);
void init_resize(py::module_& m);
void init_metrics(py::module_& m);
void init_pool(py::module_& m);
void init_moments(py::module_& m);

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastperc CPU kernels";
#ifdef FASTPERC_HAVE_OPENMP
  m.attr("HAVE_OPENMP") = true;
#else
  m.attr("HAVE_OPENMP") = false;
#endif
  fastperc::bind_color(m);
  init_jpeg_io(m);
  init_jpeg_sim(m);
  init_resize(m);
  init_metrics(m);
  init_pool(m);
  init_moments(m);
}
