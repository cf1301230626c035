#pragma once
/// MPI start-up and shut-down for programs that do not manage MPI themselves.
#include <mpi.h>

namespace parla::mpi {

/// Thread support the runtime needs from MPI, by how the application uses MPI itself.
enum class ThreadUse {
  /// The application calls MPI only between runtime phases (never while tasks run).
  between_phases,
  /// The application calls MPI from several threads at once, or while tasks run.
  concurrent,
};

/// Initialises MPI (if nobody has) with MPI_THREAD_MULTIPLE and finalises it on destruction
/// (only if it initialised it). Programs that call MPI_Init themselves, or use mpi4py, do not
/// need one; the runtime still checks the thread level they chose (see require_thread_level).
class Environment {
 public:
  Environment(int* argc, char*** argv);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  /// The thread level MPI provides (MPI_THREAD_SINGLE ... MPI_THREAD_MULTIPLE).
  [[nodiscard]] int thread_level() const noexcept { return m_provided; }

 private:
  bool m_owns = false;
  int m_provided = MPI_THREAD_SINGLE;
};

/// The `main` of a program on the runtime: sets up MPI (an Environment), runs `body` and
/// returns its exit code. An exception escaping `body` on any rank is printed as
/// "[rank r] <program> failed: <what>" and aborts the whole job: the other ranks would
/// otherwise wait for this one forever.
///
///     int main(int argc, char** argv) { return parla::mpi::run_main(argc, argv, "heat", run); }
int run_main(int argc, char** argv, const char* program, int (*body)(int, char**));

/// Throws std::runtime_error explaining what to change when MPI is not initialised or its
/// thread level is too low for `use` (SERIALIZED for between_phases, MULTIPLE for concurrent).
void require_thread_level(ThreadUse use);

/// Human name of an MPI thread level, e.g. "MPI_THREAD_SERIALIZED".
const char* thread_level_name(int level) noexcept;

}  // namespace parla::mpi
