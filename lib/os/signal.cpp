// Signal relay.
//
// The handler writes the signal number into a pipe (async-signal-safe);
// one relay thread, started by the first subscription, reads the pipe and
// delivers to the subscribers: a try_send on a channel, or the cancel of a
// signal_context. Subscriptions stay until stopped; the relay thread lives
// until the process exits.
//
// Invariants (g_lock guards all of these):
//   g_subs: every subscription; g_wanted[sig]: how many subscriptions name
//   sig; g_old[sig]: the disposition before weft installed its handler,
//   valid while g_wanted[sig] > 0.

#include <weft/signal.hpp>

#include <weft/detail/cancel.hpp>

#include <cerrno>
#include <csignal>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace weft {

namespace {

constexpr int k_max_signal = 65;

struct subscription {
    chan<int> m_chan;                // or
    std::shared_ptr<cancel_func> m_cancel;
    std::vector<int> m_sigs;
    std::uint64_t m_id = 0;          // for signal_context's cancel
};

std::mutex g_lock;
std::vector<subscription> g_subs;
int g_wanted[k_max_signal] = {};
struct sigaction g_old[k_max_signal];
int g_pipe[2] = {-1, -1};
std::uint64_t g_next_id = 1;

void on_signal(int sig) noexcept
{
    const int saved = errno;
    unsigned char b = static_cast<unsigned char>(sig);
    [[maybe_unused]] auto r = ::write(g_pipe[1], &b, 1);
    errno = saved;
}

void relay() noexcept
{
    for (;;) {
        unsigned char b;
        ssize_t n = ::read(g_pipe[0], &b, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        const int sig = b;
        std::vector<std::shared_ptr<cancel_func>> to_cancel;
        {
            std::lock_guard lk(g_lock);
            for (auto& s : g_subs) {
                bool wants = false;
                for (int x : s.m_sigs)
                    wants |= x == sig;
                if (!wants)
                    continue;
                if (s.m_cancel)
                    to_cancel.push_back(s.m_cancel);
                else
                    (void)s.m_chan.try_send(sig);
            }
        }
        for (auto& c : to_cancel)
            (*c)();
    }
}

// Called with g_lock held.
void start_relay_locked()
{
    if (g_pipe[0] >= 0)
        return;
    if (::pipe2(g_pipe, O_CLOEXEC) < 0)
        throw std::system_error(errno, std::system_category(), "weft::signal_notify: pipe");
    // A burst of signals beyond the pipe's capacity is dropped, not blocked on.
    ::fcntl(g_pipe[1], F_SETFL, O_NONBLOCK);
    std::thread(relay).detach();
}

void check(std::initializer_list<int> sigs)
{
    for (int s : sigs)
        if (s <= 0 || s >= k_max_signal || s == SIGKILL || s == SIGSTOP)
            throw std::invalid_argument("weft::signal_notify: signal " + std::to_string(s) +
                                        " cannot be relayed");
}

// Called with g_lock held.
void want_locked(int sig)
{
    if (g_wanted[sig]++ > 0)
        return;
    struct sigaction sa{};
    sa.sa_handler = &on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, &g_old[sig]);
}

// Called with g_lock held.
void unwant_locked(int sig)
{
    if (--g_wanted[sig] > 0)
        return;
    ::sigaction(sig, &g_old[sig], nullptr);
}

void add(subscription sub)
{
    std::lock_guard lk(g_lock);
    start_relay_locked();
    for (int s : sub.m_sigs)
        want_locked(s);
    g_subs.push_back(std::move(sub));
}

void remove_if_locked(auto pred)
{
    for (auto it = g_subs.begin(); it != g_subs.end();) {
        if (pred(*it)) {
            for (int s : it->m_sigs)
                unwant_locked(s);
            it = g_subs.erase(it);
        } else {
            ++it;
        }
    }
}

} // namespace

void signal_notify(const chan<int>& c, std::initializer_list<int> sigs)
{
    check(sigs);
    if (!c)
        throw std::invalid_argument("weft::signal_notify: nil channel");
    subscription sub;
    sub.m_chan = c;
    sub.m_sigs.assign(sigs.begin(), sigs.end());
    add(std::move(sub));
}

void stop_signal_notify(const chan<int>& c)
{
    std::lock_guard lk(g_lock);
    remove_if_locked([&](const subscription& s) { return !s.m_cancel && s.m_chan == c; });
}

std::pair<context, cancel_func> signal_context(const context& parent,
                                               std::initializer_list<int> sigs)
{
    check(sigs);
    auto [ctx, cancel] = with_cancel(parent);
    subscription sub;
    sub.m_cancel = std::make_shared<cancel_func>(cancel);
    sub.m_sigs.assign(sigs.begin(), sigs.end());
    {
        std::lock_guard lk(g_lock);
        sub.m_id = g_next_id++;
    }
    const std::uint64_t id = sub.m_id;
    add(std::move(sub));
    // The context's end (its cancel, its parent's, or a signal) ends the
    // subscription.
    struct end_reg : detail::cancel_reg {
        std::uint64_t m_id;
    };
    auto reg = new end_reg;
    reg->m_id = id;
    reg->m_fn = [](detail::cancel_reg* r) noexcept {
        auto e = static_cast<end_reg*>(r);
        {
            std::lock_guard lk(g_lock);
            remove_if_locked([&](const subscription& s) { return s.m_id == e->m_id; });
        }
        delete e;
    };
    if (!detail::cancel_register(ctx.node()->m_scope, reg))
        reg->m_fn(reg);
    return {ctx, cancel};
}

} // namespace weft
