#include <weft/runtime.hpp>

#include "test_support.hpp"

#include <weft/chan.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

weft::task<int> square(int x)
{
    co_return x* x;
}

/// Sets an environment variable for the lifetime of the object and restores
/// the previous value afterwards.
class scoped_env {
public:
    scoped_env(const char* name, const char* value) : m_name(name)
    {
        if (const char* old = std::getenv(name))
            m_old = old;
        ::setenv(name, value, 1);
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;
    ~scoped_env()
    {
        if (m_old)
            ::setenv(m_name, m_old->c_str(), 1);
        else
            ::unsetenv(m_name);
    }

private:
    const char* m_name;
    std::optional<std::string> m_old;
};

} // namespace

TEST_CASE("run returns the main task's value")
{
    CHECK(weft::run([]() -> weft::task<int> { co_return 5; }) == 5);
    CHECK(weft::run(square, 7) == 49);
    CHECK(
        weft::run([](int a,
                     std::string b) -> weft::task<std::string> { co_return b + std::to_string(a); },
                  3, std::string("x")) == "x3");
}

TEST_CASE("run may be called many times in one process")
{
    for (int i = 0; i < 20; ++i) {
        const unsigned workers = 1u + static_cast<unsigned>(i % 3);
        const int v = weft::run(
            weft::runtime_options{.workers = workers},
            [](int x) -> weft::task<int> { co_return x + 1; }, i);
        CHECK(v == i + 1);
    }
}

TEST_CASE("run rethrows an exception that escapes the main task")
{
    CHECK_THROWS_AS(weft::run([]() -> weft::task<> {
                        throw std::runtime_error("main failed");
                        co_return;
                    }),
                    std::runtime_error);
    CHECK_THROWS_AS(weft::run(weft::runtime_options{.workers = 2},
                              []() -> weft::task<int> {
                                  co_await weft::this_task::yield();
                                  throw std::invalid_argument("later");
                                  co_return 1;
                              }),
                    std::invalid_argument);
    // The runtime is usable after a failed run.
    CHECK(weft::run([]() -> weft::task<int> { co_return 1; }) == 1);
}

TEST_CASE("max_procs reports the configured number of workers")
{
    for (unsigned w : {1u, 2u, 3u}) {
        CAPTURE(w);
        const unsigned seen =
            weft::run(weft::runtime_options{.workers = w},
                      []() -> weft::task<unsigned> { co_return weft::max_procs(); });
        CHECK(seen == w);
    }
}

TEST_CASE("with workers = 0 the worker count comes from WEFT_MAXPROCS")
{
    scoped_env env("WEFT_MAXPROCS", "3");
    const unsigned seen = weft::run([]() -> weft::task<unsigned> { co_return weft::max_procs(); });
    CHECK(seen == 3);
}

TEST_CASE("go runs the function concurrently and join returns its value")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto h = weft::go(square, 6);
            CHECK(co_await h == 36);

            auto h2 = weft::go([]() -> weft::task<std::string> {
                co_await weft::this_task::yield();
                co_return "done";
            });
            CHECK(co_await std::move(h2) == "done");
        });
    }
}

TEST_CASE("join of a void task waits for it to finish")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::atomic<bool> finished{false};
        auto h = weft::go([&finished]() -> weft::task<> {
            for (int i = 0; i < 10; ++i)
                co_await weft::this_task::yield();
            finished = true;
        });
        co_await h;
        CHECK(finished.load());
    });
}

TEST_CASE("join rethrows the exception that escaped the task")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto h = weft::go([]() -> weft::task<int> {
            co_await weft::this_task::yield();
            throw std::domain_error("child failed");
            co_return 0;
        });
        CHECK_THROWS_AS(co_await h, std::domain_error);
    });
}

TEST_CASE("a join_handle can be joined only once")
{
    weft::run([]() -> weft::task<> {
        auto h = weft::go(square, 2);
        CHECK(co_await h == 4);
        CHECK_THROWS_AS(co_await h, std::logic_error);
    });
}

TEST_CASE("join of a move-only result hands over the value")
{
    weft::run([]() -> weft::task<> {
        auto h = weft::go(
            []() -> weft::task<std::unique_ptr<int>> { co_return std::make_unique<int>(3); });
        std::unique_ptr<int> p = co_await std::move(h);
        REQUIRE(p);
        CHECK(*p == 3);
    });
}

TEST_CASE("go decay-copies the function and its arguments into the task")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::optional<weft::join_handle<std::string>> h;
        {
            std::string captured = "captured";
            std::string arg = "-arg";
            h = weft::go(
                [captured](std::string a) -> weft::task<std::string> {
                    co_await weft::this_task::yield();
                    co_return captured + a;
                },
                arg);
            captured = "changed";
            arg = "changed";
        }
        CHECK(co_await *h == "captured-arg");
    });
}

TEST_CASE("dropping a join_handle detaches the task, which still runs")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto ch = weft::make_chan<int>();
            weft::go([](weft::chan<int> c) -> weft::task<> { co_await c.send(11); }, ch);
            auto v = co_await ch.recv();
            REQUIRE(v);
            CHECK(*v == 11);
        });
    }
}

TEST_CASE("join_handle is movable")
{
    static_assert(std::is_move_constructible_v<weft::join_handle<int>>);
    static_assert(std::is_move_assignable_v<weft::join_handle<int>>);
    weft::run([]() -> weft::task<> {
        auto h = weft::go(square, 4);
        weft::join_handle<int> moved = std::move(h);
        std::vector<weft::join_handle<int>> handles;
        handles.push_back(std::move(moved));
        CHECK(co_await handles.front() == 16);
    });
}

TEST_CASE("many spawned tasks all complete and are joined")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        const long total = weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<long> {
            std::vector<weft::join_handle<int>> hs;
            for (int i = 0; i < 1000; ++i)
                hs.push_back(weft::go(square, i));
            long sum = 0;
            for (auto& h : hs)
                sum += co_await h;
            co_return sum;
        });
        long expected = 0;
        for (long i = 0; i < 1000; ++i)
            expected += i * i;
        CHECK(total == expected);
    }
}

TEST_CASE("num_tasks counts the main task and live spawned tasks")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        CHECK(weft::num_tasks() == 1);
        auto gate = weft::make_chan<int>();
        std::vector<weft::join_handle<>> hs;
        for (int i = 0; i < 5; ++i)
            hs.push_back(
                weft::go([](weft::chan<int> g) -> weft::task<> { (void)co_await g.recv(); }, gate));
        CHECK(weft::num_tasks() == 6);
        gate.close();
        for (auto& h : hs)
            co_await h;
        CHECK(co_await weft_test::eventually([] { return weft::num_tasks() == 1; }));
    });
}

TEST_CASE("this_task::yield lets another task on the same worker run")
{
    weft::run(weft::runtime_options{.workers = 1}, []() -> weft::task<> {
        bool flag = false;
        auto h = weft::go([&flag]() -> weft::task<> {
            flag = true;
            co_return;
        });
        // With one worker the spawned task can only run when this one yields.
        while (!flag)
            co_await weft::this_task::yield();
        CHECK(flag);
        co_await h;
    });
}

TEST_CASE("tasks still blocked when main returns are destroyed")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        std::atomic<int> live{0};
        std::atomic<int> started{0};
        weft::run(weft::runtime_options{.workers = w}, [&live, &started]() -> weft::task<> {
            auto never = weft::make_chan<int>();
            for (int i = 0; i < 3; ++i) {
                weft::go(
                    [guard = weft_test::live_counter(live),
                     &started](weft::chan<int> c) -> weft::task<> {
                        started.fetch_add(1);
                        (void)co_await c.recv();
                        (void)guard;
                    },
                    never);
            }
            CHECK(co_await weft_test::eventually([&started] { return started.load() == 3; }));
            CHECK(live.load() >= 3);
            CHECK(weft::num_tasks() == 4);
        });
        CHECK(live.load() == 0);
    }
}

TEST_CASE("tasks that never started when main returns are destroyed too")
{
    std::atomic<int> live{0};
    std::atomic<int> ran{0};
    weft::run(weft::runtime_options{.workers = 1}, [&live, &ran]() -> weft::task<> {
        // With one worker and no suspension in main, none of these get to run.
        for (int i = 0; i < 10; ++i)
            weft::go([guard = weft_test::live_counter(live), &ran]() -> weft::task<> {
                ran.fetch_add(1);
                (void)guard;
                co_return;
            });
        co_return;
    });
    CHECK(live.load() == 0);
}

TEST_CASE("block_on with no runtime running runs one for the duration")
{
    CHECK(weft::block_on(square(9)) == 81);

    auto ch = weft::make_chan<int>(2);
    weft::block_on(ch.send(1));
    weft::block_on(ch.send(2));
    CHECK(ch.size() == 2);
    CHECK(weft::block_on(ch.recv()) == std::optional<int>(1));
    CHECK(weft::block_on(ch.recv()) == std::optional<int>(2));

    auto spawning = []() -> weft::task<int> {
        auto h = weft::go(square, 5);
        co_return co_await h;
    };
    CHECK(weft::block_on(spawning()) == 25);
}

TEST_CASE("block_on from a plain thread rethrows the awaitable's exception")
{
    auto failing = []() -> weft::task<int> {
        throw std::runtime_error("failed");
        co_return 0;
    };
    CHECK_THROWS_AS(weft::block_on(failing()), std::runtime_error);
}

TEST_CASE("block_on from a plain thread works while a runtime runs")
{
    for (unsigned w : {1u, 2u}) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto to_task = weft::make_chan<int>();
            auto to_thread = weft::make_chan<int>();
            std::atomic<bool> thread_done{false};
            std::optional<int> thread_got;
            std::thread t([&] {
                // Give the main task time to block first: waiting on a value a
                // block_on thread will send is not a deadlock.
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                weft::block_on(to_task.send(41));
                thread_got = weft::block_on(to_thread.recv());
                thread_done = true;
            });
            auto v = co_await to_task.recv();
            co_await to_thread.send(*v + 1);
            // Never block a worker in join(): the thread may need one to finish.
            const bool finished =
                co_await weft_test::eventually([&] { return thread_done.load(); });
            t.join();
            REQUIRE(v);
            CHECK(*v == 41);
            CHECK(finished);
            CHECK(thread_got == std::optional<int>(42));
        });
    }
}

TEST_CASE("several plain threads can block_on one channel concurrently")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto ch = weft::make_chan<int>();
        std::atomic<int> done{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 4; ++i)
            threads.emplace_back([&, i] {
                for (int k = 0; k < 25; ++k)
                    weft::block_on(ch.send(i * 100 + k));
                done.fetch_add(1);
            });
        std::set<int> seen;
        for (int n = 0; n < 100; ++n) {
            auto v = co_await ch.recv();
            if (v)
                seen.insert(*v);
        }
        const bool finished = co_await weft_test::eventually([&] { return done.load() == 4; });
        for (auto& t : threads)
            t.join();
        CHECK(finished);
        CHECK(seen.size() == 100);
    });
}
