// Asio interop: await Asio operations in tasks (use_task), run tasks from
// Asio code and take their results with any completion token
// (async_spawn), and run the runtime on an application's own
// asio::io_context threads (runtime).
//
// Header-only, for standalone Asio 1.22 or later (<asio.hpp>): the compiled
// library knows nothing of Asio. With clang and libstdc++, Asio 1.22 needs
// -DASIO_HAS_CO_AWAIT=1 for asio::awaitable.
#pragma once

#include <asio.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include <unistd.h>

#include <weft/context.hpp>
#include <weft/detail/cancel.hpp>
#include <weft/detail/config.hpp>
#include <weft/detail/host.hpp>
#include <weft/detail/spinlock.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/detail/timer_node.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

namespace weft {

/// The completion token that turns an Asio asynchronous operation into an
/// awaitable of weft tasks: `co_await timer.async_wait(weft::use_task);`.
///
/// Results: an operation completing with (error_code, T) gives T, with
///   (error_code) gives nothing, with (exception_ptr, T) gives T; a set
///   error_code is thrown as std::system_error, an exception_ptr is
///   rethrown. Other values: none gives void, one gives it, several give a
///   std::tuple.
/// Resumption: the Asio handler only records the result and readies the
///   task, which resumes on a weft worker (in guest mode, through the
///   io_context like every task), never inline on the Asio thread.
/// Cancellation: when the task's context is done, the operation is
///   cancelled through its cancellation slot with
///   asio::cancellation_type::terminal, the emission posted to the
///   operation's executor (that of its I/O object). The await still waits
///   for the operation's handler, since the operation may use buffers in the
///   task's frame, and then throws canceled_error, unless the operation had
///   already succeeded. A context done before the await starts nothing and
///   throws at once. Operations that ignore cancellation slots (resolvers,
///   post) run to completion. An I/O object shared by several io_context
///   threads should have a strand executor, as Asio requires for
///   cancellation.
/// Lifetime: an operation whose handler Asio destroys without calling it
///   (the io_context was destroyed) throws std::system_error with
///   asio::error::operation_aborted.
/// ThreadSanitizer: an exception rethrown from an exception_ptr completion
///   is shared with the Asio thread, which may drop its copy after the task
///   resumed; libstdc++'s reference count is not instrumented, so reading
///   the exception in the task may be reported as a race with that thread
///   freeing it (a false positive).
struct use_task_t {
    constexpr use_task_t() noexcept = default;
};
inline constexpr use_task_t use_task{};

namespace detail {

/// Where a completion signature carries its error: 0 nowhere, 1 an
/// error_code first, 2 an exception_ptr first.
template <class... A>
inline constexpr int asio_error_kind = 0;
template <class... R>
inline constexpr int asio_error_kind<asio::error_code, R...> = 1;
template <class... R>
inline constexpr int asio_error_kind<std::exception_ptr, R...> = 2;

/// The values of a completion after the first `Skip`: void, one value, or a
/// tuple of several.
template <std::size_t Skip, class... A>
auto take_values(std::tuple<A...>& t)
{
    constexpr std::size_t n = sizeof...(A) - Skip;
    if constexpr (n == 0) {
        return;
    } else if constexpr (n == 1) {
        return std::move(std::get<Skip>(t));
    } else {
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
            return std::tuple<std::tuple_element_t<Skip + I, std::tuple<A...>>...>(
                std::move(std::get<Skip + I>(t))...);
        }(std::make_index_sequence<n>{});
    }
}

/// The state of one use_task operation that the Asio side may hold after
/// the awaiting frame is gone (runtime shutdown), so it is allocated.
///
/// Invariants:
///   m_refs counts the awaiter, the handler (until it is called or
///   destroyed) and a posted cancellation emitter.
///   m_word holds the arrivals still due before the task may resume (the
///   count: the handler's, await_suspend's once it has initiated the
///   operation, and a posted emitter's) and the flags below. Whoever brings
///   the count to zero readies the task, except await_suspend, which then
///   does not suspend. m_result and m_abandoned are written by the handler
///   before its arrival and read by the task after it resumes.
/// Emission: the canceller never emits itself. Once the operation is
///   initiated (k_armed) it posts an emitter to the operation's executor; a
///   cancel that comes earlier only sets k_cancel, and await_suspend posts
///   the emitter after the initiation, so that the slot is never emitted
///   while the initiation is still installing its handler.
class asio_op_base {
public:
    static constexpr std::uint32_t k_count = 0xff;
    static constexpr std::uint32_t k_cancel = 1u << 8;   // the context asked to cancel
    static constexpr std::uint32_t k_done = 1u << 9;     // the handler ran or was destroyed
    static constexpr std::uint32_t k_armed = 1u << 10;   // the operation was initiated
    static constexpr std::uint32_t k_orphan = 1u << 11;  // the awaiting frame is gone
    static constexpr std::uint32_t k_readied = 1u << 12; // the task was readied

    explicit asio_op_base(task_header* t, bool bind_slot) noexcept
        : m_task(t), m_bind_slot(bind_slot)
    {
    }
    asio_op_base(const asio_op_base&) = delete;
    asio_op_base& operator=(const asio_op_base&) = delete;

    void acquire() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept
    {
        if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }

    /// The handler's arrival (called or destroyed).
    void complete() noexcept
    {
        arrived(m_word.fetch_add(k_done - 1, std::memory_order_acq_rel) + k_done - 1);
    }

    /// The canceller (any thread, through the task's wait hook).
    void request_cancel() noexcept
    {
        std::uint32_t w = m_word.load(std::memory_order_relaxed);
        std::uint32_t nw;
        do {
            if (w & (k_done | k_cancel))
                return;
            nw = w | k_cancel;
            if (w & k_armed)
                nw += 1; // the emitter's arrival
        } while (!m_word.compare_exchange_weak(w, nw, std::memory_order_acq_rel,
                                               std::memory_order_relaxed));
        if (w & k_armed)
            start_emit();
    }

    /// await_suspend, once the operation is initiated: its own arrival.
    /// True if the task stays suspended. Touches nothing of the frame.
    bool arm() noexcept
    {
        std::uint32_t w = m_word.load(std::memory_order_relaxed);
        std::uint32_t nw;
        bool emit;
        do {
            emit = (w & k_cancel) && !(w & k_done);
            nw = ((w | k_armed) - 1) + (emit ? 1 : 0);
        } while (!m_word.compare_exchange_weak(w, nw, std::memory_order_acq_rel,
                                               std::memory_order_relaxed));
        if (emit)
            start_emit();
        return (nw & k_count) != 0;
    }

    /// The awaiting frame is destroyed before the task resumed (runtime
    /// shutdown): nobody may ready the task any more. Waits for a readier
    /// that got there first to be done with it.
    void orphan() noexcept
    {
        std::uint32_t w = m_word.fetch_or(k_orphan, std::memory_order_acq_rel);
        if ((w & k_armed) && (w & k_count) == 0)
            spin_until([this] { return (m_word.load(std::memory_order_acquire) & k_readied) != 0; });
    }

    /// The posted emitter, on the operation's executor (emit false: it was
    /// destroyed without running).
    void emitted(bool emit) noexcept
    {
        if (emit && !(m_word.load(std::memory_order_acquire) & k_done))
            m_signal.emit(asio::cancellation_type::terminal);
        arrived(m_word.fetch_sub(1, std::memory_order_acq_rel) - 1);
        release();
    }

    bool cancel_requested() const noexcept
    {
        return (m_word.load(std::memory_order_acquire) & k_cancel) != 0;
    }

    asio::cancellation_slot slot() noexcept
    {
        return m_bind_slot ? m_signal.slot() : asio::cancellation_slot();
    }

    bool m_abandoned = false;

protected:
    virtual ~asio_op_base() = default;
    /// Posts emitted(true) to the operation's executor; calls
    /// emitted(false) if it cannot.
    virtual void post_emit() noexcept = 0;

private:
    void start_emit() noexcept
    {
        acquire(); // the emitter's
        post_emit();
    }

    /// An arrival that left `now`: the last one readies the task. The
    /// caller holds a reference, so the state outlives the ready.
    void arrived(std::uint32_t now) noexcept
    {
        if ((now & k_count) != 0 || (now & k_orphan))
            return;
        ready(m_task);
        m_word.fetch_or(k_readied, std::memory_order_release);
    }

    std::atomic<std::uint32_t> m_word{2};
    std::atomic<std::uint32_t> m_refs{1};
    task_header* const m_task;
    asio::cancellation_signal m_signal;
    const bool m_bind_slot;
};

/// Calls emitted() once, whether Asio runs it or destroys it.
class asio_emitter {
public:
    explicit asio_emitter(asio_op_base* st) noexcept : m_st(st) {}
    asio_emitter(asio_emitter&& o) noexcept : m_st(std::exchange(o.m_st, nullptr)) {}
    asio_emitter& operator=(asio_emitter&&) = delete;
    ~asio_emitter()
    {
        if (m_st)
            m_st->emitted(false);
    }
    void operator()() { std::exchange(m_st, nullptr)->emitted(true); }

private:
    asio_op_base* m_st;
};

/// No executor to post a cancellation to: the operation is not cancelled.
struct no_executor {};

template <class Executor, class... Args>
class asio_op_state final : public asio_op_base {
public:
    asio_op_state(task_header* t, bool cancellable, Executor ex)
        : asio_op_base(t, cancellable && !std::is_same_v<Executor, no_executor>),
          m_ex(std::move(ex))
    {
    }
    std::optional<std::tuple<std::decay_t<Args>...>> m_result;

private:
    void post_emit() noexcept override
    {
        if constexpr (std::is_same_v<Executor, no_executor>) {
            emitted(false);
        } else {
            try {
                asio::post(m_ex, asio_emitter(this));
            } catch (...) {
                // The emitter was destroyed unrun: emitted(false) happened.
            }
        }
    }
    Executor m_ex;
};

/// The completion handler use_task hands to an operation. It calls into
/// the state once: when invoked, or when destroyed without being invoked.
template <class State>
class asio_task_handler {
public:
    using cancellation_slot_type = asio::cancellation_slot;

    explicit asio_task_handler(State* st) noexcept : m_st(st) { m_st->acquire(); }
    asio_task_handler(asio_task_handler&& o) noexcept : m_st(std::exchange(o.m_st, nullptr)) {}
    asio_task_handler& operator=(asio_task_handler&&) = delete;
    ~asio_task_handler()
    {
        if (m_st) {
            m_st->m_abandoned = true;
            finish();
        }
    }

    cancellation_slot_type get_cancellation_slot() const noexcept
    {
        return m_st ? m_st->slot() : cancellation_slot_type();
    }

    template <class... A>
    void operator()(A&&... a)
    {
        m_st->m_result.emplace(std::forward<A>(a)...);
        finish();
    }

private:
    void finish() noexcept
    {
        State* st = std::exchange(m_st, nullptr);
        st->complete();
        st->release();
    }

    State* m_st;
};

template <class Initiation>
auto initiation_executor(const Initiation& init)
{
    if constexpr (requires { init.get_executor(); })
        return init.get_executor();
    else
        return no_executor{};
}

} // namespace detail

/// co_await op(..., weft::use_task): the awaitable an Asio initiating
/// function returns for use_task (see use_task_t). Nothing starts until it
/// is awaited; it may be moved before that.
template <class Initiation, class Signature, class InitArgs>
class asio_operation;

template <class Initiation, class R, class... Args, class... InitArgs>
class [[nodiscard]] asio_operation<Initiation, R(Args...), std::tuple<InitArgs...>> {
    using executor_type = decltype(detail::initiation_executor(std::declval<const Initiation&>()));
    using state = detail::asio_op_state<executor_type, Args...>;
    static constexpr int error_kind = detail::asio_error_kind<std::decay_t<Args>...>;

public:
    template <class I, class... A>
    explicit asio_operation(I&& init, A&&... args)
        : m_init(std::forward<I>(init)), m_args(std::forward<A>(args)...)
    {
    }
    asio_operation(asio_operation&& o) noexcept(std::is_nothrow_move_constructible_v<Initiation> &&
                                                 (std::is_nothrow_move_constructible_v<InitArgs> &&
                                                  ...))
        : m_init(std::move(o.m_init)), m_args(std::move(o.m_args))
    {
    }
    asio_operation& operator=(asio_operation&&) = delete;
    ~asio_operation()
    {
        detail::hook_end(m_hook);
        if (!m_state)
            return;
        if (m_started && !m_resumed) {
            // Destroyed while the operation runs (runtime shutdown).
            m_state->orphan();
            detail::external_waiter_leave();
        }
        m_state->release();
    }

    bool await_ready() const noexcept { return false; }

    WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
    {
        detail::task_header* t = detail::require_task("asio operation");
        t->m_resume = h;
        // Made before the hook is registered: the canceller reads m_state.
        m_state = new state(t, detail::task_scope(t) != nullptr,
                            detail::initiation_executor(m_init));
        if (!detail::hook_begin(m_hook, t, this, &withdraw))
            return false; // the context is done: await_resume throws
        m_started = true;
        // Waiting for another thread is not a deadlock (as for block_on).
        detail::external_waiter_enter();
        state* st = m_state;
        try {
            std::apply(
                [&](InitArgs&... a) {
                    std::move(m_init)(detail::asio_task_handler<state>(st), std::move(a)...);
                },
                m_args);
        } catch (...) {
            // The handler was destroyed, which counts as its arrival.
            m_init_error = std::current_exception();
        }
        return st->arm();
    }

    auto await_resume()
    {
        m_resumed = true;
        if (detail::hook_end(m_hook))
            detail::throw_canceled(); // done before the operation started
        detail::external_waiter_leave();
        if (m_init_error)
            std::rethrow_exception(m_init_error);
        const bool cancelled = m_state->cancel_requested();
        if (m_state->m_abandoned) {
            if (cancelled)
                detail::throw_canceled();
            throw std::system_error(asio::error::make_error_code(asio::error::operation_aborted),
                                    "weft::use_task: the operation's handler was destroyed unrun");
        }
        auto& r = *m_state->m_result;
        if constexpr (error_kind == 1) {
            if (const asio::error_code& ec = std::get<0>(r)) {
                if (cancelled)
                    detail::throw_canceled();
                throw std::system_error(ec);
            }
        } else if constexpr (error_kind == 2) {
            if (const std::exception_ptr& ep = std::get<0>(r)) {
                if (cancelled)
                    detail::throw_canceled();
                std::rethrow_exception(ep);
            }
        }
        return detail::take_values<(error_kind != 0 ? 1 : 0)>(r);
    }

private:
    static void withdraw(detail::wait_hook* h) noexcept
    {
        static_cast<asio_operation*>(h->m_op)->m_state->request_cancel();
    }

    Initiation m_init;
    std::tuple<InitArgs...> m_args;
    state* m_state = nullptr;
    std::exception_ptr m_init_error;
    detail::op_hook<asio_operation> m_hook;
    bool m_started = false;
    bool m_resumed = false;
};

} // namespace weft

template <class R, class... Args>
class asio::async_result<weft::use_task_t, R(Args...)> {
public:
    template <class Initiation, class... InitArgs>
    static auto initiate(Initiation&& init, weft::use_task_t, InitArgs&&... args)
    {
        return weft::asio_operation<std::decay_t<Initiation>, R(Args...),
                                    std::tuple<std::decay_t<InitArgs>...>>(
            std::forward<Initiation>(init), std::forward<InitArgs>(args)...);
    }
};

namespace weft {

namespace detail {

template <class T>
struct spawn_signature {
    using type = void(std::exception_ptr, T);
};
template <>
struct spawn_signature<void> {
    using type = void(std::exception_ptr);
};

/// Delivers a spawned task's outcome to its handler, on the handler's
/// executor. The cancellation slot is cleared there first, so that the
/// slot's owner may reuse it once the handler runs.
template <class Handler, class T>
class spawn_completion {
public:
    spawn_completion(Handler h, std::exception_ptr ep, std::optional<T> v,
                     asio::cancellation_slot slot)
        : m_h(std::move(h)), m_ep(std::move(ep)), m_v(std::move(v)), m_slot(slot)
    {
    }
    void operator()()
    {
        if (m_slot.is_connected())
            m_slot.clear();
        if (m_v)
            std::move(m_h)(std::move(m_ep), std::move(*m_v));
        else
            std::move(m_h)(std::move(m_ep), T{});
    }

private:
    Handler m_h;
    std::exception_ptr m_ep;
    std::optional<T> m_v;
    asio::cancellation_slot m_slot;
};

template <class Handler>
class spawn_completion<Handler, void> {
public:
    spawn_completion(Handler h, std::exception_ptr ep, std::optional<std::monostate>,
                     asio::cancellation_slot slot)
        : m_h(std::move(h)), m_ep(std::move(ep)), m_slot(slot)
    {
    }
    void operator()()
    {
        if (m_slot.is_connected())
            m_slot.clear();
        std::move(m_h)(std::move(m_ep));
    }

private:
    Handler m_h;
    std::exception_ptr m_ep;
    asio::cancellation_slot m_slot;
};

/// The task async_spawn starts: runs t, then posts the handler with its
/// outcome. The work guards keep the executors' run() going until the
/// completion is posted (which then counts as work itself).
template <class T, class Handler, class Executor, class Work, class HandlerWork>
task<> run_spawned(task<T> t, Handler h, Executor ex, Work work, HandlerWork handler_work,
                   asio::cancellation_slot slot)
{
    std::exception_ptr ep;
    using stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
    std::optional<stored> value;
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(t);
            value.emplace();
        } else {
            value.emplace(co_await std::move(t));
        }
    } catch (...) {
        ep = std::current_exception();
    }
    auto handler_ex = asio::get_associated_executor(h, ex);
    asio::post(ex, asio::bind_executor(handler_ex, spawn_completion<Handler, T>(
                                                       std::move(h), std::move(ep),
                                                       std::move(value), slot)));
    work.reset();
    handler_work.reset();
}

template <class Executor>
class spawn_initiation {
public:
    using executor_type = Executor;

    explicit spawn_initiation(const Executor& ex) : m_ex(ex) {}
    executor_type get_executor() const noexcept { return m_ex; }

    template <class Handler, class T>
    void operator()(Handler&& h, task<T> t) const
    {
        using handler_type = std::decay_t<Handler>;
        auto slot = asio::get_associated_cancellation_slot(h);
        auto made = with_cancel(current_context());
        if (slot.is_connected()) {
            slot.assign([cancel = made.second](asio::cancellation_type type) {
                if ((type & asio::cancellation_type::terminal) != asio::cancellation_type::none)
                    cancel();
            });
        }
        auto handler_ex = asio::get_associated_executor(h, m_ex);
        try {
            auto work = asio::make_work_guard(m_ex);
            auto handler_work = asio::make_work_guard(handler_ex);
            weft::go(std::move(made.first),
                     &run_spawned<T, handler_type, Executor, decltype(work), decltype(handler_work)>,
                     std::move(t), handler_type(std::forward<Handler>(h)), m_ex, std::move(work),
                     std::move(handler_work), slot);
        } catch (...) {
            if (slot.is_connected())
                slot.clear();
            throw;
        }
    }

private:
    Executor m_ex;
};

} // namespace detail

/// Runs task t on the weft runtime and completes an Asio asynchronous
/// operation with its outcome: the bridge from Asio code to weft. The
/// completion signature is void(std::exception_ptr, T), or
/// void(std::exception_ptr) for task<void>: an exception escaping the task
/// (canceled_error included) arrives as the exception_ptr, with T{} as the
/// value (so T must be default-constructible, as for asio::co_spawn). Any
/// completion token works: a callback, asio::use_future,
/// asio::use_awaitable, asio::deferred, and the awaitable operators.
///
/// Executor: the completion handler runs through its associated executor,
///   ex by default, always posted (never inline on the weft worker). ex and
///   the handler's executor have outstanding work until the completion is
///   posted, so io_context::run() does not return while the task runs.
/// Context: the task runs in a new child of current_context() (background
///   outside tasks).
/// Cancellation: an emission on the handler's cancellation slot that
///   includes asio::cancellation_type::terminal cancels that context: the
///   task's blocking operations throw canceled_error, which reaches the
///   handler unless the task handles it. The slot is cleared before the
///   handler runs.
/// Needs a running runtime (weft::run on some thread, or weft::runtime);
///   without one, the initiation throws std::logic_error. If the runtime
///   stops before the task finishes, the task and the handler are destroyed
///   without the handler being called.
template <class Executor, class T, class CompletionToken>
    requires(asio::execution::is_executor<Executor>::value || asio::is_executor<Executor>::value)
auto async_spawn(const Executor& ex, task<T> t, CompletionToken&& token)
{
    static_assert(std::is_void_v<T> || std::is_default_constructible_v<T>,
                  "weft::async_spawn: the task's value type must be default-constructible (with "
                  "an exception the handler gets T{}), as for asio::co_spawn");
    static_assert(!std::is_reference_v<T>, "weft::async_spawn: the task must not return a reference");
    return asio::async_initiate<CompletionToken, typename detail::spawn_signature<T>::type>(
        detail::spawn_initiation<Executor>(ex), token, std::move(t));
}

/// async_spawn on the executor of an execution context (an io_context).
template <class ExecutionContext, class T, class CompletionToken>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
auto async_spawn(ExecutionContext& ctx, task<T> t, CompletionToken&& token)
{
    return async_spawn(ctx.get_executor(), std::move(t), std::forward<CompletionToken>(token));
}

namespace detail {

/// Hosts a runtime on an io_context (see runtime below): a task readied is
/// posted to the io_context, and one steady_timer waits for the earliest
/// weft timer deadline.
///
/// Invariants: m_active counts host threads inside run_hosted or
///   fire_hosted_timers; once m_stopped is set none enters again (both
///   seq_cst: a thread counts itself and then looks at m_stopped, stop()
///   sets m_stopped and then waits for the count), so stop() may stop the
///   library's runtime after the count drops to zero. Handlers still queued
///   then find m_stopped and drop their task.
///   m_timer, m_timer_at and m_timer_gen are guarded by m_timer_lock.
///   m_timer_at is the deadline of the wait in progress (INT64_MAX: none);
///   a completed wait resets it before it fires the due timers and re-arms
///   for the earliest one left, so a deadline published meanwhile is
///   either armed by its own arm_timer or found by that re-arm.
class asio_host final : public host, public std::enable_shared_from_this<asio_host> {
public:
    explicit asio_host(asio::io_context& io)
        : m_io(io), m_timer(io), m_io_watch(io, dup_or_throw(hosted_io_fd())), m_io_retry(io),
          m_work(io.get_executor())
    {
    }

    /// Starts watching sockets for weft::net; once, after the runtime
    /// started.
    void start() { watch_io(); }

    void schedule(task_header* t) noexcept override
    {
        asio::post(m_io, [self = shared_from_this(), t] {
            if (!self->enter())
                return;
            run_hosted(t);
            self->leave();
        });
    }

    void arm_timer(std::int64_t when) noexcept override
    {
        std::lock_guard lk(m_timer_lock);
        if (m_stopped.load(std::memory_order_relaxed) || when >= m_timer_at)
            return;
        m_timer_at = when;
        const std::uint64_t gen = ++m_timer_gen;
        m_timer.expires_at(from_ns(when)); // weft::clock is std::chrono::steady_clock
        m_timer.async_wait([self = shared_from_this(), gen](const asio::error_code& ec) {
            self->timer_fired(ec, gen);
        });
    }

    /// Stops the runtime: see runtime::stop.
    void stop() noexcept
    {
        m_stopped.store(true, std::memory_order_seq_cst);
        spin_until([this] { return m_active.load(std::memory_order_seq_cst) == 0; });
        runtime_stop();
        {
            std::lock_guard lk(m_timer_lock);
            m_timer.cancel();
            m_timer_at = INT64_MAX;
        }
        {
            std::lock_guard lk(m_io_lock);
            m_io_watch.cancel();
            m_io_retry.cancel();
        }
        m_work.reset();
    }

    bool stopped() const noexcept { return m_stopped.load(std::memory_order_acquire); }
    asio::io_context& io() const noexcept { return m_io; }

private:
    bool enter() noexcept
    {
        m_active.fetch_add(1, std::memory_order_seq_cst);
        if (m_stopped.load(std::memory_order_seq_cst)) {
            leave();
            return false;
        }
        return true;
    }
    void leave() noexcept { m_active.fetch_sub(1, std::memory_order_seq_cst); }

    void timer_fired(const asio::error_code& ec, std::uint64_t gen) noexcept
    {
        if (ec == asio::error::operation_aborted)
            return; // replaced by an earlier deadline, or stopped
        {
            std::lock_guard lk(m_timer_lock);
            if (gen == m_timer_gen)
                m_timer_at = INT64_MAX;
        }
        if (!enter())
            return;
        const std::int64_t next = fire_hosted_timers();
        leave();
        if (next != INT64_MAX)
            arm_timer(next);
    }

    static int dup_or_throw(int fd)
    {
        int d = ::dup(fd);
        if (d < 0)
            throw std::system_error(errno, std::system_category(), "weft::runtime: dup");
        return d;
    }

    // Sockets: the net poller's descriptor is readable while readiness
    // waits to be delivered. One wait is queued at a time; each wake-up
    // delivers everything, re-queues the wait, and then delivers once more,
    // since readiness that arrived between the two was an edge with no wait
    // queued to see it.
    void watch_io() noexcept
    {
        {
            std::lock_guard lk(m_io_lock);
            if (m_stopped.load(std::memory_order_relaxed))
                return;
            m_io_watch.async_wait(asio::posix::descriptor_base::wait_read,
                                  [self = shared_from_this()](const asio::error_code& ec) {
                                      self->io_ready(ec);
                                  });
        }
        if (!enter())
            return;
        poll_hosted_io();
        leave();
    }

    // A wait that fails (it should not: the descriptor is the library's
    // own) would fail again at once if re-queued, spinning a host thread.
    // The first failure is logged; after each one the sockets are polled
    // again, and the wait re-queued, k_io_retry later.
    void io_ready(asio::error_code ec) noexcept
    {
        if (ec == asio::error::operation_aborted)
            return; // stopped
        if (!ec && g_fail_hosted_io_watch.load(std::memory_order_relaxed) > 0 &&
            g_fail_hosted_io_watch.fetch_sub(1, std::memory_order_relaxed) > 0)
            ec = std::make_error_code(std::errc::io_error);
        if (!ec) {
            watch_io();
            return;
        }
        if (!m_io_failed.exchange(true, std::memory_order_relaxed))
            log_hosted_io_failure(ec);
        std::lock_guard lk(m_io_lock);
        if (m_stopped.load(std::memory_order_relaxed))
            return;
        m_io_retry.expires_after(k_io_retry);
        m_io_retry.async_wait([self = shared_from_this()](const asio::error_code& e) {
            if (e != asio::error::operation_aborted)
                self->watch_io();
        });
    }
    static constexpr std::chrono::milliseconds k_io_retry{10};

    asio::io_context& m_io;
    std::atomic<bool> m_stopped{false};
    std::atomic<unsigned> m_active{0};
    std::mutex m_timer_lock;
    asio::steady_timer m_timer;
    std::int64_t m_timer_at = INT64_MAX;
    std::uint64_t m_timer_gen = 0;
    std::mutex m_io_lock; // guards m_io_watch and m_io_retry
    asio::posix::stream_descriptor m_io_watch;
    asio::steady_timer m_io_retry;
    std::atomic<bool> m_io_failed{false}; // a failed wait was logged
    asio::executor_work_guard<asio::io_context::executor_type> m_work;
};

} // namespace detail

/// The weft runtime as a guest of an application's asio::io_context
/// ("guest mode"): tasks run on the threads that run the io_context
/// (io_context::run, poll, run_one ...), and weft timers wait on an
/// asio::steady_timer, so weft starts no thread of its own. Channels,
/// select, contexts, timers, go() and the bridges (use_task, async_spawn)
/// behave as with weft::run.
///
/// Life cycle: the constructor starts the runtime (std::logic_error if one
///   is running: there is one per process) and gives the io_context
///   outstanding work, so run() does not return while weft is hosted.
///   stop() ends it: it waits for the tasks running on io_context threads
///   to suspend, destroys every remaining task (their destructors run in
///   stop()), drops the pending timers and releases the work, so run()
///   returns once the application's own work is done. The destructor calls
///   stop(). The io_context must outlive the runtime.
/// Threads: stop() may be called from any thread, io_context threads
///   included, but not from inside a weft task (std::logic_error): a task
///   that wants to end the runtime posts the call to the io_context.
///   block_on on an io_context thread may deadlock (its task needs that
///   thread).
/// Options: `workers` is what max_procs() reports, the number of threads
///   that run the io_context (default 1); `detect_deadlock` is ignored, as
///   Asio can wake tasks at any time.
/// Resumption: a readied task is posted to the io_context; it runs on
///   whichever thread picks it up.
class runtime {
public:
    explicit runtime(asio::io_context& io, runtime_options opts = {})
        : m_host(std::make_shared<detail::asio_host>(io))
    {
        detail::runtime_start_hosted(*m_host, opts);
        m_host->start();
    }
    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;
    ~runtime() { stop(); }

    /// Stops the runtime (see the class comment). Later calls do nothing.
    void stop()
    {
        if (detail::current_task())
            throw std::logic_error("weft::runtime::stop called inside a weft task "
                                   "(post it to the io_context instead)");
        std::lock_guard lk(m_stop_lock);
        if (!m_host->stopped())
            m_host->stop();
    }

    bool stopped() const noexcept { return m_host->stopped(); }
    asio::io_context& context() const noexcept { return m_host->io(); }
    asio::io_context::executor_type get_executor() const noexcept
    {
        return m_host->io().get_executor();
    }

private:
    std::shared_ptr<detail::asio_host> m_host;
    std::mutex m_stop_lock;
};

} // namespace weft
