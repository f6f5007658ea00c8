// A 4-ary min-heap of timer nodes, one per worker (Go's per-P timer heap).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include <weft/detail/biased_lock.hpp>
#include <weft/detail/spinlock.hpp>
#include <weft/detail/timer_node.hpp>

namespace weft::detail {

/// Invariants:
///   m_nodes is a 4-ary heap ordered by `when`; for every i,
///   m_nodes[i].when == m_nodes[i].node->m_when, m_nodes[i].node->m_index == i
///   and m_nodes[i].node->m_heap == this. Each entry carries its node's
///   deadline so that sifting compares within the array and touches a node
///   only to move it: with a thousand armed timers (an HTTP server's read
///   deadlines), reading m_when through the pointers missed the cache on
///   most comparisons. m_nodes and the nodes'
///   m_when / m_index are guarded by m_lock, a biased_lock: the heap's own worker
///   takes it nearly every time (arming, stopping and firing its timers),
///   other threads now and then (a timer stopped elsewhere, the watcher
///   firing an idle worker's timers).
///   m_earliest is m_nodes[0].when, or INT64_MAX when empty; written under
///   m_lock, read without it (a stale value only makes a reader look again
///   or sleep until an earlier deadline than needed).
class timer_heap {
public:
    timer_heap() { m_nodes.reserve(64); }

    /// Queues n at `when`. Returns true if n became the earliest.
    bool push(timer_node* n, std::int64_t when);

    /// Unqueues n if this heap still holds it (n->m_heap == this).
    bool remove(timer_node* n) noexcept;

    /// Pops up to `max` nodes due at `now` into out, marking each as firing;
    /// the caller runs their callbacks after this returns (without the lock).
    std::size_t pop_due(std::int64_t now, timer_node** out, std::size_t max) noexcept;

    /// Pops every node (runtime shutdown), marking each as firing.
    std::size_t pop_all(timer_node** out, std::size_t max) noexcept;

    std::int64_t earliest() const noexcept { return m_earliest.load(std::memory_order_seq_cst); }

    /// Timers queued now.
    std::size_t size() noexcept
    {
        spin_guard g(m_lock);
        return m_nodes.size();
    }

    /// Runs the callbacks of every node due at now. Returns how many fired.
    std::size_t fire_due(std::int64_t now) noexcept;

private:
    void sift_up(std::uint32_t i) noexcept;
    void sift_down(std::uint32_t i) noexcept;
    void remove_at(std::uint32_t i) noexcept;
    struct entry {
        std::int64_t when;
        timer_node* node;
    };

    void place(std::uint32_t i, entry e) noexcept
    {
        m_nodes[i] = e;
        e.node->m_index = i;
    }
    void publish() noexcept
    {
        // Release suffices for readers that only poll; the one reader that
        // must not miss a new earliest deadline (a sleeping watcher) is
        // covered by the fence in scheduler::timer_armed.
        m_earliest.store(m_nodes.empty() ? INT64_MAX : m_nodes[0].when, std::memory_order_release);
    }

    biased_lock m_lock;
    std::vector<entry> m_nodes;
    std::atomic<std::int64_t> m_earliest{INT64_MAX};
};

} // namespace weft::detail
