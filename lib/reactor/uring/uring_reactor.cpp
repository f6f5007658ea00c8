// The io_uring reactor: one ring per worker, set up with the most
// restrictive flags the kernel accepts (a ring entered only by its worker
// lets the kernel defer completion work to that thread's wait).
//
// Wake-ups: an eventfd with one read always queued on the ring. wake()
// writes the eventfd, the read completes, and the owner's wait returns; the
// owner queues a new read before it sleeps again.
//
// Invariants (all fields are owner-only except m_event_fd, which wake()
// writes from any thread):
//   m_read_queued: a read of m_event_fd is queued on the ring (submitted or
//   about to be with the next enter).

#include <cerrno>
#include <cstring>
#include <ctime>

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../reactor.hpp"

namespace weft::detail {

namespace {

constexpr unsigned k_entries = 256;
constexpr std::uint64_t k_wake_tag = 1;

class uring_reactor final : public reactor {
public:
    uring_reactor(io_uring ring, int event_fd) noexcept : m_ring(ring), m_event_fd(event_fd) {}
    ~uring_reactor() override
    {
        io_uring_queue_exit(&m_ring);
        ::close(m_event_fd);
    }

    void wait(std::int64_t deadline) noexcept override
    {
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

    void wake() noexcept override
    {
        std::uint64_t one = 1;
        // EAGAIN means the counter is saturated: a wake-up is pending anyway.
        [[maybe_unused]] auto r = ::write(m_event_fd, &one, sizeof one);
    }

    const char* name() const noexcept override { return "io_uring"; }

private:
    void queue_read() noexcept
    {
        io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
        if (!sqe) {
            io_uring_submit(&m_ring);
            sqe = io_uring_get_sqe(&m_ring);
            if (!sqe)
                return;
        }
        io_uring_prep_read(sqe, m_event_fd, &m_counter, sizeof m_counter, 0);
        io_uring_sqe_set_data64(sqe, k_wake_tag);
        m_read_queued = true;
    }

    void reap() noexcept
    {
        io_uring_cqe* cqe;
        unsigned head;
        unsigned n = 0;
        io_uring_for_each_cqe(&m_ring, head, cqe)
        {
            if (io_uring_cqe_get_data64(cqe) == k_wake_tag)
                m_read_queued = false;
            ++n;
        }
        io_uring_cq_advance(&m_ring, n);
    }

    io_uring m_ring;
    int m_event_fd;
    std::uint64_t m_counter = 0;
    bool m_read_queued = false;
};

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
