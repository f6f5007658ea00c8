// select stress: fan-in through select while channels close at random
// points, send and receive cases racing, and losing cases that must stay
// untouched. Iterations scale with WEFT_STRESS_SCALE (default 1).
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
#include <utility>
#include <vector>

namespace {

bool each_exactly_once(const std::vector<int>& counts)
{
    for (int c : counts)
        if (c != 1)
            return false;
    return true;
}

} // namespace

TEST_CASE("consumers selecting over channels that close at different times get every value once")
{
    const int per = static_cast<int>(1000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        for (std::size_t cap : {std::size_t{0}, std::size_t{3}}) {
            CAPTURE(w);
            CAPTURE(cap);
            const auto counts = weft::run(
                weft::runtime_options{.workers = w}, [=]() -> weft::task<std::vector<int>> {
                    constexpr int chans = 3;
                    std::array<weft::chan<int>, chans> cs;
                    for (int k = 0; k < chans; ++k) {
                        cs[static_cast<std::size_t>(k)] = weft::make_chan<int>(cap);
                        // Each producer sends a different number of values, so the
                        // channels close at different times.
                        weft::go(
                            [ch = cs[static_cast<std::size_t>(k)]](int first,
                                                                   int n) -> weft::task<> {
                                for (int i = 0; i < n; ++i)
                                    co_await ch.send(first + i);
                                ch.close();
                            },
                            k* per, per - k * (per / 4));
                    }
                    std::vector<weft::join_handle<std::vector<int>>> consumers;
                    for (int c = 0; c < 4; ++c)
                        consumers.push_back(
                            weft::go([cs]() mutable -> weft::task<std::vector<int>> {
                                std::vector<int> got;
                                while (cs[0] || cs[1] || cs[2]) {
                                    auto r = co_await weft::select(cs[0].recv(), cs[1].recv(),
                                                                   cs[2].recv());
                                    const auto i = r.index();
                                    auto v = std::visit([](auto& o) { return o; }, r);
                                    if (v)
                                        got.push_back(*v);
                                    else
                                        cs[i] = nullptr; // closed: disable this case
                                }
                                co_return got;
                            }));
                    std::vector<int> counts(static_cast<std::size_t>(chans * per), 0);
                    for (int k = 0; k < chans; ++k)
                        for (int i = per - k * (per / 4); i < per; ++i)
                            counts[static_cast<std::size_t>(k * per + i)] = 1; // never sent
                    for (auto& h : consumers)
                        for (int v : co_await h)
                            ++counts[static_cast<std::size_t>(v)];
                    co_return counts;
                });
            CHECK(each_exactly_once(counts));
        }
    }
}

TEST_CASE("select_from fan-in over many channels gets every value once")
{
    const int per = static_cast<int>(500 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        const auto counts =
            weft::run(weft::runtime_options{.workers = w}, [per]() -> weft::task<std::vector<int>> {
                constexpr int chans = 16;
                std::vector<weft::chan<int>> cs;
                for (int k = 0; k < chans; ++k) {
                    cs.push_back(weft::make_chan<int>(static_cast<std::size_t>(k % 3)));
                    weft::go(
                        [ch = cs.back(), per](int first) -> weft::task<> {
                            for (int i = 0; i < per; ++i)
                                co_await ch.send(first + i);
                            ch.close();
                        },
                        k* per);
                }
                std::vector<int> counts(static_cast<std::size_t>(chans * per), 0);
                int open = chans;
                while (open > 0) {
                    auto [i, v] = co_await weft::select_from(cs);
                    if (v) {
                        ++counts[static_cast<std::size_t>(*v)];
                    } else {
                        cs[i] = nullptr;
                        --open;
                    }
                }
                co_return counts;
            });
        CHECK(each_exactly_once(counts));
    }
}

TEST_CASE("selects mixing sends and receives with closes racing conserve values")
{
    const int rounds = static_cast<int>(20 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        int mismatches = 0;
        int unexpected = 0;
        for (int round = 0; round < rounds; ++round) {
            struct outcome {
                std::vector<int> sent;
                std::vector<int> received;
                int unexpected = 0;
            };
            constexpr int senders = 4;
            constexpr int limit = 100000;
            const auto o =
                weft::run(weft::runtime_options{.workers = w}, [round]() -> weft::task<outcome> {
                    auto a = weft::make_chan<int>(static_cast<std::size_t>(round % 2));
                    auto b = weft::make_chan<int>(static_cast<std::size_t>(round % 3));
                    auto quit = weft::make_chan<std::monostate>();
                    // Senders offer each value to a or b; whichever takes it is the
                    // only one that may deliver it. A close ends a sender: the
                    // select throws closed_channel when the closed case is chosen.
                    std::vector<weft::join_handle<std::vector<int>>> ss;
                    for (int s = 0; s < senders; ++s)
                        ss.push_back(weft::go(
                            [a, b, quit](int id) -> weft::task<std::vector<int>> {
                                std::vector<int> sent;
                                for (int i = 0; i < limit; ++i) {
                                    const int v = id * limit + i;
                                    try {
                                        auto r = co_await weft::select(a.send(v), b.send(v),
                                                                       quit.recv());
                                        if (r.index() == 2)
                                            co_return sent;
                                    } catch (const weft::closed_channel&) {
                                        co_return sent;
                                    }
                                    sent.push_back(v);
                                }
                                co_return sent;
                            },
                            s));
                    // Receivers drain both channels until both are closed.
                    std::vector<weft::join_handle<std::vector<int>>> rs;
                    for (int r = 0; r < 3; ++r)
                        rs.push_back(weft::go([a, b]() mutable -> weft::task<std::vector<int>> {
                            std::vector<int> got;
                            while (a || b) {
                                auto res = co_await weft::select(a.recv(), b.recv());
                                if (res.index() == 0) {
                                    if (auto v = std::get<0>(res))
                                        got.push_back(*v);
                                    else
                                        a = nullptr;
                                } else {
                                    if (auto v = std::get<1>(res))
                                        got.push_back(*v);
                                    else
                                        b = nullptr;
                                }
                            }
                            co_return got;
                        }));
                    for (int i = 0; i < 10 + round % 10; ++i)
                        co_await weft::this_task::yield();
                    // Close a first, then stop the senders, then close b.
                    a.close();
                    for (int i = 0; i < round % 5; ++i)
                        co_await weft::this_task::yield();
                    quit.close();
                    outcome out;
                    out.sent.assign(static_cast<std::size_t>(senders * limit), 0);
                    out.received.assign(static_cast<std::size_t>(senders * limit), 0);
                    for (auto& h : ss)
                        for (int v : co_await h)
                            ++out.sent[static_cast<std::size_t>(v)];
                    b.close(); // every sender has stopped: nobody sends on b any more
                    for (auto& h : rs)
                        for (int v : co_await h) {
                            if (v < 0 || v >= senders * limit)
                                ++out.unexpected;
                            else
                                ++out.received[static_cast<std::size_t>(v)];
                        }
                    co_return out;
                });
            for (std::size_t v = 0; v < o.sent.size(); ++v)
                mismatches += o.sent[v] != o.received[v] ? 1 : 0;
            unexpected += o.unexpected;
        }
        CHECK(mismatches == 0);
        CHECK(unexpected == 0);
    }
}

TEST_CASE("a select with default_case polling against busy channels conserves values")
{
    const int n = static_cast<int>(5000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        const auto counts =
            weft::run(weft::runtime_options{.workers = w}, [n]() -> weft::task<std::vector<int>> {
                auto ch = weft::make_chan<int>(2);
                auto producer = weft::go([ch, n]() -> weft::task<> {
                    for (int i = 0; i < n; ++i) {
                        for (;;) {
                            auto r = co_await weft::select(ch.send(i), weft::default_case);
                            if (r.index() == 0)
                                break;
                            co_await weft::this_task::yield();
                        }
                    }
                    ch.close();
                });
                std::vector<int> counts(static_cast<std::size_t>(n), 0);
                for (;;) {
                    auto r = co_await weft::select(ch.recv(), weft::default_case);
                    if (r.index() == 1) {
                        co_await weft::this_task::yield();
                        continue;
                    }
                    auto v = std::get<0>(r);
                    if (!v)
                        break;
                    ++counts[static_cast<std::size_t>(*v)];
                }
                co_await producer;
                co_return counts;
            });
        CHECK(each_exactly_once(counts));
    }
}

TEST_CASE("selects on both ends of shared unbuffered channels always pair up")
{
    const int per = static_cast<int>(1000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        const auto counts =
            weft::run(weft::runtime_options{.workers = w}, [per]() -> weft::task<std::vector<int>> {
                auto x = weft::make_chan<int>();
                auto y = weft::make_chan<int>();
                constexpr int pairs = 4;
                std::vector<weft::join_handle<>> senders;
                for (int s = 0; s < pairs; ++s)
                    senders.push_back(weft::go(
                        [x, y, per](int first) -> weft::task<> {
                            for (int i = 0; i < per; ++i)
                                (void)co_await weft::select(x.send(first + i), y.send(first + i));
                        },
                        s* per));
                std::vector<weft::join_handle<std::vector<int>>> receivers;
                for (int r = 0; r < pairs; ++r)
                    receivers.push_back(weft::go([x, y, per]() -> weft::task<std::vector<int>> {
                        std::vector<int> got;
                        for (int i = 0; i < per; ++i) {
                            auto res = co_await weft::select(x.recv(), y.recv());
                            got.push_back(std::visit([](auto& o) { return o.value_or(-1); }, res));
                        }
                        co_return got;
                    }));
                for (auto& h : senders)
                    co_await h;
                std::vector<int> counts(static_cast<std::size_t>(pairs * per), 0);
                for (auto& h : receivers)
                    for (int v : co_await h)
                        if (v >= 0)
                            ++counts[static_cast<std::size_t>(v)];
                co_return counts;
            });
        CHECK(each_exactly_once(counts));
    }
}
