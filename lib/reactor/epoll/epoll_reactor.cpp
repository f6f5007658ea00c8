// The epoll reactor: the fallback where io_uring cannot be set up (old
// kernels, seccomp profiles that forbid it) or WEFT_REACTOR=epoll asks for
// it. Wake-ups come through an eventfd registered level-triggered; waits
// with a deadline use epoll_pwait2's nanosecond timeout.
//
// Sockets are not in this set: they are in the net poller's epoll, which is
// nested here (data 1), so an idle worker wakes when a socket is ready.
//
// Invariants: m_epoll_fd and m_event_fd live as long as the reactor; only
// the owner waits, anyone writes m_event_fd.

#include <cerrno>
#include <ctime>
#include <system_error>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../reactor.hpp"
#include "net_poller.hpp"

namespace weft::detail {

namespace {

class epoll_reactor final : public reactor {
public:
    epoll_reactor()
    {
        m_epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
        if (m_epoll_fd < 0)
            throw std::system_error(errno, std::system_category(), "weft: epoll_create1");
        m_event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m_event_fd < 0) {
            int e = errno;
            ::close(m_epoll_fd);
            throw std::system_error(e, std::system_category(), "weft: eventfd");
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = 0;
        if (::epoll_ctl(m_epoll_fd, EPOLL_CTL_ADD, m_event_fd, &ev) < 0) {
            int e = errno;
            ::close(m_event_fd);
            ::close(m_epoll_fd);
            throw std::system_error(e, std::system_category(), "weft: epoll_ctl");
        }
        ev.data.u64 = k_net_tag;
        if (::epoll_ctl(m_epoll_fd, EPOLL_CTL_ADD, m_net.fd(), &ev) < 0) {
            int e = errno;
            ::close(m_event_fd);
            ::close(m_epoll_fd);
            throw std::system_error(e, std::system_category(), "weft: epoll_ctl");
        }
    }
    ~epoll_reactor() override
    {
        ::close(m_event_fd);
        ::close(m_epoll_fd);
    }

    void wait(std::int64_t deadline) noexcept override
    {
        epoll_event evs[16];
        int n;
        if (deadline == INT64_MAX) {
            n = ::epoll_wait(m_epoll_fd, evs, 16, -1);
        } else {
            std::int64_t rel = ns_until(deadline);
            timespec ts{};
            ts.tv_sec = rel / 1'000'000'000;
            ts.tv_nsec = rel % 1'000'000'000;
            n = m_have_pwait2 ? ::epoll_pwait2(m_epoll_fd, evs, 16, &ts, nullptr) : -1;
            if (n < 0 && errno == ENOSYS) {
                m_have_pwait2 = false;
            }
            if (!m_have_pwait2) {
                // Round up: waking early only costs another wait.
                n = ::epoll_wait(m_epoll_fd, evs, 16, static_cast<int>((rel + 999'999) / 1'000'000));
            }
        }
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.u64 == 0) {
                std::uint64_t v;
                [[maybe_unused]] auto r = ::read(m_event_fd, &v, sizeof v);
            } else if (evs[i].data.u64 == k_net_tag) {
                m_net.poll();
            }
        }
    }

    void wake() noexcept override
    {
        std::uint64_t one = 1;
        [[maybe_unused]] auto r = ::write(m_event_fd, &one, sizeof one);
    }

    const char* name() const noexcept override { return "epoll"; }
    reactor_kind kind() const noexcept override { return reactor_kind::epoll; }

    void poll() noexcept override
    {
        if (m_net.waiters())
            m_net.poll();
    }
    bool io_busy() const noexcept override { return m_net.waiters() != 0; }
    std::size_t pending_io() const noexcept override { return m_net.waiters(); }
    // Operations wait in user space here: nothing of theirs is in the kernel.
    void quiesce() noexcept override {}

private:
    static constexpr std::uint64_t k_net_tag = 1;
    net_poller& m_net = net_poller::instance();
    int m_epoll_fd = -1;
    int m_event_fd = -1;
    bool m_have_pwait2 = true;
};

} // namespace

std::unique_ptr<reactor> make_epoll_reactor() { return std::make_unique<epoll_reactor>(); }

} // namespace weft::detail
