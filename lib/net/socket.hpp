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
struct accept_queue;
struct recv_queue;

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
///   m_accepts likewise, the first time a listener accepts on io_uring with
///   multishot accept; freed with the state. m_recvs likewise, the first
///   time a stream reads through a multishot receive.
struct socket_state {
    explicit socket_state(int fd) noexcept : m_fd(fd) {}

    const int m_fd;
    std::atomic<std::uint32_t> m_refs{1};
    std::atomic<bool> m_closed{false};
    std::atomic<poll_desc*> m_poll{nullptr};
    std::atomic<accept_queue*> m_accepts{nullptr};
    std::atomic<recv_queue*> m_recvs{nullptr};
    /// Bit 1: a read, bit 2: a write is in progress (from its suspension
    /// to its finish), so that a second one of the same kind is refused,
    /// whichever way it would wait.
    std::atomic<std::uint8_t> m_busy{0};
    spinlock m_poll_lock;

    void acquire() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept;
    /// Marks closed and shuts the socket down; true the first time.
    bool close() noexcept;
    /// The poller registration, made on first use. Throws std::system_error.
    poll_desc* poll();
    /// The listener's accept queue, made on first use. Throws std::bad_alloc.
    accept_queue* accepts();
    /// The stream's receive queue, made on first use. Throws std::bad_alloc.
    recv_queue* recvs();
};

/// Connections a listener's multishot accept (io_uring) took ahead of the
/// tasks that accept them: one submission whose completions each bring a
/// descriptor, handed to the oldest waiting accept or queued for the next
/// one. Defined with the I/O code (io.cpp).
///
/// Invariants (m_lock guards the fields below it):
///   m_armed: a multishot accept is in the kernel for this queue, on the
///   ring of m_owner (io_completion); its completions run on that ring's
///   worker. While armed, the queue holds a reference on m_sock, dropped
///   with the final completion (no IORING_CQE_F_MORE).
///   m_fds: descriptors nobody took yet, oldest first. At k_accept_ahead the
///   multishot is cancelled (m_stopping) and further connections wait in
///   the kernel's backlog until an accept finds the queue empty and arms it
///   again.
///   m_first..m_last: accepts waiting, oldest first (io_wait::m_queue_next);
///   there are waiters only while the queue is armed.
///   m_closed: the listener was closed: no descriptor is queued any more.
struct accept_queue;
/// Frees q, closing the descriptors still queued.
void destroy_accept_queue(accept_queue* q) noexcept;
/// The listener is being closed: closes the queued descriptors and ends the
/// waiting accepts with net::closed.
void close_accept_queue(accept_queue* q) noexcept;

/// Bytes a stream's multishot receive (io_uring, provided buffers) took
/// ahead of its reader: one submission whose completions each bring the
/// bytes of one kernel-chosen buffer, copied straight into the waiting
/// read's buffer or kept here for the next read, so the provided buffer
/// goes back to the kernel at once. Defined with the I/O code (io.cpp).
///
/// Invariants (m_lock guards the fields below it):
///   m_armed: a multishot receive is in the kernel, on the ring of m_owner;
///   its completions run on that ring's worker. While armed, the queue
///   holds a reference on m_sock, dropped with the final completion.
///   m_data[m_head..]: bytes received that no read took yet. At
///   k_read_ahead bytes the multishot is cancelled (m_stopping) and further
///   bytes wait in the kernel's socket buffer (TCP flow control) until a
///   read finds the queue empty and arms it again.
///   m_waiter: the read waiting (at most one: a second is refused); there
///   is one only while the queue is armed and holds no bytes.
///   m_eof / m_error: the stream ended / an error ended the multishot; a
///   read reports them once the bytes before them are taken (m_error once).
///   m_closed: the stream was closed: no bytes are kept any more.
struct recv_queue;
void destroy_recv_queue(recv_queue* q) noexcept;
/// The stream is being closed: drops the bytes kept and ends the waiting
/// read with net::closed.
void close_recv_queue(recv_queue* q) noexcept;

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
