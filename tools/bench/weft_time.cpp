// The time shapes: timer arm+cancel, many short sleepers, ticker lateness.

#include "weft_bench.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "bench_support.hpp"

namespace weft_bench {

using namespace std::chrono_literals;

// ---- TimerArmCancel: create a timer far in the future and stop it (Go:
// time.NewTimer(time.Hour) + Stop).

weft::task<> timer_arm_cancel(std::int64_t n)
{
    for (std::int64_t i = 0; i < n; ++i) {
        weft::timer t(1h);
        t.stop();
    }
    co_return;
}

// ---- Sleep100k: `tasks` tasks each sleep 1 ms; wall time until all are
// done, and resident-set growth per task.

namespace {

weft::task<> sleeper(weft::wait_group* wg)
{
    co_await weft::sleep_for(1ms);
    wg->done();
}

} // namespace

weft::task<sleep_result> sleep_many(std::int64_t tasks)
{
    const auto before = bench::resident_bytes();
    const auto start = std::chrono::steady_clock::now();
    weft::wait_group wg;
    wg.add(tasks);
    for (std::int64_t i = 0; i < tasks; ++i)
        weft::go(sleeper, &wg);
    co_await wg.wait();
    const auto took = std::chrono::steady_clock::now() - start;
    const auto after = bench::resident_bytes();
    co_return sleep_result{
        std::chrono::duration<double, std::milli>(took).count(),
        static_cast<double>(after - before) / static_cast<double>(tasks),
    };
}

// ---- TickerP50/P99: a 1 ms ticker read for `total`; lateness of each
// receive behind the tick's scheduled time (the value on the channel).

weft::task<lateness_result> ticker_lateness(std::chrono::nanoseconds total)
{
    std::vector<double> late;
    late.reserve(static_cast<std::size_t>(total / 1ms) + 16);
    weft::ticker tk(1ms);
    const auto end = std::chrono::steady_clock::now() + total;
    while (std::chrono::steady_clock::now() < end) {
        auto v = co_await tk.channel().recv();
        const auto now = std::chrono::steady_clock::now();
        late.push_back(std::chrono::duration<double, std::micro>(now - *v).count());
    }
    std::sort(late.begin(), late.end());
    auto at = [&](double q) { return late[static_cast<std::size_t>(q * static_cast<double>(late.size() - 1))]; };
    co_return lateness_result{at(0.5), at(0.99)};
}

} // namespace weft_bench

namespace weft_bench {

// ---- CtxCancel100k: `tasks` tasks wait in a select on one context's done()
// (and a channel that never delivers); the context is cancelled; ns per
// waiter from the cancel until every task has run.

namespace {

struct cancel_counts {
    std::atomic<std::int64_t> parked{0};
    weft::wait_group woken;
};

weft::task<> done_waiter(weft::context c, weft::chan<int> never, cancel_counts* counts)
{
    counts->parked.fetch_add(1, std::memory_order_relaxed);
    (void)co_await weft::select(c.done(), never.recv());
    counts->woken.done();
}

} // namespace

weft::task<double> cancel_wake(std::int64_t tasks)
{
    auto [c, cancel] = weft::with_cancel(weft::background());
    auto never = weft::make_chan<int>();
    cancel_counts counts;
    counts.woken.add(tasks);
    for (std::int64_t i = 0; i < tasks; ++i)
        weft::go(done_waiter, c, never, &counts);
    while (counts.parked.load() < tasks)
        co_await weft::this_task::yield();
    co_await weft::sleep_for(20ms); // let the last ones reach the select
    const auto start = std::chrono::steady_clock::now();
    cancel();
    co_await counts.woken.wait();
    const auto took = std::chrono::steady_clock::now() - start;
    co_return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()) /
        static_cast<double>(tasks);
}

} // namespace weft_bench
