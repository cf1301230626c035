// TaskRecord: the runtime's representation of one task. Internal; user code holds `Task`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>

#include <parla/detail/ref.hpp>
#include <parla/error.hpp>
#include <parla/fwd.hpp>
#include <parla/detail/task_function.hpp>
#include <parla/resources.hpp>
#include <parla/task_state.hpp>

namespace parla::detail {

class TaskRecord;
struct ResolvedPlacement;
struct TaskData;

struct Edge;
/// The sentinel that closes a successor list.
Edge* closed_list() noexcept;
/// The sentinel an edge's `next` holds once its predecessor no longer needs the edge (it
/// walked it, or it had finished before the edge could be pushed).
Edge* walked_edge() noexcept;

/// The deadlock report reads predecessors through the edges of waiting tasks, which do not
/// own them. While a report runs, records whose last reference goes are kept (not freed)
/// until it ends; see TaskRecord::pred_at and RuntimeImpl::describe_blocked.
void begin_inspection() noexcept;
void end_inspection() noexcept;

/// A successor edge: what a finishing predecessor's walk reads. It lives inside the successor
/// (all four inline edges in one cache line) and is pushed onto the predecessor's lock-free
/// successor list. The rest of the edge (the predecessor, the runahead flag and event) is
/// kept by the successor at the same index: the walk of a plain task touches one line of each
/// successor for its edges, not one per edge.
struct Edge {
  TaskRecord* succ = nullptr;
  /// The next edge of the predecessor's list; walked_edge() once the predecessor is done
  /// with it.
  std::atomic<Edge*> next{nullptr};
};

/// A body's failure, shared by the failed task and every task it cancelled.
struct Failure : std::enable_shared_from_this<Failure> {
  std::string task_name;
  std::exception_ptr error;
  /// Set once some wait rethrew it, so wait_all()/the destructor do not report it twice.
  std::atomic<bool> reported{false};
  /// When the body failed (for watchdogs that end a job whose failure nobody picks up).
  std::chrono::steady_clock::time_point when = std::chrono::steady_clock::now();
};

/// What most tasks never use, kept out of the record (made on first use, see
/// TaskRecord::cold()): a plain cpu task's record is four cache lines, and every line of it
/// moves between cores once or twice per task.
struct TaskCold {
  TaskCold();
  TaskCold(const TaskCold&) = delete;
  TaskCold& operator=(const TaskCold&) = delete;
  ~TaskCold();

  ResultBox result;  // the body's return value (bodies returning void leave it empty)
  std::string name;  // the key's name or the `name` option
  std::exception_ptr error;  // body's exception (guarded by k_has_error)
  std::shared_ptr<Failure> failure;
  std::unique_ptr<ResolvedPlacement> own_placement;
  std::uint64_t trace_id = 0;  // only when the runtime traces
  std::size_t memory = 0;      // bytes reserved on each device of the mask
  /// Runahead events of the inline edges (GPU tasks on one device).
  std::shared_ptr<Event> inline_events[4];
  /// More than four predecessors: every edge and its parts here instead (set by the spawn
  /// before its first edge is pushed).
  std::unique_ptr<Edge[]> heap_edges;
  std::unique_ptr<TaskRecord*[]> heap_preds;
  std::unique_ptr<std::atomic<std::uint8_t>[]> heap_released;
  std::unique_ptr<std::shared_ptr<Event>[]> heap_events;
};

// final: the record pool's blocks are sizeof(TaskRecord). Aligned to a cache line: the fields
// are ordered by the line they share with what the same code path touches.
class alignas(64) TaskRecord final {
 public:
  // Flags in m_flags.
  static constexpr std::uint8_t k_spawned = 1;     // spawn() bound a body to this record
  static constexpr std::uint8_t k_waited = 2;      // some thread waits for this task
  static constexpr std::uint8_t k_deferred = 4;    // body called defer_completion()
  static constexpr std::uint8_t k_has_error = 8;   // m_error is written (first writer wins)
  static constexpr std::uint8_t k_counted_load = 16;  // devices of m_device_mask count it as load
  static constexpr std::uint8_t k_outstanding = 32;   // counted in the runtime's outstanding tasks
  static constexpr std::uint8_t k_token = 64;         // body obtained a CompletionToken
  static constexpr std::uint8_t k_runahead = 128;     // released some successors early (GPU)

  TaskRecord();
  TaskRecord(const TaskRecord&) = delete;
  // Records come from a per-thread pool (src/record_pool.cpp), not one malloc per spawn.
  static void* operator new(std::size_t bytes);
  static void operator delete(void* p) noexcept;
  TaskRecord& operator=(const TaskRecord&) = delete;
  ~TaskRecord();

  void add_ref() noexcept {
    // relaxed: a new reference is always made from an existing one, which keeps the record
    // alive; no other memory is published by the increment.
    m_refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    // acq_rel: the last release must see every write made through other references before
    // it destroys the record.
    if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }

  [[nodiscard]] TaskState state() const noexcept {
    // acquire: pairs with the release (seq_cst) store of a final state, which publishes the
    // result and failure written before it.
    return m_state.load(std::memory_order_acquire);
  }
  /// Whether the task finished (completed, failed or cancelled), read from its successor
  /// list, which finalize() closes after storing the final state. seq_cst: the waits' side
  /// of the Dekker pairs with finalize() (see there); state() is final once this is true.
  [[nodiscard]] bool finished() const noexcept {
    return m_successors.load(std::memory_order_seq_cst) == closed_list();
  }
  /// The key's name, the `name` option, or "task@<address>" for an unnamed task.
  [[nodiscard]] std::string display_name() const;
  /// The key's name or the `name` option; empty for an unnamed task.
  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] const ResultBox& result() const noexcept;
  /// The failure that made this task failed or cancelled (null otherwise).
  [[nodiscard]] const std::shared_ptr<Failure>& failure() const noexcept;
  /// The cold part, made on first use (any thread; the first to install it wins).
  [[nodiscard]] TaskCold& cold();
  /// The cold part if some thread made it, else null. acquire: pairs with its installation.
  [[nodiscard]] TaskCold* cold_if_any() const noexcept { return m_cold.load(std::memory_order_acquire); }

  /// The edges' parts, by index (0 .. m_num_edges - 1). Usable by a predecessor as soon as
  /// its edge is in its list (edge_index() reads only what the spawn wrote before pushing the
  /// edge, not m_num_edges, which is set after the last push).
  [[nodiscard]] std::uint32_t edge_index(const Edge* e) const noexcept {
    if (e >= m_inline_edges && e < m_inline_edges + k_inline_edges) {
      return static_cast<std::uint32_t>(e - m_inline_edges);
    }
    return static_cast<std::uint32_t>(e - cold_if_any()->heap_edges.get());
  }
  /// The i-th predecessor. Not owned: valid while edge i's `next` is not walked_edge(), or
  /// while a report runs (begin_inspection()) if it was not walked when the report began.
  [[nodiscard]] TaskRecord*& pred_at(std::uint32_t i) noexcept {
    TaskCold* c = heap_part();
    return c != nullptr ? c->heap_preds[i] : m_inline_preds[i];
  }
  [[nodiscard]] std::atomic<std::uint8_t>& released_at(std::uint32_t i) noexcept {
    TaskCold* c = heap_part();
    return c != nullptr ? c->heap_released[i] : m_inline_released[i];
  }
  /// The edges (inline, or the cold part's when there are more than four).
  [[nodiscard]] Edge* edge_array() noexcept {
    TaskCold* c = heap_part();
    return c != nullptr ? c->heap_edges.get() : m_inline_edges;
  }
  /// The runahead event slot of edge i (makes the cold part).
  [[nodiscard]] std::shared_ptr<Event>& event_at(std::uint32_t i) {
    TaskCold& c = cold();
    return c.heap_edges ? c.heap_events[i] : c.inline_events[i];
  }
  /// Gives the task room for `n` edges: the inline ones, or (more than four) the cold part's.
  /// Returns the first edge. The spawn calls it before it pushes any edge.
  Edge* prepare_edges(std::uint32_t n);

  static constexpr std::uint32_t k_inline_edges = 4;

  // ---- fields (used by the runtime; see src/runtime_impl.cpp) -----------------------------
  // Line 0: the counts, the successor list and what readiness and enqueueing read. A task
  // is made ready by whichever thread finishes its last predecessor, usually not the one that
  // spawned it, and every line it touches there is a miss.
  std::atomic<std::uint32_t> m_refs{1};
  /// Unfinished predecessors, plus one held by spawn() until it has wired every edge.
  std::atomic<std::int32_t> m_pending{1};
  std::atomic<TaskState> m_state{TaskState::placeholder};
  std::atomic<std::uint8_t> m_flags{0};
  /// Parties that must finish before the task completes: the body, plus its completion
  /// token when the body deferred completion.
  std::atomic<std::uint8_t> m_finish_parties{1};
  bool m_urgent = false;      // SpawnOptions::priority > 0: taken before the device's other tasks
  bool m_run_inline = false;  // SpawnOptions::run_inline (and a cpu task without resources)
  /// The body names the task (TaskFunction::describes): set before the spawn publishes the
  /// record, never changed, so any thread may read it; the body is then kept until the end.
  bool m_body_names = false;
  std::int16_t m_primary_device = 0;  // device whose worker runs the body
  /// Lock-free successor list; `closed_list()` once the task finished.
  std::atomic<Edge*> m_successors{nullptr};
  /// Intrusive link of the injection queues.
  std::atomic<TaskRecord*> m_next{nullptr};
  /// The failure of a predecessor that cancels this task (first writer wins). Owned by the
  /// runtime's failure list, which outlives every task of the runtime.
  std::atomic<Failure*> m_cancel_cause{nullptr};
  const ResolvedPlacement* m_placement = nullptr;
  std::uint64_t m_device_mask = 0;  // devices held while running
  /// Also here: a spawn reads it from each of its predecessors (which must be of its
  /// runtime) and pushes an edge onto the list above.
  RuntimeImpl* m_runtime = nullptr;

  // Line 1: the body (captures up to 56 bytes inline).
  TaskFunction m_body;

  // Line 2: up to four predecessors (a 1-D stencil's three, a 2-D star's four) need no
  // allocation. The edges share one cache line: each predecessor that finishes on another
  // core misses on it once, and a predecessor finishing after another on the same core not
  // at all.
  alignas(64) Edge m_inline_edges[k_inline_edges];

  // Line 3: the rest of the inline edges, and what running and finishing read.
  /// The predecessors, kept so a deadlock report can name what a task waits for. They hold
  /// no reference (a spawn would count each predecessor up and the successor count it down
  /// again on another core); see pred_at().
  TaskRecord* m_inline_preds[k_inline_edges] = {};
  /// Runahead (GPU tasks on one device): 1 when the predecessor released this edge once its
  /// body was enqueued (the successor's stream then waits for its event), 2 when it released
  /// it on completion. Whoever moves it from 0 decrements the successor's count.
  std::atomic<std::uint8_t> m_inline_released[k_inline_edges] = {};
  std::uint32_t m_num_edges = 0;
  /// Data accesses, streams and pins: null for plain cpu tasks (the hot path).
  std::unique_ptr<TaskData> m_data;
  std::atomic<TaskCold*> m_cold{nullptr};
  std::int64_t m_vcus_units = 0;  // reserved on each device of m_device_mask

 private:
  void destroy() noexcept;
  /// The cold part when the edges live there (more than four), else null.
  [[nodiscard]] TaskCold* heap_part() const noexcept {
    TaskCold* c = cold_if_any();
    return c != nullptr && c->heap_edges ? c : nullptr;
  }
};

/// `what()` of an exception, or a note that it is not a std::exception.
[[nodiscard]] std::string exception_text(const std::exception_ptr& e);

/// The TaskError a wait on `t` reports: "task 'X' failed: ..." for the task that failed, or
/// "task 'Y' was cancelled because task 'X' failed: ..." for a dependent. Marks the failure
/// reported (so the runtime's end does not print it again). `t` must have a failure.
[[nodiscard]] TaskError task_error_of(const TaskRecord& t);

/// The TaskError for the task that raised `f` ("task 'X' failed: ..."); does not mark it.
[[nodiscard]] TaskError task_error_of(const Failure& f);

}  // namespace parla::detail
