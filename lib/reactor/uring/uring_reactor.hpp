// The io_uring reactor, visible to the I/O code of lib/net.
#pragma once

#include <atomic>
#include <cstdint>

#include <liburing.h>

#include "../reactor.hpp"

namespace weft::detail {

/// One ring per worker, set up with the most restrictive flags the kernel
/// accepts (a ring entered only by its worker lets the kernel defer
/// completion work to that thread's wait).
///
/// Submissions are batched: an operation's SQE waits in the ring until the
/// worker runs out of tasks (poll() before it looks elsewhere for work,
/// wait() when it parks) or until its periodic poll, so one enter submits a
/// whole loop turn's I/O and collects its completions.
///
/// Thread safety: everything on the owner thread, except wake() and
/// cancel() (any thread) and pending_io() (any thread, approximate).
class uring_reactor final : public reactor {
public:
    uring_reactor(io_uring ring, int event_fd) noexcept;
    ~uring_reactor() override;

    void wait(std::int64_t deadline) noexcept override;
    void wake() noexcept override;
    const char* name() const noexcept override { return "io_uring"; }
    reactor_kind kind() const noexcept override { return reactor_kind::io_uring; }
    void poll() noexcept override;
    bool io_busy() const noexcept override
    {
        return m_inflight.load(std::memory_order_relaxed) != 0 ||
               m_cancels.load(std::memory_order_relaxed) != nullptr;
    }
    std::size_t pending_io() const noexcept override
    {
        // An operation on the cancel list may have completed already (its
        // CQE reaped, so no longer in flight) and is handed back with the
        // next drain: it still wakes a task.
        return m_inflight.load(std::memory_order_relaxed) -
               m_idle_multishot.load(std::memory_order_relaxed) +
               (m_cancels.load(std::memory_order_acquire) != nullptr ? 1 : 0);
    }
    /// A multishot submission of this ring that no task waits on (an accept
    /// queue taking connections ahead) starts (+1) or stops (-1) being one:
    /// it is I/O in flight, but nothing that would wake a task, so
    /// pending_io() leaves it out. Any thread.
    void count_idle_multishot(int delta) noexcept
    {
        m_idle_multishot.fetch_add(static_cast<std::size_t>(delta), std::memory_order_relaxed);
    }
    void quiesce() noexcept override;

    /// An SQE to fill in, never null: when the submission queue is full,
    /// submits what it holds first. Owner thread.
    io_uring_sqe* sqe() noexcept;

    /// Marks sqe as c's submission: its CQE goes to c. Owner thread; c's
    /// m_owner must be this reactor already (set before c can be
    /// cancelled, since cancel() reads it from other threads).
    void track(io_uring_sqe* sqe, io_completion* c) noexcept
    {
        // Only this thread sets k_completed (reap), so a clear bit stays
        // clear: the read-modify-write is needed only to clear it, i.e.
        // when c is submitted again.
        if (c->m_state.load(std::memory_order_relaxed) & io_completion::k_completed)
            c->m_state.fetch_and(~io_completion::k_completed, std::memory_order_relaxed);
        io_uring_sqe_set_data(sqe, c);
        m_inflight.store(m_inflight.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
    }

    /// Owner thread: asks the kernel to cancel c's submission with the next
    /// enter; for multishot submissions, which cancel() does not serve (its
    /// bookkeeping assumes one completion per submission). c's final
    /// completion still arrives through m_complete.
    void cancel_now(io_completion* c) noexcept;

    /// Asks for c (submitted to this reactor) to be cancelled; any thread.
    /// c still completes through m_complete, with -ECANCELED or with its
    /// result if it finished first.
    void cancel(io_completion* c) noexcept;

    // ---- provided buffers (a buffer ring, Linux 5.19) for multishot
    // receives: the kernel picks a buffer as data arrives, so a connection
    // waiting to read holds none. Owner thread only.

    static constexpr unsigned k_recv_buffers = 256; // a power of two
    static constexpr unsigned k_recv_buffer_size = 4096;
    /// The buffer group multishot receives select from.
    static constexpr unsigned short k_recv_group = 1;

    /// Registers the buffer ring on first use; false if the kernel refused
    /// it (receives then go without, one submission each).
    bool recv_buffers() noexcept
    {
        return m_buf_state > 0 || (m_buf_state == 0 && setup_recv_buffers());
    }
    /// The buffer a completion names (IORING_CQE_F_BUFFER set).
    const char* recv_buffer(std::uint32_t cqe_flags) const noexcept
    {
        return buffer_at(buffer_id(cqe_flags));
    }
    static unsigned buffer_id(std::uint32_t cqe_flags) noexcept
    {
        return cqe_flags >> IORING_CQE_BUFFER_SHIFT;
    }
    /// Hands the buffer of a completion back to the kernel once its bytes
    /// were copied out.
    void recycle(std::uint32_t cqe_flags) noexcept;

private:
    void reap() noexcept;
    void drain_cancels() noexcept;
    void queue_read() noexcept;
    bool setup_recv_buffers() noexcept;
    char* buffer_at(unsigned id) const noexcept
    {
        return m_bufs + std::size_t{id} * k_recv_buffer_size;
    }
    /// Lists buffer `id` in the buffer ring at `offset` past its tail
    /// (published by io_uring_buf_ring_advance).
    void provide(unsigned id, int offset) noexcept
    {
        io_uring_buf_ring_add(m_buf_ring, buffer_at(id), k_recv_buffer_size,
                              static_cast<unsigned short>(id),
                              io_uring_buf_ring_mask(k_recv_buffers), offset);
    }

    io_uring m_ring;
    int m_event_fd;
    std::uint64_t m_counter = 0;
    bool m_read_queued = false;
    // Written by the owner only; atomic for pending_io()'s readers.
    std::atomic<std::size_t> m_inflight{0};
    // Counted in m_inflight too (see count_idle_multishot).
    std::atomic<std::size_t> m_idle_multishot{0};
    // Cancel requests from any thread, a Treiber stack through
    // io_completion::m_cancel_next; the owner takes it whole.
    std::atomic<io_completion*> m_cancels{nullptr};
    // The buffer ring and its buffers, one mapping; m_buf_state: 0 not
    // tried yet, 1 registered, -1 refused.
    io_uring_buf_ring* m_buf_ring = nullptr;
    char* m_bufs = nullptr;
    std::size_t m_buf_map_len = 0;
    int m_buf_state = 0;
};

} // namespace weft::detail
