// The lock of a channel: a spinlock that the thread taking it over and over
// takes without a read-modify-write.
#pragma once

#include <atomic>
#include <cstdint>

#include <weft/detail/config.hpp>
#include <weft/detail/spinlock.hpp>

namespace weft::detail {

/// A thread's side of biased locking: the biased locks it holds through its
/// bias now (at most k_slots at once; it takes any further one the normal
/// way). Written by its thread only; read by threads revoking a bias.
///
/// Lifetime: records are never freed. A thread's record goes back to a free
/// list when the thread ends, and a later thread takes it over together
/// with the biases that name it, which is harmless: the ended thread holds
/// nothing.
struct bias_record {
    static constexpr int k_slots = 4;
    std::atomic<const void*> m_held[k_slots] = {};
    bias_record* m_next_free = nullptr; // the free list's link, under its mutex
    std::uint32_t m_id = 0;             // nonzero, unique among records; constant

    // A revoker's request that this thread confirm it is outside a lock
    // (see biased_lock::revoke), on a line of their own: the revoker polls
    // m_answered while this thread keeps taking locks.
    /// The request: a token unique to it, k_claimed while a revoker fills
    /// it in, 0 when none. Written by revokers (one request at a time).
    alignas(64) std::atomic<std::uint64_t> m_revoke{0};
    /// The lock the request is about; written before the token.
    std::atomic<const void*> m_revoke_lock{nullptr};
    /// The last token this thread answered; written by this thread only.
    std::atomic<std::uint64_t> m_answered{0};
    static constexpr std::uint64_t k_claimed = 1;

    /// Answers the pending request if this thread holds no slot for its lock.
    void answer_revoke() noexcept;
    /// answer_revoke() if a request is pending: for this thread's unlocks
    /// and waits.
    WEFT_ALWAYS_INLINE void answer_if_asked() noexcept
    {
        if (WEFT_UNLIKELY(m_revoke.load(std::memory_order_relaxed) != 0))
            answer_revoke();
    }
};

/// This thread's record; nullptr until the thread first takes a biased lock
/// the normal way.
extern __thread bias_record* t_bias_record __attribute__((tls_model("initial-exec")));

/// A lock for critical sections of a few dozen instructions, like spinlock,
/// biased towards the thread that takes it most.
///
/// After a thread has taken the lock 2^m_shift times in a row, the lock is
/// biased to it: that thread then takes it by marking a slot of its record
/// and checking the bias, with no atomic read-modify-write (Dekker's
/// handshake, whose store-load order comes from the other side's
/// membarrier: see lib/sched/asym_fence.hpp). Any other thread takes the
/// spinlock, then revokes the bias: it marks the lock as being revoked and
/// asks the biased thread to confirm, at its next biased unlock, that it
/// is outside the lock; a thread that takes locks all the time answers
/// within nanoseconds. Without an answer soon, the revoker issues the
/// membarrier and waits until the biased thread's record no longer holds
/// the lock (a thread waiting for this lock's spinlock answers too). Each
/// revocation that needed the membarrier doubles the run needed to bias
/// the lock again (up to 512), so a lock shared by threads that take it
/// now and then soon stays unbiased; answered revocations cost about a
/// critical section and halve it again, down to 64. Under contention, the lock
/// the waiter naps on lets the other thread run alone, and soon through
/// its bias, at the speed of one thread; and two threads that pass the
/// lock back and forth without either waiting long enough to nap stop
/// after 32 handoffs: the next taker that finds the lock taken naps.
/// Without membarrier no lock is ever biased.
///
/// Thread safety: lock/unlock from any thread; unlock on the thread that
/// locked (as with every lock here: no lock is held across a suspension).
/// Fairness: none (see spinlock).
class biased_lock {
public:
    WEFT_ALWAYS_INLINE void lock() noexcept
    {
        bias_record* me = t_bias_record;
        if (me && m_bias.load(std::memory_order_relaxed) == me && lock_biased(me))
            return;
        lock_slow();
    }
    WEFT_ALWAYS_INLINE void unlock() noexcept
    {
        // A holder through the bias sees the bias (its own, or the mark of
        // a revocation that waits for it) until it has unlocked.
        if (m_bias.load(std::memory_order_relaxed) != nullptr && unlock_biased())
            return;
        m_lock.unlock();
    }

    /// Whether the lock is biased to the calling thread now (for tests).
    bool biased_to_this_thread() const noexcept
    {
        bias_record* me = t_bias_record;
        return me && m_bias.load(std::memory_order_relaxed) == me;
    }

private:
    WEFT_ALWAYS_INLINE bool lock_biased(bias_record* me) noexcept
    {
        for (auto& slot : me->m_held) {
            if (slot.load(std::memory_order_relaxed) != nullptr)
                continue;
            slot.store(this, std::memory_order_relaxed);
            // The revoker's membarrier orders this store before the load.
            std::atomic_signal_fence(std::memory_order_seq_cst);
            if (WEFT_LIKELY(m_bias.load(std::memory_order_acquire) == me))
                return true;
            slot.store(nullptr, std::memory_order_release);
            return false;
        }
        return false;
    }
    WEFT_ALWAYS_INLINE bool unlock_biased() noexcept
    {
        if (bias_record* me = t_bias_record) {
            for (auto& slot : me->m_held) {
                if (slot.load(std::memory_order_relaxed) == this) {
                    slot.store(nullptr, std::memory_order_release);
                    me->answer_if_asked();
                    return true;
                }
            }
        }
        return false;
    }
    /// Takes m_lock, revokes another thread's bias, counts the run.
    void lock_slow() noexcept;
    void revoke(bias_record* owner) noexcept;

    // 16 bytes in all: a channel's state keeps its hot fields on one line.
    spinlock m_lock;
    // Guarded by m_lock: log2 of the run that biases the lock, how many
    // times in a row the thread whose record has id m_last took it the
    // normal way, and how many times the lock went from one thread to
    // another since it was last biased or a taker last napped (up to
    // k_handoffs_before_nap in biased_lock.cpp).
    std::uint8_t m_shift = 6; // k_min_shift in biased_lock.cpp
    std::uint16_t m_run : 10 = 0;
    std::uint16_t m_handoffs : 6 = 0;
    std::uint32_t m_last = 0;
    /// The thread the lock is biased to, k_revoking during a revocation,
    /// else nullptr. Written under m_lock.
    std::atomic<bias_record*> m_bias{nullptr};
};
static_assert(sizeof(biased_lock) == 16);

/// The lock of a channel (chan_state::m_lock) and of a context node: the
/// locks select takes.
using chan_lock = biased_lock;

} // namespace weft::detail
