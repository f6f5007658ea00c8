// An HTTP/1.1 server. [net/http]
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <weft/context.hpp>
#include <weft/net/tcp.hpp>
#include <weft/task.hpp>

namespace weft::http {

/// The reason phrase of a status code ("Not Found"), "" if unknown.
std::string_view status_text(int status) noexcept;

/// True if a and b are equal ignoring ASCII case (header names).
bool iequals(std::string_view a, std::string_view b) noexcept;

/// Response header fields, in the order set. Names compare without regard
/// to ASCII case. Values must not contain CR or LF (set() and add() throw
/// std::invalid_argument: a header must never split a response).
class headers {
public:
    /// Replaces every field named name with one.
    void set(std::string_view name, std::string_view value);
    /// Adds a field (a second Set-Cookie, ...).
    void add(std::string_view name, std::string_view value);
    void remove(std::string_view name) noexcept;
    /// The first value of name, or "" (check has() to tell an empty value).
    std::string_view get(std::string_view name) const noexcept;
    bool has(std::string_view name) const noexcept;
    std::size_t size() const noexcept { return m_count; }
    std::pair<std::string_view, std::string_view> operator[](std::size_t i) const noexcept
    {
        return {m_fields[i].first, m_fields[i].second};
    }
    /// Removes every field; keeps the storage for the next response.
    void clear() noexcept { m_count = 0; }

private:
    // Slots beyond m_count keep their strings' capacity for reuse.
    std::vector<std::pair<std::string, std::string>> m_fields;
    std::size_t m_count = 0;
};

namespace detail {
struct request_state;
struct conn;
} // namespace detail

/// One request, as the handler sees it.
///
/// Lifetime: the string_views point into the connection's buffer and are
///   valid until the handler returns; copy what must outlive it.
/// Thread safety: for the handler's task; other tasks may use context().
class request {
public:
    std::string_view method() const noexcept;
    /// The request-target as sent: "/search?q=weft".
    std::string_view target() const noexcept;
    /// The path of the target, not decoded: "/search".
    std::string_view path() const noexcept;
    /// The query after '?', not decoded: "q=weft".
    std::string_view query() const noexcept;
    /// The value of a query parameter (decoded: '+' and %XX), "" if absent.
    std::string query_value(std::string_view name) const;
    /// HTTP/1.<version_minor>.
    int version_minor() const noexcept;
    /// The first value of a header field (ASCII case-insensitive), "" if absent.
    std::string_view header(std::string_view name) const noexcept;
    /// Every header field, in order.
    std::size_t header_count() const noexcept;
    std::pair<std::string_view, std::string_view> header_at(std::size_t i) const noexcept;
    /// The whole body (Content-Length or chunked, decoded), read before the
    /// handler runs and at most server_options::max_body_bytes long.
    std::string_view body() const noexcept;
    /// "1.2.3.4:5678" of the client.
    std::string remote_address() const;
    /// The value a serve_mux pattern's wildcard ("/users/{id}") matched, "".
    std::string_view path_value(std::string_view name) const noexcept;

    /// Cancelled when the client disconnects, when the handler returns, and
    /// when the server's shutdown gives up waiting. The handler's own
    /// blocking operations obey it once it has been asked for (the first
    /// call starts watching the connection; handlers that never ask pay
    /// nothing).
    const weft::context& context();

    /// This request with ctx as its context() [r.WithContext]: how a
    /// middleware hands request-scoped values to the handler it wraps,
    ///     auto inner = r.with_context(weft::with_value(r.context(), user_key, id));
    ///     co_await next(w, inner);
    /// ctx should descend from context(), so that it still ends when the
    /// client goes away or the handler returns. The running task's context
    /// does not change: its blocking operations obey the request's context
    /// once that was asked for (above), never ctx itself. Both handles refer
    /// to the same request (views, body, path values).
    request with_context(weft::context ctx) const;

    /// Internal.
    explicit request(detail::request_state& s) noexcept : m_s(&s) {}

private:
    friend class serve_mux;
    detail::request_state* m_s;
    weft::context m_ctx; // with_context's, if m_has_ctx
    bool m_has_ctx = false;
};

/// Builds the response. The status and headers go out with the first
/// flush() or when the handler returns; until then they can change.
///
/// Bodies: write() appends to a buffer. Without flush(), the response gets
/// a Content-Length and goes out in one piece when the handler returns
/// (together with the other responses of a pipelined batch). flush() sends
/// what is buffered now; a response flushed before its end, with no
/// Content-Length set, is sent chunked (streaming).
///
/// Thread safety: for the handler's task.
class response_writer {
public:
    /// 200 unless set; set it before the first flush().
    void set_status(int status) noexcept { m_status = status; }
    int status() const noexcept { return m_status; }
    weft::http::headers& headers() noexcept { return m_headers; }

    void write(std::string_view data) { m_body.append(data); }
    /// Sends the head (once) and the body buffered so far.
    task<> flush();
    /// True once the head was sent (set_status and headers() no longer matter).
    bool head_sent() const noexcept { return m_head_sent; }

    /// Internal.
    explicit response_writer(detail::request_state& s) noexcept : m_s(&s) {}

private:
    friend struct detail::conn;
    void reset() noexcept;

    detail::request_state* m_s;
    weft::http::headers m_headers;
    std::string m_body;
    int m_status = 200;
    bool m_head_sent = false;
    bool m_chunked = false;
};

/// A request handler: runs in the connection's task, once per request.
using handler = std::function<task<>(response_writer&, request&)>;

/// Writes a complete plain-text response (status, its text as the body
/// unless given): error replies for handlers.
void error(response_writer& w, int status, std::string_view message = {});

struct server_options {
    /// Request line plus header fields, bytes; beyond it: 431.
    std::size_t max_header_bytes = 16 * 1024;
    /// Request body bytes; beyond it: 413.
    std::size_t max_body_bytes = 8 * 1024 * 1024;
    /// From the first byte of a request to the end of its head (and its
    /// body); beyond it: 408 and the connection closes.
    std::chrono::milliseconds read_header_timeout{10'000};
    /// A keep-alive connection waiting for its next request is closed
    /// after this long.
    std::chrono::milliseconds idle_timeout{60'000};
    // Both timeouts take effect late by at most an eighth of their length
    // (and at most 250 ms): the connection's timer then stays armed across
    // the requests of a busy keep-alive connection instead of being moved
    // for each.
    /// The context handlers' request contexts descend from.
    weft::context base_context;
};

/// Serves HTTP/1.1 on listeners: one task per connection, keep-alive and
/// pipelining (every request already received is answered before the
/// responses go out in one send).
///
/// Thread safety: serve() may run on several listeners at once; shutdown()
///   from any task.
/// Errors: malformed requests get 400, 408, 413, 431, 501 or 505 and the
///   connection closes; the server goes on serving the others. Accept errors
///   (EMFILE, ...) are logged to the "weft" logger and the accept loop backs
///   off briefly.
class server {
public:
    explicit server(handler h, server_options opts = {});
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Listens on address and serves until shutdown().
    task<> listen_and_serve(std::string address);
    /// Serves l until shutdown() (which closes it).
    task<> serve(net::tcp_listener& l);

    /// Graceful stop: stops accepting, closes idle connections, lets the
    /// requests in progress finish, and returns when every connection is
    /// closed. If ctx ends first, cancels what is left (request contexts
    /// and reads), waits for it to unwind, and throws canceled_error.
    task<> shutdown(weft::context ctx = {});

    /// Connections open now.
    std::size_t connections() const noexcept;

    struct impl; // internal

private:
    std::shared_ptr<impl> m_impl;
};

} // namespace weft::http
