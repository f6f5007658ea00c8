#include <weft/mutex.hpp>

#include "test_support.hpp"

#include <weft/chan.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

TEST_CASE("a mutex can be locked and unlocked")
{
    weft::run([]() -> weft::task<> {
        weft::mutex mu;
        co_await mu.lock();
        CHECK(!mu.try_lock());
        mu.unlock();
        CHECK(mu.try_lock());
        CHECK(!mu.try_lock());
        mu.unlock();
    });
}

TEST_CASE("try_lock works outside any task")
{
    weft::mutex mu;
    CHECK(mu.try_lock());
    CHECK(!mu.try_lock());
    mu.unlock();
    CHECK(mu.try_lock());
    mu.unlock();
}

TEST_CASE("unlock of an unlocked mutex throws std::logic_error")
{
    weft::mutex mu;
    CHECK_THROWS_AS(mu.unlock(), std::logic_error);
    CHECK(mu.try_lock());
    mu.unlock();
    CHECK_THROWS_AS(mu.unlock(), std::logic_error);
}

TEST_CASE("scoped_lock holds the mutex until the guard is destroyed")
{
    weft::run([]() -> weft::task<> {
        weft::mutex mu;
        {
            auto guard = co_await mu.scoped_lock();
            CHECK(!mu.try_lock());
        }
        CHECK(mu.try_lock());
        mu.unlock();
    });
}

TEST_CASE("scoped_lock releases the mutex when an exception leaves the scope")
{
    weft::run([]() -> weft::task<> {
        weft::mutex mu;
        try {
            auto guard = co_await mu.scoped_lock();
            throw std::runtime_error("inside");
        } catch (const std::runtime_error&) {
        }
        CHECK(mu.try_lock());
        mu.unlock();
    });
}

TEST_CASE("a task blocked in lock acquires the mutex when it is unlocked")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::mutex mu;
            co_await mu.lock();
            std::atomic<bool> acquired{false};
            auto h = weft::go([&]() -> weft::task<> {
                co_await mu.lock();
                acquired = true;
                mu.unlock();
            });
            for (int i = 0; i < 100; ++i)
                co_await weft::this_task::yield();
            CHECK(!acquired.load());
            mu.unlock();
            co_await h;
            CHECK(acquired.load());
        });
    }
}

TEST_CASE("a mutex may be unlocked by a different task than the one that locked it")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::mutex mu;
            co_await mu.lock();
            auto h = weft::go([&mu]() -> weft::task<> {
                mu.unlock();
                co_return;
            });
            co_await h;
            // Unlocked by the other task: locking again does not block.
            CHECK(mu.try_lock());
            mu.unlock();

            // And the other way round: a task locks, main unlocks.
            auto ready = weft::make_chan<int>();
            auto h2 = weft::go([&mu, ready]() -> weft::task<> {
                co_await mu.lock();
                co_await ready.send(1);
            });
            co_await ready.recv();
            co_await h2;
            CHECK(!mu.try_lock());
            mu.unlock();
            CHECK(mu.try_lock());
            mu.unlock();
        });
    }
}

TEST_CASE("a mutex gives mutual exclusion under contention")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        struct shared_state {
            weft::mutex mu;
            long counter = 0; // plain data, guarded by mu
            std::atomic<int> inside{0};
            std::atomic<int> overlaps{0};
        } s;
        constexpr int tasks = 16;
        constexpr int iterations = 500;
        weft::run(weft::runtime_options{.workers = w}, [&s]() -> weft::task<> {
            std::vector<weft::join_handle<>> hs;
            for (int t = 0; t < tasks; ++t)
                hs.push_back(weft::go([&s, t]() -> weft::task<> {
                    for (int i = 0; i < iterations; ++i) {
                        if ((i + t) % 3 == 0) {
                            auto guard = co_await s.mu.scoped_lock();
                            if (s.inside.fetch_add(1) != 0)
                                s.overlaps.fetch_add(1);
                            const long v = s.counter;
                            if (i % 7 == 0)
                                co_await weft::this_task::yield();
                            s.counter = v + 1;
                            s.inside.fetch_sub(1);
                        } else if ((i + t) % 3 == 1) {
                            co_await s.mu.lock();
                            if (s.inside.fetch_add(1) != 0)
                                s.overlaps.fetch_add(1);
                            const long v = s.counter;
                            s.counter = v + 1;
                            s.inside.fetch_sub(1);
                            s.mu.unlock();
                        } else {
                            while (!s.mu.try_lock())
                                co_await weft::this_task::yield();
                            if (s.inside.fetch_add(1) != 0)
                                s.overlaps.fetch_add(1);
                            const long v = s.counter;
                            s.counter = v + 1;
                            s.inside.fetch_sub(1);
                            s.mu.unlock();
                        }
                    }
                }));
            for (auto& h : hs)
                co_await h;
        });
        CHECK(s.overlaps.load() == 0);
        CHECK(s.counter == static_cast<long>(tasks) * iterations);
    }
}

TEST_CASE("a mutex wakes every waiter eventually")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        weft::mutex mu;
        co_await mu.lock();
        std::atomic<int> done{0};
        std::vector<weft::join_handle<>> hs;
        for (int i = 0; i < 50; ++i)
            hs.push_back(weft::go([&]() -> weft::task<> {
                co_await mu.lock();
                done.fetch_add(1);
                mu.unlock();
            }));
        for (int i = 0; i < 20; ++i)
            co_await weft::this_task::yield();
        CHECK(done.load() == 0);
        mu.unlock();
        for (auto& h : hs)
            co_await h;
        CHECK(done.load() == 50);
    });
}
