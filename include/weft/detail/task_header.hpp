// The scheduler's view of a task: the node that run queues hold.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <source_location>

namespace weft::detail {

class context_node;
struct wait_hook;

/// One per spawned task (go, run's main, block_on). It lives inside the root
/// coroutine's promise, so scheduling a task allocates nothing.
///
/// A task suspends deep inside nested task<> frames; whoever suspends it
/// records the innermost handle in m_resume, and the scheduler resumes that.
struct task_header {
    /// Run-queue link (global queue, batches). Owned by whichever queue holds
    /// the task; a task is in at most one queue at a time.
    task_header* m_next = nullptr;
    /// The coroutine to resume when the task next runs. Written by the task
    /// itself while it suspends, before it is published to any waker.
    std::coroutine_handle<> m_resume;
    /// The task's context (a counted reference; nullptr: background).
    /// Written before the task is spawned, constant afterwards.
    context_node* m_ctx = nullptr;
    /// The task's registration for cancellable waits, made on its first
    /// one and freed with the task (see detail/cancel.hpp). Next to the
    /// queue fields: every waker reads it.
    wait_hook* m_hook = nullptr;

    /// Registry of live tasks (shutdown, num_tasks, diagnostics): the links
    /// of shard m_shard's list, written as registry_shard says
    /// (lib/sched/scheduler.hpp).
    task_header* m_reg_prev = nullptr;
    task_header* m_reg_next = nullptr;
    std::uint64_t m_id = 0;

    /// What the runtime may do to a task without resuming it.
    enum class op { abandon, end, free, destroy, body };
    /// abandon: runtime shutdown: destroy the user frames and drop the
    /// scheduler's reference. end: destroy the user frames and what the
    /// root holds for them (the callable and arguments), leaving the root
    /// itself. free: free the root's block after `end`. destroy: `end`,
    /// then `free`, in one call. body: return the
    /// promise (task_promise_base*) of the outermost user frame, or nullptr.
    void* (*m_ops)(task_header*, op) noexcept = nullptr;

    /// Diagnostics (dump_tasks). m_wait names what the task last blocked on
    /// and m_since when, in coarse milliseconds: written by the task while
    /// it suspends, m_wait cleared by the worker that next runs it (a dump
    /// finds woken tasks in the run queues), read by dumps while the
    /// workers are stopped.
    std::atomic<const char*> m_wait{nullptr};
    /// The task that spawned this one (0: none) and where go was called
    /// (empty when not known): constant after spawn.
    std::uint64_t m_parent = 0;
    std::source_location m_created;
    std::atomic<std::uint32_t> m_since{0};

    std::uint16_t m_shard = 0;
    /// False for runtime-internal tasks (block_on bridges): not counted by
    /// num_tasks().
    bool m_user = true;
    /// The main task of run(): its end stops the runtime.
    bool m_main = false;
    /// m_ctx was given (go(ctx, f)) rather than inherited from the spawner.
    bool m_ctx_given = false;
    /// The task ended on another worker and waits in its registry shard
    /// for the owner to unlink it: walkers skip it.
    std::atomic<bool> m_exited{false};
};

/// The task running on this thread, or nullptr outside tasks.
task_header* current_task() noexcept;

/// Makes a suspended task runnable. Called from a worker, the task goes to
/// that worker's runnext slot and runs as soon as the caller suspends; from
/// any other thread it goes to the global queue and a worker is woken.
void ready(task_header* t) noexcept;

/// Registers a freshly created root task and queues it for its first run.
/// Throws std::logic_error when no runtime is running.
void spawn(task_header* t);

/// Puts the running task at the back of its worker's queue.
void yield_current(task_header* t) noexcept;

/// A thread outside the runtime waits for a task (block_on) and may wake
/// others: while any does, an idle runtime is not deadlocked.
void external_waiter_enter() noexcept;
void external_waiter_leave() noexcept;

/// Throws std::logic_error unless called from inside a weft task. Records
/// `what` as what the task is about to wait for (see note_wait).
task_header* require_task(const char* what);

/// A coarse clock in milliseconds, advanced by the workers as they go
/// (every few dozen tasks and after each sleep): cheap to read on every
/// suspension, accurate to a few milliseconds while tasks run.
extern std::atomic<std::uint32_t> g_coarse_ms;

/// Records that t, the running task, is about to block on `what` (a
/// string literal), for dump_tasks.
inline void note_wait([[maybe_unused]] task_header* t, [[maybe_unused]] const char* what) noexcept
{
#if !defined(WEFT_NO_DIAG_BOOKKEEPING)
    t->m_wait.store(what, std::memory_order_relaxed);
    t->m_since.store(g_coarse_ms.load(std::memory_order_relaxed), std::memory_order_relaxed);
#endif
}

/// Reports an exception that escaped a task nobody will join, like an
/// unrecovered Go panic: prints it and exits with status 2.
[[noreturn]] void unhandled_task_exception(task_header* t, std::exception_ptr e) noexcept;

} // namespace weft::detail
