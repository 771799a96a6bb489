// What the targets that read models share (model_fuzzer, topology_fuzzer): the memory limit
// their readers run under, and the rest of the compiler for graphs small enough to compile
// quickly. See docs/fuzzing.md for the bounds.
#pragma once

#include <cstddef>
#include <cstdint>

#include "compiler/pipeline.h"
#include "fuzz/fuzz_support.h"
#include "ir/graph.h"
#include "ir/program.h"
#include "ir/resource_limits.h"
#include "simulator/arch.h"

namespace tpusim::fuzz {

// Larger graphs are only read and shape-checked: compiling them would cost more time per
// input than the coverage it adds. Vector-unit layers count no MACs; their work grows with the
// elements they touch, so those are bounded too.
constexpr int64_t kMaxCompiledMacs = 8192;
constexpr size_t kMaxCompiledOps = 16;
constexpr int64_t kMaxCompiledElements = 65536;

// Below the targets' 2 GiB RSS limit (-rss_limit_mb=2048): a model whose seeded weights need
// more is refused by the reader's own memory check, as `--max-memory 1GiB` would.
inline ResourceLimits reader_limits() {
  ResourceLimits limits;
  limits.max_memory_bytes = int64_t{1} << 30;
  return limits;
}

inline const ArchConfig& teach_4x4() {
  static const ArchConfig arch = load_arch("teach-4x4");
  return arch;
}

inline int64_t graph_elements(const Graph& graph) {
  int64_t total = 0;
  for (const auto& v : graph.values) {
    total += v.element_count();
    if (total > kMaxCompiledElements) return total;
  }
  return total;
}

// A graph that passed prepare_graph: when it is small, the whole compiler for teach-4x4. The
// compiler may reject a model it cannot lower (an Error); what it emits must verify.
inline void compile_if_small(const Graph& graph) {
  if (graph.ops.size() > kMaxCompiledOps || graph_macs(graph) > kMaxCompiledMacs ||
      graph_elements(graph) > kMaxCompiledElements) {
    return;
  }
  auto compiled = accepted([&] { return compile_graph(graph, teach_4x4(), CompileOptions{}); });
  if (compiled) verify_program_or_throw(compiled->program, target_limits(teach_4x4()));
}

}  // namespace tpusim::fuzz
