// The umbrella header alone is enough for a small program.
#include <weft/weft.hpp>

#include <doctest/doctest.h>

#include <optional>
#include <string>

TEST_CASE("the umbrella header provides tasks, channels, select and sync together")
{
    const std::string out =
        weft::run(weft::runtime_options{.workers = 2}, []() -> weft::task<std::string> {
            auto words = weft::make_chan<std::string>(4);
            weft::mutex mu;
            weft::wait_group wg;
            std::string joined; // guarded by mu
            wg.add(1);
            weft::go([&]() -> weft::task<> {
                while (auto w = co_await words.recv()) {
                    auto guard = co_await mu.scoped_lock();
                    joined += *w;
                }
                wg.done();
            });
            for (const char* w : {"go", "-", "style"}) {
                auto r = co_await weft::select(words.send(w));
                (void)r;
            }
            words.close();
            co_await wg.wait();
            co_await mu.lock();
            std::string result = joined;
            mu.unlock();
            co_return result;
        });
    CHECK(out == "go-style");
}
