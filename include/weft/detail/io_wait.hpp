// The awaiter core of socket operations (weft::net), shared by both
// reactor backends. Compiled code in lib/net does the work; this header
// only lays out what must live in the awaiting frame.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>

#include <weft/detail/cancel.hpp>

namespace weft::detail {

class reactor;

/// One operation submitted to a worker's io_uring reactor. It lives in the
/// awaiting task's frame until the reactor hands it back through
/// m_complete, which happens once per submission, on the reactor's thread,
/// after the operation's CQE arrived and after any cancel request for it
/// left the reactor's cancel list; so the task that owns it never resumes
/// (and frees it) while the kernel or the reactor still refers to it.
///
/// m_state bits (see uring_reactor):
///   k_cancel_queued: on the reactor's cancel list;
///   k_completed:     the CQE of the current submission arrived;
///   k_cancel_wanted: cancel() was called (sticky).
struct io_completion {
    static constexpr std::uint32_t k_cancel_queued = 1;
    static constexpr std::uint32_t k_completed = 2;
    static constexpr std::uint32_t k_cancel_wanted = 4;

    void (*m_complete)(io_completion*) noexcept = nullptr;
    /// Multishot submissions only: what the reactor does with a completion
    /// that arrives while it shuts down (quiesce), when m_complete must not
    /// run any more; nullptr for everything else.
    void (*m_quiesced)(io_completion*) noexcept = nullptr;
    io_completion* m_cancel_next = nullptr;
    reactor* m_owner = nullptr;
    std::int32_t m_res = 0;
    std::uint32_t m_cqe_flags = 0;
    std::atomic<std::uint32_t> m_state{0};
};

/// One operation waiting for readiness on the epoll backend. The poller
/// that sees the socket ready runs m_attempt (the non-blocking system call)
/// itself and, once it is finished, hands the operation back through
/// m_complete; so both backends resume the task with a result.
struct poll_waiter {
    bool (*m_attempt)(poll_waiter*) noexcept = nullptr; // false: would block
    void (*m_complete)(poll_waiter*) noexcept = nullptr;
};

struct socket_state;

/// One socket operation of a task: receive, send everything, accept or
/// connect. Not movable: it is the kernel's or the poller's reference until
/// the operation is handed back.
class io_wait : private io_completion, private poll_waiter {
public:
    enum class kind : std::uint8_t { recv, send_all, accept, connect };

    io_wait(socket_state* s, kind k, void* buf, std::size_t len) noexcept
        : m_sock(s), m_buf(buf), m_len(len), m_kind(k)
    {
    }
    io_wait(const io_wait&) = delete;
    io_wait& operator=(const io_wait&) = delete;
    ~io_wait();

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<>);

protected:
    /// After the wait: the operation's result (bytes, a descriptor), or
    /// throws canceled_error, net::closed or std::system_error.
    std::int64_t finish();

    /// The peer address of a connect, as sockaddr bytes.
    void set_address(const void* addr, std::uint32_t len) noexcept;

private:
    friend struct io_wait_access;

    socket_state* m_sock;
    void* m_buf;
    std::size_t m_len;
    std::size_t m_done = 0;
    task_header* m_task = nullptr;
    io_wait* m_queue_next = nullptr; // accept_queue's waiters (io_uring)
    std::int64_t m_result = 0;
    op_hook<io_wait> m_hook;
    alignas(8) unsigned char m_addr[28] = {};
    std::uint32_t m_addr_len = 0;
    kind m_kind;
    bool m_polled = false;     // waiting on the epoll path
    bool m_held = false;       // holds a reference on m_sock
    bool m_connecting = false; // connect() was called (epoll path)
    bool m_uring_poll = false; // a readiness poll stands in for it (io_uring)
    bool m_queued = false;     // waits in the listener's accept_queue or the stream's recv_queue
    std::uint8_t m_busy = 0;   // its bit of socket_state::m_busy, while it holds it
};

} // namespace weft::detail
