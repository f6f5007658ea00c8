// "Go Concurrency Part 1: Shared memory": two goroutines write one map entry.
//
// usage: shared_memory racy|mutex|wait_group
//   racy        unsynchronised writes, then a sleep (racy on purpose)
//   mutex       the writes under a mutex, still a sleep to wait for them
//   wait_group  the writes under a mutex, and a wait group to wait for them
// Each prints 1 or 2: the writes are safe, their order is not decided.
//
// The entry exists from the start, so the racy writes only race on the
// int: two tasks inserting one key into a std::map at once can corrupt
// the tree and crash the process (as Go's runtime stops the program on
// concurrent map writes), which is not the lesson here.
#include "../seeds.hpp"

#include <map>
#include <string>

using namespace std::chrono_literals;

namespace {

std::map<std::string, int> shared_state{{"bar", 0}};
weft::mutex mutex;

weft::task<> update_foo(int val)
{
    shared_state["bar"] = val;
    co_return;
}

weft::task<> update_foo_locked(int val)
{
    auto lock = co_await mutex.scoped_lock();
    shared_state["bar"] = val;
}

template <weft::task<> (*update)(int)>
weft::task<> sleep_for_it()
{
    weft::go(update, 1);
    weft::go(update, 2);
    co_await weft::sleep_for(100ms); // the post sleeps a second
    auto lock = co_await mutex.scoped_lock();
    std::printf("%d\n", shared_state["bar"]);
}

weft::task<> wait_for_it()
{
    weft::wait_group wg;
    wg.go(update_foo_locked, 1);
    wg.go(update_foo_locked, 2);
    co_await wg.wait();
    std::printf("%d\n", shared_state["bar"]);
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"racy", sleep_for_it<update_foo>},
                        {"mutex", sleep_for_it<update_foo_locked>},
                        {"wait_group", wait_for_it}});
}
