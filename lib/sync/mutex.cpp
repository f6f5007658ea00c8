// mutex slow paths.
//
// Invariants: m_state == k_contended whenever m_waiters is non-empty; a
// waiter is only queued while the mutex is locked. Unlock with waiters hands
// the lock over (m_state stays locked) instead of releasing it, so the
// woken task owns the mutex when it resumes. The last access of an unlock
// to *this is a store to m_state or the release of m_lock before a hand-over,
// so the next owner may destroy the mutex.

#include <weft/mutex.hpp>

#include <stdexcept>

namespace weft {

bool mutex::lock_slow(detail::sync_waiter* w)
{
    return !acquire_or_enqueue(w); // suspend only if queued
}

void mutex::unlock_slow()
{
    detail::sync_waiter* next = nullptr;
    for (;;) {
        {
            detail::spin_guard g(m_lock);
            std::uint32_t s = m_state.load(std::memory_order_relaxed);
            if (s == k_unlocked)
                throw std::logic_error("weft::mutex: unlock of unlocked mutex");
            next = m_waiters.pop();
            if (next) {
                if (m_waiters.empty())
                    m_state.store(k_locked, std::memory_order_release);
                // else stays k_contended, now owned by next
                break;
            }
            // Every waiter withdrew (cancelled): plain locked again.
            m_state.store(k_locked, std::memory_order_relaxed);
        }
        // Release outside m_lock, as the fast path does, so that this store
        // is the last access: a task that locks and unlocks next may destroy
        // the mutex. A waiter that queued meanwhile made it k_contended.
        std::uint32_t s = k_locked;
        if (m_state.compare_exchange_strong(s, k_unlocked, std::memory_order_release,
                                            std::memory_order_relaxed))
            return;
    }
    detail::wake_waiter(next->m_task);
}

bool mutex::acquire_or_enqueue(detail::sync_waiter* w) noexcept
{
    detail::spin_guard g(m_lock);
    for (;;) {
        std::uint32_t s = m_state.load(std::memory_order_relaxed);
        if (s == k_unlocked) {
            if (m_state.compare_exchange_weak(s, k_locked, std::memory_order_acquire,
                                              std::memory_order_relaxed))
                return true;
            continue;
        }
        if (s == k_locked &&
            !m_state.compare_exchange_weak(s, k_contended, std::memory_order_relaxed,
                                           std::memory_order_relaxed))
            continue;
        // A cancelled lock() does not wait (and does not own the mutex:
        // its await_resume throws). Cond waiters arrive with no hook.
        if (w->cancelled_now())
            return true;
        m_waiters.push(w, &m_lock);
        return false;
    }
}

} // namespace weft
