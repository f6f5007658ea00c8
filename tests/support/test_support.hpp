// Helpers shared by the unit and stress tests.
//
// doctest's assertion macros are meant to be used from one thread at a time.
// Tasks of a runtime with several workers run on several threads, so tests
// either collect results and check them from the main task (or after run()
// returns), or use WEFT_LOCKED_CHECK, which serialises the assertion.
#pragma once

#include <weft/net/tcp.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <vector>

namespace weft_test {

/// The mutex WEFT_LOCKED_CHECK holds while it asserts.
inline std::mutex& check_mutex()
{
    static std::mutex m;
    return m;
}

/// Worker counts a test that depends on scheduling runs under: a single
/// worker (everything interleaves on one thread) and several.
inline constexpr std::initializer_list<unsigned> worker_counts = {1u, 2u, 4u};

/// The iteration multiplier of the stress suite: WEFT_STRESS_SCALE, default 1.
inline std::int64_t stress_scale()
{
    if (const char* s = std::getenv("WEFT_STRESS_SCALE")) {
        char* end = nullptr;
        const long long v = std::strtoll(s, &end, 10);
        if (end != s && v > 0)
            return v;
    }
    return 1;
}

/// Counts the live instances of itself (copies and moves included), to prove
/// that whatever a task captured was destroyed.
class live_counter {
public:
    explicit live_counter(std::atomic<int>& live) noexcept : m_live(&live) { m_live->fetch_add(1); }
    live_counter(const live_counter& other) noexcept : m_live(other.m_live)
    {
        m_live->fetch_add(1);
    }
    live_counter(live_counter&& other) noexcept : m_live(other.m_live) { m_live->fetch_add(1); }
    live_counter& operator=(const live_counter&) = delete;
    live_counter& operator=(live_counter&&) = delete;
    ~live_counter() { m_live->fetch_sub(1); }

private:
    std::atomic<int>* m_live;
};

/// Runs the process out of file descriptors: lowers RLIMIT_NOFILE to 64
/// and takes every free descriptor but `spare`, until release() or the
/// end of its scope.
class descriptor_hog {
public:
    explicit descriptor_hog(int spare)
    {
        lower_limit();
        fill(spare);
    }
    /// Only lowers the limit; fill() takes the descriptors. A listener's
    /// multishot accept (io_uring) keeps the limit that was in force when it
    /// was armed, so a server must start under the low limit to run out.
    descriptor_hog() { lower_limit(); }

    /// Takes every descriptor the limit allows but `spare`.
    void fill(int spare)
    {
        for (int fd; (fd = ::dup(0)) >= 0;)
            m_fds.push_back(fd);
        for (; spare > 0 && !m_fds.empty(); spare--) {
            ::close(m_fds.back());
            m_fds.pop_back();
        }
    }
    descriptor_hog(const descriptor_hog&) = delete;
    descriptor_hog& operator=(const descriptor_hog&) = delete;
    ~descriptor_hog() { release(); }

    /// Frees one more descriptor; false when none is left to free.
    bool release_one()
    {
        if (m_fds.empty())
            return false;
        ::close(m_fds.back());
        m_fds.pop_back();
        return true;
    }

    void release()
    {
        for (int fd : m_fds)
            ::close(fd);
        m_fds.clear();
        setrlimit(RLIMIT_NOFILE, &m_old);
    }

private:
    void lower_limit()
    {
        getrlimit(RLIMIT_NOFILE, &m_old);
        rlimit low = m_old;
        low.rlim_cur = 64;
        REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    }

    rlimit m_old{};
    std::vector<int> m_fds;
};

/// Yields until pred() holds or `limit` of wall time passes; returns pred().
/// The limit is generous: it only turns a hang into a failure.
inline weft::task<bool> eventually(std::function<bool()> pred,
                                   std::chrono::seconds limit = std::chrono::seconds(60))
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline)
            co_return pred();
        co_await weft::this_task::yield();
    }
    co_return true;
}

struct stream_pair {
    weft::net::tcp_stream client;
    weft::net::tcp_stream server;
};

/// Dials l and accepts the connection: both ends of one loopback stream.
inline weft::task<stream_pair> connected_pair(weft::net::tcp_listener& l)
{
    auto acc = weft::go([&l]() -> weft::task<weft::net::tcp_stream> { co_return co_await l.accept(); });
    stream_pair p;
    p.client = co_await weft::net::dial(l.local_address());
    p.server = co_await acc;
    co_return p;
}

} // namespace weft_test

/// CHECK that may be used concurrently from tasks on several workers.
#define WEFT_LOCKED_CHECK(...)                                                                     \
    do {                                                                                           \
        std::lock_guard<std::mutex> weft_test_lock_(::weft_test::check_mutex());                   \
        CHECK(__VA_ARGS__);                                                                        \
    } while (false)
