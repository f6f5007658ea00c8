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
constexpr std::uint8_t k_max_shift = 15;

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
    m_lock.lock();
    bias_record* owner = m_bias.load(std::memory_order_relaxed);
    if (owner == me && me)
        return; // biased to us, but our slots were full
    if (owner)
        revoke(owner);
    if (!me)
        return;
    if (m_last != me->m_id) {
        m_last = me->m_id;
        m_run = 1;
    } else if (++m_run >= (1u << m_shift)) {
        m_run = 0;
        m_bias.store(me, std::memory_order_release);
    }
}

void biased_lock::revoke(bias_record* owner) noexcept
{
    m_bias.store(k_revoking, std::memory_order_relaxed);
    heavy_fence();
    // The owner either saw k_revoking and took the normal way (and now
    // waits for m_lock), or its slot shows it inside: wait for it to leave.
    for (auto& slot : owner->m_held)
        spin_until([&] { return slot.load(std::memory_order_acquire) != this; });
    m_bias.store(nullptr, std::memory_order_relaxed);
    if (m_shift < k_max_shift)
        ++m_shift;
    m_last = 0;
    m_run = 0;
}

} // namespace weft::detail
