// Reading the model description format (compiler/frontend/yaml_model.h, docs/model-format.md).
// The YAML tree is read through a small typed reader, like the arch config's: every node knows
// its key path and line:column, so every error can name both. Layers are added to the graph one
// at a time and shape inference runs after each one, so a layer can size its weights from the
// shape of its input and a shape error is reported at the layer that causes it.
#include "compiler/frontend/yaml_model.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "compiler/frontend/defaults.h"
#include "ir/diagnostics.h"
#include "simulator/yaml_text.h"
#include "simulator/npy.h"
#include "simulator/random_data.h"
#include "ir/sizes.h"

namespace tpusim {

namespace {

using yaml_text::child_path;
using yaml_text::contains;
using yaml_text::describe;
using yaml_text::join;
using yaml_text::parse_int64;
using yaml_text::trim;
using yaml_text::at_least;
using yaml_text::read_bool;
using yaml_text::read_integer;
using yaml_text::read_integer_at_least;
using yaml_text::read_size;
using yaml_text::read_bounded_integer;
using yaml_text::read_number;
using yaml_text::scalar_text;

// ---------------------------------------------------------------------------------------------
// The default int8 scales (docs/model-format.md, "Quantization scales"), shared with the other
// frontends (compiler/frontend/defaults.h).

using frontend_defaults::kDefaultInputScale;
using frontend_defaults::kDefaultSeed;
using frontend_defaults::kTargetRms;
using frontend_defaults::kUniformInt8Rms;
using frontend_defaults::round_scale;
constexpr double kDefaultEpsilon = 1e-5;

// ---------------------------------------------------------------------------------------------
// Reading the tree.

std::string item_path(const std::string& parent, size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

std::string format_shape(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// yaml-cpp marks are 0-based; a node without a mark (an empty value) borrows `fallback`'s.
SourceLocation locate(const YAML::Mark& mark, const SourceLocation& fallback,
                      const std::string& path) {
  if (mark.is_null()) return SourceLocation{fallback.file, fallback.line, fallback.column, path};
  return SourceLocation{fallback.file, mark.line + 1, mark.column + 1, path};
}

// One node of the tree with its key path and the place to blame when it is wrong.
using Node = yaml_text::LocatedNode;

// The items of a sequence, each with its index in the key path.
std::vector<Node> sequence_items(const Node& node, std::string_view expected) {
  if (!node.yaml.IsSequence())
    node.fail(fmt::format("expected {}, got {}", expected, describe(node.yaml)));
  std::vector<Node> items;
  for (const auto& item : node.yaml) {
    std::string path = item_path(node.where.key_path, items.size());
    YAML::Mark mark = item.IsNull() ? YAML::Mark::null_mark() : item.Mark();
    items.push_back(Node{item, locate(mark, node.where, path)});
  }
  return items;
}

std::string unknown_key_message(const std::string& key, const std::vector<std::string>& valid,
                                const std::string& owner) {
  std::string what = owner.empty() ? "" : " for " + owner;
  std::string hint = nearest_spelling(key, valid);
  if (!hint.empty()) return fmt::format("unknown key '{}'{}; did you mean '{}'?", key, what, hint);
  return fmt::format("unknown key '{}'{}; valid keys are: {}", key, what, join(valid));
}

// A mapping whose keys must come from a fixed list. `heading` locates the key that introduces
// it (where a missing key is reported); an absent or empty mapping reads as having no keys.
// `refused` explains keys that exist elsewhere but mean nothing here.
class Mapping {
 public:
  Mapping(const Node& node, const SourceLocation& heading, std::vector<std::string> keys,
          std::string owner, const std::map<std::string, std::string>& refused = {})
      : path_(heading.key_path), heading_(heading), owner_(std::move(owner)) {
    if (!node.yaml.IsDefined() || node.yaml.IsNull()) return;
    if (!node.yaml.IsMap()) {
      node.fail(fmt::format("expected a mapping with keys such as {}, got {}", join(keys),
                            describe(node.yaml)));
    }
    for (const auto& pair : node.yaml) {
      SourceLocation key_where = locate(pair.first.Mark(), node.where, path_);
      if (!pair.first.IsScalar())
        throw Error(key_where, "expected a plain key name, got " + describe(pair.first));
      std::string key = pair.first.Scalar();
      key_where.key_path = child_path(path_, key);
      if (auto it = refused.find(key); it != refused.end()) throw Error(key_where, it->second);
      if (!contains(keys, key)) throw Error(key_where, unknown_key_message(key, keys, owner_));
      for (const Entry& earlier : entries_) {
        if (earlier.key == key) {
          throw Error(key_where, fmt::format("duplicate key '{}' (first given at line {}); keep "
                                             "only one",
                                             key, earlier.key_where.line));
        }
      }
      // An empty value has no useful mark of its own (yaml-cpp points past it): blame the key.
      YAML::Node value = pair.second;
      YAML::Mark mark = value.IsNull() ? YAML::Mark::null_mark() : value.Mark();
      entries_.push_back(
          Entry{key, key_where, Node{value, locate(mark, key_where, key_where.key_path)}});
    }
  }

  std::optional<Node> find(const std::string& key) const {
    for (const Entry& entry : entries_) {
      if (entry.key == key) return entry.value;
    }
    return std::nullopt;
  }

  // `what` says what the key means, for the "missing" message.
  Node require(const std::string& key, std::string_view what) const {
    if (auto value = find(key)) return *value;
    SourceLocation where = heading_;
    where.key_path = child_path(path_, key);
    std::string under = owner_.empty() ? "" : fmt::format(" under '{}:'", owner_);
    throw Error(where, fmt::format("missing required key; add '{}:'{} ({})", key, under, what));
  }

  const SourceLocation& heading() const { return heading_; }

 private:
  struct Entry {
    std::string key;
    SourceLocation key_where;
    Node value;
  };
  std::string path_;
  SourceLocation heading_;
  std::string owner_;
  std::vector<Entry> entries_;
};

// ---------------------------------------------------------------------------------------------
// Typed values.

double read_positive_number(const Node& node) {
  double number = read_number(node);
  if (!(number > 0))
    node.fail(fmt::format("must be greater than 0, got {}", scalar_text(node, "")));
  return number;
}

// A list of integers such as [1, 3, 224, 224].
std::vector<int64_t> read_integer_list(const Node& node, std::string_view expected,
                                       std::optional<int64_t> minimum = std::nullopt) {
  std::vector<int64_t> values;
  for (const Node& item : sequence_items(node, expected)) {
    values.push_back(minimum ? read_size(item, *minimum) : read_bounded_integer(item));
  }
  return values;
}

// Names of the model, its inputs and layers are names in the graph's text form: letters,
// digits, '_' and '.', starting with a letter or '_'.
using frontend_defaults::is_name_char;
using frontend_defaults::is_name_start;

std::string read_name(const Node& node) {
  const std::string& text = scalar_text(node, "a name");
  if (text.empty() || !is_name_start(text[0]) ||
      !std::all_of(text.begin(), text.end(), is_name_char)) {
    node.fail(
        fmt::format("'{}' is not a valid name: use letters, digits, '_' and '.', starting "
                    "with a letter or '_'",
                    text));
  }
  return text;
}

// A name or a list of names (`input: conv1`, `inputs: [a, b]`).
std::vector<Node> name_items(const Node& node) {
  if (node.yaml.IsScalar()) return {node};
  return sequence_items(node, "a layer name or a list of layer names");
}

// ---------------------------------------------------------------------------------------------
// The layer types: the YAML word, the keys it takes and how many inputs it reads.

// clang-format off
enum class LayerKind : uint8_t {
  Conv, Linear, MatMul, Add, Mul, Relu, Relu6, Clip, Gelu, MaxPool, AvgPool, GlobalAvgPool,
  Flatten, Reshape, Transpose, Concat, Softmax, LayerNorm, Attention,
};
// clang-format on

struct LayerType {
  LayerKind kind;
  const char* name;
  int min_inputs, max_inputs;
  bool reads_previous;            // with no input given, it reads the previous layer's output
  bool scales;                    // `scale:` may set its int8 output scale
  std::vector<std::string> keys;  // every key it accepts, in the order messages list them
};

// Floating-point ops: the graph IR computes them in bf16/fp32 only.
bool runs_in_float(LayerKind kind) {
  return kind == LayerKind::Softmax || kind == LayerKind::LayerNorm || kind == LayerKind::Attention;
}

const std::vector<LayerType>& layer_types() {
  static const std::vector<LayerType> types = [] {
    const std::vector<std::string> pool = {"kernel", "stride", "padding"};
    struct Row {
      LayerKind kind;
      const char* name;
      int min_inputs, max_inputs;
      bool reads_previous, scales;
      std::vector<std::string> keys;
    };
    // `scales`: whether `scale:` may set the int8 output scale. Ops that only move or select
    // values keep their input's scale (the graph IR requires it); floating-point ops have none.
    // clang-format off
    std::vector<Row> rows = {
        // kind                    name          inputs  reads_previous, scales, own keys
        {LayerKind::Conv,          "conv",           1, 1, true,  true,
         {"out_channels", "in_channels", "kernel", "stride", "padding", "dilation", "groups",
          "depthwise", "bias", "weights", "bias_weights", "weight_scale", "relu", "relu6"}},
        {LayerKind::Linear,        "linear",         1, 1, true,  true,
         {"out_features", "in_features", "bias", "weights", "bias_weights", "weight_scale", "relu",
          "relu6"}},
        {LayerKind::MatMul,        "matmul",         2, 2, false, true,  {}},
        {LayerKind::Add,           "add",            2, 2, false, true,  {"relu", "relu6"}},
        {LayerKind::Mul,           "mul",            2, 2, false, true,  {"relu", "relu6"}},
        {LayerKind::Relu,          "relu",           1, 1, true,  false, {}},
        {LayerKind::Relu6,         "relu6",          1, 1, true,  false, {}},
        {LayerKind::Clip,          "clip",           1, 1, true,  false, {"min", "max"}},
        {LayerKind::Gelu,          "gelu",           1, 1, true,  true,  {}},
        {LayerKind::MaxPool,       "maxpool",        1, 1, true,  false, pool},
        {LayerKind::AvgPool,       "avgpool",        1, 1, true,  true,  pool},
        {LayerKind::GlobalAvgPool, "global_avgpool", 1, 1, true,  true,  {}},
        {LayerKind::Flatten,       "flatten",        1, 1, true,  false, {"axis"}},
        {LayerKind::Reshape,       "reshape",        1, 1, true,  false, {"shape"}},
        {LayerKind::Transpose,     "transpose",      1, 1, true,  false, {"perm"}},
        {LayerKind::Concat,        "concat",         2, 64, false, false, {"axis"}},
        {LayerKind::Softmax,       "softmax",        1, 1, true,  false, {"axis"}},
        {LayerKind::LayerNorm,     "layernorm",      1, 1, true,  false, {"epsilon", "gamma", "beta"}},
        {LayerKind::Attention,     "attention",      1, 4, true,  false,
         {"heads", "kv_heads", "causal", "window", "score_scale"}},
    };
    // clang-format on
    std::vector<LayerType> out;
    for (Row& row : rows) {
      std::vector<std::string> keys = {"name", "input", "inputs"};
      keys.insert(keys.end(), row.keys.begin(), row.keys.end());
      if (row.scales) keys.push_back("scale");
      out.push_back(LayerType{row.kind, row.name, row.min_inputs, row.max_inputs,
                              row.reads_previous, row.scales, std::move(keys)});
    }
    return out;
  }();
  return types;
}

const LayerType* find_layer_type(const std::string& name) {
  for (const LayerType& type : layer_types()) {
    if (name == type.name) return &type;
  }
  return nullptr;
}

std::vector<std::string> layer_type_names() {
  std::vector<std::string> names;
  for (const LayerType& type : layer_types()) names.emplace_back(type.name);
  return names;
}

const std::vector<std::string> kTopLevelKeys = {"name",   "type",   "seed",
                                                "inputs", "layers", "outputs"};
const std::vector<std::string> kInputKeys = {"shape", "scale"};

// ---------------------------------------------------------------------------------------------
// Building the graph.

// One layer while it is being added.
struct Layer {
  const LayerType* type = nullptr;
  std::string name;
  SourceLocation where;       // the layer's type key: `layers[3].conv`
  SourceLocation name_where;  // its `name:` value, or `where` for a generated name
  Mapping spec;
  std::vector<int> inputs;  // value indices
  std::vector<SourceLocation> input_wheres;
};

// An int8 scale and the estimated RMS (in integer steps) of the values it quantizes.
struct Quantized {
  double scale = 0;
  double rms = 0;
};

class ModelBuilder {
 public:
  ModelBuilder(std::string file, DType type, uint64_t seed, std::filesystem::path weight_directory,
               std::map<std::string, int> later_names, const ResourceLimits& limits)
      : file_(std::move(file)),
        type_(type),
        seed_(seed),
        weight_directory_(std::move(weight_directory)),
        later_names_(std::move(later_names)),
        limits_(limits) {
    graph_.file = file_;
  }

  static int64_t graph_value_bytes(const Value& v) { return v.element_count() * dtype_size(v.dtype); }

  // Counts the bytes of an input or weight against the memory limit, before any of its data
  // is generated or read: a run holds all of them (docs/limits.md).
  void count_data(const Value& v) {
    const int64_t elements = element_count_or_fail(v.shape, v.location, v.name);
    data_bytes_ = add_or_fail(data_bytes_, elements * dtype_size(v.dtype), v.location, "the model's data");
    require_memory(data_bytes_, limits_, v.location, fmt::format("the model's inputs and weights (up to '{}')", v.name));
  }

  Graph& graph() { return graph_; }

  void add_input(const Node& name_node, const Node& spec_node);
  void add_layer(const Node& item, size_t index);
  void set_outputs(const std::optional<Node>& outputs);

 private:
  bool is_int8() const { return type_ == DType::Int8; }
  const Value& value(int index) const { return graph_.values.at(static_cast<size_t>(index)); }
  double scale_of(int index) const { return value(index).scale; }
  double rms_of(int index) const {
    auto it = rms_.find(index);
    return it == rms_.end() ? kTargetRms : it->second;
  }
  Quantized quantized(int index) const { return {scale_of(index), rms_of(index)}; }
  // After a relu (or a clip at 0) the scale is kept but half the values become 0: the RMS, in
  // steps, drops by sqrt(2). Tracking that keeps the default scales of a deep network steady.
  Quantized rectified(int index) const { return {scale_of(index), rms_of(index) / std::sqrt(2.0)}; }

  void claim_name(const std::string& name, const SourceLocation& where, bool generated = false);
  int add_activation(const std::string& name, const SourceLocation& where, Quantized q,
                     bool claim = true);
  int add_op(OpKind kind, const Layer& layer, const std::string& name, std::vector<int> inputs,
             Quantized q, std::map<std::string, AttrValue> attrs = {});
  int resolve_reference(const Node& reference) const;
  void resolve_inputs(Layer& layer);
  void infer(const Layer& layer);

  // The output's scale: the layer's `scale:`, else `rule()` (int8 models only).
  template <typename Rule>
  Quantized output_quantization(const Layer& layer, Rule rule) const;
  double weight_scale(const Layer& layer, double fan_in) const;
  void reject_int8_keys(const Layer& layer) const;

  // A weight `LAYER.suffix` from the file under `file_key`, else seeded; returns its index.
  int add_weight(const Layer& layer, const std::string& suffix, std::vector<int64_t> shape,
                 DType dtype, double scale, const char* file_key, const std::string& meaning);
  int add_fused_activation(const Layer& layer, int input);

  int build_conv(const Layer& layer);
  int build_linear(const Layer& layer);
  int build_pool(const Layer& layer);
  int build_layernorm(const Layer& layer);
  int build_attention(const Layer& layer);
  int build(const Layer& layer);

  std::string file_;
  DType type_;
  uint64_t seed_;
  std::filesystem::path weight_directory_;
  std::map<std::string, int> later_names_;  // explicit layer name -> its line
  const ResourceLimits& limits_;
  int64_t data_bytes_ = 0;  // inputs and weights so far
  size_t typed_ops_ = 0;    // ops [0, typed_ops_) have their types
  Graph graph_;
  std::map<std::string, SourceLocation> names_;  // every value name -> where it was first used
  std::map<std::string, int> layer_outputs_;     // layer or model input name -> its final value
  std::map<int, double> rms_;                    // estimated RMS of int8 values
  std::map<std::string, int> type_counts_;       // layers of each type so far
  int previous_ = -1;                            // the previous layer's output
  std::vector<std::string> input_names_;
};

void ModelBuilder::claim_name(const std::string& name, const SourceLocation& where,
                              bool generated) {
  auto [it, inserted] = names_.emplace(name, where);
  if (inserted) return;
  if (generated) {
    throw Error(where, fmt::format("this layer's generated name '{}' is already used (line {}); "
                                   "give this layer a 'name:'",
                                   name, it->second.line));
  }
  throw Error(where,
              fmt::format("duplicate name '{}' (first used at line {}); names must be unique", name,
                          it->second.line));
}

int ModelBuilder::add_activation(const std::string& name, const SourceLocation& where, Quantized q,
                                 bool claim) {
  if (claim) claim_name(name, where);
  Value v;
  v.name = name;
  v.kind = ValueKind::Activation;
  v.dtype = type_;
  v.scale = is_int8() ? q.scale : 0;
  v.location = where;
  int index = graph_.add_value(std::move(v));
  if (is_int8()) rms_[index] = q.rms;
  return index;
}

int ModelBuilder::add_op(OpKind kind, const Layer& layer, const std::string& name,
                         std::vector<int> inputs, Quantized q,
                         std::map<std::string, AttrValue> attrs) {
  // The layer's own name was claimed when the layer started.
  int output = add_activation(name, name == layer.name ? layer.name_where : layer.where, q,
                              name != layer.name);
  Op op;
  op.kind = kind;
  op.name = name;
  op.inputs = std::move(inputs);
  op.output = output;
  op.attrs = std::move(attrs);
  op.location = layer.where;
  graph_.add_op(std::move(op));
  return output;
}

void ModelBuilder::add_input(const Node& name_node, const Node& spec_node) {
  std::string name = read_name(name_node);
  claim_name(name, name_node.where);
  Value v;
  v.name = name;
  v.kind = ValueKind::Input;
  v.dtype = type_;
  v.location = name_node.where;  // (input data is seeded per run, not per model)
  // `image: [1, 3, 224, 224]` is short for `image: {shape: [1, 3, 224, 224]}`.
  std::optional<Node> shape_node;
  std::optional<Node> scale_node;
  if (spec_node.yaml.IsSequence()) {
    shape_node = spec_node;
  } else {
    SourceLocation heading = name_node.where;
    Mapping spec(spec_node, heading, kInputKeys, name);
    shape_node = spec.require("shape", "the input's dimensions, such as [1, 3, 224, 224]");
    scale_node = spec.find("scale");
  }
  v.shape = read_integer_list(*shape_node, "a list of dimension sizes such as [1, 3, 224, 224]", 1);
  if (v.shape.empty())
    shape_node->fail("must list at least one dimension, such as [1, 3, 224, 224]");
  count_data(v);
  if (scale_node && !is_int8()) {
    scale_node->fail(fmt::format("scales apply to int8 models only (this model's type is {})",
                                 dtype_name(type_)));
  }
  if (is_int8()) v.scale = scale_node ? read_positive_number(*scale_node) : kDefaultInputScale;
  int index = graph_.add_value(std::move(v));
  if (is_int8()) rms_[index] = kUniformInt8Rms;
  layer_outputs_[name] = index;
  input_names_.push_back(name);
  // The first layer reads the model input when there is only one.
  previous_ = input_names_.size() == 1 ? index : -1;
}

int ModelBuilder::resolve_reference(const Node& reference) const {
  std::string name = read_name(reference);
  if (auto it = layer_outputs_.find(name); it != layer_outputs_.end()) return it->second;
  int index = graph_.find_value(name);
  if (index >= 0) {
    if (value(index).kind == ValueKind::Weight)
      reference.fail(fmt::format("'{}' is a weight, not a layer or model input", name));
    return index;  // an intermediate value such as `conv1.relu`
  }
  if (auto it = later_names_.find(name); it != later_names_.end()) {
    reference.fail(
        fmt::format("layer '{}' is defined later (line {}); layers run in order, so a "
                    "layer can read only earlier layers and the model inputs",
                    name, it->second));
  }
  std::vector<std::string> known;
  for (const auto& [known_name, known_index] : layer_outputs_) known.push_back(known_name);
  std::string hint = nearest_spelling(name, known);
  reference.fail(fmt::format("no layer or model input named '{}'{}", name,
                             hint.empty() ? "" : fmt::format("; did you mean '{}'?", hint)));
}

void ModelBuilder::resolve_inputs(Layer& layer) {
  const LayerType& type = *layer.type;
  std::optional<Node> input = layer.spec.find("input");
  std::optional<Node> inputs = layer.spec.find("inputs");
  if (input && inputs) inputs->fail("give input or inputs, not both (they mean the same)");
  std::optional<Node> given = input ? input : inputs;
  auto count_text = [&] {
    if (type.kind == LayerKind::Attention)
      return std::string("1 input (self-attention) or 3 (q, k, v) and an optional mask");
    if (type.min_inputs == type.max_inputs)
      return fmt::format("{} input{}", type.min_inputs, type.min_inputs == 1 ? "" : "s");
    return fmt::format("at least {} inputs", type.min_inputs);
  };
  if (!given) {
    if (!type.reads_previous) {
      throw Error(layer.where, fmt::format("{} needs {}; add 'inputs: [a, b]' naming earlier "
                                           "layers or model inputs",
                                           type.name, count_text()));
    }
    if (previous_ < 0) {
      throw Error(layer.where,
                  fmt::format("the first layer has no previous layer to read and the model has "
                              "{} inputs ({}); add 'input:' naming one",
                              input_names_.size(), join(input_names_)));
    }
    layer.inputs = {previous_};
    layer.input_wheres = {layer.where};
    return;
  }
  for (const Node& reference : name_items(*given)) {
    layer.inputs.push_back(resolve_reference(reference));
    layer.input_wheres.push_back(reference.where);
  }
  int count = static_cast<int>(layer.inputs.size());
  if (count < type.min_inputs || count > type.max_inputs ||
      (type.kind == LayerKind::Attention && count == 2)) {
    given->fail(fmt::format("{} takes {}, got {}", type.name, count_text(), count));
  }
}

void ModelBuilder::infer(const Layer& layer) {
  // Only this layer's ops: typing the whole graph after every layer grew with the square of
  // the layer count (5000 layers took 8 s).
  try {
    infer_op_shapes(graph_, typed_ops_);
  } catch (const Error& e) {
    throw Error(layer.where, e.message());
  }
  typed_ops_ = graph_.ops.size();
}

template <typename Rule>
Quantized ModelBuilder::output_quantization(const Layer& layer, Rule rule) const {
  std::optional<Node> given = layer.spec.find("scale");
  if (!is_int8()) return {};
  if (given) return {read_positive_number(*given), kTargetRms};
  if (!layer.type->scales) return rule();  // the input's scale, exactly
  Quantized q = rule();
  q.scale = round_scale(q.scale);
  return q;
}

// `scale:` and `weight_scale:` mean nothing in a bf16 model; say so rather than ignore them.
void ModelBuilder::reject_int8_keys(const Layer& layer) const {
  if (is_int8()) return;
  for (const char* key : {"scale", "weight_scale"}) {
    if (auto node = layer.spec.find(key)) {
      node->fail(fmt::format("scales apply to int8 models only (this model's type is {})",
                             dtype_name(type_)));
    }
  }
}

// By default seeded int8 weights span +-sqrt(6 / fan_in) (He initialization), so a deep
// network's activations keep their size instead of growing layer by layer.
double ModelBuilder::weight_scale(const Layer& layer, double fan_in) const {
  if (!is_int8()) return 0;
  if (auto node = layer.spec.find("weight_scale")) return read_positive_number(*node);
  return frontend_defaults::default_weight_scale(fan_in);
}

int ModelBuilder::add_weight(const Layer& layer, const std::string& suffix,
                             std::vector<int64_t> shape, DType dtype, double scale,
                             const char* file_key, const std::string& meaning) {
  std::string name = layer.name + "." + suffix;
  Value v;
  v.name = name;
  v.kind = ValueKind::Weight;
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.scale = dtype == DType::Int8 ? scale : 0;
  v.location = layer.where;
  count_data(v);
  // The RMS of int8 weights is that of uniform data unless a file says otherwise; biases are
  // measured (generated when seeded: they are small, and their range decides the output scale).
  double rms = kUniformInt8Rms;
  auto measure = [](const HostTensor& tensor) {
    double sum = 0;
    const int64_t count = tensor.element_count();
    const size_t width = static_cast<size_t>(dtype_size(tensor.dtype));
    for (int64_t i = 0; i < count; ++i) {
      double x = load_element(tensor.dtype, tensor.bytes.data() + static_cast<size_t>(i) * width);
      sum += x * x;
    }
    return count > 0 ? std::sqrt(sum / static_cast<double>(count)) : 0.0;
  };
  if (std::optional<Node> file = layer.spec.find(file_key)) {
    const std::string& text = scalar_text(*file, "the path of an .npy file");
    std::filesystem::path path = std::filesystem::path(text).is_absolute()
                                     ? std::filesystem::path(text)
                                     : (weight_directory_ / text).lexically_normal();
    std::error_code error;
    if (!std::filesystem::exists(path, error)) {
      file->fail(
          fmt::format("cannot find '{}' (looked for {}; paths are relative to the model "
                      "file)",
                      text, path.string()));
    }
    HostTensor tensor;
    try {
      tensor = read_npy(path.string(), graph_value_bytes(v));
    } catch (const Error& e) {
      file->fail(fmt::format("cannot read '{}': {}", text, e.message()));
    }
    if (tensor.dtype != dtype) {
      file->fail(
          fmt::format("'{}' holds {} values ('{}'), expected {} ('{}') for the {} of {} "
                      "{} model",
                      text, dtype_name(tensor.dtype), npy_descr(tensor.dtype), dtype_name(dtype),
                      npy_descr(dtype), meaning, is_int8() ? "an" : "a", dtype_name(type_)));
    }
    if (tensor.shape != v.shape) {
      file->fail(fmt::format("'{}' has shape {}, expected {} for the {} of '{}'", text,
                             format_shape(tensor.shape), format_shape(v.shape), meaning,
                             layer.name));
    }
    rms = measure(tensor);
    v.weight_file = text;  // relative paths stay relative to the model file (graph.file)
    v.location = file->where;
  } else {
    v.seed = seed_for(name, seed_);
    if (dtype == DType::Int32) rms = measure(random_tensor(dtype, v.shape, v.seed));
  }
  claim_name(name, v.location);
  int index = graph_.add_value(std::move(v));
  if (dtype == DType::Int8 || dtype == DType::Int32) rms_[index] = rms;
  return index;
}

// `relu: true` or `relu6: true` on a layer: a relu or clip op after it, named LAYER.relu(6).
int ModelBuilder::add_fused_activation(const Layer& layer, int input) {
  std::optional<Node> relu_node = layer.spec.find("relu");
  std::optional<Node> relu6_node = layer.spec.find("relu6");
  bool relu = relu_node && read_bool(*relu_node);
  bool relu6 = relu6_node && read_bool(*relu6_node);
  if (relu && relu6) relu6_node->fail("give relu or relu6, not both");
  if (relu) return add_op(OpKind::Relu, layer, layer.name + ".relu", {input}, rectified(input));
  if (relu6) {
    return add_op(OpKind::Clip, layer, layer.name + ".relu6", {input}, rectified(input),
                  {{"min", 0.0}, {"max", 6.0}});
  }
  return input;
}

// An integer for every spatial dim: `3` or `[3, 3]`.
std::vector<int64_t> read_per_dim(const Node& node, size_t spatial, int64_t minimum,
                                  const std::vector<int64_t>& input_shape) {
  const char* dims = spatial == 1 ? "[width]" : "[height, width]";
  std::string expected = fmt::format("an integer or a list of {} integer{} ({})", spatial,
                                     spatial == 1 ? "" : "s", dims);
  if (node.yaml.IsScalar()) {
    bool too_large = false;
    if (!parse_int64(trim(node.yaml.Scalar()), &too_large) && !too_large)
      node.fail(fmt::format("expected {}, got '{}'", expected, node.yaml.Scalar()));
    return std::vector<int64_t>(spatial, read_size(node, minimum));
  }
  if (!node.yaml.IsSequence())
    node.fail(fmt::format("expected {}, got {}", expected, describe(node.yaml)));
  std::vector<int64_t> values = read_integer_list(node, expected, minimum);
  if (values.size() != spatial) {
    node.fail(fmt::format("expected {} value{} {}, one per spatial dim of the input {}, got {}",
                          spatial, spatial == 1 ? "" : "s", dims, format_shape(input_shape),
                          values.size()));
  }
  return values;
}

// The `padding:` forms (docs/model-format.md): an integer, a list for both sides of each dim,
// the ONNX list [begin..., end...], `same` (ONNX SAME_UPPER), `valid`, or `causal` (1-D only).
std::vector<int64_t> read_padding(const Node& node, const std::vector<int64_t>& input_shape,
                                  const std::vector<int64_t>& kernel,
                                  const std::vector<int64_t>& strides,
                                  const std::vector<int64_t>& dilations, bool allow_causal) {
  const size_t spatial = kernel.size();
  std::vector<int64_t> pads(2 * spatial, 0);
  const char* words = allow_causal ? "same, valid or causal" : "same or valid";
  const char* lists = spatial == 1
                          ? "[both sides] or [left, right]"
                          : "[height, width] for both sides, or [top, left, bottom, right]";
  if (node.yaml.IsScalar()) {
    const std::string& text = node.yaml.Scalar();
    if (text == "valid") return pads;
    if (text == "same") {
      for (size_t d = 0; d < spatial; ++d) {
        // In 128 bits: each size is at most kMaxDimension, but a span times a stride is not.
        using Wide = __int128;
        Wide in = input_shape[d + 2];
        Wide out = (in + strides[d] - 1) / strides[d];
        Wide span = Wide{kernel[d] - 1} * dilations[d] + 1;
        Wide total = std::max<Wide>((out - 1) * strides[d] + span - in, 0);
        if (total > 2 * Wide{kMaxDimension}) {
          node.fail(fmt::format("'same' padding for kernel {} and dilation {} would be larger than {} on a side; "
                                "use a smaller kernel or dilation", kernel[d], dilations[d], kMaxDimension));
        }
        pads[d] = static_cast<int64_t>(total / 2);
        pads[d + spatial] = static_cast<int64_t>(total - total / 2);
      }
      return pads;
    }
    if (text == "causal") {
      if (!allow_causal)
        node.fail(fmt::format("expected an integer, a list, {}, got 'causal'", words));
      if (spatial != 1) {
        node.fail(
            fmt::format("causal padding is for 1-D convolutions (NCW input); the input {} "
                        "is 2-D: use same or explicit pads",
                        format_shape(input_shape)));
      }
      pads[0] = (kernel[0] - 1) * dilations[0];
      return pads;
    }
    bool too_large = false;
    std::optional<int64_t> number = parse_int64(trim(text), &too_large);
    if (!number)
      node.fail(fmt::format("expected an integer, a list ({}), {}; got '{}'", lists, words, text));
    if (too_large || *number > kMaxDimension) {
      node.fail(fmt::format("must be at most {} (the largest size tpusim accepts), got {}", kMaxDimension, text));
    }
    std::fill(pads.begin(), pads.end(), at_least(node, *number, 0));
    return pads;
  }
  if (!node.yaml.IsSequence()) {
    node.fail(fmt::format("expected an integer, a list ({}), {}; got {}", lists, words,
                          describe(node.yaml)));
  }
  std::vector<int64_t> values = read_integer_list(node, "a list of integers", 0);
  if (values.size() == spatial) {
    for (size_t d = 0; d < spatial; ++d) pads[d] = pads[d + spatial] = values[d];
    return pads;
  }
  if (values.size() == 2 * spatial) return values;
  node.fail(fmt::format("expected {} or {} values ({}) for the input {}, got {}", spatial,
                        2 * spatial, lists, format_shape(input_shape), values.size()));
}

int ModelBuilder::build_conv(const Layer& layer) {
  const Mapping& spec = layer.spec;
  const int x = layer.inputs[0];
  const std::vector<int64_t> shape = value(x).shape;
  const std::string input_name = value(x).name;
  if (shape.size() != 3 && shape.size() != 4) {
    throw Error(layer.input_wheres[0],
                fmt::format("conv needs an NCW (1-D) or NCHW (2-D) input; '{}' has shape {}",
                            input_name, format_shape(shape)));
  }
  const size_t spatial = shape.size() - 2;
  const int64_t channels = shape[1];
  if (auto node = spec.find("in_channels")) {
    int64_t given = read_size(*node, 1);
    if (given != channels) {
      node->fail(fmt::format("is {}, but the input '{}' has {} channels (shape {})", given,
                             input_name, channels, format_shape(shape)));
    }
  }

  std::optional<Node> depthwise_node = spec.find("depthwise");
  std::optional<Node> groups_node = spec.find("groups");
  bool depthwise = depthwise_node && read_bool(*depthwise_node);
  int64_t groups = groups_node ? read_size(*groups_node, 1) : 1;
  if (depthwise && groups_node) {
    groups_node->fail(
        "give groups or depthwise: true, not both (depthwise means groups = the "
        "input channels)");
  }
  if (depthwise) groups = channels;
  std::optional<Node> out_node = spec.find("out_channels");
  int64_t out_channels = channels;
  if (out_node) {
    out_channels = read_size(*out_node, 1);
  } else if (!depthwise) {
    spec.require("out_channels", "the number of output channels");
  }
  if (channels % groups != 0) {
    groups_node->fail(
        fmt::format("{} groups do not divide the {} input channels of '{}' (shape "
                    "{})",
                    groups, channels, input_name, format_shape(shape)));
  }
  if (out_channels % groups != 0) {
    const Node& blame = out_node ? *out_node : *groups_node;
    blame.fail(
        fmt::format("{} output channels cannot be split into {} groups", out_channels, groups));
  }

  std::vector<int64_t> kernel =
      read_per_dim(spec.require("kernel", "the kernel size, e.g. 3 or [3, 3]"), spatial, 1, shape);
  std::vector<int64_t> strides(spatial, 1), dilations(spatial, 1);
  if (auto node = spec.find("stride")) strides = read_per_dim(*node, spatial, 1, shape);
  if (auto node = spec.find("dilation")) dilations = read_per_dim(*node, spatial, 1, shape);
  std::vector<int64_t> pads(2 * spatial, 0);
  if (auto node = spec.find("padding"))
    pads = read_padding(*node, shape, kernel, strides, dilations, /*allow_causal=*/true);

  std::optional<Node> bias_node = spec.find("bias");
  bool bias = !bias_node || read_bool(*bias_node);
  if (!bias) {
    if (auto node = spec.find("bias_weights"))
      node->fail("gives a bias file, but bias is false; remove one of them");
  }
  // In floating point: only its square root is used, and the product may be past int64.
  double fan_in = static_cast<double>(channels / groups);
  for (int64_t k : kernel) fan_in *= static_cast<double>(k);
  const double w_scale = weight_scale(layer, fan_in);
  std::vector<int64_t> w_shape = {out_channels, channels / groups};
  w_shape.insert(w_shape.end(), kernel.begin(), kernel.end());
  const char* w_meaning = spatial == 1
                              ? "weights [out_channels, in_channels / groups, kernel width]"
                              : "weights [out_channels, in_channels / groups, kernel height, "
                                "kernel width]";
  int w = add_weight(layer, "w", w_shape, type_, w_scale, "weights", w_meaning);
  std::vector<int> inputs = {x, w};
  double bias_rms = 0;
  if (bias) {
    int b = add_weight(layer, "b", {out_channels}, accumulator_type(type_), 0, "bias_weights",
                       "bias [out_channels]");
    inputs.push_back(b);
    bias_rms = rms_of(b);
  }

  int64_t reduction = channels / groups;
  for (int64_t k : kernel) reduction *= k;
  const double x_scale = scale_of(x), x_rms = rms_of(x), w_rms = rms_of(w);
  Quantized q = output_quantization(layer, [&] {
    return Quantized{frontend_defaults::accumulator_output_scale(x_scale, x_rms, w_scale, w_rms,
                                                                 static_cast<double>(reduction), bias_rms),
                     kTargetRms};
  });
  int y =
      add_op(OpKind::Conv, layer, layer.name, inputs, q,
             {{"strides", strides}, {"pads", pads}, {"dilations", dilations}, {"groups", groups}});
  return add_fused_activation(layer, y);
}

int ModelBuilder::build_linear(const Layer& layer) {
  const Mapping& spec = layer.spec;
  const int x = layer.inputs[0];
  const std::vector<int64_t> shape = value(x).shape;
  const std::string input_name = value(x).name;
  TPUSIM_CHECK(!shape.empty(), "infer_shapes leaves no value without a shape");
  const int64_t features = shape.back();
  if (auto node = spec.find("in_features")) {
    int64_t given = read_size(*node, 1);
    if (given != features) {
      node->fail(
          fmt::format("is {}, but the input '{}' has shape {}: its last dim gives {} "
                      "features",
                      given, input_name, format_shape(shape), features));
    }
  }
  int64_t out_features =
      read_size(spec.require("out_features", "the number of outputs of the layer"), 1);
  std::optional<Node> bias_node = spec.find("bias");
  bool bias = !bias_node || read_bool(*bias_node);
  if (!bias) {
    if (auto node = spec.find("bias_weights"))
      node->fail("gives a bias file, but bias is false; remove one of them");
  }
  const double w_scale = weight_scale(layer, static_cast<double>(features));
  int w = add_weight(layer, "w", {out_features, features}, type_, w_scale, "weights",
                     "weights [out_features, in_features]");
  std::vector<int> inputs = {x, w};
  double bias_rms = 0;
  if (bias) {
    int b = add_weight(layer, "b", {out_features}, accumulator_type(type_), 0, "bias_weights",
                       "bias [out_features]");
    inputs.push_back(b);
    bias_rms = rms_of(b);
  }
  const double x_scale = scale_of(x), x_rms = rms_of(x), w_rms = rms_of(w);
  Quantized q = output_quantization(layer, [&] {
    return Quantized{frontend_defaults::accumulator_output_scale(x_scale, x_rms, w_scale, w_rms,
                                                                 static_cast<double>(features), bias_rms),
                     kTargetRms};
  });
  int y = add_op(OpKind::Linear, layer, layer.name, inputs, q);
  return add_fused_activation(layer, y);
}

int ModelBuilder::build_pool(const Layer& layer) {
  const Mapping& spec = layer.spec;
  const int x = layer.inputs[0];
  const std::vector<int64_t> shape = value(x).shape;
  if (shape.size() != 3 && shape.size() != 4) {
    throw Error(layer.input_wheres[0],
                fmt::format("{} needs an NCW (1-D) or NCHW (2-D) input; '{}' has shape {}",
                            layer.type->name, value(x).name, format_shape(shape)));
  }
  const size_t spatial = shape.size() - 2;
  std::vector<int64_t> kernel =
      read_per_dim(spec.require("kernel", "the window size, e.g. 2 or [2, 2]"), spatial, 1, shape);
  std::vector<int64_t> strides = kernel;  // non-overlapping windows unless told otherwise
  if (auto node = spec.find("stride")) strides = read_per_dim(*node, spatial, 1, shape);
  std::vector<int64_t> pads(2 * spatial, 0);
  if (auto node = spec.find("padding")) {
    pads = read_padding(*node, shape, kernel, strides, std::vector<int64_t>(spatial, 1),
                        /*allow_causal=*/false);
  }
  OpKind kind = layer.type->kind == LayerKind::MaxPool ? OpKind::MaxPool : OpKind::AvgPool;
  Quantized q = output_quantization(layer, [&] { return quantized(x); });
  return add_op(kind, layer, layer.name, {x}, q,
                {{"kernel", kernel}, {"strides", strides}, {"pads", pads}});
}

int ModelBuilder::build_layernorm(const Layer& layer) {
  const Mapping& spec = layer.spec;
  const int x = layer.inputs[0];
  const std::vector<int64_t> shape = value(x).shape;
  TPUSIM_CHECK(!shape.empty(), "infer_shapes leaves no value without a shape");
  double epsilon = kDefaultEpsilon;
  if (auto node = spec.find("epsilon")) epsilon = read_positive_number(*node);
  int gamma = add_weight(layer, "gamma", {shape.back()}, type_, 0, "gamma",
                         "scale (gamma) [the input's last dim]");
  int beta = add_weight(layer, "beta", {shape.back()}, type_, 0, "beta",
                        "shift (beta) [the input's last dim]");
  return add_op(OpKind::LayerNorm, layer, layer.name, {x, gamma, beta}, {}, {{"epsilon", epsilon}});
}

int ModelBuilder::build_attention(const Layer& layer) {
  const Mapping& spec = layer.spec;
  std::vector<int> inputs = layer.inputs;
  if (inputs.size() == 1) inputs = {inputs[0], inputs[0], inputs[0]};  // self-attention
  int64_t heads = read_size(spec.require("heads", "the number of query heads"), 1);
  int64_t kv_heads = heads;
  if (auto node = spec.find("kv_heads")) {
    kv_heads = read_size(*node, 1);
    if (heads % kv_heads != 0)
      node->fail(
          fmt::format("{} key/value heads do not divide the {} query heads", kv_heads, heads));
  }
  bool causal = false;
  if (auto node = spec.find("causal")) causal = read_bool(*node);
  int64_t window = 0;
  if (auto node = spec.find("window"))
    window = read_size(*node, 1,  " (a window of W sees the last W positions; leave window out to see them all)");
  std::map<std::string, AttrValue> attrs = {{"heads", heads},
                                            {"kv_heads", kv_heads},
                                            {"causal", int64_t{causal ? 1 : 0}},
                                            {"window", window}};
  if (auto node = spec.find("score_scale")) attrs["scale"] = read_positive_number(*node);
  return add_op(OpKind::Attention, layer, layer.name, inputs, {}, std::move(attrs));
}

int ModelBuilder::build(const Layer& layer) {
  const Mapping& spec = layer.spec;
  const std::vector<int>& in = layer.inputs;
  auto keep_range = [&] { return quantized(in[0]); };
  auto optional_int = [&](const char* key, int64_t fallback) {
    std::optional<Node> node = spec.find(key);
    return node ? read_bounded_integer(*node) : fallback;
  };
  switch (layer.type->kind) {
    case LayerKind::Conv:
      return build_conv(layer);
    case LayerKind::Linear:
      return build_linear(layer);
    case LayerKind::MatMul: {
      const int64_t reduction = value(in[0]).shape.empty() ? 1 : value(in[0]).shape.back();
      Quantized q = output_quantization(layer, [&] {
        double rms = std::sqrt(static_cast<double>(reduction)) * rms_of(in[0]) * rms_of(in[1]);
        return Quantized{scale_of(in[0]) * scale_of(in[1]) * rms / kTargetRms, kTargetRms};
      });
      return add_op(OpKind::MatMul, layer, layer.name, in, q);
    }
    case LayerKind::Add: {
      // Independent inputs: their real RMS values add in quadrature.
      Quantized q = output_quantization(layer, [&] {
        double real = std::hypot(scale_of(in[0]) * rms_of(in[0]), scale_of(in[1]) * rms_of(in[1]));
        return Quantized{real / kTargetRms, kTargetRms};
      });
      return add_fused_activation(layer, add_op(OpKind::Add, layer, layer.name, in, q));
    }
    case LayerKind::Mul: {
      Quantized q = output_quantization(layer, [&] {
        double real = scale_of(in[0]) * rms_of(in[0]) * scale_of(in[1]) * rms_of(in[1]);
        return Quantized{real / kTargetRms, kTargetRms};
      });
      return add_fused_activation(layer, add_op(OpKind::Mul, layer, layer.name, in, q));
    }
    case LayerKind::Relu:
      return add_op(OpKind::Relu, layer, layer.name, in, output_quantization(layer, [&] { return rectified(in[0]); }));
    case LayerKind::Relu6:
      return add_op(OpKind::Clip, layer, layer.name, in, output_quantization(layer, [&] { return rectified(in[0]); }),
                    {{"min", 0.0}, {"max", 6.0}});
    case LayerKind::Clip: {
      double low = read_number(spec.require("min", "the lower bound, a number"));
      Node max_node = spec.require("max", "the upper bound, a number");
      double high = read_number(max_node);
      if (high < low)
        max_node.fail(fmt::format("is below min ({}); max must be at least min", low));
      return add_op(OpKind::Clip, layer, layer.name, in, output_quantization(layer, keep_range),
                    {{"min", low}, {"max", high}});
    }
    case LayerKind::Gelu:
      return add_op(OpKind::Gelu, layer, layer.name, in, output_quantization(layer, keep_range));
    case LayerKind::MaxPool:
    case LayerKind::AvgPool:
      return build_pool(layer);
    case LayerKind::GlobalAvgPool:
      return add_op(OpKind::GlobalAvgPool, layer, layer.name, in,
                    output_quantization(layer, keep_range));
    case LayerKind::Flatten:
      return add_op(OpKind::Flatten, layer, layer.name, in, output_quantization(layer, keep_range),
                    {{"axis", optional_int("axis", 1)}});
    case LayerKind::Reshape: {
      std::vector<int64_t> shape = read_integer_list(
          spec.require("shape", "the new shape, such as [1, -1]; one -1 is inferred"),
          "a list of dimension sizes such as [1, -1]");
      return add_op(OpKind::Reshape, layer, layer.name, in, output_quantization(layer, keep_range),
                    {{"shape", shape}});
    }
    case LayerKind::Transpose: {
      std::vector<int64_t> perm = read_integer_list(
          spec.require("perm", "output dim i is input dim perm[i], such as [0, 2, 1]"),
          "a list of dims such as [0, 2, 1]");
      return add_op(OpKind::Transpose, layer, layer.name, in,
                    output_quantization(layer, keep_range), {{"perm", perm}});
    }
    case LayerKind::Concat: {
      // Concat copies int8 values as they are, so its inputs must share one scale.
      for (size_t i = 1; is_int8() && i < in.size(); ++i) {
        if (scale_of(in[i]) != scale_of(in[0])) {
          throw Error(
              layer.input_wheres[i],
              fmt::format("'{}' has scale {} but '{}' has scale {}; concat copies int8 "
                          "values without rescaling, so give the layers it joins the same "
                          "'scale:'",
                          value(in[i]).name, scale_of(in[i]), value(in[0]).name, scale_of(in[0])));
        }
      }
      double real = 0;
      for (int i : in) real = std::max(real, rms_of(i));
      return add_op(OpKind::Concat, layer, layer.name, in, {scale_of(in[0]), real},
                    {{"axis", optional_int("axis", 1)}});
    }
    case LayerKind::Softmax:
      return add_op(OpKind::Softmax, layer, layer.name, in, {},
                    {{"axis", optional_int("axis", -1)}});
    case LayerKind::LayerNorm:
      return build_layernorm(layer);
    case LayerKind::Attention:
      return build_attention(layer);
  }
  TPUSIM_CHECK(false, "unhandled layer type");
  return -1;
}

void ModelBuilder::add_layer(const Node& item, size_t index) {
  // `- conv: {...}` (the type with its settings) or `- relu` (a type without settings).
  std::string type_name;
  Node body;
  SourceLocation where = item.where;
  if (item.yaml.IsScalar()) {
    type_name = item.yaml.Scalar();
  } else if (item.yaml.IsMap() && item.yaml.size() == 1) {
    auto pair = *item.yaml.begin();
    where = locate(pair.first.Mark(), item.where, item.where.key_path);
    if (!pair.first.IsScalar())
      throw Error(where, "expected a layer type such as conv, got " + describe(pair.first));
    type_name = pair.first.Scalar();
    YAML::Mark mark = pair.second.IsNull() ? YAML::Mark::null_mark() : pair.second.Mark();
    body = Node{pair.second, locate(mark, where, "")};
  } else if (item.yaml.IsMap()) {
    std::vector<std::string> keys;
    for (const auto& pair : item.yaml)
      keys.push_back(pair.first.IsScalar() ? pair.first.Scalar() : "?");
    item.fail(
        fmt::format("a layer is one key, its type, holding its settings; got {} keys ({}). "
                    "Write '- conv: {{out_channels: 8, kernel: 3}}' or indent the settings "
                    "under the type",
                    keys.size(), join(keys)));
  } else {
    item.fail(
        fmt::format("expected a layer such as '- conv: {{out_channels: 8, kernel: 3}}', got {}",
                    describe(item.yaml)));
  }
  const LayerType* type = find_layer_type(type_name);
  if (type == nullptr) {
    std::string hint = nearest_spelling(type_name, layer_type_names());
    throw Error(where, hint.empty() ? fmt::format("unknown layer type '{}'; the types are: {}",
                                                  type_name, join(layer_type_names()))
                                    : fmt::format("unknown layer type '{}'; did you mean '{}'?",
                                                  type_name, hint));
  }
  where.key_path = child_path(item_path("layers", index), type->name);
  body.where.key_path = where.key_path;
  std::map<std::string, std::string> refused;
  if (!type->scales) {
    refused["scale"] =
        runs_in_float(type->kind)
            ? fmt::format("{} runs in floating point (bf16 models), so it has no int8 scale",
                          type->name)
            : fmt::format(
                  "{} does not rescale: its int8 output keeps its input's scale (set "
                  "'scale:' on the layer that produces the input instead)",
                  type->name);
  }
  Layer layer{type, "", where, where, Mapping(body, where, type->keys, type->name, refused),
              {},   {}};
  if (is_int8() && runs_in_float(type->kind)) {
    throw Error(where,
                fmt::format("{} runs in floating point, so it needs a bf16 model; set 'type: "
                            "bf16' at the top of the file",
                            type->name));
  }

  // The n-th layer of a type is called TYPEn unless it has a name (relu6 layers: relu6_n).
  int ordinal = ++type_counts_[type->name];
  if (std::optional<Node> name_node = layer.spec.find("name")) {
    layer.name = read_name(*name_node);
    layer.name_where = name_node->where;
  } else {
    std::string prefix = type->name;
    layer.name = prefix + (std::isdigit(static_cast<unsigned char>(prefix.back())) ? "_" : "") +
                 std::to_string(ordinal);
  }
  claim_name(layer.name, layer.name_where, !layer.spec.find("name"));
  later_names_.erase(layer.name);
  reject_int8_keys(layer);
  resolve_inputs(layer);
  int output = build(layer);
  graph_.outputs = {output};  // for now: set_outputs decides at the end
  infer(layer);
  layer_outputs_[layer.name] = output;
  previous_ = output;
}

void ModelBuilder::set_outputs(const std::optional<Node>& outputs) {
  graph_.outputs.clear();
  if (!outputs) {
    graph_.outputs = {previous_};
    return;
  }
  for (const Node& reference : name_items(*outputs)) {
    int index = resolve_reference(reference);
    if (std::find(graph_.outputs.begin(), graph_.outputs.end(), index) != graph_.outputs.end())
      reference.fail(fmt::format("'{}' is listed twice", reference.yaml.Scalar()));
    graph_.outputs.push_back(index);
  }
  if (graph_.outputs.empty()) outputs->fail("must name at least one layer");
}

std::string read_model_file(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error))
    throw Error(SourceLocation{path, 0, 0, ""}, "is a directory; give a model YAML file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::string reason = std::strerror(errno);
    if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(reason[0]));
    throw Error(SourceLocation{path, 0, 0, ""}, "cannot open file: " + reason);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// yaml-cpp's messages name the parser's state; say what the user most likely has to fix.

DType read_model_type(const Node& node) {
  const std::string& text = scalar_text(node, "int8 or bf16");
  std::optional<DType> type = parse_dtype(text);
  if (!type || (*type != DType::Int8 && *type != DType::BF16)) {
    std::string why = type ? fmt::format(
                                 " ({} is an accumulator type: int8 accumulates in int32, "
                                 "bf16 in fp32)",
                                 text)
                           : "";
    node.fail(fmt::format("must be int8 or bf16, got '{}'{}", text, why));
  }
  return *type;
}

// Explicit layer names and their lines, so a reference to a later layer can say so.
std::map<std::string, int> explicit_layer_names(const YAML::Node& layers) {
  std::map<std::string, int> names;
  if (!layers.IsSequence()) return names;
  for (const auto& item : layers) {
    if (!item.IsMap() || item.size() != 1) continue;
    const YAML::Node body = item.begin()->second;
    if (!body.IsMap()) continue;
    const YAML::Node name = body["name"];
    if (name && name.IsScalar()) names.emplace(name.Scalar(), name.Mark().line + 1);
  }
  return names;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Graph parse_model_yaml(const std::string& text, const std::string& file_name, const ResourceLimits& limits) {
  const YAML::Node root = yaml_text::load_single_document(
      text, file_name,
      "the file is empty; a model needs at least inputs and layers (see examples/models/tiny-cnn.yaml)");
  SourceLocation root_where{file_name, root.Mark().line + 1, root.Mark().column + 1, ""};
  if (!root.IsMap()) {
    throw Error(root_where, fmt::format("the top level must be a mapping with the keys {}, got {}",
                                        join(kTopLevelKeys), describe(root)));
  }
  Mapping top(Node{root, root_where}, root_where, kTopLevelKeys, "");

  // The model's name when it gives none: the file name with other characters made '_'.
  std::string name = frontend_defaults::name_from_file(file_name);
  if (auto node = top.find("name")) name = read_name(*node);
  DType type = DType::Int8;
  if (auto node = top.find("type")) type = read_model_type(*node);
  uint64_t seed = kDefaultSeed;
  if (auto node = top.find("seed")) seed = static_cast<uint64_t>(read_integer_at_least(*node, 0));
  Node inputs =
      top.require("inputs", "the model inputs, such as 'image: {shape: [1, 3, 224, 224]}'");
  Node layers = top.require("layers", "the list of layers, run in order");

  ModelBuilder builder(file_name, type, seed, std::filesystem::path(file_name).parent_path(),
                       explicit_layer_names(layers.yaml), limits);
  builder.graph().name = name;

  if (!inputs.yaml.IsMap() || inputs.yaml.size() == 0) {
    inputs.fail(
        fmt::format("expected a mapping from input names to shapes, such as 'image: "
                    "{{shape: [1, 3, 224, 224]}}', got {}",
                    describe(inputs.yaml)));
  }
  for (const auto& pair : inputs.yaml) {
    SourceLocation key_where = locate(pair.first.Mark(), inputs.where, "inputs");
    Node key{pair.first, key_where};
    if (pair.first.IsScalar()) key.where.key_path = child_path("inputs", pair.first.Scalar());
    YAML::Mark mark = pair.second.IsNull() ? YAML::Mark::null_mark() : pair.second.Mark();
    builder.add_input(key, Node{pair.second, locate(mark, key.where, key.where.key_path)});
  }

  std::vector<Node> items = sequence_items(layers, "a list of layers");
  if (items.empty()) layers.fail("must list at least one layer");
  for (size_t i = 0; i < items.size(); ++i) builder.add_layer(items[i], i);
  builder.set_outputs(top.find("outputs"));

  Graph graph = std::move(builder.graph());
  infer_shapes(graph);
  return graph;
}

Graph load_model_yaml(const std::string& path, const ResourceLimits& limits) {
  std::error_code error;
  if (!std::filesystem::exists(path, error))
    throw Error(SourceLocation{path, 0, 0, ""}, "cannot open file: no such file or directory");
  return parse_model_yaml(read_model_file(path), path, limits);
}

}  // namespace tpusim
