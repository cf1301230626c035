// The halo plan of a DistArray: the routes and neighbours of every partition, sends that match
// the peers' receives (partition, side, tag), buffers allocated once and reused, and interior
// work that overlaps a slow exchange instead of waiting for it.
#include <gtest/gtest.h>

#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "test_dist_array_util.hpp"

using parla::Runtime;
using parla::mpi::Boundary;
using parla::mpi::Comm;
using parla::mpi::DistArray;
using parla::mpi::HaloRoute;
using parla::mpi::Region;
using parla::mpi::Stencil;

namespace {

int dir_index(const std::array<int, 3>& d) { return (d[0] + 1) * 9 + (d[1] + 1) * 3 + (d[2] + 1); }

/// Every rank's rows of `mine` (5 values each) on every rank.
std::vector<std::array<long long, 5>> allgather(const std::vector<std::array<long long, 5>>& mine) {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  int count = static_cast<int>(mine.size() * 5);
  std::vector<int> counts(static_cast<std::size_t>(n));
  MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::vector<int> displs(static_cast<std::size_t>(n), 0);
  for (std::size_t i = 1; i < displs.size(); ++i) displs[i] = displs[i - 1] + counts[i - 1];
  std::vector<long long> all(static_cast<std::size_t>(displs.back() + counts.back()));
  MPI_Allgatherv(mine.data(), count, MPI_LONG_LONG, all.data(), counts.data(), displs.data(), MPI_LONG_LONG,
                 MPI_COMM_WORLD);
  std::vector<std::array<long long, 5>> out(all.size() / 5);
  for (std::size_t i = 0; i < out.size(); ++i) std::copy_n(all.begin() + static_cast<std::ptrdiff_t>(5 * i), 5, out[i].begin());
  return out;
}

class Plan : public testing::TestWithParam<std::tuple<int, int, Stencil>> {};  // (gpus, ndim, stencil)

std::string plan_name(const testing::TestParamInfo<std::tuple<int, int, Stencil>>& p) {
  return "gpus" + std::to_string(std::get<0>(p.param)) + "_" + std::to_string(std::get<1>(p.param)) + "d_" +
         parla::mpi::to_string(std::get<2>(p.param));
}

}  // namespace

TEST_P(Plan, RoutesNeighboursAndTagsMatchAcrossRanks) {
  const auto [gpus, ndim, stencil] = GetParam();
  Runtime rt({.num_workers = 2, .sim_gpus = gpus, .deadlock_timeout = 30.0});
  Comm comm(rt);
  std::vector<std::int64_t> shape = ndim == 1 ? std::vector<std::int64_t>{64}
                                    : ndim == 2 ? std::vector<std::int64_t>{30, 20}
                                                : std::vector<std::int64_t>{24, 12, 10};
  DistArray x(rt, comm, {.shape = shape, .ghosts = {1}, .boundary = Boundary::periodic, .stencil = stencil,
                         .devices = parla::mpi::test::devices_for(gpus)});
  const parla::mpi::HaloPlan& plan = x.halo_plan();
  const int per_partition = stencil == Stencil::star ? 2 * ndim : (ndim == 1 ? 2 : ndim == 2 ? 8 : 26);
  EXPECT_EQ(plan.recvs().size(), x.partitions().size() * static_cast<std::size_t>(per_partition));
  const int me = comm.rank();
  std::vector<std::array<long long, 5>> recvs;
  std::vector<std::array<long long, 5>> sends;
  for (const parla::mpi::HaloRecv& r : plan.recvs()) {
    const parla::mpi::Partition& p = x.partitions()[static_cast<std::size_t>(r.partition)];
    EXPECT_EQ(r.recv_box.size(), r.send_box.size());
    if (r.peer_rank != me) {
      EXPECT_EQ(r.route, HaloRoute::remote);
      // (sender, receiver, receiving partition, side, tag)
      recvs.push_back({r.peer_rank, me, p.global_index, dir_index(r.direction), r.tag});
    } else {
      const auto& src = x.partitions()[static_cast<std::size_t>(r.peer_local)];
      EXPECT_EQ(r.route, src.device == p.device ? HaloRoute::local_copy : HaloRoute::local_transfer);
      EXPECT_EQ(src.global_index, r.peer_global);
      EXPECT_EQ(r.buffer.valid(), r.route == HaloRoute::local_transfer);
    }
  }
  for (const parla::mpi::HaloSend& s : plan.sends()) {
    std::array<int, 3> side{};
    for (std::size_t d = 0; d < 3; ++d) side[d] = -s.direction[d];
    sends.push_back({me, s.peer_rank, s.peer_global, dir_index(side), s.tag});
    EXPECT_NE(s.peer_rank, me);
    EXPECT_EQ(s.buffer.valid(), !s.direct);
  }
  // Every receive on any rank has exactly one matching send, and no send is unmatched.
  auto all_recvs = allgather(recvs);
  auto all_sends = allgather(sends);
  std::sort(all_recvs.begin(), all_recvs.end());
  std::sort(all_sends.begin(), all_sends.end());
  EXPECT_EQ(all_recvs, all_sends);
  EXPECT_EQ(plan.executions(), 0u);
  EXPECT_FALSE(plan.describe().empty());
  rt.finish();
}

INSTANTIATE_TEST_SUITE_P(HaloPlan, Plan,
                         testing::Combine(testing::Values(0, 3), testing::Values(1, 2, 3),
                                          testing::Values(Stencil::star, Stencil::box)),
                         plan_name);

TEST(HaloPlan, BuffersAreAllocatedOnceAndReused) {
  Runtime rt({.num_workers = 2, .sim_gpus = 2, .deadlock_timeout = 30.0});
  Comm comm(rt);
  DistArray x(rt, comm, {.shape = {16, 40}, .ghosts = {2}, .boundary = Boundary::periodic, .stencil = Stencil::box,
                         .devices = parla::mpi::test::devices_for(2), .device_axis = 1});
  parla::mpi::test::fill_with_index<double>(x);
  x.exchange_halos();
  std::vector<std::shared_ptr<parla::detail::BlockState>> buffers;
  for (const auto& r : x.halo_plan().recvs()) buffers.push_back(r.buffer.state());
  for (const auto& s : x.halo_plan().sends()) buffers.push_back(s.buffer.state());
  for (int i = 0; i < 5; ++i) x.exchange_halos();
  std::size_t k = 0;
  for (const auto& r : x.halo_plan().recvs()) EXPECT_EQ(r.buffer.state(), buffers[k++]);
  for (const auto& s : x.halo_plan().sends()) EXPECT_EQ(s.buffer.state(), buffers[k++]);
  EXPECT_EQ(x.halo_plan().executions(), 6u);
  x.wait();
  rt.finish();
}

TEST(HaloPlan, InteriorWorkOverlapsASlowExchange) {
  Runtime rt({.num_workers = 2, .sim_gpus = 0, .deadlock_timeout = 30.0});
  Comm comm(rt);
  if (comm.size() < 2) GTEST_SKIP() << "needs a remote neighbour";
  using Clock = std::chrono::steady_clock;
  const std::int64_t n = 32 * comm.size();
  DistArray x(rt, comm, {.shape = {n}, .ghosts = {1}, .boundary = Boundary::periodic});
  DistArray y(rt, comm, {.shape = {n}, .ghosts = {1}, .boundary = Boundary::periodic});
  x.wait();
  y.wait();
  comm.communicator().barrier();
  const auto t0 = Clock::now();
  // Every rank but 0 is slow to produce its halo: its owned cells are written for 1 s first.
  if (comm.rank() != 0) {
    x.for_each({parla::mpi::write(x)}, Region::all,
               [](parla::mpi::PartitionView&) { std::this_thread::sleep_for(std::chrono::seconds(1)); });
  }
  x.exchange_halos();
  std::atomic<double> interior_end{-1.0};
  std::atomic<double> boundary_start{-1.0};
  auto since = [t0] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  y.for_each({parla::mpi::read(x, true), parla::mpi::write(y)}, Region::split,
             [&](parla::mpi::PartitionView& v) {
               if (v.interior()) {
                 interior_end = since();
               } else {
                 boundary_start = since();
               }
             });
  y.wait();
  if (comm.rank() == 0) {
    // The interior ran at once; the boundary waited for the neighbours' late halos.
    EXPECT_LT(interior_end.load(), 0.6);
    EXPECT_GT(boundary_start.load(), 0.9);
  }
  rt.finish();
}
