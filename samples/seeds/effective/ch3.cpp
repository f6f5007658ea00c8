// "Effective Concurrency in Go", chapter 3: the memory model. Each example
// prints what the happened-before guarantees of one primitive make certain,
// except the two racy ones, which print whatever the race gives.
//
// usage: ch3 EXAMPLE
#include "../seeds.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <string>

using namespace std::chrono_literals;

namespace {

// Within one goroutine, every read sees the latest write: always "1 3".
weft::task<> sequenced()
{
    int x = 1, y = 2;
    int z = x;
    y++;
    int w = y;
    std::printf("%d %d\n", z, w);
    co_return;
}

// A send happens before the receive completes: always 1.
weft::task<> send_before_receive()
{
    int x = 0;
    auto ch = weft::make_chan<int>();
    auto printer = weft::go([&x, ch]() -> weft::task<> {
        co_await ch.recv();
        std::printf("%d\n", x);
    });
    x = 1;
    co_await ch.send(0);
    co_await printer;
}

// On an unbuffered channel, the receive happens before the send completes:
// always 1.
weft::task<> receive_before_send()
{
    int x = 0;
    auto ch = weft::make_chan<int>();
    auto printer = weft::go([&x, ch]() -> weft::task<> {
        co_await ch.send(0);
        std::printf("%d\n", x);
    });
    x = 1;
    co_await ch.recv();
    co_await printer;
}

// The go statement happens before the goroutine starts.
weft::task<> go_statement()
{
    std::string a = "Before goroutine";
    // A named handle: g++ 12 destroys the captures of a lambda temporary
    // inside a co_await operand twice.
    auto h = weft::go([a]() -> weft::task<> {
        std::printf("%s\n", a.c_str());
        co_return;
    });
    co_await h;
}

// Racy on purpose: nothing orders the goroutine's write before the read;
// prints 0 or 1.
weft::task<> racy_go()
{
    int x = 0;
    auto h = weft::go([&x]() -> weft::task<> {
        x = 1;
        co_return;
    });
    std::printf("%d\n", x);
    co_await h;
}

// Racy on purpose: after a value is received, x++ and the print of x run
// concurrently.
weft::task<> racy_channel()
{
    int x = 0;
    auto ch = weft::make_chan<int>();
    weft::go([&x, ch]() -> weft::task<> {
        for (int i = 0; i < 5; i++) {
            x++;
            co_await ch.send(1);
        }
        ch.close();
    });
    while (co_await ch.recv())
        std::printf("%d\n", x);
}

// The nth receive from a channel of capacity C happens before the (n+C)th
// send completes: a buffered channel of 5 lets at most 5 of 10 workers hold
// the resource at once.
weft::task<> semaphore()
{
    auto resources = weft::make_chan<std::monostate>(5);
    auto jobs = weft::make_chan<int>();
    std::atomic<int> holding = 0, most = 0, done = 0;
    weft::wait_group wg;
    for (int worker = 0; worker < 10; worker++)
        wg.go([&, resources, jobs]() -> weft::task<> {
            while (co_await jobs.recv()) {
                co_await resources.send({});
                int now = ++holding;
                for (int m = most; now > m && !most.compare_exchange_weak(m, now);)
                    ;
                co_await weft::sleep_for(1ms);
                --holding;
                co_await resources.recv();
                done++;
            }
        });
    for (int i = 0; i < 100; i++)
        co_await jobs.send(i);
    jobs.close();
    co_await wg.wait();
    std::printf("%d jobs done, at most %d at once\n", done.load(), most.load());
}

// The nth unlock happens before the (n+1)th lock returns, even when another
// goroutine than the locker unlocks: always 1.
weft::task<> mutex()
{
    weft::mutex m;
    int a = 0;
    co_await m.lock();
    auto done = weft::make_chan<std::monostate>();
    weft::go([&, done]() -> weft::task<> {
        co_await m.lock();
        std::printf("%d\n", a);
        m.unlock();
        done.close();
    });
    weft::go([&]() -> weft::task<> {
        a = 1;
        m.unlock();
        co_return;
    });
    co_await done.recv();
}

// An atomic load that sees a store happens after it: always 1.
weft::task<> atomic()
{
    int i = 0;
    std::atomic<int> v = 0;
    weft::go([&]() -> weft::task<> {
        i = 1;
        v.store(1);
        co_return;
    });
    auto h = weft::go([&]() -> weft::task<> {
        while (v.load() != 1)
            co_await weft::this_task::yield();
        std::printf("%d\n", i);
    });
    co_await h;
}

// Once: f's completion happens before every call() returns. A cache whose
// entries load once, however many goroutines ask at the same time (the
// book's sync.Map is a map under a mutex here).
struct cached_value {
    weft::once once;
    std::string value;
};

class cache {
public:
    weft::task<std::string> get(std::string id)
    {
        std::shared_ptr<cached_value> cv;
        {
            auto lock = co_await m_mu.scoped_lock();
            auto& slot = m_values[id]; // LoadOrStore
            if (!slot)
                slot = std::make_shared<cached_value>();
            cv = slot;
        }
        co_await cv->once.call([&]() -> weft::task<> { cv->value = co_await load_data(id); });
        co_return cv->value;
    }

    std::atomic<int> loads = 0;

private:
    weft::task<std::string> load_data(std::string id)
    {
        loads++;
        co_await weft::sleep_for(5ms);
        co_return "data of " + id;
    }

    weft::mutex m_mu;
    std::map<std::string, std::shared_ptr<cached_value>> m_values;
};

weft::task<> once()
{
    cache c;
    std::atomic<int> right = 0;
    weft::wait_group wg;
    for (int i = 0; i < 30; i++)
        wg.go(
            [&](std::string id) -> weft::task<> {
                if (co_await c.get(id) == "data of " + id)
                    right++;
            },
            "id" + std::to_string(i % 3));
    co_await wg.wait();
    std::printf("%d right answers, %d loads\n", right.load(), c.loads.load());
}

// done() happens before the wait() it releases returns: always 1.
weft::task<> wait_group()
{
    int i = 0;
    weft::wait_group wg;
    wg.add(1);
    weft::go([&]() -> weft::task<> {
        i = 1;
        wg.done();
        co_return;
    });
    co_await wg.wait();
    std::printf("%d\n", i);
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"sequenced", sequenced},
                        {"send-before-receive", send_before_receive},
                        {"receive-before-send", receive_before_send},
                        {"go-statement", go_statement},
                        {"racy-go", racy_go},
                        {"racy-channel", racy_channel},
                        {"semaphore", semaphore},
                        {"mutex", mutex},
                        {"atomic", atomic},
                        {"once", once},
                        {"wait-group", wait_group}});
}
