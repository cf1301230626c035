// Communication tasks in the task graph: random ring and all-pairs exchanges (whole blocks and
// sub-ranges, random sizes, random readiness order), collectives, raw buffers, simulated GPUs,
// errors, and the progress engine's idle behaviour. Run at 2, 3 and 4 ranks.
#include <gtest/gtest.h>

#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using parla::DataBlock;
using parla::Runtime;
using parla::TaskContext;
using parla::mpi::Comm;

namespace {

/// Byte i of message `msg` from rank `from` to rank `to`: different for every message, so a
/// cross-matched or shifted message is caught.
std::uint8_t pattern(int from, int to, int msg, std::size_t i) {
  return static_cast<std::uint8_t>((from * 131 + to * 31 + msg * 17 + static_cast<int>(i) * 7 +
                                    static_cast<int>(i >> 8)) & 0xff);
}

/// A short random sleep so tasks become ready in a different order than they were spawned.
void jitter(std::uint32_t seed) {
  std::this_thread::sleep_for(std::chrono::microseconds(seed % 300));
}

/// Size of message `msg` from `from` to `to` in round `seed`: the same on both sides.
std::size_t message_size(unsigned seed, int from, int to, int msg, std::size_t max_bytes) {
  std::mt19937 gen(seed * 7919u + static_cast<unsigned>(from) * 104729u +
                   static_cast<unsigned>(to) * 1299709u + static_cast<unsigned>(msg) * 15485863u);
  // Mostly small, sometimes large (eager and rendezvous protocols both exercised).
  if (gen() % 4 == 0) return 1 + gen() % max_bytes;
  return 1 + gen() % 512;
}

/// This rank's place on the ring of all ranks: the size, its rank and its two neighbours.
struct RingPlace {
  int n;
  int me;
  int next;
  int prev;
};
RingPlace ring_of(const Comm& comm) {
  const int n = comm.size();
  const int me = comm.rank();
  return {n, me, (me + 1) % n, (me + n - 1) % n};
}

class CommTasks : public testing::TestWithParam<int> {};  // parameter: cpu workers

}  // namespace

TEST_P(CommTasks, RingWithRandomSizesAndReusedBlocks) {
  Runtime rt({.num_workers = GetParam(), .sim_gpus = 0});
  Comm comm(rt);
  const auto [n, me, next, prev] = ring_of(comm);
  constexpr std::size_t k_max = 300000;
  DataBlock out(rt, k_max, "out");
  DataBlock in(rt, k_max, "in");
  std::vector<int> errors(64, 0);
  constexpr int k_rounds = 24;
  for (int r = 0; r < k_rounds; ++r) {
    const std::size_t send_bytes = message_size(1, me, next, r, k_max);
    const std::size_t recv_bytes = message_size(1, prev, me, r, k_max);
    // Producer writes `out`; the send reads it; the next round's producer waits for the send
    // (writer after reader: inferred). Same for `in`: recv writes, checker reads.
    rt.spawn({.out = {out.slice(0, send_bytes)}, .name = "fill"},
             [=, slice = out.slice(0, send_bytes)](TaskContext& ctx) {
               jitter(static_cast<std::uint32_t>(r * 37 + me));
               auto* p = ctx.data_as<std::uint8_t>(slice);
               for (std::size_t i = 0; i < send_bytes; ++i) p[i] = pattern(me, next, r, i);
             });
    comm.send(out.slice(0, send_bytes), next, 3);
    comm.recv(in.slice(0, recv_bytes), prev, 3);
    rt.spawn({.in = {in.slice(0, recv_bytes)}, .name = "check"},
             [=, &errors, slice = in.slice(0, recv_bytes)](TaskContext& ctx) {
               const auto* p = ctx.data_as<std::uint8_t>(slice);
               for (std::size_t i = 0; i < recv_bytes; ++i) {
                 if (p[i] != pattern(prev, me, r, i)) {
                   ++errors[static_cast<std::size_t>(r)];
                   break;
                 }
               }
             });
  }
  rt.finish();
  for (int r = 0; r < k_rounds; ++r) EXPECT_EQ(errors[static_cast<std::size_t>(r)], 0) << "round " << r;
}

TEST_P(CommTasks, AllPairsIntoSubRangesWithRandomReadiness) {
  Runtime rt({.num_workers = GetParam(), .sim_gpus = 0});
  Comm comm(rt);
  const int n = comm.size();
  const int me = comm.rank();
  constexpr int k_msgs = 6;  // per ordered pair, all with the same user tag
  constexpr std::size_t k_max = 100000;
  for (unsigned seed = 1; seed <= 3; ++seed) {
    // One receive block per peer holding its k_msgs messages back to back (sub-ranges);
    // one send block per message, each filled by its own producer after a random delay, so
    // sends to one peer are posted in random order.
    std::vector<DataBlock> inbox(static_cast<std::size_t>(n));
    std::vector<std::vector<std::size_t>> offsets(static_cast<std::size_t>(n));
    for (int p = 0; p < n; ++p) {
      if (p == me) continue;
      std::size_t total = 0;
      for (int m = 0; m < k_msgs; ++m) {
        offsets[static_cast<std::size_t>(p)].push_back(total);
        total += message_size(seed, p, me, m, k_max);
      }
      inbox[static_cast<std::size_t>(p)] = DataBlock(rt, total, "inbox" + std::to_string(p));
    }
    std::vector<DataBlock> outbox;
    std::mt19937 gen(seed * 1000u + static_cast<unsigned>(me));
    parla::TaskSpace recvs(rt, "recvs");
    for (int p = 0; p < n; ++p) {
      if (p == me) continue;
      for (int m = 0; m < k_msgs; ++m) {
        const std::size_t bytes = message_size(seed, me, p, m, k_max);
        DataBlock b(rt, bytes, "msg");
        outbox.push_back(b);
        const std::uint32_t delay = gen();
        rt.spawn({.out = {b}, .name = "produce"}, [=](TaskContext& ctx) {
          jitter(delay);
          auto* d = ctx.data_as<std::uint8_t>(b);
          for (std::size_t i = 0; i < bytes; ++i) d[i] = pattern(me, p, m, i);
        });
        comm.send(b, p, 5);
      }
      for (int m = 0; m < k_msgs; ++m) {
        const std::size_t bytes = message_size(seed, p, me, m, k_max);
        // Random explicit dependencies between receives: a later receive may wait for an
        // earlier one or not; either way they are posted in some order and must still match.
        std::vector<parla::Dep> deps;
        if (m > 0 && gen() % 2 == 0) deps.emplace_back(recvs[{p, static_cast<int>(gen() % m)}]);
        comm.recv(inbox[static_cast<std::size_t>(p)].slice(offsets[static_cast<std::size_t>(p)][static_cast<std::size_t>(m)], bytes),
                  p, 5, {.key = recvs[{p, m}], .dependencies = std::move(deps)});
      }
    }
    rt.finish();
    for (int p = 0; p < n; ++p) {
      if (p == me) continue;
      const DataBlock& box = inbox[static_cast<std::size_t>(p)];
      rt.sync_to_host(box);
      const auto* d = box.host_as<std::uint8_t>();
      for (int m = 0; m < k_msgs; ++m) {
        const std::size_t off = offsets[static_cast<std::size_t>(p)][static_cast<std::size_t>(m)];
        const std::size_t bytes = message_size(seed, p, me, m, k_max);
        std::size_t bad = bytes;
        for (std::size_t i = 0; i < bytes; ++i) {
          if (d[off + i] != pattern(p, me, m, i)) {
            bad = i;
            break;
          }
        }
        EXPECT_EQ(bad, bytes) << "seed " << seed << ": message " << m << " from rank " << p
                              << " wrong at byte " << bad;
      }
    }
  }
}

TEST_P(CommTasks, ComputeAndCollectivesInterleaved) {
  Runtime rt({.num_workers = GetParam(), .sim_gpus = 0});
  Comm comm(rt);
  const int n = comm.size();
  const int me = comm.rank();
  constexpr int k_steps = 10;
  std::vector<DataBlock> values;
  for (int s = 0; s < k_steps; ++s) values.emplace_back(rt, 4 * sizeof(double), "v");
  // Each step: compute (random delay) -> allreduce; later steps' computations are quicker,
  // so collectives become ready out of spawn order and the engine must still post them in
  // order on every rank.
  for (int s = 0; s < k_steps; ++s) {
    const DataBlock v = values[static_cast<std::size_t>(s)];
    rt.spawn({.out = {v}}, [=](TaskContext& ctx) {
      std::this_thread::sleep_for(std::chrono::microseconds((k_steps - s) * 300));
      auto* x = ctx.data_as<double>(v);
      for (int i = 0; i < 4; ++i) x[i] = me + s + i * 0.5;
    });
    if (s % 3 == 1) {
      comm.bcast(v, s % n);
    } else {
      comm.allreduce(v, parla::mpi::Datatype::f64, parla::mpi::ReduceOp::sum);
    }
    if (s % 4 == 0) comm.barrier();
  }
  long long counter = me;
  comm.allreduce(&counter, 1, parla::mpi::Datatype::i64, parla::mpi::ReduceOp::max);
  rt.finish();
  EXPECT_EQ(counter, n - 1);
  for (int s = 0; s < k_steps; ++s) {
    rt.sync_to_host(values[static_cast<std::size_t>(s)]);
    const double* x = values[static_cast<std::size_t>(s)].host_as<double>();
    for (int i = 0; i < 4; ++i) {
      double expected = 0;
      if (s % 3 == 1) {
        expected = (s % n) + s + i * 0.5;
      } else {
        for (int r = 0; r < n; ++r) expected += r + s + i * 0.5;
      }
      EXPECT_DOUBLE_EQ(x[i], expected) << "step " << s << " element " << i;
    }
  }
}

TEST_P(CommTasks, RawBuffersWithExplicitDependencies) {
  Runtime rt({.num_workers = GetParam(), .sim_gpus = 0});
  Comm comm(rt);
  const auto [n, me, next, prev] = ring_of(comm);
  std::vector<int> out(1000);
  std::vector<int> in(1000, -1);
  parla::TaskSpace T(rt, "T");
  rt.spawn({.key = T[0]}, [&] {
    for (int i = 0; i < 1000; ++i) out[static_cast<std::size_t>(i)] = me * 10000 + i;
  });
  comm.send(out.data(), out.size() * sizeof(int), next, 0, {.key = T[1], .dependencies = {T[0]}});
  comm.recv(in.data(), in.size() * sizeof(int), prev, 0, {.key = T[2]});
  int sum_ok = 0;
  rt.spawn({.key = T[3], .dependencies = {T[2]}}, [&] {
    sum_ok = 1;
    for (int i = 0; i < 1000; ++i) {
      if (in[static_cast<std::size_t>(i)] != prev * 10000 + i) sum_ok = 0;
    }
  });
  rt.wait(T[3]);
  EXPECT_EQ(sum_ok, 1);
  rt.finish();
}

TEST_P(CommTasks, ACommunicationTaskIsNamedAfterItsMessageBeforeAndAfterItRuns) {
  // What a hang report and an error show: the names are made when asked (no name is
  // formatted per message), from the body the task keeps for that.
  Runtime rt({.num_workers = GetParam(), .sim_gpus = 0});
  Comm comm(rt);
  const auto [n, me, next, prev] = ring_of(comm);
  std::vector<int> out(64, me);
  std::vector<int> in(64, -1);
  std::vector<int> out2(8, me);
  std::vector<int> in2(8, -1);
  parla::TaskSpace T(rt, "gate");
  parla::Task s =
      comm.send(out.data(), out.size() * sizeof(int), next, 3, {.dependencies = {T[0]}});
  parla::Task r = comm.recv(in.data(), in.size() * sizeof(int), prev, 3, {.dependencies = {T[0]}});
  parla::Task named = comm.send(out2.data(), out2.size() * sizeof(int), next, 4,
                                {.dependencies = {T[0]}, .name = "halo east"});
  parla::Task keyed = comm.recv(in2.data(), in2.size() * sizeof(int), prev, 4, {.key = T[1]});
  // A DataBlock slice's send and receive (at an offset inside the block) keep no name either.
  DataBlock bo(rt, 16 * sizeof(int), "bo");
  DataBlock bi(rt, 16 * sizeof(int), "bi");
  rt.spawn({.dependencies = {T[0]}, .out = {bo}}, [=](TaskContext& ctx) {
    int* p = ctx.data_as<int>(bo);
    for (int i = 0; i < 16; ++i) p[i] = 100 * me + i;
  });
  parla::Task bs = comm.send(bo.slice(8 * sizeof(int), 8 * sizeof(int)), next, 5);
  parla::Task br = comm.recv(bi.slice(4 * sizeof(int), 8 * sizeof(int)), prev, 5);
  const std::string send_name = "mpi.send(to " + std::to_string(next) + ", tag 3)";
  const std::string recv_name = "mpi.recv(from " + std::to_string(prev) + ", tag 3)";
  EXPECT_EQ(s.state(), parla::TaskState::pending);
  EXPECT_EQ(s.name(), send_name);
  EXPECT_EQ(r.name(), recv_name);
  EXPECT_EQ(named.name(), "halo east");
  EXPECT_EQ(keyed.name(), T[1].name());
  EXPECT_EQ(bs.name(), "mpi.send(to " + std::to_string(next) + ", tag 5)");
  EXPECT_EQ(br.name(), "mpi.recv(from " + std::to_string(prev) + ", tag 5)");
  rt.spawn({.key = T[0]}, [] {});
  rt.wait_all();
  EXPECT_EQ(in, std::vector<int>(64, prev));
  EXPECT_EQ(in2, std::vector<int>(8, prev));
  std::vector<int> got(16, -2);
  rt.spawn({.in = {bi}}, [&](TaskContext& ctx) {
    const int* p = ctx.data_as<int>(bi);
    std::copy(p, p + 16, got.begin());
  });
  rt.wait_all();
  for (int i = 4; i < 12; ++i) {
    // Elements 8..15 of the previous rank's block land in elements 4..11 of this one.
    EXPECT_EQ(got[static_cast<std::size_t>(i)], 100 * prev + i + 4) << "element " << i;
  }
  EXPECT_EQ(s.state(), parla::TaskState::completed);
  EXPECT_EQ(s.name(), send_name);
  EXPECT_EQ(r.name(), recv_name);
  rt.finish();
}

TEST_P(CommTasks, SimulatedGpuDataIsSentAndReceived) {
  Runtime rt({.num_workers = GetParam(), .sim_gpus = 2});
  Comm comm(rt);
  const auto [n, me, next, prev] = ring_of(comm);
  constexpr std::size_t k_bytes = 200000;
  DataBlock a(rt, k_bytes, "a");
  DataBlock b(rt, k_bytes, "b");
  std::atomic<int> bad{-1};
  for (int r = 0; r < 4; ++r) {
    // Produced on gpu(r % 2): the send's host copy comes from that simulated GPU's memory;
    // the received data goes back to the other GPU for the check.
    rt.spawn({.placement = parla::gpu(r % 2), .out = {a}}, [=](TaskContext& ctx) {
      auto* p = ctx.data_as<std::uint8_t>(a);
      ctx.stream().enqueue([=] {
        for (std::size_t i = 0; i < k_bytes; ++i) p[i] = pattern(me, next, r, i);
      });
    });
    comm.send(a, next, 1);
    comm.recv(b, prev, 1);
    rt.spawn({.placement = parla::gpu((r + 1) % 2), .in = {b}}, [=, &bad](TaskContext& ctx) {
      const auto* p = ctx.data_as<std::uint8_t>(b);
      ctx.stream().enqueue([=, &bad] {
        int first_bad = -1;
        for (std::size_t i = 0; i < k_bytes; ++i) {
          if (p[i] != pattern(prev, me, r, i)) {
            first_bad = static_cast<int>(i);
            break;
          }
        }
        if (first_bad >= 0) bad.store(first_bad);
      });
    });
  }
  rt.finish();
  EXPECT_EQ(bad.load(), -1) << "first wrong byte";
}

INSTANTIATE_TEST_SUITE_P(Workers, CommTasks, testing::Values(1, 2));

TEST(CommErrors, SizeMismatchNamesPeerAndTag) {
  Runtime rt({.num_workers = 1, .sim_gpus = 0});
  Comm comm(rt, MPI_COMM_WORLD, {.abort_on_failure = 0});
  const int n = comm.size();
  const int me = comm.rank();
  std::vector<char> big(64, 'x');
  std::vector<char> small(32);
  comm.send(big.data(), big.size(), (me + 1) % n, 9);
  parla::Task r = comm.recv(small.data(), small.size(), (me + n - 1) % n, 9);
  try {
    rt.wait(r);
    FAIL() << "a 64-byte message was received into 32 bytes without an error";
  } catch (const parla::TaskError& e) {
    const std::string what = e.what();
    // The failing call: MPI_Irecv (MPI transport) or ucp_tag_recv_nbx (UCX transport).
    const std::string call =
        std::string(comm.transport_name()) == "ucx" ? "ucp_tag_recv_nbx" : "MPI_Irecv";
    EXPECT_NE(what.find(call), std::string::npos) << what;
    if (call == "ucp_tag_recv_nbx") {
      EXPECT_NE(what.find("disagree about the message size"), std::string::npos) << what;
    }
    EXPECT_NE(what.find("from rank " + std::to_string((me + n - 1) % n)), std::string::npos) << what;
    EXPECT_NE(what.find("tag 9"), std::string::npos) << what;
    // The failed task is named after its message (the name is made when asked, not per spawn).
    const std::string name = "mpi.recv(from " + std::to_string((me + n - 1) % n) + ", tag 9)";
    EXPECT_EQ(e.task_name(), name) << what;
    EXPECT_EQ(r.name(), name);
  }
  try {
    rt.finish();
  } catch (const parla::TaskError&) {
  }
  comm.communicator().barrier();
}

TEST(CommErrors, BadPeerAndTagAreRejectedAtSpawn) {
  Runtime rt({.num_workers = 1, .sim_gpus = 0});
  Comm comm(rt);
  int x = 0;
  EXPECT_THROW(comm.send(&x, sizeof x, comm.size(), 0), std::invalid_argument);
  EXPECT_THROW(comm.recv(&x, sizeof x, -1, 0), std::invalid_argument);
  EXPECT_THROW(comm.send(&x, sizeof x, 0, comm.max_tag() + 1), std::invalid_argument);
  EXPECT_GE(comm.max_tag(), 15);
}

TEST(CommErrors, UcxTransportIsBuiltOrReportedAsNotBuilt) {
  Runtime rt({.num_workers = 1, .sim_gpus = 0});
  if (!parla::mpi::ucx_transport_built()) {
    try {
      Comm comm(rt, MPI_COMM_WORLD, {.transport = parla::mpi::Transport::ucx});
      FAIL() << "a UCX transport was created in a build without UCX";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("not built yet"), std::string::npos) << e.what();
    }
    return;
  }
  // Built: an explicit request gets it (collective: every rank makes one), and a message
  // around the ring goes through it.
  Comm comm(rt, MPI_COMM_WORLD, {.transport = parla::mpi::Transport::ucx});
  EXPECT_STREQ(comm.transport_name(), "ucx");
  const int n = comm.size();
  const int me = comm.rank();
  int out = 1000 + me;
  int in = -1;
  comm.send(&out, sizeof out, (me + 1) % n, 3);
  comm.recv(&in, sizeof in, (me + n - 1) % n, 3);
  rt.finish();
  EXPECT_EQ(in, 1000 + (me + n - 1) % n);
}

TEST(CommErrors, TransportFollowsTheEnvironment) {
  Runtime rt({.num_workers = 1, .sim_gpus = 0});
  const char* env = std::getenv("PARLA_TRANSPORT");
  const std::string wanted = env != nullptr ? env : "";
  if (wanted == "ucx" && !parla::mpi::ucx_transport_built()) {
    GTEST_SKIP() << "PARLA_TRANSPORT=ucx in a build without UCX";
  }
  Comm comm(rt);
  EXPECT_STREQ(comm.transport_name(), wanted == "ucx" ? "ucx" : "mpi");
}

TEST(ProgressEngine, ClosingWithAnUnmatchedReceiveFailsItWithoutHanging) {
  // A receive that no rank ever sends to is outstanding when the Comm closes: it fails, is
  // cancelled in the transport, and the transport's teardown (UCX: endpoint close, worker
  // and context destroy) finishes on every rank.
  Runtime rt({.num_workers = 1, .sim_gpus = 0});
  auto comm =
      std::make_unique<Comm>(rt, MPI_COMM_WORLD, parla::mpi::CommConfig{.abort_on_failure = 0});
  const int n = comm->size();
  const int me = comm->rank();
  std::vector<char> buffer(4096);
  parla::Task r = comm->recv(buffer.data(), buffer.size(), (me + n - 1) % n, 7);
  std::vector<char> big(1 << 20, 'b');
  std::uint64_t expected_posted = 1;
  if (std::string(comm->transport_name()) == "ucx") {
    // And a rendezvous-sized send that no receive matches: its endpoint must still close.
    // (Not with MPI: Open MPI's MPI_Finalize may wait for such a send.)
    comm->send(big.data(), big.size(), (me + 1) % n, 8);
    expected_posted = 2;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (comm->progress_stats().posted < expected_posted &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto start = std::chrono::steady_clock::now();
  comm->close();
  EXPECT_THROW(rt.wait(r), parla::TaskError);
  try {
    rt.finish();
  } catch (const parla::TaskError&) {
  }
  comm.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(ProgressEngine, SleepsWhenNothingIsOutstanding) {
  Runtime rt({.num_workers = 1, .sim_gpus = 0});
  Comm comm(rt);
  comm.barrier();
  rt.finish();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto before = comm.progress_stats();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto after = comm.progress_stats();
  EXPECT_EQ(after.polls, before.polls) << "the engine polled with nothing outstanding";
  // Only the watchdog's 100 ms period wakes it.
  EXPECT_LE(after.wakeups - before.wakeups, 8u);
  EXPECT_EQ(comm.progress_stats().posted, comm.progress_stats().completed);
}

/// A runtime with one worker, its Comm, and this rank's neighbours on the ring of ranks.
struct Ring {
  Runtime rt{parla::RuntimeConfig{.num_workers = 1, .sim_gpus = 0}};
  Comm comm{rt};
  int me = comm.rank();
  int next = (me + 1) % comm.size();
  int prev = (me + comm.size() - 1) % comm.size();
};

TEST(ProgressEngine, AWaitingThreadCompletesLockstepExchangesItself) {
  // A stencil loop's exchange: spawn receive and send, wait for both, repeat. The waiting
  // (main) thread makes the engine's passes itself, so the exchange needs no hand-off to the
  // engine thread; eager (64 B) and rendezvous (256 KiB) sizes, every byte checked.
  Ring ring;
  auto& [rt, comm, me, next, prev] = ring;
  for (const std::size_t bytes : {std::size_t{64}, std::size_t{256} << 10}) {
    std::vector<std::uint8_t> out(bytes);
    std::vector<std::uint8_t> in(bytes);
    const auto before = comm.progress_stats();
    int wrong = 0;
    for (int step = 0; step < 100; ++step) {
      for (std::size_t i = 0; i < bytes; ++i) out[i] = pattern(me, next, step, i);
      parla::Task r = comm.recv(in.data(), bytes, prev, 5);
      parla::Task s = comm.send(out.data(), bytes, next, 5);
      rt.wait(r);
      rt.wait(s);
      for (std::size_t i = 0; i < bytes; ++i) wrong += in[i] != pattern(prev, me, step, i) ? 1 : 0;
    }
    EXPECT_EQ(wrong, 0) << bytes << " B exchanges";
    EXPECT_GT(comm.progress_stats().driven, before.driven)
        << "no wait drove the engine: every exchange was handed to the engine thread";
  }
  rt.finish();
}

TEST(ProgressEngine, ASendThatNoWaitFollowsIsStillPosted) {
  // The main thread spawns a send and then polls the task instead of waiting in the runtime
  // (as a program busy with its own work does). Its submission does not wake a napping
  // engine — that thread usually waits and drives next — so the engine must still post it
  // on its own, both right after other traffic (napping) and after a long idle period.
  Ring ring;
  auto& [rt, comm, me, next, prev] = ring;
  for (const int idle_ms : {0, 50, 0}) {
    comm.barrier();
    rt.wait_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms));
    int value_out = 100 * idle_ms + me;
    int value_in = -1;
    parla::Task s = comm.send(&value_out, sizeof value_out, next, 9);
    parla::Task r = comm.recv(&value_in, sizeof value_in, prev, 9);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while ((s.state() != parla::TaskState::completed || r.state() != parla::TaskState::completed) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ASSERT_EQ(s.state(), parla::TaskState::completed) << "the send was never posted";
    ASSERT_EQ(r.state(), parla::TaskState::completed);
    EXPECT_EQ(value_in, 100 * idle_ms + prev);
  }
  rt.finish();
}

TEST(ProgressEngine, ProgressPostsWhatTheCallingThreadReleased) {
  // A thread that released a send and a receive and then computes instead of waiting calls
  // Comm::progress(): its own passes post and complete them (a napping engine is not woken by
  // its deferred submissions). Several rounds: the engine thread may win a pass now and then,
  // never all of them.
  Ring ring;
  auto& [rt, comm, me, next, prev] = ring;
  int moved = 0;
  for (int round = 0; round < 5; ++round) {
    comm.barrier();
    rt.wait_all();
    int value_out = 1000 * round + me;
    int value_in = -1;
    parla::Task s = comm.send(&value_out, sizeof value_out, next, 11);
    parla::Task r = comm.recv(&value_in, sizeof value_in, prev, 11);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while ((s.state() != parla::TaskState::completed || r.state() != parla::TaskState::completed) &&
           std::chrono::steady_clock::now() < deadline) {
      if (comm.progress()) ++moved;
    }
    ASSERT_EQ(s.state(), parla::TaskState::completed);
    ASSERT_EQ(r.state(), parla::TaskState::completed);
    EXPECT_EQ(value_in, 1000 * round + prev);
  }
  EXPECT_GT(moved, 0) << "the calling thread's passes never posted or completed anything";
  rt.finish();
  comm.close();
  EXPECT_FALSE(comm.progress()) << "a closed Comm makes no passes";
}

TEST(ProgressEngine, ThousandsOfReceivesPostedAheadCompleteInAnyOrder) {
  // A program that spawns a whole time loop's receives up front (more than the engine tests
  // in one pass) while the peer sends them newest first, then in a shuffled order: every
  // receive completes with its own message, whatever its place among the outstanding ones.
  Ring ring;
  auto& [rt, comm, me, next, prev] = ring;
  constexpr int k_messages = 1500;
  for (const bool shuffled : {false, true}) {
    std::vector<std::int64_t> in(k_messages, -1);
    std::vector<std::int64_t> out(k_messages);
    std::vector<parla::Task> recvs;
    for (int k = 0; k < k_messages; ++k) {
      recvs.push_back(comm.recv(&in[static_cast<std::size_t>(k)], sizeof(std::int64_t), prev, k));
    }
    comm.barrier();  // every rank has spawned its receives before any send
    std::vector<int> order(k_messages);
    for (int k = 0; k < k_messages; ++k) order[static_cast<std::size_t>(k)] = k_messages - 1 - k;
    if (shuffled) std::shuffle(order.begin(), order.end(), std::mt19937(1234u + static_cast<unsigned>(me)));
    for (int k : order) {
      out[static_cast<std::size_t>(k)] = 1000000 * me + k;
      comm.send(&out[static_cast<std::size_t>(k)], sizeof(std::int64_t), next, k);
    }
    rt.wait_all();
    int wrong = 0;
    for (int k = 0; k < k_messages; ++k) {
      EXPECT_EQ(recvs[static_cast<std::size_t>(k)].state(), parla::TaskState::completed);
      wrong += in[static_cast<std::size_t>(k)] != 1000000 * prev + k ? 1 : 0;
    }
    EXPECT_EQ(wrong, 0) << (shuffled ? "shuffled" : "newest first") << " sends";
  }
  rt.finish();
}

TEST(ProgressEngine, ClosingWithManyReceivesOutstandingFailsOnlyTheUnmatched) {
  // Many receives outstanding, the peer sends only every third: those complete with their
  // data (their slots are then empty among live ones); closing fails exactly the others.
  Runtime rt({.num_workers = 1, .sim_gpus = 0});
  auto comm =
      std::make_unique<Comm>(rt, MPI_COMM_WORLD, parla::mpi::CommConfig{.abort_on_failure = 0});
  const auto [n, me, next, prev] = ring_of(*comm);
  constexpr int k_messages = 600;
  std::vector<int> in(k_messages, -1);
  std::vector<int> out(k_messages);
  std::vector<parla::Task> recvs;
  for (int k = 0; k < k_messages; ++k) {
    recvs.push_back(comm->recv(&in[static_cast<std::size_t>(k)], sizeof(int), prev, k));
  }
  std::vector<parla::Task> sends;
  for (int k = 0; k < k_messages; k += 3) {
    out[static_cast<std::size_t>(k)] = 10000 * me + k;
    sends.push_back(comm->send(&out[static_cast<std::size_t>(k)], sizeof(int), next, k));
  }
  for (int k = 0; k < k_messages; k += 3) rt.wait(recvs[static_cast<std::size_t>(k)]);
  for (const parla::Task& s : sends) rt.wait(s);
  MPI_Barrier(MPI_COMM_WORLD);
  comm->close();
  int completed = 0;
  int failed = 0;
  for (int k = 0; k < k_messages; ++k) {
    const parla::Task& r = recvs[static_cast<std::size_t>(k)];
    if (k % 3 == 0) {
      EXPECT_EQ(r.state(), parla::TaskState::completed) << "receive " << k;
      EXPECT_EQ(in[static_cast<std::size_t>(k)], 10000 * prev + k);
      ++completed;
    } else {
      EXPECT_THROW(rt.wait(r), parla::TaskError) << "receive " << k;
      ++failed;
    }
  }
  EXPECT_EQ(completed, k_messages / 3);
  EXPECT_EQ(failed, k_messages - k_messages / 3);
  try {
    rt.finish();
  } catch (const parla::TaskError&) {
  }
  comm.reset();
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(ProgressEngine, IdleWorkersCarryAPipelineNoThreadWaitsFor) {
  // A ring pipeline (receive, add one, send on) spawned by the main thread, which then polls
  // the last task instead of waiting in the runtime. The worker, idle between its tasks,
  // posts and completes the messages itself (its passes count as driven), not only the
  // engine thread.
  Ring ring;
  auto& [rt, comm, me, next, prev] = ring;
  constexpr int k_steps = 200;
  std::vector<std::int64_t> inbox(k_steps, -1);
  std::vector<std::int64_t> outbox(k_steps, -1);
  const auto before = comm.progress_stats();
  parla::Task last;
  for (int step = 0; step < k_steps; ++step) {
    const auto i = static_cast<std::size_t>(step);
    parla::Task r = comm.recv(&inbox[i], sizeof(std::int64_t), prev, 3);
    std::int64_t* in_value = step == 0 ? nullptr : &inbox[i - 1];
    parla::Task add = rt.spawn({.dependencies = step == 0 ? std::vector<parla::Dep>{}
                                                         : std::vector<parla::Dep>{last}},
                               [&outbox, in_value, i, me] {
                                 outbox[i] = (in_value == nullptr ? me : *in_value) + 1;
                               });
    comm.send(&outbox[i], sizeof(std::int64_t), next, 3, {.dependencies = {add}});
    last = r;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (last.state() != parla::TaskState::completed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(last.state(), parla::TaskState::completed) << "the pipeline stalled";
  // Each value went once round the ring per step: step s holds the (s + 1)-th increment of
  // the value that started s ranks back.
  const int n = comm.size();
  EXPECT_EQ(inbox[k_steps - 1], ((me - k_steps % n) % n + n) % n + k_steps);
  EXPECT_GT(comm.progress_stats().driven, before.driven)
      << "no worker drove the engine: every message was handed to the engine thread";
  rt.finish();
}

TEST(ProgressEngine, CommunicatorTrafficDoesNotMatchTheApplications) {
  // The application sends on WORLD with the same peers and tag while the runtime exchanges
  // on its duplicate; each side receives only its own messages.
  Runtime rt({.num_workers = 1, .sim_gpus = 0});
  Comm comm(rt);
  const int n = comm.size();
  const int me = comm.rank();
  int rt_out = 2000 + me;
  int rt_in = -1;
  comm.send(&rt_out, sizeof rt_out, (me + 1) % n, 0);
  comm.recv(&rt_in, sizeof rt_in, (me + n - 1) % n, 0);
  int app_out = 1000 + me;
  int app_in = -1;
  MPI_Sendrecv(&app_out, 1, MPI_INT, (me + 1) % n, 0, &app_in, 1, MPI_INT, (me + n - 1) % n, 0,
               MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  rt.finish();
  EXPECT_EQ(app_in, 1000 + (me + n - 1) % n);
  EXPECT_EQ(rt_in, 2000 + (me + n - 1) % n);
}
