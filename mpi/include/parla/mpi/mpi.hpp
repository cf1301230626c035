#pragma once
/// Everything of parla::mpi.
#include "parla/mpi/communicator.hpp"
#include "parla/mpi/environment.hpp"
#include "parla/mpi/mpi_error.hpp"
