// Diagnostics: task dumps and runtime counters. [runtime.Stack, SIGQUIT]
#pragma once

#include <cstddef>
#include <ostream>

#include <weft/time.hpp>

namespace weft {

/// Writes every live task to os, like Go's goroutine dump:
///
///     task 7 [chan receive, 12 ms]:
///       consumer(weft::recv_chan<int>) at samples/feed/main.cpp:31
///       pipeline() at samples/feed/main.cpp:50
///     created by task 1 in pipeline() at samples/feed/main.cpp:47
///
/// For each task: its id; its state (`running`, `runnable`, or what it waits
/// for: `chan receive`, `chan send`, `select`, `sleep`, `mutex lock`,
/// `wait_group wait`, `join`, ...) and for how long (to the resolution of
/// the coarse clock, a few ms); its async stack, innermost frame first,
/// each with the co_await it is in; and where it was created: the task that
/// called go (none for a go from another thread) and the function and line
/// of that call (go with at most four arguments; see go()). Tasks started
/// by task_group::go and wait_group::go show that call inside weft, as Go's
/// errgroup children do.
///
/// Thread safety: callable from any thread (tasks included) while a runtime
///   runs; prints "no weft runtime is running" otherwise. The workers stop
///   between tasks while the dump is taken (typically well under a
///   millisecond plus the formatting); a worker that does not reach a
///   stopping point within 0.5 s (a task computing without suspending) has
///   its task shown as `running`, without a stack.
/// Cost when not dumping: a few stores per suspension.
/// SIGQUIT (Ctrl-\) writes this dump to stderr and the program goes on,
/// unless the application installed a SIGQUIT handler of its own.
void dump_tasks(std::ostream& os);

/// Live objects of the running runtime (zeros when none runs).
struct runtime_counters {
    std::size_t tasks = 0;    ///< user tasks, as num_tasks()
    std::size_t timers = 0;   ///< timers, tickers and sleeps that are queued
    std::size_t channels = 0; ///< channels alive (in any runtime or none)
};
runtime_counters counters() noexcept;

/// Dumps the tasks to os if it is still alive after d: arm it around a
/// scope that should not take that long (the seed books'
/// timeoutStackTrace). Destroying the guard disarms it.
///
/// Thread safety: as timer. Lifetime: os must outlive the guard; needs a
///   running runtime (throws std::logic_error otherwise, like timer).
class [[nodiscard]] dump_guard {
public:
    dump_guard(clock::duration d, std::ostream& os);
    dump_guard(const dump_guard&) = delete;
    dump_guard& operator=(const dump_guard&) = delete;
    ~dump_guard() { m_timer.stop(); }

private:
    timer m_timer;
};

/// dump_guard(d, os).
inline dump_guard dump_tasks_after(clock::duration d, std::ostream& os)
{
    return dump_guard(d, os);
}

} // namespace weft
