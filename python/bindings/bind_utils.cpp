// Small utilities of Parla's API: busy sleeps with and without the GIL (Parla's
// sleep_gil/sleep_nogil, used by its tutorials to stand in for compute kernels).
#include <chrono>

#include "bindings.hpp"

namespace parla::python {

namespace {

void busy_sleep(double microseconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double, std::micro>(microseconds);
  while (std::chrono::steady_clock::now() < end) {
  }
}

}  // namespace

void bind_utils(py::module_& m) {
  m.def("sleep_nogil", &busy_sleep, py::arg("microseconds"), py::call_guard<py::gil_scoped_release>(),
        "Busy-wait for `microseconds` without holding the GIL (a stand-in for a native kernel)");
  m.def("sleep_gil", &busy_sleep, py::arg("microseconds"),
        "Busy-wait for `microseconds` holding the GIL (a stand-in for pure-Python work)");
}

}  // namespace parla::python
