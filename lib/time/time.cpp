// Timers, tickers, after and after_func.
//
// A timer_core is shared by its handle (timer/ticker, or the channel alone
// for after()) and by its node while the node is queued or firing, through
// m_refs. The fire callback runs on a worker without the heap lock.
//
// Invariants (guarded by m_lock):
//   m_gen counts stop/reset calls; m_armed_gen is m_gen as of the last arm.
//   A callback whose m_armed_gen differs from m_gen is stale: it only drops
//   the node's reference. Go 1.23's rule follows: stop/reset bump m_gen and
//   empty the channel under m_lock, so no value from before them is left
//   and no stale callback can send one.
//   m_active: armed and neither fired (once/func), stopped nor reset since.
//   The node holds one reference from arm until it is unqueued by
//   stop/reset or its callback ends without re-arming.

#include <atomic>
#include <new>
#include <stdexcept>

#include <weft/runtime.hpp>
#include <weft/time.hpp>

namespace weft::detail {

struct timer_core : timer_node, pooled_frame {
    spinlock m_lock;
    std::atomic<std::uint32_t> m_refs{1};
    std::uint64_t m_gen = 0;
    std::uint64_t m_armed_gen = 0;
    bool m_active = false;
    timer_kind m_kind;
    std::int64_t m_period = 0;           // ticker
    // once, ticker: capacity 1, made on first use (channel() or the first
    // value), so that a timer stopped before anyone looked costs no channel.
    chan<clock::time_point> m_ch;
    std::unique_ptr<after_func_base> m_func;

    timer_core(timer_kind k, std::int64_t period, after_func_base* f)
        : m_kind(k), m_period(period), m_func(f)
    {
        m_callback = &fired;
    }

    void acquire() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept
    {
        // A sole owner needs no read-modify-write: nobody else can take a
        // reference from it.
        if (m_refs.load(std::memory_order_acquire) == 1 ||
            m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }

    /// Called with m_lock held. Queues the node at `when`; the node takes a
    /// reference.
    void arm_locked(std::int64_t when)
    {
        m_armed_gen = m_gen;
        acquire();
        try {
            timer_arm(this, when);
        } catch (...) {
            m_refs.fetch_sub(1, std::memory_order_relaxed);
            throw;
        }
        m_active = true;
    }

    /// Arms a core that no other thread can see yet, without m_lock: the
    /// heap's lock publishes these writes to whoever pops the node.
    void start(std::int64_t when)
    {
        m_armed_gen = m_gen;
        m_active = true;
        m_refs.store(2, std::memory_order_relaxed);
        try {
            timer_arm(this, when);
        } catch (...) {
            m_active = false;
            m_refs.store(1, std::memory_order_relaxed);
            throw;
        }
    }

    /// Called with m_lock held: cancels whatever is armed and drops an
    /// unreceived value. True if the timer was pending.
    bool disarm_locked() noexcept
    {
        ++m_gen;
        bool was_active = m_active;
        m_active = false;
        if (timer_unqueue(this))
            m_refs.fetch_sub(1, std::memory_order_relaxed); // the handle still holds one
        // Otherwise a callback may be on its way: m_gen makes it stale.
        bool drained = false;
        if (m_ch)
            drained = m_ch.try_recv().has_value();
        return was_active || (drained && m_kind == timer_kind::once);
    }

    /// Called with m_lock held.
    chan<clock::time_point>& channel_locked()
    {
        if (!m_ch && m_kind != timer_kind::func)
            m_ch = make_chan<clock::time_point>(1);
        return m_ch;
    }
    /// Called with m_lock held, from the fire callback.
    void send_locked(std::int64_t due) noexcept
    {
        try {
            channel_locked().try_send(from_ns(due));
        } catch (const std::bad_alloc&) {
            // No memory for the channel: the value is lost, as a dropped tick.
        }
    }

    static void fired(timer_node* n, timer_node::event e) noexcept;
};

/// A counted reference to a core, owned by an after_func task (also when
/// the runtime destroys the task before it starts).
class core_ref {
public:
    explicit core_ref(timer_core* c) noexcept : m_c(c) {}
    core_ref(core_ref&& o) noexcept : m_c(std::exchange(o.m_c, nullptr)) {}
    core_ref& operator=(core_ref&&) = delete;
    ~core_ref()
    {
        if (m_c)
            m_c->release();
    }
    timer_core* get() const noexcept { return m_c; }

private:
    timer_core* m_c;
};

task<> run_after_func(core_ref r)
{
    co_await r.get()->m_func->call();
}

void timer_core::fired(timer_node* n, timer_node::event e) noexcept
{
    auto c = static_cast<timer_core*>(n);
    bool keep = false;
    bool spawn = false;
    {
        spin_guard g(c->m_lock);
        timer_fire_done(n);
        if (e == timer_node::event::fire && c->m_armed_gen == c->m_gen && c->m_active) {
            // The value sent is the time the tick was due, as Go sends it.
            std::int64_t now = now_ns();
            switch (c->m_kind) {
            case timer_kind::once:
                c->m_active = false;
                c->send_locked(n->m_when);
                break;
            case timer_kind::ticker: {
                // A full channel means the reader is behind: this tick is
                // dropped. The next one keeps the phase.
                c->send_locked(n->m_when);
                std::int64_t next = n->m_when + c->m_period;
                if (next <= now)
                    next += ((now - next) / c->m_period + 1) * c->m_period;
                try {
                    timer_arm(n, next);
                    keep = true;
                } catch (...) {
                    c->m_active = false; // the runtime is gone
                }
                break;
            }
            case timer_kind::func:
                c->m_active = false;
                spawn = true;
                break;
            }
        } else if (e == timer_node::event::drop) {
            c->m_active = false;
        }
    }
    if (spawn) {
        // The node's reference passes to the new task.
        try {
            weft::go(run_after_func, core_ref(c));
            return;
        } catch (...) {
            // No runtime any more: f does not run.
        }
    }
    if (!keep)
        c->release();
}

timer_core* timer_create(timer_kind kind, std::int64_t period, after_func_base* f)
{
    return new timer_core(kind, period, f);
}

/// Creates and arms a once timer due d from now.
timer_core* timer_start(clock::duration d)
{
    auto c = new timer_core(timer_kind::once, 0, nullptr);
    try {
        c->start(deadline_after(now_ns(), d));
    } catch (...) {
        delete c;
        throw;
    }
    return c;
}

void timer_release(timer_core* c) noexcept { c->release(); }

recv_chan<clock::time_point> timer_channel(timer_core* c)
{
    spin_guard g(c->m_lock);
    return c->channel_locked();
}

/// The handle goes away: stops the timer unless it is an after_func
/// timer, and drops the handle's reference.
void timer_drop(timer_core* c) noexcept
{
    // With no other reference (not queued, not firing), nobody else can
    // reach the core: no lock and nothing to stop.
    if (c->m_refs.load(std::memory_order_acquire) == 1) {
        delete c;
        return;
    }
    if (c->m_kind != timer_kind::func) {
        spin_guard g(c->m_lock);
        if (c->m_active || c->m_ch)
            c->disarm_locked();
    }
    c->release();
}

bool timer_stop(timer_core* c) noexcept
{
    spin_guard g(c->m_lock);
    return c->disarm_locked();
}

namespace {
// Re-arms c for an absolute deadline; true if it was active.
bool rearm(timer_core* c, std::int64_t deadline)
{
    spin_guard g(c->m_lock);
    bool was = c->disarm_locked();
    c->arm_locked(deadline);
    return was;
}
} // namespace

bool timer_reset(timer_core* c, clock::duration d) { return rearm(c, deadline_after(now_ns(), d)); }

bool timer_reset_at(timer& t, std::int64_t deadline)
{
    if (!t.m_core)
        throw std::logic_error("weft::timer: reset of a moved-from timer");
    return rearm(t.m_core, deadline);
}

void ticker_reset(timer_core* c, clock::duration d)
{
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    if (ns <= 0)
        throw std::invalid_argument("weft::ticker: the period must be positive");
    spin_guard g(c->m_lock);
    c->disarm_locked();
    c->m_period = ns;
    c->arm_locked(deadline_after(now_ns(), d));
}

} // namespace weft::detail

namespace weft {

timer::timer(clock::duration d) : m_core(detail::timer_start(d)) {}

recv_chan<clock::time_point> timer::channel() const
{
    return m_core ? detail::timer_channel(m_core) : recv_chan<clock::time_point>{};
}

bool timer::reset(clock::duration d)
{
    if (!m_core)
        throw std::logic_error("weft::timer: reset of a moved-from timer");
    return detail::timer_reset(m_core, d);
}

void timer::release() noexcept
{
    if (!m_core)
        return;
    // A timer from after_func keeps its schedule when dropped (Go's AfterFunc).
    detail::timer_drop(std::exchange(m_core, nullptr));
}

recv_chan<clock::time_point> after(clock::duration d)
{
    auto c = detail::timer_start(d);
    recv_chan<clock::time_point> ch;
    try {
        ch = detail::timer_channel(c);
    } catch (...) {
        detail::timer_drop(c);
        throw;
    }
    // No handle keeps the core: the node's reference does until it fires,
    // then the channel alone remains.
    detail::timer_release(c);
    return ch;
}

ticker::ticker(clock::duration period)
    : m_core(detail::timer_create(detail::timer_kind::ticker, 0, nullptr))
{
    try {
        detail::ticker_reset(m_core, period);
    } catch (...) {
        detail::timer_release(std::exchange(m_core, nullptr));
        throw;
    }
}

recv_chan<clock::time_point> ticker::channel() const
{
    return m_core ? detail::timer_channel(m_core) : recv_chan<clock::time_point>{};
}

void ticker::reset(clock::duration period)
{
    if (!m_core)
        throw std::logic_error("weft::ticker: reset of a moved-from ticker");
    detail::ticker_reset(m_core, period);
}

void ticker::release() noexcept
{
    if (!m_core)
        return;
    detail::timer_drop(std::exchange(m_core, nullptr));
}

} // namespace weft
