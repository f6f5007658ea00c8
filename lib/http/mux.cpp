// serve_mux and the stock middleware.
//
// Routes are kept in registration order and all are tried: a request
// matches few, and specificity (not order) picks among them. The mux is
// read-only while serving.

#include <weft/http/mux.hpp>

#include <weft/semaphore.hpp>

#include <algorithm>
#include <stdexcept>

#include "server_detail.hpp"

namespace weft::http {

namespace {

enum class seg_kind : std::uint8_t { literal, wildcard, rest, end };

struct segment {
    seg_kind kind;
    std::string text; // literal text, or the wildcard's name
};

std::vector<std::string_view> split_path(std::string_view path)
{
    // "/a/b/" -> {"a", "b", ""}; "/" -> {""}
    std::vector<std::string_view> out;
    std::size_t i = 1;
    for (;;) {
        auto slash = path.find('/', i);
        if (slash == std::string_view::npos) {
            out.push_back(path.substr(i));
            return out;
        }
        out.push_back(path.substr(i, slash - i));
        i = slash + 1;
    }
}

// Go's path.Clean for URL paths, keeping a trailing slash.
std::string clean_path(std::string_view p)
{
    if (p.empty())
        return "/";
    std::vector<std::string_view> parts;
    std::size_t i = 0;
    while (i < p.size()) {
        while (i < p.size() && p[i] == '/')
            ++i;
        auto j = p.find('/', i);
        if (j == std::string_view::npos)
            j = p.size();
        std::string_view part = p.substr(i, j - i);
        if (part == "..") {
            if (!parts.empty())
                parts.pop_back();
        } else if (!part.empty() && part != ".") {
            parts.push_back(part);
        }
        i = j;
    }
    std::string out;
    for (auto part : parts) {
        out.push_back('/');
        out.append(part);
    }
    if (out.empty())
        return "/";
    auto last = p.substr(p.rfind('/') + 1);
    if (p.back() == '/' || last == "." || last == "..")
        out.push_back('/');
    return out;
}

} // namespace

struct serve_mux::route {
    std::string pattern;
    std::string method; // "" for any
    std::string host;   // "" for any
    std::vector<segment> segs;
    bool subtree = false; // ends in '/' without {$}
    handler h;

    // True if path (split) is this pattern itself rather than something
    // inside its subtree (Go's exactMatch).
    bool exact(const std::vector<std::string_view>& parts) const
    {
        const bool multi = subtree || (!segs.empty() && segs.back().kind == seg_kind::rest);
        if (!multi)
            return true;
        if (!parts.back().empty())
            return false;
        return subtree && parts.size() == segs.size() + 1;
    }

    // Fills values and returns true if this route serves path (ignoring the
    // method).
    bool match_path(const std::vector<std::string_view>& parts,
                    std::vector<std::pair<std::string_view, std::string_view>>* values,
                    std::string_view path) const
    {
        std::size_t n = segs.size();
        if (subtree) {
            // segs excludes the trailing empty segment: parts must have
            // more than n elements (the rest is the subtree).
            if (parts.size() <= n)
                return false;
        } else if (!segs.empty() && segs.back().kind == seg_kind::rest) {
            if (parts.size() < n)
                return false;
        } else if (parts.size() != n) {
            return false;
        }
        for (std::size_t i = 0; i < n; ++i) {
            const segment& s = segs[i];
            switch (s.kind) {
            case seg_kind::literal:
                if (parts[i] != s.text)
                    return false;
                break;
            case seg_kind::wildcard:
                if (parts[i].empty())
                    return false;
                if (values)
                    values->emplace_back(s.text, parts[i]);
                break;
            case seg_kind::rest:
                if (values) {
                    // From this segment to the end of the path.
                    const char* from = parts[i].data();
                    values->emplace_back(s.text,
                                         std::string_view(from, path.data() + path.size() - from));
                }
                return true;
            case seg_kind::end:
                if (!parts[i].empty())
                    return false;
                break;
            }
        }
        return true;
    }
};

serve_mux::serve_mux() = default;

void serve_mux::handle(std::string_view pattern, handler h)
{
    if (!h)
        throw std::invalid_argument("weft::http::serve_mux: no handler for " + std::string(pattern));
    auto r = std::make_shared<route>();
    r->pattern = std::string(pattern);
    r->h = std::move(h);
    std::string_view p = pattern;
    auto bad = [&](const char* why) {
        throw std::invalid_argument("weft::http::serve_mux: bad pattern \"" +
                                    std::string(pattern) + "\": " + why);
    };
    if (auto sp = p.find(' '); sp != std::string_view::npos) {
        r->method = std::string(p.substr(0, sp));
        p = p.substr(sp + 1);
        while (!p.empty() && p.front() == ' ')
            p.remove_prefix(1);
        for (char c : r->method)
            if (!(c >= 'A' && c <= 'Z') && c != '-')
                bad("bad method");
    }
    auto slash = p.find('/');
    if (slash == std::string_view::npos)
        bad("no path");
    r->host = std::string(p.substr(0, slash));
    std::string_view path = p.substr(slash);
    auto parts = split_path(path);
    for (std::size_t i = 0; i < parts.size(); ++i) {
        std::string_view s = parts[i];
        const bool last = i + 1 == parts.size();
        if (last && s.empty() && parts.size() > 0) {
            // Trailing slash: a subtree (or the root "/").
            r->subtree = true;
            break;
        }
        if (!s.empty() && s.front() == '{') {
            if (s.back() != '}')
                bad("a wildcard must be a whole segment");
            std::string_view name = s.substr(1, s.size() - 2);
            if (name == "$") {
                if (!last && !(i + 2 == parts.size() && parts[i + 1].empty()))
                    bad("{$} must end the pattern");
                r->segs.push_back({seg_kind::end, ""});
                // "/a/{$}": exactly /a/ — the segment before the end is empty.
                r->segs.back().kind = seg_kind::end;
                break;
            }
            bool rest = name.size() > 3 && name.substr(name.size() - 3) == "...";
            if (rest) {
                name.remove_suffix(3);
                if (!last)
                    bad("{name...} must end the pattern");
            }
            if (name.empty())
                bad("empty wildcard name");
            for (auto& seg : r->segs)
                if (seg.kind != seg_kind::literal && seg.text == name)
                    bad("duplicate wildcard name");
            r->segs.push_back({rest ? seg_kind::rest : seg_kind::wildcard, std::string(name)});
        } else {
            if (s.find('{') != std::string_view::npos || s.find('}') != std::string_view::npos)
                bad("a wildcard must be a whole segment");
            r->segs.push_back({seg_kind::literal, std::string(s)});
        }
    }
    for (auto& other : m_routes)
        if (other->method == r->method && other->host == r->host && other->subtree == r->subtree &&
            other->segs.size() == r->segs.size() &&
            std::equal(other->segs.begin(), other->segs.end(), r->segs.begin(),
                       [](const segment& x, const segment& y) {
                           return x.kind == y.kind && (x.kind != seg_kind::literal || x.text == y.text);
                       }))
            throw std::invalid_argument("weft::http::serve_mux: pattern \"" + std::string(pattern) +
                                        "\" conflicts with \"" + other->pattern + "\"");
    m_routes.push_back(std::move(r));
}

namespace {

// Greater is more specific. Compared only between routes that both match
// one request, so their segments line up.
bool more_specific(const serve_mux::route& a, const serve_mux::route& b);

} // namespace

task<> serve_mux::operator()(response_writer& w, request& r) const
{
    std::string_view path = r.path();
    if (path.empty() || path.front() != '/') {
        if (r.method() == "OPTIONS" && r.target() == "*") {
            w.headers().set("Content-Length", "0");
            co_return;
        }
        error(w, 400);
        co_return;
    }
    if (r.method() != "CONNECT") {
        std::string clean = clean_path(path);
        if (clean != path) {
            std::string loc = clean;
            if (!r.query().empty()) {
                loc.push_back('?');
                loc.append(r.query());
            }
            w.headers().set("Location", loc);
            error(w, 301);
            co_return;
        }
    }
    std::string_view host = r.header("Host");
    if (auto colon = host.rfind(':'); colon != std::string_view::npos &&
                                      host.find(']', colon) == std::string_view::npos)
        host = host.substr(0, colon);
    auto parts = split_path(path);
    const route* best = nullptr;
    std::string allow;
    for (auto& rt : m_routes) {
        if (!rt->host.empty() && rt->host != host)
            continue;
        if (!rt->match_path(parts, nullptr, path))
            continue;
        const bool method_ok = rt->method.empty() || rt->method == r.method() ||
                               (rt->method == "GET" && r.method() == "HEAD");
        if (!method_ok) {
            if (allow.find(rt->method) == std::string::npos) {
                if (!allow.empty())
                    allow.append(", ");
                allow.append(rt->method);
                if (rt->method == "GET")
                    allow.append(", HEAD");
            }
            continue;
        }
        if (!best || more_specific(*rt, *best))
            best = rt.get();
    }
    // "/dir" served by a pattern that is not an exact match for it (like
    // "/"), while "/dir/" is registered: redirect there, as Go does.
    if ((!best || !best->exact(parts)) && path.back() != '/') {
        std::string with_slash = std::string(path) + "/";
        auto parts2 = split_path(with_slash);
        for (auto& rt : m_routes) {
            if (rt->subtree && (rt->host.empty() || rt->host == host) && rt->exact(parts2) &&
                rt->match_path(parts2, nullptr, with_slash) &&
                (rt->method.empty() || rt->method == r.method() ||
                 (rt->method == "GET" && r.method() == "HEAD"))) {
                if (!r.query().empty()) {
                    with_slash.push_back('?');
                    with_slash.append(r.query());
                }
                w.headers().set("Location", with_slash);
                error(w, 301);
                co_return;
            }
        }
    }
    if (!best) {
        if (!allow.empty()) {
            w.headers().set("Allow", allow);
            error(w, 405);
            co_return;
        }
        error(w, 404);
        co_return;
    }
    auto& values = r.m_s->m_path_values;
    values.clear();
    best->match_path(parts, &values, path);
    co_await best->h(w, r);
}

handler serve_mux::as_handler() const
{
    return [this](response_writer& w, request& r) { return (*this)(w, r); };
}

namespace {

int rank(seg_kind k) noexcept
{
    switch (k) {
    case seg_kind::literal:
    case seg_kind::end:
        return 3;
    case seg_kind::wildcard:
        return 2;
    case seg_kind::rest:
        return 1;
    }
    return 0;
}

bool more_specific(const serve_mux::route& a, const serve_mux::route& b)
{
    if (a.host.empty() != b.host.empty())
        return !a.host.empty();
    const std::size_t n = std::min(a.segs.size(), b.segs.size());
    for (std::size_t i = 0; i < n; ++i) {
        int ra = rank(a.segs[i].kind), rb = rank(b.segs[i].kind);
        if (ra != rb)
            return ra > rb;
    }
    if (a.segs.size() != b.segs.size())
        return a.segs.size() > b.segs.size();
    if (a.subtree != b.subtree)
        return !a.subtree;
    return !a.method.empty() && b.method.empty();
}

} // namespace

// -------------------------------------------------------------- middleware

handler chain(handler h, std::initializer_list<middleware> ms)
{
    for (auto it = std::rbegin(ms); it != std::rend(ms); ++it)
        h = (*it)(std::move(h));
    return h;
}

middleware max_body(std::size_t max)
{
    return [max](handler next) -> handler {
        return [max, next = std::move(next)](response_writer& w, request& r) -> task<> {
            if (r.body().size() > max) {
                error(w, 413);
                co_return;
            }
            co_await next(w, r);
        };
    };
}

namespace {

std::string base64_decode(std::string_view in)
{
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= 'a' && c <= 'z')
            return c - 'a' + 26;
        if (c >= '0' && c <= '9')
            return c - '0' + 52;
        if (c == '+')
            return 62;
        if (c == '/')
            return 63;
        return -1;
    };
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=')
            break;
        int v = val(c);
        if (v < 0)
            return {};
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

} // namespace

middleware basic_auth(std::string realm,
                      std::function<bool(std::string_view, std::string_view)> check)
{
    return [realm = std::move(realm), check = std::move(check)](handler next) -> handler {
        return [realm, check, next = std::move(next)](response_writer& w, request& r) -> task<> {
            std::string_view auth = r.header("Authorization");
            bool ok = false;
            if (auth.size() > 6 && iequals(auth.substr(0, 6), "Basic ")) {
                std::string creds = base64_decode(auth.substr(6));
                auto colon = creds.find(':');
                if (colon != std::string::npos)
                    ok = check(std::string_view(creds).substr(0, colon),
                               std::string_view(creds).substr(colon + 1));
            }
            if (!ok) {
                w.headers().set("WWW-Authenticate", "Basic realm=\"" + realm + "\", charset=\"UTF-8\"");
                error(w, 401);
                co_return;
            }
            co_await next(w, r);
        };
    };
}

middleware limit_concurrency(std::size_t n, bool reject_when_full)
{
    if (n == 0)
        throw std::invalid_argument("weft::http::limit_concurrency: n must be positive");
    auto sem = std::make_shared<semaphore>(static_cast<std::int64_t>(n));
    return [sem, reject_when_full](handler next) -> handler {
        return [sem, reject_when_full, next = std::move(next)](response_writer& w,
                                                               request& r) -> task<> {
            if (reject_when_full) {
                if (!sem->try_acquire(1)) {
                    w.headers().set("Retry-After", "1");
                    error(w, 503);
                    co_return;
                }
            } else {
                (void)r.context(); // a client that leaves stops waiting
                co_await sem->acquire(1);
            }
            struct release {
                semaphore* s;
                ~release() { s->release(1); }
            } guard{sem.get()};
            co_await next(w, r);
        };
    };
}

} // namespace weft::http
