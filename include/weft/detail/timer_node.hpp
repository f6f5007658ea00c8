// Timer nodes: the entries of the per-worker timer heaps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace weft {
/// The clock of every weft deadline. [time: monotonic time]
using clock = std::chrono::steady_clock;
} // namespace weft

namespace weft::detail {

class timer_heap;

/// One armed deadline. It lives wherever its owner keeps it (a sleeping
/// task's frame, a timer's shared state), so arming allocates nothing and
/// costs no system call: the heaps are in user space and a worker sleeps in
/// its reactor until the earliest deadline.
///
/// Thread safety: arm and cancel may be called from any thread.
/// Invariants: while queued, m_heap names the heap holding the node and
///   m_when/m_index are guarded by that heap's lock. A worker pops a due
///   node under the lock, sets m_heap to null and m_firing to true, and runs
///   m_callback(node, fire) after unlocking. From then on the callback owns
///   the node: a concurrent timer_cancel waits until the callback calls
///   timer_fire_done(node), and the callback must not touch the node after
///   that call unless it owns it by other means.
struct timer_node {
    enum class event {
        fire, ///< the deadline passed
        drop, ///< the runtime stops with the node still queued
    };
    void (*m_callback)(timer_node*, event) noexcept = nullptr;
    std::int64_t m_when = 0; ///< nanoseconds of clock
    std::uint32_t m_index = 0;
    std::atomic<timer_heap*> m_heap{nullptr};
    std::atomic<bool> m_firing{false};
};

/// Nanoseconds on weft::clock.
inline std::int64_t to_ns(clock::time_point t) noexcept
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline clock::time_point from_ns(std::int64_t ns) noexcept
{
    return clock::time_point(std::chrono::duration_cast<clock::duration>(std::chrono::nanoseconds(ns)));
}
std::int64_t now_ns() noexcept;

/// Adds a deadline when + d, saturating instead of overflowing.
inline std::int64_t deadline_after(std::int64_t now, clock::duration d) noexcept
{
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    if (ns <= 0)
        return now;
    if (now > INT64_MAX - ns)
        return INT64_MAX;
    return now + ns;
}

/// Queues n (which must not be queued) to fire at `when`: on the calling
/// worker's heap, or from other threads on a heap chosen by the runtime.
/// Throws std::logic_error when no runtime is running.
void timer_arm(timer_node* n, std::int64_t when);

/// Unqueues n. True if it was queued: its callback will not run. False if
/// it fired or was never armed; then it returns only once a callback that is
/// running has called timer_fire_done.
bool timer_cancel(timer_node* n) noexcept;

/// Unqueues n without waiting for a callback that is running: for owners
/// that keep the node alive by other means (reference counts).
bool timer_unqueue(timer_node* n) noexcept;

/// Called by a fire callback when it no longer needs the node (see
/// timer_node).
inline void timer_fire_done(timer_node* n) noexcept
{
    n->m_firing.store(false, std::memory_order_release);
}

} // namespace weft::detail
