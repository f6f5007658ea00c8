#include <weft/context.hpp>

#include <weft/chan.hpp>
#include <weft/runtime.hpp>
#include <weft/select.hpp>
#include <weft/sync.hpp>
#include <weft/time.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using wclock = weft::clock;

namespace {
const weft::context_key<int>& weft_test_key()
{
    static const weft::context_key<int> key;
    return key;
}
} // namespace

TEST_CASE("background is never done and has no deadline")
{
    weft::context bg = weft::background();
    CHECK(!bg.err());
    CHECK(!bg.deadline());
    CHECK(bg == weft::context{});
}

TEST_CASE("cancel marks the context and its subtree done, never its parent or siblings")
{
    auto [root, cancel_root] = weft::with_cancel(weft::background());
    auto [a, cancel_a] = weft::with_cancel(root);
    auto [b, cancel_b] = weft::with_cancel(root);
    auto [a1, cancel_a1] = weft::with_cancel(a);
    weft::context_key<int> key;
    auto a2 = weft::with_value(a, key, 7);

    cancel_a();
    CHECK(a.err() == weft::errc::canceled);
    CHECK(a1.err() == weft::errc::canceled);
    CHECK(a2.err() == weft::errc::canceled);
    CHECK(!root.err());
    CHECK(!b.err());

    cancel_a();       // idempotent
    cancel_a1();      // a child cancelled after its parent keeps the parent's error
    CHECK(a1.err() == weft::errc::canceled);
    cancel_root();
    CHECK(b.err() == weft::errc::canceled);
}

TEST_CASE("errors have their own category and messages")
{
    std::error_code ec = weft::errc::deadline_exceeded;
    CHECK(ec.category().name() == std::string("weft.context"));
    CHECK(ec.message() == "context deadline exceeded");
    CHECK(std::error_code(weft::errc::canceled).message() == "context canceled");
    weft::canceled_error e(weft::errc::canceled);
    CHECK(e.code() == weft::errc::canceled);
}

TEST_CASE("values are found up the tree and shadowed by nearer ones")
{
    weft::context_key<std::string> name;
    weft::context_key<int> number;
    auto c1 = weft::with_value(weft::background(), name, "outer");
    auto [c2, cancel] = weft::with_cancel(c1);
    auto c3 = weft::with_value(c2, number, 42);
    auto c4 = weft::with_value(c3, name, "inner");
    REQUIRE(c3.value(name));
    CHECK(*c3.value(name) == "outer");
    CHECK(*c4.value(name) == "inner");
    CHECK(*c4.value(number) == 42);
    CHECK(c2.value(number) == nullptr);
    weft::context_key<int> other;
    CHECK(c4.value(other) == nullptr);
    CHECK(weft::background().value(name) == nullptr);
}

TEST_CASE("a deadline is the earliest of the context's and its parent's")
{
    weft::run([]() -> weft::task<> {
        auto now = wclock::now();
        auto [p, cancel_p] = weft::with_deadline(weft::background(), now + 1h);
        auto [c, cancel_c] = weft::with_deadline(p, now + 2h);
        auto [d, cancel_d] = weft::with_timeout(p, 10min);
        REQUIRE(c.deadline());
        CHECK(*c.deadline() == *p.deadline());
        REQUIRE(d.deadline());
        CHECK(*d.deadline() < *p.deadline());
        auto [e, cancel_e] = weft::with_cancel(d);
        CHECK(e.deadline() == d.deadline());
        cancel_p();
        CHECK(d.err() == weft::errc::canceled);
        co_return;
    });
}

TEST_CASE("a deadline that passes cancels with deadline_exceeded")
{
    weft::run([]() -> weft::task<> {
        auto t0 = wclock::now();
        auto [c, cancel] = weft::with_timeout(weft::background(), 20ms);
        CHECK(!c.err());
        co_await c.done();
        CHECK(wclock::now() - t0 >= 20ms);
        CHECK(wclock::now() - t0 < 2s);
        CHECK(c.err() == weft::errc::deadline_exceeded);
        cancel(); // after the deadline: keeps deadline_exceeded
        CHECK(c.err() == weft::errc::deadline_exceeded);

        auto [past, cancel_past] = weft::with_deadline(weft::background(), wclock::now() - 1s);
        CHECK(past.err() == weft::errc::deadline_exceeded);
    });
}

TEST_CASE("done() wakes every task waiting on it, and works in select")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto [c, cancel] = weft::with_cancel(weft::background());
            weft::wait_group wg;
            std::atomic<int> woken{0};
            for (int i = 0; i < 1000; ++i) {
                wg.add(1);
                weft::go([&, c = c]() -> weft::task<> {
                    auto never = weft::make_chan<int>();
                    if (woken.load() % 2)
                        co_await c.done();
                    else
                        (void)co_await weft::select(never.recv(), c.done());
                    woken.fetch_add(1);
                    wg.done();
                });
            }
            co_await weft::this_task::yield();
            cancel();
            co_await wg.wait();
            CHECK(woken.load() == 1000);
        });
    }
}

TEST_CASE("select with done() and default_case")
{
    weft::run([]() -> weft::task<> {
        auto [c, cancel] = weft::with_cancel(weft::background());
        auto r = co_await weft::select(c.done(), weft::default_case);
        CHECK(r.index() == 1);
        cancel();
        auto r2 = co_await weft::select(c.done(), weft::default_case);
        CHECK(r2.index() == 0);
        // background's done() is never ready, like a nil channel.
        auto r3 = co_await weft::select(weft::background().done(), weft::default_case);
        CHECK(r3.index() == 1);
    });
}

TEST_CASE("cancelling from a thread outside the runtime wakes waiters")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto [c, cancel] = weft::with_cancel(weft::background());
        std::thread th([cancel = cancel] {
            std::this_thread::sleep_for(10ms);
            cancel();
        });
        co_await c.done();
        th.join();
        CHECK(c.err() == weft::errc::canceled);
    });
}

TEST_CASE("go(f) inherits the spawner's context; go(ctx, f) sets it")
{
    weft::run([]() -> weft::task<> {
        CHECK(weft::current_context() == weft::background());
        weft::context_key<int> key;
        auto [c, cancel] = weft::with_cancel(weft::with_value(weft::background(), key, 5));
        auto h = weft::go(c, [&]() -> weft::task<int> {
            CHECK(weft::current_context() == c);
            auto inner = weft::go([&]() -> weft::task<int> {
                CHECK(weft::current_context() == c);
                co_return *weft::current_context().value(key);
            });
            co_return co_await inner;
        });
        CHECK(co_await h == 5);
        auto bg = weft::go(weft::background(), []() -> weft::task<bool> {
            co_return weft::current_context() == weft::background();
        });
        CHECK(co_await bg);
    });
}

TEST_CASE("children that are cancelled or dropped leave their parent")
{
    // Short-lived children of one long-lived parent must unlink themselves:
    // cancelling the parent afterwards would otherwise visit freed nodes
    // (which the sanitizer builds report).
    weft::run([]() -> weft::task<> {
        auto [parent, cancel_parent] = weft::with_cancel(weft::background());
        for (int i = 0; i < 10'000; ++i) {
            auto [child, cancel_child] = weft::with_timeout(parent, 1h);
            auto [grandchild, cancel_grandchild] = weft::with_cancel(child);
            if (i % 2)
                cancel_child();
        }
        auto [kept, cancel_kept] = weft::with_cancel(parent);
        cancel_parent();
        CHECK(kept.err() == weft::errc::canceled);
        co_return;
    });
}

TEST_CASE("a parent's list does not grow with children cancelled, dropped or expired")
{
    weft::run([]() -> weft::task<> {
        auto [parent, cancel_parent] = weft::with_cancel(weft::background());
        auto* node = parent.node();
        for (int i = 0; i < 10'000; ++i) {
            auto [child, cancel_child] = weft::with_cancel(parent);
            auto [timed, cancel_timed] = weft::with_timeout(child, 1h);
            auto v = weft::with_value(timed, weft_test_key(), i);
            auto [leaf, cancel_leaf] = weft::with_cancel(v);
            CHECK(node->registrations() == 1);
            if (i % 3 == 0)
                cancel_child();
            else if (i % 3 == 1)
                cancel_leaf();
            cancel_timed(); // else its timer keeps it until the deadline, as in Go
        }
        CHECK(node->registrations() == 0);

        // A context whose handles are all dropped before its deadline leaves
        // once the deadline passes: its timer was the last holder.
        (void)weft::with_timeout(parent, 5ms);
        CHECK(node->registrations() == 1);
        auto t0 = wclock::now();
        while (node->registrations() != 0 && wclock::now() - t0 < 2s)
            co_await weft::sleep_for(1ms);
        CHECK(node->registrations() == 0);

        // A task's finished wait leaves no registration behind either.
        auto ch = weft::make_chan<int>();
        auto receiver =
            weft::go(parent, [ch]() -> weft::task<int> { co_return *co_await ch.recv(); });
        while (node->registrations() == 0 && wclock::now() - t0 < 4s)
            co_await weft::this_task::yield();
        CHECK(node->registrations() == 1); // the receiver's wait
        co_await ch.send(3);
        CHECK(co_await receiver == 3);
        CHECK(node->registrations() == 0);
        cancel_parent();
    });
}

TEST_CASE("a future deadline needs a runtime; a past one does not")
{
    auto [parent, cancel_parent] = weft::with_cancel(weft::background());
    CHECK_THROWS_AS((void)weft::with_timeout(parent, 1h), std::logic_error);
    CHECK(parent.node()->registrations() == 0); // the failed child left
    auto [past, cancel_past] = weft::with_timeout(parent, -1s);
    CHECK(past.err() == weft::errc::deadline_exceeded);
    CHECK(parent.node()->registrations() == 0); // born done, it has left already
    CHECK(!parent.err());
}

TEST_CASE("select on done() and a channel takes whichever is ready")
{
    weft::run([]() -> weft::task<> {
        auto [c, cancel] = weft::with_cancel(weft::background());
        auto ch = weft::make_chan<int>(1);
        co_await ch.send(1);
        auto r = co_await weft::select(ch.recv(), c.done());
        REQUIRE(r.index() == 0);
        CHECK(std::get<0>(r) == 1);
        auto waiter = weft::go([&]() -> weft::task<std::size_t> {
            auto r2 = co_await weft::select(ch.recv(), c.done());
            co_return r2.index();
        });
        co_await weft::sleep_for(2ms);
        cancel();
        CHECK(co_await waiter == 1);
        CHECK(ch.size() == 0);
    });
}

TEST_CASE("a task waiting on background's done() is destroyed quietly when main returns")
{
    std::atomic<bool> started{false};
    weft::run([&]() -> weft::task<> {
        weft::go([&]() -> weft::task<> {
            started = true;
            co_await weft::background().done(); // never returns
        });
        while (!started)
            co_await weft::this_task::yield();
    });
    CHECK(started.load());
}

TEST_CASE("a cancelled task's blocked recv, send, select and sleep end with canceled_error")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto [c, cancel] = weft::with_cancel(weft::background());
            auto unbuffered = weft::make_chan<int>(); // only received from
            auto unbuffered_out = weft::make_chan<int>(); // only sent to
            auto full = weft::make_chan<int>(1);
            full.try_send(1);
            weft::chan<int> nil;
            std::atomic<int> canceled{0};
            weft::wait_group wg;
            auto expect_cancel = [&](auto body) {
                wg.add(1);
                weft::go(c, [&, body]() -> weft::task<> {
                    try {
                        co_await body();
                    } catch (const weft::canceled_error& e) {
                        if (e.code() == weft::errc::canceled)
                            canceled.fetch_add(1);
                    }
                    wg.done();
                });
            };
            expect_cancel([&]() -> weft::task<> { (void)co_await unbuffered.recv(); });
            expect_cancel([&]() -> weft::task<> { co_await unbuffered_out.send(5); });
            expect_cancel([&]() -> weft::task<> { co_await full.send(2); });
            expect_cancel([&]() -> weft::task<> { (void)co_await nil.recv(); });
            expect_cancel([&]() -> weft::task<> { co_await nil.send(1); });
            expect_cancel([&]() -> weft::task<> {
                (void)co_await weft::select(unbuffered.recv(), full.send(3), unbuffered_out.send(4));
            });
            expect_cancel([&]() -> weft::task<> { (void)co_await weft::select(nil.recv()); });
            expect_cancel([&]() -> weft::task<> { co_await weft::sleep_for(1h); });
            std::vector<weft::chan<int>> list{unbuffered, nil};
            expect_cancel([&]() -> weft::task<> { (void)co_await weft::select_from(list); });
            co_await weft::sleep_for(5ms);
            auto t0 = wclock::now();
            cancel();
            co_await wg.wait();
            CHECK(wclock::now() - t0 < 1s);
            CHECK(canceled.load() == 9);
            // Nothing was taken or left behind: the buffered value is still
            // there and nobody waits on the unbuffered channel.
            CHECK(full.try_recv() == 1);
            CHECK(!unbuffered.try_send(9));
            CHECK(!unbuffered_out.try_recv());
            // Operations entered after the cancellation fail at once.
            expect_cancel([&]() -> weft::task<> { (void)co_await unbuffered.recv(); });
            expect_cancel([&]() -> weft::task<> { co_await weft::sleep_for(1h); });
            co_await wg.wait();
            CHECK(canceled.load() == 11);
        });
    }
}

TEST_CASE("a select with a done() case reports it instead of throwing")
{
    weft::run([]() -> weft::task<> {
        auto [c, cancel] = weft::with_cancel(weft::background());
        auto [other, cancel_other] = weft::with_cancel(weft::background());
        auto never = weft::make_chan<int>();
        auto own = weft::go(c, [&]() -> weft::task<std::size_t> {
            auto r = co_await weft::select(never.recv(), other.done(), weft::current_context().done());
            co_return r.index();
        });
        auto foreign = weft::go(c, [&]() -> weft::task<std::size_t> {
            auto r = co_await weft::select(never.recv(), other.done());
            co_return r.index();
        });
        co_await weft::sleep_for(5ms);
        cancel();
        CHECK(co_await own == 2);
        CHECK(co_await foreign == 1);
        CHECK(!other.err());
    });
}

TEST_CASE("a wait completed by its waker is not reported as cancelled")
{
    // Races cancellation against completion: every receive either gets its
    // value or throws, and no value is lost or duplicated.
    weft::run(weft::runtime_options{.workers = 4}, []() -> weft::task<> {
        int got = 0, canceled = 0, unsent = 0;
        for (int i = 0; i < 500; ++i) {
            auto [c, cancel] = weft::with_cancel(weft::background());
            auto ch = weft::make_chan<int>();
            auto receiver = weft::go(c, [ch]() -> weft::task<int> {
                try {
                    co_return (co_await ch.recv()).value_or(-1);
                } catch (const weft::canceled_error&) {
                    co_return -2;
                }
            });
            co_await weft::this_task::yield();
            auto canceller = weft::go([cancel = cancel]() -> weft::task<> {
                cancel();
                co_return;
            });
            auto r = co_await weft::select(ch.send(i), weft::after(20ms));
            co_await canceller;
            int v = co_await receiver;
            if (v == i) {
                ++got;
                CHECK(r.index() == 0);
            } else {
                CHECK(v == -2);
                ++canceled;
                if (r.index() == 1)
                    ++unsent;
            }
        }
        CHECK(got + canceled == 500);
        CHECK(unsent == canceled); // a cancelled receiver took nothing
    });
}

TEST_CASE("a cancelled task's lock, wait, acquire and join end with canceled_error and leave no trace")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto [c, cancel] = weft::with_cancel(weft::background());
            weft::mutex m;
            weft::rw_mutex rw;
            weft::wait_group blocked_wg;
            weft::semaphore sem(2);
            weft::once once;
            weft::mutex cm;
            weft::cond cv(cm);
            auto forever = weft::go([]() -> weft::task<> { co_await weft::sleep_for(1h); });
            co_await m.lock();
            co_await rw.lock_shared();
            blocked_wg.add(1);
            co_await sem.acquire(2);
            auto once_runner = weft::go([&]() -> weft::task<> {
                co_await once.call([&]() -> weft::task<> { co_await weft::sleep_for(50ms); });
            });
            co_await weft::sleep_for(1ms);

            std::atomic<int> canceled{0};
            std::atomic<bool> cond_held{false};
            weft::wait_group done;
            auto expect_cancel = [&](auto body) {
                done.add(1);
                weft::go(c, [&, body]() -> weft::task<> {
                    try {
                        co_await body();
                    } catch (const weft::canceled_error&) {
                        canceled.fetch_add(1);
                    }
                    done.done();
                });
            };
            expect_cancel([&]() -> weft::task<> { co_await m.lock(); });
            expect_cancel([&]() -> weft::task<> { co_await rw.lock(); });
            expect_cancel([&]() -> weft::task<> { co_await blocked_wg.wait(); });
            expect_cancel([&]() -> weft::task<> { co_await sem.acquire(1); });
            expect_cancel([&]() -> weft::task<> {
                co_await once.call([]() {});
            });
            expect_cancel([&]() -> weft::task<> { co_await forever; });
            expect_cancel([&]() -> weft::task<> {
                co_await cm.lock();
                try {
                    co_await cv.wait();
                } catch (...) {
                    // cond wait throws holding the mutex
                    cond_held = !cm.try_lock();
                    cm.unlock();
                    throw;
                }
                cm.unlock();
            });
            co_await weft::sleep_for(5ms);
            cancel();
            co_await done.wait();
            CHECK(canceled.load() == 7);
            CHECK(cond_held.load());
            // No ghost waiters: the primitives work for others as before.
            m.unlock();
            CHECK(m.try_lock());
            m.unlock();
            rw.unlock_shared();
            CHECK(rw.try_lock());
            rw.unlock();
            sem.release(2);
            CHECK(sem.try_acquire(2));
            blocked_wg.done();
            co_await blocked_wg.wait();
            co_await once_runner;
            cv.signal(); // nobody waits: no effect
            CHECK(cm.try_lock());
            cm.unlock();
            // A cancelled join can be retried by a task that is not cancelled.
            forever.detach();
        });
    }
}

TEST_CASE("a withdrawn writer lets the readers behind it in; a withdrawn big acquire lets small ones in")
{
    weft::run([]() -> weft::task<> {
        weft::rw_mutex rw;
        co_await rw.lock_shared();
        auto [c, cancel] = weft::with_cancel(weft::background());
        auto writer = weft::go(c, [&]() -> weft::task<bool> {
            try {
                co_await rw.lock();
            } catch (const weft::canceled_error&) {
                co_return false;
            }
            rw.unlock();
            co_return true;
        });
        co_await weft::sleep_for(2ms);
        CHECK(!rw.try_lock_shared()); // the writer holds new readers off
        auto reader = weft::go([&]() -> weft::task<> {
            co_await rw.lock_shared();
            rw.unlock_shared();
        });
        co_await weft::sleep_for(2ms);
        cancel();
        CHECK(!co_await writer);
        co_await reader; // admitted once the writer left
        rw.unlock_shared();

        weft::semaphore sem(3);
        co_await sem.acquire(2);
        auto [c2, cancel2] = weft::with_cancel(weft::background());
        auto big = weft::go(c2, [&]() -> weft::task<> { co_await sem.acquire(3); });
        co_await weft::sleep_for(2ms);
        auto small = weft::go([&]() -> weft::task<> { co_await sem.acquire(1); });
        co_await weft::sleep_for(2ms);
        cancel2();
        CHECK_THROWS_AS(co_await big, weft::canceled_error);
        co_await small; // FIFO no longer blocked by the withdrawn big one
        sem.release(3);
    });
}

TEST_CASE("a three-level tree of blocked tasks unwinds promptly after one cancel")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto [root, cancel] = weft::with_cancel(weft::background());
        std::atomic<int> unwound{0};
        weft::mutex held;
        co_await held.lock();
        auto never = weft::make_chan<int>();
        weft::wait_group wg;
        auto leaf = [&](int kind) -> weft::task<> {
            try {
                if (kind == 0)
                    (void)co_await never.recv();
                else if (kind == 1)
                    co_await weft::sleep_for(1h);
                else
                    co_await held.lock();
            } catch (const weft::canceled_error&) {
                unwound.fetch_add(1);
            }
            wg.done();
        };
        for (int i = 0; i < 3; ++i) {
            wg.add(1);
            weft::go(root, [&, i]() -> weft::task<> {
                auto [mid, cancel_mid] = weft::with_cancel(weft::current_context());
                for (int j = 0; j < 3; ++j) {
                    wg.add(1);
                    weft::go(mid, [&, j]() -> weft::task<> {
                        for (int k = 0; k < 3; ++k) {
                            wg.add(1);
                            weft::go(leaf, k);
                        }
                        co_await leaf(j);
                    });
                }
                co_await leaf(i);
            });
        }
        co_await weft::sleep_for(10ms);
        auto t0 = wclock::now();
        cancel();
        co_await wg.wait();
        auto took = wclock::now() - t0;
        CHECK(unwound.load() == 3 + 9 + 27);
        CHECK(took < 200ms); // typically well under a millisecond
        held.unlock();
    });
}

TEST_CASE("an operation that finds its context cancelled just before it queues throws")
{
    // Cancels from another worker while many tasks enter recv, send and
    // sleep: every operation either completes or throws, none returns as if
    // it had completed when it did not.
    weft::run(weft::runtime_options{.workers = 4}, []() -> weft::task<> {
        for (int round = 0; round < 200; ++round) {
            auto [c, cancel] = weft::with_cancel(weft::background());
            auto ch = weft::make_chan<int>();
            std::atomic<int> wrong{0};
            weft::wait_group wg;
            for (int i = 0; i < 4; ++i) {
                wg.add(1);
                weft::go(c, [&, i, ch]() -> weft::task<> {
                    try {
                        if (i % 3 == 0) {
                            auto v = co_await ch.recv();
                            if (!v)
                                wrong.fetch_add(1); // nobody closes ch
                        } else if (i % 3 == 1) {
                            co_await weft::sleep_for(1h);
                            wrong.fetch_add(1); // nobody ends the sleep early
                        } else {
                            co_await ch.send(1);
                        }
                    } catch (const weft::canceled_error&) {
                    }
                    wg.done();
                });
            }
            weft::go([cancel = cancel]() -> weft::task<> {
                cancel();
                co_return;
            });
            co_await wg.wait();
            CHECK(wrong.load() == 0);
        }
    });
}
