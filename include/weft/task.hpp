// task<T>: the lazy coroutine type of weft.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <new>
#include <source_location>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/detail/config.hpp>
#include <weft/detail/frame_alloc.hpp>

namespace weft {

template <class T = void>
class task;

namespace detail {

struct task_access;
struct task_promise_base;

// The promise of the task being started synchronously by the innermost task
// awaiter on this thread (see task_promise_base). These live in the library,
// out of line on purpose: inlined into a coroutine body, a thread_local's
// address may be computed once and reused after the coroutine moved to
// another thread.

/// Marks p as being started on this thread; returns the previous mark.
task_promise_base* begin_start(task_promise_base* p) noexcept;
/// Restores the previous mark; true if p finished while being started.
bool end_start(task_promise_base* p, task_promise_base* saved) noexcept;
/// From p's final_suspend: true (and the mark consumed) if p's awaiter is
/// still inside begin_start/end_start on this thread.
bool finished_while_starting(task_promise_base* p) noexcept;

/// The body of a spawned task finished; `tagged_root` is its m_continuation
/// (the root's address with the low bit set; see root_base).
void root_body_done(void* tagged_root) noexcept;

/// Forwards to the awaiter Aw (a reference to the co_await operand, or the
/// awaiter its operator co_await returned); see await_transform.
template <class Aw>
struct located_awaiter {
    Aw m_aw;
    bool await_ready() { return m_aw.await_ready(); }
    template <class P>
    WEFT_AWAIT_SUSPEND auto await_suspend(std::coroutine_handle<P> h)
    {
        return m_aw.await_suspend(h);
    }
    decltype(auto) await_resume() { return m_aw.await_resume(); }
};

/// Holds the continuation and the final awaiter.
///
/// Awaiting a task starts it with resume() from the awaiter. If it finishes
/// before suspending (the common case for small helpers), its final_suspend
/// sees t_starting == itself, clears it and returns to the awaiter, which
/// then continues without suspending: a loop of such awaits uses constant
/// stack even where the compiler cannot turn symmetric transfer into a tail
/// call (-O0, sanitizers). If it suspended first, the awaiter has already
/// returned (and the task may finish on another thread), so final_suspend
/// transfers to the continuation.
struct task_promise_base : pooled_frame {
    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept
        {
            task_promise_base& p = h.promise();
            const std::coroutine_handle<> c = p.m_continuation;
            if (reinterpret_cast<std::uintptr_t>(c.address()) & 1) {
                // A spawned task's body (which nobody awaits, so it is
                // never being started): its root takes over (and may
                // destroy this frame).
                root_body_done(c.address());
                return std::noop_coroutine();
            }
            if (finished_while_starting(&p))
                return std::noop_coroutine();
            return c;
        }
        void await_resume() const noexcept {}
    };

    std::suspend_always initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { m_exception = std::current_exception(); }

    /// Every co_await in a task records where it is, for dump_tasks, and
    /// then awaits the operand's own awaiter through a thin forwarder (so
    /// that operands that cannot move still need not).
    template <class A>
    auto await_transform(A&& a,
                         [[maybe_unused]] std::source_location where = std::source_location::current())
    {
#if !defined(WEFT_NO_DIAG_BOOKKEEPING)
        m_where = where;
#endif
        if constexpr (requires { static_cast<A&&>(a).operator co_await(); })
            return located_awaiter<decltype(static_cast<A&&>(a).operator co_await())>{
                static_cast<A&&>(a).operator co_await()};
        else if constexpr (requires { operator co_await(static_cast<A&&>(a)); })
            return located_awaiter<decltype(operator co_await(static_cast<A&&>(a)))>{
                operator co_await(static_cast<A&&>(a))};
        else
            return located_awaiter<A&>{a};
    }

    /// Who resumes when this frame finishes: the awaiting coroutine, or for
    /// the outermost frame of a spawned task its root, tagged in bit 0.
    std::coroutine_handle<> m_continuation = std::noop_coroutine();
    std::exception_ptr m_exception;
    /// The co_await this frame is in (or last was in).
    std::source_location m_where{};
    /// The task frame this one awaits right now, if any: with m_where, the
    /// async stack that dump_tasks walks from a task's outermost frame.
    task_promise_base* m_child = nullptr;
};

template <class T>
struct task_promise final : task_promise_base {
    task_promise() noexcept {}
    ~task_promise()
    {
        if (m_has_value)
            m_value.~T();
    }
    task<T> get_return_object() noexcept;

    template <class U = T>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>)
    {
        ::new (static_cast<void*>(std::addressof(m_value))) T(std::forward<U>(v));
        m_has_value = true;
    }

    T take()
    {
        if (m_exception)
            std::rethrow_exception(m_exception);
        assert(m_has_value);
        return std::move(m_value);
    }

    union {
        T m_value;
    };
    bool m_has_value = false;
};

template <>
struct task_promise<void> final : task_promise_base {
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take()
    {
        if (m_exception)
            std::rethrow_exception(m_exception);
    }
};

template <class T>
struct task_promise<T&> final : task_promise_base {
    task<T&> get_return_object() noexcept;
    void return_value(T& v) noexcept { m_value = std::addressof(v); }
    T& take()
    {
        if (m_exception)
            std::rethrow_exception(m_exception);
        return *m_value;
    }
    T* m_value = nullptr;
};

} // namespace detail

/// A lazily started coroutine producing a T (or an exception).
///
/// Nothing runs until the task is awaited; `co_await t` starts it on the
/// awaiting thread and resumes the awaiter when it finishes (symmetric
/// transfer). To run a task concurrently, pass its function to go().
///
/// Thread safety: a task object is not shared; it is moved, not copied.
/// Resumption: the awaiter resumes on whichever worker the task finishes on.
/// Lifetime: destroying a task that has not finished destroys its frame and
///   every frame it awaits (their destructors run).
/// Exceptions: an exception escaping the body is rethrown by co_await.
template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using value_type = T;

    task() noexcept = default;
    task(task&& o) noexcept : m_coro(std::exchange(o.m_coro, nullptr)) {}
    task& operator=(task&& o) noexcept
    {
        if (this != &o) {
            if (m_coro)
                m_coro.destroy();
            m_coro = std::exchange(o.m_coro, nullptr);
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task()
    {
        if (m_coro)
            m_coro.destroy();
    }

    /// False for a default-constructed or moved-from task.
    bool valid() const noexcept { return static_cast<bool>(m_coro); }

    auto operator co_await() & noexcept { return awaiter{m_coro}; }
    auto operator co_await() && noexcept { return awaiter{m_coro}; }

private:
    friend struct detail::task_promise<T>;
    friend struct detail::task_access;

    struct awaiter {
        std::coroutine_handle<promise_type> m_coro;
        detail::task_promise_base* m_parent = nullptr;
        bool await_ready() const noexcept { return !m_coro || m_coro.done(); }
        template <class P>
        WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<P> awaiting) noexcept
        {
            detail::task_promise_base* p = &m_coro.promise();
            p->m_continuation = awaiting;
            if constexpr (std::is_base_of_v<detail::task_promise_base, P>) {
                m_parent = &awaiting.promise();
                m_parent->m_child = p;
            }
            detail::task_promise_base* saved = detail::begin_start(p);
            m_coro.resume();
            // Only this thread's state is touched from here on: if the task
            // suspended, it may already be running elsewhere.
            return !detail::end_start(p, saved);
        }
        decltype(auto) await_resume()
        {
            if (m_parent)
                m_parent->m_child = nullptr;
            if (!m_coro)
                throw std::logic_error("weft::task: awaiting an empty task");
            return m_coro.promise().take();
        }
    };

    explicit task(std::coroutine_handle<promise_type> h) noexcept : m_coro(h) {}

    std::coroutine_handle<promise_type> m_coro;
};

namespace detail {

template <class T>
task<T> task_promise<T>::get_return_object() noexcept
{
    return task<T>{std::coroutine_handle<task_promise<T>>::from_promise(*this)};
}
inline task<void> task_promise<void>::get_return_object() noexcept
{
    return task<void>{std::coroutine_handle<task_promise<void>>::from_promise(*this)};
}
template <class T>
task<T&> task_promise<T&>::get_return_object() noexcept
{
    return task<T&>{std::coroutine_handle<task_promise<T&>>::from_promise(*this)};
}

/// Runtime access to a task's frame (spawning, shutdown).
struct task_access {
    /// The promise of t's frame, or nullptr for an empty task.
    template <class T>
    static task_promise_base* promise(task<T>& t) noexcept
    {
        return t.m_coro ? &t.m_coro.promise() : nullptr;
    }
    /// Takes the frame out of t, which becomes empty.
    template <class T>
    static std::coroutine_handle<task_promise<T>> release(task<T>& t) noexcept
    {
        return std::exchange(t.m_coro, nullptr);
    }
    /// Destroys the task's frame chain now; the task becomes empty.
    template <class T>
    static void destroy(task<T>& t) noexcept
    {
        if (auto h = std::exchange(t.m_coro, nullptr))
            h.destroy();
    }
};

template <class>
inline constexpr bool is_task_v = false;
template <class T>
inline constexpr bool is_task_v<task<T>> = true;

} // namespace detail
} // namespace weft
