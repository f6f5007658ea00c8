// mutex: mutual exclusion for tasks. [sync.Mutex]
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <utility>

#include <weft/detail/sync_waiter.hpp>

namespace weft {

class mutex;
class cond;

/// Holds a mutex locked and unlocks it on destruction: the result of
/// `co_await m.scoped_lock()`. Movable; unlock() releases early.
class [[nodiscard]] mutex_guard {
public:
    mutex_guard() noexcept = default;
    explicit mutex_guard(mutex& m) noexcept : m_mutex(&m) {}
    mutex_guard(mutex_guard&& o) noexcept : m_mutex(std::exchange(o.m_mutex, nullptr)) {}
    mutex_guard& operator=(mutex_guard&& o) noexcept;
    ~mutex_guard();
    void unlock();
    bool owns_lock() const noexcept { return m_mutex != nullptr; }

private:
    mutex* m_mutex = nullptr;
};

/// A mutual-exclusion lock for tasks. The zero value is unlocked.
///
/// Thread safety: every member may be called concurrently; unlock may come
///   from a different task than the one that locked (as in Go).
/// Fairness: waiters are served in FIFO order; unlock hands the lock
///   directly to the first waiter, so none can be starved.
/// Resumption: a waiting task resumes on a worker after the unlocking task
///   readies it.
/// Memory ordering: what happens before unlock() happens before the next
///   lock() returns.
/// Errors: unlock of an unlocked mutex throws std::logic_error.
/// Lifetime: must outlive its waiters; not movable.
class mutex {
public:
    mutex() noexcept = default;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;

    class [[nodiscard]] lock_operation : public detail::sync_wait_operation {
    public:
        explicit lock_operation(mutex& m) noexcept : m_mutex(m) {}
        bool await_ready() noexcept { return m_mutex.try_lock(); }
        WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
        {
            if (!prepare(h, "mutex lock"))
                return false;
            const bool hooked = this->hooked();
            return suspend(m_mutex.lock_slow(&m_w), hooked);
        }
        void await_resume() { finish(); }

    protected:
        mutex& m_mutex;
    };

    class [[nodiscard]] scoped_lock_operation : public lock_operation {
    public:
        using lock_operation::lock_operation;
        mutex_guard await_resume()
        {
            finish();
            return mutex_guard(m_mutex);
        }
    };

    /// co_await m.lock(): waits until the mutex is acquired.
    lock_operation lock() noexcept { return lock_operation(*this); }
    /// auto g = co_await m.scoped_lock(): locks, and unlocks when g goes.
    scoped_lock_operation scoped_lock() noexcept { return scoped_lock_operation(*this); }
    /// Acquires the mutex if it is free now.
    bool try_lock() noexcept
    {
        std::uint32_t expected = k_unlocked;
        return m_state.compare_exchange_strong(expected, k_locked, std::memory_order_acquire,
                                               std::memory_order_relaxed);
    }
    /// Releases the mutex, handing it to the first waiter if any.
    void unlock()
    {
        std::uint32_t expected = k_locked;
        if (!m_state.compare_exchange_strong(expected, k_unlocked, std::memory_order_release,
                                             std::memory_order_relaxed))
            unlock_slow();
    }

private:
    friend class cond;

    // m_state: k_unlocked, k_locked, or k_contended (locked and m_waiters
    // may be non-empty). Moves to k_contended and out of it only under m_lock.
    static constexpr std::uint32_t k_unlocked = 0;
    static constexpr std::uint32_t k_locked = 1;
    static constexpr std::uint32_t k_contended = 2;

    /// Acquires now (false: do not suspend) or queues w (true).
    bool lock_slow(detail::sync_waiter* w);
    void unlock_slow();
    /// Locks on behalf of w's task: true if acquired now, else w is queued
    /// and will be handed the lock (cond waiters arrive here too).
    bool acquire_or_enqueue(detail::sync_waiter* w) noexcept;

    std::atomic<std::uint32_t> m_state{k_unlocked};
    detail::spinlock m_lock;
    detail::sync_queue m_waiters; // guarded by m_lock
};

inline mutex_guard& mutex_guard::operator=(mutex_guard&& o) noexcept
{
    if (this != &o) {
        if (m_mutex)
            m_mutex->unlock();
        m_mutex = std::exchange(o.m_mutex, nullptr);
    }
    return *this;
}
inline mutex_guard::~mutex_guard()
{
    if (m_mutex)
        m_mutex->unlock();
}
inline void mutex_guard::unlock()
{
    if (auto m = std::exchange(m_mutex, nullptr))
        m->unlock();
}

} // namespace weft
