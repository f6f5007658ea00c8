// "Effective Concurrency in Go", chapter 2: goroutines, channels, select,
// mutexes, wait groups and condition variables.
//
// usage: ch2 EXAMPLE      (the names in main(), after the book's examples)
#include "../seeds.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <signal.h>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using seeds::rand_ms;

namespace {

// Goroutines (E2.1): main may end before the goroutine prints.
weft::task<> hello()
{
    weft::go([]() -> weft::task<> {
        std::printf("Hello from goroutine\n");
        co_return;
    });
    std::printf("Hello from main\n");
    co_await weft::sleep_for(100ns);
}

weft::task<> f(std::string s)
{
    std::printf("Goroutine %s\n", s.c_str());
    co_return;
}

// E2.2: arguments are copied when the goroutine starts; a 100 ns sleep may
// not be long enough for all three to print.
weft::task<> arguments()
{
    for (std::string s : {"a", "b", "c"})
        weft::go(f, s);
    co_await weft::sleep_for(100ns);
}

// E2.3: a closure that captures the loop variable by copy (Go's `s := s`);
// go() copies the lambda, captures included, into the new task. A wait
// group instead of the sleep: all three print.
weft::task<> closures()
{
    weft::wait_group wg;
    for (std::string s : {"a", "b", "c"})
        wg.go([s]() -> weft::task<> {
            std::printf("Goroutine %s\n", s.c_str());
            co_return;
        });
    co_await wg.wait();
}

// E2.4: a channel with a buffer of 2.
weft::task<> buffered()
{
    auto ch = weft::make_chan<int>(2);
    co_await ch.send(1);
    co_await ch.send(2);
    std::printf("len %zu cap %zu\n", ch.size(), ch.capacity());
    std::printf("received %d\n", *co_await ch.recv());
    co_await ch.send(3);
    weft::go([ch]() -> weft::task<> {
        co_await weft::sleep_for(10ms);
        std::printf("received %d\n", *co_await ch.recv());
    });
    co_await ch.send(4); // blocks until 2 is received
    std::printf("sent 4\n");
    while (ch.size() > 0)
        std::printf("received %d\n", *co_await ch.recv());
}

// E2.5: values sent before close are still received; then every receive
// returns at once with nothing (Go: the zero value and ok == false).
weft::task<> close()
{
    auto ch = weft::make_chan<int>(2);
    co_await ch.send(1);
    co_await ch.send(2);
    ch.close();
    for (int i = 0; i < 4; i++) {
        auto y = co_await ch.recv();
        std::printf("%d %s\n", y.value_or(0), y ? "true" : "false");
    }
}

// E2.6: an unbuffered channel: either side may arrive first.
weft::task<> unbuffered()
{
    auto chn = weft::make_chan<bool>();
    weft::go([chn]() -> weft::task<> { co_await chn.send(true); });
    auto y = co_await chn.recv();
    std::printf("%s\n", *y ? "true" : "false");
}

// E2.9: a worker pool, with the fix: closing the work channel ends the
// workers' loops.
weft::task<> worker_pool()
{
    auto work_ch = weft::make_chan<int>();
    auto result_ch = weft::make_chan<int>();
    auto done = weft::make_chan<std::monostate>();
    for (int i = 0; i < 10; i++)
        weft::go([work_ch, result_ch]() -> weft::task<> {
            while (auto work = co_await work_ch.recv())
                co_await result_ch.send(*work * *work);
        });
    std::vector<int> work_queue;
    for (int i = 1; i <= 100; i++)
        work_queue.push_back(i);
    weft::go([n = work_queue.size(), result_ch, done]() -> weft::task<> {
        long sum = 0;
        for (std::size_t i = 0; i < n; i++)
            sum += *co_await result_ch.recv();
        std::printf("sum of the squares of 1 .. %zu: %ld\n", n, sum);
        done.close();
    });
    for (int work : work_queue)
        co_await work_ch.send(work);
    work_ch.close();
    co_await done.recv();
}

// E2.10: a worker that can be stopped between its steps; a stop request is
// checked again right after a request arrives (select has no priority).
weft::task<> stoppable()
{
    auto stop_ch = weft::make_chan<std::monostate>();
    auto request_ch = weft::make_chan<int>();
    auto result_ch = weft::make_chan<int>();
    auto worker = weft::go([=]() -> weft::task<> {
        auto cleanup = [] { std::printf("cleanup\n"); };
        for (;;) {
            auto r = co_await weft::select(request_ch, stop_ch);
            if (r.index() == 1 || stop_ch.closed()) { // stop first, if both were ready
                cleanup();
                co_return;
            }
            int req = *std::get<0>(r); // some long processing
            if (stop_ch.closed()) {
                cleanup();
                co_return;
            }
            int result = req * 10; // other long processing
            auto sent = co_await weft::select(result_ch.send(result), stop_ch);
            if (sent.index() == 1) {
                cleanup();
                co_return;
            }
        }
    });
    for (int i = 1; i <= 3; i++) {
        co_await request_ch.send(i);
        std::printf("request %d: result %d\n", i, *co_await result_ch.recv());
    }
    stop_ch.close();
    co_await worker;
}

// E2.11: stop on SIGINT or SIGTERM. The signal arrives on a channel of
// capacity 1 (a full channel drops it, as Go's runtime does); a task turns it
// into a closed channel that every worker polls.
weft::task<> signals()
{
    auto term = weft::make_chan<std::monostate>();
    auto sig = weft::make_chan<int>(1);
    weft::signal_notify(sig, {SIGINT, SIGTERM});
    weft::go([sig, term]() -> weft::task<> {
        co_await sig.recv();
        term.close();
    });
    weft::wait_group wg;
    wg.go([term]() -> weft::task<> {
        while (!term.closed()) { // [select { case <-term: return; default: }]
            std::printf("Tick...\n");
            co_await weft::sleep_for(50ms); // work
        }
    });
    // What an operator or an orchestrator would do:
    co_await weft::sleep_for(180ms);
    ::kill(::getpid(), SIGTERM);
    co_await wg.wait();
    std::printf("Terminating...\n");
}

// E2.12: the values of every send case are computed on entry, chosen or not.
weft::task<> select_evaluation()
{
    int i = 0;
    auto f = [&] { return ++i; };
    auto ch1 = weft::make_chan<int>();
    auto ch2 = weft::make_chan<int>();
    co_await weft::select(ch1.send(f()), ch2.send(f()), weft::default_case);
    std::printf("%d\n", i);
}

// E2.13: Go's `case ch1 <- <-ch2:` receives from ch2 first, blocking despite
// the default; C++ spells that order out.
weft::task<> select_receive_first()
{
    auto ch1 = weft::make_chan<int>();
    auto ch2 = weft::make_chan<int>();
    weft::go([ch2]() -> weft::task<> { co_await ch2.send(1); });
    weft::go([ch1]() -> weft::task<> { std::printf("%d\n", *co_await ch1.recv()); });
    auto v = co_await ch2.recv();
    auto r = co_await weft::select(ch1.send(*v), weft::default_case);
    if (r.index() == 0)
        co_await weft::sleep_for(100ms);
}

// E2.14 and E2.15: a cache that loads outside its lock and checks again
// before it stores; a missing entry is cached as nullptr. With a rw_mutex,
// readers share the lock.
struct data {
    std::string id, value;
};

template <class Mutex>
class cache {
public:
    weft::task<std::optional<data>> get(std::string id)
    {
        std::optional<std::shared_ptr<data>> found;
        {
            auto lock = co_await read_lock();
            if (auto it = m_m.find(id); it != m_m.end())
                found = it->second;
        }
        if (found)
            co_return value(*found);

        auto loaded = co_await retrieve_data(id);
        auto lock = co_await m_mu.scoped_lock();
        if (auto it = m_m.find(id); it != m_m.end())
            co_return value(it->second);
        m_m[id] = loaded;
        co_return value(loaded);
    }

    std::atomic<int> loads{0};

private:
    auto read_lock()
    {
        if constexpr (std::is_same_v<Mutex, weft::rw_mutex>)
            return m_mu.scoped_lock_shared();
        else
            return m_mu.scoped_lock();
    }

    static std::optional<data> value(const std::shared_ptr<data>& d)
    {
        return d ? std::optional(*d) : std::nullopt;
    }

    weft::task<std::shared_ptr<data>> retrieve_data(std::string id)
    {
        loads++;
        co_await weft::sleep_for(rand_ms(10));
        if (id == "missing")
            co_return nullptr;
        co_return std::make_shared<data>(data{id, "value of " + id});
    }

    Mutex m_mu;
    std::map<std::string, std::shared_ptr<data>> m_m;
};

template <class Mutex>
weft::task<> cached()
{
    cache<Mutex> c;
    std::vector<std::string> ids = {"a", "b", "missing"};
    std::vector<std::string> got(9 * ids.size());
    weft::wait_group wg;
    for (std::size_t i = 0; i < got.size(); i++)
        wg.go([&, i]() -> weft::task<> {
            auto d = co_await c.get(ids[i % ids.size()]);
            got[i] = d ? d->value : "not found";
        });
    co_await wg.wait();
    for (std::size_t i = 0; i < got.size(); i++)
        std::printf("%s: %s\n", ids[i % ids.size()].c_str(), got[i].c_str());
    std::printf("loads: %d\n", c.loads.load());
}

// E2.16 and E2.17: wait for ten goroutines; wait for two calls and return
// both results (each goroutine writes its own variable).
weft::task<> wait_group()
{
    weft::wait_group wg;
    std::atomic<int> n = 0;
    for (int i = 0; i < 10; i++)
        wg.go([&n]() -> weft::task<> {
            n++;
            co_return;
        });
    co_await wg.wait();
    std::printf("%d goroutines done\n", n.load());

    std::string result1, result2;
    wg.go([&]() -> weft::task<> {
        result1 = "result of service 1";
        co_return;
    });
    wg.go([&]() -> weft::task<> {
        result2 = "result of service 2";
        co_return;
    });
    co_await wg.wait();
    std::printf("%s, %s\n", result1.c_str(), result2.c_str());
}

// E2.18: senders wait for a reader that only comes after wg.wait(): a
// deadlock. The two fixes read concurrently with the wait.
weft::task<> send_all(weft::wait_group& wg, weft::chan<int> ch)
{
    for (int i = 0; i < 10; i++)
        wg.go([ch](int i) -> weft::task<> { co_await ch.send(i); }, i);
    co_return;
}

weft::task<> wait_deadlock()
{
    auto ch = weft::make_chan<int>();
    weft::wait_group wg;
    co_await send_all(wg, ch);
    co_await wg.wait(); // nobody reads ch yet
    ch.close();
    while (auto i = co_await ch.recv())
        std::printf("%d\n", *i);
}

weft::task<> wait_fixed_reader()
{
    auto ch = weft::make_chan<int>();
    weft::wait_group wg;
    co_await send_all(wg, ch);
    auto reader = weft::go([ch]() -> weft::task<> {
        while (auto i = co_await ch.recv())
            std::printf("%d\n", *i);
    });
    co_await wg.wait();
    ch.close();
    co_await reader;
}

weft::task<> wait_fixed_closer()
{
    auto ch = weft::make_chan<int>();
    weft::wait_group wg;
    co_await send_all(wg, ch);
    weft::go([&wg, ch]() -> weft::task<> {
        co_await wg.wait();
        ch.close();
    });
    while (auto i = co_await ch.recv())
        std::printf("%d\n", *i);
}

// E2.19: producers and consumers share a bounded circular queue guarded by a
// mutex and two condition variables.
class queue {
public:
    explicit queue(std::size_t capacity) : m_elements(capacity) {}

    bool enqueue(int value)
    {
        if (m_len == m_elements.size())
            return false;
        m_rear = (m_rear + 1) % m_elements.size();
        m_elements[m_rear] = value;
        m_len++;
        return true;
    }

    std::optional<int> dequeue()
    {
        if (m_len == 0)
            return std::nullopt;
        int data = m_elements[m_front];
        m_front = (m_front + 1) % m_elements.size();
        m_len--;
        return data;
    }

private:
    std::vector<int> m_elements;
    std::size_t m_front = 0, m_rear = m_elements.size() - 1, m_len = 0;
};

weft::task<> condition()
{
    // The workers run until the program ends, after this function returns:
    // what they share must outlive it (Go's garbage collector sees to that).
    static weft::mutex lock;
    static weft::cond full_cond(lock), empty_cond(lock);
    static queue q(10);
    auto producer = [&]() -> weft::task<> {
        for (;;) {
            int value = seeds::rand_intn(1'000'000);
            co_await lock.lock();
            while (!q.enqueue(value)) {
                std::printf("Queue is full\n");
                co_await full_cond.wait();
            }
            lock.unlock();
            empty_cond.signal();
            co_await weft::sleep_for(rand_ms(100));
        }
    };
    auto consumer = [&]() -> weft::task<> {
        for (;;) {
            co_await lock.lock();
            std::optional<int> v;
            while (!(v = q.dequeue())) {
                std::printf("Queue is empty\n");
                co_await empty_cond.wait();
            }
            lock.unlock();
            full_cond.signal();
            co_await weft::sleep_for(rand_ms(100));
            std::printf("%d\n", *v);
        }
    };
    // More producers than consumers: the queue fills up.
    for (int i = 0; i < 10; i++)
        weft::go(producer);
    for (int i = 0; i < 5; i++)
        weft::go(consumer);
    co_await weft::sleep_for(500ms); // the book's main waits forever
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"hello", hello},
                        {"arguments", arguments},
                        {"closures", closures},
                        {"buffered", buffered},
                        {"close", close},
                        {"unbuffered", unbuffered},
                        {"worker-pool", worker_pool},
                        {"stoppable", stoppable},
                        {"signal", signals},
                        {"select-evaluation", select_evaluation},
                        {"select-receive-first", select_receive_first},
                        {"cache-mutex", cached<weft::mutex>},
                        {"cache-rw-mutex", cached<weft::rw_mutex>},
                        {"wait-group", wait_group},
                        {"wait-deadlock", wait_deadlock},
                        {"wait-fixed-reader", wait_fixed_reader},
                        {"wait-fixed-closer", wait_fixed_closer},
                        {"condition", condition}});
}
