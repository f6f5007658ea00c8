// cond. A signalled waiter is moved straight into its mutex's queue (or
// given the free mutex), so it wakes exactly once, owning the mutex.

#include <weft/cond.hpp>

#include <stdexcept>

namespace weft {

bool cond::enqueue_and_unlock(detail::sync_waiter* w)
{
    if (m_mutex.m_state.load(std::memory_order_relaxed) == mutex::k_unlocked)
        throw std::logic_error("weft::cond: wait without holding the mutex");
    {
        detail::spin_guard g(m_lock);
        if (w->cancelled_now())
            return false;
        m_waiters.push(w, &m_lock);
    }
    // Queued before the unlock, so a signal sent after it finds this waiter.
    m_mutex.unlock();
    return true;
}

void cond::hand_to_mutex(detail::sync_waiter* w) noexcept
{
    // From here the waiter only waits for the mutex, which it must get back
    // even when cancelled.
    w->m_hook = nullptr;
    if (m_mutex.acquire_or_enqueue(w))
        detail::wake_waiter(w->m_task);
}

void cond::signal() noexcept
{
    detail::sync_waiter* w;
    {
        detail::spin_guard g(m_lock);
        w = m_waiters.pop();
    }
    if (w)
        hand_to_mutex(w);
}

void cond::broadcast() noexcept
{
    detail::sync_waiter* head = nullptr;
    {
        detail::spin_guard g(m_lock);
        detail::sync_waiter** tail = &head;
        while (auto w = m_waiters.pop()) {
            *tail = w;
            tail = &w->m_next;
        }
        *tail = nullptr;
    }
    while (head) {
        auto next = head->m_next;
        hand_to_mutex(head);
        head = next;
    }
}

} // namespace weft
