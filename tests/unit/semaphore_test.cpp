#include <weft/semaphore.hpp>

#include "test_support.hpp"

#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <vector>

TEST_CASE("a semaphore hands out weighted permits")
{
    weft::run([]() -> weft::task<> {
        weft::semaphore sem(10);
        co_await sem.acquire(7);
        CHECK(!sem.try_acquire(4));
        CHECK(sem.try_acquire(3));
        CHECK(!sem.try_acquire());
        sem.release(5);
        CHECK(sem.try_acquire(5));
        CHECK(!sem.try_acquire(1));
        sem.release(10);
        CHECK(sem.try_acquire(10));
        sem.release(10);
        co_await sem.acquire();
        sem.release();
    });
}

TEST_CASE("releasing more than was acquired throws std::logic_error")
{
    weft::semaphore sem(2);
    CHECK_THROWS_AS(sem.release(1), std::logic_error);
    CHECK(sem.try_acquire(2));
    sem.release(1);
    CHECK_THROWS_AS(sem.release(2), std::logic_error);
    sem.release(1);
    CHECK(sem.try_acquire(2));
    sem.release(2);
}

TEST_CASE("a blocked acquire completes when enough permits are released")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::semaphore sem(3);
            co_await sem.acquire(3);
            std::atomic<bool> got{false};
            auto h = weft::go([&]() -> weft::task<> {
                co_await sem.acquire(2);
                got = true;
            });
            for (int i = 0; i < 50; ++i)
                co_await weft::this_task::yield();
            CHECK(!got.load());
            sem.release(1);
            for (int i = 0; i < 50; ++i)
                co_await weft::this_task::yield();
            CHECK(!got.load());
            sem.release(1);
            co_await h;
            CHECK(got.load());
            sem.release(2);
            sem.release(1);
            CHECK(sem.try_acquire(3));
            sem.release(3);
        });
    }
}

TEST_CASE(
    "semaphore waiters are served in FIFO order: a large head request holds back smaller ones")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::semaphore sem(4);
            co_await sem.acquire(4);
            sem.release(1); // one permit free: not enough for the big request
            std::atomic<bool> big_got{false};
            std::atomic<bool> small_started{false};
            std::atomic<bool> small_got{false};
            auto big = weft::go([&]() -> weft::task<> {
                co_await sem.acquire(3);
                big_got = true;
            });
            // Once the big request is queued, even the one free permit cannot
            // be taken ahead of it.
            CHECK(co_await weft_test::eventually([&] {
                if (sem.try_acquire(1)) {
                    sem.release(1);
                    return false;
                }
                return true;
            }));
            auto small = weft::go([&]() -> weft::task<> {
                small_started = true;
                co_await sem.acquire(1);
                small_got = true;
            });
            CHECK(co_await weft_test::eventually([&] { return small_started.load(); }));
            for (int i = 0; i < 50; ++i)
                co_await weft::this_task::yield();
            CHECK(!big_got.load());
            CHECK(!small_got.load());

            sem.release(2); // three free: the big request at the head is served
            co_await big;
            CHECK(big_got.load());
            for (int i = 0; i < 50; ++i)
                co_await weft::this_task::yield();
            CHECK(!small_got.load());

            sem.release(1); // main's last permit goes to the small request
            co_await small;
            CHECK(small_got.load());

            sem.release(3); // on behalf of big
            sem.release(1); // on behalf of small
            CHECK(sem.try_acquire(4));
            sem.release(4);
            CHECK_THROWS_AS(sem.release(1), std::logic_error);
        });
    }
}

TEST_CASE("a semaphore limits concurrency under contention")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        std::atomic<int> inside{0};
        std::atomic<int> max_inside{0};
        std::atomic<int> done{0};
        weft::run(weft::runtime_options{.workers = w}, [&]() -> weft::task<> {
            weft::semaphore sem(3);
            std::vector<weft::join_handle<>> hs;
            for (int t = 0; t < 20; ++t)
                hs.push_back(weft::go([&, t]() -> weft::task<> {
                    for (int i = 0; i < 50; ++i) {
                        const std::int64_t k = 1 + (t + i) % 2;
                        co_await sem.acquire(k);
                        const int now = inside.fetch_add(static_cast<int>(k)) + static_cast<int>(k);
                        int seen = max_inside.load();
                        while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
                        }
                        co_await weft::this_task::yield();
                        inside.fetch_sub(static_cast<int>(k));
                        sem.release(k);
                    }
                    done.fetch_add(1);
                }));
            for (auto& h : hs)
                co_await h;
            CHECK(sem.try_acquire(3));
            sem.release(3);
        });
        CHECK(done.load() == 20);
        CHECK(max_inside.load() <= 3);
        CHECK(max_inside.load() >= 1);
    }
}
