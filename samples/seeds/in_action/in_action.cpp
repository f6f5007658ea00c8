// "Go in Action", chapter 6, listings 6.1 to 6.24: goroutines on one or two
// logical processors, a race and its fixes (atomics, a mutex), an atomic
// shutdown flag, and channels: tennis, a relay race, a pool of workers.
//
// usage: in_action LISTING      (6.1, 6.4, 6.7, 6.9, 6.13, 6.15, 6.16, 6.20, 6.22, 6.24)
#include "../seeds.hpp"

#include <atomic>
#include <string>

using namespace std::chrono_literals;

namespace {

// 6.1 and 6.7: two goroutines print the alphabet three times, on one or two
// workers (runtime_options::workers is GOMAXPROCS). With one worker a task
// runs until it waits, so the two alphabets do not interleave.
weft::task<> alphabets()
{
    weft::wait_group wg;
    std::printf("Start Goroutines\n");
    for (char first : {'a', 'A'})
        wg.go([first]() -> weft::task<> {
            for (int count = 0; count < 3; count++)
                for (char c = first; c < first + 26; c++)
                    std::printf("%c ", c);
            co_return;
        });
    std::printf("Waiting To Finish\n");
    co_await wg.wait();
    std::printf("\nTerminating Program\n");
}

// 6.4: the primes below 5000, twice, on one worker.
weft::task<> print_prime(std::string prefix)
{
    for (int outer = 2; outer < 5000; outer++) {
        bool prime = true;
        for (int inner = 2; inner < outer && prime; inner++)
            prime = outer % inner != 0;
        if (prime)
            std::printf("%s:%d\n", prefix.c_str(), outer);
    }
    std::printf("Completed %s\n", prefix.c_str());
    co_return;
}

weft::task<> primes()
{
    weft::wait_group wg;
    std::printf("Create Goroutines\n");
    wg.go(print_prime, "A");
    wg.go(print_prime, "B");
    std::printf("Waiting To Finish\n");
    co_await wg.wait();
    std::printf("Terminating Program\n");
}

// 6.9: a lost update. Both tasks run on the single worker, so this is a race
// between tasks, not a data race between threads: yield() hands over between
// the read and the write, and the result is always 2.
// 6.16: the same with a mutex held across the yield: always 4.
int counter;
weft::mutex mutex;

weft::task<> inc_counter(bool locked)
{
    for (int count = 0; count < 2; count++) {
        if (locked)
            co_await mutex.lock();
        int value = counter;
        co_await weft::this_task::yield();
        value++;
        counter = value;
        if (locked)
            mutex.unlock();
    }
}

template <bool locked>
weft::task<> race()
{
    weft::wait_group wg;
    wg.go(inc_counter, locked);
    wg.go(inc_counter, locked);
    co_await wg.wait();
    std::printf("Final Counter: %d\n", counter);
}

// 6.13: the same with an atomic add.
std::atomic<long> atomic_counter;

weft::task<> atomic_add()
{
    weft::wait_group wg;
    for (int id = 1; id <= 2; id++)
        wg.go([]() -> weft::task<> {
            for (int count = 0; count < 2; count++) {
                atomic_counter.fetch_add(1);
                co_await weft::this_task::yield();
            }
        });
    co_await wg.wait();
    std::printf("Final Counter: %ld\n", atomic_counter.load());
}

// 6.15: an atomic flag tells the workers to shut down.
std::atomic<long> shutdown;

weft::task<> shutdown_flag()
{
    weft::wait_group wg;
    for (std::string name : {"A", "B"})
        wg.go(
            [](std::string name) -> weft::task<> {
                for (;;) {
                    std::printf("Doing %s Work\n", name.c_str());
                    co_await weft::sleep_for(250ms);
                    if (shutdown.load() == 1) {
                        std::printf("Shutting %s Down\n", name.c_str());
                        break;
                    }
                }
            },
            name);
    co_await weft::sleep_for(1s);
    std::printf("Shutdown Now\n");
    shutdown.store(1);
    co_await wg.wait();
}

// 6.20: tennis over an unbuffered channel; a miss closes it.
weft::task<> player(std::string name, weft::chan<int> court)
{
    for (;;) {
        auto ball = co_await court.recv();
        if (!ball) {
            std::printf("Player %s Won\n", name.c_str());
            co_return;
        }
        if (seeds::rand_intn(100) % 13 == 0) {
            std::printf("Player %s Missed\n", name.c_str());
            court.close();
            co_return;
        }
        std::printf("Player %s Hit %d\n", name.c_str(), *ball);
        co_await court.send(*ball + 1);
    }
}

weft::task<> tennis()
{
    auto court = weft::make_chan<int>();
    weft::wait_group wg;
    wg.go(player, "Nadal", court);
    wg.go(player, "Djokovic", court);
    co_await court.send(1);
    co_await wg.wait();
}

// 6.22: a relay race; each runner brings the next one to the line.
weft::wait_group race_over;

weft::task<> runner(weft::chan<int> baton)
{
    int runner = *co_await baton.recv();
    std::printf("Runner %d Running With Baton\n", runner);
    int next = runner + 1;
    if (runner != 4) {
        std::printf("Runner %d To The Line\n", next);
        weft::go(::runner, baton);
    }
    co_await weft::sleep_for(100ms);
    if (runner == 4) {
        std::printf("Runner %d Finished, Race Over\n", runner);
        race_over.done();
        co_return;
    }
    std::printf("Runner %d Exchange With Runner %d\n", runner, next);
    co_await baton.send(next);
}

weft::task<> relay()
{
    auto baton = weft::make_chan<int>();
    race_over.add(1);
    weft::go(runner, baton);
    co_await baton.send(1);
    co_await race_over.wait();
}

// 6.24: four workers drain a buffered channel of ten tasks.
weft::task<> worker(weft::recv_chan<std::string> tasks, int worker)
{
    while (auto task = co_await tasks.recv()) {
        std::printf("Worker: %d : Started %s\n", worker, task->c_str());
        co_await weft::sleep_for(seeds::rand_ms(100));
        std::printf("Worker: %d : Completed %s\n", worker, task->c_str());
    }
    std::printf("Worker: %d : Shutting Down\n", worker);
}

weft::task<> pool()
{
    constexpr int number_goroutines = 4, task_load = 10;
    auto tasks = weft::make_chan<std::string>(task_load);
    weft::wait_group wg;
    for (int gr = 1; gr <= number_goroutines; gr++)
        wg.go(worker, tasks, gr);
    for (int post = 1; post <= task_load; post++)
        co_await tasks.send("Task : " + std::to_string(post));
    tasks.close();
    co_await wg.wait();
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"6.1", alphabets, 1},
                        {"6.4", primes, 1},
                        {"6.7", alphabets, 2},
                        {"6.9", race<false>, 1},
                        {"6.13", atomic_add},
                        {"6.15", shutdown_flag},
                        {"6.16", race<true>},
                        {"6.20", tennis},
                        {"6.22", relay},
                        {"6.24", pool}});
}
