// Random DAGs: every edge respected, every task run exactly once, under every sweep point.
#include <atomic>
#include <memory>
#include <random>

#include "test_common.hpp"

namespace {

using parla::test::RuntimeSweep;

class RandomDagTest : public RuntimeSweep {};

TEST_P(RandomDagTest, EveryEdgeRespectedEveryTaskOnce) {
  parla::Runtime rt(config());
  const auto devices = all_devices();
  constexpr int graphs = 300;
  std::mt19937 rng(12345U + static_cast<unsigned>(workers() * 10 + gpus()));
  int violations_total = 0;
  for (int g = 0; g < graphs; ++g) {
    const int n = std::uniform_int_distribution<int>(2, 40)(rng);
    std::vector<std::vector<int>> preds(static_cast<std::size_t>(n));
    for (int i = 1; i < n; ++i) {
      const int k = std::uniform_int_distribution<int>(0, std::min(i, 4))(rng);
      for (int e = 0; e < k; ++e) preds[static_cast<std::size_t>(i)].push_back(std::uniform_int_distribution<int>(0, i - 1)(rng));
    }
    // Spawn in a random order: many dependencies name keys not spawned yet.
    std::vector<int> order(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    std::shuffle(order.begin(), order.end(), rng);

    auto finished = std::make_unique<std::atomic<bool>[]>(static_cast<std::size_t>(n));
    auto runs = std::make_unique<std::atomic<int>[]>(static_cast<std::size_t>(n));
    std::atomic<int> violations{0};
    parla::TaskSpace T(rt, "G" + std::to_string(g));
    for (int i : order) {
      std::vector<parla::Dep> deps;
      for (int p : preds[static_cast<std::size_t>(i)]) deps.emplace_back(T[p]);
      const bool on_device = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
      const double vcus = std::uniform_int_distribution<int>(0, 2)(rng) * 0.25;
      rt.spawn({.key = T[i],
                .dependencies = std::move(deps),
                .placement = on_device ? devices[rng() % devices.size()] : parla::Placement{},
                .vcus = vcus},
               [&, i] {
                 for (int p : preds[static_cast<std::size_t>(i)]) {
                   if (!finished[static_cast<std::size_t>(p)].load(std::memory_order_acquire)) violations.fetch_add(1);
                 }
                 runs[static_cast<std::size_t>(i)].fetch_add(1, std::memory_order_relaxed);
                 finished[static_cast<std::size_t>(i)].store(true, std::memory_order_release);
               });
    }
    rt.wait(T);
    violations_total += violations.load();
    for (int i = 0; i < n; ++i) ASSERT_EQ(runs[static_cast<std::size_t>(i)].load(), 1) << "graph " << g << " task " << i;
  }
  EXPECT_EQ(violations_total, 0);
}

PARLA_INSTANTIATE_SWEEP(RandomDagTest);

}  // namespace
