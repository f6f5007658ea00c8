// "Effective Concurrency in Go", chapter 10: troubleshooting. A deadlock the
// runtime detects, a list shared under a mutex (the book's racy version is
// undefined behaviour in C++), a monitor that answers "busy" or "timeout"
// at once and raises an alert when calls stop completing (and dumps every
// task, as the book does with pprof), a handler that dumps the tasks when it
// takes too long, and a supervisor that restarts a function whose heartbeat
// stops.
//
// usage: ch10 EXAMPLE
#include "../seeds.hpp"

#include <iostream>
#include <list>
#include <optional>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {

// Two philosophers take the same two forks in opposite orders: sooner or
// later each holds one and waits for the other, and nothing else can run.
weft::task<> philosopher(weft::mutex* first_fork, weft::mutex* second_fork)
{
    for (;;) {
        co_await first_fork->lock();
        co_await weft::this_task::yield(); // makes the bad interleaving likely
        co_await second_fork->lock();
        second_fork->unlock();
        first_fork->unlock();
    }
}

weft::task<> deadlock()
{
    static weft::mutex forks[2];
    weft::go(philosopher, &forks[0], &forks[1]);
    weft::go(philosopher, &forks[1], &forks[0]);
    co_await weft::chan<int>().recv(); // a nil channel: blocks forever [select {}]
}

// One task appends to a list, another removes its front: with a mutex.
weft::task<> list()
{
    std::list<int> l;
    weft::mutex mu;
    weft::wait_group wg;
    int pushed = 0, removed = 0;
    wg.go([&]() -> weft::task<> {
        for (int i = 0; i < 100000; i++) {
            auto lock = co_await mu.scoped_lock();
            l.push_back(i);
            pushed++;
        }
    });
    wg.go([&]() -> weft::task<> {
        for (int i = 0; i < 100000; i++) {
            auto lock = co_await mu.scoped_lock();
            if (!l.empty()) {
                l.pop_front();
                removed++;
            }
        }
    });
    co_await wg.wait();
    std::printf("%s\n", pushed - removed == static_cast<int>(l.size()) ? "consistent" : "corrupt");
}

// A monitor around a slow function: at most max_active calls at once; a call
// beyond that is refused at once (busy); a call that takes longer than
// call_timeout returns timeout (the function goes on, its result dropped).
// When every slot stays busy for alert_timeout without a call completing,
// the monitor sends an alert.
struct busy_error : std::runtime_error {
    busy_error() : std::runtime_error("busy") {}
};
struct timeout_error : std::runtime_error {
    timeout_error() : std::runtime_error("timeout") {}
};

template <class Req, class Rsp>
class monitor {
public:
    using function = weft::task<Rsp> (*)(Req);

    monitor(weft::clock::duration call_timeout, weft::clock::duration alert_timeout,
            std::size_t max_active, function slow_func)
        : m_call_timeout(call_timeout), m_slow_func(slow_func),
          m_active(weft::make_chan<std::monostate>(max_active))
    {
        // Idle: wait until a call finds every slot taken. Armed: alert unless
        // a call completes first.
        weft::go(
            [](weft::clock::duration alert_timeout, weft::chan<std::monostate> full,
               weft::chan<std::monostate> heartbeat, weft::chan<std::monostate> alert,
               weft::chan<std::monostate> done) -> weft::task<> {
                for (;;) {
                    auto armed = co_await weft::select(full, done);
                    if (armed.index() == 1)
                        co_return;
                    weft::timer timer(alert_timeout);
                    auto r = co_await weft::select(timer.channel(), heartbeat, done);
                    if (r.index() == 0)
                        alert.try_send({}); // an unread alert is enough
                    else if (r.index() == 2)
                        co_return;
                }
            },
            alert_timeout, m_full, m_heartbeat, alert, done);
    }

    ~monitor() { done.close(); }

    weft::task<Rsp> call(Req req)
    {
        if (!m_active.try_send({})) {
            // Every slot is taken: try once more, then arm the alert timer
            // if the monitor is idle; either way the call is refused.
            auto r = co_await weft::select(m_active.send({}), m_full.send({}), weft::default_case);
            if (r.index() != 0)
                throw busy_error();
        }
        auto complete = weft::make_chan<Rsp>(1);
        weft::go(
            [](function f, Req req, weft::chan<std::monostate> active,
               weft::chan<std::monostate> heartbeat, weft::chan<Rsp> complete) -> weft::task<> {
                auto rsp = co_await f(std::move(req));
                active.try_recv();      // free the slot
                heartbeat.try_send({}); // stops the alert timer if it runs
                complete.try_send(std::move(rsp));
            },
            m_slow_func, std::move(req), m_active, m_heartbeat, complete);
        auto r = co_await weft::select(weft::after(m_call_timeout), complete);
        if (r.index() == 0)
            throw timeout_error();
        co_return *std::get<1>(r);
    }

    weft::chan<std::monostate> alert = weft::make_chan<std::monostate>(1);
    weft::chan<std::monostate> done = weft::make_chan<std::monostate>();

private:
    weft::clock::duration m_call_timeout;
    function m_slow_func;
    weft::chan<std::monostate> m_active;
    weft::chan<std::monostate> m_full = weft::make_chan<std::monostate>();
    weft::chan<std::monostate> m_heartbeat = weft::make_chan<std::monostate>();
};

weft::task<std::string> slow_func(int req)
{
    co_await weft::sleep_for(req < 3 ? 10ms : 400ms);
    co_return "response " + std::to_string(req);
}

weft::task<> monitored()
{
    auto start = weft::clock::now();
    monitor<int, std::string> mon(50ms, 200ms, 3, slow_func);
    auto call = [&mon](int req) -> weft::task<> {
        try {
            std::printf("call %d: %s\n", req, (co_await mon.call(req)).c_str());
        } catch (const std::exception& e) {
            std::printf("call %d: %s\n", req, e.what());
        }
    };
    co_await call(1); // fast: answered
    weft::wait_group wg;
    for (int req = 3; req < 8; req++) // slow: 3 take the slots, 2 are refused
        wg.go(call, req);
    co_await wg.wait();
    co_await mon.alert.recv();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(weft::clock::now() - start);
    std::printf("alert: no call completed for %s\n", ms >= 200ms ? "200 ms" : "less than 200 ms");
    // E10.5: diagnose the moment it happens. [pprof.Lookup("goroutine").WriteTo]
    weft::dump_tasks(std::cerr);
}

// E10.6: a handler that should answer within 100 ms dumps every task if it
// does not (the book's `defer timeoutStackTrace(20 * time.Second)()`).
weft::task<> handle(int req, weft::mutex& db)
{
    auto guard = weft::dump_tasks_after(100ms, std::cerr);
    co_await db.lock();
    db.unlock();
    std::printf("request %d done\n", req);
}

weft::task<> timeout_stack_trace()
{
    weft::mutex db;
    co_await handle(1, db); // in time: nothing is dumped
    co_await db.lock();     // a stuck transaction holds the lock for 300 ms
    weft::go([&db]() -> weft::task<> {
        co_await weft::sleep_for(300ms);
        db.unlock();
    });
    co_await handle(2, db); // dumps the tasks after 100 ms, then goes on
}

// A supervisor restarts f when no heartbeat comes for `timeout`, after it
// closes the old instance's done channel.
using supervised = weft::task<> (*)(int instance, weft::recv_chan<std::monostate> done,
                                    weft::send_chan<std::monostate> heartbeat);

weft::task<> restart(weft::recv_chan<std::monostate> done, supervised f,
                     weft::clock::duration timeout)
{
    for (int instance = 1;; instance++) {
        auto func_done = weft::make_chan<std::monostate>();
        auto heartbeat = weft::make_chan<std::monostate>();
        weft::go(f, instance, func_done, heartbeat);
        weft::timer timer(timeout);
        for (bool retry = false; !retry;) {
            auto r = co_await weft::select(done, heartbeat, timer.channel());
            if (r.index() == 0) {
                func_done.close();
                co_return;
            }
            if (r.index() == 1) {
                timer.reset(timeout); // Go 1.23: no stop-and-drain needed
            } else {
                std::printf("Timeout, restarting func\n");
                func_done.close();
                retry = true;
            }
        }
    }
}

// Beats five times, then hangs; it still watches done, so an abandoned
// instance ends instead of blocking on its heartbeat forever.
weft::task<> long_running_func(int instance, weft::recv_chan<std::monostate> done,
                               weft::send_chan<std::monostate> heartbeat)
{
    std::printf("instance %d started\n", instance);
    for (int beat = 0;; beat++) {
        co_await weft::sleep_for(beat < 5 ? 10ms : 1s);
        if ((co_await weft::select(done, heartbeat.send({}))).index() == 0)
            co_return;
    }
}

weft::task<> restarting()
{
    auto done = weft::make_chan<std::monostate>();
    auto supervisor = weft::go(restart, done, long_running_func, 50ms);
    co_await weft::sleep_for(300ms);
    done.close();
    co_await supervisor;
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(
        argc, argv,
        {{"deadlock", deadlock},
         {"list", list},
         {"monitor", monitored},
         {"timeout-stack-trace", timeout_stack_trace},
         {"restart", restarting}});
}
