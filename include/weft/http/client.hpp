// A minimal HTTP/1.1 client. [net/http Get]
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <weft/http/server.hpp>
#include <weft/task.hpp>

namespace weft::http {

/// A response as the client received it.
struct response {
    int status = 0;
    std::string reason;
    weft::http::headers headers;
    /// The whole body, unless client_options::on_body took it piece by piece.
    std::string body;
};

struct client_options {
    /// Extra request header fields (Host, Content-Length and Connection are
    /// set by the client).
    weft::http::headers headers;
    /// Longest body accepted; beyond it the request throws std::length_error.
    std::size_t max_body_bytes = 64 * 1024 * 1024;
    /// When set, receives the body as it arrives instead of response::body:
    /// called with each piece read (never an empty one), and the task it
    /// returns is awaited before the next read, so a callback that waits
    /// (co_await ch.send(...)) holds the transfer back. The view is valid
    /// until that task returns. An exception it throws ends fetch with it.
    std::function<task<>(std::string_view)> on_body;
};

/// Sends one request on a new connection and reads the response. url is
/// "http://host:port/path?query" (numeric host or localhost; port 80 by
/// default). Obeys the task's context (canceled_error). Throws
/// std::invalid_argument for a URL it cannot use, std::system_error for
/// network errors, std::runtime_error for a malformed response.
task<response> fetch(std::string method, std::string url, std::string body = {},
                     client_options opts = {});

/// fetch("GET", url).
task<response> get(std::string url);

} // namespace weft::http
