// dump_tasks and the runtime counters.
//
// A dump stops the world (scheduler::stop_world), so the frames of every
// task that is not running stay put while their async stacks are walked:
// from the outermost user frame (task_header::op::body) down the m_child
// links of the task promises; each frame's m_where is the co_await it is in.

#include <weft/diag.hpp>
#include <weft/task.hpp>

#include "../sched/scheduler.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace weft {
namespace detail {

std::atomic<std::size_t> g_live_channels{0};

namespace {

// The names dump_tasks shows for the `what` strings of the operations.
std::string_view state_name(const char* what) noexcept
{
    static constexpr std::pair<std::string_view, std::string_view> names[] = {
        {"chan recv", "chan receive"},
        {"chan send", "chan send"},
        {"recv on a nil channel", "chan receive (nil chan)"},
        {"send on a nil channel", "chan send (nil chan)"},
        {"select_from", "select"},
        {"sleep_for/sleep_until", "sleep"},
        {"context::done", "context done"},
        {"once call", "once"},
    };
    std::string_view w(what);
    for (auto& [from, to] : names)
        if (w == from)
            return to;
    return w;
}

// GCC names a coroutine body after its frame type ("void f(f()::_Z1fv.Frame*)");
// show the demangled function instead.
std::string function_name(const std::source_location& where)
{
    std::string_view name = where.function_name();
    auto frame = name.find(".Frame");
    if (frame != std::string_view::npos) {
        auto start = name.rfind("_Z", frame);
        if (start != std::string_view::npos) {
            std::string mangled(name.substr(start, frame - start));
            int status = 0;
            std::unique_ptr<char, void (*)(void*)> d(
                abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status), std::free);
            if (status == 0 && d)
                return d.get();
        }
    }
    return std::string(name);
}

void write_location(std::ostream& os, const std::source_location& where)
{
    os << describe_location(where);
}

void write_duration(std::ostream& os, std::uint32_t ms)
{
    if (ms < 10'000)
        os << ms << " ms";
    else if (ms < 600'000)
        os << ms / 1000 << " s";
    else
        os << ms / 60'000 << " minutes";
}

enum class run_state { waiting, runnable, running };

void write_task(std::ostream& os, task_header* t, run_state state, std::uint32_t now)
{
    os << "task " << t->m_id << " [";
    const char* wait = t->m_wait.load(std::memory_order_relaxed);
    const bool running = state == run_state::running;
    if (running)
        os << "running";
    else if (!wait || state == run_state::runnable)
        os << "runnable";
    else {
        os << state_name(wait) << ", ";
        write_duration(os, now - t->m_since.load(std::memory_order_relaxed));
    }
    os << "]:\n";
    // A running task's frames change under us, unless it is the caller.
    if (!running || t == current_task()) {
        std::vector<task_promise_base*> frames;
        for (auto p = static_cast<task_promise_base*>(t->m_ops(t, task_header::op::body)); p;
             p = p->m_child)
            frames.push_back(p);
        bool any = false;
        for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
            if (!(*it)->m_where.file_name()[0])
                continue; // not started yet
            os << "  ";
            write_location(os, (*it)->m_where);
            os << '\n';
            any = true;
        }
        if (!any)
            os << (t == current_task() ? "  (calling dump_tasks, no await yet)\n"
                                       : "  (not started)\n");
    }
    if (t->m_main)
        os << "main task of weft::run\n";
    else if (auto creator = describe_creator(t); !creator.empty())
        os << creator << '\n';
    os << '\n';
}

} // namespace

std::string describe_location(const std::source_location& where)
{
    return function_name(where) + " at " + where.file_name() + ':' + std::to_string(where.line());
}

std::string describe_creator(const task_header* t)
{
    const bool site = t->m_created.file_name()[0] != '\0';
    if (!t->m_parent && !site)
        return {};
    std::string s = "created by";
    if (t->m_parent)
        s += " task " + std::to_string(t->m_parent);
    if (site)
        s += (t->m_parent ? " in " : " ") + describe_location(t->m_created);
    return s;
}

void dump_tasks_of(scheduler& s, std::ostream& os)
{
    std::vector<task_header*> running;
    s.stop_world(running);
    struct restart {
        scheduler& s;
        ~restart() { s.start_world(); }
    } restart{s};
    std::vector<task_header*> tasks;
    s.for_each_task([&](task_header* t) {
        if (t->m_user)
            tasks.push_back(t);
    });
    std::sort(tasks.begin(), tasks.end(),
              [](task_header* a, task_header* b) { return a->m_id < b->m_id; });
    // A task's m_wait is cleared when it next runs, not when it is woken:
    // queued tasks are found in the queues.
    std::vector<task_header*> queued;
    s.for_each_runnable([&](task_header* t) { queued.push_back(t); });
    std::sort(queued.begin(), queued.end());
    const std::uint32_t now = coarse_ms();
    for (task_header* t : tasks) {
        run_state state = run_state::waiting;
        if (std::find(running.begin(), running.end(), t) != running.end())
            state = run_state::running;
        else if (std::binary_search(queued.begin(), queued.end(), t))
            state = run_state::runnable;
        write_task(os, t, state, now);
    }
}

} // namespace detail

runtime_counters counters() noexcept
{
    runtime_counters c;
    c.channels = detail::g_live_channels.load(std::memory_order_relaxed);
    if (detail::on_worker_thread()) {
        detail::scheduler* s = detail::running_scheduler();
        c.tasks = s->live_user_tasks();
        c.timers = s->pending_timers();
    } else {
        detail::with_runtime([&](detail::scheduler& s) {
            c.tasks = s.live_user_tasks();
            c.timers = s.pending_timers();
        });
    }
    return c;
}

void dump_tasks(std::ostream& os)
{
    if (detail::on_worker_thread()) {
        detail::dump_tasks_of(*detail::running_scheduler(), os);
        return;
    }
    if (!detail::with_runtime([&](detail::scheduler& s) { detail::dump_tasks_of(s, os); }))
        os << "no weft runtime is running\n";
}

dump_guard::dump_guard(clock::duration d, std::ostream& os)
    : m_timer(after_func(d, [&os] { dump_tasks(os); }))
{
}

} // namespace weft
