// weft's flagship sample: an HTTP/1.1 service.
//
//   http_server [address]        (default 127.0.0.1:8080)
//
// It shows routing with Go-style patterns, middleware (access log, basic
// auth, a concurrency limit), a JSON endpoint, a streaming endpoint, the
// dashboard pattern (a request context with a deadline fanning out to
// concurrent backend calls and collecting what came back in time), a task
// dump at /debug/tasks, and a graceful stop on SIGINT/SIGTERM.

#include <weft/weft.hpp>
#include <weft/http/mux.hpp>
#include <weft/http/server.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>

using namespace std::chrono_literals;
namespace http = weft::http;

namespace {

std::atomic<long> g_requests{0};

// Middleware: counts requests and logs the slow ones.
http::middleware access_log()
{
    return [](http::handler next) -> http::handler {
        return [next](http::response_writer& w, http::request& r) -> weft::task<> {
            g_requests.fetch_add(1, std::memory_order_relaxed);
            auto start = weft::clock::now();
            co_await next(w, r);
            auto took = weft::clock::now() - start;
            if (took > 500ms)
                std::printf("slow: %.*s %.*s took %lld ms\n", int(r.method().size()), r.method().data(),
                            int(r.target().size()), r.target().data(),
                            static_cast<long long>(took / 1ms));
        };
    };
}

std::string json_escape(std::string_view s)
{
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out.append(buf);
        } else {
            out.push_back(c);
        }
    }
    return out;
}

weft::task<> index(http::response_writer& w, http::request&)
{
    w.write("weft http_server. Try:\n"
            "  curl localhost:8080/api/hello/gopher\n"
            "  curl localhost:8080/api/dashboard\n"
            "  curl -N localhost:8080/stream?count=5\n"
            "  curl -u admin:weft localhost:8080/admin/stats\n"
            "  curl localhost:8080/debug/tasks\n");
    co_return;
}

weft::task<> plaintext(http::response_writer& w, http::request&)
{
    w.write("Hello, World!");
    co_return;
}

weft::task<> hello(http::response_writer& w, http::request& r)
{
    w.headers().set("Content-Type", "application/json");
    w.write("{\"greeting\":\"hello, " + json_escape(r.path_value("name")) + "\"}\n");
    co_return;
}

// Streams a line every 100 ms; the client may leave at any time.
weft::task<> stream(http::response_writer& w, http::request& r)
{
    int count = 10;
    if (auto c = r.query_value("count"); !c.empty())
        count = std::clamp(std::atoi(c.c_str()), 1, 100);
    (void)r.context(); // stop when the client leaves
    for (int i = 1; i <= count; ++i) {
        w.write("tick " + std::to_string(i) + "\n");
        co_await w.flush();
        if (i < count)
            co_await weft::sleep_for(100ms);
    }
}

// A backend call that takes a random time.
weft::task<std::string> backend(std::string name, weft::clock::duration latency)
{
    co_await weft::sleep_for(latency);
    co_return "\"" + name + "\":\"ok in " + std::to_string(latency / 1ms) + " ms\"";
}

// The dashboard pattern: ask three backends at once, answer with what came
// back within 80 ms.
weft::task<> dashboard(http::response_writer& w, http::request& r)
{
    thread_local std::mt19937 rng{std::random_device{}()};
    auto [ctx, cancel] = weft::with_timeout(r.context(), 80ms);
    auto results = weft::make_chan<std::string>(3);
    const char* names[] = {"users", "orders", "weather"};
    for (const char* name : names) {
        auto latency = std::chrono::milliseconds(std::uniform_int_distribution<int>(10, 120)(rng));
        weft::go(ctx, [](std::string name, weft::clock::duration latency,
                         weft::chan<std::string> out) -> weft::task<> {
            try {
                co_await out.send(co_await backend(name, latency));
            } catch (const weft::canceled_error&) {
                (void)out.try_send("\"" + name + "\":\"timed out\"");
            }
        }, std::string(name), latency, results);
    }
    std::string body = "{";
    for (int i = 0; i < 3; ++i) {
        auto v = co_await results.recv();
        body += (i ? "," : "") + *v;
    }
    cancel();
    w.headers().set("Content-Type", "application/json");
    w.write(body + "}\n");
}

weft::task<> stats(http::response_writer& w, http::request&)
{
    auto c = weft::counters();
    w.write("requests: " + std::to_string(g_requests.load()) + "\ntasks: " + std::to_string(c.tasks) +
            "\ntimers: " + std::to_string(c.timers) + "\nchannels: " + std::to_string(c.channels) +
            "\n");
    co_return;
}

// The runtime's counters, then every task with its state and async stack.
weft::task<> debug_tasks(http::response_writer& w, http::request&)
{
    auto c = weft::counters();
    std::ostringstream os;
    os << "tasks: " << c.tasks << ", timers: " << c.timers << ", channels: " << c.channels
       << "\n\n";
    weft::dump_tasks(os);
    w.write(os.str());
    co_return;
}

} // namespace

int main(int argc, char** argv)
{
    const std::string address = argc > 1 ? argv[1] : "127.0.0.1:8080";
    weft::run([&]() -> weft::task<> {
        http::serve_mux mux;
        mux.handle("GET /{$}", index);
        mux.handle("GET /plaintext", plaintext);
        mux.handle("GET /api/hello/{name}", hello);
        mux.handle("GET /api/dashboard", http::chain(dashboard, {http::limit_concurrency(64)}));
        mux.handle("GET /stream", stream);
        mux.handle("GET /admin/stats",
                   http::chain(stats, {http::basic_auth("weft", [](std::string_view u, std::string_view p) {
                                   return u == "admin" && p == "weft";
                               })}));
        mux.handle("GET /debug/tasks", debug_tasks);

        http::server srv(http::chain(mux.as_handler(), {access_log()}));
        auto listener = weft::net::tcp_listener::listen(address);
        std::printf("http_server listening on http://%s/ (Ctrl-C stops it)\n",
                    listener.local_address().c_str());
        std::printf("try: curl http://%s/api/hello/gopher\n", listener.local_address().c_str());
        std::fflush(stdout);

        auto [stop_ctx, stop] = weft::signal_context(weft::background(), {SIGINT, SIGTERM});
        auto serving = weft::go([&]() -> weft::task<> { co_await srv.serve(listener); });
        co_await stop_ctx.done();
        std::printf("stopping: finishing %zu connection(s)\n", srv.connections());
        std::fflush(stdout);
        auto [grace, grace_cancel] = weft::with_timeout(weft::background(), 5s);
        try {
            co_await srv.shutdown(grace);
        } catch (const weft::canceled_error&) {
            std::printf("grace period over: connections closed\n");
        }
        co_await serving;
        std::printf("stopped after %ld request(s)\n", g_requests.load());
    });
}
