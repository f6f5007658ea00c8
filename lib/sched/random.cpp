#include <weft/detail/select_core.hpp>

#include <chrono>
#include <thread>

namespace weft::detail {

std::uint32_t fast_random() noexcept
{
    // wyrand-style generator, seeded per thread.
    thread_local std::uint64_t state =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
        (std::hash<std::thread::id>()(std::this_thread::get_id()) * 0x9e3779b97f4a7c15ULL);
    state += 0xa0761d6478bd642fULL;
    __uint128_t m = static_cast<__uint128_t>(state) * (state ^ 0xe7037ed1a0b428dbULL);
    return static_cast<std::uint32_t>(static_cast<std::uint64_t>(m >> 64) ^ static_cast<std::uint64_t>(m));
}

} // namespace weft::detail

#include <weft/task.hpp>

namespace weft::detail {
thread_local task_promise_base* t_starting = nullptr;
} // namespace weft::detail
