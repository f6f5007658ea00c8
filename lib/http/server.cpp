// The HTTP/1.1 server.
//
// One task per connection (conn::run). The connection reads into one
// buffer; every complete request in it is parsed (lib/http/parser), its
// body framed, its handler run, and its response appended to the output
// buffer; the output goes out in one send when the connection runs out of
// buffered requests (so a pipelined batch is answered with one write), when
// a handler flushes, or when the connection closes.
//
// Time limits: a connection waiting for a new request reads under its own
// read context, cancelled by a per-connection after_func timer at the idle
// timeout; once the first byte of a request is in, the head and body must
// arrive within read_header_timeout of it.
//
// Shutdown: the server's flag goes up, listeners close, idle connections
// (waiting for a new request with nothing buffered) have their read
// cancelled, and busy ones close after the response in progress.
//
// Invariants:
//   impl::m_lock guards m_conns and m_listeners.
//   conn::m_state is k_idle only while the connection waits for the first
//   byte of a request; a connection sets it before it reads the shutdown
//   flag, and shutdown sets the flag before it scans the states (both
//   seq_cst), so every idle connection is either cancelled or sees the flag.
//   The buffer [m_start, m_end) holds received bytes not yet consumed by a
//   request; the request's views point into it and stay valid while the
//   handler runs (the buffer neither moves nor grows meanwhile; the
//   disconnect watcher only writes at and after m_end).

#include <weft/http/server.hpp>

#include <weft/chan.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/runtime.hpp>
#include <weft/time.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <unordered_set>

#include "../diag/log.hpp"
#include "parser.hpp"
#include "server_detail.hpp"

namespace weft::http {

using namespace std::string_view_literals;

// ----------------------------------------------------------------- helpers

std::string_view status_text(int status) noexcept
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "";
}

bool iequals(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

namespace {

void check_field(std::string_view name, std::string_view value)
{
    if (name.empty())
        throw std::invalid_argument("weft::http::headers: empty field name");
    for (char c : name)
        if (c <= ' ' || c == ':' || c == 127)
            throw std::invalid_argument("weft::http::headers: bad field name");
    for (char c : value)
        if (c == '\r' || c == '\n' || c == '\0')
            throw std::invalid_argument("weft::http::headers: CR, LF or NUL in a field value");
}

} // namespace

void headers::set(std::string_view name, std::string_view value)
{
    check_field(name, value);
    remove(name);
    add(name, value);
}

void headers::add(std::string_view name, std::string_view value)
{
    check_field(name, value);
    if (m_count == m_fields.size())
        m_fields.emplace_back();
    m_fields[m_count].first.assign(name);
    m_fields[m_count].second.assign(value);
    ++m_count;
}

void headers::remove(std::string_view name) noexcept
{
    std::size_t j = 0;
    for (std::size_t i = 0; i < m_count; ++i) {
        if (iequals(m_fields[i].first, name))
            continue;
        if (i != j)
            std::swap(m_fields[i], m_fields[j]);
        ++j;
    }
    m_count = j;
}

std::string_view headers::get(std::string_view name) const noexcept
{
    for (std::size_t i = 0; i < m_count; ++i)
        if (iequals(m_fields[i].first, name))
            return m_fields[i].second;
    return {};
}

bool headers::has(std::string_view name) const noexcept
{
    for (std::size_t i = 0; i < m_count; ++i)
        if (iequals(m_fields[i].first, name))
            return true;
    return false;
}

namespace detail {

std::string_view date_now() noexcept
{
    // Formatted at most once a second per thread.
    thread_local char buf[32];
    thread_local std::time_t last = -1;
    std::time_t now = std::time(nullptr);
    if (now != last) {
        last = now;
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
    return buf;
}

std::string percent_decode(std::string_view s, bool plus_is_space)
{
    std::string out;
    out.reserve(s.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%' && i + 2 < s.size()) {
            int h = hex(s[i + 1]);
            int l = hex(s[i + 2]);
            if (h >= 0 && l >= 0) {
                out.push_back(static_cast<char>(h * 16 + l));
                i += 2;
                continue;
            }
        }
        out.push_back(plus_is_space && c == '+' ? ' ' : c);
    }
    return out;
}

bool allows_body(int status) noexcept
{
    return status >= 200 && status != 204 && status != 304;
}

void append_head(std::string& out, response_writer& w, int version_minor, bool keep_alive,
                 bool chunked, bool content_length, std::size_t length)
{
    const int status = w.status();
    char num[24];
    out.append("HTTP/1.1 "sv);
    auto r = std::to_chars(num, num + sizeof num, status);
    out.append(num, r.ptr);
    out.push_back(' ');
    out.append(status_text(status));
    out.append("\r\n"sv);
    auto& h = w.headers();
    if (!h.has("Date")) {
        out.append("Date: "sv);
        out.append(date_now());
        out.append("\r\n"sv);
    }
    for (std::size_t i = 0; i < h.size(); ++i) {
        auto [name, value] = h[i];
        out.append(name);
        out.append(": "sv);
        out.append(value);
        out.append("\r\n"sv);
    }
    if (allows_body(status)) {
        if (!h.has("Content-Type") && (length != 0 || chunked))
            out.append("Content-Type: text/plain; charset=utf-8\r\n"sv);
        if (chunked) {
            out.append("Transfer-Encoding: chunked\r\n"sv);
        } else if (content_length && !h.has("Content-Length")) {
            out.append("Content-Length: "sv);
            r = std::to_chars(num, num + sizeof num, length);
            out.append(num, r.ptr);
            out.append("\r\n"sv);
        }
    }
    if (!keep_alive)
        out.append("Connection: close\r\n"sv);
    else if (version_minor == 0)
        out.append("Connection: keep-alive\r\n"sv);
    out.append("\r\n"sv);
}

void append_chunk(std::string& out, std::string_view data)
{
    if (data.empty())
        return;
    char num[20];
    auto r = std::to_chars(num, num + sizeof num, data.size(), 16);
    out.append(num, r.ptr);
    out.append("\r\n"sv);
    out.append(data);
    out.append("\r\n"sv);
}

} // namespace detail

using detail::conn;
using detail::request_state;

// ----------------------------------------------------------------- request

std::string_view request::method() const noexcept { return m_s->m_head->method; }
std::string_view request::target() const noexcept { return m_s->m_head->target; }
std::string_view request::path() const noexcept { return m_s->m_path; }
std::string_view request::query() const noexcept { return m_s->m_query; }
int request::version_minor() const noexcept { return m_s->m_head->version_minor; }
std::string_view request::header(std::string_view name) const noexcept
{
    return m_s->m_head->field(name);
}
std::size_t request::header_count() const noexcept { return m_s->m_head->field_count; }
std::pair<std::string_view, std::string_view> request::header_at(std::size_t i) const noexcept
{
    return {m_s->m_head->fields[i].name, m_s->m_head->fields[i].value};
}
std::string_view request::body() const noexcept { return m_s->m_body; }
std::string request::remote_address() const { return m_s->m_conn->m_stream.remote_address(); }

std::string_view request::path_value(std::string_view name) const noexcept
{
    for (auto& [n, v] : m_s->m_path_values)
        if (n == name)
            return v;
    return {};
}

std::string request::query_value(std::string_view name) const
{
    std::string_view q = m_s->m_query;
    while (!q.empty()) {
        auto amp = q.find('&');
        std::string_view pair = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        auto eq = pair.find('=');
        std::string_view k = pair.substr(0, eq);
        std::string_view v = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        if (detail::percent_decode(k, true) == name)
            return detail::percent_decode(v, true);
    }
    return {};
}

const weft::context& request::context()
{
    return m_has_ctx ? m_ctx : m_s->m_conn->request_context();
}

request request::with_context(weft::context ctx) const
{
    request r(*m_s);
    r.m_ctx = std::move(ctx);
    r.m_has_ctx = true;
    return r;
}

// ---------------------------------------------------------- response_writer

void response_writer::reset() noexcept
{
    m_headers.clear();
    m_body.clear();
    m_status = 200;
    m_head_sent = false;
    m_chunked = false;
}

task<> response_writer::flush() { return m_s->m_conn->flush(*this); }

void error(response_writer& w, int status, std::string_view message)
{
    w.set_status(status);
    w.headers().set("Content-Type", "text/plain; charset=utf-8");
    w.headers().set("X-Content-Type-Options", "nosniff");
    if (message.empty())
        message = status_text(status);
    w.write(message);
    w.write("\n");
}

// ------------------------------------------------------------------ server

server::server(handler h, server_options opts)
    : m_impl(std::make_shared<impl>(std::move(h), std::move(opts)))
{
    if (!m_impl->m_handler)
        throw std::invalid_argument("weft::http::server: no handler");
}

server::~server() = default;

std::size_t server::connections() const noexcept
{
    std::lock_guard lk(m_impl->m_lock);
    return m_impl->m_conns.size();
}

task<> server::listen_and_serve(std::string address)
{
    auto l = net::tcp_listener::listen(address);
    co_await serve(l);
}

task<> server::serve(net::tcp_listener& l)
{
    std::shared_ptr<impl> s = m_impl;
    {
        std::lock_guard lk(s->m_lock);
        if (s->m_shutdown.load())
            throw std::logic_error("weft::http::server: serve after shutdown");
        s->m_listeners.insert(&l);
    }
    struct unlist {
        impl* s;
        net::tcp_listener* l;
        ~unlist()
        {
            std::lock_guard lk(s->m_lock);
            s->m_listeners.erase(l);
        }
    } guard{s.get(), &l};
    auto backoff = std::chrono::milliseconds(0);
    for (;;) {
        net::tcp_stream stream;
        try {
            stream = co_await l.accept();
            backoff = std::chrono::milliseconds(0);
        } catch (const net::closed&) {
            co_return;
        } catch (const std::system_error& e) {
            // EMFILE, ENFILE, ENOBUFS...: the listener is fine; wait a
            // little for descriptors to free up (as Go's Serve does).
            if (s->m_shutdown.load())
                co_return;
            backoff = backoff.count() ? std::min(backoff * 2, std::chrono::milliseconds(1000))
                                      : std::chrono::milliseconds(5);
            weft::detail::log(weft::detail::log_level::error,
                              std::string("http: accept error: ") + e.what() + "; retrying in " +
                                  std::to_string(backoff.count()) + " ms");
        }
        if (!stream.is_open()) {
            co_await sleep_for(backoff);
            continue;
        }
        auto c = std::make_unique<conn>(s, std::move(stream));
        conn* raw = c.get();
        {
            std::lock_guard lk(s->m_lock);
            s->m_conns.insert(raw);
        }
        go(s->m_opts.base_context, [](std::unique_ptr<conn> c) -> task<> { co_await c->run(); },
           std::move(c));
    }
}

task<> server::shutdown(weft::context ctx)
{
    std::shared_ptr<impl> s = m_impl;
    s->m_shutdown.store(true, std::memory_order_seq_cst);
    {
        std::lock_guard lk(s->m_lock);
        for (auto l : s->m_listeners)
            l->close();
        for (auto c : s->m_conns)
            if (c->m_state.load(std::memory_order_seq_cst) == conn::k_idle)
                c->m_read_cancel();
    }
    auto wait = std::chrono::milliseconds(1);
    for (;;) {
        {
            std::lock_guard lk(s->m_lock);
            if (s->m_conns.empty())
                co_return;
            if (ctx.err())
                break;
        }
        co_await sleep_for(wait);
        wait = std::min(wait * 2, std::chrono::milliseconds(50));
    }
    // Out of time: end what is left and wait for it to unwind.
    {
        std::lock_guard lk(s->m_lock);
        for (auto c : s->m_conns)
            c->abort();
    }
    for (;;) {
        {
            std::lock_guard lk(s->m_lock);
            if (s->m_conns.empty())
                break;
        }
        co_await sleep_for(std::chrono::milliseconds(1));
    }
    throw canceled_error(ctx.err());
}

// -------------------------------------------------------------- connection

namespace detail {

conn::conn(std::shared_ptr<server::impl> s, net::tcp_stream stream)
    : m_srv(std::move(s)), m_stream(std::move(stream)), m_rs(*this), m_writer(m_rs)
{
    auto [ctx, cancel] = with_cancel(weft::context());
    m_read_ctx = ctx;
    m_read_cancel = cancel;
    m_deadline = after_func(std::chrono::hours(24), [cancel, rd = m_rd] {
        rd->fired.store(true, std::memory_order_seq_cst);
        const std::int64_t due = rd->due.load(std::memory_order_seq_cst);
        if (due != 0 && weft::detail::now_ns() >= due) {
            rd->timed_out.store(true);
            cancel();
        }
        // Otherwise no read waits, or the waiting one's deadline is later:
        // it armed the timer again or will (see read_deadline).
    });
    m_deadline.stop();
}

conn::~conn()
{
    m_deadline.stop();
    std::lock_guard lk(m_srv->m_lock);
    m_srv->m_conns.erase(this);
}

void conn::abort() noexcept
{
    m_read_cancel();
    if (m_rs.m_ctx_cancel_set)
        m_rs.m_ctx_cancel();
    m_stream.close();
}

// Swaps the running task's context for the duration of a scope: reads run
// under the read context, handlers under their request's.
struct context_swap {
    weft::detail::task_header* m_task;
    weft::detail::context_node* m_saved;
    context_swap(weft::detail::task_header* t, weft::detail::context_node* n) noexcept
        : m_task(t), m_saved(t->m_ctx)
    {
        t->m_ctx = n;
    }
    ~context_swap() { m_task->m_ctx = m_saved; }
    context_swap(const context_swap&) = delete;
    context_swap& operator=(const context_swap&) = delete;
};

void conn::ensure_space(std::size_t want)
{
    // Room for `want` more bytes at m_end: compact, else grow.
    if (m_cap - m_end >= want)
        return;
    if (m_start > 0) {
        std::memmove(m_buf.get(), m_buf.get() + m_start, m_end - m_start);
        m_end -= m_start;
        m_start = 0;
        m_moved = true;
        if (m_cap - m_end >= want)
            return;
    }
    std::size_t cap = std::max<std::size_t>(m_cap * 2, 4096);
    while (cap - m_end < want)
        cap *= 2;
    auto nb = std::make_unique<char[]>(cap);
    if (m_end > 0) // the first buffer: nothing to copy from a null one
        std::memcpy(nb.get(), m_buf.get(), m_end);
    m_buf = std::move(nb);
    m_cap = cap;
    m_moved = true;
}

task<std::size_t> conn::read_more(std::int64_t& deadline, std::int64_t timeout_ns)
{
    ensure_space(4096);
    // One clock reading per wait: it starts the deadline if need be and
    // arms the timer for it.
    const auto now = weft::detail::now_ns();
    if (!deadline)
        deadline = now + timeout_ns;
    if (deadline <= now) {
        m_rd->timed_out.store(true);
        throw canceled_error(make_error_code(errc::deadline_exceeded));
    }
    // Late by at most an eighth of the timeout, and by at most 250 ms.
    const std::int64_t slack = std::min<std::int64_t>(timeout_ns / 8, 250'000'000);
    m_rd->due.store(deadline, std::memory_order_seq_cst);
    if (m_rd->fired.load(std::memory_order_seq_cst) || m_armed_at < deadline ||
        m_armed_at - deadline > slack) {
        m_rd->fired.store(false, std::memory_order_relaxed);
        m_armed_at = deadline + slack;
        weft::detail::timer_reset_at(m_deadline, m_armed_at);
    }
    struct no_read_waits {
        read_deadline* rd;
        ~no_read_waits() { rd->due.store(0, std::memory_order_relaxed); }
    } done{m_rd.get()};
    std::size_t n;
    {
        context_swap swap(m_task, m_read_ctx.node());
        n = co_await m_stream.read_some(std::span<char>(m_buf.get() + m_end, m_cap - m_end));
    }
    m_end += n;
    co_return n;
}

task<> conn::send_out()
{
    if (m_out.empty())
        co_return;
    co_await m_stream.write_all(m_out);
    m_out.clear();
    if (m_out.capacity() > 1 << 20)
        m_out.shrink_to_fit();
}

task<> conn::reply_error(int status)
{
    response_writer& w = m_writer;
    w.reset();
    error(w, status);
    append_head(m_out, w, 1, false, false, true, w.m_body.size());
    m_out.append(w.m_body);
    co_await send_out();
}

const weft::context& conn::request_context()
{
    request_state& rs = m_rs;
    if (rs.m_ctx_cancel_set)
        return rs.m_ctx;
    auto [ctx, cancel] = with_cancel(m_srv->m_opts.base_context);
    rs.m_ctx = ctx;
    rs.m_ctx_cancel = cancel;
    rs.m_ctx_cancel_set = true;
    // The handler's own blocking operations obey it from now on.
    if (weft::detail::current_task() == m_task) {
        rs.m_saved_ctx = m_task->m_ctx;
        rs.m_swapped = true;
        m_task->m_ctx = ctx.node();
    }
    // Watch the connection meanwhile: end of stream or an error means the
    // client is gone. Bytes that arrive (a pipelined request) stay for the
    // next round.
    if (m_cap > m_end) {
        rs.m_watch = go(ctx, [](conn* c) -> task<std::size_t> {
            std::size_t n = 0;
            try {
                n = co_await c->m_stream.read_some(
                    std::span<char>(c->m_buf.get() + c->m_end, c->m_cap - c->m_end));
            } catch (const canceled_error&) {
                co_return 0;
            } catch (const std::exception&) {
                c->m_rs.m_ctx_cancel();
                c->m_peer_gone = true;
                co_return 0;
            }
            if (n == 0) {
                c->m_rs.m_ctx_cancel();
                c->m_peer_gone = true;
            }
            co_return n;
        }, this);
        rs.m_watching = true;
    }
    return rs.m_ctx;
}

task<> conn::end_request()
{
    request_state& rs = m_rs;
    if (rs.m_swapped) {
        m_task->m_ctx = rs.m_saved_ctx;
        rs.m_swapped = false;
    }
    if (rs.m_ctx_cancel_set) {
        rs.m_ctx_cancel();
        if (rs.m_watching) {
            rs.m_watching = false;
            m_end += co_await rs.m_watch;
        }
        rs.m_ctx = weft::context();
        rs.m_ctx_cancel = cancel_func();
        rs.m_ctx_cancel_set = false;
    }
    rs.m_path_values.clear();
}

task<> conn::flush(response_writer& w)
{
    if (!w.m_head_sent) {
        const int vm = m_rs.m_head->version_minor;
        const bool has_length = w.headers().has("Content-Length");
        const bool body = allows_body(w.status());
        w.m_chunked = body && !has_length && vm >= 1;
        if (body && !has_length && vm == 0)
            m_keep_alive = false; // HTTP/1.0: the end of the body is the end of the connection
        append_head(m_out, w, vm, m_keep_alive, w.m_chunked, false, 0);
        w.m_head_sent = true;
    }
    if (!m_head_only) {
        if (w.m_chunked)
            append_chunk(m_out, w.m_body);
        else
            m_out.append(w.m_body);
    }
    w.m_body.clear();
    co_await send_out();
}

void conn::finish_response(response_writer& w)
{
    if (!w.m_head_sent) {
        append_head(m_out, w, m_rs.m_head->version_minor, m_keep_alive, false, true,
                    w.m_body.size());
        if (!m_head_only && allows_body(w.status()))
            m_out.append(w.m_body);
    } else if (!m_head_only) {
        if (w.m_chunked) {
            append_chunk(m_out, w.m_body);
            m_out.append("0\r\n\r\n"sv);
        } else {
            m_out.append(w.m_body);
        }
    }
    w.m_body.clear();
}

task<> conn::run()
{
    m_task = weft::detail::current_task();
    try {
        co_await serve();
    } catch (const net::closed&) {
    } catch (const canceled_error&) {
    } catch (const std::system_error&) {
        // ECONNRESET, EPIPE: the client went away.
    }
    if (m_rd->timed_out.load() && m_partial) {
        // A request started but did not arrive in time.
        try {
            co_await reply_error(408);
        } catch (const std::exception&) {
        }
    }
    m_stream.close();
}

task<> conn::serve()
{
    server::impl& srv = *m_srv;
    const server_options& o = srv.m_opts;
    const std::int64_t idle_ns = std::chrono::nanoseconds(o.idle_timeout).count();
    const std::int64_t head_ns = std::chrono::nanoseconds(o.read_header_timeout).count();
    http::detail::parse_limits limits;
    limits.max_head_bytes = o.max_header_bytes;
    http::detail::request_head head;
    request req(m_rs);
    m_rs.m_head = &head;

    for (;;) {
        // 1. A complete request head.
        http::detail::parse_result pr{};
        std::int64_t head_deadline = 0;
        for (;;) {
            if (m_end > m_start) {
                pr = http::detail::parse_request_head(
                    std::string_view(m_buf.get() + m_start, m_end - m_start), head, limits);
                if (pr.status == http::detail::parse_status::complete)
                    break;
                if (pr.status == http::detail::parse_status::error) {
                    co_await reply_error(pr.error_status);
                    co_return;
                }
                if (m_end - m_start >= o.max_header_bytes) {
                    co_await reply_error(431);
                    co_return;
                }
            }
            // About to wait: what the batch produced goes out first.
            co_await send_out();
            const bool idle = m_start == m_end;
            if (idle) {
                m_start = m_end = 0;
                m_partial = false;
                m_state.store(k_idle, std::memory_order_seq_cst);
                if (srv.m_shutdown.load(std::memory_order_seq_cst))
                    co_return;
                std::int64_t idle_deadline = 0;
                if (co_await read_more(idle_deadline, idle_ns) == 0)
                    co_return;
                m_state.store(k_reading, std::memory_order_relaxed);
                m_partial = true;
                // The head's deadline starts with its first wait, if it
                // needs one (most heads arrive whole).
            } else {
                m_partial = true;
                if (co_await read_more(head_deadline, head_ns) == 0)
                    co_return;
            }
        }
        m_state.store(k_active, std::memory_order_relaxed);

        // 2. The body.
        const std::size_t head_len = pr.consumed;
        std::size_t consumed = head_len;
        m_moved = false;
        if (head.framing == http::detail::body_framing::content_length) {
            if (head.content_length > o.max_body_bytes) {
                co_await reply_error(413);
                co_return;
            }
            const std::size_t want = head_len + static_cast<std::size_t>(head.content_length);
            if (head.expect_continue && m_end - m_start < want) {
                m_out.append("HTTP/1.1 100 Continue\r\n\r\n"sv);
                co_await send_out();
            }
            while (m_end - m_start < want) {
                ensure_space(want - (m_end - m_start));
                if (co_await read_more(head_deadline, head_ns) == 0)
                    co_return;
            }
            consumed = want;
        } else if (head.framing == http::detail::body_framing::chunked) {
            if (head.expect_continue) {
                m_out.append("HTTP/1.1 100 Continue\r\n\r\n"sv);
                co_await send_out();
            }
            http::detail::chunked_decoder dec;
            m_chunk_body.clear();
            std::size_t pos = head_len; // relative to m_start
            for (;;) {
                auto r = dec.decode(std::string_view(m_buf.get() + m_start + pos, m_end - m_start - pos));
                pos += r.consumed;
                m_chunk_body.append(r.data);
                if (r.error) {
                    co_await reply_error(400);
                    co_return;
                }
                if (m_chunk_body.size() > o.max_body_bytes) {
                    co_await reply_error(413);
                    co_return;
                }
                if (r.done)
                    break;
                if (m_start + pos == m_end && co_await read_more(head_deadline, head_ns) == 0)
                    co_return;
            }
            consumed = pos;
        }
        // Leave room for the disconnect watcher, then (if the buffer moved)
        // parse the head again so its views point at the bytes' new place.
        if (m_cap - m_end < 1024)
            ensure_space(1024);
        if (m_moved)
            http::detail::parse_request_head(std::string_view(m_buf.get() + m_start, m_end - m_start),
                                             head, limits);
        const char* base = m_buf.get() + m_start;
        m_rs.m_body = head.framing == http::detail::body_framing::content_length
                          ? std::string_view(base + head_len, consumed - head_len)
                      : head.framing == http::detail::body_framing::chunked
                          ? std::string_view(m_chunk_body)
                          : std::string_view();
        auto q = head.target.find('?');
        m_rs.m_path = head.target.substr(0, q);
        m_rs.m_query = q == std::string_view::npos ? std::string_view() : head.target.substr(q + 1);
        m_head_only = head.method == "HEAD";
        m_keep_alive = head.keep_alive && !srv.m_shutdown.load(std::memory_order_relaxed) &&
                       !head.upgrade;
        m_partial = false;

        // 3. The handler.
        response_writer& w = m_writer;
        w.reset();
        bool failed = false, canceled = false;
        std::string what;
        try {
            co_await srv.m_handler(w, req);
        } catch (const std::exception& e) {
            failed = true;
            canceled = dynamic_cast<const canceled_error*>(&e) != nullptr;
            what = e.what();
        }
        co_await end_request(); // the disconnect watcher is done with m_peer_gone
        if (failed) {
            // A handler cancelled because its client left, or because a
            // shutdown ran out of time, is routine; anything else is a bug
            // in the handler.
            const bool routine =
                canceled && (m_peer_gone || srv.m_shutdown.load(std::memory_order_relaxed));
            weft::detail::log(routine ? weft::detail::log_level::debug
                                      : weft::detail::log_level::error,
                              std::string("http: handler for ") + std::string(head.method) + " " +
                                  std::string(head.target) + " threw: " + what);
        }
        if (!w.m_head_sent && srv.m_shutdown.load(std::memory_order_relaxed))
            m_keep_alive = false;
        if (failed) {
            if (w.m_head_sent)
                co_return; // the response is cut short: the client sees it broken
            w.reset();
            error(w, 500);
        }
        finish_response(w);
        m_start += consumed;
        if (!m_keep_alive || m_peer_gone || srv.m_shutdown.load(std::memory_order_relaxed)) {
            co_await send_out();
            co_return;
        }
        if (m_out.size() >= 64 * 1024)
            co_await send_out();
    }
}

} // namespace detail

} // namespace weft::http
