// parla::core — the node runtime of Parla-MPI. Include this one header to get the whole API.
#pragma once

#include <parla/completion_token.hpp>
#include <parla/data_block.hpp>
#include <parla/dep.hpp>
#include <parla/device.hpp>
#include <parla/error.hpp>
#include <parla/fwd.hpp>
#include <parla/placement.hpp>
#include <parla/resources.hpp>
#include <parla/runtime.hpp>
#include <parla/runtime_config.hpp>
#include <parla/runtime_stats.hpp>
#include <parla/spawn_options.hpp>
#include <parla/stream.hpp>
#include <parla/task.hpp>
#include <parla/task_context.hpp>
#include <parla/task_key.hpp>
#include <parla/task_space.hpp>
#include <parla/variants.hpp>
