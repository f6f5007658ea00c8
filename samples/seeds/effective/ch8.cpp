// "Effective Concurrency in Go", chapter 8, without the network: contexts
// (cancellation, timeouts, values), distributing work and collecting its
// results, limiting concurrency, and streaming through a pipeline with
// cancellation. The TCP and HTTP servers and the chat wait for weft::net.
//
// usage: ch8 EXAMPLE
#include "../seeds.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// [fmt.Print(ctx.Err())] "<nil>" while the context is live.
std::string err_string(const weft::context& ctx)
{
    return ctx.err() ? ctx.err().message() : "<nil>";
}

// A task that works until its context is cancelled, then reports why.
weft::task<> work_until_done(weft::context ctx)
{
    int steps = 0;
    for (;;) {
        auto r = co_await weft::select(ctx.done(), weft::after(1ms));
        if (r.index() == 0)
            break;
        steps++;
    }
    std::printf("stopped after %s steps: %s\n", steps > 10 ? "some" : "few",
                err_string(ctx).c_str());
}

weft::task<> cancel()
{
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    auto worker = weft::go(work_until_done, ctx);
    co_await weft::sleep_for(50ms);
    cancel();
    cancel(); // idempotent
    co_await worker;
    std::printf("the parent is not cancelled: %s\n", err_string(weft::background()).c_str());
}

weft::task<> timeout()
{
    auto [ctx, cancel] = weft::with_timeout(weft::background(), 50ms);
    co_await work_until_done(ctx);
    // A child of a cancelled context is born cancelled.
    auto [child, cancel_child] = weft::with_cancel(ctx);
    std::printf("child: %s\n", err_string(child).c_str());
    cancel_child();
    cancel();
}

// Values: each with_value makes a new context; a lookup walks up the
// parents, so ctx1 keeps its own id when ctx2 adds another.
weft::context_key<int> request_id_key;
int next_request_id = 1000;

weft::context with_request_id(const weft::context& ctx)
{
    return weft::with_value(ctx, request_id_key, next_request_id++);
}

int get_request_id(const weft::context& ctx)
{
    auto id = ctx.value(request_id_key);
    return id ? *id : 0; // the zero value when absent
}

weft::task<> request_id()
{
    auto ctx = weft::background();
    auto ctx1 = with_request_id(ctx);
    auto ctx2 = with_request_id(ctx1);
    std::printf("%d %d %d\n", get_request_id(ctx), get_request_id(ctx1), get_request_id(ctx2));
    co_return;
}

// GetDashboardData: four ways to distribute work and collect the results.
struct transaction {
    int id;
    int amount;
};

struct dashboard_data {
    std::string user_data;
    int account_data = 0;
    std::vector<transaction> last_transactions;
};

// Fake backends: the accounts service answers in `account_delay`.
weft::task<std::string> user_stats(weft::context, std::string id)
{
    co_await weft::sleep_for(10ms);
    co_return "stats of " + id;
}

weft::recv_chan<int> account_stats(weft::context ctx, weft::clock::duration account_delay)
{
    auto ch = weft::make_chan<int>(1);
    weft::go(ctx, [ch, account_delay]() -> weft::task<> {
        co_await weft::sleep_for(account_delay);
        co_await ch.send(4200);
    });
    return ch;
}

weft::recv_chan<transaction> transactions(weft::context ctx, int first)
{
    auto ch = weft::make_chan<transaction>();
    weft::go(ctx, [ch, first]() -> weft::task<> {
        for (int i = first; i < first + 3; i++)
            co_await ch.send(transaction{i, i * 10});
        ch.close();
    });
    return ch;
}

weft::task<dashboard_data> get_dashboard_data(weft::context ctx, std::string user_id,
                                              weft::clock::duration account_delay)
{
    dashboard_data result;
    weft::wait_group wg;
    // 1. Shared memory, one field per task, read after wait().
    wg.go([&]() -> weft::task<> { result.user_data = co_await user_stats(ctx, user_id); });
    // 2. An asynchronous call with its own timeout: on timeout the channel
    //    just closes and the result keeps its zero value.
    auto acct_ch = weft::make_chan<int>();
    weft::go([=]() -> weft::task<> {
        auto [new_ctx, cancel] = weft::with_timeout(ctx, 100ms);
        auto r = co_await weft::select(account_stats(new_ctx, account_delay), new_ctx.done());
        if (r.index() == 0)
            co_await acct_ch.send(*std::get<0>(r));
        cancel();
        acct_ch.close();
    });
    // 3. Fan-in of two transaction streams, closed when both are done.
    auto transaction_ch = weft::make_chan<transaction>();
    auto transaction_wg = std::make_shared<weft::wait_group>();
    for (int first : {100, 200})
        transaction_wg->go([=]() -> weft::task<> {
            auto in = transactions(ctx, first);
            while (auto t = co_await in.recv())
                co_await transaction_ch.send(*t);
        });
    weft::go([=]() -> weft::task<> {
        co_await transaction_wg->wait();
        transaction_ch.close();
    });
    // 4. A collector task.
    wg.go([&]() -> weft::task<> {
        while (auto t = co_await transaction_ch.recv())
            result.last_transactions.push_back(*t);
    });
    co_await wg.wait();
    result.account_data = (co_await acct_ch.recv()).value_or(0);
    co_return result;
}

weft::task<> dashboard()
{
    for (auto delay : {10ms, 500ms}) {
        auto d = co_await get_dashboard_data(weft::background(), "alice", delay);
        std::sort(d.last_transactions.begin(), d.last_transactions.end(),
                  [](auto& a, auto& b) { return a.id < b.id; });
        std::printf("%s, account %d, transactions", d.user_data.c_str(), d.account_data);
        for (auto& t : d.last_transactions)
            std::printf(" %d:%d", t.id, t.amount);
        std::printf("\n");
    }
}

// Limiting concurrency: a buffered channel as a semaphore around a handler
// (acquire by sending, release by receiving), then weft::semaphore.
template <class Semaphore>
weft::task<> limited(const char* name, Semaphore sem)
{
    std::atomic<int> running = 0, most = 0;
    weft::wait_group wg;
    for (int i = 0; i < 20; i++)
        wg.go([&]() -> weft::task<> {
            co_await sem.acquire();
            int now = ++running;
            for (int m = most; now > m && !most.compare_exchange_weak(m, now);)
                ;
            co_await weft::sleep_for(5ms); // the handler
            --running;
            sem.release();
        });
    co_await wg.wait();
    std::printf("%s: 20 requests, at most %d at once\n", name, most.load());
}

struct channel_semaphore {
    weft::chan<std::monostate> ch;
    auto acquire() { return ch.send({}); }
    void release() { ch.try_recv(); }
};

struct shared_semaphore {
    std::shared_ptr<weft::semaphore> sem;
    auto acquire() { return sem->acquire(); }
    void release() { sem->release(); }
};

weft::task<> semaphore()
{
    channel_semaphore channel{weft::make_chan<std::monostate>(3)}; // named: see README (g++ 12)
    co_await limited("channel", channel);
    shared_semaphore shared{std::make_shared<weft::semaphore>(3)};
    co_await limited("weft::semaphore", shared);
}

// Streaming: a store streams measurements, some of them errors; stages
// filter small values, split off the errors, and emit the entries where the
// moving average of the last 5 values is above 0.5. The first error cancels
// the stream.
struct entry {
    long long at = 0;
    double value = 0;
    std::string error;
};

struct above_threshold_entry {
    entry e;
    double avg;
};

weft::recv_chan<entry> stream(weft::context ctx, std::vector<entry> rows)
{
    auto ret = weft::make_chan<entry>();
    weft::go([=]() -> weft::task<> {
        for (auto& row : rows) {
            // Every send is also a check for cancellation.
            if ((co_await weft::select(ret.send(row), ctx.done())).index() == 1)
                break;
        }
        ret.close();
    });
    return ret;
}

weft::recv_chan<entry> min_filter(double min, weft::recv_chan<entry> in)
{
    auto out = weft::make_chan<entry>();
    weft::go([=]() -> weft::task<> {
        while (auto e = co_await in.recv())
            if (!e->error.empty() || e->value >= min)
                co_await out.send(*e);
        out.close();
    });
    return out;
}

std::pair<weft::recv_chan<entry>, weft::recv_chan<std::string>>
err_filter(weft::recv_chan<entry> in)
{
    auto out = weft::make_chan<entry>();
    auto errs = weft::make_chan<std::string>();
    weft::go([=]() -> weft::task<> {
        while (auto e = co_await in.recv())
            if (!e->error.empty())
                co_await errs.send(e->error);
            else
                co_await out.send(*e);
        errs.close(); // before out: when out is closed, so is errs
        out.close();
    });
    return {out, errs};
}

weft::recv_chan<above_threshold_entry> moving_avg(double threshold, std::size_t window_size,
                                                  weft::recv_chan<entry> in)
{
    auto out = weft::make_chan<above_threshold_entry>();
    weft::go([=]() -> weft::task<> {
        auto window = weft::make_chan<double>(window_size); // a channel as a FIFO
        double running_total = 0;
        while (auto input = co_await in.recv()) {
            if (window.size() == window_size) {
                double avg = running_total / static_cast<double>(window_size);
                if (avg > threshold) {
                    above_threshold_entry e{*input, avg};
                    co_await out.send(std::move(e));
                }
                running_total -= *window.try_recv();
            }
            window.try_send(input->value);
            running_total += input->value;
        }
        out.close();
    });
    return out;
}

std::vector<entry> measurements(bool with_error)
{
    std::vector<entry> rows;
    for (int i = 0; i < 40; i++)
        rows.push_back(entry{1000LL * i, std::round(500 + 500 * std::sin(i / 4.0)) / 1000, ""});
    rows[3].value = 0.0001; // filtered out
    if (with_error)
        rows[30].error = "row 30: bad value";
    return rows;
}

weft::task<> streaming(bool with_error)
{
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    auto entries = stream(ctx, measurements(with_error));
    auto filtered = min_filter(0.001, entries);
    auto [entry_ch, err_ch] = err_filter(filtered);
    auto result_ch = moving_avg(0.5, 5, entry_ch);
    // The first error cancels; joining the task is what makes reading its
    // result safe.
    auto first_error = weft::go(
        [](weft::recv_chan<std::string> errs, weft::cancel_func cancel) -> weft::task<std::string> {
            std::string first;
            while (auto err = co_await errs.recv())
                if (first.empty()) {
                    first = *err;
                    cancel();
                }
            co_return first;
        },
        err_ch, cancel);
    while (auto r = co_await result_ch.recv())
        std::printf("{At:%lld Value:%g Avg:%g}\n", r->e.at, r->e.value, r->avg);
    if (auto err = co_await first_error; !err.empty())
        std::printf("%s\n", err.c_str());
    cancel();
}

weft::task<> stream_all()
{
    return streaming(false);
}
weft::task<> stream_error()
{
    return streaming(true);
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"cancel", cancel},
                        {"timeout", timeout},
                        {"request-id", request_id},
                        {"dashboard", dashboard},
                        {"semaphore", semaphore},
                        {"stream", stream_all},
                        {"stream-error", stream_error}});
}
