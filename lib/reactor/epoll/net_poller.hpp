// Readiness of sockets for the epoll backend.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include <weft/detail/io_wait.hpp>

namespace weft::detail {

/// A socket registered with the net poller, with one waiter slot per
/// direction (0 read, 1 write).
///
/// A slot holds 0 (nobody waits, no readiness seen), k_ready (readiness
/// seen while nobody waited), a poll_waiter pointer, or a waiter pointer
/// with k_busy (a poller is running its attempt right now) and maybe
/// k_again (readiness arrived during that attempt: try again).
///
/// Descriptors are never freed, only reused: an event still in flight for
/// a closed socket can only make some later waiter retry its system call
/// once.
struct poll_desc {
    static constexpr std::uintptr_t k_ready = 1;
    static constexpr std::uintptr_t k_busy = 1;
    static constexpr std::uintptr_t k_again = 2;

    std::atomic<std::uintptr_t> m_slot[2] = {};
    int m_fd = -1;
    poll_desc* m_next_free = nullptr;
};

/// One epoll instance for every socket of the process, edge-triggered. It
/// is nested in each epoll worker's own epoll set, so any idle worker wakes
/// when a socket becomes ready; busy workers poll it between tasks while
/// anyone waits.
///
/// Thread safety: every member may be called from any thread.
class net_poller {
public:
    static net_poller& instance();

    int fd() const noexcept { return m_epoll_fd; }

    /// Registers fd (read and write readiness). Throws std::system_error.
    poll_desc* add(int fd);
    /// Unregisters (before the caller closes fd) and recycles d.
    void remove(poll_desc* d) noexcept;

    /// Puts w in d's slot `dir`. Returns 1 when w now waits, 0 when
    /// readiness was pending (consumed: try the call again), -1 when
    /// another operation waits in that direction already.
    int arm(poll_desc* d, int dir, poll_waiter* w) noexcept;

    /// Takes w back out of its slot; false if a poller took it first (it
    /// will be handed back through m_complete).
    bool withdraw(poll_desc* d, int dir, poll_waiter* w) noexcept;

    /// Delivers the readiness that arrived, without sleeping.
    void poll() noexcept;

    /// Operations waiting (deadlock detection; busy workers poll only
    /// while this is non-zero).
    std::size_t waiters() const noexcept { return m_waiters.load(std::memory_order_relaxed); }

private:
    net_poller();
    void fire(poll_desc* d, int dir) noexcept;

    int m_epoll_fd = -1;
    std::atomic<std::size_t> m_waiters{0};
    std::mutex m_lock;                // guards m_free and m_blocks
    poll_desc* m_free = nullptr;
    std::vector<poll_desc*> m_blocks; // never freed
};

} // namespace weft::detail
