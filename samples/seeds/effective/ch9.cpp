// "Effective Concurrency in Go", chapter 9: atomic memory operations.
// Go's atomics are sequentially consistent, as std::atomic is by default.
//
// usage: ch9 EXAMPLE
#include "../seeds.hpp"

#include <array>
#include <atomic>
#include <memory>
#include <string>

using namespace std::chrono_literals;

namespace {

// A flag and a value published with atomics: always "Done!" (the book's
// first version, with plain variables, is a data race: in C++ the loop may
// never end).
weft::task<> publish()
{
    static const std::string empty, done_str = "Done!";
    std::atomic<const std::string*> str = &empty; // [atomic.Value]
    std::atomic<bool> done = false;
    weft::go([&]() -> weft::task<> {
        str.store(&done_str);
        done.store(true);
        co_return;
    });
    while (!done.load())
        co_await weft::this_task::yield();
    std::printf("%s\n", str.load()->c_str());
}

// A load that sees a store sees what came before it: 1 or nothing, never 0.
weft::task<> happened_before()
{
    std::atomic<bool> done = false;
    int a = 0;
    auto h = weft::go([&]() -> weft::task<> {
        a = 1;
        done.store(true);
        co_return;
    });
    if (done.load())
        std::printf("%d\n", a);
    co_await h;
}

// A load then a store is no lock: two tasks can both see it free. A
// compare-and-swap is a non-blocking lock [Mutex.TryLock].
template <bool cas>
weft::task<> critical_sections()
{
    std::atomic<bool> locked = false;
    std::atomic<int> inside = 0, most = 0, entered = 0;
    weft::wait_group wg;
    for (int i = 0; i < 8; i++)
        wg.go([&]() -> weft::task<> {
            for (int k = 0; k < 200; k++) {
                bool expected = false;
                if (cas ? locked.compare_exchange_strong(expected, true) : !locked.load()) {
                    if (!cas)
                        locked.store(true); // another task may be here too
                    int now = ++inside;
                    for (int m = most; now > m && !most.compare_exchange_weak(m, now);)
                        ;
                    entered++;
                    co_await weft::this_task::yield(); // the critical section
                    --inside;
                    locked.store(false);
                }
                co_await weft::this_task::yield();
            }
        });
    co_await wg.wait();
    std::printf("%s: entered %s, at most %d inside at once\n",
                cas ? "compare-and-swap" : "load, then store", entered > 0 ? "sometimes" : "never",
                most.load());
}

// 10000 tasks count up; the main task loads until it sees them all.
weft::task<> counter()
{
    static std::atomic<long> count = 0;
    for (int i = 0; i < 10000; i++)
        weft::go([]() -> weft::task<> {
            count.fetch_add(1);
            co_return;
        });
    for (;;) {
        long v = count.load();
        std::printf("%ld\n", v);
        if (v == 10000)
            break;
        co_await weft::this_task::yield();
    }
}

// A progress meter: the worker adds to it, an observer reads it every
// 100 ms and cancels the worker when it stopped moving.
struct progress_meter {
    std::atomic<long> progress = 0;
    void advance() { progress.fetch_add(1); }
    long get() const { return progress.load(); }
};

weft::task<> long_task(weft::context ctx, progress_meter* pm)
{
    for (;;) {
        if (ctx.err()) {
            std::printf("Canceled\n");
            co_return;
        }
        // Sleeps of up to 120 ms: one will outlast the observer's tick.
        co_await weft::sleep_for(seeds::rand_ms(seeds::rand_intn(4) == 0 ? 240 : 60));
        pm->advance();
    }
}

weft::task<> observer(weft::context ctx, weft::cancel_func cancel, progress_meter* progress)
{
    weft::ticker tick(100ms);
    long last_progress = 0;
    for (;;) {
        auto r = co_await weft::select(ctx.done(), tick.channel());
        if (r.index() == 0)
            co_return;
        long p = progress->get();
        if (p == last_progress) {
            std::printf("No progress since last time, canceling\n");
            cancel();
            co_return;
        }
        std::printf("Progress: %ld\n", p);
        last_progress = p;
    }
}

weft::task<> progress()
{
    progress_meter pm;
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    weft::wait_group wg;
    wg.go(long_task, ctx, &pm);
    weft::go(observer, ctx, cancel, &pm);
    co_await wg.wait();
    cancel();
}

// Cancellation with an atomic flag and two closures that share it.
auto cancel_support()
{
    auto v = std::make_shared<std::atomic<bool>>(false);
    return std::pair{[v] { v->store(true); }, [v] { return v->load(); }};
}

weft::task<> cancellation()
{
    auto start = weft::clock::now();
    auto [cancel, is_cancelled] = cancel_support();
    weft::wait_group wg;
    wg.go([is_cancelled]() -> weft::task<> {
        for (;;) {
            co_await weft::sleep_for(10ms);
            if (is_cancelled()) {
                std::printf("Cancelled\n");
                co_return;
            }
        }
    });
    weft::after_func(500ms, cancel); // the book: 5 s
    co_await wg.wait();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(weft::clock::now() - start);
    std::printf("after %lld ms\n", static_cast<long long>(ms.count()));
}

// Copy-on-write with a compare-and-swap of the pointer: nobody changes a
// value others may be reading; a lost race is seen, not overwritten. The
// versions live until the end, as Go's garbage collector would keep them
// while anyone reads them. [atomic.Pointer]
struct some_struct {
    int value;
};

weft::task<> compare_and_swap()
{
    std::array<some_struct, 5> versions{}; // the first, and one per task
    std::atomic<const some_struct*> shared = &versions[0];
    std::atomic<int> won = 0;
    weft::wait_group wg;
    for (int i = 1; i <= 4; i++)
        wg.go([&, i]() -> weft::task<> {
            auto old = shared.load();
            versions[i] = some_struct{old->value + 1}; // a new copy, changed
            co_await weft::this_task::yield();         // others may swap meanwhile
            if (shared.compare_exchange_strong(old, &versions[i])) {
                std::printf("Set value successful\n");
                won++;
            } else {
                std::printf("Another goroutine modified the value\n");
            }
        });
    co_await wg.wait();
    std::printf("value %d after %d successful swaps\n", shared.load()->value, won.load());
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"publish", publish},
                        {"happened-before", happened_before},
                        {"load-store", critical_sections<false>},
                        {"cas-lock", critical_sections<true>},
                        {"counter", counter},
                        {"progress", progress},
                        {"cancellation", cancellation},
                        {"compare-and-swap", compare_and_swap}});
}
