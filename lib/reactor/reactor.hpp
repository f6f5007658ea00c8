// The reactor: what a worker sleeps in when it has nothing to run.
#pragma once

#include <cstdint>
#include <memory>

namespace weft::detail {

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
};

/// Nanoseconds from now until deadline, 0 if it has passed: the timeout of
/// a reactor wait.
std::int64_t ns_until(std::int64_t deadline) noexcept;

enum class reactor_kind { io_uring, epoll };

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
