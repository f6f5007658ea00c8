// Request routing and middleware. [net/http ServeMux]
#pragma once

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <weft/http/server.hpp>

namespace weft::http {

/// Routes requests to handlers by Go 1.22 ServeMux patterns:
///   "/static/"            the subtree: every path starting with /static/
///   "/about"              exactly /about
///   "GET /users/{id}"     a method (GET also serves HEAD) and a wildcard
///                         segment, read with request::path_value("id")
///   "/files/{path...}"    a wildcard for the rest of the path
///   "/{$}"                exactly / (a trailing slash alone means "all")
///   "example.com/"        only requests whose Host is example.com
/// When several patterns match, the most specific wins: a literal segment
/// over a wildcard, a longer match over a shorter, an exact path over a
/// subtree, a pattern with a method or host over one without.
/// Paths that are not clean ("//a/./b/../c") are redirected (301) to their
/// clean form; "/dir" is redirected to "/dir/" when only the subtree is
/// registered. A path that matches with another method gets 405 with an
/// Allow header; nothing matching gets 404. Wildcard values are the path
/// segments as sent (not percent-decoded).
///
/// Thread safety: register every pattern before serving; matching is then
///   read-only and concurrent.
class serve_mux {
public:
    serve_mux();
    /// Throws std::invalid_argument for a malformed pattern or one already
    /// registered.
    void handle(std::string_view pattern, handler h);

    /// Dispatches (a serve_mux is itself a handler).
    task<> operator()(response_writer& w, request& r) const;

    /// A handler that dispatches to this mux; the mux must outlive it.
    handler as_handler() const;

    struct route; // internal

private:
    std::vector<std::shared_ptr<route>> m_routes;
};

/// Wraps a handler with behaviour around it.
using middleware = std::function<handler(handler)>;

/// h wrapped by ms, the first of ms outermost (it sees the request first).
handler chain(handler h, std::initializer_list<middleware> ms);

/// Answers 413 to requests whose body is longer than max (the server's
/// max_body_bytes bounds every request; this tightens it per route).
middleware max_body(std::size_t max);

/// HTTP Basic authentication: 401 with a WWW-Authenticate challenge for
/// requests without credentials that check(user, password) accepts.
middleware basic_auth(std::string realm,
                      std::function<bool(std::string_view user, std::string_view password)> check);

/// At most n requests in the wrapped handler at once; the others wait for
/// a slot (cancellably: a client that leaves stops waiting). With
/// reject_when_full, the others get 503 at once instead.
middleware limit_concurrency(std::size_t n, bool reject_when_full = false);

} // namespace weft::http
