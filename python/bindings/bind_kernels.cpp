// parla._core.kernels: the library's fused stencil kernels (parla/kernels/stencil.hpp) on NumPy
// arrays (buffer protocol, strides taken from the array, GIL released while they run) and, at
// the raw-pointer level, on CUDA arrays (`__cuda_array_interface__` pointers and a stream).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <parla/kernels/stencil.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"

namespace parla::python {

namespace {

using Index = std::ptrdiff_t;
using BoxArg = std::optional<std::vector<std::pair<Index, Index>>>;

std::string shape_str(const std::vector<Index>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

/// Element strides of a float64 array with `nd` dimensions, after checking dtype and layout.
std::vector<Index> element_strides(const py::array& a, std::size_t nd, const char* what,
                                   const char* name) {
  if (!a.dtype().is(py::dtype::of<double>())) {
    throw py::type_error(std::string(what) + ": " + name + " must be float64, got " +
                         std::string(py::str(a.dtype())));
  }
  if (static_cast<std::size_t>(a.ndim()) != nd) {
    throw py::value_error(std::string(what) + ": " + name + " must have " + std::to_string(nd) +
                          " dimensions, got " + std::to_string(a.ndim()));
  }
  std::vector<Index> s(nd);
  for (std::size_t d = 0; d < nd; ++d) {
    const Index bytes = a.strides(static_cast<py::ssize_t>(d));
    if (bytes <= 0 || bytes % static_cast<Index>(sizeof(double)) != 0) {
      throw py::value_error(std::string(what) + ": " + name + " has stride " +
                            std::to_string(bytes) + " bytes on axis " + std::to_string(d) +
                            "; positive multiples of 8 only (make a copy with np.ascontiguousarray)");
    }
    s[d] = bytes / static_cast<Index>(sizeof(double));
  }
  return s;
}

/// The box to update: the given (lo, hi) pairs, or the interior `[1, extent - 1)` of each
/// axis; every cell must have its neighbours inside `shape`.
template <std::size_t N>
kernels::Box<N> make_box(const BoxArg& box, const std::vector<Index>& shape, const char* what) {
  kernels::Box<N> b;
  if (box && box->size() != N) {
    throw py::value_error(std::string(what) + ": box needs " + std::to_string(N) +
                          " (lo, hi) pairs, got " + std::to_string(box->size()));
  }
  for (std::size_t d = 0; d < N; ++d) {
    b.lo[d] = box ? (*box)[d].first : 1;
    b.hi[d] = box ? (*box)[d].second : shape[d] - 1;
    if (b.hi[d] > b.lo[d] && (b.lo[d] < 1 || b.hi[d] > shape[d] - 1)) {
      throw py::value_error(std::string(what) + ": box [" + std::to_string(b.lo[d]) + ", " +
                            std::to_string(b.hi[d]) + ") on axis " + std::to_string(d) +
                            " leaves the array of shape " + shape_str(shape) +
                            "; a stencil box must lie within [1, extent - 1)");
    }
  }
  return b;
}

/// Checks `in`/`out` agree in shape and strides, `out` is writable and they do not overlap.
template <std::size_t N>
std::pair<kernels::Strides<N>, std::vector<Index>> check_pair(const py::array& in, py::array& out,
                                                              const char* what) {
  const auto si = element_strides(in, N, what, "in");
  const auto so = element_strides(out, N, what, "out");
  const std::vector<Index> shape(in.shape(), in.shape() + N);
  const std::vector<Index> out_shape(out.shape(), out.shape() + N);
  if (shape != out_shape || si != so) {
    throw py::value_error(std::string(what) + ": in and out must have the same shape and strides"
                          " (in: shape " + shape_str(shape) + ", strides " + shape_str(si) +
                          "; out: shape " + shape_str(out_shape) + ", strides " + shape_str(so) +
                          ", in elements)");
  }
  if (!out.writeable()) throw py::value_error(std::string(what) + ": out is read-only");
  Index span = 1;
  for (std::size_t d = 0; d < N; ++d) span += (shape[d] - 1) * si[d];
  const auto a = reinterpret_cast<std::uintptr_t>(in.data());
  const auto b = reinterpret_cast<std::uintptr_t>(out.data());
  const auto bytes = static_cast<std::uintptr_t>(span) * sizeof(double);
  if (a < b + bytes && b < a + bytes) {
    throw py::value_error(std::string(what) + ": in and out overlap; a Jacobi sweep needs two arrays");
  }
  kernels::Strides<N> s{};
  for (std::size_t d = 0; d < N; ++d) s[d] = si[d];
  return {s, shape};
}

void check_threads(int threads, const char* what) {
  if (threads < 1) {
    throw py::value_error(std::string(what) + ": threads must be >= 1, got " +
                          std::to_string(threads) + " (pass parla's task cores, or 1)");
  }
}

template <std::size_t N>
void sweep(const py::array& in, py::array& out, const BoxArg& box, double c0, double c1,
           int threads, const char* what) {
  check_threads(threads, what);
  auto [s, shape] = check_pair<N>(in, out, what);
  const kernels::Box<N> b = make_box<N>(box, shape, what);
  const auto* pin = static_cast<const double*>(in.data());
  auto* pout = static_cast<double*>(out.mutable_data());
  py::gil_scoped_release release;
  if constexpr (N == 2) {
    kernels::jacobi_2d5(pin, pout, s, b, {c0, c1}, threads);
  } else {
    kernels::jacobi_3d7(pin, pout, s, b, {c0, c1}, threads);
  }
}

/// The CUDA launch on raw device pointers (from `__cuda_array_interface__["data"][0]`),
/// element strides, and a `cudaStream_t` as an integer (0: the legacy default stream).
void sweep_cuda(std::uintptr_t in, std::uintptr_t out, const std::vector<Index>& shape,
                const std::vector<Index>& strides, const BoxArg& box, double c0, double c1,
                std::uintptr_t stream) {
  const char* what = "jacobi_cuda";
  if (shape.size() != strides.size() || (shape.size() != 2 && shape.size() != 3)) {
    throw py::value_error("jacobi_cuda: shape and strides must both have 2 or 3 entries");
  }
  const auto* pin = reinterpret_cast<const double*>(in);
  auto* pout = reinterpret_cast<double*>(out);
  void* s = reinterpret_cast<void*>(stream);
  if (shape.size() == 2) {
    const kernels::Box<2> b = make_box<2>(box, shape, what);
    py::gil_scoped_release release;
    kernels::jacobi_2d5_cuda(s, pin, pout, {strides[0], strides[1]}, b, {c0, c1});
  } else {
    const kernels::Box<3> b = make_box<3>(box, shape, what);
    py::gil_scoped_release release;
    kernels::jacobi_3d7_cuda(s, pin, pout, {strides[0], strides[1], strides[2]}, b, {c0, c1});
  }
}

}  // namespace

void bind_kernels(py::module_& m) {
  py::module_ k = m.def_submodule(
      "kernels", "Fused stencil kernels shipped with Parla (parla/kernels/stencil.hpp)");
  k.def(
      "jacobi_2d5",
      [](const py::array& in, py::array& out, const BoxArg& box, double c0, double c1,
         int threads) { sweep<2>(in, out, box, c0, c1, threads, "jacobi_2d5"); },
      py::arg("in_"), py::arg("out"), py::arg("box") = py::none(), py::arg("c0") = 0.5,
      py::arg("c1") = 0.125, py::arg("threads") = 1,
      "One 2-D 5-point Jacobi sweep of the ghosted float64 array `in_` into `out` (same shape "
      "and strides, no overlap) over `box` = ((lo0, hi0), (lo1, hi1)) in local coordinates "
      "(default: the interior, [1, extent-1) per axis): "
      "out = c0*u + c1*(((u[i-1,j] + u[i+1,j]) + u[i,j-1]) + u[i,j+1]), bit-identical to "
      "that NumPy expression. Runs on `threads` threads without the GIL.");
  k.def(
      "jacobi_3d7",
      [](const py::array& in, py::array& out, const BoxArg& box, double c0, double c1,
         int threads) { sweep<3>(in, out, box, c0, c1, threads, "jacobi_3d7"); },
      py::arg("in_"), py::arg("out"), py::arg("box") = py::none(), py::arg("c0") = 0.25,
      py::arg("c1") = 0.125, py::arg("threads") = 1,
      "One 3-D 7-point Jacobi sweep (neighbours summed along axes 0, 1, 2 in order); "
      "otherwise as jacobi_2d5.");
  k.def("jacobi_cuda", &sweep_cuda, py::arg("in_ptr"), py::arg("out_ptr"), py::arg("shape"),
        py::arg("strides"), py::arg("box") = py::none(), py::arg("c0"), py::arg("c1"),
        py::arg("stream") = 0,
        "Enqueue the 2-D or 3-D sweep (by len(shape)) on CUDA device arrays given as raw "
        "pointers with element strides, on the cudaStream_t `stream` (an int). Raises when "
        "Parla was built without CUDA.");
  k.def("have_cuda", &kernels::have_cuda_kernels, "Whether the CUDA kernels were compiled in.");
  k.def(
      "stream_triad",
      [](std::size_t elements, int threads, int repetitions) {
        check_threads(threads, "stream_triad");
        kernels::TriadResult r;
        {
          py::gil_scoped_release release;
          r = kernels::stream_triad(elements, threads, repetitions);
        }
        py::dict d;
        d["best_gbs"] = r.best_gbs;
        d["median_gbs"] = r.median_gbs;
        d["elements"] = r.elements;
        d["threads"] = r.threads;
        return d;
      },
      py::arg("elements") = std::size_t{1} << 24, py::arg("threads") = 1,
      py::arg("repetitions") = 10,
      "STREAM-like triad a = b + s*c over three arrays of `elements` float64 on `threads` "
      "threads; returns {'best_gbs', 'median_gbs', 'elements', 'threads'} (24 bytes per "
      "element, STREAM's convention).");
}

}  // namespace parla::python
