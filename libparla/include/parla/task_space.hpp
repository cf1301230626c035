// TaskSpace: a named collection of tasks addressed by key (T[i], T[{i, j}], T["name"]).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <parla/fwd.hpp>
#include <parla/task.hpp>
#include <parla/task_key.hpp>

namespace parla {

/// One element of a TaskSpace, by key. It may be referenced (as a dependency, or waited
/// for) before it is spawned: the element then exists as a placeholder that its dependents
/// wait for. Use it as `SpawnOptions::key` to spawn the task.
class TaskRef {
 public:
  TaskRef() = default;
  TaskRef(std::shared_ptr<detail::TaskSpaceState> space, TaskKey key)
      : m_space(std::move(space)), m_key(std::move(key)) {}

  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_space); }
  [[nodiscard]] const TaskKey& key() const noexcept { return m_key; }
  /// "T[3]".
  [[nodiscard]] std::string name() const;
  /// The task (creating its placeholder if it was never referenced).
  [[nodiscard]] Task task() const;
  /// Whether the element has been spawned.
  [[nodiscard]] bool spawned() const;
  /// The body's return value; see Task::get.
  template <class R>
  [[nodiscard]] const R& result() const {
    return task().get<R>();
  }
  [[nodiscard]] const std::shared_ptr<detail::TaskSpaceState>& space() const noexcept { return m_space; }

 private:
  std::shared_ptr<detail::TaskSpaceState> m_space;
  TaskKey m_key;
};

/// A rectangular range of integer keys of a TaskSpace: `T.range(0, 4)` is T[0..3];
/// `T.range({0, 0}, {2, 3})` is T[{i, j}] for 0 <= i < 2, 0 <= j < 3. As a dependency it
/// means every element of the range (placeholders included).
class TaskSlice {
 public:
  TaskSlice() = default;
  TaskSlice(std::shared_ptr<detail::TaskSpaceState> space, std::vector<std::int64_t> lo,
            std::vector<std::int64_t> hi);

  /// The keys of the slice, in row-major order.
  [[nodiscard]] std::vector<TaskKey> keys() const;
  [[nodiscard]] std::vector<TaskRef> elements() const;
  /// "T[0:4]", "T[0:2, 0:3]".
  [[nodiscard]] std::string name() const;
  [[nodiscard]] const std::shared_ptr<detail::TaskSpaceState>& space() const noexcept { return m_space; }

 private:
  std::shared_ptr<detail::TaskSpaceState> m_space;
  std::vector<std::int64_t> m_lo;
  std::vector<std::int64_t> m_hi;
};

/// A named collection of tasks. Copies share the same space. The space keeps its elements
/// (and their results) alive while any copy exists; it must not outlive its Runtime. When
/// the last copy goes away, elements that were referenced but never spawned fail (so their
/// dependents are cancelled instead of waiting forever).
class TaskSpace {
 public:
  /// A space of any keys.
  TaskSpace(Runtime& runtime, std::string name);
  /// A space of integer keys bounded by `shape` (each key k satisfies 0 <= k[d] < shape[d]).
  /// Up to 2^20 elements in all, the elements are kept in a dense array (8 bytes each,
  /// allocated here): a key is then found without a hash or a lock, which makes keyed spawns
  /// from several threads at once cheaper. Larger shapes use the same hash map as unshaped
  /// spaces.
  TaskSpace(Runtime& runtime, std::string name, std::vector<std::int64_t> shape);

  [[nodiscard]] TaskRef operator[](TaskKey key) const;
  [[nodiscard]] TaskRef operator[](std::initializer_list<std::int64_t> key) const {
    return (*this)[TaskKey(key)];
  }
  /// 1-d range [lo, hi).
  [[nodiscard]] TaskSlice range(std::int64_t lo, std::int64_t hi) const;
  /// N-d range: lo[d] <= k[d] < hi[d].
  [[nodiscard]] TaskSlice range(std::vector<std::int64_t> lo, std::vector<std::int64_t> hi) const;

  [[nodiscard]] const std::string& name() const noexcept;
  /// Every element (spawned or placeholder), ordered by key.
  [[nodiscard]] std::vector<TaskRef> elements() const;
  /// Every element with its task, ordered by key. Unlike `elements()[i].task()` this creates
  /// nothing, so it also works once the runtime has ended.
  [[nodiscard]] std::vector<std::pair<TaskRef, Task>> tasks() const;
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] const std::shared_ptr<detail::TaskSpaceState>& state() const noexcept { return m_state; }

 private:
  std::shared_ptr<detail::TaskSpaceState> m_state;
};

}  // namespace parla
