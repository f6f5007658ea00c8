// "Effective Concurrency in Go", chapter 7: timers, tickers and heartbeats.
// Timer channels follow Go 1.23: after stop() or reset() returns, no stale
// value is received, so the book's drain idiom is not needed (and harmless).
//
// usage: ch7 EXAMPLE
#include "../seeds.hpp"

#include <memory>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

long long since_ms(weft::clock::time_point start)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(weft::clock::now() - start)
        .count();
}

// E7.1: the book's model of time.NewTimer, a task that sleeps and then
// sends. Don't do this: it cannot be stopped, and weft::timer costs no task.
struct timer_mockup {
    explicit timer_mockup(weft::clock::duration d)
    {
        weft::go([c = c, d]() -> weft::task<> {
            co_await weft::sleep_for(d);
            c.try_send(weft::clock::now());
        });
    }
    weft::chan<weft::clock::time_point> c = weft::make_chan<weft::clock::time_point>(1);
};

weft::task<> mockup()
{
    auto start = weft::clock::now();
    timer_mockup t(50ms);
    auto fired = *co_await t.c.recv();
    std::printf("fired %s\n", fired - start >= 50ms ? "after 50 ms" : "early");
}

// Work in 1 ms steps until `timeout` is closed, 100 ms from now; three ways
// to close it: a timer and a goroutine, after_func, and after().
template <class Arm>
weft::task<> work_until_timeout(Arm arm)
{
    auto timeout = weft::make_chan<std::monostate>();
    [[maybe_unused]] auto t = co_await arm(timeout); // keeps the timer
    int x = 0;
    for (bool done = false; !done;) {
        done = timeout.closed(); // [select { case <-timeout: done = true; default: }]
        co_await weft::sleep_for(1ms);
        x++;
    }
    std::printf("%d\n", x);
}

weft::task<> timer_timeout()
{
    auto arm = [](weft::chan<std::monostate> timeout) -> weft::task<std::shared_ptr<weft::timer>> {
        auto timer = std::make_shared<weft::timer>(100ms);
        weft::go([timer, timeout]() -> weft::task<> {
            co_await timer->channel().recv();
            timeout.close();
            std::printf("Timeout\n");
        });
        co_return timer;
    };
    co_await work_until_timeout(arm);
}

weft::task<> after_func_timeout()
{
    auto arm = [](weft::chan<std::monostate> timeout) -> weft::task<weft::timer> {
        co_return weft::after_func(100ms, [timeout] {
            timeout.close();
            std::printf("Timeout\n");
        });
    };
    co_await work_until_timeout(arm);
}

weft::task<> after_timeout()
{
    auto arm = [](weft::chan<std::monostate> timeout) -> weft::task<int> {
        weft::go([timeout, ch = weft::after(100ms)]() -> weft::task<> {
            co_await ch.recv();
            timeout.close();
            std::printf("Timeout\n");
        });
        co_return 0;
    };
    co_await work_until_timeout(arm);
}

// Work that ends before the timeout stops the timer: no false "Timeout".
weft::task<> stop()
{
    auto timer = weft::after_func(100ms, [] { std::printf("Timeout\n"); });
    co_await weft::sleep_for(10ms); // the work
    std::printf("stopped in time: %s\n", timer.stop() ? "true" : "false");
    co_await weft::sleep_for(150ms);
}

// Resetting a timer while waiting on it: a second channel asks for a reset.
weft::task<> reset()
{
    auto start = weft::clock::now();
    weft::timer timer(50ms);
    auto reset_timer = weft::make_chan<weft::clock::duration>();
    weft::go([reset_timer]() -> weft::task<> {
        co_await weft::sleep_for(20ms);
        co_await reset_timer.send(100ms);
    });
    for (;;) {
        auto r = co_await weft::select(timer.channel(), reset_timer);
        if (r.index() == 0)
            break;
        timer.stop(); // Go 1.23: nothing left to drain
        timer.reset(*std::get<1>(r));
        std::printf("reset at %lld ms\n", since_ms(start) / 10 * 10);
    }
    std::printf("Timeout at %lld ms\n", since_ms(start));
}

// A task that schedules its next run with after_func when it is done: the
// running times add up (a ticker keeps the period instead).
weft::task<> periodic()
{
    auto start = weft::clock::now();
    auto done = weft::make_chan<std::monostate>();
    struct periodic_task {
        weft::clock::time_point start;
        weft::chan<std::monostate> done;
        int run = 0;
        void operator()()
        {
            std::printf("run %d at %lld ms\n", ++run, since_ms(start));
            std::this_thread::sleep_for(5ms); // DoSomething, which blocks its worker
            if (run == 5)
                done.close();
            else
                weft::after_func(20ms, *this);
        }
    };
    weft::after_func(20ms, periodic_task{start, done});
    co_await done.recv();
}

// A ticker for a second: a tick every 50 ms, without drift.
weft::task<> ticker()
{
    auto start = weft::clock::now();
    weft::ticker ticker(50ms);
    auto done = weft::after(1s + 25ms);
    for (;;) {
        auto r = co_await weft::select(ticker.channel(), done);
        if (r.index() == 1)
            co_return;
        std::printf("Tick: %lld\n", since_ms(start));
    }
}

// A listener that misses ticks gets one at once when it listens again, then
// the ticks come on the original rhythm.
weft::task<> slow_receiver()
{
    auto start = weft::clock::now();
    weft::ticker ticker(20ms);
    for (int i = 0; i < 6; i++) {
        co_await ticker.channel().recv();
        std::printf("Tick: %lld\n", since_ms(start));
        if (i == 0)
            co_await weft::sleep_for(70ms); // misses three ticks
    }
}

// Heartbeats: a long-running process beats after each step; a monitor that
// sees no beat for two ticks declares it dead and closes done.
weft::task<> monitor(weft::recv_chan<std::monostate> heartbeat, weft::chan<std::monostate> done,
                     weft::recv_chan<weft::clock::time_point> tick, weft::clock::time_point start)
{
    long long last_heartbeat = 0;
    int num_ticks = 0;
    for (;;) {
        auto r = co_await weft::select(tick, heartbeat);
        if (r.index() == 0) {
            if (++num_ticks >= 2) {
                std::printf("No progress since %lld ms, terminating\n", last_heartbeat);
                done.close();
                co_return;
            }
        } else {
            last_heartbeat = since_ms(start);
            num_ticks = 0;
        }
    }
}

weft::task<> long_running_process(weft::send_chan<std::monostate> heartbeat,
                                  weft::recv_chan<std::monostate> done)
{
    for (int step = 1;; step++) {
        co_await weft::sleep_for(step < 5 ? 10ms : 1s); // the fifth step hangs
        std::printf("step %d done\n", step);
        if ((co_await weft::select(done, heartbeat.send({}))).index() == 0)
            co_return;
    }
}

weft::task<> heartbeat()
{
    auto start = weft::clock::now();
    auto beat = weft::make_chan<std::monostate>();
    auto done = weft::make_chan<std::monostate>();
    weft::ticker ticker(50ms);
    weft::go(monitor, beat, done, ticker.channel(), start);
    weft::go(long_running_process, beat, done);
    co_await done.recv();
    std::printf("terminated at %lld ms\n", since_ms(start));
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"timer-mockup", mockup},
                        {"timer", timer_timeout},
                        {"after-func", after_func_timeout},
                        {"after", after_timeout},
                        {"stop", stop},
                        {"reset", reset},
                        {"periodic", periodic},
                        {"ticker", ticker},
                        {"slow-receiver", slow_receiver},
                        {"heartbeat", heartbeat}});
}
