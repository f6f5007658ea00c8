// What the ports of the seed books share: a program made of several small
// examples picked by name on the command line, and Go's math/rand helpers.
#pragma once

#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <random>
#include <string_view>

namespace seeds {

using namespace std::chrono_literals;

/// One example of a program: `program NAME` runs body as the main task.
struct example {
    std::string_view name;
    weft::task<> (*body)();
    unsigned workers = 0; // 0: as many as the machine has [GOMAXPROCS]
};

/// Runs the example named by argv[1]. Output is line-buffered, as Go's
/// unbuffered fmt.Println is in effect: a program stopped by a signal has
/// printed every line it finished.
inline int main(int argc, char** argv, std::initializer_list<example> examples)
{
    std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
    for (const auto& e : examples)
        if (argc == 2 && e.name == argv[1]) {
            weft::run(weft::runtime_options{.workers = e.workers}, e.body);
            return 0;
        }
    std::fprintf(stderr, "usage: %s EXAMPLE\nexamples:", argv[0]);
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
inline std::chrono::milliseconds rand_ms(int n) { return std::chrono::milliseconds(rand_intn(n)); }

} // namespace seeds
