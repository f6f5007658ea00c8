// wait_group.
//
// Invariants:
// - m_waiters is guarded by m_lock; k_waiters is set (under m_lock) before a
//   waiter is queued, and cleared under m_lock only when the queue is empty
//   or by the done() that empties it.
// - A waiter queues only while the counter is non-zero, or while it is zero
//   with k_waiters set: then a done() that reached zero has seen k_waiters
//   and is bound to take m_lock and wake the whole queue.
// - The done() that wakes the waiters sets k_waking before it releases
//   m_lock and clears it as its very last access to *this. wait() returns
//   without suspending only when the whole state is zero (or after watching
//   k_waking clear), so a wait_group destroyed right after a wait() returns
//   is never touched again.
// - A cancelled waiter stays queued when the counter is zero: the done() in
//   flight wakes it and the wait completes normally.

#include <weft/wait_group.hpp>

#include <climits>
#include <stdexcept>

namespace weft {

namespace {

std::int32_t counter(std::uint64_t s) noexcept
{
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(s >> 32));
}

} // namespace

void wait_group::add(std::int64_t n)
{
    if (n == 0)
        return;
    if (n > INT32_MAX || n < INT32_MIN)
        throw std::logic_error("weft::wait_group: counter out of range");
    // Most calls only move the counter. A done() that reaches zero with no
    // waiter recorded returns without touching *this again.
    const std::uint64_t delta = static_cast<std::uint64_t>(n) << 32;
    std::uint64_t s = m_state.fetch_add(delta, std::memory_order_acq_rel) + delta;
    const std::int64_t v = std::int64_t{counter(s - delta)} + n;
    if (v < 0 || v > INT32_MAX) {
        // Undo. A waiter may have queued meanwhile, seeing a non-zero
        // counter: if the undo brings back zero, wake it like a zero would.
        s = m_state.fetch_sub(delta, std::memory_order_acq_rel) - delta;
        if (counter(s) == 0 && (s & k_waiters))
            wake_all();
        throw std::logic_error(v < 0 ? "weft::wait_group: negative counter"
                                     : "weft::wait_group: counter out of range");
    }
    if (counter(s) == 0 && (s & k_waiters))
        wake_all();
}

void wait_group::wake_all() noexcept
{
    detail::sync_waiter* wake = nullptr;
    {
        detail::spin_guard g(m_lock);
        // A previous wake still finishing (only when add() races with a
        // wait(), which Go forbids): it never takes m_lock, so wait here.
        detail::spin_until([&] { return !(m_state.load(std::memory_order_relaxed) & k_waking); });
        std::uint64_t s = m_state.load(std::memory_order_relaxed);
        if (counter(s) != 0 || !(s & k_waiters))
            return; // re-armed by a concurrent add(), or already woken
        detail::sync_waiter** tail = &wake;
        while (auto w = m_waiters.pop()) {
            *tail = w;
            tail = &w->m_next;
        }
        *tail = nullptr;
        m_state.fetch_add(k_waking - k_waiters, std::memory_order_relaxed);
    }
    m_state.fetch_sub(k_waking, std::memory_order_release); // last access
    detail::ready_sync_list(wake);
}

bool wait_group::wait_slow(detail::sync_waiter* w)
{
    {
        detail::spin_guard g(m_lock);
        std::uint64_t s = m_state.load(std::memory_order_relaxed);
        for (;;) {
            if (counter(s) == 0 && !(s & k_waiters))
                break; // zero, or zero and being woken: see below
            if (w->cancelled_now())
                return false;
            if ((s & k_waiters) ||
                m_state.compare_exchange_weak(s, s | k_waiters, std::memory_order_relaxed,
                                              std::memory_order_relaxed)) {
                m_waiters.push(w, &m_lock);
                return true;
            }
        }
    }
    // The counter is zero; a done() may still be finishing its wake. Return
    // only after its last access, so the caller may destroy *this.
    detail::spin_until([&] { return !(m_state.load(std::memory_order_acquire) & k_waking); });
    return false;
}

void wait_group::withdraw(detail::wait_hook* h, detail::sync_waiter* w) noexcept
{
    {
        detail::spin_guard g(m_lock);
        if (!w->m_queue)
            return; // woken already
        if (counter(m_state.load(std::memory_order_relaxed)) == 0)
            return; // the done() that reached zero is about to wake it
        m_waiters.remove(w);
        if (m_waiters.empty())
            m_state.fetch_and(~k_waiters, std::memory_order_relaxed);
    }
    h->m_canceled = true;
    detail::wake_waiter(h->m_task);
}

} // namespace weft
