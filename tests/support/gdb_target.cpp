// A program for the gdb script's test (tools/gdb/weft.py): a task blocks in
// a receive two task frames deep, then the main task stops at a SIGTRAP.
#include <weft/weft.hpp>

#include <chrono>
#include <csignal>

using namespace std::chrono_literals;

weft::task<> inner(weft::chan<int> c) { (void)co_await c.recv(); }
weft::task<> outer(weft::chan<int> c) { co_await inner(c); }

weft::chan<int> g_chan;

int main()
{
    g_chan = weft::make_chan<int>(3);
    weft::run([]() -> weft::task<> {
        weft::go(outer, g_chan);
        co_await weft::sleep_for(50ms);
        std::raise(SIGTRAP);
        g_chan.try_send(1);
    });
}
