// semaphore. Invariant (under m_lock): 0 <= m_held <= m_size; the front
// waiter does not fit, or the queue is empty.

#include <weft/semaphore.hpp>

#include <stdexcept>

namespace weft {

semaphore::semaphore(std::int64_t n) : m_size(n)
{
    if (n < 0)
        throw std::invalid_argument("weft::semaphore: negative size");
}

void semaphore::check(std::int64_t k) const
{
    if (k < 0)
        throw std::invalid_argument("weft::semaphore: negative weight");
    if (k > m_size)
        throw std::invalid_argument("weft::semaphore: weight larger than the semaphore");
}

bool semaphore::try_acquire(std::int64_t k)
{
    check(k);
    detail::spin_guard g(m_lock);
    if (m_size - m_held >= k && m_waiters.empty()) {
        m_held += k;
        return true;
    }
    return false;
}

bool semaphore::acquire_slow(detail::sync_waiter* w, std::int64_t k)
{
    detail::spin_guard g(m_lock);
    if (m_size - m_held >= k && m_waiters.empty()) {
        m_held += k;
        return false;
    }
    if (w->cancelled_now())
        return false;
    w->m_n = k;
    m_waiters.push(w, &m_lock);
    return true;
}

detail::sync_waiter* semaphore::grant_locked() noexcept
{
    detail::sync_waiter* wake = nullptr;
    detail::sync_waiter** tail = &wake;
    while (auto f = m_waiters.front()) {
        if (m_size - m_held < f->m_n)
            break;
        m_waiters.pop();
        m_held += f->m_n;
        *tail = f;
        tail = &f->m_next;
    }
    *tail = nullptr;
    return wake;
}

detail::sync_waiter* semaphore::after_withdraw(void* self, detail::sync_waiter*) noexcept
{
    // The withdrawn waiter may have held back smaller ones behind it.
    return static_cast<semaphore*>(self)->grant_locked();
}

void semaphore::release(std::int64_t k)
{
    if (k < 0)
        throw std::invalid_argument("weft::semaphore: negative weight");
    detail::sync_waiter* wake = nullptr;
    {
        detail::spin_guard g(m_lock);
        if (k > m_held)
            throw std::logic_error("weft::semaphore: released more than held");
        m_held -= k;
        wake = grant_locked();
    }
    detail::ready_sync_list(wake);
}

} // namespace weft
