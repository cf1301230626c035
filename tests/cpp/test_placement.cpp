// Devices and placement: cpu, gpu(i), gpu (any), any_of lists, all_of tuples, errors.
#include <atomic>
#include <future>

#include "test_common.hpp"

namespace {

using parla::test::RuntimeSweep;

class PlacementTest : public RuntimeSweep {};

TEST_P(PlacementTest, DevicesAreListedWithCapacities) {
  parla::Runtime rt(config());
  ASSERT_EQ(rt.devices().size(), static_cast<std::size_t>(1 + gpus()));
  EXPECT_EQ(rt.devices()[0]->name(), "cpu");
  EXPECT_EQ(rt.devices()[0]->kind(), parla::DeviceKind::cpu);
  EXPECT_EQ(rt.devices()[0]->num_workers(), workers());
  EXPECT_EQ(rt.num_workers(), workers());
  for (int g = 0; g < gpus(); ++g) {
    const parla::Device& d = *rt.devices()[static_cast<std::size_t>(1 + g)];
    EXPECT_EQ(d.name(), "gpu(" + std::to_string(g) + ")");
    EXPECT_EQ(d.kind(), parla::DeviceKind::gpu);
    EXPECT_EQ(d.index(), g);
    EXPECT_DOUBLE_EQ(d.vcus_capacity(), 1.0);
    EXPECT_GT(d.memory_capacity(), 0U);
  }
}

TEST_P(PlacementTest, EachDevicePlacementRunsThere) {
  parla::Runtime rt(config());
  std::vector<parla::Task> tasks;
  for (const parla::Placement& p : all_devices()) {
    tasks.push_back(rt.spawn({.placement = p}, [](parla::TaskContext& ctx) { return ctx.device().name(); }));
  }
  tasks.push_back(rt.spawn({.placement = parla::cpu(0)}, [](parla::TaskContext& ctx) { return ctx.device().name(); }));
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    rt.wait(tasks[i]);
    const std::string expect = i == 0 || i + 1 == tasks.size() ? "cpu" : "gpu(" + std::to_string(i - 1) + ")";
    EXPECT_EQ(tasks[i].get<std::string>(), expect);
  }
}

TEST_P(PlacementTest, MissingDeviceIsAnErrorNamingWhatExists) {
  parla::Runtime rt(config());
  try {
    rt.spawn({.placement = parla::gpu(gpus())}, [] {});
    FAIL() << "gpu(" << gpus() << ") does not exist";
  } catch (const parla::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("gpu(" + std::to_string(gpus()) + ")"), std::string::npos) << what;
    EXPECT_NE(what.find("PARLA_SIM_GPUS"), std::string::npos) << what;
    if (gpus() > 0) {
      EXPECT_NE(what.find("has " + std::to_string(gpus()) + " GPU"), std::string::npos) << what;
      EXPECT_NE(what.find("gpu(0)"), std::string::npos) << what;
    } else {
      EXPECT_NE(what.find("no GPUs"), std::string::npos) << what;
    }
  }
  EXPECT_THROW(rt.spawn({.placement = parla::cpu(1)}, [] {}), parla::Error);
  if (gpus() == 0) {
    EXPECT_THROW(rt.spawn({.placement = parla::gpu}, [] {}), parla::Error);
  }
}

TEST_P(PlacementTest, AnyGpuSpreadsByLoad) {
  if (gpus() == 0) GTEST_SKIP() << "needs simulated GPUs";
  parla::Runtime rt(config());
  // Every task blocks until all are mapped, so the load seen by the mapper only grows.
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  const int per_gpu = 3;
  std::vector<parla::Task> tasks;
  for (int i = 0; i < per_gpu * gpus(); ++i) {
    tasks.push_back(rt.spawn({.placement = parla::gpu}, [open](parla::TaskContext& ctx) {
      open.wait();
      return ctx.device().index();
    }));
  }
  gate.set_value();
  std::vector<int> count(static_cast<std::size_t>(gpus()), 0);
  for (auto& t : tasks) {
    rt.wait(t);
    ++count[static_cast<std::size_t>(t.get<int>())];
  }
  for (int g = 0; g < gpus(); ++g) EXPECT_EQ(count[static_cast<std::size_t>(g)], per_gpu) << "gpu(" << g << ")";
}

TEST_P(PlacementTest, AnyOfRunsOnOneOfTheOptions) {
  parla::Runtime rt(config());
  parla::Placement p = gpus() > 0 ? parla::any_of({parla::cpu, parla::gpu(gpus() - 1)}) : parla::any_of({parla::cpu});
  std::vector<parla::Task> tasks;
  for (int i = 0; i < 20; ++i) {
    tasks.push_back(rt.spawn({.placement = p}, [](parla::TaskContext& ctx) { return ctx.device().name(); }));
  }
  for (auto& t : tasks) {
    rt.wait(t);
    const std::string d = t.get<std::string>();
    EXPECT_TRUE(d == "cpu" || d == "gpu(" + std::to_string(gpus() - 1) + ")") << d;
  }
  EXPECT_EQ(parla::any_of({parla::cpu, parla::gpu(1)}).to_string(), "any_of(cpu, gpu(1))");
}

TEST_P(PlacementTest, AllOfHoldsEveryDeviceAtOnce) {
  if (gpus() < 2) GTEST_SKIP() << "needs two simulated GPUs";
  parla::Runtime rt(config());
  std::atomic<int> on_gpu0{0};
  std::atomic<int> overlap{0};
  auto gpu0_task = [&] {
    if (on_gpu0.fetch_add(1) != 0) overlap.fetch_add(1);
    on_gpu0.fetch_sub(1);
  };
  std::vector<parla::Task> tasks;
  parla::Task multi;
  for (int i = 0; i < 40; ++i) {
    if (i == 20) {
      // Runs on gpu(1)'s worker while holding gpu(0): the gpu(0) tasks must not overlap it.
      multi = rt.spawn({.placement = parla::all_of({parla::gpu(1), parla::gpu(0)}), .vcus = 1.0},
                       [&](parla::TaskContext& ctx) {
                         gpu0_task();
                         std::string names;
                         for (const parla::Device* d : ctx.devices()) names += d->name() + " ";
                         return names;
                       });
    }
    tasks.push_back(rt.spawn({.placement = parla::gpu(0), .vcus = 1.0}, gpu0_task));
  }
  rt.wait(multi);
  EXPECT_EQ(multi.get<std::string>(), "gpu(1) gpu(0) ");
  rt.wait_all();
  EXPECT_EQ(overlap.load(), 0);
  EXPECT_EQ(parla::all_of({parla::gpu(0), parla::gpu(1)}).to_string(), "all_of(gpu(0), gpu(1))");
}

PARLA_INSTANTIATE_SWEEP(PlacementTest);

}  // namespace
