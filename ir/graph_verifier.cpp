// Checks of the graph IR: `verify_graph` (structure: names, producers, order, attribute
// names and types, outputs; every problem) and `infer_shapes` (each op's typing rule, in op
// order; the first problem). The rules are the ones docs/graph-format.md states per op.
#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/graph.h"
#include "ir/sizes.h"

namespace tpusim {
namespace {

// The scales a value may have (docs/model-format.md, docs/graph-format.md).
constexpr double kMinScale = 1e-18, kMaxScale = 1e18;

std::string dims_text(const std::vector<int64_t>& dims) { return fmt::format("[{}]", fmt::join(dims, ",")); }

std::string type_text(const Value& v) { return fmt::format("{}{}", dtype_name(v.dtype), dims_text(v.shape)); }

std::string type_text(DType dtype, const std::vector<int64_t>& shape) {
  return fmt::format("{}{}", dtype_name(dtype), dims_text(shape));
}

std::string join_names(const std::vector<std::string>& names) { return fmt::format("{}", fmt::join(names, ", ")); }

const char* attr_type_text(AttrType type) {
  switch (type) {
    case AttrType::Int: return "an integer";
    case AttrType::Float: return "a number";
    case AttrType::Ints: return "a list of integers";
    case AttrType::String: return "a string";
  }
  return "?";
}

bool attr_has_type(const AttrValue& value, AttrType type) {
  switch (type) {
    case AttrType::Int: return std::holds_alternative<int64_t>(value);
    case AttrType::Float: return std::holds_alternative<double>(value) || std::holds_alternative<int64_t>(value);
    case AttrType::Ints: return std::holds_alternative<std::vector<int64_t>>(value);
    case AttrType::String: return std::holds_alternative<std::string>(value);
  }
  return false;
}

// Ops whose int8 result has the input's scale: they move or select values, never rescale.
bool keeps_scale(OpKind kind) {
  switch (kind) {
    case OpKind::Relu:
    case OpKind::Clip:
    case OpKind::MaxPool:
    case OpKind::Flatten:
    case OpKind::Reshape:
    case OpKind::Transpose:
    case OpKind::Concat:
      return true;
    default:
      return false;
  }
}

// Ops whose result takes the input's scale when none is written (a convenient default).
bool inherits_scale(OpKind kind) {
  return keeps_scale(kind) || kind == OpKind::AvgPool || kind == OpKind::GlobalAvgPool;
}

// The MXU's ops: int8 operands may give an int32 result (the accumulators), bf16 an fp32 one.
bool is_matrix_op(OpKind kind) {
  return kind == OpKind::Conv || kind == OpKind::Linear || kind == OpKind::MatMul;
}

// Infers one op's result and checks its inputs and attributes. Every problem is an Error at
// the op's location that starts with "KIND 'NAME': ".
class OpTyper {
 public:
  OpTyper(Graph& graph, const Op& op) : graph_(graph), op_(op), info_(op_info(op.kind)) {}

  void run() {
    Value& out = graph_.values.at(static_cast<size_t>(op_.output));
    // check_graph has seen every input and weight typed and every op after its producers, and
    // each earlier op's result was typed (with a scale when int8) before this one.
    for (size_t i = 0; i < op_.inputs.size(); ++i) {
      const Value& v = in(i);
      TPUSIM_CHECK(!v.shape.empty() && (v.dtype != DType::Int8 || v.scale > 0),
                   "operand '" + v.name + "' of '" + op_.name + "' is untyped or an int8 value without a scale");
    }
    infer();
    for (int64_t d : shape_) {
      if (d > kMaxDimension) {
        fail(fmt::format("the result {} has a dimension larger than {}, the largest tpusim accepts",
                         type_text(dtype_, shape_), kMaxDimension));
      }
    }
    if (!checked_element_count(shape_)) {
      fail(fmt::format("the result {} has more than 2^48 elements, the most one tensor may have",
                       type_text(dtype_, shape_)));
    }

    bool declared = !out.shape.empty();
    DType dtype = dtype_;
    if (declared && is_matrix_op(op_.kind) && out.dtype == accumulator_type(dtype_)) dtype = out.dtype;
    if (declared && (out.dtype != dtype || out.shape != shape_)) {
      // A matrix op's result may also be its accumulators; say so when the type is what differs.
      std::string hint = is_matrix_op(op_.kind) && out.dtype != dtype_ && dtype_ != accumulator_type(dtype_)
                             ? fmt::format(" (or {}, the accumulators)", type_text(accumulator_type(dtype_), shape_))
                             : "";
      throw Error(out.location,
                  fmt::format("value '{}' is declared {} but {} gives {}{}; fix the declaration or leave the "
                              "type out to have it inferred",
                              out.name, type_text(out), info_.name, type_text(dtype_, shape_), hint));
    }
    out.dtype = dtype;
    out.shape = shape_;

    // Quantization of the result.
    const Value& first = in(0);
    if (out.dtype == DType::Int8) {
      if (out.scale == 0 && inherits_scale(op_.kind) && first.dtype == DType::Int8) out.scale = first.scale;
      if (!(out.scale > 0)) {
        fail(fmt::format("the int8 result needs a scale; add scale=S to the line of '{}' (real = S * q)", out.name));
      }
      if (keeps_scale(op_.kind)) {
        for (size_t i = 0; i < op_.inputs.size(); ++i) {
          if (in(i).scale != out.scale) {
            fail(fmt::format("'{}' has scale {} but the result has scale {}; {} does not rescale, so int8 "
                             "inputs and the result share one scale (leave scale= out to inherit it)",
                             in(i).name, graph_number_text(in(i).scale), graph_number_text(out.scale), info_.name));
          }
        }
      }
    } else if (out.scale != 0) {
      fail(fmt::format("the result is {} and cannot have a scale (scales quantize int8 values); remove scale={}",
                       dtype_name(out.dtype), graph_number_text(out.scale)));
    }
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(op_.location, fmt::format("{} '{}': {}", info_.name, op_.name, message));
  }
  const Value& in(size_t i) const { return graph_.values.at(static_cast<size_t>(op_.inputs.at(i))); }
  std::string described(size_t i) const { return fmt::format("'{}' {}", in(i).name, type_text(in(i))); }
  int64_t rank(size_t i) const { return static_cast<int64_t>(in(i).shape.size()); }

  // --- operand types ---
  void require_types(size_t i, std::initializer_list<DType> allowed, const char* why) const {
    if (std::find(allowed.begin(), allowed.end(), in(i).dtype) != allowed.end()) return;
    fail(fmt::format("'{}' is {}; {}", in(i).name, dtype_name(in(i).dtype), why));
  }
  void require_same_type(size_t i, size_t j) const {
    if (in(i).dtype == in(j).dtype) return;
    fail(fmt::format("'{}' is {} but '{}' is {}; they must have the same type", in(j).name,
                     dtype_name(in(j).dtype), in(i).name, dtype_name(in(i).dtype)));
  }
  void numeric_operand() const {
    require_types(0, {DType::Int8, DType::BF16, DType::FP32},
                  fmt::format("{} takes int8, bf16 or fp32", info_.name).c_str());
  }
  void float_operand(size_t i) const {
    require_types(i, {DType::BF16, DType::FP32},
                  fmt::format("{} is computed in floating point and takes bf16 or fp32", info_.name).c_str());
  }
  // The bias of conv and linear: int32 (scale s_x * s_w) for int8 operands, else bf16 or fp32.
  void bias(size_t i, int64_t channels, const char* what) const {
    const Value& b = in(i);
    if (in(0).dtype == DType::Int8) {
      if (b.dtype != DType::Int32) {
        fail(fmt::format("the bias '{}' must be int32 for int8 operands (its scale is the product of the "
                         "input and weight scales), got {}", b.name, dtype_name(b.dtype)));
      }
    } else if (b.dtype != DType::FP32 && b.dtype != DType::BF16) {
      fail(fmt::format("the bias '{}' must be fp32 or bf16 for {} operands, got {}", b.name,
                       dtype_name(in(0).dtype), dtype_name(b.dtype)));
    }
    if (b.shape != std::vector<int64_t>{channels}) {
      fail(fmt::format("the bias '{}' is {} but there are {} {}; it must be [{}]", b.name, dims_text(b.shape),
                       channels, what, channels));
    }
  }

  // --- attributes ---
  int64_t normalized_axis(int64_t axis, int64_t rank, int64_t extra, const std::string& of) const {
    // Valid axes are -rank .. rank-1+extra (flatten allows axis = rank).
    if (axis < -rank || axis > rank - 1 + extra) {
      fail(fmt::format("axis={} is out of range for the {}-D {} (use {}..{})", axis, rank, of, -rank,
                       rank - 1 + extra));
    }
    return axis < 0 ? axis + rank : axis;
  }
  std::vector<int64_t> per_spatial(const char* name, size_t count, int64_t fallback, int64_t minimum) const {
    std::vector<int64_t> values = op_.attr_ints(name, std::vector<int64_t>(count, fallback));
    if (values.size() != count) {
      fail(fmt::format("{}={} must have {} entr{}, one per spatial dim of {}", name, dims_text(values), count,
                       count == 1 ? "y" : "ies", described(0)));
    }
    for (int64_t v : values) {
      if (v < minimum) fail(fmt::format("every entry of {} must be at least {}, got {}", name, minimum, dims_text(values)));
    }
    return values;
  }
  std::vector<int64_t> pads(size_t spatial) const {
    std::vector<int64_t> values = op_.attr_ints("pads", std::vector<int64_t>(2 * spatial, 0));
    if (values.size() != 2 * spatial) {
      fail(fmt::format("pads={} must have {} entries, [begin..., end...] for {} spatial dim{}", dims_text(values),
                       2 * spatial, spatial, spatial == 1 ? "" : "s"));
    }
    for (int64_t v : values) {
      if (v < 0) fail(fmt::format("pads cannot be negative, got {}", dims_text(values)));
    }
    return values;
  }
  // NCW or NCHW for conv and pools.
  size_t spatial_input(const char* layout_hint) const {
    if (rank(0) != 3 && rank(0) != 4) {
      fail(fmt::format("the input must be NCW (3-D) or NCHW (4-D){}, got {}", layout_hint, described(0)));
    }
    return static_cast<size_t>(rank(0) - 2);
  }
  void window_fits(const std::vector<int64_t>& kernel, const std::vector<int64_t>& dilations,
                   const std::vector<int64_t>& pad_values) const {
    const size_t spatial = kernel.size();
    for (size_t d = 0; d < spatial; ++d) {
      int64_t size = in(0).shape[d + 2];
      int64_t padded = size + pad_values[d] + pad_values[d + spatial];
      int64_t span = (kernel[d] - 1) * dilations[d] + 1;
      if (span > padded) {
        fail(fmt::format("the window spans {} in spatial dim {} (kernel {}, dilation {}) but the padded input is "
                         "only {} ({} + pads {} + {}); add padding or use a smaller kernel",
                         span, d, kernel[d], dilations[d], padded, size, pad_values[d], pad_values[d + spatial]));
      }
    }
  }

  // --- per op ---
  void infer() {
    dtype_ = in(0).dtype;
    switch (op_.kind) {
      case OpKind::Conv: return conv();
      case OpKind::Linear: return linear();
      case OpKind::MatMul: return matmul();
      case OpKind::Add:
      case OpKind::Mul: return elementwise_binary();
      case OpKind::Relu:
      case OpKind::Gelu:
        numeric_operand();
        shape_ = in(0).shape;
        return;
      case OpKind::Clip: {
        numeric_operand();
        double low = op_.attr_float("min", 0), high = op_.attr_float("max", 0);
        if (std::isnan(low) || std::isnan(high)) fail("min and max must be numbers, not nan");
        if (low > high) {
          fail(fmt::format("min={} must not be greater than max={}", graph_number_text(low), graph_number_text(high)));
        }
        shape_ = in(0).shape;
        return;
      }
      case OpKind::MaxPool:
      case OpKind::AvgPool: return pool();
      case OpKind::GlobalAvgPool: {
        numeric_operand();
        spatial_input("");
        shape_ = in(0).shape;
        std::fill(shape_.begin() + 2, shape_.end(), 1);
        return;
      }
      case OpKind::Flatten: {
        int64_t axis = normalized_axis(op_.attr_int("axis", 1), rank(0), 1, "input " + described(0));
        int64_t rows = 1, cols = 1;
        for (int64_t d = 0; d < rank(0); ++d) (d < axis ? rows : cols) *= in(0).shape[static_cast<size_t>(d)];
        shape_ = {rows, cols};
        return;
      }
      case OpKind::Reshape: return reshape();
      case OpKind::Transpose: return transpose();
      case OpKind::Concat: return concat();
      case OpKind::Softmax:
        float_operand(0);
        normalized_axis(op_.attr_int("axis", -1), rank(0), 0, "input " + described(0));
        shape_ = in(0).shape;
        return;
      case OpKind::LayerNorm: return layernorm();
      case OpKind::Attention: return attention();
    }
  }

  void conv() {
    numeric_operand();
    require_same_type(0, 1);
    const size_t spatial = spatial_input("");
    const Value& x = in(0);
    const Value& w = in(1);
    if (w.shape.size() != x.shape.size()) {
      fail(fmt::format("the weight must be {} ({}-D like the input), got {}",
                       spatial == 2 ? "[OC, C/groups, KH, KW]" : "[OC, C/groups, K]", x.shape.size(), described(1)));
    }
    int64_t groups = op_.attr_int("groups", 1);
    int64_t channels = x.shape[1], out_channels = w.shape[0];
    if (groups < 1) fail(fmt::format("groups must be at least 1, got {}", groups));
    if (channels % groups != 0) {
      fail(fmt::format("groups={} does not divide the {} input channels of '{}'", groups, channels, x.name));
    }
    if (out_channels % groups != 0) {
      fail(fmt::format("groups={} does not divide the {} output channels (the first dim of '{}')", groups,
                       out_channels, w.name));
    }
    if (w.shape[1] != channels / groups) {
      fail(fmt::format("the weight '{}' is {} but '{}' has {} channels and groups={}, so its second dim must be "
                       "{} (C/groups)", w.name, dims_text(w.shape), x.name, channels, groups, channels / groups));
    }
    std::vector<int64_t> kernel(w.shape.begin() + 2, w.shape.end());
    per_spatial("strides", spatial, 1, 1);
    std::vector<int64_t> dilations = per_spatial("dilations", spatial, 1, 1);
    std::vector<int64_t> pad_values = pads(spatial);
    window_fits(kernel, dilations, pad_values);
    if (op_.inputs.size() == 3) bias(2, out_channels, "output channels");
    ConvGeometry g = conv_geometry(graph_, op_);
    shape_ = {g.batch, g.out_channels};
    shape_.insert(shape_.end(), g.out_size.begin(), g.out_size.end());
  }

  void linear() {
    numeric_operand();
    require_same_type(0, 1);
    const Value& x = in(0);
    const Value& w = in(1);
    if (w.shape.size() != 2) fail(fmt::format("the weight must be 2-D [N, K], got {}", described(1)));
    if (w.shape[1] != x.shape.back()) {
      fail(fmt::format("'{}' has K={} in its last dim but the weight '{}' is {}; it must be [N, {}]", x.name,
                       x.shape.back(), w.name, dims_text(w.shape), x.shape.back()));
    }
    if (op_.inputs.size() == 3) bias(2, w.shape[0], "outputs (the first dim of the weight)");
    shape_ = x.shape;
    shape_.back() = w.shape[0];
  }

  void matmul() {
    numeric_operand();
    require_same_type(0, 1);
    const Value& a = in(0);
    const Value& b = in(1);
    for (size_t i = 0; i < 2; ++i) {
      if (rank(i) < 2) fail(fmt::format("'{}' must have at least 2 dims [..., rows, cols], got {}", in(i).name, type_text(in(i))));
    }
    if (a.shape.size() != b.shape.size()) {
      fail(fmt::format("'{}' is {}-D but '{}' is {}-D; matmul needs equal batch dims (use linear for a weight "
                       "shared across the batch)", a.name, a.shape.size(), b.name, b.shape.size()));
    }
    size_t r = a.shape.size();
    if (!std::equal(a.shape.begin(), a.shape.end() - 2, b.shape.begin())) {
      fail(fmt::format("the batch dims differ: '{}' is {} and '{}' is {}", a.name, dims_text(a.shape), b.name,
                       dims_text(b.shape)));
    }
    if (a.shape[r - 1] != b.shape[r - 2]) {
      fail(fmt::format("'{}' has K={} (its last dim) but '{}' has {} rows (its second-to-last dim)", a.name,
                       a.shape[r - 1], b.name, b.shape[r - 2]));
    }
    shape_ = a.shape;
    shape_.back() = b.shape.back();
  }

  void elementwise_binary() {
    numeric_operand();
    require_same_type(0, 1);
    const Value& a = in(0);
    const Value& b = in(1);
    bool suffix = b.shape.size() <= a.shape.size() &&
                  std::equal(b.shape.begin(), b.shape.end(), a.shape.end() - static_cast<long>(b.shape.size()));
    if (!suffix) {
      fail(fmt::format("'{}' {} does not broadcast to '{}' {}: its shape must equal a trailing part of the "
                       "first input's", b.name, dims_text(b.shape), a.name, dims_text(a.shape)));
    }
    shape_ = a.shape;
  }

  void pool() {
    numeric_operand();
    const size_t spatial = spatial_input("");
    std::vector<int64_t> kernel = per_spatial("kernel", spatial, 1, 1);
    per_spatial("strides", spatial, 1, 1);
    std::vector<int64_t> pad_values = pads(spatial);
    for (size_t d = 0; d < 2 * spatial; ++d) {
      if (pad_values[d] >= kernel[d % spatial]) {
        fail(fmt::format("pads={} must be smaller than the kernel {} in each dim (a window would cover only "
                         "padding)", dims_text(pad_values), dims_text(kernel)));
      }
    }
    window_fits(kernel, std::vector<int64_t>(spatial, 1), pad_values);
    ConvGeometry g = conv_geometry(graph_, op_);
    shape_ = {g.batch, g.in_channels};
    shape_.insert(shape_.end(), g.out_size.begin(), g.out_size.end());
  }

  void reshape() {
    std::vector<int64_t> target = op_.attr_ints("shape", {});
    if (target.empty()) fail("shape=[] must have at least one dim");
    int inferred = -1;
    int64_t known = 1;
    for (size_t d = 0; d < target.size(); ++d) {
      if (target[d] == -1) {
        if (inferred >= 0) fail(fmt::format("shape={} has more than one -1", dims_text(target)));
        inferred = static_cast<int>(d);
      } else if (target[d] < 1) {
        fail(fmt::format("shape={} has {}; every entry is a size of at least 1, or -1 once", dims_text(target), target[d]));
      } else {
        known *= target[d];
      }
    }
    int64_t count = in(0).element_count();
    if (inferred >= 0) {
      if (count % known != 0) {
        fail(fmt::format("shape={} cannot hold the {} elements of {}: {} is not a multiple of {}",
                         dims_text(target), count, described(0), count, known));
      }
      target[static_cast<size_t>(inferred)] = count / known;
    } else if (known != count) {
      fail(fmt::format("shape={} has {} elements but {} has {}", dims_text(target), known, described(0), count));
    }
    shape_ = target;
  }

  void transpose() {
    std::vector<int64_t> perm = op_.attr_ints("perm", {});
    if (static_cast<int64_t>(perm.size()) != rank(0)) {
      fail(fmt::format("perm={} has {} entries but {} is {}-D", dims_text(perm), perm.size(), described(0), rank(0)));
    }
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    for (size_t d = 0; d < sorted.size(); ++d) {
      if (sorted[d] != static_cast<int64_t>(d)) {
        fail(fmt::format("perm={} is not a permutation of 0..{}", dims_text(perm), rank(0) - 1));
      }
    }
    for (int64_t p : perm) shape_.push_back(in(0).shape[static_cast<size_t>(p)]);
  }

  void concat() {
    const Value& first = in(0);
    int64_t axis = normalized_axis(op_.attr_int("axis", 0), rank(0), 0, "input " + described(0));
    shape_ = first.shape;
    for (size_t i = 1; i < op_.inputs.size(); ++i) {
      require_same_type(0, i);
      const Value& v = in(i);
      if (v.shape.size() != first.shape.size()) {
        fail(fmt::format("'{}' is {}-D but '{}' is {}-D; concatenated inputs have the same rank", v.name,
                         v.shape.size(), first.name, first.shape.size()));
      }
      for (size_t d = 0; d < v.shape.size(); ++d) {
        if (static_cast<int64_t>(d) != axis && v.shape[d] != first.shape[d]) {
          fail(fmt::format("'{}' is {} but '{}' is {}: all dims except axis {} must match (dim {} differs)", v.name,
                           dims_text(v.shape), first.name, dims_text(first.shape), axis, d));
        }
      }
      shape_[static_cast<size_t>(axis)] += v.shape[static_cast<size_t>(axis)];
    }
  }

  void layernorm() {
    float_operand(0);
    int64_t width = in(0).shape.back();
    for (size_t i = 1; i < 3; ++i) {
      float_operand(i);
      if (in(i).shape != std::vector<int64_t>{width}) {
        fail(fmt::format("{} '{}' is {} but must be [{}] (the last dim of '{}')", i == 1 ? "gamma" : "beta",
                         in(i).name, dims_text(in(i).shape), width, in(0).name));
      }
    }
    double epsilon = op_.attr_float("epsilon", 1e-5);
    if (!(epsilon > 0) || !std::isfinite(epsilon)) fail(fmt::format("epsilon must be positive, got {}", graph_number_text(epsilon)));
    shape_ = in(0).shape;
  }

  void attention() {
    for (size_t i = 0; i < 3; ++i) {
      float_operand(i);
      if (i > 0) require_same_type(0, i);
      if (rank(i) != 3) fail(fmt::format("'{}' must be 3-D [batch, seq, heads*dim], got {}", in(i).name, type_text(in(i))));
    }
    const Value& q = in(0);
    const Value& k = in(1);
    const Value& v = in(2);
    for (size_t i = 1; i < 3; ++i) {
      if (in(i).shape[0] != q.shape[0]) {
        fail(fmt::format("'{}' has batch {} but '{}' has batch {}", in(i).name, in(i).shape[0], q.name, q.shape[0]));
      }
    }
    int64_t heads = op_.attr_int("heads", 1);
    if (heads < 1) fail(fmt::format("heads must be at least 1, got {}", heads));
    if (q.shape[2] % heads != 0) {
      fail(fmt::format("heads={} does not divide the width {} of '{}' (heads * head dim)", heads, q.shape[2], q.name));
    }
    int64_t kv_heads = op_.attr_int("kv_heads", heads);
    if (kv_heads < 1) fail(fmt::format("kv_heads must be at least 1, got {}", kv_heads));
    if (heads % kv_heads != 0) {
      fail(fmt::format("kv_heads={} does not divide heads={} (each key/value head serves heads/kv_heads query "
                       "heads)", kv_heads, heads));
    }
    int64_t head_dim = q.shape[2] / heads;
    for (size_t i = 1; i < 3; ++i) {
      if (in(i).shape[2] != kv_heads * head_dim) {
        fail(fmt::format("'{}' has width {} but must have kv_heads * head dim = {} * {} = {}", in(i).name,
                         in(i).shape[2], kv_heads, head_dim, kv_heads * head_dim));
      }
    }
    if (k.shape[1] != v.shape[1]) {
      fail(fmt::format("'{}' has {} positions but '{}' has {}; keys and values pair up", k.name, k.shape[1], v.name,
                       v.shape[1]));
    }
    int64_t causal = op_.attr_int("causal", 0);
    if (causal != 0 && causal != 1) fail(fmt::format("causal must be 0 or 1, got {}", causal));
    int64_t window = op_.attr_int("window", 0);
    if (window < 0) fail(fmt::format("window must be 0 (no window) or positive, got {}", window));
    if (op_.attrs.count("scale")) {
      double scale = op_.attr_float("scale", 1);
      if (!(scale > 0) || !std::isfinite(scale)) fail(fmt::format("scale must be positive, got {}", graph_number_text(scale)));
    }
    if (op_.inputs.size() == 4) {
      float_operand(3);
      const Value& mask = in(3);
      std::vector<int64_t> full = {q.shape[0], heads, q.shape[1], k.shape[1]};
      bool ok = mask.shape.size() <= 4;
      for (size_t d = 0; ok && d < mask.shape.size(); ++d) {
        int64_t m = mask.shape[mask.shape.size() - 1 - d];
        ok = m == 1 || m == full[3 - d];
      }
      if (!ok) {
        fail(fmt::format("the mask '{}' {} does not broadcast to [batch, heads, seq_q, seq_k] = {} (aligned right, "
                         "each of its dims must equal that dim or be 1)", mask.name, dims_text(mask.shape),
                         dims_text(full)));
      }
    }
    shape_ = {q.shape[0], q.shape[1], q.shape[2]};
  }

  Graph& graph_;
  const Op& op_;
  const OpInfo& info_;
  DType dtype_ = DType::Int8;
  std::vector<int64_t> shape_;
};

// Every structural problem. Before shape inference (`typed` false) an activation may still lack
// its type and its scale (inference fills them in and checks them per op), and a graph being
// built layer by layer may have no name or outputs yet.
// Integer attributes are sizes, axes and counts: bounded, so the typing rules' arithmetic
// (window spans, padded sizes, output sizes) cannot overflow. The problem with the first that
// is not, if any.
std::optional<std::string> out_of_range_attribute(const Op& op) {
  for (const auto& [name, attr] : op.attrs) {
    auto out_of_range = [](int64_t x) { return x < -kMaxDimension || x > kMaxDimension; };
    bool bad = false;
    if (const auto* number = std::get_if<int64_t>(&attr)) bad = out_of_range(*number);
    if (const auto* list = std::get_if<std::vector<int64_t>>(&attr)) {
      bad = std::any_of(list->begin(), list->end(), out_of_range);
    }
    if (bad) {
      return fmt::format("{} '{}': every integer of {} must be between -{} and {}", op_info(op.kind).name, op.name,
                         name, kMaxDimension, kMaxDimension);
    }
  }
  return std::nullopt;
}

std::vector<Error> check_graph(const Graph& graph, bool typed) {
  std::vector<Error> problems;
  auto problem = [&](const SourceLocation& location, std::string message) {
    problems.emplace_back(location, std::move(message));
  };
  const int value_count = static_cast<int>(graph.values.size());
  const int op_count = static_cast<int>(graph.ops.size());
  auto valid_value = [&](int index) { return index >= 0 && index < value_count; };

  if (typed && graph.name.empty()) problem({graph.file, 0, 0, ""}, "the graph has no name");

  // Values.
  std::map<std::string, int> first_definition;
  for (int i = 0; i < value_count; ++i) {
    const Value& v = graph.values[static_cast<size_t>(i)];
    if (v.name.empty()) {
      problem(v.location, fmt::format("value #{} has no name", i));
      continue;
    }
    auto [it, fresh] = first_definition.emplace(v.name, i);
    if (!fresh) {
      const Value& first = graph.values[static_cast<size_t>(it->second)];
      problem(v.location, fmt::format("value '{}' is defined twice (first at line {})", v.name, first.location.line));
    }
    bool external = v.kind != ValueKind::Activation;
    const char* kind = v.kind == ValueKind::Input ? "input" : v.kind == ValueKind::Weight ? "weight" : "value";
    if (external) {
      if (v.producer >= 0) {
        problem(v.location, fmt::format("{} '{}' has a producer op; inputs and weights come from outside the graph",
                                        kind, v.name));
      }
      if (v.shape.empty()) problem(v.location, fmt::format("{} '{}' has no shape", kind, v.name));
    } else if (typed && v.shape.empty()) {
      problem(v.location, fmt::format("value '{}' has no type yet; run infer_shapes", v.name));
    }
    if (!external && (v.producer < 0 || v.producer >= op_count)) {
      problem(v.location, fmt::format("value '{}' is not produced by any op", v.name));
    } else if (!external && graph.ops[static_cast<size_t>(v.producer)].output != i) {
      problem(v.location, fmt::format("value '{}' names op '{}' as its producer, but that op writes something else",
                                      v.name, graph.ops[static_cast<size_t>(v.producer)].name));
    }
    bool dims_ok = true;
    for (int64_t d : v.shape) {
      if (d < 1) {
        problem(v.location, fmt::format("{} '{}' is {}; every dimension must be at least 1", kind, v.name, type_text(v)));
        dims_ok = false;
        break;
      }
      if (d > kMaxDimension) {
        problem(v.location, fmt::format("{} '{}' is {}; every dimension must be at most {}", kind, v.name, type_text(v),
                                        kMaxDimension));
        dims_ok = false;
        break;
      }
    }
    if (dims_ok && !checked_element_count(v.shape)) {
      problem(v.location, fmt::format("{} '{}' is {}: more than 2^48 elements, the most one tensor may have", kind,
                                      v.name, type_text(v)));
    }
    if (!v.weight_file.empty() && v.kind != ValueKind::Weight) {
      problem(v.location, fmt::format("{} '{}' has a file; only weights are read from files", kind, v.name));
    }
    if (v.scale != 0 && !(v.scale > 0 && std::isfinite(v.scale))) {
      problem(v.location, fmt::format("{} '{}' has scale {}; a scale is a positive finite number", kind, v.name,
                                      graph_number_text(v.scale)));
    } else if (v.scale != 0 && !(v.scale >= kMinScale && v.scale <= kMaxScale)) {
      // Rescale factors are products and quotients of a few scales: inside this range they
      // stay finite and non-zero in double.
      problem(v.location, fmt::format("{} '{}' has scale {}; a scale must lie between 1e-18 and 1e18", kind, v.name,
                                      graph_number_text(v.scale)));
    } else if (!typed && !external) {
      // infer_shapes decides the result's type and scale.
    } else if (!v.shape.empty() && v.dtype != DType::Int8 && v.scale != 0) {
      problem(v.location, fmt::format("{} '{}' is {} but has scale={}; only int8 values are quantized", kind, v.name,
                                      dtype_name(v.dtype), graph_number_text(v.scale)));
    } else if (!v.shape.empty() && v.dtype == DType::Int8 && v.scale == 0) {
      problem(v.location, fmt::format("int8 {} '{}' has no scale; give it scale=S (real = S * q)", kind, v.name));
    }
  }

  // Ops, in order: a value may be read once it is an input, a weight or an earlier op's result.
  std::map<std::string, int> op_names;
  std::vector<int> writer(static_cast<size_t>(value_count), -1);
  for (int o = 0; o < op_count; ++o) {
    const Op& op = graph.ops[static_cast<size_t>(o)];
    const OpInfo& info = op_info(op.kind);
    std::string label = fmt::format("{} '{}'", info.name, op.name);
    if (op.name.empty()) problem(op.location, fmt::format("{} op #{} has no name", info.name, o));
    auto [it, fresh] = op_names.emplace(op.name, o);
    if (!fresh && !op.name.empty()) problem(op.location, fmt::format("two ops are named '{}'", op.name));

    if (!valid_value(op.output)) {
      problem(op.location, fmt::format("{} writes no value of the graph", label));
    } else {
      const Value& out = graph.values[static_cast<size_t>(op.output)];
      if (out.kind != ValueKind::Activation) {
        problem(op.location, fmt::format("{} writes '{}', which is {}", label, out.name,
                                         out.kind == ValueKind::Input ? "an input" : "a weight"));
      }
      int& w = writer[static_cast<size_t>(op.output)];
      if (w >= 0) {
        problem(op.location, fmt::format("value '{}' is written by {} '{}' and {}; every value has one producer",
                                         out.name, op_info(graph.ops[static_cast<size_t>(w)].kind).name,
                                         graph.ops[static_cast<size_t>(w)].name, label));
      } else {
        w = o;
      }
    }

    if (auto bad = out_of_range_attribute(op)) problem(op.location, *bad);

    int count = static_cast<int>(op.inputs.size());
    if (count < info.min_inputs || count > info.max_inputs) {
      problem(op.location, fmt::format("{} takes {}, got {}", info.name, op_inputs_text(info), count));
    }
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      int index = op.inputs[i];
      if (!valid_value(index)) {
        problem(op.location, fmt::format("{}: input {} is not a value of the graph (index {})", label, i + 1, index));
        continue;
      }
      const Value& v = graph.values[static_cast<size_t>(index)];
      if (v.kind == ValueKind::Activation && !(v.producer >= 0 && v.producer < o)) {
        problem(op.location, fmt::format("{} reads '{}' before it is computed; an op must come after the ops whose "
                                         "results it reads", label, v.name));
      }
    }

    std::vector<std::string> attr_names;
    for (const auto& a : info.attrs) attr_names.emplace_back(a.name);
    for (const auto& [name, value] : op.attrs) {
      auto a = std::find_if(info.attrs.begin(), info.attrs.end(), [&](const AttrInfo& x) { return name == x.name; });
      if (a == info.attrs.end()) {
        std::string hint = nearest_spelling(name, attr_names);
        problem(op.location,
                fmt::format("{} has no attribute '{}'{}", label, name,
                            !hint.empty() ? fmt::format("; did you mean '{}'?", hint)
                            : attr_names.empty() ? std::string(" (it takes none)")
                                                 : fmt::format(" (attributes: {})", join_names(attr_names))));
      } else if (!attr_has_type(value, a->type)) {
        problem(op.location, fmt::format("{}: attribute '{}' must be {}", label, name, attr_type_text(a->type)));
      }
    }
    for (const auto& a : info.attrs) {
      if (a.required && !op.attrs.count(a.name)) {
        problem(op.location, fmt::format("{} needs the attribute '{}' ({})", label, a.name, a.summary));
      }
    }
  }

  // Outputs (a graph still being built may not have them yet; shape inference needs none).
  if (typed && graph.outputs.empty()) {
    problem({graph.file, 0, 0, ""}, "the graph has no outputs; name its results with `output NAME`");
  }
  std::set<int> listed;
  for (int index : graph.outputs) {
    if (!valid_value(index)) {
      problem({graph.file, 0, 0, ""}, fmt::format("output index {} is not a value of the graph", index));
    } else if (!listed.insert(index).second) {
      const Value& v = graph.values[static_cast<size_t>(index)];
      problem(v.location, fmt::format("'{}' is listed as an output twice", v.name));
    }
  }
  return problems;
}

}  // namespace

std::string op_inputs_text(const OpInfo& info) {
  std::string count;
  if (info.min_inputs == info.max_inputs) {
    count = fmt::format("{} input{}", info.min_inputs, info.min_inputs == 1 ? "" : "s");
  } else if (info.max_inputs == info.min_inputs + 1) {
    count = fmt::format("{} or {} inputs", info.min_inputs, info.max_inputs);
  } else {
    count = fmt::format("{} to {} inputs", info.min_inputs, info.max_inputs);
  }
  return fmt::format("{} ({})", count, info.inputs);
}

void infer_shapes(Graph& graph) {
  std::vector<Error> problems = check_graph(graph, false);
  if (!problems.empty()) throw problems.front();
  for (const Op& op : graph.ops) OpTyper(graph, op).run();
}

void infer_op_shapes(Graph& graph, size_t first_op) {
  for (size_t o = first_op; o < graph.ops.size(); ++o) {
    const Op& op = graph.ops[o];
    if (auto bad = out_of_range_attribute(op)) throw Error(op.location, *bad);
    OpTyper(graph, op).run();
  }
}

std::vector<Error> verify_graph(const Graph& graph) { return check_graph(graph, true); }

}  // namespace tpusim
