// wait_group. Invariant: m_waiters is empty whenever m_count == 0; both
// change only under m_lock.

#include <weft/wait_group.hpp>

#include <stdexcept>

namespace weft {

void wait_group::add(std::int64_t n)
{
    detail::sync_waiter* wake = nullptr;
    {
        detail::spin_guard g(m_lock);
        std::int64_t v = m_count.load(std::memory_order_relaxed) + n;
        if (v < 0)
            throw std::logic_error("weft::wait_group: negative counter");
        m_count.store(v, std::memory_order_release);
        if (v == 0) {
            detail::sync_waiter** tail = &wake;
            while (auto w = m_waiters.pop()) {
                *tail = w;
                tail = &w->m_next;
            }
            *tail = nullptr;
        }
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
