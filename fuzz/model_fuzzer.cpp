// Fuzzes the model description reader: parse_model_yaml, then the compiler's first pass
// (prepare_graph: shape inference and verification). Models small enough to compile quickly
// also go through the whole compiler for teach-4x4 (tiling, allocation, emission), whose
// output must verify against the machine.
#include "compiler/frontend/yaml_model.h"
#include "compiler/pipeline.h"
#include "fuzz/fuzz_support.h"
#include "ir/program.h"
#include "simulator/arch.h"

using namespace tpusim;

namespace {

// Larger graphs are only read and shape-checked: compiling them would cost more time per
// input than the coverage it adds (docs/fuzzing.md).
constexpr int64_t kMaxCompiledMacs = 8192;
constexpr size_t kMaxCompiledOps = 16;
// Vector-unit layers (pooling, softmax, elementwise) count no MACs; their work grows with the
// elements they touch, so those are bounded too.
constexpr int64_t kMaxCompiledElements = 65536;

int64_t graph_elements(const Graph& graph) {
  int64_t total = 0;
  for (const auto& v : graph.values) {
    int64_t n = v.element_count();
    if (n > kMaxCompiledElements) return n;
    total += n;
    if (total > kMaxCompiledElements) return total;
  }
  return total;
}

// Below the target's 2 GiB RSS limit (-rss_limit_mb=2048): a model whose seeded weights need
// more is refused by the reader's own memory check, as `--max-memory 1GiB` would.
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
    Graph g = parse_model_yaml(text, "fuzz.yaml", fuzz_limits());
    prepare_graph(g, CompileOptions{});
    return g;
  });
  if (!graph || graph->ops.size() > kMaxCompiledOps || graph_macs(*graph) > kMaxCompiledMacs ||
      graph_elements(*graph) > kMaxCompiledElements) {
    return 0;
  }
  // The compiler may reject a model it cannot lower (an Error); what it emits must verify.
  auto compiled = fuzz::accepted([&] { return compile_graph(*graph, teach_4x4(), CompileOptions{}); });
  if (compiled) verify_program_or_throw(compiled->program, target_limits(teach_4x4()));
  return 0;
}
