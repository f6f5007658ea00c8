// wait_group. Invariants: m_waiters is guarded by m_lock; a waiter is queued
// only after reading m_count != 0 under m_lock; whoever moves m_count to zero
// then takes m_lock and wakes the queue (unless the count moved again).

#include <weft/wait_group.hpp>

#include <stdexcept>

namespace weft {

void wait_group::add(std::int64_t n)
{
    // Most calls only move the counter. Reaching zero takes the lock after
    // the change, and a waiter reads the counter under the lock before it
    // queues, so either the waiter sees zero or the zero finds it queued.
    std::int64_t v = m_count.fetch_add(n, std::memory_order_acq_rel) + n;
    if (v < 0) {
        m_count.fetch_sub(n, std::memory_order_relaxed);
        throw std::logic_error("weft::wait_group: negative counter");
    }
    if (v != 0 || n == 0)
        return;
    detail::sync_waiter* wake = nullptr;
    {
        detail::spin_guard g(m_lock);
        if (m_count.load(std::memory_order_relaxed) != 0)
            return; // re-armed by a concurrent add(): the waiters stay
        detail::sync_waiter** tail = &wake;
        while (auto w = m_waiters.pop()) {
            *tail = w;
            tail = &w->m_next;
        }
        *tail = nullptr;
    }
    detail::ready_sync_list(wake);
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
