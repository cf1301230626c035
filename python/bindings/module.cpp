// parla._core: the compiled half of the parla package. One bind_<area>.cpp per area.
#include "bindings.hpp"

namespace py = pybind11;

namespace parla::python {
void bind_kernels(py::module_& m);  // bind_kernels.cpp
}

#if PARLA_HAS_MPI
namespace parla::python {
void bind_mpi(py::module_& m);         // bind_mpi.cpp
void bind_dist_array(py::module_& m);  // bind_dist_array.cpp
}
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "Parla-MPI runtime core (private; use the parla package)";
  m.attr("__version__") = PARLA_VERSION;
  py::dict build;
  build["mpi"] = static_cast<bool>(PARLA_HAS_MPI);
  build["cuda"] = static_cast<bool>(PARLA_HAS_CUDA);
  build["ucx"] = static_cast<bool>(PARLA_HAS_UCX);
  m.attr("build_config") = build;
  parla::python::init_interpreter_state();
  parla::python::bind_errors(m);
  parla::python::bind_tasks(m);
  parla::python::bind_runtime(m);
  parla::python::bind_utils(m);
  parla::python::bind_data(m);
  parla::python::bind_kernels(m);
#if PARLA_HAS_MPI
  parla::python::bind_mpi(m);
  parla::python::bind_dist_array(m);
#endif
}
