#include <weft/time.hpp>

#include <weft/chan.hpp>
#include <weft/runtime.hpp>
#include <weft/select.hpp>
#include <weft/sync.hpp>

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using wclock = weft::clock;

namespace {

/// Generous upper bound for "promptly" on shared, noisy machines.
constexpr auto k_slack = 500ms;

double cpu_seconds()
{
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

} // namespace

TEST_CASE("sleep_for suspends for at least the duration")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            for (auto d : {1ms, 5ms, 20ms}) {
                auto t0 = wclock::now();
                co_await weft::sleep_for(d);
                auto took = wclock::now() - t0;
                CHECK(took >= d);
                CHECK(took < d + k_slack);
            }
        });
    }
}

TEST_CASE("sleeping for zero or a negative duration, or until the past, returns at once")
{
    weft::run([]() -> weft::task<> {
        co_await weft::sleep_for(0ms);
        co_await weft::sleep_for(-5ms);
        co_await weft::sleep_until(wclock::now() - 1s);
        co_await weft::sleep_until(wclock::time_point::min());
    });
}

TEST_CASE("sleep_until wakes at the deadline")
{
    weft::run([]() -> weft::task<> {
        auto deadline = wclock::now() + 15ms;
        co_await weft::sleep_until(deadline);
        CHECK(wclock::now() >= deadline);
        CHECK(wclock::now() < deadline + k_slack);
    });
}

TEST_CASE("100,000 concurrent sleepers are all woken")
{
    constexpr int n = 100'000;
    std::atomic<int> woken{0};
    weft::run([&]() -> weft::task<> {
        weft::wait_group wg;
        auto start = wclock::now();
        for (int i = 0; i < n; ++i) {
            wg.add(1);
            weft::go(
                [&](int k) -> weft::task<> {
                    // Deadlines spread over 50 ms, in no particular order.
                    auto d = std::chrono::microseconds((k * 7919) % 50'000);
                    co_await weft::sleep_until(start + d);
                    if (wclock::now() >= start + d)
                        woken.fetch_add(1);
                    wg.done();
                },
                i);
        }
        co_await wg.wait();
    });
    CHECK(woken.load() == n);
}

TEST_CASE("sleepers wake in deadline order on one worker")
{
    weft::run(weft::runtime_options{.workers = 1}, []() -> weft::task<> {
        auto order = weft::make_chan<int>(10);
        auto start = wclock::now();
        weft::wait_group wg;
        for (int i : {4, 1, 3, 0, 2}) {
            wg.add(1);
            weft::go(
                [&, order](int k) -> weft::task<> {
                    co_await weft::sleep_until(start + k * 10ms);
                    co_await order.send(k);
                    wg.done();
                },
                i);
        }
        co_await wg.wait();
        for (int i = 0; i < 5; ++i)
            CHECK(order.try_recv() == i);
    });
}

TEST_CASE("a sleeper wakes on time while another worker runs a task that never yields")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::atomic<bool> stop{false};
        auto spinner = weft::go([&]() -> weft::task<> {
            while (!stop.load())
                std::this_thread::yield();
            co_return;
        });
        auto t0 = wclock::now();
        co_await weft::sleep_for(20ms);
        auto took = wclock::now() - t0;
        stop = true;
        co_await spinner;
        CHECK(took >= 20ms);
        CHECK(took < 20ms + k_slack);
    });
}

TEST_CASE("an idle runtime waiting for a timer uses almost no CPU")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        double before = cpu_seconds();
        co_await weft::sleep_for(300ms);
        double used = cpu_seconds() - before;
        // Parked in the kernel: a few wake-ups' worth, not a spinning core.
        CHECK(used < 0.1);
    });
}

TEST_CASE("a pending timer is not a deadlock")
{
    weft::run(weft::runtime_options{.workers = 2, .detect_deadlock = true}, []() -> weft::task<> {
        weft::timer t(50ms);
        auto v = co_await t.channel().recv();
        CHECK(v.has_value());
    });
}

TEST_CASE("block_on can sleep outside the runtime's workers")
{
    auto t0 = wclock::now();
    weft::block_on(weft::sleep_for(10ms));
    CHECK(wclock::now() - t0 >= 10ms);
}

TEST_CASE("a timer sends the time it fired on its channel")
{
    weft::run([]() -> weft::task<> {
        auto t0 = wclock::now();
        weft::timer t(10ms);
        CHECK(t.channel().capacity() == 1);
        auto v = co_await t.channel().recv();
        REQUIRE(v.has_value());
        CHECK(*v >= t0 + 10ms);
        CHECK(wclock::now() >= t0 + 10ms);
        // It fires once.
        CHECK(!t.stop());
        co_await weft::sleep_for(20ms);
        CHECK(!t.channel().try_recv());
    });
}

TEST_CASE("timers need a running runtime")
{
    CHECK_THROWS_AS(weft::timer(1s), std::logic_error);
    CHECK_THROWS_AS(weft::ticker(1s), std::logic_error);
    CHECK_THROWS_AS((void)weft::after(1s), std::logic_error);
}

TEST_CASE("stop before the deadline prevents the value")
{
    weft::run([]() -> weft::task<> {
        weft::timer t(20ms);
        CHECK(t.stop());
        CHECK(!t.stop());
        co_await weft::sleep_for(40ms);
        CHECK(!t.channel().try_recv());
    });
}

TEST_CASE("stop after the timer fired but before its value was received drops the value")
{
    weft::run([]() -> weft::task<> {
        weft::timer t(1ms);
        co_await weft::sleep_for(20ms);
        // Go 1.23: the value was not received, so stop stops it and no stale
        // value can be received afterwards.
        CHECK(t.stop());
        CHECK(!t.channel().try_recv());
    });
}

TEST_CASE("stop after the value was received returns false")
{
    weft::run([]() -> weft::task<> {
        weft::timer t(1ms);
        CHECK(co_await t.channel().recv());
        CHECK(!t.stop());
    });
}

TEST_CASE("reset re-arms a timer and drops a stale value")
{
    weft::run([]() -> weft::task<> {
        weft::timer t(1ms);
        co_await weft::sleep_for(10ms); // fired, value unreceived
        auto t0 = wclock::now();
        CHECK(t.reset(30ms)); // the unreceived value counted as pending
        CHECK(!t.channel().try_recv());
        auto v = co_await t.channel().recv();
        REQUIRE(v);
        CHECK(*v >= t0 + 30ms);
        CHECK(!t.reset(5ms)); // it had fired and been received
        CHECK(co_await t.channel().recv());
        CHECK(!t.reset(1h)); // fired and received again
        CHECK(t.reset(2h));  // active
        CHECK(t.stop());
    });
}

TEST_CASE("no stale value is ever received after stop or reset returns")
{
    // Races the firing worker against stop/reset with deadlines around now.
    weft::run(weft::runtime_options{.workers = 4}, []() -> weft::task<> {
        int stale = 0;
        for (int i = 0; i < 2000; ++i) {
            weft::timer t(std::chrono::microseconds(i % 50));
            if (i % 3 == 0)
                co_await weft::this_task::yield();
            if (i % 2 == 0) {
                t.stop();
            } else {
                t.reset(1h);
            }
            if (t.channel().try_recv())
                ++stale;
        }
        CHECK(stale == 0);
    });
}

TEST_CASE("a timer's channel works in select")
{
    weft::run([]() -> weft::task<> {
        auto never = weft::make_chan<int>();
        weft::timer t(5ms);
        auto r = co_await weft::select(never.recv(), t.channel());
        CHECK(r.index() == 1);
        auto r2 = co_await weft::select(never.recv(), weft::after(5ms));
        CHECK(r2.index() == 1);
    });
}

TEST_CASE("after delivers once and frees itself whether or not it is read")
{
    weft::run([]() -> weft::task<> {
        auto t0 = wclock::now();
        auto ch = weft::after(10ms);
        auto v = co_await ch.recv();
        REQUIRE(v);
        CHECK(*v >= t0 + 10ms);
        // Never read, never fired: released when the runtime stops (leak
        // checkers see this).
        for (int i = 0; i < 100; ++i)
            (void)weft::after(1h);
        // Never read, fired: released at once.
        for (int i = 0; i < 100; ++i)
            (void)weft::after(1ms);
        co_await weft::sleep_for(20ms);
    });
}

TEST_CASE("after_func runs f as a new task")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto done = weft::make_chan<wclock::time_point>(1);
        auto t0 = wclock::now();
        auto t = weft::after_func(10ms, [done] { done.try_send(wclock::now()); });
        CHECK(!t.channel());
        auto v = co_await done.recv();
        REQUIRE(v);
        CHECK(*v >= t0 + 10ms);
        CHECK(!t.stop()); // f already started
    });
}

TEST_CASE("after_func accepts a function returning a task, and move-only functions")
{
    weft::run([]() -> weft::task<> {
        auto done = weft::make_chan<int>(1);
        auto p = std::make_unique<int>(7);
        auto t = weft::after_func(1ms, [done, p = std::move(p)]() -> weft::task<> {
            co_await weft::sleep_for(1ms);
            co_await done.send(*p);
        });
        CHECK(co_await done.recv() == 7);
    });
}

TEST_CASE("stopping an after_func timer before it fires keeps f from running; reset runs it again")
{
    weft::run([]() -> weft::task<> {
        std::atomic<int> runs{0};
        auto t = weft::after_func(20ms, [&] { runs.fetch_add(1); });
        CHECK(t.stop());
        co_await weft::sleep_for(40ms);
        CHECK(runs.load() == 0);
        CHECK(!t.reset(1ms)); // it was stopped
        co_await weft::sleep_for(30ms);
        CHECK(runs.load() == 1);
        CHECK(!t.reset(1ms)); // it had run
        co_await weft::sleep_for(30ms);
        CHECK(runs.load() == 2);
    });
}

TEST_CASE("dropping an after_func timer does not cancel f")
{
    weft::run([]() -> weft::task<> {
        auto done = weft::make_chan<int>(1);
        {
            auto t = weft::after_func(5ms, [done] { done.try_send(1); });
        }
        CHECK(co_await done.recv() == 1);
    });
}

TEST_CASE("a ticker ticks every period and keeps its phase")
{
    weft::run([]() -> weft::task<> {
        constexpr auto period = 10ms;
        auto t0 = wclock::now();
        weft::ticker tk(period);
        wclock::time_point last{};
        for (int k = 1; k <= 5; ++k) {
            auto v = co_await tk.channel().recv();
            REQUIRE(v);
            CHECK(*v >= t0 + k * period);
            CHECK(*v > last);
            last = *v;
        }
        // Five ticks take about five periods, not five periods plus drift
        // from the reader.
        CHECK(wclock::now() - t0 < 5 * period + k_slack);
    });
}

TEST_CASE("a slow reader finds one pending tick; missed ticks are dropped")
{
    weft::run([]() -> weft::task<> {
        weft::ticker tk(5ms);
        co_await weft::sleep_for(60ms);
        CHECK(tk.channel().try_recv().has_value());
        CHECK(!tk.channel().try_recv().has_value());
        // The next tick comes within one period, on the original phase.
        auto t0 = wclock::now();
        CHECK(co_await tk.channel().recv());
        CHECK(wclock::now() - t0 < 5ms + k_slack);
    });
}

TEST_CASE("a stopped ticker sends nothing; reset restarts it with a new period")
{
    weft::run([]() -> weft::task<> {
        weft::ticker tk(2ms);
        co_await weft::sleep_for(10ms);
        tk.stop();
        CHECK(!tk.channel().try_recv()); // the pending tick was dropped
        co_await weft::sleep_for(20ms);
        CHECK(!tk.channel().try_recv());
        auto t0 = wclock::now();
        tk.reset(15ms);
        auto v = co_await tk.channel().recv();
        REQUIRE(v);
        CHECK(*v >= t0 + 15ms);
        CHECK_THROWS_AS(tk.reset(0ms), std::invalid_argument);
    });
    CHECK_THROWS_AS(weft::run([]() -> weft::task<> {
                        weft::ticker bad(-1ms);
                        co_return;
                    }),
                    std::invalid_argument);
}

TEST_CASE("timers armed from a thread outside the runtime fire")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto ch = weft::make_chan<wclock::time_point>(1);
        auto t0 = wclock::now();
        std::thread th([&] {
            // The timer object lives on this thread; its channel is shared.
            weft::timer t(10ms);
            auto v = weft::block_on(t.channel().recv());
            ch.try_send(*v);
        });
        auto v = co_await ch.recv();
        th.join();
        REQUIRE(v);
        CHECK(*v >= t0 + 10ms);
    });
}

TEST_CASE("tasks asleep when main returns are destroyed without waiting for their timers")
{
    std::atomic<int> live{0};
    auto t0 = wclock::now();
    weft::run([&]() -> weft::task<> {
        for (int i = 0; i < 100; ++i)
            weft::go(
                [](weft_test::live_counter) -> weft::task<> { co_await weft::sleep_for(1h); },
                weft_test::live_counter(live));
        weft::ticker tk(1ms);
        auto t = weft::after_func(1h, [] {});
        co_await weft::sleep_for(5ms);
    });
    CHECK(live.load() == 0);
    CHECK(wclock::now() - t0 < 10s);
}
