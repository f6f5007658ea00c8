#include <weft/once.hpp>

#include "test_support.hpp"

#include <weft/chan.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <vector>

TEST_CASE("once runs a void function the first time only")
{
    weft::run([]() -> weft::task<> {
        weft::once o;
        int calls = 0;
        co_await o.call([&] { ++calls; });
        co_await o.call([&] { ++calls; });
        co_await o.call([&] { calls += 100; });
        CHECK(calls == 1);
    });
}

TEST_CASE("once runs a function returning task<> and waits for it")
{
    weft::run([]() -> weft::task<> {
        weft::once o;
        int calls = 0;
        bool finished = false;
        co_await o.call([&]() -> weft::task<> {
            ++calls;
            co_await weft::this_task::yield();
            finished = true;
        });
        CHECK(finished);
        co_await o.call([&]() -> weft::task<> {
            ++calls;
            co_return;
        });
        CHECK(calls == 1);
    });
}

TEST_CASE("once runs f exactly once with many concurrent callers, and all of them wait for it")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::once o;
            std::atomic<int> calls{0};
            std::atomic<int> returned{0};
            std::atomic<bool> f_done{false};
            std::atomic<int> returned_early{0};
            auto gate = weft::make_chan<int>();
            std::vector<weft::join_handle<>> hs;
            for (int i = 0; i < 20; ++i)
                hs.push_back(weft::go([&]() -> weft::task<> {
                    co_await o.call([&]() -> weft::task<> {
                        calls.fetch_add(1);
                        // Stay inside f until main opens the gate.
                        (void)co_await gate.recv();
                        f_done = true;
                    });
                    if (!f_done.load())
                        returned_early.fetch_add(1);
                    returned.fetch_add(1);
                }));
            CHECK(co_await weft_test::eventually([&] { return calls.load() == 1; }));
            for (int i = 0; i < 100; ++i)
                co_await weft::this_task::yield();
            CHECK(returned.load() == 0);
            gate.close();
            for (auto& h : hs)
                co_await h;
            CHECK(calls.load() == 1);
            CHECK(returned.load() == 20);
            CHECK(returned_early.load() == 0);
        });
    }
}

TEST_CASE("once counts a throwing f as done")
{
    weft::run([]() -> weft::task<> {
        weft::once o;
        int calls = 0;
        CHECK_THROWS_AS(co_await o.call([&]() -> void {
            ++calls;
            throw std::runtime_error("init failed");
        }),
                        std::runtime_error);
        co_await o.call([&] { ++calls; });
        CHECK(calls == 1);

        weft::once o2;
        CHECK_THROWS_AS(co_await o2.call([&]() -> weft::task<> {
            ++calls;
            co_await weft::this_task::yield();
            throw std::runtime_error("async init failed");
        }),
                        std::runtime_error);
        co_await o2.call([&]() -> weft::task<> {
            ++calls;
            co_return;
        });
        CHECK(calls == 2);
    });
}

TEST_CASE("callers waiting on a throwing f are released and do not run f again")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        weft::once o;
        std::atomic<int> calls{0};
        std::atomic<int> released{0};
        auto gate = weft::make_chan<int>();
        auto first = weft::go([&]() -> weft::task<bool> {
            try {
                co_await o.call([&]() -> weft::task<> {
                    calls.fetch_add(1);
                    (void)co_await gate.recv();
                    throw std::runtime_error("failed");
                });
            } catch (const std::runtime_error&) {
                co_return true;
            }
            co_return false;
        });
        CHECK(co_await weft_test::eventually([&] { return calls.load() == 1; }));
        std::vector<weft::join_handle<>> others;
        for (int i = 0; i < 5; ++i)
            others.push_back(weft::go([&]() -> weft::task<> {
                co_await o.call([&] { calls.fetch_add(1); });
                released.fetch_add(1);
            }));
        for (int i = 0; i < 50; ++i)
            co_await weft::this_task::yield();
        CHECK(released.load() == 0);
        gate.close();
        CHECK(co_await first);
        for (auto& h : others)
            co_await h;
        CHECK(released.load() == 5);
        CHECK(calls.load() == 1);
    });
}

TEST_CASE("a once may be destroyed as soon as call returns")
{
    // The task that ran f may still be inside once's bookkeeping when a
    // waiting caller returns; that caller frees the once at once.
    weft::run(weft::runtime_options{.workers = 4}, []() -> weft::task<> {
        for (int round = 0; round < 2000; ++round) {
            auto o = std::make_unique<weft::once>();
            std::atomic<int> runs{0};
            std::atomic<bool> started{false};
            auto h = weft::go([p = o.get(), &runs, &started, round]() -> weft::task<> {
                co_await p->call([&]() -> weft::task<> {
                    runs.fetch_add(1);
                    started.store(true);
                    for (int i = 0; i < round % 3; ++i)
                        co_await weft::this_task::yield();
                });
            });
            while (!started.load())
                co_await weft::this_task::yield();
            co_await o->call([&] { runs.fetch_add(1); });
            o.reset();
            co_await h;
            CHECK(runs.load() == 1);
        }
    });
}
