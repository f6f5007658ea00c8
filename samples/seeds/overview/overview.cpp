// "An overview of parallel programming (Go edition)": goroutines and
// channels, HTTP fetches concurrently and one after the other, parallel sums
// and their cost, a chain of 10000 goroutines, wait groups, a racy array and
// its atomic fix, a bank with one mutex and with a mutex per account (which
// deadlocks).
//
// usage: overview EXAMPLE
#include "../local_server.hpp"
#include "../seeds.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// A goroutine's result comes back over a channel.
weft::task<> channel()
{
    auto ch = weft::make_chan<std::string>();
    weft::go([ch]() -> weft::task<> { co_await ch.send("Canada"); });
    auto msg = co_await ch.recv();
    std::printf("%s\n", msg->c_str());
}

// Waiting for a goroutine with a channel, then with a wait group.
weft::task<> done()
{
    auto channel = weft::make_chan<bool>();
    weft::go([channel]() -> weft::task<> {
        std::printf("goroutine done\n");
        co_await channel.send(true);
    });
    co_await channel.recv();
    weft::wait_group wg;
    wg.go([]() -> weft::task<> {
        std::printf("goroutine in the wait group done\n");
        co_return;
    });
    co_await wg.wait();
}

// A third send on a full buffer of two blocks: with nobody to receive, that
// is a deadlock.
weft::task<> buffered()
{
    auto ch = weft::make_chan<int>(2);
    co_await ch.send(1);
    std::printf("sent 1\n");
    co_await ch.send(2);
    std::printf("sent 2\n");
    co_await ch.send(3);
    std::printf("sent 3\n");
}

// C5, C6: fetching URLs concurrently, then one after the other. The
// "internet" is a local server whose pages take 300, 200 and 300 ms, and a
// port nobody listens on.
struct fetch_result {
    std::string url, status, error;
};

weft::task<fetch_result> fetch_url(std::string url)
{
    // [&http.Client{Timeout: 10 * time.Second}]
    auto [ctx, cancel] = weft::with_timeout(weft::current_context(), 10s);
    try {
        auto rsp = co_await weft::go(ctx, weft::http::get, url);
        co_return fetch_result{url, std::to_string(rsp.status) + " " + rsp.reason, ""};
    } catch (const std::exception& e) {
        co_return fetch_result{url, "", e.what()};
    }
}

void print(const fetch_result& r)
{
    if (r.error.empty())
        std::printf("Successfully fetched %s: %s\n", r.url.c_str(), r.status.c_str());
    else
        std::printf("Error fetching %s: %s\n", r.url.c_str(), r.error.c_str());
}

template <class Fetch>
weft::task<> with_urls(Fetch fetch)
{
    weft::http::serve_mux mux;
    mux.handle("GET /delay/{ms}", [](auto& w, auto& r) -> weft::task<> {
        co_await weft::sleep_for(std::chrono::milliseconds(std::stoi(std::string(r.path_value("ms")))));
        w.write("ok");
    });
    seeds::local_server srv(mux.as_handler());
    std::string refused = [] { // a port that was free a moment ago
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        return "http://" + l.local_address() + "/";
    }();
    std::vector<std::string> urls{srv.url() + "/delay/300", srv.url() + "/delay/200",
                                  srv.url() + "/delay/300", refused};
    auto start = weft::clock::now();
    co_await fetch(urls);
    std::printf("\nTotal time taken: %s\n", seeds::go_duration(weft::clock::now() - start).c_str());
    co_await srv.close();
}

weft::task<> fetch_concurrently()
{
    co_await with_urls([](const std::vector<std::string>& urls) -> weft::task<> {
        auto results = weft::make_chan<fetch_result>();
        for (const auto& url : urls)
            weft::go([results, url]() -> weft::task<> {
                auto r = co_await fetch_url(url);
                co_await results.send(std::move(r));
            });
        for (std::size_t i = 0; i < urls.size(); i++)
            print(*co_await results.recv());
    });
}

weft::task<> fetch_sequentially()
{
    co_await with_urls([](const std::vector<std::string>& urls) -> weft::task<> {
        for (const auto& url : urls)
            print(co_await fetch_url(url));
    });
}

// defer: RAII runs at the end of the scope.
weft::task<> defer()
{
    struct deferred {
        ~deferred() { std::printf("Mexico\n"); }
    } mexico;
    std::printf("Canada\n");
    co_return;
}

// Sums in parallel: one chunk per worker, partial sums over a channel.
template <class T, class F>
weft::task<T> parallel_sum(const std::vector<int>& numbers, unsigned goroutines, F f)
{
    auto chunk = (numbers.size() + goroutines - 1) / goroutines;
    auto results = weft::make_chan<T>(goroutines);
    unsigned active = 0;
    for (std::size_t start = 0; start < numbers.size(); start += chunk, active++)
        weft::go([=, &numbers]() -> weft::task<> {
            T partial = 0;
            for (auto i = start; i < std::min(start + chunk, numbers.size()); i++)
                partial += f(numbers[i]);
            co_await results.send(partial);
        });
    T total = 0;
    for (unsigned i = 0; i < active; i++)
        total += *co_await results.recv();
    co_return total;
}

std::vector<int> iota(std::size_t n, int modulo)
{
    std::vector<int> v(n);
    for (std::size_t i = 0; i < n; i++)
        v[i] = static_cast<int>(i) % modulo;
    return v;
}

auto identity = [](int n) { return static_cast<long long>(n); };

weft::task<> sum()
{
    std::printf("Number of CPU cores: %u\n", std::thread::hardware_concurrency());
    for (std::size_t n : {100'000, 10'000'000}) {
        auto numbers = iota(n, static_cast<int>(n));
        const char* large = n > 100'000 ? "Large" : "";
        long long sequential = 0, parallel = 0;
        co_await seeds::benchmark(
            ("BenchmarkGoroutineSumWithChannels" + std::string(large)).c_str(),
            [&]() -> weft::task<> {
                parallel = co_await parallel_sum<long long>(numbers, weft::max_procs(), identity);
            });
        co_await seeds::benchmark(
            ("BenchmarkSequentialSum" + std::string(large)).c_str(), [&]() -> weft::task<> {
                sequential = std::accumulate(numbers.begin(), numbers.end(), 0LL);
                co_return;
            });
        std::printf("sum of 0 .. %zu: %lld sequentially, %lld in parallel\n", n - 1, sequential,
                    parallel);
    }
}

weft::task<> sine()
{
    auto numbers = iota(1'000'000, 1000);
    auto sin = [](int n) { return std::sin(static_cast<double>(n)); };
    std::printf("CPU cores: %u\n", std::thread::hardware_concurrency());
    double sequential = 0;
    for (int n : {1, 2, 4, 8, 16, 0}) {
        unsigned goroutines = n ? static_cast<unsigned>(n) : weft::max_procs();
        auto name = n ? "Benchmark" + std::to_string(n) + "Goroutines" : "BenchmarkMaxGoroutines";
        double total = 0;
        co_await seeds::benchmark(name.c_str(), [&]() -> weft::task<> {
            total = co_await parallel_sum<double>(numbers, goroutines, sin);
        });
        if (n == 1)
            sequential = total;
        std::printf("sum with %u goroutines: %.9f (sequential %.9f)\n", goroutines, total,
                    sequential);
    }
}

// A value passed along a chain of 10000 goroutines.
weft::task<> relay(weft::recv_chan<int> input, weft::send_chan<int> output)
{
    co_await output.send(*co_await input.recv());
}

weft::task<> chain()
{
    constexpr int chain_length = 10000;
    std::vector<weft::chan<int>> channels(chain_length + 1);
    for (auto& c : channels)
        c = weft::make_chan<int>();
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < chain_length; i++)
        weft::go(relay, channels[i], channels[i + 1]);
    weft::go([first = channels[0]]() -> weft::task<> { co_await first.send(42); });
    int result = *co_await channels[chain_length].recv();
    auto elapsed = std::chrono::steady_clock::now() - start;
    std::printf("Value %d successfully passed through %d goroutines\n", result, chain_length);
    std::printf("Time taken: %s\n", seeds::go_duration(elapsed).c_str());
    std::printf("Average time per hop: %s\n", seeds::go_duration(elapsed / chain_length).c_str());
}

// Two workers move units between the cells of an array: the total must stay
// 1000. `race` does it without synchronisation (racy on purpose: the total
// drifts), `atomic` with a load and compare-and-swap.
constexpr int iterations = 2'000'000; // the post does 200 million

template <class Cell, class Move>
weft::task<> shuffle(Move move)
{
    std::array<Cell, 10> arr;
    std::fill(arr.begin(), arr.end(), 100);
    weft::wait_group wg;
    for (int w = 0; w < 2; w++)
        wg.go([&]() -> weft::task<> {
            std::mt19937 r{std::random_device{}()};
            std::uniform_int_distribution<int> intn(0, 9);
            for (int i = 0; i < iterations; i++)
                move(arr[intn(r)], [&]() -> Cell& { return arr[intn(r)]; });
            co_return;
        });
    co_await wg.wait();
    std::printf("\nFinal array state: [");
    int sum = 0;
    for (auto& v : arr) {
        std::printf(&v == &arr[0] ? "%d" : " %d", static_cast<int>(v));
        sum += v;
    }
    std::printf("]\nTotal sum: %d\n", sum);
}

weft::task<> race()
{
    return shuffle<int>([](int& from, auto to) {
        if (from > 0) {
            from--;
            to()++;
        }
    });
}

weft::task<> atomic()
{
    return shuffle<std::atomic<int>>([](std::atomic<int>& from, auto to) {
        int val = from.load();
        if (val > 0 && from.compare_exchange_strong(val, val - 1))
            to().fetch_add(1);
    });
}

// A bank whose transfers take one mutex.
struct bank {
    std::map<std::string, int> accounts{{"Alice", 1000}, {"Bob", 500}};
    weft::mutex mutex;

    weft::task<> transfer(std::string from, std::string to, int amount)
    {
        auto lock = co_await mutex.scoped_lock();
        if (accounts[from] >= amount) {
            accounts[from] -= amount;
            accounts[to] += amount;
            std::printf("Transferred %d from %s to %s. New balances: %s=%d, %s=%d\n", amount,
                        from.c_str(), to.c_str(), from.c_str(), accounts[from], to.c_str(),
                        accounts[to]);
        } else {
            std::printf("Failed transfer of %d from %s to %s: insufficient funds\n", amount,
                        from.c_str(), to.c_str());
        }
    }
};

weft::task<> transfers()
{
    bank b;
    weft::wait_group wg;
    wg.go(&bank::transfer, &b, "Alice", "Bob", 200);
    wg.go(&bank::transfer, &b, "Bob", "Alice", 100);
    wg.go(&bank::transfer, &b, "Alice", "Bob", 300);
    wg.go(&bank::transfer, &b, "Bob", "Alice", 50);
    co_await wg.wait();
    auto lock = co_await b.mutex.scoped_lock();
    std::printf("Final balances: Alice=%d, Bob=%d\n", b.accounts["Alice"], b.accounts["Bob"]);
}

// A mutex per account, locked in the order of the transfer: two opposite
// transfers deadlock.
struct account {
    int balance;
    weft::mutex mutex;
};

weft::task<> transfer_locking_each(std::string from, account* from_account, std::string to,
                                   account* to_account, int amount)
{
    auto lock_from = co_await from_account->mutex.scoped_lock();
    std::printf("Locked %s for transfer of %d to %s\n", from.c_str(), amount, to.c_str());
    co_await weft::sleep_for(100ms);
    auto lock_to = co_await to_account->mutex.scoped_lock();
    std::printf("Locked %s for transfer of %d from %s\n", to.c_str(), amount, from.c_str());
    from_account->balance -= amount;
    to_account->balance += amount;
}

weft::task<> deadlock()
{
    account alice{1000, {}}, bob{500, {}};
    weft::wait_group wg;
    wg.go(transfer_locking_each, "Alice", &alice, "Bob", &bob, 200);
    wg.go(transfer_locking_each, "Bob", &bob, "Alice", &alice, 100);
    co_await wg.wait(); // never returns
    std::printf("Final balances: Alice=%d, Bob=%d\n", alice.balance, bob.balance);
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"channel", channel},
                        {"done", done},
                        {"buffered", buffered},
                        {"defer", defer},
                        {"fetch", fetch_concurrently},
                        {"fetch-sequential", fetch_sequentially},
                        {"sum", sum},
                        {"sine", sine},
                        {"chain", chain},
                        {"race", race},
                        {"atomic", atomic},
                        {"bank", transfers},
                        {"deadlock", deadlock}});
}
