#include "../../lib/http/parser.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using namespace std::string_view_literals;
using weft::http::detail::body_framing;
using weft::http::detail::chunked_decoder;
using weft::http::detail::parse_limits;
using weft::http::detail::parse_request_head;
using weft::http::detail::parse_result;
using weft::http::detail::parse_status;
using weft::http::detail::request_head;

namespace {

/// Parses `req` and checks it is refused with `status`.
void check_refused(std::string_view req, int status, const parse_limits& limits = {})
{
    INFO("request: ", std::string(req));
    request_head head;
    const parse_result r = parse_request_head(req, head, limits);
    REQUIRE(r.status == parse_status::error);
    CHECK(r.error_status == status);
    CHECK(std::string_view(r.error) != "");
}

/// Parses `req` and checks it is a complete head of its full length.
void check_accepted(std::string_view req, request_head& head)
{
    INFO("request: ", std::string(req));
    const parse_result r = parse_request_head(req, head);
    INFO("error: ", r.error);
    REQUIRE(r.status == parse_status::complete);
    CHECK(r.consumed == req.size());
}

struct decoded {
    std::string data;
    std::size_t consumed = 0;
    bool done = false;
    bool error = false;
};

/// Feeds `body` to a fresh decoder as a reader would: first the bytes up to
/// cuts[0], then up to cuts[1], ..., then all; unconsumed bytes stay.
decoded decode(std::string_view body, std::vector<std::size_t> cuts = {},
               std::size_t max_line = 4096)
{
    chunked_decoder d(max_line);
    decoded out;
    cuts.push_back(body.size());
    for (std::size_t end : cuts) {
        for (;;) {
            const auto r = d.decode(body.substr(out.consumed, end - out.consumed));
            out.consumed += r.consumed;
            out.data.append(r.data);
            out.done = r.done;
            out.error = r.error;
            if (r.done || r.error)
                return out;
            if (r.consumed == 0)
                break; // read more
        }
    }
    return out;
}

void check_chunked_refused(std::string_view body)
{
    INFO("body: ", std::string(body));
    const decoded d = decode(body);
    CHECK(d.error);
    CHECK(!d.done);
}

const std::string k_get = "GET /index.html?q=1 HTTP/1.1\r\n"
                          "Host: example.com\r\n"
                          "User-Agent: test\r\n"
                          "\r\n";

} // namespace

TEST_CASE("a simple GET is parsed with its method, target, version and fields")
{
    request_head head;
    check_accepted(k_get, head);
    CHECK(head.method == "GET");
    CHECK(head.target == "/index.html?q=1");
    CHECK(head.version_minor == 1);
    REQUIRE(head.field_count == 2);
    CHECK(head.fields[0].name == "Host");
    CHECK(head.fields[0].value == "example.com");
    CHECK(head.fields[1].name == "User-Agent");
    CHECK(head.framing == body_framing::none);
    CHECK(head.keep_alive);
    CHECK(!head.expect_continue);
    CHECK(!head.upgrade);
}

TEST_CASE("field values lose surrounding whitespace and field() ignores the name's case")
{
    request_head head;
    check_accepted("GET / HTTP/1.1\r\nHost:h\r\nX-A: \t a  b \t\r\nX-Empty:\r\nx-a: second\r\n\r\n",
                   head);
    CHECK(head.field("x-A") == "a  b");
    CHECK(head.field("X-EMPTY") == "");
    CHECK(head.field("host") == "h");
    CHECK(head.field("missing").empty());
    CHECK(head.fields[3].name == "x-a");
}

TEST_CASE("pipelined requests parse one after another by advancing past consumed")
{
    const std::string second = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    const std::string third = "GET /last HTTP/1.0\r\n\r\n";
    const std::string all = k_get + second + "hello" + third;
    std::string_view rest = all;
    request_head head;

    parse_result r = parse_request_head(rest, head);
    REQUIRE(r.status == parse_status::complete);
    CHECK(r.consumed == k_get.size());
    CHECK(head.target == "/index.html?q=1");
    rest.remove_prefix(r.consumed);

    r = parse_request_head(rest, head);
    REQUIRE(r.status == parse_status::complete);
    CHECK(r.consumed == second.size());
    CHECK(head.method == "POST");
    CHECK(head.framing == body_framing::content_length);
    CHECK(head.content_length == 5);
    rest.remove_prefix(r.consumed + head.content_length);

    r = parse_request_head(rest, head);
    REQUIRE(r.status == parse_status::complete);
    CHECK(r.consumed == rest.size());
    CHECK(head.target == "/last");
    CHECK(head.version_minor == 0);
    CHECK(head.field_count == 0);
    CHECK(!head.keep_alive);
}

TEST_CASE("every proper prefix of a valid request is incomplete and the whole parses the same")
{
    const std::string req = "\r\nPUT /a/b HTTP/1.1\r\n"
                            "Host: example.com:8080\r\n"
                            "Content-Length: 12, 12\r\n"
                            "Connection: keep-alive, Upgrade\r\n"
                            "Upgrade: websocket\r\n"
                            "Expect: 100-continue\r\n"
                            "X-Obs: caf\xc3\xa9\r\n"
                            "\r\n";
    request_head whole;
    check_accepted(req, whole);
    for (std::size_t n = 0; n < req.size(); ++n) {
        INFO("prefix length ", n);
        request_head head;
        const parse_result r = parse_request_head(std::string_view(req).substr(0, n), head);
        CHECK(r.status == parse_status::incomplete);
    }
    // The same buffer grown byte by byte, as a connection would see it.
    std::string buf;
    request_head head;
    parse_result r{parse_status::incomplete};
    for (char c : req) {
        CHECK(r.status == parse_status::incomplete);
        buf += c;
        r = parse_request_head(buf, head);
    }
    REQUIRE(r.status == parse_status::complete);
    CHECK(r.consumed == req.size());
    CHECK(head.method == whole.method);
    CHECK(head.target == whole.target);
    CHECK(head.field_count == whole.field_count);
    CHECK(head.field("x-obs") == "caf\xc3\xa9");
    CHECK(head.framing == body_framing::content_length);
    CHECK(head.content_length == 12);
    CHECK(head.keep_alive);
    CHECK(head.upgrade);
    CHECK(head.expect_continue);
}

TEST_CASE("empty lines before the request line are skipped and counted in consumed")
{
    const std::string req = "\r\n\r\n" + k_get;
    request_head head;
    check_accepted(req, head);
    CHECK(head.method == "GET");

    const parse_result r = parse_request_head("\r\n\r\n\r", head);
    CHECK(r.status == parse_status::incomplete);
    check_refused("\r\n\n" + k_get, 400);
    check_refused("\n" + k_get, 400);
}

TEST_CASE("a bare LF anywhere in the head is 400")
{
    check_refused("GET / HTTP/1.1\nHost: h\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n", 400);
    check_refused("GET / HTTP/2.0\n\r\n", 400);
    check_refused("GET /a\nb HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}

TEST_CASE("a bare CR anywhere in the head is 400")
{
    check_refused("GET / HTTP/1.1\rHost: h\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nX: a\rb\r\nHost: h\r\n\r\n", 400);
    check_refused("GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    check_refused("G\rET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}

TEST_CASE("whitespace before the colon of a field is 400")
{
    check_refused("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 0\r\n\r\n", 400);
}

TEST_CASE("obsolete line folding and whitespace after the request line are 400")
{
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400);
    check_refused(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}

TEST_CASE("a field name that is not a token is 400")
{
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nnocolon\r\n\r\n", 400);
}

TEST_CASE("a method with characters outside token is 400")
{
    for (std::string method : {"G(ET"s, "GE,T"s, "G\"ET"s, "GET\x01"s, "G\xc3\xa9T"s, "GE/T"s}) {
        check_refused(method + " / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    }
    check_refused("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    request_head head;
    check_accepted("M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n", head);
    CHECK(head.method == "M-SEARCH");
    CHECK(head.target == "*");
}

TEST_CASE("the target must be non-empty with no whitespace or control characters")
{
    check_refused("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    check_refused("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    check_refused("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    check_refused("GET HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    check_refused("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n"s, 400);
}

TEST_CASE("a well-formed version other than 1.0 and 1.1 is 505 and a malformed one 400")
{
    check_refused("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    check_refused("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505);
    check_refused("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505);
    for (auto version : {"HTTP/1"sv, "HTTP/1.10"sv, "http/1.1"sv, "HTTP/1.1 "sv, "HTTP/11"sv,
                         "HTTP/1,1"sv, "HTTPS/1.1"sv, "garbage"sv, "HTTP/a.b"sv}) {
        check_refused("GET / "s + std::string(version) + "\r\nHost: h\r\n\r\n", 400);
    }
    check_refused("GET /\r\nHost: h\r\n\r\n", 400);
}

TEST_CASE("Content-Length together with Transfer-Encoding is 400 in either order")
{
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n",
                  400);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                  "Content-Length: 3\r\n\r\n",
                  400);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
                  "Content-Length: 3\r\n\r\n",
                  400);
}

TEST_CASE("conflicting Content-Length values are 400 and agreeing ones are accepted")
{
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                  400);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", 400);

    request_head head;
    check_accepted("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", head);
    CHECK(head.framing == body_framing::content_length);
    CHECK(head.content_length == 5);
    check_accepted("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 005\r\n\r\n",
                   head);
    CHECK(head.content_length == 5);
}

TEST_CASE("a malformed or overflowing Content-Length is 400")
{
    for (auto value :
         {"+5"sv, "-1"sv, ""sv, "5,"sv, ",5"sv, "5,,5"sv, "1e3"sv, "0x10"sv, "5 5"sv,
          "9223372036854775808"sv, "18446744073709551616"sv, "99999999999999999999999"sv}) {
        check_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "s + std::string(value) +
                          "\r\n\r\n",
                      400);
    }
    request_head head;
    check_accepted("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n",
                   head);
    CHECK(head.content_length == 9223372036854775807u);
    check_accepted("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", head);
    CHECK(head.framing == body_framing::content_length);
    CHECK(head.content_length == 0);
}

TEST_CASE("a Transfer-Encoding not ending in chunked is 501 for HTTP/1.1 and 400 for HTTP/1.0")
{
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                  "Transfer-Encoding: gzip\r\n\r\n",
                  501);
    check_refused("POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", 400);

    request_head head;
    check_accepted("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n", head);
    CHECK(head.framing == body_framing::chunked);
    check_accepted("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   head);
    CHECK(head.framing == body_framing::chunked);
    // HTTP/1.0 with a transfer coding may be read, but the connection closes.
    check_accepted(
        "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n", head);
    CHECK(head.framing == body_framing::chunked);
    CHECK(!head.keep_alive);
}

TEST_CASE("chunked applied twice is 400")
{
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n",
                  400);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip, Chunked\r\n\r\n",
                  400);
}

TEST_CASE("a Transfer-Encoding with parameters, non-tokens or no coding is 400")
{
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n",
                  400);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x\r\n\r\n", 400);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", 400);
    check_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n", 400);
}

TEST_CASE("HTTP/1.1 needs exactly one Host with a valid value")
{
    check_refused("GET / HTTP/1.1\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
    check_refused("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);

    request_head head;
    check_accepted("GET / HTTP/1.0\r\n\r\n", head);
    check_accepted("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", head);
    check_accepted("GET / HTTP/1.1\r\nHost:\r\n\r\n", head);
}

TEST_CASE("more header fields than the limit is 431")
{
    std::string req = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 1; i < 100; ++i)
        req += "X-" + std::to_string(i) + ": v\r\n";
    request_head head;
    check_accepted(req + "\r\n", head);
    CHECK(head.field_count == 100);
    check_refused(req + "X-100: v\r\n\r\n", 431);
    // Refused as soon as the extra field starts, whatever follows in it.
    check_refused(req + "X", 431);
    check_refused(req + "X-100: v\n\r\n", 431);
    check_refused(req + "X-100 : v\r\n\r\n", 431);

    parse_limits few;
    few.max_fields = 2;
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", 431, few);
    const parse_result r =
        parse_request_head("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n", head, few);
    CHECK(r.status == parse_status::complete);
}

TEST_CASE("a head longer than max_head_bytes is 431 and one that fits exactly is complete")
{
    parse_limits limits;
    limits.max_head_bytes = k_get.size();
    request_head head;
    parse_result r = parse_request_head(k_get, head, limits);
    CHECK(r.status == parse_status::complete);

    limits.max_head_bytes = k_get.size() - 1;
    r = parse_request_head(k_get, head, limits);
    CHECK(r.status == parse_status::error);
    CHECK(r.error_status == 431);
    // With no more than the limit buffered it might still end in time.
    r = parse_request_head(std::string_view(k_get).substr(0, limits.max_head_bytes), head, limits);
    CHECK(r.status == parse_status::incomplete);

    std::string big = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(20000, 'a');
    check_refused(big, 431);
    check_refused(big + "\r\n\r\n", 431);
}

TEST_CASE("a NUL or control character in a field value is 400")
{
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"s, 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01"
                  "b\r\n\r\n",
                  400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400);
    request_head head;
    check_accepted("GET / HTTP/1.1\r\nHost: h\r\nX: a\tb \xff\r\n\r\n", head);
    CHECK(head.field("x") == "a\tb \xff");
}

TEST_CASE("an error is reported as soon as the offending byte arrives")
{
    request_head head;
    for (auto partial :
         {"GET / HTTP/1.1\r\nHost : "sv, "GET / HTTP/1.1\r\n X"sv, "GET /\x01"sv,
          "GET / HTTP/1.1x"sv, "G\rE"sv, "GET / HTTP/1.1\r\nA: \x01"sv, "\x16\x03\x01"sv}) {
        INFO("partial: ", std::string(partial));
        CHECK(parse_request_head(partial, head).status == parse_status::error);
    }
    // A well-formed version is only judged once the line ends.
    CHECK(parse_request_head("GET / HTTP/3.0"sv, head).status == parse_status::incomplete);
}

TEST_CASE("Connection tokens and the version decide keep-alive")
{
    struct row {
        std::string_view version;
        std::string_view connection; // empty: no Connection field
        bool keep_alive;
    };
    const row rows[] = {
        {"1.1", "", true},
        {"1.1", "close", false},
        {"1.1", "CLOSE", false},
        {"1.1", "keep-alive, close", false},
        {"1.1", " , upgrade ,Close,", false},
        {"1.1", "keep-alive", true},
        {"1.0", "", false},
        {"1.0", "keep-alive", true},
        {"1.0", "Keep-Alive", true},
        {"1.0", "foo, keep-alive", true},
        {"1.0", "keep-alive, close", false},
        {"1.0", "close", false},
    };
    for (const row& r : rows) {
        std::string req = "GET / HTTP/" + std::string(r.version) + "\r\nHost: h\r\n";
        if (!r.connection.empty())
            req += "Connection: " + std::string(r.connection) + "\r\n";
        request_head head;
        check_accepted(req + "\r\n", head);
        CHECK(head.keep_alive == r.keep_alive);
    }
    request_head head;
    check_accepted(
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", head);
    CHECK(!head.keep_alive);
}

TEST_CASE("a Connection or Proxy-Connection that is not a token list is 400")
{
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nConnection: close keep-alive\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nConnection: \"close\"\r\n\r\n", 400);
    check_refused("GET / HTTP/1.1\r\nHost: h\r\nProxy-Connection: a;b\r\n\r\n", 400);
}

TEST_CASE("upgrade needs Connection: upgrade and an Upgrade field, and 100-continue HTTP/1.1")
{
    request_head head;
    check_accepted("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", head);
    CHECK(!head.upgrade);
    check_accepted("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n", head);
    CHECK(!head.upgrade);
    check_accepted("GET / HTTP/1.1\r\nHost: h\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n",
                   head);
    CHECK(head.upgrade);

    check_accepted("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n", head);
    CHECK(head.expect_continue);
    check_accepted("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", head);
    CHECK(!head.expect_continue);
}

TEST_CASE("chunked data decodes the same when split at any two byte positions")
{
    const std::string body = "5\r\nhello\r\n"
                             "1;name=value\r\n,\r\n"
                             "a;q=\"x\\\"y\"\r\n0123456789\r\n"
                             "0\r\nX-Sum: 1\r\n\r\n";
    const std::string tail = "GET / HTTP/1.1\r\n";
    const std::string all = body + tail;
    const decoded whole = decode(all);
    REQUIRE(whole.done);
    CHECK(whole.data == "hello,0123456789");
    CHECK(whole.consumed == body.size());

    for (std::size_t i = 0; i <= all.size(); ++i) {
        for (std::size_t j = i; j <= all.size(); ++j) {
            const decoded d = decode(all, {i, j});
            if (d.data != whole.data || !d.done || d.consumed != body.size()) {
                FAIL_CHECK("split at " << i << " and " << j << " gave '" << d.data << "'");
                return;
            }
        }
    }
}

TEST_CASE("each decode call returns at most one span, pointing into its input")
{
    const std::string body = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    chunked_decoder d;
    auto r = d.decode(body);
    CHECK(r.data == "abc");
    CHECK(r.data.data() == body.data() + 3);
    CHECK(r.consumed == 6);
    r = d.decode(std::string_view(body).substr(6));
    CHECK(r.data == "de");
    CHECK(r.consumed == 2 + 3 + 2);
    r = d.decode(std::string_view(body).substr(13));
    CHECK(r.data.empty());
    CHECK(r.done);
    CHECK(r.consumed == body.size() - 13);
    // Done: nothing more is consumed.
    r = d.decode("0\r\n\r\n");
    CHECK(r.done);
    CHECK(r.consumed == 0);
}

TEST_CASE("chunk extensions are validated and ignored")
{
    for (auto ext : {";a"sv, ";a=b"sv, ";a=b;c"sv, ";a=\"\""sv, ";a=\"b c\\\"\\\\\""sv,
                     ";a=\"\xc3\xa9\""sv, ";!#$%&'*+-.^_`|~=1"sv}) {
        INFO("extension: ", std::string(ext));
        const decoded d =
            decode("3" + std::string(ext) + "\r\nabc\r\n0" + std::string(ext) + "\r\n\r\n");
        CHECK(d.done);
        CHECK(d.data == "abc");
    }
    for (auto ext :
         {";"sv, ";=b"sv, ";a="sv, ";a=b c"sv, " ;a"sv, "; a"sv, ";a =b"sv, ";a= b"sv, ";a=\"b"sv,
          ";a=\"b\"c"sv, ";a=\"\x01\""sv, ";a=\"\\\x01\""sv, ";a,b"sv, ";a=\"\n\""sv, ";a=b\n"sv}) {
        check_chunked_refused("3" + std::string(ext) + "\r\nabc\r\n0\r\n\r\n");
    }
}

TEST_CASE("trailer fields are validated and discarded")
{
    const std::string body = "2\r\nab\r\n0\r\nX-A: 1\r\nX-B:\r\nX-C: \t v \xff\r\n\r\n";
    const decoded d = decode(body + "rest");
    CHECK(d.done);
    CHECK(d.data == "ab");
    CHECK(d.consumed == body.size());

    check_chunked_refused("0\r\nX-A : 1\r\n\r\n");
    check_chunked_refused("0\r\nX-A: 1\r\n continued\r\n\r\n");
    check_chunked_refused("0\r\n X-A: 1\r\n\r\n");
    check_chunked_refused("0\r\nX-A 1\r\n\r\n");
    check_chunked_refused("0\r\n: 1\r\n\r\n");
    check_chunked_refused("0\r\nX-A: \x01\r\n\r\n");
    check_chunked_refused("0\r\nX-A: \0\r\n\r\n"s);
    check_chunked_refused("0\r\nX-A: 1\n\r\n");
    check_chunked_refused("0\r\nX-A: 1\r\n\n");
    check_chunked_refused("0\r\nX-A: 1\r\r\n\r\n");
    check_chunked_refused("0\r\n\r\r\n");
}

TEST_CASE("fields that frame or route the message are refused as trailers")
{
    for (auto name : {"Content-Length"sv, "transfer-encoding"sv, "HOST"sv, "Connection"sv,
                      "Proxy-Connection"sv}) {
        check_chunked_refused("0\r\n" + std::string(name) + ": 1\r\n\r\n");
    }
    // Names that merely start like one are fine.
    CHECK(decode("0\r\nHosts: 1\r\nProxy-Connection-X: 1\r\nContent-Lengthy: 2\r\n\r\n").done);
}

TEST_CASE("bad chunk sizes are rejected")
{
    for (auto size : {""sv, "g"sv, "-1"sv, "+1"sv, " 5"sv, "5 "sv, "5\t"sv, "0x5"sv,
                      "00000000000000005"sv, "10000000000000000"sv, ";a"sv}) {
        check_chunked_refused(std::string(size) + "\r\nhello\r\n0\r\n\r\n");
    }
    const decoded d = decode("000000000000000A\r\n0123456789\r\n0000000000000000\r\n\r\n");
    CHECK(d.done);
    CHECK(d.data == "0123456789");
    const decoded upper = decode("aB\r\n" + std::string(0xab, 'x') + "\r\n0\r\n\r\n");
    CHECK(upper.done);
    CHECK(upper.data.size() == 0xab);
}

TEST_CASE("a huge chunk size is accepted and its data counted down")
{
    chunked_decoder d;
    auto r = d.decode("ffffffffffffffff\r\nabc");
    CHECK(!r.error);
    CHECK(r.data == "abc");
    r = d.decode("def");
    CHECK(r.data == "def");
    CHECK(!r.done);
}

TEST_CASE("chunk data not followed by CRLF is rejected")
{
    check_chunked_refused("5\r\nhello0\r\n\r\n");
    check_chunked_refused("5\r\nhelloo\r\n0\r\n\r\n");
    check_chunked_refused("5\r\nhello\n0\r\n\r\n");
    check_chunked_refused("5\r\nhello\r0\r\n\r\n");
    check_chunked_refused("5\r\nhello\r\r\n0\r\n\r\n");
}

TEST_CASE("a bare CR or LF in a chunk-size line is rejected")
{
    check_chunked_refused("5\nhello\r\n0\r\n\r\n");
    check_chunked_refused("5\rhello\r\n0\r\n\r\n");
    check_chunked_refused("5;a\nhello\r\n0\r\n\r\n");
    check_chunked_refused("0\n\r\n");
    check_chunked_refused("0\r\n\n");
}

TEST_CASE("an incomplete chunked body is neither done nor an error")
{
    const std::string body = "5\r\nhello\r\n0\r\nX: y\r\n\r\n";
    for (std::size_t n = 0; n < body.size(); ++n) {
        INFO("prefix length ", n);
        const decoded d = decode(std::string_view(body).substr(0, n));
        CHECK(!d.done);
        CHECK(!d.error);
        CHECK(d.consumed == n);
    }
}

TEST_CASE("a chunk-size line or trailer line longer than max_line is rejected")
{
    CHECK(decode("1;" + std::string(7, 'a') + "\r\nx\r\n0\r\n\r\n", {}, 9).done);
    CHECK(decode("1;" + std::string(8, 'a') + "\r\nx\r\n0\r\n\r\n", {}, 9).error);
    CHECK(decode("0\r\nX: " + std::string(6, 'a') + "\r\n\r\n", {}, 9).done);
    CHECK(decode("0\r\nX: " + std::string(7, 'a') + "\r\n\r\n", {}, 9).error);
    // Bounded even when the line arrives a byte at a time.
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < 40; ++i)
        cuts.push_back(i);
    CHECK(decode("1;" + std::string(30, 'a') + "\r\nx\r\n0\r\n\r\n", cuts, 9).error);
}

TEST_CASE("more than 100 trailer fields are rejected")
{
    std::string trailers;
    for (int i = 0; i < 100; ++i)
        trailers += "X: 1\r\n";
    CHECK(decode("0\r\n" + trailers + "\r\n").done);
    CHECK(decode("0\r\n" + trailers + "X: 1\r\n\r\n").error);
}

TEST_CASE("after an error the decoder consumes nothing more")
{
    chunked_decoder d;
    auto r = d.decode("z\r\n");
    CHECK(r.error);
    CHECK(r.consumed == 1);
    CHECK(std::string_view(r.reason) != "");
    r = d.decode("0\r\n\r\n");
    CHECK(r.error);
    CHECK(r.consumed == 0);
}
