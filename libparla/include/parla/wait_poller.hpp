// WaitPoller: work a thread blocked in a wait drives itself instead of sleeping (the MPI
// layer's progress engine registers one, so the thread that waits for a message also tests
// for it, with no hand-off between threads).
#pragma once

namespace parla {

/// What one poll found.
enum class PollResult : unsigned char {
  idle,        // nothing outstanding: polling again is useless
  busy,        // something is outstanding, nothing moved (poll again soon)
  progressed,  // something completed or started (re-check what you wait for)
};

/// Registered with Runtime::add_wait_poller. A waiting thread (the main thread in wait(),
/// a worker whose body waits, an idle worker) calls poll() between looking for tasks to run
/// and going to sleep; it keeps polling, yielding the core between polls, while the result is
/// busy, for up to RuntimeConfig's poll window, then sleeps. poll() must never block and
/// may be called from several threads at once (return busy when another thread is polling).
class WaitPoller {
 public:
  virtual ~WaitPoller() = default;
  virtual PollResult poll() = 0;

 protected:
  WaitPoller() = default;
  WaitPoller(const WaitPoller&) = default;
  WaitPoller& operator=(const WaitPoller&) = default;
};

}  // namespace parla
