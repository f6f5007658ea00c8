// Runtime stress: many tasks, repeated runtimes, shutdown with tasks left
// blocked, block_on from many threads. Iterations scale with
// WEFT_STRESS_SCALE (default 1).
#include <weft/runtime.hpp>

#include "test_support.hpp"

#include <weft/chan.hpp>
#include <weft/task.hpp>
#include <weft/wait_group.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

TEST_CASE("a hundred thousand short tasks all run")
{
    const int n = static_cast<int>(100000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        std::atomic<int> ran{0};
        weft::run(weft::runtime_options{.workers = w}, [&ran, n]() -> weft::task<> {
            weft::wait_group wg;
            wg.add(n);
            for (int i = 0; i < n; ++i)
                weft::go([&]() -> weft::task<> {
                    ran.fetch_add(1, std::memory_order_relaxed);
                    wg.done();
                    co_return;
                });
            co_await wg.wait();
        });
        CHECK(ran.load() == n);
    }
}

TEST_CASE("tasks spawning tasks form a deep tree that completes")
{
    const int depth = 12 + static_cast<int>(weft_test::stress_scale() > 4 ? 2 : 0);
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        struct tree {
            static weft::task<long> grow(int d)
            {
                if (d == 0)
                    co_return 1;
                auto left = weft::go(grow, d - 1);
                auto right = weft::go(grow, d - 1);
                co_return co_await left + co_await right;
            }
        };
        const long leaves = weft::run(weft::runtime_options{.workers = w}, tree::grow, depth);
        CHECK(leaves == (1L << depth));
    }
}

TEST_CASE("repeated runs each destroy the tasks they leave blocked")
{
    const int rounds = static_cast<int>(100 * weft_test::stress_scale());
    std::atomic<int> live{0};
    int wrong = 0;
    for (int round = 0; round < rounds; ++round) {
        const unsigned w = 1u + static_cast<unsigned>(round % 4);
        weft::run(weft::runtime_options{.workers = w}, [&live, round]() -> weft::task<> {
            auto never = weft::make_chan<int>();
            auto busy = weft::make_chan<int>(1);
            for (int i = 0; i < 20; ++i) {
                weft::go(
                    [guard = weft_test::live_counter(live)](weft::chan<int> c) -> weft::task<> {
                        (void)guard;
                        (void)co_await c.recv();
                    },
                    i % 2 ? never : busy);
            }
            for (int i = 0; i < round % 7; ++i)
                co_await weft::this_task::yield();
        });
        wrong += live.load() == 0 ? 0 : 1;
    }
    CHECK(wrong == 0);
}

TEST_CASE("many plain threads block_on a running runtime at once")
{
    const int per = static_cast<int>(200 * weft_test::stress_scale());
    constexpr int threads = 6;
    const long sum = weft::run(weft::runtime_options{.workers = 2}, [per]() -> weft::task<long> {
        auto ch = weft::make_chan<int>(4);
        std::atomic<int> done{0};
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                for (int i = 0; i < per; ++i)
                    weft::block_on(ch.send(t * per + i));
                done.fetch_add(1);
            });
        long s = 0;
        for (int n = 0; n < threads * per; ++n)
            s += *co_await ch.recv();
        const bool finished =
            co_await weft_test::eventually([&] { return done.load() == threads; });
        for (auto& t : ts)
            t.join();
        co_return finished ? s : -1;
    });
    const long n = static_cast<long>(threads) * per;
    CHECK(sum == n * (n - 1) / 2);
}

TEST_CASE("block_on with no runtime can be repeated from several threads in turn")
{
    const int rounds = static_cast<int>(50 * weft_test::stress_scale());
    int wrong = 0;
    for (int r = 0; r < rounds; ++r) {
        int result = 0;
        std::thread t([&result, r] {
            auto twice = [](int x) -> weft::task<int> {
                auto h = weft::go([](int y) -> weft::task<int> { co_return 2 * y; }, x);
                co_return co_await h;
            };
            result = weft::block_on(twice(r));
        });
        t.join();
        wrong += result == 2 * r ? 0 : 1;
    }
    CHECK(wrong == 0);
}
