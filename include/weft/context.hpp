// Contexts: cancellation, deadlines and values that flow through task trees.
// [context]
#pragma once

#include <coroutine>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <weft/detail/cancel.hpp>
#include <weft/detail/chan_waiter.hpp>
#include <weft/detail/config.hpp>
#include <weft/detail/timer_node.hpp>

namespace weft {

/// A typed key for context values; its identity is its address.
/// [a context key type]
template <class T>
class context_key {
public:
    context_key() noexcept = default;
    context_key(const context_key&) = delete;
    context_key& operator=(const context_key&) = delete;
};

namespace detail {

template <class T>
class value_node final : public context_node {
public:
    value_node(context_node* parent, const void* key, T v)
        : context_node(parent, parent ? parent->m_scope : nullptr, key,
                       parent ? parent->m_deadline : INT64_MAX),
          m_value(std::move(v))
    {
    }
    T m_value;
};

/// The select case of ctx.done(): ready once the context is done; a context
/// that can never be cancelled is never ready (like a nil channel).
class done_case {
public:
    using result_type = std::monostate;
    static constexpr bool is_default = false;
    static constexpr bool is_done = true;

    explicit done_case(context_node* scope) noexcept : m_scope(scope) {}
    chan_lock* lock() const noexcept { return m_scope ? &m_scope->lock() : nullptr; }
    bool poll(task_header*&) const noexcept { return m_scope->cancelled(); }
    void enqueue(chan_waiter& w) noexcept { m_scope->done_waiters().push(&w); }
    bool unlink(chan_waiter& w) noexcept
    {
        if (w.m_linked)
            m_scope->done_waiters().remove(&w);
        return false; // the select holds the context: never the last owner
    }
    void reap() noexcept {}
    result_type result(bool, chan_waiter&) noexcept { return {}; }
    context_node* scope() const noexcept { return m_scope; }

private:
    context_node* m_scope;
};

} // namespace detail

/// co_await ctx.done(): returns once the context is done; never throws, even
/// when the awaiting task's own context is cancelled. For a context that can
/// never be done (background) it waits forever. Also a select case.
/// [<-ctx.Done()]
///
/// The context must outlive the operation (it does when the operation is
/// awaited in the expression that made it).
/// Resumption: on a worker, after cancel() (never inline inside it).
class [[nodiscard]] done_operation {
public:
    explicit done_operation(detail::context_node* scope) noexcept : m_scope(scope) {}
    done_operation(done_operation&& o) noexcept : m_scope(o.m_scope) {}
    done_operation& operator=(const done_operation&) = delete;
    ~done_operation()
    {
        if (m_suspended && m_scope) {
            // Destroyed while waiting (runtime shutdown): leave the queue.
            detail::spin_guard g(m_scope->lock());
            if (m_w.m_linked)
                m_scope->done_waiters().remove(&m_w);
        }
    }

    bool await_ready() const noexcept { return m_scope && m_scope->cancelled(); }
    WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
    {
        detail::task_header* t = detail::require_task("context::done");
        t->m_resume = h;
        if (!m_scope)
            return true; // never done: parked until the runtime ends
        detail::spin_guard g(m_scope->lock());
        if (m_scope->cancelled())
            return false;
        m_w.m_task = t;
        m_suspended = true;
        m_scope->done_waiters().push(&m_w);
        return true;
    }
    void await_resume() noexcept { m_suspended = false; }

    detail::done_case select_case() const noexcept { return detail::done_case(m_scope); }

private:
    detail::context_node* m_scope;
    detail::chan_waiter m_w;
    bool m_suspended = false;
};

/// A context: a cheap handle to a node of a tree of contexts. Cancelling a
/// node cancels its subtree, never its ancestors. A default-constructed
/// context is background: never done, no deadline, no values.
/// [context.Context]
///
/// Thread safety: every member may be called concurrently; handles may be
///   copied across threads.
/// Lifetime: nodes are reference-counted; a context with a deadline is also
///   kept by its timer until the deadline passes or it is cancelled.
class context {
public:
    context() noexcept = default;
    context(const context& o) noexcept : m_node(o.m_node)
    {
        if (m_node)
            m_node->acquire();
    }
    context(context&& o) noexcept : m_node(std::exchange(o.m_node, nullptr)) {}
    context& operator=(context o) noexcept
    {
        std::swap(m_node, o.m_node);
        return *this;
    }
    ~context()
    {
        if (m_node)
            m_node->release();
    }

    /// Awaitable and select case: ready once this context is done.
    done_operation done() const noexcept { return done_operation(scope()); }
    /// {} while live; errc::canceled or errc::deadline_exceeded once done.
    std::error_code err() const noexcept
    {
        auto s = scope();
        return s ? s->err() : std::error_code{};
    }
    /// The earliest deadline of this context and its ancestors.
    std::optional<clock::time_point> deadline() const noexcept
    {
        if (!m_node || m_node->m_deadline == INT64_MAX)
            return std::nullopt;
        return detail::from_ns(m_node->m_deadline);
    }
    /// The value stored under key by this context or the nearest ancestor
    /// that has one; nullptr if none.
    template <class T>
    const T* value(const context_key<T>& key) const noexcept
    {
        for (auto n = m_node; n; n = n->m_parent)
            if (n->m_key == &key)
                return &static_cast<const detail::value_node<T>*>(n)->m_value;
        return nullptr;
    }

    friend bool operator==(const context& a, const context& b) noexcept
    {
        return a.m_node == b.m_node;
    }

    /// Internal: adopts a reference to n.
    explicit context(detail::context_node* n) noexcept : m_node(n) {}
    detail::context_node* node() const noexcept { return m_node; }

private:
    detail::context_node* scope() const noexcept { return m_node ? m_node->m_scope : nullptr; }
    detail::context_node* m_node = nullptr;
};

/// The root of every context tree. [context.Background]
inline context background() noexcept { return {}; }

/// Cancels its context and the context's subtree; calling it again does
/// nothing. Copyable; a default-constructed one does nothing.
/// [context.CancelFunc]
class cancel_func {
public:
    cancel_func() noexcept = default;
    explicit cancel_func(context c) noexcept : m_ctx(std::move(c)) {}
    void operator()() const noexcept
    {
        if (auto n = m_ctx.node())
            n->cancel(errc::canceled);
    }

private:
    context m_ctx;
};

/// A child of parent that is cancelled by the returned function, or with
/// its parent. [context.WithCancel]
std::pair<context, cancel_func> with_cancel(const context& parent);
/// A child that is also cancelled with errc::deadline_exceeded at the
/// deadline (or with its parent, or by the function). A deadline already
/// past gives a context that is done at once. Throws std::logic_error when
/// no runtime is running and the deadline is in the future.
/// [context.WithDeadline]
std::pair<context, cancel_func> with_deadline(const context& parent, clock::time_point deadline);
/// with_deadline(parent, now + timeout). [context.WithTimeout]
std::pair<context, cancel_func> with_timeout(const context& parent, clock::duration timeout);

/// A child of parent that carries value under key (it shadows a value under
/// the same key higher up). [context.WithValue]
template <class T>
context with_value(const context& parent, const context_key<T>& key, std::type_identity_t<T> value)
{
    auto p = parent.node();
    if (p)
        p->acquire();
    try {
        return context(new detail::value_node<T>(p, &key, std::move(value)));
    } catch (...) {
        if (p)
            p->release();
        throw;
    }
}

/// The running task's context; background outside tasks.
context current_context() noexcept;

} // namespace weft
