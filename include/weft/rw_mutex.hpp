// rw_mutex: a reader/writer lock for tasks. [sync.RWMutex]
#pragma once

#include <coroutine>
#include <cstdint>
#include <utility>

#include <weft/detail/sync_waiter.hpp>

namespace weft {

class rw_mutex;

/// Holds an rw_mutex locked, exclusively or shared, and unlocks it that way
/// on destruction: the result of `co_await m.scoped_lock()` or
/// `co_await m.scoped_lock_shared()` [defer m.Unlock() / defer m.RUnlock()].
/// Movable; unlock() releases early.
class [[nodiscard]] rw_mutex_guard {
public:
    rw_mutex_guard() noexcept = default;
    rw_mutex_guard(rw_mutex& m, bool writer) noexcept : m_mutex(&m), m_writer(writer) {}
    rw_mutex_guard(rw_mutex_guard&& o) noexcept
        : m_mutex(std::exchange(o.m_mutex, nullptr)), m_writer(o.m_writer)
    {
    }
    rw_mutex_guard& operator=(rw_mutex_guard&& o) noexcept
    {
        if (this != &o) {
            unlock();
            m_mutex = std::exchange(o.m_mutex, nullptr);
            m_writer = o.m_writer;
        }
        return *this;
    }
    ~rw_mutex_guard() { unlock(); }
    inline void unlock();
    bool owns_lock() const noexcept { return m_mutex != nullptr; }

private:
    rw_mutex* m_mutex = nullptr;
    bool m_writer = true;
};

/// Many readers or one writer. The zero value is unlocked.
///
/// Thread safety: every member may be called concurrently; unlocks may come
///   from other tasks than the lockers.
/// Fairness: a waiting writer blocks new readers (try_lock_shared fails),
///   so writers are not starved; when a writer unlocks, the readers queued
///   before the next writer all get in. Waiters are otherwise FIFO.
/// Resumption: a waiting task resumes on a worker after it is granted.
/// Memory ordering: unlock() happens before the next lock()/lock_shared()
///   returns; unlock_shared() happens before the next lock() returns.
/// Errors: unlock()/unlock_shared() of an rw_mutex not held that way throws
///   std::logic_error.
class rw_mutex {
public:
    rw_mutex() noexcept = default;
    rw_mutex(const rw_mutex&) = delete;
    rw_mutex& operator=(const rw_mutex&) = delete;

    class [[nodiscard]] lock_operation : public detail::sync_wait_operation {
    public:
        lock_operation(rw_mutex& m, bool writer) noexcept : m_mutex(m), m_writer(writer) {}
        bool await_ready() noexcept { return m_writer ? m_mutex.try_lock() : m_mutex.try_lock_shared(); }
        WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
        {
            if (!prepare(h, "rw_mutex lock", &m_mutex, &rw_mutex::after_withdraw))
                return false;
            const bool hooked = this->hooked();
            return suspend(m_mutex.lock_slow(&m_w, m_writer), hooked);
        }
        void await_resume() { finish(); }

    protected:
        rw_mutex& m_mutex;
        bool m_writer;
    };

    class [[nodiscard]] scoped_lock_operation : public lock_operation {
    public:
        using lock_operation::lock_operation;
        rw_mutex_guard await_resume()
        {
            finish();
            return rw_mutex_guard(m_mutex, m_writer);
        }
    };

    /// co_await m.lock(): exclusive (writer) lock.
    lock_operation lock() noexcept { return {*this, true}; }
    /// co_await m.lock_shared(): shared (reader) lock.
    lock_operation lock_shared() noexcept { return {*this, false}; }
    /// auto g = co_await m.scoped_lock(): lock(), and unlock() when g goes.
    scoped_lock_operation scoped_lock() noexcept { return {*this, true}; }
    /// auto g = co_await m.scoped_lock_shared(): lock_shared(), and
    /// unlock_shared() when g goes.
    scoped_lock_operation scoped_lock_shared() noexcept { return {*this, false}; }
    bool try_lock() noexcept;
    bool try_lock_shared() noexcept;
    void unlock();
    void unlock_shared();

private:
    bool lock_slow(detail::sync_waiter* w, bool writer);
    /// Grants waiters from the front of the queue; called with m_lock held.
    /// Returns the granted waiters linked through m_next.
    detail::sync_waiter* grant_locked() noexcept;
    static detail::sync_waiter* after_withdraw(void* self, detail::sync_waiter* gone) noexcept;

    detail::spinlock m_lock;
    // All guarded by m_lock.
    std::int64_t m_readers = 0;       // active readers
    bool m_writer = false;            // a writer holds the lock
    std::int64_t m_waiting_writers = 0;
    detail::sync_queue m_waiters;     // m_n == 1: writer, 0: reader
};

inline void rw_mutex_guard::unlock()
{
    if (auto m = std::exchange(m_mutex, nullptr))
        m_writer ? m->unlock() : m->unlock_shared();
}

} // namespace weft
