#include <weft/task_group.hpp>

#include <weft/chan.hpp>
#include <weft/rate_limiter.hpp>
#include <weft/runtime.hpp>
#include <weft/select.hpp>
#include <weft/time.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>

#include "test_support.hpp"

using namespace std::chrono_literals;
using wclock = weft::clock;

TEST_CASE("wait joins every child")
{
    weft::run([]() -> weft::task<> {
        std::atomic<int> done{0};
        weft::task_group g;
        for (int i = 0; i < 100; ++i)
            co_await g.go(
                [&](int k) -> weft::task<> {
                    co_await weft::sleep_for(std::chrono::microseconds(k * 10));
                    done.fetch_add(1);
                },
                i);
        co_await g.wait();
        CHECK(done.load() == 100);
        CHECK(g.get_context().err() == weft::errc::canceled); // cancelled when wait returns
    });
}

TEST_CASE("the first failure cancels the siblings and wait rethrows it")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            std::atomic<int> stopped{0};
            auto never = weft::make_chan<int>();
            weft::task_group g;
            for (int i = 0; i < 10; ++i)
                co_await g.go([&]() -> weft::task<> {
                    // Siblings wait on a channel or on the group's context.
                    auto r = co_await weft::select(never.recv(), weft::current_context().done());
                    if (r.index() == 1)
                        stopped.fetch_add(1);
                });
            for (int i = 0; i < 10; ++i)
                co_await g.go([&]() -> weft::task<> {
                    try {
                        (void)co_await never.recv();
                    } catch (const weft::canceled_error&) {
                        stopped.fetch_add(1);
                        throw;
                    }
                });
            co_await g.go([]() -> weft::task<> {
                co_await weft::sleep_for(2ms);
                throw std::runtime_error("first");
            });
            bool threw = false;
            try {
                co_await g.wait();
            } catch (const std::runtime_error& e) {
                threw = std::string(e.what()) == "first";
            }
            CHECK(threw);
            CHECK(stopped.load() == 20);
        });
    }
}

TEST_CASE("set_limit bounds the children running at once")
{
    weft::run(weft::runtime_options{.workers = 4}, []() -> weft::task<> {
        weft::task_group g;
        g.set_limit(3);
        std::atomic<int> running{0}, peak{0}, done{0};
        for (int i = 0; i < 30; ++i)
            co_await g.go([&]() -> weft::task<> {
                int now = running.fetch_add(1) + 1;
                int p = peak.load();
                while (now > p && !peak.compare_exchange_weak(p, now)) {
                }
                co_await weft::sleep_for(1ms);
                running.fetch_sub(1);
                done.fetch_add(1);
            });
        co_await g.wait();
        CHECK(done.load() == 30);
        CHECK(peak.load() == 3);
        CHECK_THROWS_AS(g.set_limit(0), std::invalid_argument);
    });
}

TEST_CASE("a group is a child of the given context")
{
    weft::run([]() -> weft::task<> {
        auto [parent, cancel] = weft::with_cancel(weft::background());
        weft::task_group g(parent);
        co_await g.go([]() -> weft::task<> { co_await weft::sleep_for(1h); });
        cancel();
        CHECK_THROWS_AS(co_await g.wait(), weft::canceled_error);
    });
}

TEST_CASE("destroying a group with running children cancels them safely")
{
    std::atomic<int> finished{0};
    weft::run([&]() -> weft::task<> {
        {
            weft::task_group g;
            co_await g.go([&]() -> weft::task<> {
                try {
                    co_await weft::sleep_for(1h);
                } catch (const weft::canceled_error&) {
                }
                finished.fetch_add(1);
            });
            co_await weft::sleep_for(1ms);
        }
        co_await weft::sleep_for(20ms);
    });
    CHECK(finished.load() == 1);
}

TEST_CASE("a rate limiter allows a burst, then the steady rate")
{
    weft::run([]() -> weft::task<> {
        weft::rate_limiter lim(100, 5); // 100/s, burst 5
        int allowed = 0;
        for (int i = 0; i < 20; ++i)
            allowed += lim.allow();
        CHECK(allowed == 5);
        auto t0 = wclock::now();
        for (int i = 0; i < 10; ++i)
            co_await lim.wait();
        auto took = wclock::now() - t0;
        // Ten more tokens at 100/s take about 100 ms.
        CHECK(took >= 90ms);
        CHECK(took < 1s);
    });
    CHECK_THROWS_AS(weft::rate_limiter(0, 1), std::invalid_argument);
    CHECK_THROWS_AS(weft::rate_limiter(1, 0), std::invalid_argument);
}

TEST_CASE("a cancelled rate limiter wait gives its token back")
{
    weft::run([]() -> weft::task<> {
        weft::rate_limiter lim(10, 1);
        CHECK(lim.allow());
        auto [c, cancel] = weft::with_cancel(weft::background());
        auto waiter = weft::go(c, [&]() -> weft::task<> { co_await lim.wait(); });
        co_await weft::sleep_for(5ms);
        cancel();
        CHECK_THROWS_AS(co_await waiter, weft::canceled_error);
        CHECK(lim.tokens() > -0.5); // the reservation was returned
    });
}
