// "Effective Concurrency in Go", chapter 1: cooperative scheduling, race
// conditions, deadlock, starvation and livelock.
//
// usage: ch1 EXAMPLE
#include "../seeds.hpp"

#include <atomic>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {

// On one worker, weft schedules like Go before 1.14: a task runs until it
// waits. Once the spinning task runs, nothing else does; the program hangs,
// with or without "hello" (here the newer task runs first: it prints).
weft::task<> cooperative()
{
    auto ch = weft::make_chan<bool>();
    weft::go([]() -> weft::task<> {
        for (std::atomic<long> spins = 0;;)
            spins.fetch_add(1, std::memory_order_relaxed);
        co_return;
    });
    weft::go([]() -> weft::task<> {
        std::printf("hello\n");
        co_return;
    });
    co_await ch.recv();
}

// Two withdrawals from one account: racy without the mutex (the balance may
// end below zero), correct with it (one of them fails).
struct account {
    weft::mutex mu;
    int balance;
};

weft::task<bool> withdraw(account* acct, int amt, bool locked)
{
    if (locked)
        co_await acct->mu.lock();
    bool ok = acct->balance >= amt;
    co_await weft::this_task::yield(); // widens the window of the race
    if (ok)
        acct->balance -= amt;
    if (locked)
        acct->mu.unlock();
    co_return ok;
}

template <bool locked>
weft::task<> withdrawals()
{
    account acct{{}, 10};
    auto w1 = weft::go(withdraw, &acct, 6, locked);
    auto w2 = weft::go(withdraw, &acct, 5, locked);
    int failed = !co_await w1 + !co_await w2;
    std::printf("balance %d, %d insufficient funds\n", acct.balance, failed);
}

// Transfers that lock the source account, then the destination: two
// opposite transfers deadlock. Locking in the order of the accounts' ids
// cannot.
struct bank_account {
    int id;
    int balance;
    weft::mutex mu;
};

weft::task<> transfer(bank_account* from, bank_account* to, int amount, bool ordered)
{
    auto* first = ordered && to->id < from->id ? to : from;
    auto* second = first == from ? to : from;
    auto lock_first = co_await first->mu.scoped_lock();
    co_await weft::sleep_for(10ms);
    auto lock_second = co_await second->mu.scoped_lock();
    from->balance -= amount;
    to->balance += amount;
}

template <bool ordered>
weft::task<> transfers()
{
    bank_account acct1{1, 10, {}}, acct2{2, 15, {}};
    weft::wait_group wg;
    wg.go(transfer, &acct1, &acct2, 5, ordered);
    wg.go(transfer, &acct2, &acct1, 10, ordered);
    co_await wg.wait();
    std::printf("acct1 %d, acct2 %d\n", acct1.balance, acct2.balance);
}

// Main waits for a value nobody sends: the runtime reports the deadlock.
weft::task<> deadlock()
{
    auto c = weft::make_chan<bool>();
    co_await c.recv();
}

// A greedy task holds the lock long, a polite one briefly: weft's mutex
// hands the lock to waiters in order, so the polite task is not starved.
weft::task<> starvation()
{
    weft::mutex mu;
    std::atomic<bool> stop = false;
    std::atomic<int> greedy = 0, polite = 0;
    weft::wait_group wg;
    wg.go([&]() -> weft::task<> {
        while (!stop) {
            auto lock = co_await mu.scoped_lock();
            co_await weft::sleep_for(3ms);
            greedy++;
        }
    });
    wg.go([&]() -> weft::task<> {
        while (!stop) {
            co_await weft::sleep_for(1ms);
            auto lock = co_await mu.scoped_lock();
            polite++;
        }
    });
    co_await weft::sleep_for(200ms);
    stop = true;
    co_await wg.wait();
    std::printf("the polite task got the lock %s\n",
                polite * 3 >= greedy ? "its share of the time" : "rarely");
}

// A producer that fails closes its channel anyway (a scope guard, as Go's
// `defer close(c)` first thing), so the consumer's loop ends.
weft::task<> producer(weft::send_chan<int> c)
{
    struct closer {
        weft::send_chan<int> c;
        ~closer() { c.close(); }
    } close_c{c};
    try {
        for (int i = 0;; i++) {
            if (i == 2)
                throw std::runtime_error("cannot produce value 2");
            co_await c.send(i);
        }
    } catch (const std::exception& e) {
        std::printf("Recovered %s\n", e.what());
    }
}

weft::task<> producer_failure()
{
    auto c = weft::make_chan<int>();
    weft::go(producer, c);
    while (auto v = co_await c.recv())
        std::printf("got %d\n", *v);
    std::printf("done\n");
}

// Two tasks take two locks in opposite orders with try_lock, backing off
// for a random time when the second is taken: without the random delay and
// the bound on retries they could livelock.
weft::task<> polite_worker(int id, weft::mutex* first, weft::mutex* second)
{
    for (int tries = 1; tries <= 100; tries++) {
        co_await first->lock();
        if (second->try_lock()) {
            std::printf("worker %d done after %s\n", id, tries == 1 ? "1 try" : "some tries");
            second->unlock();
            first->unlock();
            co_return;
        }
        first->unlock();
        co_await weft::sleep_for(seeds::rand_ms(5));
    }
    std::printf("worker %d gave up\n", id);
}

weft::task<> livelock()
{
    weft::mutex mutex1, mutex2;
    weft::wait_group wg;
    wg.go(polite_worker, 1, &mutex1, &mutex2);
    wg.go(polite_worker, 2, &mutex2, &mutex1);
    co_await wg.wait();
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"cooperative", cooperative, 1},
                        {"withdraw-racy", withdrawals<false>},
                        {"withdraw", withdrawals<true>},
                        {"transfer-deadlock", transfers<false>},
                        {"transfer-ordered", transfers<true>},
                        {"deadlock", deadlock},
                        {"starvation", starvation},
                        {"producer-failure", producer_failure},
                        {"livelock", livelock}});
}
