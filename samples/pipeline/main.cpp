// A pipeline of tasks joined by channels, in the shape of Go's pipelines:
//
//   generate ──jobs──► worker ×N ──primes───► collect (the main task)
//                                └─progress─►
//   quit: closed by the collector to stop every stage early
//
// The generator sends the numbers 2 .. LIMIT-1; a pool of workers checks each
// one for primality; the collector selects over the two result channels (a
// fan-in) and reports progress. A first run checks every number and compares
// the count with a sequential sieve. A second run stops after the first 1000
// primes it hears of: the collector closes `quit` and every stage, wherever it
// is blocked, sees it and returns.
//
// usage: pipeline [LIMIT [WORKERS]]     defaults: 200000 4

#include <weft/weft.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace {

using number = std::uint32_t;
using quit_chan = weft::recv_chan<std::monostate>;

/// How many numbers one worker checked since its last report.
struct batch {
    unsigned worker;
    number checked;
};

constexpr number batch_size = 500;

/// Trial division: a little real work per number, on purpose.
bool is_prime(number n)
{
    if (n < 2)
        return false;
    for (std::uint64_t d = 2; d * d <= n; ++d)
        if (n % d == 0)
            return false;
    return true;
}

/// Stage 1: feeds 2 .. limit-1 to the workers. Returns how many it sent.
weft::task<number> generate(number limit, weft::send_chan<number> jobs, quit_chan quit)
{
    number sent = 0;
    for (number n = 2; n < limit; ++n, ++sent) {
        // Blocks until a worker has room for n or the collector quits.
        auto r = co_await weft::select(jobs.send(n), quit.recv());
        if (r.index() == 1)
            break;
    }
    jobs.close(); // the workers drain what is buffered, then their loops end
    co_return sent;
}

/// Stage 2, one of the pool: checks numbers until jobs is closed and drained,
/// or until quit is closed while it waits to hand over a result.
weft::task<> work(unsigned id, weft::recv_chan<number> jobs, weft::send_chan<number> primes,
                  weft::send_chan<batch> progress, quit_chan quit)
{
    number checked = 0;
    while (auto n = co_await jobs.recv()) {
        if (is_prime(*n)) {
            auto r = co_await weft::select(primes.send(*n), quit.recv());
            if (r.index() == 1)
                co_return;
        }
        if (++checked == batch_size) {
            auto r = co_await weft::select(progress.send(batch{id, checked}), quit.recv());
            if (r.index() == 1)
                co_return;
            checked = 0;
        }
    }
    if (checked > 0)
        co_await weft::select(progress.send(batch{id, checked}), quit.recv());
}

/// Waits for the whole pool, then closes the result channels: the
/// collector's loop ends only after every value sent has been received.
weft::task<> close_when_done(std::vector<weft::join_handle<>> pool, weft::send_chan<number> primes,
                             weft::send_chan<batch> progress)
{
    for (auto& worker : pool)
        co_await worker;
    primes.close();
    progress.close();
}

struct outcome {
    number primes = 0;
    number largest = 0;
    number generated = 0;
    std::vector<number> share; // numbers checked, per worker
};

/// Runs the pipeline over 2 .. limit-1; with stop_after > 0 it quits once it
/// has heard of that many primes.
weft::task<outcome> run_pipeline(number limit, unsigned workers, number stop_after)
{
    auto jobs = weft::make_chan<number>(64);
    auto primes = weft::make_chan<number>(64);
    auto progress = weft::make_chan<batch>(16);
    auto quit = weft::make_chan<std::monostate>();

    auto generator = weft::go(generate, limit, jobs, quit);
    std::vector<weft::join_handle<>> pool;
    for (unsigned id = 0; id < workers; ++id)
        pool.push_back(weft::go(work, id, jobs, primes, progress, quit));
    auto closer = weft::go(close_when_done, std::move(pool), primes, progress);

    outcome out;
    out.share.assign(workers, 0);
    const number total = limit - 2;
    number checked = 0;
    unsigned quarter = 1;
    // A closed channel is ready at once, forever; setting the local handle to
    // nil takes its case out of the select, as in Go.
    weft::chan<number> primes_in = primes;
    weft::chan<batch> progress_in = progress;
    while (primes_in || progress_in) {
        auto r = co_await weft::select(primes_in.recv(), progress_in.recv());
        if (r.index() == 0) {
            auto p = std::get<0>(r);
            if (!p) {
                primes_in = nullptr;
                continue;
            }
            ++out.primes;
            out.largest = std::max(out.largest, *p);
            if (out.primes == stop_after) {
                quit.close(); // every stage blocked on a send or on jobs gives up
                break;
            }
        } else {
            auto b = std::get<1>(r);
            if (!b) {
                progress_in = nullptr;
                continue;
            }
            out.share[b->worker] += b->checked;
            checked += b->checked;
            for (; quarter <= 4 && std::uint64_t{checked} * 4 >= std::uint64_t{total} * quarter;
                 ++quarter)
                std::printf("  %3u%% checked, %u primes so far\n", quarter * 25, out.primes);
        }
    }
    co_await closer; // every worker has returned
    out.generated = co_await generator;
    co_return out;
}

/// The sequential answer to compare with: (count, largest) of primes < limit.
std::pair<number, number> sieve(number limit)
{
    std::vector<bool> composite(limit, false);
    number count = 0, largest = 0;
    for (number n = 2; n < limit; ++n) {
        if (composite[n])
            continue;
        ++count;
        largest = n;
        for (std::uint64_t m = std::uint64_t{n} * n; m < limit; m += n)
            composite[m] = true;
    }
    return {count, largest};
}

weft::task<int> pipeline_main(number limit, unsigned workers)
{
    std::printf("weft pipeline: 1 generator -> %u workers -> 1 collector, on %u threads\n", workers,
                weft::max_procs());

    std::printf("run 1: find every prime below %u\n", limit);
    const auto all = co_await run_pipeline(limit, workers, 0);
    const auto [count, largest] = sieve(limit);
    const bool agree = all.primes == count && all.largest == largest;
    std::printf("found %u primes below %u, the largest %u: %s\n", all.primes, limit, all.largest,
                agree ? "a sequential sieve agrees" : "MISMATCH with a sequential sieve");
    std::string share;
    for (unsigned id = 0; id < workers; ++id)
        share += " w" + std::to_string(id) + "=" + std::to_string(all.share[id]);
    std::printf("numbers checked per worker:%s\n", share.c_str());

    const number stop_after = std::min<number>(1000, count / 2);
    std::printf("run 2: stop as soon as %u primes are found\n", stop_after);
    const auto some = co_await run_pipeline(limit, workers, stop_after);
    std::printf("stopped after %u primes: the generator sent %u of %u numbers, "
                "and every stage has returned\n",
                some.primes, some.generated, limit - 2);

    co_return agree ? 0 : 1;
}

bool parse(const char* text, unsigned long min, unsigned long max, unsigned long& out)
{
    char* end = nullptr;
    out = std::strtoul(text, &end, 10);
    return *text != '\0' && *end == '\0' && out >= min && out <= max;
}

} // namespace

int main(int argc, char** argv)
{
    unsigned long limit = 200000, workers = 4;
    if (argc > 3 || (argc > 1 && !parse(argv[1], 100, 50'000'000, limit)) ||
        (argc > 2 && !parse(argv[2], 1, 256, workers))) {
        std::fprintf(stderr, "usage: pipeline [LIMIT [WORKERS]]   (100 <= LIMIT <= 5e7, "
                             "1 <= WORKERS <= 256)\n");
        return 2;
    }
    return weft::run(pipeline_main, static_cast<number>(limit), static_cast<unsigned>(workers));
}
