#include <weft/runtime.hpp>

#include "test_support.hpp"

#include "../../lib/sched/global_queue.hpp"

#include <weft/chan.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

weft::task<int> square(int x)
{
    co_return x* x;
}

/// Sets an environment variable for the lifetime of the object and restores
/// the previous value afterwards.
class scoped_env {
public:
    scoped_env(const char* name, const char* value) : m_name(name)
    {
        if (const char* old = std::getenv(name))
            m_old = old;
        ::setenv(name, value, 1);
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;
    ~scoped_env()
    {
        if (m_old)
            ::setenv(m_name, m_old->c_str(), 1);
        else
            ::unsetenv(m_name);
    }

private:
    const char* m_name;
    std::optional<std::string> m_old;
};

} // namespace

TEST_CASE("run returns the main task's value")
{
    CHECK(weft::run([]() -> weft::task<int> { co_return 5; }) == 5);
    CHECK(weft::run(square, 7) == 49);
    CHECK(
        weft::run([](int a,
                     std::string b) -> weft::task<std::string> { co_return b + std::to_string(a); },
                  3, std::string("x")) == "x3");
}

TEST_CASE("run may be called many times in one process")
{
    for (int i = 0; i < 20; ++i) {
        const unsigned workers = 1u + static_cast<unsigned>(i % 3);
        const int v = weft::run(
            weft::runtime_options{.workers = workers},
            [](int x) -> weft::task<int> { co_return x + 1; }, i);
        CHECK(v == i + 1);
    }
}

TEST_CASE("run rethrows an exception that escapes the main task")
{
    CHECK_THROWS_AS(weft::run([]() -> weft::task<> {
                        throw std::runtime_error("main failed");
                        co_return;
                    }),
                    std::runtime_error);
    CHECK_THROWS_AS(weft::run(weft::runtime_options{.workers = 2},
                              []() -> weft::task<int> {
                                  co_await weft::this_task::yield();
                                  throw std::invalid_argument("later");
                                  co_return 1;
                              }),
                    std::invalid_argument);
    // The runtime is usable after a failed run.
    CHECK(weft::run([]() -> weft::task<int> { co_return 1; }) == 1);
}

TEST_CASE("max_procs reports the configured number of workers")
{
    for (unsigned w : {1u, 2u, 3u}) {
        CAPTURE(w);
        const unsigned seen =
            weft::run(weft::runtime_options{.workers = w},
                      []() -> weft::task<unsigned> { co_return weft::max_procs(); });
        CHECK(seen == w);
    }
}

TEST_CASE("with workers = 0 the worker count comes from WEFT_MAXPROCS")
{
    scoped_env env("WEFT_MAXPROCS", "3");
    const unsigned seen = weft::run([]() -> weft::task<unsigned> { co_return weft::max_procs(); });
    CHECK(seen == 3);
}

TEST_CASE("go runs the function concurrently and join returns its value")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto h = weft::go(square, 6);
            CHECK(co_await h == 36);

            auto h2 = weft::go([]() -> weft::task<std::string> {
                co_await weft::this_task::yield();
                co_return "done";
            });
            CHECK(co_await std::move(h2) == "done");
        });
    }
}

TEST_CASE("join of a void task waits for it to finish")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::atomic<bool> finished{false};
        auto h = weft::go([&finished]() -> weft::task<> {
            for (int i = 0; i < 10; ++i)
                co_await weft::this_task::yield();
            finished = true;
        });
        co_await h;
        CHECK(finished.load());
    });
}

TEST_CASE("join rethrows the exception that escaped the task")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto h = weft::go([]() -> weft::task<int> {
            co_await weft::this_task::yield();
            throw std::domain_error("child failed");
            co_return 0;
        });
        CHECK_THROWS_AS(co_await h, std::domain_error);
    });
}

TEST_CASE("a join_handle can be joined only once")
{
    weft::run([]() -> weft::task<> {
        auto h = weft::go(square, 2);
        CHECK(co_await h == 4);
        CHECK_THROWS_AS(co_await h, std::logic_error);
    });
}

TEST_CASE("join of a move-only result hands over the value")
{
    weft::run([]() -> weft::task<> {
        auto h = weft::go(
            []() -> weft::task<std::unique_ptr<int>> { co_return std::make_unique<int>(3); });
        std::unique_ptr<int> p = co_await std::move(h);
        REQUIRE(p);
        CHECK(*p == 3);
    });
}

TEST_CASE("go decay-copies the function and its arguments into the task")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::optional<weft::join_handle<std::string>> h;
        {
            std::string captured = "captured";
            std::string arg = "-arg";
            h = weft::go(
                [captured](std::string a) -> weft::task<std::string> {
                    co_await weft::this_task::yield();
                    co_return captured + a;
                },
                arg);
            captured = "changed";
            arg = "changed";
        }
        CHECK(co_await *h == "captured-arg");
    });
}

TEST_CASE("dropping a join_handle detaches the task, which still runs")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto ch = weft::make_chan<int>();
            weft::go([](weft::chan<int> c) -> weft::task<> { co_await c.send(11); }, ch);
            auto v = co_await ch.recv();
            REQUIRE(v);
            CHECK(*v == 11);
        });
    }
}

TEST_CASE("join_handle is movable")
{
    static_assert(std::is_move_constructible_v<weft::join_handle<int>>);
    static_assert(std::is_move_assignable_v<weft::join_handle<int>>);
    weft::run([]() -> weft::task<> {
        auto h = weft::go(square, 4);
        weft::join_handle<int> moved = std::move(h);
        std::vector<weft::join_handle<int>> handles;
        handles.push_back(std::move(moved));
        CHECK(co_await handles.front() == 16);
    });
}

TEST_CASE("many spawned tasks all complete and are joined")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        const long total = weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<long> {
            std::vector<weft::join_handle<int>> hs;
            for (int i = 0; i < 1000; ++i)
                hs.push_back(weft::go(square, i));
            long sum = 0;
            for (auto& h : hs)
                sum += co_await h;
            co_return sum;
        });
        long expected = 0;
        for (long i = 0; i < 1000; ++i)
            expected += i * i;
        CHECK(total == expected);
    }
}

TEST_CASE("num_tasks counts the main task and live spawned tasks")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        CHECK(weft::num_tasks() == 1);
        auto gate = weft::make_chan<int>();
        std::vector<weft::join_handle<>> hs;
        for (int i = 0; i < 5; ++i)
            hs.push_back(
                weft::go([](weft::chan<int> g) -> weft::task<> { (void)co_await g.recv(); }, gate));
        CHECK(weft::num_tasks() == 6);
        gate.close();
        for (auto& h : hs)
            co_await h;
        CHECK(co_await weft_test::eventually([] { return weft::num_tasks() == 1; }));
    });
}

namespace {

/// Counts its own destruction (moved-from copies do not count).
struct counted_guard {
    std::atomic<int>* m_gone;
    explicit counted_guard(std::atomic<int>* gone) : m_gone(gone) {}
    counted_guard(counted_guard&& o) noexcept : m_gone(std::exchange(o.m_gone, nullptr)) {}
    counted_guard& operator=(counted_guard&&) = delete;
    ~counted_guard()
    {
        if (m_gone)
            m_gone->fetch_add(1);
    }
};

weft::task<int> holds_guard(counted_guard g)
{
    co_return g.m_gone ? 7 : 0;
}

/// Spins (without suspending, so this worker runs nothing else) until
/// pred() holds or a generous limit passes; returns pred().
bool spin_until(const std::function<bool()>& pred)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!pred() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    return pred();
}

} // namespace

TEST_CASE("a task that ends on another worker than its spawner's lets go of its arguments at once")
{
    // The spawner keeps its worker busy, so the new tasks can only run (and
    // end) on the other worker, which steals them; the spawner's worker does
    // not get to tidy up after them until it suspends.
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::atomic<int> gone{0};
        // Detached: the task's frame (direct call) and its callable's copy
        // of the argument (lambda) go when it ends.
        weft::go(holds_guard, counted_guard{&gone});
        weft::go([](counted_guard g) -> weft::task<> {
            CHECK(g.m_gone != nullptr);
            co_return;
        }, counted_guard{&gone});
        CHECK(spin_until([&gone] { return gone.load() == 2; }));
        CHECK(spin_until([] { return weft::num_tasks() == 1; }));

        // Joined: the result is there after the task ended elsewhere, and
        // the argument goes with the handle.
        auto h = weft::go(holds_guard, counted_guard{&gone});
        CHECK(spin_until([&h] { return h.done(); }));
        CHECK(weft::num_tasks() == 1);
        CHECK(gone.load() == 2);
        CHECK(co_await h == 7); // done: no suspension
        h = {};
        CHECK(gone.load() == 3);

        // Dropped before it runs: the task ends elsewhere with no handle.
        weft::go(holds_guard, counted_guard{&gone}).detach();
        CHECK(spin_until([&gone] { return gone.load() == 4; }));
        co_await weft::this_task::yield(); // this worker tidies up now
        CHECK(weft::num_tasks() == 1);
    });
}

TEST_CASE("tasks spawned on one worker and ending on others, many at a time, are all accounted for")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::atomic<int> gone{0};
        constexpr int k_tasks = 20000;
        auto gate = weft::make_chan<int>();
        std::vector<weft::join_handle<int>> joined;
        for (int i = 0; i < k_tasks; ++i) {
            // Every task waits on the gate; whichever worker closes it or
            // runs the waker last decides where they end.
            auto body = [](weft::chan<int> g, counted_guard c) -> weft::task<int> {
                (void)co_await g.recv();
                co_return c.m_gone ? 1 : 0;
            };
            if (i % 4 == 0)
                joined.push_back(weft::go(body, gate, counted_guard{&gone}));
            else
                weft::go(body, gate, counted_guard{&gone});
        }
        CHECK(weft::num_tasks() == static_cast<std::size_t>(k_tasks + 1));
        weft::go([](weft::chan<int> g) -> weft::task<> {
            g.close();
            co_return;
        }, gate);
        int sum = 0;
        for (auto& h : joined)
            sum += co_await h;
        CHECK(sum == k_tasks / 4);
        joined.clear();
        CHECK(co_await weft_test::eventually([&gone] { return gone.load() == k_tasks; }));
        CHECK(co_await weft_test::eventually([] { return weft::num_tasks() == 1; }));
    });
}

TEST_CASE("a task in a busy worker's next slot runs once, whoever takes it")
{
    // Each round wakes a receiver and then spawns a task: the spawn puts
    // the new task in this worker's next slot (the receiver moves to its
    // queue) and wakes the idle worker, which takes the receiver and then
    // looks at the slot. This worker stays busy for 0-100 us, a span that
    // straddles how long a thief waits before it takes a slot's task, and
    // then suspends and claims the slot itself, racing the thief.
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::atomic<long> runs{0};
        auto count = [](std::atomic<long>* runs) -> weft::task<> {
            runs->fetch_add(1);
            co_return;
        };
        std::uint64_t rng = 0x2545f4914f6cdd1dULL;
        constexpr int k_rounds = 3000;
        for (int round = 0; round < k_rounds; ++round) {
            auto c = weft::make_chan<int>();
            auto receiver = weft::go([](weft::chan<int> c, std::atomic<long>* runs) -> weft::task<> {
                (void)co_await c.recv();
                runs->fetch_add(1);
            }, c, &runs);
            co_await weft::this_task::yield(); // let it park on the receive
            co_await c.send(round);
            auto next = weft::go(count, &runs);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(rng % 100);
            while (std::chrono::steady_clock::now() < until) {
            }
            co_await next;
            co_await receiver;
        }
        CHECK(runs.load() == 2 * k_rounds);
    });
}

TEST_CASE("a task spawned by a task that goes on running starts on another worker")
{
    // Fork and join: the spawner computes without suspending, so its new
    // task, left in the spawner's next slot, runs only if an idle worker
    // is woken and takes it from there.
    const bool started = weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<bool> {
        bool all = true;
        for (int round = 0; round < 20; ++round) {
            std::atomic<bool> ran{false};
            auto h = weft::go([](std::atomic<bool>* ran) -> weft::task<> {
                ran->store(true);
                co_return;
            }, &ran);
            const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (!ran.load() && std::chrono::steady_clock::now() < limit) {
            }
            all = all && ran.load();
            co_await h;
        }
        co_return all;
    });
    CHECK(started);
}

TEST_CASE("this_task::yield lets another task on the same worker run")
{
    weft::run(weft::runtime_options{.workers = 1}, []() -> weft::task<> {
        bool flag = false;
        auto h = weft::go([&flag]() -> weft::task<> {
            flag = true;
            co_return;
        });
        // With one worker the spawned task can only run when this one yields.
        while (!flag)
            co_await weft::this_task::yield();
        CHECK(flag);
        co_await h;
    });
}

TEST_CASE("tasks still blocked when main returns are destroyed")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        std::atomic<int> live{0};
        std::atomic<int> started{0};
        weft::run(weft::runtime_options{.workers = w}, [&live, &started]() -> weft::task<> {
            auto never = weft::make_chan<int>();
            for (int i = 0; i < 3; ++i) {
                weft::go(
                    [guard = weft_test::live_counter(live),
                     &started](weft::chan<int> c) -> weft::task<> {
                        started.fetch_add(1);
                        (void)co_await c.recv();
                        (void)guard;
                    },
                    never);
            }
            CHECK(co_await weft_test::eventually([&started] { return started.load() == 3; }));
            CHECK(live.load() >= 3);
            CHECK(weft::num_tasks() == 4);
        });
        CHECK(live.load() == 0);
    }
}

TEST_CASE("tasks that never started when main returns are destroyed too")
{
    std::atomic<int> live{0};
    std::atomic<int> ran{0};
    weft::run(weft::runtime_options{.workers = 1}, [&live, &ran]() -> weft::task<> {
        // With one worker and no suspension in main, none of these get to run.
        for (int i = 0; i < 10; ++i)
            weft::go([guard = weft_test::live_counter(live), &ran]() -> weft::task<> {
                ran.fetch_add(1);
                (void)guard;
                co_return;
            });
        co_return;
    });
    CHECK(live.load() == 0);
}

TEST_CASE("block_on with no runtime running runs one for the duration")
{
    CHECK(weft::block_on(square(9)) == 81);

    auto ch = weft::make_chan<int>(2);
    weft::block_on(ch.send(1));
    weft::block_on(ch.send(2));
    CHECK(ch.size() == 2);
    CHECK(weft::block_on(ch.recv()) == std::optional<int>(1));
    CHECK(weft::block_on(ch.recv()) == std::optional<int>(2));

    auto spawning = []() -> weft::task<int> {
        auto h = weft::go(square, 5);
        co_return co_await h;
    };
    CHECK(weft::block_on(spawning()) == 25);
}

TEST_CASE("block_on from a plain thread rethrows the awaitable's exception")
{
    auto failing = []() -> weft::task<int> {
        throw std::runtime_error("failed");
        co_return 0;
    };
    CHECK_THROWS_AS(weft::block_on(failing()), std::runtime_error);
}

TEST_CASE("block_on from a plain thread works while a runtime runs")
{
    for (unsigned w : {1u, 2u}) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto to_task = weft::make_chan<int>();
            auto to_thread = weft::make_chan<int>();
            std::atomic<bool> thread_done{false};
            std::optional<int> thread_got;
            std::thread t([&] {
                // Give the main task time to block first: waiting on a value a
                // block_on thread will send is not a deadlock.
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                weft::block_on(to_task.send(41));
                thread_got = weft::block_on(to_thread.recv());
                thread_done = true;
            });
            auto v = co_await to_task.recv();
            co_await to_thread.send(*v + 1);
            // Never block a worker in join(): the thread may need one to finish.
            const bool finished =
                co_await weft_test::eventually([&] { return thread_done.load(); });
            t.join();
            REQUIRE(v);
            CHECK(*v == 41);
            CHECK(finished);
            CHECK(thread_got == std::optional<int>(42));
        });
    }
}

TEST_CASE("several plain threads can block_on one channel concurrently")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto ch = weft::make_chan<int>();
        std::atomic<int> done{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 4; ++i)
            threads.emplace_back([&, i] {
                for (int k = 0; k < 25; ++k)
                    weft::block_on(ch.send(i * 100 + k));
                done.fetch_add(1);
            });
        std::set<int> seen;
        for (int n = 0; n < 100; ++n) {
            auto v = co_await ch.recv();
            if (v)
                seen.insert(*v);
        }
        const bool finished = co_await weft_test::eventually([&] { return done.load() == 4; });
        for (auto& t : threads)
            t.join();
        CHECK(finished);
        CHECK(seen.size() == 100);
    });
}

// ---- the spawn path: a task's root state and its first frame share one block

namespace {

weft::task<int> plus_one(int x)
{
    co_await weft::this_task::yield();
    co_return x + 1;
}

// Not coroutines: they build the task they return from others.
weft::task<int> via_temporary(int x)
{
    {
        auto discarded = plus_one(x * 100); // created first, destroyed unstarted
    }
    return plus_one(x);
}

std::vector<weft::task<int>>* g_stash = nullptr;

weft::task<int> via_stash(int x)
{
    g_stash->push_back(plus_one(x * 100)); // created first, outlives the spawn
    return plus_one(x);
}

weft::task<int> empty_task(int)
{
    return {};
}

/// The n-th copy from now throws (n = throw_in; 0: never).
struct fragile {
    static inline std::atomic<int> throw_in{0};
    int value = 0;
    explicit fragile(int v) : value(v) {}
    fragile(const fragile& o) : value(o.value)
    {
        if (throw_in.load() > 0 && --throw_in == 0)
            throw std::runtime_error("fragile copy");
    }
    fragile& operator=(const fragile&) = default;
};

weft::task<int> read_fragile(fragile f)
{
    co_await weft::this_task::yield();
    co_return f.value;
}

weft::task<std::size_t> length_of_ref(const std::string& s)
{
    co_await weft::this_task::yield();
    co_return s.size();
}

weft::task<std::size_t> length_of_view(std::string_view s)
{
    co_await weft::this_task::yield();
    co_return s.size();
}

// Two functions of one type whose frames differ in size.
weft::task<int> small_frame(int x)
{
    co_await weft::this_task::yield();
    co_return x;
}

weft::task<int> large_frame(int x)
{
    std::array<int, 200> a{};
    a[static_cast<std::size_t>(x) % a.size()] = x;
    co_await weft::this_task::yield();
    int sum = 0;
    for (int v : a)
        sum += v;
    co_return sum;
}

} // namespace

TEST_CASE("go accepts a function that returns a task built from other tasks")
{
    std::vector<weft::task<int>> stash;
    g_stash = &stash;
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        for (int round = 0; round < 3; ++round) {
            CHECK(co_await weft::go(via_temporary, 5) == 6);
            CHECK(co_await weft::go(via_stash, 7) == 8);
        }
        // The stashed tasks are intact and still run.
        for (auto& t : *g_stash)
            CHECK(co_await std::move(t) == 701);
        g_stash->clear();
    });
    g_stash = nullptr;
}

TEST_CASE("go reports a function that returns an empty task and the runtime goes on")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        CHECK_THROWS_AS(weft::go(empty_task, 1), std::logic_error);
        CHECK_THROWS_AS(weft::go([]() -> weft::task<int> { return {}; }), std::logic_error);
        CHECK(co_await weft::go(plus_one, 1) == 2);
    });
}

TEST_CASE("an argument whose copy throws makes go throw, and nothing is lost")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        const fragile f(41);
        auto by_ref = [](const fragile& g) -> weft::task<int> { co_return g.value; };
        auto by_value = [](fragile g) -> weft::task<int> { co_return g.value; };
        for (int round = 0; round < 3; ++round) {
            // A plain function: the copy into the parameter (1), or the
            // coroutine's copy of the parameter into its frame (2).
            for (int n : {1, 2}) {
                fragile::throw_in = n;
                CHECK_THROWS_AS(weft::go(read_fragile, f), std::runtime_error);
            }
            // A lambda: the copy kept by the task (1), the parameter (2),
            // the frame's copy (3).
            fragile::throw_in = 1;
            CHECK_THROWS_AS(weft::go(by_ref, f), std::runtime_error);
            for (int n : {1, 2, 3}) {
                fragile::throw_in = n;
                CHECK_THROWS_AS(weft::go(by_value, f), std::runtime_error);
            }
            fragile::throw_in = 0;
            CHECK(co_await weft::go(read_fragile, f) == 41);
            CHECK(co_await weft::go(by_ref, f) == 41);
            CHECK(co_await weft::go(by_value, f) == 41);
        }
        CHECK(weft::num_tasks() == 1);
    });
}

TEST_CASE("parameters that refer to go's arguments stay valid for the task's life")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        std::vector<weft::join_handle<std::size_t>> hs;
        for (int i = 0; i < 50; ++i) {
            std::string s(static_cast<std::size_t>(i), 'x');
            hs.push_back(weft::go(length_of_ref, s));
            hs.push_back(weft::go(length_of_view, std::string(s))); // converted, kept by the task
        }
        std::size_t i = 0;
        for (auto& h : hs)
            CHECK(co_await h == i++ / 2);
    });
}

TEST_CASE("spawns of one kind whose frames differ in size all run correctly")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        using fn = weft::task<int> (*)(int);
        std::vector<weft::join_handle<int>> hs;
        for (int i = 0; i < 200; ++i) {
            const fn f = i % 3 == 0 ? large_frame : small_frame;
            hs.push_back(weft::go(f, i));
            // A type-erased callable: the frame behind it changes too.
            std::function<weft::task<int>(int)> g = i % 2 ? std::function<weft::task<int>(int)>(large_frame)
                                                           : std::function<weft::task<int>(int)>(small_frame);
            hs.push_back(weft::go(g, i));
            // A lambda with captures, spawned many times.
            std::string tag = std::to_string(i);
            hs.push_back(weft::go([tag]() -> weft::task<int> {
                co_await weft::this_task::yield();
                co_return std::stoi(tag);
            }));
        }
        for (int i = 0; i < 200; ++i) {
            CHECK(co_await hs[static_cast<std::size_t>(3 * i)] == i);
            CHECK(co_await hs[static_cast<std::size_t>(3 * i + 1)] == i);
            CHECK(co_await hs[static_cast<std::size_t>(3 * i + 2)] == i);
        }
    });
}

// Out of line, so that the frame escapes and the compiler cannot place it
// on the caller's stack instead (coroutine allocation elision).
[[gnu::noinline]] weft::task<int> make_plus_one(int x)
{
    return plus_one(x);
}

TEST_CASE("a plain function's first frame is placed right after the task's root")
{
    namespace d = weft::detail;
    constexpr std::size_t prefix = 128;
    d::frame_offer_prefix(prefix);
    auto t = make_plus_one(1);
    const auto r = d::frame_offer_end();
    auto h = d::task_access::release(t);
    CHECK(r.first_size > 0);
#if defined(WEFT_TEST_FRAME_POOL)
    REQUIRE(r.taken == h.address());
    CHECK(r.taken_size == r.first_size);
    CHECK_FALSE(r.freed);
#else
    CHECK(r.taken == nullptr);
#endif
    // The frame goes with its block: frame_free of its address is skipped.
    d::frame_skip skip{r.taken};
    d::frame_skip_push(skip);
    h.destroy();
    d::frame_skip_pop(skip);
    CHECK(skip.addr == nullptr);
    if (r.taken)
        d::frame_free(static_cast<char*>(r.taken) - prefix, prefix + r.taken_size);
}

// A frame just over 64 KiB: beyond the pool, and beyond what an offer's
// result reports as a size.
[[gnu::noinline]] void escape(char* p)
{
    asm volatile("" : : "r"(p) : "memory");
}

[[gnu::noinline]] weft::task<int> huge_frame(int x)
{
    // The array's address escapes before and after the suspension, so it
    // lives in the frame whatever the optimizer sees of its use.
    std::array<char, 65536> a{};
    a[static_cast<std::size_t>(x) % a.size()] = static_cast<char>(x);
    escape(a.data());
    co_await weft::this_task::yield();
    escape(a.data());
    co_return a[static_cast<std::size_t>(x) % a.size()];
}

TEST_CASE("a frame too large for the pool leaves an offer untaken and reports itself as large")
{
    namespace d = weft::detail;
    alignas(16) static char room[1024];
    d::frame_offer_place(room, sizeof room);
    auto t = huge_frame(3);
    const auto r = d::frame_offer_end();
    CHECK(r.taken == nullptr);
    CHECK_FALSE(r.freed);
    // The first frame's size, clamped: larger than any pooled frame, so a
    // spawn never sizes its next block after it.
    CHECK(r.first_size > d::frame_pool_max);
    // The frame still runs and frees normally.
    CHECK(weft::run([t = std::move(t)]() mutable -> weft::task<int> { co_return co_await std::move(t); }) == 3);

    d::frame_offer_prefix(128);
    auto u = huge_frame(4);
    const auto q = d::frame_offer_end();
    CHECK(q.taken == nullptr);
    CHECK(q.first_size > d::frame_pool_max);
    CHECK(weft::run([u = std::move(u)]() mutable -> weft::task<int> { co_return co_await std::move(u); }) == 4);
}

TEST_CASE("a frame that takes an offer and dies before it closes gives the place back")
{
    namespace d = weft::detail;
    alignas(16) static char room[1024];
    d::frame_offer_place(room, sizeof room);
    {
        auto t = make_plus_one(1);
        static_cast<void>(t);
    }
    const auto r = d::frame_offer_end();
#if defined(WEFT_TEST_FRAME_POOL)
    CHECK(r.taken == room);
    CHECK(r.freed);
#else
    CHECK(r.taken == nullptr);
#endif
}

TEST_CASE("the global run queue keeps its order across segments, and loses nothing when none can be allocated")
{
    // Tasks are only pointers here: the queue never touches them except
    // through m_next on its overflow list.
    std::vector<weft::detail::task_header> headers(2000);
    std::vector<weft::detail::task_header*> in;
    for (auto& h : headers)
        in.push_back(&h);
    weft::detail::global_queue q;
    std::vector<weft::detail::task_header*> out;
    std::array<weft::detail::task_header*, 300> buf{};
    auto drain = [&](std::size_t per_pop) {
        while (std::size_t n = q.pop(buf.data(), per_pop))
            out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    };
    SUBCASE("in order, pushed and popped in uneven batches")
    {
        std::size_t at = 0;
        for (std::size_t k : {1u, 129u, 300u, 7u, 254u, 255u, 1054u}) {
            q.push(in.data() + at, k);
            at += k;
            if (k == 300u) // take some while others are queued
                out.push_back((q.pop(buf.data(), 1), buf[0]));
        }
        REQUIRE(at == in.size());
        CHECK(q.size() == in.size() - 1);
        drain(129);
        CHECK(q.empty());
        CHECK(out == in);
        // Reused after emptying (its spare segment).
        q.push(in.data(), 3);
        CHECK(q.pop(buf.data(), 10) == 3);
        CHECK(buf[2] == in[2]);
    }
    SUBCASE("allocation failing: the overflow list takes the rest")
    {
        q.push(in.data(), 500);
        q.fail_allocation_for_test(true);
        q.push(in.data() + 500, 1500); // fills the last segment, then overflows
        q.fail_allocation_for_test(false);
        CHECK(q.size() == 2000);
        std::size_t seen = 0;
        q.for_each([&](weft::detail::task_header*) { ++seen; });
        CHECK(seen == 2000);
        drain(100);
        CHECK(q.empty());
        std::sort(out.begin(), out.end());
        std::vector<weft::detail::task_header*> sorted = in;
        std::sort(sorted.begin(), sorted.end());
        CHECK(out == sorted);
    }
    SUBCASE("clear forgets everything")
    {
        q.push(in.data(), 1000);
        q.clear();
        CHECK(q.empty());
        CHECK(q.pop(buf.data(), 10) == 0);
    }
}
