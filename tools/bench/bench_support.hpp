// Shared by weft's benchmark programs and their Asio peers: the command
// line, the choice of iteration count, resident-set readings and the output
// format. Header-only and free of weft and Asio, so both sides measure the
// same way.
//
// Command line (the Go peer, go/main.go, accepts the same):
//   prog [-benchtime 0.5s|10000x] [-procs N] [-tasks N] [-tickertime 10s] [-list] name...
// Every name prints one line on stdout, "name value": nanoseconds per
// operation, or bytes per parked task for "memory". Progress goes to stderr.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

/// How long to measure: a target duration, or a fixed iteration count
/// (Go's -benchtime "0.5s" and "1000x").
struct bench_time {
    std::chrono::nanoseconds duration{500'000'000};
    std::int64_t iterations = 0; // > 0: run exactly this many
};

inline bench_time parse_bench_time(std::string_view text)
{
    bench_time t;
    if (text.empty())
        throw std::invalid_argument("empty -benchtime");
    const std::string s(text);
    if (s.back() == 'x') {
        t.iterations = std::stoll(s.substr(0, s.size() - 1));
        if (t.iterations <= 0)
            throw std::invalid_argument("-benchtime count must be positive");
        return t;
    }
    std::size_t used = 0;
    const double value = std::stod(s, &used);
    const std::string unit = s.substr(used);
    double scale = 1e9;
    if (unit == "ms")
        scale = 1e6;
    else if (unit == "us")
        scale = 1e3;
    else if (unit == "ns")
        scale = 1;
    else if (unit != "s" && !unit.empty())
        throw std::invalid_argument("bad -benchtime unit: " + unit);
    t.duration = std::chrono::nanoseconds(static_cast<std::int64_t>(value * scale));
    return t;
}

struct options {
    bench_time time;
    unsigned procs = 0;             // 0: the program's default (weft: WEFT_MAXPROCS)
    std::int64_t tasks = 1'000'000; // parked tasks for "memory"
    std::chrono::nanoseconds ticker_time = std::chrono::seconds(10); // TickerP50/P99
    bool list = false;
    std::vector<std::string> names;
};

inline options parse_options(int argc, char** argv)
{
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg.size() > 2 && arg.substr(0, 2) == "--")
            arg.remove_prefix(1);
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc)
                throw std::invalid_argument(std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (arg == "-benchtime")
            o.time = parse_bench_time(value());
        else if (arg == "-procs")
            o.procs = static_cast<unsigned>(std::stoul(std::string(value())));
        else if (arg == "-tasks")
            o.tasks = std::stoll(std::string(value()));
        else if (arg == "-tickertime")
            o.ticker_time = parse_bench_time(value()).duration;
        else if (arg == "-list")
            o.list = true;
        else if (!arg.empty() && arg[0] == '-')
            throw std::invalid_argument("unknown option " + std::string(arg));
        else
            o.names.emplace_back(arg);
    }
    return o;
}

/// Chooses iteration counts the way Go's testing package does, so that the
/// C++ numbers mean what `go test -bench` numbers mean: one probing run of
/// a single iteration, then runs predicted from the last one (1.2x the
/// estimate, at most 100x growth, at least one more) until a run lasts the
/// target duration. With a fixed count, the probe is followed by one run of
/// that count. Usable from a coroutine:
///
///     for (auto n = p.next(); n != 0; n = p.next()) { time body(n); p.record(n, t); }
class iteration_planner {
public:
    explicit iteration_planner(bench_time t) : m_time(t) {}

    /// The iteration count of the next run, or 0 when measuring is over.
    std::int64_t next() const
    {
        if (m_n == 0)
            return 1;
        if (m_time.iterations > 0)
            return m_n < m_time.iterations ? m_time.iterations : 0;
        constexpr std::int64_t limit = 1'000'000'000;
        if (m_elapsed >= m_time.duration || m_n >= limit)
            return 0;
        const std::int64_t prev_ns = std::max<std::int64_t>(m_elapsed.count(), 1);
        // Multiply before dividing: for fast bodies n is close to the elapsed
        // nanoseconds, and dividing first would lose an order of magnitude.
        auto n = static_cast<std::int64_t>(static_cast<double>(m_time.duration.count()) *
                                           static_cast<double>(m_n) / static_cast<double>(prev_ns));
        n += n / 5;
        n = std::min(n, 100 * m_n);
        n = std::max(n, m_n + 1);
        return std::min(n, limit);
    }

    void record(std::int64_t n, std::chrono::nanoseconds elapsed)
    {
        m_n = n;
        m_elapsed = elapsed;
    }

    std::int64_t iterations() const { return m_n; }
    std::chrono::nanoseconds elapsed() const { return m_elapsed; }
    double ns_per_op() const
    {
        return m_n == 0 ? 0.0 : static_cast<double>(m_elapsed.count()) / static_cast<double>(m_n);
    }

private:
    bench_time m_time;
    std::int64_t m_n = 0;
    std::chrono::nanoseconds m_elapsed{0};
};

/// b.RunParallel's work sharing (testing.PB): the parallel bodies take the
/// run's n iterations from one shared counter, a grain at a time, so that a
/// body that runs faster does more of them, as in Go. The grain is Go's:
/// the previous run's iterations in 100 us, at least 1 and at most 10000
/// (1 for the first run); plan_parallel_grain sets it before each run.
class parallel_work {
public:
    explicit parallel_work(std::int64_t n) : m_total(static_cast<std::uint64_t>(n)), m_grain(grain()) {}

    /// One body's view, as a testing.PB: next() is true while iterations
    /// are left for it.
    class body {
    public:
        explicit body(parallel_work& w) : m_work(&w) {}
        bool next()
        {
            if (m_cache == 0) {
                const std::uint64_t g = m_work->m_grain;
                const std::uint64_t end = m_work->m_next.fetch_add(g, std::memory_order_relaxed) + g;
                if (end <= m_work->m_total)
                    m_cache = g;
                else if (end < m_work->m_total + g)
                    m_cache = m_work->m_total + g - end;
                else
                    return false;
            }
            --m_cache;
            return true;
        }

    private:
        parallel_work* m_work;
        std::uint64_t m_cache = 0;
    };

    static std::uint64_t& grain()
    {
        static std::uint64_t g = 1;
        return g;
    }

private:
    std::atomic<std::uint64_t> m_next{0};
    std::uint64_t m_total;
    std::uint64_t m_grain;
};

/// Sets the grain of the next run's parallel_work from the planner's last
/// run (Go's RunParallel: 1e5 * previousN / previousDuration).
inline void plan_parallel_grain(const iteration_planner& p)
{
    std::uint64_t g = 1;
    if (p.iterations() > 0 && p.elapsed().count() > 0)
        g = static_cast<std::uint64_t>(1e5 * static_cast<double>(p.iterations()) /
                                       static_cast<double>(p.elapsed().count()));
    parallel_work::grain() = std::clamp<std::uint64_t>(g, 1, 10000);
}

/// Resident set size from /proc/self/statm.
inline std::int64_t resident_bytes()
{
    std::ifstream statm("/proc/self/statm");
    std::int64_t size = 0;
    std::int64_t resident = 0;
    if (!(statm >> size >> resident))
        throw std::runtime_error("cannot read /proc/self/statm");
    return resident * static_cast<std::int64_t>(::sysconf(_SC_PAGESIZE));
}

inline void report_timing(std::string_view name, const iteration_planner& p)
{
    std::fprintf(stderr, "%.*s: N=%lld in %.3f ms\n", static_cast<int>(name.size()), name.data(),
                 static_cast<long long>(p.iterations()),
                 static_cast<double>(p.elapsed().count()) / 1e6);
    std::printf("%.*s %.2f\n", static_cast<int>(name.size()), name.data(), p.ns_per_op());
    std::fflush(stdout);
}

inline void report_value(std::string_view name, double value)
{
    std::printf("%.*s %.2f\n", static_cast<int>(name.size()), name.data(), value);
    std::fflush(stdout);
}

inline void report_memory(double bytes_per_task)
{
    std::printf("memory %.1f\n", bytes_per_task);
    std::fflush(stdout);
}

} // namespace bench
