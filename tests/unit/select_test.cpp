#include <weft/select.hpp>

#include "test_support.hpp"

#include <weft/chan.hpp>
#include <weft/errors.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

namespace {

/// True when every count lies within [expected * lo, expected * hi].
/// The bounds are loose on purpose: the test proves the choice is not biased
/// towards one case, not that the generator is statistically perfect.
template <std::size_t N>
bool roughly_uniform(const std::array<int, N>& counts, int rounds, double lo = 0.6, double hi = 1.4)
{
    const double expected = static_cast<double>(rounds) / static_cast<double>(N);
    for (int c : counts)
        if (c < expected * lo || c > expected * hi)
            return false;
    return true;
}

} // namespace

TEST_CASE("select receives from the only ready channel")
{
    weft::run([]() -> weft::task<> {
        auto a = weft::make_chan<int>(1);
        auto b = weft::make_chan<int>(1);
        co_await b.send(3);
        auto r = co_await weft::select(a.recv(), b.recv());
        REQUIRE(r.index() == 1);
        CHECK(std::get<1>(r) == std::optional<int>(3));
        CHECK(b.size() == 0);
    });
}

TEST_CASE("select result types follow the case kinds")
{
    weft::run([]() -> weft::task<> {
        auto a = weft::make_chan<int>(1);
        auto s = weft::make_chan<long>(1);
        auto r = co_await weft::select(a.recv(), s.send(1L), weft::default_case);
        static_assert(
            std::is_same_v<std::variant_alternative_t<0, decltype(r)>, std::optional<int>>);
        static_assert(std::is_same_v<std::variant_alternative_t<1, decltype(r)>, std::monostate>);
        CHECK(r.index() == 1);
        CHECK(s.try_recv() == std::optional<long>(1));
    });
}

TEST_CASE("a channel itself is a receive case")
{
    weft::run([]() -> weft::task<> {
        auto a = weft::make_chan<int>(1);
        auto b = weft::make_chan<int>(1);
        co_await a.send(1);
        weft::recv_chan<int> b_view = b;
        auto r = co_await weft::select(a, b_view);
        REQUIRE(r.index() == 0);
        CHECK(std::get<0>(r) == std::optional<int>(1));
        co_await b.send(2);
        auto r2 = co_await weft::select(a, b_view);
        REQUIRE(r2.index() == 1);
        CHECK(std::get<1>(r2) == std::optional<int>(2));
    });
}

TEST_CASE("select with default_case chooses default when nothing is ready")
{
    weft::run([]() -> weft::task<> {
        auto a = weft::make_chan<int>();
        auto b = weft::make_chan<int>(1);
        auto full = weft::make_chan<int>(1);
        co_await full.send(0);
        for (int i = 0; i < 100; ++i) {
            auto r = co_await weft::select(a.recv(), b.recv(), full.send(1), a.send(2),
                                           weft::default_case);
            CHECK(r.index() == 4);
        }
        CHECK(full.size() == 1);
        CHECK(b.size() == 0);
        auto only_default = co_await weft::select(weft::default_case);
        CHECK(only_default.index() == 0);
    });
}

TEST_CASE("select never chooses default_case while another case is ready")
{
    weft::run([]() -> weft::task<> {
        auto a = weft::make_chan<int>(1000);
        for (int i = 0; i < 1000; ++i)
            co_await a.send(i);
        int defaults = 0;
        for (int i = 0; i < 1000; ++i) {
            auto r = co_await weft::select(weft::default_case, a.recv());
            if (r.index() == 0)
                ++defaults;
            else
                CHECK(std::get<1>(r) == std::optional<int>(i));
        }
        CHECK(defaults == 0);
    });
}

TEST_CASE("select sends on a channel with room")
{
    weft::run([]() -> weft::task<> {
        auto a = weft::make_chan<int>();
        auto b = weft::make_chan<int>(1);
        auto r = co_await weft::select(a.send(1), b.send(2));
        CHECK(r.index() == 1);
        CHECK(b.try_recv() == std::optional<int>(2));
        CHECK(!a.try_recv());
    });
}

TEST_CASE("a blocked select wakes for the case that becomes ready")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            for (int round = 0; round < 50; ++round) {
                auto a = weft::make_chan<int>();
                auto b = weft::make_chan<int>();
                auto h = weft::go(
                    [](weft::chan<int> c, int v) -> weft::task<> {
                        co_await weft::this_task::yield();
                        co_await c.send(v);
                    },
                    (round % 2) ? a : b, round);
                auto r = co_await weft::select(a.recv(), b.recv());
                CHECK(r.index() == static_cast<std::size_t>((round % 2) ? 0 : 1));
                CHECK(std::visit([](const std::optional<int>& v) { return v.value_or(-1); }, r) ==
                      round);
                co_await h;
            }
        });
    }
}

TEST_CASE("a blocked select with a send case completes when a receiver arrives")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto out = weft::make_chan<int>();
            auto never = weft::make_chan<int>();
            auto h = weft::go(
                [](weft::chan<int> c) -> weft::task<std::optional<int>> {
                    co_return co_await c.recv();
                },
                out);
            auto r = co_await weft::select(never.recv(), out.send(17));
            CHECK(r.index() == 1);
            CHECK(co_await h == std::optional<int>(17));
        });
    }
}

TEST_CASE("two selects on opposite ends of an unbuffered channel meet")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto ch = weft::make_chan<int>();
            auto x = weft::make_chan<int>();
            auto y = weft::make_chan<int>();
            auto sender = weft::go(
                [](weft::chan<int> c, weft::chan<int> idle) -> weft::task<int> {
                    int sent = 0;
                    for (int i = 0; i < 200; ++i) {
                        auto r = co_await weft::select(c.send(i), idle.recv());
                        sent += r.index() == 0 ? 1 : 0;
                    }
                    co_return sent;
                },
                ch, x);
            int received = 0;
            long sum = 0;
            for (int i = 0; i < 200; ++i) {
                auto r = co_await weft::select(y.recv(), ch.recv());
                if (r.index() == 1) {
                    ++received;
                    sum += std::get<1>(r).value_or(0);
                }
            }
            CHECK(received == 200);
            CHECK(sum == 199 * 200 / 2);
            CHECK(co_await sender == 200);
        });
    }
}

TEST_CASE("a nil channel case is never chosen")
{
    weft::run([]() -> weft::task<> {
        weft::chan<int> nil;
        auto ready = weft::make_chan<int>(100);
        for (int i = 0; i < 100; ++i)
            co_await ready.send(i);
        for (int i = 0; i < 100; ++i) {
            auto r = co_await weft::select(nil.recv(), nil.send(1), ready.recv());
            CHECK(r.index() == 2);
        }
        auto r = co_await weft::select(nil.recv(), nil.send(1), weft::default_case);
        CHECK(r.index() == 2);
        auto r2 = co_await weft::select(nil, weft::default_case);
        CHECK(r2.index() == 1);
    });
}

TEST_CASE("setting a case's channel to nullptr disables it")
{
    weft::run([]() -> weft::task<> {
        auto a = weft::make_chan<int>(10);
        auto b = weft::make_chan<int>(10);
        for (int i = 0; i < 3; ++i) {
            co_await a.send(i);
            co_await b.send(10 + i);
        }
        a.close();
        b.close();
        // The for-select idiom: drain two channels, disabling each when closed.
        weft::chan<int> ra = a;
        weft::chan<int> rb = b;
        int sum = 0;
        int values = 0;
        while (ra || rb) {
            auto r = co_await weft::select(ra.recv(), rb.recv());
            if (r.index() == 0) {
                if (auto v = std::get<0>(r)) {
                    sum += *v;
                    ++values;
                } else {
                    ra = nullptr;
                }
            } else {
                if (auto v = std::get<1>(r)) {
                    sum += *v;
                    ++values;
                } else {
                    rb = nullptr;
                }
            }
        }
        CHECK(values == 6);
        CHECK(sum == 0 + 1 + 2 + 10 + 11 + 12);
    });
}

TEST_CASE("select evaluates each case's operands exactly once")
{
    weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> {
        auto in = weft::make_chan<int>();
        auto out = weft::make_chan<int>();
        int chan_evals = 0;
        int value_evals = 0;
        auto get_in = [&] {
            ++chan_evals;
            return in;
        };
        auto get_out = [&] {
            ++chan_evals;
            return out;
        };
        auto value = [&] {
            ++value_evals;
            return 99;
        };
        auto h = weft::go(
            [](weft::chan<int> c) -> weft::task<> {
                for (int i = 0; i < 20; ++i)
                    co_await weft::this_task::yield();
                co_await c.send(1);
            },
            in);
        auto r = co_await weft::select(get_in().recv(), get_out().send(value()));
        co_await h;
        CHECK(r.index() == 0);
        CHECK(chan_evals == 2);
        CHECK(value_evals == 1);
        CHECK(!out.try_recv());
    });
}

TEST_CASE("cases that are not chosen consume nothing and send nothing")
{
    weft::run([]() -> weft::task<> {
        auto a = weft::make_chan<int>(1);
        auto b = weft::make_chan<int>(1);
        auto c = weft::make_chan<int>(1);
        auto d = weft::make_chan<int>(1);
        std::array<int, 4> chosen{};
        for (int i = 0; i < 2000; ++i) {
            // a and b hold one value each; c and d have room for one.
            REQUIRE(a.try_send(1));
            REQUIRE(b.try_send(2));
            auto r = co_await weft::select(a.recv(), b.recv(), c.send(3), d.send(4));
            const auto k = r.index();
            ++chosen[k];
            CHECK(a.size() == (k == 0 ? 0u : 1u));
            CHECK(b.size() == (k == 1 ? 0u : 1u));
            CHECK(c.size() == (k == 2 ? 1u : 0u));
            CHECK(d.size() == (k == 3 ? 1u : 0u));
            if (k == 0)
                CHECK(std::get<0>(r) == std::optional<int>(1));
            if (k == 1)
                CHECK(std::get<1>(r) == std::optional<int>(2));
            if (k == 2)
                CHECK(c.try_recv() == std::optional<int>(3));
            if (k == 3)
                CHECK(d.try_recv() == std::optional<int>(4));
            (void)a.try_recv();
            (void)b.try_recv();
        }
        for (int n : chosen)
            CHECK(n > 0);
    });
}

TEST_CASE("after a blocked select wins one case its other waits are withdrawn")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            for (int round = 0; round < 50; ++round) {
                auto a = weft::make_chan<int>();
                auto b = weft::make_chan<int>();
                auto c = weft::make_chan<int>();
                auto h = weft::go(
                    [](weft::chan<int> x) -> weft::task<> {
                        co_await weft::this_task::yield();
                        co_await x.send(1);
                    },
                    a);
                // Blocks on a and b (receive) and c (send) until a's sender arrives.
                auto r = co_await weft::select(a.recv(), b.recv(), c.send(5));
                co_await h;
                CHECK(r.index() == 0);
                // The receive on b and the send on c were withdrawn: no one waits.
                CHECK(!b.try_send(2));
                CHECK(!c.try_recv());
            }
        });
    }
}

TEST_CASE("the same channel may appear in two cases")
{
    weft::run([]() -> weft::task<> {
        auto ch = weft::make_chan<int>(1);
        std::array<int, 2> chosen{};
        for (int i = 0; i < 400; ++i) {
            REQUIRE(ch.try_send(i));
            auto r = co_await weft::select(ch.recv(), ch.recv());
            ++chosen[r.index()];
            CHECK(std::visit([](const std::optional<int>& v) { return v.value_or(-1); }, r) == i);
            CHECK(ch.size() == 0);
        }
        CHECK(chosen[0] > 0);
        CHECK(chosen[1] > 0);

        // A send and a receive on one empty buffered channel: only the send is ready.
        auto r = co_await weft::select(ch.send(7), ch.recv());
        CHECK(r.index() == 0);
        CHECK(ch.try_recv() == std::optional<int>(7));

        // On an unbuffered channel a select cannot meet itself.
        auto unbuffered = weft::make_chan<int>();
        auto r2 = co_await weft::select(unbuffered.send(1), unbuffered.recv(), weft::default_case);
        CHECK(r2.index() == 2);
    });
}

TEST_CASE("a receive case on a closed channel is ready and yields nullopt")
{
    weft::run([]() -> weft::task<> {
        auto closed = weft::make_chan<int>();
        closed.close();
        auto idle = weft::make_chan<int>();
        auto r = co_await weft::select(idle.recv(), closed.recv());
        REQUIRE(r.index() == 1);
        CHECK(!std::get<1>(r));
        auto r2 = co_await weft::select(closed.recv(), weft::default_case);
        REQUIRE(r2.index() == 0);
        CHECK(!std::get<0>(r2));
    });
}

TEST_CASE("closing a channel wakes a select blocked on receiving from it")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto a = weft::make_chan<int>();
            auto b = weft::make_chan<int>();
            auto h = weft::go(
                [](weft::chan<int> x) -> weft::task<> {
                    co_await weft::this_task::yield();
                    x.close();
                },
                b);
            auto r = co_await weft::select(a.recv(), b.recv());
            co_await h;
            REQUIRE(r.index() == 1);
            CHECK(!std::get<1>(r));
        });
    }
}

TEST_CASE("a send case on a closed channel is ready and throws when chosen")
{
    weft::run([]() -> weft::task<> {
        auto closed = weft::make_chan<int>(1);
        closed.close();
        auto idle = weft::make_chan<int>();
        for (int i = 0; i < 50; ++i) {
            CHECK_THROWS_AS(co_await weft::select(closed.send(1), weft::default_case),
                            weft::closed_channel);
            CHECK_THROWS_AS(co_await weft::select(idle.recv(), closed.send(1)),
                            weft::closed_channel);
        }
    });
}

TEST_CASE("closing a channel makes a select blocked on sending to it throw")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            auto a = weft::make_chan<int>();
            auto b = weft::make_chan<int>();
            auto h = weft::go(
                [](weft::chan<int> x) -> weft::task<> {
                    for (int i = 0; i < 10; ++i)
                        co_await weft::this_task::yield();
                    x.close();
                },
                b);
            CHECK_THROWS_AS(co_await weft::select(a.recv(), b.send(1)), weft::closed_channel);
            co_await h;
        });
    }
}

TEST_CASE("select chooses uniformly among ready receive cases")
{
    weft::run([]() -> weft::task<> {
        constexpr int rounds = 4000;
        std::array<weft::chan<int>, 4> chans;
        for (auto& c : chans) {
            c = weft::make_chan<int>(rounds);
            for (int i = 0; i < rounds; ++i)
                REQUIRE(c.try_send(i));
        }
        std::array<int, 4> counts{};
        for (int i = 0; i < rounds; ++i) {
            auto r = co_await weft::select(chans[0].recv(), chans[1].recv(), chans[2].recv(),
                                           chans[3].recv());
            ++counts[r.index()];
        }
        CAPTURE(counts[0]);
        CAPTURE(counts[1]);
        CAPTURE(counts[2]);
        CAPTURE(counts[3]);
        CHECK(roughly_uniform(counts, rounds));
    });
}

TEST_CASE("select chooses uniformly among ready send and receive cases")
{
    weft::run([]() -> weft::task<> {
        constexpr int rounds = 3000;
        auto in = weft::make_chan<int>(rounds);
        for (int i = 0; i < rounds; ++i)
            REQUIRE(in.try_send(i));
        auto out1 = weft::make_chan<int>(rounds);
        auto out2 = weft::make_chan<int>(rounds);
        std::array<int, 3> counts{};
        for (int i = 0; i < rounds; ++i) {
            auto r =
                co_await weft::select(out1.send(i), in.recv(), out2.send(i), weft::default_case);
            REQUIRE(r.index() < 3);
            ++counts[r.index()];
        }
        CAPTURE(counts[0]);
        CAPTURE(counts[1]);
        CAPTURE(counts[2]);
        CHECK(roughly_uniform(counts, rounds));
        CHECK(out1.size() == static_cast<std::size_t>(counts[0]));
        CHECK(in.size() == static_cast<std::size_t>(rounds - counts[1]));
        CHECK(out2.size() == static_cast<std::size_t>(counts[2]));
    });
}

TEST_CASE("select chooses uniformly among the ready cases when others are not ready")
{
    weft::run([]() -> weft::task<> {
        constexpr int rounds = 4000;
        // Cases 1, 2 and 4 ready (values buffered), 0 and 3 empty, 5 nil.
        std::array<weft::chan<int>, 5> chans;
        for (auto& c : chans)
            c = weft::make_chan<int>(rounds);
        for (int k : {1, 2, 4})
            for (int i = 0; i < rounds; ++i)
                REQUIRE(chans[k].try_send(i));
        weft::chan<int> nil;
        std::array<int, 6> counts{};
        for (int i = 0; i < rounds; ++i) {
            auto r = co_await weft::select(chans[0].recv(), chans[1].recv(), chans[2].recv(),
                                           chans[3].recv(), chans[4].recv(), nil.recv());
            ++counts[r.index()];
        }
        CHECK(counts[0] == 0);
        CHECK(counts[3] == 0);
        CHECK(counts[5] == 0);
        std::array<int, 3> ready{counts[1], counts[2], counts[4]};
        CAPTURE(ready[0]);
        CAPTURE(ready[1]);
        CAPTURE(ready[2]);
        CHECK(roughly_uniform(ready, rounds));
    });
}

TEST_CASE("select_from receives from a runtime-sized list of channels")
{
    weft::run([]() -> weft::task<> {
        std::vector<weft::chan<int>> chans;
        for (int i = 0; i < 5; ++i)
            chans.push_back(weft::make_chan<int>(1));
        co_await chans[3].send(30);
        auto [i, v] = co_await weft::select_from(chans);
        CHECK(i == 3);
        CHECK(v == std::optional<int>(30));
        CHECK(chans[3].size() == 0);

        chans[1].close();
        auto [j, w] = co_await weft::select_from(chans);
        CHECK(j == 1);
        CHECK(!w);
    });
}

TEST_CASE("select_from accepts receive-only views and skips nil channels")
{
    weft::run([]() -> weft::task<> {
        auto a = weft::make_chan<int>(10);
        std::vector<weft::recv_chan<int>> views{weft::recv_chan<int>{}, a, weft::recv_chan<int>{}};
        for (int k = 0; k < 10; ++k)
            co_await a.send(k);
        for (int k = 0; k < 10; ++k) {
            auto [i, v] = co_await weft::select_from(views);
            CHECK(i == 1);
            CHECK(v == std::optional<int>(k));
        }
    });
}

TEST_CASE("select_from blocks until one of the channels has a value")
{
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        weft::run(weft::runtime_options{.workers = w}, []() -> weft::task<> {
            std::vector<weft::chan<int>> chans;
            for (int i = 0; i < 8; ++i)
                chans.push_back(weft::make_chan<int>());
            auto h = weft::go(
                [](weft::chan<int> c) -> weft::task<> {
                    co_await weft::this_task::yield();
                    co_await c.send(6);
                },
                chans[6]);
            auto [i, v] = co_await weft::select_from(chans);
            co_await h;
            CHECK(i == 6);
            CHECK(v == std::optional<int>(6));
            // The other waits were withdrawn.
            for (std::size_t k = 0; k < chans.size(); ++k)
                CHECK(!chans[k].try_send(1));
        });
    }
}

TEST_CASE("select_from chooses uniformly among ready channels")
{
    weft::run([]() -> weft::task<> {
        constexpr int rounds = 4000;
        std::vector<weft::chan<int>> chans;
        for (int k = 0; k < 4; ++k) {
            chans.push_back(weft::make_chan<int>(rounds));
            for (int i = 0; i < rounds; ++i)
                REQUIRE(chans.back().try_send(i));
        }
        std::array<int, 4> counts{};
        for (int i = 0; i < rounds; ++i) {
            auto [k, v] = co_await weft::select_from(chans);
            REQUIRE(k < 4);
            ++counts[k];
        }
        CAPTURE(counts[0]);
        CAPTURE(counts[1]);
        CAPTURE(counts[2]);
        CAPTURE(counts[3]);
        CHECK(roughly_uniform(counts, rounds));
        std::size_t left = 0;
        for (auto& c : chans)
            left += c.size();
        CHECK(left == static_cast<std::size_t>(3 * rounds));
    });
}

TEST_CASE("select receives move-only values")
{
    weft::run([]() -> weft::task<> {
        auto ch = weft::make_chan<std::unique_ptr<int>>(1);
        auto idle = weft::make_chan<int>();
        co_await ch.send(std::make_unique<int>(5));
        auto r = co_await weft::select(idle.recv(), ch.recv());
        REQUIRE(r.index() == 1);
        auto& v = std::get<1>(r);
        REQUIRE(v);
        REQUIRE(*v);
        CHECK(**v == 5);
    });
}
