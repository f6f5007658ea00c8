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
        return m_inflight.load(std::memory_order_relaxed) -
               m_idle_multishot.load(std::memory_order_relaxed);
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

private:
    void reap() noexcept;
    void drain_cancels() noexcept;
    void queue_read() noexcept;

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
};

} // namespace weft::detail
