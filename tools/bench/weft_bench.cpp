// weft benchmark driver: times the shapes of weft_chan.cpp and measures
// the memory of parked tasks. Command line and output as in
// bench_support.hpp; -procs sets runtime_options::workers (0, the default,
// means WEFT_MAXPROCS).
//
// Everything runs inside one runtime, as Go's testing.Benchmark runs inside
// one process: the main task plans iteration counts, times each run of a
// shape and prints the result.

#include "weft_bench.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "bench_support.hpp"

namespace weft_bench {
namespace {

struct park_counts {
    std::atomic<std::int64_t> parked{0};
    std::atomic<std::int64_t> exited{0};
};

weft::task<> park(weft::chan<int> ch, park_counts* counts)
{
    counts->parked.fetch_add(1, std::memory_order_relaxed);
    static_cast<void>(co_await ch.recv());
    counts->exited.fetch_add(1, std::memory_order_relaxed);
}

// Polls by yielding, so the measurement needs nothing beyond tasks and
// channels (the Asio peer polls the same way).
weft::task<> wait_until(const std::atomic<std::int64_t>* counter, std::int64_t value)
{
    while (counter->load() < value)
        co_await weft::this_task::yield();
}

weft::task<> run_all(bench::options opts)
{
    for (const auto& name : opts.names) {
        if (name == "memory") {
            bench::report_memory(co_await parked_bytes_per_task(opts.tasks));
            continue;
        }
        if (name == "Sleep100k" || name == "Sleep100kMem") {
            auto r = co_await sleep_many(100'000);
            bench::report_value(name, name == "Sleep100k" ? r.wall_ms : r.bytes_per_task);
            continue;
        }
        if (name == "CtxCancel100k") {
            bench::report_value(name, co_await cancel_wake(100'000));
            continue;
        }
        if (name == "TickerP50" || name == "TickerP99") {
            auto r = co_await ticker_lateness(opts.ticker_time);
            bench::report_value(name, name == "TickerP50" ? r.p50_us : r.p99_us);
            continue;
        }
        const auto it = timed_benchmarks().find(name);
        if (it == timed_benchmarks().end())
            throw std::invalid_argument("unknown benchmark " + name);
        bench::iteration_planner planner(opts.time);
        for (auto n = planner.next(); n != 0; n = planner.next()) {
            bench::plan_parallel_grain(planner);
            const auto start = std::chrono::steady_clock::now();
            co_await it->second(n);
            planner.record(n, std::chrono::steady_clock::now() - start);
        }
        bench::report_timing(name, planner);
    }
}

} // namespace

weft::task<double> parked_bytes_per_task(std::int64_t tasks)
{
    auto ch = weft::make_chan<int>();
    // Outlives the tasks: this function waits for every exit.
    park_counts counts;
    const auto before = bench::resident_bytes();
    for (std::int64_t i = 0; i < tasks; ++i)
        weft::go(park, ch, &counts);
    co_await wait_until(&counts.parked, tasks);
    // Let the last tasks get from the count to the receive.
    for (int i = 0; i < 100; ++i)
        co_await weft::this_task::yield();
    const auto after = bench::resident_bytes();
    ch.close();
    co_await wait_until(&counts.exited, tasks);
    co_return static_cast<double>(after - before) / static_cast<double>(tasks);
}

} // namespace weft_bench

int main(int argc, char** argv)
{
    try {
        const auto opts = bench::parse_options(argc, argv);
        if (opts.list) {
            for (const char* special :
                 {"memory", "Sleep100k", "Sleep100kMem", "CtxCancel100k", "TickerP50", "TickerP99"})
                std::puts(special);
            for (const auto& [name, body] : weft_bench::timed_benchmarks())
                std::puts(name.c_str());
            return 0;
        }
        weft::runtime_options ro;
        ro.workers = opts.procs;
        weft::run(ro, weft_bench::run_all, opts);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "weft_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
