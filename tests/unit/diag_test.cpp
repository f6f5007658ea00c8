#include <weft/diag.hpp>

#include "test_support.hpp"

#include <weft/weft.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

// The paragraph of the dump about the task whose first stack line mentions
// `where` (a file:line), or "" if none does.
std::string task_block(const std::string& dump, const std::string& where)
{
    std::size_t at = dump.find(where);
    if (at == std::string::npos)
        return "";
    std::size_t begin = dump.rfind("\ntask ", at);
    begin = begin == std::string::npos ? 0 : begin + 1;
    std::size_t end = dump.find("\n\n", at);
    return dump.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

std::string here(int line)
{
    return std::string("diag_test.cpp:") + std::to_string(line);
}

int g_recv_line, g_send_line, g_select_line, g_lock_line, g_wait_line, g_sleep_line,
    g_inner_line, g_outer_line, g_go_line;

weft::task<> inner(weft::chan<int> c)
{
    g_inner_line = __LINE__ + 1;
    (void)co_await c.recv();
}

weft::task<> outer(weft::chan<int> c)
{
    g_outer_line = __LINE__ + 1;
    co_await inner(c);
}

} // namespace

TEST_CASE("dump_tasks shows each task's state, where it waits, its async stack and its creator")
{
    // The channels outlive run(): the tasks still blocked on them are
    // destroyed when it returns.
    auto never = weft::make_chan<int>();
    auto full = weft::make_chan<int>(0);
    weft::run(weft::runtime_options{.workers = 2}, [&]() -> weft::task<> {
        weft::mutex m;
        weft::wait_group wg;
        co_await m.lock();
        wg.add(1);
        auto [ctx, cancel] = weft::with_cancel(weft::background());

        weft::go(ctx, [&]() -> weft::task<> {
            g_recv_line = __LINE__ + 1;
            (void)co_await never.recv();
        });
        weft::go(ctx, [&]() -> weft::task<> {
            g_send_line = __LINE__ + 1;
            co_await full.send(1);
        });
        weft::go(ctx, [&]() -> weft::task<> {
            g_select_line = __LINE__ + 1;
            co_await weft::select(never.recv(), full.send(2));
        });
        weft::go(ctx, [&]() -> weft::task<> {
            g_lock_line = __LINE__ + 1;
            co_await m.lock();
            m.unlock();
        });
        weft::go(ctx, [&]() -> weft::task<> {
            g_wait_line = __LINE__ + 1;
            co_await wg.wait();
        });
        weft::go(ctx, [&]() -> weft::task<> {
            g_sleep_line = __LINE__ + 1;
            co_await weft::sleep_for(1h);
        });
        g_go_line = __LINE__ + 1;
        weft::go(ctx, outer, never);

        co_await weft::sleep_for(50ms);
        std::ostringstream out;
        weft::dump_tasks(out);
        const std::string dump = out.str();
        INFO(dump);

        CHECK(task_block(dump, here(g_recv_line)).find("[chan receive, ") != std::string::npos);
        CHECK(task_block(dump, here(g_send_line)).find("[chan send, ") != std::string::npos);
        CHECK(task_block(dump, here(g_select_line)).find("[select, ") != std::string::npos);
        CHECK(task_block(dump, here(g_lock_line)).find("[mutex lock, ") != std::string::npos);
        CHECK(task_block(dump, here(g_wait_line)).find("[wait_group wait, ") != std::string::npos);
        CHECK(task_block(dump, here(g_sleep_line)).find("[sleep, ") != std::string::npos);

        // The async stack, innermost first, and where the task was created.
        const std::string nested = task_block(dump, here(g_inner_line));
        CHECK(nested.find("[chan receive, ") != std::string::npos);
        const auto in = nested.find(here(g_inner_line));
        const auto out_at = nested.find(here(g_outer_line));
        CHECK(in != std::string::npos);
        CHECK(out_at != std::string::npos);
        CHECK(in < out_at);
        CHECK(nested.find("inner") < nested.find("outer"));
        CHECK(nested.find("created by ") != std::string::npos);
        // The go call site, in the function that made the call: the main
        // task's lambda inside this test's body (GCC and clang word the
        // lambda differently; both name the body).
        const std::string created = nested.substr(nested.rfind('\n') + 1);
        CHECK(created.starts_with("created by task 1 in "));
        CHECK(created.find("DOCTEST_ANON_FUNC") != std::string::npos);
        CHECK(created.ends_with(" at " + std::string(__FILE__) + ':' + std::to_string(g_go_line)));

        // The dumping task itself is running; the main task says so.
        CHECK(dump.find(" [running]:\n") != std::string::npos);
        CHECK(dump.find("main task of weft::run") != std::string::npos);

        auto c = weft::counters();
        CHECK(c.tasks == 8);
        CHECK(c.timers >= 1);
        CHECK(c.channels >= 2);

        (void)cancel; // the blocked tasks are destroyed when run() returns
        m.unlock();
        wg.done();
    });
}

namespace {
weft::task<> wait_on1(weft::chan<int> c) { (void)co_await c.recv(); }
weft::task<> wait_on4(weft::chan<int> c, int, int, int) { (void)co_await c.recv(); }
weft::task<> wait_on5(weft::chan<int> c, int, int, int, int) { (void)co_await c.recv(); }
} // namespace

TEST_CASE("created by: the go call site for up to four arguments, from tasks and other threads")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto c = weft::make_chan<int>();
        const int four_line = __LINE__ + 1;
        auto four = weft::go(wait_on4, c, 1, 2, 3);
        // Five arguments take the variadic overload: the spawning task only.
        auto five = weft::go(wait_on5, c, 1, 2, 3, 4);
        int thread_line = 0;
        weft::join_handle<> foreign;
        std::thread th([&] {
            thread_line = __LINE__ + 1;
            foreign = weft::go(wait_on1, c);
        });
        th.join();
        co_await weft::sleep_for(20ms);

        {
            // INFO lives in this block: it must not span the co_awaits below,
            // after which the task may resume on another thread.
            std::ostringstream out;
            weft::dump_tasks(out);
            const std::string dump = out.str();
            INFO(dump);
            const std::string file = __FILE__;
            // The line that names a site, or "" if none does.
            auto creator_line = [&](int line) {
                const auto at = dump.find(" at " + file + ':' + std::to_string(line) + '\n');
                if (at == std::string::npos)
                    return std::string();
                const auto start = dump.rfind('\n', at) + 1;
                return dump.substr(start, at - start);
            };
            // From a task: its id, then the function that called go.
            const std::string from_task = creator_line(four_line);
            CHECK(from_task.starts_with("created by task "));
            CHECK(from_task.find(" in ") != std::string::npos);
            CHECK(from_task.find("DOCTEST_ANON_FUNC") != std::string::npos);
            // From another thread: no creator task, only the site.
            const std::string from_thread = creator_line(thread_line);
            CHECK(from_thread.starts_with("created by "));
            CHECK(!from_thread.starts_with("created by task "));
            // Five arguments: one "created by task N" line without a site.
            std::size_t bare = 0;
            for (std::size_t at = 0; (at = dump.find("\ncreated by task ", at)) != std::string::npos;) {
                const auto end = dump.find('\n', at + 1);
                if (dump.substr(at, end - at).find(" at ") == std::string::npos)
                    ++bare;
                at = end;
            }
            CHECK(bare == 1);
        }
        c.close();
        co_await four;
        co_await five;
        co_await foreign;
    });
}

TEST_CASE("dump_tasks from a thread outside the runtime, and with no runtime")
{
    std::ostringstream none;
    weft::dump_tasks(none);
    CHECK(none.str() == "no weft runtime is running\n");
    CHECK(weft::counters().tasks == 0);

    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto c = weft::make_chan<int>();
        std::string dump;
        std::thread th([&] {
            std::ostringstream out;
            weft::dump_tasks(out);
            dump = out.str();
            c.try_send(1);
        });
        (void)co_await c.recv();
        th.join();
        CHECK(dump.find("[chan receive, ") != std::string::npos);
    });
}

TEST_CASE("dump_tasks while tasks start and end on every worker")
{
    // Each worker keeps its own list of the tasks it started, changed
    // without a lock; a dump holds every list in turn. Tasks here start on
    // one worker and mostly end on the other.
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        // This task's line, from a dump where it is the only task.
        std::ostringstream first;
        weft::dump_tasks(first);
        const std::string me = first.str().substr(0, first.str().find('[') + 1);
        REQUIRE(me.starts_with("task "));
        constexpr int k_dumps = 40;
        std::atomic<int> dumps{0};
        std::atomic<bool> all_named{true};
        std::thread th([&] {
            for (int i = 0; i < k_dumps; ++i) {
                std::ostringstream out;
                weft::dump_tasks(out);
                // This task lives throughout, and so does its line.
                if (out.str().find(me) == std::string::npos)
                    all_named = false;
                ++dumps;
            }
        });
        auto consumer = [](weft::chan<int> c, weft::wait_group* wg) -> weft::task<> {
            (void)co_await c.recv();
            wg->done();
        };
        long rounds = 0;
        while (dumps.load() < k_dumps) {
            auto c = weft::make_chan<int>();
            weft::wait_group wg;
            wg.add(32);
            for (int i = 0; i < 32; ++i)
                weft::go(consumer, c, &wg);
            for (int i = 0; i < 32; ++i)
                co_await c.send(i);
            co_await wg.wait();
            ++rounds;
        }
        th.join();
        CHECK(all_named.load());
        CHECK(rounds > 0);
        CHECK(co_await weft_test::eventually([] { return weft::num_tasks() == 1; }));
    });
}

TEST_CASE("dump_tasks_after dumps only when the scope outlives the timeout")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::ostringstream quick, slow;
        {
            auto g = weft::dump_tasks_after(500ms, quick);
            co_await weft::sleep_for(1ms);
        }
        {
            auto g = weft::dump_tasks_after(5ms, slow);
            co_await weft::sleep_for(200ms);
        }
        co_await weft::sleep_for(600ms);
        CHECK(quick.str().empty());
        CHECK(slow.str().find("[sleep, ") != std::string::npos);
    });
}

#if !defined(WEFT_TSAN)
// Runs `body` in a child process; returns its exit status and stderr.
template <class F>
std::pair<int, std::string> in_child(F body)
{
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(fds[1], 2);
        ::close(fds[0]);
        body();
        std::_Exit(0);
    }
    ::close(fds[1]);
    std::string err;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
        err.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), err};
}

TEST_CASE("two philosophers who each hold one fork: the deadlock is reported with the dump")
{
    auto [status, err] = in_child([] {
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            weft::mutex left, right;
            weft::wait_group wg;
            auto ready = weft::make_chan<int>(2);
            auto philosopher = [&](weft::mutex& first, weft::mutex& second) -> weft::task<> {
                co_await first.lock();
                co_await ready.send(1);
                while (ready.size() < 2) // both hold their first fork
                    co_await weft::this_task::yield();
                co_await second.lock();
                wg.done();
            };
            wg.add(2);
            weft::go(philosopher, std::ref(left), std::ref(right));
            weft::go(philosopher, std::ref(right), std::ref(left));
            co_await wg.wait();
        });
    });
    CHECK(status == 2);
    CHECK(err.rfind("fatal error: all tasks are asleep - deadlock!\n", 0) == 0);
    CHECK(err.find("[mutex lock, ") != std::string::npos);
    CHECK(err.find("[wait_group wait, ") != std::string::npos);
}

TEST_CASE("SIGQUIT dumps the tasks to stderr and the program goes on")
{
    auto [status, err] = in_child([] {
        // The handler is installed only over the default disposition, and a
        // shell's background job starts with SIGQUIT ignored.
        ::signal(SIGQUIT, SIG_DFL);
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            auto never = weft::make_chan<int>();
            weft::go([never]() -> weft::task<> { (void)co_await never.recv(); }).detach();
            co_await weft::sleep_for(20ms);
            ::kill(::getpid(), SIGQUIT);
            co_await weft::sleep_for(300ms);
            std::fputs("still running\n", stderr);
        });
    });
    CHECK(status == 0);
    CHECK(err.find("[chan receive, ") != std::string::npos);
    CHECK(err.find("still running\n") != std::string::npos);
}
#endif
