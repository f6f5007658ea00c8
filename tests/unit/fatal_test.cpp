// Behaviour that ends the process: deadlock detection and exceptions that
// escape a task nobody joins. Each scenario runs in a forked child. The parent
// of these tests never starts a runtime itself, which keeps fork() safe.
#include <weft/runtime.hpp>

#include "test_support.hpp"

#include <weft/chan.hpp>
#include <weft/context.hpp>
#include <weft/time.hpp>
#include <weft/mutex.hpp>
#include <weft/net/tcp.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>

namespace {

struct child_result {
    int exit_code = -1; // -1 when the child did not exit normally
    std::string err;
    bool clean() const { return exit_code == 0; }
};

/// Runs body in a forked child whose stderr is captured.
child_result run_in_child(const std::function<void()>& body)
{
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        ::dup2(fds[1], STDERR_FILENO);
        body();
        std::_Exit(0);
    }
    ::close(fds[1]);
    child_result r;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
        r.err.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status))
        r.exit_code = WEXITSTATUS(status);
    return r;
}

constexpr const char* k_message = "fatal error: all tasks are asleep - deadlock!";

} // namespace

TEST_CASE("a main task blocked forever on a channel is reported as a deadlock")
{
    for (unsigned w : {1u, 2u}) {
        CAPTURE(w);
        const auto r = run_in_child([w] {
            weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
                auto ch = weft::make_chan<int>();
                (void)co_await ch.recv();
            });
        });
        CHECK(r.exit_code == 2);
        CHECK(r.err.find(k_message) != std::string::npos);
    }
}

TEST_CASE("what a deadlocked or panicking program printed to a pipe is not lost")
{
    // stdout is a pipe here, so fully buffered: the fatal paths must flush it.
    for (bool panic : {false, true}) {
        CAPTURE(panic);
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        std::fflush(stdout); // or the child inherits our pending output
        const auto r = run_in_child([&] {
            ::close(fds[0]);
            ::dup2(fds[1], STDOUT_FILENO);
            std::setvbuf(stdout, nullptr, _IOFBF, BUFSIZ);
            weft::run(weft::runtime_options{.workers = 1}, [panic]() -> weft::task<> {
                std::printf("printed before\n");
                if (panic)
                    weft::go([]() -> weft::task<> {
                        throw std::runtime_error("unrecovered");
                        co_return;
                    });
                auto ch = weft::make_chan<int>();
                (void)co_await ch.recv();
            });
        });
        ::close(fds[1]);
        char buf[64] = {};
        const auto n = ::read(fds[0], buf, sizeof buf - 1);
        ::close(fds[0]);
        CHECK(r.exit_code == 2);
        CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == "printed before\n");
    }
}

TEST_CASE("tasks blocked on each other are reported as a deadlock")
{
    const auto r = run_in_child([] {
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            weft::mutex mu;
            co_await mu.lock();
            auto h = weft::go([&mu]() -> weft::task<> { co_await mu.lock(); });
            co_await h; // h waits for mu, which main holds while it waits for h
        });
    });
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(k_message) != std::string::npos);
}

TEST_CASE("a runtime that finishes normally is not reported as a deadlock")
{
    const auto r = run_in_child([] {
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            auto ch = weft::make_chan<int>();
            // A task left blocked when main returns is destroyed, not a deadlock.
            weft::go([ch]() -> weft::task<> { (void)co_await ch.recv(); });
            co_await weft::this_task::yield();
        });
    });
    CHECK(r.exit_code == 0);
    CHECK(r.err.find(k_message) == std::string::npos);
}

TEST_CASE("an exception escaping a detached task ends the program")
{
    const auto r = run_in_child([] {
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            weft::go([]() -> weft::task<> {
                throw std::runtime_error("unrecovered");
                co_return;
            });
            // Keep main alive well past the failure so that only the
            // unhandled exception can end the process.
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (std::chrono::steady_clock::now() < until)
                co_await weft::this_task::yield();
        });
    });
    CHECK(!r.clean());
}

TEST_CASE("an exception escaping a detached task is logged to the \"weft\" logger")
{
    const auto r = run_in_child([] {
        auto logger = spdlog::stderr_logger_mt("weft");
        logger->set_pattern("log: %l %v");
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            auto h = weft::go([]() -> weft::task<> {
                throw std::runtime_error("unrecovered");
                co_return;
            });
            h.detach();
            co_await weft::sleep_for(std::chrono::seconds(20));
        });
    });
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("log: error panic: unrecovered [std::runtime_error]") != std::string::npos);
}

TEST_CASE("a detached task stopped by the cancellation of its context does not end the program")
{
    const auto r = run_in_child([] {
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            auto [ctx, cancel] = weft::with_cancel(weft::background());
            auto stopped = weft::make_chan<int>();
            weft::go(ctx, [stopped]() -> weft::task<> {
                struct on_exit {
                    weft::chan<int> ch;
                    ~on_exit() { ch.close(); }
                } signal{stopped};
                co_await weft::sleep_for(std::chrono::seconds(20)); // throws canceled_error
            });
            cancel();
            (void)co_await stopped.recv();
            for (int i = 0; i < 100; i++) // let the task end before main does
                co_await weft::this_task::yield();
        });
    });
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("panic") == std::string::npos);
}

TEST_CASE("a canceled_error escaping a task whose context is live still ends the program")
{
    const auto r = run_in_child([] {
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            weft::go([]() -> weft::task<> {
                throw weft::canceled_error(weft::errc::canceled);
                co_return;
            });
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (std::chrono::steady_clock::now() < until)
                co_await weft::this_task::yield();
        });
    });
    CHECK(r.exit_code == 2);
}

TEST_CASE("an exception whose join_handle is dropped without a join ends the program")
{
    const auto r = run_in_child([] {
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            std::atomic<bool> thrown{false};
            {
                auto h = weft::go([&thrown]() -> weft::task<int> {
                    thrown = true;
                    throw std::runtime_error("nobody joins this");
                    co_return 0;
                });
                while (!thrown.load())
                    co_await weft::this_task::yield();
                for (int i = 0; i < 100; ++i)
                    co_await weft::this_task::yield();
            } // dropped here, never joined
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (std::chrono::steady_clock::now() < until)
                co_await weft::this_task::yield();
        });
    });
    CHECK(!r.clean());
}

TEST_CASE("a joined task's exception and tasks destroyed at shutdown do not end the program")
{
    const auto r = run_in_child([] {
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            auto h = weft::go([]() -> weft::task<> {
                throw std::runtime_error("joined");
                co_return;
            });
            try {
                co_await h;
            } catch (const std::runtime_error&) {
            }
            auto never = weft::make_chan<int>();
            weft::go([never]() -> weft::task<> { (void)co_await never.recv(); });
            co_await weft::this_task::yield();
        });
    });
    CHECK(r.clean());
}

TEST_CASE("a listener that accepted before is not pending work for deadlock detection")
{
    const auto r = run_in_child([] {
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
            auto [c, s] = co_await weft_test::connected_pair(l);
            // Nobody accepts any more (the listener may still be taking
            // connections ahead); every task is blocked for good.
            auto ch = weft::make_chan<int>();
            (void)co_await ch.recv();
        });
    });
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(k_message) != std::string::npos);
}

TEST_CASE("a stream that read before is not pending work for deadlock detection")
{
    const auto r = run_in_child([] {
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
            auto l = weft::net::tcp_listener::listen("127.0.0.1:0");
            auto [c, s] = co_await weft_test::connected_pair(l);
            co_await c.write_all(std::string_view("x"));
            char b[1];
            (void)co_await s.read_some(std::span<char>(b));
            // Nobody reads any more (the stream may still be receiving
            // ahead); every task is blocked for good.
            auto ch = weft::make_chan<int>();
            (void)co_await ch.recv();
        });
    });
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(k_message) != std::string::npos);
}
