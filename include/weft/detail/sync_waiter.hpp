// Waiter nodes and queues shared by the sync primitives.
#pragma once

#include <coroutine>
#include <cstdint>

#include <weft/detail/cancel.hpp>
#include <weft/detail/spinlock.hpp>
#include <weft/detail/task_header.hpp>

namespace weft::detail {

class sync_queue;

/// A task waiting on a mutex, rw_mutex, wait_group, once, cond or
/// semaphore. Lives in the awaiting frame. m_queue/m_lock name the queue
/// holding it (a cond waiter moves to its mutex's queue when signalled); all
/// fields are guarded by that queue's lock.
struct sync_waiter {
    sync_waiter* m_prev = nullptr;
    sync_waiter* m_next = nullptr;
    task_header* m_task = nullptr;
    sync_queue* m_queue = nullptr;
    spinlock* m_lock = nullptr;
    std::int64_t m_n = 0;   // semaphore weight; rw_mutex: 1 for a writer, 0 for a reader
};

/// FIFO of sync_waiters, guarded by the owner's spinlock.
class sync_queue {
public:
    bool empty() const noexcept { return m_head == nullptr; }
    sync_waiter* front() const noexcept { return m_head; }

    void push(sync_waiter* w, spinlock* owner_lock) noexcept
    {
        w->m_next = nullptr;
        w->m_prev = m_tail;
        if (m_tail)
            m_tail->m_next = w;
        else
            m_head = w;
        m_tail = w;
        w->m_queue = this;
        w->m_lock = owner_lock;
    }
    void remove(sync_waiter* w) noexcept
    {
        if (w->m_prev)
            w->m_prev->m_next = w->m_next;
        else
            m_head = w->m_next;
        if (w->m_next)
            w->m_next->m_prev = w->m_prev;
        else
            m_tail = w->m_prev;
        w->m_prev = w->m_next = nullptr;
        w->m_queue = nullptr;
        w->m_lock = nullptr;
    }
    sync_waiter* pop() noexcept
    {
        sync_waiter* w = m_head;
        if (w)
            remove(w);
        return w;
    }

private:
    sync_waiter* m_head = nullptr;
    sync_waiter* m_tail = nullptr;
};

/// Base of the sync awaiters: owns the waiter node and, if the awaiting
/// frame is destroyed while waiting (runtime shutdown), leaves the queue.
class sync_wait_operation {
public:
    sync_wait_operation() noexcept = default;
    sync_wait_operation(const sync_wait_operation&) = delete;
    sync_wait_operation& operator=(const sync_wait_operation&) = delete;
    ~sync_wait_operation()
    {
        if (m_w.m_queue) {
            spinlock* l = m_w.m_lock;
            spin_guard g(*l);
            if (m_w.m_queue)
                m_w.m_queue->remove(&m_w);
        }
    }

protected:
    /// Prepares the node for queueing by the current task; throws
    /// std::logic_error outside a task.
    void prepare(std::coroutine_handle<> h, const char* what)
    {
        m_w.m_task = require_task(what);
        m_w.m_task->m_resume = h;
    }

    sync_waiter m_w;
};

/// Wakes the tasks of waiters unlinked into a list through m_next.
inline void ready_sync_list(sync_waiter* w) noexcept
{
    while (w) {
        sync_waiter* next = w->m_next;
        task_header* t = w->m_task;
        wake_waiter(t);
        w = next;
    }
}

} // namespace weft::detail
