#include "compiler/report_context.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace tpusim {
namespace {

const Op* op_named(const Graph& g, const std::string& name) {
  for (const Op& op : g.ops) {
    if (op.name == name) return &op;
  }
  return nullptr;
}

std::string shape_of(const Graph& g, int value) {
  return fmt::format("[{}]", fmt::join(g.values[static_cast<size_t>(value)].shape, ","));
}

std::string window_text(const ConvGeometry& c) {
  std::string text = fmt::format("{}", fmt::join(c.kernel, "x"));
  bool strided = false;
  for (int64_t s : c.strides) strided |= s != 1;
  if (strided) text += fmt::format(" stride {}", fmt::join(c.strides, "x"));
  return text;
}

// One line about the op a kernel computes.
std::string op_text(const Graph& g, const Op& op, const std::string& fused) {
  std::string text;
  const Value& out = g.values[static_cast<size_t>(op.output)];
  switch (op.kind) {
    case OpKind::Conv: {
      const ConvGeometry c = conv_geometry(g, op);
      const bool depthwise = c.groups > 1 && c.groups == c.in_channels;
      text = fmt::format("{}conv {}, {} -> {} channels{}, {} -> {}", depthwise ? "depthwise " : "", window_text(c),
                         c.in_channels, c.out_channels,
                         c.groups > 1 && !depthwise ? fmt::format(" in {} groups", c.groups) : "",
                         shape_of(g, op.inputs[0]), shape_of(g, op.output));
      break;
    }
    case OpKind::MaxPool:
    case OpKind::AvgPool:
      text = fmt::format("{} {}, {} -> {}", op_info(op.kind).name, window_text(conv_geometry(g, op)),
                         shape_of(g, op.inputs[0]), shape_of(g, op.output));
      break;
    case OpKind::Add: {
      const Value& a = g.values[static_cast<size_t>(op.inputs[0])];
      const Value& b = g.values[static_cast<size_t>(op.inputs[1])];
      const bool residual = a.kind == ValueKind::Activation && b.kind == ValueKind::Activation;
      text = fmt::format("{}add: {} + {}, {}", residual ? "residual " : "", a.name, b.name, shape_of(g, op.output));
      break;
    }
    case OpKind::Attention:
      text = fmt::format("attention{}{}, q {} -> {}", op.attr_int("causal", 0) ? ", causal" : "",
                         op.attrs.count("window") ? fmt::format(", window {}", op.attr_int("window", 0)) : "",
                         shape_of(g, op.inputs[0]), fmt::format("[{}]", fmt::join(out.shape, ",")));
      break;
    default: {
      std::vector<std::string> inputs;
      for (int v : op.inputs) {
        if (g.values[static_cast<size_t>(v)].kind != ValueKind::Weight) inputs.push_back(shape_of(g, v));
      }
      text = fmt::format("{} {} -> {}", op_info(op.kind).name, fmt::join(inputs, " x "), shape_of(g, op.output));
    }
  }
  if (!fused.empty()) text += fmt::format(" (with {} folded in)", fused);
  return text;
}

// The op's kind as the report names it: the graph op, told apart where one kind does two jobs.
std::string op_kind_text(const Graph& g, const Op& op) {
  if (op.kind == OpKind::Add) {
    const Value& a = g.values[static_cast<size_t>(op.inputs[0])];
    const Value& b = g.values[static_cast<size_t>(op.inputs[1])];
    if (a.kind == ValueKind::Activation && b.kind == ValueKind::Activation) return "residual add";
  }
  if (op.kind == OpKind::Conv) {
    const ConvGeometry c = conv_geometry(g, op);
    if (c.groups > 1 && c.groups == c.in_channels) return "depthwise conv";
  }
  return op_info(op.kind).name;
}

template <typename K>
LayerInfo info_of(const Graph& g, const K& k, const std::string& fused) {
  LayerInfo info;
  info.label = k.name;
  if (const Op* op = op_named(g, k.name)) {
    info.op_kind = op_kind_text(g, *op);
    info.op_text = op_text(g, *op, fused);
    info.graph_macs = op_macs(g, *op);
    if (!fused.empty()) {
      if (const Op* folded = op_named(g, fused)) info.graph_macs += op_macs(g, *folded);
    }
  }
  return info;
}

}  // namespace

std::vector<std::string> kernel_choices(const Kernel& kernel) {
  std::vector<std::string> lines;
  if (const auto* k = std::get_if<GemmKernel>(&kernel)) {
    lines.push_back(fmt::format("GEMM M={} K={} N={}{}: {}", k->M, k->K, k->N,
                                k->groups > 1 ? fmt::format(" x{} groups", k->groups) : "", k->tiling.why));
    if (!k->epilogue.fused_op.empty()) lines.push_back(fmt::format("(includes {})", k->epilogue.fused_op));
    if (!k->buffers.note.empty()) lines.push_back(k->buffers.note);
  } else if (const auto* d = std::get_if<DepthwiseKernel>(&kernel)) {
    lines.push_back(d->why);
  } else if (const auto* v = std::get_if<VectorKernel>(&kernel)) {
    lines.push_back(fmt::format("vector unit / DMA{}",
                                v->epilogue.fused_op.empty() ? "" : fmt::format(" (includes {})", v->epilogue.fused_op)));
  } else if (const auto* a = std::get_if<AttentionKernel>(&kernel)) {
    const AttentionTiling& t = a->tiling;
    lines.push_back(fmt::format("attention, {}: score tiles {}x{} per head, {} computed of {} ({} full, {} partial), "
                                "{} empty skipped; x{} heads x{} batch",
                                attention_lowering_name(a->lowering), t.q_block, t.k_block, t.full + t.partial,
                                t.tiles(), t.full, t.partial, t.empty, a->heads, a->batch));
    lines.push_back(t.why);
  }
  return lines;
}

ReportContext report_context(const CompileResult& compiled, const ArchConfig& arch) {
  ReportContext context;
  const Graph& g = compiled.graph;
  context.graph_macs = graph_macs(g);
  context.weight_tensors.assign(compiled.program.tensors.size(), false);
  for (size_t v = 0; v < g.values.size(); ++v) {
    const int t = v < compiled.tensor_of_value.size() ? compiled.tensor_of_value[v] : -1;
    if (g.values[v].kind == ValueKind::Weight && t >= 0) context.weight_tensors[static_cast<size_t>(t)] = true;
  }
  for (const auto& kernel : compiled.kernels.kernels) {
    LayerInfo info;
    if (const auto* k = std::get_if<GemmKernel>(&kernel)) {
      info = info_of(g, *k, k->epilogue.fused_op);
      info.gemm_k = k->K;
      info.gemm_n = k->N;
      if (arch.mxu.dataflow == Dataflow::WeightStationary) {
        info.rows_used = k->tiling.k_boxes.largest();
        info.cols_used = k->tiling.n_tile;
      }
    } else if (const auto* d = std::get_if<DepthwiseKernel>(&kernel)) {
      info = info_of(g, *d, d->epilogue.fused_op);
    } else if (const auto* v = std::get_if<VectorKernel>(&kernel)) {
      info = info_of(g, *v, v->epilogue.fused_op);
    } else if (const auto* a = std::get_if<AttentionKernel>(&kernel)) {
      info = info_of(g, *a, "");
      info.op_text += fmt::format(", {} heads, {}", a->heads, attention_lowering_name(a->lowering));
    }
    info.choices = kernel_choices(kernel);
    context.layers.push_back(std::move(info));
  }
  return context;
}

}  // namespace tpusim
