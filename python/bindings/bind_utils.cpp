// Small utilities of Parla's API: busy sleeps with and without the GIL (Parla's
// sleep_gil/sleep_nogil, used by its tutorials to stand in for compute kernels), and a cheap
// count of the shared objects loaded so far (library contexts rescan threadpools when it moves).
#include <link.h>

#include <chrono>
#include <cstdint>

#include "bindings.hpp"

namespace parla::python {

namespace {

void busy_sleep(double microseconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double, std::micro>(microseconds);
  while (std::chrono::steady_clock::now() < end) {
  }
}

/// glibc's counters of objects ever added to / removed from the process (dlopen, ctypes.CDLL,
/// extension imports): their sum changes whenever the set of loaded libraries may have changed.
/// One dl_iterate_phdr step, a few hundred nanoseconds.
std::uint64_t loaded_objects_generation() {
  std::uint64_t generation = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t size, void* out) -> int {
        auto& g = *static_cast<std::uint64_t*>(out);
        if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
          g = info->dlpi_adds + info->dlpi_subs;
        }
        return 1;  // the counters are the same in every entry: stop after the first
      },
      &generation);
  return generation;
}

}  // namespace

void bind_utils(py::module_& m) {
  m.def("sleep_nogil", &busy_sleep, py::arg("microseconds"), py::call_guard<py::gil_scoped_release>(),
        "Busy-wait for `microseconds` without holding the GIL (a stand-in for a native kernel)");
  m.def("sleep_gil", &busy_sleep, py::arg("microseconds"),
        "Busy-wait for `microseconds` holding the GIL (a stand-in for pure-Python work)");
  m.def("loaded_objects_generation", &loaded_objects_generation,
        "A number that changes whenever a shared library is loaded into or unloaded from the process");
}

}  // namespace parla::python
