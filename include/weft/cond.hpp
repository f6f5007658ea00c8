// cond: a condition variable for tasks. [sync.Cond]
#pragma once

#include <coroutine>

#include <weft/detail/sync_waiter.hpp>
#include <weft/mutex.hpp>

namespace weft {

/// Tasks wait for a condition guarded by a mutex.
///
/// Thread safety: every member may be called concurrently; wait() must be
///   awaited with the mutex held; signal/broadcast need not hold it.
/// Ordering: waiters wake in FIFO order.
/// Resumption: wait() resumes, holding the mutex again, on a worker once a
///   signal chose it and the mutex was handed to it.
/// Lifetime: the mutex must outlive the cond.
class cond {
public:
    explicit cond(mutex& m) noexcept : m_mutex(m) {}
    cond(const cond&) = delete;
    cond& operator=(const cond&) = delete;

    class [[nodiscard]] wait_operation : public detail::sync_wait_operation {
    public:
        explicit wait_operation(cond& c) noexcept : m_cond(c) {}
        bool await_ready() const noexcept { return false; }
        WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
        {
            if (!prepare(h, "cond wait", &m_cond, nullptr, &withdraw_cond))
                return false; // cancelled: throws, still holding the mutex
            const bool hooked = this->hooked();
            return suspend(m_cond.enqueue_and_unlock(&m_w), hooked);
        }
        void await_resume() { finish(); }

    private:
        /// Cancellation before a signal: the waiter leaves the queue and,
        /// like a signalled one, waits for the mutex; then it throws.
        static void withdraw_cond(detail::wait_hook* h) noexcept
        {
            auto op = static_cast<detail::sync_wait_operation*>(h->m_op);
            auto self = static_cast<wait_operation*>(op);
            cond& c = self->m_cond;
            {
                detail::spin_guard g(c.m_lock);
                if (self->m_w.m_queue != &c.m_waiters)
                    return; // signalled: it completes normally
                c.m_waiters.remove(&self->m_w);
            }
            h->m_canceled = true;
            c.hand_to_mutex(&self->m_w);
        }

        cond& m_cond;
    };

    /// co_await c.wait(): atomically unlocks the mutex and waits for a
    /// signal; returns with the mutex locked again.
    wait_operation wait() noexcept { return wait_operation(*this); }
    /// Wakes the longest-waiting task, if any.
    void signal() noexcept;
    /// Wakes every waiting task.
    void broadcast() noexcept;

    mutex& get_mutex() const noexcept { return m_mutex; }

private:
    /// Queues w and unlocks the mutex; false (nothing done) if the task's
    /// context was cancelled meanwhile.
    bool enqueue_and_unlock(detail::sync_waiter* w);
    /// Moves w (unlinked) onto the mutex: readies it if the mutex was free.
    void hand_to_mutex(detail::sync_waiter* w) noexcept;

    mutex& m_mutex;
    detail::spinlock m_lock;
    detail::sync_queue m_waiters; // guarded by m_lock
};

} // namespace weft
