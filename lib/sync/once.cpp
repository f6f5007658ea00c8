// once.
//
// Invariants: waiters are queued only while m_state == k_running, under
// m_lock. finish() pops them and moves to k_finishing under m_lock, then
// stores k_done as its last access to *this: a caller that sees k_done may
// destroy the once at once, and one that meets k_finishing waits for k_done.

#include <weft/once.hpp>

namespace weft {

bool once::wait_slow(detail::sync_waiter* w)
{
    {
        detail::spin_guard g(m_lock);
        if (m_state.load(std::memory_order_relaxed) == k_running) {
            if (w->cancelled_now())
                return false;
            m_waiters.push(w, &m_lock);
            return true;
        }
    }
    detail::spin_until([&] { return m_state.load(std::memory_order_acquire) == k_done; });
    return false;
}

void once::finish() noexcept
{
    detail::sync_waiter* wake = nullptr;
    {
        detail::spin_guard g(m_lock);
        m_state.store(k_finishing, std::memory_order_relaxed);
        detail::sync_waiter** tail = &wake;
        while (auto w = m_waiters.pop()) {
            *tail = w;
            tail = &w->m_next;
        }
        *tail = nullptr;
    }
    m_state.store(k_done, std::memory_order_release); // last access
    detail::ready_sync_list(wake);
}

} // namespace weft
