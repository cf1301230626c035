#pragma once
/// Errors of the MPI layer: every failing MPI call becomes an exception naming the operation.
#include <mpi.h>

#include <stdexcept>
#include <string>

namespace parla::mpi {

/// An MPI call failed. `what()` names the operation, the peer and tag when there is one, and
/// MPI's own error string.
class MpiError : public std::runtime_error {
 public:
  MpiError(std::string operation, int error_code, std::string detail = {});
  [[nodiscard]] int error_code() const noexcept { return m_error_code; }

 private:
  int m_error_code;
};

/// Throws MpiError when `rc` is not MPI_SUCCESS. `detail` is e.g. "peer 3, tag 17".
inline void check_mpi(int rc, const char* operation, const std::string& detail = {}) {
  if (rc != MPI_SUCCESS) [[unlikely]] {
    throw MpiError(operation, rc, detail);
  }
}

}  // namespace parla::mpi
