// Bindings of parla::Runtime: construction with its settings and the devices it manages.
// Spawning from Python (with the GIL released on the hot path) comes with the Python package.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <parla/parla.hpp>
#include <string>
#include <vector>

namespace py = pybind11;

namespace parla::python {

void bind_runtime(py::module_& m) {
  py::class_<Runtime>(m, "Runtime", "A node runtime: cpu workers and (simulated) GPUs")
      .def(py::init([](int num_workers, int sim_gpus) {
             return std::make_unique<Runtime>(
                 RuntimeConfig{.num_workers = num_workers, .sim_gpus = sim_gpus});
           }),
           py::kw_only(), py::arg("num_workers") = 0, py::arg("sim_gpus") = -1,
           // Creating and joining worker threads must not hold the GIL.
           py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("num_workers", &Runtime::num_workers)
      .def_property_readonly("num_gpus", &Runtime::num_gpus)
      .def_property_readonly(
          "devices",
          [](const Runtime& rt) {
            std::vector<std::string> names;
            for (const Device* device : rt.devices()) {
              names.push_back(device->name());
            }
            return names;
          },
          "Device names: 'cpu' first, then 'gpu(0)', 'gpu(1)', ...")
      .def("wait_all", &Runtime::wait_all, py::call_guard<py::gil_scoped_release>(),
           "Wait until every spawned task is done; raise the first failure");
}

}  // namespace parla::python
