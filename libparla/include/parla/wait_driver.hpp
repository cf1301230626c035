#pragma once
/// Work that a thread blocked in a Runtime wait drives itself instead of sleeping.

namespace parla {

/// Something with its own progress thread (the MPI progress engine) that a thread blocked in
/// a `Runtime` wait may drive itself while it has work in progress. The waiting thread then
/// makes the calls that complete what it waits for, so nothing is handed between threads: no
/// wake-up of the progress thread to post a message, none of the waiter when it completes.
///
/// Threads that are not workers drive while they wait (a program's main thread, a Python
/// thread in `wait`); cpu workers drive while they have no task to run, and stop as soon as
/// one is ready (a waiting thread leaves the driving to them meanwhile). A driving thread
/// calls `begin()` once, then `drive()` while `busy()`, spinning briefly and then yielding
/// between passes that move nothing, and `end()` when its wait or idle spell is over or when
/// it has been quiet long enough to sleep instead. Every method may be called from several
/// threads at once.
class WaitDriver {
 public:
  virtual ~WaitDriver() = default;
  /// Whether there is work in progress that driving could move.
  [[nodiscard]] virtual bool busy() const noexcept = 0;
  /// A waiting thread starts driving (the progress thread may step aside meanwhile).
  virtual void begin() noexcept = 0;
  /// One pass; never blocks. True when something moved; false when nothing did or another
  /// thread is making a pass right now.
  virtual bool drive() = 0;
  /// The waiting thread stops driving; work still in progress goes back to the progress
  /// thread.
  virtual void end() noexcept = 0;
};

}  // namespace parla
