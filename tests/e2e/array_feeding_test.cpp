// How well the compiler feeds the array, in simulated figures (deterministic, not timed): the
// MLP0-like workload on tpu-v1 (examples/tpu-v1/mlp0.yaml; docs/performance.md) reads each
// weight once and its input once, and stays near its weight-traffic floor.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

#include "test_util.h"

using tpusim::test::run_tpusim;

TEST_CASE("MLP0 on tpu-v1: DRAM reads are its weights and one read of its input, near the weight floor", "[report][feeding]") {
  const std::string dir = tpusim::test::make_temp_dir("mlp0");
  auto r = run_tpusim("run examples/tpu-v1/mlp0.yaml --arch tpu-v1 --no-race-check --report json -o " + dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::ifstream in(dir + "/report.json");
  const nlohmann::json report = nlohmann::json::parse(in);
  int64_t read = -1;
  for (const auto& c : report["counters"]) {
    if (c["name"] == "dram.bytes_read") read = c["value"].get<int64_t>();
  }
  // 5 layers of 2000 x 2000 int8 weights and 2000 int32 biases; a 200 x 2000 int8 input.
  const int64_t weights = 5 * (2000 * 2000 + 2000 * 4), input = 200 * 2000;
  CHECK(read >= weights + input);
  CHECK(read <= (weights + input) * 105 / 100);
  CHECK(read == weights + input);  // every layer's output stays on chip for the next
  // The weight-traffic floor at 34 GB/s and 700 MHz: 48.571429 bytes per cycle.
  const double floor = static_cast<double>(weights) / (34e9 / 700e6);
  const double cycles = static_cast<double>(report["total_cycles"].get<int64_t>());
  INFO("cycles " << cycles << ", weight floor " << floor << ", ratio " << cycles / floor);
  CHECK(cycles <= 1.201 * floor);  // 1.2002 now: each tile's DRAM latency and the bias loads
  CHECK(report["totals"]["macs"]["useful"].get<int64_t>() == int64_t{5} * 200 * 2000 * 2000);
}
