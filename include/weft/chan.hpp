// Channels: chan<T>, send_chan<T>, recv_chan<T>, make_chan. [chan T]
#pragma once

#include <coroutine>
#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <utility>

#include <weft/detail/cancel.hpp>
#include <weft/detail/chan_state.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/errors.hpp>

namespace weft {

template <class T>
class chan;
template <class T>
class send_chan;
template <class T>
class recv_chan;

namespace detail {

/// A counted reference to a channel state; nullptr is the nil channel.
template <class T>
class chan_ref {
public:
    chan_ref() noexcept = default;
    explicit chan_ref(chan_state<T>* s) noexcept : m_s(s) {}
    chan_ref(const chan_ref& o) noexcept : m_s(o.m_s)
    {
        if (m_s)
            m_s->acquire();
    }
    chan_ref(chan_ref&& o) noexcept : m_s(std::exchange(o.m_s, nullptr)) {}
    chan_ref& operator=(chan_ref o) noexcept
    {
        std::swap(m_s, o.m_s);
        return *this;
    }
    ~chan_ref()
    {
        if (m_s)
            m_s->release();
    }
    chan_state<T>* get() const noexcept { return m_s; }

private:
    chan_state<T>* m_s = nullptr;
};

[[noreturn]] inline void throw_closed_send()
{
    throw closed_channel("weft: send on closed channel");
}

/// A wait on a nil channel: it ends only by cancellation of the task's
/// context (or with the runtime).
template <class Op>
bool nil_suspend(op_hook<Op>& hook, Op* op, std::coroutine_handle<> h, const char* what)
{
    task_header* t = require_task(what);
    t->m_resume = h;
    auto withdraw = [](wait_hook* w) noexcept {
        // Nothing else can complete the wait: the canceller always wins.
        w->m_canceled = true;
        wake_waiter(w->m_task);
    };
    if (!hook_begin(hook, t, op, +withdraw))
        return false;
    return !hook.registered() || hook_suspend(hook);
}

} // namespace detail

/// co_await ch.recv() -> std::optional<T>: a value, or nullopt once the
/// channel is closed and drained. Blocks forever on a nil channel.
///
/// The channel must outlive the operation (it does whenever the operation is
/// awaited in the expression that made it).
/// Cancellation: if the task's context is done while it waits (or before it
/// would wait), throws canceled_error and takes no value.
/// Cancel safety: as a select case that loses, it consumes nothing.
template <class T>
class [[nodiscard]] recv_operation {
public:
    explicit recv_operation(detail::chan_state<T>* s) noexcept : m_ch(s) {}
    recv_operation(recv_operation&& o) noexcept : m_ch(o.m_ch), m_value(std::move(o.m_value)) {}
    recv_operation(const recv_operation&) = delete;
    recv_operation& operator=(const recv_operation&) = delete;
    ~recv_operation()
    {
        if (m_suspended && m_ch) {
            // Destroyed while waiting (runtime shutdown): leave the queue.
            bool reap;
            {
                detail::spin_guard g(m_ch->lock());
                reap = m_ch->unlink_recv(&m_w);
            }
            if (reap)
                m_ch->reap();
        }
        detail::hook_end(m_hook);
    }

    bool await_ready() const noexcept { return false; }
    WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
    {
        if (!m_ch)
            return detail::nil_suspend(m_hook, this, h, "recv on a nil channel");
        detail::task_header* wake = nullptr;
        detail::task_header* self = nullptr;
        {
            detail::spin_guard g(m_ch->lock());
            if (m_ch->recv_locked(m_value, wake) != detail::chan_result::would_block)
                goto done;
            self = detail::current_task();
            if (!self)
                goto no_task;
            if (WEFT_LIKELY(!detail::task_scope(self))) {
                enqueue(self, h);
                return true;
            }
        }
        // A cancellable task: register first, then look again and queue.
        if (!detail::hook_begin(m_hook, self, this, &withdraw))
            return false;
        {
            detail::spin_guard g(m_ch->lock());
            if (m_ch->recv_locked(m_value, wake) != detail::chan_result::would_block ||
                detail::hook_cancelled(m_hook))
                goto done; // await_resume leaves the scope (and throws if cancelled)
            enqueue(self, h);
        }
        return detail::hook_suspend(m_hook);
    done:
        if (wake)
            detail::wake_waiter(wake);
        return false;
    no_task:
        detail::require_task("chan recv");
        return false;
    }
    std::optional<T> await_resume()
    {
        m_suspended = false;
        if (WEFT_UNLIKELY(detail::hook_end(m_hook)))
            detail::throw_canceled();
        return detail::take_received(m_value);
    }

    /// The channel this operation receives from (nullptr: nil).
    detail::chan_state<T>* state() const noexcept { return m_ch; }

private:
    void enqueue(detail::task_header* self, std::coroutine_handle<> h) noexcept
    {
        detail::note_wait(self, "chan recv");
        m_w.m_task = self;
        m_w.m_slot = &m_value;
        self->m_resume = h;
        m_suspended = true;
        m_ch->enqueue_recv(&m_w);
    }
    static void withdraw(detail::wait_hook* hook) noexcept
    {
        auto op = static_cast<recv_operation*>(hook->m_op);
        bool reap;
        {
            detail::spin_guard g(op->m_ch->lock());
            if (!op->m_w.m_linked)
                return; // a sender got there first
            reap = op->m_ch->unlink_recv(&op->m_w);
        }
        if (reap)
            op->m_ch->reap();
        hook->m_canceled = true;
        detail::wake_waiter(hook->m_task);
    }

    detail::chan_state<T>* m_ch;
    detail::chan_waiter m_w;
    std::optional<T> m_value;
    detail::op_hook<recv_operation> m_hook;
    bool m_suspended = false;
};

/// co_await ch.send(v): delivers v to a receiver or the buffer, waiting for
/// room. Throws closed_channel if the channel is or becomes closed. Blocks
/// forever on a nil channel.
///
/// The channel must outlive the operation (it does whenever the operation is
/// awaited in the expression that made it).
/// Cancellation: if the task's context is done while it waits (or before it
/// would wait), throws canceled_error and sends nothing.
/// Cancel safety: as a select case that loses, nothing is sent (v stays in
/// the operation and is destroyed with it).
template <class T>
class [[nodiscard]] send_operation {
public:
    send_operation(detail::chan_state<T>* s, T v) : m_ch(s), m_value(std::move(v)) {}
    send_operation(send_operation&& o) noexcept(std::is_nothrow_move_constructible_v<T>)
        : m_ch(o.m_ch), m_value(std::move(o.m_value))
    {
    }
    send_operation(const send_operation&) = delete;
    send_operation& operator=(const send_operation&) = delete;
    ~send_operation()
    {
        if (m_suspended && m_ch) {
            bool reap;
            {
                detail::spin_guard g(m_ch->lock());
                reap = m_ch->unlink_send(&m_w);
            }
            if (reap)
                m_ch->reap();
        }
        detail::hook_end(m_hook);
    }

    bool await_ready() const noexcept { return false; }
    WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
    {
        if (!m_ch)
            return detail::nil_suspend(m_hook, this, h, "send on a nil channel");
        detail::task_header* wake = nullptr;
        detail::task_header* self = nullptr;
        detail::chan_result r;
        {
            detail::spin_guard g(m_ch->lock());
            r = m_ch->send_locked(std::move(m_value), wake);
            if (r == detail::chan_result::would_block && (self = detail::current_task()) &&
                WEFT_LIKELY(!detail::task_scope(self))) {
                enqueue(self, h);
                return true;
            }
        }
        if (r == detail::chan_result::would_block) {
            if (!self)
                detail::require_task("chan send");
            // A cancellable task: register first, then look again and queue.
            if (!detail::hook_begin(m_hook, self, this, &withdraw))
                return false;
            {
                detail::spin_guard g(m_ch->lock());
                r = m_ch->send_locked(std::move(m_value), wake);
                if (r == detail::chan_result::would_block && !detail::hook_cancelled(m_hook)) {
                    enqueue(self, h);
                    goto queued;
                }
            }
            // Not queued: await_resume leaves the scope and throws if cancelled.
        }
        if (r == detail::chan_result::closed)
            m_closed = true;
        if (wake)
            detail::wake_waiter(wake);
        return false;
    queued:
        return detail::hook_suspend(m_hook);
    }
    void await_resume()
    {
        if (m_suspended) {
            m_suspended = false;
            m_closed = !m_w.m_ok;
        }
        if (WEFT_UNLIKELY(detail::hook_end(m_hook)))
            detail::throw_canceled();
        if (m_closed)
            detail::throw_closed_send();
    }

    detail::chan_state<T>* state() const noexcept { return m_ch; }
    T& value() noexcept { return m_value; }

private:
    void enqueue(detail::task_header* self, std::coroutine_handle<> h) noexcept
    {
        detail::note_wait(self, "chan send");
        m_w.m_task = self;
        m_w.m_slot = &m_value;
        self->m_resume = h;
        m_suspended = true;
        m_ch->enqueue_send(&m_w);
    }
    static void withdraw(detail::wait_hook* hook) noexcept
    {
        auto op = static_cast<send_operation*>(hook->m_op);
        bool reap;
        {
            detail::spin_guard g(op->m_ch->lock());
            if (!op->m_w.m_linked)
                return; // a receiver or close got there first
            reap = op->m_ch->unlink_send(&op->m_w);
        }
        if (reap)
            op->m_ch->reap();
        op->m_suspended = false; // withdrawn: neither sent nor closed
        hook->m_canceled = true;
        detail::wake_waiter(hook->m_task);
    }

    detail::chan_state<T>* m_ch;
    T m_value;
    detail::chan_waiter m_w;
    detail::op_hook<send_operation> m_hook;
    bool m_suspended = false;
    bool m_closed = false;
};

namespace detail {

/// Members shared by chan, send_chan and recv_chan.
template <class T>
class chan_handle {
public:
    using value_type = T;

    chan_handle() noexcept = default;
    chan_handle(std::nullptr_t) noexcept {}

    explicit operator bool() const noexcept { return m_ref.get() != nullptr; }
    /// [len(ch)] Values buffered now; 0 for nil.
    std::size_t size() const noexcept { return m_ref.get() ? m_ref.get()->size() : 0; }
    /// [cap(ch)] 0 for unbuffered and nil channels.
    std::size_t capacity() const noexcept { return m_ref.get() ? m_ref.get()->capacity() : 0; }
    /// True once the channel is closed and drained: a receive would return
    /// nullopt without waiting. The non-blocking check of a channel that only
    /// signals by its close [select { case <-done: ...; default: }]; like
    /// size(), only a snapshot while the channel is open. False for nil.
    bool closed() const noexcept { return m_ref.get() && m_ref.get()->closed_and_drained(); }

    chan_state<T>* state() const noexcept { return m_ref.get(); }
    /// The counted reference itself (select cases built from temporaries
    /// keep their channel alive with it).
    chan_ref<T> take_ref() && noexcept { return std::move(m_ref); }

protected:
    explicit chan_handle(chan_ref<T> r) noexcept : m_ref(std::move(r)) {}

    send_operation<T> send_op(T v) const { return {m_ref.get(), std::move(v)}; }
    recv_operation<T> recv_op() const noexcept { return recv_operation<T>{m_ref.get()}; }

    template <class U>
    bool try_send_impl(U&& v) const
    {
        auto s = m_ref.get();
        if (!s)
            return false;
        task_header* wake = nullptr;
        chan_result r;
        {
            spin_guard g(s->lock());
            r = s->send_locked(std::forward<U>(v), wake);
        }
        if (r == chan_result::closed)
            throw_closed_send();
        if (wake)
            wake_waiter(wake);
        return r == chan_result::done;
    }

    std::optional<T> try_recv_impl() const
    {
        std::optional<T> out;
        auto s = m_ref.get();
        if (!s)
            return out;
        task_header* wake = nullptr;
        {
            spin_guard g(s->lock());
            s->recv_locked(out, wake);
        }
        if (wake)
            wake_waiter(wake);
        return out;
    }

    void close_impl() const
    {
        if (!m_ref.get())
            throw closed_channel("weft: close of nil channel");
        m_ref.get()->close();
    }

    chan_ref<T> m_ref;
};

} // namespace detail

/// A channel of T values: a shared handle, like a Go channel value. Copies
/// refer to the same channel; a default-constructed handle is the nil
/// channel. [chan T]
///
/// Thread safety: every member may be called concurrently from any thread;
///   awaiting send/recv needs a task (block_on elsewhere).
/// Resumption: a suspended sender or receiver resumes on a worker of the
///   pool (the waker's worker, right after the waker suspends), never inline
///   inside the waker's call.
/// Ordering: FIFO among buffered values and among waiting tasks.
/// Memory ordering: what happens before send(v) happens before the recv()
///   that gets v returns; close() happens before a recv() that returns nullopt
///   because of it.
/// Cancel safety: as losing select cases, recv consumes nothing and send
///   sends nothing.
/// Lifetime: the channel lives as long as any handle; values still buffered
///   when the last handle goes are destroyed.
template <class T>
class chan : public detail::chan_handle<T> {
    using base = detail::chan_handle<T>;

public:
    chan() noexcept = default;
    chan(std::nullptr_t) noexcept {}

    /// co_await ch.send(v). Throws closed_channel if the channel is closed.
    send_operation<T> send(T v) const { return this->send_op(std::move(v)); }
    /// co_await ch.recv() -> std::optional<T>; nullopt once closed and drained.
    recv_operation<T> recv() const noexcept { return this->recv_op(); }

    /// Sends without waiting: true if a receiver or the buffer took v, false
    /// (v untouched) otherwise, and for a nil channel. Throws closed_channel
    /// on a closed channel.
    bool try_send(T&& v) const { return this->try_send_impl(std::move(v)); }
    bool try_send(const T& v) const { return this->try_send_impl(v); }
    /// A value if one is available now; nullopt otherwise (also when closed).
    std::optional<T> try_recv() const { return this->try_recv_impl(); }
    /// [close(ch)] Receivers drain the buffer and then get nullopt; waiting
    /// senders throw closed_channel. Throws closed_channel on a closed or
    /// nil channel.
    void close() const { this->close_impl(); }

    friend bool operator==(const chan& a, const chan& b) noexcept { return a.state() == b.state(); }

private:
    template <class U>
    friend chan<U> make_chan(std::size_t);
    explicit chan(detail::chan_ref<T> r) noexcept : base(std::move(r)) {}
};

/// The send-only view of a channel. [chan<- T]
template <class T>
class send_chan : public detail::chan_handle<T> {
public:
    send_chan() noexcept = default;
    send_chan(std::nullptr_t) noexcept {}
    send_chan(chan<T> c) noexcept : detail::chan_handle<T>(std::move(c)) {}

    send_operation<T> send(T v) const { return this->send_op(std::move(v)); }
    bool try_send(T&& v) const { return this->try_send_impl(std::move(v)); }
    bool try_send(const T& v) const { return this->try_send_impl(v); }
    void close() const { this->close_impl(); }

    friend bool operator==(const send_chan& a, const send_chan& b) noexcept
    {
        return a.state() == b.state();
    }
};

/// The receive-only view of a channel. [<-chan T]
template <class T>
class recv_chan : public detail::chan_handle<T> {
public:
    recv_chan() noexcept = default;
    recv_chan(std::nullptr_t) noexcept {}
    recv_chan(chan<T> c) noexcept : detail::chan_handle<T>(std::move(c)) {}

    recv_operation<T> recv() const noexcept { return this->recv_op(); }
    std::optional<T> try_recv() const { return this->try_recv_impl(); }

    friend bool operator==(const recv_chan& a, const recv_chan& b) noexcept
    {
        return a.state() == b.state();
    }
};

/// [make(chan T, n)] A new channel with room for capacity buffered values
/// (0: unbuffered, every send waits for a receiver).
template <class T>
chan<T> make_chan(std::size_t capacity = 0)
{
    return chan<T>(detail::chan_ref<T>(detail::chan_state<T>::create(capacity)));
}

} // namespace weft

template <class T>
struct std::hash<weft::chan<T>> {
    std::size_t operator()(const weft::chan<T>& c) const noexcept
    {
        return std::hash<const void*>()(c.state());
    }
};
template <class T>
struct std::hash<weft::send_chan<T>> {
    std::size_t operator()(const weft::send_chan<T>& c) const noexcept
    {
        return std::hash<const void*>()(c.state());
    }
};
template <class T>
struct std::hash<weft::recv_chan<T>> {
    std::size_t operator()(const weft::recv_chan<T>& c) const noexcept
    {
        return std::hash<const void*>()(c.state());
    }
};
