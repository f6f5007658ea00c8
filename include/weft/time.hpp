// Sleeping, timers and tickers. [time]
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include <weft/chan.hpp>
#include <weft/detail/cancel.hpp>
#include <weft/detail/config.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/detail/timer_node.hpp>
#include <weft/task.hpp>

namespace weft {

// weft::clock (std::chrono::steady_clock) is declared in
// <weft/detail/timer_node.hpp>. Avoid `using namespace weft;`: weft::clock
// meets ::clock() from <ctime>.

/// co_await sleep_until(t): suspends the task until the clock reaches t.
/// A time already past returns at once without suspending. [time.Sleep]
///
/// Resumption: on whichever worker fires the timer (usually the one the
///   task slept on).
/// Cost: no allocation and no system call; the deadline goes into the
///   worker's timer heap, and an idle worker sleeps in the kernel until the
///   earliest deadline.
class [[nodiscard]] sleep_operation {
public:
    /// `past`: the deadline is known to have passed (saves a clock read).
    explicit sleep_operation(std::int64_t when, bool past) noexcept : m_when(when), m_past(past) {}
    /// Moving is allowed before the operation is awaited.
    sleep_operation(sleep_operation&& o) noexcept : m_when(o.m_when), m_past(o.m_past) {}
    sleep_operation& operator=(const sleep_operation&) = delete;
    ~sleep_operation()
    {
        // The frame is destroyed while asleep (runtime shutdown).
        if (m_armed)
            detail::timer_cancel(&m_node);
        detail::hook_end(m_hook);
    }

    bool await_ready() const noexcept { return m_past; }
    WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
    {
        detail::task_header* t = detail::require_task("sleep_for/sleep_until");
        t->m_resume = h;
        m_node.m_task = t;
        m_node.m_callback = &fired;
        if (!detail::hook_begin(m_hook, t, this, &withdraw))
            return false;
        m_armed = true;
        detail::context_node* const scope = m_hook.scope();
        detail::timer_arm(&m_node, m_when);
        if (!scope)
            return true; // the timer may have fired already: hands off the frame
        // Cancelled before the timer was queued: the canceller found nothing
        // to withdraw, so withdraw here.
        if (scope->cancelled() && detail::timer_cancel(&m_node)) {
            m_armed = false;
            m_hook.set_canceled();
            return false;
        }
        return detail::hook_suspend(m_hook);
    }
    void await_resume()
    {
        m_armed = false;
        if (detail::hook_end(m_hook))
            detail::throw_canceled();
    }

private:
    struct node : detail::timer_node {
        detail::task_header* m_task = nullptr;
    };
    static void fired(detail::timer_node* n, detail::timer_node::event e) noexcept
    {
        detail::task_header* t = static_cast<node*>(n)->m_task;
        // The task may run (and free this frame) as soon as it is ready.
        detail::timer_fire_done(n);
        if (e == detail::timer_node::event::fire)
            detail::wake_waiter(t);
    }

    static void withdraw(detail::wait_hook* hook) noexcept
    {
        auto op = static_cast<sleep_operation*>(hook->m_op);
        if (!detail::timer_unqueue(&op->m_node))
            return; // fired (or not queued yet: await_suspend checks)
        hook->m_canceled = true;
        detail::wake_waiter(hook->m_task);
    }

    node m_node;
    detail::op_hook<sleep_operation> m_hook;
    std::int64_t m_when;
    bool m_past;
    bool m_armed = false;
};

/// co_await sleep_for(d): suspends the task for at least d. [time.Sleep]
inline sleep_operation sleep_for(clock::duration d) noexcept
{
    if (d <= clock::duration::zero())
        return sleep_operation(0, true);
    return sleep_operation(detail::deadline_after(detail::now_ns(), d), false);
}
inline sleep_operation sleep_until(clock::time_point t) noexcept
{
    auto when = detail::to_ns(t);
    return sleep_operation(when, when <= detail::now_ns());
}

class timer;

namespace detail {

struct timer_core;

/// The function of an after_func timer, type-erased (move-only callables
/// allowed). call() starts one run; runs may overlap, as in Go.
class after_func_base {
public:
    virtual ~after_func_base() = default;
    virtual task<> call() = 0;
};

template <class F>
class after_func_impl final : public after_func_base {
public:
    explicit after_func_impl(F f) : m_f(std::move(f)) {}
    task<> call() override
    {
        if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
            m_f();
            return done();
        } else {
            return m_f();
        }
    }

private:
    static task<> done() { co_return; }
    F m_f;
};

enum class timer_kind { once, ticker, func };

timer_core* timer_create(timer_kind kind, std::int64_t period, after_func_base* f);
timer_core* timer_start(clock::duration d);
void timer_release(timer_core* c) noexcept;
void timer_drop(timer_core* c) noexcept;
recv_chan<clock::time_point> timer_channel(timer_core* c);
bool timer_stop(timer_core* c) noexcept;
bool timer_reset(timer_core* c, clock::duration d);
void ticker_reset(timer_core* c, clock::duration d);
bool timer_reset_at(timer& t, std::int64_t deadline);

} // namespace detail

/// A single event after a duration; its value arrives on channel(). [time.Timer]
///
/// Thread safety: one timer object is used by one task at a time; its
///   channel may be received from anywhere.
/// Go 1.23 rules: after stop() or reset() returns, no value from before the
///   call is received from channel().
/// Lifetime: move-only; the destructor stops it. The channel may outlive
///   the timer (it then never receives).
/// Cost: arming, stopping and resetting take no system call.
class timer {
public:
    /// Starts a timer that sends, after d, the time it was due on channel().
    /// Throws std::logic_error when no runtime is running.
    explicit timer(clock::duration d);
    timer(timer&& o) noexcept : m_core(std::exchange(o.m_core, nullptr)) {}
    timer& operator=(timer&& o) noexcept
    {
        if (this != &o) {
            release();
            m_core = std::exchange(o.m_core, nullptr);
        }
        return *this;
    }
    ~timer() { release(); }

    /// The channel (capacity 1) that receives the time the timer was due
    /// (now + d at arming; the receiver may compare it with clock::now()). [t.C]
    /// Nil for a timer made by after_func.
    recv_chan<clock::time_point> channel() const;
    /// Stops the timer. True if this call stopped it before its value was
    /// received (or, for after_func, before f started). [t.Stop]
    bool stop() noexcept { return m_core && detail::timer_stop(m_core); }
    /// Re-arms the timer for d from now, dropping a value not yet received.
    /// True if the timer was active. [t.Reset]
    bool reset(clock::duration d);

    /// Internal: adopts a core (after_func).
    explicit timer(detail::timer_core* c) noexcept : m_core(c) {}

private:
    friend bool detail::timer_reset_at(timer&, std::int64_t);
    void release() noexcept;
    detail::timer_core* m_core = nullptr;
};

namespace detail {
/// reset() for an absolute deadline (now_ns() nanoseconds), which reads no
/// clock: for code that keeps deadlines and has read the clock already.
bool timer_reset_at(timer& t, std::int64_t deadline);
} // namespace detail

/// A channel that receives, once, the time d from now when it has passed.
/// [time.After]
/// Nothing is left behind: the timer frees itself when it fires (or when
/// the runtime stops), whether or not anybody receives.
recv_chan<clock::time_point> after(clock::duration d);

/// Runs f (void() or task<>()) as a new task after d. The returned timer can
/// stop or reset it; dropping the timer does not cancel f, as in Go.
/// An exception escaping f ends the program, as for any detached task.
/// [time.AfterFunc]
template <class F>
    requires std::is_invocable_v<std::decay_t<F>&>
timer after_func(clock::duration d, F&& f)
{
    std::unique_ptr<detail::after_func_base> impl(
        new detail::after_func_impl<std::decay_t<F>>(std::forward<F>(f)));
    timer t(detail::timer_create(detail::timer_kind::func, 0, impl.get()));
    impl.release(); // the core owns it now
    t.reset(d);
    return t;
}

/// Ticks on channel() every period; each tick carries the time it was due.
/// [time.Ticker]
///
/// A slow reader finds at most one pending tick (missed ones are dropped);
/// ticks keep their phase (they fall on start + k * period).
/// Thread safety and lifetime: as for timer; the destructor stops it.
class ticker {
public:
    /// Throws std::invalid_argument for a period <= 0 and std::logic_error
    /// when no runtime is running.
    explicit ticker(clock::duration period);
    ticker(ticker&& o) noexcept : m_core(std::exchange(o.m_core, nullptr)) {}
    ticker& operator=(ticker&& o) noexcept
    {
        if (this != &o) {
            release();
            m_core = std::exchange(o.m_core, nullptr);
        }
        return *this;
    }
    ~ticker() { release(); }

    recv_chan<clock::time_point> channel() const;
    /// No tick is sent after stop() returns, and a pending one is dropped.
    void stop() noexcept
    {
        if (m_core)
            detail::timer_stop(m_core);
    }
    /// Stops the ticker and restarts it with a new period from now.
    void reset(clock::duration period);

private:
    void release() noexcept;
    detail::timer_core* m_core = nullptr;
};

} // namespace weft
