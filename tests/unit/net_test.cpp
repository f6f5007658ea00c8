#include <weft/net/tcp.hpp>

#include <weft/chan.hpp>
#include <weft/context.hpp>
#include <weft/runtime.hpp>
#include <weft/sync.hpp>
#include <weft/time.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

// Echoes every byte back until the client shuts its side down.
weft::task<> echo(weft::net::tcp_stream s)
{
    char buf[4096];
    for (;;) {
        std::size_t n = co_await s.read_some(std::span<char>(buf));
        if (n == 0)
            co_return;
        co_await s.write_all(std::string_view(buf, n));
    }
}

weft::task<> echo_server(weft::net::tcp_listener& l)
{
    for (;;) {
        weft::net::tcp_stream s;
        try {
            s = co_await l.accept();
        } catch (const weft::net::closed&) {
            co_return;
        }
        weft::go(echo, std::move(s));
    }
}

// Reads until `want` bytes arrived or the stream ended.
weft::task<std::string> read_n(weft::net::tcp_stream& s, std::size_t want)
{
    std::string out;
    char buf[4096];
    while (out.size() < want) {
        std::size_t n = co_await s.read_some(std::span<char>(buf, std::min(sizeof buf, want - out.size())));
        if (n == 0)
            break;
        out.append(buf, n);
    }
    co_return out;
}

// Whether the peer's side of s ended: end of stream or a reset.
weft::task<bool> peer_ended(weft::net::tcp_stream& s)
{
    char b[16];
    try {
        co_return co_await s.read_some(std::span<char>(b)) == 0;
    } catch (const std::system_error& e) {
        co_return e.code().value() == ECONNRESET;
    }
}

} // namespace

TEST_CASE("a listener on port 0 reports the port it got")
{
    weft::run([]() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        CHECK(l.port() != 0);
        CHECK(l.local_address() == "127.0.0.1:" + std::to_string(l.port()));
        co_return;
    });
}

TEST_CASE("bad addresses are invalid_argument")
{
    CHECK_THROWS_AS(weft::net::tcp_listener::listen("127.0.0.1"), std::invalid_argument);
    CHECK_THROWS_AS(weft::net::tcp_listener::listen("127.0.0.1:99999"), std::invalid_argument);
    CHECK_THROWS_AS(weft::net::tcp_listener::listen("example.com:80"), std::invalid_argument);
    CHECK_THROWS_AS(weft::net::tcp_listener::listen("[::1:80"), std::invalid_argument);
}

TEST_CASE("echo round trips with many concurrent clients")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        std::atomic<int> good{0};
        constexpr int clients = 64;
        weft::run(weft::runtime_options{.workers = w}, [&]() -> weft::task<> {
            auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
            const std::string addr = l.local_address();
            auto server = weft::go(echo_server, std::ref(l));
            weft::wait_group wg;
            for (int c = 0; c < clients; ++c) {
                wg.go([&, c]() -> weft::task<> {
                    auto s = co_await weft::net::dial(addr);
                    // Large enough to need several reads and partial sends.
                    std::string msg(100'000 + c, static_cast<char>('a' + c % 26));
                    auto reader = weft::go([&s, n = msg.size()]() -> weft::task<std::string> {
                        co_return co_await read_n(s, n);
                    });
                    co_await s.write_all(msg);
                    std::string back = co_await reader;
                    if (back == msg)
                        good.fetch_add(1);
                });
            }
            co_await wg.wait();
            l.close();
            co_await server;
        });
        CHECK(good.load() == clients);
    }
}

TEST_CASE("read_some returns 0 at the end of the stream")
{
    weft::run([]() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        auto accepted = weft::go([&]() -> weft::task<weft::net::tcp_stream> { co_return co_await l.accept(); });
        auto c = co_await weft::net::dial(l.local_address());
        auto s = co_await accepted;
        CHECK(s.remote_address() == c.local_address());
        co_await c.write_all(std::string_view("bye"));
        c.shutdown_write();
        CHECK(co_await read_n(s, 10) == "bye");
        char b[8];
        CHECK(co_await s.read_some(std::span<char>(b)) == 0);
    });
}

TEST_CASE("dial to a closed port throws connection refused")
{
    weft::run([]() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        std::string addr = l.local_address();
        l.close();
        try {
            (void)co_await weft::net::dial(addr);
            FAIL("dial succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == ECONNREFUSED);
        }
    });
}

TEST_CASE("IPv6 loopback works")
{
    weft::run([]() -> weft::task<> {
        weft::net::tcp_listener l;
        try {
            l = weft::net::tcp_listener::listen("[::1]:0");
        } catch (const std::system_error&) {
            co_return; // no IPv6 on this machine
        }
        CHECK(l.local_address().starts_with("[::1]:"));
        auto server = weft::go(echo_server, std::ref(l));
        auto c = co_await weft::net::dial(l.local_address());
        co_await c.write_all(std::string_view("six"));
        CHECK(co_await read_n(c, 3) == "six");
        l.close();
        co_await server;
    });
}

TEST_CASE("closing a listener ends a pending accept with net::closed")
{
    weft::run([]() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        auto acc = weft::go([&]() -> weft::task<bool> {
            try {
                (void)co_await l.accept();
            } catch (const weft::net::closed&) {
                co_return true;
            }
            co_return false;
        });
        co_await weft::sleep_for(20ms);
        l.close();
        CHECK(co_await acc);
        CHECK_FALSE(l.is_open());
        CHECK_THROWS_AS((void)co_await l.accept(), weft::net::closed);
    });
}

TEST_CASE("closing a stream ends a pending read in another task with net::closed")
{
    weft::run([]() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        auto accepted = weft::go([&]() -> weft::task<weft::net::tcp_stream> { co_return co_await l.accept(); });
        auto c = co_await weft::net::dial(l.local_address());
        auto s = co_await accepted;
        auto rd = weft::go([&]() -> weft::task<bool> {
            char b[16];
            try {
                (void)co_await s.read_some(std::span<char>(b));
            } catch (const weft::net::closed&) {
                co_return true;
            }
            co_return false;
        });
        co_await weft::sleep_for(20ms);
        s.close();
        CHECK(co_await rd);
    });
}

TEST_CASE("a cancelled context ends a pending read promptly, and the stream stays usable")
{
    weft::run([]() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        auto server = weft::go(echo_server, std::ref(l));
        auto c = co_await weft::net::dial(l.local_address());
        auto [ctx, cancel] = weft::with_timeout(weft::background(), 30ms);
        auto start = std::chrono::steady_clock::now();
        auto rd = weft::go(ctx, [&]() -> weft::task<bool> {
            char b[16];
            try {
                (void)co_await c.read_some(std::span<char>(b));
            } catch (const weft::canceled_error& e) {
                co_return e.code() == weft::errc::deadline_exceeded;
            }
            co_return false;
        });
        CHECK(co_await rd);
        CHECK(std::chrono::steady_clock::now() - start < 2s);
        cancel();
        // Nothing was lost: the stream still echoes.
        co_await c.write_all(std::string_view("still here"));
        CHECK(co_await read_n(c, 10) == "still here");
        l.close();
        co_await server;
    });
}

TEST_CASE("a cancelled context ends a pending accept with canceled_error")
{
    weft::run([]() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        auto acc = weft::go(ctx, [&]() -> weft::task<bool> {
            try {
                (void)co_await l.accept();
            } catch (const weft::canceled_error&) {
                co_return true;
            }
            co_return false;
        });
        co_await weft::sleep_for(10ms);
        cancel();
        CHECK(co_await acc);
        // The listener still accepts.
        auto acc2 = weft::go([&]() -> weft::task<weft::net::tcp_stream> { co_return co_await l.accept(); });
        auto c = co_await weft::net::dial(l.local_address());
        auto s = co_await acc2;
        CHECK(s.is_open());
    });
}

TEST_CASE("accept survives running out of descriptors")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        const std::string addr = l.local_address();
        // Fill the descriptor table up to a low limit, but for one
        // descriptor for the client socket. Something else in the process
        // (the sanitizer runtime, a library) may hold one briefly while the
        // table fills and close it after: then the accept finds it and that
        // round proves nothing, so it is tried again.
        weft_test::descriptor_hog hog;
        weft::net::tcp_stream c;
        bool emfile = false;
        for (int round = 0; round < 5 && !emfile; ++round) {
            hog.fill(1);
            auto client = weft::go([addr]() -> weft::task<weft::net::tcp_stream> { co_return co_await weft::net::dial(addr); });
            c = co_await client;
            try {
                (void)co_await l.accept(); // a descriptor was free after all
                c.close();
            } catch (const std::system_error& e) {
                REQUIRE(e.code().value() == EMFILE);
                emfile = true;
            }
        }
        REQUIRE(emfile);
        hog.release();
        // The queued connection is accepted once descriptors are free.
        auto s = co_await l.accept();
        co_await c.write_all(std::string_view("x"));
        CHECK(co_await read_n(s, 1) == "x");
    });
}

TEST_CASE("operations on a default-constructed stream throw net::closed")
{
    weft::run([]() -> weft::task<> {
        weft::net::tcp_stream s;
        char b[4];
        CHECK_THROWS_AS((void)co_await s.read_some(std::span<char>(b)), weft::net::closed);
        CHECK_THROWS_AS(co_await s.write_all(std::string_view("x")), weft::net::closed);
        CHECK_THROWS_AS((void)s.remote_address(), weft::net::closed);
    });
}

TEST_CASE("a task blocked in I/O is not a deadlock")
{
    weft::run(weft::runtime_options{.workers = 2, .detect_deadlock = true}, []() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        const unsigned short port = l.port();
        // Every task waits for I/O; the connection comes from another
        // process, after the deadlock check would have fired.
        pid_t child = ::fork();
        if (child == 0) {
            timespec ts{1, 500'000'000};
            ::nanosleep(&ts, nullptr);
            int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
            ::_exit(0);
        }
        REQUIRE(child > 0);
        auto s = co_await l.accept();
        CHECK(s.is_open());
        int status = 0;
        ::waitpid(child, &status, 0);
    });
}

// ---- accepting ahead (io_uring multishot accept; one accept per wait on
// the other paths: the same behaviour either way)

namespace {

// Dials `addr` and sends its index as one byte.
weft::task<weft::net::tcp_stream> dial_and_say(std::string addr, int i)
{
    auto c = co_await weft::net::dial(addr);
    const char b = static_cast<char>(i);
    co_await c.write_all(std::string_view(&b, 1));
    co_return c;
}

} // namespace

TEST_CASE("connections made before anyone accepts are all accepted, once each")
{
    for (unsigned w : {1u, 2u}) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
            const std::string addr = l.local_address();
            // More than an accept queue takes ahead (it stops and lets the
            // kernel's backlog hold the rest).
            constexpr int n = 100;
            std::vector<weft::net::tcp_stream> clients;
            for (int i = 0; i < n; ++i)
                clients.push_back(co_await dial_and_say(addr, i));
            std::vector<int> seen(n, 0);
            for (int i = 0; i < n; ++i) {
                auto s = co_await l.accept();
                const std::string b = co_await read_n(s, 1);
                REQUIRE(b.size() == 1);
                ++seen[static_cast<unsigned char>(b[0])];
            }
            for (int i = 0; i < n; ++i)
                CHECK(seen[static_cast<std::size_t>(i)] == 1);
        });
    }
}

TEST_CASE("several tasks accepting from one listener share its connections")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        const std::string addr = l.local_address();
        constexpr int n = 300;
        constexpr int acceptors = 4;
        std::vector<int> seen(n, 0);
        weft::mutex mu;
        std::vector<weft::join_handle<int>> hs;
        for (int a = 0; a < acceptors; ++a)
            hs.push_back(weft::go([&]() -> weft::task<int> {
                int mine = 0;
                for (;;) {
                    weft::net::tcp_stream s;
                    try {
                        s = co_await l.accept();
                    } catch (const weft::net::closed&) {
                        co_return mine;
                    }
                    const std::string b = co_await read_n(s, 2);
                    const int i = static_cast<unsigned char>(b[0]) * 256 + static_cast<unsigned char>(b[1]);
                    co_await mu.lock();
                    ++seen[static_cast<std::size_t>(i)];
                    mu.unlock();
                    ++mine;
                }
            }));
        weft::wait_group wg;
        for (int i = 0; i < n; ++i)
            wg.go([&addr, i]() -> weft::task<> {
                auto c = co_await weft::net::dial(addr);
                const char b[2] = {static_cast<char>(i / 256), static_cast<char>(i % 256)};
                co_await c.write_all(std::string_view(b, 2));
                char end[1];
                (void)co_await c.read_some(std::span<char>(end)); // the server's close
            });
        // Every client's connection is accepted and read, then closed by
        // the acceptor (the stream goes out of scope): wait for them all.
        co_await wg.wait();
        l.close();
        int total = 0;
        for (auto& h : hs)
            total += co_await h;
        CHECK(total == n);
        for (int i = 0; i < n; ++i)
            CHECK(seen[static_cast<std::size_t>(i)] == 1);
    });
}

TEST_CASE("closing a listener closes the connections it took ahead and its socket")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::optional<weft::net::tcp_listener> l = weft::net::tcp_listener::listen("127.0.0.1:0");
        const std::string addr = l->local_address();
        // What the descriptor names, read through /proc: the library may
        // close it on another thread while the test looks.
        const auto name_of = [](int fd) {
            char buf[64] = {};
            const std::string path = "/proc/self/fd/" + std::to_string(fd);
            const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
            return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
        };
        const int fd = l->native_handle();
        const std::string before = name_of(fd);
        REQUIRE(before.starts_with("socket:"));
        // One accepted connection: the listener now accepts ahead.
        auto first = weft::go([&]() -> weft::task<weft::net::tcp_stream> { co_return co_await l->accept(); });
        auto c0 = co_await weft::net::dial(addr);
        auto s0 = co_await first;
        std::vector<weft::net::tcp_stream> waiting;
        for (int i = 0; i < 5; ++i)
            waiting.push_back(co_await weft::net::dial(addr));
        co_await weft::sleep_for(20ms); // let them be taken ahead, if they are
        l->close();
        // Nobody will serve them: each sees its connection end.
        for (auto& c : waiting)
            CHECK(co_await peer_ended(c));
        // With the handle gone, the listening socket is closed soon (not
        // kept by an operation in the kernel): its descriptor is free or
        // names another file.
        l.reset();
        std::function<bool()> gone = [&] { return name_of(fd) != before; };
        CHECK(co_await weft_test::eventually(gone, std::chrono::seconds(5)));
    });
}

TEST_CASE("a cancelled accept loses no connection")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        const std::string addr = l.local_address();
        for (int round = 0; round < 20; ++round) {
            auto [ctx, cancel] = weft::with_cancel(weft::background());
            auto acc = weft::go(ctx, [&]() -> weft::task<std::optional<weft::net::tcp_stream>> {
                try {
                    co_return co_await l.accept();
                } catch (const weft::canceled_error&) {
                    co_return std::nullopt;
                }
            });
            // The cancel races with the connection: either the accept gets
            // it, or the next accept does.
            auto c = co_await dial_and_say(addr, round);
            cancel();
            std::optional<weft::net::tcp_stream> s = co_await acc;
            if (!s)
                s = co_await l.accept();
            const std::string b = co_await read_n(*s, 1);
            REQUIRE(b.size() == 1);
            CHECK(static_cast<unsigned char>(b[0]) == round);
        }
    });
}

// ---- receiving ahead (io_uring multishot receive with provided buffers;
// one receive per read on the other paths: the same behaviour either way)

namespace {

// Byte i of a test stream: a pattern that shows loss, duplication and
// reordering.
char pattern(std::size_t i) { return static_cast<char>('a' + (i * 7 + i / 251) % 26); }

std::string pattern_text(std::size_t n)
{
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = pattern(i);
    return s;
}

} // namespace

TEST_CASE("bytes sent while nobody reads arrive whole and in order, whatever the read sizes")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        auto [c, s] = co_await weft_test::connected_pair(l);
        // Start reading once, so the stream reads ahead from then on.
        co_await c.write_all(std::string_view("!"));
        char one[1];
        REQUIRE(co_await s.read_some(std::span<char>(one)) == 1);
        // More than the stream takes ahead (64 KiB) and than the socket
        // buffers hold: the writer waits for the reader.
        const std::size_t total = 1 << 20;
        const std::string sent = pattern_text(total);
        auto writer = weft::go([&c, &sent]() -> weft::task<> { co_await c.write_all(sent); });
        co_await weft::sleep_for(50ms);
        std::string got;
        got.reserve(total);
        // Tiny reads, odd sizes, then large ones.
        std::vector<char> buf(65536);
        std::size_t step = 0;
        while (got.size() < total) {
            const std::size_t want = got.size() < 20000 ? 1 + step % 13 : 1 + (step * 4099) % 65536;
            ++step;
            std::size_t n = co_await s.read_some(std::span<char>(buf.data(), want));
            REQUIRE(n > 0);
            REQUIRE(n <= want);
            got.append(buf.data(), n);
        }
        co_await writer;
        CHECK(got == sent);
        c.shutdown_write();
        CHECK(co_await s.read_some(std::span<char>(buf)) == 0);
        CHECK(co_await s.read_some(std::span<char>(buf)) == 0);
    });
}

TEST_CASE("a read that is cancelled loses no bytes")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        auto [c, s] = co_await weft_test::connected_pair(l);
        std::string got;
        for (int round = 0; round < 200; ++round) {
            auto [ctx, cancel] = weft::with_cancel(weft::background());
            auto rd = weft::go(ctx, [&s]() -> weft::task<std::string> {
                char b[8];
                try {
                    std::size_t n = co_await s.read_some(std::span<char>(b));
                    co_return std::string(b, n);
                } catch (const weft::canceled_error&) {
                    co_return std::string();
                }
            });
            // The cancel races with the byte: the read gets it, or a later
            // read does.
            if (round % 3 != 0)
                co_await weft::this_task::yield();
            co_await c.write_all(std::string(1, pattern(static_cast<std::size_t>(round))));
            cancel();
            got += co_await rd;
        }
        c.shutdown_write();
        char b[64];
        for (;;) {
            std::size_t n = co_await s.read_some(std::span<char>(b));
            if (n == 0)
                break;
            got.append(b, n);
        }
        CHECK(got == pattern_text(200));
    });
}

TEST_CASE("a second read while one is in progress is refused, and the first goes on")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        auto [c, s] = co_await weft_test::connected_pair(l);
        auto first = weft::go([&s]() -> weft::task<std::string> {
            char b[16];
            std::size_t n = co_await s.read_some(std::span<char>(b));
            co_return std::string(b, n);
        });
        co_await weft::sleep_for(20ms);
        char b[16];
        CHECK_THROWS_AS((void)co_await s.read_some(std::span<char>(b)), std::logic_error);
        co_await c.write_all(std::string_view("hello"));
        CHECK(co_await first == "hello");
    });
}

TEST_CASE("many streams receiving at once each get their bytes")
{
    // More streams than a ring has provided buffers (256), all sent to in
    // one burst: some receives find no buffer and start again.
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        constexpr int n = 320;
        constexpr std::size_t size = 3000;
        std::vector<weft::net::tcp_stream> clients;
        std::vector<weft::join_handle<std::string>> readers;
        weft::wait_group started;
        for (int i = 0; i < n; ++i) {
            auto [c, s] = co_await weft_test::connected_pair(l);
            started.add(1);
            readers.push_back(weft::go(
                [&started](weft::net::tcp_stream s) -> weft::task<std::string> {
                    std::string got;
                    char b[1000];
                    std::size_t k = co_await s.read_some(std::span<char>(b, 1));
                    got.append(b, k);
                    started.done();
                    for (;;) {
                        k = co_await s.read_some(std::span<char>(b));
                        if (k == 0)
                            co_return got;
                        got.append(b, k);
                    }
                },
                std::move(s)));
            co_await c.write_all(std::string_view("<"));
            clients.push_back(std::move(c));
        }
        co_await started.wait();
        co_await weft::sleep_for(10ms); // every reader is waiting again
        const std::string body = pattern_text(size);
        for (auto& c : clients)
            co_await c.write_all(body);
        for (auto& c : clients)
            c.shutdown_write();
        for (auto& r : readers)
            CHECK(co_await r == "<" + body);
    });
}

TEST_CASE("a large read after small ones, and large reads alone, get every byte")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        const std::size_t total = 3 << 20;
        const std::string sent = pattern_text(total);
        for (bool small_first : {true, false}) {
            auto [c, s] = co_await weft_test::connected_pair(l);
            auto writer = weft::go([&c, &sent]() -> weft::task<> {
                co_await c.write_all(sent);
                c.shutdown_write();
            });
            std::string got;
            std::vector<char> buf(256 * 1024);
            if (small_first) {
                std::size_t n = co_await s.read_some(std::span<char>(buf.data(), 100));
                got.append(buf.data(), n);
            }
            for (;;) {
                std::size_t n = co_await s.read_some(std::span<char>(buf));
                if (n == 0)
                    break;
                got.append(buf.data(), n);
            }
            co_await writer;
            CHECK(got.size() == total);
            CHECK(got == sent);
        }
    });
}

TEST_CASE("closing a stream drops what it received ahead and ends reads with net::closed")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
        auto [c, s] = co_await weft_test::connected_pair(l);
        char b[4];
        co_await c.write_all(std::string_view("0123456789"));
        CHECK(co_await s.read_some(std::span<char>(b)) > 0);
        co_await weft::sleep_for(10ms); // the rest arrives, unread
        s.close();
        CHECK_THROWS_AS((void)co_await s.read_some(std::span<char>(b)), weft::net::closed);
        // The peer sees the connection end.
        CHECK(co_await peer_ended(c));
    });
}
