// Failures, cancellation, rethrow at waits and at the end, deadlock reports.
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_common.hpp"

namespace {

using parla::test::RuntimeSweep;

class ErrorTest : public RuntimeSweep {
 protected:
  parla::RuntimeConfig quick_deadlock() const {
    parla::RuntimeConfig c = config();
    c.deadlock_timeout = 0.2;
    return c;
  }
};

TEST_P(ErrorTest, BodyExceptionIsRethrownWithTheTaskNameAndOriginal) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  rt.spawn({.key = T[0], .placement = all_devices().back()}, []() -> int { throw std::invalid_argument("boom"); });
  try {
    rt.wait(T[0]);
    FAIL() << "wait must rethrow";
  } catch (const parla::TaskError& e) {
    EXPECT_EQ(e.task_name(), "T[0]");
    EXPECT_EQ(std::string(e.what()), "task 'T[0]' failed: boom");
    EXPECT_THROW(e.rethrow_original(), std::invalid_argument);
  }
  EXPECT_EQ(T[0].task().state(), parla::TaskState::failed);
  EXPECT_THROW((void)T[0].result<int>(), parla::TaskError);
}

TEST_P(ErrorTest, FailureCancelsTransitiveDependentsWhichNeverRun) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  std::atomic<int> ran{0};
  // The failing task is spawned last, so some dependents are wired before it fails and
  // (with several workers) some after.
  for (int i = 1; i < 50; ++i) {
    rt.spawn({.key = T[i], .dependencies = {T[i - 1], T[(i - 1) / 2]}}, [&] { ran.fetch_add(1); });
  }
  parla::Task unrelated = rt.spawn({}, [] { return 1; });
  rt.spawn({.key = T[0]}, [] { throw std::runtime_error("root cause"); });
  parla::Task late = rt.spawn({.dependencies = {T[0]}, .name = "late"}, [&] { ran.fetch_add(1); });
  try {
    rt.wait(T[49]);
    FAIL();
  } catch (const parla::TaskError& e) {
    EXPECT_EQ(e.task_name(), "T[0]");
    EXPECT_EQ(std::string(e.what()), "task 'T[49]' was cancelled because task 'T[0]' failed: root cause");
  }
  EXPECT_THROW(rt.wait(late), parla::TaskError);
  rt.wait(unrelated);
  EXPECT_EQ(unrelated.get<int>(), 1);
  EXPECT_EQ(ran.load(), 0);
  for (int i = 1; i < 50; ++i) EXPECT_EQ(T[i].task().state(), parla::TaskState::cancelled);
}

TEST_P(ErrorTest, WaitsOnFinishedTasksStillReportTheirOutcome) {
  // A wait on a task that already finished returns at once (no list, no counts), with the
  // same outcome as a wait that had to block: every wait on a failed task rethrows.
  parla::Runtime rt(config());
  parla::Task good = rt.spawn({}, [] { return 7; });
  parla::Task bad = rt.spawn({.name = "bad"}, [] { throw std::runtime_error("late look"); });
  parla::Task cancelled = rt.spawn({.dependencies = {bad}, .name = "after"}, [] {});
  EXPECT_THROW(rt.wait_all(), parla::TaskError);
  ASSERT_TRUE(good.done() && bad.done() && cancelled.done());
  for (int i = 0; i < 2; ++i) {
    rt.wait(good);
    EXPECT_EQ(good.get<int>(), 7);
    try {
      rt.wait(bad);
      FAIL() << "a wait on a failed task must rethrow, every time";
    } catch (const parla::TaskError& e) {
      EXPECT_EQ(std::string(e.what()), "task 'bad' failed: late look");
    }
    try {
      rt.wait(cancelled);
      FAIL() << "a wait on a cancelled task must rethrow, every time";
    } catch (const parla::TaskError& e) {
      EXPECT_EQ(std::string(e.what()), "task 'after' was cancelled because task 'bad' failed: late look");
    }
  }
  // A finished task of another runtime is still refused.
  parla::Runtime other(config());
  try {
    other.wait(good);
    FAIL() << "a task of another runtime must be refused";
  } catch (const parla::Error& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to another runtime"), std::string::npos) << e.what();
  }
}

TEST_P(ErrorTest, WaitAllRethrowsTheFirstUnreportedFailureOnce) {
  parla::Runtime rt(config());
  rt.spawn({.name = "bad"}, [] { throw std::runtime_error("nobody waited"); });
  try {
    rt.wait_all();
    FAIL();
  } catch (const parla::TaskError& e) {
    EXPECT_EQ(e.task_name(), "bad");
  }
  EXPECT_NO_THROW(rt.finish());
}

TEST_P(ErrorTest, DestructorReportsUnwaitedFailuresOnStderr) {
  testing::internal::CaptureStderr();
  {
    parla::Runtime rt(config());
    rt.spawn({.name = "forgotten"}, [] { throw std::runtime_error("lost error"); });
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("'forgotten' failed"), std::string::npos) << err;
  EXPECT_NE(err.find("lost error"), std::string::npos) << err;
}

TEST_P(ErrorTest, DeadlockOnANeverSpawnedKeyIsReported) {
  testing::internal::CaptureStderr();  // the end of the space reports the cancelled tasks
  {
    parla::Runtime rt(quick_deadlock());
    parla::TaskSpace T(rt, "T");
    rt.spawn({.key = T[1], .dependencies = {T[0]}}, [] {});
    rt.spawn({.key = T[2], .dependencies = {T[1]}}, [] {});
    try {
      rt.wait(T[2]);
      FAIL() << "waiting on a task behind a never-spawned key must report a deadlock";
    } catch (const parla::DeadlockError& e) {
      const auto& b = e.blocked();
      auto has = [&](const std::string& s) {
        return std::any_of(b.begin(), b.end(), [&](const std::string& l) { return l.find(s) != std::string::npos; });
      };
      EXPECT_TRUE(has("T[2] (pending): waits for T[1] (pending)")) << e.what();
      EXPECT_TRUE(has("T[1] (pending): waits for T[0] (never spawned)")) << e.what();
      EXPECT_TRUE(has("T[0]: never spawned")) << e.what();
      EXPECT_NE(std::string(e.what()).find("PARLA_DEADLOCK_TIMEOUT"), std::string::npos);
    }
    EXPECT_THROW(rt.wait_all(), parla::DeadlockError);
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("never spawned"), std::string::npos) << err;
}

/// A body that names its task when asked (as a communication task does), not at the spawn.
struct NamedBody {
  int id = 0;
  bool fail = false;
  void operator()() const {
    if (fail) throw std::runtime_error("lost");
  }
  void describe(std::string& out) const { out.append("exchange#").append(std::to_string(id)); }
};

TEST_P(ErrorTest, ABodyThatNamesItsTaskIsNamedInReportsErrorsAndAfterItRan) {
  parla::Runtime rt(quick_deadlock());
  parla::TaskSpace T(rt, "T");
  parla::Task blocked = rt.spawn({.dependencies = {T[0]}}, NamedBody{7});
  parla::Task named = rt.spawn({.name = "given"}, NamedBody{8});  // a given name wins
  EXPECT_EQ(blocked.name(), "exchange#7");
  try {
    rt.wait(blocked);
    FAIL() << "waiting on a task behind a never-spawned key must report a deadlock";
  } catch (const parla::DeadlockError& e) {
    EXPECT_NE(std::string(e.what()).find("exchange#7 (pending): waits for T[0] (never spawned)"),
              std::string::npos)
        << e.what();
  }
  rt.wait(named);
  EXPECT_EQ(named.name(), "given");
  parla::Task failing = rt.spawn({}, NamedBody{9, true});
  parla::Task after = rt.spawn({.dependencies = {failing}, .name = "after"}, [] {});
  try {
    rt.wait(after);
    FAIL() << "a dependent of a failed task must be cancelled";
  } catch (const parla::TaskError& e) {
    EXPECT_EQ(e.task_name(), "exchange#9");
    EXPECT_EQ(std::string(e.what()),
              "task 'after' was cancelled because task 'exchange#9' failed: lost");
  }
  EXPECT_EQ(failing.name(), "exchange#9");  // the body is kept while the record lives
  rt.spawn({.key = T[0]}, [] {});
  rt.wait(blocked);
  EXPECT_EQ(blocked.name(), "exchange#7");
  try {
    rt.wait_all();
  } catch (const parla::TaskError&) {
  }
}

TEST_P(ErrorTest, DeadlockOnAReservationThatCanNeverFitIsReported) {
  parla::Runtime rt(quick_deadlock());
  // The outer task holds the whole cpu and waits for a task that needs part of it.
  parla::Task outer = rt.spawn({.vcus = 1.0, .name = "outer"}, [](parla::TaskContext& ctx) {
    parla::Task inner = ctx.runtime().spawn({.vcus = 0.5, .name = "inner"}, [] {});
    ctx.runtime().wait(inner);
  });
  try {
    rt.wait(outer);
    FAIL();
  } catch (const parla::TaskError& e) {
    EXPECT_EQ(e.task_name(), "outer");
    EXPECT_NE(std::string(e.what()).find("inner (ready): waits for resources"), std::string::npos) << e.what();
    EXPECT_THROW(e.rethrow_original(), parla::DeadlockError);
  }
  rt.wait_all();  // once outer failed, inner got its resources and ran
}

TEST_P(ErrorTest, SpawnErrorsLeaveNothingBehind) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  EXPECT_THROW(rt.spawn({.key = T[0], .placement = parla::gpu(99)}, [] {}), parla::Error);
  EXPECT_THROW(rt.spawn({.dependencies = {parla::Task{}}}, [] {}), parla::Error);
  rt.spawn({.key = T[0]}, [] { return 2; });  // T[0] was not claimed by the failed spawn
  rt.wait(T[0]);
  EXPECT_EQ(T[0].result<int>(), 2);
}

TEST_P(ErrorTest, SpawnAfterRefusesBadHandlesAndCancelsAfterAFailure) {
  parla::Runtime rt(config());
  parla::Runtime other(config());
  std::atomic<int> ran{0};
  parla::Task ok = rt.spawn_after({}, [] { return 1; });
  try {
    (void)rt.spawn_after({ok, parla::Task{}}, [&] { ran.fetch_add(1); });
    FAIL() << "an empty handle must be refused";
  } catch (const parla::Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty Task handle"), std::string::npos) << e.what();
  }
  parla::Task foreign = other.spawn_after({}, [] {});
  try {
    (void)rt.spawn_after({foreign}, [&] { ran.fetch_add(1); });
    FAIL() << "a task of another runtime must be refused";
  } catch (const parla::Error& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to another runtime"), std::string::npos) << e.what();
  }
  // Nothing was spawned by the refused calls: wait_all() has only `ok` to wait for.
  rt.wait_all();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(rt.stats().tasks_run, 1U);

  parla::Task bad = rt.spawn_after({}, [] { throw std::runtime_error("root cause"); });
  parla::Task after = rt.spawn_after({ok, bad}, [&] { ran.fetch_add(1); });
  try {
    rt.wait(after);
    FAIL() << "a dependent of a failed task must report the failure";
  } catch (const parla::TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("was cancelled because task"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("root cause"), std::string::npos) << e.what();
  }
  EXPECT_EQ(after.state(), parla::TaskState::cancelled);
  EXPECT_EQ(ran.load(), 0);
}

PARLA_INSTANTIATE_SWEEP(ErrorTest);

// Edges do not own their predecessors; a deadlock report reads them only through edges not yet
// walked, and relies on no record being freed (nor reused) while it runs.
TEST(DeadlockReport, RecordsReleasedDuringAReportAreKeptUntilItEnds) {
  parla::Runtime rt({.num_workers = 2});
  parla::Task t = rt.spawn_after({}, [] {});
  rt.wait(t);
  parla::detail::TaskRecord* p = t.record();
  // The worker drops its reference just after the wait returns: then ours is the last.
  while (p->m_refs.load() != 1) std::this_thread::yield();
  parla::detail::begin_inspection();
  t = parla::Task();  // the last reference goes while a report runs: kept
  std::vector<parla::Task> more;
  for (int i = 0; i < 64; ++i) more.push_back(rt.spawn_after({}, [] {}));
  rt.wait_all();
  for (const parla::Task& m : more) EXPECT_NE(m.record(), p) << "a kept record was reused";
  EXPECT_EQ(p->state(), parla::TaskState::completed);
  EXPECT_EQ(p->m_refs.load(), 0U);
  parla::detail::end_inspection();  // freed now
  more.clear();
  // Afterwards records are freed (and reused) as before.
  parla::Task again = rt.spawn_after({}, [] {});
  rt.wait(again);
  EXPECT_EQ(again.state(), parla::TaskState::completed);
}

}  // namespace
