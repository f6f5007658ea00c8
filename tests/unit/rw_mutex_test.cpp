#include <weft/rw_mutex.hpp>

#include "test_support.hpp"

#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

TEST_CASE("several readers hold an rw_mutex at the same time")
{
    weft::run([]() -> weft::task<> {
        weft::rw_mutex rw;
        co_await rw.lock_shared();
        CHECK(rw.try_lock_shared());
        co_await rw.lock_shared();
        CHECK(!rw.try_lock());
        rw.unlock_shared();
        rw.unlock_shared();
        CHECK(!rw.try_lock());
        rw.unlock_shared();
        CHECK(rw.try_lock());
        rw.unlock();
    });
}

TEST_CASE("a writer excludes readers and other writers")
{
    weft::run([]() -> weft::task<> {
        weft::rw_mutex rw;
        co_await rw.lock();
        CHECK(!rw.try_lock());
        CHECK(!rw.try_lock_shared());
        rw.unlock();
        CHECK(rw.try_lock_shared());
        rw.unlock_shared();
    });
}

TEST_CASE("readers run concurrently while blocked on each other")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::rw_mutex rw;
            std::atomic<int> readers_in{0};
            std::vector<weft::join_handle<bool>> hs;
            // Every reader waits, while holding the shared lock, until all are
            // inside: this only finishes if the readers share the lock.
            for (int i = 0; i < 4; ++i)
                hs.push_back(weft::go([&]() -> weft::task<bool> {
                    co_await rw.lock_shared();
                    readers_in.fetch_add(1);
                    const bool all =
                        co_await weft_test::eventually([&] { return readers_in.load() == 4; });
                    rw.unlock_shared();
                    co_return all;
                }));
            for (auto& h : hs)
                CHECK(co_await h);
        });
    }
}

TEST_CASE("a waiting writer blocks new readers")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::rw_mutex rw;
            co_await rw.lock_shared();
            std::atomic<bool> writer_in{false};
            auto writer = weft::go([&]() -> weft::task<> {
                co_await rw.lock();
                writer_in = true;
                rw.unlock();
            });
            // Once the writer is queued, try_lock_shared must fail.
            const bool blocked = co_await weft_test::eventually([&] {
                if (rw.try_lock_shared()) {
                    rw.unlock_shared();
                    return false;
                }
                return true;
            });
            CHECK(blocked);
            CHECK(!writer_in.load());
            rw.unlock_shared();
            co_await writer;
            CHECK(writer_in.load());
            CHECK(rw.try_lock_shared());
            rw.unlock_shared();
        });
    }
}

TEST_CASE("a writer waiting behind readers is not starved by a stream of new readers")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        weft::rw_mutex rw;
        std::atomic<bool> stop{false};
        std::atomic<int> reads{0};
        std::vector<weft::join_handle<>> readers;
        for (int i = 0; i < 4; ++i)
            readers.push_back(weft::go([&]() -> weft::task<> {
                while (!stop.load()) {
                    co_await rw.lock_shared();
                    reads.fetch_add(1);
                    co_await weft::this_task::yield();
                    rw.unlock_shared();
                }
            }));
        CHECK(co_await weft_test::eventually([&] { return reads.load() > 100; }));
        co_await rw.lock();
        stop = true;
        rw.unlock();
        for (auto& h : readers)
            co_await h;
    });
}

TEST_CASE("a writer blocked by a reader acquires the lock after the reader leaves")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::rw_mutex rw;
            long data = 0; // plain data, guarded by rw
            co_await rw.lock_shared();
            auto writer = weft::go([&]() -> weft::task<> {
                co_await rw.lock();
                data = 42;
                rw.unlock();
            });
            for (int i = 0; i < 50; ++i)
                co_await weft::this_task::yield();
            CHECK(data == 0);
            rw.unlock_shared();
            co_await writer;
            co_await rw.lock_shared();
            CHECK(data == 42);
            rw.unlock_shared();
        });
    }
}

TEST_CASE("readers blocked by a writer all enter when it unlocks")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        weft::rw_mutex rw;
        co_await rw.lock();
        std::atomic<int> entered{0};
        std::vector<weft::join_handle<>> hs;
        for (int i = 0; i < 6; ++i)
            hs.push_back(weft::go([&]() -> weft::task<> {
                co_await rw.lock_shared();
                entered.fetch_add(1);
                rw.unlock_shared();
            }));
        for (int i = 0; i < 50; ++i)
            co_await weft::this_task::yield();
        CHECK(entered.load() == 0);
        rw.unlock();
        for (auto& h : hs)
            co_await h;
        CHECK(entered.load() == 6);
    });
}

TEST_CASE("rw_mutex writers are mutually exclusive with everyone under contention")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::rw_mutex rw;
        std::atomic<int> readers{0};
        std::atomic<int> writers{0};
        std::atomic<int> violations{0};
        long value = 0; // plain data, guarded by rw
        weft::run(weft::runtime_options{.workers = w}, [&]() -> weft::task<> {
            std::vector<weft::join_handle<>> hs;
            for (int t = 0; t < 12; ++t)
                hs.push_back(weft::go([&, t]() -> weft::task<> {
                    for (int i = 0; i < 300; ++i) {
                        if ((t + i) % 4 == 0) {
                            co_await rw.lock();
                            if (writers.fetch_add(1) != 0 || readers.load() != 0)
                                violations.fetch_add(1);
                            ++value;
                            if (i % 5 == 0)
                                co_await weft::this_task::yield();
                            writers.fetch_sub(1);
                            rw.unlock();
                        } else {
                            co_await rw.lock_shared();
                            readers.fetch_add(1);
                            if (writers.load() != 0)
                                violations.fetch_add(1);
                            const long seen = value;
                            (void)seen;
                            if (i % 5 == 0)
                                co_await weft::this_task::yield();
                            readers.fetch_sub(1);
                            rw.unlock_shared();
                        }
                    }
                }));
            for (auto& h : hs)
                co_await h;
        });
        CHECK(violations.load() == 0);
        CHECK(value == 12 * 300 / 4);
    }
}

TEST_CASE("unlocking an rw_mutex that is not held throws std::logic_error")
{
    weft::rw_mutex rw;
    CHECK_THROWS_AS(rw.unlock(), std::logic_error);
    CHECK_THROWS_AS(rw.unlock_shared(), std::logic_error);
    CHECK(rw.try_lock());
    rw.unlock();
    CHECK_THROWS_AS(rw.unlock(), std::logic_error);
}

TEST_CASE("scoped_lock and scoped_lock_shared unlock the way they locked")
{
    weft::run([]() -> weft::task<> {
        weft::rw_mutex rw;
        {
            auto r1 = co_await rw.scoped_lock_shared();
            auto r2 = co_await rw.scoped_lock_shared();
            CHECK(!rw.try_lock());
            r1.unlock();
            CHECK(!r1.owns_lock());
            CHECK(!rw.try_lock());
        }
        {
            auto w = co_await rw.scoped_lock();
            CHECK(!rw.try_lock_shared());
            auto moved = std::move(w);
            CHECK(!rw.try_lock_shared());
        }
        CHECK(rw.try_lock());
        rw.unlock();
    });
}
