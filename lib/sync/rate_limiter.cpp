// Token bucket. Invariants (m_lock): m_tokens <= m_burst; m_tokens is the
// bucket as of m_last; a negative value counts tokens reserved by waiters
// that are not due yet.

#include <weft/rate_limiter.hpp>

#include <chrono>

#include <weft/context.hpp>
#include <weft/time.hpp>

namespace weft {

rate_limiter::rate_limiter(double per_second, std::size_t burst)
    : m_rate(per_second / 1e9), m_burst(static_cast<double>(burst)), m_tokens(m_burst),
      m_last(detail::now_ns())
{
    if (!(per_second > 0))
        throw std::invalid_argument("weft::rate_limiter: the rate must be positive");
    if (burst == 0)
        throw std::invalid_argument("weft::rate_limiter: the burst must be at least 1");
}

void rate_limiter::advance(std::int64_t now) noexcept
{
    if (now > m_last) {
        m_tokens += static_cast<double>(now - m_last) * m_rate;
        if (m_tokens > m_burst)
            m_tokens = m_burst;
        m_last = now;
    }
}

bool rate_limiter::allow() noexcept
{
    auto now = detail::now_ns();
    detail::spin_guard g(m_lock);
    advance(now);
    if (m_tokens < 1)
        return false;
    m_tokens -= 1;
    return true;
}

double rate_limiter::tokens() noexcept
{
    auto now = detail::now_ns();
    detail::spin_guard g(m_lock);
    advance(now);
    return m_tokens;
}

task<> rate_limiter::wait()
{
    std::int64_t due;
    {
        auto now = detail::now_ns();
        detail::spin_guard g(m_lock);
        advance(now);
        m_tokens -= 1;
        if (m_tokens >= 0)
            co_return;
        // The reserved token accrues after -m_tokens / rate.
        due = now + static_cast<std::int64_t>(-m_tokens / m_rate) + 1;
    }
    try {
        co_await sleep_until(detail::from_ns(due));
    } catch (const canceled_error&) {
        detail::spin_guard g(m_lock);
        m_tokens += 1; // give the reservation back
        if (m_tokens > m_burst)
            m_tokens = m_burst;
        throw;
    }
}

} // namespace weft
