// rw_mutex.
//
// Invariants (all under m_lock): m_writer implies m_readers == 0;
// m_waiting_writers counts writers in m_waiters; a reader is queued only
// while a writer holds or waits, so the queue front is served first.

#include <weft/rw_mutex.hpp>

#include <stdexcept>

namespace weft {

bool rw_mutex::try_lock() noexcept
{
    detail::spin_guard g(m_lock);
    if (m_writer || m_readers > 0 || !m_waiters.empty())
        return false;
    m_writer = true;
    return true;
}

bool rw_mutex::try_lock_shared() noexcept
{
    detail::spin_guard g(m_lock);
    if (m_writer || m_waiting_writers > 0)
        return false;
    ++m_readers;
    return true;
}

bool rw_mutex::lock_slow(detail::sync_waiter* w, bool writer)
{
    detail::spin_guard g(m_lock);
    if (writer) {
        if (!m_writer && m_readers == 0 && m_waiters.empty()) {
            m_writer = true;
            return false;
        }
        ++m_waiting_writers;
        w->m_n = 1;
    } else {
        if (!m_writer && m_waiting_writers == 0) {
            ++m_readers;
            return false;
        }
        w->m_n = 0;
    }
    if (w->cancelled_now()) {
        if (writer)
            --m_waiting_writers;
        return false;
    }
    m_waiters.push(w, &m_lock);
    return true;
}

detail::sync_waiter* rw_mutex::after_withdraw(void* self, detail::sync_waiter* gone) noexcept
{
    // A withdrawn writer no longer holds back the readers behind it.
    auto m = static_cast<rw_mutex*>(self);
    if (gone->m_n == 1)
        --m->m_waiting_writers;
    return m->grant_locked();
}

detail::sync_waiter* rw_mutex::grant_locked() noexcept
{
    detail::sync_waiter* head = nullptr;
    detail::sync_waiter** tail = &head;
    while (auto f = m_waiters.front()) {
        if (f->m_n == 1) {
            if (m_writer || m_readers > 0 || head)
                break;
            m_waiters.pop();
            --m_waiting_writers;
            m_writer = true;
            *tail = f;
            tail = &f->m_next;
            break;
        }
        if (m_writer)
            break;
        m_waiters.pop();
        ++m_readers;
        *tail = f;
        tail = &f->m_next;
    }
    *tail = nullptr;
    return head;
}

void rw_mutex::unlock()
{
    detail::sync_waiter* wake;
    {
        detail::spin_guard g(m_lock);
        if (!m_writer)
            throw std::logic_error("weft::rw_mutex: unlock of unlocked rw_mutex");
        m_writer = false;
        wake = grant_locked();
    }
    detail::ready_sync_list(wake);
}

void rw_mutex::unlock_shared()
{
    detail::sync_waiter* wake;
    {
        detail::spin_guard g(m_lock);
        if (m_readers == 0)
            throw std::logic_error("weft::rw_mutex: unlock_shared without a reader lock");
        --m_readers;
        wake = m_readers == 0 ? grant_locked() : nullptr;
    }
    detail::ready_sync_list(wake);
}

} // namespace weft
