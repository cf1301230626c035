#pragma once
/// Everything of parla::mpi.
#include "parla/mpi/comm.hpp"
#include "parla/mpi/communicator.hpp"
#include "parla/mpi/environment.hpp"
#include "parla/mpi/mpi_error.hpp"
#include "parla/mpi/progress_engine.hpp"
