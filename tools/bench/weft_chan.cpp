// weft versions of the Go peers in go/chan.go: pingpong plus the shapes of
// Go's runtime benchmarks (chan_test.go, proc_test.go), with the same
// structure, constants and unit, so each ratio compares like with like.
//
// b.RunParallel becomes one task per worker (max_procs()), each given an
// even share of n. Tasks that the Go originals leave running are detached
// here too (the join_handle is dropped). Channels travel by value: a chan
// is a shared handle, like a Go channel value.
//
// Loops keep co_await out of loop conditions: GCC 12 miscompiles some
// co_await expressions in while conditions (seen with the Asio peer).

#include "weft_bench.hpp"

#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "bench_support.hpp"

namespace weft_bench {
namespace {

/// Batch size the originals hand out through an atomic counter.
constexpr int calls_per_sched = 1000;

/// b.RunParallel: body(work, args...) on max_procs() tasks, which share the
/// n iterations as Go's parallel bodies do (bench::parallel_work), then
/// join them.
template <class... A>
weft::task<> run_parallel(std::int64_t n, weft::task<> (*body)(bench::parallel_work*, A...),
                          std::type_identity_t<A>... args)
{
    const unsigned procs = weft::max_procs();
    bench::parallel_work work(n);
    std::vector<weft::join_handle<>> workers;
    workers.reserve(procs);
    for (unsigned p = 0; p < procs; ++p)
        workers.push_back(weft::go(body, &work, args...));
    for (auto& w : workers)
        co_await w;
}

// ---- pingpong: one op is a round trip over two unbuffered channels.

weft::task<> echo(weft::chan<int> ping, weft::chan<int> pong)
{
    for (;;) {
        auto v = co_await ping.recv();
        if (!v)
            co_return;
        co_await pong.send(*v);
    }
}

weft::task<> pingpong(std::int64_t n)
{
    auto ping = weft::make_chan<int>();
    auto pong = weft::make_chan<int>();
    auto echoer = weft::go(echo, ping, pong);
    for (std::int64_t i = 0; i < n; ++i) {
        co_await ping.send(static_cast<int>(i));
        static_cast<void>(co_await pong.recv());
    }
    ping.close();
    co_await echoer;
}

// ---- ChanSync: two tasks take batches of 1000 hand-offs on one unbuffered
// channel; even batches receive first, odd ones send first.

weft::task<> chan_sync_worker(std::atomic<std::int32_t>* batches, weft::chan<int> myc,
                              weft::chan<bool> finished)
{
    for (;;) {
        const std::int32_t i = batches->fetch_sub(1) - 1;
        if (i < 0)
            break;
        for (int g = 0; g < calls_per_sched; ++g) {
            if (i % 2 == 0) {
                static_cast<void>(co_await myc.recv());
                co_await myc.send(0);
            } else {
                co_await myc.send(0);
                static_cast<void>(co_await myc.recv());
            }
        }
    }
    co_await finished.send(true);
}

weft::task<> chan_sync(std::int64_t n)
{
    constexpr int procs = 2;
    // Outlives the workers: they touch it only before their final send.
    std::atomic<std::int32_t> batches{
        static_cast<std::int32_t>(n / calls_per_sched / procs * procs)};
    auto myc = weft::make_chan<int>();
    auto finished = weft::make_chan<bool>(procs);
    for (int p = 0; p < procs; ++p)
        weft::go(chan_sync_worker, &batches, myc, finished);
    for (int p = 0; p < procs; ++p)
        static_cast<void>(co_await finished.recv());
}

// ---- ChanProdCons{0,100}: max_procs() producers and as many consumers
// share one channel; a 0 value stops a consumer.

weft::task<> producer(std::atomic<std::int32_t>* batches, weft::chan<int> myc,
                      weft::chan<bool> finished)
{
    for (;;) {
        if (batches->fetch_sub(1) - 1 < 0)
            break;
        for (int g = 0; g < calls_per_sched; ++g)
            co_await myc.send(1);
    }
    co_await myc.send(0);
    co_await finished.send(true);
}

weft::task<> consumer(weft::chan<int> myc, weft::chan<bool> finished)
{
    for (;;) {
        auto v = co_await myc.recv();
        if (*v == 0)
            break;
    }
    co_await finished.send(true);
}

weft::task<> prod_cons(std::int64_t n, std::size_t capacity)
{
    const unsigned procs = weft::max_procs();
    std::atomic<std::int32_t> batches{static_cast<std::int32_t>(n / calls_per_sched)};
    auto myc = weft::make_chan<int>(capacity);
    auto finished = weft::make_chan<bool>(2 * procs);
    for (unsigned p = 0; p < procs; ++p) {
        weft::go(producer, &batches, myc, finished);
        weft::go(consumer, myc, finished);
    }
    for (unsigned p = 0; p < 2 * procs; ++p)
        static_cast<void>(co_await finished.recv());
}

weft::task<> chan_prod_cons0(std::int64_t n)
{
    co_await prod_cons(n, 0);
}

weft::task<> chan_prod_cons100(std::int64_t n)
{
    co_await prod_cons(n, 100);
}

// ---- ChanUncontended / ChanContended: fill a channel of 100 and drain it;
// one op is 100 sends plus 100 receives. Uncontended gives every task its
// own channel (a nil one asks for that); Contended shares one of 100 * procs.

weft::task<> fill_drain(bench::parallel_work* work, weft::chan<int> myc)
{
    constexpr int c = 100;
    if (!myc)
        myc = weft::make_chan<int>(c);
    for (bench::parallel_work::body pb(*work); pb.next();) {
        for (int k = 0; k < c; ++k)
            co_await myc.send(0);
        for (int k = 0; k < c; ++k)
            static_cast<void>(co_await myc.recv());
    }
}

weft::task<> chan_uncontended(std::int64_t n)
{
    co_await run_parallel(n, fill_drain, weft::chan<int>{});
}

weft::task<> chan_contended(std::int64_t n)
{
    co_await run_parallel(n, fill_drain, weft::make_chan<int>(100 * weft::max_procs()));
}

// ---- SelectUncontended: each task bounces one token between two private
// buffered channels through a two-way select.

weft::task<> bounce(bench::parallel_work* work)
{
    auto myc1 = weft::make_chan<int>(1);
    auto myc2 = weft::make_chan<int>(1);
    co_await myc1.send(0);
    for (bench::parallel_work::body pb(*work); pb.next();) {
        auto r = co_await weft::select(myc1.recv(), myc2.recv());
        if (r.index() == 0)
            co_await myc2.send(0);
        else
            co_await myc1.send(0);
    }
}

weft::task<> select_uncontended(std::int64_t n)
{
    co_await run_parallel(n, bounce);
}

// ---- SelectSyncContended: every parallel task starts a sender offering on
// three shared unbuffered channels at once, then receives with a three-way
// select; closing done retires the senders.

weft::task<> offer(weft::chan<int> myc1, weft::chan<int> myc2, weft::chan<int> myc3,
                   weft::chan<int> done)
{
    for (;;) {
        auto r = co_await weft::select(myc1.send(0), myc2.send(0), myc3.send(0), done.recv());
        if (r.index() == 3)
            co_return;
    }
}

weft::task<> take_offers(bench::parallel_work* work, weft::chan<int> myc1, weft::chan<int> myc2,
                         weft::chan<int> myc3, weft::chan<int> done)
{
    weft::go(offer, myc1, myc2, myc3, done);
    for (bench::parallel_work::body pb(*work); pb.next();)
        static_cast<void>(co_await weft::select(myc1.recv(), myc2.recv(), myc3.recv()));
}

weft::task<> select_sync_contended(std::int64_t n)
{
    auto myc1 = weft::make_chan<int>();
    auto myc2 = weft::make_chan<int>();
    auto myc3 = weft::make_chan<int>();
    auto done = weft::make_chan<int>();
    co_await run_parallel(n, take_offers, myc1, myc2, myc3, done);
    done.close();
}

// ---- ChanSem: a channel of empty values with max_procs() slots used as a
// counting semaphore; one op is an acquire and a release.

weft::task<> acquire_release(bench::parallel_work* work, weft::chan<std::monostate> myc)
{
    for (bench::parallel_work::body pb(*work); pb.next();) {
        co_await myc.send(std::monostate{});
        static_cast<void>(co_await myc.recv());
    }
}

weft::task<> chan_sem(std::int64_t n)
{
    co_await run_parallel(n, acquire_release, weft::make_chan<std::monostate>(weft::max_procs()));
}

// ---- CreateGoroutines: a chain of n tasks, each starting the next and
// ending; the last one reports on c. Each task hands its channel handle on
// (its last use, so it moves, as C++ code would: a copy would add two
// atomic reference-count updates that Go's pointer copy does not have).

weft::task<> chain(weft::chan<bool> c, std::int64_t n)
{
    if (n == 0) {
        co_await c.send(true);
        co_return;
    }
    weft::go(chain, std::move(c), n - 1);
}

weft::task<> create_goroutines(std::int64_t n)
{
    auto c = weft::make_chan<bool>();
    weft::go(chain, c, n);
    static_cast<void>(co_await c.recv());
}

} // namespace

const std::map<std::string, body_fn>& timed_benchmarks()
{
    static const std::map<std::string, body_fn> table{
        {"pingpong", pingpong},
        {"ChanSync", chan_sync},
        {"ChanProdCons0", chan_prod_cons0},
        {"ChanProdCons100", chan_prod_cons100},
        {"ChanUncontended", chan_uncontended},
        {"ChanContended", chan_contended},
        {"SelectUncontended", select_uncontended},
        {"SelectSyncContended", select_sync_contended},
        {"ChanSem", chan_sem},
        {"CreateGoroutines", create_goroutines},
        {"TimerArmCancel", timer_arm_cancel},
    };
    return table;
}

} // namespace weft_bench
