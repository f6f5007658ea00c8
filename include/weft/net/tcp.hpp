// TCP streams and listeners. [net]
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include <weft/detail/io_wait.hpp>
#include <weft/task.hpp>

namespace weft::net {

/// Thrown by an operation on a stream or listener that was closed, and by
/// an operation that was waiting when close() was called.
class closed : public std::runtime_error {
public:
    closed() : std::runtime_error("weft::net: use of a closed connection") {}
};

class tcp_stream;

/// co_await: the number of bytes read into the buffer, 0 at the end of the
/// stream (the peer shut its side down).
class [[nodiscard]] read_operation : public detail::io_wait {
public:
    using detail::io_wait::io_wait;
    std::size_t await_resume() { return static_cast<std::size_t>(finish()); }
};

/// co_await: returns once every byte was handed to the kernel.
class [[nodiscard]] write_operation : public detail::io_wait {
public:
    using detail::io_wait::io_wait;
    void await_resume() { (void)finish(); }
};

/// co_await: the accepted connection.
class [[nodiscard]] accept_operation : public detail::io_wait {
public:
    using detail::io_wait::io_wait;
    tcp_stream await_resume();
};

/// A connected TCP socket. The handle owns it: destroying or closing the
/// handle closes the socket. Move-only.
///
/// Thread safety: one read_some and one write_all may be in progress at
///   once (from different tasks); a second read (or write) while one is in
///   progress throws std::logic_error. close() may be called from any task
///   at any time and ends both with net::closed. Other members are not to
///   be called concurrently with each other.
/// Resumption: a task waiting in read_some/write_all resumes on a worker of
///   the pool (with io_uring, the one whose ring completed the operation).
/// Cancellation: the operations obey the task's context: a cancelled task's
///   pending read or write ends promptly with canceled_error (a write may
///   have sent part of its bytes). A read that completed before the
///   cancellation took effect returns its bytes.
/// Errors: std::system_error with the errno (ECONNRESET, EPIPE, ...).
/// Lifetime: the buffer of an operation must outlive its co_await.
/// Receiving ahead (io_uring, Linux 6.0 and later): from its first read on
///   (into a buffer under 64 KiB), a stream keeps one multishot receive in
///   the kernel that fills buffers of its worker's ring as bytes arrive;
///   they are copied into the waiting read's buffer, or kept (up to 64 KiB,
///   then TCP flow control holds the rest in the kernel) for the next read,
///   which then returns without a system call. A stream waiting to read
///   holds no buffer in the kernel. Cancelling a waiting read loses no
///   bytes; close() drops what was kept. WEFT_URING_MULTISHOT=0 turns this
///   off (one submission per read); a stream whose reads all use 64 KiB or
///   more reads straight into them.
class tcp_stream {
public:
    tcp_stream() noexcept = default;
    tcp_stream(tcp_stream&& o) noexcept : m_sock(o.m_sock) { o.m_sock = nullptr; }
    tcp_stream& operator=(tcp_stream&& o) noexcept;
    ~tcp_stream();

    /// Reads what is available, at most buf.size() bytes, waiting until at
    /// least one byte (or the end of the stream) arrives.
    read_operation read_some(std::span<std::byte> buf) noexcept
    {
        return read_operation(m_sock, detail::io_wait::kind::recv, buf.data(), buf.size());
    }
    read_operation read_some(std::span<char> buf) noexcept
    {
        return read_operation(m_sock, detail::io_wait::kind::recv, buf.data(), buf.size());
    }

    /// Writes all of buf.
    write_operation write_all(std::span<const std::byte> buf) noexcept
    {
        return write_operation(m_sock, detail::io_wait::kind::send_all,
                               const_cast<std::byte*>(buf.data()), buf.size());
    }
    write_operation write_all(std::string_view s) noexcept
    {
        return write_operation(m_sock, detail::io_wait::kind::send_all,
                               const_cast<char*>(s.data()), s.size());
    }

    /// Closes the connection; operations in progress end with net::closed.
    /// Idempotent.
    void close() noexcept;
    /// Shuts the sending side down (the peer reads end of stream).
    void shutdown_write();
    /// False once closed (or for a default-constructed stream).
    bool is_open() const noexcept;

    /// "host:port" of the peer / of this end ("[::1]:8080" for IPv6).
    std::string remote_address() const;
    std::string local_address() const;

    /// TCP_NODELAY (on by default, as in Go).
    void set_no_delay(bool on);
    int native_handle() const noexcept;

private:
    friend class accept_operation;
    friend class tcp_listener;
    friend task<tcp_stream> dial(std::string address);
    explicit tcp_stream(detail::socket_state* s) noexcept : m_sock(s) {}

    detail::socket_state* m_sock = nullptr;
};

/// A listening TCP socket.
///
/// Thread safety: accept() may be awaited by several tasks at once (each
///   connection goes to one of them, the longest waiting first); close()
///   from any task ends every pending accept with net::closed.
/// Resumption: on a worker of the pool (with io_uring, the one whose ring
///   accepted the connection).
/// Cancellation: a pending accept of a cancelled task ends promptly with
///   canceled_error; no connection is lost (the next accept gets it).
/// Accepting ahead (io_uring, Linux 5.19 and later): from its first accept
///   on, a listener keeps one multishot accept in the kernel and queues up
///   to 32 connections that arrive while no task is accepting, so that a
///   busy accept loop takes them without a system call; beyond that they
///   wait in the kernel's backlog. close() closes the queued connections.
///   The kernel applies the descriptor limit (RLIMIT_NOFILE) that held when
///   the multishot accept was started. WEFT_URING_MULTISHOT=0 turns this
///   off (one submission per accept).
/// Errors: accept throws std::system_error for errors such as EMFILE (too
///   many open files); the listener stays usable, so a server loop logs,
///   backs off briefly and accepts again.
class tcp_listener {
public:
    /// Binds and listens: "127.0.0.1:8080", "[::1]:0", ":8080" (every
    /// interface), "localhost:0"; port 0 picks a free port (local_address()
    /// tells which). Throws std::system_error (EADDRINUSE, ...) or
    /// std::invalid_argument for an address it cannot parse.
    static tcp_listener listen(std::string_view address, int backlog = 4096);

    tcp_listener() noexcept = default;
    tcp_listener(tcp_listener&& o) noexcept : m_sock(o.m_sock) { o.m_sock = nullptr; }
    tcp_listener& operator=(tcp_listener&& o) noexcept;
    ~tcp_listener();

    accept_operation accept() noexcept
    {
        return accept_operation(m_sock, detail::io_wait::kind::accept, nullptr, 0);
    }

    std::string local_address() const;
    /// The port local_address() names.
    unsigned short port() const;
    void close() noexcept;
    /// False once closed (or for a default-constructed listener).
    bool is_open() const noexcept;
    int native_handle() const noexcept;

private:
    explicit tcp_listener(detail::socket_state* s) noexcept : m_sock(s) {}
    detail::socket_state* m_sock = nullptr;
};

/// Connects to "host:port" (numeric IPv4/IPv6 or localhost; ":port" is
/// the local machine). Throws std::system_error (ECONNREFUSED, ...),
/// std::invalid_argument, or canceled_error when the task's context ends
/// first.
task<tcp_stream> dial(std::string address);

} // namespace weft::net
