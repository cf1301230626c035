#include "parla/mpi/mpi_error.hpp"

namespace parla::mpi {
namespace {
std::string describe(const std::string& operation, int error_code, const std::string& detail) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(error_code, text, &length) != MPI_SUCCESS) {
    length = 0;
  }
  std::string message = operation + " failed";
  if (!detail.empty()) {
    message += " (" + detail + ")";
  }
  message += ": ";
  message += length > 0 ? std::string(text, static_cast<std::size_t>(length))
                        : "MPI error code " + std::to_string(error_code);
  return message;
}
}  // namespace

MpiError::MpiError(std::string operation, int error_code, std::string detail)
    : std::runtime_error(describe(operation, error_code, detail)), m_error_code(error_code) {}

}  // namespace parla::mpi
