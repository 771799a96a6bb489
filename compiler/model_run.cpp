#include "compiler/model_run.h"

#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/reference.h"

namespace tpusim {

std::vector<std::optional<HostTensor>> place_model_inputs(const CompileResult& compiled, const std::string& inputs_dir,
                                                          uint64_t seed, MachineState& state) {
  const Graph& graph = compiled.graph;
  auto given = graph_inputs_and_weights(graph, seed);
  for (size_t v = 0; v < graph.values.size(); ++v) {
    const Value& value = graph.values[v];
    if (value.kind != ValueKind::Input) continue;
    std::string path = inputs_dir.empty() ? "" : inputs_dir + "/" + value.name + ".npy";
    if (path.empty() || !std::filesystem::exists(path)) continue;
    HostTensor t = read_npy(path);
    if (t.dtype != value.dtype || t.shape != value.shape) {
      throw Error({path, 0, 0, ""}, fmt::format("holds {} [{}] but input '{}' of the model is {} [{}]; write the file with that "
                                                "shape and type", dtype_name(t.dtype), fmt::join(t.shape, ","), value.name,
                                                dtype_name(value.dtype), fmt::join(value.shape, ",")));
    }
    given[v] = std::move(t);
  }
  for (size_t v = 0; v < graph.values.size(); ++v) {
    int t = compiled.tensor_of_value.at(v);
    if (t < 0 || !given[v]) continue;
    state.dram.at(static_cast<size_t>(t)) = given[v]->bytes;
  }
  return given;
}

ModelCheck check_model_outputs(const CompileResult& compiled, const std::vector<std::optional<HostTensor>>& given,
                               const MachineState& state) {
  const Graph& graph = compiled.graph;
  std::vector<HostTensor> expected = run_reference(graph, given);
  ModelCheck check;
  for (int v : graph.outputs) {
    const Value& value = graph.values[static_cast<size_t>(v)];
    int t = compiled.tensor_of_value.at(static_cast<size_t>(v));
    HostTensor got{value.dtype, value.shape, state.dram.at(static_cast<size_t>(t))};
    Comparison c = compare_tensors(got, expected[static_cast<size_t>(v)], value.name);
    check.ok &= c.ok;
    check.text += "  check: " + c.message + "\n";
  }
  return check;
}

std::string compile_summary(const CompileResult& compiled) {
  std::string out = "\n  compiler choices per op\n";
  for (const auto& kernel : compiled.kernels.kernels) {
    if (const auto* k = std::get_if<GemmKernel>(&kernel)) {
      out += fmt::format("  {:<24} GEMM M={} K={} N={}{}: {}\n", k->name, k->M, k->K, k->N,
                         k->groups > 1 ? fmt::format(" x{} groups", k->groups) : "", k->tiling.why);
      if (!k->epilogue.fused_op.empty()) out += fmt::format("  {:<24} (includes {})\n", "", k->epilogue.fused_op);
    } else if (const auto* d = std::get_if<DepthwiseKernel>(&kernel)) {
      out += fmt::format("  {:<24} {}\n", d->name, d->why);
    } else if (const auto* v = std::get_if<VectorKernel>(&kernel)) {
      out += fmt::format("  {:<24} vector unit / DMA{}\n", v->name,
                         v->epilogue.fused_op.empty() ? "" : fmt::format(" (includes {})", v->epilogue.fused_op));
    }
  }
  return out;
}

}  // namespace tpusim
