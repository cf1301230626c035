// Data blocks on simulated GPUs: coherence transitions, random programs against a
// sequential reference, sub-ranges, eviction, locality, runahead, copy/compute overlap.
#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "data_cases.hpp"

namespace {

using namespace parla;
using parla::test::HostKernels;

struct DataParam {
  int workers;
  int gpus;
};

class DataTest : public testing::TestWithParam<DataParam> {
 protected:
  [[nodiscard]] int gpus() const { return GetParam().gpus; }
  [[nodiscard]] RuntimeConfig config() const {
    RuntimeConfig c;
    c.num_workers = GetParam().workers;
    c.sim_gpus = GetParam().gpus;
    c.cuda_gpus = 0;
    c.deadlock_timeout = 10.0;
    c.sim_copy_gbps = 0.0;
    return c;
  }
};

std::vector<DataParam> data_sweep() {
  std::vector<DataParam> out;
  for (int w : {1, 2, 4}) {
    for (int g : {1, 2, 3, 4}) out.push_back({w, g});
  }
  return out;
}

const Device& gpu_dev(Runtime& rt, int i) { return *rt.devices()[static_cast<std::size_t>(1 + i)]; }
const Device& cpu_dev(Runtime& rt) { return *rt.devices()[0]; }

TEST_P(DataTest, CoherenceStateTransitions) {
  if (gpus() < 2) GTEST_SKIP() << "needs 2 simulated GPUs";
  Runtime rt(config());
  DataBlock a(rt, 4096, "A");
  EXPECT_EQ(a.state(cpu_dev(rt)), Coherence::modified);  // the only valid copy
  EXPECT_EQ(a.state(gpu_dev(rt, 0)), Coherence::invalid);
  EXPECT_FALSE(a.allocated_on(gpu_dev(rt, 0)));

  rt.wait(rt.spawn({.placement = gpu(0), .in = {a}}, [] {}));
  EXPECT_EQ(a.state(cpu_dev(rt)), Coherence::shared);
  EXPECT_EQ(a.state(gpu_dev(rt, 0)), Coherence::shared);
  EXPECT_EQ(a.version(), 0U);
  EXPECT_EQ(rt.stats().copies_h2d, 1U);

  rt.wait(rt.spawn({.placement = gpu(0), .inout = {a}}, [] {}));
  EXPECT_EQ(a.state(gpu_dev(rt, 0)), Coherence::modified);
  EXPECT_EQ(a.state(cpu_dev(rt)), Coherence::invalid);
  EXPECT_EQ(a.version(), 1U);
  EXPECT_EQ(rt.stats().copies_h2d, 1U);  // already valid there: no copy

  rt.wait(rt.spawn({.placement = gpu(1), .in = {a}}, [] {}));
  EXPECT_EQ(rt.stats().copies_d2d, 1U);
  EXPECT_EQ(a.state(gpu_dev(rt, 1)), Coherence::shared);
  EXPECT_EQ(a.state(gpu_dev(rt, 0)), Coherence::shared);

  rt.sync_to_host(a);
  EXPECT_EQ(rt.stats().copies_d2h, 1U);
  EXPECT_EQ(a.state(cpu_dev(rt)), Coherence::shared);

  rt.wait(rt.spawn({.placement = gpu(1), .out = {a}}, [] {}));
  EXPECT_EQ(a.state(gpu_dev(rt, 1)), Coherence::modified);
  EXPECT_EQ(a.state(gpu_dev(rt, 0)), Coherence::invalid);
  EXPECT_EQ(a.state(cpu_dev(rt)), Coherence::invalid);
  EXPECT_TRUE(a.allocated_on(gpu_dev(rt, 0)));  // stale copies keep their memory until evicted
  EXPECT_EQ(a.version(), 2U);
  const RuntimeStats s = rt.stats();
  EXPECT_EQ(s.copies_h2d + s.copies_d2h + s.copies_d2d, 3U);  // out copies nothing in
  EXPECT_EQ(s.bytes_h2d, 4096U);
  EXPECT_EQ(s.devices[1].copies_in, 1U);
  EXPECT_EQ(s.devices[2].copies_in, 1U);
}

TEST_P(DataTest, RandomProgramsMatchTheSequentialReference) {
  HostKernels k;
  for (std::uint32_t seed : {1U, 2U, 3U}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    parla::test::run_random_program(config(), k, seed);
  }
}

TEST_P(DataTest, RandomProgramsWithInferenceOffAndExplicitOrder) {
  HostKernels k;
  parla::test::run_random_program(config(), k, 7, /*infer=*/false);
}

TEST_P(DataTest, DisjointSubRangesMoveAndVersionIndependently) {
  Runtime rt(config());
  constexpr std::size_t n = 1 << 14;
  DataBlock a(rt, n, "A");
  const int parts = 4;
  const std::size_t part = n / parts;
  // Each quarter is written on a different GPU; the writers do not depend on each other.
  std::vector<Task> writers;
  for (int p = 0; p < parts; ++p) {
    DataSlice s = a.slice(static_cast<std::size_t>(p) * part, part);
    writers.push_back(rt.spawn({.placement = gpu(p % gpus()), .out = {s}}, [s, p](TaskContext& ctx) {
      auto* x = ctx.data_as<std::uint8_t>(s);
      ctx.stream().enqueue([x, p, part] { std::fill(x, x + part, static_cast<std::uint8_t>(10 + p)); });
    }));
  }
  std::vector<std::uint8_t> seen;
  rt.spawn({.in = {a}}, [&](TaskContext& ctx) {
    const auto* x = ctx.data_as<std::uint8_t>(a);
    seen.assign(x, x + n);
  });
  rt.finish();
  for (int p = 0; p < parts; ++p) {
    EXPECT_EQ(a.version(static_cast<std::size_t>(p) * part), 1U);
    for (std::size_t i = 0; i < part; ++i) {
      ASSERT_EQ(seen[static_cast<std::size_t>(p) * part + i], 10 + p) << "quarter " << p << " byte " << i;
    }
  }
  const RuntimeStats s = rt.stats();
  // Only written bytes come back: one copy per quarter, or fewer when neighbours share a GPU.
  EXPECT_EQ(s.bytes_d2h, n);
  EXPECT_EQ(s.copies_d2h, static_cast<std::uint64_t>(std::min(parts, gpus() == 1 ? 1 : parts)));
  EXPECT_EQ(s.copies_h2d, 0U);
}

TEST_P(DataTest, CleanCopiesAreEvictedAndMemoryStaysWithinCapacity) {
  RuntimeConfig c = config();
  constexpr std::size_t mb = 1 << 20;
  c.sim_gpu_memory = 3 * mb;
  Runtime rt(c);
  std::vector<DataBlock> blocks;
  for (int b = 0; b < 8; ++b) {
    blocks.emplace_back(rt, mb, "B" + std::to_string(b));
    std::fill_n(blocks.back().host_as<std::uint8_t>(), mb, static_cast<std::uint8_t>(b + 1));
  }
  std::atomic<int> good{0};
  for (int round = 0; round < 2; ++round) {
    for (int b = 0; b < 8; ++b) {
      DataBlock blk = blocks[static_cast<std::size_t>(b)];
      rt.spawn({.placement = gpu(b % gpus()), .in = {blk}}, [blk, b, &good](TaskContext& ctx) {
        const auto* x = ctx.data_as<std::uint8_t>(blk);
        ctx.stream().enqueue([x, b, &good] {
          if (x[0] == b + 1 && x[mb - 1] == b + 1) good.fetch_add(1);
        });
      });
    }
  }
  rt.finish();
  EXPECT_EQ(good.load(), 16);
  const RuntimeStats s = rt.stats();
  std::uint64_t evictions = 0;
  for (int g = 0; g < gpus(); ++g) {
    const auto& d = s.devices[static_cast<std::size_t>(1 + g)];
    EXPECT_LE(d.memory_peak, d.memory_capacity) << d.name;
    EXPECT_GT(d.memory_peak, 0U) << d.name;
    evictions += d.evictions;
  }
  if (gpus() < 3) {
    EXPECT_GT(evictions, 0U);  // 8 MiB of inputs through <= 6 MiB of GPUs
  }
}

TEST_P(DataTest, ABlockLargerThanTheDeviceIsAClearError) {
  RuntimeConfig c = config();
  c.sim_gpu_memory = 1 << 20;
  Runtime rt(c);
  DataBlock big(rt, 2 << 20, "big");
  try {
    rt.spawn({.placement = gpu(0), .in = {big}}, [] {});
    FAIL() << "expected parla::Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'big'"), std::string::npos) << what;
    EXPECT_NE(what.find("can never run"), std::string::npos) << what;
  }
  // The cpu can still use it.
  rt.wait(rt.spawn({.in = {big}}, [] {}));
}

TEST_P(DataTest, MappingPrefersTheDeviceHoldingTheInputs) {
  if (gpus() < 2) GTEST_SKIP() << "needs 2 simulated GPUs";
  Runtime rt(config());
  DataBlock a(rt, 1 << 16, "A");
  const int home = gpus() - 1;
  rt.wait(rt.spawn({.placement = gpu(home), .out = {a}}, [] {}));
  for (int i = 0; i < 4; ++i) {
    Task t = rt.spawn({.placement = gpu, .in = {a}}, [](TaskContext& ctx) { return ctx.device().index(); });
    rt.wait(t);
    EXPECT_EQ(t.get<int>(), home);
  }
  EXPECT_EQ(rt.stats().copies_d2d + rt.stats().copies_h2d, 0U);
}

TEST_P(DataTest, GpuTasksCompleteWhenTheirStreamWorkFinishesAndRunAhead) {
  Runtime rt(config());
  TaskSpace T(rt, "T");
  constexpr int n = 6;
  std::atomic<int> finished{0};
  std::atomic<int> ran_ahead{0};
  std::mutex m;
  std::vector<int> order;
  for (int i = 0; i < n; ++i) {
    rt.spawn({.key = T[i], .dependencies = {i ? Dep(T[i - 1]) : Dep{}}, .placement = gpu(0)},
             [&, i](TaskContext& ctx) {
               // Launched before the predecessor's stream work finished: runahead.
               if (finished.load() < i) ran_ahead.fetch_add(1);
               ctx.stream().enqueue([&, i] {
                 std::this_thread::sleep_for(std::chrono::milliseconds(3));
                 std::lock_guard<std::mutex> lock(m);
                 order.push_back(i);
                 finished.fetch_add(1);
               });
             });
  }
  // A cpu dependent waits for the event, not for the body.
  Task after = rt.spawn({.dependencies = {T[n - 1]}}, [&] { return finished.load(); });
  rt.wait(after);
  EXPECT_EQ(after.get<int>(), n);
  std::vector<int> expect(n);
  for (int i = 0; i < n; ++i) expect[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(order, expect);  // stream waits keep the chain's order across streams
  EXPECT_GT(ran_ahead.load(), 0);
}

TEST_P(DataTest, MultiDeviceTasksSeeEveryDeviceStreamAndData) {
  if (gpus() < 2) GTEST_SKIP() << "needs 2 simulated GPUs";
  Runtime rt(config());
  DataBlock a(rt, 256, "A");
  for (int i = 0; i < 256; ++i) a.host_as<std::uint8_t>()[i] = static_cast<std::uint8_t>(i);
  std::vector<int> seen;
  std::mutex m;
  rt.wait(rt.spawn({.placement = all_of({gpu(0), gpu(1)}), .in = {a}}, [&](TaskContext& ctx) {
    ASSERT_EQ(ctx.devices().size(), 2U);
    EXPECT_EQ(&ctx.stream(0).device(), ctx.devices()[0]);
    EXPECT_EQ(&ctx.stream(1).device(), ctx.devices()[1]);
    EXPECT_NE(ctx.data(a, 0), ctx.data(a, 1));
    for (std::size_t d = 0; d < 2; ++d) {
      const auto* x = ctx.data_as<std::uint8_t>(a, d);
      ctx.stream(d).enqueue([x, &seen, &m, d] {
        std::lock_guard<std::mutex> lock(m);
        if (x[0] == 0 && x[255] == 255) seen.push_back(static_cast<int>(d));
      });
    }
  }));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int>{0, 1}));
}

TEST_P(DataTest, MisuseIsReportedWithWhatToDo) {
  Runtime rt(config());
  DataBlock a(rt, 64, "A");
  DataBlock b(rt, 64, "B");
  EXPECT_THROW((void)a.slice(32, 64), Error);
  Task t = rt.spawn({.in = {a}}, [&](TaskContext& ctx) { (void)ctx.data(b); });
  try {
    rt.wait(t);
    FAIL();
  } catch (const TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("did not declare an access to B"), std::string::npos) << e.what();
  }
  Task s = rt.spawn({}, [](TaskContext& ctx) { (void)ctx.stream(); });
  EXPECT_THROW(rt.wait(s), TaskError);
  try {
    rt.finish();
  } catch (const TaskError&) {
  }
}

TEST_P(DataTest, InferredDependenciesOrderWritersAndReaders) {
  Runtime rt(config());
  DataBlock a(rt, 8, "A");
  std::vector<int> log;
  std::mutex m;
  auto note = [&](int v) {
    std::lock_guard<std::mutex> lock(m);
    log.push_back(v);
  };
  rt.spawn({.out = {a}}, [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    note(1);
  });
  for (int r = 0; r < 3; ++r) rt.spawn({.in = {a}}, [&] { note(2); });
  rt.spawn({.inout = {a}}, [&] { note(3); });
  rt.finish();
  EXPECT_EQ(log, (std::vector<int>{1, 2, 2, 2, 3}));
}

INSTANTIATE_TEST_SUITE_P(Sweep, DataTest, testing::ValuesIn(data_sweep()),
                         [](const testing::TestParamInfo<DataParam>& i) {
                           return "w" + std::to_string(i.param.workers) + "_g" + std::to_string(i.param.gpus);
                         });

// Copy/compute overlap: with a slow copy engine, the copy of the next task's input runs on
// the copy stream while the previous task computes on a compute stream.
TEST(DataTrace, CopiesOverlapComputeOnOtherStreams) {
  const std::string path = testing::TempDir() + "parla_data_trace.json";
  {
    RuntimeConfig c;
    c.num_workers = 2;
    c.sim_gpus = 1;
    c.cuda_gpus = 0;
    c.sim_copy_gbps = 1.0;  // 1 MiB takes ~1 ms
    c.trace_path = path;
    Runtime rt(c);
    std::vector<DataBlock> blocks;
    for (int b = 0; b < 6; ++b) blocks.emplace_back(rt, 1 << 20, "X" + std::to_string(b));
    for (int b = 0; b < 6; ++b) {
      rt.spawn({.placement = gpu(0), .in = {blocks[static_cast<std::size_t>(b)]}, .name = "compute" + std::to_string(b)},
               [](TaskContext& ctx) {
                 ctx.stream().enqueue([] { std::this_thread::sleep_for(std::chrono::milliseconds(2)); });
               });
    }
    rt.finish();
    EXPECT_EQ(rt.stats().copies_h2d, 6U);
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good());
  struct Span {
    int tid;
    double start;
    double end;
  };
  std::vector<Span> copies;
  std::vector<Span> computes;
  const std::regex ev(R"re("cat":"(copy|stream)".*"tid":(\d+),"ts":([0-9.]+),"dur":([0-9.]+))re");
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, ev)) continue;
    const Span s{std::stoi(m[2]), std::stod(m[3]), std::stod(m[3]) + std::stod(m[4])};
    (m[1] == "copy" ? copies : computes).push_back(s);
  }
  EXPECT_EQ(copies.size(), 6U);
  EXPECT_EQ(computes.size(), 6U);
  int overlaps = 0;
  for (const Span& c : copies) {
    for (const Span& k : computes) {
      if (c.tid != k.tid && c.start < k.end && k.start < c.end) ++overlaps;
    }
  }
  EXPECT_GT(overlaps, 0) << "no copy overlapped a compute in " << path;
  std::remove(path.c_str());
}

TEST(DataBlocks, LargeHostBlocksAskForTransparentHugePages) {
  // A strided walk over a big block (a column halo: one cell per row) takes a TLB miss per
  // cell on 4 KiB pages. The runtime advises huge pages for the blocks it allocates that
  // are large (where the kernel's THP mode honours advice; "never" ignores it).
  std::ifstream mode("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(mode, line);
  if (line.empty() || line.find("[never]") != std::string::npos) GTEST_SKIP() << "THP off: '" << line << "'";
  if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1) GTEST_SKIP() << "THP disabled for this process (PR_SET_THP_DISABLE)";
  Runtime rt({.num_workers = 1, .sim_gpus = 0});
  DataBlock big(rt, std::size_t{64} << 20, "big");
  // The advice covers the block's 2 MiB-aligned part: the mapping holding its first huge-page
  // boundary, and its THPeligible flag.
  constexpr std::uintptr_t k_huge = std::uintptr_t{2} << 20;
  const auto at = (reinterpret_cast<std::uintptr_t>(big.host_data()) + k_huge - 1) & ~(k_huge - 1);
  std::ifstream smaps("/proc/self/smaps");
  bool inside = false;
  int eligible = -1;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0;
    unsigned long hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find('-')) {
      inside = lo <= at && at < hi;
      continue;
    }
    if (inside && line.rfind("THPeligible:", 0) == 0) {
      eligible = std::stoi(line.substr(12));
      break;
    }
  }
  EXPECT_EQ(eligible, 1) << "the 64 MiB block at 0x" << std::hex << at << " is not eligible for huge pages (THP: " << line << ")";
}

}  // namespace
