// Decoding and encoding speed of the wire codec (common/src/codec.cpp): the per-message cost on
// the sink's and the worker's hot paths. Run: build/bench/codec_bench --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <string>

#include "taskpipe/codec.hpp"
#include "taskpipe/message.hpp"

namespace {

using namespace taskpipe;

// A typical result of a small task: a line of output, no stderr, the input echoed.
Result typical_result() {
    Result r;
    r.batch = 0x1234'5678'9abc'def0;
    r.id = 123'456;
    r.attempt = 1;
    r.status = Status::ok;
    r.exit_code = 0;
    r.out = "a line of output, about as long as a short one usually is\n";
    r.host = "worker-17.example.org";
    r.pid = 31'337;
    r.started_us = 1'700'000'000'000'000;
    r.duration_us = 1'234;
    r.sent_us = 1'699'999'999'999'000;
    r.input = "input record 123456";
    return r;
}

Task typical_task() {
    return Task{0x1234'5678'9abc'def0, 123'456, 1, "input record 123456",
                1'700'000'000'000'000, true};
}

template <typename Set>
void decode_frame(benchmark::State& state, const std::string& frame) {
    for (auto _ : state) {
        Decoded<Set> decoded = decode<Set>(frame);
        benchmark::DoNotOptimize(decoded);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(frame.size()));
}

void BM_DecodeResult(benchmark::State& state) {
    Encoder encoder;
    decode_frame<ResultsMessage>(state, std::string(encoder.encode(typical_result())));
}
BENCHMARK(BM_DecodeResult);

void BM_DecodeResultWithOneMebibyteOfStdout(benchmark::State& state) {
    Result r = typical_result();
    r.out.assign(1u << 20, 'x');
    Encoder encoder;
    decode_frame<ResultsMessage>(state, std::string(encoder.encode(r)));
}
BENCHMARK(BM_DecodeResultWithOneMebibyteOfStdout);

void BM_DecodeTask(benchmark::State& state) {
    Encoder encoder;
    decode_frame<TasksMessage>(state, std::string(encoder.encode(typical_task())));
}
BENCHMARK(BM_DecodeTask);

void BM_DecodeAckOf4096Ids(benchmark::State& state) {
    Ack ack{0x1234'5678'9abc'def0, {}, {}};
    for (std::uint64_t id = 1; id <= kMaxIdsPerMessage; ++id) ack.ids.push_back(id * 1000);
    Encoder encoder;
    decode_frame<ToVentilatorControl>(state, std::string(encoder.encode(ack)));
}
BENCHMARK(BM_DecodeAckOf4096Ids);

void BM_EncodeResult(benchmark::State& state) {
    const Result r = typical_result();
    Encoder encoder;
    for (auto _ : state) benchmark::DoNotOptimize(encoder.encode(r));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeResult);

}  // namespace

BENCHMARK_MAIN();
