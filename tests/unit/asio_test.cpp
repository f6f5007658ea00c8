#include <weft/asio.hpp>

#include "log_capture.hpp"
#include "test_support.hpp"

#include <weft/chan.hpp>
#include <weft/context.hpp>
#include <weft/diag.hpp>
#include <weft/net/tcp.hpp>
#include <weft/runtime.hpp>
#include <weft/select.hpp>
#include <weft/task.hpp>
#include <weft/time.hpp>
#include <weft/wait_group.hpp>

#include <asio/experimental/awaitable_operators.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <dirent.h>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

namespace {

/// An io_context run by threads of its own for the duration of a test.
class io_threads {
public:
    explicit io_threads(unsigned n = 1) : m_work(m_io.get_executor())
    {
        for (unsigned i = 0; i < n; ++i)
            m_threads.emplace_back([this] { m_io.run(); });
    }
    io_threads(const io_threads&) = delete;
    io_threads& operator=(const io_threads&) = delete;
    ~io_threads()
    {
        m_work.reset();
        for (auto& t : m_threads)
            t.join();
    }
    asio::io_context& io() noexcept { return m_io; }
    bool is_io_thread(std::thread::id id) const
    {
        for (auto& t : m_threads)
            if (t.get_id() == id)
                return true;
        return false;
    }

private:
    asio::io_context m_io;
    asio::executor_work_guard<asio::io_context::executor_type> m_work;
    std::vector<std::thread> m_threads;
};

/// Threads of this process now (the entries of /proc/self/task).
unsigned thread_count()
{
    unsigned n = 0;
    if (DIR* d = ::opendir("/proc/self/task")) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.')
                ++n;
        ::closedir(d);
    }
    return n;
}

weft::task<int> answer_after(std::chrono::milliseconds d)
{
    co_await weft::sleep_for(d);
    co_return 42;
}

weft::task<int> fail_after(std::chrono::milliseconds d)
{
    co_await weft::sleep_for(d);
    throw std::runtime_error("task failed");
}

/// Sleeps until its context is cancelled; counts the cancellation.
weft::task<int> sleep_until_cancelled(std::atomic<int>* cancelled)
{
    try {
        co_await weft::sleep_for(60s);
    } catch (const weft::canceled_error&) {
        cancelled->fetch_add(1);
        throw;
    }
    co_return 0;
}

/// An acceptor on 127.0.0.1 with a port of its own.
tcp::acceptor loopback_acceptor(asio::io_context& io)
{
    return tcp::acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
}

/// An initiation without an executor that completes with several values.
struct three_values {
    asio::io_context* m_io;
    template <class Handler>
    void operator()(Handler&& h, int a) const
    {
        asio::post(*m_io, [h = std::forward<Handler>(h), a]() mutable {
            std::move(h)(asio::error_code{}, a, std::string("two"));
        });
    }
};

/// The wait of a task blocked on a channel nobody sends to.
weft::task<> wait_forever(weft::chan<int> ch, weft_test::live_counter)
{
    (void)co_await ch.recv();
}

} // namespace

// ---------------------------------------------------------------- use_task

TEST_CASE("a task awaits an Asio timer and resumes on a weft worker, not the Asio thread")
{
    io_threads io;
    auto r = weft::run([&]() -> weft::task<std::pair<std::chrono::nanoseconds, bool>> {
        asio::steady_timer timer(io.io(), 20ms);
        auto start = std::chrono::steady_clock::now();
        co_await timer.async_wait(weft::use_task);
        co_return std::pair{std::chrono::steady_clock::now() - start,
                            io.is_io_thread(std::this_thread::get_id())};
    });
    CHECK(r.first >= 20ms);
    CHECK_FALSE(r.second);
}

TEST_CASE("use_task maps completion signatures to results")
{
    io_threads io;
    weft::run([&]() -> weft::task<> {
        // void(): nothing.
        co_await asio::post(io.io(), weft::use_task);

        // void(error_code, results): the results.
        tcp::resolver resolver(io.io());
        auto results = co_await resolver.async_resolve("127.0.0.1", "80", weft::use_task);
        CHECK(results.begin()->endpoint().port() == 80);

        // void(error_code, socket) and void(error_code, size_t), over a
        // loopback connection. An operation starts when awaited (the listen
        // backlog completes the connect before the accept), and may be
        // moved before that.
        auto acceptor = loopback_acceptor(io.io());
        tcp::socket client(io.io());
        auto connect = client.async_connect(acceptor.local_endpoint(), weft::use_task);
        auto accept = acceptor.async_accept(weft::use_task);
        co_await std::move(connect);
        tcp::socket server = co_await std::move(accept);
        std::string out = "hello";
        std::size_t n = co_await asio::async_write(client, asio::buffer(out), weft::use_task);
        CHECK(n == 5);
        char in[5];
        n = co_await asio::async_read(server, asio::buffer(in), weft::use_task);
        CHECK(std::string(in, n) == "hello");

        // Several values: a tuple.
        auto [a, b] = co_await asio::async_initiate<const weft::use_task_t&,
                                                    void(asio::error_code, int, std::string)>(
            three_values{&io.io()}, weft::use_task, 1);
        CHECK(a == 1);
        CHECK(b == "two");
    });
}

TEST_CASE("an Asio error code is thrown as std::system_error")
{
    io_threads io;
    weft::run([&]() -> weft::task<> {
        // Nothing listens on a port that was just closed.
        tcp::endpoint closed;
        {
            auto acceptor = loopback_acceptor(io.io());
            closed = acceptor.local_endpoint();
        }
        tcp::socket socket(io.io());
        try {
            co_await socket.async_connect(closed, weft::use_task);
            FAIL("connected to a closed port");
        } catch (const std::system_error& e) {
            CHECK(e.code() == asio::error::connection_refused);
        }
        // End of stream is an error code too.
        auto acceptor = loopback_acceptor(io.io());
        tcp::socket client(io.io());
        // The listen backlog completes the connect before the accept.
        co_await client.async_connect(acceptor.local_endpoint(), weft::use_task);
        tcp::socket server = co_await acceptor.async_accept(weft::use_task);
        client.close();
        char c;
        CHECK_THROWS_AS(co_await server.async_read_some(asio::buffer(&c, 1), weft::use_task),
                        std::system_error);
    });
}

TEST_CASE("a task awaits an asio::awaitable through co_spawn, exceptions included")
{
    io_threads io;
    weft::run([&]() -> weft::task<> {
        int v = co_await asio::co_spawn(
            io.io(),
            []() -> asio::awaitable<int> {
                asio::steady_timer t(co_await asio::this_coro::executor, 5ms);
                co_await t.async_wait(asio::use_awaitable);
                co_return 7;
            },
            weft::use_task);
        CHECK(v == 7);
        // Only the type is checked, and not with CHECK_THROWS_AS, which reads
        // the message: Asio may drop its copy of the exception_ptr after the
        // task resumed, and ThreadSanitizer, which cannot see libstdc++'s
        // reference counts, would take any read of the exception object here
        // for a race with that thread freeing it.
        bool threw_domain_error = false;
        try {
            co_await asio::co_spawn(
                io.io(), []() -> asio::awaitable<void> { throw std::domain_error("from asio"); },
                weft::use_task);
        } catch (const std::domain_error&) {
            threw_domain_error = true;
        }
        CHECK(threw_domain_error);
    });
}

TEST_CASE("cancelling a task's context cancels its Asio operation, which throws canceled_error")
{
    io_threads io;
    weft::run([&]() -> weft::task<> {
        // Cancelled while waiting.
        {
            auto [ctx, cancel] = weft::with_cancel(weft::background());
            asio::steady_timer timer(io.io(), 60s);
            auto start = std::chrono::steady_clock::now();
            auto h = weft::go(ctx, [&]() -> weft::task<> {
                co_await timer.async_wait(weft::use_task);
            });
            co_await weft::sleep_for(20ms);
            cancel();
            CHECK_THROWS_AS(co_await h, weft::canceled_error);
            CHECK(std::chrono::steady_clock::now() - start < 30s);
        }
        // A deadline: canceled_error says deadline_exceeded.
        {
            auto [ctx, cancel] = weft::with_timeout(weft::background(), 20ms);
            auto h = weft::go(ctx, [&]() -> weft::task<> {
                tcp::acceptor acceptor = loopback_acceptor(io.io());
                (void)co_await acceptor.async_accept(weft::use_task); // nobody connects
            });
            try {
                co_await h;
                FAIL("the accept ended");
            } catch (const weft::canceled_error& e) {
                CHECK(e.code() == weft::errc::deadline_exceeded);
            }
        }
        // Done before the await: the operation does not start.
        {
            auto [ctx, cancel] = weft::with_cancel(weft::background());
            cancel();
            std::atomic<bool> started{false};
            auto h = weft::go(ctx, [&]() -> weft::task<> {
                co_await asio::async_initiate<const weft::use_task_t&, void()>(
                    [&](auto handler) {
                        started = true;
                        asio::post(io.io(), std::move(handler));
                    },
                    weft::use_task);
            });
            CHECK_THROWS_AS(co_await h, weft::canceled_error);
            CHECK_FALSE(started.load());
        }
        // Through co_spawn: the awaitable's own operation is cancelled.
        {
            auto [ctx, cancel] = weft::with_cancel(weft::background());
            std::atomic<bool> aborted{false};
            auto h = weft::go(ctx, [&]() -> weft::task<> {
                co_await asio::co_spawn(
                    io.io(),
                    [&]() -> asio::awaitable<void> {
                        asio::steady_timer t(co_await asio::this_coro::executor, 60s);
                        try {
                            co_await t.async_wait(asio::use_awaitable);
                        } catch (const std::system_error& e) {
                            aborted = e.code() == asio::error::operation_aborted;
                            throw;
                        }
                    },
                    weft::use_task);
            });
            co_await weft::sleep_for(20ms);
            cancel();
            CHECK_THROWS_AS(co_await h, weft::canceled_error);
            CHECK(aborted.load());
        }
    });
}

TEST_CASE("an operation that succeeded before the cancellation returns its result")
{
    io_threads io;
    weft::run([&]() -> weft::task<> {
        for (int i = 0; i < 200; ++i) {
            auto [ctx, cancel] = weft::with_cancel(weft::background());
            std::atomic<int> outcome{0}; // 1: result, 2: canceled_error
            auto h = weft::go(ctx, [&]() -> weft::task<> {
                try {
                    co_await asio::post(io.io(), weft::use_task);
                    outcome = 1;
                } catch (const weft::canceled_error&) {
                    outcome = 2;
                }
            });
            cancel();
            co_await h;
            // post ignores cancellation: it always completes.
            CHECK(outcome.load() != 0);
        }
    });
}

TEST_CASE("an operation whose handler Asio destroys unrun throws operation_aborted")
{
    auto io = std::make_unique<asio::io_context>(); // never run
    auto timer = std::make_unique<asio::steady_timer>(*io, 60s);
    weft::run([&]() -> weft::task<> {
        auto h = weft::go([&]() -> weft::task<> { co_await timer->async_wait(weft::use_task); });
        co_await weft::sleep_for(10ms);
        std::thread([&] {
            timer.reset(); // queues the aborted handler
            io.reset();    // destroys it
        }).join();
        try {
            co_await h;
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code() == asio::error::operation_aborted);
        }
    });
}

TEST_CASE("an Asio wait outlasting the deadlock detector's grace is not a deadlock")
{
    io_threads io;
    weft::run([&]() -> weft::task<> {
        asio::steady_timer timer(io.io(), 1500ms);
        co_await timer.async_wait(weft::use_task);
    });
}

// ------------------------------------------------------------- async_spawn

TEST_CASE("async_spawn completes a callback on the executor with the task's result")
{
    io_threads io;
    weft::run([&]() -> weft::task<> {
        std::promise<std::pair<int, bool>> done;
        weft::async_spawn(io.io(), answer_after(5ms), [&](std::exception_ptr ep, int v) {
            CHECK_FALSE(ep);
            done.set_value({v, io.is_io_thread(std::this_thread::get_id())});
        });
        auto f = done.get_future();
        CHECK(co_await weft_test::eventually([&] {
            return f.wait_for(0s) == std::future_status::ready;
        }));
        auto [v, on_io] = f.get();
        CHECK(v == 42);
        CHECK(on_io);
    });
}

TEST_CASE("async_spawn delivers exceptions as the exception_ptr, to futures too")
{
    io_threads io;
    weft::run([&]() -> weft::task<> {
        auto good = weft::async_spawn(io.io().get_executor(), answer_after(1ms), asio::use_future);
        auto bad = weft::async_spawn(io.io(), fail_after(1ms), asio::use_future);
        auto none = weft::async_spawn(io.io(), []() -> weft::task<> { co_return; }(),
                                      asio::use_future);
        CHECK(co_await weft_test::eventually([&] {
            return good.wait_for(0s) == std::future_status::ready &&
                   bad.wait_for(0s) == std::future_status::ready &&
                   none.wait_for(0s) == std::future_status::ready;
        }));
        CHECK(good.get() == 42);
        CHECK_THROWS_WITH_AS(bad.get(), "task failed", std::runtime_error);
        none.get();
    });
}

TEST_CASE("an asio::awaitable awaits weft tasks with use_awaitable and the awaitable operators")
{
    using namespace asio::experimental::awaitable_operators;
    io_threads io;
    weft::run([&]() -> weft::task<> {
        std::atomic<int> cancelled{0};
        auto f = asio::co_spawn(
            io.io(),
            [&]() -> asio::awaitable<int> {
                auto ex = co_await asio::this_coro::executor;
                int v = co_await weft::async_spawn(ex, answer_after(1ms), asio::use_awaitable);
                // An exception crosses back as itself.
                try {
                    co_await weft::async_spawn(ex, fail_after(1ms), asio::use_awaitable);
                    v = -1;
                } catch (const std::runtime_error&) {
                }
                // ||: the timer wins, and the losing task's context is cancelled.
                asio::steady_timer timer(ex, 10ms);
                auto first = co_await (
                    weft::async_spawn(ex, sleep_until_cancelled(&cancelled), asio::use_awaitable) ||
                    timer.async_wait(asio::use_awaitable));
                if (first.index() != 1)
                    v = -2;
                // &&: both.
                auto [x, y] = co_await (
                    weft::async_spawn(ex, answer_after(2ms), asio::use_awaitable) &&
                    weft::async_spawn(ex, answer_after(1ms), asio::use_awaitable));
                co_return v + x + y;
            },
            asio::use_future);
        CHECK(co_await weft_test::eventually([&] {
            return f.wait_for(0s) == std::future_status::ready;
        }));
        CHECK(f.get() == 3 * 42);
        CHECK(cancelled.load() == 1);
    });
}

TEST_CASE("a terminal cancellation of async_spawn cancels the task's context")
{
    io_threads io;
    weft::run([&]() -> weft::task<> {
        std::atomic<int> cancelled{0};
        asio::cancellation_signal signal;
        std::promise<std::exception_ptr> done;
        asio::post(io.io(), [&] {
            weft::async_spawn(io.io(), sleep_until_cancelled(&cancelled),
                              asio::bind_cancellation_slot(signal.slot(),
                                                           [&](std::exception_ptr ep, int) {
                                                               done.set_value(ep);
                                                           }));
        });
        co_await weft::sleep_for(20ms);
        // The signal is emitted on the io_context's thread, as Asio requires.
        asio::post(io.io(), [&] { signal.emit(asio::cancellation_type::terminal); });
        auto f = done.get_future();
        CHECK(co_await weft_test::eventually([&] {
            return f.wait_for(0s) == std::future_status::ready;
        }));
        CHECK_THROWS_AS(std::rethrow_exception(f.get()), weft::canceled_error);
        CHECK(cancelled.load() == 1);
    });
}

TEST_CASE("io_context::run does not return while a spawned task runs")
{
    asio::io_context io;
    std::optional<int> got;
    std::thread weft_thread;
    std::promise<void> started;
    std::atomic<bool> stop{false};
    weft_thread = std::thread([&] {
        weft::run([&]() -> weft::task<> {
            started.set_value();
            co_await weft_test::eventually([&] { return stop.load(); });
        });
    });
    started.get_future().wait();
    weft::async_spawn(io, answer_after(50ms), [&](std::exception_ptr, int v) { got = v; });
    io.run(); // returns once the handler ran
    stop = true;
    weft_thread.join();
    CHECK(got == 42);
}

TEST_CASE("async_spawn without a running runtime throws")
{
    asio::io_context io;
    CHECK_THROWS_AS(weft::async_spawn(io, answer_after(1ms), [](std::exception_ptr, int) {}),
                    std::logic_error);
}

// ------------------------------------------------------------- guest mode

namespace {

/// What a guest-mode workload saw: the threads its tasks ran on and the
/// results of channels, select, contexts and timers.
struct guest_report {
    std::mutex m_lock;
    std::set<std::thread::id> m_threads;
    int m_sum = 0;
    bool m_select_timeout = false;
    bool m_deadline = false;
    bool m_asio_timer = false;
    bool m_asio_cancelled = false;
    int m_ticks = 0;
    bool m_echoed = false;

    void saw_thread()
    {
        std::lock_guard lk(m_lock);
        m_threads.insert(std::this_thread::get_id());
    }
};

weft::task<> produce(weft::send_chan<int> out, int n, guest_report* r)
{
    for (int i = 1; i <= n; ++i) {
        r->saw_thread();
        co_await out.send(i);
    }
    out.close();
}

weft::task<> guest_workload(asio::io_context* io, guest_report* r)
{
    r->saw_thread();
    // Channels between several producers and this task.
    auto ch = weft::make_chan<int>();
    auto done = weft::make_chan<int>(4);
    for (int p = 0; p < 4; ++p) {
        weft::go([](weft::chan<int> ch, weft::chan<int> done, guest_report* r) -> weft::task<> {
            int sum = 0;
            while (auto v = co_await ch.recv()) {
                r->saw_thread();
                sum += *v;
            }
            co_await done.send(sum);
        }, ch, done, r);
    }
    co_await produce(ch, 1000, r);
    int sum = 0;
    for (int p = 0; p < 4; ++p)
        sum += *co_await done.recv();
    r->m_sum = sum;

    // select with a timer: nobody sends.
    auto never = weft::make_chan<int>();
    auto s = co_await weft::select(never.recv(), weft::after(10ms));
    r->m_select_timeout = s.index() == 1;

    // A context deadline ends a sleep.
    auto [ctx, cancel] = weft::with_timeout(weft::background(), 10ms);
    auto h = weft::go(ctx, []() -> weft::task<> { co_await weft::sleep_for(60s); });
    try {
        co_await h;
    } catch (const weft::canceled_error& e) {
        r->m_deadline = e.code() == weft::errc::deadline_exceeded;
    }

    // A ticker.
    weft::ticker t(2ms);
    for (int i = 0; i < 3; ++i) {
        (void)co_await t.channel().recv();
        ++r->m_ticks;
    }

    // An Asio timer through use_task.
    asio::steady_timer timer(*io, 5ms);
    co_await timer.async_wait(weft::use_task);
    r->m_asio_timer = true;
    r->saw_thread();

    // A deadline cancels an Asio wait.
    auto [ctx2, cancel2] = weft::with_timeout(weft::background(), 5ms);
    auto waiter = weft::go(ctx2, [](asio::io_context* io) -> weft::task<> {
        asio::steady_timer long_timer(*io, 60s);
        co_await long_timer.async_wait(weft::use_task);
    }, io);
    try {
        co_await waiter;
    } catch (const weft::canceled_error& e) {
        r->m_asio_cancelled = e.code() == weft::errc::deadline_exceeded;
    }

    // weft::net: an echo over loopback, with more data than the socket
    // buffers hold, so that reads and writes on both sides wait.
    auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
    auto server = weft::go([](weft::net::tcp_listener* l) -> weft::task<> {
        auto s = co_await l->accept();
        std::vector<char> buf(64 * 1024);
        for (std::size_t n; (n = co_await s.read_some(std::span<char>(buf))) > 0;)
            co_await s.write_all(std::string_view(buf.data(), n));
    }, &l);
    auto c = co_await weft::net::dial(l.local_address());
    std::string sent(4 << 20, '\0');
    for (std::size_t i = 0; i < sent.size(); ++i)
        sent[i] = static_cast<char>('a' + i % 23);
    auto writer = weft::go([](weft::net::tcp_stream* c, const std::string* data) -> weft::task<> {
        co_await c->write_all(*data);
        c->shutdown_write();
    }, &c, &sent);
    std::string got;
    std::vector<char> buf(64 * 1024);
    for (std::size_t n; (n = co_await c.read_some(std::span<char>(buf))) > 0;)
        got.append(buf.data(), n);
    co_await writer;
    co_await server;
    r->m_echoed = got == sent;
    r->saw_thread();
}

void check_guest_report(guest_report& r)
{
    CHECK(r.m_sum == 1000 * 1001 / 2);
    CHECK(r.m_select_timeout);
    CHECK(r.m_deadline);
    CHECK(r.m_ticks == 3);
    CHECK(r.m_asio_timer);
    CHECK(r.m_asio_cancelled);
    CHECK(r.m_echoed);
}

} // namespace

TEST_CASE("guest mode runs tasks and timers on the single thread that runs the io_context")
{
    asio::io_context io;
    const unsigned threads_before = thread_count();
    unsigned threads_during = 0;
    guest_report report;
    weft::runtime rt(io);
    CHECK(weft::max_procs() == 1);
    weft::async_spawn(io, guest_workload(&io, &report), [&](std::exception_ptr ep) {
        CHECK_FALSE(ep);
        threads_during = thread_count();
        rt.stop();
    });
    io.run(); // returns once the runtime is stopped and nothing else is pending
    CHECK(rt.stopped());
    check_guest_report(report);
    CHECK(report.m_threads == std::set{std::this_thread::get_id()});
    CHECK(threads_during == threads_before);
}

TEST_CASE("guest mode keeps serving sockets when the wait for their readiness fails")
{
    // The host's waits on the net poller fail (simulated): it logs the
    // first failure once and polls the sockets on a timer instead of
    // re-queuing the wait at once, which would spin.
    weft::test::log_capture log;
    asio::io_context io;
    guest_report report;
    weft::runtime rt(io);
    weft::detail::g_fail_hosted_io_watch.store(3);
    weft::async_spawn(io, guest_workload(&io, &report), [&](std::exception_ptr ep) {
        CHECK_FALSE(ep);
        rt.stop();
    });
    io.run();
    const int unused = weft::detail::g_fail_hosted_io_watch.exchange(0);
    CHECK(unused == 0);
    check_guest_report(report);
    const std::string text = log.text();
    const std::string what = "error the host's wait for socket readiness failed";
    CHECK(text.find(what) != std::string::npos);
    CHECK(text.find(what) == text.rfind(what));
}

TEST_CASE("guest mode runs tasks on several io_context threads")
{
    asio::io_context io;
    guest_report report;
    weft::runtime rt(io, weft::runtime_options{.workers = 4});
    CHECK(weft::max_procs() == 4);
    std::vector<std::thread::id> io_ids;
    std::promise<std::exception_ptr> done;
    weft::async_spawn(io, guest_workload(&io, &report),
                      [&](std::exception_ptr ep) { done.set_value(ep); });
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] { io.run(); });
    CHECK_FALSE(done.get_future().get());
    rt.stop();
    for (auto& t : threads) {
        io_ids.push_back(t.get_id());
        t.join();
    }
    check_guest_report(report);
    for (auto id : report.m_threads)
        CHECK(std::find(io_ids.begin(), io_ids.end(), id) != io_ids.end());
}

TEST_CASE("asio::awaitable handlers and weft tasks share a channel in guest mode")
{
    asio::io_context io;
    weft::runtime rt(io);
    auto requests = weft::make_chan<std::pair<int, weft::chan<int>>>(8);
    // A weft worker squares numbers.
    weft::go([](weft::chan<std::pair<int, weft::chan<int>>> in) -> weft::task<> {
        while (auto r = co_await in.recv())
            co_await r->second.send(r->first * r->first);
    }, requests);
    int total = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            for (int i = 1; i <= 10; ++i) {
                auto reply = weft::make_chan<int>(1);
                // Hands the request over in a task, and awaits the reply there.
                total += co_await weft::async_spawn(
                    ex,
                    [](weft::chan<std::pair<int, weft::chan<int>>> in, int i,
                       weft::chan<int> reply) -> weft::task<int> {
                        std::pair<int, weft::chan<int>> request{i, reply};
                        co_await in.send(std::move(request));
                        co_return *co_await reply.recv();
                    }(requests, i, reply),
                    asio::use_awaitable);
            }
            requests.close();
            rt.stop();
        },
        asio::detached);
    io.run();
    CHECK(total == 385);
}

TEST_CASE("stopping a guest runtime destroys the tasks still waiting")
{
    asio::io_context io;
    std::atomic<int> live{0};
    auto ch = weft::make_chan<int>();
    {
        weft::runtime rt(io);
        for (int i = 0; i < 3; ++i)
            weft::go(wait_forever, ch, weft_test::live_counter(live));
        io.run_for(20ms);
        CHECK(weft::num_tasks() == 3);
        CHECK(live.load() >= 3); // the task frames hold copies
    } // the destructor stops it
    CHECK(live.load() == 0);
    CHECK_FALSE(weft::detail::runtime_running());
    // The io_context has nothing left of weft: run() returns at once, after
    // at most the completion (operation_aborted) of the cancelled wait on
    // the sockets' poller.
    io.restart();
    CHECK(io.run() <= 1);
}

TEST_CASE("a guest runtime refuses a second runtime and a stop from inside a task")
{
    asio::io_context io;
    weft::runtime rt(io);
    CHECK_THROWS_AS(weft::runtime{io}, std::logic_error);
    CHECK_THROWS_AS(weft::run([]() -> weft::task<> { co_return; }), std::logic_error);
    std::promise<bool> threw;
    weft::go([&]() -> weft::task<> {
        try {
            rt.stop();
            threw.set_value(false);
        } catch (const std::logic_error&) {
            threw.set_value(true);
        }
        co_return;
    });
    io.run_one();
    CHECK(threw.get_future().get());
    rt.stop();
    CHECK(rt.stopped());
}

TEST_CASE("dump_tasks lists the tasks of a guest runtime while io_context threads run")
{
    asio::io_context io;
    weft::runtime rt(io, weft::runtime_options{.workers = 2});
    std::atomic<int> live{0};
    auto ch = weft::make_chan<int>();
    weft::go(wait_forever, ch, weft_test::live_counter(live));
    // Busy tasks, so that the dump has running tasks to stop.
    std::atomic<bool> stop{false};
    for (int i = 0; i < 2; ++i)
        weft::go([&]() -> weft::task<> {
            while (!stop.load())
                co_await weft::this_task::yield();
        });
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i)
        threads.emplace_back([&] { io.run(); });
    std::string dump;
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (dump.find("[chan receive") == std::string::npos &&
           std::chrono::steady_clock::now() < give_up) {
        std::ostringstream os;
        weft::dump_tasks(os);
        dump = os.str();
        std::this_thread::sleep_for(1ms);
    }
    stop = true;
    rt.stop();
    for (auto& t : threads)
        t.join();
    CHECK(dump.find("[chan receive") != std::string::npos);
    CHECK(dump.find("wait_forever") != std::string::npos);
}

TEST_CASE("weft::run works again after a guest runtime")
{
    {
        asio::io_context io;
        weft::runtime rt(io);
    }
    CHECK(weft::run([]() -> weft::task<int> { co_return 1; }) == 1);
}
