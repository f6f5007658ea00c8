// Spawning tasks and running the runtime: go, join_handle, run, block_on.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <source_location>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/context.hpp>
#include <weft/detail/awaitable.hpp>
#include <weft/detail/frame_alloc.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/task.hpp>

namespace weft {

/// Settings for run(). [GOMAXPROCS, GODEBUG]
struct runtime_options {
    /// Worker threads; 0 means the WEFT_MAXPROCS environment variable, else
    /// std::thread::hardware_concurrency().
    unsigned workers = 0;
    /// Report "all tasks are asleep - deadlock!" when nothing can ever run.
    bool detect_deadlock = true;
};

template <class R = void>
class join_handle;

namespace detail {

/// Who waits for a root task to finish: a task (readied) or a plain thread
/// (woken through m_word).
struct join_waiter {
    task_header* m_task = nullptr;
    std::atomic<std::uint32_t> m_word{0};
};
void wake_join_waiter(join_waiter* w) noexcept;
/// Blocks the calling (non-worker) thread until w.m_word becomes non-zero.
void wait_join_waiter(join_waiter& w) noexcept;

/// The part of a root task's promise that does not depend on its result.
///
/// Invariants: m_refs counts the coroutine (until it finishes or is
/// abandoned) plus a live join_handle; the frame is destroyed when it drops
/// to zero. m_join is 0 while running, 1 once finished, else the address of
/// the single join_waiter.
struct root_base : task_header, pooled_frame {
    // The two flags first: they fill task_header's tail padding (Itanium
    // ABI), which keeps a parked task's root frame in a smaller size class.
    std::atomic<bool> m_joined{false};
    bool m_abandoned = false;
    std::atomic<std::uint32_t> m_refs{2};
    std::atomic<std::uintptr_t> m_join{0};
    std::exception_ptr m_exception;

    static constexpr std::uintptr_t k_running = 0;
    static constexpr std::uintptr_t k_done = 1;

    void unhandled_exception() noexcept { m_exception = std::current_exception(); }
    std::suspend_always initial_suspend() const noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <class P>
        WEFT_AWAIT_SUSPEND void await_suspend(std::coroutine_handle<P> h) noexcept
        {
            h.promise().finish();
        }
        void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() const noexcept { return {}; }

    bool done() const noexcept { return m_join.load(std::memory_order_acquire) == k_done; }

    /// The body has finished: wake the joiner, leave the registry, drop the
    /// coroutine's reference.
    void finish() noexcept;
    /// Runtime shutdown, after the user frames were destroyed: wake a
    /// waiting thread and drop the coroutine's reference.
    static void abandon(task_header* t) noexcept;
    /// Drops one reference; the last one destroys the frame (and reports an
    /// exception nobody can observe any more).
    void release() noexcept;
    /// Marks the single join; throws std::logic_error on a second one.
    void claim_join();
    /// The task ended with the canceled_error of its own cancelled context:
    /// how a cancelled task stops, not a failure, even if nobody joins it.
    bool ended_by_cancellation() const noexcept;
    /// A cancelled join gives its claim back.
    void unclaim_join() noexcept { m_joined.store(false, std::memory_order_relaxed); }
    void rethrow_if_failed()
    {
        if (m_abandoned)
            throw std::logic_error("weft: joined task was destroyed at runtime shutdown");
        if (m_exception)
            std::rethrow_exception(m_exception);
    }
};

template <class R>
struct root_promise;

template <class R>
struct root_task {
    using promise_type = root_promise<R>;
    std::coroutine_handle<promise_type> m_coro;
};

template <class R>
struct root_promise final : root_base {
    root_promise() noexcept {}
    ~root_promise()
    {
        if (m_has_value)
            m_value.~R();
    }
    root_task<R> get_return_object() noexcept
    {
        return {std::coroutine_handle<root_promise>::from_promise(*this)};
    }
    template <class U>
    void return_value(U&& v)
    {
        ::new (static_cast<void*>(std::addressof(m_value))) R(std::forward<U>(v));
        m_has_value = true;
    }
    R take()
    {
        rethrow_if_failed();
        return std::move(m_value);
    }
    /// The user's task, awaited by the root body; shutdown destroys it.
    task<R> m_inner;
    union {
        R m_value;
    };
    bool m_has_value = false;
};

template <>
struct root_promise<void> final : root_base {
    root_task<void> get_return_object() noexcept
    {
        return {std::coroutine_handle<root_promise>::from_promise(*this)};
    }
    void return_void() noexcept {}
    void take() { rethrow_if_failed(); }
    task<void> m_inner;
};

/// co_await get_root_promise<R>{} -> the root's own promise, without
/// suspending.
template <class R>
struct get_root_promise {
    root_promise<R>* m_p = nullptr;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<root_promise<R>> h) noexcept
    {
        m_p = &h.promise();
        return false;
    }
    root_promise<R>& await_resume() const noexcept { return *m_p; }
};

// The user's task is kept in the root promise, not in a frame local, so that
// shutdown can destroy it without resuming anything. (Awaiter temporaries
// here hold only pointers: GCC 12 mishandles non-trivial members of co_await
// operand temporaries.)
template <class R>
void* root_ops(task_header* t, task_header::op o) noexcept
{
    auto p = static_cast<root_promise<R>*>(t);
    switch (o) {
    case task_header::op::abandon:
        task_access::destroy(p->m_inner);
        root_base::abandon(t);
        break;
    case task_header::op::destroy:
        std::coroutine_handle<root_promise<R>>::from_promise(*p).destroy();
        break;
    case task_header::op::body:
        return task_access::promise(p->m_inner);
    }
    return nullptr;
}

// Root bodies take f and args by value: they live in the root frame for the
// task's whole life, so a lambda's captures and reference parameters bound
// to the arguments stay valid.
template <class R, class F, class... A>
root_task<R> root_body(F f, A... args)
{
    root_promise<R>& p = co_await get_root_promise<R>{};
    p.m_inner = std::invoke(f, std::move(args)...);
    co_return co_await p.m_inner;
}
template <class F, class... A>
root_task<void> root_body_void(F f, A... args)
{
    root_promise<void>& p = co_await get_root_promise<void>{};
    p.m_inner = std::invoke(f, std::move(args)...);
    co_await p.m_inner;
}

template <class F, class... A>
using spawn_result_t = std::invoke_result_t<std::decay_t<F>&, std::decay_t<A>&&...>;

template <class F, class... A>
concept task_function = is_task_v<spawn_result_t<F, A...>>;

/// Creates a root task for f(args...) without scheduling it.
template <class F, class... A>
auto make_root(F&& f, A&&... args)
{
    using R = typename spawn_result_t<F, A...>::value_type;
    root_promise<R>* p;
    if constexpr (std::is_void_v<R>)
        p = &root_body_void<std::decay_t<F>, std::decay_t<A>...>(std::forward<F>(f),
                                                                  std::forward<A>(args)...)
                 .m_coro.promise();
    else
        p = &root_body<R, std::decay_t<F>, std::decay_t<A>...>(std::forward<F>(f),
                                                               std::forward<A>(args)...)
                 .m_coro.promise();
    p->m_resume = std::coroutine_handle<root_promise<R>>::from_promise(*p);
    p->m_ops = &root_ops<R>;
    return p;
}

template <class R>
join_handle<R> adopt_root(root_promise<R>* p) noexcept;

/// Runtime life cycle for run(); defined in lib/sched.
void runtime_start(const runtime_options& opts);
void runtime_stop() noexcept;
bool runtime_running() noexcept;
bool on_worker_thread() noexcept;

} // namespace detail

/// The right to wait for a spawned task's result. [no Go equivalent: a
/// goroutine's result travels over a channel; join_handle is that channel]
///
/// Thread safety: one handle is used by one task at a time.
/// Resumption: the joining task resumes on a worker after the joined task
///   finishes.
/// Lifetime: dropping the handle detaches the task, which keeps running. An
///   exception of a task that is detached, or whose handle is dropped
///   without a join, ends the program like an unrecovered Go panic.
/// Join once: `co_await h` a second time throws std::logic_error.
template <class R>
class join_handle {
public:
    join_handle() noexcept = default;
    join_handle(join_handle&& o) noexcept : m_p(std::exchange(o.m_p, nullptr)) {}
    join_handle& operator=(join_handle&& o) noexcept
    {
        if (this != &o) {
            reset();
            m_p = std::exchange(o.m_p, nullptr);
        }
        return *this;
    }
    ~join_handle() { reset(); }

    /// True once the task has finished (or was destroyed at shutdown).
    bool done() const noexcept { return m_p && m_p->done(); }
    explicit operator bool() const noexcept { return m_p != nullptr; }
    /// Drops the handle; the task runs on unjoined.
    void detach() noexcept { reset(); }

    /// co_await h: waits for the task and returns its result or rethrows its
    /// exception.
    class [[nodiscard]] join_operation {
    public:
        explicit join_operation(detail::root_promise<R>* p) noexcept : m_p(p) {}
        bool await_ready()
        {
            if (!m_p)
                throw std::logic_error("weft::join_handle: join of an empty handle");
            m_p->claim_join();
            return m_p->done();
        }
        ~join_operation() { detail::hook_end(m_hook); }
        WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
        {
            detail::task_header* t = detail::require_task("join");
            m_waiter.m_task = t;
            t->m_resume = h;
            if (!detail::hook_begin(m_hook, t, this, &withdraw))
                return false;
            detail::context_node* const scope = m_hook.scope();
            auto expected = detail::root_base::k_running;
            if (!m_p->m_join.compare_exchange_strong(
                    expected, reinterpret_cast<std::uintptr_t>(&m_waiter), std::memory_order_release,
                    std::memory_order_acquire)) {
                detail::hook_end(m_hook);
                return false; // finished meanwhile
            }
            if (!scope)
                return true;
            // Cancelled before the waiter was published: withdraw it here.
            if (scope->cancelled() && take_back()) {
                m_hook.set_canceled();
                return false;
            }
            return detail::hook_suspend(m_hook);
        }
        R await_resume()
        {
            if (detail::hook_end(m_hook)) {
                m_p->unclaim_join();
                detail::throw_canceled();
            }
            return m_p->take();
        }

    private:
        bool take_back() noexcept
        {
            auto mine = reinterpret_cast<std::uintptr_t>(&m_waiter);
            return m_p->m_join.compare_exchange_strong(mine, detail::root_base::k_running,
                                                       std::memory_order_acq_rel,
                                                       std::memory_order_relaxed);
        }
        static void withdraw(detail::wait_hook* h) noexcept
        {
            auto op = static_cast<join_operation*>(h->m_op);
            if (!op->take_back())
                return; // the task finished first (or the waiter is not out yet)
            h->m_canceled = true;
            detail::wake_waiter(h->m_task);
        }

        detail::root_promise<R>* m_p;
        detail::join_waiter m_waiter;
        detail::op_hook<join_operation> m_hook;
    };
    join_operation operator co_await() & noexcept { return join_operation{m_p}; }
    join_operation operator co_await() && noexcept { return join_operation{m_p}; }

private:
    template <class U>
    friend join_handle<U> detail::adopt_root(detail::root_promise<U>*) noexcept;
    template <class F, class... A>
    friend auto run(runtime_options, F&&, A&&...);
    template <class Aw>
    friend auto block_on(Aw&&);

    explicit join_handle(detail::root_promise<R>* p) noexcept : m_p(p) {}
    void reset() noexcept
    {
        if (auto p = std::exchange(m_p, nullptr))
            p->release();
    }
    /// Blocks a non-worker thread until the task is done, then takes its
    /// result.
    R wait_on_thread()
    {
        m_p->claim_join();
        detail::join_waiter w;
        auto expected = detail::root_base::k_running;
        if (m_p->m_join.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(&w),
                                                std::memory_order_release,
                                                std::memory_order_acquire))
            detail::wait_join_waiter(w);
        detail::external_waiter_leave();
        return m_p->take();
    }

    detail::root_promise<R>* m_p = nullptr;
};

namespace detail {
template <class R>
join_handle<R> adopt_root(root_promise<R>* p) noexcept
{
    return join_handle<R>(p);
}
} // namespace detail

namespace detail {
/// Creates the root task of f(args...), with ctx as its context if given,
/// records where the go call was (empty: not known) and queues it.
template <class F, class... A>
auto spawn_task(const context* ctx, const std::source_location& where, F&& f, A&&... args)
{
    auto p = make_root(std::forward<F>(f), std::forward<A>(args)...);
    auto h = adopt_root(p);
    p->m_created = where;
    if (ctx) {
        p->m_ctx_given = true;
        p->m_ctx = ctx->node();
        if (p->m_ctx)
            p->m_ctx->acquire();
    }
    spawn(p);
    return h;
}
} // namespace detail

/// Runs f(args...) as a new task, concurrently with the caller. [go f(args)]
///
/// f(args...) must return task<R>. f and args are decay-copied into the new
/// task's frame, so a lambda's captures live as long as the task; prefer
/// by-value coroutine parameters. Callable from tasks and from other threads
/// while a runtime runs. The new task runs in the caller's context
/// (current_context(); background outside tasks).
/// Returns a join_handle; dropping it detaches the task.
///
/// dump_tasks shows each task's go call site ("created by ... at file:line").
/// The site is a defaulted trailing parameter, which a parameter pack cannot
/// precede, so go has one overload per argument count up to four; with more
/// arguments, the variadic overload records only the spawning task.
template <class F>
    requires detail::task_function<F>
auto go(F&& f, const std::source_location& where = std::source_location::current())
{
    return detail::spawn_task(nullptr, where, std::forward<F>(f));
}
template <class F, class A1>
    requires detail::task_function<F, A1>
auto go(F&& f, A1&& a1, const std::source_location& where = std::source_location::current())
{
    return detail::spawn_task(nullptr, where, std::forward<F>(f), std::forward<A1>(a1));
}
template <class F, class A1, class A2>
    requires detail::task_function<F, A1, A2>
auto go(F&& f, A1&& a1, A2&& a2,
        const std::source_location& where = std::source_location::current())
{
    return detail::spawn_task(nullptr, where, std::forward<F>(f), std::forward<A1>(a1),
                              std::forward<A2>(a2));
}
template <class F, class A1, class A2, class A3>
    requires detail::task_function<F, A1, A2, A3>
auto go(F&& f, A1&& a1, A2&& a2, A3&& a3,
        const std::source_location& where = std::source_location::current())
{
    return detail::spawn_task(nullptr, where, std::forward<F>(f), std::forward<A1>(a1),
                              std::forward<A2>(a2), std::forward<A3>(a3));
}
template <class F, class A1, class A2, class A3, class A4>
    requires detail::task_function<F, A1, A2, A3, A4>
auto go(F&& f, A1&& a1, A2&& a2, A3&& a3, A4&& a4,
        const std::source_location& where = std::source_location::current())
{
    return detail::spawn_task(nullptr, where, std::forward<F>(f), std::forward<A1>(a1),
                              std::forward<A2>(a2), std::forward<A3>(a3), std::forward<A4>(a4));
}
template <class F, class... A>
    requires(sizeof...(A) > 4 && detail::task_function<F, A...>)
auto go(F&& f, A&&... args)
{
    return detail::spawn_task(nullptr, {}, std::forward<F>(f), std::forward<A>(args)...);
}

/// go(f, args...) with ctx as the new task's context: when ctx is done, the
/// task's blocking operations end with canceled_error. The call site is
/// recorded as by go(f, args...).
template <class F>
    requires detail::task_function<F>
auto go(const context& ctx, F&& f,
        const std::source_location& where = std::source_location::current())
{
    return detail::spawn_task(&ctx, where, std::forward<F>(f));
}
template <class F, class A1>
    requires detail::task_function<F, A1>
auto go(const context& ctx, F&& f, A1&& a1,
        const std::source_location& where = std::source_location::current())
{
    return detail::spawn_task(&ctx, where, std::forward<F>(f), std::forward<A1>(a1));
}
template <class F, class A1, class A2>
    requires detail::task_function<F, A1, A2>
auto go(const context& ctx, F&& f, A1&& a1, A2&& a2,
        const std::source_location& where = std::source_location::current())
{
    return detail::spawn_task(&ctx, where, std::forward<F>(f), std::forward<A1>(a1),
                              std::forward<A2>(a2));
}
template <class F, class A1, class A2, class A3>
    requires detail::task_function<F, A1, A2, A3>
auto go(const context& ctx, F&& f, A1&& a1, A2&& a2, A3&& a3,
        const std::source_location& where = std::source_location::current())
{
    return detail::spawn_task(&ctx, where, std::forward<F>(f), std::forward<A1>(a1),
                              std::forward<A2>(a2), std::forward<A3>(a3));
}
template <class F, class A1, class A2, class A3, class A4>
    requires detail::task_function<F, A1, A2, A3, A4>
auto go(const context& ctx, F&& f, A1&& a1, A2&& a2, A3&& a3, A4&& a4,
        const std::source_location& where = std::source_location::current())
{
    return detail::spawn_task(&ctx, where, std::forward<F>(f), std::forward<A1>(a1),
                              std::forward<A2>(a2), std::forward<A3>(a3), std::forward<A4>(a4));
}
template <class F, class... A>
    requires(sizeof...(A) > 4 && detail::task_function<F, A...>)
auto go(const context& ctx, F&& f, A&&... args)
{
    return detail::spawn_task(&ctx, {}, std::forward<F>(f), std::forward<A>(args)...);
}

/// Starts a runtime, runs f(args...) as the main task and blocks until it
/// returns; then the remaining tasks are destroyed (their destructors run)
/// and the workers stop. Rethrows an exception escaping the main task.
/// May be called again after it returns; not from inside a runtime.
template <class F, class... A>
auto run(runtime_options opts, F&& f, A&&... args)
{
    detail::runtime_start(opts);
    struct stopper {
        ~stopper() { detail::runtime_stop(); }
    };
    using R = typename detail::spawn_result_t<F, A...>::value_type;
    join_handle<R> h;
    {
        stopper s;
        auto p = detail::make_root(std::forward<F>(f), std::forward<A>(args)...);
        p->m_main = true;
        h = detail::adopt_root(p);
        detail::spawn(p);
        h.m_p->claim_join();
        detail::join_waiter w;
        auto expected = detail::root_base::k_running;
        if (h.m_p->m_join.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(&w),
                                                  std::memory_order_release,
                                                  std::memory_order_acquire))
            detail::wait_join_waiter(w);
    }
    return h.m_p->take();
}
template <class F, class... A>
    requires detail::task_function<F, A...>
auto run(F&& f, A&&... args)
{
    return run(runtime_options{}, std::forward<F>(f), std::forward<A>(args)...);
}

/// Blocks a thread that is not a worker (plain main(), a legacy thread) on an
/// awaitable and returns its result. While a runtime runs, a worker executes
/// the awaitable; otherwise a runtime runs for the duration. Throws
/// std::logic_error when called on a worker thread.
template <class Aw>
auto block_on(Aw&& aw)
{
    using R = detail::await_result_t<Aw&&>;
    if (detail::on_worker_thread())
        throw std::logic_error("weft::block_on called on a worker thread");
    auto body = [&aw]() -> task<R> { co_return co_await std::forward<Aw>(aw); };
    if (!detail::runtime_running())
        return run(body);
    auto p = detail::make_root(body);
    p->m_user = false;
    auto h = detail::adopt_root(p);
    // Counted before the task exists, so that the runtime never sees an
    // idle moment in which this thread's pending work is invisible.
    detail::external_waiter_enter();
    try {
        detail::spawn(p);
    } catch (...) {
        detail::external_waiter_leave();
        throw;
    }
    return h.wait_on_thread();
}

namespace this_task {

/// co_await this_task::yield(): lets other runnable tasks run first.
/// [runtime.Gosched]
struct [[nodiscard]] yield_operation {
    bool await_ready() const noexcept { return false; }
    WEFT_AWAIT_SUSPEND void await_suspend(std::coroutine_handle<> h)
    {
        auto t = detail::require_task("this_task::yield");
        t->m_resume = h;
        detail::yield_current(t);
    }
    void await_resume() const noexcept {}
};
inline yield_operation yield() noexcept { return {}; }

} // namespace this_task

/// Worker count of the running runtime, or of the next one. [runtime.GOMAXPROCS(0)]
unsigned max_procs() noexcept;
/// Live user tasks, including main. [runtime.NumGoroutine]
std::size_t num_tasks() noexcept;

} // namespace weft
