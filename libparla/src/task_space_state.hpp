// TaskSpaceState: the shared state behind TaskSpace handles.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <parla/detail/ref.hpp>
#include <parla/detail/task_record.hpp>
#include <parla/task_key.hpp>

namespace parla::detail {

class TaskSpaceState {
 public:
  /// A shape of at most this many elements keeps them in a dense array (8 bytes a slot).
  static constexpr std::int64_t k_max_dense = std::int64_t{1} << 20;

  TaskSpaceState(RuntimeImpl& runtime, std::string name, std::vector<std::int64_t> shape);
  TaskSpaceState(const TaskSpaceState&) = delete;
  TaskSpaceState& operator=(const TaskSpaceState&) = delete;
  /// Fails elements that were referenced but never spawned (see TaskSpace).
  ~TaskSpaceState();

  /// The element's record, created as a placeholder on first reference. Throws parla::Error
  /// for a key outside the shape.
  Ref<TaskRecord> get_or_create(const TaskKey& key);
  /// The element's record, or null if never referenced.
  Ref<TaskRecord> find(const TaskKey& key);
  /// Every element, ordered by key.
  std::vector<std::pair<TaskKey, Ref<TaskRecord>>> snapshot();
  std::size_t size();

  [[nodiscard]] std::string element_name(const TaskKey& key) const;
  [[nodiscard]] const std::string& name() const noexcept { return m_name; }
  [[nodiscard]] const std::vector<std::int64_t>& shape() const noexcept { return m_shape; }
  /// The runtime; throws parla::Error once the runtime is gone.
  [[nodiscard]] RuntimeImpl& runtime_ref() const;
  /// Called by a dying runtime: the space must not call back into it.
  void detach_runtime() noexcept;

 private:
  [[nodiscard]] bool in_shape(const TaskKey& key) const noexcept;
  /// Throws parla::Error, naming the shape, unless in_shape(key).
  void check_key(const TaskKey& key) const;
  [[nodiscard]] std::size_t dense_index(const TaskKey& key) const noexcept;
  [[nodiscard]] TaskKey dense_key(std::size_t index) const;
  /// A new placeholder record for `key` (one reference, the caller's).
  Ref<TaskRecord> make_placeholder(RuntimeImpl& rt, const TaskKey& key) const;

  // acquire/release: cleared by detach_runtime() while spawns may still read it (a user
  // error, reported as "outlived its runtime").
  std::atomic<RuntimeImpl*> m_runtime;
  std::string m_name;
  std::vector<std::int64_t> m_shape;
  /// Shaped spaces up to k_max_dense elements: one slot per element, in key order, set once
  /// (CAS) to its record, which the slot holds a reference to. Found without a lock or a
  /// hash, so spawners on several threads do not serialise on the space.
  std::unique_ptr<std::atomic<TaskRecord*>[]> m_dense;
  std::size_t m_dense_size = 0;
  std::mutex m_mutex;  // guards m_elements
  std::unordered_map<TaskKey, Ref<TaskRecord>> m_elements;
};

}  // namespace parla::detail
