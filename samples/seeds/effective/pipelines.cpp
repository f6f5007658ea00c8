// "Effective Concurrency in Go", chapter 5: the five pipelines that turn a CSV
// file of heights and weights into JSON (the stages parse, convert to metric
// and encode):
//
//   synchronous   one loop calls the three stages in turn
//   asynchronous  a task per stage, joined by unbuffered channels
//   worker-pool   two tasks per stage sharing its channels: output unordered
//   fan-in        two convert stages fed by one parse stage, merged: unordered
//   ordered       the same, merged back into row order
//
// usage: pipelines PIPELINE CSV_FILE
#include "../seeds.hpp"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct record {
    int row;
    double height, weight;
};

using csv_row = std::vector<std::string>;
using done_chan = weft::recv_chan<std::monostate>;

// The stages. parse throws on bad input, as the book's panics.
record parse(csv_row in)
{
    auto number = [](const std::string& s, auto& v) {
        if (std::from_chars(s.data(), s.data() + s.size(), v).ec != std::errc{})
            throw std::invalid_argument("not a number: " + s);
    };
    record r{};
    number(in.at(0), r.row);
    number(in.at(1), r.height);
    number(in.at(2), r.weight);
    return r;
}

record convert(record in)
{
    in.height = 2.54 * in.height;
    in.weight = 0.454 * in.weight;
    return in;
}

/// [json.Marshal] a float64 in the shortest form that reads back the same.
std::string json_number(double v)
{
    char buf[64];
    auto format = (v != 0 && (std::abs(v) < 1e-6 || std::abs(v) >= 1e21))
                      ? std::chars_format::scientific
                      : std::chars_format::fixed;
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v, format).ptr);
}

std::string encode(record in)
{
    return "{\"row\":" + std::to_string(in.row) + ",\"height\":" + json_number(in.height) +
           ",\"weight\":" + json_number(in.weight) + "}";
}

/// Calls f for each row of the CSV file after its header.
template <class F>
weft::task<> read_csv(std::string path, F f)
{
    std::ifstream input(path);
    if (!input)
        throw std::runtime_error("cannot open " + path);
    std::string line;
    std::getline(input, line); // the header
    while (std::getline(input, line)) {
        csv_row row;
        std::stringstream fields(line);
        for (std::string field; std::getline(fields, field, ',');)
            row.push_back(field);
        co_await f(std::move(row));
    }
}

weft::task<> synchronous(std::string path)
{
    co_await read_csv(path, [](csv_row row) -> weft::task<> {
        std::printf("%s\n", encode(convert(parse(std::move(row)))).c_str());
        co_return;
    });
}

/// Reads the pipeline's input into a channel, then closes it.
weft::task<> feed(std::string path, weft::send_chan<csv_row> in)
{
    // Named: g++ 12 destroys the captures of a lambda inside a co_await
    // expression twice.
    auto send = [in](csv_row row) -> weft::task<> { co_await in.send(std::move(row)); };
    co_await read_csv(path, send);
    in.close();
}

/// Prints the pipeline's output until it is closed.
weft::task<> print(weft::recv_chan<std::string> out)
{
    while (auto data = co_await out.recv())
        std::printf("%s\n", data->c_str());
}

// A stage applies f to what it receives and sends it on; at the end of its
// input it closes its output, so the closes run down the pipeline.
auto pipeline_stage = [](auto input, auto output, auto f) -> weft::task<> {
    while (auto data = co_await input.recv())
        co_await output.send(f(std::move(*data)));
    output.close();
};

weft::task<> asynchronous(std::string path)
{
    auto parse_input = weft::make_chan<csv_row>();
    auto convert_input = weft::make_chan<record>();
    auto encode_input = weft::make_chan<record>();
    auto output = weft::make_chan<std::string>();
    weft::go(pipeline_stage, parse_input, convert_input, parse);
    weft::go(pipeline_stage, convert_input, encode_input, convert);
    weft::go(pipeline_stage, encode_input, output, encode);
    auto printer = weft::go(print, output);
    co_await feed(path, parse_input);
    co_await printer;
}

// A stage of n workers on the same channels closes its output once, when
// the last worker is done.
auto worker_pool_stage = [](auto input, auto output, auto f, int n) -> weft::task<> {
    weft::wait_group wg;
    for (int i = 0; i < n; i++)
        wg.go([&]() -> weft::task<> {
            while (auto data = co_await input.recv())
                co_await output.send(f(std::move(*data)));
        });
    co_await wg.wait();
    output.close();
};

weft::task<> worker_pool(std::string path)
{
    auto parse_input = weft::make_chan<csv_row>();
    auto convert_input = weft::make_chan<record>();
    auto encode_input = weft::make_chan<record>();
    auto output = weft::make_chan<std::string>();
    weft::go(worker_pool_stage, parse_input, convert_input, parse, 2);
    weft::go(worker_pool_stage, convert_input, encode_input, convert, 2);
    weft::go(worker_pool_stage, encode_input, output, encode, 2);
    auto printer = weft::go(print, output);
    co_await feed(path, parse_input);
    co_await printer;
}

// Receives from input unless done is closed first: nullopt then, or at the
// end of input. [select { case d, ok := <-input: ...; case <-done: }]
template <class T>
weft::task<std::optional<T>> recv_or_done(weft::recv_chan<T> input, done_chan done)
{
    auto r = co_await weft::select(input, done);
    co_return r.index() == 0 ? std::move(std::get<0>(r)) : std::nullopt;
}

// Sends v unless done is closed first: false then.
template <class T>
weft::task<bool> send_or_done(weft::send_chan<T> output, T v, done_chan done)
{
    auto r = co_await weft::select(output.send(std::move(v)), done);
    co_return r.index() == 0;
}

// A stage that stops when done is closed, and returns its own output.
template <class Out, class In, class F>
weft::recv_chan<Out> cancelable_stage(weft::recv_chan<In> input, done_chan done, F f)
{
    auto output = weft::make_chan<Out>();
    weft::go([=]() -> weft::task<> {
        while (auto data = co_await recv_or_done(input, done))
            if (!co_await send_or_done<Out>(output, f(std::move(*data)), done))
                break;
        output.close();
    });
    return output;
}

// Merges the channels into one, in the order their values come.
template <class T>
weft::recv_chan<T> fan_in(done_chan done, std::vector<weft::recv_chan<T>> channels)
{
    auto output = weft::make_chan<T>();
    auto wg = std::make_shared<weft::wait_group>();
    for (auto input : channels)
        wg->go([=]() -> weft::task<> {
            while (auto data = co_await recv_or_done(input, done))
                if (!co_await send_or_done<T>(output, std::move(*data), done))
                    co_return;
        });
    weft::go([wg, output]() -> weft::task<> {
        co_await wg->wait();
        output.close();
    });
    return output;
}

// Merges the channels back into the order of the values' sequence numbers
// (rows 1, 2, 3 ... without gaps). A task per input forwards one value, then
// pauses until the orderer has sent it on; so the orderer holds at most one
// value per input.
template <class T>
struct fan_in_record {
    std::size_t index;
    T data;
    weft::chan<std::monostate> pause;
};

template <class T, class Sequence>
weft::recv_chan<T> ordered_fan_in(done_chan done, std::vector<weft::recv_chan<T>> channels,
                                  Sequence sequence)
{
    auto fan_in_ch = weft::make_chan<fan_in_record<T>>();
    auto wg = std::make_shared<weft::wait_group>();
    for (std::size_t index = 0; index < channels.size(); index++)
        wg->go([=, input = channels[index],
                pause = weft::make_chan<std::monostate>()]() -> weft::task<> {
            while (auto data = co_await recv_or_done(input, done)) {
                fan_in_record<T> rec{index, std::move(*data), pause};
                if (!co_await send_or_done<fan_in_record<T>>(fan_in_ch, std::move(rec), done))
                    co_return;
                auto r = co_await weft::select(pause, done); // wait until released
                if (r.index() == 1)
                    co_return;
            }
        });
    weft::go([wg, fan_in_ch]() -> weft::task<> {
        co_await wg->wait();
        fan_in_ch.close();
    });

    auto output = weft::make_chan<T>();
    weft::go([=]() -> weft::task<> {
        int expected = 1;
        std::vector<std::optional<fan_in_record<T>>> queued(channels.size());
        // Sends in on and releases its input; false when done is closed.
        auto pass = [&](fan_in_record<T>& in) -> weft::task<bool> {
            if (!co_await send_or_done<T>(output, in.data, done))
                co_return false;
            co_await in.pause.send({});
            expected++;
            co_return true;
        };
        while (auto in = co_await fan_in_ch.recv()) {
            if (sequence(in->data) != expected) {
                queued[in->index] = std::move(*in); // out of order: keep it
                continue;
            }
            if (!co_await pass(*in))
                co_return;
            for (bool sent = true; sent;) { // send what became next in order
                sent = false;
                for (auto& q : queued)
                    if (q && sequence(q->data) == expected) {
                        if (!co_await pass(*q))
                            co_return;
                        q.reset();
                        sent = true;
                    }
            }
        }
        output.close();
    });
    return output;
}

template <bool ordered>
weft::task<> fan_out_fan_in(std::string path)
{
    auto done = weft::make_chan<std::monostate>();
    auto parse_input = weft::make_chan<csv_row>();
    auto convert_input =
        cancelable_stage<record>(weft::recv_chan<csv_row>(parse_input), done, parse);
    std::vector<weft::recv_chan<record>> converted;
    for (int i = 0; i < 2; i++) // fan-out
        converted.push_back(cancelable_stage<record>(convert_input, done, convert));
    weft::recv_chan<record> merged;
    if constexpr (ordered)
        merged = ordered_fan_in(done, converted, [](const record& r) { return r.row; });
    else
        merged = fan_in(done, converted);
    auto printer = weft::go(print, cancelable_stage<std::string>(merged, done, encode));
    co_await feed(path, parse_input);
    co_await printer;
    done.close();
}

template <weft::task<> (*pipeline)(std::string)>
weft::task<> run()
{
    if (seeds::args.size() != 1)
        throw std::invalid_argument("usage: pipelines PIPELINE CSV_FILE");
    co_await pipeline(seeds::args[0]);
}

} // namespace

int main(int argc, char** argv)
{
    return seeds::main(argc, argv,
                       {{"synchronous", run<synchronous>},
                        {"asynchronous", run<asynchronous>},
                        {"worker-pool", run<worker_pool>},
                        {"fan-in", run<fan_out_fan_in<false>>},
                        {"ordered", run<fan_out_fan_in<true>>}});
}
