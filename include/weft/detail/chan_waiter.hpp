// Waiter nodes of channel wait queues (Go's sudog).
#pragma once

#include <atomic>
#include <cstdint>

#include <weft/detail/task_header.hpp>

namespace weft::detail {

/// Shared by every waiter of one suspended select: the first party to CAS
/// m_done from 0 to 1 owns the select's outcome.
struct select_state {
    std::atomic<std::uint32_t> m_done{0};
    /// The winning case; written by the claimer before it readies the task.
    std::uint32_t m_winner = 0;

    /// Settles the select for `winner` unless someone else did first.
    bool try_claim(std::uint32_t winner) noexcept
    {
        std::uint32_t expected = 0;
        if (!m_done.compare_exchange_strong(expected, 1, std::memory_order_acq_rel,
                                            std::memory_order_relaxed))
            return false;
        m_winner = winner;
        return true;
    }
};

/// A task waiting to send or receive on one channel. Lives in the awaiting
/// frame (suspending allocates nothing); all fields but the constant ones
/// are guarded by the lock of the channel whose queue holds it.
struct chan_waiter {
    chan_waiter* m_prev = nullptr;
    chan_waiter* m_next = nullptr;
    task_header* m_task = nullptr;
    select_state* m_sel = nullptr; // null for a plain send/recv
    void* m_slot = nullptr;        // send: T* to move from; recv: std::optional<T>* to fill
    std::uint32_t m_case = 0;      // select case index
    bool m_linked = false;
    bool m_ok = false;             // set by the waker: true = transferred, false = closed
};

/// FIFO of waiters. Guarded by the owning channel's lock.
class waiter_queue {
public:
    /// Exact with the queue's lock held; without it, a hint (select).
    bool empty() const noexcept { return head() == nullptr; }

    void push(chan_waiter* w) noexcept
    {
        w->m_next = nullptr;
        w->m_prev = m_tail;
        if (m_tail)
            m_tail->m_next = w;
        else
            m_head.store(w, std::memory_order_relaxed);
        m_tail = w;
        w->m_linked = true;
    }

    void remove(chan_waiter* w) noexcept
    {
        if (w->m_prev)
            w->m_prev->m_next = w->m_next;
        else
            m_head.store(w->m_next, std::memory_order_relaxed);
        if (w->m_next)
            w->m_next->m_prev = w->m_prev;
        else
            m_tail = w->m_prev;
        w->m_prev = w->m_next = nullptr;
        w->m_linked = false;
    }

    /// Removes and returns the first waiter that can still be completed. A
    /// select waiter must be claimed first; one whose select already went
    /// another way is dropped (its task will unlink its other waiters).
    chan_waiter* dequeue() noexcept
    {
        while (chan_waiter* w = head()) {
            remove(w);
            if (!w->m_sel)
                return w;
            if (w->m_sel->try_claim(w->m_case))
                return w;
        }
        return nullptr;
    }

    /// For a loop that dequeues every waiter (a broadcast): starts loading
    /// what the next dequeue touches, the select state of the first waiter
    /// (whose node the last remove() wrote) and the node after it.
    void prefetch_front() const noexcept
    {
        if (chan_waiter* h = head()) {
            if (h->m_sel)
                __builtin_prefetch(h->m_sel, 1);
            if (h->m_next)
                __builtin_prefetch(h->m_next, 1);
        }
    }

private:
    chan_waiter* head() const noexcept { return m_head.load(std::memory_order_relaxed); }

    // Written only under the owner's lock; atomic only so that empty() may
    // be read without it.
    std::atomic<chan_waiter*> m_head{nullptr};
    chan_waiter* m_tail = nullptr;
};

} // namespace weft::detail
