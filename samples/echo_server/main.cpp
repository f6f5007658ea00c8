// A TCP echo server: one task per connection. SIGINT or SIGTERM stops it
// gracefully: it stops accepting, lets open connections finish for a grace
// period, then closes what is left.
//
//   echo_server [address] [grace-ms]      (default 127.0.0.1:9000, 5000)
//   try it:  nc 127.0.0.1 9000

#include <weft/weft.hpp>
#include <weft/net/tcp.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace std::chrono_literals;

namespace {

std::atomic<int> g_open{0};

weft::task<> echo(weft::net::tcp_stream conn)
{
    char buf[16 * 1024];
    try {
        for (;;) {
            std::size_t n = co_await conn.read_some(std::span<char>(buf));
            if (n == 0)
                break; // the client is done
            co_await conn.write_all(std::string_view(buf, n));
        }
    } catch (const weft::canceled_error&) {
        // the grace period is over
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "connection: %s\n", e.what());
    }
}

// Accepts until its context ends (the stop signal); connections run under
// conns_ctx, so they outlive it.
weft::task<> accept_loop(weft::net::tcp_listener& l, weft::context conns_ctx,
                         weft::wait_group& conns)
{
    for (;;) {
        weft::net::tcp_stream conn;
        try {
            conn = co_await l.accept();
        } catch (const weft::canceled_error&) {
            co_return;
        } catch (const std::system_error& e) {
            // EMFILE and friends: the listener is fine, try again shortly.
            std::fprintf(stderr, "accept: %s\n", e.what());
        }
        if (!conn.is_open()) {
            co_await weft::sleep_for(10ms);
            continue;
        }
        conns.add(1);
        g_open.fetch_add(1);
        weft::go(conns_ctx, [&conns](weft::net::tcp_stream c) -> weft::task<> {
            co_await echo(std::move(c));
            g_open.fetch_sub(1);
            conns.done();
        }, std::move(conn));
    }
}

} // namespace

int main(int argc, char** argv)
{
    const std::string address = argc > 1 ? argv[1] : "127.0.0.1:9000";
    const auto grace = std::chrono::milliseconds(argc > 2 ? std::atol(argv[2]) : 5000);

    weft::run([&]() -> weft::task<> {
        auto listener = weft::net::tcp_listener::listen(address);
        auto [stop_ctx, stop] = weft::signal_context(weft::background(), {SIGINT, SIGTERM});
        auto [conns_ctx, drop_conns] = weft::with_cancel(weft::background());
        weft::wait_group conns;
        std::printf("echo server on %s (Ctrl-C stops it)\n", listener.local_address().c_str());
        std::fflush(stdout);

        co_await weft::go(stop_ctx, accept_loop, std::ref(listener), conns_ctx, std::ref(conns));
        listener.close();
        std::printf("stopping: %d connection(s) open, waiting up to %lld ms\n", g_open.load(),
                    static_cast<long long>(grace.count()));
        std::fflush(stdout);

        auto [wait_ctx, wait_cancel] = weft::with_timeout(weft::background(), grace);
        bool finished = co_await weft::go(wait_ctx, [&conns]() -> weft::task<bool> {
            try {
                co_await conns.wait();
                co_return true;
            } catch (const weft::canceled_error&) {
                co_return false;
            }
        });
        if (!finished) {
            std::printf("grace period over: closing %d connection(s)\n", g_open.load());
            drop_conns();
            co_await conns.wait();
        }
        wait_cancel();
        stop();
        std::printf("stopped\n");
    });
}
