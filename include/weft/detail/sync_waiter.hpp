// Waiter nodes and queues shared by the sync primitives.
#pragma once

#include <atomic>
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
    std::atomic<spinlock*> m_lock{nullptr}; // read unlocked by a canceller
    /// The cancellable wait this waiter belongs to, while a slow path may
    /// still refuse to queue it (see cancelled_now).
    wait_hook* m_hook = nullptr;

    /// Called by a slow path with the queue's lock held, instead of queueing
    /// the waiter: true if the task's context was cancelled meanwhile.
    bool cancelled_now() noexcept
    {
        if (m_hook && m_hook->m_scope->cancelled()) {
            m_hook->m_canceled = true;
            return true;
        }
        return false;
    }
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
        w->m_lock.store(owner_lock, std::memory_order_relaxed);
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
        w->m_lock.store(nullptr, std::memory_order_relaxed);
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
            spinlock* l = m_w.m_lock.load(std::memory_order_relaxed);
            spin_guard g(*l);
            if (m_w.m_queue)
                m_w.m_queue->remove(&m_w);
        }
        hook_end(m_hook);
    }

protected:
    /// What a primitive does after one of its waiters was withdrawn by
    /// cancellation, with its lock held: returns waiters that may now
    /// proceed (linked through m_next), to be woken.
    using after_withdraw_fn = sync_waiter* (*)(void* primitive, sync_waiter* gone) noexcept;

    /// Prepares the node for queueing by the current task and registers
    /// with a cancellable context. False: the context is done already, do
    /// not wait (finish() throws). Throws std::logic_error outside a task.
    bool prepare(std::coroutine_handle<> h, const char* what, void* primitive = nullptr,
                 after_withdraw_fn after = nullptr,
                 void (*withdraw_fn)(wait_hook*) noexcept = &withdraw)
    {
        m_w.m_task = require_task(what);
        m_w.m_task->m_resume = h;
        m_primitive = primitive;
        m_after = after;
        if (!hook_begin(m_hook, m_w.m_task, this, withdraw_fn))
            return false;
        m_w.m_hook = m_hook.registered() ? m_hook.get() : nullptr;
        return true;
    }

    /// await_suspend's result: `queued` is what the slow path returned,
    /// `hooked` whether prepare registered (read before the slow path, which
    /// publishes the waiter).
    bool suspend(bool queued, bool hooked) noexcept
    {
        if (!queued || !hooked)
            return queued;
        return hook_suspend(m_hook);
    }
    bool hooked() const noexcept { return m_hook.registered(); }

    /// In await_resume: leaves the context; throws canceled_error if the
    /// wait was cancelled.
    void finish()
    {
        if (hook_end(m_hook))
            throw_canceled();
    }

    static void withdraw(wait_hook* h) noexcept
    {
        auto op = static_cast<sync_wait_operation*>(h->m_op);
        sync_waiter* others = nullptr;
        {
            spinlock* l = op->m_w.m_lock.load(std::memory_order_acquire);
            if (!l)
                return; // woken already
            spin_guard g(*l);
            if (op->m_w.m_lock.load(std::memory_order_relaxed) != l || !op->m_w.m_queue)
                return; // woken or moved meanwhile
            op->m_w.m_queue->remove(&op->m_w);
            if (op->m_after)
                others = op->m_after(op->m_primitive, &op->m_w);
        }
        h->m_canceled = true;
        wake_waiter(h->m_task);
        ready_sync_list(others);
    }

    sync_waiter m_w;
    op_hook<sync_wait_operation> m_hook;
    void* m_primitive = nullptr;
    after_withdraw_fn m_after = nullptr;
};

} // namespace weft::detail
