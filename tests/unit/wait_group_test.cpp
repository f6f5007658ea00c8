#include <weft/wait_group.hpp>

#include "test_support.hpp"

#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

TEST_CASE("wait on a wait_group with a zero counter returns immediately")
{
    weft::run(weft::runtime_options{.workers = 1}, []() -> weft::task<> {
        weft::wait_group wg;
        co_await wg.wait();
        wg.add(2);
        wg.done();
        wg.done();
        co_await wg.wait();
        CHECK(true);
    });
}

TEST_CASE("a negative wait_group counter throws std::logic_error")
{
    weft::wait_group wg;
    CHECK_THROWS_AS(wg.done(), std::logic_error);

    weft::wait_group wg2;
    CHECK_THROWS_AS(wg2.add(-1), std::logic_error);

    weft::wait_group wg3;
    wg3.add(2);
    CHECK_THROWS_AS(wg3.add(-3), std::logic_error);
}

TEST_CASE("add with a negative delta counts down like done")
{
    weft::run([]() -> weft::task<> {
        weft::wait_group wg;
        wg.add(3);
        wg.add(-2);
        wg.done();
        co_await wg.wait();
        CHECK_THROWS_AS(wg.done(), std::logic_error);
    });
}

TEST_CASE("wait returns only after every task called done")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::wait_group wg;
            std::atomic<int> finished{0};
            constexpr int n = 50;
            for (int i = 0; i < n; ++i) {
                wg.add(1);
                weft::go([&, i]() -> weft::task<> {
                    for (int k = 0; k < i % 5; ++k)
                        co_await weft::this_task::yield();
                    finished.fetch_add(1);
                    wg.done();
                });
            }
            co_await wg.wait();
            CHECK(finished.load() == n);
        });
    }
}

TEST_CASE("several tasks can wait on one wait_group")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::wait_group wg;
            wg.add(1);
            std::atomic<bool> released{false};
            std::vector<weft::join_handle<bool>> waiters;
            for (int i = 0; i < 8; ++i)
                waiters.push_back(weft::go([&]() -> weft::task<bool> {
                    co_await wg.wait();
                    co_return released.load();
                }));
            for (int i = 0; i < 50; ++i)
                co_await weft::this_task::yield();
            released = true;
            wg.done();
            for (auto& h : waiters)
                CHECK(co_await h);
        });
    }
}

TEST_CASE("a wait_group can be reused after its counter reaches zero")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        weft::wait_group wg;
        for (int round = 0; round < 20; ++round) {
            std::atomic<int> count{0};
            wg.add(5);
            for (int i = 0; i < 5; ++i)
                weft::go([&]() -> weft::task<> {
                    count.fetch_add(1);
                    wg.done();
                    co_return;
                });
            co_await wg.wait();
            CHECK(count.load() == 5);
        }
    });
}

TEST_CASE("a wait_group counts correctly under contention")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        std::atomic<int> finished{0};
        weft::run(weft::runtime_options{.workers = w}, [&finished]() -> weft::task<> {
            weft::wait_group wg;
            weft::wait_group started;
            constexpr int spawners = 8;
            constexpr int per = 100;
            started.add(spawners);
            wg.add(spawners);
            for (int s = 0; s < spawners; ++s)
                weft::go([&]() -> weft::task<> {
                    // Each spawner adds for its children concurrently with the others.
                    for (int i = 0; i < per; ++i) {
                        wg.add(1);
                        weft::go([&]() -> weft::task<> {
                            finished.fetch_add(1);
                            wg.done();
                            co_return;
                        });
                    }
                    started.done();
                    wg.done();
                    co_return;
                });
            co_await started.wait();
            co_await wg.wait();
            CHECK(finished.load() == spawners * per);
        });
    }
}

TEST_CASE("a wait_group may be destroyed as soon as wait returns")
{
    // Each round's wait_group lives on the heap and is freed the moment
    // wait() returns, while the done() that released it may still be
    // finishing on another worker: under the sanitizers any access after
    // the release is a reported error.
    weft::run(weft::runtime_options{.workers = 4}, []() -> weft::task<> {
        for (int round = 0; round < 2000; ++round) {
            auto wg = std::make_unique<weft::wait_group>();
            const int n = 1 + round % 4;
            wg->add(n);
            for (int i = 0; i < n; ++i)
                weft::go([w = wg.get()]() -> weft::task<> {
                    w->done();
                    co_return;
                });
            if (round % 2)
                co_await weft::this_task::yield();
            co_await wg->wait();
            wg.reset();
        }
    });
}

TEST_CASE("a counter past INT32_MAX throws and leaves the wait_group unchanged")
{
    weft::run(weft::runtime_options{.workers = 1}, []() -> weft::task<> {
        weft::wait_group wg;
        wg.add(INT32_MAX);
        CHECK_THROWS_AS(wg.add(1), std::logic_error);
        CHECK_THROWS_AS(wg.add(std::int64_t{1} << 40), std::logic_error);
        wg.add(-INT32_MAX);
        co_await wg.wait();
    });
}

TEST_CASE("wait_group::go counts the task it starts until that task returns")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::wait_group wg;
            std::atomic<int> sum{0};
            for (int i = 1; i <= 10; ++i)
                wg.go([&sum](int k) -> weft::task<> {
                    co_await weft::this_task::yield();
                    sum.fetch_add(k);
                }, i);
            co_await wg.wait();
            CHECK(sum.load() == 55);
        });
    }
}
