#include <weft/signal.hpp>

#include <weft/runtime.hpp>
#include <weft/select.hpp>
#include <weft/time.hpp>

#include <csignal>

#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

bool is_default(int sig)
{
    struct sigaction sa{};
    ::sigaction(sig, nullptr, &sa);
    return sa.sa_handler == SIG_DFL;
}

} // namespace

TEST_CASE("signal_notify relays a signal to the channel")
{
    weft::run([]() -> weft::task<> {
        auto c = weft::make_chan<int>(1);
        weft::signal_notify(c, {SIGUSR1});
        CHECK_FALSE(is_default(SIGUSR1));
        ::raise(SIGUSR1);
        auto sig = co_await c.recv();
        CHECK(sig == SIGUSR1);
        weft::stop_signal_notify(c);
        CHECK(is_default(SIGUSR1));
    });
}

TEST_CASE("a full channel drops signals instead of blocking the relay")
{
    weft::run([]() -> weft::task<> {
        auto full = weft::make_chan<int>(1);
        auto other = weft::make_chan<int>(1);
        weft::signal_notify(full, {SIGUSR1});
        weft::signal_notify(other, {SIGUSR1});
        ::raise(SIGUSR1);
        CHECK(co_await other.recv() == SIGUSR1);
        ::raise(SIGUSR1);
        CHECK(co_await other.recv() == SIGUSR1);
        CHECK(full.size() == 1);
        weft::stop_signal_notify(full);
        CHECK_FALSE(is_default(SIGUSR1)); // `other` still wants it
        weft::stop_signal_notify(other);
        CHECK(is_default(SIGUSR1));
    });
}

TEST_CASE("signal_context is cancelled by the signal and then stops relaying")
{
    weft::run([]() -> weft::task<> {
        auto [ctx, stop] = weft::signal_context(weft::background(), {SIGUSR2});
        CHECK_FALSE(ctx.err());
        ::raise(SIGUSR2);
        co_await ctx.done();
        CHECK(ctx.err() == weft::errc::canceled);
        // The relay lets go of the signal right after it cancelled.
        CHECK(co_await weft_test::eventually([] { return is_default(SIGUSR2); }));
        stop();
    });
}

TEST_CASE("cancelling a signal_context restores the default disposition")
{
    // Whatever the test's parent left (nohup ignores SIGHUP), start from the
    // default.
    ::signal(SIGHUP, SIG_DFL);
    auto [ctx, stop] = weft::signal_context(weft::background(), {SIGHUP});
    CHECK_FALSE(is_default(SIGHUP));
    stop();
    CHECK(is_default(SIGHUP));
}

TEST_CASE("SIGKILL and nil channels are rejected")
{
    auto c = weft::make_chan<int>(1);
    CHECK_THROWS_AS(weft::signal_notify(c, {SIGKILL}), std::invalid_argument);
    CHECK_THROWS_AS(weft::signal_notify(weft::chan<int>(), {SIGINT}), std::invalid_argument);
}
