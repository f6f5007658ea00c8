#include <weft/chan.hpp>
#include <weft/context.hpp>
#include <weft/select.hpp>
#include <weft/time.hpp>

#include "test_support.hpp"

#include <weft/errors.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>
#include <weft/wait_group.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

static_assert(std::is_copy_constructible_v<weft::chan<int>>, "a chan is a shared handle");
static_assert(std::is_convertible_v<weft::chan<int>, weft::send_chan<int>>);
static_assert(std::is_convertible_v<weft::chan<int>, weft::recv_chan<int>>);
static_assert(!std::is_convertible_v<weft::send_chan<int>, weft::recv_chan<int>>);
static_assert(!std::is_convertible_v<weft::recv_chan<int>, weft::send_chan<int>>);
static_assert(!std::is_convertible_v<weft::chan<int>, bool>, "operator bool is explicit");
static_assert(std::is_constructible_v<bool, weft::chan<int>>);
static_assert(std::is_base_of_v<std::logic_error, weft::closed_channel>);

// A receive-only view cannot send or close; a send-only view cannot receive.
template <class C>
concept can_send = requires(const C& c)
{
    c.send(1);
    c.try_send(1);
};
template <class C>
concept can_recv = requires(const C& c)
{
    c.recv();
    c.try_recv();
};
template <class C>
concept can_close = requires(const C& c)
{
    c.close();
};
template <class C>
concept has_len_and_cap = requires(const C& c)
{
    c.size();
    c.capacity();
};

static_assert(can_send<weft::chan<int>> && can_recv<weft::chan<int>> && can_close<weft::chan<int>>);
static_assert(can_send<weft::send_chan<int>> && can_close<weft::send_chan<int>>);
static_assert(!can_recv<weft::send_chan<int>>);
static_assert(can_recv<weft::recv_chan<int>>);
static_assert(!can_send<weft::recv_chan<int>> && !can_close<weft::recv_chan<int>>);
static_assert(has_len_and_cap<weft::send_chan<int>> && has_len_and_cap<weft::recv_chan<int>>);

TEST_CASE("recv on a closed channel returns nullopt")
{
    weft::run([]() -> weft::task<> {
        auto ch = weft::make_chan<int>(1);
        co_await ch.send(1);
        ch.close();
        CHECK(*co_await ch.recv() == 1);
        CHECK(!(co_await ch.recv()));
        CHECK(!(co_await ch.recv()));
    });
}

TEST_CASE("a closed buffered channel drains its values in order before reporting closed")
{
    weft::run([]() -> weft::task<> {
        auto ch = weft::make_chan<int>(5);
        for (int i = 0; i < 5; ++i)
            co_await ch.send(i);
        ch.close();
        CHECK(ch.size() == 5);
        std::vector<int> got;
        while (auto v = co_await ch.recv())
            got.push_back(*v);
        CHECK(got == std::vector<int>{0, 1, 2, 3, 4});
        CHECK(ch.size() == 0);
        CHECK(!ch.try_recv());
    });
}

TEST_CASE("a buffered channel delivers values in FIFO order")
{
    weft::run([]() -> weft::task<> {
        auto ch = weft::make_chan<int>(100);
        for (int i = 0; i < 100; ++i)
            co_await ch.send(i);
        for (int i = 0; i < 100; ++i) {
            auto v = co_await ch.recv();
            REQUIRE(v);
            CHECK(*v == i);
        }
    });
}

TEST_CASE("a single producer's values arrive in order through a small buffer")
{
    for (unsigned w : weft_test::worker_counts) {
        for (std::size_t cap : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
            CAPTURE(w);
            CAPTURE(cap);
            const bool in_order =
                weft::run(weft::runtime_options{.workers = w}, [cap]() -> weft::task<bool> {
                    auto ch = weft::make_chan<int>(cap);
                    weft::go(
                        [](weft::chan<int> c) -> weft::task<> {
                            for (int i = 0; i < 2000; ++i)
                                co_await c.send(i);
                            c.close();
                        },
                        ch);
                    int expected = 0;
                    bool ok = true;
                    while (auto v = co_await ch.recv())
                        ok = ok && *v == expected++;
                    co_return ok&& expected == 2000;
                });
            CHECK(in_order);
        }
    }
}

TEST_CASE("an unbuffered send completes only when a receiver takes the value")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto ch = weft::make_chan<int>();
            std::atomic<bool> sent{false};
            auto h = weft::go(
                [&sent](weft::chan<int> c) -> weft::task<> {
                    co_await c.send(5);
                    sent = true;
                },
                ch);
            for (int i = 0; i < 100; ++i)
                co_await weft::this_task::yield();
            CHECK(!sent.load());
            CHECK(ch.size() == 0);
            auto v = co_await ch.recv();
            co_await h;
            CHECK(sent.load());
            CHECK(v == std::optional<int>(5));
        });
    }
}

TEST_CASE("a send to a full buffered channel waits until there is room")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto ch = weft::make_chan<int>(2);
        std::atomic<int> sent{0};
        auto h = weft::go(
            [&sent](weft::chan<int> c) -> weft::task<> {
                for (int i = 0; i < 3; ++i) {
                    co_await c.send(i);
                    sent.fetch_add(1);
                }
            },
            ch);
        CHECK(co_await weft_test::eventually([&] { return sent.load() == 2; }));
        for (int i = 0; i < 100; ++i)
            co_await weft::this_task::yield();
        CHECK(sent.load() == 2);
        CHECK(ch.size() == 2);
        CHECK(*co_await ch.recv() == 0);
        co_await h;
        CHECK(sent.load() == 3);
        CHECK(*co_await ch.recv() == 1);
        CHECK(*co_await ch.recv() == 2);
    });
}

TEST_CASE("send on a closed channel throws closed_channel")
{
    weft::run([]() -> weft::task<> {
        auto buffered = weft::make_chan<int>(3);
        buffered.close();
        CHECK_THROWS_AS(co_await buffered.send(1), weft::closed_channel);
        CHECK_THROWS_AS(buffered.try_send(1), weft::closed_channel);
        const int lvalue = 2;
        CHECK_THROWS_AS(buffered.try_send(lvalue), weft::closed_channel);

        auto unbuffered = weft::make_chan<int>();
        unbuffered.close();
        CHECK_THROWS_AS(co_await unbuffered.send(1), weft::closed_channel);
    });
}

TEST_CASE("closing a closed channel throws closed_channel")
{
    auto ch = weft::make_chan<int>(1);
    ch.close();
    CHECK_THROWS_AS(ch.close(), weft::closed_channel);
    auto copy = ch;
    CHECK_THROWS_AS(copy.close(), weft::closed_channel);
}

TEST_CASE("closing a nil channel throws closed_channel")
{
    weft::chan<int> nil;
    CHECK_THROWS_AS(nil.close(), weft::closed_channel);
    weft::chan<int> also_nil = nullptr;
    CHECK_THROWS_AS(also_nil.close(), weft::closed_channel);
}

TEST_CASE("closing a channel wakes every blocked receiver with nullopt")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto ch = weft::make_chan<int>();
            std::atomic<int> waiting{0};
            std::vector<weft::join_handle<bool>> hs;
            for (int i = 0; i < 8; ++i)
                hs.push_back(weft::go(
                    [&waiting](weft::chan<int> c) -> weft::task<bool> {
                        waiting.fetch_add(1);
                        co_return !(co_await c.recv()).has_value();
                    },
                    ch));
            CHECK(co_await weft_test::eventually([&] { return waiting.load() == 8; }));
            ch.close();
            for (auto& h : hs)
                CHECK(co_await h);
        });
    }
}

TEST_CASE("closing a channel wakes thousands of waiters, in selects too, each once")
{
    // More waiters than a close keeps without allocating; and again with
    // that allocation failing, when the rest are chained.
    for (bool fail_growth : {false, true}) {
        for (unsigned w : weft_test::worker_counts) {
            CAPTURE(fail_growth);
            CAPTURE(w);
            weft::detail::g_fail_wake_batch_growth = fail_growth;
            weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
                auto ch = weft::make_chan<int>();
                auto other = weft::make_chan<int>();
                constexpr int n = 3000;
                std::atomic<int> waiting{0}, closed_seen{0}, other_seen{0};
                weft::wait_group wg;
                for (int i = 0; i < n; ++i)
                    wg.go([&, i]() -> weft::task<> {
                        waiting.fetch_add(1);
                        if (i % 2 == 0) {
                            if (!(co_await ch.recv()))
                                closed_seen.fetch_add(1);
                        } else {
                            auto r = co_await weft::select(ch.recv(), other.recv());
                            if (r.index() == 0 && !std::get<0>(r))
                                closed_seen.fetch_add(1);
                            else
                                other_seen.fetch_add(1);
                        }
                    });
                CHECK(co_await weft_test::eventually([&] { return waiting.load() == n; }));
                for (int i = 0; i < 50; ++i)
                    co_await weft::this_task::yield();
                ch.close();
                co_await wg.wait();
                CHECK(closed_seen.load() == n);
                CHECK(other_seen.load() == 0);
                // Nobody is left queued on the other channel.
                CHECK(!other.try_send(1));
            });
        }
    }
    weft::detail::g_fail_wake_batch_growth = false;
}

TEST_CASE("closing a channel makes blocked senders throw closed_channel")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            for (std::size_t cap : {std::size_t{0}, std::size_t{1}}) {
                auto ch = weft::make_chan<int>(cap);
                if (cap == 1)
                    co_await ch.send(-1); // fill the buffer so the senders block
                std::atomic<int> started{0};
                std::vector<weft::join_handle<int>> hs;
                for (int i = 0; i < 4; ++i)
                    hs.push_back(weft::go(
                        [&started](weft::chan<int> c, int v) -> weft::task<int> {
                            started.fetch_add(1);
                            try {
                                co_await c.send(v);
                            } catch (const weft::closed_channel&) {
                                co_return 1;
                            }
                            co_return 0;
                        },
                        ch, i));
                CHECK(co_await weft_test::eventually([&] { return started.load() == 4; }));
                // Let the senders reach their wait before the close.
                for (int i = 0; i < 50; ++i)
                    co_await weft::this_task::yield();
                ch.close();
                int threw = 0;
                for (auto& h : hs)
                    threw += co_await h;
                CHECK(threw == 4);
                if (cap == 1) {
                    CHECK(*co_await ch.recv() == -1);
                }
                CHECK(!(co_await ch.recv()));
            }
        });
    }
}

TEST_CASE("try_send and try_recv succeed only when no waiting is needed")
{
    weft::run([]() -> weft::task<> {
        auto ch = weft::make_chan<int>(2);
        CHECK(!ch.try_recv());
        CHECK(ch.try_send(1));
        const int two = 2;
        CHECK(ch.try_send(two));
        CHECK(!ch.try_send(3));
        CHECK(ch.size() == 2);
        CHECK(ch.try_recv() == std::optional<int>(1));
        CHECK(ch.try_recv() == std::optional<int>(2));
        CHECK(!ch.try_recv());

        auto unbuffered = weft::make_chan<int>();
        CHECK(!unbuffered.try_send(1));
        CHECK(!unbuffered.try_recv());
        co_return;
    });
}

TEST_CASE("try_send hands a value to a waiting receiver of an unbuffered channel")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto ch = weft::make_chan<int>();
        auto h = weft::go(
            [](weft::chan<int> c) -> weft::task<std::optional<int>> {
                co_return co_await c.recv();
            },
            ch);
        CHECK(co_await weft_test::eventually([&] { return ch.try_send(8); }));
        CHECK(co_await h == std::optional<int>(8));
    });
}

TEST_CASE("try_recv takes a value from a waiting sender of an unbuffered channel")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto ch = weft::make_chan<int>();
        auto h = weft::go([](weft::chan<int> c) -> weft::task<> { co_await c.send(4); }, ch);
        std::optional<int> got;
        CHECK(co_await weft_test::eventually([&] {
            got = ch.try_recv();
            return got.has_value();
        }));
        CHECK(got == std::optional<int>(4));
        co_await h;
    });
}

TEST_CASE("try_recv on a closed and drained channel returns nullopt")
{
    auto ch = weft::make_chan<int>(1);
    CHECK(ch.try_send(1));
    ch.close();
    CHECK(ch.try_recv() == std::optional<int>(1));
    CHECK(!ch.try_recv());
}

TEST_CASE("try_send leaves a move-only value untouched when it fails")
{
    auto ch = weft::make_chan<std::unique_ptr<int>>(1);
    auto first = std::make_unique<int>(1);
    CHECK(ch.try_send(std::move(first)));
    CHECK(first == nullptr);
    auto second = std::make_unique<int>(2);
    CHECK(!ch.try_send(std::move(second)));
    REQUIRE(second != nullptr);
    CHECK(*second == 2);
    auto got = ch.try_recv();
    REQUIRE(got);
    REQUIRE(*got);
    CHECK(**got == 1);
}

TEST_CASE("a nil channel is never ready for try_send or try_recv")
{
    weft::chan<int> nil;
    CHECK(!nil);
    CHECK(!nil.try_send(1));
    CHECK(!nil.try_recv());
    CHECK(nil.size() == 0);
    CHECK(nil.capacity() == 0);
    weft::chan<int> null = nullptr;
    CHECK(!null);
    CHECK(nil == null);
}

TEST_CASE("make_chan gives a non-nil channel of the requested capacity")
{
    auto unbuffered = weft::make_chan<int>();
    CHECK(static_cast<bool>(unbuffered));
    CHECK(unbuffered.capacity() == 0);
    CHECK(unbuffered.size() == 0);
    auto buffered = weft::make_chan<std::string>(16);
    CHECK(static_cast<bool>(buffered));
    CHECK(buffered.capacity() == 16);
    CHECK(buffered.try_send("a"));
    CHECK(buffered.try_send(std::string("b")));
    CHECK(buffered.size() == 2);
    CHECK(buffered.capacity() == 16);
    (void)buffered.try_recv();
    CHECK(buffered.size() == 1);
}

TEST_CASE("channel handles compare and hash by identity")
{
    auto a = weft::make_chan<int>(1);
    auto b = weft::make_chan<int>(1);
    auto a2 = a;
    CHECK(a == a2);
    CHECK(!(a == b));
    CHECK(a != b);
    CHECK(weft::chan<int>{} == weft::chan<int>{});
    CHECK(a != weft::chan<int>{});
    CHECK(std::hash<weft::chan<int>>{}(a) == std::hash<weft::chan<int>>{}(a2));

    std::unordered_set<weft::chan<int>> set;
    set.insert(a);
    set.insert(b);
    set.insert(a2);
    CHECK(set.size() == 2);
    CHECK(set.count(a) == 1);

    weft::chan<int> assigned;
    assigned = a;
    CHECK(assigned == a);
    assigned = nullptr;
    CHECK(!assigned);
}

TEST_CASE("copies of a channel handle refer to the same channel")
{
    auto a = weft::make_chan<int>(2);
    auto b = a;
    CHECK(a.try_send(1));
    CHECK(b.size() == 1);
    CHECK(b.try_recv() == std::optional<int>(1));
    b.close();
    CHECK_THROWS_AS(a.try_send(2), weft::closed_channel);
}

TEST_CASE("a channel of a move-only type transfers ownership")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto ch = weft::make_chan<std::unique_ptr<int>>();
        auto h = weft::go(
            [](weft::chan<std::unique_ptr<int>> c) -> weft::task<> {
                for (int i = 0; i < 10; ++i)
                    co_await c.send(std::make_unique<int>(i));
                c.close();
            },
            ch);
        int expected = 0;
        while (auto p = co_await ch.recv()) {
            REQUIRE(*p);
            CHECK(**p == expected++);
        }
        CHECK(expected == 10);
        co_await h;
    });
}

TEST_CASE("chan of monostate works as a signal channel")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto done = weft::make_chan<std::monostate>();
        std::atomic<int> work{0};
        weft::go(
            [&work](weft::chan<std::monostate> d) -> weft::task<> {
                work = 1;
                co_await d.send({});
                work = 2;
                d.close();
            },
            done);
        auto first = co_await done.recv();
        CHECK(first.has_value());
        CHECK(!(co_await done.recv()));
        CHECK(work.load() == 2);

        auto buffered = weft::make_chan<std::monostate>(3);
        CHECK(buffered.try_send(std::monostate{}));
        CHECK(buffered.try_send(std::monostate{}));
        CHECK(buffered.size() == 2);
        CHECK(buffered.capacity() == 3);
    });
}

TEST_CASE("a buffered channel of empty values keeps every channel rule")
{
    // Such a channel buffers only a count (Go's chan struct{} semaphore);
    // waiting tasks still come first and close still drains.
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto ch = weft::make_chan<std::monostate>(2);
        CHECK(ch.try_send(std::monostate{}));
        co_await ch.send(std::monostate{});
        CHECK(ch.size() == 2);
        CHECK(!ch.try_send(std::monostate{})); // full
        CHECK(ch.try_recv().has_value());
        CHECK((co_await ch.recv()).has_value());
        CHECK(!ch.try_recv().has_value()); // empty
        CHECK(ch.size() == 0);

        // A receiver waiting on the empty channel gets the next send: it is
        // not buffered behind the receiver's back.
        std::atomic<int> got{0};
        auto r = weft::go(
            [&got](weft::chan<std::monostate> c) -> weft::task<> {
                if (co_await c.recv())
                    got.fetch_add(1);
            },
            ch);
        // Let it wait (if it has not yet, the send is buffered and it takes
        // it: the same outcome; a send buffered past a waiting receiver
        // would leave it waiting forever).
        co_await weft::sleep_for(std::chrono::milliseconds(20));
        CHECK(ch.try_send(std::monostate{}));
        co_await r;
        CHECK(got.load() == 1);
        CHECK(ch.size() == 0);

        // A sender waiting on the full channel: a receive takes a buffered
        // value and the sender's joins the buffer.
        CHECK(ch.try_send(std::monostate{}));
        CHECK(ch.try_send(std::monostate{}));
        std::atomic<bool> sent{false};
        auto s = weft::go(
            [&sent](weft::chan<std::monostate> c) -> weft::task<> {
                co_await c.send(std::monostate{});
                sent = true;
            },
            ch);
        co_await weft::sleep_for(std::chrono::milliseconds(20));
        CHECK(!sent.load());
        CHECK(ch.try_recv().has_value());
        co_await s;
        CHECK(sent.load());
        CHECK(ch.size() == 2);

        // A waiter that gives up (cancelled) leaves the channel usable.
        {
            auto [ctx, cancel] = weft::with_cancel(weft::background());
            auto blocked = weft::go(ctx, [](weft::chan<std::monostate> c) -> weft::task<bool> {
                try {
                    co_await c.send(std::monostate{});
                    co_return false;
                } catch (const weft::canceled_error&) {
                    co_return true;
                }
            }, ch);
            co_await weft::sleep_for(std::chrono::milliseconds(10));
            cancel();
            CHECK(co_await blocked);
        }
        CHECK(ch.try_recv().has_value());
        CHECK(ch.try_send(std::monostate{}));
        CHECK(ch.size() == 2);

        // Close: what is buffered drains, then nullopt; sends throw.
        ch.close();
        CHECK_THROWS_AS(ch.try_send(std::monostate{}), weft::closed_channel);
        CHECK(ch.try_recv().has_value());
        CHECK((co_await ch.recv()).has_value());
        CHECK(!(co_await ch.recv()).has_value());
        CHECK(!ch.try_recv().has_value());
        CHECK(ch.closed());
        bool threw = false;
        try {
            co_await ch.send(std::monostate{});
        } catch (const weft::closed_channel&) {
            threw = true;
        }
        CHECK(threw);
    });
}

TEST_CASE("send_chan and recv_chan views operate on the underlying channel")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto ch = weft::make_chan<int>(4);
        weft::send_chan<int> out = ch;
        weft::recv_chan<int> in = ch;
        CHECK(out.capacity() == 4);
        CHECK(in.capacity() == 4);
        auto producer = weft::go(
            [](weft::send_chan<int> s) -> weft::task<> {
                for (int i = 1; i <= 5; ++i)
                    co_await s.send(i);
                s.close();
            },
            out);
        int sum = 0;
        while (auto v = co_await in.recv())
            sum += *v;
        co_await producer;
        CHECK(sum == 15);
        CHECK(!in.try_recv());
        CHECK_THROWS_AS(out.try_send(1), weft::closed_channel);
    });
}

TEST_CASE("try_send through a send_chan and try_recv through a recv_chan")
{
    auto ch = weft::make_chan<int>(1);
    weft::send_chan<int> out = ch;
    weft::recv_chan<int> in = ch;
    CHECK(out.try_send(3));
    CHECK(!out.try_send(4));
    CHECK(in.size() == 1);
    CHECK(out.size() == 1);
    CHECK(in.try_recv() == std::optional<int>(3));
    CHECK(!in.try_recv());
}

TEST_CASE("sending an lvalue leaves the sender's copy intact")
{
    weft::run([]() -> weft::task<> {
        auto ch = weft::make_chan<std::string>(1);
        std::string s = "hello";
        co_await ch.send(s);
        CHECK(s == "hello");
        CHECK(co_await ch.recv() == std::optional<std::string>("hello"));
    });
}

TEST_CASE("tasks blocked on channels whose handles are all gone are destroyed cleanly at shutdown")
{
    // The main task drops the last handles and returns while other tasks
    // still wait on the channels (each task's frame holds only the channel
    // state the operation uses); the runtime then destroys those tasks,
    // which leave the queues, and the last one frees each channel
    // (sanitizers check the accesses, LeakSanitizer the frees).
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto a = weft::make_chan<int>();
        auto b = weft::make_chan<int>();
        auto c = weft::make_chan<int>(1);
        co_await c.send(0);
        weft::go([&a]() -> weft::task<> { (void)co_await a.recv(); }).detach();
        weft::go([&a]() -> weft::task<> { (void)co_await a.recv(); }).detach();
        weft::go([&b]() -> weft::task<> { co_await b.send(1); }).detach();
        weft::go([&c]() -> weft::task<> { co_await c.send(1); }).detach();
        weft::go([&a, &c]() -> weft::task<> { co_await weft::select(a.recv(), c.send(2)); })
            .detach();
        weft::go([&a, &b]() -> weft::task<> {
            std::vector<weft::recv_chan<int>> list{a, b};
            (void)co_await weft::select_from(list);
        }).detach();
        co_await weft::sleep_for(std::chrono::milliseconds(20));
    });
}

TEST_CASE("a task blocked on a channel whose handles are gone can still be cancelled")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto [ctx, cancel] = weft::with_cancel(weft::background());
        auto done = weft::make_chan<int>(2);
        {
            auto a = weft::make_chan<int>();
            auto run_one = [&](bool use_select) -> weft::task<> {
                bool canceled = false;
                try {
                    if (use_select)
                        co_await weft::select(a.recv(), a.recv());
                    else
                        (void)co_await a.recv();
                } catch (const weft::canceled_error&) {
                    canceled = true;
                }
                co_await done.send(canceled ? 1 : 0);
            };
            weft::go(ctx, run_one, false);
            weft::go(ctx, run_one, true);
            co_await weft::sleep_for(std::chrono::milliseconds(10));
        }
        cancel();
        CHECK((co_await done.recv()).value() == 1);
        CHECK((co_await done.recv()).value() == 1);
    });
}

TEST_CASE("closed() is true once a channel is closed and drained, on every view")
{
    weft::chan<int> nil;
    CHECK(!nil.closed());
    auto ch = weft::make_chan<int>(2);
    weft::recv_chan<int> r = ch;
    weft::send_chan<int> s = ch;
    CHECK(!ch.closed());
    CHECK(ch.try_send(1));
    ch.close();
    CHECK(!r.closed()); // 1 is still to be received
    CHECK(ch.try_recv() == 1);
    CHECK(r.closed());
    CHECK(s.closed());
}
