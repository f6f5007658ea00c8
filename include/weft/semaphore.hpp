// semaphore: a weighted counting semaphore. [golang.org/x/sync/semaphore]
#pragma once

#include <coroutine>
#include <cstdint>

#include <weft/detail/sync_waiter.hpp>

namespace weft {

/// Admits holders while their total weight stays within the size.
///
/// Thread safety: every member may be called concurrently from any thread.
/// Fairness: FIFO; a large request at the front is not overtaken by smaller
///   ones behind it (as in x/sync/semaphore).
/// Resumption: waiters resume on workers after the release that admits them.
/// Memory ordering: release() happens before the acquire() it admits returns.
/// Errors: acquire/try_acquire of more than the size throws
///   std::invalid_argument; release of more than is held throws
///   std::logic_error.
class semaphore {
public:
    explicit semaphore(std::int64_t n);
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    class [[nodiscard]] acquire_operation : public detail::sync_wait_operation {
    public:
        acquire_operation(semaphore& s, std::int64_t k) noexcept : m_sem(s), m_k(k) {}
        bool await_ready() { return m_sem.try_acquire(m_k); }
        WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
        {
            if (!prepare(h, "semaphore acquire", &m_sem, &semaphore::after_withdraw))
                return false;
            const bool hooked = this->hooked();
            return suspend(m_sem.acquire_slow(&m_w, m_k), hooked);
        }
        void await_resume() { finish(); }

    private:
        semaphore& m_sem;
        std::int64_t m_k;
    };

    /// co_await s.acquire(k): waits until k units are free and takes them.
    acquire_operation acquire(std::int64_t k = 1) noexcept { return {*this, k}; }
    /// Takes k units if they are free now and nobody waits.
    bool try_acquire(std::int64_t k = 1);
    /// Returns k units and admits waiters in FIFO order.
    void release(std::int64_t k = 1);

private:
    bool acquire_slow(detail::sync_waiter* w, std::int64_t k);
    /// With m_lock held: takes the waiters at the front that fit now.
    detail::sync_waiter* grant_locked() noexcept;
    static detail::sync_waiter* after_withdraw(void* self, detail::sync_waiter* gone) noexcept;
    void check(std::int64_t k) const;

    const std::int64_t m_size;
    detail::spinlock m_lock;
    std::int64_t m_held = 0;      // guarded by m_lock
    detail::sync_queue m_waiters; // guarded by m_lock; m_n is the weight
};

} // namespace weft
