// Forward declarations of the public types of parla::core.
#pragma once

namespace parla {

class Runtime;
struct RuntimeConfig;
struct RuntimeStats;
class TaskSpace;
class TaskRef;
class TaskSlice;
class TaskKey;
class Task;
class TaskContext;
class CompletionToken;
class Device;
class Stream;
class Event;
class DataBlock;
class DataSlice;
enum class Coherence : unsigned char;
class Placement;
struct Resources;
struct SpawnOptions;
class Dep;
class Error;
class TaskError;
class DeadlockError;
enum class DeviceKind;
enum class TaskState : unsigned char;

namespace detail {
class TaskRecord;
class RuntimeImpl;
class TaskSpaceState;
class BlockState;
template <class T>
class Ref;
}  // namespace detail

}  // namespace parla
