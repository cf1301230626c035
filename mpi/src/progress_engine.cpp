#include "parla/mpi/progress_engine.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>

#include "parla/mpi/mpi_error.hpp"

#include <parla/detail/cpu_relax.hpp>


namespace parla::mpi {

namespace {

using Clock = std::chrono::steady_clock;

// Adaptive polling. While requests complete the thread keeps polling (a reply usually
// follows a request within microseconds). Once quiet, it spins `k_spin`, then yields the core
// until `k_yield` — shared-memory transports move large messages inside MPI's progress
// calls, so sleeping while a transfer is under way would stall it (with 2 ms, a 16 MiB
// ping-pong, 1-2 ms per message here, lost a quarter of its bandwidth) — then sleeps in
// growing steps up to `k_max_backoff` (a submission wakes it at once).
constexpr auto k_spin = std::chrono::microseconds(5);
constexpr auto k_yield = std::chrono::microseconds(20000);
constexpr auto k_min_backoff = std::chrono::microseconds(20);
constexpr auto k_max_backoff = std::chrono::microseconds(500);
// After its last progress the engine naps in steps of `k_nap` for `k_linger` before it sleeps
// until woken: a submission from a thread that will likely wait (and drive) next then costs no
// wake-up, and one that is not followed by a wait is posted within a nap.
constexpr auto k_nap = std::chrono::microseconds(100);
constexpr auto k_linger = std::chrono::milliseconds(2);
// While waiting threads drive, the engine looks again only this often: each of its wake-ups
// may preempt the thread that is moving a message (naps of 100 us cost the 1 MiB halo
// exchange a quarter of its bandwidth here; 1 ms naps still cost the 1 MiB ping-pong 3-5 %
// against 4 ms), and a driver that returns with operations still outstanding (a send finishing
// after the receive) usually drives again at once. It also bounds how late the engine takes
// such operations over when no thread waits again.
constexpr auto k_driven_nap = std::chrono::milliseconds(4);
// test_outstanding(): a pass tests the oldest `k_test_oldest` and the newest `k_test_newest`
// outstanding requests; every `k_rotate_every`-th pass also tests the next `k_test_rotating`
// of the ones between, in turn.
constexpr std::size_t k_test_oldest = 16;
constexpr std::size_t k_test_newest = 8;
constexpr std::size_t k_test_rotating = 64;
constexpr unsigned k_rotate_every = 8;
// compact_requests() moves the live slots down only past this many finished ones.
constexpr std::size_t k_compact_min = 128;

std::string describe(const Operation& op) {
  switch (op.kind) {
    case OpKind::send:
      return "to rank " + std::to_string(op.peer) + ", tag " + std::to_string(op.user_tag) +
             " (MPI tag " + std::to_string(op.tag) + ")";
    case OpKind::recv:
      return "from rank " + std::to_string(op.peer) + ", tag " + std::to_string(op.user_tag) +
             " (MPI tag " + std::to_string(op.tag) + ")";
    case OpKind::bcast:
      return "root " + std::to_string(op.peer) + ", collective #" + std::to_string(op.collective_seq);
    case OpKind::allreduce:
    case OpKind::barrier: return "collective #" + std::to_string(op.collective_seq);
  }
  return {};
}

const char* mpi_name(OpKind kind) noexcept {
  switch (kind) {
    case OpKind::send: return "MPI_Isend";
    case OpKind::recv: return "MPI_Irecv";
    case OpKind::allreduce: return "MPI_Iallreduce";
    case OpKind::bcast: return "MPI_Ibcast";
    case OpKind::barrier: return "MPI_Ibarrier";
  }
  return "MPI";
}

bool is_collective(OpKind kind) noexcept {
  return kind == OpKind::allreduce || kind == OpKind::bcast || kind == OpKind::barrier;
}

void fail_op(Operation& op, std::exception_ptr error) noexcept {
  try {
    if (op.token.pending()) op.token.fail(std::move(error));
  } catch (...) {
    std::fprintf(stderr, "parla::mpi: could not fail a communication task\n");
  }
}

}  // namespace

const char* to_string(OpKind kind) noexcept {
  switch (kind) {
    case OpKind::send: return "send";
    case OpKind::recv: return "recv";
    case OpKind::allreduce: return "allreduce";
    case OpKind::bcast: return "bcast";
    case OpKind::barrier: return "barrier";
  }
  return "?";
}

ProgressEngine::ProgressEngine(MPI_Comm comm, std::function<void()> periodic,
                               std::chrono::microseconds period, P2pTransportFactory make_p2p)
    : m_comm(comm), m_periodic(std::move(periodic)), m_period(period),
      m_make_p2p(std::move(make_p2p)), m_thread([this] { run(); }) {
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(m_start_mutex);
    m_started_cv.wait(lock, [this] { return m_started; });
    error = m_start_error;
  }
  if (error) {
    stop();
    std::rethrow_exception(error);
  }
}

ProgressEngine::~ProgressEngine() { stop(); }

void ProgressEngine::stop() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    // Set under the lock, so a sleeper's predicate cannot miss it.
    m_stop.store(true, std::memory_order_release);
  }
  m_wake.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

void ProgressEngine::submit(Operation op, bool may_defer) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_stop.load(std::memory_order_relaxed)) {
      fail_op(op, std::make_exception_ptr(std::runtime_error(
                      std::string("parla::mpi: ") + to_string(op.kind) + " " + describe(op) +
                      " was started after its communicator was closed")));
      return;
    }
    m_outstanding.fetch_add(1, std::memory_order_relaxed);
    m_incoming.push_back(std::move(op));
    // release: the engine's acquire load sees the pushed operation under the mutex anyway;
    // the flag only spares it the lock on passes with nothing new.
    m_has_incoming.store(true, std::memory_order_release);
    // A thread driving takes it in its next pass; a napping engine is woken unless the
    // submitter will probably wait next (it then drives) — the nap bounds the delay if not.
    if (m_sleep == Sleep::deep ||
        (m_sleep == Sleep::nap && !may_defer && m_drivers.load(std::memory_order_acquire) == 0)) {
      wake = !m_woken;
      m_woken = true;
    }
  }
  if (wake) m_wake.notify_one();
}

void ProgressEngine::submit_and_post(Operation op) {
  if (!try_pass_flag()) {
    submit(std::move(op));
    return;
  }
  submit(std::move(op), /*may_defer=*/true);
  struct Release {
    ProgressEngine* e;
    ~Release() { e->release_pass_flag(); }
  } release{this};
  if (m_closed) return;  // submit() failed it already (stopped)
  if (pass()) {
    m_last_progress = Clock::now();
    m_driven.fetch_add(1, std::memory_order_relaxed);
  }
}

void ProgressEngine::begin() noexcept { m_drivers.fetch_add(1, std::memory_order_acq_rel); }

bool ProgressEngine::drive() {
  if (!try_pass_flag()) return false;
  struct Release {
    ProgressEngine* e;
    ~Release() { e->release_pass_flag(); }
  } release{this};
  if (m_closed) return false;
  const bool progressed = pass();
  if (progressed) {
    m_last_progress = Clock::now();
    m_driven.fetch_add(1, std::memory_order_relaxed);
  }
  return progressed;
}

void ProgressEngine::end() noexcept {
  // Operations still outstanding go back to the engine thread at its next nap's end
  // (k_driven_nap): waking it now would make it preempt this thread, which usually waits
  // (and drives) again right away.
  m_drivers.fetch_sub(1, std::memory_order_acq_rel);
}

void ProgressEngine::sleep_until(Clock::time_point until, Nap kind) {
  std::unique_lock<std::mutex> lock(m_mutex);
  if (m_stop.load(std::memory_order_relaxed)) return;
  switch (kind) {
    case Nap::driven:
      if (m_drivers.load(std::memory_order_acquire) == 0) return;
      break;
    case Nap::linger: break;
    case Nap::idle:
    case Nap::backoff:
      if (!m_incoming.empty()) return;
      break;
  }
  m_sleep = kind == Nap::idle || kind == Nap::backoff ? Sleep::deep : Sleep::nap;
  m_woken = false;
  if (kind == Nap::idle) m_sleeps.fetch_add(1, std::memory_order_relaxed);
  m_wake.wait_until(lock, until,
                    [this] { return m_stop.load(std::memory_order_relaxed) || m_woken; });
  m_sleep = Sleep::awake;
  m_woken = false;
  if (kind == Nap::idle || kind == Nap::backoff) m_wakeups.fetch_add(1, std::memory_order_relaxed);
}

ProgressStats ProgressEngine::stats() const noexcept {
  ProgressStats s;
  s.posted = m_posted.load(std::memory_order_relaxed);
  s.completed = m_completed.load(std::memory_order_relaxed);
  s.failed = m_failed.load(std::memory_order_relaxed);
  s.polls = m_polls.load(std::memory_order_relaxed);
  s.sleeps = m_sleeps.load(std::memory_order_relaxed);
  s.wakeups = m_wakeups.load(std::memory_order_relaxed);
  s.driven = m_driven.load(std::memory_order_relaxed);
  return s;
}

bool ProgressEngine::pass() {
  // run() has looked for a stop request just before.
  bool progressed = m_has_incoming.load(std::memory_order_acquire) && take_submissions();
  if (!m_unready.empty() && post_ready_events()) progressed = true;
  if (m_live > 0 && test_outstanding()) progressed = true;
  // The point-to-point transport is driven whenever anything is outstanding (its peers'
  // connection and rendezvous traffic may need this rank's progress), never when idle.
  const bool p2p_busy = m_p2p && m_p2p->active() > 0;
  if (m_p2p && (p2p_busy || m_live > 0) && progress_p2p()) progressed = true;
  return progressed;
}

bool ProgressEngine::take_submissions() {
  {
    // The two vectors trade buffers: submitting and taking allocate nothing once warm.
    std::lock_guard<std::mutex> lock(m_mutex);
    m_batch.swap(m_incoming);
    m_has_incoming.store(false, std::memory_order_relaxed);
  }
  std::size_t i = 0;
  try {
    for (; i < m_batch.size(); ++i) post(std::move(m_batch[i]));
  } catch (...) {
    // post() threw (out of memory): the operations after it fail instead of staying in the
    // buffer, whose next swap would hand them back to be posted a second time.
    for (std::size_t j = i + 1; j < m_batch.size(); ++j) {
      fail_op(m_batch[j], std::current_exception());
      m_outstanding.fetch_sub(1, std::memory_order_release);
    }
    m_batch.clear();
    throw;
  }
  const bool any = !m_batch.empty();
  m_batch.clear();
  return any;
}

void ProgressEngine::post(Operation&& op) {
  if (op.ready) {
    // Device data is complete only once its stream reaches the event; never block on it.
    bool fired = false;
    try {
      fired = op.ready->query();
    } catch (...) {
      m_failed.fetch_add(1, std::memory_order_relaxed);
      fail_op(op, std::current_exception());
      m_outstanding.fetch_sub(1, std::memory_order_release);
      return;
    }
    if (!fired) {
      m_unready.push_back(std::move(op));
      return;
    }
    op.ready.reset();
  }
  if (is_collective(op.kind) && op.collective_seq != m_next_collective) {
    m_waiting_collectives.emplace(op.collective_seq, std::move(op));
    return;
  }
  if (m_p2p && (op.kind == OpKind::send || op.kind == OpKind::recv)) {
    m_posted.fetch_add(1, std::memory_order_relaxed);
    m_p2p->post(std::move(op));  // completion comes back through take_completed
    return;
  }
  MPI_Request request = MPI_REQUEST_NULL;
  int rc = MPI_SUCCESS;
  switch (op.kind) {
    case OpKind::send:
      rc = MPI_Isend(op.buffer, op.count, op.type, op.peer, op.tag, m_comm, &request);
      break;
    case OpKind::recv:
      rc = MPI_Irecv(op.buffer, op.count, op.type, op.peer, op.tag, m_comm, &request);
      break;
    case OpKind::allreduce:
      rc = MPI_Iallreduce(MPI_IN_PLACE, op.buffer, op.count, op.type, op.op, m_comm, &request);
      break;
    case OpKind::bcast:
      rc = MPI_Ibcast(op.buffer, op.count, op.type, op.peer, m_comm, &request);
      break;
    case OpKind::barrier: rc = MPI_Ibarrier(m_comm, &request); break;
  }
  const bool collective = is_collective(op.kind);
  if (collective) {
    ++m_next_collective;
  }
  if (rc != MPI_SUCCESS) {
    m_failed.fetch_add(1, std::memory_order_relaxed);
    fail_op(op, std::make_exception_ptr(MpiError(mpi_name(op.kind), rc, describe(op))));
    m_outstanding.fetch_sub(1, std::memory_order_release);
  } else {
    m_posted.fetch_add(1, std::memory_order_relaxed);
    m_requests.push_back(request);
    m_active.push_back(std::move(op));
    ++m_live;
  }
  if (collective) post_ready_collectives();
}

bool ProgressEngine::post_ready_events() {
  // Swap first: post() puts an operation whose event has not fired back into m_unready. The
  // two vectors trade buffers, so polling for events allocates nothing.
  m_unready_scratch.swap(m_unready);
  for (Operation& op : m_unready_scratch) post(std::move(op));
  const bool posted = m_unready.size() < m_unready_scratch.size();
  m_unready_scratch.clear();
  return posted;
}

void ProgressEngine::post_ready_collectives() {
  for (auto it = m_waiting_collectives.find(m_next_collective); it != m_waiting_collectives.end();
       it = m_waiting_collectives.find(m_next_collective)) {
    Operation op = std::move(it->second);
    m_waiting_collectives.erase(it);
    post(std::move(op));  // advances m_next_collective, recurses at most once per entry
  }
}

bool ProgressEngine::test_outstanding() {
  // MPI_Testsome looks at every request it is given (twice when none has completed), and a
  // message waits for the pass that sees it: a pass must be short. A program may post
  // thousands of receives ahead (a whole time loop's halos at once), so a pass tests the
  // oldest `k_test_oldest` slots (what a pipeline completes next), the newest `k_test_newest`
  // (sends just posted, which complete at once) and, every `k_rotate_every`-th pass, the next
  // `k_test_rotating` of the ones between, in turn: a request there is seen within
  // k_rotate_every * (outstanding / k_test_rotating) passes. (Testing 144 in every pass made
  // a 2-rank Task Bench pipeline's tasks about 25 % slower at small sizes, see
  // docs/performance.md.)
  const std::size_t end = m_requests.size();
  const std::size_t live_span = end - m_head;
  MPI_Request* requests = m_requests.data() + m_head;
  std::size_t n = live_span;
  const bool rotate = ++m_passes_since_rotation >= k_rotate_every;
  if (rotate) m_passes_since_rotation = 0;
  const std::size_t middle_span =
      live_span > k_test_oldest + k_test_newest ? live_span - k_test_oldest - k_test_newest : 0;
  // All of them when the middle is empty, or when this pass rotates through all of it.
  const bool gathered = middle_span > 0 && !(rotate && middle_span <= k_test_rotating);
  if (gathered) {
    m_test_slots.clear();
    const std::size_t oldest_end = m_head + k_test_oldest;
    const std::size_t newest_begin = end - k_test_newest;
    for (std::size_t i = m_head; i < oldest_end; ++i) m_test_slots.push_back(i);
    if (rotate) {
      std::size_t r = m_rotation < middle_span ? m_rotation : 0;
      for (std::size_t k = 0; k < k_test_rotating; ++k) {
        m_test_slots.push_back(oldest_end + r);
        if (++r == middle_span) r = 0;
      }
      m_rotation = r;
    }
    for (std::size_t i = newest_begin; i < end; ++i) m_test_slots.push_back(i);
    m_test_requests.clear();
    for (std::size_t i : m_test_slots) m_test_requests.push_back(m_requests[i]);
    requests = m_test_requests.data();
    n = m_test_slots.size();
  }
  if (m_statuses.size() < n) {  // grown only: a pass allocates nothing once warm
    m_indices.resize(n);
    m_statuses.resize(n);
  }
  int done = 0;
  const int rc = MPI_Testsome(static_cast<int>(n), requests, &done, m_indices.data(),
                              m_statuses.data());
  m_polls.fetch_add(1, std::memory_order_relaxed);
  if (rc != MPI_SUCCESS && rc != MPI_ERR_IN_STATUS) {
    fail_everything(MpiError("MPI_Testsome", rc,
                             std::to_string(m_live) + " outstanding requests").what());
    return true;
  }
  if (done == MPI_UNDEFINED || done <= 0) return false;
  // Completions are handled in posting order. finish() leaves its slot empty (a null request)
  // and nothing is posted during the loop (completing only submits), so the slots stay put.
  m_finished.clear();
  for (int k = 0; k < done; ++k) {
    const auto i = static_cast<std::size_t>(k);
    const auto index = static_cast<std::size_t>(m_indices[i]);
    m_finished.push_back({gathered ? m_test_slots[index] : m_head + index,
                          rc == MPI_ERR_IN_STATUS ? m_statuses[i].MPI_ERROR : MPI_SUCCESS,
                          m_statuses[i]});
  }
  std::sort(m_finished.begin(), m_finished.end(),
            [](const Finished& a, const Finished& b) { return a.slot < b.slot; });
  for (Finished& f : m_finished) {
    const Operation& op = m_active[f.slot];
    std::exception_ptr error;
    if (f.error != MPI_SUCCESS) {
      error = std::make_exception_ptr(MpiError(mpi_name(op.kind), f.error, describe(op)));
    } else if (op.kind == OpKind::recv) {
      // A shorter message than the receive expects is legal MPI but always a bug here: the
      // two sides disagree about what they exchange.
      int got = 0;
      MPI_Get_count(&f.status, op.type, &got);
      if (got != op.count) {
        error = std::make_exception_ptr(std::runtime_error(
            "parla::mpi: recv " + describe(op) + " got " + std::to_string(got) +
            " elements but expected " + std::to_string(op.count) +
            ": the sender and the receiver disagree about the message size"));
      }
    }
    finish(f.slot, std::move(error));
  }
  compact_requests();
  return true;
}

void ProgressEngine::finish(std::size_t index, std::exception_ptr error) {
  Operation op = std::move(m_active[index]);
  m_requests[index] = MPI_REQUEST_NULL;  // MPI_Testsome has set it already; a failure may not
  --m_live;
  complete(op, std::move(error));
}

void ProgressEngine::compact_requests() {
  while (m_head < m_requests.size() && m_requests[m_head] == MPI_REQUEST_NULL) ++m_head;
  if (m_head == m_requests.size()) {
    m_requests.clear();
    m_active.clear();
    m_head = 0;
  } else if (m_head >= k_compact_min && 2 * m_head >= m_requests.size()) {
    // Amortised: the live slots move down once the finished ones in front are half the vector.
    const auto head = static_cast<std::ptrdiff_t>(m_head);
    m_requests.erase(m_requests.begin(), m_requests.begin() + head);
    m_active.erase(m_active.begin(), m_active.begin() + head);
    m_head = 0;
  }
}

void ProgressEngine::complete(Operation& op, std::exception_ptr error) {
  m_completed.fetch_add(1, std::memory_order_relaxed);
  if (error) {
    m_failed.fetch_add(1, std::memory_order_relaxed);
    fail_op(op, std::move(error));
  } else {
    try {
      if (op.on_done) op.on_done();
      if (op.token.pending()) op.token.fulfill();
    } catch (...) {
      fail_op(op, std::current_exception());
    }
  }
  op.keepalive.reset();
  m_outstanding.fetch_sub(1, std::memory_order_release);
}

bool ProgressEngine::progress_p2p() {
  bool progressed = m_p2p->progress();
  m_polls.fetch_add(1, std::memory_order_relaxed);
  m_p2p_done.clear();
  m_p2p->take_completed(m_p2p_done);
  for (auto& [op, error] : m_p2p_done) {
    complete(op, std::move(error));
    progressed = true;
  }
  m_p2p_done.clear();
  return progressed;
}

void ProgressEngine::shutdown_p2p(const std::string& why) {
  if (!m_p2p) return;
  std::vector<Operation> abandoned;
  m_p2p->abandon(abandoned);
  for (Operation& op : abandoned) {
    fail_op(op, std::make_exception_ptr(std::runtime_error(
                    std::string("parla::mpi: ") + to_string(op.kind) + " " + describe(op) +
                    " did not complete: " + why)));
    // The transport may still read or write the buffer: never free what it points to.
    new std::shared_ptr<void>(std::move(op.keepalive));  // NOLINT: deliberate leak
    m_outstanding.fetch_sub(1, std::memory_order_release);
  }
  try {
    m_p2p->shutdown();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parla::mpi: closing the %s transport failed: %s\n", m_p2p->name(),
                 e.what());
  }
  m_p2p.reset();
}

void ProgressEngine::fail_everything(const std::string& why) {
  for (std::size_t i = m_head; i < m_active.size(); ++i) {
    if (m_requests[i] == MPI_REQUEST_NULL) continue;  // finished already
    // A receive not yet matched can be cancelled; other requests are left to MPI (their
    // buffers are kept alive by `keepalive` being leaked on purpose below).
    if (m_active[i].kind == OpKind::recv) {
      if (MPI_Cancel(&m_requests[i]) == MPI_SUCCESS) {
        MPI_Wait(&m_requests[i], MPI_STATUS_IGNORE);
      }
    }
    fail_op(m_active[i], std::make_exception_ptr(std::runtime_error(
                             std::string("parla::mpi: ") + to_string(m_active[i].kind) + " " +
                             describe(m_active[i]) + " did not complete: " + why)));
    if (m_active[i].kind != OpKind::recv) {
      // The request may still read or write the buffer: never free what it points to.
      new std::shared_ptr<void>(std::move(m_active[i].keepalive));  // NOLINT: deliberate leak
    }
    m_outstanding.fetch_sub(1, std::memory_order_release);
  }
  m_active.clear();
  m_requests.clear();
  m_head = 0;
  m_live = 0;
  for (auto& [seq, op] : m_waiting_collectives) {
    fail_op(op, std::make_exception_ptr(std::runtime_error(
                    std::string("parla::mpi: ") + to_string(op.kind) + " " + describe(op) +
                    " was never started: " + why)));
    m_outstanding.fetch_sub(1, std::memory_order_release);
  }
  m_waiting_collectives.clear();
  for (Operation& op : m_unready) {
    // Never handed to MPI: its buffer is free to go.
    fail_op(op, std::make_exception_ptr(std::runtime_error(
                    std::string("parla::mpi: ") + to_string(op.kind) + " " + describe(op) +
                    " was never started (its device data was not ready yet): " + why)));
    m_outstanding.fetch_sub(1, std::memory_order_release);
  }
  m_unready.clear();
}

void ProgressEngine::run() {
  if (m_make_p2p) {
    std::exception_ptr error;
    try {
      m_p2p = m_make_p2p();
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(m_start_mutex);
      m_started = true;
      m_start_error = error;
    }
    m_started_cv.notify_all();
    if (error) return;
  } else {
    {
      std::lock_guard<std::mutex> lock(m_start_mutex);
      m_started = true;
    }
    m_started_cv.notify_all();
  }
  auto next_periodic = Clock::now() + m_period;
  auto quiet_since = Clock::now();
  auto backoff = k_min_backoff;
  m_last_progress = Clock::now();
  for (;;) {
    if (m_stop.load(std::memory_order_acquire)) break;
    const auto now = Clock::now();
    if (m_periodic && now >= next_periodic) {
      next_periodic = now + m_period;
      try {
        m_periodic();
      } catch (...) {
        std::fprintf(stderr, "parla::mpi: the progress engine's watchdog threw\n");
      }
    }
    if (m_drivers.load(std::memory_order_acquire) > 0) {
      // A waiting thread makes the passes: stay out of its way, looking again after a nap.
      sleep_until(std::min(now + k_driven_nap, next_periodic), Nap::driven);
      quiet_since = Clock::now();
      continue;
    }
    if (!try_pass_flag()) {
      std::this_thread::yield();  // a driver's pass, about to end
      continue;
    }
    const bool progressed = pass();
    const bool nothing_outstanding =
        m_live == 0 && m_unready.empty() && (!m_p2p || m_p2p->active() == 0);
    if (progressed) m_last_progress = now;
    const auto last_progress = m_last_progress;
    release_pass_flag();

    if (progressed) {
      quiet_since = now;
      backoff = k_min_backoff;
      continue;
    }
    if (nothing_outstanding) {
      // Nothing MPI could progress: nap while things happened lately, else sleep until a
      // submission (or the watchdog's period).
      if (m_has_incoming.load(std::memory_order_acquire)) continue;
      if (now - last_progress < k_linger) {
        sleep_until(std::min(now + k_nap, next_periodic), Nap::linger);
      } else {
        sleep_until(m_periodic ? next_periodic : now + std::chrono::hours(1), Nap::idle);
      }
      quiet_since = Clock::now();
      continue;
    }
    const auto quiet = now - quiet_since;
    if (quiet < k_spin) {
      parla::detail::cpu_relax();
    } else if (quiet < k_yield) {
      std::this_thread::yield();
    } else {
      sleep_until(std::min(now + backoff, next_periodic), Nap::backoff);
      backoff = std::min(backoff * 2, k_max_backoff);
    }
  }
  // Passes by waiting threads end here: the cleanup below owns the engine's state.
  while (!try_pass_flag()) std::this_thread::yield();
  m_closed = true;
  // Stopped: whatever is still pending will never complete through this engine.
  std::vector<Operation> never_posted;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    never_posted.swap(m_incoming);
  }
  for (Operation& op : never_posted) {
    fail_op(op, std::make_exception_ptr(std::runtime_error(
                    std::string("parla::mpi: ") + to_string(op.kind) + " " + describe(op) +
                    " was never started: its communicator was closed")));
    m_outstanding.fetch_sub(1, std::memory_order_release);
  }
  const char* why = "the communicator was closed while it was outstanding (call rt.finish() "
                    "before destroying the parla::mpi::Comm)";
  if (m_live > 0 || !m_waiting_collectives.empty() || !m_unready.empty()) fail_everything(why);
  shutdown_p2p(why);
}

}  // namespace parla::mpi
