// The io_uring reactor.
//
// Wake-ups: an eventfd with one read always queued on the ring. wake()
// writes the eventfd, the read completes, and the owner's wait returns; the
// owner queues a new read before it sleeps again.
//
// Invariants (all fields are owner-only except m_event_fd, which wake()
// writes from any thread, m_cancels, which cancel() pushes onto from any
// thread, and m_inflight, read anywhere):
//   m_read_queued: a read of m_event_fd is queued on the ring (submitted or
//   about to be with the next enter).
//   m_inflight: submissions tracked with track() whose final CQE has not
//   been reaped.
//
// Multishot submissions (io_completion::m_quiesced set) get each completion
// handed over at once, as it is reaped, and are cancelled with cancel_now.
//
// Provided buffers: m_buf_ring lists the buffers the kernel may pick for a
// multishot receive. A completion names its buffer; the handler copies the
// bytes out and recycles it before the next completion is handled, so the
// buffers in use at any time are those of the completions of one reap; a
// receive that finds none ends with ENOBUFS and is armed again.
//
// Cancellation (io_completion::m_state): cancel() sets k_cancel_wanted and,
// unless the current submission already completed, k_cancel_queued, and
// pushes the operation on m_cancels. The owner's reap sets k_completed and
// hands the operation back only if it is not queued; drain_cancels clears
// k_cancel_queued and either submits a kernel cancel (still running) or
// hands it back (it completed while queued). So an operation is handed back
// once, and never while m_cancels still points at it.

#include "uring_reactor.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

namespace weft::detail {

namespace {

constexpr unsigned k_entries = 1024;
constexpr std::uint64_t k_wake_tag = 1;
constexpr std::uint64_t k_cancel_tag = 2;

bool setup_ring(io_uring& ring, unsigned flags, int& error) noexcept
{
    io_uring_params p;
    std::memset(&p, 0, sizeof p);
    p.flags = flags;
    int r = io_uring_queue_init_params(k_entries, &ring, &p);
    if (r < 0) {
        error = -r;
        return false;
    }
    return true;
}

} // namespace

uring_reactor::uring_reactor(io_uring ring, int event_fd) noexcept
    : m_ring(ring), m_event_fd(event_fd)
{
}

uring_reactor::~uring_reactor()
{
    // Exiting the ring unregisters the buffer ring; the kernel is done
    // with the buffers then (quiesce ended every receive).
    io_uring_queue_exit(&m_ring);
    ::close(m_event_fd);
    if (m_buf_ring)
        ::munmap(m_buf_ring, m_buf_map_len);
}

bool uring_reactor::setup_recv_buffers() noexcept
{
    // One anonymous mapping: the ring of buffer descriptors (page-aligned,
    // as the kernel wants), then the buffers.
    const std::size_t ring_len = k_recv_buffers * sizeof(io_uring_buf);
    const std::size_t len = ring_len + std::size_t{k_recv_buffers} * k_recv_buffer_size;
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        m_buf_state = -1;
        return false;
    }
    auto br = static_cast<io_uring_buf_ring*>(p);
    io_uring_buf_reg reg;
    std::memset(&reg, 0, sizeof reg);
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(br);
    reg.ring_entries = k_recv_buffers;
    reg.bgid = k_recv_group;
    if (io_uring_register_buf_ring(&m_ring, &reg, 0) != 0) {
        ::munmap(p, len);
        m_buf_state = -1;
        return false;
    }
    io_uring_buf_ring_init(br);
    m_buf_ring = br;
    m_bufs = static_cast<char*>(p) + ring_len;
    m_buf_map_len = len;
    for (unsigned i = 0; i < k_recv_buffers; ++i)
        provide(i, static_cast<int>(i));
    io_uring_buf_ring_advance(br, static_cast<int>(k_recv_buffers));
    m_buf_state = 1;
    return true;
}

void uring_reactor::recycle(std::uint32_t cqe_flags) noexcept
{
    provide(buffer_id(cqe_flags), 0);
    io_uring_buf_ring_advance(m_buf_ring, 1);
}

void uring_reactor::wait(std::int64_t deadline) noexcept
{
    drain_cancels();
    if (!m_read_queued)
        queue_read();
    io_uring_cqe* cqe = nullptr;
    if (deadline == INT64_MAX) {
        io_uring_submit_and_wait(&m_ring, 1);
    } else {
        std::int64_t rel = ns_until(deadline);
        __kernel_timespec ts{};
        ts.tv_sec = rel / 1'000'000'000;
        ts.tv_nsec = rel % 1'000'000'000;
        io_uring_submit_and_wait_timeout(&m_ring, &cqe, 1, &ts, nullptr);
    }
    reap();
}

void uring_reactor::wake() noexcept
{
    std::uint64_t one = 1;
    // EAGAIN means the counter is saturated: a wake-up is pending anyway.
    [[maybe_unused]] auto r = ::write(m_event_fd, &one, sizeof one);
}

void uring_reactor::poll() noexcept
{
    drain_cancels();
    // One enter submits what is queued and runs the completion work the
    // kernel deferred to this thread.
    io_uring_submit_and_get_events(&m_ring);
    reap();
}

io_uring_sqe* uring_reactor::sqe() noexcept
{
    for (;;) {
        if (io_uring_sqe* s = io_uring_get_sqe(&m_ring))
            return s;
        // Full: submit what is queued. Completions are reaped by the
        // caller's next poll or wait; the kernel buffers them meanwhile.
        io_uring_submit(&m_ring);
    }
}

void uring_reactor::cancel(io_completion* c) noexcept
{
    std::uint32_t s = c->m_state.load(std::memory_order_acquire);
    for (;;) {
        std::uint32_t want = s | io_completion::k_cancel_wanted;
        if (!(s & io_completion::k_completed))
            want |= io_completion::k_cancel_queued;
        if (c->m_state.compare_exchange_weak(s, want, std::memory_order_acq_rel,
                                             std::memory_order_acquire))
            break;
    }
    if (s & io_completion::k_completed)
        return; // the owner hands it back anyway
    io_completion* head = m_cancels.load(std::memory_order_relaxed);
    do {
        c->m_cancel_next = head;
    } while (!m_cancels.compare_exchange_weak(head, c, std::memory_order_release,
                                              std::memory_order_relaxed));
    wake();
}

void uring_reactor::cancel_now(io_completion* c) noexcept
{
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, reinterpret_cast<std::uintptr_t>(c), 0);
    io_uring_sqe_set_data64(s, k_cancel_tag);
}

void uring_reactor::drain_cancels() noexcept
{
    if (!m_cancels.load(std::memory_order_relaxed))
        return;
    io_completion* c = m_cancels.exchange(nullptr, std::memory_order_acquire);
    while (c) {
        io_completion* next = c->m_cancel_next;
        auto prev = c->m_state.fetch_and(~io_completion::k_cancel_queued,
                                         std::memory_order_acq_rel);
        if (prev & io_completion::k_completed) {
            c->m_complete(c);
        } else {
            io_uring_sqe* s = sqe();
            io_uring_prep_cancel64(s, reinterpret_cast<std::uintptr_t>(c), 0);
            io_uring_sqe_set_data64(s, k_cancel_tag);
        }
        c = next;
    }
}

void uring_reactor::reap() noexcept
{
    // Completions may submit new work (a partial send goes on) and may be
    // many: take them in batches, advancing the ring before handing each
    // batch back.
    io_completion* done[64];
    for (;;) {
        io_uring_cqe* cqe;
        unsigned head;
        unsigned n = 0;
        unsigned k = 0;
        io_uring_for_each_cqe(&m_ring, head, cqe)
        {
            ++n;
            std::uint64_t tag = io_uring_cqe_get_data64(cqe);
            if (tag == k_wake_tag) {
                m_read_queued = false;
            } else if (tag != k_cancel_tag) {
                auto c = reinterpret_cast<io_completion*>(tag);
                c->m_res = cqe->res;
                c->m_cqe_flags = cqe->flags;
                if (!(cqe->flags & IORING_CQE_F_MORE))
                    m_inflight.store(m_inflight.load(std::memory_order_relaxed) - 1,
                                     std::memory_order_relaxed);
                if (c->m_quiesced) {
                    // A multishot: one submission, many completions, each
                    // handled before the next overwrites m_res. It is never
                    // on the cancel list (cancel_now).
                    c->m_complete(c);
                    continue;
                }
                auto prev = c->m_state.fetch_or(io_completion::k_completed,
                                                std::memory_order_acq_rel);
                if (!(prev & io_completion::k_cancel_queued))
                    done[k++] = c;
            }
            if (k == 64)
                break;
        }
        io_uring_cq_advance(&m_ring, n);
        for (unsigned i = 0; i < k; ++i)
            done[i]->m_complete(done[i]);
        if (k < 64)
            return;
    }
}

void uring_reactor::queue_read() noexcept
{
    io_uring_sqe* s = sqe();
    io_uring_prep_read(s, m_event_fd, &m_counter, sizeof m_counter, 0);
    io_uring_sqe_set_data64(s, k_wake_tag);
    m_read_queued = true;
}

void uring_reactor::quiesce() noexcept
{
    // Cancel requests still listed need no answer: every operation goes.
    m_cancels.store(nullptr, std::memory_order_relaxed);
    if (m_inflight.load(std::memory_order_relaxed) == 0)
        return;
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(s, k_cancel_tag);
    // The wake-up read is cancelled too; its CQE is not counted.
    const std::int64_t give_up = now_ns() + 2'000'000'000;
    while (m_inflight.load(std::memory_order_relaxed) != 0 && now_ns() < give_up) {
        __kernel_timespec ts{0, 50'000'000};
        io_uring_cqe* cqe = nullptr;
        io_uring_submit_and_wait_timeout(&m_ring, &cqe, 1, &ts, nullptr);
        io_uring_cqe* c;
        unsigned head;
        unsigned n = 0;
        io_uring_for_each_cqe(&m_ring, head, c)
        {
            ++n;
            std::uint64_t tag = io_uring_cqe_get_data64(c);
            if (tag == k_wake_tag || tag == k_cancel_tag)
                continue;
            if (!(c->flags & IORING_CQE_F_MORE))
                m_inflight.store(m_inflight.load(std::memory_order_relaxed) - 1,
                                 std::memory_order_relaxed);
            auto op = reinterpret_cast<io_completion*>(tag);
            if (op->m_quiesced) {
                // A multishot's completions still carry resources (accepted
                // descriptors, its reference on the socket): let it let go.
                op->m_res = c->res;
                op->m_cqe_flags = c->flags;
                op->m_quiesced(op);
            }
        }
        io_uring_cq_advance(&m_ring, n);
    }
}

std::unique_ptr<reactor> make_uring_reactor(int& error)
{
    io_uring ring;
    std::memset(&ring, 0, sizeof ring);
    // DEFER_TASKRUN (6.1) needs SINGLE_ISSUER (6.0); COOP_TASKRUN is 5.19.
    // Older kernels reject unknown flags with EINVAL: try the next set.
    const unsigned attempts[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                 IORING_SETUP_COOP_TASKRUN, 0};
    bool ok = false;
    for (unsigned flags : attempts) {
        if (setup_ring(ring, flags, error)) {
            ok = true;
            break;
        }
        if (error != EINVAL)
            return nullptr;
    }
    if (!ok)
        return nullptr;
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        error = errno;
        io_uring_queue_exit(&ring);
        return nullptr;
    }
    return std::make_unique<uring_reactor>(ring, fd);
}

} // namespace weft::detail
