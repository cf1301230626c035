#pragma once
/// The runtime's own communicator: a duplicate of the application's, so the runtime's traffic
/// never matches the application's messages.
#include <mpi.h>

namespace parla::mpi {

/// Owns a duplicate of an MPI communicator (MPI_Comm_dup) and frees it on destruction.
/// Errors on it are returned, not fatal, so every failing call becomes an MpiError.
class Communicator {
 public:
  /// Duplicates `comm` (default MPI_COMM_WORLD). MPI must be initialised.
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD);
  ~Communicator();
  Communicator(Communicator&& other) noexcept;
  Communicator& operator=(Communicator&& other) noexcept;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  [[nodiscard]] int rank() const noexcept { return m_rank; }
  [[nodiscard]] int size() const noexcept { return m_size; }
  /// The duplicated communicator, for calls the runtime does not wrap.
  [[nodiscard]] MPI_Comm native() const noexcept { return m_comm; }

  /// Blocking collectives for use between runtime phases (the task versions come with the
  /// progress engine).
  void barrier() const;
  [[nodiscard]] double allreduce_sum(double value) const;
  [[nodiscard]] long long allreduce_sum(long long value) const;

 private:
  void release() noexcept;

  MPI_Comm m_comm = MPI_COMM_NULL;
  int m_rank = 0;
  int m_size = 1;
};

}  // namespace parla::mpi
