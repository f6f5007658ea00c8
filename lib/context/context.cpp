// Context nodes: cancellation through the tree, deadlines, registrations.
//
// Invariants (beyond those in detail/cancel.hpp):
//   A cancel node with a parent scope is registered there through
//   m_in_parent from its creation until it is cancelled or destroyed.
//   m_timer is queued, or its callback is running, only while the node
//   holds the timer's reference (m_refs counts it). So cancel() only
//   unqueues it; a callback already popped drops that reference itself.

#include <weft/context.hpp>

#include <string>

#include <weft/runtime.hpp>

namespace weft {

namespace {

class context_error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "weft.context"; }
    std::string message(int e) const override
    {
        switch (static_cast<errc>(e)) {
        case errc::canceled: return "context canceled";
        case errc::deadline_exceeded: return "context deadline exceeded";
        }
        return "unknown context error";
    }
};

} // namespace

const std::error_category& context_category() noexcept
{
    static const context_error_category category;
    return category;
}

} // namespace weft

namespace weft::detail {

class cancel_node final : public context_node {
public:
    cancel_node(context_node* parent, std::int64_t deadline) noexcept
        : context_node(parent, this, nullptr, deadline)
    {
        m_in_parent.m_fn = &parent_cancelled;
        m_in_parent.m_owner = this;
        m_timer.m_callback = &deadline_passed;
        m_timer.m_owner = this;
    }

    /// Links the node under its parent's scope; cancels it at once if that
    /// scope is already done.
    void attach() noexcept
    {
        context_node* ps = m_parent ? m_parent->m_scope : nullptr;
        if (ps && !cancel_register(ps, &m_in_parent))
            cancel(static_cast<errc>(ps->err().value()), true);
    }

    void arm(std::int64_t when)
    {
        acquire(); // the timer's reference
        try {
            timer_arm(&m_timer, when);
        } catch (...) {
            m_refs.fetch_sub(1, std::memory_order_relaxed);
            throw;
        }
    }

    struct deadline_timer : timer_node {
        cancel_node* m_owner = nullptr;
    };

    struct parent_link : cancel_reg {
        cancel_node* m_owner = nullptr;
    };

    parent_link m_in_parent;
    deadline_timer m_timer;
    bool m_detached = false; // cancelled through the parent, which unlinked m_in_parent

private:
    static void parent_cancelled(cancel_reg* r) noexcept
    {
        auto self = static_cast<parent_link*>(r)->m_owner;
        auto e = self->m_parent->m_scope->err();
        self->cancel(static_cast<errc>(e.value()), true);
    }
    static void deadline_passed(timer_node* n, timer_node::event e) noexcept
    {
        auto self = static_cast<deadline_timer*>(n)->m_owner;
        timer_fire_done(n);
        if (e == timer_node::event::fire)
            self->cancel(errc::deadline_exceeded);
        self->release(); // the timer's reference
    }
};

context_node::context_node(context_node* parent, context_node* scope, const void* key,
                           std::int64_t deadline) noexcept
    : m_parent(parent), m_scope(scope), m_key(key), m_deadline(deadline)
{
}

context_node::~context_node() = default;

void context_node::destroy() noexcept
{
    context_node* parent = m_parent;
    if (m_scope == this) {
        auto self = static_cast<cancel_node*>(this);
        // Not when a parent's walk cancelled us: it may be running our
        // registration's function right now (in this very call stack).
        if (parent && parent->m_scope && !self->m_detached)
            cancel_unregister(parent->m_scope, &self->m_in_parent);
    }
    delete this;
    if (parent)
        parent->release();
}

void context_node::cancel(errc e, bool from_parent) noexcept
{
    auto self = static_cast<cancel_node*>(this); // only scopes are cancelled
    // Stay alive through the walk: dropping the timer's reference below may
    // leave none. A node whose count already reached zero is being
    // destroyed: nothing waits on it and its destructor leaves the parent.
    for (auto n = m_refs.load(std::memory_order_relaxed);;) {
        if (n == 0)
            return;
        if (m_refs.compare_exchange_weak(n, n + 1, std::memory_order_acquire,
                                         std::memory_order_relaxed))
            break;
    }
    bool already = false;
    wake_batch woken;
    {
        spin_guard g(m_lock);
        already = m_err.load(std::memory_order_relaxed) != 0;
        if (!already)
            m_err.store(static_cast<std::uint32_t>(e), std::memory_order_release);
        // Select cases and done() awaiters: claim each (dequeue settles a
        // select). Nobody queues on a done node afterwards, so a node that
        // was already done has none.
        while (chan_waiter* w = m_done_waiters.dequeue()) {
            m_done_waiters.prefetch_front();
            w->m_ok = true;
            woken.add(w);
        }
    }
    if (already) {
        release();
        return;
    }
    woken.wake();
    // The deadline no longer matters: release its timer now (the reference
    // taken above keeps the count positive). Unqueue, never wait: a fire
    // callback that is already on its way holds its own reference, and
    // waiting for it could hang when this cancel runs inside a callback of
    // the same batch of due timers, which has popped ours but not run it.
    if (timer_unqueue(&self->m_timer))
        m_refs.fetch_sub(1, std::memory_order_relaxed);

    m_lock.lock();
    while (cancel_reg* r = m_regs) {
        m_regs = r->m_next;
        if (m_regs)
            m_regs->m_prev = nullptr;
        r->m_prev = r->m_next = nullptr;
        r->m_linked = false;
        m_running = r;
        m_lock.unlock();
        r->m_fn(r);
        m_lock.lock();
        m_running = nullptr;
    }
    m_lock.unlock();

    if (from_parent)
        self->m_detached = true; // the parent's walk unlinked us already
    else if (m_parent && m_parent->m_scope)
        cancel_unregister(m_parent->m_scope, &self->m_in_parent);
    release();
}

bool cancel_register(context_node* scope, cancel_reg* r) noexcept
{
    spin_guard g(scope->m_lock);
    if (scope->m_err.load(std::memory_order_relaxed) != 0)
        return false;
    r->m_prev = nullptr;
    r->m_next = scope->m_regs;
    if (scope->m_regs)
        scope->m_regs->m_prev = r;
    scope->m_regs = r;
    r->m_linked = true;
    return true;
}

void cancel_unregister(context_node* scope, cancel_reg* r) noexcept
{
    for (unsigned spins = 0;; ++spins) {
        {
            spin_guard g(scope->m_lock);
            if (r->m_linked) {
                if (r->m_prev)
                    r->m_prev->m_next = r->m_next;
                else
                    scope->m_regs = r->m_next;
                if (r->m_next)
                    r->m_next->m_prev = r->m_prev;
                r->m_prev = r->m_next = nullptr;
                r->m_linked = false;
                return;
            }
            if (scope->m_running != r)
                return;
        }
        // The canceller is running r's function: wait for it.
        if (spins < 64)
            cpu_relax();
        else
            os_yield();
    }
}

wait_hook* new_wait_hook(task_header* t)
{
    auto h = new wait_hook;
    h->m_task = t;
    t->m_hook = h;
    return h;
}

void wait_hook_fired(cancel_reg* r) noexcept
{
    auto h = static_cast<wait_hook*>(r);
    h->m_withdraw(h);
}

void throw_canceled()
{
    auto scope = task_scope(current_task());
    std::error_code ec = scope && scope->cancelled() ? scope->err() : make_error_code(errc::canceled);
    throw canceled_error(ec);
}

} // namespace weft::detail

namespace weft {

namespace {

detail::cancel_node* new_child(const context& parent, std::int64_t deadline)
{
    auto p = parent.node();
    if (p)
        p->acquire();
    return new detail::cancel_node(p, deadline);
}

} // namespace

std::pair<context, cancel_func> with_cancel(const context& parent)
{
    auto p = parent.node();
    auto n = new_child(parent, p ? p->m_deadline : INT64_MAX);
    context c(n);
    n->attach();
    return {c, cancel_func(c)};
}

std::pair<context, cancel_func> with_deadline(const context& parent, clock::time_point deadline)
{
    auto when = detail::to_ns(deadline);
    auto p = parent.node();
    if (p && p->m_deadline <= when)
        return with_cancel(parent); // the parent's deadline comes first
    auto n = new_child(parent, when);
    context c(n);
    n->attach();
    if (when <= detail::now_ns())
        n->cancel(errc::deadline_exceeded);
    else if (!n->cancelled())
        n->arm(when);
    return {c, cancel_func(c)};
}

std::pair<context, cancel_func> with_timeout(const context& parent, clock::duration timeout)
{
    return with_deadline(parent, detail::from_ns(detail::deadline_after(detail::now_ns(), timeout)));
}

context current_context() noexcept
{
    auto t = detail::current_task();
    if (!t || !t->m_ctx)
        return {};
    t->m_ctx->acquire();
    return context(t->m_ctx);
}

} // namespace weft
