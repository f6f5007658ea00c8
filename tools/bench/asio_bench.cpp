// Asio peers of weft's benchmarks: the same shapes as go/chan.go, written
// with asio::experimental::concurrent_channel and co_spawn on an io_context
// run by -procs threads. Asio has no select over channels, so the select
// shapes are absent (-list shows what exists).
//
// Channels shared between coroutines are held by shared_ptr, because a
// detached coroutine may still be inside a channel operation when the
// spawner moves on. Completion is signalled on a channel, as in the Go
// originals.

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/concurrent_channel.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"

namespace {

using asio::awaitable;
using asio::use_awaitable;
using asio::experimental::as_tuple;

using int_chan = asio::experimental::concurrent_channel<void(asio::error_code, int)>;
using bool_chan = asio::experimental::concurrent_channel<void(asio::error_code, bool)>;
// The payload-free signature void(error_code) does not compile in Asio
// 1.22.1 (two channel_traits specialisations match), so the semaphore
// channel carries an empty struct, like Go's chan struct{}.
struct empty {};
using empty_chan = asio::experimental::concurrent_channel<void(asio::error_code, empty)>;

constexpr int calls_per_sched = 1000;

using body_fn = awaitable<void> (*)(std::int64_t n, unsigned procs);

// Waits for `count` values on `finished`.
awaitable<void> collect(std::shared_ptr<bool_chan> finished, unsigned count)
{
    for (unsigned i = 0; i < count; ++i)
        co_await finished->async_receive(use_awaitable);
}

// ---- pingpong: one op is a round trip over two unbuffered channels.

awaitable<void> echo(std::shared_ptr<int_chan> ping, std::shared_ptr<int_chan> pong)
{
    for (;;) {
        auto [ec, v] = co_await ping->async_receive(as_tuple(use_awaitable));
        if (ec)
            co_return;
        co_await pong->async_send(asio::error_code{}, v, use_awaitable);
    }
}

awaitable<void> pingpong(std::int64_t n, unsigned)
{
    auto ex = co_await asio::this_coro::executor;
    auto ping = std::make_shared<int_chan>(ex, 0);
    auto pong = std::make_shared<int_chan>(ex, 0);
    asio::co_spawn(ex, echo(ping, pong), asio::detached);
    for (std::int64_t i = 0; i < n; ++i) {
        co_await ping->async_send(asio::error_code{}, static_cast<int>(i), use_awaitable);
        co_await pong->async_receive(use_awaitable);
    }
    ping->close();
}

// ---- ChanSync: two coroutines take batches of 1000 hand-offs on one
// unbuffered channel; even batches receive first, odd ones send first.

awaitable<void> chan_sync_worker(std::shared_ptr<std::atomic<std::int32_t>> batches,
                                 std::shared_ptr<int_chan> myc, std::shared_ptr<bool_chan> finished)
{
    for (;;) {
        const std::int32_t i = batches->fetch_sub(1) - 1;
        if (i < 0)
            break;
        for (int g = 0; g < calls_per_sched; ++g) {
            if (i % 2 == 0) {
                co_await myc->async_receive(use_awaitable);
                co_await myc->async_send(asio::error_code{}, 0, use_awaitable);
            } else {
                co_await myc->async_send(asio::error_code{}, 0, use_awaitable);
                co_await myc->async_receive(use_awaitable);
            }
        }
    }
    co_await finished->async_send(asio::error_code{}, true, use_awaitable);
}

awaitable<void> chan_sync(std::int64_t n, unsigned)
{
    constexpr unsigned procs = 2;
    auto ex = co_await asio::this_coro::executor;
    auto batches = std::make_shared<std::atomic<std::int32_t>>(
        static_cast<std::int32_t>(n / calls_per_sched / procs * procs));
    auto myc = std::make_shared<int_chan>(ex, 0);
    auto finished = std::make_shared<bool_chan>(ex, procs);
    for (unsigned p = 0; p < procs; ++p)
        asio::co_spawn(ex, chan_sync_worker(batches, myc, finished), asio::detached);
    co_await collect(finished, procs);
}

// ---- ChanProdCons{0,100}: procs producers and procs consumers share one
// channel; a 0 value stops a consumer.

awaitable<void> producer(std::shared_ptr<std::atomic<std::int32_t>> batches,
                         std::shared_ptr<int_chan> myc, std::shared_ptr<bool_chan> finished)
{
    while (batches->fetch_sub(1) - 1 >= 0)
        for (int g = 0; g < calls_per_sched; ++g)
            co_await myc->async_send(asio::error_code{}, 1, use_awaitable);
    co_await myc->async_send(asio::error_code{}, 0, use_awaitable);
    co_await finished->async_send(asio::error_code{}, true, use_awaitable);
}

awaitable<void> consumer(std::shared_ptr<int_chan> myc, std::shared_ptr<bool_chan> finished)
{
    for (;;) {
        const int v = co_await myc->async_receive(use_awaitable);
        if (v == 0)
            break;
    }
    co_await finished->async_send(asio::error_code{}, true, use_awaitable);
}

awaitable<void> prod_cons(std::int64_t n, unsigned procs, std::size_t capacity)
{
    auto ex = co_await asio::this_coro::executor;
    auto batches =
        std::make_shared<std::atomic<std::int32_t>>(static_cast<std::int32_t>(n / calls_per_sched));
    auto myc = std::make_shared<int_chan>(ex, capacity);
    auto finished = std::make_shared<bool_chan>(ex, 2 * procs);
    for (unsigned p = 0; p < procs; ++p) {
        asio::co_spawn(ex, producer(batches, myc, finished), asio::detached);
        asio::co_spawn(ex, consumer(myc, finished), asio::detached);
    }
    co_await collect(finished, 2 * procs);
}

awaitable<void> chan_prod_cons0(std::int64_t n, unsigned procs)
{
    co_await prod_cons(n, procs, 0);
}

awaitable<void> chan_prod_cons100(std::int64_t n, unsigned procs)
{
    co_await prod_cons(n, procs, 100);
}

// ---- RunParallel shapes: one coroutine per thread, b.N split evenly.

awaitable<void> fill_drain(std::shared_ptr<bench::parallel_work> work, std::shared_ptr<int_chan> myc,
                           std::shared_ptr<bool_chan> finished)
{
    constexpr int c = 100;
    if (!myc)
        myc = std::make_shared<int_chan>(co_await asio::this_coro::executor, c);
    for (bench::parallel_work::body pb(*work); pb.next();) {
        for (int k = 0; k < c; ++k)
            co_await myc->async_send(asio::error_code{}, 0, use_awaitable);
        for (int k = 0; k < c; ++k)
            co_await myc->async_receive(use_awaitable);
    }
    co_await finished->async_send(asio::error_code{}, true, use_awaitable);
}

awaitable<void> chan_uncontended(std::int64_t n, unsigned procs)
{
    auto ex = co_await asio::this_coro::executor;
    auto finished = std::make_shared<bool_chan>(ex, procs);
    auto work = std::make_shared<bench::parallel_work>(n);
    for (unsigned p = 0; p < procs; ++p)
        asio::co_spawn(ex, fill_drain(work, nullptr, finished), asio::detached);
    co_await collect(finished, procs);
}

awaitable<void> chan_contended(std::int64_t n, unsigned procs)
{
    auto ex = co_await asio::this_coro::executor;
    auto myc = std::make_shared<int_chan>(ex, 100 * procs);
    auto finished = std::make_shared<bool_chan>(ex, procs);
    auto work = std::make_shared<bench::parallel_work>(n);
    for (unsigned p = 0; p < procs; ++p)
        asio::co_spawn(ex, fill_drain(work, myc, finished), asio::detached);
    co_await collect(finished, procs);
}

awaitable<void> sem_user(std::shared_ptr<bench::parallel_work> work, std::shared_ptr<empty_chan> myc,
                         std::shared_ptr<bool_chan> finished)
{
    for (bench::parallel_work::body pb(*work); pb.next();) {
        co_await myc->async_send(asio::error_code{}, empty{}, use_awaitable);
        co_await myc->async_receive(use_awaitable);
    }
    co_await finished->async_send(asio::error_code{}, true, use_awaitable);
}

awaitable<void> chan_sem(std::int64_t n, unsigned procs)
{
    auto ex = co_await asio::this_coro::executor;
    auto myc = std::make_shared<empty_chan>(ex, procs);
    auto finished = std::make_shared<bool_chan>(ex, procs);
    auto work = std::make_shared<bench::parallel_work>(n);
    for (unsigned p = 0; p < procs; ++p)
        asio::co_spawn(ex, sem_user(work, myc, finished), asio::detached);
    co_await collect(finished, procs);
}

// ---- CreateGoroutines: a chain of n coroutines, each spawning the next.
//
// co_spawn from inside the io_context runs the new coroutine inline up to
// its first suspension, so a chain spawned directly would nest n deep on
// the thread's stack. Posting the spawn gives Go's order instead: the new
// coroutine is queued and the spawner runs on to its end.

awaitable<void> chain(std::shared_ptr<bool_chan> c, std::int64_t n);

void spawn_chain(asio::any_io_executor ex, std::shared_ptr<bool_chan> c, std::int64_t n)
{
    asio::post(ex, [ex, c = std::move(c), n]() mutable {
        asio::co_spawn(ex, chain(std::move(c), n), asio::detached);
    });
}

awaitable<void> chain(std::shared_ptr<bool_chan> c, std::int64_t n)
{
    if (n == 0) {
        co_await c->async_send(asio::error_code{}, true, use_awaitable);
        co_return;
    }
    spawn_chain(co_await asio::this_coro::executor, std::move(c), n - 1);
}

awaitable<void> create_goroutines(std::int64_t n, unsigned)
{
    auto ex = co_await asio::this_coro::executor;
    auto c = std::make_shared<bool_chan>(ex, 0);
    spawn_chain(ex, c, n);
    co_await c->async_receive(use_awaitable);
}

// ---- memory: RSS growth per coroutine parked on a channel receive.

struct park_counts {
    std::atomic<std::int64_t> parked{0};
    std::atomic<std::int64_t> exited{0};
};

awaitable<void> parked(int_chan* ch, park_counts* counts)
{
    counts->parked.fetch_add(1, std::memory_order_relaxed);
    co_await ch->async_receive(as_tuple(use_awaitable));
    counts->exited.fetch_add(1, std::memory_order_relaxed);
}

awaitable<void> wait_until(const std::atomic<std::int64_t>& counter, std::int64_t value)
{
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (counter.load() < value) {
        timer.expires_after(std::chrono::milliseconds(1));
        co_await timer.async_wait(use_awaitable);
    }
}

awaitable<double> memory(std::int64_t tasks)
{
    auto ex = co_await asio::this_coro::executor;
    int_chan ch(ex, 0);
    park_counts counts;
    const auto before = bench::resident_bytes();
    for (std::int64_t i = 0; i < tasks; ++i)
        asio::co_spawn(ex, parked(&ch, &counts), asio::detached);
    co_await wait_until(counts.parked, tasks);
    // Let the last coroutines reach the receive before measuring.
    asio::steady_timer settle(ex, std::chrono::milliseconds(20));
    co_await settle.async_wait(use_awaitable);
    const auto after = bench::resident_bytes();
    ch.close();
    co_await wait_until(counts.exited, tasks);
    co_return static_cast<double>(after - before) / static_cast<double>(tasks);
}

const std::map<std::string, body_fn>& benchmarks()
{
    static const std::map<std::string, body_fn> table{
        {"pingpong", pingpong},
        {"ChanSync", chan_sync},
        {"ChanProdCons0", chan_prod_cons0},
        {"ChanProdCons100", chan_prod_cons100},
        {"ChanUncontended", chan_uncontended},
        {"ChanContended", chan_contended},
        {"ChanSem", chan_sem},
        {"CreateGoroutines", create_goroutines},
    };
    return table;
}

awaitable<void> run_all(bench::options opts, unsigned procs)
{
    for (const auto& name : opts.names) {
        if (name == "memory") {
            bench::report_memory(co_await memory(opts.tasks));
            continue;
        }
        const auto it = benchmarks().find(name);
        if (it == benchmarks().end())
            throw std::invalid_argument("unknown benchmark " + name);
        bench::iteration_planner planner(opts.time);
        for (auto n = planner.next(); n != 0; n = planner.next()) {
            bench::plan_parallel_grain(planner);
            const auto start = std::chrono::steady_clock::now();
            co_await it->second(n, procs);
            planner.record(n, std::chrono::steady_clock::now() - start);
        }
        bench::report_timing(name, planner);
    }
}

} // namespace

int main(int argc, char** argv)
{
    try {
        const auto opts = bench::parse_options(argc, argv);
        if (opts.list) {
            std::puts("memory");
            for (const auto& [name, body] : benchmarks())
                std::puts(name.c_str());
            return 0;
        }
        const unsigned procs =
            opts.procs != 0 ? opts.procs : std::max(1u, std::thread::hardware_concurrency());
        asio::io_context ctx(static_cast<int>(procs));
        auto guard = asio::make_work_guard(ctx);
        std::vector<std::thread> threads;
        for (unsigned i = 0; i < procs; ++i)
            threads.emplace_back([&ctx] { ctx.run(); });
        auto done = asio::co_spawn(ctx, run_all(opts, procs), asio::use_future);
        std::exception_ptr failure;
        try {
            done.get();
        } catch (...) {
            failure = std::current_exception();
        }
        guard.reset();
        ctx.stop();
        for (auto& t : threads)
            t.join();
        if (failure)
            std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "asio_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
