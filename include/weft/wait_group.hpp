// wait_group: waits for a collection of tasks to finish. [sync.WaitGroup]
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>

#include <weft/detail/sync_waiter.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

namespace weft {

/// A counter that tasks wait on until it drops to zero.
///
/// Thread safety: every member may be called concurrently from any thread.
/// Resumption: waiters resume on workers after the done() that reaches zero.
/// Memory ordering: everything before a done() happens before the wait()s
///   that it releases return.
/// Errors: a counter driven below zero, or past INT32_MAX, throws
///   std::logic_error (and the counter is left unchanged).
/// Lifetime: the wait_group may be destroyed as soon as a wait() returns;
///   the done() that released it touches it no more.
class wait_group {
public:
    wait_group() noexcept = default;
    wait_group(const wait_group&) = delete;
    wait_group& operator=(const wait_group&) = delete;

    class [[nodiscard]] wait_operation : public detail::sync_wait_operation {
    public:
        explicit wait_operation(wait_group& wg) noexcept : m_wg(wg) {}
        bool await_ready() const noexcept
        {
            // Zero with no waiters and no wake in progress: no done() will
            // touch the wait_group again.
            return m_wg.m_state.load(std::memory_order_acquire) == 0;
        }
        WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
        {
            if (!prepare(h, "wait_group wait", nullptr, nullptr, &withdraw))
                return false;
            const bool hooked = this->hooked();
            return suspend(m_wg.wait_slow(&m_w), hooked);
        }
        void await_resume() { finish(); }

    private:
        static void withdraw(detail::wait_hook* h) noexcept
        {
            auto op = static_cast<wait_operation*>(static_cast<sync_wait_operation*>(h->m_op));
            op->m_wg.withdraw(h, &op->m_w);
        }

        wait_group& m_wg;
    };

    /// Adds n (which may be negative) to the counter; reaching zero releases
    /// every waiter.
    void add(std::int64_t n = 1);
    /// add(-1).
    void done() { add(-1); }
    /// co_await wg.wait(): returns once the counter is zero.
    wait_operation wait() noexcept { return wait_operation(*this); }

    /// add(1), then go(f, args...) in a task that calls done() when f's task
    /// returns or throws. [wg.Go(f)] The task is detached: an exception that
    /// escapes it still ends the program, as a panic in Go's wg.Go does.
    template <class F, class... A>
        requires detail::task_function<F, A...>
    void go(F&& f, A&&... args)
    {
        add(1);
        weft::go(&wait_group::run_and_done<std::decay_t<F>, std::decay_t<A>...>, this,
                 std::forward<F>(f), std::forward<A>(args)...);
    }

private:
    template <class F, class... A>
    static task<> run_and_done(wait_group* wg, F f, A... args)
    {
        try {
            co_await std::invoke(f, std::move(args)...);
        } catch (...) {
            wg->done();
            throw;
        }
        wg->done();
    }

    bool wait_slow(detail::sync_waiter* w);
    void wake_all() noexcept;
    void withdraw(detail::wait_hook* h, detail::sync_waiter* w) noexcept;

    // m_state: the counter in the high 32 bits (signed), k_waiters while
    // m_waiters may be non-empty, k_waking while a done() that reached zero
    // is between popping the waiters and its last access to *this.
    static constexpr std::uint64_t k_waiters = 1;
    static constexpr std::uint64_t k_waking = 2;
    std::atomic<std::uint64_t> m_state{0};
    detail::spinlock m_lock;
    detail::sync_queue m_waiters; // guarded by m_lock
};

} // namespace weft
