// task_group: tasks that share a context and whose first failure cancels
// the rest. [golang.org/x/sync/errgroup]
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/context.hpp>
#include <weft/runtime.hpp>
#include <weft/semaphore.hpp>
#include <weft/task.hpp>
#include <weft/wait_group.hpp>

namespace weft {

/// A group of tasks started by go() that run with the group's context. The
/// first task to fail (throw) cancels that context, so its siblings'
/// blocking operations end; wait() joins them all and rethrows the first
/// failure. [errgroup.Group]
///
///     task_group g;                       // a child of current_context()
///     for (auto& url : urls)
///         co_await g.go(fetch, url);      // waits only when a limit is set
///     co_await g.wait();                  // rethrows the first failure
///
/// Thread safety: go() and wait() may be called from any task.
/// Cancellation: the group's context is a with_cancel child of the parent
///   given at construction; it is cancelled by the first failure and when
///   wait() returns.
/// Lifetime: the children share the group's state, so destroying a group
///   whose children still run is safe: the destructor cancels the group's
///   context, the children finish on their own, and their failures are
///   dropped. Call wait() to join them.
class task_group {
public:
    explicit task_group(const context& parent = current_context())
        : m_state(std::make_shared<state>(parent))
    {
    }
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;
    ~task_group() { m_state->m_cancel(); }

    /// Bounds the number of children running at once; go() then waits for
    /// a free slot. Throws std::logic_error while children run, and
    /// std::invalid_argument for 0. [g.SetLimit]
    void set_limit(std::size_t n)
    {
        if (n == 0)
            throw std::invalid_argument("weft::task_group: a limit of 0");
        if (m_state->m_running.load() != 0)
            throw std::logic_error("weft::task_group: set_limit while tasks run");
        m_state->m_limit = std::make_unique<semaphore>(static_cast<std::int64_t>(n));
    }

    /// co_await g.go(f, args...): starts f(args...) (which returns a task)
    /// in the group's context. With a limit, first waits for a free slot
    /// (that wait is cancellable like any other). [g.Go]
    template <class F, class... A>
        requires detail::task_function<F, A...>
    task<> go(F f, A... args)
    {
        auto s = m_state;
        if (s->m_limit)
            co_await s->m_limit->acquire();
        s->m_running.fetch_add(1);
        s->m_wg.add(1);
        try {
            weft::go(s->m_ctx, &run_child<F, A...>, s, std::move(f), std::move(args)...);
        } catch (...) {
            s->child_done();
            throw;
        }
    }

    /// co_await g.wait(): waits for every child, cancels the group's
    /// context, and rethrows the first failure if there was one. [g.Wait]
    task<> wait()
    {
        auto s = m_state;
        co_await s->m_wg.wait();
        s->m_cancel();
        std::exception_ptr e;
        {
            std::lock_guard lk(s->m_mutex);
            e = s->m_error;
        }
        if (e)
            std::rethrow_exception(e);
    }

    /// The context the children run with.
    const context& get_context() const noexcept { return m_state->m_ctx; }

private:
    struct state {
        explicit state(const context& parent)
        {
            auto [c, cancel] = with_cancel(parent);
            m_ctx = std::move(c);
            m_cancel = std::move(cancel);
        }
        void child_done()
        {
            if (m_limit)
                m_limit->release();
            m_running.fetch_sub(1);
            m_wg.done();
        }
        void fail(std::exception_ptr e)
        {
            {
                std::lock_guard lk(m_mutex);
                if (!m_error)
                    m_error = std::move(e);
            }
            m_cancel();
        }

        context m_ctx;
        cancel_func m_cancel;
        wait_group m_wg;
        std::unique_ptr<semaphore> m_limit;
        std::atomic<std::size_t> m_running{0};
        std::mutex m_mutex;
        std::exception_ptr m_error; // guarded by m_mutex
    };

    template <class F, class... A>
    static task<> run_child(std::shared_ptr<state> s, F f, A... args)
    {
        try {
            co_await std::invoke(f, std::move(args)...);
        } catch (...) {
            s->fail(std::current_exception());
        }
        s->child_done();
    }

    std::shared_ptr<state> m_state;
};

} // namespace weft
