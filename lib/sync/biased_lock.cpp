// biased_lock's slow paths and the per-thread records (see
// weft/detail/biased_lock.hpp).
//
// Invariants: m_bias changes only under m_lock; a lock is biased only when
// g_asym_fence is set (so a revoker's heavy_fence is a membarrier); while a
// thread holds a lock through its bias, the lock's m_bias is that thread's
// record or k_revoking, and one slot of the record holds the lock.

#include <weft/detail/biased_lock.hpp>

#include <cstdint>
#include <mutex>
#include <new>

#include "../sched/asym_fence.hpp"

namespace weft::detail {

__thread bias_record* t_bias_record __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

bias_record* const k_revoking = reinterpret_cast<bias_record*>(alignof(bias_record));
constexpr std::uint8_t k_min_shift = 6; // a new lock's m_shift
constexpr std::uint8_t k_max_shift = 9;
// Handoffs (takes by another thread than the last taker) since the lock
// was last biased after which a taker that found the lock taken naps.
constexpr std::uint16_t k_handoffs_before_nap = 32;

std::mutex g_records_lock;
bias_record* g_free_records = nullptr; // guarded by g_records_lock
std::uint32_t g_last_record_id = 0;    // guarded by g_records_lock

/// The keeper has run: the thread is ending and takes no new record.
__thread bool t_record_gone = false;

/// Gives the thread's record back when the thread ends.
struct record_keeper {
    bias_record* m_record = nullptr;
    ~record_keeper()
    {
        t_record_gone = true;
        if (!m_record)
            return;
        t_bias_record = nullptr;
        std::lock_guard lk(g_records_lock);
        m_record->m_next_free = g_free_records;
        g_free_records = m_record;
    }
};

thread_local record_keeper t_keeper;

/// This thread's record, made on first use; nullptr if none can be had.
bias_record* record_of_this_thread() noexcept
{
    if (bias_record* r = t_bias_record)
        return r;
    if (t_record_gone)
        return nullptr;
    setup_asymmetric_fence();
    if (!g_asym_fence.load(std::memory_order_relaxed))
        return nullptr; // no biasing: no record needed
    bias_record* r = nullptr;
    {
        std::lock_guard lk(g_records_lock);
        if (g_free_records) {
            r = g_free_records;
            g_free_records = r->m_next_free;
        } else if (g_last_record_id != UINT32_MAX) {
            r = new (std::nothrow) bias_record;
            if (r)
                r->m_id = ++g_last_record_id;
        }
    }
    if (r) {
        t_keeper.m_record = r;
        t_bias_record = r;
    }
    return r;
}

} // namespace

void biased_lock::lock_slow() noexcept
{
    bias_record* const me = record_of_this_thread();
    for (;;) {
        bool waited = false;
        // A revoker of a lock biased to this thread may be the holder this
        // thread waits for (perhaps of this very lock): answer it meanwhile.
        m_lock.lock_waiting([me, &waited]() noexcept {
            waited = true;
            if (me)
                me->answer_if_asked();
        });
        bias_record* owner = m_bias.load(std::memory_order_relaxed);
        if (owner == me && me)
            return; // biased to us, but our slots were full
        if (owner)
            revoke(owner);
        if (!me)
            return;
        if (m_last == me->m_id) {
            if (++m_run >= (1u << m_shift)) {
                m_run = 0;
                m_handoffs = 0;
                m_bias.store(me, std::memory_order_release);
            }
            return;
        }
        // Taken from another thread: a handoff, which moves the lock's lines
        // between cores. Two threads that both take the lock all the time
        // can settle into passing it back and forth, each finding it free
        // within its few polls (spinlock::lock_slow): neither naps, no run
        // forms, and the bias never comes back. So once the lock has been
        // handed over k_handoffs_before_nap times since it was last biased,
        // a taker that found it taken leaves it to the other thread for a
        // nap, long enough for that one to earn the bias and use it.
        if (!owner && m_handoffs < k_handoffs_before_nap)
            ++m_handoffs;
        if (waited && m_handoffs >= k_handoffs_before_nap) {
            m_handoffs = 0;
            m_lock.unlock();
            me->answer_if_asked();
            os_nap();
            continue;
        }
        m_last = me->m_id;
        m_run = 1;
        return;
    }
}

namespace {

// The cooperative revocation. The owner's biased take stores its slot and
// then loads m_bias with no fence between them, so a revoker cannot read
// the slots to learn whether the owner is inside (the slot store may still
// be in the owner's store buffer): the owner has to tell. The revoker
// stores k_revoking and then publishes a request naming the lock; the
// owner, at its next biased unlock, answers the request's token if none
// of its slots holds that lock. The owner saw the request after
// k_revoking (stores are seen in the order they were made), so every
// biased take it starts after answering sees k_revoking and fails; any
// it made before either failed or left the lock in a slot, which blocks
// the answer until the matching unlock. Tokens are never reused, so a
// late answer to a withdrawn request is ignored.

std::atomic<std::uint64_t> g_revoke_tokens{bias_record::k_claimed};

// How many times a revoker polls for the answer (a pause each) before it
// falls back to the membarrier: about a microsecond.
constexpr int k_answer_polls = 64;

/// Asks owner to confirm it is outside lock; false if no answer came (or
/// another revoker's request is pending), and the caller must use the
/// membarrier.
bool ask_owner(bias_record* owner, const void* lock) noexcept
{
    std::uint64_t none = 0;
    if (!owner->m_revoke.compare_exchange_strong(none, bias_record::k_claimed, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed))
        return false;
    const std::uint64_t token = g_revoke_tokens.fetch_add(1, std::memory_order_relaxed) + 1;
    owner->m_revoke_lock.store(lock, std::memory_order_relaxed);
    owner->m_revoke.store(token, std::memory_order_release);
    bool answered = false;
    for (int i = 0; i < k_answer_polls; ++i) {
        if (owner->m_answered.load(std::memory_order_acquire) == token) {
            answered = true;
            break;
        }
        cpu_relax();
    }
    owner->m_revoke.store(0, std::memory_order_release);
    return answered;
}

} // namespace

void bias_record::answer_revoke() noexcept
{
    const std::uint64_t token = m_revoke.load(std::memory_order_acquire);
    if (token <= k_claimed || m_answered.load(std::memory_order_relaxed) == token)
        return;
    const void* lock = m_revoke_lock.load(std::memory_order_relaxed);
    for (auto& slot : m_held)
        if (slot.load(std::memory_order_relaxed) == lock)
            return; // still inside: answered at that lock's unlock
    m_answered.store(token, std::memory_order_release);
}

void biased_lock::revoke(bias_record* owner) noexcept
{
    // Stored before the request is published (ask_owner's release).
    m_bias.store(k_revoking, std::memory_order_relaxed);
    if (!ask_owner(owner, this)) {
        heavy_fence();
        // The owner either saw k_revoking and took the normal way (and now
        // waits for m_lock), or its slot shows it inside: wait for it to
        // leave.
        for (auto& slot : owner->m_held)
            spin_until([&] { return slot.load(std::memory_order_acquire) != this; });
        // The membarrier interrupts every core running the process: each
        // one doubles the run that biases this lock again.
        if (m_shift < k_max_shift)
            ++m_shift;
    } else if (m_shift > k_min_shift) {
        // An answered request costs about a critical section: each one
        // halves the run again, back to 64. (A lock that once needed a
        // few membarriers would otherwise need 512 takes in a row after
        // every later revocation, taken the normal way.)
        --m_shift;
    }
    m_bias.store(nullptr, std::memory_order_relaxed);
    m_last = 0;
    m_run = 0;
}

} // namespace weft::detail
