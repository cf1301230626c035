// BlockState (the runtime side of a DataBlock) and TaskData (a task's accesses, streams
// and pinned instances). Internal.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <parla/detail/task_record.hpp>
#include <parla/stream.hpp>

namespace parla::detail {

class BackendStream;
class DeviceBackend;

/// Never valid: the version of a device instance that holds nothing.
inline constexpr std::uint64_t k_no_version = std::numeric_limits<std::uint64_t>::max();

/// One logical buffer. Its byte range is cut into segments at every boundary a task's
/// access has used, so disjoint slices move and version independently. Everything below
/// is guarded by `mutex`.
class BlockState {
 public:
  BlockState(RuntimeImpl* runtime, std::string name, std::size_t bytes, void* host, bool owned);
  ~BlockState();
  BlockState(const BlockState&) = delete;
  BlockState& operator=(const BlockState&) = delete;

  struct Segment {
    std::size_t begin = 0;
    std::size_t end = 0;
    std::uint64_t version = 0;               // +1 per write
    std::vector<std::uint64_t> dev_version;  // per device id; valid where == version
    std::vector<std::shared_ptr<Event>> ready;  // per device: the data is there once it fires
    // Inferred dependencies (spawn order).
    Ref<TaskRecord> last_writer;
    std::vector<Ref<TaskRecord>> readers;  // since last_writer
  };
  struct Instance {
    void* ptr = nullptr;
    int pins = 0;             // launched, unfinished tasks using it (never evicted then)
  };

  /// Index of the segment that starts at `pos`, splitting one if needed (pos < bytes).
  std::size_t split(std::size_t pos);
  /// Segments [first, last) covering [offset, offset + bytes), split at both ends.
  std::pair<std::size_t, std::size_t> range(std::size_t offset, std::size_t bytes);
  [[nodiscard]] std::size_t find(std::size_t pos) const;

  RuntimeImpl* runtime;  // null once the runtime ended
  std::string name;
  std::size_t bytes;
  void* host;
  bool owned;
  /// The backend that page-locked `host` (see DeviceBackend::pin_host), null while pageable.
  /// Pinning is tried once, at the first copy between the host and a device, and only for
  /// memory the runtime owns (it alone knows when that memory is freed).
  DeviceBackend* host_pinned_by = nullptr;
  bool host_pin_tried = false;
  std::mutex mutex;
  std::vector<Segment> segments;
  std::vector<Instance> instances;  // per device id; [0] = host (always allocated)
};

/// One declared access of a task, merged per block.
struct TaskAccess {
  std::shared_ptr<BlockState> block;
  std::size_t offset = 0;
  std::size_t bytes = 0;
  bool read = false;
  bool write = false;
};

/// What a task with data accesses, or on a GPU, carries beyond a plain task.
struct TaskData {
  std::vector<TaskAccess> accesses;
  // Set when the task is launched:
  std::vector<int> devices;                // primary first
  std::vector<BackendStream*> streams;     // per device (null for the cpu)
  std::vector<std::pair<std::shared_ptr<BlockState>, int>> pins;  // unpinned when it finishes
  std::vector<std::vector<std::shared_ptr<Event>>> waits;  // per device: events to wait for
  std::shared_ptr<Event> done;  // recorded after the body (GPU tasks)
  std::vector<BackendStream*> host_copy_streams;  // streams of copies into the host
  bool prepared = false;        // data protocol done (a cpu task may wait for copies first)
  std::atomic<int> copies_pending{0};
};

}  // namespace parla::detail
