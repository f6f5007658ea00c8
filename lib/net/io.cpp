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
// Reading on io_uring (where the kernel has multishot receive, 6.0): a
// stream's recv_queue keeps one multishot receive in the kernel that
// selects buffers from the ring's provided-buffer group. A completion's
// bytes are copied into the waiting read's buffer (the rest, or all of them
// when nobody waits, into the queue) and the provided buffer goes back to
// the kernel at once, on the ring's worker; so a read finds bytes that came
// early without a system call, a stream waiting to read holds no buffer of
// its own in the kernel, and a keep-alive connection costs no submission
// per request. Cancelling a waiting read takes it out of the queue; the
// multishot stays. A read into 64 KiB or more on a stream that never read
// through the queue goes straight into its buffer instead (one submission).
//
// Accepting on io_uring (where the kernel has multishot accept, 5.19): the
// listener's accept_queue keeps one multishot accept in the kernel while
// tasks want connections; each completion hands its descriptor to the
// oldest waiting accept, or queues it so that the next accept returns at
// once. Cancelling a waiting accept takes it out of the queue's list.
//
// Either way the task resumes with m_result: bytes, a descriptor, -errno,
// or one of the k_* markers below; finish() turns it into a value or an
// exception.
//
// Invariants: between await_suspend and finish, the operation holds a
// reference on its socket_state (m_sock stays valid, the descriptor stays
// open), and a read or write holds its bit of socket_state::m_busy.
// m_polled is set before the hook is registered and never changes during
// the wait, so withdraw knows which backend holds the operation.

#include <weft/detail/io_wait.hpp>
#include <weft/net/tcp.hpp>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <algorithm>
#include <deque>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

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

/// Connections an accept_queue takes ahead before it stops accepting.
constexpr std::size_t k_accept_ahead = 32;

/// Bytes a multishot receive takes ahead of the reader before it stops.
constexpr std::size_t k_read_ahead = 64 * 1024;

/// A read into a buffer at least this big, on a stream that never read
/// through the receive queue, goes straight into the reader's buffer (one
/// submission): bulk transfers gain nothing from 4 KiB provided buffers
/// and a copy.
constexpr std::size_t k_direct_read = 64 * 1024;

#if defined(WEFT_HAVE_URING)
/// Is the running kernel at least major.minor? WEFT_URING_MULTISHOT=0
/// answers no (each accept and receive is then one submission).
bool multishot_kernel(unsigned want_major, unsigned want_minor) noexcept
{
    if (const char* e = std::getenv("WEFT_URING_MULTISHOT"); e && std::strcmp(e, "0") == 0)
        return false;
    utsname u{};
    if (::uname(&u) != 0)
        return false;
    unsigned major = 0, minor = 0;
    if (std::sscanf(u.release, "%u.%u", &major, &minor) != 2)
        return false;
    return major > want_major || (major == want_major && minor >= want_minor);
}

/// Multishot accept needs Linux 5.19.
bool multishot_accept_enabled() noexcept
{
    static const bool enabled = multishot_kernel(5, 19);
    return enabled;
}

/// Multishot receive with provided buffers needs Linux 6.0.
bool multishot_recv_enabled() noexcept
{
    static const bool enabled = multishot_kernel(6, 0);
    return enabled;
}
#endif

} // namespace

/// What the accept and receive queues share: one multishot submission on
/// the ring of m_owner and the tasks that wait for what it brings.
struct multishot_queue : io_completion {
    explicit multishot_queue(socket_state* s) noexcept : m_sock(s) {}

    socket_state* const m_sock;
    spinlock m_lock;
    bool m_armed = false;
    bool m_stopping = false;
    bool m_closed = false;
    /// Counted as an idle multishot by m_owner (armed, nobody waiting).
    bool m_idle_counted = false;
    /// An error completion no waiting operation took: the next one reports
    /// it (EMFILE, ECONNRESET and the like), as a single submission would
    /// have.
    int m_error = 0;
};

struct accept_queue : multishot_queue {
    using multishot_queue::multishot_queue;
    ~accept_queue()
    {
        for (int fd : m_fds)
            ::close(fd);
    }

    std::deque<int> m_fds;
    io_wait* m_first = nullptr;
    io_wait* m_last = nullptr;
    /// epoll: the accept that waits for readiness (the others queue).
    io_wait* m_poll_owner = nullptr;
};

struct recv_queue : multishot_queue {
    using multishot_queue::multishot_queue;

    bool m_eof = false;
    std::size_t m_head = 0;
    std::vector<char> m_data;
    io_wait* m_waiter = nullptr;
};

namespace {

// A socket's queue, made the first time it is asked for (under the
// socket's m_poll_lock; read without a lock once set).
template <class Queue>
Queue* queue_of(socket_state* s, std::atomic<Queue*>& slot)
{
    if (Queue* q = slot.load(std::memory_order_acquire))
        return q;
    spin_guard g(s->m_poll_lock);
    if (Queue* q = slot.load(std::memory_order_relaxed))
        return q;
    auto q = new Queue(s);
    slot.store(q, std::memory_order_release);
    return q;
}

} // namespace

recv_queue* socket_state::recvs() { return queue_of(this, m_recvs); }

void destroy_recv_queue(recv_queue* q) noexcept { delete q; }

accept_queue* socket_state::accepts() { return queue_of(this, m_accepts); }

void destroy_accept_queue(accept_queue* q) noexcept { delete q; }

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

    // ---- the listener's accept queue: tasks waiting to accept, and on
    // io_uring the connections a multishot accept took ahead; on epoll,
    // one accept at a time waits for readiness (m_poll_owner) and the
    // others queue behind it.

    // Under q->m_lock, after any change to m_armed or the waiters: keeps
    // the ring's count of multishots nobody waits on right (deadlock
    // detection must not take them for pending work).
    static void set_idle([[maybe_unused]] multishot_queue* q,
                         [[maybe_unused]] bool waited_on) noexcept
    {
#if defined(WEFT_HAVE_URING)
        const bool idle = q->m_armed && !waited_on;
        if (idle == q->m_idle_counted)
            return;
        q->m_idle_counted = idle;
        static_cast<uring_reactor*>(q->m_owner)->count_idle_multishot(idle ? 1 : -1);
#endif
    }
    static void update_idle(accept_queue* q) noexcept { set_idle(q, q->m_first != nullptr); }
    static void update_idle(recv_queue* q) noexcept { set_idle(q, q->m_waiter != nullptr); }

    /// Under q->m_lock: an error completion (res < 0) of a multishot goes
    /// to the operation w taken from the queue, or, nobody waiting, stays
    /// for the next one. Returns the operation to resume, if any.
    static io_wait* hand_error(multishot_queue* q, io_wait* w, int res) noexcept
    {
        if (w)
            w->m_result = res;
        else
            q->m_error = -res;
        return w;
    }

    static io_wait* pop_waiter(accept_queue* q) noexcept
    {
        io_wait* w = q->m_first;
        if (w) {
            q->m_first = w->m_queue_next;
            if (!q->m_first)
                q->m_last = nullptr;
            w->m_queue_next = nullptr;
            w->m_queued = false;
        }
        return w;
    }

    static void enqueue(accept_queue* q, io_wait* w) noexcept
    {
        w->m_queued = true;
        w->m_queue_next = nullptr;
        (q->m_last ? q->m_last->m_queue_next : q->m_first) = w;
        q->m_last = w;
    }

    // Under q->m_lock, before an accept queues: true (and w's result set)
    // if it must not wait because the listener is closed or the task's
    // context is done.
    static bool must_not_wait(accept_queue* q, io_wait* w) noexcept
    {
        if (q->m_closed || w->m_sock->m_closed.load(std::memory_order_acquire)) {
            w->m_result = k_closed;
            return true;
        }
        if (hook_cancelled(w->m_hook)) {
            w->m_result = k_canceled;
            return true;
        }
        return false;
    }

    static void unlink_waiter(accept_queue* q, io_wait* w) noexcept
    {
        io_wait* prev = nullptr;
        for (io_wait* x = q->m_first; x; prev = x, x = x->m_queue_next) {
            if (x != w)
                continue;
            (prev ? prev->m_queue_next : q->m_first) = w->m_queue_next;
            if (q->m_last == w)
                q->m_last = prev;
            w->m_queue_next = nullptr;
            w->m_queued = false;
            return;
        }
    }

    // Hands a result to waiters unlinked into a list, after the lock.
    static void wake_list(io_wait* w) noexcept
    {
        while (w) {
            io_wait* next = w->m_queue_next;
            w->m_queue_next = nullptr;
            wake_waiter(w->m_task);
            w = next;
        }
    }

    // Under q->m_lock: ends every waiting accept with net::closed; returns
    // them for wake_list.
    static io_wait* take_all_closed(accept_queue* q) noexcept
    {
        io_wait* all = q->m_first;
        for (io_wait* w = all; w; w = w->m_queue_next) {
            w->m_result = k_closed;
            w->m_queued = false;
        }
        q->m_first = q->m_last = nullptr;
        return all;
    }

    static io_wait* append(io_wait* a, io_wait* b) noexcept
    {
        if (!a)
            return b;
        io_wait* x = a;
        while (x->m_queue_next)
            x = x->m_queue_next;
        x->m_queue_next = b;
        return a;
    }

    static void close_queue(accept_queue* q) noexcept
    {
        std::deque<int> fds;
        io_wait* woken;
        {
            spin_guard g(q->m_lock);
            q->m_closed = true;
            fds.swap(q->m_fds);
            q->m_error = 0;
            woken = take_all_closed(q);
            if (q->m_owner)
                update_idle(q);
        }
        for (int fd : fds)
            ::close(fd);
        wake_list(woken);
    }

    // Ends w's wait as cancelled (the canceller took it out of where it
    // waited).
    static void cancel_wait(io_wait* w, wait_hook* h) noexcept
    {
        w->m_result = k_canceled;
        h->m_canceled = true;
        wake_waiter(h->m_task);
    }

    // The canceller's side of an accept waiting in the queue: true if it
    // took w out (and ended its wait); false if w is not queued (a
    // connection or close reached it first, or it is the epoll poll owner).
    static bool withdraw_queued(io_wait* w, wait_hook* h) noexcept
    {
        accept_queue* q = w->m_sock->m_accepts.load(std::memory_order_acquire);
        {
            spin_guard g(q->m_lock);
            if (!w->m_queued)
                return false;
            unlink_waiter(q, w);
            update_idle(q);
        }
        cancel_wait(w, h);
        return true;
    }

    // The frame of w goes while it waits (runtime shutdown).
    static void leave_queue(io_wait* w) noexcept
    {
        if (w->m_kind == io_wait::kind::recv) {
            (void)remove_reader(w);
            return;
        }
        accept_queue* q = w->m_sock->m_accepts.load(std::memory_order_acquire);
        spin_guard g(q->m_lock);
        if (w->m_queued) {
            unlink_waiter(q, w);
            update_idle(q);
        }
        if (q->m_poll_owner == w)
            q->m_poll_owner = nullptr;
    }

    // epoll: an accept that waited in the queue behind the poll owner
    // becomes the owner and waits for readiness itself; run on its behalf
    // by the previous owner as that one finishes. next is suspended (or
    // about to be: wake_waiter handles both).
    static void continue_accept(io_wait* next) noexcept
    {
        poll_desc* d = next->m_sock->m_poll.load(std::memory_order_acquire);
        net_poller& np = net_poller::instance();
        // Read before arming: once armed, next may be completed and its
        // frame freed by a poller on another thread.
        const bool registered = next->m_hook.registered();
        context_node* const scope = next->m_hook.scope();
        task_header* const t = next->m_task;
        for (;;) {
            if (attempt(next)) {
                wake_waiter(t);
                return;
            }
            const int armed = np.arm(d, 0, next);
            if (armed == 0)
                continue;
            if (armed < 0) {
                next->m_result = k_concurrent;
                wake_waiter(t);
                return;
            }
            // Cancelled while it changed places: the canceller found it in
            // neither, so withdraw here.
            if (registered && scope->cancelled() && np.withdraw(d, 0, next)) {
                next->m_hook.set_canceled();
                next->m_result = k_canceled;
                wake_waiter(t);
            }
            return;
        }
    }

    // epoll: w, the poll owner, is done waiting: the oldest queued accept
    // takes over.
    static void pass_accept(io_wait* w) noexcept
    {
        accept_queue* q = w->m_sock->m_accepts.load(std::memory_order_acquire);
        io_wait* next;
        {
            spin_guard g(q->m_lock);
            if (q->m_poll_owner != w)
                return;
            next = pop_waiter(q);
            q->m_poll_owner = next;
        }
        if (next)
            continue_accept(next);
    }

    // epoll: an accept waits for readiness if no other accept does, else
    // in the queue.
    static bool suspend_polled_accept(io_wait* w, task_header* t)
    {
        accept_queue* q = w->m_sock->accepts();
        w->m_sock->poll(); // made now, so that a queued accept has it
        if (!hook_begin(w->m_hook, t, w, &withdraw)) {
            w->m_result = k_canceled;
            return false;
        }
        const bool registered = w->m_hook.registered();
        bool queued = false;
        {
            spin_guard g(q->m_lock);
            if (must_not_wait(q, w))
                return false;
            if (q->m_poll_owner) {
                queued = true;
                enqueue(q, w);
                w->m_polled = true;
                w->m_attempt = &attempt;
                w->poll_waiter::m_complete = &poll_done;
            } else {
                q->m_poll_owner = w;
            }
        }
        // Once queued, w may be resumed elsewhere: only locals from here.
        if (queued)
            return registered ? hook_suspend(w->m_hook) : true;
        return suspend_polled(w, t, true);
    }
#if defined(WEFT_HAVE_URING)
    // ---- multishot accept (io_uring)

    // Under q->m_lock, on ur's worker: the queue's multishot starts (again)
    // on ur. Returns the SQE to prepare and track; it is submitted with the
    // worker's next turn of I/O.
    static io_uring_sqe* begin_multishot(multishot_queue* q, uring_reactor* ur,
                                         void (*complete)(io_completion*) noexcept,
                                         void (*quiesced)(io_completion*) noexcept) noexcept
    {
        if (!q->m_armed)
            q->m_sock->acquire(); // held until the final completion
        q->m_armed = true;
        q->m_stopping = false;
        q->m_owner = ur;
        q->m_complete = complete;
        q->m_quiesced = quiesced;
        return ur->sqe();
    }

    // Under q->m_lock, on ur's worker: puts a multishot accept in the
    // kernel.
    static void arm(accept_queue* q, uring_reactor* ur) noexcept
    {
        io_uring_sqe* sqe = begin_multishot(q, ur, &accept_done, &accept_quiesced);
        io_uring_prep_multishot_accept(sqe, q->m_sock->m_fd, nullptr, nullptr,
                                       SOCK_NONBLOCK | SOCK_CLOEXEC);
        ur->track(sqe, q);
    }

    static bool suspend_accept(io_wait* w, task_header* t, uring_reactor* ur)
    {
        accept_queue* q = w->m_sock->accepts();
        if (!hook_begin(w->m_hook, t, w, &withdraw_accept)) {
            w->m_result = k_canceled;
            return false;
        }
        // Read before queueing: once queued, an unregistered wait may be
        // completed and its frame freed by the ring's worker.
        const bool registered = w->m_hook.registered();
        {
            spin_guard g(q->m_lock);
            if (!q->m_fds.empty()) {
                w->m_result = q->m_fds.front();
                q->m_fds.pop_front();
                return false;
            }
            if (q->m_error) {
                w->m_result = -std::exchange(q->m_error, 0);
                return false;
            }
            if (must_not_wait(q, w))
                return false;
            enqueue(q, w);
            if (!q->m_armed)
                arm(q, ur);
            update_idle(q);
        }
        return registered ? hook_suspend(w->m_hook) : true;
    }

    // One completion of the multishot accept, on its ring's worker.
    static void accept_done(io_completion* c) noexcept
    {
        auto q = static_cast<accept_queue*>(c);
        const int res = c->m_res;
        const bool more = (c->m_cqe_flags & IORING_CQE_F_MORE) != 0;
        io_wait* woken = nullptr;
        int stray = -1;
        bool drop_ref = false;
        {
            spin_guard g(q->m_lock);
            const bool closed = q->m_closed || q->m_sock->m_closed.load(std::memory_order_acquire);
            if (res >= 0) {
                if (io_wait* w = pop_waiter(q)) {
                    w->m_result = res;
                    woken = w;
                } else if (closed) {
                    stray = res;
                } else {
                    q->m_fds.push_back(res);
                    if (q->m_fds.size() >= k_accept_ahead && more && !q->m_stopping) {
                        // Nobody is accepting: leave the rest in the backlog.
                        q->m_stopping = true;
                        static_cast<uring_reactor*>(q->m_owner)->cancel_now(q);
                    }
                }
            } else if (res != -ECANCELED && !closed) {
                // EMFILE and the like: the oldest accept reports it.
                woken = hand_error(q, pop_waiter(q), res);
            }
            if (!more) {
                // The multishot is over: its reference goes (a new one,
                // armed for the accepts still waiting, takes its own).
                q->m_armed = false;
                drop_ref = true;
                if (closed)
                    woken = append(woken, take_all_closed(q));
                else if (q->m_first)
                    arm(q, static_cast<uring_reactor*>(q->m_owner));
            }
            update_idle(q);
        }
        if (stray >= 0)
            ::close(stray);
        wake_list(woken);
        if (drop_ref)
            q->m_sock->release(); // may free q
    }

    // The final completion of q's multishot while the ring shuts down: it
    // is disarmed, and its reference on the socket goes.
    template <class Queue>
    static void quiesced_end(Queue* q) noexcept
    {
        {
            spin_guard g(q->m_lock);
            q->m_armed = false;
            update_idle(q);
        }
        q->m_sock->release(); // may free q
    }

    // A completion that arrives while the ring shuts down: no task is to
    // run any more (the waiting ones are destroyed next and leave the queue
    // themselves); keep nothing.
    static void accept_quiesced(io_completion* c) noexcept
    {
        auto q = static_cast<accept_queue*>(c);
        if (c->m_res >= 0)
            ::close(c->m_res);
        if (!(c->m_cqe_flags & IORING_CQE_F_MORE))
            quiesced_end(q);
    }

    // The canceller's side of a waiting accept.
    static void withdraw_accept(wait_hook* h) noexcept
    {
        (void)withdraw_queued(static_cast<io_wait*>(h->m_op), h);
    }

#endif

    // ---- the stream's receive queue (see recv_queue in socket.hpp)

    // Under q->m_lock: the waiting read, taken out of the queue.
    static io_wait* take_reader(recv_queue* q) noexcept
    {
        io_wait* w = q->m_waiter;
        if (w) {
            q->m_waiter = nullptr;
            w->m_queued = false;
        }
        return w;
    }

    // Under q->m_lock, once every byte kept was taken: a buffer grown by a
    // burst goes, a small one stays for the next.
    static void drop_data(recv_queue* q) noexcept
    {
        q->m_head = 0;
        q->m_data.clear();
        if (q->m_data.capacity() > 16 * 1024)
            std::vector<char>().swap(q->m_data);
    }

    // Takes w out of its stream's receive queue if it waits there (a
    // cancel, or its frame going at shutdown). True if it did.
    static bool remove_reader(io_wait* w) noexcept
    {
        recv_queue* q = w->m_sock->m_recvs.load(std::memory_order_acquire);
        spin_guard g(q->m_lock);
        if (q->m_waiter != w)
            return false;
        take_reader(q);
        update_idle(q);
        return true;
    }

    // Under q->m_lock: what a read gets without waiting. True (and w's
    // result set) if it need not wait: bytes kept, the end of the stream,
    // an error, or the stream closed. (A second read never gets here: the
    // socket's m_busy bit refused it.)
    static bool recv_ready(recv_queue* q, io_wait* w) noexcept
    {
        if (q->m_closed || w->m_sock->m_closed.load(std::memory_order_acquire)) {
            w->m_result = k_closed;
            return true;
        }
        if (q->m_head < q->m_data.size()) {
            const std::size_t n = std::min(w->m_len, q->m_data.size() - q->m_head);
            std::memcpy(w->m_buf, q->m_data.data() + q->m_head, n);
            q->m_head += n;
            if (q->m_head == q->m_data.size())
                drop_data(q);
            w->m_result = static_cast<std::int64_t>(n);
            return true;
        }
        if (q->m_error) {
            w->m_result = -std::exchange(q->m_error, 0);
            return true;
        }
        if (q->m_eof || w->m_len == 0) {
            w->m_result = 0;
            return true;
        }
        return false;
    }

    static void close_recvs(recv_queue* q) noexcept
    {
        io_wait* woken;
        {
            spin_guard g(q->m_lock);
            q->m_closed = true;
            drop_data(q);
            q->m_error = 0;
            woken = take_reader(q);
            if (woken)
                woken->m_result = k_closed;
            if (q->m_owner)
                update_idle(q);
        }
        if (woken)
            wake_waiter(woken->m_task);
    }

#if defined(WEFT_HAVE_URING)
    // Under q->m_lock, on ur's worker: puts a multishot receive selecting
    // from ur's provided buffers in the kernel.
    static void arm_recv(recv_queue* q, uring_reactor* ur) noexcept
    {
        io_uring_sqe* sqe = begin_multishot(q, ur, &recv_done, &recv_quiesced);
        io_uring_prep_recv_multishot(sqe, q->m_sock->m_fd, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = uring_reactor::k_recv_group;
        ur->track(sqe, q);
    }

    // A read through the receive queue. ur: the calling worker's ring
    // (nullptr on a worker without one). Sets `handled` false, with the
    // wait not begun, when the read has to go the other way: nothing is
    // armed or kept and this worker cannot arm a multishot receive.
    static bool suspend_recv(io_wait* w, task_header* t, uring_reactor* ur, recv_queue* q,
                             bool& handled)
    {
        if (!hook_begin(w->m_hook, t, w, &withdraw_recv)) {
            w->m_result = k_canceled;
            return false;
        }
        // Read before queueing: once queued, an unregistered wait may be
        // completed and its frame freed by the ring's worker.
        const bool registered = w->m_hook.registered();
        {
            spin_guard g(q->m_lock);
            if (recv_ready(q, w))
                return false;
            if (hook_cancelled(w->m_hook)) {
                w->m_result = k_canceled;
                return false;
            }
            if (!q->m_armed) {
                if (!ur || !ur->recv_buffers()) {
                    handled = false;
                    return false;
                }
                arm_recv(q, ur);
            }
            w->m_queued = true;
            q->m_waiter = w;
            update_idle(q);
        }
        return registered ? hook_suspend(w->m_hook) : true;
    }

    // One completion of the multishot receive, on its ring's worker: bytes
    // in one provided buffer, the end of the stream, or the error that
    // ended it.
    static void recv_done(io_completion* c) noexcept
    {
        auto q = static_cast<recv_queue*>(c);
        auto ur = static_cast<uring_reactor*>(q->m_owner);
        const std::uint32_t flags = c->m_cqe_flags;
        const bool more = (flags & IORING_CQE_F_MORE) != 0;
        const bool buffered = (flags & IORING_CQE_F_BUFFER) != 0;
        int res = c->m_res;
        if (res > 0 && !buffered)
            res = -EIO; // bytes without a buffer: the kernel broke its word
        io_wait* woken = nullptr;
        bool drop_ref = false;
        {
            spin_guard g(q->m_lock);
            const bool closed = q->m_closed || q->m_sock->m_closed.load(std::memory_order_acquire);
            if (res > 0 && !closed) {
                const char* data = ur->recv_buffer(flags);
                const auto n = static_cast<std::size_t>(res);
                std::size_t taken = 0;
                if (io_wait* w = take_reader(q)) {
                    taken = std::min(n, w->m_len);
                    std::memcpy(w->m_buf, data, taken);
                    w->m_result = static_cast<std::int64_t>(taken);
                    woken = w;
                }
                q->m_data.insert(q->m_data.end(), data + taken, data + n);
                if (more && !q->m_stopping && q->m_data.size() - q->m_head >= k_read_ahead) {
                    // Nobody reads: leave the rest in the socket buffer.
                    q->m_stopping = true;
                    ur->cancel_now(q);
                }
            } else if (res == 0) {
                q->m_eof = true;
                if (io_wait* w = take_reader(q)) {
                    w->m_result = 0;
                    woken = w;
                }
            } else if (res < 0 && res != -ECANCELED && res != -ENOBUFS && !closed) {
                woken = hand_error(q, take_reader(q), res);
            }
            if (!more) {
                // Over (cancelled, out of buffers, end, error): its
                // reference goes; a read still waiting arms a new one,
                // since the buffers handed back meanwhile are free again.
                q->m_armed = false;
                drop_ref = true;
                if (q->m_waiter) {
                    if (closed) {
                        woken = take_reader(q);
                        woken->m_result = k_closed;
                    } else {
                        arm_recv(q, ur);
                    }
                }
            }
            update_idle(q);
        }
        if (buffered)
            ur->recycle(flags);
        if (woken)
            wake_waiter(woken->m_task);
        if (drop_ref)
            q->m_sock->release(); // may free q
    }

    // A completion that arrives while the ring shuts down: no task runs any
    // more; keep nothing.
    static void recv_quiesced(io_completion* c) noexcept
    {
        auto q = static_cast<recv_queue*>(c);
        if (c->m_cqe_flags & IORING_CQE_F_BUFFER)
            static_cast<uring_reactor*>(q->m_owner)->recycle(c->m_cqe_flags);
        if (!(c->m_cqe_flags & IORING_CQE_F_MORE))
            quiesced_end(q);
    }

    // The canceller's side of a read waiting in the queue: the multishot
    // stays; bytes that arrive later are the next read's.
    static void withdraw_recv(wait_hook* h) noexcept
    {
        auto w = static_cast<io_wait*>(h->m_op);
        if (remove_reader(w))
            cancel_wait(w, h);
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
        // An accept not in the queue is the poll owner (or about to become
        // it: then continue_accept sees the cancellation).
        if (w->m_polled && w->m_kind == io_wait::kind::accept && withdraw_queued(w, h))
            return;
        if (w->m_polled) {
            if (net_poller::instance().withdraw(w->m_sock->m_poll.load(std::memory_order_acquire),
                                                direction(w->m_kind), w))
                cancel_wait(w, h);
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
        if (w->m_kind == io_wait::kind::recv || w->m_kind == io_wait::kind::send_all) {
            // One read and one write at a time (see tcp_stream).
            const auto bit = static_cast<std::uint8_t>(1u << direction(w->m_kind));
            if (w->m_sock->m_busy.fetch_or(bit, std::memory_order_acquire) & bit) {
                w->m_result = k_concurrent;
                return false;
            }
            w->m_busy = bit;
        }
        reactor* r = current_reactor();
#if defined(WEFT_HAVE_URING)
        if (w->m_kind == io_wait::kind::recv) {
            // Through the receive queue where the stream reads that way
            // already, or where this worker's ring can start it.
            auto ur = r && r->kind() == reactor_kind::io_uring ? static_cast<uring_reactor*>(r)
                                                               : nullptr;
            recv_queue* q = w->m_sock->m_recvs.load(std::memory_order_acquire);
            if (!q && ur && w->m_len < k_direct_read && multishot_recv_enabled() &&
                ur->recv_buffers())
                q = w->m_sock->recvs();
            if (q) {
                bool handled = true;
                const bool suspended = suspend_recv(w, t, ur, q, handled);
                if (handled)
                    return suspended;
                // Begun again below, with the other way's withdraw.
                hook_end(w->m_hook);
            }
        }
        if (r && r->kind() == reactor_kind::io_uring) {
            // A send usually fits in the socket buffer: one system call now
            // costs less than a trip through the ring and a suspension.
            // Whatever does not fit goes through the ring.
            if (w->m_kind == io_wait::kind::send_all && attempt(w))
                return false;
            auto ur = static_cast<uring_reactor*>(r);
            if (w->m_kind == io_wait::kind::accept && multishot_accept_enabled())
                return suspend_accept(w, t, ur);
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
        if (w->m_kind == io_wait::kind::accept)
            return suspend_polled_accept(w, t);
        return suspend_polled(w, t, false);
    }

    // hooked: hook_begin was called already (and succeeded).
    static bool suspend_polled(io_wait* w, task_header* t, bool hooked)
    {
        w->m_polled = true;
        w->m_attempt = &attempt;
        w->poll_waiter::m_complete = &poll_done;
        poll_desc* d = w->m_sock->poll();
        net_poller& np = net_poller::instance();
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

    // The operation is over: another of its kind may start.
    static void leave_busy(io_wait* w) noexcept
    {
        if (w->m_busy) {
            w->m_sock->m_busy.fetch_and(static_cast<std::uint8_t>(~w->m_busy),
                                        std::memory_order_release);
            w->m_busy = 0;
        }
    }

    static std::int64_t finish(io_wait* w)
    {
        if (w->m_polled && w->m_kind == io_wait::kind::accept)
            pass_accept(w);
        const bool canceled = hook_end(w->m_hook);
        const std::int64_t r = w->m_result;
        bool closed = false;
        leave_busy(w);
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
    if (m_queued || (m_polled && m_kind == kind::accept))
        io_wait_access::leave_queue(this);
    hook_end(m_hook);
    io_wait_access::leave_busy(this);
    if (m_held)
        m_sock->release();
}

void close_accept_queue(accept_queue* q) noexcept { io_wait_access::close_queue(q); }

void close_recv_queue(recv_queue* q) noexcept { io_wait_access::close_recvs(q); }

bool io_wait::await_suspend(std::coroutine_handle<> h) { return io_wait_access::suspend(this, h); }

std::int64_t io_wait::finish() { return io_wait_access::finish(this); }

void io_wait::set_address(const void* addr, std::uint32_t len) noexcept
{
    std::memcpy(m_addr, addr, len < sizeof m_addr ? len : sizeof m_addr);
    m_addr_len = len;
}

} // namespace weft::detail
