// The README's tour of weft, kept here so that it is compiled and run.
#include <weft/weft.hpp>

#include <cstdio>
#include <variant>

// A task is a lazy coroutine: it runs when awaited, or concurrently once go() starts it.
weft::task<> produce(int n, weft::send_chan<int> out, weft::send_chan<std::monostate> quit)
{
    for (int i = 1; i <= n; ++i)
        co_await out.send(i); // unbuffered: waits until a receiver takes i
    quit.close();             // a close is seen by every receiver
}

weft::task<int> sum(weft::recv_chan<int> in, weft::recv_chan<std::monostate> quit)
{
    int total = 0;
    for (;;) {
        auto r = co_await weft::select(in.recv(), quit.recv()); // whichever is ready
        if (r.index() == 1)
            co_return total;
        total += *std::get<0>(r);
    }
}

weft::task<int> main_task()
{
    auto numbers = weft::make_chan<int>();         // make(chan int)
    auto quit = weft::make_chan<std::monostate>(); // make(chan struct{})
    weft::go(produce, 100, numbers, quit);         // go produce(100, numbers, quit)
    auto total = weft::go(sum, numbers, quit);     // a join_handle<int>
    co_return co_await total;
}

int main()
{
    std::printf("1 + 2 + ... + 100 = %d\n", weft::run(main_task));
}
