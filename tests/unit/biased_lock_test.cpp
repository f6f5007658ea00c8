// The channel lock's biasing: exclusion while the bias comes and goes.
#include <weft/detail/biased_lock.hpp>

#include "../../lib/sched/asym_fence.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

using weft::detail::biased_lock;

namespace {

bool biasing_available()
{
    weft::detail::setup_asymmetric_fence();
    return weft::detail::g_asym_fence.load();
}

/// xorshift: run lengths and pauses that differ from thread to thread.
struct rng {
    std::uint64_t s;
    std::uint64_t next()
    {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
};

} // namespace

TEST_CASE("a lock one thread takes over and over becomes biased to it, and gives way to others")
{
    biased_lock l;
    long count = 0; // guarded by l
    for (int i = 0; i < 1000; ++i) {
        l.lock();
        ++count;
        l.unlock();
    }
    if (biasing_available())
        CHECK(l.biased_to_this_thread());
    std::thread other([&] {
        l.lock(); // revokes the bias
        ++count;
        CHECK_FALSE(l.biased_to_this_thread());
        l.unlock();
    });
    other.join();
    CHECK_FALSE(l.biased_to_this_thread());
    l.lock();
    CHECK(count == 1001);
    l.unlock();
}

TEST_CASE("threads taking runs of a biased lock never overlap")
{
    // Runs of 1-200 acquisitions in a row let a lock become biased to one
    // thread and then be revoked by another. A lock revoked a few times
    // stays unbiased, so the threads go through a series of fresh locks,
    // at their own pace. Each critical section checks that it is alone.
    constexpr int k_threads = 4;
    constexpr int k_locks = 48;
    constexpr int k_runs = 24;
    struct guarded {
        biased_lock l;
        long count = 0; // guarded by l
        std::atomic<int> inside{0};
    };
    std::vector<std::unique_ptr<guarded>> gs;
    for (int i = 0; i < k_locks; ++i)
        gs.push_back(std::make_unique<guarded>());
    std::atomic<bool> overlap{false};
    std::atomic<long> expected[k_locks] = {};
    std::vector<std::thread> ts;
    for (int t = 0; t < k_threads; ++t) {
        ts.emplace_back([&, t] {
            rng r{0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(t + 1)};
            for (int k = 0; k < k_locks; ++k) {
                guarded& g = *gs[static_cast<std::size_t>(k)];
                long mine = 0;
                for (int run = 0; run < k_runs; ++run) {
                    const int n = 1 + static_cast<int>(r.next() % 200);
                    for (int i = 0; i < n; ++i) {
                        g.l.lock();
                        if (g.inside.fetch_add(1, std::memory_order_relaxed) != 0)
                            overlap = true;
                        ++g.count;
                        if (i % 8 == 0) // now and then a longer section, for a revoker to meet
                            for (int spin = 0; spin < 64; ++spin)
                                weft::detail::cpu_relax();
                        g.inside.fetch_sub(1, std::memory_order_relaxed);
                        g.l.unlock();
                    }
                    mine += n;
                    if (r.next() % 4 == 0)
                        std::this_thread::yield();
                }
                expected[k] += mine;
            }
        });
    }
    for (auto& th : ts)
        th.join();
    CHECK_FALSE(overlap.load());
    for (int k = 0; k < k_locks; ++k) {
        guarded& g = *gs[static_cast<std::size_t>(k)];
        g.l.lock();
        CHECK(g.count == expected[k].load());
        g.l.unlock();
    }
}

TEST_CASE("a revoker waits while the biased thread holds the lock inside another one")
{
    // One thread takes a and then b, and leaves b before a, as select
    // does with several channels; b is its own, so b stays biased to it
    // and b's unlock is where it answers revokers. Another thread takes a
    // in runs, so a's bias forms and is revoked over and over: a revoker
    // of a must not be answered at b's unlock while a is still held.
    biased_lock a;
    biased_lock b;
    long count_a = 0; // guarded by a
    long count_b = 0; // guarded by b
    std::atomic<int> inside_a{0};
    std::atomic<bool> overlap{false};
    constexpr int k_rounds = 50000;
    std::thread nested([&] {
        for (int i = 0; i < k_rounds; ++i) {
            a.lock();
            if (inside_a.fetch_add(1, std::memory_order_relaxed) != 0)
                overlap = true;
            for (int spin = 0; spin < 64; ++spin)
                weft::detail::cpu_relax(); // a revoker's request may come now
            b.lock();
            ++count_a;
            ++count_b;
            b.unlock();
            for (int spin = 0; spin < 64; ++spin)
                weft::detail::cpu_relax(); // still inside a
            inside_a.fetch_sub(1, std::memory_order_relaxed);
            a.unlock();
        }
    });
    std::thread other([&] {
        rng r{0x2545f4914f6cdd1dULL};
        for (int done = 0; done < k_rounds;) {
            const int n = 1 + static_cast<int>(r.next() % 8);
            for (int i = 0; i < n && done < k_rounds; ++i, ++done) {
                a.lock();
                if (inside_a.fetch_add(1, std::memory_order_relaxed) != 0)
                    overlap = true;
                ++count_a;
                inside_a.fetch_sub(1, std::memory_order_relaxed);
                a.unlock();
            }
            // Long enough for the nested thread to bias a again.
            for (int spin = 0; spin < 4000; ++spin)
                weft::detail::cpu_relax();
        }
    });
    nested.join();
    other.join();
    CHECK_FALSE(overlap.load());
    a.lock();
    CHECK(count_a == 2 * k_rounds);
    a.unlock();
    b.lock();
    CHECK(count_b == k_rounds);
    b.unlock();
}

TEST_CASE("revocations the biased thread answers bring the run that biases the lock back to 64")
{
    if (!biasing_available())
        return;
    biased_lock l;
    long count = 0; // guarded by l
    auto take = [&](int n) {
        for (int k = 0; k < n; ++k) {
            l.lock();
            ++count;
            l.unlock();
        }
    };
    // Three revocations by membarrier, each while the biased thread
    // sleeps and cannot answer: the run grows to 512.
    for (int i = 0; i < 3; ++i) {
        std::atomic<int> step{0};
        std::thread owner([&] {
            take(1024);
            l.lock();
            const bool biased = l.biased_to_this_thread();
            l.unlock();
            CHECK(biased);
            step.store(1);
            step.notify_all();
            step.wait(1); // asleep: revoked by membarrier
        });
        step.wait(0);
        take(1);
        step.store(2);
        step.notify_all();
        owner.join();
    }
    {
        std::thread owner([&] {
            take(70);
            l.lock();
            CHECK_FALSE(l.biased_to_this_thread()); // 64 takes are not enough now
            l.unlock();
        });
        owner.join();
    }
    // Now a thread takes the lock over and over and answers every
    // revocation within nanoseconds. It counts the takes it needs to get
    // the bias back after each one: 256, 128, then 64 again.
    std::atomic<bool> stop{false};
    std::atomic<long> shortest{LONG_MAX};
    std::thread owner([&] {
        long run = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            l.lock();
            ++count;
            const bool biased = l.biased_to_this_thread();
            l.unlock();
            if (!biased) {
                ++run;
            } else if (run != 0) {
                if (run < shortest.load(std::memory_order_relaxed))
                    shortest.store(run, std::memory_order_relaxed);
                run = 0;
            }
        }
    });
    // A loaded machine may preempt the owner and turn a revocation into a
    // membarrier (which doubles the run): allow for many tries.
    for (int i = 0; i < 2000 && shortest.load() > 64; ++i) {
        std::this_thread::sleep_for(std::chrono::microseconds(500));
        take(1);
    }
    stop = true;
    owner.join();
    CHECK(shortest.load() <= 64);
}

TEST_CASE("two threads handing a lock back and forth, each waiting for the other, keep exclusion through the taker's nap")
{
    // The lock goes from one thread to the other 100 times, and each take
    // finds it taken: the holder lets go only once the other is waiting
    // for it, and takes it again only after the other has had it. Every
    // 32 handoffs the taker leaves the lock for a nap before it takes it;
    // the exchange must go on, every take alone.
    constexpr int k_handoffs = 100;
    biased_lock l;
    int handoffs = 0; // guarded by l
    std::atomic<int> last{-1}; // who took the lock last; written under l
    std::atomic<int> inside{0};
    std::atomic<bool> overlap{false};
    std::atomic<bool> about_to_wait[2] = {};
    auto side = [&](int me) {
        const int other = 1 - me;
        for (;;) {
            about_to_wait[me].store(true);
            l.lock();
            about_to_wait[me].store(false);
            if (inside.fetch_add(1, std::memory_order_relaxed) != 0)
                overlap = true;
            if (last.load() != -1 && last.load() != me)
                ++handoffs;
            last.store(me);
            const bool done = handoffs >= k_handoffs;
            if (!done) {
                // Hold on until the other thread waits for the lock, and a
                // little longer, so that its take finds the lock taken.
                while (!about_to_wait[other].load())
                    weft::detail::cpu_relax();
                std::this_thread::sleep_for(std::chrono::microseconds(100));
            }
            inside.fetch_sub(1, std::memory_order_relaxed);
            l.unlock();
            if (done)
                return;
            while (last.load() == me)
                std::this_thread::yield(); // the other thread's turn
        }
    };
    std::thread t0([&] { side(0); });
    std::thread t1([&] { side(1); });
    t0.join();
    t1.join();
    CHECK_FALSE(overlap.load());
    l.lock();
    CHECK(handoffs == k_handoffs + 1); // the other thread's last take ends it too
    l.unlock();
}

TEST_CASE("a thread holds more biased locks at once than its record has slots")
{
    constexpr int k_locks = 7; // more than bias_record::k_slots
    std::vector<std::unique_ptr<biased_lock>> locks;
    for (int i = 0; i < k_locks; ++i)
        locks.push_back(std::make_unique<biased_lock>());
    long counts[k_locks] = {}; // counts[i] guarded by locks[i]
    auto take_all = [&](long add) {
        for (auto& l : locks)
            l->lock();
        for (auto& c : counts)
            c += add;
        for (auto& l : locks)
            l->unlock();
    };
    for (int i = 0; i < 500; ++i)
        take_all(1);
    std::thread other([&] {
        for (int i = 0; i < 500; ++i)
            take_all(1);
    });
    for (int i = 0; i < 500; ++i)
        take_all(1);
    other.join();
    for (long c : counts)
        CHECK(c == 1500);
}

TEST_CASE("a lock biased to a thread that ended is taken over safely")
{
    biased_lock l;
    long count = 0; // guarded by l
    auto run = [&](int n) {
        for (int i = 0; i < n; ++i) {
            l.lock();
            ++count;
            l.unlock();
        }
    };
    // Each thread biases the lock and ends; its record goes back to the
    // free list, and the next thread may get it, with the bias.
    for (int round = 0; round < 20; ++round) {
        std::thread t([&] { run(2000); });
        t.join();
    }
    std::thread a([&] { run(5000); });
    std::thread b([&] { run(5000); });
    run(5000);
    a.join();
    b.join();
    l.lock();
    CHECK(count == 20 * 2000 + 3 * 5000);
    l.unlock();
}
