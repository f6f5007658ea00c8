#include <weft/task.hpp>

#include "test_support.hpp"

#include <weft/runtime.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

static_assert(!std::is_copy_constructible_v<weft::task<int>>, "task is move-only");
static_assert(std::is_move_constructible_v<weft::task<int>>, "task is movable");
static_assert(std::is_same_v<weft::task<>, weft::task<void>>, "task defaults to void");

namespace {

// Sanitizers instrument function entry and exit, which turns the tail calls
// of symmetric transfer into ordinary nested calls; ThreadSanitizer also caps
// its shadow call stack at 65536 frames. Under them the recursion test can
// only prove correctness at a smaller depth.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int k_recursion_depth = 10'000;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
constexpr int k_recursion_depth = 10'000;
#else
constexpr int k_recursion_depth = 100'000;
#endif
#else
constexpr int k_recursion_depth = 100'000;
#endif

weft::task<int> forty_two()
{
    co_return 42;
}

weft::task<int> add(int a, int b)
{
    co_return a + b;
}

weft::task<> throw_runtime_error()
{
    throw std::runtime_error("boom");
    co_return;
}

weft::task<int> throw_before_value()
{
    throw std::out_of_range("no value");
    co_return 0;
}

weft::task<int> one()
{
    co_return 1;
}

weft::task<> nothing()
{
    co_return;
}

weft::task<long> depth(int n)
{
    if (n == 0)
        co_return 0;
    co_return 1 + co_await depth(n - 1);
}

weft::task<std::unique_ptr<int>> make_unique_int(int v)
{
    co_return std::make_unique<int>(v);
}

weft::task<std::string> concat(std::string a, std::string b)
{
    co_await weft::this_task::yield();
    co_return a + b;
}

} // namespace

TEST_CASE("a task does not start until it is awaited")
{
    weft::run([]() -> weft::task<> {
        bool started = false;
        auto t = [](bool& flag) -> weft::task<int> {
            flag = true;
            co_return 7;
        }(started);
        CHECK(!started);
        co_await weft::this_task::yield();
        CHECK(!started);
        const int v = co_await std::move(t);
        CHECK(started);
        CHECK(v == 7);
    });
}

TEST_CASE("a task that is never awaited never runs and is destroyed cleanly")
{
    std::atomic<int> live{0};
    bool ran = false;
    weft::run([&]() -> weft::task<> {
        {
            auto t = [](weft_test::live_counter c, bool& flag) -> weft::task<> {
                flag = true;
                (void)c;
                co_return;
            }(weft_test::live_counter(live), ran);
            CHECK(live.load() >= 1);
        }
        co_return;
    });
    CHECK(!ran);
    CHECK(live.load() == 0);
}

TEST_CASE("awaiting a task yields its value")
{
    weft::run([]() -> weft::task<> {
        CHECK(co_await forty_two() == 42);
        CHECK(co_await add(2, 3) == 5);
        CHECK(co_await concat("we", "ft") == "weft");
    });
}

TEST_CASE("a void task completes when awaited")
{
    weft::run([]() -> weft::task<> {
        int calls = 0;
        auto t = [](int& n) -> weft::task<> {
            ++n;
            co_return;
        }(calls);
        co_await std::move(t);
        CHECK(calls == 1);
        co_await nothing();
    });
}

TEST_CASE("an exception thrown in a task propagates to the awaiter")
{
    weft::run([]() -> weft::task<> {
        CHECK_THROWS_AS(co_await throw_runtime_error(), std::runtime_error);
        CHECK_THROWS_AS(co_await throw_before_value(), std::out_of_range);
        bool caught = false;
        try {
            co_await throw_runtime_error();
        } catch (const std::runtime_error& e) {
            caught = std::string(e.what()) == "boom";
        }
        CHECK(caught);
    });
}

TEST_CASE("an exception propagates through several levels of awaiting tasks")
{
    weft::run([]() -> weft::task<> {
        auto middle = []() -> weft::task<int> {
            co_await throw_runtime_error();
            co_return 1;
        };
        auto outer = [middle]() -> weft::task<int> { co_return co_await middle() + 1; };
        CHECK_THROWS_AS(co_await outer(), std::runtime_error);
    });
}

TEST_CASE("a task can return a move-only value")
{
    weft::run([]() -> weft::task<> {
        std::unique_ptr<int> p = co_await make_unique_int(9);
        REQUIRE(p != nullptr);
        CHECK(*p == 9);
    });
}

TEST_CASE("a task moved to another variable still runs once")
{
    weft::run([]() -> weft::task<> {
        int calls = 0;
        auto t1 = [](int& n) -> weft::task<int> {
            ++n;
            co_return n;
        }(calls);
        weft::task<int> t2 = std::move(t1);
        CHECK(co_await std::move(t2) == 1);
        CHECK(calls == 1);
    });
}

TEST_CASE("a million synchronously completing awaits in a loop do not grow the stack")
{
    weft::run([]() -> weft::task<> {
        long sum = 0;
        for (int i = 0; i < 1'000'000; ++i)
            sum += co_await one();
        CHECK(sum == 1'000'000);
    });
}

TEST_CASE("deeply recursive awaits do not overflow the stack")
{
    weft::run(
        []() -> weft::task<> { CHECK(co_await depth(k_recursion_depth) == k_recursion_depth); });
}

TEST_CASE("a task's reference parameters and locals survive suspension")
{
    weft::run([]() -> weft::task<> {
        std::vector<int> v{1, 2, 3};
        auto sum = [](const std::vector<int>& xs) -> weft::task<int> {
            co_await weft::this_task::yield();
            int s = 0;
            for (int x : xs)
                s += x;
            co_return s;
        };
        CHECK(co_await sum(v) == 6);
    });
}
