// "Effective Concurrency in Go", chapter 8: contexts (cancellation,
// timeouts, values), a TCP server that shuts down gracefully on a signal, an
// HTTP service with middleware, distributing work and collecting its
// results, limiting concurrency, streaming through a pipeline with
// cancellation, the same stream over HTTP, and a chat. Each network example
// serves on an ephemeral loopback port and is its own client.
//
// usage: ch8 EXAMPLE
#include "../local_server.hpp"
#include "../seeds.hpp"

#include <weft/http/client.hpp>
#include <weft/http/mux.hpp>
#include <weft/http/server.hpp>
#include <weft/net/tcp.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include <sys/socket.h>

using namespace std::chrono_literals;
namespace http = weft::http;

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

// A TCP server with graceful shutdown (E8.6).

/// [bufio.Reader.ReadString('\n')] The lines of a source of text; read()
/// returns "" at its end.
struct line_reader {
    explicit line_reader(std::function<weft::task<std::string>()> read) : read(std::move(read)) {}

    std::function<weft::task<std::string>()> read;
    std::string buf;

    /// The next line without its newline; nullopt at the end.
    weft::task<std::optional<std::string>> next()
    {
        std::size_t nl;
        while ((nl = buf.find('\n')) == std::string::npos) {
            std::string more = co_await read();
            if (more.empty())
                co_return buf.empty() ? std::nullopt : std::optional(std::exchange(buf, ""));
            buf += more;
        }
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        co_return line;
    }
};

/// The lines a connection reads (the reader shares the connection).
line_reader lines_of(std::shared_ptr<weft::net::tcp_stream> conn)
{
    return line_reader{[conn]() -> weft::task<std::string> {
        char buf[4096];
        co_return std::string(buf, co_await conn->read_some(std::span<char>(buf)));
    }};
}

/// Runs handler(base context, connection) in a task per connection. The
/// base context is cancelled when listen() returns: a signal to the
/// handlers that watch it (the tasks themselves run in listen's context, so
/// each handler decides).
struct tcp_server {
    using handler_func = std::function<weft::task<>(weft::context, weft::net::tcp_stream)>;
    tcp_server(weft::net::tcp_listener l, handler_func h) : listener(std::move(l)), handler(h) {}

    weft::net::tcp_listener listener;
    handler_func handler;
    weft::wait_group wg; // one per connection

    weft::task<> listen()
    {
        auto [base_ctx, cancel] = weft::with_cancel(weft::background());
        for (;;) {
            weft::net::tcp_stream conn;
            try {
                conn = co_await listener.accept();
            } catch (const weft::net::closed&) {
                break; // stop_listener
            } catch (const std::system_error& e) {
                std::fprintf(stderr, "accept: %s\n", e.what()); // EMFILE, ...
            }
            if (!conn.is_open()) {
                co_await weft::sleep_for(10ms); // and go on (the book's loop does not)
                continue;
            }
            wg.go(handler, base_ctx, std::move(conn));
        }
        cancel();
    }

    void stop_listener() { listener.close(); }

    /// True if every connection ended within timeout; the others stay.
    /// [the book races a goroutine's wg.Wait() against time.After; a wait
    /// under a deadline is the same race and leaves no task behind]
    weft::task<bool> wait_for_connections(weft::clock::duration timeout)
    {
        auto [ctx, cancel] = weft::with_timeout(weft::background(), timeout);
        auto waiting = weft::go(ctx, [this]() -> weft::task<bool> {
            try {
                co_await wg.wait();
                co_return true;
            } catch (const weft::canceled_error&) {
                co_return false;
            }
        });
        bool done = co_await waiting;
        cancel();
        co_return done;
    }
};

// [io.Copy(conn, conn)] Ignores the context, as the book's.
weft::task<> echo(weft::context, weft::net::tcp_stream conn)
{
    char buf[4096];
    try {
        while (std::size_t n = co_await conn.read_some(std::span<char>(buf)))
            co_await conn.write_all(std::string_view(buf, n));
    } catch (const std::system_error&) {
        // reset by the client
    }
}

// Sends a line to the echo server and prints what comes back.
weft::task<> say(std::shared_ptr<weft::net::tcp_stream> conn, std::string who, std::string line)
{
    auto lines = lines_of(conn);
    std::string sent = line + "\n";
    co_await conn->write_all(sent);
    std::printf("%s: sent \"%s\", got back \"%s\"\n", who.c_str(), line.c_str(),
                (co_await lines.next()).value_or("").c_str());
}

weft::task<> tcp_server_example()
{
    tcp_server srv(weft::net::tcp_listener::listen("127.0.0.1:0"), echo);
    // Signals are relayed before the server listens; a task waits for one,
    // then stops the listener and gives the connections some time.
    auto sig = weft::make_chan<int>(1);
    weft::signal_notify(sig, {SIGINT, SIGTERM});
    auto stopper = weft::go([&srv, sig]() -> weft::task<> {
        int signo = (co_await sig.recv()).value_or(0);
        std::printf("signal \"%s\": stopping the listener\n", ::strsignal(signo));
        srv.stop_listener();
        if (!co_await srv.wait_for_connections(200ms))
            std::printf("connections still open after 200 ms: leaving them be\n");
    });
    auto listening = weft::go([&srv]() -> weft::task<> { co_await srv.listen(); });

    const std::string addr = srv.listener.local_address();
    auto first = std::make_shared<weft::net::tcp_stream>(co_await weft::net::dial(addr));
    co_await say(first, "client", "hello");
    first->close();
    auto straggler = std::make_shared<weft::net::tcp_stream>(co_await weft::net::dial(addr));
    co_await say(straggler, "straggler", "still here");

    // raise, not kill(getpid(), ...): under ThreadSanitizer a signal sent
    // to the process may land on a thread parked in a system call, where
    // TSan holds the handler back until that thread wakes.
    std::printf("sending SIGTERM to this process\n");
    ::raise(SIGTERM);
    co_await listening;
    std::printf("listen returned\n");
    co_await stopper;
    straggler->close();
    if (co_await srv.wait_for_connections(5s))
        std::printf("the straggler hung up: all connections closed\n");
    weft::stop_signal_notify(sig);
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
        try {
            for (int i = first; i < first + 3; i++)
                co_await ch.send(transaction{i, i * 10});
        } catch (const weft::canceled_error&) {
        }
        ch.close(); // [defer close(ch)] also when cancelled
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
    // Sorted, for a stable printout: the fan-in's order varies.
    std::sort(result.last_transactions.begin(), result.last_transactions.end(),
              [](auto& a, auto& b) { return a.id < b.id; });
    co_return result;
}

weft::task<> dashboard()
{
    for (auto delay : {10ms, 500ms}) {
        auto d = co_await get_dashboard_data(weft::background(), "alice", delay);
        std::printf("%s, account %d, transactions", d.user_data.c_str(), d.account_data);
        for (auto& t : d.last_transactions)
            std::printf(" %d:%d", t.id, t.amount);
        std::printf("\n");
    }
}

// JSON, just enough for the flat objects the examples exchange.
// [encoding/json]

/// A JSON string: s quoted, with escapes.
std::string json_quote(std::string_view s)
{
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
            continue;
        }
        if (c == '"' || c == '\\')
            out += '\\';
        out += static_cast<char>(c);
    }
    return out + '"';
}

/// The shortest text that reads back as v.
std::string json_number(double v)
{
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

/// The members of an object of strings and numbers: strings unescaped,
/// numbers as written.
using json_object = std::map<std::string, std::string, std::less<>>;

/// [json.Unmarshal] nullopt if s is not such an object.
std::optional<json_object> parse_json(std::string_view s)
{
    std::size_t i = 0;
    auto skip = [&] {
        while (i < s.size() && std::string_view(" \t\r\n").find(s[i]) != std::string_view::npos)
            i++;
    };
    auto eat = [&](char c) {
        skip();
        return i < s.size() && s[i] == c && ++i;
    };
    // The rest of a string, after its opening quote.
    auto string = [&]() -> std::optional<std::string> {
        std::string v;
        for (; i < s.size() && s[i] != '"'; i++) {
            char c = s[i];
            if (c == '\\') {
                c = ++i < s.size() ? s[i] : '?';
                if (c == 'n' || c == 't') {
                    c = c == 'n' ? '\n' : '\t';
                } else if (c == 'u' && i + 4 < s.size()) { // \u00XX: ASCII only
                    unsigned code = 0;
                    auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 5, code, 16);
                    if (ec != std::errc() || end != s.data() + i + 5 || code > 0x7f)
                        return std::nullopt;
                    c = static_cast<char>(code);
                    i += 4;
                } else if (c != '"' && c != '\\' && c != '/') {
                    return std::nullopt;
                }
            }
            v += c;
        }
        return i++ < s.size() ? std::optional(v) : std::nullopt;
    };
    json_object out;
    if (!eat('{'))
        return std::nullopt;
    if (!eat('}')) {
        do {
            std::optional<std::string> key, value;
            if (!eat('"') || !(key = string()) || !eat(':'))
                return std::nullopt;
            if (eat('"')) {
                value = string();
            } else {
                auto end = std::min(s.find_first_of(",} \t\r\n", i), s.size());
                double d;
                auto [p, ec] = std::from_chars(s.data() + i, s.data() + end, d);
                if (end > i && ec == std::errc() && p == s.data() + end)
                    value = std::string(s.substr(i, end - i));
                i = end;
            }
            if (!value)
                return std::nullopt;
            out[*key] = *value;
        } while (eat(','));
        if (!eat('}'))
            return std::nullopt;
    }
    skip();
    return i == s.size() ? std::optional(out) : std::nullopt;
}

/// Sets out from o's member key if there is one; false if that is not a T.
template <class T>
bool json_field(const json_object& o, std::string_view key, T& out)
{
    auto it = o.find(key);
    if (it == o.end())
        return true;
    if constexpr (std::is_same_v<T, std::string>) {
        out = it->second;
        return true;
    } else {
        const std::string& v = it->second;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
        return ec == std::errc() && p == v.data() + v.size();
    }
}

// An HTTP service (E8.7): a handler that is a method of the service, behind
// middleware that authenticates and limits the body's size.

// [the user id in the request's context] Set by authenticate.
weft::context_key<std::string> user_id_key;

std::string get_user_id(const weft::context& ctx)
{
    auto id = ctx.value(user_id_key);
    return id ? *id : "";
}

/// Answers 401 without calling next, or calls next with the user in the
/// request's context. auth names the user a request speaks for ("": none).
http::middleware authenticate(std::function<std::string(http::request&)> auth)
{
    return [auth](http::handler next) -> http::handler {
        return [auth, next](http::response_writer& w, http::request& r) -> weft::task<> {
            std::string user = auth(r);
            if (user.empty()) {
                http::error(w, 401);
                co_return;
            }
            auto inner = r.with_context(weft::with_value(r.context(), user_id_key, user));
            co_await next(w, inner);
        };
    };
}

struct dashboard_params {
    int refresh_seconds = 60;
    std::string layout = "grid";
};

std::string to_json(const dashboard_data& d)
{
    std::string s = "{\"user_data\":" + json_quote(d.user_data) +
                    ",\"account_data\":" + std::to_string(d.account_data) +
                    ",\"last_transactions\":[";
    for (auto& t : d.last_transactions)
        s += (&t == &d.last_transactions[0] ? "{\"id\":" : ",{\"id\":") + std::to_string(t.id) +
             ",\"amount\":" + std::to_string(t.amount) + "}";
    return s + "]}";
}

/// The handlers run concurrently: what they change is guarded.
struct dashboard_service {
    weft::mutex mu;
    std::map<std::string, dashboard_params> config; // guarded by mu

    weft::task<> set_dashboard_config(std::string user, dashboard_params params)
    {
        auto lock = co_await mu.scoped_lock();
        config[user] = std::move(params);
    }

    weft::task<> dashboard_handler(http::response_writer& w, http::request& r)
    {
        std::string user = get_user_id(r.context());
        if (r.method() == "GET") {
            // In a task of its own: its helpers borrow its frame, so no
            // cancellation may abandon it, while this task obeys the
            // request's context. r.context() still reaches its backends.
            auto getting = weft::go(weft::background(), get_dashboard_data, r.context(), user,
                                    weft::clock::duration(10ms));
            auto data = co_await getting;
            w.headers().set("Content-Type", "application/json");
            w.write(to_json(data) + "\n");
        } else if (r.method() == "POST") {
            dashboard_params params;
            auto o = parse_json(r.body());
            if (!o || !json_field(*o, "refresh_seconds", params.refresh_seconds) ||
                !json_field(*o, "layout", params.layout)) {
                http::error(w, 400, "malformed parameters");
                co_return;
            }
            co_await set_dashboard_config(user, params);
        } else {
            http::error(w, 405, "Unhandled request type");
        }
    }
};

weft::task<> http_service()
{
    dashboard_service svc;
    auto auth = [](http::request& r) -> std::string {
        return r.header("Authorization") == "Bearer alice-token" ? "alice" : "";
    };
    http::serve_mux mux;
    mux.handle("/dashboard/",
               http::chain(std::bind_front(&dashboard_service::dashboard_handler, &svc),
                           {authenticate(auth), http::max_body(10240)}));
    seeds::local_server srv(mux.as_handler());

    struct call {
        const char* method;
        std::string body;
        bool signed_in;
    };
    std::vector<call> calls = {
        {"GET", "", false},
        {"GET", "", true},
        {"POST", R"({"refresh_seconds": 30, "layout": "compact"})", true},
        {"POST", R"({"refresh_seconds": )", true},
        {"POST", std::string(20000, ' '), true},
        {"PUT", "", true},
    };
    const std::string url = srv.url() + "/dashboard/";
    for (auto& c : calls) {
        http::client_options opts;
        if (c.signed_in)
            opts.headers.set("Authorization", "Bearer alice-token");
        auto resp = co_await http::fetch(c.method, url, c.body, std::move(opts));
        if (resp.body.ends_with('\n'))
            resp.body.pop_back();
        std::string what = c.method;
        if (!c.signed_in)
            what += " without credentials";
        else if (c.body.size() > 100)
            what += " of " + std::to_string(c.body.size()) + " bytes";
        else if (!c.body.empty())
            what += " " + c.body;
        std::printf("%s: %d%s%s\n", what.c_str(), resp.status, resp.body.empty() ? "" : " ",
                    resp.body.c_str());
    }
    co_await srv.close();
    auto& alice = svc.config["alice"];
    std::printf("alice's dashboard: refreshed every %d s, layout %s\n", alice.refresh_seconds,
                alice.layout.c_str());
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

// The stages after the source, and the results printed. The first error
// calls cancel, which must stop the source.
weft::task<> print_moving_averages(weft::recv_chan<entry> entries, weft::cancel_func cancel)
{
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
}

weft::task<> streaming(bool with_error)
{
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    auto entries = stream(ctx, measurements(with_error));
    co_await print_moving_averages(entries, cancel);
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

// Streams over the network (E8.11): generic adapters between channels and
// connections, then the stream above served over HTTP.

/// [io.Writer] Where an encoder's bytes go.
using writer = std::function<weft::task<>(std::string)>;

/// Writes encode(v) to out for each v of in until in is closed or a write
/// fails. The error channel has room for the one error, so the task never
/// blocks on it, even if nobody listens; its closing says the task is done.
/// On an error the task stops reading in: stop what feeds it.
/// [EncodeFromChan]
template <class T, class Encode>
weft::recv_chan<std::string> encode_from_chan(weft::recv_chan<T> in, Encode encode, writer out)
{
    auto errs = weft::make_chan<std::string>(1);
    weft::go([=]() -> weft::task<> {
        try {
            while (auto v = co_await in.recv())
                co_await out(encode(*v));
        } catch (const std::exception& e) {
            errs.try_send(e.what());
        }
        errs.close();
    });
    return errs;
}

/// Sends what decode() makes until it returns nullopt (the end: io.EOF) or
/// throws (the error goes to the second channel, which has room for it);
/// then closes both. [DecodeToChan]
template <class T, class Decode>
std::pair<weft::recv_chan<T>, weft::recv_chan<std::string>> decode_to_chan(Decode decode)
{
    auto out = weft::make_chan<T>();
    auto errs = weft::make_chan<std::string>(1);
    weft::go([=]() mutable -> weft::task<> {
        try {
            while (auto v = co_await decode())
                co_await out.send(std::move(*v));
        } catch (const std::exception& e) {
            errs.try_send(e.what());
        }
        errs.close();
        out.close();
    });
    return {out, errs};
}

/// A decode function for decode_to_chan: parse(line) for each line.
template <class Parse>
auto line_decoder(line_reader lines, Parse parse)
{
    using T = std::invoke_result_t<Parse, std::string_view>;
    return [lines = std::move(lines), parse]() mutable -> weft::task<std::optional<T>> {
        auto line = co_await lines.next();
        if (!line)
            co_return std::nullopt;
        co_return parse(*line);
    };
}

// An entry on the wire: {"At":..., "Value":..., "Error":"..."}, a line each;
// errors travel as strings.
std::string entry_to_json(const entry& e)
{
    return "{\"At\":" + std::to_string(e.at) + ",\"Value\":" + json_number(e.value) +
           ",\"Error\":" + json_quote(e.error) + "}\n";
}

entry entry_from_json(std::string_view line)
{
    entry e;
    auto o = parse_json(line);
    if (!o || !json_field(*o, "At", e.at) || !json_field(*o, "Value", e.value) ||
        !json_field(*o, "Error", e.error))
        throw std::runtime_error("malformed message: " + std::string(line));
    return e;
}

// GET /db[?error=1]: the store's stream, a message per chunk. Once the
// stream has started, 200 is sent: errors can only be logged. The stream
// stops when it ends or a write fails (the client left). Not
// r.context(): a handler that asked for it is cancelled with it and could
// then not wait for the encoder, which uses w (w must not outlive the
// handler).
weft::task<> db_handler(http::response_writer& w, http::request& r)
{
    auto [ctx, cancel] = weft::with_cancel(weft::background());
    auto data = stream(ctx, measurements(r.query_value("error") == "1"));
    w.headers().set("Content-Type", "application/x-ndjson");
    auto errs = encode_from_chan(data, entry_to_json, [&w](std::string s) -> weft::task<> {
        w.write(s);
        co_await w.flush();
    });
    if (auto err = co_await errs.recv())
        std::fprintf(stderr, "Encode error: %s\n", err->c_str());
    cancel();
}

weft::task<> http_stream()
{
    http::serve_mux mux;
    mux.handle("GET /db", db_handler);
    seeds::local_server srv(mux.as_handler());

    for (std::string query : {"", "?error=1"}) {
        std::printf("GET /db%s\n", query.c_str());
        // The response's body arrives in a channel, piece by piece: on_body
        // waits for each send, so a slow pipeline slows the transfer.
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        auto body = weft::make_chan<std::string>();
        std::string url = srv.url() + "/db" + query;
        weft::go(ctx, [url, body]() -> weft::task<> {
            http::client_options opts;
            opts.on_body = [body](std::string_view piece) -> weft::task<> {
                co_await body.send(std::string(piece));
            };
            try {
                co_await http::fetch("GET", url, "", std::move(opts));
            } catch (const weft::canceled_error&) {
                // the first error cancelled the request
            }
            body.close();
        });
        line_reader lines{
            [body]() -> weft::task<std::string> { co_return (co_await body.recv()).value_or(""); }};
        auto [entries, errs] =
            decode_to_chan<entry>(line_decoder(std::move(lines), entry_from_json));
        co_await print_moving_averages(entries, cancel);
        // A line cut short by our own cancellation is no error.
        if (auto err = co_await errs.recv(); err && !ctx.err())
            std::printf("decode error: %s\n", err->c_str());
        cancel();
    }
    co_await srv.close();
}

// A chat (E8.12): the book's WebSocket chat, over TCP with a JSON message
// per line (WebSocket is beyond this port). A controller task owns the set
// of clients; each connection has a decoder and an encoder task.

struct message {
    std::string timestamp;
    std::string text; // "message"
    std::string from;
};

std::string message_to_json(const message& m)
{
    return "{\"timestamp\":" + json_quote(m.timestamp) + ",\"message\":" + json_quote(m.text) +
           ",\"from\":" + json_quote(m.from) + "}\n";
}

message message_from_json(std::string_view line)
{
    message m;
    auto o = parse_json(line);
    if (!o || !json_field(*o, "timestamp", m.timestamp) || !json_field(*o, "message", m.text) ||
        !json_field(*o, "from", m.from))
        throw std::runtime_error("malformed message: " + std::string(line));
    return m;
}

/// [time.Now() in JSON] "2006-01-02T15:04:05Z"
std::string now_rfc3339()
{
    std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm;
    char buf[32];
    std::strftime(buf, sizeof buf, "%FT%TZ", ::gmtime_r(&t, &tm));
    return buf;
}

/// How the connections talk to the controller.
struct chat_room {
    weft::chan<weft::chan<message>> connect = weft::make_chan<weft::chan<message>>();
    weft::chan<weft::chan<message>> disconnect = weft::make_chan<weft::chan<message>>();
    weft::chan<message> dispatch = weft::make_chan<message>();
};

// The only task that touches the set of clients. It never blocks on a
// client: one whose buffer is full is evicted (its channel closed), which
// keeps slow or malicious readers from holding up the others.
weft::task<> controller(chat_room room)
{
    std::unordered_set<weft::chan<message>> clients;
    for (;;) {
        auto r = co_await weft::select(room.connect.recv(), room.disconnect.recv(),
                                       room.dispatch.recv());
        if (r.index() == 0) {
            clients.insert(*std::get<0>(r));
        } else if (r.index() == 1) {
            if (clients.erase(*std::get<1>(r)))
                std::get<1>(r)->close();
        } else {
            for (auto it = clients.begin(); it != clients.end();) {
                if (it->try_send(*std::get<2>(r))) {
                    ++it;
                    continue;
                }
                std::printf("controller: a client's buffer is full: evicted\n");
                it->close();
                it = clients.erase(it);
            }
        }
    }
}

weft::task<> chat_handler(chat_room room, weft::context, weft::net::tcp_stream stream)
{
    // A small send buffer bounds what a client that stops reading holds up
    // in the kernel, so its buffer fills soon.
    int sndbuf = 16 * 1024;
    ::setsockopt(stream.native_handle(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    auto conn = std::make_shared<weft::net::tcp_stream>(std::move(stream));
    auto input = weft::make_chan<message>(10);
    co_await room.connect.send(input);
    auto stamp = [from = conn->remote_address()](std::string_view line) {
        message m = message_from_json(line);
        m.from = from;
        m.timestamp = now_rfc3339();
        return m;
    };
    auto [data, decode_errs] = decode_to_chan<message>(line_decoder(lines_of(conn), stamp));
    auto write = [conn](std::string s) -> weft::task<> { co_await conn->write_all(s); };
    auto encode_errs = encode_from_chan<message>(input, message_to_json, write);
    for (;;) {
        auto r = co_await weft::select(data.recv(), decode_errs.recv(), encode_errs.recv());
        if (r.index() != 0 || !std::get<0>(r))
            break;
        co_await room.dispatch.send(std::move(*std::get<0>(r)));
    }
    co_await room.disconnect.send(input); // the controller closes input: the encoder ends
    conn->close();                        // and the decoder's read
    while (co_await data.recv()) {
    }
}

/// A client of the chat: what the server sends arrives on received.
struct chat_client {
    std::string name;
    std::shared_ptr<weft::net::tcp_stream> conn;
    weft::recv_chan<message> received;
};

weft::task<chat_client> join_chat(std::string addr, std::string name)
{
    auto conn = std::make_shared<weft::net::tcp_stream>(co_await weft::net::dial(addr));
    auto [received, errs] =
        decode_to_chan<message>(line_decoder(lines_of(conn), message_from_json));
    chat_client c{name, conn, received};
    co_return c;
}

weft::task<> send_text(chat_client c, std::string text)
{
    message m;
    m.text = std::move(text);
    std::string line = message_to_json(m);
    co_await c.conn->write_all(line);
}

weft::task<> chat()
{
    chat_room room;
    weft::go(controller, room);
    tcp_server srv(weft::net::tcp_listener::listen("127.0.0.1:0"),
                   std::bind_front(chat_handler, room));
    auto listening = weft::go([&srv]() -> weft::task<> { co_await srv.listen(); });
    const std::string addr = srv.listener.local_address();

    // Everyone in the room gets each message, its sender too: clients print
    // what they get, naming the sender by the address the server stamped.
    std::vector<chat_client> clients;
    std::map<std::string, std::string> names;
    auto everyone_gets = [&]() -> weft::task<> {
        for (auto& c : clients) {
            auto m = co_await c.received.recv();
            if (m)
                std::printf("%s got \"%s\" from %s\n", c.name.c_str(), m->text.c_str(),
                            names[m->from].c_str());
        }
    };
    for (std::string name : {"client 1", "client 2", "client 3"}) {
        clients.push_back(co_await join_chat(addr, name));
        names[clients.back().conn->local_address()] = name;
        co_await send_text(clients.back(), "hi, I'm " + name);
        co_await everyone_gets();
    }
    // A client that never reads what it gets.
    auto slow = co_await join_chat(addr, "slow client");
    names[slow.conn->local_address()] = "slow client";
    co_await send_text(slow, "hi, I'm slow");
    co_await everyone_gets();

    // A flood the others keep up with, message by message: the slow
    // client's buffer fills and the controller evicts it.
    const int flood = 500;
    for (int i = 0; i < flood; i++) {
        std::string text = std::to_string(i) + std::string(1000, '.');
        co_await send_text(clients[0], text);
        for (auto& c : clients)
            if (auto m = co_await c.received.recv(); !m || m->text != text) {
                std::printf("%s lost message %d\n", c.name.c_str(), i);
                co_return;
            }
    }
    std::printf("client 1 sent %d long messages; clients 1, 2 and 3 got them all\n", flood);
    // The slow client reads at last: what was buffered, then the end.
    int got = 0;
    while (co_await slow.received.recv())
        got++;
    std::printf("slow client: %s\n", got < flood + 1 ? "the server hung up before the end: evicted"
                                                     : "got every message");

    for (auto& c : clients) {
        c.conn->close();
        while (co_await c.received.recv()) {
        }
    }
    srv.stop_listener();
    co_await listening;
    if (co_await srv.wait_for_connections(5s))
        std::printf("all connections closed\n");
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
                        {"stream-error", stream_error},
                        {"tcp-server", tcp_server_example},
                        {"http-service", http_service},
                        {"http-stream", http_stream},
                        {"chat", chat}});
}
