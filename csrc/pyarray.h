// Argument checking shared by the bindings: numpy arrays -> Tensor4, number lists, dtype codes.
// Every check raises a Python ValueError/TypeError naming the argument; kernels may then assume
// valid, aligned, non-overlapping inputs.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fastperc {
namespace py = pybind11;

inline std::string type_name(py::handle obj) { return Py_TYPE(obj.ptr())->tp_name; }

inline std::string shape_str(const int64_t* shape, int ndim) {
  std::string s = "(";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (ndim == 1 ? ",)" : ")");
}

inline std::string shape_str(const Tensor4& t) { return shape_str(t.shape, 4); }

// "u8" | "f16" | "bf16" | "f32" | "f64" -> DType.
inline DType parse_dtype(const std::string& code, const char* name) {
  if (code == "u8") return DType::U8;
  if (code == "f16") return DType::F16;
  if (code == "bf16") return DType::BF16;
  if (code == "f32") return DType::F32;
  if (code == "f64") return DType::F64;
  throw py::value_error(std::string("Expected `") + name +
                        "` to be one of 'u8', 'f16', 'bf16', 'f32', 'f64', got '" + code + "'");
}

inline const char* numpy_name(DType d) {
  switch (d) {
    case DType::U8: return "uint8";
    case DType::F16: return "float16";
    case DType::BF16: return "int16/uint16 (bfloat16 bits)";
    case DType::F32: return "float32";
    case DType::F64: return "float64";
  }
  return "?";
}

// Does the numpy dtype (kind, itemsize) hold elements of dtype code d?
inline bool numpy_dtype_matches(char kind, py::ssize_t size, DType d) {
  if (size != itemsize(d)) return false;
  switch (d) {
    case DType::U8: return kind == 'u';
    case DType::BF16: return kind == 'i' || kind == 'u';
    default: return kind == 'f';
  }
}

// A numpy array argument as a 4-D strided view of dtype d (element strides).
// writeable: the kernel writes it (then it must be writeable and free of self-overlap).
inline Tensor4 as_tensor4(py::handle obj, const char* name, DType d, bool writeable) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string("Expected `") + name + "` to be a numpy.ndarray, got " +
                         type_name(obj));
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (a.ndim() != 4)
    throw py::value_error(std::string("Expected `") + name +
                          "` with 4 dimensions [N, C, H, W], got " + std::to_string(a.ndim()));
  const py::dtype dt = a.dtype();
  if (!numpy_dtype_matches(dt.kind(), dt.itemsize(), d))
    throw py::type_error(std::string("Expected `") + name + "` with numpy dtype " + numpy_name(d) +
                         " for dtype code '" + dtype_code(d) + "', got " +
                         std::string(py::str(static_cast<py::object>(dt))));
  const char bo = dt.byteorder();
  const uint16_t one = 1;
  const bool little = *reinterpret_cast<const unsigned char*>(&one) == 1;
  const char foreign = little ? '>' : '<';  // the non-native byte order
  if (dt.itemsize() > 1 && bo == foreign)
    throw py::type_error(std::string("Expected `") + name + "` in native byte order");
  const int64_t isz = itemsize(d);
  Tensor4 t;
  t.dtype = d;
  t.data = const_cast<void*>(a.data());
  for (int i = 0; i < 4; ++i) {
    t.shape[i] = static_cast<int64_t>(a.shape(i));
    const int64_t sb = static_cast<int64_t>(a.strides(i));
    if (sb % isz != 0)
      throw py::value_error(std::string("Expected `") + name +
                            "` with strides divisible by its itemsize " + std::to_string(isz) +
                            ", got stride " + std::to_string(sb) + " bytes in dimension " +
                            std::to_string(i));
    t.stride[i] = sb / isz;
  }
  if (reinterpret_cast<uintptr_t>(t.data) % static_cast<uintptr_t>(isz) != 0)
    throw py::value_error(std::string("Expected `") + name +
                          "` with data aligned to its itemsize " + std::to_string(isz));
  if (writeable) {
    if (!a.writeable())
      throw py::value_error(std::string("Expected `") + name +
                            "` to be writeable (it is read-only)");
    if (t.numel() == 0) return t;
    // No two elements may share memory: sorted by |stride|, each dimension must step over the
    // whole extent of the previous ones (sufficient, and true of any permuted dense layout or
    // slice of one).
    int idx[4] = {0, 1, 2, 3};
    std::sort(idx, idx + 4, [&](int x, int y) {
      return std::llabs(t.stride[x]) < std::llabs(t.stride[y]);
    });
    int64_t extent = 1;  // elements spanned by the dimensions seen so far
    for (int q = 0; q < 4; ++q) {
      const int i = idx[q];
      if (t.shape[i] <= 1) continue;
      if (std::llabs(t.stride[i]) < extent)
        throw py::value_error(std::string("Expected `") + name +
                              "` without overlapping elements, got shape " + shape_str(t) +
                              " with element strides " + shape_str(t.stride, 4));
      extent = std::llabs(t.stride[i]) * t.shape[i];
    }
  }
  return t;
}

// Byte range [lo, hi) covered by a view (empty for empty views).
inline void byte_range(const Tensor4& t, uintptr_t& lo, uintptr_t& hi) {
  const int64_t isz = itemsize(t.dtype);
  int64_t a = 0, b = 0;
  for (int i = 0; i < 4; ++i) {
    if (t.shape[i] == 0) {
      lo = hi = 0;
      return;
    }
    const int64_t span = (t.shape[i] - 1) * t.stride[i] * isz;
    (span < 0 ? a : b) += span;
  }
  const auto base = reinterpret_cast<uintptr_t>(t.data);
  lo = base + a;  // a <= 0: wraps correctly in unsigned arithmetic
  hi = base + b + isz;
}

// Large outputs are usually fresh allocations that the kernel is about to fault in page by
// page; on Linux, ask for transparent huge pages over them (honoured where THP is in "madvise"
// mode, the common default), which makes first-touch page faults ~10x cheaper for batches.
// Advice only: errors are ignored and nothing about the data changes.
inline void advise_huge_pages(const Tensor4& dst) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{1} << 21;
  uintptr_t lo, hi;
  byte_range(dst, lo, hi);
  const uintptr_t a = (lo + kHuge - 1) & ~(kHuge - 1), b = hi & ~(kHuge - 1);
  if (b > a && b - a >= 2 * kHuge) (void)madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);
#else
  (void)dst;
#endif
}

inline void check_no_overlap(const Tensor4& src, const char* src_name, const Tensor4& dst,
                             const char* dst_name) {
  uintptr_t s0, s1, d0, d1;
  byte_range(src, s0, s1);
  byte_range(dst, d0, d1);
  if (s0 < s1 && d0 < d1 && s0 < d1 && d0 < s1)
    throw py::value_error(std::string("Expected `") + dst_name + "` not to overlap `" + src_name +
                          "` in memory");
}

// A sequence of numbers (list, tuple, numpy vector...) as doubles; len checked when >= 0.
inline std::vector<double> as_doubles(py::handle obj, const char* name, py::ssize_t len) {
  const bool seq = PySequence_Check(obj.ptr()) && !PyUnicode_Check(obj.ptr()) &&
                   !PyBytes_Check(obj.ptr());
  if (!seq)
    throw py::type_error(std::string("Expected `") + name + "` to be a sequence of numbers, got " +
                         type_name(obj));
  auto s = py::reinterpret_borrow<py::sequence>(obj);
  const py::ssize_t n = static_cast<py::ssize_t>(s.size());
  if (len >= 0 && n != len)
    throw py::value_error(std::string("Expected `") + name + "` of length " + std::to_string(len) +
                          ", got length " + std::to_string(n));
  std::vector<double> out(static_cast<size_t>(n));
  for (py::ssize_t i = 0; i < n; ++i) {
    py::object item = s[i];
    const double v = PyFloat_AsDouble(item.ptr());
    if (v == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      throw py::type_error(std::string("Expected `") + name + "` to hold numbers, got " +
                           type_name(item) + " at index " + std::to_string(i));
    }
    out[static_cast<size_t>(i)] = v;
  }
  return out;
}

// Scalar arguments, converted here (rather than by pybind11's casters) so that a wrong type
// raises a TypeError naming the argument instead of dumping every argument's repr.
inline bool is_numpy_bool(py::handle obj) {
  const std::string t = type_name(obj);
  return t == "numpy.bool_" || t == "numpy.bool";
}

inline bool as_bool(py::handle obj, const char* name) {
  if (PyBool_Check(obj.ptr()) || is_numpy_bool(obj)) return PyObject_IsTrue(obj.ptr()) == 1;
  throw py::type_error(std::string("Expected `") + name + "` to be a bool, got " + type_name(obj));
}

inline int64_t as_int(py::handle obj, const char* name) {
  if (!PyBool_Check(obj.ptr()) && !is_numpy_bool(obj) && PyIndex_Check(obj.ptr())) {
    PyObject* index = PyNumber_Index(obj.ptr());
    if (index != nullptr) {
      const long long v = PyLong_AsLongLong(index);
      Py_DECREF(index);
      if (!(v == -1 && PyErr_Occurred())) return static_cast<int64_t>(v);
    }
    PyErr_Clear();
  }
  throw py::type_error(std::string("Expected `") + name + "` to be an int, got " + type_name(obj));
}

inline double as_double(py::handle obj, const char* name) {
  if (!PyBool_Check(obj.ptr()) && !PyUnicode_Check(obj.ptr()) && !PyBytes_Check(obj.ptr())) {
    const double v = PyFloat_AsDouble(obj.ptr());
    if (!(v == -1.0 && PyErr_Occurred())) return v;
    PyErr_Clear();
  }
  throw py::type_error(std::string("Expected `") + name + "` to be a float, got " + type_name(obj));
}

inline std::string as_str(py::handle obj, const char* name) {
  if (PyUnicode_Check(obj.ptr())) return obj.cast<std::string>();
  throw py::type_error(std::string("Expected `") + name + "` to be a str, got " + type_name(obj));
}

inline void check_finite(const std::vector<double>& v, const char* name) {
  for (double x : v)
    if (!std::isfinite(x))
      throw py::value_error(std::string("Expected `") + name + "` to hold finite numbers");
}

}  // namespace fastperc
