// Asymmetric fences: Dekker's handshake with a cheap side and a rare side.
//
// Three places pair a frequent, cheap side with a rare, slow one in a
// handshake where each side stores its flag and then loads the other's: a
// worker changing its registry shard against a walker (registry_shard), a
// worker claiming its runnext task against a thief (take_runnext), and the
// thread a channel's lock is biased to against a thread revoking the bias
// (biased_lock). The store-load order needs a full fence on both sides,
// unless the rare side makes every other thread execute one: membarrier's
// private expedited command does that, with an interrupt to the CPUs that
// run this process's threads. Then the frequent side only keeps the
// compiler from reordering (light_fence), and the rare side calls
// heavy_fence. Where the kernel has no membarrier, both are full fences
// (and channel locks are never biased).
#pragma once

#include <atomic>

#include <weft/detail/config.hpp>

namespace weft::detail {

/// Registers this process for membarrier (once; later calls return at
/// once). Called before the first workers start.
void setup_asymmetric_fence() noexcept;

/// True once membarrier is registered: light_fence is then a compiler
/// barrier. Never goes back to false.
extern std::atomic<bool> g_asym_fence;

/// The rare side's fence: after it, every thread's stores made before it
/// are visible to the caller, or that thread's loads after it see the
/// caller's stores made before it.
void heavy_fence() noexcept;

/// The frequent side's fence (see heavy_fence).
inline void light_fence() noexcept
{
    if (WEFT_LIKELY(g_asym_fence.load(std::memory_order_relaxed)))
        std::atomic_signal_fence(std::memory_order_seq_cst);
    else
        std::atomic_thread_fence(std::memory_order_seq_cst);
}

} // namespace weft::detail
