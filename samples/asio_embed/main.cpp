// weft inside an Asio application: an ordinary Asio TCP service (an acceptor
// and one asio::awaitable per connection) whose work is done by weft tasks.
//
//   client ──line "N"──► session (asio::awaitable)
//                          │ co_await weft::async_spawn(ex, submit(jobs, N), use_awaitable)
//                          ▼
//                        submit (weft task) ──jobs chan──► prime_worker ×W (weft tasks)
//                          ◄──────────────── reply chan ───┘
//   client ◄──"primes below N: K"── session
//
// The weft runtime is a guest of the application's io_context
// (weft::runtime rt(io)): weft tasks run on the threads that run the
// io_context, and start no thread of their own.
//
// usage: asio_embed [--self-test] [--port PORT] [--threads N]
//   Serves 127.0.0.1:PORT (default 8700; 0 picks one) until SIGINT or
//   SIGTERM. --self-test serves a free port, connects a few clients, checks
//   every reply against a sieve, shuts down and exits 0 if all were right.

#include <weft/asio.hpp>
#include <weft/chan.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include <asio.hpp>

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using tcp = asio::ip::tcp;

constexpr int max_limit = 10'000'000;

/// The number of primes below limit: the work the service does.
int count_primes(int limit)
{
    if (limit < 3)
        return 0;
    std::vector<bool> composite(static_cast<std::size_t>(limit), false);
    int count = 0;
    for (int i = 2; i < limit; ++i) {
        if (composite[static_cast<std::size_t>(i)])
            continue;
        ++count;
        for (long long j = static_cast<long long>(i) * i; j < limit; j += i)
            composite[static_cast<std::size_t>(j)] = true;
    }
    return count;
}

// ------------------------------------------------------------ the weft side

/// One request for the workers, with the channel that takes its answer.
struct job {
    int limit;
    weft::chan<int> reply;
};

/// A worker: counts primes for every job it receives until `jobs` closes.
weft::task<> prime_worker(weft::recv_chan<job> jobs)
{
    while (auto j = co_await jobs.recv())
        co_await j->reply.send(count_primes(j->limit));
}

/// Hands one job to the workers and waits for the answer.
weft::task<int> submit(weft::send_chan<job> jobs, int limit)
{
    auto reply = weft::make_chan<int>(1);
    // A named job: g++ 12 destroys a braced temporary inside co_await twice.
    job j{limit, reply};
    co_await jobs.send(std::move(j));
    co_return *co_await reply.recv();
}

// ------------------------------------------------------------ the Asio side

/// One connection: a request per line, a reply per request.
asio::awaitable<void> session(tcp::socket socket, weft::send_chan<job> jobs)
{
    auto ex = co_await asio::this_coro::executor;
    std::string buffer;
    try {
        for (;;) {
            std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer),
                                                            '\n', asio::use_awaitable);
            const std::string line = buffer.substr(0, n - 1);
            buffer.erase(0, n);
            int limit = -1;
            auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), limit);
            std::string reply;
            if (ec != std::errc() || end != line.data() + line.size() || limit < 0 ||
                limit > max_limit) {
                reply = "error: expected a number from 0 to " + std::to_string(max_limit) + "\n";
            } else {
                // The bridge: a weft task, awaited like any Asio operation.
                int count = co_await weft::async_spawn(ex, submit(jobs, limit), asio::use_awaitable);
                reply = "primes below " + line + ": " + std::to_string(count) + "\n";
            }
            co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
        }
    } catch (const std::system_error& e) {
        if (e.code() != asio::error::eof && e.code() != asio::error::operation_aborted)
            std::fprintf(stderr, "session: %s\n", e.what());
    }
}

/// Accepts connections until the acceptor is closed; each connection gets a
/// strand of its own on `io`.
asio::awaitable<void> listen(tcp::acceptor& acceptor, asio::io_context::executor_type io,
                             weft::send_chan<job> jobs)
{
    for (;;) {
        asio::error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(
            asio::make_strand(io), asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return; // closed
        auto ex = socket.get_executor();
        asio::co_spawn(ex, session(std::move(socket), jobs), asio::detached);
    }
}

// ------------------------------------------------------------ the self-test

constexpr int test_clients = 8;
constexpr int requests_per_client = 5;

/// One client: sends its requests and counts the replies that are right.
asio::awaitable<int> client(tcp::endpoint server, int id)
{
    tcp::socket socket(co_await asio::this_coro::executor);
    co_await socket.async_connect(server, asio::use_awaitable);
    int right = 0;
    std::string buffer;
    for (int i = 0; i < requests_per_client; ++i) {
        const int limit = 1000 * (id + 1) + 37 * i;
        std::string request = std::to_string(limit) + "\n";
        co_await asio::async_write(socket, asio::buffer(request), asio::use_awaitable);
        std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer),
                                                        '\n', asio::use_awaitable);
        const std::string expected =
            "primes below " + std::to_string(limit) + ": " + std::to_string(count_primes(limit)) + "\n";
        if (buffer.substr(0, n) == expected)
            ++right;
        else
            std::fprintf(stderr, "client %d: got %s", id, buffer.substr(0, n).c_str());
        buffer.erase(0, n);
    }
    // A malformed request gets an error line.
    std::string bad = "many\n";
    co_await asio::async_write(socket, asio::buffer(bad), asio::use_awaitable);
    std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n',
                                                    asio::use_awaitable);
    if (buffer.compare(0, n, "error: expected a number from 0 to 10000000\n") != 0)
        right = -1;
    co_return right;
}

struct options {
    bool self_test = false;
    unsigned short port = 8700;
    unsigned threads = 2;
};

bool parse(int argc, char** argv, options& o)
{
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--self-test") {
            o.self_test = true;
        } else if ((a == "--port" || a == "--threads") && i + 1 < argc) {
            const char* v = argv[++i];
            unsigned long n = std::strtoul(v, nullptr, 10);
            if (a == "--port" && n <= 65535)
                o.port = static_cast<unsigned short>(n);
            else if (a == "--threads" && n >= 1 && n <= 64)
                o.threads = static_cast<unsigned>(n);
            else
                return false;
        } else {
            return false;
        }
    }
    if (o.self_test)
        o.port = 0;
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    options opt;
    if (!parse(argc, argv, opt)) {
        std::fprintf(stderr, "usage: asio_embed [--self-test] [--port PORT] [--threads N]\n");
        return 2;
    }

    asio::io_context io;
    // weft runs on io's threads from here on; no thread of its own.
    weft::runtime rt(io, weft::runtime_options{.workers = opt.threads});

    auto jobs = weft::make_chan<job>();
    for (unsigned i = 0; i < opt.threads; ++i)
        weft::go(prime_worker, jobs);

    // The acceptor lives on a strand, so that a shutdown can close it safely.
    auto acceptor_strand = asio::make_strand(io);
    tcp::acceptor acceptor(acceptor_strand,
                           tcp::endpoint(asio::ip::make_address("127.0.0.1"), opt.port));
    asio::co_spawn(acceptor_strand, listen(acceptor, io.get_executor(), jobs), asio::detached);

    // Stops accepting, ends the workers and the runtime; io.run() returns
    // once the remaining connections are gone.
    auto shut_down = [&] {
        asio::post(acceptor_strand, [&] { acceptor.close(); });
        jobs.close();
        rt.stop();
    };

    std::atomic<int> right{0};
    std::atomic<int> clients_left{test_clients};
    std::atomic<bool> failed{false};
    std::optional<asio::signal_set> signals;
    if (opt.self_test) {
        for (int id = 0; id < test_clients; ++id)
            asio::co_spawn(asio::make_strand(io), client(acceptor.local_endpoint(), id),
                           [&](std::exception_ptr ep, int n) {
                               if (ep || n < 0)
                                   failed = true;
                               else
                                   right += n;
                               if (--clients_left == 0)
                                   shut_down();
                           });
    } else {
        std::printf("serving 127.0.0.1:%u on %u threads; send a number per line\n",
                    acceptor.local_endpoint().port(), opt.threads);
        std::fflush(stdout);
        signals.emplace(io, SIGINT, SIGTERM);
        signals->async_wait([&](const asio::error_code&, int) {
            shut_down();
            io.stop(); // open connections do not hold the process
        });
    }

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < opt.threads; ++i)
        threads.emplace_back([&] { io.run(); });
    io.run();
    for (auto& t : threads)
        t.join();

    if (opt.self_test) {
        const int total = test_clients * requests_per_client;
        std::printf("self-test: %d clients made %d requests over %u io_context threads: %d "
                    "replies right\n",
                    test_clients, total, opt.threads, right.load());
        if (failed || right.load() != total) {
            std::printf("self-test FAILED\n");
            return 1;
        }
        std::printf("self-test passed\n");
    }
    return 0;
}
