// What the ports of the seed books share: a program made of several small
// examples picked by name on the command line, and Go's math/rand helpers.
#pragma once

#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace seeds {

using namespace std::chrono_literals;

/// One example of a program: `program NAME` runs body as the main task.
struct example {
    std::string_view name;
    weft::task<> (*body)();
    unsigned workers = 0; // 0: as many as the machine has [GOMAXPROCS]
};

/// The command-line arguments after the example's name.
inline std::vector<std::string> args;

/// Runs the example named by argv[1]. Output is line-buffered, as Go's
/// unbuffered fmt.Println is in effect: a program stopped by a signal has
/// printed every line it finished.
inline int main(int argc, char** argv, std::initializer_list<example> examples)
{
    std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
    for (const auto& e : examples)
        if (argc >= 2 && e.name == argv[1]) {
            args.assign(argv + 2, argv + argc);
            weft::run(weft::runtime_options{.workers = e.workers}, e.body);
            return 0;
        }
    std::fprintf(stderr, "usage: %s EXAMPLE [ARGUMENTS]\nexamples:", argv[0]);
    for (const auto& e : examples)
        std::fprintf(stderr, " %.*s", static_cast<int>(e.name.size()), e.name.data());
    std::fputc('\n', stderr);
    return 2;
}

/// [rand.Intn(n)] a uniform int in [0, n); every thread has its own generator.
inline int rand_intn(int n)
{
    thread_local std::mt19937 gen{std::random_device{}()};
    return std::uniform_int_distribution<int>(0, n - 1)(gen);
}

/// A random duration of [0, n) milliseconds: Go's
/// time.Duration(rand.Intn(n)) * time.Millisecond.
inline std::chrono::milliseconds rand_ms(int n)
{
    return std::chrono::milliseconds(rand_intn(n));
}

/// [time.Duration.String] "1.398µs", "13.987416ms", "2.5s", "1m30s".
inline std::string go_duration(std::chrono::nanoseconds d)
{
    auto ns = d.count();
    std::string sign = ns < 0 ? "-" : "";
    ns = ns < 0 ? -ns : ns;
    // An integer part and up to `digits` decimals, trailing zeros dropped.
    auto fixed = [](long long v, long long unit, int digits) {
        std::string s = std::to_string(v / unit);
        auto frac = std::to_string(unit + v % unit).substr(1, digits);
        while (!frac.empty() && frac.back() == '0')
            frac.pop_back();
        return frac.empty() ? s : s + "." + frac;
    };
    if (ns == 0)
        return "0s";
    if (ns < 1'000)
        return sign + std::to_string(ns) + "ns";
    if (ns < 1'000'000)
        return sign + fixed(ns, 1'000, 3) + "\u00b5s";
    if (ns < 1'000'000'000)
        return sign + fixed(ns, 1'000'000, 6) + "ms";
    auto h = ns / 3'600'000'000'000, m = ns / 60'000'000'000 % 60;
    auto s = fixed(ns % 60'000'000'000, 1'000'000'000, 9) + "s";
    if (h)
        return sign + std::to_string(h) + "h" + std::to_string(m) + "m" + s;
    return sign + (m ? std::to_string(m) + "m" : "") + s;
}

/// [testing.Benchmark] Runs f (a task) b.N times, doubling N until the runs
/// take 100 ms, and prints "NAME  N  T ns/op".
template <class F>
weft::task<> benchmark(const char* name, F f)
{
    for (long n = 1;; n *= 2) {
        auto start = std::chrono::steady_clock::now();
        for (long i = 0; i < n; i++)
            co_await f();
        auto took = std::chrono::steady_clock::now() - start;
        if (took >= 100ms || n >= (1L << 30)) {
            std::printf("%s\t%ld\t%lld ns/op\n", name, n,
                        static_cast<long long>(std::chrono::nanoseconds(took).count() / n));
            co_return;
        }
    }
}

} // namespace seeds
