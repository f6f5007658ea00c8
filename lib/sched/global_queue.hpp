// The scheduler's global run queue: tasks queued by threads that are not
// workers, and the halves that full worker rings spill.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#include <weft/detail/task_header.hpp>

namespace weft::detail {

// A FIFO of task pointers kept in segments, so that moving a batch between
// this queue and a worker's ring copies pointers and never touches the
// tasks. After a burst of wake-ups (a context cancelled, a channel closed
// with thousands of waiters) the queued tasks' headers are cold: a queue
// linked through them missed the cache once per task in the taker, on top
// of the miss when the task runs.
//
// Not synchronised: scheduler::m_lock guards every call.
//
// Invariants:
//   Segments form a list m_first..m_last; each holds tasks[head, tail).
//   Only m_last has room at its end (tail < k_seg_cap); a segment that
//   becomes empty is unlinked at once (kept as m_spare, or freed).
//   A segment that cannot be allocated sends tasks to the overflow list
//   (linked through task_header::m_next), which pop takes first: it only
//   grows while allocation fails, so it drains once it works again.
//   Nothing is lost, though the order is then not FIFO.
//   m_size counts the tasks in both.
class global_queue {
public:
    global_queue() = default;
    global_queue(const global_queue&) = delete;
    global_queue& operator=(const global_queue&) = delete;
    ~global_queue()
    {
        clear();
        delete m_spare;
    }

    std::size_t size() const noexcept { return m_size; }
    bool empty() const noexcept { return m_size == 0; }

    void push(task_header* const* tasks, std::size_t n) noexcept
    {
        m_size += n;
        while (n != 0) {
            segment* s = m_last;
            if (!s || s->tail == k_seg_cap) {
                s = new_segment();
                if (!s) {
                    overflow(tasks, n);
                    return;
                }
                if (m_last)
                    m_last->next = s;
                else
                    m_first = s;
                m_last = s;
            }
            std::size_t room = k_seg_cap - s->tail;
            std::size_t k = n < room ? n : room;
            for (std::size_t i = 0; i < k; ++i)
                s->tasks[s->tail + i] = tasks[i];
            s->tail += static_cast<std::uint32_t>(k);
            tasks += k;
            n -= k;
        }
    }

    /// Takes up to max of the oldest tasks into out; returns how many.
    std::size_t pop(task_header** out, std::size_t max) noexcept
    {
        std::size_t got = 0;
        while (got < max && m_overflow) {
            out[got++] = m_overflow;
            m_overflow = m_overflow->m_next;
        }
        while (got < max && m_first) {
            segment* s = m_first;
            std::size_t avail = s->tail - s->head;
            std::size_t k = max - got < avail ? max - got : avail;
            for (std::size_t i = 0; i < k; ++i)
                out[got + i] = s->tasks[s->head + i];
            s->head += static_cast<std::uint32_t>(k);
            got += k;
            if (s->head == s->tail) {
                m_first = s->next;
                if (!m_first)
                    m_last = nullptr;
                retire(s);
            }
        }
        m_size -= got;
        return got;
    }

    /// Calls f for every queued task (diagnostics, with the world stopped).
    template <class F>
    void for_each(F f) const noexcept
    {
        for (task_header* t = m_overflow; t; t = t->m_next)
            f(t);
        for (segment* s = m_first; s; s = s->next)
            for (std::uint32_t i = s->head; i != s->tail; ++i)
                f(s->tasks[i]);
    }

    /// Forgets every queued task (shutdown: they are destroyed elsewhere).
    void clear() noexcept
    {
        while (segment* s = m_first) {
            m_first = s->next;
            delete s;
        }
        m_last = nullptr;
        m_overflow = nullptr;
        m_size = 0;
    }

    /// Tests only: makes segment allocation fail (true) or work again.
    void fail_allocation_for_test(bool fail) noexcept { m_fail_alloc = fail; }

private:
    // 2 KiB per segment.
    static constexpr std::uint32_t k_seg_cap = 254;
    struct segment {
        segment* next = nullptr;
        std::uint32_t head = 0;
        std::uint32_t tail = 0;
        task_header* tasks[k_seg_cap];
    };

    segment* new_segment() noexcept
    {
        if (segment* s = m_spare) {
            m_spare = nullptr;
            return s;
        }
        if (m_fail_alloc)
            return nullptr;
        return new (std::nothrow) segment;
    }

    void retire(segment* s) noexcept
    {
        if (m_spare) {
            delete s;
            return;
        }
        s->next = nullptr;
        s->head = s->tail = 0;
        m_spare = s;
    }

    void overflow(task_header* const* tasks, std::size_t n) noexcept
    {
        for (std::size_t i = 0; i < n; ++i) {
            task_header* t = tasks[i];
            t->m_next = nullptr;
            if (m_overflow)
                m_overflow_tail->m_next = t;
            else
                m_overflow = t;
            m_overflow_tail = t;
        }
    }

    segment* m_first = nullptr;
    segment* m_last = nullptr;
    segment* m_spare = nullptr;
    task_header* m_overflow = nullptr;
    task_header* m_overflow_tail = nullptr;
    std::size_t m_size = 0;
    bool m_fail_alloc = false;
};

} // namespace weft::detail
