// Sockets shared by handles and the operations in progress on them.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include <sys/socket.h>

#include <weft/detail/spinlock.hpp>

namespace weft::detail {

struct poll_desc;

/// A socket and its registration with the net poller.
///
/// Invariants:
///   m_refs counts the handle (until it is destroyed) and every operation
///   between its await_suspend and its finish; the last release closes
///   m_fd and frees the state, so a descriptor number is never reused while
///   an operation could still name it.
///   m_closed goes false -> true once (close()); the socket is shut down
///   then, which ends the operations waiting on it.
///   m_poll is set once, under m_poll_lock, the first time an operation
///   waits on the epoll path; read without the lock after that.
struct socket_state {
    explicit socket_state(int fd) noexcept : m_fd(fd) {}

    const int m_fd;
    std::atomic<std::uint32_t> m_refs{1};
    std::atomic<bool> m_closed{false};
    std::atomic<poll_desc*> m_poll{nullptr};
    spinlock m_poll_lock;

    void acquire() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept;
    /// Marks closed and shuts the socket down; true the first time.
    bool close() noexcept;
    /// The poller registration, made on first use. Throws std::system_error.
    poll_desc* poll();
};

/// A parsed address: what bind/connect take.
struct socket_address {
    sockaddr_storage m_addr{};
    socklen_t m_len = 0;
    int family() const noexcept { return m_addr.ss_family; }
};

/// Parses "host:port", "[v6]:port", ":port", "localhost:port". `for_listen`:
/// an empty host means every interface (IPv6 and IPv4), else the loopback.
/// Throws std::invalid_argument.
socket_address parse_address(std::string_view address, bool for_listen);

/// "1.2.3.4:80", "[::1]:80"; IPv4-mapped IPv6 addresses print as IPv4.
std::string format_address(const sockaddr* sa, socklen_t len);

/// A new non-blocking, close-on-exec TCP socket. Throws std::system_error.
int new_tcp_socket(int family);

} // namespace weft::detail
