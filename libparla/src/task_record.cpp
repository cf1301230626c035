#include <parla/detail/task_record.hpp>

#include <cstdio>
#include <mutex>
#include <vector>

#include "block_state.hpp"
#include "record_pool.hpp"
#include "runtime_impl.hpp"

namespace parla::detail {

namespace {
constinit Edge k_closed_sentinel{};
constinit Edge k_walked_sentinel{};

// Reports in progress (any runtime), and the records whose last reference went meanwhile.
std::atomic<int> g_inspections{0};
std::mutex& kept_mutex() {
  static std::mutex* m = new std::mutex();  // NOLINT: never destroyed (records outlive statics)
  return *m;
}
std::vector<TaskRecord*>& kept_records() {
  static auto* v = new std::vector<TaskRecord*>();  // NOLINT: as above
  return *v;
}
}  // namespace

Edge* closed_list() noexcept { return &k_closed_sentinel; }
Edge* walked_edge() noexcept { return &k_walked_sentinel; }

void begin_inspection() noexcept {
  // seq_cst: the report then reads edges' `next` (seq_cst); a predecessor stores walked_edge()
  // there and then, before its record can be freed, performs seq_cst read-modify-writes and
  // reads this count in destroy(). One of the two sees the other: either the report sees the
  // edge walked and does not read the predecessor, or the predecessor's record is kept.
  g_inspections.fetch_add(1, std::memory_order_seq_cst);
}

void end_inspection() noexcept {
  std::vector<TaskRecord*> kept;
  {
    std::lock_guard<std::mutex> lock(kept_mutex());
    if (g_inspections.fetch_sub(1, std::memory_order_seq_cst) == 1) kept.swap(kept_records());
  }
  for (TaskRecord* r : kept) delete r;  // NOLINT(cppcoreguidelines-owning-memory)
}

std::string exception_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

TaskError task_error_of(const TaskRecord& t) {
  const std::shared_ptr<Failure>& f = t.failure();
  if (!f) {
    throw Error("task '" + t.display_name() + "' has no recorded failure");
  }
  f->reported.store(true, std::memory_order_relaxed);
  if (t.state() == TaskState::failed) {
    return task_error_of(*f);
  }
  return TaskError("task '" + t.display_name() + "' was cancelled because task '" +
                       f->task_name + "' failed: " + exception_text(f->error),
                   f->task_name, f->error);
}

TaskError task_error_of(const Failure& f) {
  return TaskError("task '" + f.task_name + "' failed: " + exception_text(f.error), f.task_name,
                   f.error);
}

void* TaskRecord::operator new(std::size_t bytes) { return pool_allocate_record(bytes); }
void TaskRecord::operator delete(void* p) noexcept { pool_free_record(p); }

static_assert(sizeof(TaskRecord) == 256, "a plain task's record is four cache lines");

TaskCold::TaskCold() = default;
TaskCold::~TaskCold() = default;

TaskRecord::TaskRecord() = default;
TaskRecord::~TaskRecord() {
  delete m_cold.load(std::memory_order_relaxed);  // NOLINT(cppcoreguidelines-owning-memory)
}

TaskCold& TaskRecord::cold() {
  if (TaskCold* c = cold_if_any()) return *c;
  auto* made = new TaskCold();  // NOLINT(cppcoreguidelines-owning-memory): owned by m_cold
  TaskCold* expected = nullptr;
  // acq_rel: publishes the new part; on failure, acquires the winner's.
  if (m_cold.compare_exchange_strong(expected, made, std::memory_order_acq_rel, std::memory_order_acquire)) {
    return *made;
  }
  delete made;  // NOLINT(cppcoreguidelines-owning-memory)
  return *expected;
}

const std::string& TaskRecord::name() const noexcept {
  static const std::string k_none;
  const TaskCold* c = cold_if_any();
  return c != nullptr ? c->name : k_none;
}

const ResultBox& TaskRecord::result() const noexcept {
  static const ResultBox k_none{};
  const TaskCold* c = cold_if_any();
  return c != nullptr ? c->result : k_none;
}

const std::shared_ptr<Failure>& TaskRecord::failure() const noexcept {
  static const std::shared_ptr<Failure> k_none;
  const TaskCold* c = cold_if_any();
  return c != nullptr ? c->failure : k_none;
}

Edge* TaskRecord::prepare_edges(std::uint32_t n) {
  if (n <= k_inline_edges) return m_inline_edges;
  TaskCold& c = cold();
  c.heap_edges = std::make_unique<Edge[]>(n);
  c.heap_preds = std::make_unique<TaskRecord*[]>(n);
  c.heap_released = std::make_unique<std::atomic<std::uint8_t>[]>(n);
  c.heap_events = std::make_unique<std::shared_ptr<Event>[]>(n);
  return c.heap_edges.get();
}

void TaskRecord::destroy() noexcept {
  // seq_cst: see begin_inspection(). The last release was a seq_cst-ordered read-modify-write
  // on x86 and a release one elsewhere; the common case is one load and no lock.
  if (g_inspections.load(std::memory_order_seq_cst) != 0) {
    std::lock_guard<std::mutex> lock(kept_mutex());
    if (g_inspections.load(std::memory_order_relaxed) != 0) {
      try {
        kept_records().push_back(this);
      } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory: leak it rather than free it
      }
      return;
    }
  }
  delete this;  // NOLINT(cppcoreguidelines-owning-memory): the intrusive count owns records
}

std::string TaskRecord::display_name() const {
  if (const std::string& n = name(); !n.empty()) return n;
  if (m_body_names) {
    std::string described;
    m_body.describe(described);
    if (!described.empty()) return described;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "task@%p", static_cast<const void*>(this));
  return buf;
}

}  // namespace parla::detail
