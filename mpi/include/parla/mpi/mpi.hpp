#pragma once
/// Everything of parla::mpi.
#include "parla/mpi/box.hpp"
#include "parla/mpi/comm.hpp"
#include "parla/mpi/dist_array.hpp"
#include "parla/mpi/communicator.hpp"
#include "parla/mpi/environment.hpp"
#include "parla/mpi/halo_plan.hpp"
#include "parla/mpi/mpi_error.hpp"
#include "parla/mpi/progress_engine.hpp"
