// An HTTP server on an ephemeral loopback port, for the examples that play
// both server and client in one program. [httptest.NewServer]
#pragma once

#include <weft/http/client.hpp>
#include <weft/http/mux.hpp>
#include <weft/http/server.hpp>
#include <weft/net/tcp.hpp>
#include <weft/weft.hpp>

#include <string>
#include <utility>

namespace seeds {

/// Serves h on 127.0.0.1:PORT from construction until close().
///
/// Lifetime: construct and close it in one task; it does not move.
class local_server {
public:
    explicit local_server(weft::http::handler h)
        : m_server(std::move(h)), m_listener(weft::net::tcp_listener::listen("127.0.0.1:0")),
          m_url("http://" + m_listener.local_address()),
          m_serving(weft::go([this]() -> weft::task<> { co_await m_server.serve(m_listener); }))
    {
    }
    local_server(const local_server&) = delete;
    local_server& operator=(const local_server&) = delete;

    /// "http://127.0.0.1:PORT"
    const std::string& url() const noexcept { return m_url; }

    /// Stops accepting and waits for the requests in flight.
    weft::task<> close()
    {
        co_await m_server.shutdown();
        co_await m_serving;
    }

private:
    weft::http::server m_server;
    weft::net::tcp_listener m_listener;
    std::string m_url;
    weft::join_handle<void> m_serving;
};

} // namespace seeds
