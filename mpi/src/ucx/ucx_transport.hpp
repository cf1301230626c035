#pragma once
/// The UCX transport of parla::mpi: point-to-point send/recv over UCP tag matching.
/// Built only when PARLA_ENABLE_UCX; everything here runs on the progress engine's thread.
#include <mpi.h>

#include <memory>

#include "parla/mpi/progress_engine.hpp"

namespace parla::mpi::ucx {

/// Makes a UCP context and worker (UCS_THREAD_MODE_SINGLE), exchanges worker addresses over
/// `comm` (MPI_Allgather of the sizes, then MPI_Allgatherv) and connects an endpoint to every
/// rank. Collective over `comm`; if UCX fails on any rank, every rank throws.
std::unique_ptr<P2pTransport> make_transport(MPI_Comm comm);

}  // namespace parla::mpi::ucx
