// Spawning tasks and running the runtime: go, join_handle, run, block_on.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <tuple>
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
struct alignas(16) join_waiter {
    task_header* m_task = nullptr;
    std::atomic<std::uint32_t> m_word{0};
};
static_assert(alignof(join_waiter) >= 16, "root_base::m_join keeps flags in a waiter's low bits");
void wake_join_waiter(join_waiter* w) noexcept;
/// Blocks the calling (non-worker) thread until w.m_word becomes non-zero.
void wait_join_waiter(join_waiter& w) noexcept;

/// A spawned task's own state: the scheduler's header, the join protocol and
/// the task's body, the outermost frame (the task<R> that f(args...)
/// returned, whose promise keeps the result or exception until the end).
///
/// One block holds a root followed by the body's frame, so that go()
/// allocates once: a plain function whose parameters are the arguments' own
/// types needs neither f nor the arguments after the call, and its frame is
/// allocated with the root in front (frame_offer_prefix). Other callables
/// (lambdas, function objects, arguments that convert) must outlive the
/// call: the block holds them too (root_with_args) and is allocated before
/// the call, with room for the body's frame as large as the last one seen
/// for that kind of call (frame_offer_place; the first spawn of a kind, or
/// one whose frame is larger, allocates the body's frame separately).
///
/// Invariants: m_join holds the task's whole shared state in one word, so
/// that finishing and dropping the handle each take one atomic operation
/// at most (none where the other side is known to be gone already: a
/// detached task's end, a finished task's handle):
/// bit 0 (k_done) is set once the body finished or was abandoned, bit 1
/// (k_detached) once the join_handle is gone, and the other bits are the
/// address of the single join_waiter (16-byte aligned), set only while the
/// task runs and the handle lives. Bit 2 (k_kept) is set, with k_done, when
/// the task ended on a worker other than the one whose registry shard holds
/// it, until that worker unlinks it (unlinked()). Whoever sets the second
/// of k_done and k_detached ends the block's contents (the body's frame,
/// the callable and arguments, the context: end_contents) at once; its
/// memory is freed then too, or, while k_kept holds it, by the later of
/// the content's end (bit 3, k_ended) and the unlinking. m_body is the body's promise until the body's frame is
/// destroyed (at shutdown, or with the block), nullptr afterwards. The body's
/// m_continuation is the root's address with bit 0 set, so that its
/// final_suspend calls root_body_done().
struct root_base : task_header {
    // The flags first: they fill task_header's tail padding (Itanium ABI),
    // which keeps a parked task's block in a smaller size class.
    std::atomic<bool> m_joined{false};
    bool m_abandoned = false;
    /// Another frame than the body took the room offered to it and may
    /// outlive the task: the block is never freed (frame_alloc.cpp).
    bool m_keep_block = false;
    std::atomic<std::uintptr_t> m_join{0};
    task_promise_base* m_body = nullptr;
    /// The block's size for frame_free.
    std::uint32_t m_block_size = 0;

    static constexpr std::uintptr_t k_running = 0;
    static constexpr std::uintptr_t k_done = 1;
    static constexpr std::uintptr_t k_detached = 2;
    static constexpr std::uintptr_t k_kept = 4;
    static constexpr std::uintptr_t k_ended = 8;
    static constexpr std::uintptr_t k_flags = 15; // the low bits, never a waiter's

    bool done() const noexcept { return (m_join.load(std::memory_order_acquire) & k_done) != 0; }

    /// The body has finished: leave the registry, wake the joiner, destroy
    /// the block if the handle is gone.
    void finish() noexcept;
    /// Runtime shutdown, after the body was destroyed: wake a waiting thread
    /// and destroy the block if the handle is gone.
    static void abandon(task_header* t) noexcept;
    /// The join_handle is dropped: destroys the block if the body is done.
    void release_handle() noexcept;
    /// The registry let go of a task that ended elsewhere (k_kept).
    void unlinked() noexcept;
    /// Both the body and the handle are gone: destroys the block (and
    /// reports an exception nobody can observe any more).
    void destroy() noexcept;
    /// destroy() in two steps, for a block that k_kept holds.
    void end_contents() noexcept;
    void free_block() noexcept;
    /// What end_contents does before the block's own operation (m_ops):
    /// report an exception nobody will see, drop the context and the hook.
    void release_contents() noexcept;
    /// Marks the single join; throws std::logic_error on a second one.
    void claim_join();
    /// The task ended with the canceled_error of its own cancelled context:
    /// how a cancelled task stops, not a failure, even if nobody joins it.
    bool ended_by_cancellation() const noexcept;
    /// A cancelled join gives its claim back.
    void unclaim_join() noexcept { m_joined.store(false, std::memory_order_relaxed); }
    /// Throws std::logic_error if the task was destroyed at shutdown.
    void check_not_abandoned() const;
};

/// The root of a task whose callable and arguments live as long as it does.
template <class F, class... A>
struct root_with_args final : root_base {
    template <class G, class... B>
    explicit root_with_args(G&& g, B&&... b) : m_f(std::forward<G>(g)), m_args(std::forward<B>(b)...)
    {
    }
    F m_f;
    std::tuple<A...> m_args;
};

/// The joined task's result (or exception).
template <class R>
R root_take(root_base* r)
{
    r->check_not_abandoned();
    return static_cast<task_promise<R>*>(r->m_body)->take();
}

template <class Block>
inline constexpr std::size_t root_prefix_v = (sizeof(Block) + 15) & ~std::size_t{15};

/// Destroys the body's frame, which may lie inside the block.
template <class R, class Block>
void destroy_body(Block* b) noexcept
{
    auto p = std::exchange(b->m_body, nullptr);
    if (!p)
        return;
    auto h = std::coroutine_handle<task_promise<R>>::from_promise(*static_cast<task_promise<R>*>(p));
    if (h.address() == reinterpret_cast<char*>(b) + root_prefix_v<Block>)
        frame_destroy_inside(h);
    else
        h.destroy();
}

/// Destroys what a block holds besides its root_base: the callable and the
/// arguments. The block is not destroyed as a whole afterwards (only its
/// memory is freed: root_base itself has nothing to destroy).
template <class Block>
void end_members(Block* b) noexcept
{
    static_assert(std::is_trivially_destructible_v<root_base>);
    if constexpr (!std::is_same_v<Block, root_base>) {
        std::destroy_at(&b->m_f);
        std::destroy_at(&b->m_args);
    }
}

/// Frees the memory of a block whose contents are gone, unless another
/// frame keeps it (m_keep_block).
inline void free_block_memory(root_base* b) noexcept
{
    if (!b->m_keep_block)
        frame_free(b, b->m_block_size);
}

/// Ends a root whose body is gone (or never was).
template <class Block>
void discard_block(Block* b) noexcept
{
    end_members(b);
    free_block_memory(b);
}

template <class R, class Block>
void* root_ops(task_header* t, task_header::op o) noexcept
{
    auto b = static_cast<Block*>(static_cast<root_base*>(t));
    switch (o) {
    case task_header::op::abandon:
        destroy_body<R>(b);
        root_base::abandon(t);
        break;
    case task_header::op::end:
        destroy_body<R>(b);
        end_members(b);
        break;
    case task_header::op::free:
        free_block_memory(b);
        break;
    case task_header::op::destroy:
        destroy_body<R>(b);
        discard_block(b);
        break;
    case task_header::op::body:
        return b->m_body;
    }
    return nullptr;
}

/// A plain function whose parameters are the decayed argument types, taken
/// by value: the task needs neither f nor the arguments after the call.
template <class Fn, class... A>
struct is_direct_call : std::false_type {};
template <class Ret, class... P, class... A>
    requires(sizeof...(P) == sizeof...(A))
struct is_direct_call<Ret (*)(P...), A...>
    : std::bool_constant<(... && (!std::is_reference_v<P> && std::is_same_v<P, std::decay_t<A>>))> {
};
template <class Ret, class... P, class... A>
    requires(sizeof...(P) == sizeof...(A))
struct is_direct_call<Ret (*)(P...) noexcept, A...> : is_direct_call<Ret (*)(P...), A...> {};

/// The body frame size last seen for this kind of call (root_with_args).
template <class F, class... A>
inline std::atomic<std::uint32_t> g_body_size{0};

template <class F, class... A>
using spawn_result_t = std::invoke_result_t<std::decay_t<F>&, std::decay_t<A>&&...>;

template <class F, class... A>
concept task_function = is_task_v<spawn_result_t<F, A...>>;

/// Links a root and its body, which must not be empty.
template <class R, class Block>
Block* bind_root(Block* b, std::coroutine_handle<task_promise<R>> h) noexcept
{
    b->m_ops = &root_ops<R, Block>;
    b->m_body = &h.promise();
    b->m_resume = h;
    h.promise().m_continuation = std::coroutine_handle<>::from_address(
        reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(static_cast<root_base*>(b)) | 1));
    return b;
}

[[noreturn]] void throw_empty_body();

/// Calls f(args...) and creates the root of the task it returns, without
/// scheduling it. Throws what the call throws, std::bad_alloc, or
/// std::logic_error if the call returns an empty task.
template <class F, class... A>
root_base* make_root(F&& f, A&&... args)
{
    using R = typename spawn_result_t<F, A...>::value_type;
    if constexpr (is_direct_call<std::decay_t<F>, A...>::value) {
        constexpr std::size_t prefix = root_prefix_v<root_base>;
        // A frame that took the offer and was freed during the call leaves
        // its block to us.
        const auto end_offer = [] {
            const auto o = frame_offer_end();
            if (o.taken && o.freed)
                frame_free(static_cast<char*>(o.taken) - prefix, prefix + o.taken_size);
            return o;
        };
        frame_offer_prefix(prefix);
        task<R> body;
        try {
            body = std::invoke(std::forward<F>(f), std::forward<A>(args)...);
        } catch (...) {
            end_offer();
            throw;
        }
        const auto o = end_offer();
        auto h = task_access::release(body);
        if (o.taken && o.taken == h.address()) {
            auto b = ::new (static_cast<char*>(o.taken) - prefix) root_base;
            b->m_block_size = static_cast<std::uint32_t>(prefix + o.taken_size);
            return bind_root<R>(b, h);
        }
        // The frame did not fit (or another frame took the place: if it is
        // still alive, the place is its own and the prefix stays unused).
        if (!h)
            throw_empty_body();
        void* mem;
        try {
            mem = frame_alloc(prefix);
        } catch (...) {
            h.destroy();
            throw;
        }
        auto b = ::new (mem) root_base;
        b->m_block_size = static_cast<std::uint32_t>(prefix);
        return bind_root<R>(b, h);
    } else {
        using block = root_with_args<std::decay_t<F>, std::decay_t<A>...>;
        constexpr std::size_t prefix = root_prefix_v<block>;
        auto& seen = g_body_size<std::decay_t<F>, std::decay_t<A>...>;
        const std::size_t cap = (seen.load(std::memory_order_relaxed) + 15) & ~std::size_t{15};
        const std::size_t size = prefix + cap;
        void* mem = frame_alloc(size);
        block* b;
        try {
            b = ::new (mem) block(std::forward<F>(f), std::forward<A>(args)...);
        } catch (...) {
            frame_free(mem, size);
            throw;
        }
        b->m_block_size = static_cast<std::uint32_t>(size);
        frame_offer_place(static_cast<char*>(mem) + prefix, cap);
        std::coroutine_handle<task_promise<R>> h;
        frame_offer_result o;
        try {
            auto body = std::apply(
                [b](auto&... a) { return std::invoke(b->m_f, std::move(a)...); }, b->m_args);
            o = frame_offer_end();
            h = task_access::release(body);
        } catch (...) {
            o = frame_offer_end();
            b->m_keep_block = o.taken && !o.freed;
            discard_block(b);
            throw;
        }
        if (o.taken && o.taken != h.address() && !o.freed)
            b->m_keep_block = true;
        if (h.address() != o.taken && o.first_size != cap && o.first_size <= frame_pool_max)
            seen.store(static_cast<std::uint32_t>(o.first_size), std::memory_order_relaxed);
        if (!h) {
            discard_block(b);
            throw_empty_body();
        }
        return bind_root<R>(b, h);
    }
}

template <class R>
join_handle<R> adopt_root(root_base* p) noexcept;

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
        explicit join_operation(detail::root_base* p) noexcept : m_p(p) {}
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
            return detail::root_take<R>(m_p);
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

        detail::root_base* m_p;
        detail::join_waiter m_waiter;
        detail::op_hook<join_operation> m_hook;
    };
    join_operation operator co_await() & noexcept { return join_operation{m_p}; }
    join_operation operator co_await() && noexcept { return join_operation{m_p}; }

private:
    template <class U>
    friend join_handle<U> detail::adopt_root(detail::root_base*) noexcept;
    template <class F, class... A>
    friend auto run(runtime_options, F&&, A&&...);
    template <class Aw>
    friend auto block_on(Aw&&);

    explicit join_handle(detail::root_base* p) noexcept : m_p(p) {}
    void reset() noexcept
    {
        if (auto p = std::exchange(m_p, nullptr))
            p->release_handle();
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
        return detail::root_take<R>(m_p);
    }

    detail::root_base* m_p = nullptr;
};

namespace detail {
template <class R>
join_handle<R> adopt_root(root_base* p) noexcept
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
    using R = typename spawn_result_t<F, A...>::value_type;
    auto p = make_root(std::forward<F>(f), std::forward<A>(args)...);
    auto h = adopt_root<R>(p);
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
/// f(args...) must return task<R>. go calls f on the calling thread (the
/// task's body starts later, on a worker), so the arguments are evaluated and
/// the parameters initialised before go returns, as in Go. A plain function
/// whose parameters are the arguments' types by value receives the arguments
/// directly; otherwise f and args are decay-copied into the new task, so a
/// lambda's captures and parameters bound to the arguments (references,
/// views) live as long as the task. Prefer by-value coroutine parameters.
/// Callable from tasks and from other threads while a runtime runs. The new
/// task runs in the caller's context (current_context(); background outside
/// tasks). Returns a join_handle; dropping it detaches the task.
///
/// A task costs one allocation from the frame pool: its root and its first
/// frame share a block (for lambdas and other callables, from the second
/// spawn of a kind on). Throws what copying the arguments or f throws,
/// std::bad_alloc, and std::logic_error when f returns an empty task or no
/// runtime is running; the runtime is unaffected.
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
        h = detail::adopt_root<R>(p);
        detail::spawn(p);
        h.m_p->claim_join();
        detail::join_waiter w;
        auto expected = detail::root_base::k_running;
        if (h.m_p->m_join.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(&w),
                                                  std::memory_order_release,
                                                  std::memory_order_acquire))
            detail::wait_join_waiter(w);
    }
    return detail::root_take<R>(h.m_p);
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
    auto h = detail::adopt_root<R>(p);
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
