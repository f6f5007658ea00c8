// Life cycle of root tasks (go, run's main, block_on bridges) and joining.
//
// The block layout and its invariants are described at root_base
// (weft/runtime.hpp).

#include <cstdio>
#include <ctime>
#include <cstdint>
#include <cstdlib>
#include <cxxabi.h>
#include <memory>
#include <string>
#include <exception>
#include <typeinfo>
#include <utility>

#include <weft/detail/cancel.hpp>
#include <weft/detail/config.hpp>
#include <weft/runtime.hpp>

#include "futex.hpp"
#include "scheduler.hpp"
#include "../diag/log.hpp"

namespace weft::detail {

void wake_join_waiter(join_waiter* w) noexcept
{
    if (w->m_task) {
        wake_waiter(w->m_task);
    } else {
        // The waiting thread may return (and its stack frame end) as soon as
        // it sees the store; futex_wake only names the address.
        w->m_word.store(1, std::memory_order_release);
        futex_wake(&w->m_word, 1);
    }
}

void wait_join_waiter(join_waiter& w) noexcept
{
    while (w.m_word.load(std::memory_order_acquire) == 0) {
#if defined(WEFT_TSAN)
        // ThreadSanitizer holds back a signal that arrives while the thread
        // is in a system call it does not intercept (this futex, restarted
        // by SA_RESTART) until the thread enters one it does. The kernel
        // hands a process-directed signal to this thread (the main one)
        // first, so without this a SIGTERM relayed by signal_notify would
        // never run: wake up now and then and pass through nanosleep.
        futex_wait_for(&w.m_word, 0, 20'000'000);
        timespec zero{};
        ::nanosleep(&zero, nullptr);
#else
        futex_wait(&w.m_word, 0);
#endif
    }
}

void root_base::finish() noexcept
{
    if (m_main)
        main_task_done();
    // Not gone from the registry when it ended on a worker other than its
    // shard's: the block's memory stays until that worker unlinks it (k_kept).
    const bool gone = unregister_task(this);
    auto old = m_join.load(std::memory_order_acquire);
    if (!(old & k_detached)) {
        // The handle lives: after this its owner may end the block (once
        // it sees k_done), so only the returned word is ours to look at.
        old = m_join.fetch_or(gone ? k_done : k_done | k_kept, std::memory_order_acq_rel);
        if (auto w = old & ~k_flags)
            wake_join_waiter(reinterpret_cast<join_waiter*>(w));
        if (!(old & k_detached)) {
            if (!gone)
                exit_elsewhere(this);
            return;
        }
    }
    // The handle is gone (and with it any waiter): nobody else changes the
    // word until exit_elsewhere publishes the task, so the common end of a
    // detached task needs no atomic read-modify-write.
    if (gone) {
        destroy();
        return;
    }
    end_contents();
    m_join.store(old | k_done | k_kept | k_ended, std::memory_order_relaxed);
    exit_elsewhere(this);
}

void root_unlinked(task_header* t) noexcept { static_cast<root_base*>(t)->unlinked(); }

void root_base::unlinked() noexcept
{
    if (m_join.fetch_and(~k_kept, std::memory_order_acq_rel) & k_ended)
        free_block();
}

void root_base::abandon(task_header* t) noexcept
{
    auto r = static_cast<root_base*>(t);
    r->m_abandoned = true;
    auto old = r->m_join.fetch_or(k_done, std::memory_order_acq_rel);
    if (auto p = old & ~k_flags) {
        // A joining task is being destroyed too; a blocked thread must learn
        // that the task is gone.
        auto w = reinterpret_cast<join_waiter*>(p);
        if (!w->m_task)
            wake_join_waiter(w);
    }
    if (old & k_detached)
        r->destroy();
}

void root_base::release_handle() noexcept
{
    // A live handle has no waiter out (a join takes its waiter back or is
    // woken before the handle can go), so only the flags change here.
    if ((m_join.load(std::memory_order_acquire) & (k_done | k_kept)) == k_done) {
        // Ended (a joined task, say) and unlinked: nobody else changes
        // the word any more.
        destroy();
        return;
    }
    auto old = m_join.fetch_or(k_detached, std::memory_order_acq_rel);
    if (!(old & k_done))
        return;
    if (!(old & k_kept)) {
        destroy();
        return;
    }
    end_contents();
    if (!(m_join.fetch_or(k_ended, std::memory_order_acq_rel) & k_kept))
        free_block(); // unlinked meanwhile, and left the memory to us
}

void root_base::destroy() noexcept
{
    release_contents();
    (void)m_ops(this, op::destroy);
}

void root_base::end_contents() noexcept
{
    release_contents();
    (void)m_ops(this, op::end);
}

void root_base::release_contents() noexcept
{
    // The body's frame is still there unless the task was abandoned.
    if (m_body && m_body->m_exception && !m_abandoned && !m_joined.load(std::memory_order_relaxed) &&
        !ended_by_cancellation())
        unhandled_task_exception(this, m_body->m_exception);
    if (auto ctx = std::exchange(m_ctx, nullptr))
        ctx->release();
    delete std::exchange(m_hook, nullptr);
}

void root_base::free_block() noexcept { (void)m_ops(this, op::free); }

bool root_base::ended_by_cancellation() const noexcept
{
    if (!m_ctx || !m_ctx->cancelled())
        return false;
    try {
        std::rethrow_exception(m_body->m_exception);
    } catch (const canceled_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

void root_base::claim_join()
{
    if (m_joined.exchange(true, std::memory_order_relaxed))
        throw std::logic_error("weft::join_handle: a task can be joined only once");
}

void root_base::check_not_abandoned() const
{
    if (m_abandoned)
        throw std::logic_error("weft: joined task was destroyed at runtime shutdown");
}

void root_body_done(void* tagged_root) noexcept
{
    auto r = reinterpret_cast<root_base*>(reinterpret_cast<std::uintptr_t>(tagged_root) & ~std::uintptr_t{1});
    r->finish();
}

void throw_empty_body()
{
    throw std::logic_error("weft::go: the task function returned an empty task");
}

[[noreturn]] void unhandled_task_exception(task_header* t, std::exception_ptr e) noexcept
{
    std::string what;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        int status = 0;
        std::unique_ptr<char, void (*)(void*)> type(
            abi::__cxa_demangle(typeid(ex).name(), nullptr, nullptr, &status), std::free);
        what = std::string(ex.what()) + " [" + (status == 0 ? type.get() : typeid(ex).name()) + "]";
    } catch (...) {
        what = "unknown exception";
    }
    std::fflush(stdout); // what the program printed comes before the panic, as in Go
    std::string report = "panic: " + what + "\n\ntask " + std::to_string(t->m_id) +
                         " [exception escaped a task that nobody joins]\n";
    if (auto creator = describe_creator(t); !creator.empty())
        report += creator + "\n";
    log(log_level::error, report);
    std::fputs(report.c_str(), stderr);
    std::fflush(stderr);
    std::_Exit(2);
}

} // namespace weft::detail
