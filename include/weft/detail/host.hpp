// The seam through which an application's event loop hosts the runtime
// ("guest mode"): tasks and timers run on the host's threads instead of the
// runtime's workers. It names no type of the host, so the compiled library
// stays free of Asio; <weft/asio.hpp> implements it with asio::post and an
// asio::steady_timer.
#pragma once

#include <atomic>
#include <cstdint>
#include <system_error>

#include <weft/detail/task_header.hpp>

namespace weft {
struct runtime_options;
} // namespace weft

namespace weft::detail {

/// What a hosted runtime asks of its host. The runtime calls both members
/// from any thread, possibly several at once, and never with a lock of its
/// own held except a timer's (a ticker re-arming itself).
class host {
public:
    /// Runs t soon, once, on one of the host's threads, by calling
    /// run_hosted(t) there (never inline inside schedule). t stays valid
    /// until then, unless the runtime stops first: after
    /// runtime_stop() the host must drop t without touching it.
    virtual void schedule(task_header* t) noexcept = 0;

    /// Calls fire_hosted_timers() on one of the host's threads once the
    /// clock reaches `when` (nanoseconds of weft::clock). A call for a later
    /// deadline than one pending may be ignored; an earlier one must not be.
    virtual void arm_timer(std::int64_t when) noexcept = 0;

protected:
    host() = default;
    host(const host&) = default;
    host& operator=(const host&) = default;
    ~host() = default;
};

/// Starts a runtime with no worker threads of its own: ready tasks go to
/// h.schedule, the earliest timer deadline to h.arm_timer. opts.workers is
/// what max_procs() reports (the host's thread count; 0 means 1) and
/// opts.detect_deadlock is ignored (the host can wake tasks at any time).
/// Stopped by runtime_stop(), after the host has stopped calling
/// run_hosted and fire_hosted_timers. Throws std::logic_error when a
/// runtime is running.
void runtime_start_hosted(host& h, const runtime_options& opts);

/// Runs t, scheduled by host::schedule, until it next suspends, on the
/// calling thread. Only while the hosted runtime runs.
void run_hosted(task_header* t) noexcept;

/// The descriptor that is readable while a socket weft::net waits on has
/// readiness to deliver (the process's net poller, an epoll instance;
/// registered edge-triggered in the host's own poller, each new readiness
/// is a new edge). The host watches it and calls poll_hosted_io() on every
/// wake-up. Throws std::system_error if the poller cannot be created.
int hosted_io_fd();

/// Delivers every socket readiness that arrived, without sleeping: the
/// operations waiting for it run their system call on the calling thread
/// and their tasks are scheduled. Callable from any thread, at any time.
void poll_hosted_io() noexcept;

/// Logs (once per host, at error level) that the host's wait for
/// hosted_io_fd() failed with ec, and that it polls on a timer instead.
void log_hosted_io_failure(const std::error_code& ec) noexcept;

/// Tests only: the host treats this many successful waits for
/// hosted_io_fd() as failed ones.
inline std::atomic<int> g_fail_hosted_io_watch{0};

/// Fires the due timers of the hosted runtime; returns the earliest pending
/// deadline afterwards (INT64_MAX: none). Only while it runs.
std::int64_t fire_hosted_timers() noexcept;

} // namespace weft::detail
