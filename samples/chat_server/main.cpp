// A chat server, after the chat of chapter 8 of "The Go Programming
// Language": one controller task owns the set of clients; clients talk
// newline-delimited JSON over TCP.
//
//   chat_server [address]       (default 127.0.0.1:9100)
//
// A client sends {"text":"hello"} lines and receives
//   {"type":"welcome","you":"user-1"}
//   {"type":"join","who":"user-2"}
//   {"type":"message","from":"user-2","text":"hello"}
//   {"type":"leave","who":"user-2"}
// A client that does not keep up (its queue of 64 messages is full) is
// evicted, so one slow reader never holds the others back.
//   try it:  nc 127.0.0.1 9100, then type {"text":"hi"}

#include <weft/weft.hpp>
#include <weft/net/tcp.hpp>

#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <sys/socket.h>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t k_queue = 64;
constexpr std::size_t k_max_line = 4096;

struct client {
    std::string name;
    weft::chan<std::string> out; // what the client's writer sends
    std::shared_ptr<weft::net::tcp_stream> conn;
};

struct events {
    weft::chan<client> entering = weft::make_chan<client>();
    weft::chan<std::string> leaving = weft::make_chan<std::string>();
    weft::chan<std::string> messages = weft::make_chan<std::string>(256);
    weft::chan<int> quit = weft::make_chan<int>(); // closed when the server stops
};

std::string quote(std::string_view s)
{
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out.append(buf);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    return out + "\"";
}

// The "text" member of a flat JSON object of strings, or nullopt if the
// line is not one.
std::optional<std::string> text_of(std::string_view line)
{
    std::size_t i = 0;
    auto ws = [&] {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            ++i;
    };
    auto string = [&]() -> std::optional<std::string> {
        if (i >= line.size() || line[i] != '"')
            return std::nullopt;
        std::string s;
        for (++i; i < line.size(); ++i) {
            char c = line[i];
            if (c == '"') {
                ++i;
                return s;
            }
            if (c == '\\') {
                if (++i >= line.size())
                    return std::nullopt;
                switch (line[i]) {
                case 'n': s.push_back('\n'); break;
                case 't': s.push_back('\t'); break;
                case '"': case '\\': case '/': s.push_back(line[i]); break;
                default: return std::nullopt;
                }
            } else if (static_cast<unsigned char>(c) < 0x20) {
                return std::nullopt;
            } else {
                s.push_back(c);
            }
        }
        return std::nullopt;
    };
    std::optional<std::string> text;
    ws();
    if (i >= line.size() || line[i++] != '{')
        return std::nullopt;
    ws();
    if (i < line.size() && line[i] == '}')
        return std::nullopt;
    for (;;) {
        ws();
        auto key = string();
        ws();
        if (!key || i >= line.size() || line[i++] != ':')
            return std::nullopt;
        ws();
        auto value = string();
        if (!value)
            return std::nullopt;
        if (*key == "text")
            text = std::move(value);
        ws();
        if (i < line.size() && line[i] == ',') {
            ++i;
            continue;
        }
        if (i < line.size() && line[i] == '}') {
            ++i;
            ws();
            return i == line.size() ? text : std::nullopt;
        }
        return std::nullopt;
    }
}

// The controller: the only task that touches the client set.
weft::task<> broadcaster(events& ev)
{
    std::map<std::string, client> clients;
    auto broadcast = [&](const std::string& msg) {
        for (auto it = clients.begin(); it != clients.end();) {
            if (it->second.out.try_send(msg)) {
                ++it;
                continue;
            }
            // Its queue is full: evict it rather than wait for it.
            std::printf("evicting %s: too slow\n", it->first.c_str());
            std::fflush(stdout);
            it->second.out.close();
            it->second.conn->close();
            it = clients.erase(it);
        }
    };
    for (;;) {
        auto r = co_await weft::select(ev.entering.recv(), ev.leaving.recv(), ev.messages.recv(),
                                       ev.quit.recv());
        if (r.index() == 3)
            break; // the server is stopping
        if (r.index() == 0) {
            auto& c = std::get<0>(r);
            broadcast("{\"type\":\"join\",\"who\":" + quote(c->name) + "}");
            std::string name = c->name;
            clients.emplace(std::move(name), std::move(*c));
        } else if (r.index() == 1) {
            auto& who = std::get<1>(r);
            auto it = clients.find(*who);
            if (it == clients.end())
                continue; // evicted already
            it->second.out.close();
            clients.erase(it);
            broadcast("{\"type\":\"leave\",\"who\":" + quote(*who) + "}");
        } else if (auto& msg = std::get<2>(r)) {
            broadcast(*msg);
        }
    }
    for (auto& [name, c] : clients) {
        c.out.close();
        c.conn->close();
    }
}

// Sends the client's queue until the controller closes it (the client left
// or was evicted) or the server stops.
weft::task<> writer(std::shared_ptr<weft::net::tcp_stream> conn, weft::chan<std::string> out,
                    weft::chan<int> quit)
{
    try {
        for (;;) {
            auto r = co_await weft::select(out.recv(), quit.recv());
            if (r.index() == 1 || !std::get<0>(r))
                break;
            std::string& msg = *std::get<0>(r);
            msg += '\n';
            co_await conn->write_all(msg);
        }
    } catch (const std::exception&) {
        conn->close(); // the reader notices and leaves
    }
}

weft::task<> handle(weft::net::tcp_stream stream, std::string name, events& ev)
{
    // A small kernel send buffer bounds what a client that stops reading
    // can hold up before its queue fills and it is evicted.
    int sndbuf = 32 * 1024;
    ::setsockopt(stream.native_handle(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    auto conn = std::make_shared<weft::net::tcp_stream>(std::move(stream));
    auto out = weft::make_chan<std::string>(k_queue);
    (void)out.try_send("{\"type\":\"welcome\",\"you\":" + quote(name) + "}");
    auto w = weft::go(writer, conn, out, ev.quit);
    // Every send to the controller gives up once the server stops.
    // (A named value, not client{...} inside the co_await: g++ 12 destroys
    // an aggregate temporary there twice.)
    client me{name, out, conn};
    co_await weft::select(ev.entering.send(std::move(me)), ev.quit.recv());

    std::string buf;
    char chunk[1024];
    try {
        for (;;) {
            std::size_t n = co_await conn->read_some(std::span<char>(chunk));
            if (n == 0)
                break;
            buf.append(chunk, n);
            std::size_t nl;
            while ((nl = buf.find('\n')) != std::string::npos) {
                std::string line = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                if (auto text = text_of(line))
                    co_await weft::select(ev.messages.send("{\"type\":\"message\",\"from\":" +
                                                           quote(name) + ",\"text\":" + quote(*text) +
                                                           "}"),
                                          ev.quit.recv());
                else
                    (void)out.try_send("{\"type\":\"error\",\"error\":\"expected {\\\"text\\\":...}\"}");
            }
            if (buf.size() > k_max_line)
                break; // a line without end: not a chat client
        }
    } catch (const std::exception&) {
        // reset, closed by an eviction, ...
    }
    co_await weft::select(ev.leaving.send(name), ev.quit.recv());
    conn->close();
    co_await w;
}

} // namespace

int main(int argc, char** argv)
{
    const std::string address = argc > 1 ? argv[1] : "127.0.0.1:9100";
    weft::run([&]() -> weft::task<> {
        auto listener = weft::net::tcp_listener::listen(address);
        std::printf("chat server on %s (Ctrl-C stops it)\n", listener.local_address().c_str());
        std::fflush(stdout);
        events ev;
        auto controller = weft::go(broadcaster, std::ref(ev));
        auto [stop_ctx, stop] = weft::signal_context(weft::background(), {SIGINT, SIGTERM});
        weft::wait_group clients;
        co_await weft::go(stop_ctx, [&]() -> weft::task<> {
            for (int id = 1;; ++id) {
                weft::net::tcp_stream conn;
                try {
                    conn = co_await listener.accept();
                } catch (const weft::canceled_error&) {
                    co_return;
                } catch (const std::system_error& e) {
                    std::fprintf(stderr, "accept: %s\n", e.what());
                }
                if (!conn.is_open()) {
                    co_await weft::sleep_for(10ms);
                    continue;
                }
                clients.go([&ev](weft::net::tcp_stream c, std::string name) -> weft::task<> {
                    co_await handle(std::move(c), std::move(name), ev);
                }, std::move(conn), "user-" + std::to_string(id));
            }
        });
        listener.close();
        ev.quit.close(); // the controller closes every client
        co_await controller;
        co_await clients.wait();
        std::printf("stopped\n");
    });
}
