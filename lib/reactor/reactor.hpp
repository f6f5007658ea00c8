// The reactor: what a worker sleeps in when it has nothing to run.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <weft/detail/io_wait.hpp>

namespace weft::detail {

enum class reactor_kind { io_uring, epoll };

/// One per worker. The worker parks inside wait(), so wake-ups from other
/// threads, I/O completions and the earliest timer deadline share one
/// sleep.
///
/// Thread safety: wait() only on the owning worker thread (the one that
///   created the reactor); wake() from any thread.
class reactor {
public:
    virtual ~reactor() = default;

    /// Sleeps until wake() is called, an I/O completion arrives, or the
    /// clock passes `deadline` (nanoseconds of weft::clock; INT64_MAX for
    /// none). A wake() made since the previous wait() ends this one at once.
    /// Spurious returns are allowed: the caller looks for work again.
    virtual void wait(std::int64_t deadline) noexcept = 0;

    /// Ends the owner's current or next wait().
    virtual void wake() noexcept = 0;

    virtual const char* name() const noexcept = 0;
    virtual reactor_kind kind() const noexcept = 0;

    /// Without sleeping: submits queued I/O, turns cancel requests into
    /// kernel cancellations and delivers the completions that arrived
    /// (readying their tasks). Owner thread only.
    virtual void poll() noexcept = 0;

    /// True when poll() may have something to do: I/O in flight or queued.
    /// Owner thread only; cheap.
    virtual bool io_busy() const noexcept = 0;

    /// I/O operations in flight; any thread (deadlock detection).
    virtual std::size_t pending_io() const noexcept = 0;

    /// On the owner thread as its worker exits: cancels every operation in
    /// flight and waits for the kernel to let go of them, delivering none
    /// (their tasks are destroyed next).
    virtual void quiesce() noexcept = 0;
};

/// The reactor of the calling worker thread, or nullptr on other threads.
reactor* current_reactor() noexcept;

/// Nanoseconds from now until deadline, 0 if it has passed: the timeout of
/// a reactor wait.
std::int64_t ns_until(std::int64_t deadline) noexcept;

/// The backend of this process, decided once: WEFT_REACTOR=epoll or
/// io_uring forces one; otherwise io_uring when the kernel lets this process
/// set up a ring, else epoll (logged once).
reactor_kind process_reactor_kind() noexcept;

/// Creates a reactor of the given kind for the calling thread; an io_uring
/// reactor that cannot be set up falls back to epoll. Throws
/// std::system_error when not even epoll can be set up.
std::unique_ptr<reactor> make_reactor(reactor_kind kind);

std::unique_ptr<reactor> make_uring_reactor(int& error); // nullptr and errno value on failure
std::unique_ptr<reactor> make_epoll_reactor();

} // namespace weft::detail
