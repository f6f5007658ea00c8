// rate_limiter: a token bucket. [golang.org/x/time/rate]
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include <weft/detail/spinlock.hpp>
#include <weft/detail/timer_node.hpp>
#include <weft/task.hpp>

namespace weft {

/// Allows events at `per_second` on average, with bursts of up to `burst`.
/// The bucket starts full. [rate.Limiter]
///
/// Thread safety: every member may be called concurrently.
/// Fairness: wait() reserves its token when called, so waiters are served
///   in the order they arrived.
/// Cancellation: a wait() cancelled by the task's context throws
///   canceled_error and gives its reserved token back.
class rate_limiter {
public:
    /// Throws std::invalid_argument unless per_second > 0 and burst >= 1.
    rate_limiter(double per_second, std::size_t burst);
    rate_limiter(const rate_limiter&) = delete;
    rate_limiter& operator=(const rate_limiter&) = delete;

    /// Takes a token if one is available now. [lim.Allow]
    bool allow() noexcept;

    /// co_await lim.wait(): takes a token, waiting until one is due. [lim.Wait]
    task<> wait();

    /// Tokens available now (negative while waiters hold reservations).
    double tokens() noexcept;

private:
    /// With m_lock held: adds the tokens accrued up to now.
    void advance(std::int64_t now) noexcept;

    const double m_rate;  // tokens per nanosecond
    const double m_burst;
    detail::spinlock m_lock;
    double m_tokens;      // guarded by m_lock
    std::int64_t m_last;  // guarded by m_lock: time of m_tokens
};

} // namespace weft
