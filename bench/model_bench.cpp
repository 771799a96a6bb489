// Speed of the whole simulator on compiled models: simulated cycles per second of host time,
// with real values computed (the model is compiled once; each iteration simulates it from
// fresh inputs). Fast fidelity by default; the `_pe` variants step every PE register.
// The bigger networks are run from the command line (see docs/performance.md).
#include <benchmark/benchmark.h>

#include <string>

#include "compiler/model_run.h"
#include "compiler/pipeline.h"
#include "simulator/simulator.h"
#include "tpusim/version.h"

namespace {

using namespace tpusim;

void simulate_model(benchmark::State& state, const std::string& model, const std::string& arch_name, Fidelity fidelity) {
  ArchConfig arch = load_arch(arch_name);
  CompileResult compiled = compile_graph(load_model(std::string(TPUSIM_SOURCE_DIR) + "/" + model), arch, CompileOptions{});
  const TargetLimits target = target_limits(arch);
  int64_t cycles = 0;
  for (auto _ : state) {
    MachineState machine = make_machine_state(compiled.program, target);
    place_model_inputs(compiled, "", 1, machine);
    SimulationOptions options;
    options.fidelity = fidelity;
    SimulationResult result = simulate_program(compiled.program, arch, machine, options);
    cycles += result.total_cycles;
    benchmark::DoNotOptimize(machine.dram.data());
  }
  state.counters["simulated_cycles/s"] = benchmark::Counter(static_cast<double>(cycles), benchmark::Counter::kIsRate);
  state.counters["cycles"] = static_cast<double>(cycles) / static_cast<double>(state.iterations());
}

void BM_TinyCnn_teach4x4(benchmark::State& s) { simulate_model(s, "examples/models/tiny-cnn.yaml", "teach-4x4", Fidelity::Fast); }
void BM_TinyCnn_teach4x4_pe(benchmark::State& s) { simulate_model(s, "examples/models/tiny-cnn.yaml", "teach-4x4", Fidelity::Pe); }
void BM_Tcn_edge32x32(benchmark::State& s) { simulate_model(s, "examples/models/tcn.yaml", "edge-32x32", Fidelity::Fast); }
void BM_Tcn_edge32x32_pe(benchmark::State& s) { simulate_model(s, "examples/models/tcn.yaml", "edge-32x32", Fidelity::Pe); }
BENCHMARK(BM_TinyCnn_teach4x4)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TinyCnn_teach4x4_pe)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Tcn_edge32x32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Tcn_edge32x32_pe)->Unit(benchmark::kMillisecond);

}  // namespace
