// A program that uses weft the way an application outside its tree does:
// through the installed (or uninstalled) headers and library only.
#include <weft/weft.hpp>

#include <cstdio>

namespace {

weft::task<> count_to(int n, weft::send_chan<int> out)
{
    for (int i = 1; i <= n; ++i)
        co_await out.send(i);
    out.close();
}

weft::task<int> sum(int n)
{
    auto numbers = weft::make_chan<int>(4);
    weft::go(count_to, n, numbers);
    int total = 0;
    while (auto v = co_await numbers.recv())
        total += *v;
    co_return total;
}

} // namespace

int main()
{
    const int total = weft::run(sum, 1000);
    std::printf("weft consumer: sum of 1..1000 = %d\n", total);
    return total == 500500 ? 0 : 1;
}
