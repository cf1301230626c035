#include "parla/mpi/communicator.hpp"

#include <stdexcept>
#include <utility>

#include "parla/mpi/mpi_error.hpp"

namespace parla::mpi {

Communicator::Communicator(MPI_Comm comm) {
  int initialized = 0;
  check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
  if (initialized == 0) {
    throw std::runtime_error(
        "parla::mpi::Communicator needs MPI to be initialised first (parla::mpi::Environment, "
        "MPI_Init_thread, or import mpi4py)");
  }
  if (comm == MPI_COMM_NULL) {
    throw std::invalid_argument("parla::mpi::Communicator: MPI_COMM_NULL is not a communicator");
  }
  check_mpi(MPI_Comm_dup(comm, &m_comm), "MPI_Comm_dup");
  check_mpi(MPI_Comm_set_errhandler(m_comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check_mpi(MPI_Comm_rank(m_comm, &m_rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(m_comm, &m_size), "MPI_Comm_size");
}

Communicator::~Communicator() { release(); }

Communicator::Communicator(Communicator&& other) noexcept
    : m_comm(std::exchange(other.m_comm, MPI_COMM_NULL)), m_rank(other.m_rank),
      m_size(other.m_size) {}

Communicator& Communicator::operator=(Communicator&& other) noexcept {
  if (this != &other) {
    release();
    m_comm = std::exchange(other.m_comm, MPI_COMM_NULL);
    m_rank = other.m_rank;
    m_size = other.m_size;
  }
  return *this;
}

void Communicator::release() noexcept {
  if (m_comm == MPI_COMM_NULL) {
    return;
  }
  int finalized = 0;
  // Freeing after MPI_Finalize is erroneous; a communicator outliving MPI is simply dropped.
  if (MPI_Finalized(&finalized) == MPI_SUCCESS && finalized == 0) {
    MPI_Comm_free(&m_comm);
  }
  m_comm = MPI_COMM_NULL;
}

void Communicator::barrier() const { check_mpi(MPI_Barrier(m_comm), "MPI_Barrier"); }

double Communicator::allreduce_sum(double value) const {
  double result = 0.0;
  check_mpi(MPI_Allreduce(&value, &result, 1, MPI_DOUBLE, MPI_SUM, m_comm), "MPI_Allreduce");
  return result;
}

long long Communicator::allreduce_sum(long long value) const {
  long long result = 0;
  check_mpi(MPI_Allreduce(&value, &result, 1, MPI_LONG_LONG, MPI_SUM, m_comm), "MPI_Allreduce");
  return result;
}

}  // namespace parla::mpi
