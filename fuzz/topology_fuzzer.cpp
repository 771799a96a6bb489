// Fuzzes the SCALE-Sim topology reader: parse_scalesim_topology (conv and GEMM layouts), then
// the compiler's first pass (prepare_graph). Topologies small enough to compile quickly also
// go through the whole compiler for teach-4x4, whose output must verify against the machine
// (the bounds of the model target, docs/fuzzing.md).
#include "compiler/frontend/scalesim_topology.h"
#include "compiler/pipeline.h"
#include "fuzz/fuzz_support.h"
#include "ir/program.h"
#include "simulator/arch.h"

using namespace tpusim;

namespace {

constexpr int64_t kMaxCompiledMacs = 8192;
constexpr size_t kMaxCompiledOps = 16;
constexpr int64_t kMaxCompiledElements = 65536;

int64_t graph_elements(const Graph& graph) {
  int64_t total = 0;
  for (const auto& v : graph.values) {
    total += v.element_count();
    if (total > kMaxCompiledElements) return total;
  }
  return total;
}

// Below the target's 2 GiB RSS limit, as in the model target.
ResourceLimits fuzz_limits() {
  ResourceLimits limits;
  limits.max_memory_bytes = int64_t{1} << 30;
  return limits;
}

const ArchConfig& teach_4x4() {
  static const ArchConfig arch = load_arch("teach-4x4");
  return arch;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  teach_4x4();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text = fuzz::as_text(data, size);
  auto graph = fuzz::accepted([&] {
    Graph g = parse_scalesim_topology(text, "fuzz.csv", ScaleSimOptions{}, fuzz_limits());
    prepare_graph(g, CompileOptions{});
    return g;
  });
  if (!graph || graph->ops.size() > kMaxCompiledOps || graph_macs(*graph) > kMaxCompiledMacs ||
      graph_elements(*graph) > kMaxCompiledElements) {
    return 0;
  }
  auto compiled = fuzz::accepted([&] { return compile_graph(*graph, teach_4x4(), CompileOptions{}); });
  if (compiled) verify_program_or_throw(compiled->program, target_limits(teach_4x4()));
  return 0;
}
