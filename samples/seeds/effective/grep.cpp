// "Effective Concurrency in Go", chapter 5: grep with a pool of workers.
//
// usage: grep v1|v2 DIRECTORY PATTERN
//   v1  three workers take files from a channel and print each match as it
//       comes: FILE#LINE: MATCH, files interleaved
//   v2  each job carries its own result channel, and main reads the result
//       channels in the order the files were found: FILE #LINE: MATCH, grouped
//       per file in directory order
#include "../seeds.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct result {
    std::string file;
    int line_number;
    std::string text;
};

struct work {
    std::string file;
    std::regex pattern;
    weft::chan<result> results; // v2 only
};

/// The files below root, in lexical order. [filepath.Walk]
std::vector<std::string> walk(const std::string& root)
{
    std::vector<std::string> files;
    for (auto& entry : std::filesystem::recursive_directory_iterator(root))
        if (!entry.is_directory())
            files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    return files;
}

/// Calls found(line number, match) for each line of the file that matches.
template <class F>
weft::task<> scan(const work& w, F found)
{
    std::ifstream input(w.file);
    if (!input)
        throw std::runtime_error("cannot open " + w.file);
    std::string line;
    for (int n = 1; std::getline(input, line); n++)
        if (std::smatch m; std::regex_search(line, m, w.pattern))
            co_await found(n, m.str());
}

weft::task<> v1()
{
    std::regex pattern(seeds::args.at(1));
    auto jobs = weft::make_chan<work>();
    weft::wait_group wg;
    for (int i = 0; i < 3; i++)
        wg.go([jobs]() -> weft::task<> {
            while (auto w = co_await jobs.recv()) {
                auto print = [&](int n, std::string match) -> weft::task<> {
                    std::printf("%s#%d: %s\n", w->file.c_str(), n, match.c_str());
                    co_return;
                };
                try {
                    co_await scan(*w, print);
                } catch (const std::exception& e) {
                    std::printf("%s\n", e.what());
                }
            }
        });
    for (auto& file : walk(seeds::args.at(0))) {
        work w{file, pattern, {}};
        co_await jobs.send(std::move(w));
    }
    jobs.close();
    co_await wg.wait();
}

weft::task<> v2()
{
    std::regex pattern(seeds::args.at(1));
    auto jobs = weft::make_chan<work>();
    for (int i = 0; i < 3; i++)
        weft::go([jobs]() -> weft::task<> {
            while (auto w = co_await jobs.recv()) {
                auto send = [&](int n, std::string match) -> weft::task<> {
                    result r{w->file, n, match}; // named: see README (g++ 12)
                    co_await w->results.send(std::move(r));
                };
                try {
                    co_await scan(*w, send);
                } catch (const std::exception& e) {
                    std::printf("%s\n", e.what());
                }
                w->results.close(); // also on error: the book's version hangs there
            }
        });
    auto all_results = weft::make_chan<weft::chan<result>>();
    weft::go([=, root = seeds::args.at(0)]() -> weft::task<> {
        for (auto& file : walk(root)) {
            auto results = weft::make_chan<result>();
            work w{file, pattern, results};
            co_await jobs.send(std::move(w));
            co_await all_results.send(results);
        }
        all_results.close();
    });
    while (auto results = co_await all_results.recv())
        while (auto r = co_await results->recv())
            std::printf("%s #%d: %s\n", r->file.c_str(), r->line_number, r->text.c_str());
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv, {{"v1", v1}, {"v2", v2}});
}
