// The work-stealing scheduler: workers, their queues, parking.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <ostream>
#include <source_location>
#include <string>
#include <thread>
#include <vector>

#include <weft/detail/config.hpp>
#include <weft/detail/host.hpp>
#include <weft/detail/spinlock.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/runtime.hpp>

#include "../reactor/reactor.hpp"
#include "../time/timer_heap.hpp"
#include "global_queue.hpp"
#include "local_queue.hpp"

namespace weft::detail {

class scheduler;

/// A list of live tasks, one per worker plus one for other threads.
///
/// A worker's own shard (tasks it spawned) is changed by that worker alone
/// and without a lock: the spawn and the end of a task that ends where it
/// began cost no atomic read-modify-write. A task that ends on another
/// worker is pushed on m_exits instead, and the owner unlinks it at its
/// next scheduling round or spawn (the task's block memory lives on until
/// then; see root_base::k_kept). While the owner is parked (m_away), nothing
/// is left waiting for it: other workers unlink their exits under m_lock.
/// Walkers (dumps, the deadlock report, stop) hold the shard: they take
/// m_lock, set m_blocked and then wait for m_owner_busy to clear; the owner
/// sets m_owner_busy around each change and, if it then finds m_blocked
/// set, makes its change under m_lock instead. That is Dekker's handshake;
/// its store-load order comes from an asymmetric fence (membarrier, paid
/// by the rare walker) where the kernel has one, else from a fence on the
/// owner's side (lib/sched/asym_fence.hpp).
///
/// The shard for other threads (the last) is changed under m_lock only.
///
/// Invariants: m_head and the tasks' m_reg_prev/m_reg_next are written by
/// the owner between owner_enter and owner_leave, or under m_lock with
/// m_blocked set or by the last shard's users; m_user counts the user tasks
/// in the list, written likewise; m_user_exits counts those among them on
/// m_exits (added to by the pusher, taken off by the owner's drain).
struct alignas(cache_line) registry_shard {
    spinlock m_lock;
    std::atomic<bool> m_blocked{false};
    /// The owner is parked: others change the list under m_lock meanwhile
    /// (written by the owner under m_lock).
    std::atomic<bool> m_away{false};
    std::atomic<std::uint32_t> m_owner_busy{0};
    task_header* m_head = nullptr;
    std::atomic<std::size_t> m_user{0};
    /// Tasks of this shard that ended on another worker, linked by m_next.
    alignas(cache_line) std::atomic<task_header*> m_exits{nullptr};
    std::atomic<std::size_t> m_user_exits{0};
};

/// One worker thread and its run queue.
///
/// Invariants:
///   m_runnext and m_runq are pushed only by the owning thread; anyone may
///   take from them (thieves CAS; the owner claims m_runnext with plain
///   stores, in a handshake with thieves: take_runnext).
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
    /// The owner is claiming m_runnext without a read-modify-write, and
    /// thieves are about to take it: see take_runnext.
    std::atomic<bool> m_claiming{false};
    std::atomic<std::uint32_t> m_thieves{0};

    // Parking word: k_awake, k_notified (a wake is pending), k_sleeping (in
    // the reactor wait).
    alignas(cache_line) std::atomic<std::uint32_t> m_park{0};
    std::unique_ptr<reactor> m_reactor;
    /// Why this worker could not create its reactor (it then ends at once);
    /// written before it counts down scheduler::m_reactors_made.
    std::exception_ptr m_start_error;

    /// Timers armed by tasks running on this worker.
    timer_heap m_timers;
    std::atomic<bool> m_spinning{false};

    worker* m_idle_next = nullptr;
    std::atomic<bool> m_idle{false}; // written under scheduler::m_lock

    /// Scheduling rounds of this worker (find_runnable's loop): written by
    /// the owner only; thieves read it to tell a busy worker from one that
    /// runs a long task (see steal).
    std::atomic<std::uint32_t> m_tick{0};

    // Owner-only state.
    std::uint32_t m_streak = 0; // consecutive runnext picks
    std::uint64_t m_rng = 0;
    bool m_watching = false; // holds scheduler::m_watcher
    /// The task this worker is running, nullptr between tasks. Stored
    /// before the worker looks at scheduler::m_attention and cleared
    /// (release) after the task suspends: see scheduler::stop_world.
    std::atomic<task_header*> m_slice{nullptr};
    /// The task this worker took and holds while stopped at a safepoint.
    std::atomic<task_header*> m_held{nullptr};
    task_header* m_steal_buf[local_queue::k_cap / 2];

    std::thread m_thread;

    static constexpr std::uint32_t k_awake = 0;
    static constexpr std::uint32_t k_notified = 1;
    static constexpr std::uint32_t k_sleeping = 2;

    void loop() noexcept;
    task_header* find_runnable() noexcept;
    [[gnu::noinline]] task_header* find_runnable_slow() noexcept;
    task_header* steal() noexcept;
    void put_runnext(task_header* t) noexcept;
    /// Owner only: puts t in the runnext slot and returns what it displaced
    /// (nullptr: the slot was empty, and no fence was issued).
    task_header* swap_runnext(task_header* t) noexcept;
    task_header* take_runnext() noexcept;
    /// A thief takes `seen` from this worker's runnext slot, if still there.
    task_header* steal_runnext(task_header* seen) noexcept;
    void push_back(task_header* t, bool wake) noexcept;
    void reset_spinning() noexcept;
    void notify() noexcept;
    /// True if woken by notify().
    bool wait_notified(std::int64_t deadline) noexcept;
    /// Sleeps until notified, a timer is due, I/O completes or recheck_at.
    void park(std::int64_t recheck_at = INT64_MAX) noexcept;
    void unpark_role() noexcept;
    /// With scheduler::m_lock held: leaves the idle list if on it.
    bool unlist_idle_locked() noexcept;
    /// Fires the due timers of this worker's heap and the foreign one.
    void fire_timers() noexcept;
    [[gnu::noinline]] void fire_due_timers(std::int64_t own, std::int64_t foreign) noexcept;
    std::uint32_t next_random() noexcept;
};

/// Owns the workers of one running runtime.
///
/// Hosted (guest) mode: with a host, there are no workers. Every task is
/// readied and spawned from a thread that is not a worker, so the paths
/// for other threads hand it to m_host->schedule, and the host runs it with
/// run_hosted; timers all go to m_foreign_timers, whose earliest deadline
/// goes to m_host->arm_timer. The workers' own paths never look at m_host.
class scheduler {
public:
    /// `procs` is what workers() reports: the worker count, or in hosted
    /// mode (h non-null, workers 0) the host's thread count.
    scheduler(unsigned workers, bool detect_deadlock, host* h = nullptr, unsigned procs = 0);
    ~scheduler();
    void start();
    /// Stops the workers (after their running task suspends) and destroys
    /// every task that is still alive.
    void stop() noexcept;

    void spawn(task_header* t);
    [[gnu::noinline]] void inherit_context(task_header* t, task_header* cur) noexcept;
    [[gnu::noinline]] void requeue_and_wake(worker* w, task_header* old) noexcept;
    [[gnu::noinline]] void spawn_draining(worker* w, task_header* t) noexcept;
    /// spawn on worker w, once the shard's exits are drained.
    void spawn_here(worker* w, task_header* t) noexcept;
    [[gnu::noinline]] void spawn_outside(task_header* t);
    void ready(task_header* t) noexcept;
    /// Queues tasks[0..n) on the global queue, in order, and wakes a worker.
    void inject(task_header* const* tasks, std::size_t n) noexcept;
    void wakep() noexcept
    {
        // Nobody idle (every worker busy or searching) is the common case
        // of a busy runtime: inline, and the rest out of line.
        if (m_npidle.load(std::memory_order_seq_cst) != 0)
            wake_idle();
    }
    [[gnu::noinline]] void wake_idle() noexcept;

    unsigned workers() const noexcept { return m_procs; }
    std::size_t live_user_tasks() noexcept;
    /// A task ends: unlinks it from the registry and returns true, or,
    /// when it ends on a worker other than the one whose shard holds it
    /// (and that worker is not parked), returns false and leaves it linked,
    /// though no longer counted or dumped: the caller then marks its block
    /// kept and hands it to exit_elsewhere().
    bool unregister_task(task_header* t) noexcept;
    [[gnu::noinline]] bool unregister_slow(task_header* t) noexcept;
    /// Queues t (see unregister_task) for its shard's owner to unlink and
    /// pass to root_base::unlinked().
    void exit_elsewhere(task_header* t) noexcept;

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

    // ---- Hosted mode (see the class comment).
    host* hosted() const noexcept { return m_host; }
    /// Runs t on the calling host thread until it suspends.
    void run_hosted(task_header* t) noexcept;
    /// Fires the due timers; returns the earliest pending deadline.
    std::int64_t fire_hosted_timers() noexcept;

    // ---- Diagnostics.
    //
    // stop_world() asks every worker to stop between two tasks (workers
    // look at m_attention before each task and while idle) and waits for
    // those that are running one, up to a timeout. In hosted mode the host
    // threads inside run_hosted (counted by m_hosted_running) do the same.
    // While the world is stopped no task frame changes, except those of the
    // tasks in `running` (still on a worker that did not stop in time, or
    // the caller itself), so dumps may walk the other tasks' frames.
    //
    // Argument for the worker side's plain stores: a worker stores m_slice
    // and then loads m_attention. stop_world sets k_stop, waits until that
    // store has reached every core (a store buffer drains within
    // microseconds; it waits far longer), and then reads m_slice: a worker
    // it sees idle either stopped or will see k_stop before its next task.
    // Host threads use read-modify-writes instead (m_hosted_running, then
    // a seq_cst load of m_attention), as hosted mode is not the fast path.
    static constexpr std::uint32_t k_stop = 1;      // the world is stopped
    static constexpr std::uint32_t k_dump_wanted = 2; // SIGQUIT: a worker dumps
    std::atomic<std::uint32_t> m_attention{0};
    /// Stops the world (one stopper at a time); `running` gets the tasks
    /// that are still running.
    void stop_world(std::vector<task_header*>& running) noexcept;
    void start_world() noexcept;
    /// A worker found m_attention set: dump (k_dump_wanted) or wait for the
    /// world to start again (k_stop).
    void service_attention() noexcept;
    /// From a signal handler: have a worker dump the tasks to stderr.
    void request_dump() noexcept;
    /// Calls f(task_header*) for every registered task; the world must be
    /// stopped.
    template <class F>
    void for_each_task(F f) noexcept
    {
        for (unsigned i = 0; i <= m_n; ++i) {
            registry_shard& s = m_shards[i];
            hold_shard(s);
            for (task_header* t = s.m_head; t; t = t->m_reg_next)
                if (!t->m_exited.load(std::memory_order_relaxed))
                    f(t);
            unhold_shard(s);
        }
    }
    /// Calls f(task_header*) for every task that is queued to run (run
    /// queues, runnext slots, the global queue, tasks held by stopped
    /// workers); the world must be stopped.
    template <class F>
    void for_each_runnable(F f) noexcept
    {
        for (auto& w : m_workers) {
            if (task_header* t = w->m_runnext.load(std::memory_order_acquire))
                f(t);
            if (task_header* t = w->m_held.load(std::memory_order_acquire))
                f(t);
            w->m_runq.for_each(f);
        }
        std::lock_guard lk(m_lock);
        m_gq.for_each(f);
    }
    std::size_t pending_timers() noexcept;

private:
    friend struct worker;
    std::mutex m_world_lock; // held from stop_world to start_world

    task_header* global_get(worker* w) noexcept;
    bool any_work_visible() const noexcept;
    void register_task(task_header* t, unsigned shard) noexcept;
    /// A walker's hold on a shard (see registry_shard).
    void hold_shard(registry_shard& s) noexcept;
    void unhold_shard(registry_shard& s) noexcept;
    /// Unlinks the tasks that ended elsewhere: by the owner (`owner`), or
    /// by another thread while the owner is away.
    void drain_exits(registry_shard& s, bool owner) noexcept;
    /// Worker `index` parks (away) and comes back: see registry_shard.
    void shard_away(unsigned index) noexcept;
    void shard_back(unsigned index) noexcept;
    /// Called by the last worker to go idle: if nothing can ever wake a
    /// task, report the deadlock and exit like Go does.
    void check_deadlock() noexcept;
    void drop_timers(timer_heap& h) noexcept;
    bool stuck() noexcept;

    unsigned m_n;
    unsigned m_procs;
    host* const m_host; // hosted mode; nullptr with workers
    std::vector<std::unique_ptr<worker>> m_workers;
    std::unique_ptr<registry_shard[]> m_shards; // m_n + 1: the last is for other threads

    // Guards the global queue and the idle list.
    std::mutex m_lock;
    global_queue m_gq;
    std::atomic<std::size_t> m_gq_size{0}; // m_gq.size(), read without the lock
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
    /// An idle worker sleeps with a timeout to look for missed spawns (see
    /// find_runnable); at most one at a time.
    std::atomic<bool> m_rechecking{false};
    std::atomic<bool> m_stopping{false};
    /// Counts down as each worker has made (or failed to make) its reactor.
    std::atomic<unsigned> m_reactors_made{0};
    std::atomic<bool> m_main_done{false};
    /// Hosted mode: host threads inside run_hosted now.
    std::atomic<unsigned> m_hosted_running{0};
    const bool m_detect_deadlock;
    const reactor_kind m_reactor_kind;
};

/// Milliseconds of CLOCK_MONOTONIC_COARSE (wraps after 49 days).
std::uint32_t coarse_ms() noexcept;

/// CLOCK_MONOTONIC_COARSE in nanoseconds: a few nanoseconds to read, never
/// ahead of now_ns() and behind it by at most coarse_lag_ns().
std::int64_t coarse_now_ns() noexcept;
std::int64_t coarse_lag_ns() noexcept;

/// The running scheduler, or nullptr.
scheduler* running_scheduler() noexcept;

/// Serialises runtime start and stop (scheduler.cpp).
extern std::mutex g_run_lock;

/// Calls f(scheduler&) with the running scheduler kept alive (not from a
/// worker: a stop waits for the workers). False when none runs.
template <class F>
bool with_runtime(F f)
{
    std::lock_guard lk(g_run_lock);
    scheduler* s = running_scheduler();
    if (!s)
        return false;
    f(*s);
    return true;
}

/// "function at file:line" (lib/diag/dump.cpp).
std::string describe_location(const std::source_location& where);

/// "created by task N in function at file:line" for t (parts left out when
/// not known; empty when nothing is), as dumps show it.
std::string describe_creator(const task_header* t);

/// Writes the task dump of s (defined in lib/diag/dump.cpp). Called on a
/// worker thread or with the runtime kept alive by the caller.
void dump_tasks_of(scheduler& s, std::ostream& os);

/// Records that run()'s main task finished.
void main_task_done() noexcept;

/// Removes a finished task from the registry of the running runtime: true
/// if done, false if its shard's owner will (scheduler::unregister_task).
bool unregister_task(task_header* t) noexcept;
/// See scheduler::exit_elsewhere.
void exit_elsewhere(task_header* t) noexcept;
/// The registry let go of root task t that ended elsewhere (root.cpp).
void root_unlinked(task_header* t) noexcept;

} // namespace weft::detail
