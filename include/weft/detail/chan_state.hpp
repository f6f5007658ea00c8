// The shared state behind chan<T> handles (Go's hchan).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include <weft/detail/cancel.hpp>
#include <weft/detail/chan_waiter.hpp>
#include <weft/detail/biased_lock.hpp>
#include <weft/detail/spinlock.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/errors.hpp>

namespace weft::detail {

/// Moves a received value out of the slot a channel filled. Built from its
/// parts rather than copied whole: the channel wrote the value and the
/// engaged flag as separate stores, and a load of both at once cannot be
/// forwarded from them (the CPU waits for the stores to retire: a stall of
/// a dozen cycles on every receive of a small T).
template <class T>
std::optional<T> take_received(std::optional<T>& slot) noexcept(std::is_nothrow_move_constructible_v<T>)
{
    if (slot.has_value())
        return std::optional<T>(std::in_place, std::move(*slot));
    return std::nullopt;
}

/// Channels alive, for weft::counters() (lib/diag/dump.cpp).
extern std::atomic<std::size_t> g_live_channels;

enum class chan_result { done, closed, would_block };

// Invariants (all guarded by m_lock; m_count and m_closed are atomics, and
// the queues' heads too, only so that select may read them without the
// lock as a hint, see recv_may_complete):
//   0 <= m_count <= m_cap; buffered values occupy slots m_head .. m_head+m_count-1 (mod m_cap).
//   m_recvq non-empty implies m_count == 0 (receivers wait only on an empty buffer).
//   m_sendq non-empty implies m_count == m_cap (senders wait only on a full buffer).
//   Once m_closed, both queues stay empty.
// m_refs counts handles; the state is destroyed with the last one, unless
// tasks still wait in its queues (they can never be woken, but their frames
// may still be destroyed or cancelled, and then leave the queue): then it is
// marked m_orphaned (under m_lock) and the unlink that empties the queues
// reports it, so that its caller destroys the state after unlocking.
template <class T>
class alignas(cache_line) chan_state {
public:
    static constexpr bool k_stateless = std::is_empty_v<T> && std::is_default_constructible_v<T>;

    static chan_state* create(std::size_t cap)
    {
        if constexpr (k_stateless) {
            return new chan_state(cap, nullptr);
        } else {
            T* buf = cap ? std::allocator<T>().allocate(cap) : nullptr;
            try {
                return new chan_state(cap, buf);
            } catch (...) {
                if (buf)
                    std::allocator<T>().deallocate(buf, cap);
                throw;
            }
        }
    }

    void acquire() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept
    {
        if (m_refs.fetch_sub(1, std::memory_order_acq_rel) != 1)
            return;
        {
            spin_guard g(m_lock);
            if (!m_recvq.empty() || !m_sendq.empty()) {
                m_orphaned = true;
                return;
            }
        }
        delete this;
    }
    /// Destroys an orphaned state whose last waiter left (see unlink_*).
    void reap() noexcept { delete this; }

    chan_lock& lock() noexcept { return m_lock; }
    std::size_t capacity() const noexcept { return m_cap; }
    std::size_t size() noexcept
    {
        spin_guard g(m_lock);
        return count();
    }

    /// Closed, and nothing buffered is left to receive.
    bool closed_and_drained() noexcept
    {
        spin_guard g(m_lock);
        return closed() && count() == 0;
    }

    /// Receives into out if a value or the closed state is available.
    /// Called with m_lock held; *wake is set to a task to ready after unlock.
    chan_result recv_locked(std::optional<T>& out, task_header*& wake)
    {
        if (count() > 0) {
            out.emplace(take_front());
            if (chan_waiter* s = m_sendq.dequeue()) {
                // A sender waited on the full buffer: its value joins the tail.
                push_back(std::move(*static_cast<T*>(s->m_slot)));
                s->m_ok = true;
                wake = s->m_task;
            }
            return chan_result::done;
        }
        if (chan_waiter* s = m_sendq.dequeue()) {
            out.emplace(std::move(*static_cast<T*>(s->m_slot)));
            s->m_ok = true;
            wake = s->m_task;
            return chan_result::done;
        }
        if (closed()) {
            out.reset();
            return chan_result::closed;
        }
        return chan_result::would_block;
    }

    /// Sends v (moving from it only when it returns done). Called with
    /// m_lock held.
    template <class U>
    chan_result send_locked(U&& v, task_header*& wake)
    {
        if (closed())
            return chan_result::closed;
        if (chan_waiter* r = m_recvq.dequeue()) {
            static_cast<std::optional<T>*>(r->m_slot)->emplace(std::forward<U>(v));
            r->m_ok = true;
            wake = r->m_task;
            return chan_result::done;
        }
        if (count() < m_cap) {
            push_back(std::forward<U>(v));
            return chan_result::done;
        }
        return chan_result::would_block;
    }

    /// Without the lock, for select's first pass: false if, at a recent
    /// instant, a receive could not have completed (nothing buffered, no
    /// sender waiting, open). A hint that may be stale either way: select
    /// polls every case again under all the locks before it waits.
    bool recv_may_complete() const noexcept
    {
        return count() != 0 || !m_sendq.empty() || closed();
    }
    /// Likewise for a send (closed counts: the send completes by throwing).
    bool send_may_complete() const noexcept
    {
        return count() < m_cap || !m_recvq.empty() || closed();
    }

    void enqueue_recv(chan_waiter* w) noexcept { m_recvq.push(w); }
    void enqueue_send(chan_waiter* w) noexcept { m_sendq.push(w); }
    /// With m_lock held: w leaves the queue if still in it. True if that
    /// left an orphaned state with no waiter: the caller reap()s it after
    /// unlocking.
    [[nodiscard]] bool unlink_recv(chan_waiter* w) noexcept
    {
        if (w->m_linked)
            m_recvq.remove(w);
        return m_orphaned && m_recvq.empty() && m_sendq.empty();
    }
    [[nodiscard]] bool unlink_send(chan_waiter* w) noexcept
    {
        if (w->m_linked)
            m_sendq.remove(w);
        return m_orphaned && m_recvq.empty() && m_sendq.empty();
    }

    /// Closes the channel and wakes every waiter: receivers get nullopt,
    /// senders throw closed_channel.
    void close()
    {
        wake_batch woken;
        {
            spin_guard g(m_lock);
            if (closed())
                throw closed_channel("weft: close of closed channel");
            m_closed.store(true, std::memory_order_relaxed);
            while (chan_waiter* w = m_recvq.dequeue()) {
                m_recvq.prefetch_front();
                static_cast<std::optional<T>*>(w->m_slot)->reset();
                w->m_ok = false;
                woken.add(w);
            }
            while (chan_waiter* w = m_sendq.dequeue()) {
                m_sendq.prefetch_front();
                w->m_ok = false;
                woken.add(w);
            }
        }
        woken.wake();
    }

private:
    chan_state(std::size_t cap, T* buf) noexcept : m_cap(cap), m_buf(buf)
    {
        g_live_channels.fetch_add(1, std::memory_order_relaxed);
    }
    ~chan_state()
    {
        g_live_channels.fetch_sub(1, std::memory_order_relaxed);
        if constexpr (!k_stateless) {
            while (count() > 0)
                (void)take_front();
            if (m_buf)
                std::allocator<T>().deallocate(m_buf, m_cap);
        }
    }

    T take_front()
    {
        m_count.store(count() - 1, std::memory_order_relaxed);
        if constexpr (k_stateless) {
            return T{};
        } else {
            T* p = m_buf + m_head;
            m_head = m_head + 1 == m_cap ? 0 : m_head + 1;
            T v(std::move(*p));
            p->~T();
            return v;
        }
    }

    template <class U>
    void push_back(U&& v)
    {
        if constexpr (!k_stateless) {
            std::size_t tail = m_head + count();
            if (tail >= m_cap)
                tail -= m_cap;
            ::new (static_cast<void*>(m_buf + tail)) T(std::forward<U>(v));
        }
        m_count.store(count() + 1, std::memory_order_relaxed);
    }

    // Written only under m_lock: relaxed is enough for readers holding it.
    std::size_t count() const noexcept { return m_count.load(std::memory_order_relaxed); }
    bool closed() const noexcept { return m_closed.load(std::memory_order_relaxed); }

    // One cache line holds the lock and what an operation reads under it
    // (the queues' heads too), when the state starts a line (alignas).
    chan_lock m_lock;
    std::atomic<std::uint32_t> m_refs{1};
    std::atomic<bool> m_closed{false};
    bool m_orphaned = false; // guarded by m_lock
    const std::size_t m_cap;
    std::size_t m_head = 0;
    std::atomic<std::size_t> m_count{0};
    T* m_buf;
    waiter_queue m_recvq;
    waiter_queue m_sendq;
};

} // namespace weft::detail
