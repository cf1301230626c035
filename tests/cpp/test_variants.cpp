// Variants: the implementation that runs is the one for the task's device kinds.
#include <string>

#include "test_common.hpp"

namespace {

using parla::DeviceKind;
using parla::test::RuntimeSweep;

class VariantsTest : public RuntimeSweep {};

std::string on(parla::Runtime& rt, const parla::Placement& where,
               const parla::Variants<std::string(int)>& f) {
  parla::Task t = rt.spawn({.placement = where}, [&](parla::TaskContext& ctx) { return f(ctx, 7); });
  rt.wait(t);
  return t.get<std::string>();
}

TEST_P(VariantsTest, DispatchFollowsTheTaskDevices) {
  parla::Variants<std::string(int)> f("f", [](int x) { return "default" + std::to_string(x); });
  f.add(DeviceKind::gpu, [](int x) { return "gpu" + std::to_string(x); })
      .add({DeviceKind::gpu, DeviceKind::gpu}, [](int x) { return "gpu,gpu" + std::to_string(x); });
  parla::Runtime rt(config());
  EXPECT_EQ(on(rt, parla::cpu, f), "default7");
  for (int g = 0; g < gpus(); ++g) EXPECT_EQ(on(rt, parla::gpu(g), f), "gpu7");
  if (gpus() >= 2) {
    EXPECT_EQ(on(rt, parla::all_of({parla::gpu(0), parla::gpu(1)}), f), "gpu,gpu7");
    // No (cpu, gpu) variant: the first device's kind decides, then the fallback.
    EXPECT_EQ(on(rt, parla::all_of({parla::gpu(0), parla::cpu}), f), "gpu7");
    EXPECT_EQ(on(rt, parla::all_of({parla::cpu, parla::gpu(0)}), f), "default7");
  }
}

TEST_P(VariantsTest, NestedCallsAndTasksDispatchOnTheirOwnDevices) {
  parla::Variants<std::string(int)> inner("inner");
  inner.add(DeviceKind::cpu, [](int) { return std::string("cpu"); })
      .add(DeviceKind::gpu, [](int) { return std::string("gpu"); });
  parla::Runtime rt(config());
  parla::Variants<std::string(int)> outer("outer");
  outer.add(DeviceKind::cpu, [&](int) {
    // A variant may spawn a task elsewhere; that task's calls follow its own device.
    auto child = rt.spawn({.placement = gpus() > 0 ? parla::Placement(parla::gpu(0)) : parla::Placement(parla::cpu)},
                          [&](parla::TaskContext& c) { return inner(c, 0); });
    rt.wait(child);
    return "cpu>" + child.get<std::string>();
  });
  parla::Task t = rt.spawn({}, [&](parla::TaskContext& ctx) { return outer(ctx, 0) + "|" + inner(ctx, 0); });
  rt.wait(t);
  const std::string got = t.get<std::string>();
  EXPECT_EQ(got, std::string("cpu>") + (gpus() > 0 ? "gpu" : "cpu") + "|cpu");
}

TEST_P(VariantsTest, NoVariantAndNoFallbackIsAnErrorNamingBoth) {
  parla::Variants<std::string(int)> f("kernel");
  f.add(DeviceKind::gpu, [](int) { return std::string("gpu"); });
  parla::Runtime rt(config());
  try {
    (void)on(rt, parla::cpu, f);
    FAIL() << "expected an error";
  } catch (const parla::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'kernel' has no variant for a task on cpu"), std::string::npos) << what;
    EXPECT_NE(what.find("variants: gpu"), std::string::npos) << what;
  }
  EXPECT_THROW(f.add(DeviceKind::gpu, [](int) { return std::string(); }), parla::Error);
}

INSTANTIATE_TEST_SUITE_P(Sweep, VariantsTest, testing::ValuesIn(parla::test::sweep()), parla::test::sweep_name);

}  // namespace
