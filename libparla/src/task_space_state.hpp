// TaskSpaceState: the shared state behind TaskSpace handles.
#pragma once

#include <cstdint>
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
  TaskSpaceState(RuntimeImpl& runtime, std::string name, std::vector<std::int64_t> shape)
      : m_runtime(&runtime), m_name(std::move(name)), m_shape(std::move(shape)) {}
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
  void check_key(const TaskKey& key) const;

  RuntimeImpl* m_runtime;  // guarded by m_mutex (detach_runtime)
  std::string m_name;
  std::vector<std::int64_t> m_shape;
  std::mutex m_mutex;
  std::unordered_map<TaskKey, Ref<TaskRecord>> m_elements;
};

}  // namespace parla::detail
