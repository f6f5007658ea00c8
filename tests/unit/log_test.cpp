// What the runtime reports to the spdlog logger "weft": the reactor it
// chose, once per process. (Unhandled exceptions: fatal_test; accept and
// handler errors: http_test.)
#include <weft/runtime.hpp>

#include "log_capture.hpp"
#include "test_support.hpp"

#include <weft/task.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int occurrences(const std::string& hay, const std::string& needle)
{
    int n = 0;
    for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1))
        ++n;
    return n;
}

} // namespace

// Must be the first runtime of the process: the choice is made once.
TEST_CASE("the reactor the runtime chose is logged once")
{
    weft::test::log_capture log;
    for (int i = 0; i < 2; i++)
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<> { co_return; });
    const std::string text = log.text();
    const char* env = std::getenv("WEFT_REACTOR");
    if (env && std::strcmp(env, "epoll") == 0) {
        CHECK(occurrences(text, "info WEFT_REACTOR=epoll: using the epoll reactor\n") == 1);
    } else {
        // io_uring, or epoll when this kernel or sandbox refuses io_uring.
        CHECK(occurrences(text, "info using the io_uring reactor\n") +
                  occurrences(text, "): using the epoll reactor\n") ==
              1);
    }
}

TEST_CASE("without a \"weft\" logger the library logs nothing and needs none")
{
    weft::run([]() -> weft::task<> { co_return; });
    CHECK(spdlog::get("weft") == nullptr);
}
