// bench_comm: Parla's communication tasks against raw MPI on the same buffers, in one run.
//
//   mpiexec -n 2 --bind-to none build/bench/bench_comm [--workers N] [--max-bytes B] [--reps R]
//
// Workloads, for sizes 8 B ... 16 MiB:
// - ping-pong: rank 0 sends, rank 1 sends it back; half the round trip is the latency, bytes
//   over it the bandwidth. Parla: a chain of send/recv tasks on one block (each waits for the
//   previous by inferred data dependencies), all spawned up front. Raw: MPI_Send/MPI_Recv.
// - halo: both ranks send and receive at once, alternating two buffers, each exchange finished
//   before the next starts, as a stencil code does (Parla: spawn recv B + send A, wait for
//   both, then recv A + send B, ...; raw: MPI_Irecv + MPI_Isend + MPI_Waitall).
// - halo_pipelined (reported, not in the ratio): the same exchanges all spawned up front,
//   ordered only by their data dependencies, so exchange i+1 starts on each rank as soon as
//   its own buffers allow (see docs/performance.md for why large messages convoy this way).
// Each time is the median of --reps repetitions; each repetition runs raw and Parla back to
// back, and a row's "ratio" (raw time / Parla time, i.e. Parla/raw bandwidth) is the median of
// the repetitions' own ratios, so a slow phase of the machine weighs on both sides of it alike.
// The last line on stdout is one JSON object; metrics.latency_us = {"parla", "mpi"} (8 B half
// round trip), metrics.bandwidth_ratio = the lowest ratio over sizes >= 1 MiB (ping-pong and
// halo).
#include <mpi.h>

#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int iterations_for(std::size_t bytes) {
  const std::size_t budget = std::size_t{96} << 20;  // bytes moved per direction per rep
  return static_cast<int>(std::clamp<std::size_t>(budget / (bytes + 4096), 10, 4000));
}

struct Result {
  std::size_t bytes;
  double parla_us;  // per iteration: half round trip (ping-pong) or one exchange (halo)
  double mpi_us;
  double ratio;     // median over the repetitions of raw time / Parla time
};

/// Median of raw[i] / parla[i]: each repetition's own Parla/raw bandwidth.
double paired_ratio(const std::vector<double>& parla, const std::vector<double>& raw) {
  std::vector<double> r;
  for (std::size_t i = 0; i < parla.size(); ++i) r.push_back(raw[i] / parla[i]);
  return median(r);
}

std::string json_rows(const std::vector<Result>& rows, bool halo) {
  std::string s = "[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Result& r = rows[i];
    // Bandwidth: bytes one rank sends per iteration over the time per iteration.
    const double parla_gbps = static_cast<double>(r.bytes) / (r.parla_us * 1e3);
    const double mpi_gbps = static_cast<double>(r.bytes) / (r.mpi_us * 1e3);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "%s{\"bytes\": %zu, \"parla_us\": %.3f, \"mpi_us\": %.3f, \"parla_gbps\": %.3f, "
                  "\"mpi_gbps\": %.3f, \"ratio\": %.3f}",
                  i ? ", " : "", r.bytes, r.parla_us, r.mpi_us, parla_gbps, mpi_gbps,
                  r.ratio);
    s += buf;
  }
  (void)halo;
  return s + "]";
}

}  // namespace

int main(int argc, char** argv) {
  parla::mpi::Environment env(&argc, &argv);
  int workers = 1;
  std::size_t max_bytes = std::size_t{16} << 20;
  int reps = 9;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--workers" && i + 1 < argc) {
      workers = std::atoi(argv[++i]);
    } else if (a == "--max-bytes" && i + 1 < argc) {
      max_bytes = static_cast<std::size_t>(std::atoll(argv[++i]));
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: bench_comm [--workers N] [--max-bytes B] [--reps R]\n");
      return 2;
    }
  }
  int world_size = 0;
  int me = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  if (world_size != 2) {
    if (me == 0) std::fprintf(stderr, "bench_comm needs exactly 2 ranks: mpiexec -n 2 ...\n");
    return 2;
  }
  const int peer = 1 - me;
  std::vector<std::size_t> sizes;
  for (std::size_t s = 8; s <= max_bytes; s *= 4) sizes.push_back(s);
  if (sizes.back() != max_bytes) sizes.push_back(max_bytes);
  for (std::size_t s : {std::size_t{1} << 20, std::size_t{2} << 20, std::size_t{8} << 20}) {
    if (s <= max_bytes && std::find(sizes.begin(), sizes.end(), s) == sizes.end()) sizes.push_back(s);
  }
  std::sort(sizes.begin(), sizes.end());

  const auto t_start = Clock::now();
  std::vector<std::uint8_t> a(max_bytes);
  std::vector<std::uint8_t> b(max_bytes);
  std::vector<Result> pingpong;
  std::vector<Result> halo;
  std::vector<Result> pipelined;  // raw figure: the lockstep raw halo
  bool ok = true;
  std::string transport;  // what carried Parla's messages (PARLA_TRANSPORT)
  {
    parla::Runtime rt({.num_workers = workers, .sim_gpus = 0});
    parla::mpi::Comm comm(rt);
    transport = comm.transport_name();
    MPI_Comm raw = MPI_COMM_NULL;
    MPI_Comm_dup(MPI_COMM_WORLD, &raw);

    for (std::size_t bytes : sizes) {
      const int iters = iterations_for(bytes);
      parla::DataBlock block_a(rt, a.data(), bytes, "a");
      parla::DataBlock block_b(rt, b.data(), bytes, "b");
      std::vector<double> p_pp;
      std::vector<double> m_pp;
      std::vector<double> p_halo;
      std::vector<double> m_halo;
      std::vector<double> p_pipe;
      for (int rep = -1; rep < reps; ++rep) {  // rep -1: warm-up
        // ---- raw MPI ping-pong
        MPI_Barrier(raw);
        auto t0 = Clock::now();
        for (int i = 0; i < iters; ++i) {
          if (me == 0) {
            MPI_Send(a.data(), static_cast<int>(bytes), MPI_BYTE, peer, 0, raw);
            MPI_Recv(a.data(), static_cast<int>(bytes), MPI_BYTE, peer, 0, raw, MPI_STATUS_IGNORE);
          } else {
            MPI_Recv(a.data(), static_cast<int>(bytes), MPI_BYTE, peer, 0, raw, MPI_STATUS_IGNORE);
            MPI_Send(a.data(), static_cast<int>(bytes), MPI_BYTE, peer, 0, raw);
          }
        }
        const double raw_pp = seconds_since(t0) / iters / 2 * 1e6;

        // ---- Parla ping-pong: a chain on one block (send reads it, recv writes it)
        if (me == 0) std::memset(a.data(), 0x5a, bytes);
        MPI_Barrier(raw);
        t0 = Clock::now();
        for (int i = 0; i < iters; ++i) {
          if (me == 0) {
            comm.send(block_a, peer, 0);
            comm.recv(block_a, peer, 0);
          } else {
            comm.recv(block_a, peer, 0);
            comm.send(block_a, peer, 0);
          }
        }
        rt.finish();
        const double parla_pp = seconds_since(t0) / iters / 2 * 1e6;
        rt.sync_to_host(block_a);
        if (a[0] != 0x5a || a[bytes - 1] != 0x5a) ok = false;

        // ---- raw halo exchange
        MPI_Barrier(raw);
        t0 = Clock::now();
        for (int i = 0; i < iters; ++i) {
          std::uint8_t* out = (i % 2 == 0) ? a.data() : b.data();
          std::uint8_t* in = (i % 2 == 0) ? b.data() : a.data();
          MPI_Request req[2];
          MPI_Irecv(in, static_cast<int>(bytes), MPI_BYTE, peer, 1, raw, &req[0]);
          MPI_Isend(out, static_cast<int>(bytes), MPI_BYTE, peer, 1, raw, &req[1]);
          MPI_Waitall(2, req, MPI_STATUSES_IGNORE);
        }
        const double raw_halo = seconds_since(t0) / iters * 1e6;

        // ---- Parla halo exchange: recv B + send A, wait; then recv A + send B, wait; ...
        auto parla_exchanges = [&](bool lockstep) {
          std::memset(a.data(), 0x10 + me, bytes);
          MPI_Barrier(raw);
          const auto start = Clock::now();
          for (int i = 0; i < iters; ++i) {
            const parla::DataBlock& out = (i % 2 == 0) ? block_a : block_b;
            const parla::DataBlock& in = (i % 2 == 0) ? block_b : block_a;
            parla::Task r = comm.recv(in, peer, 1);
            parla::Task s = comm.send(out, peer, 1);
            if (lockstep) {
              rt.wait(r);
              rt.wait(s);
            }
          }
          rt.finish();
          return seconds_since(start) / iters * 1e6;
        };
        const double parla_pipelined = parla_exchanges(false);
        const double parla_halo = parla_exchanges(true);
        // After an even number of exchanges the peer's original A has come back... check the
        // buffer the last exchange received: it holds the peer's original contents.
        const std::uint8_t* last_in = (iters % 2 == 1) ? b.data() : a.data();
        rt.sync_to_host(iters % 2 == 1 ? block_b : block_a);
        if (last_in[0] != 0x10 + peer && last_in[0] != 0x10 + me) ok = false;

        if (rep >= 0) {
          p_pp.push_back(parla_pp);
          m_pp.push_back(raw_pp);
          p_halo.push_back(parla_halo);
          m_halo.push_back(raw_halo);
          p_pipe.push_back(parla_pipelined);
        }
      }
      pingpong.push_back({bytes, median(p_pp), median(m_pp), paired_ratio(p_pp, m_pp)});
      halo.push_back({bytes, median(p_halo), median(m_halo), paired_ratio(p_halo, m_halo)});
      pipelined.push_back({bytes, median(p_pipe), median(m_halo), paired_ratio(p_pipe, m_halo)});
      if (me == 0) {
        std::fprintf(stderr,
                     "%9zu B  ping-pong half RTT: parla %9.2f us  mpi %9.2f us | halo: parla "
                     "%9.2f us  mpi %9.2f us\n",
                     bytes, pingpong.back().parla_us, pingpong.back().mpi_us, halo.back().parla_us,
                     halo.back().mpi_us);
      }
    }
    MPI_Comm_free(&raw);
  }
  int all_ok = ok ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

  double ratio = 1e9;
  for (const auto* rows : {&pingpong, &halo}) {
    for (const Result& r : *rows) {
      if (r.bytes >= (std::size_t{1} << 20)) ratio = std::min(ratio, r.ratio);
    }
  }
  if (ratio > 1e8) ratio = 0;
  if (me == 0) {
    std::printf(
        "{\"app\": \"bench_comm\", \"ranks\": 2, \"workers\": %d, \"devices\": [\"cpu\"], "
        "\"params\": {\"min_bytes\": 8, \"max_bytes\": %zu, \"reps\": %d, \"transport\": \"%s\"}, "
        "\"seconds\": %.3f, \"metrics\": {\"latency_us\": {\"parla\": %.3f, \"mpi\": %.3f}, "
        "\"bandwidth_ratio\": %.3f, \"pingpong\": %s, \"halo\": %s, \"halo_pipelined\": %s}, "
        "\"check\": {\"ok\": %s}}\n",
        workers, max_bytes, reps, transport.c_str(), seconds_since(t_start), pingpong.front().parla_us,
        pingpong.front().mpi_us, ratio, json_rows(pingpong, false).c_str(),
        json_rows(halo, true).c_str(), json_rows(pipelined, true).c_str(), all_ok ? "true" : "false");
  }
  return all_ok ? 0 : 1;
}
