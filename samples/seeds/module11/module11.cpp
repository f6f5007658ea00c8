// "Programming in Go, Module Eleven: Concurrency in Go", examples 11-01 to
// 11-16: goroutines, channels, close and range, select, and a shared balance
// kept by a goroutine or by a mutex.
//
// usage: module11 11-NN
//
// Time runs ten times faster than in the book: its second is 100 ms here and
// its random sleeps of up to a second are up to 100 ms.
#include "../seeds.hpp"

#include <string>

using namespace std::chrono_literals;
using seeds::rand_ms;

namespace {

constexpr auto second = 100ms;

weft::task<> service(std::string message)
{
    for (int i = 0;; i++) {
        std::printf("%s %d\n", message.c_str(), i);
        co_await weft::sleep_for(rand_ms(100));
    }
}

// 11-01: a plain call runs forever.
weft::task<> ex01()
{
    co_await service("Message:");
}

// 11-02: main does not wait for its goroutines.
weft::task<> ex02()
{
    weft::go(service, "Message:");
    std::printf("Done!\n");
    co_return;
}

// 11-03: unless it sleeps.
weft::task<> ex03()
{
    weft::go(service, "Message:");
    co_await weft::sleep_for(2 * second);
    std::printf("Done!\n");
}

// 11-04: two goroutines.
weft::task<> ex04()
{
    weft::go(service, "Alpha:");
    weft::go(service, "Beta:");
    co_await weft::sleep_for(2 * second);
    std::printf("Done!\n");
}

// 11-05: an anonymous goroutine.
weft::task<> ex05()
{
    weft::go([]() -> weft::task<> {
        for (int i = 0;; i++) {
            std::printf("Anon: %d\n", i);
            co_await weft::sleep_for(rand_ms(100));
        }
    });
    co_await weft::sleep_for(2 * second);
    std::printf("Done!\n");
}

// 11-06 and 11-09 (where c is a weft::send_chan): main and the service in
// lockstep over an unbuffered channel.
weft::task<> counting_service(std::string message, weft::send_chan<std::string> c)
{
    for (int i = 0;; i++) {
        std::printf("service:  %d\n", i);
        co_await c.send(message + " " + std::to_string(i));
    }
}

// The main loop of 11-06 to 11-10: five messages, a second apart.
weft::task<> get_back(weft::recv_chan<std::string> c)
{
    for (int i = 0; i < 5; i++) {
        std::printf("main %d Got back: \"%s\"\n", i, (co_await c.recv())->c_str());
        co_await weft::sleep_for(second);
    }
    std::printf("Done!\n");
}

weft::task<> ex06()
{
    auto c = weft::make_chan<std::string>();
    weft::go(counting_service, "Message:", c);
    co_await get_back(c);
}

// 11-07: both sides send first: a deadlock.
weft::task<> ex07()
{
    auto c = weft::make_chan<std::string>();
    weft::go([c]() -> weft::task<> {
        co_await c.send("Hello");
        std::printf("%s\n", (co_await c.recv())->c_str());
    });
    co_await c.send("ho");
    std::printf("%s\n", (co_await c.recv())->c_str());
}

// 11-08: a buffer of 3 lets the service run ahead.
weft::task<> ex08()
{
    auto c = weft::make_chan<std::string>(3);
    weft::go([c]() -> weft::task<> {
        for (int i = 0;; i++) {
            std::printf("service:  %d buffered items  %zu\n", i, c.size());
            co_await c.send("Message: " + std::to_string(i));
        }
    });
    co_await get_back(c);
}

// 11-10: a send on a closed channel panics.
weft::task<> ex10()
{
    auto c = weft::make_chan<std::string>();
    weft::go(
        [](weft::send_chan<std::string> c) -> weft::task<> {
            for (int i = 0;; i++) {
                std::printf("service:  %d\n", i);
                co_await c.send("Message: " + std::to_string(i));
                c.close(); // the next iteration's send throws
            }
        },
        c);
    co_await get_back(c);
}

// 11-11: the sender closes, the receiver ranges.
weft::task<> sender(weft::send_chan<int> output)
{
    for (int i = 0; i < 3; i++)
        co_await output.send(i);
    output.close();
}

weft::task<> ex11()
{
    auto c = weft::make_chan<int>();
    weft::go(
        [](weft::recv_chan<int> input) -> weft::task<> {
            while (auto j = co_await input.recv())
                std::printf("Received  %d\n", *j);
            std::printf("I'm done \n");
        },
        c);
    weft::go(sender, c);
    co_await weft::sleep_for(second);
}

// 11-12: the receiver checks ok itself.
weft::task<> ex12()
{
    auto c = weft::make_chan<int>();
    weft::go(
        [](weft::recv_chan<int> input) -> weft::task<> {
            for (;;) {
                auto j = co_await input.recv();
                std::printf("%s\n", j ? "true" : "false");
                if (!j)
                    break;
                std::printf("Received  %d\n", *j);
            }
            std::printf("I'm done \n");
        },
        c);
    weft::go(sender, c);
    co_await weft::sleep_for(second);
}

// 11-13: select over two sources, with a default.
weft::task<> source(int first, weft::send_chan<int> out)
{
    for (int i = 0;; i++) {
        co_await out.send(i * 2 + first);
        co_await weft::sleep_for(rand_ms(100));
    }
}

weft::task<> ex13()
{
    auto codd = weft::make_chan<int>();
    auto ceven = weft::make_chan<int>();
    weft::go(source, 1, codd);
    weft::go(source, 0, ceven);
    weft::go(
        [](weft::recv_chan<int> ceven, weft::recv_chan<int> codd) -> weft::task<> {
            for (;;) {
                auto r = co_await weft::select(ceven, codd, weft::default_case);
                if (r.index() == 0)
                    std::printf("Even: %d\n", *std::get<0>(r));
                else if (r.index() == 1)
                    std::printf("Odd: %d\n", *std::get<1>(r));
                else {
                    std::printf("no one is ready\n");
                    co_await weft::sleep_for(10ms);
                }
            }
        },
        ceven, codd);
    co_await weft::sleep_for(2 * second);
}

// 11-14: a lost update. Racy on purpose: a data race in C++ too.
int balance;

weft::task<> ex14()
{
    weft::go([]() -> weft::task<> {
        int bal = balance;
        co_await weft::sleep_for(1ms);
        balance = bal + 100;
    });
    weft::go([]() -> weft::task<> {
        int bal = balance;
        balance = bal + 1;
        co_return;
    });
    co_await weft::sleep_for(second);
    std::printf("Final Balance= %d\n", balance);
}

// 11-15: one goroutine keeps the balance; a send case answers queries.
weft::task<> ex15()
{
    auto deposit = weft::make_chan<int>();
    auto query = weft::make_chan<int>();
    weft::go(
        [](weft::recv_chan<int> d, weft::send_chan<int> q) -> weft::task<> {
            int balance = 0;
            for (;;) {
                auto r = co_await weft::select(d, q.send(balance));
                if (r.index() == 0)
                    balance += *std::get<0>(r);
            }
        },
        deposit, query);
    auto requester = [](int amt, weft::send_chan<int> d) -> weft::task<> {
        for (int i = 0; i < 5; i++) {
            co_await weft::sleep_for(1ms);
            co_await d.send(amt);
        }
    };
    weft::go(requester, 100, deposit);
    weft::go(requester, 10, deposit);
    co_await weft::sleep_for(second);
    std::printf("Final Balance= %d\n", *co_await query.recv());
}

// 11-16: 11-14 with a mutex.
weft::mutex bal_lock;

weft::task<> ex16()
{
    weft::go([]() -> weft::task<> {
        co_await bal_lock.lock();
        int bal = balance;
        co_await weft::sleep_for(1ms);
        balance = bal + 100;
        bal_lock.unlock();
    });
    weft::go([]() -> weft::task<> {
        co_await bal_lock.lock();
        int bal = balance;
        balance = bal + 1;
        bal_lock.unlock();
    });
    co_await weft::sleep_for(second);
    auto lock = co_await bal_lock.scoped_lock();
    std::printf("Final Balance= %d\n", balance);
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"11-01", ex01},
                        {"11-02", ex02},
                        {"11-03", ex03},
                        {"11-04", ex04},
                        {"11-05", ex05},
                        {"11-06", ex06},
                        {"11-07", ex07},
                        {"11-08", ex08},
                        {"11-09", ex06},
                        {"11-10", ex10},
                        {"11-11", ex11},
                        {"11-12", ex12},
                        {"11-13", ex13},
                        {"11-14", ex14},
                        {"11-15", ex15},
                        {"11-16", ex16}});
}
