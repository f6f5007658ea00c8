// Channel stress: many producers and consumers, closes racing sends.
// Iterations scale with WEFT_STRESS_SCALE (default 1).
#include <weft/chan.hpp>

#include "test_support.hpp"

#include <weft/errors.hpp>
#include <weft/runtime.hpp>
#include <weft/select.hpp>
#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <algorithm>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace {

struct mpmc_result {
    std::vector<int> received; // how often each value arrived
    std::int64_t total = 0;
};

/// producers send disjoint ranges of values; consumers record what they get
/// in their own vectors, merged once everyone is done.
mpmc_result producers_and_consumers(unsigned workers, std::size_t capacity, int producers,
                                    int consumers, int per_producer)
{
    const int n = producers * per_producer;
    return weft::run(weft::runtime_options{.workers = workers}, [=]() -> weft::task<mpmc_result> {
        auto ch = weft::make_chan<int>(capacity);
        std::vector<weft::join_handle<>> ps;
        for (int p = 0; p < producers; ++p)
            ps.push_back(weft::go(
                [ch, per_producer](int first) -> weft::task<> {
                    for (int i = 0; i < per_producer; ++i)
                        co_await ch.send(first + i);
                },
                p* per_producer));
        std::vector<weft::join_handle<std::vector<int>>> cs;
        for (int c = 0; c < consumers; ++c)
            cs.push_back(weft::go([ch]() -> weft::task<std::vector<int>> {
                std::vector<int> got;
                while (auto v = co_await ch.recv())
                    got.push_back(*v);
                co_return got;
            }));
        for (auto& h : ps)
            co_await h;
        ch.close();
        mpmc_result r;
        r.received.assign(static_cast<std::size_t>(n), 0);
        for (auto& h : cs) {
            for (int v : co_await h) {
                ++r.total;
                if (v >= 0 && v < n)
                    ++r.received[static_cast<std::size_t>(v)];
            }
        }
        co_return r;
    });
}

bool each_exactly_once(const std::vector<int>& counts)
{
    for (int c : counts)
        if (c != 1)
            return false;
    return true;
}

} // namespace

TEST_CASE(
    "many producers and consumers over an unbuffered channel receive every value exactly once")
{
    const int per = static_cast<int>(2000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        const auto r = producers_and_consumers(w, 0, 8, 8, per);
        CHECK(r.total == 8 * per);
        CHECK(each_exactly_once(r.received));
    }
}

TEST_CASE("many producers and consumers over buffered channels receive every value exactly once")
{
    const int per = static_cast<int>(2000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        for (std::size_t cap : {std::size_t{1}, std::size_t{16}, std::size_t{1024}}) {
            CAPTURE(w);
            CAPTURE(cap);
            const auto r = producers_and_consumers(w, cap, 8, 5, per);
            CHECK(r.total == 8 * per);
            CHECK(each_exactly_once(r.received));
        }
    }
}

TEST_CASE("a single consumer sees each producer's values in that producer's order")
{
    const int per = static_cast<int>(5000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        for (std::size_t cap : {std::size_t{0}, std::size_t{8}}) {
            CAPTURE(w);
            CAPTURE(cap);
            const bool ordered =
                weft::run(weft::runtime_options{.workers = w}, [=]() -> weft::task<bool> {
                    constexpr int producers = 4;
                    auto ch = weft::make_chan<std::pair<int, int>>(cap);
                    for (int p = 0; p < producers; ++p)
                        weft::go(
                            [ch, per](int id) -> weft::task<> {
                                for (int i = 0; i < per; ++i)
                                    co_await ch.send({id, i});
                            },
                            p);
                    std::vector<int> next(producers, 0);
                    bool ok = true;
                    for (int n = 0; n < producers * per; ++n) {
                        auto v = co_await ch.recv();
                        ok = ok && v && v->second == next[static_cast<std::size_t>(v->first)]++;
                    }
                    co_return ok;
                });
            CHECK(ordered);
        }
    }
}

constexpr int k_racing_senders = 6;

TEST_CASE("sends racing a close deliver exactly the values whose send returned")
{
    // Senders send until the close stops them, so every one of them races it;
    // the values whose send returned must be received exactly once, and no
    // other value may arrive.
    const int rounds = static_cast<int>(30 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        for (std::size_t cap : {std::size_t{0}, std::size_t{4}}) {
            CAPTURE(w);
            CAPTURE(cap);
            int mismatches = 0;
            int threw_total = 0;
            for (int round = 0; round < rounds; ++round) {
                struct outcome {
                    std::vector<int> sent;
                    std::vector<int> received;
                    int threw = 0;
                };
                auto o =
                    weft::run(weft::runtime_options{.workers = w}, [=]() -> weft::task<outcome> {
                        auto ch = weft::make_chan<int>(cap);
                        std::vector<weft::join_handle<std::vector<int>>> ss;
                        std::atomic<int> threw{0};
                        for (int s = 0; s < k_racing_senders; ++s)
                            ss.push_back(weft::go(
                                [ch, &threw](int id) -> weft::task<std::vector<int>> {
                                    std::vector<int> sent;
                                    for (int i = 0;; ++i) {
                                        const int v = i * k_racing_senders + id;
                                        try {
                                            co_await ch.send(v);
                                        } catch (const weft::closed_channel&) {
                                            threw.fetch_add(1);
                                            co_return sent;
                                        }
                                        sent.push_back(v);
                                    }
                                },
                                s));
                        std::vector<weft::join_handle<std::vector<int>>> rs;
                        for (int r = 0; r < 3; ++r)
                            rs.push_back(weft::go([ch]() -> weft::task<std::vector<int>> {
                                std::vector<int> got;
                                while (auto v = co_await ch.recv())
                                    got.push_back(*v);
                                co_return got;
                            }));
                        for (int i = 0; i < 20 + round % 20; ++i)
                            co_await weft::this_task::yield();
                        ch.close();
                        outcome out;
                        for (auto& h : ss)
                            for (int v : co_await h)
                                out.sent.push_back(v);
                        for (auto& h : rs)
                            for (int v : co_await h)
                                out.received.push_back(v);
                        out.threw = threw.load();
                        co_return out;
                    });
                std::sort(o.sent.begin(), o.sent.end());
                std::sort(o.received.begin(), o.received.end());
                mismatches += o.sent != o.received ? 1 : 0;
                threw_total += o.threw;
            }
            CHECK(mismatches == 0);
            // A send can only end by the close: each sender saw it throw.
            CHECK(threw_total == rounds * k_racing_senders);
        }
    }
}

TEST_CASE("ping-pong over two unbuffered channels keeps strict alternation")
{
    const int n = static_cast<int>(20000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        const bool ok = weft::run(weft::runtime_options{.workers = w}, [n]() -> weft::task<bool> {
            auto ping = weft::make_chan<int>();
            auto pong = weft::make_chan<int>();
            auto h = weft::go([ping, pong]() -> weft::task<> {
                while (auto v = co_await ping.recv())
                    co_await pong.send(*v + 1);
                pong.close();
            });
            bool good = true;
            for (int i = 0; i < n; ++i) {
                co_await ping.send(2 * i);
                auto v = co_await pong.recv();
                good = good && v == std::optional<int>(2 * i + 1);
            }
            ping.close();
            good = good && !(co_await pong.recv());
            co_await h;
            co_return good;
        });
        CHECK(ok);
    }
}

TEST_CASE("try_send and try_recv from many tasks conserve values")
{
    const int per = static_cast<int>(5000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        const auto counts =
            weft::run(weft::runtime_options{.workers = w}, [per]() -> weft::task<std::vector<int>> {
                constexpr int producers = 4;
                constexpr int consumers = 4;
                auto ch = weft::make_chan<int>(8);
                std::atomic<int> producers_left{producers};
                for (int p = 0; p < producers; ++p)
                    weft::go(
                        [ch, per, &producers_left](int first) -> weft::task<> {
                            for (int i = 0; i < per; ++i)
                                while (!ch.try_send(first + i))
                                    co_await weft::this_task::yield();
                            if (producers_left.fetch_sub(1) == 1)
                                ch.close();
                        },
                        p* per);
                std::vector<weft::join_handle<std::vector<int>>> cs;
                for (int c = 0; c < consumers; ++c)
                    cs.push_back(weft::go([ch]() -> weft::task<std::vector<int>> {
                        std::vector<int> got;
                        for (;;) {
                            if (auto v = ch.try_recv()) {
                                got.push_back(*v);
                                continue;
                            }
                            // Nothing now: block once to learn whether it is closed.
                            auto v = co_await ch.recv();
                            if (!v)
                                co_return got;
                            got.push_back(*v);
                        }
                    }));
                std::vector<int> counts(static_cast<std::size_t>(producers * per), 0);
                for (auto& h : cs)
                    for (int v : co_await h)
                        ++counts[static_cast<std::size_t>(v)];
                co_return counts;
            });
        CHECK(each_exactly_once(counts));
    }
}

TEST_CASE("a channel of empty values as a counting semaphore never admits more than its capacity")
{
    // Acquire by send (awaited, try_send, or a select case beside a channel
    // that never becomes ready), release by receive (awaited or try_recv).
    // Tasks that find the channel full wait in its queue and are handed the
    // slot by a receive.
    const int per = static_cast<int>(2000 * weft_test::stress_scale());
    for (unsigned w : weft_test::worker_counts) {
        CAPTURE(w);
        struct outcome {
            int most = 0;
            int entries = 0;
            std::size_t left = 1;
        };
        const auto r = weft::run(weft::runtime_options{.workers = w}, [per]() -> weft::task<outcome> {
            constexpr std::size_t slots = 3;
            constexpr int tasks = 8;
            auto sem = weft::make_chan<std::monostate>(slots);
            auto never = weft::make_chan<int>();
            std::atomic<int> inside{0};
            std::atomic<int> most{0};
            std::atomic<int> entries{0};
            std::vector<weft::join_handle<>> hs;
            for (int t = 0; t < tasks; ++t)
                hs.push_back(weft::go([&, t]() -> weft::task<> {
                    for (int i = 0; i < per; ++i) {
                        switch ((t + i) % 3) {
                        case 0:
                            co_await sem.send(std::monostate{});
                            break;
                        case 1:
                            while (!sem.try_send(std::monostate{}))
                                co_await weft::this_task::yield();
                            break;
                        default:
                            co_await weft::select(sem.send(std::monostate{}), never.recv());
                            break;
                        }
                        const int now = inside.fetch_add(1) + 1;
                        int seen = most.load();
                        while (now > seen && !most.compare_exchange_weak(seen, now)) {
                        }
                        entries.fetch_add(1);
                        if (i % 4 == 0)
                            co_await weft::this_task::yield();
                        inside.fetch_sub(1);
                        if ((t + i) % 2 == 0) {
                            static_cast<void>(co_await sem.recv());
                        } else {
                            while (!sem.try_recv())
                                co_await weft::this_task::yield();
                        }
                    }
                }));
            for (auto& h : hs)
                co_await h;
            co_return outcome{most.load(), entries.load(), sem.size()};
        });
        CHECK(r.most >= 1);
        CHECK(r.most <= 3);
        CHECK(r.entries == 8 * per);
        CHECK(r.left == 0);
    }
}
