#pragma once
/// The progress engine: the one thread through which the runtime makes all its MPI calls.
#include <mpi.h>

#include <parla/completion_token.hpp>
#include <parla/stream.hpp>
#include <parla/wait_driver.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace parla::mpi {

/// What an Operation does once the engine posts it.
enum class OpKind : unsigned char { send, recv, allreduce, bcast, barrier };

/// "send", "recv", "allreduce", "bcast", "barrier".
const char* to_string(OpKind kind) noexcept;

/// One communication for the engine to post and complete. The buffer must stay valid until
/// the token is fulfilled or failed (`keepalive` is released only then, by the pass that
/// completes it: on the engine thread or on a thread driving it in a wait).
struct Operation {
  OpKind kind = OpKind::barrier;
  void* buffer = nullptr;
  int count = 0;                          // elements of `type`
  MPI_Datatype type = MPI_BYTE;
  MPI_Op op = MPI_SUM;                    // allreduce only
  int peer = MPI_PROC_NULL;               // send: destination, recv: source, bcast: root
  int tag = 0;                            // the MPI tag (already mapped, see Comm)
  int user_tag = 0;                       // the tag the program gave, for error messages
  std::uint64_t collective_seq = 0;       // collectives: posted strictly in this order
  CompletionToken token;                  // fulfilled when the request completes
  std::shared_ptr<void> keepalive;        // anything that must outlive the request
  std::function<void()> on_done;          // optional, runs in the completing pass after success
  bool host_memory = false;               // the buffer is known to be host memory (staged)
  /// Set: the engine posts the operation only once this event has fired (device memory
  /// written by stream work, e.g. a send from a CUDA buffer). The engine polls it without
  /// blocking; an error of the event fails the operation. Null: posted at once.
  std::shared_ptr<Event> ready;
};

/// A transport other than MPI for point-to-point operations (send, recv), driven by the
/// progress engine: every call is made by a pass of the engine (on its thread, constructed
/// there too, or on a thread driving it in a wait), one pass at a time.
class P2pTransport {
 public:
  virtual ~P2pTransport() = default;
  /// "ucx".
  [[nodiscard]] virtual const char* name() const noexcept = 0;
  /// Starts a send or a receive. Its completion (or failure) is reported by `take_completed`,
  /// never from inside `post`.
  virtual void post(Operation&& op) = 0;
  /// Drives the transport once; true when something happened.
  virtual bool progress() = 0;
  /// Moves operations that finished since the last call into `out` (error null: success).
  virtual void take_completed(std::vector<std::pair<Operation, std::exception_ptr>>& out) = 0;
  /// Operations posted and not yet handed back by take_completed.
  [[nodiscard]] virtual std::size_t active() const noexcept = 0;
  /// Gives back every operation still active, cancelled where the transport can; the buffers
  /// of those it cannot cancel must stay valid (the engine leaks their keepalive).
  virtual void abandon(std::vector<Operation>& out) = 0;
  /// Closes endpoints and releases the transport's resources (must not hang).
  virtual void shutdown() = 0;
};

/// Makes the point-to-point transport on the engine thread (collective over the ranks).
using P2pTransportFactory = std::function<std::unique_ptr<P2pTransport>()>;

/// Counters of a progress engine (all since it started).
struct ProgressStats {
  std::uint64_t posted = 0;       // requests started
  std::uint64_t completed = 0;    // requests finished (successfully or not)
  std::uint64_t failed = 0;       // operations failed with an MpiError
  std::uint64_t polls = 0;        // MPI_Testsome calls
  std::uint64_t sleeps = 0;       // times the thread went to sleep with nothing outstanding
  std::uint64_t wakeups = 0;      // loop iterations that started after a sleep or back-off
  std::uint64_t driven = 0;       // passes by other threads (waiting, idle workers) that moved something
};

/// Owns one thread that posts operations handed to it (`submit`, from any thread) and tests
/// every outstanding request in one MPI_Testsome per pass. Polling adapts: it spins while
/// requests complete, backs off (yield, then sleeps growing to `max_backoff`) while requests
/// are outstanding but quiet, and sleeps on a condition variable, using no CPU, when nothing
/// is outstanding. Workers never block in MPI: a communication task's body posts its
/// operation with a non-blocking pass of its own when no other thread is making one
/// (`submit_and_post`), else submits and returns.
///
/// It is also a WaitDriver: a thread blocked in a runtime wait, or a cpu worker with no task to
/// run, makes the passes itself while operations are outstanding, and the engine thread naps
/// meanwhile, so an exchange needs no hand-off between threads: the message a rank waits
/// for is seen by a thread already running, and the task it releases runs there. One pass runs at a
/// time (a flag, not a lock: a pass may finish a task whose release reaches `submit`). A
/// submission from a thread that is not a worker does not wake a napping engine: that thread
/// usually waits next and drives; if it does not, the nap (`k_nap`) bounds the delay.
///
/// Collectives must be posted in the same order on every rank (MPI's rule); tasks may become
/// ready in any order, so each collective carries a sequence number given at spawn and the
/// engine posts collective n only after n - 1.
class ProgressEngine final : public WaitDriver {
 public:
  /// Starts the thread. `comm` (the runtime's duplicate) must outlive the engine.
  /// `periodic` runs on the engine thread about every `period` (the Comm's failure watchdog).
  /// `make_p2p`, when set, makes the transport that carries send/recv (collectives stay on
  /// MPI); it runs first on the engine thread, and its exception is rethrown here.
  ProgressEngine(MPI_Comm comm, std::function<void()> periodic = {},
                 std::chrono::microseconds period = std::chrono::milliseconds(100),
                 P2pTransportFactory make_p2p = {});
  /// Stops the thread. Operations still outstanding are cancelled and their tasks fail.
  ~ProgressEngine() override;
  ProgressEngine(const ProgressEngine&) = delete;
  ProgressEngine& operator=(const ProgressEngine&) = delete;

  /// Hands `op` to the engine (thread-safe, never blocks on MPI). `may_defer`: the caller
  /// is not a worker and will probably wait (and drive) soon, so a napping engine is not woken.
  void submit(Operation op, bool may_defer = false);
  /// Hands `op` to the engine and posts it at once with a pass on the calling thread (a
  /// worker running a communication task); when another thread is making a pass, as
  /// `submit(op)`. Never blocks on MPI.
  void submit_and_post(Operation op);

  // WaitDriver: threads blocked in a runtime wait make the passes while this is busy.
  [[nodiscard]] bool busy() const noexcept override {
    return m_outstanding.load(std::memory_order_acquire) > 0;
  }
  void begin() noexcept override;
  bool drive() override;
  void end() noexcept override;
  /// Stops the thread now (idempotent); see the destructor.
  void stop();
  [[nodiscard]] ProgressStats stats() const noexcept;
  /// Operations submitted and not finished yet.
  [[nodiscard]] std::size_t outstanding() const noexcept {
    return m_outstanding.load(std::memory_order_acquire);
  }

 private:
  void run();
  /// Takes the pass flag (false: another thread is making a pass).
  bool try_pass_flag() noexcept {
    return !m_pass_flag.exchange(true, std::memory_order_acquire);
  }
  void release_pass_flag() noexcept { m_pass_flag.store(false, std::memory_order_release); }
  /// Why the engine thread sleeps. `driven`: while waiting threads drive; `linger`: idle but
  /// busy lately (woken by submissions that may not defer); `idle`: idle for a while (every
  /// submission wakes it); `backoff`: requests outstanding but quiet for long (likewise).
  enum class Nap : unsigned char { driven, linger, idle, backoff };
  /// Engine thread: sleeps until woken, `stop`, or `until`.
  void sleep_until(std::chrono::steady_clock::time_point until, Nap kind);
  /// Takes submissions, posts what became ready, tests requests, drives the transport;
  /// true when anything moved.
  bool pass();
  bool take_submissions();
  void post(Operation&& op);
  bool post_ready_events();
  void post_ready_collectives();
  bool test_outstanding();
  void finish(std::size_t index, std::exception_ptr error);
  /// Drops the finished slots in front of the oldest live request (all of them, amortised).
  void compact_requests();
  void fail_everything(const std::string& why);
  void complete(Operation& op, std::exception_ptr error);
  bool progress_p2p();
  void shutdown_p2p(const std::string& why);

  MPI_Comm m_comm;
  std::function<void()> m_periodic;
  std::chrono::microseconds m_period;
  P2pTransportFactory m_make_p2p;
  std::unique_ptr<P2pTransport> m_p2p;  // made on the engine thread, driven by passes
  std::vector<std::pair<Operation, std::exception_ptr>> m_p2p_done;
  std::mutex m_start_mutex;
  std::condition_variable m_started_cv;
  bool m_started = false;
  std::exception_ptr m_start_error;

  enum class Sleep : unsigned char { awake, nap, deep };
  std::mutex m_mutex;                 // guards m_incoming, m_sleep, m_woken; m_stop's writes
  std::condition_variable m_wake;
  std::vector<Operation> m_incoming;
  Sleep m_sleep = Sleep::awake;
  bool m_woken = false;
  std::atomic<bool> m_stop{false};        // read without the lock by the engine's loop
  std::atomic<bool> m_has_incoming{false};
  std::atomic<int> m_drivers{0};          // waiting threads driving now
  std::atomic<bool> m_pass_flag{false};   // held by whichever thread makes a pass

  // Under the pass flag (the engine thread, or a thread driving).
  bool m_closed = false;                  // the engine stopped: passes do nothing
  std::chrono::steady_clock::time_point m_last_progress{};
  // In posting order from m_head; a finished slot keeps a null request until compacted.
  std::vector<MPI_Request> m_requests;  // parallel to m_active
  std::vector<Operation> m_active;
  std::size_t m_head = 0;               // slots before it are all finished
  std::size_t m_live = 0;               // requests posted and not finished
  std::size_t m_rotation = 0;           // where the next pass's rotating part starts
  unsigned m_passes_since_rotation = 0;  // passes since the last that tested the rotating part
  std::vector<std::size_t> m_test_slots;      // the slots a pass tests (many outstanding)
  std::vector<MPI_Request> m_test_requests;   // their requests, as MPI_Testsome takes them
  std::vector<Operation> m_batch;    // take_submissions()'s buffer (traded with m_incoming)
  std::vector<Operation> m_unready;  // waiting for their `ready` event
  std::vector<Operation> m_unready_scratch;  // post_ready_events()'s other buffer
  std::map<std::uint64_t, Operation> m_waiting_collectives;
  std::uint64_t m_next_collective = 0;
  std::vector<int> m_indices;
  std::vector<MPI_Status> m_statuses;
  struct Finished {
    std::size_t slot;
    int error;
    MPI_Status status;
  };
  std::vector<Finished> m_finished;

  std::atomic<std::size_t> m_outstanding{0};
  std::atomic<std::uint64_t> m_posted{0}, m_completed{0}, m_failed{0}, m_polls{0}, m_sleeps{0},
      m_wakeups{0}, m_driven{0};
  std::thread m_thread;  // last: starts after everything above exists
};

}  // namespace parla::mpi
