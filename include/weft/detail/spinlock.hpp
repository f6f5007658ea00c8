// A small test-and-test-and-set lock for short critical sections.
#pragma once

#include <atomic>

#include <weft/detail/config.hpp>

namespace weft::detail {

/// Cpu-friendly busy wait used inside spin loops.
inline void cpu_relax() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

/// Gives the processor to another thread; used when a spin lasts too long.
void os_yield() noexcept;

/// Sleeps 50 microseconds (k_nap_ns in scheduler.cpp): for a lock waiter
/// that keeps finding the lock taken.
void os_nap() noexcept;

/// Busy-waits until done() is true: briefly with cpu_relax, then yielding
/// the processor. For waits on another thread's next few instructions.
template <class Done>
void spin_until(Done done) noexcept(noexcept(done()))
{
    for (unsigned spins = 0; !done(); ++spins) {
        if (spins < 128)
            cpu_relax();
        else
            os_yield();
    }
}

/// A lock for critical sections of a few dozen instructions (channel and
/// wait-queue bookkeeping). Nothing that can block or allocate runs under it.
///
/// Thread safety: lock/unlock may be called from any thread.
/// Fairness: none. A waiter polls a few times, backing off, and then sleeps
///   50 microseconds between polls (the unlock stays a plain store: no
///   sleeper to wake). Under heavy contention that lets one thread run many
///   critical sections in a row with the lock's cache lines to itself while
///   the other sleeps, instead of every section paying for lines moved
///   between cores, as Go's runtime lock does by sleeping on a futex; a
///   holder preempted by the OS costs a waiter a sleep, not a core.
class spinlock {
public:
    void lock() noexcept
    {
        lock_waiting([]() noexcept {});
    }
    bool try_lock() noexcept
    {
        return !m_locked.load(std::memory_order_relaxed) &&
               !m_locked.exchange(true, std::memory_order_acquire);
    }
    void unlock() noexcept { m_locked.store(false, std::memory_order_release); }

    /// lock(), calling waiting() before each poll while the lock is taken.
    template <class Waiting>
    void lock_waiting(Waiting waiting) noexcept
    {
        if (WEFT_LIKELY(!m_locked.exchange(true, std::memory_order_acquire)))
            return;
        lock_slow(waiting);
    }

private:
    // Polls with exponential backoff: every read of the lock's line takes it
    // from the holder's cache, so a waiter that polls after each pause slows
    // the holder down. After k_spin_rounds failed polls (a few hundred
    // nanoseconds: the lock is being taken over and over, or its holder is
    // not running) the waiter naps between polls instead.
    template <class Waiting>
    void lock_slow(Waiting waiting) noexcept
    {
        unsigned delay = 1;
        for (unsigned rounds = 0;; ++rounds) {
            waiting();
            if (rounds < k_spin_rounds) {
                for (unsigned i = 0; i < delay; ++i)
                    cpu_relax();
                delay <<= 1;
            } else {
                os_nap();
            }
            if (!m_locked.load(std::memory_order_relaxed) &&
                !m_locked.exchange(true, std::memory_order_acquire))
                return;
        }
    }
    static constexpr unsigned k_spin_rounds = 4;

    std::atomic<bool> m_locked{false};
};

/// RAII holder for spinlock and biased_lock (std::lock_guard works too;
/// this one is movable-free and has no exceptions to think about).
template <class Lock>
class spin_guard {
public:
    explicit spin_guard(Lock& l) noexcept : m_lock(l) { m_lock.lock(); }
    ~spin_guard() { m_lock.unlock(); }
    spin_guard(const spin_guard&) = delete;
    spin_guard& operator=(const spin_guard&) = delete;

private:
    Lock& m_lock;
};

} // namespace weft::detail
