// Choice of the reactor backend.

#include "reactor.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include <weft/detail/timer_node.hpp>

#include "../diag/log.hpp"

namespace weft::detail {

namespace {

std::once_flag g_fallback_logged;

void log_fallback(int error)
{
    std::call_once(g_fallback_logged, [error] {
        log(log_level::warn, std::string("io_uring is unavailable (") + std::strerror(error) +
                                 "): using the epoll reactor");
    });
}

} // namespace

#if !defined(WEFT_HAVE_URING)
std::unique_ptr<reactor> make_uring_reactor(int& error)
{
    // Built without liburing (-Dio_uring=disabled).
    error = ENOSYS;
    return nullptr;
}
#endif

std::int64_t ns_until(std::int64_t deadline) noexcept
{
    std::int64_t rel = deadline - now_ns();
    return rel > 0 ? rel : 0;
}

reactor_kind process_reactor_kind() noexcept
{
    static const reactor_kind kind = [] {
        if (const char* env = std::getenv("WEFT_REACTOR")) {
            if (std::strcmp(env, "epoll") == 0) {
                log(log_level::info, "WEFT_REACTOR=epoll: using the epoll reactor");
                return reactor_kind::epoll;
            }
            if (std::strcmp(env, "io_uring") != 0)
                log(log_level::warn, std::string("WEFT_REACTOR=") + env +
                                         " is neither io_uring nor epoll; ignored");
        }
        int error = 0;
        if (make_uring_reactor(error)) {
            log(log_level::info, "using the io_uring reactor");
            return reactor_kind::io_uring;
        }
        log_fallback(error);
        return reactor_kind::epoll;
    }();
    return kind;
}

std::unique_ptr<reactor> make_reactor(reactor_kind kind)
{
    if (kind == reactor_kind::io_uring) {
        int error = 0;
        if (auto r = make_uring_reactor(error))
            return r;
        // ENOMEM (locked-memory limits) can hit a later ring only.
        log_fallback(error);
    }
    return make_epoll_reactor();
}

} // namespace weft::detail
