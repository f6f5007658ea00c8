// The weft benchmark bodies, shared between weft_bench.cpp (command line,
// timing, memory) and weft_chan.cpp (the channel and spawn shapes).
#pragma once

#include <weft/weft.hpp>

#include <chrono>
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

/// TimerArmCancel: n timers created and stopped.
weft::task<> timer_arm_cancel(std::int64_t n);

struct sleep_result {
    double wall_ms;        // Sleep100k
    double bytes_per_task; // Sleep100kMem
};
/// `tasks` tasks each sleeping 1 ms, all waited for.
weft::task<sleep_result> sleep_many(std::int64_t tasks);

struct lateness_result {
    double p50_us; // TickerP50
    double p99_us; // TickerP99
};
/// CtxCancel100k: ns per waiter woken by one cancel.
weft::task<double> cancel_wake(std::int64_t tasks);

/// A 1 ms ticker read for `total`.
weft::task<lateness_result> ticker_lateness(std::chrono::nanoseconds total);

} // namespace weft_bench
