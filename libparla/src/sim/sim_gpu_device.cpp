#include "sim/sim_gpu_device.hpp"

// The simulated GPU has no behaviour beyond its capacities yet; this file is the home of
// its streams, events and copies when data blocks arrive.
