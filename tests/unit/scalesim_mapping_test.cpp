// On SCALE-Sim's own ResNet-18 topology (examples/scalesim/Resnet18.csv), every layer maps the
// array at least as well as SCALE-Sim maps it: its mapping efficiency (useful MACs / mapped MACs,
// measured by the simulator) is at least SCALE-Sim's formula (../shared/references.md,
// docs/scalesim.md) for weight-stationary: Sr = K = R·S·C on the rows, Sc = N filters on the
// columns, efficiency = Sr·Sc / (rows · cols · ceil(Sr / rows) · ceil(Sc / cols)). On
// 256×256 (tpu-v1, the figures), a small square array and a non-square one.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "compiler/frontend/scalesim_topology.h"
#include "compiler/model_run.h"
#include "compiler/pipeline.h"
#include "simulator/arch.h"
#include "simulator/simulator.h"
#include "test_util.h"

using namespace tpusim;

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

double scalesim_ws_mapping(int64_t k, int64_t n, int64_t rows, int64_t cols) {
  const int64_t folds = ceil_div(k, rows) * ceil_div(n, cols);
  return static_cast<double>(k * n) / static_cast<double>(rows * cols * folds);
}

}  // namespace

TEST_CASE("on SCALE-Sim's ResNet-18 topology every layer maps at least as well as SCALE-Sim", "[compiler][scalesim][mapping]") {
  const Graph graph = load_scalesim_topology(test::source_dir() + "/examples/scalesim/Resnet18.csv");
  const std::vector<std::pair<std::string, std::vector<std::string>>> machines = {
      {"tpu-v1", {}},                                          // 256 x 256
      {"edge-32x32", {}},                                      // 32 x 32
      {"tpu-v1", {"mxu.rows=128", "mxu.cols=64"}},             // 128 x 64
  };
  for (const auto& [name, overrides] : machines) {
    const ArchConfig arch = load_arch(name, overrides);
    INFO(fmt::format("{} {}x{}", name, arch.mxu.rows, arch.mxu.cols));
    const CompileResult compiled = compile_graph(graph, arch, CompileOptions{});
    MachineState state = make_machine_state(compiled.program, target_limits(arch));
    place_model_inputs(compiled, "", 1, state);
    const SimulationResult result = simulate_program(compiled.program, arch, state);
    int layers = 0, equal = 0;
    for (const auto& kernel : compiled.kernels.kernels) {
      const auto* gemm = std::get_if<GemmKernel>(&kernel);
      REQUIRE(gemm != nullptr);
      REQUIRE(gemm->groups == 1);
      const auto label = std::find(result.labels.begin(), result.labels.end(), gemm->name);
      REQUIRE(label != result.labels.end());
      const LabelStats& stats = result.per_label[static_cast<size_t>(label - result.labels.begin())];
      REQUIRE(stats.mapped_macs > 0);
      const double ours = static_cast<double>(stats.useful_macs) / static_cast<double>(stats.mapped_macs);
      const double theirs = scalesim_ws_mapping(gemm->K, gemm->N, arch.mxu.rows, arch.mxu.cols);
      INFO(fmt::format("{}: K {} N {}: tpusim {:.4f}%, SCALE-Sim {:.4f}%", gemm->name, gemm->K, gemm->N, 100 * ours,
                       100 * theirs));
      CHECK(ours >= theirs * (1 - 1e-12));
      ++layers;
      if (std::abs(ours - theirs) <= 1e-12 * theirs) ++equal;
    }
    CHECK(layers == 21);
    // The same folds as SCALE-Sim's (ceil(K / rows) boxes, ceil(N / cols) n-tiles), so the
    // same figure on every layer: neither side pads M.
    CHECK(equal == layers);
  }
}
