#include "compiler/model_run.h"

#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/reference.h"
#include "ir/sizes.h"

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
    HostTensor t = read_npy(path, value.element_count() * dtype_size(value.dtype));
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

int64_t model_run_bytes(const CompileResult& compiled, const TargetLimits& target, bool check) {
  int64_t bytes = machine_state_bytes(compiled.program, target);
  auto add = [&](int64_t more) { bytes = checked_add(bytes, more).value_or(INT64_MAX); };
  for (const Value& v : compiled.graph.values) {
    // Every value was bounded by shape inference (at most 2^48 elements).
    const int64_t value_bytes = v.element_count() * dtype_size(v.dtype);
    if (v.kind != ValueKind::Activation) add(value_bytes);
    if (check) add(value_bytes);
  }
  return bytes;
}

namespace {

int op_index(const Graph& graph, const std::string& name) {
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    if (graph.ops[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

HostTensor simulated(const CompileResult& compiled, int value, const MachineState& state) {
  const Value& v = compiled.graph.values.at(static_cast<size_t>(value));
  const int t = compiled.tensor_of_value.at(static_cast<size_t>(value));
  TPUSIM_CHECK(t >= 0, "value '" + v.name + "' has no DRAM tensor");
  return HostTensor{v.dtype, v.shape, state.dram.at(static_cast<size_t>(t))};
}

// The ops of one kernel as a graph of their own: activations entering it become inputs that
// hold the simulator's data; weights keep theirs.
Comparison check_kernel(const CompileResult& compiled, const std::vector<int>& ops, int output,
                        const std::vector<std::optional<HostTensor>>& given, const MachineState& state) {
  const Graph& graph = compiled.graph;
  Graph sub;
  sub.name = graph.ops[static_cast<size_t>(ops.front())].name;
  sub.file = graph.file;
  std::vector<std::optional<HostTensor>> data;
  std::map<int, int> mapped;
  for (int o : ops) {
    Op op = graph.ops[static_cast<size_t>(o)];
    for (int& in : op.inputs) {
      auto it = mapped.find(in);
      if (it == mapped.end()) {
        Value v = graph.values[static_cast<size_t>(in)];
        v.producer = -1;
        std::optional<HostTensor> d;
        if (v.kind == ValueKind::Activation) {
          v.kind = ValueKind::Input;
          d = simulated(compiled, in, state);
        } else {
          d = given.at(static_cast<size_t>(in));
        }
        it = mapped.emplace(in, sub.add_value(v)).first;
        data.push_back(std::move(d));
      }
      in = it->second;
    }
    Value out = graph.values[static_cast<size_t>(op.output)];
    out.producer = -1;
    op.output = sub.add_value(out);
    mapped[graph.ops[static_cast<size_t>(o)].output] = op.output;
    data.emplace_back();
    sub.add_op(op);
  }
  sub.outputs = {mapped.at(output)};
  std::vector<HostTensor> want = run_reference(sub, data);
  return compare_tensors(simulated(compiled, output, state), want.at(static_cast<size_t>(mapped.at(output))),
                         graph.values[static_cast<size_t>(output)].name);
}

}  // namespace

ModelCheck check_model_outputs(const CompileResult& compiled, const std::vector<std::optional<HostTensor>>& given,
                               const MachineState& state) {
  const Graph& graph = compiled.graph;
  ModelCheck check;
  // Per kernel, on the simulator's own inputs.
  int kernels = 0, exact = 0;
  std::string worst;
  double worst_relative = -1;
  std::vector<int> carried;
  for (const auto& kernel : compiled.kernels.kernels) {
    std::string name;
    std::string fused;
    int output = -1;
    std::visit(
        [&](const auto& k) {
          name = k.name;
          fused = k.epilogue.fused_op;
          output = k.output;
        },
        kernel);
    carried.push_back(op_index(graph, name));
    if (!fused.empty()) carried.push_back(op_index(graph, fused));
    // A kernel whose output stayed on chip is checked together with the kernel reading it.
    const auto* gemm = std::get_if<GemmKernel>(&kernel);
    if (gemm && gemm->buffers.output) continue;
    std::vector<int> ops = std::move(carried);
    carried.clear();
    Comparison c = check_kernel(compiled, ops, output, given, state);
    ++kernels;
    if (c.ok && c.worst_abs_error == 0) ++exact;  // float results within tolerance are not bit-exact
    if (!c.ok) {
      check.ok = false;
      check.text += "  check: op " + name + ": " + c.message + "\n";
    }
    const double relative = c.worst_abs_error;
    if (relative > worst_relative && c.mismatches > 0) {
      worst_relative = relative;
      worst = c.message;
    }
  }
  if (check.ok) {
    check.text += fmt::format("  check: all {} kernels match the reference on their simulated inputs ({} bit-exact){}\n",
                              kernels, exact, worst.empty() ? "" : "; largest difference: " + worst);
  }
  // End to end.
  std::vector<HostTensor> expected = run_reference(graph, given);
  for (int v : graph.outputs) {
    const Value& value = graph.values[static_cast<size_t>(v)];
    Comparison c = compare_tensors(simulated(compiled, v, state), expected[static_cast<size_t>(v)], value.name);
    if (!is_float(value.dtype)) {
      check.ok &= c.ok;
      check.text += "  check: " + c.message + "\n";
    } else {
      check.text += "  end to end: " + c.message + (c.ok ? "" : " (float rounding compounds across layers; the per-kernel checks above decide)") + "\n";
    }
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
      if (!k->buffers.note.empty()) out += fmt::format("  {:<24} {}\n", "", k->buffers.note);
    } else if (const auto* d = std::get_if<DepthwiseKernel>(&kernel)) {
      out += fmt::format("  {:<24} {}\n", d->name, d->why);
    } else if (const auto* v = std::get_if<VectorKernel>(&kernel)) {
      out += fmt::format("  {:<24} vector unit / DMA{}\n", v->name,
                         v->epilogue.fused_op.empty() ? "" : fmt::format(" (includes {})", v->epilogue.fused_op));
    } else if (const auto* a = std::get_if<AttentionKernel>(&kernel)) {
      const AttentionTiling& t = a->tiling;
      out += fmt::format("  {:<24} attention, {}: score tiles {}x{} per head, {} computed of {} ({} full, {} partial), "
                         "{} empty skipped; x{} heads x{} batch\n",
                         a->name, attention_lowering_name(a->lowering), t.q_block, t.k_block, t.full + t.partial, t.tiles(),
                         t.full, t.partial, t.empty, a->heads, a->batch);
      out += fmt::format("  {:<24} {}\n", "", t.why);
    }
  }
  return out;
}

}  // namespace tpusim
