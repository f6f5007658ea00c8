// The work-stealing scheduler: workers, their queues, parking.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <weft/detail/config.hpp>
#include <weft/detail/spinlock.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/runtime.hpp>

#include "../reactor/reactor.hpp"
#include "../time/timer_heap.hpp"
#include "local_queue.hpp"

namespace weft::detail {

class scheduler;

/// A list of live tasks, one per worker plus one for other threads, so that
/// spawning and finishing rarely touch a lock another thread holds.
struct registry_shard {
    spinlock m_lock;
    task_header* m_head = nullptr; // guarded by m_lock
    std::size_t m_user = 0;        // user tasks in the list; guarded by m_lock
};

/// One worker thread and its run queue.
///
/// Invariants:
///   m_runnext and m_runq are pushed only by the owning thread; anyone may
///   take from them (thieves CAS).
///   m_idle and m_idle_next are guarded by scheduler::m_lock (m_idle is
///   atomic so that its owner may test it without the lock). An idle worker
///   is removed from the idle list by whoever wakes it, and that waker hands
///   it the spinning token (m_spinning = true) before notifying m_park; a
///   worker whose reactor wait ends for another reason (a deadline, I/O)
///   takes itself off the list.
///   m_reactor is created by the worker thread before it first parks and
///   lives as long as the worker; wake() may reach it from any thread once
///   m_park says k_sleeping.
struct worker {
    scheduler* m_sched = nullptr;
    unsigned m_index = 0;

    local_queue m_runq;
    alignas(cache_line) std::atomic<task_header*> m_runnext{nullptr};

    // Parking word: k_awake, k_notified (a wake is pending), k_sleeping (in
    // the reactor wait).
    alignas(cache_line) std::atomic<std::uint32_t> m_park{0};
    std::unique_ptr<reactor> m_reactor;

    /// Timers armed by tasks running on this worker.
    timer_heap m_timers;
    std::atomic<bool> m_spinning{false};

    worker* m_idle_next = nullptr;
    std::atomic<bool> m_idle{false}; // written under scheduler::m_lock

    // Owner-only state.
    std::uint32_t m_tick = 0;
    std::uint32_t m_streak = 0; // consecutive runnext picks
    std::uint64_t m_rng = 0;
    bool m_watching = false; // holds scheduler::m_watcher
    task_header* m_steal_buf[local_queue::k_cap / 2];

    std::thread m_thread;

    static constexpr std::uint32_t k_awake = 0;
    static constexpr std::uint32_t k_notified = 1;
    static constexpr std::uint32_t k_sleeping = 2;

    void loop() noexcept;
    task_header* find_runnable() noexcept;
    task_header* steal() noexcept;
    void put_runnext(task_header* t) noexcept;
    task_header* take_runnext() noexcept;
    void push_back(task_header* t, bool wake) noexcept;
    void reset_spinning() noexcept;
    void notify() noexcept;
    /// True if woken by notify().
    bool wait_notified(std::int64_t deadline) noexcept;
    void park() noexcept;
    void unpark_role() noexcept;
    /// With scheduler::m_lock held: leaves the idle list if on it.
    bool unlist_idle_locked() noexcept;
    void fire_timers() noexcept;
    std::uint32_t next_random() noexcept;
};

/// Owns the workers of one running runtime.
class scheduler {
public:
    scheduler(unsigned workers, bool detect_deadlock);
    ~scheduler();
    void start();
    /// Stops the workers (after their running task suspends) and destroys
    /// every task that is still alive.
    void stop() noexcept;

    void spawn(task_header* t);
    void ready(task_header* t) noexcept;
    void inject(task_header* first, task_header* last, std::size_t n) noexcept;
    void wakep() noexcept;

    unsigned workers() const noexcept { return m_n; }
    std::size_t live_user_tasks() noexcept;
    void unregister_task(task_header* t) noexcept;

    bool stopping() const noexcept { return m_stopping.load(std::memory_order_acquire); }

    /// The main task finished: idleness from now on is the runtime winding
    /// down, not a deadlock.
    void main_done() noexcept { m_main_done.store(true, std::memory_order_seq_cst); }
    /// Threads outside the runtime that are about to wake a task or wait
    /// for one (block_on, foreign spawn).
    std::atomic<int> m_external{0};
    /// Bumped whenever a thread outside the workers wakes or spawns a task.
    std::atomic<std::uint64_t> m_foreign_activity{0};
    void external_leave() noexcept;

    /// The heap a timer armed by the calling thread goes to.
    timer_heap& arm_heap() noexcept;
    /// A timer became the earliest of `heap` at `when`: make sure some
    /// worker wakes for it.
    void timer_armed(timer_heap& heap, std::int64_t when) noexcept;
    /// Earliest deadline over every heap (INT64_MAX when none).
    std::int64_t earliest_timer() const noexcept;
    /// Fires every due timer of every heap (the watcher, after its sleep).
    void fire_all_timers() noexcept;

private:
    friend struct worker;

    task_header* global_get(worker* w) noexcept;
    bool any_work_visible() const noexcept;
    void register_task(task_header* t, unsigned shard) noexcept;
    /// Called by the last worker to go idle: if nothing can ever wake a
    /// task, report the deadlock and exit like Go does.
    void check_deadlock() noexcept;
    void drop_timers(timer_heap& h) noexcept;
    bool stuck() noexcept;

    unsigned m_n;
    std::vector<std::unique_ptr<worker>> m_workers;
    std::unique_ptr<registry_shard[]> m_shards; // m_n + 1: the last is for other threads

    // Guards the global queue and the idle list.
    std::mutex m_lock;
    task_header* m_gq_head = nullptr;
    task_header* m_gq_tail = nullptr;
    std::atomic<std::size_t> m_gq_size{0};
    worker* m_idle_head = nullptr;

    // Timers. One idle worker at a time (the watcher) sleeps until the
    // earliest deadline of all heaps and fires what is due everywhere; the
    // others sleep until woken. m_poll_until: INT64_MAX when no worker
    // watches (an armed timer must wake one), INT64_MIN while the watcher
    // is awake (it looks at the heaps again before it sleeps), else the
    // deadline the sleeping watcher will wake at.
    timer_heap m_foreign_timers; // armed by threads that are not workers
    alignas(cache_line) std::atomic<worker*> m_watcher{nullptr};
    std::atomic<std::int64_t> m_poll_until{INT64_MAX};

    alignas(cache_line) std::atomic<unsigned> m_npidle{0};
    std::atomic<unsigned> m_nspinning{0};
    std::atomic<bool> m_stopping{false};
    std::atomic<bool> m_main_done{false};
    const bool m_detect_deadlock;
    const reactor_kind m_reactor_kind;
};

/// Records that run()'s main task finished.
void main_task_done() noexcept;

/// Removes a finished task from the registry of the running runtime.
void unregister_task(task_header* t) noexcept;

} // namespace weft::detail
