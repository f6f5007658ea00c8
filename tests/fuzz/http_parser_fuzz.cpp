// Fuzz target for the HTTP/1.1 request parser and the chunked decoder.
//
// Every input is read twice: as a request (head, then a chunked body when
// the head asks for one), and as a chunked body on its own. The checks:
//   - the parser is consistent with itself: a prefix of an input that is
//     incomplete or complete is never an error, an error stays an error
//     as bytes are added, a complete head parses the same from any longer
//     buffer, and tighter limits never accept what the defaults refuse;
//   - the decoder gives the same data, outcome and consumption however the
//     input is split into reads (the splits derive from the input);
//   - differentially, whatever we accept Boost.Beast 1.74 accepts too, with
//     the same method, target, version, framing, Content-Length, chunked
//     body data and length. Beast is looser than we are, which the fuzzer
//     must not report; the cases where we refuse what Beast accepts:
//       * obsolete line folding (Beast unfolds it);
//       * HTTP/1.1 without Host, more than one Host, a Host with
//         characters no authority has (Beast does not look at Host);
//       * a Transfer-Encoding whose last coding is not chunked (Beast
//         reads such a request as having no body: the smuggling case),
//         an empty one, one with parameters or non-tokens, "chunked"
//         twice in one field (Beast: not chunked);
//       * Transfer-Encoding followed by Content-Length when the coding is
//         not chunked (Beast uses the Content-Length);
//       * Content-Length from 2^63 up to 2^64 - 1;
//       * more than 100 fields, or a head over 16 KiB (Beast's limits are
//         raised out of the way here);
//       * a chunk size of more than 16 hex digits (leading zeros);
//       * whitespace around ';' and '=' in chunk extensions, control
//         characters or a lone '\\' in quoted extension values, a bare LF
//         inside one (Beast only checks quotes and escapes);
//       * obs-fold in trailers, more than 100 trailers, chunk-size or
//         trailer lines over max_line, and Host, Connection or
//         Proxy-Connection as trailers (Beast also refuses Content-Length
//         and Transfer-Encoding there).
//     And one case where we are more lenient: empty lines (CRLF) before
//     the request line are skipped, as RFC 9112 section 2.2 allows, while
//     Beast refuses them; Beast is given the input after them.
//   - keep-alive and upgrade agree with Beast's where both read the same
//     fields: without Proxy-Connection (which Beast also obeys), HTTP/1.1
//     keep-alive is the same, and an HTTP/1.0 request we keep alive Beast
//     keeps alive too (we also close on "close" with "keep-alive" and on
//     Transfer-Encoding in 1.0); an upgrade we report Beast reports too.
// A failed check prints what differed and aborts, which libFuzzer reports.
//
// To fuzz: configure with clang and -Dfuzz=true, then, from a scratch
// directory so that new inputs do not land among the committed seeds, run
// <build>/tests/http_parser_fuzz with -dict=<src>/tests/fuzz/http_request.dict
// -max_len=4096 and the directories new_inputs/ (written to first) and
// <src>/tests/fuzz/corpus/http_request/.

#include "../../lib/http/parser.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

namespace {

namespace http = boost::beast::http;
using namespace weft::http::detail;

[[noreturn]] void fail(const char* what, std::string_view input)
{
    std::fprintf(stderr, "http_parser_fuzz: %s\ninput (%zu bytes): ", what, input.size());
    for (unsigned char c : input)
        std::fprintf(stderr, c >= 0x20 && c < 0x7f && c != '\\' ? "%c" : "\\x%02x", c);
    std::fprintf(stderr, "\n");
    std::abort();
}

#define FUZZ_CHECK(cond, input)                                                                    \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(#cond, input);                                                                    \
    } while (false)

/// Read sizes for splitting an input, derived from its bytes so that a
/// crash replays the same way.
class splitter {
public:
    explicit splitter(std::string_view input)
    {
        for (unsigned char c : input)
            m_state = (m_state ^ c) * 0x100000001b3u; // FNV-1a
    }

    /// The next read size: mostly small, now and then large.
    std::size_t next()
    {
        m_state = m_state * 6364136223846793005u + 1442695040888963407u;
        const auto r = static_cast<std::size_t>(m_state >> 33);
        return 1 + (r % 8 == 0 ? r % 4096 : r % 7);
    }

private:
    std::uint64_t m_state = 0xcbf29ce484222325u;
};

bool same_head(const request_head& a, const request_head& b)
{
    if (a.method != b.method || a.target != b.target || a.version_minor != b.version_minor ||
        a.field_count != b.field_count || a.framing != b.framing ||
        a.content_length != b.content_length || a.keep_alive != b.keep_alive ||
        a.expect_continue != b.expect_continue || a.upgrade != b.upgrade)
        return false;
    for (std::size_t i = 0; i < a.field_count; ++i)
        if (a.fields[i].name != b.fields[i].name || a.fields[i].value != b.fields[i].value)
            return false;
    return true;
}

bool has_field(const request_head& head, std::string_view lower_name)
{
    for (std::size_t i = 0; i < head.field_count; ++i) {
        const std::string_view n = head.fields[i].name;
        if (n.size() != lower_name.size())
            continue;
        bool same = true;
        for (std::size_t k = 0; k < n.size(); ++k)
            same = same && (n[k] | 0x20) == lower_name[k];
        if (same)
            return true;
    }
    return false;
}

/// Beast's parser with its size limits out of the way (the body limit is
/// the largest value rather than none: Beast 1.74 compares a Content-Length
/// against an empty optional as greater).
void unlimit(http::request_parser<http::empty_body>& p)
{
    p.header_limit(std::numeric_limits<std::uint32_t>::max());
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
}

/// Parses a head that we accepted with Beast and compares the results.
void check_head_with_beast(std::string_view beast_head, const request_head& ours,
                           std::string_view input)
{
    http::request_parser<http::empty_body> p;
    unlimit(p);
    p.eager(false);
    boost::beast::error_code ec;
    const std::size_t n =
        p.put(boost::asio::const_buffer(beast_head.data(), beast_head.size()), ec);
    if (ec) {
        std::fprintf(stderr, "Beast: %s\n", ec.message().c_str());
        fail("Beast refuses a head we accept", input);
    }
    FUZZ_CHECK(n == beast_head.size() && p.is_header_done(), input);

    const auto& msg = p.get();
    FUZZ_CHECK(std::string_view(msg.method_string().data(), msg.method_string().size()) ==
                   ours.method,
               input);
    FUZZ_CHECK(std::string_view(msg.target().data(), msg.target().size()) == ours.target, input);
    FUZZ_CHECK(msg.version() == 10 + static_cast<unsigned>(ours.version_minor), input);
    FUZZ_CHECK(p.chunked() == (ours.framing == body_framing::chunked), input);
    const auto length = p.content_length();
    if (ours.framing == body_framing::content_length)
        FUZZ_CHECK(length && *length == ours.content_length, input);
    else
        FUZZ_CHECK(!length, input);

    if (!has_field(ours, "proxy-connection")) {
        if (ours.version_minor == 1)
            FUZZ_CHECK(p.keep_alive() == ours.keep_alive, input);
        else if (ours.keep_alive)
            FUZZ_CHECK(p.keep_alive(), input);
        if (ours.upgrade)
            FUZZ_CHECK(p.upgrade(), input);
    }
}

struct decoded {
    std::string data;
    std::size_t consumed = 0;
    bool done = false;
    bool error = false;
};

/// Decodes `body` handing the decoder at most `limit(…)` new bytes per
/// read, as a connection would; unconsumed bytes stay for the next call.
template <class Limit>
decoded decode(std::string_view body, Limit limit)
{
    chunked_decoder d;
    decoded out;
    std::size_t available = 0;
    for (;;) {
        const auto r = d.decode(body.substr(out.consumed, available - out.consumed));
        out.consumed += r.consumed;
        out.data.append(r.data);
        if (r.done || r.error) {
            out.done = r.done;
            out.error = r.error;
            return out;
        }
        if (r.consumed == 0 && r.data.empty()) {
            if (available == body.size())
                return out;
            available += std::min(limit(), body.size() - available);
        }
    }
}

/// Runs the decoder on `body` whole and in pieces, and when it is done
/// checks Beast reads the same body after `beast_head`.
void check_chunked(std::string_view beast_head, std::string_view body, std::string_view input)
{
    const decoded whole = decode(body, [&] { return body.size(); });
    splitter split(input);
    const decoded pieces = decode(body, [&] { return split.next(); });
    FUZZ_CHECK(whole.done == pieces.done && whole.error == pieces.error, input);
    FUZZ_CHECK(whole.data == pieces.data && whole.consumed == pieces.consumed, input);
    FUZZ_CHECK(whole.done || whole.error || whole.consumed == body.size(), input);
    if (!whole.done)
        return;

    http::request_parser<http::empty_body> p;
    unlimit(p);
    p.eager(true);
    std::string beast_body;
    auto on_chunk = [&](std::uint64_t, boost::beast::string_view data,
                        boost::beast::error_code& ec) {
        beast_body.append(data.data(), data.size());
        ec = {};
        return data.size();
    };
    p.on_chunk_body(on_chunk);
    std::string message(beast_head);
    message.append(body.substr(0, whole.consumed));
    std::size_t used = 0;
    boost::beast::error_code ec;
    while (!p.is_done() && used < message.size()) {
        const std::size_t n =
            p.put(boost::asio::const_buffer(message.data() + used, message.size() - used), ec);
        used += n;
        if (ec) {
            std::fprintf(stderr, "Beast: %s\n", ec.message().c_str());
            fail("Beast refuses a chunked body we accept", input);
        }
        if (n == 0)
            break;
    }
    FUZZ_CHECK(p.is_done(), input);
    FUZZ_CHECK(used == message.size(), input);
    FUZZ_CHECK(beast_body == whole.data, input);
}

void check_request(std::string_view input)
{
    request_head head;
    const parse_result r = parse_request_head(input, head);
    switch (r.status) {
    case parse_status::error:
        FUZZ_CHECK(r.error_status == 400 || r.error_status == 431 || r.error_status == 501 ||
                       r.error_status == 505,
                   input);
        FUZZ_CHECK(*r.error != '\0', input);
        break;
    case parse_status::complete:
        FUZZ_CHECK(r.consumed >= 4 && r.consumed <= input.size(), input);
        FUZZ_CHECK(input.substr(r.consumed - 4, 4) == "\r\n\r\n", input);
        break;
    case parse_status::incomplete:
        break;
    }

    // A prefix (one derived from the input, and the one just short of the
    // head's end) is consistent with the whole.
    splitter split(input);
    const std::size_t cuts[] = {input.empty() ? 0 : split.next() * 7919 % input.size(),
                                r.status == parse_status::complete ? r.consumed - 1 : 0};
    for (std::size_t cut : cuts) {
        request_head prefix_head;
        const parse_result pr = parse_request_head(input.substr(0, cut), prefix_head);
        if (pr.status == parse_status::error)
            FUZZ_CHECK(r.status == parse_status::error && r.error_status == pr.error_status, input);
        if (pr.status == parse_status::complete)
            FUZZ_CHECK(r.status == parse_status::complete && r.consumed == pr.consumed &&
                           same_head(head, prefix_head),
                       input);
        if (r.status == parse_status::complete && cut < r.consumed)
            FUZZ_CHECK(pr.status == parse_status::incomplete, input);
    }

    // Tighter limits refuse more but accept nothing new.
    parse_limits tight;
    tight.max_head_bytes = 256;
    tight.max_fields = 4;
    request_head tight_head;
    const parse_result tr = parse_request_head(input, tight_head, tight);
    if (tr.status == parse_status::complete)
        FUZZ_CHECK(r.status == parse_status::complete && r.consumed == tr.consumed &&
                       same_head(head, tight_head),
                   input);
    if (tr.status == parse_status::error && tr.error_status != 431)
        FUZZ_CHECK(r.status == parse_status::error && r.error_status == tr.error_status, input);

    if (r.status != parse_status::complete)
        return;
    std::size_t skipped = 0;
    while (input.substr(skipped, 2) == "\r\n")
        skipped += 2;
    const std::string_view beast_head = input.substr(skipped, r.consumed - skipped);
    check_head_with_beast(beast_head, head, input);
    if (head.framing == body_framing::chunked)
        check_chunked(beast_head, input.substr(r.consumed), input);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    check_request(input);
    check_chunked("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", input, input);
    return 0;
}
