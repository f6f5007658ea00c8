// Per-thread state used from inline code: select's random source and the
// synchronous-completion mark of task awaits.
#include <weft/detail/config.hpp>
#include <weft/detail/select_core.hpp>

#include <chrono>
#include <thread>

namespace weft::detail {

namespace {
WEFT_TLS std::uint64_t t_random_state = 0;
}

std::uint64_t fast_random64() noexcept
{
    // wyrand, seeded per thread on first use.
    if (WEFT_UNLIKELY(t_random_state == 0))
        t_random_state =
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
            ((std::hash<std::thread::id>()(std::this_thread::get_id()) * 0x9e3779b97f4a7c15ULL) | 1);
    t_random_state += 0xa0761d6478bd642fULL;
    __uint128_t m = static_cast<__uint128_t>(t_random_state) * (t_random_state ^ 0xe7037ed1a0b428dbULL);
    return static_cast<std::uint64_t>(m >> 64) ^ static_cast<std::uint64_t>(m);
}

} // namespace weft::detail

#include <weft/task.hpp>

namespace weft::detail {

namespace {
WEFT_TLS task_promise_base* t_starting = nullptr;
}

task_promise_base* begin_start(task_promise_base* p) noexcept
{
    return std::exchange(t_starting, p);
}

bool end_start(task_promise_base* p, task_promise_base* saved) noexcept
{
    bool finished = t_starting != p;
    t_starting = saved;
    return finished;
}

bool finished_while_starting(task_promise_base* p) noexcept
{
    if (t_starting != p)
        return false;
    t_starting = nullptr;
    return true;
}

} // namespace weft::detail
