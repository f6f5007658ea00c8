#include <weft/cond.hpp>

#include "test_support.hpp"

#include <weft/mutex.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <deque>
#include <vector>

namespace {

/// Shared state of a cond test: everything but the atomics is guarded by mu.
struct cond_state {
    weft::mutex mu;
    weft::cond cv{mu};
    int waiting = 0;
    std::vector<int> woken;
};

/// Waits until `n` tasks have called wait() on s.cv. A waiter increments
/// s.waiting while holding s.mu and releases s.mu only inside cv.wait(), so
/// seeing the count under s.mu means the waiter is queued.
weft::task<bool> until_waiting(cond_state& s, int n)
{
    co_return co_await weft_test::eventually([&s, n] {
        if (!s.mu.try_lock())
            return false;
        const bool ok = s.waiting == n;
        s.mu.unlock();
        return ok;
    });
}

weft::task<std::size_t> woken_count(cond_state& s)
{
    co_await s.mu.lock();
    const std::size_t n = s.woken.size();
    s.mu.unlock();
    co_return n;
}

} // namespace

TEST_CASE("signal and broadcast with no waiters do nothing")
{
    weft::mutex mu;
    weft::cond cv(mu);
    cv.signal();
    cv.broadcast();
    CHECK(mu.try_lock());
    mu.unlock();
}

TEST_CASE("cond wait releases the mutex and returns holding it")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            cond_state s;
            std::atomic<bool> held_after_wait{false};
            auto h = weft::go([&s, &held_after_wait]() -> weft::task<> {
                co_await s.mu.lock();
                ++s.waiting;
                co_await s.cv.wait();
                // The mutex is held again: nobody can take it.
                held_after_wait = !s.mu.try_lock();
                s.woken.push_back(0);
                s.mu.unlock();
            });
            CHECK(co_await until_waiting(s, 1));
            // The waiter released the mutex inside wait(): main can take it.
            co_await s.mu.lock();
            s.cv.signal();
            s.mu.unlock();
            co_await h;
            CHECK(held_after_wait.load());
            CHECK(co_await woken_count(s) == 1);
        });
    }
}

TEST_CASE("cond signal wakes waiters one at a time in FIFO order")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            cond_state s;
            constexpr int n = 6;
            std::vector<weft::join_handle<>> hs;
            for (int i = 0; i < n; ++i) {
                hs.push_back(weft::go([&s, i]() -> weft::task<> {
                    co_await s.mu.lock();
                    ++s.waiting;
                    co_await s.cv.wait();
                    s.woken.push_back(i);
                    s.mu.unlock();
                }));
                // Start the next waiter only once this one is queued.
                CHECK(co_await until_waiting(s, i + 1));
            }
            for (int k = 1; k <= n; ++k) {
                co_await s.mu.lock();
                s.cv.signal();
                s.mu.unlock();
                CHECK(co_await weft_test::eventually([&s, k] {
                    if (!s.mu.try_lock())
                        return false;
                    const bool ok = s.woken.size() == static_cast<std::size_t>(k);
                    s.mu.unlock();
                    return ok;
                }));
                // A single signal wakes a single waiter.
                for (int i = 0; i < 20; ++i)
                    co_await weft::this_task::yield();
                CHECK(co_await woken_count(s) == static_cast<std::size_t>(k));
            }
            for (auto& h : hs)
                co_await h;
            CHECK(s.woken == std::vector<int>{0, 1, 2, 3, 4, 5});
        });
    }
}

TEST_CASE("cond broadcast wakes every waiter")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            cond_state s;
            constexpr int n = 10;
            std::vector<weft::join_handle<>> hs;
            for (int i = 0; i < n; ++i)
                hs.push_back(weft::go([&s, i]() -> weft::task<> {
                    co_await s.mu.lock();
                    ++s.waiting;
                    co_await s.cv.wait();
                    s.woken.push_back(i);
                    s.mu.unlock();
                }));
            CHECK(co_await until_waiting(s, n));
            co_await s.mu.lock();
            s.cv.broadcast();
            s.mu.unlock();
            for (auto& h : hs)
                co_await h;
            CHECK(co_await woken_count(s) == n);
        });
    }
}

TEST_CASE("a waiter added after a broadcast is not woken by it")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        cond_state s;
        s.cv.broadcast();
        std::atomic<bool> woke{false};
        auto h = weft::go([&]() -> weft::task<> {
            co_await s.mu.lock();
            ++s.waiting;
            co_await s.cv.wait();
            woke = true;
            s.mu.unlock();
        });
        CHECK(co_await until_waiting(s, 1));
        for (int i = 0; i < 50; ++i)
            co_await weft::this_task::yield();
        CHECK(!woke.load());
        co_await s.mu.lock();
        s.cv.signal();
        s.mu.unlock();
        co_await h;
        CHECK(woke.load());
    });
}

TEST_CASE("cond implements a bounded queue between producers and consumers")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            weft::mutex mu;
            weft::cond not_empty(mu);
            weft::cond not_full(mu);
            std::deque<int> queue; // guarded by mu
            constexpr std::size_t limit = 4;
            constexpr int producers = 4;
            constexpr int per = 250;
            std::vector<weft::join_handle<>> ps;
            for (int p = 0; p < producers; ++p)
                ps.push_back(weft::go([&, p]() -> weft::task<> {
                    for (int i = 0; i < per; ++i) {
                        co_await mu.lock();
                        while (queue.size() >= limit)
                            co_await not_full.wait();
                        queue.push_back(p * per + i);
                        not_empty.signal();
                        mu.unlock();
                    }
                }));
            std::vector<int> seen(producers * per, 0);
            for (int n = 0; n < producers * per; ++n) {
                co_await mu.lock();
                while (queue.empty())
                    co_await not_empty.wait();
                const int v = queue.front();
                queue.pop_front();
                not_full.signal();
                mu.unlock();
                ++seen[static_cast<std::size_t>(v)];
            }
            for (auto& h : ps)
                co_await h;
            bool each_once = true;
            for (int c : seen)
                each_once = each_once && c == 1;
            CHECK(each_once);
        });
    }
}
