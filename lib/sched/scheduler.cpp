// The work-stealing scheduler.
//
// Shape (after Go's runtime/proc.go and tokio's multi-threaded scheduler):
//   - each worker owns a 256-slot ring (local_queue) and a runnext slot; a
//     task readied by the running task goes to runnext, so a producer and a
//     consumer that hand values back and forth stay on one core;
//   - a global queue takes wake-ups from other threads and ring overflow; a
//     worker polls it every 61 ticks so it cannot starve;
//   - an idle worker steals half of a random victim's ring;
//   - at most about half of the busy workers search for work at a time
//     (m_nspinning), and a worker is woken only when nobody is searching;
//   - workers park in their reactor (io_uring, else epoll) after a short
//     spin; one of the idle workers, the watcher, sleeps only until the
//     earliest timer deadline of all workers and fires what is due.
//
// Lost wake-ups: a worker going idle publishes itself (idle list, m_npidle),
// stops spinning, issues a full fence and looks at every queue again; a
// producer publishes its task and then looks at m_npidle / m_nspinning
// (wakep). A producer that issues a full fence in between (a spawn's
// exchange into a full runnext slot, a thread outside the pool through
// m_lock) and the idle worker cannot both miss each other. A worker that
// publishes with plain stores (a task into its empty runnext slot or its
// run queue) may go unseen by a sibling going idle at that instant while
// it sees no idle sibling; so while a worker is busy, one idle worker parks
// for at most k_idle_recheck_ns and then looks again.

#include "scheduler.hpp"
#include "asym_fence.hpp"
#include "futex.hpp"
#include "../reactor/epoll/net_poller.hpp"

#include <weft/detail/cancel.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <stdexcept>
#include <string>

#include <sched.h>
#include <sys/prctl.h>
#include <time.h>
#include <signal.h>
#include <cerrno>
#include <iostream>


namespace weft::detail {

namespace {

std::atomic<scheduler*> g_sched{nullptr};
WEFT_TLS worker* t_worker = nullptr;
WEFT_TLS task_header* t_current = nullptr;
// Tasks this host thread ran (hosted mode), for the coarse clock.
WEFT_TLS std::uint32_t t_hosted_ticks = 0;

// Task ids come from a global counter in batches, so spawning does not
// share a cache line between workers.
std::atomic<std::uint64_t> g_next_id{1};
WEFT_TLS std::uint64_t t_id_next = 0;
WEFT_TLS std::uint64_t t_id_end = 0;
constexpr std::uint64_t k_id_batch = 1024;

[[gnu::noinline]] std::uint64_t refill_task_ids() noexcept
{
    t_id_next = g_next_id.fetch_add(k_id_batch, std::memory_order_relaxed);
    t_id_end = t_id_next + k_id_batch;
    return t_id_next++;
}

inline std::uint64_t next_task_id() noexcept
{
    if (WEFT_UNLIKELY(t_id_next == t_id_end))
        return refill_task_ids();
    return t_id_next++;
}

// Registry shard indexes are 16-bit; one shard is for non-worker threads.
constexpr long k_max_workers = 4096;

unsigned default_workers() noexcept
{
    if (const char* env = std::getenv("WEFT_MAXPROCS")) {
        char* end = nullptr;
        long v = std::strtol(env, &end, 10);
        if (end != env && *end == '\0' && v > 0 && v <= k_max_workers)
            return static_cast<unsigned>(v);
    }
    unsigned n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

/// Threads of this process (the num_threads field of /proc/self/stat);
/// a large number when it cannot be read, which disables the caller's check.
unsigned process_threads() noexcept
{
    std::FILE* f = std::fopen("/proc/self/stat", "r");
    if (!f)
        return ~0u;
    char buf[1024];
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    // Fields after the command name, which ends with the last ')'.
    const char* p = std::strrchr(buf, ')');
    if (!p)
        return ~0u;
    // num_threads is field 20; the text after ')' starts at field 3.
    int field = 2;
    for (++p; *p && field < 20; ++p)
        if (*p == ' ')
            ++field;
    return *p ? static_cast<unsigned>(std::strtoul(p, nullptr, 10)) : ~0u;
}

// ThreadSanitizer starts helper threads of its own (one or more, more after
// fork), so thread counting cannot tell them from the program's. Sanitizer
// builds therefore ignore the count and instead require the stuck state to
// last k_deadlock_grace with no activity from outside the workers.
#if defined(WEFT_TSAN)
constexpr bool k_count_threads = false;
#else
constexpr bool k_count_threads = true;
#endif
constexpr std::chrono::milliseconds k_deadlock_grace{1000};

constexpr std::uint32_t k_global_poll_interval = 61;
constexpr std::uint32_t k_clock_interval = 64; // g_coarse_ms updates, in scheduling ticks
constexpr std::uint32_t k_runnext_streak_max = 3;
constexpr int k_steal_rounds = 4;
constexpr int k_park_spins = 256;
// A spinlock waiter's nap: what matters is that the holder's thread runs
// alone meanwhile, long enough to earn a channel lock's bias and use it
// (biased_lock). With 5 us, two workers sharing a channel ran little
// faster than with the exchange on every take (ChanSem 22 ns); with 50 us
// and cheap revocations, 12 ns, about one worker's speed.
constexpr long k_nap_ns = 50'000;
// How long a thief waits to see whether a worker with a runnext task is
// still making progress (see worker::steal).
constexpr long k_runnext_grace_ns = 20'000;
// How long a worker that parks while another one is busy sleeps at most
// before it looks for work again (see scheduler::spawn).
constexpr std::int64_t k_idle_recheck_ns = 1'000'000;
// How long before a timer deadline the watcher stops sleeping and spins:
// about the kernel's wake-up latency on virtual machines.
constexpr std::int64_t k_timer_spin_ns = 60'000;

void nap_for(long ns) noexcept
{
    timespec ts{0, ns};
    ::nanosleep(&ts, nullptr);
}

} // namespace

void os_yield() noexcept { ::sched_yield(); }
void os_nap() noexcept { nap_for(k_nap_ns); }

std::atomic<std::uint32_t> g_coarse_ms{0};

std::int64_t coarse_now_ns() noexcept
{
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t coarse_lag_ns() noexcept
{
    // CLOCK_MONOTONIC_COARSE is CLOCK_MONOTONIC as of the last clock tick:
    // never ahead of it, and behind by at most a tick (its resolution).
    // Twice that leaves room for a late tick.
    static const std::int64_t lag = [] {
        timespec res{};
        if (::clock_getres(CLOCK_MONOTONIC_COARSE, &res) != 0)
            return std::int64_t{20'000'000};
        return 2 * (static_cast<std::int64_t>(res.tv_sec) * 1'000'000'000 + res.tv_nsec);
    }();
    return lag;
}

std::uint32_t coarse_ms() noexcept
{
    return static_cast<std::uint32_t>(static_cast<std::uint64_t>(coarse_now_ns()) / 1'000'000);
}

// ---------------------------------------------------------------- worker

std::uint32_t worker::next_random() noexcept
{
    // xorshift64*
    m_rng ^= m_rng >> 12;
    m_rng ^= m_rng << 25;
    m_rng ^= m_rng >> 27;
    return static_cast<std::uint32_t>((m_rng * 2685821657736338717ULL) >> 32);
}

void worker::notify() noexcept
{
    if (m_park.exchange(k_notified, std::memory_order_acq_rel) == k_sleeping)
        m_reactor->wake();
}

bool worker::wait_notified(std::int64_t deadline) noexcept
{
    // Spinning first catches a wake-up from a busy worker without a sleep
    // in the kernel. With every worker idle (always so with one worker)
    // only a timer, I/O or a thread outside the pool can end the wait, and
    // they come through the reactor: spinning would only burn the CPU.
    const int spins =
        m_sched->m_npidle.load(std::memory_order_relaxed) < m_sched->m_n ? k_park_spins : 0;
    for (int i = 0; i < spins; ++i) {
        if (m_park.load(std::memory_order_acquire) == k_notified)
            goto woken;
        cpu_relax();
    }
    {
        auto expected = k_awake;
        if (m_park.compare_exchange_strong(expected, k_sleeping, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
            // One wait: whatever ended it (a wake-up, the deadline, I/O),
            // the caller looks for work again.
            m_reactor->wait(deadline);
        }
    }
woken:
    return m_park.exchange(k_awake, std::memory_order_acq_rel) == k_notified;
}

void worker::park(std::int64_t recheck_at) noexcept
{
    scheduler& s = *m_sched;
    std::int64_t deadline = INT64_MAX;
    worker* none = nullptr;
    if (m_watching ||
        s.m_watcher.compare_exchange_strong(none, this, std::memory_order_seq_cst)) {
        // Publish the deadline, then look again: a timer armed meanwhile
        // either sees the published deadline and wakes us, or is seen here.
        m_watching = true;
        deadline = s.earliest_timer();
        s.m_poll_until.store(deadline, std::memory_order_seq_cst);
        std::int64_t again = s.earliest_timer();
        if (again < deadline) {
            deadline = again;
            s.m_poll_until.store(deadline, std::memory_order_seq_cst);
        }
    } else if (m_timers.earliest() < s.m_poll_until.load(std::memory_order_seq_cst)) {
        // Our timers are earlier than the watcher's sleep: have it look.
        if (worker* w = s.m_watcher.load(std::memory_order_seq_cst))
            w->notify();
    }
    // The kernel ends a timed sleep tens of microseconds late: sleep until
    // shortly before the deadline and spin through the rest.
    std::int64_t sleep_until = deadline;
    if (deadline != INT64_MAX)
        sleep_until = deadline - k_timer_spin_ns;
    sleep_until = std::min(sleep_until, recheck_at);
    const bool notified = wait_notified(sleep_until);
    if (!notified && deadline != INT64_MAX) {
        std::int64_t now = now_ns();
        if (deadline - now <= k_timer_spin_ns) {
            while (now < deadline && m_park.load(std::memory_order_acquire) != k_notified) {
                cpu_relax();
                now = now_ns();
            }
            m_park.store(k_awake, std::memory_order_release);
        }
    }
    g_coarse_ms.store(coarse_ms(), std::memory_order_relaxed);
    if (m_watching) {
        s.m_poll_until.store(INT64_MIN, std::memory_order_seq_cst);
        s.fire_all_timers();
    }
    // wakep() takes a worker off the idle list before it notifies it; a
    // worker woken otherwise (a deadline, I/O, a watcher poked by a new
    // timer) leaves the list itself. Only this worker sets m_idle, so a
    // false read without the lock is final.
    if (m_idle.load(std::memory_order_relaxed)) {
        std::lock_guard lk(s.m_lock);
        unlist_idle_locked();
    }
}

bool worker::unlist_idle_locked() noexcept
{
    if (!m_idle.load(std::memory_order_relaxed))
        return false;
    scheduler& s = *m_sched;
    worker** pp = &s.m_idle_head;
    while (*pp != this)
        pp = &(*pp)->m_idle_next;
    *pp = m_idle_next;
    m_idle.store(false, std::memory_order_relaxed);
    s.m_npidle.fetch_sub(1, std::memory_order_seq_cst);
    return true;
}

void worker::unpark_role() noexcept
{
    // About to run a task: stop watching timers, and if some are pending,
    // get an idle worker to watch them instead.
    scheduler& s = *m_sched;
    m_watching = false;
    s.m_poll_until.store(INT64_MAX, std::memory_order_seq_cst);
    s.m_watcher.store(nullptr, std::memory_order_seq_cst);
    if (s.earliest_timer() != INT64_MAX)
        s.wakep();
}

inline void worker::fire_timers() noexcept
{
    // Called on every scheduling round: the common case of no timer at all
    // stays inline and out of the way of the register allocation.
    std::int64_t own = m_timers.earliest();
    std::int64_t foreign = m_sched->m_foreign_timers.earliest();
    if (WEFT_UNLIKELY(own != INT64_MAX || foreign != INT64_MAX))
        fire_due_timers(own, foreign);
}

void worker::fire_due_timers(std::int64_t own, std::int64_t foreign) noexcept
{
    scheduler& s = *m_sched;
    // Armed timers are mostly far off (I/O timeouts): the coarse clock
    // costs a tenth of the precise one and settles that.
    if (std::min(own, foreign) > coarse_now_ns() + coarse_lag_ns())
        return;
    std::int64_t now = now_ns();
    if (own <= now)
        m_timers.fire_due(now);
    if (foreign <= now)
        s.m_foreign_timers.fire_due(now);
}

void worker::reset_spinning() noexcept
{
    // The flag and its count change together, by whoever flips the flag
    // (see wake_idle): a waker may set it while this worker runs.
    if (!m_spinning.exchange(false, std::memory_order_relaxed))
        return;
    // The last searcher found work: there may be more, so let another
    // worker search (Go's resetspinning).
    if (m_sched->m_nspinning.fetch_sub(1, std::memory_order_seq_cst) == 1)
        m_sched->wakep();
}

void worker::push_back(task_header* t, bool wake) noexcept
{
    if (WEFT_UNLIKELY(!m_runq.push(t))) {
        // Full: move the older half plus t to the global queue in one batch.
        task_header* batch[local_queue::k_cap / 2 + 1];
        if (std::uint32_t n = m_runq.take_half(batch)) {
            batch[n] = t;
            m_sched->inject(batch, n + 1);
            return;
        }
        // Thieves made room meanwhile.
        if (!m_runq.push(t)) {
            m_sched->inject(&t, 1);
            return;
        }
    }
    if (wake)
        m_sched->wakep();
}

void worker::put_runnext(task_header* t) noexcept
{
    // A sibling is woken only when this leaves stealable work behind: the
    // readied task itself usually runs on this worker as soon as the waker
    // suspends. Idle siblings that are searching anyway may still take it
    // (steal), so a long-running waker cannot strand it.
    if (auto old = swap_runnext(t))
        push_back(old, true);
}

task_header* worker::swap_runnext(task_header* t) noexcept
{
    // Only this worker fills the slot and thieves only empty it, so an
    // empty slot stays empty until this store: no read-modify-write needed
    // (the common case: the running task took the slot's last one).
    if (!m_runnext.load(std::memory_order_relaxed)) {
        m_runnext.store(t, std::memory_order_release);
        return nullptr;
    }
    return m_runnext.exchange(t, std::memory_order_acq_rel);
}

task_header* worker::take_runnext() noexcept
{
    // Only this worker fills the slot, so what it loads stays there unless
    // a thief takes it. Thieves are rare (see steal): the handshake with
    // them (m_claiming against m_thieves, asymmetric fences) lets the
    // common claim go without a read-modify-write.
    //
    // The slot is read again after the handshake: a thief may have taken
    // what was there before it, and finished, since.
    if (!m_runnext.load(std::memory_order_relaxed))
        return nullptr;
    m_claiming.store(true, std::memory_order_relaxed);
    light_fence();
    if (WEFT_UNLIKELY(m_thieves.load(std::memory_order_acquire) != 0)) {
        m_claiming.store(false, std::memory_order_relaxed);
        return m_runnext.exchange(nullptr, std::memory_order_acquire);
    }
    task_header* t = m_runnext.load(std::memory_order_acquire);
    if (t)
        m_runnext.store(nullptr, std::memory_order_relaxed);
    m_claiming.store(false, std::memory_order_release);
    return t;
}

task_header* worker::steal_runnext(task_header* seen) noexcept
{
    // The thief's side of take_runnext's handshake: once the owner is known
    // not to be claiming (and to see m_thieves if it starts), its slot is
    // ours to compare and swap. A task found there under the same address
    // may be a later one (frames are recycled): it is runnable all the same.
    m_thieves.fetch_add(1, std::memory_order_relaxed);
    heavy_fence();
    task_header* got = nullptr;
    if (!m_claiming.load(std::memory_order_acquire) &&
        m_runnext.compare_exchange_strong(seen, nullptr, std::memory_order_acq_rel))
        got = seen;
    m_thieves.fetch_sub(1, std::memory_order_release);
    return got;
}

task_header* worker::steal() noexcept
{
    auto& ws = m_sched->m_workers;
    const unsigned n = m_sched->m_n;
    for (int round = 0; round < k_steal_rounds; ++round) {
        const bool last_round = round == k_steal_rounds - 1;
        unsigned start = next_random() % n;
        for (unsigned i = 0; i < n; ++i) {
            worker* v = ws[(start + i) % n].get();
            if (v == this)
                continue;
            if (m_sched->stopping())
                return nullptr;
            if (auto got = v->m_runq.grab(m_steal_buf)) {
                for (std::uint32_t k = 1; k < got; ++k)
                    push_back(m_steal_buf[k], false);
                return m_steal_buf[0];
            }
            if (auto seen = last_round ? v->m_runnext.load(std::memory_order_relaxed) : nullptr) {
                // The victim is likely about to run its runnext itself;
                // take it only if the victim has not gone on to another
                // scheduling round after a nap. A round passed means it is
                // making progress (a task that spawns the next, a
                // ping-pong): leave the chain on its worker. The round
                // count, not the task's address, tells: frames are
                // recycled, so a chain's runnext takes the same few
                // addresses over and over. The nap (in the kernel, like
                // Go's usleep(3) here) keeps a searching worker from
                // pulling the victim's cache lines every microsecond: with
                // a 64-pause spin instead, a worker spawning a chain of
                // tasks ran a third slower. It lasts k_runnext_grace_ns:
                // with 5 us, a victim the OS had set aside for a moment
                // lost its chain to the thief often enough to make the
                // chain a tenth slower (every move costs cache misses).
                const std::uint32_t tick = v->m_tick.load(std::memory_order_relaxed);
                nap_for(k_runnext_grace_ns);
                if (v->m_tick.load(std::memory_order_relaxed) != tick)
                    continue;
                if (auto t = v->steal_runnext(seen))
                    return t;
            }
        }
    }
    return nullptr;
}

inline task_header* worker::find_runnable() noexcept
{
    // The common round, inline in loop(): a task waits in the runnext slot
    // and none of the round's other duties is due (the same checks, in the
    // same order, as find_runnable_slow's first round).
    scheduler& s = *m_sched;
    const std::uint32_t tick = m_tick.load(std::memory_order_relaxed) + 1;
    if (WEFT_LIKELY((m_streak < k_runnext_streak_max || m_runq.empty()) && tick % k_clock_interval != 0 &&
                    tick % k_global_poll_interval != 0 && !s.stopping() &&
                    !s.m_attention.load(std::memory_order_acquire) &&
                    !s.m_shards[m_index].m_exits.load(std::memory_order_relaxed) &&
                    m_timers.earliest() == INT64_MAX && s.m_foreign_timers.earliest() == INT64_MAX)) {
        if (auto t = take_runnext()) {
            m_tick.store(tick, std::memory_order_relaxed);
            ++m_streak;
            return t;
        }
    }
    return find_runnable_slow();
}

task_header* worker::find_runnable_slow() noexcept
{
    scheduler& s = *m_sched;
    for (;;) {
        if (s.stopping())
            return nullptr;
        if (WEFT_UNLIKELY(s.m_attention.load(std::memory_order_acquire)))
            s.service_attention();
        if (WEFT_UNLIKELY(s.m_shards[m_index].m_exits.load(std::memory_order_relaxed)))
            s.drain_exits(s.m_shards[m_index], true);
        const std::uint32_t tick = m_tick.load(std::memory_order_relaxed) + 1;
        m_tick.store(tick, std::memory_order_relaxed);
        if (tick % k_clock_interval == 0)
            g_coarse_ms.store(coarse_ms(), std::memory_order_relaxed);
        fire_timers();
        if (tick % k_global_poll_interval == 0) {
            // Busy for a while: let I/O completions in (and submit what
            // the tasks since the last poll queued).
            if (m_reactor->io_busy())
                m_reactor->poll();
            if (s.m_gq_size.load(std::memory_order_relaxed) != 0) {
                if (auto t = s.global_get(this))
                    return t;
            }
        }
        if (m_streak < k_runnext_streak_max || m_runq.empty()) {
            if (auto t = take_runnext()) {
                ++m_streak;
                return t;
            }
        }
        m_streak = 0;
        if (auto t = m_runq.pop())
            return t;
        if (auto t = take_runnext())
            return t;
        if (s.m_gq_size.load(std::memory_order_relaxed) != 0) {
            if (auto t = s.global_get(this))
                return t;
        }
        // Out of local work: submit this turn's I/O in one go and take the
        // completions that are in (Go's findrunnable polls the network
        // before stealing, too).
        if (m_reactor->io_busy()) {
            m_reactor->poll();
            if (auto t = take_runnext())
                return t;
            if (auto t = m_runq.pop())
                return t;
        }

        // Search other workers, unless enough are searching already.
        if (!m_spinning.load(std::memory_order_relaxed)) {
            unsigned busy = s.m_n - s.m_npidle.load(std::memory_order_seq_cst);
            bool expected = false;
            // A compare-exchange: a waker that took this worker off the
            // idle list may have set the flag (and counted it) meanwhile.
            if (2 * s.m_nspinning.load(std::memory_order_seq_cst) < busy &&
                m_spinning.compare_exchange_strong(expected, true, std::memory_order_relaxed))
                s.m_nspinning.fetch_add(1, std::memory_order_seq_cst);
        }
        if (m_spinning.load(std::memory_order_relaxed) && s.m_n > 1) {
            if (auto t = steal())
                return t;
        }

        // Park.
        task_header* from_global = nullptr;
        {
            std::lock_guard lk(s.m_lock);
            if (s.stopping())
                return nullptr;
            if (s.m_gq.pop(&from_global, 1) != 0) {
                s.m_gq_size.fetch_sub(1, std::memory_order_relaxed);
            } else {
                m_idle.store(true, std::memory_order_relaxed);
                m_idle_next = s.m_idle_head;
                s.m_idle_head = this;
                s.m_npidle.fetch_add(1, std::memory_order_seq_cst);
            }
        }
        if (from_global)
            return from_global;
        if (m_spinning.exchange(false, std::memory_order_relaxed))
            s.m_nspinning.fetch_sub(1, std::memory_order_seq_cst);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (s.any_work_visible()) {
            bool unlisted = false;
            {
                // Take ourselves off the idle list and search again.
                std::lock_guard lk(s.m_lock);
                unlisted = unlist_idle_locked();
            }
            if (unlisted) {
                if (!m_spinning.exchange(true, std::memory_order_relaxed))
                    s.m_nspinning.fetch_add(1, std::memory_order_seq_cst);
                continue;
            }
            // Somebody already took us off the list and is notifying us.
        } else if (s.m_detect_deadlock &&
                   s.m_npidle.load(std::memory_order_seq_cst) == s.m_n) {
            s.check_deadlock();
        }
        // While another worker runs, it may spawn a task this search
        // missed without seeing this worker idle (see scheduler::spawn):
        // one idle worker at a time (the rechecker) looks again after
        // k_idle_recheck_ns at the latest, and takes such a task from the
        // spawner's runnext slot (steal). One is enough: whoever it is
        // finds the task, and a rechecker woken early for other work
        // searches again before it parks. With every worker idle, only
        // timers, I/O and other threads bring work, and they wake a worker.
        bool recheck = false;
        if (s.m_npidle.load(std::memory_order_relaxed) < s.m_n &&
            !s.m_rechecking.load(std::memory_order_relaxed))
            recheck = !s.m_rechecking.exchange(true, std::memory_order_relaxed);
        s.shard_away(m_index);
        park(recheck ? now_ns() + k_idle_recheck_ns : INT64_MAX);
        s.shard_back(m_index);
        if (recheck)
            s.m_rechecking.store(false, std::memory_order_relaxed);
    }
}

void worker::loop() noexcept
{
    t_worker = this;
    // Timer deadlines are the reactor's timeouts: without this the kernel
    // may let a sleep run 50 us late (the default timer slack).
    ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    try {
        m_reactor = make_reactor(m_sched->m_reactor_kind);
    } catch (...) {
        m_start_error = std::current_exception(); // scheduler::start reports it
    }
    m_sched->m_reactors_made.fetch_add(1, std::memory_order_release);
    if (!m_reactor)
        return;
    while (task_header* t = find_runnable()) {
        if (WEFT_UNLIKELY(m_watching))
            unpark_role();
        if (m_spinning.load(std::memory_order_relaxed))
            reset_spinning();
        m_slice.store(t, std::memory_order_relaxed);
        std::atomic_signal_fence(std::memory_order_seq_cst); // see stop_world
        while (WEFT_UNLIKELY(m_sched->m_attention.load(std::memory_order_acquire))) {
            m_held.store(t, std::memory_order_relaxed);
            m_slice.store(nullptr, std::memory_order_release);
            m_sched->service_attention();
            m_held.store(nullptr, std::memory_order_relaxed);
            m_slice.store(t, std::memory_order_relaxed);
            std::atomic_signal_fence(std::memory_order_seq_cst);
        }
        // Running now: no longer waiting for anything (see note_wait).
#if !defined(WEFT_NO_DIAG_BOOKKEEPING)
        t->m_wait.store(nullptr, std::memory_order_relaxed);
#endif
        t_current = t;
        t->m_resume.resume();
        // Between tasks no task is current: timers fired and I/O delivered
        // from here on (which may spawn) must not see a finished one.
        t_current = nullptr;
        m_slice.store(nullptr, std::memory_order_release);
    }
    if (m_watching) {
        m_watching = false;
        m_sched->m_watcher.store(nullptr, std::memory_order_seq_cst);
    }
    // The tasks still waiting for I/O are destroyed after the workers
    // stop: the kernel must be done with their buffers first.
    m_reactor->quiesce();
    t_current = nullptr;
    t_worker = nullptr;
}

// ------------------------------------------------------------- scheduler

scheduler::scheduler(unsigned n, bool detect_deadlock, host* h, unsigned procs)
    : m_n(n), m_procs(procs ? procs : n), m_host(h), m_shards(new registry_shard[n + 1]),
      m_detect_deadlock(detect_deadlock && !h),
      // A hosted runtime has no reactors: do not probe for io_uring.
      m_reactor_kind(h ? reactor_kind::epoll : process_reactor_kind())
{
    setup_asymmetric_fence();
    std::uint64_t seed = 0x9e3779b97f4a7c15ULL ^ reinterpret_cast<std::uintptr_t>(this);
    for (unsigned i = 0; i < n; ++i) {
        auto w = std::make_unique<worker>();
        w->m_sched = this;
        w->m_index = i;
        seed += 0x9e3779b97f4a7c15ULL;
        w->m_rng = seed | 1;
        m_workers.push_back(std::move(w));
    }
}

scheduler::~scheduler() = default;

void scheduler::start()
{
    for (auto& w : m_workers) {
        worker* p = w.get();
        p->m_thread = std::thread([p] { p->loop(); });
    }
    // Every worker makes its reactor on its own thread (an io_uring ring
    // belongs to its submitter). Wait for them, so that a failure (out of
    // descriptors, locked memory) is an exception of run() rather than a
    // worker dying later.
    spin_until([this] { return m_reactors_made.load(std::memory_order_acquire) == m_n; });
    for (auto& w : m_workers)
        if (w->m_start_error) {
            auto e = w->m_start_error;
            stop();
            std::rethrow_exception(e);
        }
}

bool scheduler::any_work_visible() const noexcept
{
    if (m_gq_size.load(std::memory_order_seq_cst) != 0)
        return true;
    for (auto& w : m_workers) {
        if (!w->m_runq.empty() || w->m_runnext.load(std::memory_order_seq_cst))
            return true;
    }
    return false;
}

void scheduler::wake_idle() noexcept
{
    if (stopping())
        return;
    unsigned zero = 0;
    if (!m_nspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst))
        return;
    worker* w = nullptr;
    {
        std::lock_guard lk(m_lock);
        w = m_idle_head;
        if (w) {
            m_idle_head = w->m_idle_next;
            w->m_idle.store(false, std::memory_order_relaxed);
            m_npidle.fetch_sub(1, std::memory_order_seq_cst);
        }
    }
    if (!w) {
        m_nspinning.fetch_sub(1, std::memory_order_seq_cst);
        return;
    }
    // w may be running already (woken by I/O or a deadline before we took
    // it off the list) and have made itself a searcher meanwhile: then its
    // flag carries its own count and ours goes back. A plain store here
    // could meet w's own check-then-set and count one searcher twice; the
    // count then never came back to zero, and with every worker idle no
    // wakep woke anybody again (a task readied from outside the workers
    // waited forever in the global queue).
    if (w->m_spinning.exchange(true, std::memory_order_relaxed))
        m_nspinning.fetch_sub(1, std::memory_order_seq_cst);
    w->notify();
}

timer_heap& scheduler::arm_heap() noexcept
{
    worker* w = t_worker;
    if (w && w->m_sched == this)
        return w->m_timers;
    return m_foreign_timers;
}

void scheduler::timer_armed(timer_heap& heap, std::int64_t when) noexcept
{
    // A running worker checks its own heap every time it looks for work.
    if (worker* w = t_worker; w && &heap == &w->m_timers)
        return;
    if (m_host) {
        m_host->arm_timer(when);
        return;
    }
    // Orders the heap's new earliest deadline before the read of the
    // watcher's: the watcher stores its deadline and then reads the heaps.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (when >= m_poll_until.load(std::memory_order_seq_cst))
        return;
    if (worker* w = m_watcher.load(std::memory_order_seq_cst))
        w->notify();
    else
        wakep();
}

std::int64_t scheduler::earliest_timer() const noexcept
{
    std::int64_t e = m_foreign_timers.earliest();
    for (auto& w : m_workers) {
        std::int64_t x = w->m_timers.earliest();
        if (x < e)
            e = x;
    }
    return e;
}

void scheduler::fire_all_timers() noexcept
{
    std::int64_t now = now_ns();
    m_foreign_timers.fire_due(now);
    for (auto& w : m_workers)
        w->m_timers.fire_due(now);
}

void scheduler::inject(task_header* const* tasks, std::size_t n) noexcept
{
    {
        std::lock_guard lk(m_lock);
        m_gq.push(tasks, n);
        m_gq_size.fetch_add(n, std::memory_order_seq_cst);
    }
    wakep();
}

task_header* scheduler::global_get(worker* w) noexcept
{
    task_header* batch[local_queue::k_cap / 2];
    std::size_t n;
    {
        std::lock_guard lk(m_lock);
        std::size_t size = m_gq.size();
        if (size == 0)
            return nullptr;
        n = size / m_n + 1;
        if (n > local_queue::k_cap / 2)
            n = local_queue::k_cap / 2;
        n = m_gq.pop(batch, n);
        m_gq_size.fetch_sub(n, std::memory_order_relaxed);
    }
    // Pushed outside the lock: a full ring spills back into the global queue.
    for (std::size_t i = 1; i < n; ++i)
        w->push_back(batch[i], false);
    return batch[0];
}

// ------------------------------------------------------------- registry
//
// See registry_shard. The owner's side of the handshake is owner_enter /
// owner_leave; the walker's is hold_shard / unhold_shard.

namespace {

/// The owner starts a change of its shard; false: a walker holds it, so
/// the change is to be made under s.m_lock.
bool owner_enter(registry_shard& s) noexcept
{
    s.m_owner_busy.store(1, std::memory_order_relaxed);
    light_fence();
    if (WEFT_LIKELY(!s.m_blocked.load(std::memory_order_acquire)))
        return true;
    s.m_owner_busy.store(0, std::memory_order_release);
    return false;
}

void owner_leave(registry_shard& s) noexcept { s.m_owner_busy.store(0, std::memory_order_release); }

/// owner_enter for an owner that may be parked (timers fire and I/O
/// completes in park): away, it uses the lock like everybody else.
bool owner_fast(registry_shard& s) noexcept
{
    return !s.m_away.load(std::memory_order_relaxed) && owner_enter(s);
}

void reg_link(registry_shard& s, task_header* t) noexcept
{
    t->m_reg_prev = nullptr;
    t->m_reg_next = s.m_head;
    if (s.m_head)
        s.m_head->m_reg_prev = t;
    s.m_head = t;
    if (t->m_user)
        s.m_user.store(s.m_user.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void reg_unlink(registry_shard& s, task_header* t) noexcept
{
    if (t->m_reg_prev)
        t->m_reg_prev->m_reg_next = t->m_reg_next;
    else
        s.m_head = t->m_reg_next;
    if (t->m_reg_next)
        t->m_reg_next->m_reg_prev = t->m_reg_prev;
    t->m_reg_prev = t->m_reg_next = nullptr;
    if (t->m_user)
        s.m_user.store(s.m_user.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

/// True if the calling thread is the worker that owns shard `index` of s.
bool owns_shard(const scheduler* s, unsigned index) noexcept
{
    worker* w = t_worker;
    return w && w->m_sched == s && w->m_index == index;
}

} // namespace

// The owner's paths of register_task and unregister_task call nothing but
// in tail position (they save no registers); the rest is out of line.

namespace {

[[gnu::noinline]] void reg_link_locked(registry_shard& s, task_header* t) noexcept
{
    spin_guard g(s.m_lock);
    reg_link(s, t);
}

/// Links t into s, a worker's shard, from its owner.
inline void reg_link_own(registry_shard& s, task_header* t) noexcept
{
    if (WEFT_LIKELY(owner_fast(s))) {
        reg_link(s, t);
        owner_leave(s);
        return;
    }
    reg_link_locked(s, t);
}

} // namespace

inline void scheduler::register_task(task_header* t, unsigned shard) noexcept
{
    auto& s = m_shards[shard];
    t->m_shard = static_cast<std::uint16_t>(shard);
    if (WEFT_LIKELY(shard != m_n))
        reg_link_own(s, t);
    else
        reg_link_locked(s, t);
}

bool scheduler::unregister_task(task_header* t) noexcept
{
    const unsigned shard = t->m_shard;
    auto& s = m_shards[shard];
    if (WEFT_LIKELY(shard != m_n && owns_shard(this, shard) && owner_fast(s))) {
        reg_unlink(s, t);
        owner_leave(s);
        return true;
    }
    return unregister_slow(t);
}

bool scheduler::unregister_slow(task_header* t) noexcept
{
    const unsigned shard = t->m_shard;
    auto& s = m_shards[shard];
    if (shard != m_n && !owns_shard(this, shard)) {
        // Another worker's task: its owner unlinks it, unless parked.
        if (s.m_away.load(std::memory_order_seq_cst)) {
            spin_guard g(s.m_lock);
            if (s.m_away.load(std::memory_order_relaxed)) {
                reg_unlink(s, t);
                return true;
            }
        }
        // Gone from the counts and dumps now, before its joiner wakes.
        t->m_exited.store(true, std::memory_order_relaxed);
        if (t->m_user)
            s.m_user_exits.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    spin_guard g(s.m_lock);
    reg_unlink(s, t);
    return true;
}

void scheduler::exit_elsewhere(task_header* t) noexcept
{
    auto& s = m_shards[t->m_shard];
    task_header* head = s.m_exits.load(std::memory_order_relaxed);
    do {
        t->m_next = head;
    } while (!s.m_exits.compare_exchange_weak(head, t, std::memory_order_seq_cst,
                                              std::memory_order_relaxed));
    // The owner parks by setting m_away and then draining; this pushed and
    // then looks at m_away (all seq_cst): one of the two drains t.
    if (s.m_away.load(std::memory_order_seq_cst))
        drain_exits(s, false);
}

void scheduler::drain_exits(registry_shard& s, bool owner) noexcept
{
    task_header* first = nullptr;
    std::size_t users = 0;
    auto unlink_all = [&] {
        first = s.m_exits.exchange(nullptr, std::memory_order_seq_cst);
        for (task_header* t = first; t; t = t->m_next) {
            users += t->m_user;
            reg_unlink(s, t);
        }
    };
    if (owner && owner_fast(s)) {
        unlink_all();
        owner_leave(s);
    } else {
        spin_guard g(s.m_lock);
        if (!owner && !s.m_away.load(std::memory_order_relaxed))
            return; // the owner is back and drains them itself
        unlink_all();
    }
    if (users)
        s.m_user_exits.fetch_sub(users, std::memory_order_relaxed);
    // Outside the lock; the blocks' contents ended with their tasks (or end
    // with their handles), so this frees memory at most.
    for (task_header* t = first; t;) {
        task_header* next = t->m_next;
        root_unlinked(t);
        t = next;
    }
}

void scheduler::shard_away(unsigned index) noexcept
{
    auto& s = m_shards[index];
    {
        spin_guard g(s.m_lock);
        s.m_away.store(true, std::memory_order_seq_cst);
    }
    if (s.m_exits.load(std::memory_order_seq_cst))
        drain_exits(s, true);
}

void scheduler::shard_back(unsigned index) noexcept
{
    auto& s = m_shards[index];
    spin_guard g(s.m_lock);
    s.m_away.store(false, std::memory_order_relaxed);
}

void scheduler::hold_shard(registry_shard& s) noexcept
{
    s.m_lock.lock();
    if (&s == &m_shards[m_n])
        return;
    s.m_blocked.store(true, std::memory_order_relaxed);
    heavy_fence();
    spin_until([&] { return s.m_owner_busy.load(std::memory_order_acquire) == 0; });
}

void scheduler::unhold_shard(registry_shard& s) noexcept
{
    s.m_blocked.store(false, std::memory_order_release);
    s.m_lock.unlock();
}

std::size_t scheduler::live_user_tasks() noexcept
{
    // The lists first, then the exits pending in them: a drain takes a task
    // off m_user before m_user_exits, so a drain that runs meanwhile makes
    // the count high, not low. (A count made while tasks start and end is
    // approximate anyway; once the workers are idle it is exact.)
    std::int64_t n = 0;
    for (unsigned i = 0; i < m_n; ++i)
        n += static_cast<std::int64_t>(m_shards[i].m_user.load(std::memory_order_acquire));
    {
        spin_guard g(m_shards[m_n].m_lock);
        n += static_cast<std::int64_t>(m_shards[m_n].m_user.load(std::memory_order_relaxed));
    }
    for (unsigned i = 0; i < m_n; ++i)
        n -= static_cast<std::int64_t>(m_shards[i].m_user_exits.load(std::memory_order_acquire));
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

void scheduler::spawn(task_header* t)
{
    // The common case (a task spawned by a task, on a worker, into a free
    // runnext slot) calls nothing but in tail position; the rest is in
    // the out-of-line helpers below.
    t->m_id = next_task_id();
    task_header* cur = t_current;
    if (cur) {
        t->m_parent = cur->m_id;
        // go(f) runs f in the spawner's context.
        if (!t->m_ctx_given && cur->m_ctx)
            inherit_context(t, cur);
    }
    worker* w = t_worker;
    if (WEFT_UNLIKELY(!w || w->m_sched != this))
        return spawn_outside(t);
    if (WEFT_UNLIKELY(m_shards[w->m_index].m_exits.load(std::memory_order_relaxed) != nullptr))
        return spawn_draining(w, t);
    spawn_here(w, t);
}

inline void scheduler::spawn_here(worker* w, task_header* t) noexcept
{
    register_task(t, w->m_index);
    // Like Go's newproc: the new task runs next on this worker, and an
    // idle sibling is woken to pick up whatever that leaves behind, or
    // the new task itself if this one goes on running (fork and join).
    //
    // An empty slot is filled with a plain store (swap_runnext).
    // Without the exchange's full fence before wakep's look at the
    // idle count, a sibling going idle at this instant may miss the
    // task while this worker misses the sibling (see the top of this
    // file); the sibling then looks again within k_idle_recheck_ns (or
    // another idle worker does), since this worker is busy, so a
    // spawner that goes on running delays its task by about that at
    // most.
    // Spawning a chain of tasks took an eighth longer with the exchange.
    if (auto old = w->swap_runnext(t))
        return requeue_and_wake(w, old);
    wakep();
}

void scheduler::inherit_context(task_header* t, task_header* cur) noexcept
{
    cur->m_ctx->acquire();
    t->m_ctx = cur->m_ctx;
}

void scheduler::requeue_and_wake(worker* w, task_header* old) noexcept
{
    w->push_back(old, false);
    wakep();
}

void scheduler::spawn_draining(worker* w, task_header* t) noexcept
{
    // A task that spawns many in one go keeps its worker from the
    // scheduling rounds that free the blocks of tasks ended elsewhere:
    // free them here too, so the new tasks reuse them.
    drain_exits(m_shards[w->m_index], true);
    spawn_here(w, t);
}

void scheduler::spawn_outside(task_header* t)
{
    if (m_host) {
        register_task(t, m_n);
        m_host->schedule(t);
        return;
    }
    // Between registering and queueing, the task is live but invisible
    // to the deadlock check: count this thread as a waker meanwhile.
    m_external.fetch_add(1, std::memory_order_seq_cst);
    m_foreign_activity.fetch_add(1, std::memory_order_relaxed);
    register_task(t, m_n);
    inject(&t, 1);
    external_leave();
}

void scheduler::ready(task_header* t) noexcept
{
    worker* w = t_worker;
    if (w && w->m_sched == this) {
        w->put_runnext(t);
    } else if (m_host) {
        m_host->schedule(t);
    } else {
        m_foreign_activity.fetch_add(1, std::memory_order_relaxed);
        inject(&t, 1);
    }
}

void scheduler::external_leave() noexcept
{
    // A worker that went idle meanwhile skipped its check because of us:
    // wake one, so that it looks again when it goes back to sleep. (Not
    // checked here: this thread is the likeliest to wake a task next.)
    if (m_external.fetch_sub(1, std::memory_order_seq_cst) == 1 && m_detect_deadlock &&
        m_npidle.load(std::memory_order_seq_cst) == m_n)
        wakep();
}

bool scheduler::stuck() noexcept
{
    if (m_main_done.load(std::memory_order_seq_cst) || stopping() ||
        m_external.load(std::memory_order_seq_cst) != 0)
        return false;
    {
        std::lock_guard lk(m_lock);
        if (m_npidle.load(std::memory_order_seq_cst) != m_n || !m_gq.empty())
            return false;
    }
    // A pending timer will wake a task (Go's checkdead looks at timers
    // too), and so will I/O in flight. Every worker is on the idle list, so
    // each has made its reactor (before it listed itself under m_lock).
    for (auto& w : m_workers)
        if (w->m_reactor->pending_io() != 0)
            return false;
    return !any_work_visible() && earliest_timer() == INT64_MAX && live_user_tasks() != 0;
}

void scheduler::check_deadlock() noexcept
{
    if (!stuck())
        return;
    // Nothing is runnable and every worker is idle. Any thread besides the
    // workers and run()'s caller could still wake a task (a plain thread may
    // call block_on or close a channel later), so only a process without
    // such threads is known to be stuck: every live task waits for another.
    if (k_count_threads) {
        if (process_threads() > m_n + 1)
            return;
    } else {
        auto epoch = m_foreign_activity.load(std::memory_order_seq_cst);
        auto deadline = std::chrono::steady_clock::now() + k_deadlock_grace;
        while (std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (!stuck() || m_foreign_activity.load(std::memory_order_seq_cst) != epoch)
                return;
        }
    }
    if (!stuck())
        return;
    std::fflush(stdout); // what the program printed comes before the verdict, as in Go
    std::fputs("fatal error: all tasks are asleep - deadlock!\n\n", stderr);
    std::fflush(stderr);
    dump_tasks_of(*this, std::cerr);
    std::cerr.flush();
    std::_Exit(2);
}

void scheduler::stop_world(std::vector<task_header*>& running) noexcept
{
    m_world_lock.lock();
    m_attention.fetch_or(k_stop, std::memory_order_seq_cst);
    std::this_thread::sleep_for(std::chrono::microseconds(200)); // see the header
    worker* self = t_worker;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    if (m_host) {
        // The caller may itself be a task on a host thread.
        task_header* me = t_current;
        const unsigned mine = me ? 1 : 0;
        while (m_hosted_running.load(std::memory_order_seq_cst) > mine &&
               std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        if (me)
            running.push_back(me);
        if (m_hosted_running.load(std::memory_order_seq_cst) > mine) {
            // Some task did not stop in time, and which ones run is not
            // recorded: every task that has run since it last waited might.
            for_each_task([&](task_header* t) {
                if (t != me && !t->m_wait.load(std::memory_order_relaxed))
                    running.push_back(t);
            });
        }
        return;
    }
    for (auto& w : m_workers) {
        if (w.get() == self)
            continue;
        task_header* t;
        while ((t = w->m_slice.load(std::memory_order_acquire)) &&
               std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        if (t)
            running.push_back(t);
    }
    if (self)
        if (task_header* t = self->m_slice.load(std::memory_order_relaxed))
            running.push_back(t);
}

void scheduler::start_world() noexcept
{
    m_attention.fetch_and(~k_stop, std::memory_order_seq_cst);
    futex_wake(&m_attention, INT32_MAX);
    m_world_lock.unlock();
}

void scheduler::service_attention() noexcept
{
    for (;;) {
        std::uint32_t a = m_attention.load(std::memory_order_acquire);
        if (a & k_dump_wanted) {
            if (m_attention.fetch_and(~k_dump_wanted, std::memory_order_acq_rel) & k_dump_wanted) {
                dump_tasks_of(*this, std::cerr);
                std::cerr.flush();
            }
            continue;
        }
        if (!(a & k_stop))
            return;
        futex_wait(&m_attention, a);
    }
}

void scheduler::request_dump() noexcept
{
    m_attention.fetch_or(k_dump_wanted, std::memory_order_seq_cst);
    // Any worker will do; an idle one must be woken to notice. (A hosted
    // runtime installs no SIGQUIT handler: it has no workers.)
    if (!m_workers.empty())
        m_workers[0]->notify();
}

std::size_t scheduler::pending_timers() noexcept
{
    std::size_t n = m_foreign_timers.size();
    for (auto& w : m_workers)
        n += w->m_timers.size();
    return n;
}

void scheduler::stop() noexcept
{
    m_stopping.store(true, std::memory_order_seq_cst);
    for (auto& w : m_workers)
        w->notify();
    for (auto& w : m_workers)
        if (w->m_thread.joinable())
            w->m_thread.join();

    // Destroy every task still alive. Destroying one may spawn or unblock
    // others (destructors run user code), so repeat until none is left.
    // The workers are gone, so the shards have no owner to race with: this
    // thread drains and unlinks under their locks.
    std::vector<task_header*> live;
    for (;;) {
        live.clear();
        for (unsigned i = 0; i <= m_n; ++i) {
            auto& s = m_shards[i];
            if (i != m_n && s.m_exits.load(std::memory_order_acquire))
                drain_exits(s, true);
            spin_guard g(s.m_lock);
            for (auto t = s.m_head; t; t = t->m_reg_next)
                live.push_back(t);
        }
        if (live.empty())
            break;
        for (auto t : live) {
            {
                auto& s = m_shards[t->m_shard];
                spin_guard g(s.m_lock);
                reg_unlink(s, t);
            }
            (void)t->m_ops(t, task_header::op::abandon);
        }
    }
    // Timers still queued belong to no task (timer objects, after_func):
    // let their owners release them.
    drop_timers(m_foreign_timers);
    for (auto& w : m_workers)
        drop_timers(w->m_timers);
    std::lock_guard lk(m_lock);
    m_gq.clear();
    m_gq_size.store(0);
}

void scheduler::run_hosted(task_header* t) noexcept
{
    // Counted before m_attention is read, both seq_cst: stop_world sets
    // k_stop and then reads the count, so one of the two sees the other.
    m_hosted_running.fetch_add(1, std::memory_order_seq_cst);
    while (WEFT_UNLIKELY(m_attention.load(std::memory_order_seq_cst) & k_stop)) {
        m_hosted_running.fetch_sub(1, std::memory_order_seq_cst);
        service_attention();
        m_hosted_running.fetch_add(1, std::memory_order_seq_cst);
    }
    if (++t_hosted_ticks % k_clock_interval == 0)
        g_coarse_ms.store(coarse_ms(), std::memory_order_relaxed);
    t->m_wait.store(nullptr, std::memory_order_relaxed);
    task_header* const saved = t_current;
    t_current = t;
    t->m_resume.resume();
    t_current = saved;
    m_hosted_running.fetch_sub(1, std::memory_order_release);
}

std::int64_t scheduler::fire_hosted_timers() noexcept
{
    g_coarse_ms.store(coarse_ms(), std::memory_order_relaxed);
    m_foreign_timers.fire_due(now_ns());
    return m_foreign_timers.earliest();
}

void scheduler::drop_timers(timer_heap& h) noexcept
{
    timer_node* batch[64];
    while (std::size_t n = h.pop_all(batch, 64))
        for (std::size_t i = 0; i < n; ++i)
            batch[i]->m_callback(batch[i], timer_node::event::drop);
}

// ------------------------------------------------------------ entry points

task_header* current_task() noexcept { return t_current; }

reactor* current_reactor() noexcept { return t_worker ? t_worker->m_reactor.get() : nullptr; }

bool on_worker_thread() noexcept { return t_worker != nullptr; }

bool runtime_running() noexcept { return g_sched.load(std::memory_order_acquire) != nullptr; }

// Threads outside the workers that are inside ready() right now: the
// runtime is not freed while any is (it may be waking a worker's reactor).
// Counted before g_sched is read, so that runtime_stop, which clears
// g_sched and then waits for the count to drop, never frees a scheduler
// that such a thread still uses.
std::atomic<int> g_foreign_readiers{0};

void ready(task_header* t) noexcept
{
    if (worker* w = t_worker) {
        w->m_sched->ready(t);
        return;
    }
    g_foreign_readiers.fetch_add(1, std::memory_order_seq_cst);
    if (auto s = g_sched.load(std::memory_order_seq_cst))
        s->ready(t);
    g_foreign_readiers.fetch_sub(1, std::memory_order_release);
}

namespace {

[[noreturn, gnu::noinline]] void spawn_without_runtime(task_header* t)
{
    // Not queued anywhere: release the frame before reporting.
    (void)t->m_ops(t, task_header::op::abandon);
    throw std::logic_error("weft::go: no runtime is running (start one with weft::run)");
}

} // namespace

void spawn(task_header* t)
{
    auto s = g_sched.load(std::memory_order_acquire);
    if (WEFT_UNLIKELY(!s))
        spawn_without_runtime(t);
    s->spawn(t);
}

void yield_current(task_header* t) noexcept
{
    worker* w = t_worker;
    if (w)
        w->push_back(t, false);
    else
        ready(t);
}

task_header* require_task(const char* what)
{
    if (auto t = t_current) {
        note_wait(t, what);
        return t;
    }
    throw std::logic_error(std::string("weft: ") + what +
                           " must be awaited inside a weft task (use weft::block_on outside)");
}

void external_waiter_enter() noexcept
{
    if (auto s = g_sched.load(std::memory_order_acquire)) {
        s->m_external.fetch_add(1, std::memory_order_seq_cst);
        s->m_foreign_activity.fetch_add(1, std::memory_order_relaxed);
    }
}

void external_waiter_leave() noexcept
{
    if (auto s = g_sched.load(std::memory_order_acquire))
        s->external_leave();
}

std::int64_t now_ns() noexcept
{
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void timer_arm(timer_node* n, std::int64_t when)
{
    auto s = g_sched.load(std::memory_order_acquire);
    if (!s)
        throw std::logic_error("weft: timers need a running runtime (start one with weft::run)");
    timer_heap& h = s->arm_heap();
    if (h.push(n, when))
        s->timer_armed(h, when);
}

bool timer_unqueue(timer_node* n) noexcept
{
    while (timer_heap* h = n->m_heap.load(std::memory_order_acquire)) {
        if (h->remove(n))
            return true;
    }
    return false;
}

bool timer_cancel(timer_node* n) noexcept
{
    if (timer_unqueue(n))
        return true;
    // Popped: wait for its callback to let go of the node.
    for (unsigned spins = 0; n->m_firing.load(std::memory_order_acquire); ++spins) {
        if (spins < 128)
            cpu_relax();
        else
            os_yield();
    }
    return false;
}

void main_task_done() noexcept
{
    if (auto s = g_sched.load(std::memory_order_acquire))
        s->main_done();
}

bool unregister_task(task_header* t) noexcept
{
    if (auto s = g_sched.load(std::memory_order_acquire))
        return s->unregister_task(t);
    return true;
}

void exit_elsewhere(task_header* t) noexcept { g_sched.load(std::memory_order_acquire)->exit_elsewhere(t); }

std::mutex g_run_lock;

scheduler* running_scheduler() noexcept { return g_sched.load(std::memory_order_acquire); }

namespace {

// SIGQUIT dumps the tasks and the program goes on, as in Go. Installed only
// if the application left SIGQUIT at its default.
bool g_sigquit_installed = false;

void on_sigquit(int) noexcept
{
    const int saved = errno;
    if (auto s = g_sched.load(std::memory_order_acquire))
        s->request_dump();
    errno = saved;
}

void install_sigquit() noexcept
{
    struct sigaction old{};
    if (::sigaction(SIGQUIT, nullptr, &old) != 0 || old.sa_handler != SIG_DFL ||
        (old.sa_flags & SA_SIGINFO))
        return;
    struct sigaction sa{};
    sa.sa_handler = &on_sigquit;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    g_sigquit_installed = ::sigaction(SIGQUIT, &sa, nullptr) == 0;
}

void uninstall_sigquit() noexcept
{
    if (!g_sigquit_installed)
        return;
    struct sigaction sa{};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGQUIT, &sa, nullptr);
    g_sigquit_installed = false;
}

} // namespace

void runtime_start(const runtime_options& opts)
{
    std::lock_guard lk(g_run_lock);
    if (g_sched.load())
        throw std::logic_error("weft::run: a runtime is already running");
    // The sockets' poller, now rather than at some socket's first wait:
    // creating it needs a descriptor, and there it could not report failing.
    (void)net_poller::instance();
    unsigned n = opts.workers ? opts.workers : default_workers();
    if (n > k_max_workers)
        throw std::invalid_argument("weft::run: more than 4096 workers");
    auto s = new scheduler(n, opts.detect_deadlock);
    g_coarse_ms.store(coarse_ms(), std::memory_order_relaxed);
    try {
        s->start();
    } catch (...) {
        delete s;
        throw;
    }
    g_sched.store(s, std::memory_order_release);
    install_sigquit();
}

void runtime_start_hosted(host& h, const runtime_options& opts)
{
    std::lock_guard lk(g_run_lock);
    if (g_sched.load())
        throw std::logic_error("weft: a runtime is already running");
    auto s = new scheduler(0, false, &h, opts.workers ? opts.workers : 1);
    g_coarse_ms.store(coarse_ms(), std::memory_order_relaxed);
    g_sched.store(s, std::memory_order_release);
}

void run_hosted(task_header* t) noexcept
{
    g_sched.load(std::memory_order_acquire)->run_hosted(t);
}

std::int64_t fire_hosted_timers() noexcept
{
    return g_sched.load(std::memory_order_acquire)->fire_hosted_timers();
}

void runtime_stop() noexcept
{
    std::lock_guard lk(g_run_lock);
    auto s = g_sched.load();
    if (!s)
        return;
    uninstall_sigquit();
    s->stop();
    g_sched.store(nullptr, std::memory_order_seq_cst);
    spin_until([] { return g_foreign_readiers.load(std::memory_order_acquire) == 0; });
    delete s;
}

} // namespace weft::detail

namespace weft {

unsigned max_procs() noexcept
{
    if (auto s = detail::g_sched.load(std::memory_order_acquire))
        return s->workers();
    return detail::default_workers();
}

std::size_t num_tasks() noexcept
{
    if (auto s = detail::g_sched.load(std::memory_order_acquire))
        return s->live_user_tasks();
    return 0;
}

} // namespace weft
