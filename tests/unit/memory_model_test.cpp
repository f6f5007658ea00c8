// Happens-before edges of the primitives. Each test writes plain,
// non-atomic data before a synchronising operation and reads it after the
// matching one on another task. The values are checked here; the data races
// a missing edge would cause are what ThreadSanitizer reports.
#include <weft/sync.hpp>

#include "test_support.hpp"

#include <weft/chan.hpp>
#include <weft/runtime.hpp>
#include <weft/select.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr unsigned k_workers = 4;
constexpr int k_rounds = 200;

struct payload {
    long number = 0;
    std::string text;
    std::vector<int> items;
};

void fill(payload& p, int i)
{
    p.number = i;
    p.text = "value " + std::to_string(i);
    p.items.assign(static_cast<std::size_t>(i % 17), i);
}

bool matches(const payload& p, int i)
{
    return p.number == i && p.text == "value " + std::to_string(i) &&
           p.items == std::vector<int>(static_cast<std::size_t>(i % 17), i);
}

} // namespace

TEST_CASE("data written before a send is visible after the matching recv")
{
    for (std::size_t cap : {std::size_t{0}, std::size_t{1}, std::size_t{8}}) {
        CAPTURE(cap);
        const int bad =
            weft::run(weft::runtime_options{.workers = k_workers}, [cap]() -> weft::task<int> {
                std::vector<payload> slots(k_rounds);
                auto ch = weft::make_chan<int>(cap);
                auto producer = weft::go([&slots, ch]() -> weft::task<> {
                    for (int i = 0; i < k_rounds; ++i) {
                        fill(slots[static_cast<std::size_t>(i)], i);
                        co_await ch.send(i);
                    }
                });
                int mismatches = 0;
                for (int i = 0; i < k_rounds; ++i) {
                    const int k = *co_await ch.recv();
                    mismatches += matches(slots[static_cast<std::size_t>(k)], k) ? 0 : 1;
                }
                co_await producer;
                co_return mismatches;
            });
        CHECK(bad == 0);
    }
}

TEST_CASE("a receive from an unbuffered channel happens before the send completes")
{
    const int bad = weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<int> {
        int mismatches = 0;
        for (int i = 0; i < k_rounds; ++i) {
            payload p;
            auto ch = weft::make_chan<int>();
            auto receiver = weft::go([&p, ch, i]() -> weft::task<> {
                fill(p, i); // written before the receive
                (void)co_await ch.recv();
            });
            co_await ch.send(i);
            mismatches += matches(p, i) ? 0 : 1; // read after the send completes
            co_await receiver;
        }
        co_return mismatches;
    });
    CHECK(bad == 0);
}

TEST_CASE("data written before a close is visible after the recv that sees it closed")
{
    const int bad = weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<int> {
        int mismatches = 0;
        for (int i = 0; i < k_rounds; ++i) {
            payload p;
            auto done = weft::make_chan<int>();
            weft::go([&p, done, i]() -> weft::task<> {
                fill(p, i);
                done.close();
                co_return;
            });
            const bool closed = !(co_await done.recv());
            mismatches += closed && matches(p, i) ? 0 : 1;
        }
        co_return mismatches;
    });
    CHECK(bad == 0);
}

TEST_CASE("data written before a select send is visible after the select recv")
{
    const int bad = weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<int> {
        int mismatches = 0;
        auto idle = weft::make_chan<int>();
        for (int i = 0; i < k_rounds; ++i) {
            payload p;
            auto ch = weft::make_chan<int>();
            auto h = weft::go([&p, ch, idle, i]() -> weft::task<> {
                fill(p, i);
                (void)co_await weft::select(ch.send(i), idle.recv());
            });
            auto r = co_await weft::select(idle.recv(), ch.recv());
            mismatches += r.index() == 1 && matches(p, i) ? 0 : 1;
            co_await h;
        }
        co_return mismatches;
    });
    CHECK(bad == 0);
}

TEST_CASE("data written before an unlock is visible after the next lock")
{
    const bool ok =
        weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<bool> {
            weft::mutex mu;
            payload p; // guarded by mu
            fill(p, 0);
            int turns = 0;
            std::vector<weft::join_handle<>> hs;
            for (int t = 0; t < 8; ++t)
                hs.push_back(weft::go([&]() -> weft::task<> {
                    for (int i = 0; i < 50; ++i) {
                        co_await mu.lock();
                        const bool consistent = matches(p, turns);
                        ++turns;
                        fill(p, consistent ? turns : -1);
                        mu.unlock();
                    }
                }));
            for (auto& h : hs)
                co_await h;
            co_await mu.lock();
            const bool result = turns == 400 && matches(p, 400);
            mu.unlock();
            co_return result;
        });
    CHECK(ok);
}

TEST_CASE("data written before an rw_mutex unlock is visible to later readers")
{
    const bool ok =
        weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<bool> {
            weft::rw_mutex rw;
            payload p; // guarded by rw
            fill(p, 0);
            int version = 0;
            std::vector<weft::join_handle<bool>> hs;
            for (int t = 0; t < 6; ++t)
                hs.push_back(weft::go([&, t]() -> weft::task<bool> {
                    bool consistent = true;
                    for (int i = 0; i < 50; ++i) {
                        if ((t + i) % 3 == 0) {
                            co_await rw.lock();
                            consistent = consistent && matches(p, version);
                            ++version;
                            fill(p, version);
                            rw.unlock();
                        } else {
                            co_await rw.lock_shared();
                            consistent = consistent && matches(p, version);
                            rw.unlock_shared();
                        }
                    }
                    co_return consistent;
                }));
            bool all = true;
            for (auto& h : hs)
                all = (co_await h) && all;
            co_return all;
        });
    CHECK(ok);
}

TEST_CASE("data written before done is visible after wait returns")
{
    const bool ok =
        weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<bool> {
            std::vector<payload> results(32);
            weft::wait_group wg;
            for (int i = 0; i < 32; ++i) {
                wg.add(1);
                weft::go([&results, &wg, i]() -> weft::task<> {
                    co_await weft::this_task::yield();
                    fill(results[static_cast<std::size_t>(i)], i);
                    wg.done();
                });
            }
            co_await wg.wait();
            bool all = true;
            for (int i = 0; i < 32; ++i)
                all = all && matches(results[static_cast<std::size_t>(i)], i);
            co_return all;
        });
    CHECK(ok);
}

TEST_CASE("data written by once's function is visible to every caller")
{
    const bool ok =
        weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<bool> {
            weft::once o;
            payload p;
            std::vector<weft::join_handle<bool>> hs;
            for (int t = 0; t < 16; ++t)
                hs.push_back(weft::go([&]() -> weft::task<bool> {
                    co_await o.call([&] { fill(p, 7); });
                    co_return matches(p, 7);
                }));
            bool all = true;
            for (auto& h : hs)
                all = (co_await h) && all;
            co_return all;
        });
    CHECK(ok);
}

TEST_CASE("data written before signal under the mutex is visible after cond wait")
{
    const bool ok =
        weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<bool> {
            weft::mutex mu;
            weft::cond cv(mu);
            payload p;          // guarded by mu
            bool ready = false; // guarded by mu
            auto waiter = weft::go([&]() -> weft::task<bool> {
                co_await mu.lock();
                while (!ready)
                    co_await cv.wait();
                const bool good = matches(p, 3);
                mu.unlock();
                co_return good;
            });
            co_await weft::this_task::yield();
            co_await mu.lock();
            fill(p, 3);
            ready = true;
            cv.signal();
            mu.unlock();
            co_return co_await waiter;
        });
    CHECK(ok);
}

TEST_CASE("data written before a semaphore release is visible after the acquire")
{
    const bool ok =
        weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<bool> {
            weft::semaphore sem(1);
            payload p; // guarded by sem
            fill(p, 0);
            int turns = 0;
            std::vector<weft::join_handle<bool>> hs;
            for (int t = 0; t < 8; ++t)
                hs.push_back(weft::go([&]() -> weft::task<bool> {
                    bool consistent = true;
                    for (int i = 0; i < 25; ++i) {
                        co_await sem.acquire();
                        consistent = consistent && matches(p, turns);
                        ++turns;
                        fill(p, turns);
                        sem.release();
                    }
                    co_return consistent;
                }));
            bool all = true;
            for (auto& h : hs)
                all = (co_await h) && all;
            co_return all;
        });
    CHECK(ok);
}

TEST_CASE("a buffered channel of empty values used as a mutex orders the critical sections")
{
    // Go's memory model: the k-th receive on a channel of capacity C happens
    // before the (k+C)-th send completes. With C = 1, send locks and receive
    // unlocks.
    const bool ok =
        weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<bool> {
            auto sem = weft::make_chan<std::monostate>(1);
            payload p; // guarded by sem
            fill(p, 0);
            int turns = 0;
            std::vector<weft::join_handle<bool>> hs;
            for (int t = 0; t < 8; ++t)
                hs.push_back(weft::go([&, t]() -> weft::task<bool> {
                    bool consistent = true;
                    for (int i = 0; i < 200; ++i) {
                        if (t % 2 == 0 || !sem.try_send(std::monostate{}))
                            co_await sem.send(std::monostate{});
                        consistent = consistent && matches(p, turns);
                        ++turns;
                        fill(p, turns);
                        if (t % 3 == 0)
                            consistent = (co_await sem.recv()).has_value() && consistent;
                        else
                            consistent = sem.try_recv().has_value() && consistent;
                        if (i % 16 == 0)
                            co_await weft::this_task::yield();
                    }
                    co_return consistent;
                }));
            bool all = true;
            for (auto& h : hs)
                all = (co_await h) && all;
            co_return all && turns == 8 * 200 && sem.size() == 0;
        });
    CHECK(ok);
}

TEST_CASE("data written before go is visible in the task, and the task's writes after join")
{
    const int bad = weft::run(weft::runtime_options{.workers = k_workers}, []() -> weft::task<int> {
        int mismatches = 0;
        for (int i = 0; i < k_rounds; ++i) {
            payload in;
            payload out;
            fill(in, i);
            auto h = weft::go([&in, &out, i]() -> weft::task<bool> {
                const bool seen = matches(in, i);
                fill(out, i + 1);
                co_return seen;
            });
            const bool seen = co_await h;
            mismatches += seen && matches(out, i + 1) ? 0 : 1;
        }
        co_return mismatches;
    });
    CHECK(bad == 0);
}

TEST_CASE("data written by a plain thread before block_on send is visible to the receiver")
{
    const bool ok = weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<bool> {
        payload p;
        auto ch = weft::make_chan<int>();
        std::atomic<bool> finished{false};
        std::thread t([&] {
            fill(p, 5);
            weft::block_on(ch.send(5));
            finished = true;
        });
        auto v = co_await ch.recv();
        const bool good = v == std::optional<int>(5) && matches(p, 5);
        const bool done = co_await weft_test::eventually([&] { return finished.load(); });
        t.join();
        co_return good&& done;
    });
    CHECK(ok);
}
