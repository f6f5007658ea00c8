// The weft benchmark bodies, shared between weft_bench.cpp (command line,
// timing, memory) and weft_chan.cpp (the channel and spawn shapes).
#pragma once

#include <weft/weft.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace weft_bench {

/// One timed run of a shape: n operations, in the unit of its Go peer.
using body_fn = weft::task<> (*)(std::int64_t n);

/// The timed shapes by name (the names of the Go peers).
const std::map<std::string, body_fn>& timed_benchmarks();

/// Resident-set growth per task while `tasks` tasks are parked on channel
/// receives.
weft::task<double> parked_bytes_per_task(std::int64_t tasks);

} // namespace weft_bench
