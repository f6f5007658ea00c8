// Socket operations (detail::io_wait) on both reactor backends.
//
// io_uring (the worker the task runs on has a ring): await_suspend queues
// the operation's SQE on that ring and suspends; the ring's worker submits
// it with the rest of its loop turn and, when the CQE arrives, resumes the
// task (uring_done). A send first tries the system call directly (it
// usually fits in the socket buffer); what is left goes through the ring,
// and a partial completion is resubmitted from uring_done, on the same
// ring, until everything is sent. Cancellation (the task's context) asks
// the ring to cancel the operation; the operation still completes through
// its CQE, so the kernel is done with the buffer before the task resumes.
//
// epoll: await_suspend tries the non-blocking system call first; if it
// would block, the operation waits in the socket's poll_desc slot and the
// poller that sees the socket ready runs the call itself (attempt) and
// resumes the task once it finished (poll_done). Cancellation takes the
// operation out of the slot.
//
// Either way the task resumes with m_result: bytes, a descriptor, -errno,
// or one of the k_* markers below; finish() turns it into a value or an
// exception.
//
// Invariants: between await_suspend and finish, the operation holds a
// reference on its socket_state (m_sock stays valid, the descriptor stays
// open). m_polled is set before the hook is registered and never changes
// during the wait, so withdraw knows which backend holds the operation.

#include <weft/detail/io_wait.hpp>
#include <weft/net/tcp.hpp>

#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <poll.h>
#include <sys/socket.h>

#include "../reactor/epoll/net_poller.hpp"
#include "../reactor/reactor.hpp"
#include "socket.hpp"
#if defined(WEFT_HAVE_URING)
#include "../reactor/uring/uring_reactor.hpp"
#endif

namespace weft::detail {

namespace {

constexpr std::int64_t k_canceled = INT64_MIN;
constexpr std::int64_t k_closed = INT64_MIN + 1;
constexpr std::int64_t k_concurrent = INT64_MIN + 2;

const char* what_of(io_wait::kind k) noexcept
{
    switch (k) {
    case io_wait::kind::recv:
        return "net read";
    case io_wait::kind::send_all:
        return "net write";
    case io_wait::kind::accept:
        return "net accept";
    case io_wait::kind::connect:
        return "net dial";
    }
    return "net";
}

int direction(io_wait::kind k) noexcept
{
    return k == io_wait::kind::send_all || k == io_wait::kind::connect ? 1 : 0;
}

} // namespace

struct io_wait_access {
    static io_wait* of(io_completion* c) noexcept { return static_cast<io_wait*>(c); }
    static io_wait* of(poll_waiter* p) noexcept { return static_cast<io_wait*>(p); }

#if defined(WEFT_HAVE_URING)
    static void submit(io_wait* w, uring_reactor* r) noexcept
    {
        io_uring_sqe* sqe = r->sqe();
        const int fd = w->m_sock->m_fd;
        switch (w->m_kind) {
        case io_wait::kind::recv:
            io_uring_prep_recv(sqe, fd, w->m_buf, w->m_len, 0);
            break;
        case io_wait::kind::send_all:
            io_uring_prep_send(sqe, fd, static_cast<char*>(w->m_buf) + w->m_done,
                               w->m_len - w->m_done, MSG_NOSIGNAL | MSG_WAITALL);
            break;
        case io_wait::kind::accept:
            io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            break;
        case io_wait::kind::connect:
            io_uring_prep_connect(sqe, fd, reinterpret_cast<sockaddr*>(w->m_addr),
                                  w->m_addr_len);
            break;
        }
        r->track(sqe, w);
    }

    // Submits w again after a partial or interrupted completion, unless
    // a cancel arrived since the last submission (cancel() saw it
    // completed and queued nothing).
    static void resubmit(io_wait* w) noexcept
    {
        auto prev = w->m_state.fetch_and(~io_completion::k_completed, std::memory_order_acq_rel);
        if (prev & io_completion::k_cancel_wanted) {
            w->m_result = -ECANCELED;
            wake_waiter(w->m_task);
            return;
        }
        submit(w, static_cast<uring_reactor*>(w->m_owner));
    }

    // On the ring's worker, once per submission (see uring_reactor).
    static void uring_done(io_completion* c) noexcept
    {
        io_wait* w = of(c);
        const std::int32_t res = c->m_res;
        if (w->m_uring_poll) {
            // The readiness poll below completed: try the call again.
            w->m_uring_poll = false;
            return resubmit(w);
        }
        if (res == -EINTR)
            return resubmit(w);
        if (res == -EAGAIN) {
            // Kernels that treat a non-blocking socket's operation as
            // non-blocking inside the ring too: wait for readiness first.
            auto prev = w->m_state.fetch_and(~io_completion::k_completed,
                                             std::memory_order_acq_rel);
            if (prev & io_completion::k_cancel_wanted) {
                w->m_result = -ECANCELED;
                wake_waiter(w->m_task);
                return;
            }
            auto r = static_cast<uring_reactor*>(c->m_owner);
            io_uring_sqe* sqe = r->sqe();
            io_uring_prep_poll_add(sqe, w->m_sock->m_fd, direction(w->m_kind) ? POLLOUT : POLLIN);
            w->m_uring_poll = true;
            r->track(sqe, w);
            return;
        }
        if (w->m_kind == io_wait::kind::send_all && res > 0) {
            w->m_done += static_cast<std::size_t>(res);
            if (w->m_done < w->m_len)
                return resubmit(w);
            w->m_result = static_cast<std::int64_t>(w->m_done);
        } else {
            w->m_result = res;
        }
        wake_waiter(w->m_task);
    }
#endif

    // The non-blocking system call; false if it would block.
    static bool attempt(poll_waiter* p) noexcept
    {
        io_wait* w = of(p);
        const int fd = w->m_sock->m_fd;
        for (;;) {
            switch (w->m_kind) {
            case io_wait::kind::recv: {
                ssize_t n = ::recv(fd, w->m_buf, w->m_len, MSG_DONTWAIT);
                if (n >= 0) {
                    w->m_result = n;
                    return true;
                }
                break;
            }
            case io_wait::kind::send_all: {
                ssize_t n = ::send(fd, static_cast<char*>(w->m_buf) + w->m_done,
                                   w->m_len - w->m_done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n >= 0) {
                    w->m_done += static_cast<std::size_t>(n);
                    if (w->m_done == w->m_len) {
                        w->m_result = static_cast<std::int64_t>(w->m_done);
                        return true;
                    }
                    continue;
                }
                break;
            }
            case io_wait::kind::accept: {
                int s = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (s >= 0) {
                    w->m_result = s;
                    return true;
                }
                if (errno == ECONNABORTED)
                    continue; // that connection is gone: take the next
                break;
            }
            case io_wait::kind::connect: {
                if (!w->m_connecting) {
                    w->m_connecting = true;
                    if (::connect(fd, reinterpret_cast<sockaddr*>(w->m_addr), w->m_addr_len) == 0) {
                        w->m_result = 0;
                        return true;
                    }
                    if (errno == EINPROGRESS)
                        return false;
                    break;
                }
                int err = 0;
                socklen_t len = sizeof err;
                if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                    err = errno;
                if (err) {
                    w->m_result = -err;
                    return true;
                }
                sockaddr_storage peer;
                socklen_t plen = sizeof peer;
                if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) {
                    w->m_result = 0;
                    return true;
                }
                if (errno == ENOTCONN)
                    return false; // a readiness edge from before: still connecting
                break;
            }
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return false;
            w->m_result = -errno;
            return true;
        }
    }

    static void poll_done(poll_waiter* p) noexcept { wake_waiter(of(p)->m_task); }

    // The canceller's side (see detail/cancel.hpp).
    static void withdraw(wait_hook* h) noexcept
    {
        auto w = static_cast<io_wait*>(h->m_op);
        if (w->m_polled) {
            if (net_poller::instance().withdraw(w->m_sock->m_poll.load(std::memory_order_acquire),
                                                direction(w->m_kind), w)) {
                w->m_result = k_canceled;
                h->m_canceled = true;
                wake_waiter(h->m_task);
            }
            return;
        }
#if defined(WEFT_HAVE_URING)
        static_cast<uring_reactor*>(w->m_owner)->cancel(w);
#endif
    }

    static bool suspend(io_wait* w, std::coroutine_handle<> h)
    {
        task_header* t = require_task(what_of(w->m_kind));
        if (!w->m_sock || w->m_sock->m_closed.load(std::memory_order_acquire)) {
            w->m_result = k_closed;
            return false;
        }
        t->m_resume = h;
        w->m_task = t;
        w->m_sock->acquire();
        w->m_held = true;
        reactor* r = current_reactor();
#if defined(WEFT_HAVE_URING)
        if (r && r->kind() == reactor_kind::io_uring) {
            // A send usually fits in the socket buffer: one system call now
            // costs less than a trip through the ring and a suspension.
            // Whatever does not fit goes through the ring.
            if (w->m_kind == io_wait::kind::send_all && attempt(w))
                return false;
            auto ur = static_cast<uring_reactor*>(r);
            w->m_owner = ur;
            w->io_completion::m_complete = &uring_done;
            if (!hook_begin(w->m_hook, t, w, &withdraw)) {
                w->m_result = k_canceled;
                return false;
            }
            submit(w, ur);
            return w->m_hook.registered() ? hook_suspend(w->m_hook) : true;
        }
#endif
        (void)r;
        return suspend_polled(w, t);
    }

    static bool suspend_polled(io_wait* w, task_header* t)
    {
        w->m_polled = true;
        w->m_attempt = &attempt;
        w->poll_waiter::m_complete = &poll_done;
        poll_desc* d = w->m_sock->poll();
        net_poller& np = net_poller::instance();
        bool hooked = false;
        for (;;) {
            if (attempt(w))
                return false;
            if (!hooked) {
                hooked = true;
                if (!hook_begin(w->m_hook, t, w, &withdraw)) {
                    w->m_result = k_canceled;
                    return false;
                }
            }
            // Read before arming: once armed, an unregistered wait may be
            // completed and its frame freed by a poller on another thread.
            const bool registered = w->m_hook.registered();
            const int dir = direction(w->m_kind);
            int armed = np.arm(d, dir, w);
            if (armed == 0)
                continue; // readiness came meanwhile: try again
            if (armed < 0) {
                w->m_result = k_concurrent;
                return false;
            }
            if (!registered)
                return true; // may be resumed already: hands off the frame
            // Cancelled before it was armed: the canceller found nothing
            // to withdraw, so withdraw here.
            if (w->m_hook.scope()->cancelled() && np.withdraw(d, dir, w)) {
                w->m_hook.set_canceled();
                w->m_result = k_canceled;
                return false;
            }
            return hook_suspend(w->m_hook);
        }
    }

    static std::int64_t finish(io_wait* w)
    {
        const bool canceled = hook_end(w->m_hook);
        const std::int64_t r = w->m_result;
        bool closed = false;
        if (w->m_held) {
            w->m_held = false;
            closed = w->m_sock->m_closed.load(std::memory_order_acquire);
            w->m_sock->release();
        }
        if (r == k_closed)
            throw net::closed();
        if (canceled || r == k_canceled)
            throw_canceled();
        if (r == k_concurrent)
            throw std::logic_error(std::string("weft::net: another ") + what_of(w->m_kind) +
                                   " is in progress on this socket");
        if (r == -ECANCELED) {
            auto scope = task_scope(current_task());
            if (scope && scope->cancelled())
                throw_canceled();
        }
        // Whatever close() interrupted ends as net::closed, but bytes that
        // arrived first are still the reader's.
        if (closed && (r < 0 || (r == 0 && w->m_kind == io_wait::kind::recv)))
            throw net::closed();
        if (r < 0) {
            const char* what = w->m_kind == io_wait::kind::recv       ? "weft::net: read"
                               : w->m_kind == io_wait::kind::send_all ? "weft::net: write"
                               : w->m_kind == io_wait::kind::accept   ? "weft::net: accept"
                                                                      : "weft::net: dial";
            throw std::system_error(static_cast<int>(-r), std::system_category(), what);
        }
        return r;
    }
};

io_wait::~io_wait()
{
    // Destroyed while waiting (the runtime is shutting down; the workers
    // have stopped and the kernel has let go of the operation).
    if (m_polled && m_held && m_sock->m_poll.load(std::memory_order_acquire))
        net_poller::instance().withdraw(m_sock->m_poll.load(std::memory_order_acquire),
                                        direction(m_kind), this);
    hook_end(m_hook);
    if (m_held)
        m_sock->release();
}

bool io_wait::await_suspend(std::coroutine_handle<> h) { return io_wait_access::suspend(this, h); }

std::int64_t io_wait::finish() { return io_wait_access::finish(this); }

void io_wait::set_address(const void* addr, std::uint32_t len) noexcept
{
    std::memcpy(m_addr, addr, len < sizeof m_addr ? len : sizeof m_addr);
    m_addr_len = len;
}

} // namespace weft::detail
