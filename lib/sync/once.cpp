// once. Invariant: waiters are queued only while m_state == k_running; the
// move to k_done happens under m_lock, so none is left behind.

#include <weft/once.hpp>

namespace weft {

bool once::wait_slow(detail::sync_waiter* w)
{
    detail::spin_guard g(m_lock);
    if (m_state.load(std::memory_order_acquire) == k_done || w->cancelled_now())
        return false;
    m_waiters.push(w, &m_lock);
    return true;
}

void once::finish() noexcept
{
    detail::sync_waiter* wake = nullptr;
    {
        detail::spin_guard g(m_lock);
        m_state.store(k_done, std::memory_order_release);
        detail::sync_waiter** tail = &wake;
        while (auto w = m_waiters.pop()) {
            *tail = w;
            tail = &w->m_next;
        }
        *tail = nullptr;
    }
    detail::ready_sync_list(wake);
}

} // namespace weft
