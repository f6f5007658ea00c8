// The HTTP client: one connection per request, "Connection: close".

#include <weft/http/client.hpp>

#include <weft/net/tcp.hpp>

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "parser.hpp"

namespace weft::http {

namespace {

struct url_parts {
    std::string address; // host:port for dial
    std::string host;    // for the Host header
    std::string target;  // path and query
};

url_parts parse_url(std::string_view url)
{
    constexpr std::string_view scheme = "http://";
    if (url.substr(0, scheme.size()) != scheme)
        throw std::invalid_argument("weft::http: only http:// URLs are supported: " + std::string(url));
    url.remove_prefix(scheme.size());
    auto slash = url.find_first_of("/?");
    std::string_view authority = url.substr(0, slash);
    url_parts p;
    // "?q" alone means "/?q". (Copied by hand: GCC 12 warns, wrongly, that
    // string insert and append overlap here under -O2.)
    if (slash == std::string_view::npos) {
        p.target.assign(1, '/');
    } else if (url[slash] == '?') {
        p.target.assign(url.size() - slash + 1, '/');
        std::copy(url.begin() + static_cast<std::ptrdiff_t>(slash), url.end(), p.target.begin() + 1);
    } else {
        p.target = std::string(url.substr(slash));
    }
    if (authority.empty())
        throw std::invalid_argument("weft::http: no host in the URL");
    p.host = std::string(authority);
    const bool has_port = authority.back() != ']' && authority.rfind(':') != std::string_view::npos &&
                          (authority.front() != '[' || authority.rfind(']') < authority.rfind(':'));
    p.address = has_port ? std::string(authority) : std::string(authority) + ":80";
    return p;
}

// Response head parsing, tolerant only where clients must be.
struct head_info {
    int status = 0;
    std::string reason;
    headers fields;
    bool chunked = false;
    bool has_length = false;
    std::uint64_t length = 0;
};

bool parse_head(std::string_view h, head_info& out)
{
    auto eol = h.find("\r\n");
    std::string_view line = h.substr(0, eol);
    if (line.substr(0, 7) != "HTTP/1." || line.size() < 12 || line[8] != ' ')
        return false;
    auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, out.status);
    if (ec != std::errc() || p != line.data() + 12)
        return false;
    out.reason = line.size() > 13 ? std::string(line.substr(13)) : std::string();
    h.remove_prefix(eol + 2);
    while (!h.empty()) {
        eol = h.find("\r\n");
        line = h.substr(0, eol);
        h.remove_prefix(eol == std::string_view::npos ? h.size() : eol + 2);
        if (line.empty())
            break;
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            return false;
        std::string_view name = line.substr(0, colon);
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
            value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
            value.remove_suffix(1);
        try {
            out.fields.add(name, value);
        } catch (const std::invalid_argument&) {
            return false;
        }
        if (iequals(name, "Transfer-Encoding") && value.find("chunked") != std::string_view::npos)
            out.chunked = true;
        if (iequals(name, "Content-Length")) {
            std::uint64_t n = 0;
            auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (e != std::errc() || q != value.data() + value.size())
                return false;
            if (out.has_length && n != out.length)
                return false;
            out.has_length = true;
            out.length = n;
        }
    }
    return true;
}

} // namespace

task<response> fetch(std::string method, std::string url, std::string body, client_options opts)
{
    url_parts u = parse_url(url);
    net::tcp_stream s = co_await net::dial(u.address);
    std::string req;
    req.append(method).append(" ").append(u.target).append(" HTTP/1.1\r\nHost: ");
    req.append(u.host).append("\r\n");
    for (std::size_t i = 0; i < opts.headers.size(); ++i) {
        auto [n, v] = opts.headers[i];
        req.append(n).append(": ").append(v).append("\r\n");
    }
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
        req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    req.append("Connection: close\r\n\r\n");
    req.append(body);
    co_await s.write_all(req);

    std::string buf;
    char chunk[16384];
    auto read_some = [&]() -> task<bool> {
        std::size_t n = co_await s.read_some(std::span<char>(chunk));
        buf.append(chunk, n);
        co_return n != 0;
    };
    head_info info;
    std::size_t head_end;
    for (;;) {
        // Interim 1xx responses come before the real one.
        while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
            if (buf.size() > 64 * 1024)
                throw std::runtime_error("weft::http: response head too long");
            if (!co_await read_some())
                throw std::runtime_error("weft::http: connection closed before the response");
        }
        info = head_info{};
        if (!parse_head(std::string_view(buf).substr(0, head_end + 2), info))
            throw std::runtime_error("weft::http: malformed response head");
        buf.erase(0, head_end + 4);
        if (info.status >= 200 || info.status == 101)
            break;
    }
    response r;
    r.status = info.status;
    r.reason = std::move(info.reason);
    r.headers = std::move(info.fields);
    std::size_t total = 0;
    // data points into buf, which stays put until on_body's task returns.
    auto deliver = [&](std::string_view data) -> task<> {
        total += data.size();
        if (total > opts.max_body_bytes)
            throw std::length_error("weft::http: response body too long");
        if (!opts.on_body)
            r.body.append(data);
        else if (!data.empty())
            co_await opts.on_body(data);
    };
    const bool no_body = method == "HEAD" || info.status == 204 || info.status == 304;
    if (no_body) {
    } else if (info.chunked) {
        detail::chunked_decoder dec;
        for (;;) {
            std::size_t pos = 0;
            bool done = false;
            while (pos < buf.size()) {
                auto res = dec.decode(std::string_view(buf).substr(pos));
                if (res.error)
                    throw std::runtime_error(std::string("weft::http: bad chunked body: ") + res.reason);
                co_await deliver(res.data);
                pos += res.consumed;
                if (res.done) {
                    done = true;
                    break;
                }
                if (res.consumed == 0)
                    break;
            }
            buf.erase(0, pos);
            if (done)
                break;
            if (!co_await read_some())
                throw std::runtime_error("weft::http: connection closed inside a chunked body");
        }
    } else if (info.has_length) {
        for (;;) {
            std::size_t take = std::min<std::uint64_t>(buf.size(), info.length - total);
            co_await deliver(std::string_view(buf).substr(0, take));
            buf.erase(0, take);
            if (total == info.length)
                break;
            if (!co_await read_some())
                throw std::runtime_error("weft::http: connection closed inside the body");
        }
    } else {
        for (;;) {
            co_await deliver(buf);
            buf.clear();
            if (!co_await read_some())
                break;
        }
    }
    co_return r;
}

task<response> get(std::string url) { return fetch("GET", std::move(url)); }

} // namespace weft::http
