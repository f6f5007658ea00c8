// The HTTP/1.1 request parser: strict, incremental, allocation-free.
//
// The server reads into a connection buffer and calls parse_request_head()
// on the unconsumed bytes after every read; the head (request line and
// header fields) is parsed only once it is complete, and the views in
// request_head point into that buffer. Bodies are framed by the head
// (Content-Length, or chunked transfer coding decoded by chunked_decoder).
//
// Strictness (RFC 9112, and what request smuggling needs us to refuse):
//   - every line ends in CRLF; a bare CR or a bare LF anywhere in the head
//     or in chunk framing is an error;
//   - no whitespace before the colon of a field, none at the start of the
//     head, no obsolete line folding; field names are tokens; field values
//     are visible ASCII, obs-text, SP and HTAB (no CTLs, no NUL);
//   - method is a token, the target is non-empty and has no whitespace or
//     CTL, the version is exactly HTTP/1.0 or HTTP/1.1 (other HTTP/x.y ->
//     505);
//   - Content-Length is one or more decimal digits with no sign, at most
//     2^63 - 1; several Content-Length fields (or one with a list) must all
//     agree, else 400;
//   - Transfer-Encoding together with Content-Length is 400; a
//     Transfer-Encoding whose final coding is not "chunked" is 501 (HTTP/1.1)
//     or 400 (HTTP/1.0); "chunked" applied twice is 400; codings are bare
//     tokens (a parameter is 400); HTTP/1.0 with chunked is read but not
//     kept alive (RFC 9112 section 6.1);
//   - HTTP/1.1 without exactly one Host field is 400, and so is more than
//     one Host or a Host with characters no authority has, in any version;
//   - Connection and Proxy-Connection are lists of tokens, else 400;
//   - chunk sizes have at most 16 hex digits; extensions have no
//     whitespace; trailers follow the field rules above and may not be
//     Content-Length, Transfer-Encoding, Host, Connection or
//     Proxy-Connection;
//   - a head longer than limits.max_head_bytes before its end is found is
//     431, more than limits.max_fields fields is 431.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace weft::http::detail {

struct parse_limits {
    std::size_t max_head_bytes = 16 * 1024; // request line + fields + final CRLF
    std::size_t max_fields = 100;
};

struct header_field {
    std::string_view name;  // as sent (case preserved)
    std::string_view value; // leading and trailing SP/HTAB removed
};

enum class body_framing : std::uint8_t { none, content_length, chunked };

/// A parsed request head. Views point into the buffer given to
/// parse_request_head and are valid while it is unchanged.
struct request_head {
    static constexpr std::size_t k_max_fields = 100;

    std::string_view method;
    std::string_view target;
    int version_minor = 1; // HTTP/1.<version_minor>, 0 or 1
    header_field fields[k_max_fields];
    std::size_t field_count = 0;

    body_framing framing = body_framing::none;
    std::uint64_t content_length = 0; // with body_framing::content_length
    bool keep_alive = true;           // from version and Connection tokens
    bool expect_continue = false;     // Expect: 100-continue
    bool upgrade = false;             // Connection: upgrade with Upgrade

    /// The first field named `name` (ASCII case-insensitive), or empty.
    std::string_view field(std::string_view name) const noexcept;
};

enum class parse_status : std::uint8_t { complete, incomplete, error };

struct parse_result {
    parse_status status;
    std::size_t consumed = 0; // head bytes, including the final CRLF, when complete
    int error_status = 0;     // the HTTP status to answer with, when error (400, 431, 501, 505)
    const char* error = "";   // a short reason for logs, when error
};

/// Parses the request head at the start of `buf`. incomplete: no final
/// CRLF CRLF yet and nothing wrong so far (read more); the caller reports
/// 431 itself if the buffer is full. Leading empty lines (CRLF) before the
/// request line are skipped as RFC 9112 section 2.2 allows, counted in
/// consumed.
parse_result parse_request_head(std::string_view buf, request_head& head,
                                const parse_limits& limits = {}) noexcept;

/// Decodes the chunked transfer coding incrementally. Chunk extensions are
/// validated and ignored; trailer fields are validated and discarded.
///
/// Usage: feed bytes with decode(); each call consumes a prefix of the
/// input and returns at most one span of body data (which points into the
/// input). Call again with the rest until it needs more input or is done.
class chunked_decoder {
public:
    struct result {
        std::size_t consumed = 0; // bytes of input used, framing included
        std::string_view data;    // body bytes found (a view into the input)
        bool done = false;        // the last chunk and trailers are complete
        bool error = false;       // malformed framing: answer 400, close
        const char* reason = "";
    };

    /// max_line bounds a chunk-size line (extensions included) and each
    /// trailer line.
    explicit chunked_decoder(std::size_t max_line = 4096) noexcept : m_max_line(max_line) {}

    result decode(std::string_view in) noexcept;

private:
    // The byte the decoder expects next. Every input byte is consumed as it
    // is read, so a line split across calls needs no buffering: the state
    // (with the counters below) is all that is left of it.
    enum class state : std::uint8_t {
        size,             // chunk-size hex digits
        size_lf,          // the LF ending a chunk-size line
        ext_name_start,   // after ';' in a chunk extension
        ext_name,         // inside an extension name
        ext_value_start,  // after '='
        ext_token,        // inside a token value
        ext_quoted,       // inside a quoted-string value
        ext_quoted_pair,  // after '\' in a quoted-string
        ext_after_quoted, // after the closing '"'
        data,             // chunk data
        data_cr,          // the CR after chunk data
        data_lf,          // the LF after chunk data
        trailer,          // the start of a trailer line (or of the final CRLF)
        trailer_name,     // inside a trailer field name
        trailer_value,    // inside a trailer field value
        trailer_lf,       // the LF ending a trailer field line
        trailer_end_lf,   // the LF of the final CRLF
        done,
        error
    };

    // Trailers may not carry what frames or routes the message (RFC 9110
    // section 6.5.1); the longest such name is "transfer-encoding".
    static constexpr std::size_t k_name_capacity = 17;
    static constexpr std::size_t k_max_trailer_fields = 100;

    void step(char c) noexcept;
    void fail(const char* reason) noexcept;
    void expect(char c, char want, state next, const char* reason) noexcept;
    void end_of_element(char c, const char* reason) noexcept;
    bool forbidden_trailer() const noexcept;

    state m_state = state::size;
    std::size_t m_max_line;
    std::size_t m_line_len = 0;
    std::uint64_t m_remaining = 0; // bytes left in the current chunk
    std::uint8_t m_digits = 0;     // hex digits of the chunk size so far
    std::uint8_t m_name_len = 0;   // of the trailer name; k_name_capacity + 1 when longer
    std::size_t m_trailer_fields = 0;
    char m_name[k_name_capacity] = {}; // the trailer name, lower-cased, while it fits
    const char* m_reason = "";
};

} // namespace weft::http::detail
