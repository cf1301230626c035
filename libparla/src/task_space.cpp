#include <parla/error.hpp>
#include <parla/runtime.hpp>
#include <parla/task_space.hpp>

#include <algorithm>
#include <array>

#include "runtime_impl.hpp"
#include "task_space_state.hpp"

namespace parla {

namespace detail {

TaskSpaceState::TaskSpaceState(RuntimeImpl& runtime, std::string name, std::vector<std::int64_t> shape)
    : m_runtime(&runtime), m_name(std::move(name)), m_shape(std::move(shape)) {
  if (m_shape.empty()) return;
  std::int64_t n = 1;
  for (std::int64_t extent : m_shape) {
    if (extent <= 0 || n > k_max_dense / extent) return;  // empty, or too large: the hash map
    n *= extent;
  }
  m_dense_size = static_cast<std::size_t>(n);
  m_dense = std::make_unique<std::atomic<TaskRecord*>[]>(m_dense_size);  // value-initialised: null
}

TaskSpaceState::~TaskSpaceState() {
  // Every element referenced but never spawned fails (its waiters and dependents learn why).
  RuntimeImpl* rt = m_runtime.load(std::memory_order_acquire);
  auto placeholder = [rt](const TaskRecord* rec) {
    return rt != nullptr && rec->m_state.load(std::memory_order_acquire) == TaskState::placeholder;
  };
  auto fail = [&](const TaskKey& key, TaskRecord* rec) {
    try {
      rt->fail_placeholder(rec, "task " + element_name(key) +
                                    " was referenced (as a dependency or by a wait) but never "
                                    "spawned before TaskSpace '" + m_name +
                                    "' was destroyed; spawn it, or remove the reference");
    } catch (...) {
      // Out of memory while reporting: nothing better to do in a destructor.
    }
  };
  for (std::size_t i = 0; i < m_dense_size; ++i) {
    // relaxed: the space's destruction happens after every use of it.
    if (TaskRecord* rec = m_dense[i].load(std::memory_order_relaxed)) {
      if (placeholder(rec)) fail(dense_key(i), rec);  // the key is only built for a report
      rec->release();  // the slot's reference
    }
  }
  for (auto& [key, rec] : m_elements) {
    if (placeholder(rec.get())) fail(key, rec.get());
  }
}

RuntimeImpl& TaskSpaceState::runtime_ref() const {
  RuntimeImpl* rt = m_runtime.load(std::memory_order_acquire);
  if (rt == nullptr) throw Error("TaskSpace '" + m_name + "' outlived its runtime");
  return *rt;
}

void TaskSpaceState::detach_runtime() noexcept { m_runtime.store(nullptr, std::memory_order_release); }

std::size_t TaskSpaceState::dense_index(const TaskKey& key) const noexcept {
  std::size_t index = 0;
  for (std::size_t d = 0; d < m_shape.size(); ++d) {
    index = index * static_cast<std::size_t>(m_shape[d]) + static_cast<std::size_t>(key[d]);
  }
  return index;
}

TaskKey TaskSpaceState::dense_key(std::size_t index) const {
  std::array<std::int64_t, TaskKey::max_rank> k{};
  for (std::size_t d = m_shape.size(); d-- > 0;) {
    k[d] = static_cast<std::int64_t>(index % static_cast<std::size_t>(m_shape[d]));
    index /= static_cast<std::size_t>(m_shape[d]);
  }
  switch (m_shape.size()) {
    case 1: return TaskKey(k[0]);
    case 2: return TaskKey{k[0], k[1]};
    case 3: return TaskKey{k[0], k[1], k[2]};
    default: return TaskKey{k[0], k[1], k[2], k[3]};
  }
}

Ref<TaskRecord> TaskSpaceState::make_placeholder(RuntimeImpl& rt, const TaskKey& key) const {
  auto rec = Ref<TaskRecord>::adopt(new TaskRecord());  // NOLINT: owned by the intrusive count
  rt.on_record_created(*rec);
  rec->cold().name = element_name(key);
  return rec;
}

bool TaskSpaceState::in_shape(const TaskKey& key) const noexcept {
  if (m_shape.empty()) return true;
  bool ok = !key.is_string() && key.rank() == m_shape.size();
  for (std::size_t d = 0; ok && d < key.rank(); ++d) ok = key[d] >= 0 && key[d] < m_shape[d];
  return ok;
}

void TaskSpaceState::check_key(const TaskKey& key) const {
  if (in_shape(key)) return;
  std::string shape;
  for (std::size_t d = 0; d < m_shape.size(); ++d) shape += (d ? ", " : "") + std::to_string(m_shape[d]);
  throw Error("key " + element_name(key) + " is outside TaskSpace '" + m_name + "' of shape (" + shape +
              "); keys are " + std::to_string(m_shape.size()) + " integers k with 0 <= k[d] < shape[d]");
}

Ref<TaskRecord> TaskSpaceState::get_or_create(const TaskKey& key) {
  check_key(key);
  RuntimeImpl* rt = m_runtime.load(std::memory_order_acquire);
  if (rt == nullptr) throw Error("TaskSpace '" + m_name + "' outlived its runtime");
  if (m_dense) {
    std::atomic<TaskRecord*>& slot = m_dense[dense_index(key)];
    // acquire: the record as its creator published it.
    TaskRecord* rec = slot.load(std::memory_order_acquire);
    if (rec == nullptr) {
      Ref<TaskRecord> fresh = make_placeholder(*rt, key);
      // release: publishes the new record; acquire (failure): the winner's record.
      if (slot.compare_exchange_strong(rec, fresh.get(), std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        rec = fresh.detach();  // the slot's reference
      }  // else another thread made it first: ours dies unused
    }
    return Ref<TaskRecord>::share(rec);
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  auto [it, inserted] = m_elements.try_emplace(key);
  if (inserted) it->second = make_placeholder(*rt, key);
  return it->second;
}

Ref<TaskRecord> TaskSpaceState::find(const TaskKey& key) {
  if (m_dense) {
    if (!in_shape(key)) return {};  // never referenced, as in the hash map
    // acquire: as in get_or_create().
    return Ref<TaskRecord>::share(m_dense[dense_index(key)].load(std::memory_order_acquire));
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  auto it = m_elements.find(key);
  return it == m_elements.end() ? Ref<TaskRecord>() : it->second;
}

std::vector<std::pair<TaskKey, Ref<TaskRecord>>> TaskSpaceState::snapshot() {
  std::vector<std::pair<TaskKey, Ref<TaskRecord>>> out;
  for (std::size_t i = 0; i < m_dense_size; ++i) {
    // acquire: as in get_or_create().
    if (TaskRecord* rec = m_dense[i].load(std::memory_order_acquire)) {
      out.emplace_back(dense_key(i), Ref<TaskRecord>::share(rec));
    }
  }
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    out.insert(out.end(), m_elements.begin(), m_elements.end());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::size_t TaskSpaceState::size() {
  std::size_t n = 0;
  for (std::size_t i = 0; i < m_dense_size; ++i) {
    if (m_dense[i].load(std::memory_order_relaxed) != nullptr) ++n;  // relaxed: a count
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  return n + m_elements.size();
}

std::string TaskSpaceState::element_name(const TaskKey& key) const {
  // One allocation: every keyed spawn names its element.
  std::string s;
  s.reserve(m_name.size() + 4 + (key.is_string() ? key.string().size() : 21 * key.rank()));
  s += m_name;
  s += key.is_string() ? "[\"" : "[";
  key.append_to(s);
  s += key.is_string() ? "\"]" : "]";
  return s;
}

}  // namespace detail

// ---- TaskRef ---------------------------------------------------------------------------------

std::string TaskRef::name() const {
  if (!m_space) return "<empty TaskRef>";
  return m_space->element_name(m_key);
}

Task TaskRef::task() const {
  if (!m_space) throw Error("an empty TaskRef has no task; index a TaskSpace (T[i])");
  return Task(m_space->get_or_create(m_key));
}

bool TaskRef::spawned() const {
  if (!m_space) return false;
  auto rec = m_space->find(m_key);
  return rec && rec->state() != TaskState::placeholder;
}

// ---- TaskSlice -------------------------------------------------------------------------------

TaskSlice::TaskSlice(std::shared_ptr<detail::TaskSpaceState> space, std::vector<std::int64_t> lo,
                     std::vector<std::int64_t> hi)
    : m_space(std::move(space)), m_lo(std::move(lo)), m_hi(std::move(hi)) {
  if (m_lo.size() != m_hi.size() || m_lo.empty() || m_lo.size() > TaskKey::max_rank) {
    throw Error("a TaskSlice needs lo and hi of the same rank (1 to " + std::to_string(TaskKey::max_rank) + ")");
  }
}

std::vector<TaskKey> TaskSlice::keys() const {
  std::vector<TaskKey> out;
  for (std::size_t d = 0; d < m_lo.size(); ++d) {
    if (m_hi[d] <= m_lo[d]) return out;
  }
  std::vector<std::int64_t> k = m_lo;
  for (;;) {
    TaskKey key;
    switch (k.size()) {
      case 1: key = TaskKey(k[0]); break;
      case 2: key = TaskKey({k[0], k[1]}); break;
      case 3: key = TaskKey({k[0], k[1], k[2]}); break;
      default: key = TaskKey({k[0], k[1], k[2], k[3]}); break;
    }
    out.push_back(std::move(key));
    std::size_t d = k.size();
    while (d > 0) {
      --d;
      if (++k[d] < m_hi[d]) break;
      k[d] = m_lo[d];
      if (d == 0) return out;
    }
  }
}

std::vector<TaskRef> TaskSlice::elements() const {
  std::vector<TaskRef> out;
  for (auto& k : keys()) out.emplace_back(m_space, std::move(k));
  return out;
}

std::string TaskSlice::name() const {
  std::string s = m_space ? m_space->name() : std::string("<empty>");
  s += '[';
  for (std::size_t d = 0; d < m_lo.size(); ++d) {
    s += (d ? ", " : "") + std::to_string(m_lo[d]) + ":" + std::to_string(m_hi[d]);
  }
  return s + ']';
}

// ---- TaskSpace -------------------------------------------------------------------------------

TaskSpace::TaskSpace(Runtime& runtime, std::string name) : TaskSpace(runtime, std::move(name), {}) {}

TaskSpace::TaskSpace(Runtime& runtime, std::string name, std::vector<std::int64_t> shape)
    : m_state(std::make_shared<detail::TaskSpaceState>(runtime.impl(), std::move(name), std::move(shape))) {
  if (m_state->shape().size() > TaskKey::max_rank) {
    throw Error("TaskSpace '" + m_state->name() + "' has " + std::to_string(m_state->shape().size()) +
                " dimensions; at most " + std::to_string(TaskKey::max_rank) + " are supported");
  }
  runtime.impl().register_space(m_state);
}

TaskRef TaskSpace::operator[](TaskKey key) const { return TaskRef(m_state, std::move(key)); }

TaskSlice TaskSpace::range(std::int64_t lo, std::int64_t hi) const { return TaskSlice(m_state, {lo}, {hi}); }

TaskSlice TaskSpace::range(std::vector<std::int64_t> lo, std::vector<std::int64_t> hi) const {
  return TaskSlice(m_state, std::move(lo), std::move(hi));
}

const std::string& TaskSpace::name() const noexcept { return m_state->name(); }

std::vector<TaskRef> TaskSpace::elements() const {
  std::vector<TaskRef> out;
  for (auto& [key, rec] : m_state->snapshot()) out.emplace_back(m_state, key);
  return out;
}

std::vector<std::pair<TaskRef, Task>> TaskSpace::tasks() const {
  std::vector<std::pair<TaskRef, Task>> out;
  for (auto& [key, rec] : m_state->snapshot()) out.emplace_back(TaskRef(m_state, key), Task(std::move(rec)));
  return out;
}

std::size_t TaskSpace::size() const { return m_state->size(); }

}  // namespace parla
