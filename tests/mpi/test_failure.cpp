// A task that throws on the last rank must bring the whole job down within seconds, with its
// message, while rank 0 waits for a message that rank will now never send. Run by
// expect_job_failure.cmake, which checks the exit status, the message and the time.
#include <mpi.h>

#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  parla::mpi::Environment env(&argc, &argv);
  {
    parla::Runtime rt({.num_workers = 1, .sim_gpus = 0});
    parla::mpi::Comm comm(rt);
    const int me = comm.rank();
    const int last = comm.size() - 1;
    parla::DataBlock block(rt, 1024, "payload");
    parla::DataBlock reply(rt, 1024, "reply");
    const int next = (me + 1) % comm.size();
    const int prev = (me + comm.size() - 1) % comm.size();
    if (argc > 1 && std::string_view(argv[1]) == "--unconnected") {
      // The failing task feeds nothing: no communication task is cancelled, and every rank
      // blocks in finish() on a receive nobody sends. Only the failure watchdog (a failure
      // no wait picked up within its grace period) can end the job.
      if (me == last) {
        rt.spawn({.name = "unconnected"}, [me]() -> void {
          throw std::runtime_error("unconnected boom on rank " + std::to_string(me));
        });
      }
      comm.recv(reply, prev, 0);
      comm.finish();
      std::printf("rank finished normally (this must not happen)\n");
      return 0;
    }
    // A ring in which every rank forwards what it receives, so every rank waits: the last
    // rank's producer fails, its send is cancelled, and nothing ever moves. The last rank's
    // own finish() would wait forever for its receive too: only the watchdog ends the job.
    if (me == last) {
      rt.spawn({.out = {block}, .name = "compute"}, [me]() -> void {
        throw std::runtime_error("boom on rank " + std::to_string(me));
      });
      comm.send(block, next, 0);  // cancelled: its input's producer failed
      comm.recv(reply, prev, 0);
    } else {
      comm.recv(block, prev, 0);
      comm.send(block, next, 0);  // reads what the receive wrote: waits for it
    }
    comm.finish();
  }
  std::printf("rank finished normally (this must not happen on every rank)\n");
  return 0;
}
