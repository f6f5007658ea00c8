// Sync primitives under contention. Iterations scale with WEFT_STRESS_SCALE
// (default 1).
#include <weft/sync.hpp>

#include "test_support.hpp"

#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

TEST_CASE("a mutex keeps a plain counter exact under heavy contention")
{
    const int per = static_cast<int>(10000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::mutex mu;
        long counter = 0; // guarded by mu
        std::atomic<int> inside{0};
        std::atomic<int> overlaps{0};
        weft::run(weft::runtime_options{.workers = w}, [&]() -> weft::task<> {
            std::vector<weft::join_handle<>> hs;
            for (int t = 0; t < 32; ++t)
                hs.push_back(weft::go([&, t]() -> weft::task<> {
                    for (int i = 0; i < per; ++i) {
                        auto guard = co_await mu.scoped_lock();
                        if (inside.fetch_add(1) != 0)
                            overlaps.fetch_add(1);
                        ++counter;
                        if ((i + t) % 64 == 0)
                            co_await weft::this_task::yield();
                        inside.fetch_sub(1);
                    }
                }));
            for (auto& h : hs)
                co_await h;
        });
        CHECK(overlaps.load() == 0);
        CHECK(counter == 32L * per);
    }
}

TEST_CASE("an rw_mutex never lets a writer overlap anyone under contention")
{
    const int per = static_cast<int>(4000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::rw_mutex rw;
        std::atomic<int> readers{0};
        std::atomic<int> writers{0};
        std::atomic<int> violations{0};
        long writes = 0; // guarded by rw
        weft::run(weft::runtime_options{.workers = w}, [&]() -> weft::task<> {
            std::vector<weft::join_handle<>> hs;
            for (int t = 0; t < 16; ++t)
                hs.push_back(weft::go([&, t]() -> weft::task<> {
                    for (int i = 0; i < per; ++i) {
                        if ((i + t) % 8 == 0) {
                            co_await rw.lock();
                            if (writers.fetch_add(1) != 0 || readers.load() != 0)
                                violations.fetch_add(1);
                            ++writes;
                            writers.fetch_sub(1);
                            rw.unlock();
                        } else {
                            if (!rw.try_lock_shared())
                                co_await rw.lock_shared();
                            readers.fetch_add(1);
                            if (writers.load() != 0)
                                violations.fetch_add(1);
                            if (i % 16 == 0)
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
        CHECK(writes == 16L * per / 8);
    }
}

TEST_CASE("wait_group rounds with concurrent waiters complete every time")
{
    const int rounds = static_cast<int>(1000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        std::atomic<int> early{0};
        weft::run(weft::runtime_options{.workers = w}, [&, rounds]() -> weft::task<> {
            for (int round = 0; round < rounds; ++round) {
                auto wg = std::make_shared<weft::wait_group>();
                auto finished = std::make_shared<std::atomic<int>>(0);
                constexpr int workers_per_round = 8;
                wg->add(workers_per_round);
                for (int i = 0; i < workers_per_round; ++i)
                    weft::go([wg, finished]() -> weft::task<> {
                        co_await weft::this_task::yield();
                        finished->fetch_add(1);
                        wg->done();
                    });
                std::vector<weft::join_handle<>> waiters;
                for (int i = 0; i < 3; ++i)
                    waiters.push_back(weft::go([wg, finished, &early]() -> weft::task<> {
                        co_await wg->wait();
                        if (finished->load() != workers_per_round)
                            early.fetch_add(1);
                    }));
                co_await wg->wait();
                if (finished->load() != workers_per_round)
                    early.fetch_add(1);
                for (auto& h : waiters)
                    co_await h;
            }
        });
        CHECK(early.load() == 0);
    }
}

TEST_CASE("a wait_group may be destroyed as soon as its wait returns")
{
    // Regression: the done() that brought the counter to zero went on to
    // take the wait_group's lock, while a waiter that saw zero had already
    // returned and destroyed it (a heap-use-after-free under ASan).
    const int rounds = static_cast<int>(50000 * weft_test::stress_scale());
    weft::run(weft::runtime_options{.workers = 2}, [rounds]() -> weft::task<> {
        for (int round = 0; round < rounds; round++) {
            auto wg = std::make_unique<weft::wait_group>();
            wg->add(1);
            weft::go([](weft::wait_group* wg) -> weft::task<> {
                wg->done();
                co_return;
            }, wg.get());
            co_await wg->wait();
        }
    });
    CHECK(true);
}

TEST_CASE("once runs each function exactly once with many racing callers")
{
    const int onces = static_cast<int>(1000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        std::vector<std::atomic<int>> calls(static_cast<std::size_t>(onces));
        std::atomic<int> saw_unfinished{0};
        weft::run(weft::runtime_options{.workers = w}, [&]() -> weft::task<> {
            std::vector<weft::once> os(static_cast<std::size_t>(onces));
            std::vector<int> values(static_cast<std::size_t>(onces), 0); // written inside f
            std::vector<weft::join_handle<>> hs;
            for (int t = 0; t < 8; ++t)
                hs.push_back(weft::go([&, t]() -> weft::task<> {
                    for (int k = 0; k < onces; ++k) {
                        const auto i = static_cast<std::size_t>((k + t * 7) % onces);
                        if ((k + t) % 2 == 0) {
                            co_await os[i].call([&, i] {
                                calls[i].fetch_add(1);
                                values[i] = static_cast<int>(i) + 1;
                            });
                        } else {
                            co_await os[i].call([&, i]() -> weft::task<> {
                                calls[i].fetch_add(1);
                                co_await weft::this_task::yield();
                                values[i] = static_cast<int>(i) + 1;
                            });
                        }
                        if (values[i] != static_cast<int>(i) + 1)
                            saw_unfinished.fetch_add(1);
                    }
                }));
            for (auto& h : hs)
                co_await h;
        });
        int wrong = 0;
        for (auto& c : calls)
            wrong += c.load() == 1 ? 0 : 1;
        CHECK(wrong == 0);
        CHECK(saw_unfinished.load() == 0);
    }
}

TEST_CASE("a weighted semaphore never hands out more than its size under contention")
{
    const int per = static_cast<int>(2000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        std::atomic<std::int64_t> held{0};
        std::atomic<int> violations{0};
        weft::run(weft::runtime_options{.workers = w}, [&]() -> weft::task<> {
            constexpr std::int64_t size = 5;
            weft::semaphore sem(size);
            std::vector<weft::join_handle<>> hs;
            for (int t = 0; t < 16; ++t)
                hs.push_back(weft::go([&, t]() -> weft::task<> {
                    for (int i = 0; i < per; ++i) {
                        const std::int64_t k = 1 + (t + i) % 3;
                        if (!sem.try_acquire(k))
                            co_await sem.acquire(k);
                        if (held.fetch_add(k) + k > size)
                            violations.fetch_add(1);
                        if (i % 8 == 0)
                            co_await weft::this_task::yield();
                        held.fetch_sub(k);
                        sem.release(k);
                    }
                }));
            for (auto& h : hs)
                co_await h;
            CHECK(sem.try_acquire(size));
            sem.release(size);
        });
        CHECK(violations.load() == 0);
        CHECK(held.load() == 0);
    }
}

TEST_CASE("cond broadcast rounds wake every waiter every time")
{
    const int rounds = static_cast<int>(1000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        const bool ok =
            weft::run(weft::runtime_options{.workers = w}, [rounds]() -> weft::task<bool> {
                weft::mutex mu;
                weft::cond cv(mu);
                int generation = 0; // guarded by mu
                int arrived = 0;    // guarded by mu
                constexpr int parties = 6;
                // A reusable barrier: the last to arrive starts a new generation.
                std::vector<weft::join_handle<bool>> hs;
                for (int p = 0; p < parties; ++p)
                    hs.push_back(weft::go([&]() -> weft::task<bool> {
                        for (int r = 0; r < rounds; ++r) {
                            co_await mu.lock();
                            const int gen = generation;
                            if (++arrived == parties) {
                                arrived = 0;
                                ++generation;
                                cv.broadcast();
                            } else {
                                while (gen == generation)
                                    co_await cv.wait();
                            }
                            const bool advanced = generation == gen + 1;
                            mu.unlock();
                            if (!advanced)
                                co_return false;
                        }
                        co_return true;
                    }));
                bool all = true;
                for (auto& h : hs)
                    all = (co_await h) && all;
                co_await mu.lock();
                all = all && generation == rounds;
                mu.unlock();
                co_return all;
            });
        CHECK(ok);
    }
}
