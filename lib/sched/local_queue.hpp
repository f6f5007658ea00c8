// A worker's bounded run queue: single producer (the owning worker), many
// consumers (the owner and thieves). The shape is Go's runq.
#pragma once

#include <atomic>
#include <cstdint>

#include <weft/detail/config.hpp>
#include <weft/detail/task_header.hpp>

namespace weft::detail {

// Invariants:
//   m_tail is written only by the owner; m_head only by CAS (owner or thief).
//   Slots in [m_head, m_tail) hold queued tasks; 0 <= m_tail - m_head <= k_cap.
//   A consumer reads a slot before its CAS moves m_head past it; the owner
//   overwrites a slot only after observing (acquire) that m_head passed it,
//   so a successful CAS proves the values read were the queued ones.
class local_queue {
public:
    static constexpr std::uint32_t k_cap = 256;

    /// Owner only. False when the ring is full.
    bool push(task_header* t) noexcept
    {
        auto h = m_head.load(std::memory_order_acquire);
        auto tl = m_tail.load(std::memory_order_relaxed);
        if (tl - h >= k_cap)
            return false;
        m_buf[tl % k_cap].store(t, std::memory_order_relaxed);
        m_tail.store(tl + 1, std::memory_order_release);
        return true;
    }

    /// Calls f for every queued task; only while the owner and the thieves
    /// are stopped (scheduler::stop_world).
    template <class F>
    void for_each(F f) const noexcept
    {
        auto h = m_head.load(std::memory_order_acquire);
        auto tl = m_tail.load(std::memory_order_acquire);
        for (; h != tl; ++h)
            f(m_buf[h % k_cap].load(std::memory_order_relaxed));
    }

    /// Owner only: takes the oldest task.
    task_header* pop() noexcept
    {
        auto h = m_head.load(std::memory_order_acquire);
        for (;;) {
            auto tl = m_tail.load(std::memory_order_relaxed);
            if (tl == h)
                return nullptr;
            auto t = m_buf[h % k_cap].load(std::memory_order_relaxed);
            if (m_head.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel,
                                             std::memory_order_acquire))
                return t;
        }
    }

    /// Owner only, on a full ring: removes the older half into out (which
    /// must hold k_cap / 2) and returns how many; 0 if thieves raced it.
    std::uint32_t take_half(task_header** out) noexcept
    {
        auto h = m_head.load(std::memory_order_acquire);
        auto tl = m_tail.load(std::memory_order_relaxed);
        std::uint32_t n = (tl - h) / 2;
        if (n != k_cap / 2)
            return 0;
        for (std::uint32_t i = 0; i < n; ++i)
            out[i] = m_buf[(h + i) % k_cap].load(std::memory_order_relaxed);
        if (!m_head.compare_exchange_strong(h, h + n, std::memory_order_acq_rel,
                                            std::memory_order_relaxed))
            return 0;
        return n;
    }

    /// Any thread: takes about half of the queued tasks into out (which must
    /// hold k_cap / 2). Returns how many.
    std::uint32_t grab(task_header** out) noexcept
    {
        for (;;) {
            auto h = m_head.load(std::memory_order_acquire);
            auto tl = m_tail.load(std::memory_order_acquire);
            auto n = tl - h;
            n = n - n / 2;
            if (n == 0)
                return 0;
            if (n > k_cap / 2)
                continue; // read h and tl at different times; retry
            for (std::uint32_t i = 0; i < n; ++i)
                out[i] = m_buf[(h + i) % k_cap].load(std::memory_order_relaxed);
            if (m_head.compare_exchange_strong(h, h + n, std::memory_order_acq_rel,
                                               std::memory_order_relaxed))
                return n;
        }
    }

    bool empty() const noexcept
    {
        return m_head.load(std::memory_order_acquire) == m_tail.load(std::memory_order_acquire);
    }
    std::uint32_t size() const noexcept
    {
        return m_tail.load(std::memory_order_acquire) - m_head.load(std::memory_order_acquire);
    }

private:
    alignas(cache_line) std::atomic<std::uint32_t> m_head{0};
    alignas(cache_line) std::atomic<std::uint32_t> m_tail{0};
    std::atomic<task_header*> m_buf[k_cap]{};
};

} // namespace weft::detail
