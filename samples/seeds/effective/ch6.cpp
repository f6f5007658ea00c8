// "Effective Concurrency in Go", chapter 6: error handling. Goroutines return
// no errors, so results carry them; a failure cancels the other goroutines;
// panics become errors where a goroutine or a package boundary recovers them;
// a server answers with structured errors and survives a handler's panic.
//
// usage: ch6 EXAMPLE
#include "../local_server.hpp"
#include "../seeds.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace {

// A result and the error that may have replaced it.
struct result {
    int value = 0;
    std::string error;
};

weft::task<result> compute(int n, bool fail)
{
    co_await weft::sleep_for(fail ? 1ms : 50ms);
    if (fail)
        co_return result{0, "computation " + std::to_string(n) + " failed"};
    co_return result{n * 10, ""};
}

void report(const char* name, const std::optional<result>& r)
{
    if (!r)
        std::printf("%s: canceled\n", name);
    else if (!r->error.empty())
        std::printf("%s: error: %s\n", name, r->error.c_str());
    else
        std::printf("%s: %d\n", name, r->value);
}

// Each goroutine sends its result or its error; main reads both channels
// before it looks at the errors (returning early would leak a sender).
weft::task<> results()
{
    auto result1_ch = weft::make_chan<result>();
    auto result2_ch = weft::make_chan<result>();
    weft::go([=]() -> weft::task<> { co_await result1_ch.send(co_await compute(1, false)); });
    weft::go([=]() -> weft::task<> { co_await result2_ch.send(co_await compute(2, true)); });
    auto result1 = co_await result1_ch.recv();
    auto result2 = co_await result2_ch.recv();
    report("result1", result1);
    report("result2", result2);
}

// A failing goroutine asks for cancellation on cancel_ch; one listener closes
// `canceled` once, however many ask. The others check `canceled` and close
// their result channel instead of sending: the reader sees nullopt.
weft::task<> computation(int n, bool fail, weft::send_chan<result> result_ch,
                         weft::send_chan<std::monostate> cancel_ch,
                         weft::recv_chan<std::monostate> canceled)
{
    auto r = co_await compute(n, fail);
    if (!r.error.empty()) {
        co_await cancel_ch.send({});
        co_await result_ch.send(r);
        co_return;
    }
    if (canceled.closed()) {
        result_ch.close();
        co_return;
    }
    co_await result_ch.send(r);
}

weft::task<> cancel_channel()
{
    auto result_ch1 = weft::make_chan<result>();
    auto result_ch2 = weft::make_chan<result>();
    auto canceled = weft::make_chan<std::monostate>();
    auto cancel_ch = weft::make_chan<std::monostate>();
    weft::go([=]() -> weft::task<> {
        weft::once once;
        auto close = [=] { canceled.close(); }; // named: see README (g++ 12)
        while (co_await cancel_ch.recv())
            co_await once.call(close);
    });
    weft::go(computation, 1, true, result_ch1, cancel_ch, canceled);
    weft::go(computation, 2, false, result_ch2, cancel_ch, canceled);
    report("result1", co_await result_ch1.recv());
    report("result2", co_await result_ch2.recv());
    cancel_ch.close(); // ends the listener [defer close(cancelCh)]
}

// The same with an error channel: its listener keeps every error and closes
// `canceled` at the first. Result channels are always closed when their
// goroutine returns.
weft::task<> error_channel()
{
    auto err_ch = weft::make_chan<std::string>();
    auto canceled = weft::make_chan<std::monostate>();
    auto listener = weft::go([=]() -> weft::task<std::vector<std::string>> {
        std::vector<std::string> errs;
        weft::once once;
        auto close = [=] { canceled.close(); };
        while (auto err = co_await err_ch.recv()) {
            errs.push_back(*err);
            co_await once.call(close);
        }
        co_return errs;
    });
    auto start = [=](int n, bool fail) {
        auto result_ch = weft::make_chan<result>();
        weft::go([=]() -> weft::task<> {
            auto r = co_await compute(n, fail);
            if (!r.error.empty())
                co_await err_ch.send(r.error);
            else if (!canceled.closed())
                co_await result_ch.send(r);
            result_ch.close();
        });
        return result_ch;
    };
    auto result1_ch = start(1, false);
    auto result2_ch = start(2, true);
    report("result1", co_await result1_ch.recv());
    report("result2", co_await result2_ch.recv());
    err_ch.close();
    for (auto& err : co_await listener) // read once the listener is done
        std::printf("error: %s\n", err.c_str());
}

// Error variables written by the goroutines, read after wait(): no
// cancellation, but no race either.
weft::task<> wait_group_errors()
{
    weft::wait_group wg;
    std::string err1, err2;
    wg.go([&]() -> weft::task<> { err1 = (co_await compute(1, false)).error; });
    wg.go([&]() -> weft::task<> { err2 = (co_await compute(2, true)).error; });
    co_await wg.wait();
    std::printf("err1: \"%s\"\nerr2: \"%s\"\n", err1.c_str(), err2.c_str());
}

// weft's task_group [errgroup.Group] does all of the above: the first
// exception cancels the group's context, so the other task's sleep ends
// with canceled_error, and wait() rethrows the first failure.
weft::task<> task_group()
{
    weft::task_group g;
    co_await g.go([]() -> weft::task<> {
        co_await weft::sleep_for(1ms);
        throw std::runtime_error("computation 1 failed");
    });
    co_await g.go([]() -> weft::task<> {
        try {
            co_await weft::sleep_for(10s);
        } catch (const weft::canceled_error&) {
            std::printf("computation 2: canceled\n");
            throw;
        }
    });
    try {
        co_await g.wait();
    } catch (const std::exception& e) {
        std::printf("wait: %s\n", e.what());
    }
}

// A goroutine turns its panic into an error on a channel [defer recover()].
weft::task<> panic_to_error()
{
    auto err_ch = weft::make_chan<std::string>(1);
    auto result_ch = weft::make_chan<int>();
    weft::go([=]() -> weft::task<> {
        try {
            std::vector<int> v;
            co_await result_ch.send(v.at(1)); // throws std::out_of_range
        } catch (const std::exception& e) {
            err_ch.try_send(std::string("recovered: ") + e.what());
        }
        result_ch.close();
    });
    if (auto r = co_await result_ch.recv())
        std::printf("result: %d\n", *r);
    if (auto err = err_ch.try_recv())
        std::printf("%s\n", err->c_str());
}

// A pipeline stage that recovers the panic of each item, reports it on an
// error channel, and goes on with the next.
auto pipeline_stage = [](weft::recv_chan<std::string> input, weft::send_chan<int> output,
                         weft::send_chan<std::string> err_ch, auto process) -> weft::task<> {
    while (auto data = co_await input.recv()) {
        std::optional<int> result;
        std::string err;
        try {
            result = process(*data);
        } catch (const std::exception& e) {
            err = "\"" + *data + "\": " + e.what();
        }
        if (result)
            co_await output.send(*result);
        else
            co_await err_ch.send(err); // report, and go on with the next
    }
    output.close();
};

weft::task<> pipeline_errors()
{
    auto input = weft::make_chan<std::string>();
    auto output = weft::make_chan<int>();
    auto err_ch = weft::make_chan<std::string>();
    auto atoi = [](const std::string& s) {
        std::size_t end;
        int v = std::stoi(s, &end);
        if (end != s.size())
            throw std::invalid_argument("trailing characters");
        return v;
    };
    weft::go(pipeline_stage, input, output, err_ch, atoi);
    weft::go([input]() -> weft::task<> {
        for (std::string s : {"1", "two", "3", "4x", "5"})
            co_await input.send(s);
        input.close();
    });
    for (;;) {
        auto r = co_await weft::select(output, err_ch);
        if (r.index() == 1)
            std::printf("error: %s\n", std::get<1>(r)->c_str());
        else if (auto v = std::get<0>(r))
            std::printf("value: %d\n", *v);
        else
            break;
    }
}

// Inside a package, errors may travel as exceptions of a private type; the
// exported function turns those into an error and lets anything else go on.
struct package_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void unexported_function(int input)
{
    if (input < 0)
        throw package_error("negative input");
    if (input == 0)
        throw std::logic_error("a real bug");
}

std::string exported_function(int input)
{
    try {
        unexported_function(input);
        return "";
    } catch (const package_error& e) {
        return e.what();
    }
}

weft::task<> internal_panic()
{
    std::printf("1: \"%s\"\n", exported_function(1).c_str());
    std::printf("-1: \"%s\"\n", exported_function(-1).c_str());
    try {
        exported_function(0);
    } catch (const std::logic_error& e) {
        std::printf("0: panics on: %s\n", e.what());
    }
    co_return;
}

// Structured errors (section 6.2): an error that knows its HTTP status and
// message; write_error answers with it, or with 500 for any other error.
struct http_error : std::runtime_error {
    http_error(int code, int http_status, const std::string& diag)
        : std::runtime_error(diag), code(code), http_status(http_status)
    {
    }
    std::string http_message() const { return std::to_string(code) + ": " + what(); }

    int code;
    int http_status;
};

void write_error(weft::http::response_writer& w, const std::exception& err)
{
    if (auto* e = dynamic_cast<const http_error*>(&err))
        weft::http::error(w, e->http_status, e->http_message());
    else
        weft::http::error(w, 500, err.what());
}

std::string find_user(std::string_view id)
{
    if (id == "db-down")
        throw std::runtime_error("database unavailable");
    if (id.empty() || id.find_first_not_of("0123456789") != std::string_view::npos)
        throw http_error(1002, 400, "malformed user id");
    if (id != "42")
        throw http_error(1001, 404, "no such user");
    return "Arthur Dent";
}

// Prints each reply as "GET PATH: STATUS BODY".
weft::task<> get_all(const std::string& url, const std::vector<const char*>& paths)
{
    for (const char* path : paths) {
        auto r = co_await weft::http::get(url + path);
        while (!r.body.empty() && r.body.back() == '\n')
            r.body.pop_back();
        std::printf("GET %s: %d %s\n", path, r.status, r.body.c_str());
    }
}

weft::task<> structured_errors()
{
    weft::http::serve_mux mux;
    mux.handle("GET /users/{id}", [](auto& w, auto& r) -> weft::task<> {
        try {
            w.write(find_user(r.path_value("id")));
        } catch (const std::exception& e) {
            write_error(w, e);
        }
        co_return;
    });
    seeds::local_server srv(mux.as_handler());
    std::vector<const char*> paths{"/users/42", "/users/7", "/users/x7", "/users/db-down"};
    co_await get_all(srv.url(), paths);
    co_await srv.close();
}

// E6.5: a middleware that recovers a handler's panic (an exception) and
// answers 500; the server goes on serving. weft's server does the same
// when nothing recovers, logging to the "weft" logger.
weft::http::handler panic_handler(weft::http::handler next)
{
    return [next](weft::http::response_writer& w, weft::http::request& r) -> weft::task<> {
        try {
            co_await next(w, r);
        } catch (const std::exception& e) {
            std::printf("panic: %s %s: %s\n", std::string(r.method()).c_str(),
                        std::string(r.path()).c_str(), e.what());
            weft::http::error(w, 500);
        }
    };
}

weft::task<> panic_recovery()
{
    std::vector<std::string> items{"apple", "banana"};
    weft::http::serve_mux mux;
    mux.handle("GET /items/{i}", [&items](auto& w, auto& r) -> weft::task<> {
        w.write(items.at(std::stoul(std::string(r.path_value("i"))))); // may throw
        co_return;
    });
    seeds::local_server srv(panic_handler(mux.as_handler()));
    std::vector<const char*> paths{"/items/0", "/items/7", "/items/1"};
    co_await get_all(srv.url(), paths);
    co_await srv.close();
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"results", results},
                        {"cancel-channel", cancel_channel},
                        {"error-channel", error_channel},
                        {"wait-group", wait_group_errors},
                        {"task-group", task_group},
                        {"panic-to-error", panic_to_error},
                        {"pipeline-errors", pipeline_errors},
                        {"internal-panic", internal_panic},
                        {"structured-errors", structured_errors},
                        {"panic-handler", panic_recovery}});
}
