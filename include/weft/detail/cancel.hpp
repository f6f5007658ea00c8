// Context nodes and the cancellation of blocking operations.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <system_error>

#include <weft/detail/chan_waiter.hpp>
#include <weft/detail/config.hpp>
#include <weft/detail/biased_lock.hpp>
#include <weft/detail/spinlock.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/detail/timer_node.hpp>

namespace weft {

/// Why a context is done. [context.Canceled, context.DeadlineExceeded]
enum class errc { canceled = 1, deadline_exceeded };

const std::error_category& context_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), context_category()};
}

/// Thrown by a blocking operation of a task whose context is done; code()
/// is errc::canceled or errc::deadline_exceeded.
class canceled_error : public std::system_error {
public:
    explicit canceled_error(std::error_code ec) : std::system_error(ec) {}
};

} // namespace weft

template <>
struct std::is_error_code_enum<weft::errc> : std::true_type {};

namespace weft::detail {

/// A registration with a cancellable context node: an intrusive list node
/// that lives in the registrant. m_fn runs once, on the thread that cancels,
/// without the node's lock held.
struct cancel_reg {
    cancel_reg* m_prev = nullptr;
    cancel_reg* m_next = nullptr;
    void (*m_fn)(cancel_reg*) noexcept = nullptr;
    bool m_linked = false;
};

/// One node of a context tree. Cancel nodes (with_cancel, with_timeout,
/// with_deadline) can be done; value nodes carry one value and delegate
/// everything else to m_scope, the nearest cancel node above them (nullptr
/// when no ancestor can ever be cancelled: such chains cost no registration).
///
/// Invariants:
///   m_refs counts handles (context objects, tasks, children via m_parent,
///   an armed deadline timer, select cases). m_parent, m_scope, m_key,
///   m_deadline never change after construction.
///   Guarded by m_lock (cancel nodes): m_regs (registrations: child nodes and
///   blocked operations), m_running (the registration whose m_fn the
///   canceller is running), m_done_waiters (select cases and done()
///   awaiters on this node).
///   m_err goes from 0 to an errc value once, under m_lock; it is read
///   without the lock.
///
/// Cancel protocol: under m_lock set m_err and take the done waiters; then
/// pop registrations one at a time, marking each as m_running while its m_fn
/// runs unlocked. cancel_unregister of a registration that is running waits
/// for its m_fn to return. m_fn may take other locks (channels, mutexes);
/// nothing takes a context lock while holding them except select, which
/// takes every case lock (context nodes included) in address order and
/// never waits for a canceller.
class context_node {
public:
    virtual ~context_node();

    void acquire() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept
    {
        if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
            destroy();
    }

    bool cancelled() const noexcept { return m_err.load(std::memory_order_acquire) != 0; }
    std::error_code err() const noexcept
    {
        auto e = m_err.load(std::memory_order_acquire);
        return e ? make_error_code(static_cast<errc>(e)) : std::error_code{};
    }

    /// Cancels this node and its subtree with e. Idempotent.
    void cancel(errc e, bool from_parent = false) noexcept;

    chan_lock& lock() noexcept { return m_lock; }
    waiter_queue& done_waiters() noexcept { return m_done_waiters; }

    /// Registrations linked now (children and blocked operations); for
    /// diagnostics and tests: a walk under m_lock.
    std::size_t registrations() noexcept
    {
        spin_guard g(m_lock);
        std::size_t n = 0;
        for (cancel_reg* r = m_regs; r; r = r->m_next)
            ++n;
        return n;
    }

    context_node* const m_parent;    // holds a reference
    context_node* const m_scope;     // this for cancel nodes
    const void* const m_key;         // value nodes: the context_key's address
    const std::int64_t m_deadline;   // effective deadline (ns), INT64_MAX: none

protected:
    context_node(context_node* parent, context_node* scope, const void* key,
                 std::int64_t deadline) noexcept;

private:
    friend bool cancel_register(context_node*, cancel_reg*) noexcept;
    friend void cancel_unregister(context_node*, cancel_reg*) noexcept;
    friend class cancel_node;
    void destroy() noexcept;

    std::atomic<std::uint32_t> m_refs{1};
    std::atomic<std::uint32_t> m_err{0};
    chan_lock m_lock; // a select over ctx.done() takes it with channel locks
    cancel_reg* m_regs = nullptr;
    cancel_reg* m_running = nullptr;
    waiter_queue m_done_waiters;
};

/// Links r into scope's registrations. False (r not linked, its m_fn never
/// called) when scope is already cancelled.
bool cancel_register(context_node* scope, cancel_reg* r) noexcept;

/// Unlinks r. If the canceller is running r's m_fn right now, waits until it
/// returns, so the caller may free r afterwards. A no-op once r was handled.
/// Never call it for r from inside r's own m_fn (directly or through code
/// that m_fn runs inline): it would wait for itself. A child node cancelled
/// through its parent's walk is detached by that walk for this reason.
void cancel_unregister(context_node* scope, cancel_reg* r) noexcept;

/// The cancel node governing task t, or nullptr if t cannot be cancelled.
inline context_node* task_scope(task_header* t) noexcept
{
    return t && t->m_ctx ? t->m_ctx->m_scope : nullptr;
}

// ---------------------------------------------------------------------------
// Cancellable waits.
//
// A blocking operation of a task with a cancellable context owns a wait_hook
// (in its awaiter) registered with the task's scope while it waits. Both the
// operation's normal waker and the canceller complete the wait through
// wake_waiter(t), and the hook's phase word decides who resumes the task:
//   k_arming:    the suspending thread is still inside await_suspend;
//   k_suspended: await_suspend has returned true;
//   k_woken:     someone completed the wait before await_suspend finished
//                (then await_suspend returns false and the task goes on
//                inline; the waker does not ready it).
// m_withdraw (called by the canceller, with no lock held) removes the waiter
// from whatever queue holds it, under that queue's lock, and when it
// succeeds sets m_canceled and calls wake_waiter. A waiter that a normal
// waker took first completes normally.
//
// Ordering: an operation registers before it takes its queue lock, and
// checks the scope under that lock before it queues, so a canceller either
// finds the waiter queued or the operation sees the cancellation.

/// The registration of a task's current cancellable wait. One per task,
/// made on its first cancellable wait and freed with the task
/// (task_header::m_hook), so operations carry only an op_hook pointer.
struct wait_hook : cancel_reg {
    static constexpr std::uint32_t k_arming = 0;
    static constexpr std::uint32_t k_suspended = 1;
    static constexpr std::uint32_t k_woken = 2;

    task_header* m_task = nullptr;
    context_node* m_scope = nullptr; // non-null while a wait is registered
    void (*m_withdraw)(wait_hook*) noexcept = nullptr;
    void* m_op = nullptr;            // the awaiter of the current wait
    std::atomic<std::uint32_t> m_phase{k_arming};
    bool m_canceled = false;
};

/// An operation's handle on its task's wait_hook: null when the operation
/// is not registered (the task cannot be cancelled, or the wait is over),
/// a sentinel when the context was done before it could register.
template <class Op>
class op_hook {
public:
    op_hook() noexcept = default;
    op_hook(const op_hook&) = delete;
    op_hook& operator=(const op_hook&) = delete;

    /// The scope while registered, else nullptr.
    context_node* scope() const noexcept { return registered() ? m_h->m_scope : nullptr; }
    bool registered() const noexcept { return m_h && m_h != early(); }
    wait_hook* get() const noexcept { return m_h; }
    void set_canceled() noexcept { m_h->m_canceled = true; }

    static wait_hook* early() noexcept { return reinterpret_cast<wait_hook*>(alignof(wait_hook)); }
    wait_hook* m_h = nullptr;
};

/// Readies task t, whose wait was completed by the caller (a waker that
/// dequeued it, or a canceller that withdrew it).
inline void wake_waiter(task_header* t) noexcept
{
    wait_hook* h = t->m_hook;
    if (h && h->m_scope) {
        if (h->m_phase.exchange(wait_hook::k_woken, std::memory_order_acq_rel) !=
            wait_hook::k_suspended)
            return; // still in await_suspend: it will not suspend
    }
    ready(t);
}

/// Tests only: makes wake_batch's growth fail, so that it chains.
inline std::atomic<bool> g_fail_wake_batch_growth{false};

/// The tasks of waiters that a broadcast (a channel's close, a context's
/// cancel) takes out of their queue under its lock, readied after the lock
/// is dropped. The waiters are all claimed in that one pass, as Go's
/// closechan does; only their task pointers are kept, in an array, so that
/// readying walks memory in order instead of walking the waiters' nodes a
/// second time (after a broadcast to thousands of tasks those nodes, one
/// per coroutine frame, are out of the cache again by then).
/// Growth allocates; if it cannot, the rest are chained through
/// chan_waiter::m_next as before (nothing is lost).
class wake_batch {
public:
    wake_batch() = default;
    wake_batch(const wake_batch&) = delete;
    wake_batch& operator=(const wake_batch&) = delete;
    ~wake_batch() { std::free(m_heap); }

    /// With the queue's lock held: w was dequeued (claimed) for waking.
    void add(chan_waiter* w) noexcept
    {
        // Once chaining, keep chaining: the order of waking stays the
        // order of claiming.
        if (m_chain_head || (m_n == m_cap && !grow())) {
            w->m_next = nullptr;
            *m_chain_tail = w;
            m_chain_tail = &w->m_next;
            return;
        }
        task_header* t = w->m_task;
        __builtin_prefetch(t, 1);
        (m_heap ? m_heap : m_inline)[m_n++] = t;
    }

    /// After the lock is dropped: readies every task added, in order. Once
    /// per batch.
    void wake() noexcept
    {
        task_header** tasks = m_heap ? m_heap : m_inline;
        constexpr std::size_t ahead = 32;
        for (std::size_t i = 0; i < m_n; ++i) {
            if (i + ahead < m_n)
                __builtin_prefetch(tasks[i + ahead], 1);
            wake_waiter(tasks[i]);
        }
        for (chan_waiter* w = m_chain_head; w;) {
            // Read everything first: the woken task may free w at once.
            chan_waiter* next = w->m_next;
            wake_waiter(w->m_task);
            w = next;
        }
    }

private:
    static constexpr std::size_t k_inline = 32;

    bool grow() noexcept
    {
        std::size_t cap = m_cap * 4;
        if (g_fail_wake_batch_growth.load(std::memory_order_relaxed))
            return false;
        auto p = static_cast<task_header**>(std::malloc(cap * sizeof(task_header*)));
        if (!p)
            return false;
        task_header** from = m_heap ? m_heap : m_inline;
        for (std::size_t i = 0; i < m_n; ++i)
            p[i] = from[i];
        std::free(m_heap);
        m_heap = p;
        m_cap = cap;
        return true;
    }

    task_header* m_inline[k_inline];
    task_header** m_heap = nullptr;
    std::size_t m_n = 0;
    std::size_t m_cap = k_inline;
    chan_waiter* m_chain_head = nullptr;
    chan_waiter** m_chain_tail = &m_chain_head;
};

/// The canceller's side of a suspended select: claims it like a case would,
/// with `winner` (an index no case has) as the outcome, and wakes the task.
/// Does nothing if a case won first.
inline void cancel_select(select_state& sel, std::uint32_t winner, wait_hook* h) noexcept
{
    if (!sel.try_claim(winner))
        return;
    h->m_canceled = true;
    wake_waiter(h->m_task);
}

void wait_hook_fired(cancel_reg* r) noexcept;
wait_hook* new_wait_hook(task_header* t);

/// Called in await_suspend before the queue lock. False when the task's
/// context is already done: then the operation must not wait (hook_end
/// reports the cancellation). withdraw is the operation's withdraw function;
/// it finds the operation in wait_hook::m_op.
template <class Op>
bool hook_begin(op_hook<Op>& oh, task_header* t, Op* op, void (*withdraw)(wait_hook*) noexcept)
{
    context_node* scope = task_scope(t);
    if (WEFT_LIKELY(!scope))
        return true;
    if (scope->cancelled()) {
        oh.m_h = op_hook<Op>::early();
        return false;
    }
    wait_hook* h = t->m_hook ? t->m_hook : new_wait_hook(t);
    h->m_op = op;
    h->m_withdraw = withdraw;
    h->m_fn = &wait_hook_fired;
    h->m_canceled = false;
    h->m_phase.store(wait_hook::k_arming, std::memory_order_relaxed);
    // Wakers look at the hook from now on. Set before registering: once
    // registered, a canceller on another thread may wake the task at once,
    // and must see the scope (and so the arming phase) to let await_suspend
    // finish first; the registration's lock publishes it.
    h->m_scope = scope;
    if (!cancel_register(scope, h)) {
        h->m_scope = nullptr; // never registered, so no canceller saw it
        oh.m_h = op_hook<Op>::early();
        return false;
    }
    oh.m_h = h;
    return true;
}

/// Under the queue lock, just before queueing: true if the wait must not
/// start because the context was cancelled meanwhile.
template <class Op>
bool hook_cancelled(op_hook<Op>& oh) noexcept
{
    if (oh.registered() && oh.m_h->m_scope->cancelled()) {
        oh.m_h->m_canceled = true;
        return true;
    }
    return false;
}

/// The last step of await_suspend once the waiter is queued and its locks
/// are released: the value await_suspend returns. Only for a registered
/// hook: an unregistered wait may already be resumed elsewhere, so its
/// await_suspend must return true without touching the frame again.
template <class Op>
bool hook_suspend(op_hook<Op>& oh) noexcept
{
    return oh.m_h->m_phase.exchange(wait_hook::k_suspended, std::memory_order_acq_rel) !=
           wait_hook::k_woken;
}

/// After the wait (in await_resume, or when await_suspend does not
/// suspend, or when the frame goes): leaves the scope. True if the wait was
/// cancelled.
template <class Op>
bool hook_end(op_hook<Op>& oh) noexcept
{
    wait_hook* h = oh.m_h;
    if (WEFT_LIKELY(!h))
        return false;
    oh.m_h = nullptr;
    if (h == op_hook<Op>::early())
        return true;
    cancel_unregister(h->m_scope, h);
    h->m_scope = nullptr;
    return h->m_canceled;
}

/// Throws canceled_error for the running task's context.
[[noreturn]] void throw_canceled();

} // namespace weft::detail
