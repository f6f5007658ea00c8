// The server's private types, shared by server.cpp and mux.cpp.
#pragma once

#include <weft/http/server.hpp>
#include <weft/runtime.hpp>
#include <weft/time.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "parser.hpp"

namespace weft::detail {
struct task_header;
class context_node;
} // namespace weft::detail

namespace weft::http {

struct server::impl {
    impl(handler h, server_options o) : m_handler(std::move(h)), m_opts(std::move(o)) {}

    handler m_handler;
    server_options m_opts;
    std::atomic<bool> m_shutdown{false};
    mutable std::mutex m_lock;
    std::unordered_set<detail::conn*> m_conns;          // guarded by m_lock
    std::unordered_set<net::tcp_listener*> m_listeners; // guarded by m_lock
};

namespace detail {

std::string_view date_now() noexcept;
std::string percent_decode(std::string_view s, bool plus_is_space);

struct conn;

/// What a connection shares with its read-deadline timer's callback, which
/// may run on another worker and after the connection is gone (it holds a
/// reference).
///
/// The timer is not stopped after every read: a keep-alive connection would
/// pay a heap removal and insertion per request. It stays armed at most
/// `slack` after the deadline of the read that armed it, and a later read
/// whose deadline is at most `slack` before that time keeps it; so a read
/// times out between its deadline and `slack` after it. The callback cancels
/// only a read whose deadline has passed. Protocol (seq_cst on `due` and
/// `fired`): the callback sets `fired`, then reads `due`; a read stores
/// `due`, then reads `fired`. Either the callback sees the read's deadline,
/// or the read sees that the timer fired and arms it again.
struct read_deadline {
    std::atomic<std::int64_t> due{0};   ///< the waiting read's deadline (now_ns), 0: no read waits
    std::atomic<bool> fired{false};     ///< the timer fired since the connection last armed it
    std::atomic<bool> timed_out{false}; ///< a read outlived its deadline
};

/// What a request handle refers to; one per connection, reused.
struct request_state {
    explicit request_state(conn& c) noexcept : m_conn(&c) {}

    conn* m_conn;
    const http::detail::request_head* m_head = nullptr;
    std::string_view m_path;
    std::string_view m_query;
    std::string_view m_body;
    std::vector<std::pair<std::string_view, std::string_view>> m_path_values;
    // The request context, made on first use (request::context()).
    weft::context m_ctx;
    cancel_func m_ctx_cancel;
    bool m_ctx_cancel_set = false;
    bool m_swapped = false; // the connection task runs under m_ctx
    weft::detail::context_node* m_saved_ctx = nullptr;
    join_handle<std::size_t> m_watch;
    bool m_watching = false;
};

/// One connection and its task's state.
struct conn {
    static constexpr int k_idle = 0;    // waiting for the first byte of a request
    static constexpr int k_reading = 1; // a request is arriving
    static constexpr int k_active = 2;  // its handler runs

    conn(std::shared_ptr<server::impl> s, net::tcp_stream stream);
    ~conn();

    task<> run();
    task<> serve();
    /// Reads more into the buffer before `deadline` (weft::detail::now_ns
    /// nanoseconds); a zero deadline is set to now + timeout_ns first.
    task<std::size_t> read_more(std::int64_t& deadline, std::int64_t timeout_ns);
    task<> send_out();
    task<> reply_error(int status);
    task<> flush(response_writer& w);
    task<> end_request();
    void finish_response(response_writer& w);
    void ensure_space(std::size_t want);
    const weft::context& request_context();
    /// Shutdown ran out of time: end everything (any thread).
    void abort() noexcept;

    std::shared_ptr<server::impl> m_srv;
    net::tcp_stream m_stream;
    weft::detail::task_header* m_task = nullptr;
    std::atomic<int> m_state{k_idle};

    std::unique_ptr<char[]> m_buf;
    std::size_t m_cap = 0;
    std::size_t m_start = 0;
    std::size_t m_end = 0;
    bool m_moved = false; // the buffer moved since the head was parsed
    std::string m_out;
    std::string m_chunk_body;

    request_state m_rs;
    response_writer m_writer;
    bool m_head_only = false;
    bool m_keep_alive = true;
    bool m_partial = false;   // part of a request is in
    bool m_peer_gone = false; // the watcher saw the client leave

    weft::context m_read_ctx;
    cancel_func m_read_cancel;
    std::shared_ptr<read_deadline> m_rd = std::make_shared<read_deadline>();
    weft::timer m_deadline{nullptr};
    std::int64_t m_armed_at = 0; // when m_deadline fires if m_rd->fired is false; 0: never armed
};

bool allows_body(int status) noexcept;
void append_head(std::string& out, response_writer& w, int version_minor, bool keep_alive,
                 bool chunked, bool content_length, std::size_t length);
void append_chunk(std::string& out, std::string_view data);

} // namespace detail
} // namespace weft::http
