#include "parla/mpi/comm.hpp"

#include <mpi.h>

#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>  // Open MPI: MPIX_CUDA_AWARE_SUPPORT, MPIX_Query_cuda_support
#endif

#include <parla/device.hpp>
#include <parla/error.hpp>
#include <parla/placement.hpp>
#include <parla/stream.hpp>
#include <parla/task_context.hpp>

#if defined(PARLA_HAVE_CUDA)
#include <cuda_runtime_api.h>
#endif

#include <atomic>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "parla/mpi/environment.hpp"
#include "parla/mpi/mpi_error.hpp"

#if defined(PARLA_HAVE_UCX)
#include "ucx/ucx_transport.hpp"
#endif

namespace parla::mpi {

namespace {

MPI_Datatype mpi_type(Datatype t) noexcept {
  switch (t) {
    case Datatype::i32: return MPI_INT32_T;
    case Datatype::i64: return MPI_INT64_T;
    case Datatype::u64: return MPI_UINT64_T;
    case Datatype::f32: return MPI_FLOAT;
    case Datatype::f64: return MPI_DOUBLE;
    case Datatype::byte: return MPI_UINT8_T;
  }
  return MPI_BYTE;
}

MPI_Op mpi_op(ReduceOp op) noexcept {
  switch (op) {
    case ReduceOp::sum: return MPI_SUM;
    case ReduceOp::prod: return MPI_PROD;
    case ReduceOp::min: return MPI_MIN;
    case ReduceOp::max: return MPI_MAX;
  }
  return MPI_SUM;
}

Transport resolve_transport(Transport requested) {
  if (requested == Transport::automatic) {
    const char* env = std::getenv("PARLA_TRANSPORT");
    const std::string value = env != nullptr ? env : "auto";
    if (value.empty() || value == "auto" || value == "mpi") {
      requested = Transport::mpi;
    } else if (value == "ucx") {
      requested = Transport::ucx;
    } else {
      throw std::invalid_argument("PARLA_TRANSPORT=" + value +
                                  " is not a transport; use auto, mpi or ucx");
    }
  }
#if !defined(PARLA_HAVE_UCX)
  if (requested == Transport::ucx) {
    throw std::runtime_error(
        "the UCX transport of parla::mpi is not built yet (PARLA_TRANSPORT=ucx); only the MPI "
        "transport exists: unset PARLA_TRANSPORT or set it to mpi or auto");
  }
#endif
  return requested;
}

bool abort_on_failure_setting(int configured) {
  if (configured >= 0) return configured != 0;
  const char* env = std::getenv("PARLA_MPI_ABORT_ON_FAILURE");
  return env == nullptr || std::strcmp(env, "0") != 0;
}

std::chrono::milliseconds failure_grace_setting(int configured) {
  if (configured >= 0) return std::chrono::milliseconds(configured);
  const char* env = std::getenv("PARLA_MPI_FAILURE_GRACE_MS");
  if (env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != nullptr && *end == '\0' && v >= 0) return std::chrono::milliseconds(v);
    std::fprintf(stderr, "parla::mpi: PARLA_MPI_FAILURE_GRACE_MS=%s is not a number of "
                 "milliseconds; using 2000\n", env);
  }
  return std::chrono::milliseconds(2000);
}

/// PARLA_CUDA_AWARE_MPI: unset or empty (ask the MPI), "0" (off), anything else (forced on).
enum class CudaAwareSetting : unsigned char { query, off, forced };

CudaAwareSetting cuda_aware_setting() noexcept {
  const char* env = std::getenv("PARLA_CUDA_AWARE_MPI");
  if (env == nullptr || *env == '\0') return CudaAwareSetting::query;
  return std::strcmp(env, "0") == 0 ? CudaAwareSetting::off : CudaAwareSetting::forced;
}

/// Sends 64 bytes of memory on CUDA device `ordinal` to this rank itself, on a duplicate of
/// MPI_COMM_SELF that returns errors instead of aborting, and checks what arrived. Empty when
/// it worked, else what went wrong. An MPI that is not CUDA-aware may also crash here (it
/// reads device memory as host memory): only PARLA_CUDA_AWARE_MPI=1 brings it here then.
std::string cuda_self_test(int ordinal) {
#if defined(PARLA_HAVE_CUDA)
  constexpr int k_bytes = 64;
  unsigned char sent[k_bytes];
  unsigned char got[k_bytes] = {};
  for (int i = 0; i < k_bytes; ++i) sent[i] = static_cast<unsigned char>(i * 37 + 11);
  int previous = -1;
  void* src = nullptr;
  void* dst = nullptr;
  MPI_Comm self = MPI_COMM_NULL;
  std::string error;
  auto cuda = [&](cudaError_t err, const char* what) {
    if (err == cudaSuccess || !error.empty()) return error.empty();
    error = std::string(what) + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
    return false;
  };
  auto mpi = [&](int rc, const char* what) {
    if (rc == MPI_SUCCESS || !error.empty()) return error.empty();
    error = MpiError(what, rc, "CUDA device memory to this rank itself").what();
    return false;
  };
  if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
  if (cuda(cudaSetDevice(ordinal), "cudaSetDevice") &&
      cuda(cudaMalloc(&src, k_bytes), "cudaMalloc") &&
      cuda(cudaMalloc(&dst, k_bytes), "cudaMalloc") &&
      cuda(cudaMemcpy(src, sent, k_bytes, cudaMemcpyHostToDevice), "cudaMemcpy") &&
      cuda(cudaMemset(dst, 0, k_bytes), "cudaMemset") &&
      // Both went to the legacy default stream; the MPI may use streams of its own.
      cuda(cudaStreamSynchronize(nullptr), "cudaStreamSynchronize") &&
      mpi(MPI_Comm_dup(MPI_COMM_SELF, &self), "MPI_Comm_dup") &&
      mpi(MPI_Comm_set_errhandler(self, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler")) {
    MPI_Status status;
    if (mpi(MPI_Sendrecv(src, k_bytes, MPI_BYTE, 0, 0, dst, k_bytes, MPI_BYTE, 0, 0, self, &status),
            "MPI_Sendrecv")) {
      int count = 0;
      MPI_Get_count(&status, MPI_BYTE, &count);
      if (count != k_bytes) {
        error = "MPI_Sendrecv delivered " + std::to_string(count) + " of " +
                std::to_string(k_bytes) + " bytes";
      } else if (cuda(cudaMemcpy(got, dst, k_bytes, cudaMemcpyDeviceToHost), "cudaMemcpy") &&
                 std::memcmp(sent, got, k_bytes) != 0) {
        error = "the bytes that arrived in device memory differ from those sent";
      }
    }
  }
  if (self != MPI_COMM_NULL) MPI_Comm_free(&self);
  if (src != nullptr) cudaFree(src);
  if (dst != nullptr) cudaFree(dst);
  if (previous >= 0) cudaSetDevice(previous);
  // Leave no error behind: the runtime reads a thread's last CUDA error after task bodies.
  (void)cudaGetLastError();
  return error;
#else
  (void)ordinal;
  return "this build of parla::mpi has no CUDA support (PARLA_ENABLE_CUDA=OFF)";
#endif
}

/// The direct path's decision, in the order of docs/mpi.md ("Device buffers").
struct DirectPath {
  bool enabled = false;
  std::string reason;
  std::vector<int> cuda_gpus;  // gpu(i) indices of the runtime's CUDA devices
};

DirectPath decide_direct_path(const Runtime& rt, Transport transport, int rank) {
  DirectPath d;
  const CudaAwareSetting setting = cuda_aware_setting();
  if (setting == CudaAwareSetting::off) {
    d.reason = "PARLA_CUDA_AWARE_MPI=0";
    return d;
  }
  if (setting == CudaAwareSetting::query && !cuda_aware_mpi()) {
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
    d.reason = "MPIX_Query_cuda_support() says this MPI is not CUDA-aware";
#else
    d.reason = "this MPI's headers do not declare CUDA-aware support (MPIX_CUDA_AWARE_SUPPORT); "
               "set PARLA_CUDA_AWARE_MPI=1 if it is CUDA-aware anyway";
#endif
    return d;
  }
  for (const Device* dev : rt.devices()) {
    if (std::strcmp(dev->backend(), "cuda") == 0) d.cuda_gpus.push_back(dev->index());
  }
  if (d.cuda_gpus.empty()) {
    d.reason = "no CUDA device in the runtime (simulated GPUs are always staged)";
    return d;
  }
  if (transport != Transport::mpi) {
    d.reason = "the UCX transport stages device data through host memory";
    return d;
  }
  // The runtime numbers its CUDA devices as CUDA does (gpu(i) is CUDA device i).
  const std::string failure = cuda_self_test(d.cuda_gpus.front());
  if (!failure.empty()) {
    if (setting == CudaAwareSetting::forced) {
      // The user said the MPI is CUDA-aware and it is not: staging silently would hide a
      // broken installation, and passing device pointers would crash or corrupt data.
      throw std::runtime_error(
          "parla::mpi: PARLA_CUDA_AWARE_MPI=1, but this MPI failed the CUDA-aware self-test (" +
          failure +
          "): it cannot send CUDA device memory. Use a CUDA-aware MPI, or unset "
          "PARLA_CUDA_AWARE_MPI (or set it to 0) to stage device data through pinned host memory");
    }
    std::fprintf(stderr,
                 "[rank %d] parla::mpi: warning: the MPI reports CUDA-aware support but failed "
                 "the self-test (%s); device data is staged through pinned host memory instead. "
                 "Set PARLA_CUDA_AWARE_MPI=0 to skip the test and this warning.\n",
                 rank, failure.c_str());
    d.reason = "the CUDA-aware self-test failed: " + failure;
    return d;
  }
  d.enabled = true;
  d.reason = setting == CudaAwareSetting::forced
                 ? "PARLA_CUDA_AWARE_MPI=1 and the self-test passed"
                 : "MPIX_Query_cuda_support() and the self-test passed";
  return d;
}

int checked_count(std::size_t bytes, const char* what) {
  if (bytes > static_cast<std::size_t>(INT_MAX)) {
    throw std::invalid_argument(std::string("parla::mpi::") + what + " of " +
                                std::to_string(bytes) +
                                " bytes: messages over 2 GiB - 1 are not supported yet; split it");
  }
  return static_cast<int>(bytes);
}

}  // namespace

std::size_t size_of(Datatype type) noexcept {
  switch (type) {
    case Datatype::i32:
    case Datatype::f32: return 4;
    case Datatype::i64:
    case Datatype::u64:
    case Datatype::f64: return 8;
    case Datatype::byte: return 1;
  }
  return 1;
}

bool cuda_aware_mpi() noexcept {
  if (const char* env = std::getenv("PARLA_CUDA_AWARE_MPI"); env != nullptr && *env != '\0') {
    return std::strcmp(env, "0") != 0;
  }
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
  return MPIX_Query_cuda_support() == 1;
#else
  return false;
#endif
}

bool ucx_transport_built() noexcept {
#if defined(PARLA_HAVE_UCX)
  return true;
#else
  return false;
#endif
}

namespace detail {

/// A communication task's name, "mpi.send(to 1, tag 7)", appended to `out`.
void append_task_name(std::string& out, const char* what, OpKind kind, int peer, int user_tag) {
  out.append("mpi.").append(what);
  if (kind == OpKind::send || kind == OpKind::recv) {
    char num[16];
    auto append_int = [&](int v) {
      const auto end = std::to_chars(num, num + sizeof num, v).ptr;
      out.append(num, end);
    };
    out.append(kind == OpKind::send ? "(to " : "(from ");
    append_int(peer);
    out.append(", tag ");
    append_int(user_tag);
    out.push_back(')');
  }
}

struct CommState;

/// The body of a send or a receive of a plain buffer or of a DataBlock slice, the hot path of
/// a halo exchange. It fits in the task record (the spawn allocates nothing for it) and names
/// its task only when something asks (a hang report, an error), instead of formatting a name
/// for every message. A slice's body holds no slice: the task's one declared access keeps the
/// block, and the body asks the runtime where the task's bytes are.
struct P2pBody {
  std::weak_ptr<CommState> state;
  void* buffer = nullptr;  // a plain buffer's
  int count = 0;           // bytes
  int peer = 0;
  int tag = 0;       // the MPI tag (the message's number in its channel, see CommState)
  int user_tag = 0;  // the program's
  OpKind kind = OpKind::send;
  bool task_data = false;  // the bytes are the task's declared access, not `buffer`

  void operator()(TaskContext& ctx) const;
  void describe(std::string& out) const {
    append_task_name(out, kind == OpKind::send ? "send" : "recv", kind, peer, user_tag);
  }
};
static_assert(sizeof(P2pBody) <= parla::detail::TaskFunction::inline_size,
              "a plain send or receive body must fit in the task record");

/// Everything a communication task's body needs; shared with the bodies so a task that runs
/// after its Comm closed fails cleanly instead of touching freed state.
struct CommState {
  Runtime* rt;
  Communicator comm;
  Transport transport;
  bool abort_on_failure;
  std::chrono::milliseconds failure_grace;
  int seq_bits = 0;
  int max_tag = 0;

  std::mutex mutex;  // guards the sequence numbers and `tracked`
  std::map<std::pair<int, int>, std::uint64_t> send_seq;
  std::map<std::pair<int, int>, std::uint64_t> recv_seq;
  std::uint64_t collective_seq = 0;
  std::vector<Task> tracked;  // communication tasks not known to be completed

  // The CUDA-aware direct path (set by Comm's constructor, read-only afterwards).
  bool direct = false;
  std::string direct_reason;
  Placement direct_placement;  // any_of(the CUDA GPUs, cpu)
  std::atomic<std::uint64_t> host_buffers{0};
  std::atomic<std::uint64_t> device_buffers{0};

  // Last: its thread calls watchdog(). Shared: the runtime's waiting threads drive it.
  std::shared_ptr<ProgressEngine> engine;

  CommState(Runtime& runtime, MPI_Comm c, const CommConfig& config)
      : rt(&runtime), comm(c), transport(resolve_transport(config.transport)),
        abort_on_failure(abort_on_failure_setting(config.abort_on_failure)),
        failure_grace(failure_grace_setting(config.failure_grace_ms)) {
    // Tags. MPI matches on (communicator, source, tag) and keeps messages of one such triple
    // in order, but the runtime posts operations when their tasks become ready, which need
    // not be spawn order: two exchanges between the same ranks with the same user tag could
    // cross-match. So each (peer, user tag) pair numbers its messages in spawn order, on both
    // sides, and the MPI tag is `user_tag << seq_bits | seq mod 2^seq_bits`: the k-th send
    // matches the k-th receive whatever order they are posted in. A tag repeats only after
    // 2^seq_bits messages of the same pair, so up to that many may be in flight at once.
    int* tag_ub = nullptr;
    int flag = 0;
    check_mpi(MPI_Comm_get_attr(comm.native(), MPI_TAG_UB, &tag_ub, &flag), "MPI_Comm_get_attr",
              "MPI_TAG_UB");
    const long long ub = (flag != 0 && tag_ub != nullptr) ? *tag_ub : 32767;  // MPI's minimum
    int bits = 0;
    while (bits < 31 && (1LL << (bits + 1)) - 1 <= ub) ++bits;
    seq_bits = std::min(20, bits - 4);
    max_tag = (1 << (bits - seq_bits)) - 1;
  }

  int mpi_tag(int user_tag, std::uint64_t seq) const noexcept {
    const std::uint64_t mask = (std::uint64_t{1} << seq_bits) - 1;
    return (user_tag << seq_bits) | static_cast<int>(seq & mask);
  }

  void check_peer_and_tag(int peer, int tag, const char* what) const {
    if (peer < 0 || peer >= comm.size()) {
      throw std::invalid_argument(std::string("parla::mpi::") + what + ": rank " +
                                  std::to_string(peer) + " does not exist (the communicator has " +
                                  std::to_string(comm.size()) + " ranks)");
    }
    if (tag < 0 || tag > max_tag) {
      throw std::invalid_argument(std::string("parla::mpi::") + what + ": tag " +
                                  std::to_string(tag) + " is outside 0.." + std::to_string(max_tag) +
                                  " (the rest of MPI's tag space numbers the messages)");
    }
  }

  Runtime& runtime() const {
    if (rt == nullptr) {
      throw std::runtime_error("parla::mpi::Comm: its runtime has ended; make a new Comm");
    }
    return *rt;
  }

  /// Runs on the engine thread about every 100 ms.
  void watchdog() {
    std::string message;
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (std::size_t i = 0; i < tracked.size();) {
        const TaskState s = tracked[i].state();
        if (s == TaskState::completed) {
          tracked[i] = std::move(tracked.back());
          tracked.pop_back();
          continue;
        }
        if ((s == TaskState::failed || s == TaskState::cancelled) && message.empty()) {
          try {
            tracked[i].rethrow_if_failed();
            message = "communication task '" + tracked[i].name() + "' " + to_string(s);
          } catch (const std::exception& e) {
            message = e.what();
          } catch (...) {
            message = "communication task '" + tracked[i].name() + "' failed";
          }
          if (!abort_on_failure) {
            // Reported by the runtime where the program waits; stop tracking it.
            tracked[i] = std::move(tracked.back());
            tracked.pop_back();
            message.clear();
            continue;
          }
        }
        ++i;
      }
      // Any other task's failure that no wait picked up within the grace period: the program
      // is not going to handle it, and this rank's peers may be waiting for it.
      if (message.empty() && abort_on_failure && rt != nullptr) {
        if (auto failure = rt->unreported_failure(failure_grace)) message = std::move(*failure);
      }
    }
    if (!message.empty()) {
      abort_job(message + "\n(the other ranks would wait forever for this rank's messages; set "
                          "PARLA_MPI_ABORT_ON_FAILURE=0 to handle failures yourself)");
    }
  }

  [[noreturn]] void abort_job(const std::string& message, int code = 1) const {
    int world_rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    std::fprintf(stderr, "[rank %d] %s\n[rank %d] parla::mpi: aborting the job\n", world_rank,
                 message.c_str(), world_rank);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; in case it does
  }

  /// What every communication task is spawned with: the caller's key, dependencies and name,
  /// a raised priority (they are short, only post, and a peer may be waiting for them), and
  /// run_inline: the thread that releases one (the engine completing the previous message of
  /// a chain, a worker finishing its producer) runs it right away instead of waking a worker.
  static SpawnOptions task_options(CommOptions& options) {
    SpawnOptions o;
    o.key = std::move(options.key);
    o.dependencies = std::move(options.dependencies);
    o.priority = options.priority != 0 ? options.priority : 1;
    o.name = std::move(options.name);
    o.run_inline = true;
    return o;
  }

  /// Hands `op` (its token taken) to the engine from a communication task's body. Released on
  /// a thread that is not a worker (the spawner, a waiting thread), which will most likely wait
  /// next and drive the engine itself: no wake-up. On a worker: posted now in a pass of its
  /// own (non-blocking calls, one pass at a time), so the message leaves without a hand-over
  /// to the engine thread; if another thread is making a pass, that one takes it.
  void hand_over(TaskContext& ctx, Operation&& op) {
    if (!ctx.runtime().on_worker_thread()) {
      engine->submit(std::move(op), /*may_defer=*/true);
    } else {
      engine->submit_and_post(std::move(op));
    }
  }

  /// Spawns the task that posts a send or a receive of a plain buffer (`op` from
  /// point_to_point()): the lean body, unless the operation must hold something alive.
  Task spawn_p2p(Operation&& op, CommOptions&& options) {
    const char* what = op.kind == OpKind::send ? "send" : "recv";
    if (options.keepalive) {
      return spawn(std::move(op), DataSlice{}, false, false, std::move(options), what);
    }
    Runtime& r = runtime();
    Task t = r.spawn(task_options(options),
                     P2pBody{self, op.buffer, op.count, op.peer, op.tag, op.user_tag, op.kind});
    track(t);
    return t;
  }

  void track(const Task& t) {
    std::lock_guard<std::mutex> lock(mutex);
    tracked.push_back(t);
  }

  /// Declares the task's access to `data` (reads, writes or both), placed where the direct
  /// path wants it.
  void declare_access(SpawnOptions& o, const DataSlice& data, bool reads, bool writes,
                      OpKind kind) const {
    // Host placement by default: the runtime brings the block's current contents to host
    // memory before the task runs (from a GPU through its copy stream, into page-locked
    // memory for CUDA), and the task starts once the copy's event has fired.
    if (direct && (kind == OpKind::send || kind == OpKind::recv)) {
      // The direct path: the mapper picks, once the task is ready (its producers are done),
      // the device holding most of the slice's current bytes: the CUDA GPU that wrote them,
      // or the host. A receive declares inout here because locality counts only what a
      // task reads; it is placed where the slice lives and overwrites it there.
      o.placement = direct_placement;
      reads = true;
    }
    if (reads && writes) {
      o.inout.push_back(data);
    } else if (writes) {
      o.out.push_back(data);
    } else {
      o.in.push_back(data);
    }
  }

  /// Points `op` at the task's data on the device the task runs on (a CUDA GPU only on the
  /// direct path, else the host memory the runtime staged it in).
  void use_task_data(TaskContext& ctx, Operation& op, void* buffer) {
    op.buffer = buffer;
    if (ctx.device().kind() == DeviceKind::gpu) {
      // The task's stream already waits for the slice's producers (and, for a receive, for
      // the readers of the bytes it overwrites): MPI gets the device pointer once the stream
      // has reached this point.
      op.host_memory = false;
      op.ready = ctx.stream().record();
      device_buffers.fetch_add(1, std::memory_order_relaxed);  // a counter only
    } else {
      op.host_memory = true;
      host_buffers.fetch_add(1, std::memory_order_relaxed);
    }
  }

  /// Spawns the task that sends or receives a DataBlock slice (`op` from point_to_point()):
  /// the lean body, unless the operation must hold something alive.
  Task spawn_block(Operation&& op, const DataSlice& data, CommOptions&& options) {
    const bool send = op.kind == OpKind::send;
    if (options.keepalive) {
      return spawn(std::move(op), data, send, !send, std::move(options), send ? "send" : "recv");
    }
    Runtime& r = runtime();
    SpawnOptions o = task_options(options);
    declare_access(o, data, send, !send, op.kind);
    Task t = r.spawn(std::move(o), P2pBody{self, nullptr, op.count, op.peer, op.tag,
                                           op.user_tag, op.kind, /*task_data=*/true});
    track(t);
    return t;
  }

  /// Spawns the task that posts `op` (its buffer taken from `data` when it has one).
  Task spawn(Operation op, const DataSlice& data, bool reads, bool writes, CommOptions&& options,
             const char* what) {
    Runtime& r = runtime();
    SpawnOptions o = task_options(options);
    if (o.name.empty() && !o.key.valid()) {  // a keyed task is named after its key
      o.name.reserve(48);
      append_task_name(o.name, what, op.kind, op.peer, op.user_tag);
    }
    if (data.state()) declare_access(o, data, reads, writes, op.kind);
    op.keepalive = std::move(options.keepalive);
    std::weak_ptr<CommState> weak = self;
    Task t = r.spawn(std::move(o), [weak, op = std::move(op), data](TaskContext& ctx) mutable {
      std::shared_ptr<CommState> st = weak.lock();
      if (!st) throw std::runtime_error("parla::mpi: the Comm was destroyed before this task ran");
      if (data.state()) st->use_task_data(ctx, op, ctx.data(data));
      op.token = ctx.defer_completion();
      st->hand_over(ctx, std::move(op));
    });
    track(t);
    return t;
  }

  std::weak_ptr<CommState> self;
};

void P2pBody::operator()(TaskContext& ctx) const {
  std::shared_ptr<CommState> st = state.lock();
  if (!st) throw std::runtime_error("parla::mpi: the Comm was destroyed before this task ran");
  Operation op;
  op.kind = kind;
  op.buffer = buffer;
  op.count = count;
  op.peer = peer;
  op.tag = tag;
  op.user_tag = user_tag;
  if (task_data) st->use_task_data(ctx, op, parla::detail::declared_data(ctx, 0));
  op.token = ctx.defer_completion();
  st->hand_over(ctx, std::move(op));
}

}  // namespace detail

Comm::Comm(Runtime& rt, MPI_Comm comm, CommConfig config) {
  require_thread_level(ThreadUse::between_phases);
  m_state = std::make_shared<detail::CommState>(rt, comm, config);
  m_state->self = m_state;
  detail::CommState* st = m_state.get();
  // Before the engine starts: the self-test makes blocking MPI calls on this thread.
  DirectPath direct = decide_direct_path(rt, m_state->transport, m_state->comm.rank());
  st->direct = direct.enabled;
  st->direct_reason = std::move(direct.reason);
  if (direct.enabled) {
    std::vector<PlacementOption> options;
    for (int g : direct.cuda_gpus) {
      options.push_back({{DeviceSpec{DeviceKind::gpu, g}}, std::nullopt});
    }
    options.push_back({{DeviceSpec{DeviceKind::cpu, 0}}, std::nullopt});
    st->direct_placement = Placement(std::move(options));
  }
  P2pTransportFactory make_p2p;
#if defined(PARLA_HAVE_UCX)
  if (m_state->transport == Transport::ucx) {
    // Point-to-point over UCX; collectives stay on MPI, in the same engine.
    make_p2p = [native = m_state->comm.native()] { return ucx::make_transport(native); };
  }
#endif
  m_state->engine = std::make_shared<ProgressEngine>(
      m_state->comm.native(), [st] { st->watchdog(); }, std::chrono::milliseconds(100),
      std::move(make_p2p));
  rt.add_wait_driver(m_state->engine);
}

Comm::~Comm() {
  if (!m_state) return;
  if (std::uncaught_exceptions() == 0 && m_state->rt != nullptr) {
    std::vector<Task> pending;
    {
      std::lock_guard<std::mutex> lock(m_state->mutex);
      pending = m_state->tracked;
    }
    for (const Task& t : pending) {
      try {
        m_state->rt->wait(t);
      } catch (...) {
        // The runtime reports it where the program waits (or at its end).
      }
    }
  }
  close();
}

void Comm::close() {
  if (!m_state || !m_state->engine) return;
  {
    std::lock_guard<std::mutex> lock(m_state->mutex);
    // A no-op when an earlier close() removed it already.
    if (m_state->rt != nullptr) m_state->rt->remove_wait_driver(m_state->engine.get());
  }
  m_state->engine->stop();
}

void Comm::detach_runtime() noexcept {
  if (!m_state) return;
  std::lock_guard<std::mutex> lock(m_state->mutex);  // the watchdog reads it under the lock
  m_state->rt = nullptr;  // the runtime is gone, and its list of drivers with it
}

int Comm::rank() const noexcept { return m_state->comm.rank(); }
int Comm::size() const noexcept { return m_state->comm.size(); }
const Communicator& Comm::communicator() const noexcept { return m_state->comm; }
const char* Comm::transport_name() const noexcept {
  return m_state->transport == Transport::ucx ? "ucx" : "mpi";
}
int Comm::max_tag() const noexcept { return m_state->max_tag; }
bool Comm::progress() {
  if (!m_state || !m_state->engine) return false;
  {
    std::lock_guard<std::mutex> lock(m_state->mutex);
    if (m_state->rt == nullptr || m_state->rt->on_worker_thread()) return false;
  }
  return m_state->engine->drive();  // nothing once stopped (the engine is then closed)
}

ProgressStats Comm::progress_stats() const noexcept { return m_state->engine->stats(); }
bool Comm::cuda_aware() const noexcept { return m_state->direct; }
const std::string& Comm::cuda_aware_reason() const noexcept { return m_state->direct_reason; }
BufferPathStats Comm::buffer_paths() const noexcept {
  BufferPathStats s;
  s.host = m_state->host_buffers.load(std::memory_order_relaxed);
  s.device = m_state->device_buffers.load(std::memory_order_relaxed);
  return s;
}

namespace {
// A send or receive of `bytes` with `peer`: checks its arguments and numbers it in its
// (peer, tag) channel, which gives the deterministic MPI tag (see CommState::mpi_tag).
Operation point_to_point(detail::CommState& st, OpKind kind, void* buffer, std::size_t bytes,
                         int peer, int tag) {
  const char* what = kind == OpKind::send ? "send" : "recv";
  st.check_peer_and_tag(peer, tag, what);
  Operation op;
  op.kind = kind;
  op.buffer = buffer;
  op.count = checked_count(bytes, what);
  op.peer = peer;
  op.user_tag = tag;
  std::lock_guard<std::mutex> lock(st.mutex);
  auto& sequence = kind == OpKind::send ? st.send_seq : st.recv_seq;
  op.tag = st.mpi_tag(tag, sequence[{peer, tag}]++);
  return op;
}
}  // namespace

Task Comm::send(const DataSlice& data, int dst, int tag, CommOptions options) {
  auto& st = *m_state;
  return st.spawn_block(point_to_point(st, OpKind::send, nullptr, data.bytes(), dst, tag), data,
                        std::move(options));
}

Task Comm::recv(const DataSlice& data, int src, int tag, CommOptions options) {
  auto& st = *m_state;
  return st.spawn_block(point_to_point(st, OpKind::recv, nullptr, data.bytes(), src, tag), data,
                        std::move(options));
}

Task Comm::send(const void* buffer, std::size_t bytes, int dst, int tag, CommOptions options) {
  auto& st = *m_state;
  // const_cast: MPI_Isend and ucp_tag_send_nbx only read the buffer.
  return st.spawn_p2p(point_to_point(st, OpKind::send, const_cast<void*>(buffer), bytes, dst, tag),
                     std::move(options));
}

Task Comm::recv(void* buffer, std::size_t bytes, int src, int tag, CommOptions options) {
  auto& st = *m_state;
  return st.spawn_p2p(point_to_point(st, OpKind::recv, buffer, bytes, src, tag),
                     std::move(options));
}

namespace {
Operation collective(detail::CommState& st, OpKind kind) {
  Operation op;
  op.kind = kind;
  std::lock_guard<std::mutex> lock(st.mutex);
  op.collective_seq = st.collective_seq++;
  return op;
}
}  // namespace

Task Comm::allreduce(const DataSlice& data, Datatype type, ReduceOp reduce, CommOptions options) {
  if (data.bytes() % size_of(type) != 0) {
    throw std::invalid_argument("parla::mpi::allreduce: " + std::to_string(data.bytes()) +
                                " bytes are not a whole number of elements of " +
                                std::to_string(size_of(type)) + " bytes");
  }
  Operation op = collective(*m_state, OpKind::allreduce);
  op.count = checked_count(data.bytes() / size_of(type), "allreduce");
  op.type = mpi_type(type);
  op.op = mpi_op(reduce);
  return m_state->spawn(std::move(op), data, true, true, std::move(options), "allreduce");
}

Task Comm::allreduce(void* buffer, std::size_t count, Datatype type, ReduceOp reduce,
                     CommOptions options) {
  Operation op = collective(*m_state, OpKind::allreduce);
  op.buffer = buffer;
  op.count = checked_count(count, "allreduce");
  op.type = mpi_type(type);
  op.op = mpi_op(reduce);
  return m_state->spawn(std::move(op), DataSlice{}, true, true, std::move(options), "allreduce");
}

Task Comm::bcast(const DataSlice& data, int root, CommOptions options) {
  m_state->check_peer_and_tag(root, 0, "bcast");
  Operation op = collective(*m_state, OpKind::bcast);
  op.count = checked_count(data.bytes(), "bcast");
  op.peer = root;
  const bool is_root = root == rank();
  return m_state->spawn(std::move(op), data, is_root, !is_root, std::move(options), "bcast");
}

Task Comm::bcast(void* buffer, std::size_t bytes, int root, CommOptions options) {
  m_state->check_peer_and_tag(root, 0, "bcast");
  Operation op = collective(*m_state, OpKind::bcast);
  op.buffer = buffer;
  op.count = checked_count(bytes, "bcast");
  op.peer = root;
  return m_state->spawn(std::move(op), DataSlice{}, true, true, std::move(options), "bcast");
}

Task Comm::barrier(CommOptions options) {
  Operation op = collective(*m_state, OpKind::barrier);
  return m_state->spawn(std::move(op), DataSlice{}, false, false, std::move(options), "barrier");
}

void Comm::finish() {
  try {
    m_state->runtime().finish();
  } catch (const std::exception& e) {
    abort(e.what());
  }
}

void Comm::abort(const std::string& message, int code) const { m_state->abort_job(message, code); }

}  // namespace parla::mpi
