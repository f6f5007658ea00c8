// wait_group. Invariants: m_waiters is guarded by m_lock; a waiter is queued
// only after reading m_count != 0 under m_lock; whoever moves m_count to zero
// then takes m_lock and wakes the queue (unless the count moved again).
// m_adding counts the decrements under way; a waiter returns only once it
// is zero, so the object may be destroyed as soon as a wait returns.

#include <weft/wait_group.hpp>

#include <stdexcept>
#include <thread>

namespace weft {

void wait_group::add(std::int64_t n)
{
    // Most calls only move the counter. Reaching zero takes the lock after
    // the change, and a waiter reads the counter under the lock before it
    // queues, so either the waiter sees zero or the zero finds it queued.
    //
    // A waiter that sees zero may return and destroy the wait_group while
    // the add() that made it zero still takes the lock. So a decrement (the
    // only kind that can reach zero) first counts itself in m_adding and
    // leaves it as its last touch of the object; waiters settle() on it.
    // All seq_cst: a waiter whose load of m_count sees this add's zero then
    // loads m_adding after this add's increment in the single total order,
    // so it sees the increment or the decrement that ends it.
    if (n < 0)
        m_adding.fetch_add(1, std::memory_order_seq_cst);
    std::int64_t v = m_count.fetch_add(n, std::memory_order_seq_cst) + n;
    if (v < 0) {
        m_count.fetch_sub(n, std::memory_order_relaxed);
        m_adding.fetch_sub(1, std::memory_order_release);
        throw std::logic_error("weft::wait_group: negative counter");
    }
    detail::sync_waiter* wake = nullptr;
    if (v == 0 && n != 0) {
        detail::spin_guard g(m_lock);
        // Unless re-armed by a concurrent add(), wake the waiters.
        if (m_count.load(std::memory_order_relaxed) == 0) {
            detail::sync_waiter** tail = &wake;
            while (auto w = m_waiters.pop()) {
                *tail = w;
                tail = &w->m_next;
            }
            *tail = nullptr;
        }
    }
    if (n < 0)
        m_adding.fetch_sub(1, std::memory_order_release); // the last touch of *this
    // The woken waiters are suspended until readied: their nodes, in their
    // own frames, are still there; this wait_group may not be.
    detail::ready_sync_list(wake);
}

void wait_group::settle() const noexcept
{
    for (int spins = 0; m_adding.load(std::memory_order_seq_cst) != 0; spins++)
        if (spins >= 64)
            std::this_thread::yield(); // the adder was preempted in its few steps
}

bool wait_group::wait_slow(detail::sync_waiter* w)
{
    detail::spin_guard g(m_lock);
    if (m_count.load(std::memory_order_relaxed) == 0 || w->cancelled_now())
        return false;
    m_waiters.push(w, &m_lock);
    return true;
}

} // namespace weft
