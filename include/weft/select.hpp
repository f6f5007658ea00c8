// select over channel operations, and select_from over a runtime-sized list.
#pragma once

#include <array>
#include <coroutine>
#include <cstddef>
#include <iterator>
#include <new>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <weft/chan.hpp>
#include <weft/detail/cancel.hpp>
#include <weft/detail/select_core.hpp>

namespace weft {

/// The select case chosen only when no other case is ready. [default:]
struct default_case_t {
    explicit constexpr default_case_t(int) noexcept {}
};
inline constexpr default_case_t default_case{0};

namespace detail {

// A select case adapter provides:
//   using result_type;
//   chan_lock* lock();                    nullptr: never ready (nil) or default
//   bool poll(task_header*& wake);        with the lock held: complete now?
//   bool may_complete();                  optional: without the lock, false
//                                         if poll would surely fail (a hint)
//   void enqueue(chan_waiter&); bool unlink(chan_waiter&);   lock held
//   void reap();   after unlocking, when unlink returned true (chan_state)
//   result_type result(bool via_waiter, chan_waiter&);     after completion
//   static constexpr bool is_default;

template <class T>
class recv_case {
public:
    using result_type = std::optional<T>;
    static constexpr bool is_default = false;

    explicit recv_case(chan_state<T>* s, chan_ref<T> owned = {}) noexcept
        : m_ch(s), m_owned(std::move(owned))
    {
    }
    chan_lock* lock() const noexcept { return m_ch ? &m_ch->lock() : nullptr; }
    bool may_complete() const noexcept { return m_ch->recv_may_complete(); }
    bool poll(task_header*& wake) { return m_ch->recv_locked(m_value, wake) != chan_result::would_block; }
    void enqueue(chan_waiter& w) noexcept
    {
        w.m_slot = &m_value;
        m_ch->enqueue_recv(&w);
    }
    bool unlink(chan_waiter& w) noexcept { return m_ch->unlink_recv(&w); }
    void reap() noexcept { m_ch->reap(); }
    // select_from: reap after unlocking every case's channel.
    void mark_reap() noexcept { m_reap = true; }
    void reap_if_marked() noexcept
    {
        if (std::exchange(m_reap, false))
            reap();
    }
    result_type result(bool, chan_waiter&) noexcept(std::is_nothrow_move_constructible_v<T>)
    {
        return take_received(m_value);
    }

private:
    chan_state<T>* m_ch;
    chan_ref<T> m_owned;
    std::optional<T> m_value;
    bool m_reap = false;
};

template <class T>
class send_case {
public:
    using result_type = std::monostate;
    static constexpr bool is_default = false;

    send_case(chan_state<T>* s, chan_ref<T> owned, T&& v)
        : m_ch(s), m_owned(std::move(owned)), m_value(std::move(v))
    {
    }
    chan_lock* lock() const noexcept { return m_ch ? &m_ch->lock() : nullptr; }
    bool may_complete() const noexcept { return m_ch->send_may_complete(); }
    bool poll(task_header*& wake)
    {
        auto r = m_ch->send_locked(std::move(m_value), wake);
        m_closed = r == chan_result::closed;
        return r != chan_result::would_block;
    }
    void enqueue(chan_waiter& w) noexcept
    {
        w.m_slot = &m_value;
        m_ch->enqueue_send(&w);
    }
    bool unlink(chan_waiter& w) noexcept { return m_ch->unlink_send(&w); }
    void reap() noexcept { m_ch->reap(); }
    result_type result(bool via_waiter, chan_waiter& w)
    {
        if (via_waiter ? !w.m_ok : m_closed)
            throw_closed_send();
        return {};
    }

private:
    chan_state<T>* m_ch;
    chan_ref<T> m_owned;
    T m_value;
    bool m_closed = false;
};

struct default_select_case {
    using result_type = std::monostate;
    static constexpr bool is_default = true;
    chan_lock* lock() const noexcept { return nullptr; }
    bool poll(task_header*&) noexcept { return false; }
    void enqueue(chan_waiter&) noexcept {}
    bool unlink(chan_waiter&) noexcept { return false; }
    void reap() noexcept {}
    result_type result(bool, chan_waiter&) noexcept { return {}; }
};

template <class T>
recv_case<T> to_case(recv_operation<T>&& op) noexcept
{
    return recv_case<T>(op.state());
}
template <class T>
recv_case<T> to_case(const chan<T>& c) noexcept
{
    return recv_case<T>(c.state());
}
template <class T>
recv_case<T> to_case(chan<T>&& c) noexcept
{
    auto s = c.state();
    return recv_case<T>(s, std::move(c).take_ref());
}
template <class T>
recv_case<T> to_case(const recv_chan<T>& c) noexcept
{
    return recv_case<T>(c.state());
}
template <class T>
recv_case<T> to_case(recv_chan<T>&& c) noexcept
{
    auto s = c.state();
    return recv_case<T>(s, std::move(c).take_ref());
}
template <class T>
send_case<T> to_case(send_operation<T>&& op)
{
    return send_case<T>(op.state(), {}, std::move(op.value()));
}
inline default_select_case to_case(default_case_t) noexcept { return {}; }

/// Lets other headers add case kinds: a type with a member select_case()
/// returning an adapter.
template <class C>
    requires requires(C&& c) { std::forward<C>(c).select_case(); }
auto to_case(C&& c)
{
    return std::forward<C>(c).select_case();
}

template <class C>
using case_t = decltype(to_case(std::declval<C>()));

} // namespace detail

/// The awaitable returned by select(...).
///
/// Resumption: a select that had to wait resumes on a worker after the
///   winning counterpart readied it.
/// Cancel safety: exactly one case takes effect; the others consume and send
///   nothing.
template <class... Cases>
class [[nodiscard]] select_operation {
    static constexpr std::size_t N = sizeof...(Cases);
    static_assert(N > 0, "weft::select needs at least one case");
    static constexpr std::size_t k_defaults = (std::size_t(Cases::is_default) + ...);
    static_assert(k_defaults <= 1, "weft::select: at most one default_case");
    /// The first pass skips the cases that look not ready (see
    /// await_suspend): not with a default case, where that pass decides.
    static constexpr bool k_hinted = k_defaults == 0 && N <= 64;

public:
    using result_type = std::variant<typename Cases::result_type...>;

    explicit select_operation(Cases&&... cs) : m_cases(std::move(cs)...) {}
    select_operation(select_operation&&) = default;
    select_operation(const select_operation&) = delete;
    select_operation& operator=(const select_operation&) = delete;
    ~select_operation()
    {
        if (m_suspended)
            withdraw(); // destroyed while waiting (runtime shutdown)
        detail::hook_end(m_hook);
    }

    bool await_ready() const noexcept { return false; }

    WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
    {
        std::array<std::uint8_t, N> order;
        detail::task_header* wake = nullptr;

        // Fast path: poll cases alone, each under its own lock, in random
        // order. A ready case found this way was ready at that instant; if
        // several are ready the first in the random order wins, so the
        // choice stays uniform. Only when none was ready are all locks taken
        // together, to poll again and enqueue atomically.
        if constexpr (k_hinted) {
            // Without a default case, a case whose channel cannot be ready
            // (by a lock-free look, see recv_may_complete) is left to the
            // pass under all the locks, which looks at it again anyway. So
            // the random order runs over the cases that look ready only:
            // one is picked uniformly among them, then the next among the
            // rest. With a single candidate there is nothing to draw (and
            // no branch on a random number to mispredict).
            std::uint64_t ready = ready_hints(std::make_index_sequence<N>{});
            while (ready) {
                const auto k = pick_uniform(ready);
                if (poll_alone(k, wake)) {
                    m_chosen = k;
                    if (wake)
                        detail::wake_waiter(wake);
                    return false;
                }
                ready &= ~(std::uint64_t{1} << k);
            }
        } else {
            // With a default case this pass decides, so no hint: every case
            // is polled under its lock.
            detail::random_order(order.data(), N);
            for (std::size_t k = 0; k < N; ++k) {
                if (poll_alone(order[k], wake)) {
                    m_chosen = order[k];
                    if (wake)
                        detail::wake_waiter(wake);
                    return false;
                }
            }
            if constexpr (k_defaults != 0) {
                m_chosen = default_index();
                return false;
            }
        }

        detail::task_header* self = detail::require_task("select");
        // A cancellable task registers before it locks anything (see
        // detail/cancel.hpp); the hook claims the select like any case.
        if (!detail::hook_begin(m_hook, self, this, &withdraw_hook)) {
            resolve_cancel();
            return false;
        }

        if constexpr (k_hinted)
            detail::random_order(order.data(), N);
        collect_locks(std::make_index_sequence<N>{});
        detail::lock_all(m_locks.data(), m_nlocks);
        try {
            for (std::size_t k = 0; k < N; ++k) {
                if (poll_case(order[k], wake)) {
                    m_chosen = order[k];
                    break;
                }
            }
        } catch (...) {
            detail::unlock_all(m_locks.data(), m_nlocks);
            detail::hook_end(m_hook);
            throw;
        }
        if (m_chosen != N || detail::hook_cancelled(m_hook)) {
            detail::unlock_all(m_locks.data(), m_nlocks);
            if (wake)
                detail::wake_waiter(wake);
            if (detail::hook_end(m_hook) && m_chosen == N)
                resolve_cancel();
            return false;
        }
        self->m_resume = h;
        // Every channel nil: blocks until cancelled, like select {}.
        const bool hooked = m_hook.registered();
        enqueue_all(self, std::make_index_sequence<N>{});
        m_suspended = true;
        std::size_t n = m_nlocks;
        lock_array locks = m_locks;
        detail::unlock_all(locks.data(), n);
        return !hooked || detail::hook_suspend(m_hook);
    }

    result_type await_resume()
    {
        bool via_waiter = false;
        if (m_suspended) {
            m_chosen = m_sel.m_winner;
            withdraw(m_chosen);
            via_waiter = true;
        }
        if (detail::hook_end(m_hook) && m_chosen == N) {
            if (resolve_cancel())
                detail::throw_canceled();
            via_waiter = false;
        }
        if (m_throw_canceled)
            detail::throw_canceled();
        return make_result(via_waiter, std::make_index_sequence<N>{});
    }

private:
    using lock_array = std::array<detail::chan_lock*, N>;

    template <class C>
    static constexpr bool is_done_case = requires { C::is_done; };

    /// The task's context is done and no case was taken. A select with a
    /// done() case reports the one of the task's own context, else its first
    /// done() case; without one it throws. Returns true when it must throw
    /// (recorded in m_throw_canceled for await_resume).
    bool resolve_cancel() noexcept
    {
        std::size_t first = N;
        std::size_t own = N;
        detail::context_node* scope = detail::task_scope(detail::current_task());
        find_done(scope, first, own, std::make_index_sequence<N>{});
        m_chosen = own != N ? own : first;
        m_throw_canceled = m_chosen == N;
        return m_throw_canceled;
    }
    template <std::size_t... I>
    void find_done(detail::context_node* scope, std::size_t& first, std::size_t& own,
                   std::index_sequence<I...>) noexcept
    {
        auto one = [&](auto& c, std::size_t k) {
            if constexpr (is_done_case<std::decay_t<decltype(c)>>) {
                if (first == N)
                    first = k;
                if (own == N && c.scope() == scope)
                    own = k;
            }
        };
        (one(std::get<I>(m_cases), I), ...);
    }

    static void withdraw_hook(detail::wait_hook* hook) noexcept
    {
        detail::cancel_select(static_cast<select_operation*>(hook->m_op)->m_sel,
                              static_cast<std::uint32_t>(N), hook);
    }

    static constexpr std::size_t default_index() noexcept
    {
        std::size_t i = 0;
        std::size_t k = 0;
        ((Cases::is_default ? (i = k) : 0, ++k), ...);
        return i;
    }

    template <std::size_t... I>
    void collect_locks(std::index_sequence<I...>) noexcept
    {
        std::size_t n = 0;
        auto add = [&](detail::chan_lock* l) {
            if (l)
                m_locks[n++] = l;
        };
        (add(std::get<I>(m_cases).lock()), ...);
        m_nlocks = detail::order_locks(m_locks.data(), n);
    }

    bool poll_alone(std::size_t k, detail::task_header*& wake)
    {
        return poll_alone_impl(k, wake, std::make_index_sequence<N>{});
    }
    template <std::size_t... I>
    bool poll_alone_impl(std::size_t k, detail::task_header*& wake, std::index_sequence<I...>)
    {
        bool done = false;
        auto one = [&](auto& c) {
            if (auto l = c.lock()) {
                detail::spin_guard g(*l);
                done = c.poll(wake);
            }
        };
        ((k == I ? one(std::get<I>(m_cases)) : void()), ...);
        return done;
    }
    /// Bit k: case k has a channel that may be ready now (a lock-free look
    /// that may be stale either way; a case without such a look counts).
    template <std::size_t... I>
    std::uint64_t ready_hints(std::index_sequence<I...>) noexcept
    {
        std::uint64_t mask = 0;
        auto one = [&](auto& c, std::size_t k) {
            if (!c.lock())
                return;
            if constexpr (requires { c.may_complete(); })
                if (!c.may_complete())
                    return;
            mask |= std::uint64_t{1} << k;
        };
        (one(std::get<I>(m_cases), I), ...);
        return mask;
    }
    /// One of the set bits of mask (nonzero), each as likely as the others.
    static std::size_t pick_uniform(std::uint64_t mask) noexcept
    {
        if ((mask & (mask - 1)) == 0)
            return static_cast<std::size_t>(__builtin_ctzll(mask));
        const auto count = static_cast<std::uint64_t>(__builtin_popcountll(mask));
        auto skip = ((detail::fast_random64() & 0xffffffff) * count) >> 32;
        for (; skip; --skip)
            mask &= mask - 1;
        return static_cast<std::size_t>(__builtin_ctzll(mask));
    }

    bool poll_case(std::size_t k, detail::task_header*& wake)
    {
        return poll_case_impl(k, wake, std::make_index_sequence<N>{});
    }
    template <std::size_t... I>
    bool poll_case_impl(std::size_t k, detail::task_header*& wake, std::index_sequence<I...>)
    {
        bool done = false;
        ((k == I && std::get<I>(m_cases).lock() ? (done = std::get<I>(m_cases).poll(wake), 0) : 0),
         ...);
        return done;
    }

    template <std::size_t... I>
    void enqueue_all(detail::task_header* self, std::index_sequence<I...>) noexcept
    {
        auto one = [&](auto& c, std::size_t k) {
            if (!c.lock())
                return;
            auto& w = *::new (&m_waiters[k].w) detail::chan_waiter{};
            w.m_task = self;
            w.m_sel = &m_sel;
            w.m_case = static_cast<std::uint32_t>(k);
            c.enqueue(w);
        };
        (one(std::get<I>(m_cases), I), ...);
    }

    /// Takes the losing waiters out of their queues. The winner's waker
    /// already dequeued the winning one (before it readied this task), so
    /// the winner's lock is skipped unless another case shares it.
    void withdraw(std::size_t winner = N) noexcept
    {
        detail::chan_lock* skip = winner < N ? lock_of(winner) : nullptr;
        if (skip && uses_of(skip) > 1)
            skip = nullptr;
        std::array<detail::chan_lock*, N> locks{};
        std::size_t n = 0;
        for (std::size_t i = 0; i < m_nlocks; ++i)
            if (m_locks[i] != skip)
                locks[n++] = m_locks[i];
        std::array<bool, N> reap{};
        detail::lock_all(locks.data(), n);
        unlink_all(winner, reap, std::make_index_sequence<N>{});
        detail::unlock_all(locks.data(), n);
        m_suspended = false;
        reap_all(reap, std::make_index_sequence<N>{});
    }
    detail::chan_lock* lock_of(std::size_t k) noexcept
    {
        return lock_of_impl(k, std::make_index_sequence<N>{});
    }
    template <std::size_t... I>
    detail::chan_lock* lock_of_impl(std::size_t k, std::index_sequence<I...>) noexcept
    {
        detail::chan_lock* l = nullptr;
        ((k == I ? (l = std::get<I>(m_cases).lock(), 0) : 0), ...);
        return l;
    }
    std::size_t uses_of(detail::chan_lock* l) noexcept
    {
        std::size_t n = 0;
        for (std::size_t k = 0; k < N; ++k)
            n += lock_of(k) == l;
        return n;
    }
    template <std::size_t... I>
    void unlink_all(std::size_t winner, std::array<bool, N>& reap, std::index_sequence<I...>) noexcept
    {
        ((reap[I] = I != winner && std::get<I>(m_cases).lock() &&
                    std::get<I>(m_cases).unlink(m_waiters[I].w)),
         ...);
    }
    template <std::size_t... I>
    void reap_all(const std::array<bool, N>& reap, std::index_sequence<I...>) noexcept
    {
        ((reap[I] ? std::get<I>(m_cases).reap() : void()), ...);
    }

    template <std::size_t... I>
    result_type make_result(bool via_waiter, std::index_sequence<I...>)
    {
        return make_result_at<0>(via_waiter);
    }
    // Builds the result in place (no temporary to move from): a chain of
    // tests of m_chosen, one per case.
    template <std::size_t I>
    result_type make_result_at(bool via_waiter)
    {
        if constexpr (I + 1 < N) {
            if (m_chosen != I)
                return make_result_at<I + 1>(via_waiter);
        }
        return result_type(std::in_place_index<I>,
                           std::get<I>(m_cases).result(via_waiter, m_waiters[I].w));
    }

    /// A waiter node, made when the select enqueues (the fast path, which
    /// finds a case ready, never touches it).
    union waiter_slot {
        waiter_slot() noexcept {}
        detail::chan_waiter w;
    };

    std::tuple<Cases...> m_cases;
    std::array<waiter_slot, N> m_waiters;
    lock_array m_locks; // set by collect_locks before any use
    std::size_t m_nlocks = 0;
    std::size_t m_chosen = N;
    detail::select_state m_sel;
    detail::op_hook<select_operation> m_hook;
    bool m_suspended = false;
    bool m_throw_canceled = false;
};

/// [select { case ... }] Waits until one of the cases can proceed and
/// performs exactly that one. Each argument is a case:
///   ch.recv(), or a chan / recv_chan itself   -> std::optional<T>
///   ch.send(v)                                -> std::monostate
///   default_case                              -> std::monostate
/// co_await returns std::variant<R0, R1, ...> in argument order; index()
/// says which case ran. Among ready cases the choice is uniformly random;
/// nil channels are never ready; a closed channel's recv is ready (nullopt);
/// a send on a closed channel is ready and throws closed_channel if chosen.
/// Operands are evaluated once, when select() is called.
template <class... C>
auto select(C&&... cases)
{
    return select_operation<detail::case_t<C>...>(detail::to_case(std::forward<C>(cases))...);
}

/// [reflect.Select] Receives from whichever channel of a runtime-sized list
/// is ready first (uniformly random among ready ones). Returns the index and
/// what recv returned. Blocks forever if every channel is nil.
template <class T>
class [[nodiscard]] select_from_operation {
public:
    template <class Range>
    explicit select_from_operation(const Range& channels)
    {
        for (const auto& c : channels)
            m_cases.emplace_back(c.state());
        m_waiters.resize(m_cases.size());
    }
    select_from_operation(select_from_operation&&) = default;
    ~select_from_operation()
    {
        if (m_suspended)
            withdraw();
        detail::hook_end(m_hook);
    }

    bool await_ready() const noexcept { return false; }
    WEFT_AWAIT_SUSPEND bool await_suspend(std::coroutine_handle<> h)
    {
        const std::size_t n = m_cases.size();
        m_locks.clear();
        for (auto& c : m_cases)
            if (auto l = c.lock())
                m_locks.push_back(l);
        m_locks.resize(detail::order_locks(m_locks.data(), m_locks.size()));
        std::vector<std::uint32_t> order(n);
        detail::random_order(order.data(), n);

        detail::task_header* self = detail::require_task("select_from");
        if (!detail::hook_begin(m_hook, self, this, &withdraw_hook))
            return false;

        detail::task_header* wake = nullptr;
        detail::lock_all(m_locks.data(), m_locks.size());
        for (std::size_t k = 0; k < n; ++k) {
            auto& c = m_cases[order[k]];
            if (c.lock() && c.poll(wake)) {
                m_chosen = order[k];
                break;
            }
        }
        if (m_chosen != npos || detail::hook_cancelled(m_hook)) {
            detail::unlock_all(m_locks.data(), m_locks.size());
            if (wake)
                detail::wake_waiter(wake);
            return false;
        }
        self->m_resume = h;
        for (std::size_t k = 0; k < n; ++k) {
            if (!m_cases[k].lock())
                continue;
            auto& w = m_waiters[k];
            w.m_task = self;
            w.m_sel = &m_sel;
            w.m_case = static_cast<std::uint32_t>(k);
            m_cases[k].enqueue(w);
        }
        m_suspended = true;
        const bool hooked = m_hook.registered();
        detail::chan_lock* const* locks = m_locks.data();
        std::size_t nl = m_locks.size();
        detail::unlock_all(locks, nl);
        return !hooked || detail::hook_suspend(m_hook);
    }
    std::pair<std::size_t, std::optional<T>> await_resume()
    {
        bool via_waiter = false;
        if (m_suspended) {
            m_chosen = m_sel.m_winner;
            withdraw();
            via_waiter = true;
        }
        if (detail::hook_end(m_hook) && m_chosen >= m_cases.size())
            detail::throw_canceled();
        return {m_chosen, m_cases[m_chosen].result(via_waiter, m_waiters[m_chosen])};
    }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    static void withdraw_hook(detail::wait_hook* hook) noexcept
    {
        detail::cancel_select(static_cast<select_from_operation*>(hook->m_op)->m_sel,
                              static_cast<std::uint32_t>(-1), hook);
    }

    void withdraw() noexcept
    {
        detail::lock_all(m_locks.data(), m_locks.size());
        for (std::size_t k = 0; k < m_cases.size(); ++k)
            if (m_cases[k].lock() && m_cases[k].unlink(m_waiters[k]))
                m_cases[k].mark_reap();
        detail::unlock_all(m_locks.data(), m_locks.size());
        m_suspended = false;
        for (auto& c : m_cases)
            c.reap_if_marked();
    }

    std::vector<detail::recv_case<T>> m_cases;
    std::vector<detail::chan_waiter> m_waiters;
    std::vector<detail::chan_lock*> m_locks;
    std::size_t m_chosen = npos;
    detail::op_hook<select_from_operation> m_hook;
    detail::select_state m_sel;
    bool m_suspended = false;
};

/// select_from(channels): channels is any range of chan<T> or recv_chan<T>.
template <class Range>
auto select_from(const Range& channels)
{
    using handle = std::remove_cvref_t<decltype(*std::begin(channels))>;
    using T = typename handle::value_type;
    return select_from_operation<T>(channels);
}

} // namespace weft
