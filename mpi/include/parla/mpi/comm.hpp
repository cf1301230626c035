#pragma once
/// Comm: communication tasks (send, recv, allreduce, bcast, barrier) in a rank's task graph.
#include <mpi.h>

#include <parla/data_block.hpp>
#include <parla/dep.hpp>
#include <parla/runtime.hpp>
#include <parla/task.hpp>
#include <parla/task_space.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parla/mpi/communicator.hpp"
#include "parla/mpi/progress_engine.hpp"

namespace parla::mpi {

/// Element types of allreduce.
enum class Datatype : unsigned char { i32, i64, u64, f32, f64, byte };
/// Reductions of allreduce.
enum class ReduceOp : unsigned char { sum, prod, min, max };

/// Size of one element of `type` in bytes.
std::size_t size_of(Datatype type) noexcept;

/// Which transport carries point-to-point messages (send, recv; collectives always use MPI).
/// `automatic` reads PARLA_TRANSPORT (auto|mpi|ucx); auto picks mpi. `ucx` needs a build with
/// PARLA_ENABLE_UCX (`ucx_transport_built()`), else the Comm's constructor throws.
enum class Transport : unsigned char { automatic, mpi, ucx };

/// How a Comm is set up.
struct CommConfig {
  Transport transport = Transport::automatic;
  /// When a communication task of this rank fails or is cancelled (its input's producer
  /// failed), print the failure on stderr and MPI_Abort the job: the other ranks would
  /// otherwise wait forever for messages that never come. Unset (-1): PARLA_MPI_ABORT_ON_FAILURE
  /// (0 turns it off), else on.
  int abort_on_failure = -1;
  /// Any other task of this rank that fails, and whose failure no wait of the program has
  /// picked up (rethrown) within this many milliseconds, aborts the job the same way. -1:
  /// PARLA_MPI_FAILURE_GRACE_MS, else 2000.
  int failure_grace_ms = -1;
};

/// The task side of a communication: like SpawnOptions without placement or data accesses
/// (the operation declares its own: a send reads its data, a receive writes it).
struct CommOptions {
  TaskRef key{};
  std::vector<Dep> dependencies{};
  int priority = 0;
  std::string name{};
  /// Held until the operation completes (e.g. the owner of a raw buffer).
  std::shared_ptr<void> keepalive{};
};

/// How a Comm's operations on data blocks handed their buffers to MPI (`Comm::buffer_paths`).
struct BufferPathStats {
  /// Through the block's host instance: the data was on the host, or the runtime staged it
  /// there from a device first (always for simulated GPUs and collectives; for CUDA devices
  /// when the direct path is off).
  std::uint64_t host = 0;
  /// As a CUDA device pointer: the CUDA-aware direct path (send and recv only).
  std::uint64_t device = 0;
};

namespace detail {
struct CommState;
}

/// The runtime's communication endpoint on one rank: a duplicate of `comm`, a progress engine
/// thread, and the communication tasks. A communication task is spawned like any task (key,
/// dependencies, priority); its body only hands the operation to the progress engine, and the
/// task completes when the MPI request completes. A send declares `in` on its data and a
/// receive `out`, so compute tasks that touch the same block order themselves around them.
///
/// Tags are deterministic: the k-th send from this rank to rank p with tag t matches the k-th
/// receive on p from this rank with tag t, whatever order the tasks run in — so spawn the
/// point-to-point tasks of one (peer, tag) in the same order on both sides, and collectives
/// in the same order on every rank (as MPI requires).
///
/// MPI must be initialised with at least MPI_THREAD_SERIALIZED (checked, with an
/// explanation); MPI_THREAD_MULTIPLE if the application calls MPI while tasks run.
/// Destroy it after `rt.finish()` (or call `finish()`): outstanding operations fail then.
class Comm {
 public:
  Comm(Runtime& rt, MPI_Comm comm = MPI_COMM_WORLD, CommConfig config = {});
  ~Comm();
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  [[nodiscard]] int rank() const noexcept;
  [[nodiscard]] int size() const noexcept;
  /// The runtime's duplicate communicator.
  [[nodiscard]] const Communicator& communicator() const noexcept;
  /// "mpi" or "ucx": the transport of point-to-point messages.
  [[nodiscard]] const char* transport_name() const noexcept;
  /// Number of user tags available: tags are 0 .. max_tag().
  [[nodiscard]] int max_tag() const noexcept;

  /// Sends `data` (a block or a byte range of one) to rank `dst`.
  Task send(const DataSlice& data, int dst, int tag, CommOptions options = {});
  /// Receives into `data` from rank `src` (exactly data.bytes() bytes).
  Task recv(const DataSlice& data, int src, int tag, CommOptions options = {});
  /// Raw host memory: no data accesses, so order it with explicit dependencies.
  Task send(const void* buffer, std::size_t bytes, int dst, int tag, CommOptions options = {});
  Task recv(void* buffer, std::size_t bytes, int src, int tag, CommOptions options = {});
  /// In-place allreduce over `data` viewed as an array of `type`.
  Task allreduce(const DataSlice& data, Datatype type, ReduceOp op, CommOptions options = {});
  Task allreduce(void* buffer, std::size_t count, Datatype type, ReduceOp op,
                 CommOptions options = {});
  /// Broadcasts `data` from `root` (read there, written elsewhere).
  Task bcast(const DataSlice& data, int root, CommOptions options = {});
  Task bcast(void* buffer, std::size_t bytes, int root, CommOptions options = {});
  Task barrier(CommOptions options = {});

  /// rt.finish(); if a task failed, prints "[rank r] <failure>" and aborts the job.
  void finish();
  /// Prints "[rank r] message" on stderr and MPI_Abort's the job with `code`.
  [[noreturn]] void abort(const std::string& message, int code = 1) const;
  /// Stops the progress engine (the destructor does it). Outstanding operations fail.
  void close();
  /// The runtime this Comm spawns into is gone (Python: its `with Parla()` ended first).
  void detach_runtime() noexcept;

  /// Makes one pass of the progress engine on the calling thread — posts the operations
  /// released so far and tests the outstanding ones — unless another thread is making one;
  /// true when anything moved. A thread that waits does this by itself. Call it from a thread
  /// that has released communication tasks and computes before it waits, so their messages
  /// go out first (a halo exchange does, before it copies the faces within the rank). Does
  /// nothing on a worker thread (idle workers make passes by themselves) or once the Comm is
  /// closed.
  bool progress();

  [[nodiscard]] ProgressStats progress_stats() const noexcept;

  /// Whether this Comm hands CUDA device memory to MPI directly: cuda_aware_mpi() holds, the
  /// transport is MPI, the runtime has a CUDA device, and the start-up self-test (64 bytes of
  /// device memory sent to this rank itself) passed. Then a send or recv of a block whose
  /// current copy is on a CUDA device runs there and MPI gets the device pointer; otherwise
  /// device data is staged through the block's host instance (page-locked for CUDA).
  [[nodiscard]] bool cuda_aware() const noexcept;
  /// Why cuda_aware() is what it is, e.g. "PARLA_CUDA_AWARE_MPI=0" or "no CUDA device in the
  /// runtime (simulated GPUs are always staged)".
  [[nodiscard]] const std::string& cuda_aware_reason() const noexcept;
  /// How the data-block operations spawned so far and run reached MPI.
  [[nodiscard]] BufferPathStats buffer_paths() const noexcept;

 private:
  std::shared_ptr<detail::CommState> m_state;
};

/// Whether this MPI can send CUDA device memory directly: PARLA_CUDA_AWARE_MPI=0|1 if set,
/// else the run-time answer of MPIX_Query_cuda_support() where the MPI has it, else false.
/// A Comm also self-tests it before using it (`Comm::cuda_aware`).
bool cuda_aware_mpi() noexcept;

/// Whether this build has the UCX transport (PARLA_ENABLE_UCX).
bool ucx_transport_built() noexcept;

}  // namespace parla::mpi
