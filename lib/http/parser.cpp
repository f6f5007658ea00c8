// The HTTP/1.1 request parser and the chunked transfer decoder.
//
// Invariants:
//   - parse_request_head keeps no state between calls. Each call reads the
//     head again from the start of the buffer, so a head is never applied
//     half-way; the rescan per read is bounded by max_head_bytes.
//   - It reads at most max_head_bytes bytes of the buffer (the "window"):
//     a head must end inside it, and nothing past it is examined.
//   - Every line is validated as soon as it is seen, and the last,
//     unterminated line as far as it goes, so `incomplete` always means
//     that a valid head can still follow. A field's meaning (framing,
//     Host, Connection) is checked as the field is read; only what needs
//     the whole head (Host present, the final transfer coding) waits for
//     its end.
//   - Where a rule of the header comment overlaps another, the request is
//     refused with the first one met in reading order.
//   - chunked_decoder consumes every byte it is given: a line split across
//     calls lives on only as m_state and the counters, never as buffered
//     bytes. m_line_len counts the bytes of the current chunk-size or
//     trailer line before its CR; m_digits and m_remaining the chunk size.
//     Body bytes are handed out as views into the caller's input, and a
//     call returns as soon as it has one span, so the caller sees every
//     span before the next call.
//   - Once in state::done or state::error the decoder consumes nothing more.

#include "parser.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace weft::http::detail {

namespace {

// Character classes, one bit each, looked up in a table so that the hot
// loops test a byte with one load.
enum : std::uint8_t {
    k_tchar = 1 << 0,  // token (RFC 9110 section 5.6.2)
    k_value = 1 << 1,  // field value: VCHAR, obs-text, SP, HTAB
    k_target = 1 << 2, // request target: anything but whitespace and CTLs
    k_host = 1 << 3,   // Host: reg-name, IP literal and port characters
    k_qdtext = 1 << 4, // quoted-string text (no '"' or '\\')
};

constexpr bool in(int c, std::string_view set)
{
    return set.find(static_cast<char>(c)) != std::string_view::npos;
}

constexpr std::array<std::uint8_t, 256> make_classes()
{
    std::array<std::uint8_t, 256> t{};
    for (int c = 0; c < 256; ++c) {
        std::uint8_t k = 0;
        const bool alnum =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool visible = c > 0x20 && c != 0x7f; // VCHAR and obs-text
        if (alnum || in(c, "!#$%&'*+-.^_`|~"))
            k |= k_tchar;
        if (visible || c == ' ' || c == '\t')
            k |= k_value;
        if (visible)
            k |= k_target;
        if (alnum || in(c, "-._~%!$&'()*+,;=:[]"))
            k |= k_host;
        if ((visible || c == ' ' || c == '\t') && c != '"' && c != '\\')
            k |= k_qdtext;
        t[static_cast<std::size_t>(c)] = k;
    }
    return t;
}

constexpr std::array<std::uint8_t, 256> k_classes = make_classes();

inline bool is(char c, std::uint8_t cls) noexcept
{
    return (k_classes[static_cast<unsigned char>(c)] & cls) != 0;
}

inline bool is_ows(char c) noexcept
{
    return c == ' ' || c == '\t';
}

inline char ascii_lower(char c) noexcept
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// `lower` is already lower case, as every name this file looks for is.
bool iequals(std::string_view s, std::string_view lower) noexcept
{
    if (s.size() != lower.size())
        return false;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (ascii_lower(s[i]) != lower[i])
            return false;
    return true;
}

std::string_view trim_ows(std::string_view s) noexcept
{
    while (!s.empty() && is_ows(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back()))
        s.remove_suffix(1);
    return s;
}

bool all_of(std::string_view s, std::uint8_t cls) noexcept
{
    for (char c : s)
        if (!is(c, cls))
            return false;
    return true;
}

// Calls f(element) for each element of a comma-separated list (RFC 9110
// section 5.6.1), OWS trimmed, empty elements included: the callers
// decide whether they are allowed. f returns a reason to stop with, or
// nullptr to go on. None of the lists read here may hold quoted strings,
// so a comma always separates.
template <class F>
const char* for_each_element(std::string_view list, F&& f)
{
    for (;;) {
        const std::size_t comma = list.find(',');
        if (const char* reason = f(trim_ows(list.substr(0, comma))))
            return reason;
        if (comma == std::string_view::npos)
            return nullptr;
        list.remove_prefix(comma + 1);
    }
}

// Why a byte is wrong where a token, target or value was expected; the
// line ends were split off already, so a CR or LF here stands alone.
const char* bad_char_reason(char c, const char* otherwise) noexcept
{
    if (c == '\r')
        return "bare CR";
    if (c == '\n')
        return "bare LF";
    if (c == '\0')
        return "NUL byte";
    return otherwise;
}

struct failure {
    int status = 400;
    const char* reason = nullptr; // nullptr: nothing wrong
};

constexpr failure ok{};

failure bad(const char* reason, int status = 400) noexcept
{
    return {status, reason};
}

// Checks a request line, or while `complete` is false the part of one
// received so far; a complete line sets method, target and version.
failure scan_request_line(std::string_view line, bool complete, request_head& head) noexcept
{
    std::size_t i = 0;
    const std::size_t n = line.size();
    while (i < n && is(line[i], k_tchar))
        ++i;
    if (i == n)
        return complete ? bad("request line without target") : ok;
    if (i == 0)
        return bad(is_ows(line[0]) ? "whitespace before request line"
                                   : bad_char_reason(line[0], "invalid method"));
    if (line[i] != ' ')
        return bad(bad_char_reason(line[i], "invalid method"));
    const std::size_t target_begin = ++i;
    while (i < n && is(line[i], k_target))
        ++i;
    if (i == n)
        return complete ? bad("request line without version") : ok;
    if (line[i] != ' ')
        return bad(bad_char_reason(line[i], "invalid character in target"));
    if (i == target_begin)
        return bad("empty target");
    const std::size_t version_begin = ++i;

    // HTTP-version = "HTTP/" DIGIT "." DIGIT; a well-formed version other
    // than 1.0 and 1.1 is 505, anything else 400.
    const std::string_view version = line.substr(version_begin);
    constexpr std::string_view k_pattern = "HTTP/d.d";
    if (version.size() > k_pattern.size())
        return bad("malformed version");
    for (std::size_t k = 0; k < version.size(); ++k) {
        const char c = version[k];
        const bool fits = k_pattern[k] == 'd' ? (c >= '0' && c <= '9') : c == k_pattern[k];
        if (!fits)
            return bad(bad_char_reason(c, "malformed version"));
    }
    if (!complete)
        return ok;
    if (version.size() != k_pattern.size())
        return bad("malformed version");
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
        return bad("unsupported HTTP version", 505);
    head.method = line.substr(0, target_begin - 1);
    head.target = line.substr(target_begin, version_begin - 1 - target_begin);
    head.version_minor = version[7] - '0';
    return ok;
}

// Checks a field line, or while `complete` is false the part of one
// received so far; a complete line fills `field`.
failure scan_field_line(std::string_view line, bool complete, bool first,
                        header_field& field) noexcept
{
    const std::size_t n = line.size();
    if (n > 0 && is_ows(line[0]))
        return bad(first ? "whitespace after request line" : "obsolete line folding");
    std::size_t i = 0;
    while (i < n && is(line[i], k_tchar))
        ++i;
    if (i == n)
        return complete ? bad("field line without colon") : ok;
    if (line[i] != ':') {
        if (is_ows(line[i]))
            return bad("whitespace before colon");
        return bad(bad_char_reason(line[i], "invalid character in field name"));
    }
    if (i == 0)
        return bad("empty field name");
    for (std::size_t k = i + 1; k < n; ++k)
        if (!is(line[k], k_value))
            return bad(bad_char_reason(line[k], "control character in field value"));
    field.name = line.substr(0, i);
    field.value = trim_ows(line.substr(i + 1));
    return ok;
}

// What the fields said so far about framing and the connection.
struct head_facts {
    int host_count = 0;
    bool has_content_length = false;
    bool has_transfer_encoding = false;
    bool chunked_seen = false;
    bool last_coding_chunked = false;
    bool close = false;
    bool keep_alive = false;
    bool connection_upgrade = false;
    bool upgrade_field = false;
};

failure apply_content_length(std::string_view value, head_facts& facts, request_head& head)
{
    if (facts.has_transfer_encoding)
        return bad("both Transfer-Encoding and Content-Length");
    // A list is allowed if all elements agree (RFC 9110 section 8.6), and
    // so are several fields; both arise from proxies that merge fields.
    constexpr std::uint64_t k_max = std::numeric_limits<std::int64_t>::max();
    const char* reason = for_each_element(value, [&](std::string_view e) -> const char* {
        if (e.empty())
            return "malformed Content-Length";
        std::uint64_t v = 0;
        for (char c : e) {
            if (c < '0' || c > '9')
                return "malformed Content-Length";
            const auto d = static_cast<std::uint64_t>(c - '0');
            if (v > (k_max - d) / 10)
                return "Content-Length too large";
            v = v * 10 + d;
        }
        if (facts.has_content_length && v != head.content_length)
            return "conflicting Content-Length";
        facts.has_content_length = true;
        head.content_length = v;
        return nullptr;
    });
    return reason ? bad(reason) : ok;
}

failure apply_transfer_encoding(std::string_view value, head_facts& facts)
{
    if (facts.has_content_length)
        return bad("both Transfer-Encoding and Content-Length");
    facts.has_transfer_encoding = true;
    bool any = false;
    // Transfer codings may in theory carry parameters; none in use does,
    // and a parameter after "chunked" is one way to hide it from a peer,
    // so only bare tokens are accepted.
    const char* reason = for_each_element(value, [&](std::string_view e) -> const char* {
        if (e.empty())
            return nullptr;
        if (!all_of(e, k_tchar))
            return "malformed Transfer-Encoding";
        any = true;
        const bool chunked = iequals(e, "chunked");
        if (chunked && facts.chunked_seen)
            return "chunked applied twice";
        facts.chunked_seen = facts.chunked_seen || chunked;
        facts.last_coding_chunked = chunked;
        return nullptr;
    });
    if (reason)
        return bad(reason);
    return any ? ok : bad("empty Transfer-Encoding");
}

// Connection, and the pre-standard Proxy-Connection some clients still
// send, are lists of tokens; only Connection's options mean anything here.
failure apply_connection(std::string_view value, head_facts* facts)
{
    const char* reason = for_each_element(value, [&](std::string_view e) -> const char* {
        if (!all_of(e, k_tchar))
            return "malformed Connection";
        if (facts) {
            facts->close = facts->close || iequals(e, "close");
            facts->keep_alive = facts->keep_alive || iequals(e, "keep-alive");
            facts->connection_upgrade = facts->connection_upgrade || iequals(e, "upgrade");
        }
        return nullptr;
    });
    return reason ? bad(reason) : ok;
}

failure apply_field(const header_field& f, head_facts& facts, request_head& head)
{
    switch (f.name.size()) {
    case 4:
        if (iequals(f.name, "host")) {
            // RFC 9112 section 3.2: more than one Host, or an invalid one, is 400.
            if (++facts.host_count > 1)
                return bad("more than one Host");
            if (!all_of(f.value, k_host))
                return bad("invalid Host");
        }
        break;
    case 6:
        if (iequals(f.name, "expect") && head.version_minor == 1)
            head.expect_continue = head.expect_continue || iequals(f.value, "100-continue");
        break;
    case 7:
        if (iequals(f.name, "upgrade"))
            facts.upgrade_field = true;
        break;
    case 10:
        if (iequals(f.name, "connection"))
            return apply_connection(f.value, &facts);
        break;
    case 14:
        if (iequals(f.name, "content-length"))
            return apply_content_length(f.value, facts, head);
        break;
    case 16:
        if (iequals(f.name, "proxy-connection"))
            return apply_connection(f.value, nullptr);
        break;
    case 17:
        if (iequals(f.name, "transfer-encoding"))
            return apply_transfer_encoding(f.value, facts);
        break;
    default:
        break;
    }
    return ok;
}

// The checks that need the whole head, and what it decides.
failure finish_head(const head_facts& facts, request_head& head) noexcept
{
    const bool http11 = head.version_minor == 1;
    if (http11 && facts.host_count == 0)
        return bad("missing Host");
    if (facts.has_transfer_encoding && !facts.last_coding_chunked)
        return bad("final transfer coding is not chunked", http11 ? 501 : 400);
    if (facts.has_transfer_encoding)
        head.framing = body_framing::chunked;
    else if (facts.has_content_length)
        head.framing = body_framing::content_length;
    // RFC 9112 section 6.1: HTTP/1.0 framing with Transfer-Encoding is
    // faulty enough that the connection must close after this request.
    head.keep_alive =
        !facts.close && (http11 || facts.keep_alive) && !(facts.has_transfer_encoding && !http11);
    head.upgrade = facts.connection_upgrade && facts.upgrade_field;
    return ok;
}

parse_result error_result(const failure& f) noexcept
{
    return {parse_status::error, 0, f.status, f.reason};
}

} // namespace

std::string_view request_head::field(std::string_view name) const noexcept
{
    for (std::size_t i = 0; i < field_count; ++i) {
        const std::string_view n = fields[i].name;
        if (n.size() != name.size())
            continue;
        bool same = true;
        for (std::size_t k = 0; k < n.size() && same; ++k)
            same = ascii_lower(n[k]) == ascii_lower(name[k]);
        if (same)
            return fields[i].value;
    }
    return {};
}

parse_result parse_request_head(std::string_view buf, request_head& head,
                                const parse_limits& limits) noexcept
{
    // Only the scalars: the fields array is overwritten up to field_count.
    head.method = {};
    head.target = {};
    head.version_minor = 1;
    head.field_count = 0;
    head.framing = body_framing::none;
    head.content_length = 0;
    head.keep_alive = true;
    head.expect_continue = false;
    head.upgrade = false;

    const std::size_t max_fields = std::min(limits.max_fields, request_head::k_max_fields);
    const char* const first = buf.data();
    const char* const last = first + std::min(buf.size(), limits.max_head_bytes);
    const char* p = first;

    // RFC 9112 section 2.2: empty lines before the request line are
    // skipped (some clients send an extra CRLF after a POST body).
    while (last - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;

    head_facts facts;
    bool request_line_done = false;
    for (;;) {
        const auto* lf =
            static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(last - p)));
        std::string_view line(p, static_cast<std::size_t>((lf ? lf : last) - p));
        // A final CR is the line's CRLF, or may become it.
        const bool crlf = lf != nullptr && !line.empty() && line.back() == '\r';
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        // Known as soon as a line that is not the end of the head starts.
        if (request_line_done && !line.empty() && head.field_count == max_fields)
            return error_result(bad("too many header fields", 431));
        if (!crlf) {
            // The start of a line, or one ended by a bare LF: its bytes are
            // judged first, as they came first.
            failure f;
            header_field unused;
            if (!request_line_done)
                f = scan_request_line(line, false, head);
            else if (!line.empty())
                f = scan_field_line(line, false, head.field_count == 0, unused);
            if (f.reason)
                return error_result(f);
            if (lf != nullptr)
                return error_result(bad("bare LF"));
            if (buf.size() > limits.max_head_bytes)
                return error_result(bad("head too long", 431));
            return {parse_status::incomplete};
        }
        p = lf + 1;

        if (!request_line_done) {
            if (failure f = scan_request_line(line, true, head); f.reason)
                return error_result(f);
            request_line_done = true;
            continue;
        }
        if (line.empty()) {
            if (failure f = finish_head(facts, head); f.reason)
                return error_result(f);
            return {parse_status::complete, static_cast<std::size_t>(p - first)};
        }
        header_field& field = head.fields[head.field_count];
        if (failure f = scan_field_line(line, true, head.field_count == 0, field); f.reason)
            return error_result(f);
        ++head.field_count;
        if (failure f = apply_field(field, facts, head); f.reason)
            return error_result(f);
    }
}

chunked_decoder::result chunked_decoder::decode(std::string_view in) noexcept
{
    result r;
    const char* p = in.data();
    const char* const end = p + in.size();
    while (p != end && m_state != state::done && m_state != state::error) {
        if (m_state == state::data) {
            const auto n = static_cast<std::size_t>(
                std::min<std::uint64_t>(m_remaining, static_cast<std::uint64_t>(end - p)));
            r.data = std::string_view(p, n);
            p += n;
            m_remaining -= n;
            if (m_remaining == 0)
                m_state = state::data_cr;
            break;
        }
        step(*p++);
    }
    r.consumed = static_cast<std::size_t>(p - in.data());
    r.done = m_state == state::done;
    r.error = m_state == state::error;
    r.reason = m_reason;
    return r;
}

void chunked_decoder::fail(const char* reason) noexcept
{
    m_state = state::error;
    m_reason = reason;
}

void chunked_decoder::expect(char c, char want, state next, const char* reason) noexcept
{
    if (c == want)
        m_state = next;
    else
        fail(reason);
}

// After the size or an extension: another extension or the end of the line.
void chunked_decoder::end_of_element(char c, const char* reason) noexcept
{
    if (c == ';')
        m_state = state::ext_name_start;
    else if (c == '\r')
        m_state = state::size_lf;
    else
        fail(bad_char_reason(c, reason));
}

bool chunked_decoder::forbidden_trailer() const noexcept
{
    if (m_name_len > k_name_capacity)
        return false;
    const std::string_view name(m_name, m_name_len);
    return name == "content-length" || name == "transfer-encoding" || name == "host" ||
           name == "connection" || name == "proxy-connection";
}

// Consumes one framing byte (never chunk data). Preconditions: m_state is
// neither data, done nor error.
void chunked_decoder::step(char c) noexcept
{
    const bool in_line = m_state != state::size_lf && m_state != state::trailer_lf &&
                         m_state != state::trailer_end_lf && m_state != state::data_cr &&
                         m_state != state::data_lf;
    if (in_line && c != '\r' && ++m_line_len > m_max_line)
        return fail(m_state == state::trailer || m_state == state::trailer_name ||
                            m_state == state::trailer_value
                        ? "trailer line too long"
                        : "chunk-size line too long");

    switch (m_state) {
    case state::size: {
        int d = -1;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        if (d >= 0) {
            // 16 digits hold any 64-bit size; more is either an overflow or
            // a run of zeros that some peer may count differently.
            if (m_digits == 16)
                return fail("chunk size has more than 16 hex digits");
            ++m_digits;
            m_remaining = m_remaining * 16 + static_cast<std::uint64_t>(d);
            return;
        }
        if (m_digits == 0)
            return fail(bad_char_reason(c, "missing chunk size"));
        return end_of_element(c, "invalid character after chunk size");
    }
    case state::ext_name_start:
        if (!is(c, k_tchar))
            return fail(bad_char_reason(c, "malformed chunk extension"));
        m_state = state::ext_name;
        return;
    case state::ext_name:
    case state::ext_token:
        if (is(c, k_tchar))
            return;
        if (c == '=' && m_state == state::ext_name) {
            m_state = state::ext_value_start;
            return;
        }
        return end_of_element(c, "malformed chunk extension");
    case state::ext_value_start:
        if (c == '"')
            m_state = state::ext_quoted;
        else if (is(c, k_tchar))
            m_state = state::ext_token;
        else
            return fail(bad_char_reason(c, "malformed chunk extension"));
        return;
    case state::ext_quoted:
        if (c == '"')
            m_state = state::ext_after_quoted;
        else if (c == '\\')
            m_state = state::ext_quoted_pair;
        else if (!is(c, k_qdtext))
            return fail(bad_char_reason(c, "malformed chunk extension"));
        return;
    case state::ext_quoted_pair:
        if (!is(c, k_value))
            return fail(bad_char_reason(c, "malformed chunk extension"));
        m_state = state::ext_quoted;
        return;
    case state::ext_after_quoted:
        return end_of_element(c, "malformed chunk extension");
    case state::size_lf:
        if (c != '\n')
            return fail("bare CR");
        m_line_len = 0;
        m_digits = 0;
        // A zero size is the last chunk; its trailers follow.
        m_state = m_remaining == 0 ? state::trailer : state::data;
        return;
    case state::data_cr:
        return expect(c, '\r', state::data_lf, "chunk data not followed by CRLF");
    case state::data_lf:
        return expect(c, '\n', state::size, "chunk data not followed by CRLF");
    case state::trailer:
        if (c == '\r') {
            m_state = state::trailer_end_lf;
            return;
        }
        if (is_ows(c))
            return fail("obsolete line folding in trailer");
        if (!is(c, k_tchar))
            return fail(bad_char_reason(c, "invalid character in trailer name"));
        if (++m_trailer_fields > k_max_trailer_fields)
            return fail("too many trailer fields");
        m_name_len = 0;
        m_state = state::trailer_name;
        [[fallthrough]];
    case state::trailer_name:
        if (is(c, k_tchar)) {
            if (m_name_len < k_name_capacity)
                m_name[m_name_len] = ascii_lower(c);
            if (m_name_len <= k_name_capacity)
                ++m_name_len;
            return;
        }
        if (c != ':')
            return fail(is_ows(c) ? "whitespace before colon in trailer"
                                  : bad_char_reason(c, "invalid character in trailer name"));
        if (forbidden_trailer())
            return fail("framing or routing field in trailer");
        m_state = state::trailer_value;
        return;
    case state::trailer_value:
        if (c == '\r')
            m_state = state::trailer_lf;
        else if (!is(c, k_value))
            return fail(bad_char_reason(c, "control character in trailer value"));
        return;
    case state::trailer_lf:
        m_line_len = 0;
        return expect(c, '\n', state::trailer, "bare CR");
    case state::trailer_end_lf:
        return expect(c, '\n', state::done, "bare CR");
    case state::data:
    case state::done:
    case state::error:
        return;
    }
}

} // namespace weft::http::detail
