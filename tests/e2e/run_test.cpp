// `tpusim run` end to end on the bundled example programs.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "simulator/npy.h"
#include "simulator/random_data.h"
#include "test_util.h"

using namespace tpusim;
using test::run_tpusim;

namespace {

int64_t total_cycles(const std::string& report) {
  auto at = report.find("total cycles");
  REQUIRE(at != std::string::npos);
  return std::stoll(report.substr(at + 12));
}

}  // namespace

TEST_CASE("run: the 4x4 GEMM passes its check at both fidelities with the same cycles", "[run]") {
  auto fast = run_tpusim("run examples/programs/gemm-4x4.tpu --arch teach-4x4 --check");
  auto pe = run_tpusim("run examples/programs/gemm-4x4.tpu --arch teach-4x4 --check --fidelity pe");
  REQUIRE(fast.exit_code == 0);
  REQUIRE(pe.exit_code == 0);
  CHECK(fast.out.find("check: every output tensor is byte-identical") != std::string::npos);
  CHECK(total_cycles(fast.out) == total_cycles(pe.out));
  CHECK(fast.err.empty());
}

TEST_CASE("run: outputs are the product of the given inputs", "[run]") {
  std::string in = test::make_temp_dir("in"), out = test::make_temp_dir("out");
  HostTensor a = random_tensor(DType::Int8, {4, 4}, 7), b = random_tensor(DType::Int8, {4, 4}, 8);
  write_npy(in + "/A.npy", a);
  write_npy(in + "/B.npy", b);
  auto r = run_tpusim("run examples/programs/gemm-4x4.tpu --arch teach-4x4 -q --inputs " + in + " --outputs " + out);
  REQUIRE(r.exit_code == 0);
  HostTensor c = read_npy(out + "/C.npy");
  REQUIRE(c.dtype == DType::Int32);
  REQUIRE(c.shape == std::vector<int64_t>{4, 4});
  for (int m = 0; m < 4; ++m) {
    for (int n = 0; n < 4; ++n) {
      int32_t expected = 0;
      for (int k = 0; k < 4; ++k) {
        expected += static_cast<int8_t>(a.bytes[m * 4 + k]) * static_cast<int8_t>(b.bytes[k * 4 + n]);
      }
      int32_t got;
      std::memcpy(&got, &c.bytes[(m * 4 + n) * 4], 4);
      CHECK(got == expected);
    }
  }
}

TEST_CASE("run: reports and JSON are deterministic and versioned", "[run]") {
  std::string dir = test::make_temp_dir("json");
  auto first = run_tpusim("run examples/programs/gemm-tiled-edge.tpu --arch edge-32x32 --json " + dir + "/a.json");
  auto second = run_tpusim("run examples/programs/gemm-tiled-edge.tpu --arch edge-32x32 --json " + dir + "/b.json");
  REQUIRE(first.exit_code == 0);
  CHECK(first.out == second.out);
  std::string a = test::read_text_file(dir + "/a.json"), b = test::read_text_file(dir + "/b.json");
  CHECK(a == b);
  auto json = nlohmann::json::parse(a);
  CHECK(json["schema_version"] == 2);
  CHECK(json["total_cycles"].get<int64_t>() == total_cycles(first.out));
  // Causes sum to the total for every unit.
  for (const auto& unit : {"dma", "mxu", "vpu"}) {
    int64_t sum = 0;
    for (const auto& [cause, cycles] : json["totals"]["unit_cycles"][unit].items()) sum += cycles.get<int64_t>();
    CHECK(sum == json["total_cycles"].get<int64_t>());
  }
  CHECK(json["totals"]["macs"]["useful"].get<int64_t>() == 128 * 64 * 96);
}

TEST_CASE("run: in the tiled GEMM, weight DMA overlaps matrix compute", "[run]") {
  std::string dir = test::make_temp_dir("trace");
  auto r = run_tpusim("run examples/programs/gemm-tiled-edge.tpu --arch edge-32x32 -q --check --trace " + dir + "/t.json");
  REQUIRE(r.exit_code == 0);
  auto trace = nlohmann::json::parse(test::read_text_file(dir + "/t.json"));
  struct Slice {
    int64_t begin, end;
    std::string name;
  };
  std::vector<Slice> dma_loads, matmuls;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] != "X") continue;
    Slice s{e["ts"].get<int64_t>(), e["ts"].get<int64_t>() + e["dur"].get<int64_t>() - 1, e["name"].get<std::string>()};
    if (s.name.find("dma.load") != std::string::npos) dma_loads.push_back(s);
    if (s.name.find("mxu.matmul") != std::string::npos) matmuls.push_back(s);
  }
  REQUIRE(!dma_loads.empty());
  REQUIRE(!matmuls.empty());
  int overlapping = 0;
  for (const auto& d : dma_loads) {
    for (const auto& m : matmuls) {
      if (d.begin <= m.end && m.begin <= d.end) ++overlapping;
    }
  }
  CHECK(overlapping > 0);
}

TEST_CASE("run: bad flags are user errors", "[run][cli]") {
  auto r = run_tpusim("run examples/programs/gemm-4x4.tpu --arch teach-4x4 --fidelity exact");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("--fidelity") != std::string::npos);
  auto missing = run_tpusim("run no/such/program.tpu --arch teach-4x4");
  CHECK(missing.exit_code == 1);
  CHECK(missing.err == "no/such/program.tpu: error: cannot open program file (check the path)\n");
}
