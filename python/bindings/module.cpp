// parla._core: the compiled half of the parla package. One bind_<area>.cpp per area.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace parla::python {
void bind_runtime(py::module_& m);
}  // namespace parla::python

PYBIND11_MODULE(_core, m) {
  m.doc() = "Parla-MPI runtime core (private; use the parla package)";
  m.attr("__version__") = PARLA_VERSION;
  py::dict build;
  build["mpi"] = static_cast<bool>(PARLA_HAS_MPI);
  build["cuda"] = static_cast<bool>(PARLA_HAS_CUDA);
  build["ucx"] = static_cast<bool>(PARLA_HAS_UCX);
  m.attr("build_config") = build;
  parla::python::bind_runtime(m);
}
