// Shared helpers of the parla::core tests: the worker x simulated-GPU sweep.
#pragma once

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <parla/parla.hpp>

namespace parla::test {

/// The calling thread's cores (its affinity mask), ascending.
inline std::vector<int> thread_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(pthread_getaffinity_np(pthread_self(), sizeof set, &set), 0);
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

struct Sweep {
  int workers;
  int gpus;
};

/// Every test runs with 1, 2, 4, 8 cpu workers x 0, 1, 4 simulated GPUs.
inline std::vector<Sweep> sweep() {
  std::vector<Sweep> out;
  for (int w : {1, 2, 4, 8}) {
    for (int g : {0, 1, 4}) out.push_back({w, g});
  }
  return out;
}

inline std::string sweep_name(const testing::TestParamInfo<Sweep>& info) {
  return "w" + std::to_string(info.param.workers) + "_g" + std::to_string(info.param.gpus);
}

class RuntimeSweep : public testing::TestWithParam<Sweep> {
 protected:
  [[nodiscard]] int workers() const { return GetParam().workers; }
  [[nodiscard]] int gpus() const { return GetParam().gpus; }
  /// The swept configuration; a bug makes waits fail after 10 s instead of hanging.
  [[nodiscard]] RuntimeConfig config() const {
    RuntimeConfig c;
    c.num_workers = workers();
    c.sim_gpus = gpus();
    c.cuda_gpus = 0;  // the same devices on every machine
    c.deadlock_timeout = 10.0;
    return c;
  }
  /// Every placement this configuration has: cpu, then each GPU.
  [[nodiscard]] std::vector<Placement> all_devices() const {
    std::vector<Placement> out{parla::cpu};
    for (int g = 0; g < gpus(); ++g) out.push_back(parla::gpu(g));
    return out;
  }
};

/// Waits (with a 10 s limit) until `pred` holds; `pred` is evaluated under `m`.
inline bool wait_for(std::mutex& m, std::condition_variable& cv, const std::function<bool()>& pred) {
  std::unique_lock<std::mutex> lock(m);
  return cv.wait_for(lock, std::chrono::seconds(10), pred);
}

}  // namespace parla::test

#define PARLA_INSTANTIATE_SWEEP(Fixture) \
  INSTANTIATE_TEST_SUITE_P(Sweep, Fixture, testing::ValuesIn(parla::test::sweep()), parla::test::sweep_name)
