#include "unit/fidelity_comparison.h"

#include <fmt/format.h>

namespace tpusim::test {

FidelityRun run_at_fidelity(const Program& program, const ArchConfig& arch,
                            const MachineState& initial, Fidelity fidelity) {
  FidelityRun run{{}, initial};
  SimulationOptions options;
  options.fidelity = fidelity;
  options.record_trace = true;
  run.result = simulate_program(program, arch, run.state, options);
  return run;
}

std::string first_difference(const FidelityRun& pe, const FidelityRun& fast) {
  const SimulationResult& a = pe.result;
  const SimulationResult& b = fast.result;
  if (a.total_cycles != b.total_cycles) {
    return fmt::format("total cycles: pe {}, fast {}", a.total_cycles, b.total_cycles);
  }
  const auto& counters_a = a.counters.all();
  const auto& counters_b = b.counters.all();
  if (counters_a.size() != counters_b.size()) return "the counter lists differ";
  for (size_t i = 0; i < counters_a.size(); ++i) {
    if (counters_a[i].name != counters_b[i].name) return "the counter lists differ";
    if (counters_a[i].name == "pe.updates") continue;
    if (counters_a[i].value != counters_b[i].value) {
      return fmt::format("counter {}: pe {}, fast {}", counters_a[i].name, counters_a[i].value,
                         counters_b[i].value);
    }
  }
  if (a.trace.size() != b.trace.size()) return "the traces have different lengths";
  for (size_t i = 0; i < a.trace.size(); ++i) {
    const TraceEvent& x = a.trace[i];
    const TraceEvent& y = b.trace[i];
    if (x.unit != y.unit || x.instruction != y.instruction || x.loop_values != y.loop_values ||
        x.begin != y.begin || x.end != y.end) {
      return fmt::format("trace event {} (line {}): pe [{}, {}], fast [{}, {}]", i,
                         x.instruction->location.line, x.begin, x.end, y.begin, y.end);
    }
  }
  if (pe.state.buffers != fast.state.buffers) return "the buffers' bytes differ";
  if (pe.state.dram != fast.state.dram) return "the DRAM bytes differ";
  return "";
}

}  // namespace tpusim::test
