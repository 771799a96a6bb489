// Speed of the PE-level systolic array: PE register updates per second (items_processed), with
// a weight tile loaded and one operand vector streamed in every cycle, the array's busiest case.
// Goal: >= 200 M PE updates/s for a 128x128 int8 array on one core.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "simulator/systolic_array.h"

namespace {

using tpusim::DType;
using tpusim::SystolicArray;
using tpusim::SystolicMode;

// Random operand bytes: any int8, or bf16 patterns of values in [-2, 2).
std::vector<uint8_t> random_operands(DType type, int count, std::mt19937& rng) {
  std::vector<uint8_t> bytes(static_cast<size_t>(count) * tpusim::dtype_size(type));
  if (type == DType::Int8) {
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  } else {
    std::uniform_real_distribution<float> value(-2.0f, 2.0f);
    for (int i = 0; i < count; ++i) {
      const uint16_t bits = tpusim::float_to_bf16(value(rng));
      bytes[2 * i] = static_cast<uint8_t>(bits);
      bytes[2 * i + 1] = static_cast<uint8_t>(bits >> 8);
    }
  }
  return bytes;
}

void stationary_stream(benchmark::State& state, DType type, int size) {
  std::mt19937 rng(1);
  SystolicArray array(size, size, type, SystolicMode::Stationary);
  const int element_bytes = tpusim::dtype_size(type);
  const std::vector<uint8_t> weights = random_operands(type, size * size, rng);
  for (int k = size - 1; k >= 0; --k) {
    array.shift_stationary_row(0, &weights[static_cast<size_t>(k) * size * element_bytes], size);
    array.step();
  }
  // A few distinct vectors, cycled, so the stream is not one constant vector.
  constexpr int kDistinctVectors = 64;
  const std::vector<uint8_t> vectors = random_operands(type, kDistinctVectors * size, rng);
  int next = 0;
  const int64_t updates_before = array.pe_updates();
  for (auto _ : state) {
    array.step(&vectors[static_cast<size_t>(next) * size * element_bytes], size, 0);
    next = (next + 1) % kDistinctVectors;
    benchmark::DoNotOptimize(array.bottom().data());
  }
  state.SetItemsProcessed(array.pe_updates() - updates_before);
  state.counters["cycles/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void output_stationary_stream(benchmark::State& state, DType type, int size) {
  std::mt19937 rng(2);
  SystolicArray array(size, size, type, SystolicMode::OutputStationary);
  const int element_bytes = tpusim::dtype_size(type);
  constexpr int kDistinctVectors = 64;
  const std::vector<uint8_t> left = random_operands(type, kDistinctVectors * size, rng);
  const std::vector<uint8_t> top = random_operands(type, kDistinctVectors * size, rng);
  int next = 0;
  const int64_t updates_before = array.pe_updates();
  for (auto _ : state) {
    const size_t offset = static_cast<size_t>(next) * size * element_bytes;
    array.step_os(&left[offset], size, &top[offset], size);
    next = (next + 1) % kDistinctVectors;
  }
  benchmark::DoNotOptimize(array.accumulator(0, 0));
  state.SetItemsProcessed(array.pe_updates() - updates_before);
}

void BM_Stationary_Int8_128x128(benchmark::State& s) {
  stationary_stream(s, DType::Int8, 128);
}
void BM_Stationary_BF16_128x128(benchmark::State& s) {
  stationary_stream(s, DType::BF16, 128);
}
void BM_Stationary_Int8_256x256(benchmark::State& s) {
  stationary_stream(s, DType::Int8, 256);
}
void BM_Stationary_Int8_32x32(benchmark::State& s) {
  stationary_stream(s, DType::Int8, 32);
}
void BM_OutputStationary_Int8_128x128(benchmark::State& s) {
  output_stationary_stream(s, DType::Int8, 128);
}

BENCHMARK(BM_Stationary_Int8_128x128);
BENCHMARK(BM_Stationary_BF16_128x128);
BENCHMARK(BM_Stationary_Int8_256x256);
BENCHMARK(BM_Stationary_Int8_32x32);
BENCHMARK(BM_OutputStationary_Int8_128x128);

}  // namespace

BENCHMARK_MAIN();
