#include "compiler/model_run.h"
#include "compiler/report_context.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/reference.h"
#include "compiler/reference_fp64.h"
#include "ir/diagnostics.h"
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
    // The check's reference copy, and for floats the fp64 evaluation (a double per element).
    if (check) add(value_bytes + (is_float(v.dtype) ? v.element_count() * 8 : 0));
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
// hold the simulator's data; weights keep theirs. `key_blocks`: an attention kernel's key
// blocks per query row (the rescalings of its running softmax), for the float bound.
KernelCheck check_kernel(const CompileResult& compiled, const std::vector<int>& ops, int output, int64_t key_blocks,
                         const std::vector<std::optional<HostTensor>>& given, const MachineState& state) {
  const Graph& graph = compiled.graph;
  KernelCheck check;
  Graph sub;
  sub.name = graph.ops[static_cast<size_t>(ops.front())].name;
  sub.file = graph.file;
  std::vector<std::optional<HostTensor>> data;
  std::map<int, int> mapped;
  Fp64Options options;
  options.bounds = true;
  for (int o : ops) {
    Op op = graph.ops[static_cast<size_t>(o)];
    check.ops.push_back(op.name);
    if (op.kind == OpKind::Attention) options.attention_key_blocks[op.name] = key_blocks;
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
  const int sub_output = mapped.at(output);
  sub.outputs = {sub_output};
  check.kernel = check.ops.front();
  std::vector<HostTensor> want = run_reference(sub, data);
  const Value& value = graph.values[static_cast<size_t>(output)];
  std::vector<double> tolerance;
  if (is_float(value.dtype) && is_float_graph(sub)) {
    std::vector<Fp64Tensor> exact = run_reference_fp64(sub, data, options);
    tolerance = float_tolerance(exact.at(static_cast<size_t>(sub_output)), value.dtype);
  }
  check.comparison = compare_tensors(simulated(compiled, output, state), want.at(static_cast<size_t>(sub_output)), value.name,
                                     tolerance);
  return check;
}

// ||a - b|| / ||b|| over the elements (0 when both are 0; infinite when b is 0 and a is not, or
// a value is not finite).
double relative_rms_error(const HostTensor& a, const std::vector<double>& b) {
  double difference = 0, norm = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const double x = load_element(a.dtype, a.bytes.data() + i * static_cast<size_t>(dtype_size(a.dtype)));
    difference += (x - b[i]) * (x - b[i]);
    norm += b[i] * b[i];
  }
  if (!std::isfinite(difference) || !std::isfinite(norm)) return std::numeric_limits<double>::infinity();
  if (norm == 0) return difference == 0 ? 0 : std::numeric_limits<double>::infinity();
  return std::sqrt(difference / norm);
}

}  // namespace

ModelCheck check_model_outputs(const CompileResult& compiled, const std::vector<std::optional<HostTensor>>& given,
                               const MachineState& state) {
  const Graph& graph = compiled.graph;
  ModelCheck check;
  // Per kernel, on the simulator's own inputs.
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
    int64_t key_blocks = 1;
    if (const auto* a = std::get_if<AttentionKernel>(&kernel); a && a->lowering == AttentionLowering::Flash) {
      key_blocks = a->tiling.k_blocks;
    }
    KernelCheck k = check_kernel(compiled, ops, output, key_blocks, given, state);
    ++check.kernels_checked;
    if (k.comparison.bit_exact) ++check.kernels_bit_exact;
    if (!k.comparison.ok) {
      ++check.kernels_failed;
      check.ok = false;
      check.text += "  check: op " + name + ": " + k.comparison.message + "\n";
    }
    check.kernels.push_back(std::move(k));
  }
  const KernelCheck* closest = nullptr;  // the inexact kernel closest to its bound
  for (const KernelCheck& k : check.kernels) {
    if (!k.comparison.bit_exact && (!closest || k.comparison.worst_ratio > closest->comparison.worst_ratio)) closest = &k;
  }
  const std::string closest_text =
      !closest                       ? ""
      : check.kernels_checked == 1 ? "; op " + closest->kernel + ": " + closest->comparison.message
                                     : "; closest to its bound: op " + closest->kernel + ": " + closest->comparison.message;
  // Layers (kernels) and comparisons differ when outputs stay on chip: say so, so that the
  // count matches the report's table.
  const int64_t layers = static_cast<int64_t>(compiled.kernels.kernels.size());
  const int64_t on_chip = layers - check.kernels_checked;
  const std::string together =
      on_chip == 0 ? ""
                   : fmt::format(", in {}: {}", counted(check.kernels_checked, "comparison"),
                                 on_chip == 1 ? "1 layer keeps its output on chip and is compared together with the layer "
                                                "reading it"
                                              : fmt::format("{} layers keep their outputs on chip and are compared together "
                                                            "with the layers reading them", on_chip));
  if (check.ok && layers == 1) {
    check.text += fmt::format("  check: the 1 layer matches the reference on its simulated inputs ({}){}\n",
                              check.kernels_bit_exact == 1 ? "bit-exact" : "within its float bounds", closest_text);
  } else if (check.ok) {
    check.text += fmt::format("  check: all {} match the reference on their simulated inputs{} ({} bit-exact{}){}\n",
                              counted(layers, "layer"), together, check.kernels_bit_exact,
                              check.kernels_bit_exact < check.kernels_checked ? ", the rest within their float bounds" : "",
                              closest_text);
  } else {
    check.text += fmt::format("  check: {} of {} {} from the reference on their simulated inputs{} ({} bit-exact)\n",
                              check.kernels_failed, counted(check.kernels_checked, "comparison"),
                              check.kernels_failed == 1 ? "differs" : "differ", together, check.kernels_bit_exact);
  }
  // End to end.
  std::vector<HostTensor> expected = run_reference(graph, given);
  bool any_float = false;
  for (int v : graph.outputs) any_float |= is_float(graph.values[static_cast<size_t>(v)].dtype);
  std::vector<Fp64Tensor> exact;
  if (any_float) exact = run_reference_fp64(graph, given);
  for (int v : graph.outputs) {
    const Value& value = graph.values[static_cast<size_t>(v)];
    OutputCheck out;
    out.name = value.name;
    out.type = value.dtype;
    const HostTensor got = simulated(compiled, v, state);
    if (!is_float(value.dtype)) {
      out.reference = compare_tensors(got, expected[static_cast<size_t>(v)], value.name);
      out.ok = out.reference.ok;
      check.text += "  check: " + out.reference.message + "\n";
    } else {
      const std::vector<double>& x = exact.at(static_cast<size_t>(v)).values;
      TPUSIM_CHECK(static_cast<int64_t>(x.size()) == value.element_count(), "no fp64 evaluation of '" + value.name + "'");
      out.relative_rms_error = relative_rms_error(got, x);
      out.reference_relative_rms_error = relative_rms_error(expected[static_cast<size_t>(v)], x);
      const EndToEndBound bound = end_to_end_bound(graph, v);
      out.bf16_roundings = bound.bf16_roundings;
      out.fp32_roundings = bound.fp32_roundings;
      out.bound = bound.relative_rms;
      out.ok = out.relative_rms_error <= out.bound;
      std::string roundings;
      if (bound.bf16_roundings > 0) roundings = counted(bound.bf16_roundings, "bf16 rounding") + " x 2^-8";
      if (bound.fp32_roundings > 0) {
        roundings += (roundings.empty() ? "" : " + ") + counted(bound.fp32_roundings, "fp32 rounding") + " x 2^-24";
      }
      if (roundings.empty()) roundings = "no rounding";
      check.text += fmt::format(
          "  {}: {}: relative RMS error {:.3g} against the fp64 evaluation of the graph, {} the bound {:.3g} "
          "({} on the longest path); the fp32 reference's is {:.3g}\n",
          out.ok ? "end to end" : "check failed end to end", value.name, out.relative_rms_error, out.ok ? "within" : "beyond",
          out.bound, roundings, out.reference_relative_rms_error);
    }
    check.ok &= out.ok;
    check.outputs.push_back(std::move(out));
  }
  return check;
}

std::string compile_summary(const CompileResult& compiled) {
  std::string out = "\n  compiler choices per op\n";
  for (const auto& kernel : compiled.kernels.kernels) {
    const std::string name = std::visit([](const auto& k) { return k.name; }, kernel);
    const std::vector<std::string> lines = kernel_choices(kernel);
    for (size_t i = 0; i < lines.size(); ++i) out += fmt::format("  {:<24} {}\n", i == 0 ? name : "", lines[i]);
  }
  return out;
}

}  // namespace tpusim
