// "Effective Concurrency in Go", chapter 4: producers and consumers with a
// two-phase shutdown, the dining philosophers four ways, and rate limiters.
//
// usage: ch4 EXAMPLE
//
// Time runs ten times faster than in the book: random sleeps of up to a
// second are up to 100 ms, and the producers run for one second, not ten.
#include "../seeds.hpp"

#include <algorithm>
#include <array>
#include <memory>

using namespace std::chrono_literals;
using seeds::rand_ms;

namespace {

// Producers send until done is closed; consumers range over the data.
weft::task<> producer(int index, weft::recv_chan<std::monostate> done, weft::send_chan<int> output)
{
    for (;;) {
        int value = seeds::rand_intn(1'000'000'000);
        co_await weft::sleep_for(rand_ms(100));
        auto r = co_await weft::select(output.send(value), done);
        if (r.index() == 1)
            co_return;
        std::printf("Producer %d sent %d\n", index, value);
    }
}

weft::task<> consumer(int index, weft::recv_chan<int> input)
{
    while (auto value = co_await input.recv())
        std::printf("Consumer %d received %d\n", index, *value);
}

weft::task<> producer_consumer()
{
    auto done_ch = weft::make_chan<std::monostate>();
    auto data_ch = weft::make_chan<int>();
    weft::wait_group producers, consumers;
    for (int i = 0; i < 10; i++)
        producers.go(producer, i, done_ch, data_ch);
    for (int i = 0; i < 10; i++)
        consumers.go(consumer, i, data_ch);
    co_await weft::sleep_for(1s);
    done_ch.close(); // 1. stop the producers
    co_await producers.wait();
    data_ch.close(); // 2. then the consumers, once they drained the data
    co_await consumers.wait();
}

// The philosophers think and eat until main has waited long enough.
constexpr auto dinner = 500ms;

// Each takes its first fork, then its second. With the forks of philosopher
// 0 as (4, 0), every one holds a first fork another needs second: this can
// deadlock. ordered() gives philosopher 0 the forks (0, 4): no cycle.
weft::task<> philosopher(int index, weft::mutex* first_fork, weft::mutex* second_fork)
{
    for (;;) {
        std::printf("Philosopher %d is thinking\n", index);
        co_await weft::sleep_for(rand_ms(100));
        co_await first_fork->lock();
        co_await second_fork->lock();
        std::printf("Philosopher %d is eating\n", index);
        co_await weft::sleep_for(rand_ms(100));
        second_fork->unlock();
        first_fork->unlock();
    }
}

template <bool ordered>
weft::task<> mutex_philosophers()
{
    std::array<weft::mutex, 5> forks;
    if (ordered)
        weft::go(philosopher, 0, &forks[0], &forks[4]);
    else
        weft::go(philosopher, 0, &forks[4], &forks[0]);
    for (int i = 1; i < 5; i++)
        weft::go(philosopher, i, &forks[i - 1], &forks[i]);
    co_await weft::sleep_for(dinner);
}

// try_lock: put the left fork back if the right one is taken. No deadlock,
// but busy and prone to starvation.
weft::task<> trying_philosopher(int index, weft::mutex* left_fork, weft::mutex* right_fork)
{
    for (;;) {
        std::printf("Philosopher %d is thinking\n", index);
        co_await weft::sleep_for(rand_ms(100));
        co_await left_fork->lock();
        if (right_fork->try_lock()) {
            std::printf("Philosopher %d is eating\n", index);
            co_await weft::sleep_for(rand_ms(100));
            right_fork->unlock();
        }
        left_fork->unlock();
    }
}

weft::task<> try_lock_philosophers()
{
    std::array<weft::mutex, 5> forks;
    weft::go(trying_philosopher, 0, &forks[4], &forks[0]);
    for (int i = 1; i < 5; i++)
        weft::go(trying_philosopher, i, &forks[i - 1], &forks[i]);
    co_await weft::sleep_for(dinner);
}

// Forks as channels holding one token: wait for the left fork, take the
// right one only if it is there.
weft::task<> channel_philosopher(int index, weft::chan<bool> left_fork, weft::chan<bool> right_fork)
{
    for (;;) {
        std::printf("Philosopher %d is thinking\n", index);
        co_await weft::sleep_for(rand_ms(100));
        co_await left_fork.recv();
        if (auto r = co_await weft::select(right_fork, weft::default_case); r.index() == 0) {
            std::printf("Philosopher %d is eating\n", index);
            co_await weft::sleep_for(rand_ms(100));
            co_await right_fork.send(true);
        }
        co_await left_fork.send(true);
    }
}

weft::task<> channel_philosophers()
{
    std::array<weft::chan<bool>, 5> forks;
    for (auto& fork : forks) {
        fork = weft::make_chan<bool>(1);
        co_await fork.send(true);
    }
    weft::go(channel_philosopher, 0, forks[4], forks[0]);
    for (int i = 1; i < 5; i++)
        weft::go(channel_philosopher, i, forks[i - 1], forks[i]);
    co_await weft::sleep_for(dinner);
}

// Rate limiters: a token bucket of `limit` tokens refilled at `rate` per
// second. The book's two, behind one wait(), and weft's own.
class channel_rate {
public:
    channel_rate(double rate, int limit)
        : m_bucket(weft::make_chan<std::monostate>(limit)),
          m_ticker(std::chrono::duration_cast<weft::clock::duration>(1s / rate))
    {
        for (int i = 0; i < limit; i++)
            m_bucket.try_send({});
        m_refill = weft::go(
            [](weft::chan<std::monostate> bucket, weft::recv_chan<weft::clock::time_point> tick,
               weft::recv_chan<std::monostate> done) -> weft::task<> {
                for (;;) {
                    auto r = co_await weft::select(done, tick);
                    if (r.index() == 0)
                        co_return;
                    bucket.try_send({}); // a full bucket drops the token
                }
            },
            m_bucket, m_ticker.channel(), m_done);
    }

    auto wait() { return m_bucket.recv(); }

    weft::task<> close()
    {
        m_done.close();
        m_ticker.stop();
        co_await m_refill;
    }

private:
    weft::chan<std::monostate> m_bucket;
    weft::ticker m_ticker;
    weft::chan<std::monostate> m_done = weft::make_chan<std::monostate>();
    weft::join_handle<> m_refill;
};

// The lazy limiter: no goroutine; tokens are counted from the time elapsed.
// It sleeps holding its mutex, so waiters queue up behind it.
class limiter {
public:
    limiter(double rate, int limit)
        : m_period(std::chrono::duration_cast<weft::clock::duration>(1s / rate)),
          m_bucket_size(limit), m_tokens(limit)
    {}

    weft::task<> wait()
    {
        auto lock = co_await m_mu.scoped_lock();
        if (m_tokens > 0) {
            m_tokens--;
            co_return;
        }
        auto n = (weft::clock::now() - m_last_token) / m_period;
        if (n > 0) {
            m_tokens = static_cast<int>(std::min<long>(n, m_bucket_size));
            m_last_token += n * m_period;
            m_tokens--;
            co_return;
        }
        auto next = m_last_token + m_period;
        co_await weft::sleep_until(next);
        m_last_token = next;
    }

    weft::task<> close() { co_return; }

private:
    weft::mutex m_mu;
    weft::clock::duration m_period;
    int m_bucket_size;
    int m_tokens;
    weft::clock::time_point m_last_token = weft::clock::now();
};

struct weft_rate : weft::rate_limiter {
    using weft::rate_limiter::rate_limiter;
    weft::task<> close() { co_return; }
};

// 25 requests as fast as the limiter lets them through: 10 at once, then 50
// a second (the book: 5 a second, and requests at random times).
template <class Limiter>
weft::task<> rate_limited()
{
    Limiter limiter(50, 10);
    auto start = weft::clock::now();
    for (int i = 0; i < 25; i++) {
        co_await limiter.wait();
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(weft::clock::now() - start);
        std::printf("Request: %lld ms\n", static_cast<long long>(ms.count()));
    }
    co_await limiter.close();
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"producer-consumer", producer_consumer},
                        {"philosophers-mutex", mutex_philosophers<false>},
                        {"philosophers-ordered", mutex_philosophers<true>},
                        {"philosophers-try-lock", try_lock_philosophers},
                        {"philosophers-channel", channel_philosophers},
                        {"channel-rate", rate_limited<channel_rate>},
                        {"limiter", rate_limited<limiter>},
                        {"rate-limiter", rate_limited<weft_rate>}});
}
