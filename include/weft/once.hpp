// once: runs a function exactly once. [sync.Once]
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <weft/detail/awaitable.hpp>
#include <weft/detail/sync_waiter.hpp>
#include <weft/task.hpp>

namespace weft {

/// Runs the first function given to call() and never another.
///
/// Thread safety: call may be awaited concurrently; later callers wait until
///   the first call's function has returned.
/// Memory ordering: everything the function did happens before every
///   call() returns.
/// Errors: if the function throws, the exception reaches the first caller,
///   and the once still counts as done (as in Go); other callers return.
class once {
public:
    once() noexcept = default;
    once(const once&) = delete;
    once& operator=(const once&) = delete;

    /// co_await o.call(f): f is void() or returns an awaitable such as task<>.
    template <class F>
    task<> call(F f)
    {
        if (m_state.load(std::memory_order_acquire) == k_done)
            co_return;
        if (!co_await begin_operation(*this))
            co_return;
        finisher fin{*this};
        if constexpr (std::is_void_v<std::invoke_result_t<F&>>)
            f();
        else
            co_await f();
    }

    /// True once a call has finished.
    bool done() const noexcept { return m_state.load(std::memory_order_acquire) == k_done; }

private:
    static constexpr std::uint32_t k_idle = 0;
    static constexpr std::uint32_t k_running = 1;
    static constexpr std::uint32_t k_done = 2;
    static constexpr std::uint32_t k_finishing = 3; // waiters popped, lock being released

    struct finisher {
        once& o;
        ~finisher() { o.finish(); }
    };

    /// Resolves to true for the caller that must run the function; others
    /// wait until it is done and get false.
    class begin_operation : public detail::sync_wait_operation {
    public:
        explicit begin_operation(once& o) noexcept : m_once(o) {}
        bool await_ready() noexcept
        {
            std::uint32_t expected = k_idle;
            if (m_once.m_state.compare_exchange_strong(expected, k_running,
                                                       std::memory_order_acquire))
                m_run = true;
            return m_run || expected == k_done;
        }
        WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
        {
            if (!prepare(h, "once call"))
                return false;
            const bool hooked = this->hooked();
            return suspend(m_once.wait_slow(&m_w), hooked);
        }
        bool await_resume()
        {
            if (!m_run)
                finish();
            return m_run;
        }

    private:
        once& m_once;
        bool m_run = false;
    };

    bool wait_slow(detail::sync_waiter* w);
    void finish() noexcept;

    std::atomic<std::uint32_t> m_state{k_idle};
    detail::spinlock m_lock;
    detail::sync_queue m_waiters; // guarded by m_lock
};

} // namespace weft
