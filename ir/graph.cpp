#include "ir/graph.h"

#include <algorithm>

#include <fmt/format.h>

namespace tpusim {

namespace {

using T = AttrType;

std::vector<OpInfo> build_op_table() {
  std::vector<OpInfo> t;
  const std::vector<AttrInfo> conv_attrs = {
      {"strides", T::Ints, false, "stride per spatial dim (default 1)"},
      {"pads", T::Ints, false, "ONNX order [begin..., end...] (default 0)"},
      {"dilations", T::Ints, false, "dilation per spatial dim (default 1)"},
      {"groups", T::Int, false, "channel groups; = channels for depthwise (default 1)"},
  };
  const std::vector<AttrInfo> pool_attrs = {
      {"kernel", T::Ints, true, "window size per spatial dim"},
      {"strides", T::Ints, false, "stride per spatial dim (default 1)"},
      {"pads", T::Ints, false, "ONNX order [begin..., end...] (default 0)"},
  };
  t.push_back({OpKind::Conv, "conv", 2, 3, conv_attrs, "convolution, NCHW (2-D) or NCW (1-D); weights [OC, C/groups, KH, KW]", "x, w[, b]"});
  t.push_back({OpKind::Linear, "linear", 2, 3, {}, "y = x . w^T + b with w [N, K]", "x, w[, b]"});
  t.push_back({OpKind::MatMul, "matmul", 2, 2, {}, "batched y = a . b over the last two dims", "a, b"});
  t.push_back({OpKind::Add, "add", 2, 2, {}, "y = a + b (b may broadcast along trailing dims)", "a, b"});
  t.push_back({OpKind::Mul, "mul", 2, 2, {}, "y = a * b (b may broadcast along trailing dims)", "a, b"});
  t.push_back({OpKind::Relu, "relu", 1, 1, {}, "y = max(x, 0)", "x"});
  t.push_back({OpKind::Clip, "clip", 1, 1,
               {{"min", T::Float, true, "lower bound"}, {"max", T::Float, true, "upper bound"}},
               "y = min(max(x, min), max); relu6 is clip 0..6", "x"});
  t.push_back({OpKind::Gelu, "gelu", 1, 1, {}, "y = gelu(x), tanh approximation", "x"});
  t.push_back({OpKind::MaxPool, "maxpool", 1, 1, pool_attrs, "max over each window (padding never wins)", "x"});
  t.push_back({OpKind::AvgPool, "avgpool", 1, 1, pool_attrs, "mean over each window, padding counted as zeros", "x"});
  t.push_back({OpKind::GlobalAvgPool, "global_avgpool", 1, 1, {}, "mean over all spatial positions: NCHW -> NC11", "x"});
  t.push_back({OpKind::Flatten, "flatten", 1, 1, {{"axis", T::Int, false, "dims before it form the rows (default 1)"}},
               "reshape to 2-D [prod(dims < axis), prod(dims >= axis)]", "x"});
  t.push_back({OpKind::Reshape, "reshape", 1, 1, {{"shape", T::Ints, true, "new shape; one -1 is inferred"}},
               "same elements, new shape", "x"});
  t.push_back({OpKind::Transpose, "transpose", 1, 1, {{"perm", T::Ints, true, "output dim i is input dim perm[i]"}},
               "permute dimensions", "x"});
  t.push_back({OpKind::Concat, "concat", 1, 64, {{"axis", T::Int, true, "the dim to join along"}},
               "join inputs along one dim", "x1, x2, ..."});
  t.push_back({OpKind::Softmax, "softmax", 1, 1, {{"axis", T::Int, false, "default -1 (the last)"}},
               "y = exp(x - max) / sum(exp(x - max)) along one dim", "x"});
  t.push_back({OpKind::LayerNorm, "layernorm", 3, 3, {{"epsilon", T::Float, false, "default 1e-5"}},
               "normalize over the last dim, then y = gamma * x_hat + beta", "x, gamma, beta"});
  t.push_back({OpKind::Attention, "attention", 3, 4,
               {{"heads", T::Int, true, "query heads"},
                {"kv_heads", T::Int, false, "key/value heads, dividing heads (default heads)"},
                {"causal", T::Int, false, "1: position i attends to j <= i (default 0)"},
                {"window", T::Int, false, "attend to the last `window` positions only (default 0 = all)"},
                {"scale", T::Float, false, "score scale (default 1/sqrt(head dim))"}},
               "softmax(q . k^T * scale + mask) . v per head; optional 4th input: an additive mask", "q, k, v[, mask]"});
  return t;
}

const std::vector<OpInfo>& op_table() {
  static const std::vector<OpInfo> table = build_op_table();
  return table;
}

}  // namespace

const OpInfo& op_info(OpKind kind) {
  const auto& info = op_table()[static_cast<size_t>(kind)];
  TPUSIM_CHECK(info.kind == kind, "op table out of order");
  return info;
}

std::optional<OpKind> parse_op_kind(std::string_view name) {
  for (const auto& info : op_table()) {
    if (name == info.name) return info.kind;
  }
  return std::nullopt;
}

std::vector<std::string> op_kind_names() {
  std::vector<std::string> names;
  for (const auto& info : op_table()) names.emplace_back(info.name);
  return names;
}

int64_t Value::element_count() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {
template <typename V>
const V* attr_as(const Op& op, const std::string& name) {
  auto it = op.attrs.find(name);
  if (it == op.attrs.end()) return nullptr;
  const V* v = std::get_if<V>(&it->second);
  TPUSIM_CHECK(v != nullptr, fmt::format("attribute '{}' of op '{}' has the wrong type", name, op.name));
  return v;
}
}  // namespace

int64_t Op::attr_int(const std::string& name, int64_t fallback) const {
  const int64_t* v = attr_as<int64_t>(*this, name);
  return v ? *v : fallback;
}

double Op::attr_float(const std::string& name, double fallback) const {
  auto it = attrs.find(name);
  if (it == attrs.end()) return fallback;
  if (const int64_t* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
  const double* v = attr_as<double>(*this, name);
  return *v;
}

std::vector<int64_t> Op::attr_ints(const std::string& name, std::vector<int64_t> fallback) const {
  const std::vector<int64_t>* v = attr_as<std::vector<int64_t>>(*this, name);
  return v ? *v : fallback;
}

std::string Op::attr_string(const std::string& name, std::string fallback) const {
  const std::string* v = attr_as<std::string>(*this, name);
  return v ? *v : fallback;
}

int Graph::find_value(std::string_view value_name) const {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].name == value_name) return static_cast<int>(i);
  }
  return -1;
}

int Graph::add_value(Value v) {
  TPUSIM_CHECK(find_value(v.name) < 0, "value '" + v.name + "' added twice");
  values.push_back(std::move(v));
  return static_cast<int>(values.size()) - 1;
}

int Graph::add_op(Op op) {
  TPUSIM_CHECK(op.output >= 0 && op.output < static_cast<int>(values.size()), "op output is not a value");
  values[static_cast<size_t>(op.output)].producer = static_cast<int>(ops.size());
  ops.push_back(std::move(op));
  return static_cast<int>(ops.size()) - 1;
}

int64_t ConvGeometry::out_pixels() const {
  int64_t n = 1;
  for (int64_t d : out_size) n *= d;
  return n;
}

int64_t ConvGeometry::kernel_points() const {
  int64_t n = 1;
  for (int64_t d : kernel) n *= d;
  return n;
}

ConvGeometry conv_geometry(const Graph& graph, const Op& op) {
  const Value& x = graph.values.at(static_cast<size_t>(op.inputs.at(0)));
  TPUSIM_CHECK(x.shape.size() == 3 || x.shape.size() == 4, "conv_geometry needs an NCW or NCHW input");
  const size_t spatial = x.shape.size() - 2;
  ConvGeometry g;
  g.batch = x.shape[0];
  g.in_channels = x.shape[1];
  g.in_size.assign(x.shape.begin() + 2, x.shape.end());
  if (op.kind == OpKind::Conv) {
    const Value& w = graph.values.at(static_cast<size_t>(op.inputs.at(1)));
    g.out_channels = w.shape.at(0);
    g.kernel.assign(w.shape.begin() + 2, w.shape.end());
    g.groups = op.attr_int("groups", 1);
    g.dilations = op.attr_ints("dilations", std::vector<int64_t>(spatial, 1));
  } else {
    g.out_channels = g.in_channels;
    g.kernel = op.attr_ints("kernel", {});
    g.dilations.assign(spatial, 1);
  }
  g.strides = op.attr_ints("strides", std::vector<int64_t>(spatial, 1));
  std::vector<int64_t> pads = op.attr_ints("pads", std::vector<int64_t>(2 * spatial, 0));
  g.pads_begin.assign(pads.begin(), pads.begin() + static_cast<long>(std::min(spatial, pads.size())));
  g.pads_end.assign(pads.begin() + static_cast<long>(std::min(spatial, pads.size())), pads.end());
  TPUSIM_CHECK(g.kernel.size() == spatial && g.strides.size() == spatial && g.dilations.size() == spatial &&
                   g.pads_begin.size() == spatial && g.pads_end.size() == spatial,
               "conv attributes do not match the input rank (infer_shapes checks this first)");
  for (size_t d = 0; d < spatial; ++d) {
    int64_t span = (g.kernel[d] - 1) * g.dilations[d] + 1;
    g.out_size.push_back((g.in_size[d] + g.pads_begin[d] + g.pads_end[d] - span) / g.strides[d] + 1);
  }
  return g;
}

int64_t op_macs(const Graph& graph, const Op& op) {
  auto value = [&](int i) -> const Value& { return graph.values.at(static_cast<size_t>(op.inputs.at(static_cast<size_t>(i)))); };
  switch (op.kind) {
    case OpKind::Conv: {
      ConvGeometry g = conv_geometry(graph, op);
      return g.batch * g.out_pixels() * g.out_channels * (g.in_channels / g.groups) * g.kernel_points();
    }
    case OpKind::Linear: {
      const Value& x = value(0);
      const Value& w = value(1);
      return x.element_count() / x.shape.back() * w.shape[0] * w.shape[1];
    }
    case OpKind::MatMul: {
      const Value& a = value(0);
      const Value& b = value(1);
      return a.element_count() * b.shape.back();
    }
    case OpKind::Attention: {
      // Two GEMMs per head: scores = q . k^T and out = p . v (masking does not change this
      // count; the report shows what mask-aware tiling skips).
      const Value& q = value(0);
      const Value& k = value(1);
      int64_t batch = q.shape[0], seq_q = q.shape[1], seq_k = k.shape[1], width = q.shape[2];
      return 2 * batch * seq_q * seq_k * width;
    }
    default:
      return 0;
  }
}

int64_t graph_macs(const Graph& graph) {
  int64_t total = 0;
  for (const auto& op : graph.ops) total += op_macs(graph, op);
  return total;
}

}  // namespace tpusim
