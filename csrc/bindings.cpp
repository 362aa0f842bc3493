// pybind11 module fastperc._C: argument checking and GIL release around the CPU kernels.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/numpy.h>

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastperc CPU kernels";
}
