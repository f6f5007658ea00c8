// The net poller: readiness-driven socket operations for the epoll backend.
//
// Invariants:
//   A poll_desc's slot goes 0 -> waiter (arm), waiter -> 0 (withdraw, or a
//   poller whose attempt finished), waiter -> waiter|k_busy (a poller
//   attempting), waiter|k_busy -> waiter (attempt would block) and
//   0 -> k_ready -> 0 (readiness nobody waited for, consumed by arm). Only
//   the thread that set k_busy clears it; withdraw waits while it is set,
//   so an attempt never runs on a waiter that is gone.
//   m_waiters counts armed waiters not yet taken out of their slots.

#include "net_poller.hpp"

#include <cerrno>
#include <system_error>

#include <sys/epoll.h>
#include <unistd.h>

#include <weft/detail/host.hpp>
#include <weft/detail/spinlock.hpp>

#include "../../diag/log.hpp"

namespace weft::detail {

net_poller& net_poller::instance()
{
    static net_poller p;
    return p;
}

net_poller::net_poller()
{
    m_epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (m_epoll_fd < 0)
        throw std::system_error(errno, std::system_category(), "weft: epoll_create1");
}

poll_desc* net_poller::add(int fd)
{
    poll_desc* d;
    {
        std::lock_guard lk(m_lock);
        if (!m_free) {
            constexpr std::size_t n = 256;
            auto block = new poll_desc[n];
            m_blocks.push_back(block);
            for (std::size_t i = 0; i < n; ++i) {
                block[i].m_next_free = m_free;
                m_free = &block[i];
            }
        }
        d = m_free;
        m_free = d->m_next_free;
    }
    d->m_fd = fd;
    d->m_slot[0].store(0, std::memory_order_relaxed);
    d->m_slot[1].store(0, std::memory_order_relaxed);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = d;
    if (::epoll_ctl(m_epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        remove(d);
        throw std::system_error(e, std::system_category(), "weft: epoll_ctl");
    }
    return d;
}

void net_poller::remove(poll_desc* d) noexcept
{
    if (d->m_fd >= 0)
        ::epoll_ctl(m_epoll_fd, EPOLL_CTL_DEL, d->m_fd, nullptr);
    d->m_fd = -1;
    std::lock_guard lk(m_lock);
    d->m_next_free = m_free;
    m_free = d;
}

int net_poller::arm(poll_desc* d, int dir, poll_waiter* w) noexcept
{
    auto& slot = d->m_slot[dir];
    std::uintptr_t v = slot.load(std::memory_order_acquire);
    for (;;) {
        if (v == poll_desc::k_ready) {
            if (slot.compare_exchange_weak(v, 0, std::memory_order_acq_rel))
                return 0;
            continue;
        }
        if (v != 0)
            return -1;
        // Counted before it is visible, so a poller's decrement never
        // comes first.
        m_waiters.fetch_add(1, std::memory_order_relaxed);
        if (slot.compare_exchange_strong(v, reinterpret_cast<std::uintptr_t>(w),
                                         std::memory_order_seq_cst))
            return 1;
        m_waiters.fetch_sub(1, std::memory_order_relaxed);
    }
}

bool net_poller::withdraw(poll_desc* d, int dir, poll_waiter* w) noexcept
{
    auto& slot = d->m_slot[dir];
    const auto me = reinterpret_cast<std::uintptr_t>(w);
    for (unsigned spins = 0;; ++spins) {
        std::uintptr_t v = slot.load(std::memory_order_acquire);
        if (v == me) {
            if (slot.compare_exchange_strong(v, 0, std::memory_order_acq_rel)) {
                m_waiters.fetch_sub(1, std::memory_order_relaxed);
                return true;
            }
            continue;
        }
        if ((v & ~(poll_desc::k_busy | poll_desc::k_again)) != me)
            return false; // handed back, or on its way
        // A poller is attempting the call: its outcome decides.
        if (spins < 128)
            cpu_relax();
        else
            os_yield();
    }
}

void net_poller::fire(poll_desc* d, int dir) noexcept
{
    auto& slot = d->m_slot[dir];
    std::uintptr_t v = slot.load(std::memory_order_acquire);
    for (;;) {
        if (v == poll_desc::k_ready)
            return;
        if (v == 0) {
            if (slot.compare_exchange_weak(v, poll_desc::k_ready, std::memory_order_acq_rel))
                return;
            continue;
        }
        if (v & poll_desc::k_busy) {
            // Another poller is attempting: make it try once more.
            if ((v & poll_desc::k_again) ||
                slot.compare_exchange_weak(v, v | poll_desc::k_again, std::memory_order_acq_rel))
                return;
            continue;
        }
        if (slot.compare_exchange_weak(v, v | poll_desc::k_busy, std::memory_order_acq_rel))
            break;
    }
    auto w = reinterpret_cast<poll_waiter*>(v);
    for (;;) {
        if (w->m_attempt(w)) {
            slot.store(0, std::memory_order_release);
            m_waiters.fetch_sub(1, std::memory_order_relaxed);
            w->m_complete(w);
            return;
        }
        std::uintptr_t busy = v | poll_desc::k_busy;
        if (slot.compare_exchange_strong(busy, v, std::memory_order_acq_rel))
            return; // waits for the next edge
        slot.store(busy & ~poll_desc::k_again, std::memory_order_relaxed); // k_again: retry
    }
}

void net_poller::poll() noexcept
{
    epoll_event evs[128];
    for (;;) {
        int n = ::epoll_wait(m_epoll_fd, evs, 128, 0);
        for (int i = 0; i < n; ++i) {
            auto d = static_cast<poll_desc*>(evs[i].data.ptr);
            const auto e = evs[i].events;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                fire(d, 0);
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                fire(d, 1);
        }
        if (n < 128)
            return;
    }
}

int hosted_io_fd()
{
    return net_poller::instance().fd();
}

void poll_hosted_io() noexcept
{
    net_poller::instance().poll();
}

void log_hosted_io_failure(const std::error_code& ec) noexcept
{
    try {
        log(log_level::error, "the host's wait for socket readiness failed (" + ec.message() +
                                  "): polling the sockets on a timer instead");
    } catch (...) {
        // Out of memory for the message: nothing else to do.
    }
}

} // namespace weft::detail
