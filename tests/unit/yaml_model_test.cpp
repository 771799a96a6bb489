// The model description format (docs/model-format.md): the example models, generated names and
// defaults, every padding form, the default int8 scales, bf16 models and weight files.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "compiler/frontend/yaml_model.h"
#include "ir/diagnostics.h"
#include "simulator/random_data.h"
#include "test_util.h"

using namespace tpusim;

namespace {

Graph load_example(const std::string& name) {
  return load_model_yaml(test::source_dir() + "/examples/models/" + name + ".yaml");
}

const Value& value(const Graph& graph, const std::string& name) {
  int index = graph.find_value(name);
  INFO(name);
  REQUIRE(index >= 0);
  return graph.values[static_cast<size_t>(index)];
}

const Op& producer(const Graph& graph, const std::string& name) {
  const Value& v = value(graph, name);
  REQUIRE(v.producer >= 0);
  return graph.ops[static_cast<size_t>(v.producer)];
}

int count_ops(const Graph& graph, OpKind kind) {
  int count = 0;
  for (const Op& op : graph.ops) count += op.kind == kind ? 1 : 0;
  return count;
}

// A one-layer int8 model: `layer` reads `input_shape`.
Graph one_layer(const std::string& layer, const std::string& input_shape = "[1, 3, 8, 8]") {
  return parse_model_yaml(
      "inputs:\n  x: {shape: " + input_shape + "}\nlayers:\n  - " + layer + "\n", "one_layer.yaml");
}

std::vector<int64_t> pads_of(const std::string& layer,
                             const std::string& input_shape = "[1, 3, 8, 8]") {
  Graph graph = one_layer(layer, input_shape);
  return graph.ops.at(0).attr_ints("pads", {});
}

double rms(const HostTensor& tensor) {
  double sum = 0;
  for (int64_t i = 0; i < tensor.element_count(); ++i) {
    double x = load_element(tensor.dtype, tensor.bytes.data() + i * dtype_size(tensor.dtype));
    sum += x * x;
  }
  return std::sqrt(sum / static_cast<double>(tensor.element_count()));
}

double three_digits(double x) {
  return std::stod(fmt::format("{:.3g}", x));
}

}  // namespace

TEST_CASE("every example model loads and passes shape inference", "[model]") {
  struct Example {
    const char* file;
    const char* output;
    std::vector<int64_t> output_shape;
  };
  const std::vector<Example> examples = {
      {"tiny-cnn", "fc", {1, 10}},   {"resnet18", "fc", {1, 1000}},
      {"resnet50", "fc", {1, 1000}}, {"mobilenetv2", "classifier", {1, 1000}},
      {"tcn", "res6", {1, 32, 128}},
  };
  for (const Example& example : examples) {
    INFO(example.file);
    Graph graph = load_example(example.file);
    CHECK(verify_graph(graph).empty());
    REQUIRE_NOTHROW(infer_shapes(graph));
    REQUIRE(graph.outputs.size() == 1);
    const Value& out = graph.values[static_cast<size_t>(graph.outputs[0])];
    CHECK(out.name == example.output);
    CHECK(out.shape == example.output_shape);
    for (const Value& v : graph.values) {
      INFO(v.name);
      CHECK(v.location.line > 0);
      if (v.dtype == DType::Int8) CHECK(v.scale > 0);
    }
  }
}

TEST_CASE("the example networks have their published MAC counts", "[model]") {
  // Multiply-accumulates of the convolutions and the classifier, the figures torchvision's model
  // documentation lists as GFLOPS: ResNet-18 1.81, ResNet-50 4.09, MobileNetV2 0.30.
  Graph resnet18 = load_example("resnet18");
  CHECK(graph_macs(resnet18) == 1'814'073'344);
  CHECK(count_ops(resnet18, OpKind::Conv) == 20);  // 1 + 8 blocks * 2 + 3 projections
  CHECK(count_ops(resnet18, OpKind::Add) == 8);

  Graph resnet50 = load_example("resnet50");
  CHECK(graph_macs(resnet50) == 4'089'184'256);
  CHECK(count_ops(resnet50, OpKind::Conv) == 53);  // 1 + 16 blocks * 3 + 4 projections
  CHECK(count_ops(resnet50, OpKind::Add) == 16);

  Graph mobilenet = load_example("mobilenetv2");
  CHECK(graph_macs(mobilenet) == 300'774'272);
  CHECK(count_ops(mobilenet, OpKind::Conv) ==
        52);  // stem + 17 blocks (the first has no expansion) * 3 - 1 + head
  CHECK(count_ops(mobilenet, OpKind::Add) == 10);  // stride-1 blocks whose channels match
  CHECK(count_ops(mobilenet, OpKind::Clip) ==
        35);  // relu6 after stem, head, each expand and depthwise

  // tcn: a 1x1 projection 16 -> 32, then six kernel-3 layers over 128 steps.
  Graph tcn = load_example("tcn");
  CHECK(graph_macs(tcn) == 128 * 32 * 16 + 128 * 32 * 16 * 3 + 5 * (128 * 32 * 32 * 3));

  // tiny-cnn: conv1, depthwise, pointwise, projection, fc.
  Graph tiny = load_example("tiny-cnn");
  CHECK(graph_macs(tiny) == 64 * 4 * 27 + 16 * 4 * 9 + 16 * 8 * 4 + 16 * 8 * 4 + 8 * 10);
}

TEST_CASE("the example networks have the expected layer shapes", "[model]") {
  Graph resnet18 = load_example("resnet18");
  CHECK(value(resnet18, "conv1").shape == std::vector<int64_t>{1, 64, 112, 112});
  CHECK(value(resnet18, "maxpool").shape == std::vector<int64_t>{1, 64, 56, 56});
  CHECK(value(resnet18, "layer2.0.downsample").shape == std::vector<int64_t>{1, 128, 28, 28});
  CHECK(value(resnet18, "layer4.1.relu").shape == std::vector<int64_t>{1, 512, 7, 7});
  CHECK(producer(resnet18, "layer2.0.downsample").attr_ints("strides", {}) ==
        std::vector<int64_t>{2, 2});

  Graph resnet50 = load_example("resnet50");
  // torchvision's v1.5 bottleneck: the stride is on the 3x3 conv.
  CHECK(producer(resnet50, "layer3.0.conv1").attr_ints("strides", {}) ==
        std::vector<int64_t>{1, 1});
  CHECK(producer(resnet50, "layer3.0.conv2").attr_ints("strides", {}) ==
        std::vector<int64_t>{2, 2});
  CHECK(value(resnet50, "layer4.2.relu").shape == std::vector<int64_t>{1, 2048, 7, 7});

  Graph mobilenet = load_example("mobilenetv2");
  CHECK(producer(mobilenet, "block2.dw").attr_int("groups", 0) == 96);
  CHECK(value(mobilenet, "block17.project").shape == std::vector<int64_t>{1, 320, 7, 7});
  CHECK(value(mobilenet, "head").shape == std::vector<int64_t>{1, 1280, 7, 7});

  Graph tcn = load_example("tcn");
  CHECK(producer(tcn, "tcn6").attr_ints("dilations", {}) == std::vector<int64_t>{32});
  CHECK(producer(tcn, "tcn6").attr_ints("pads", {}) == std::vector<int64_t>{64, 0});
}

TEST_CASE("layers get generated names, weights and documented defaults", "[model]") {
  Graph graph = parse_model_yaml(R"(inputs:
  image: {shape: [1, 3, 8, 8]}
layers:
  - conv: {out_channels: 4, kernel: 3, relu: true}
  - conv: {name: named, out_channels: 4, kernel: 1, bias: false, relu6: true}
  - maxpool: {kernel: 2}
  - relu
  - relu6: {}
  - conv: {out_channels: 2, kernel: 1}
)",
                                 "models/names.yaml");
  CHECK(graph.name == "names");  // from the file name
  CHECK(graph.file == "models/names.yaml");

  const Value& image = value(graph, "image");
  CHECK(image.kind == ValueKind::Input);
  CHECK(image.scale == 1.0 / 128);

  // The n-th layer of a type is TYPEn whether or not the others are named.
  std::vector<std::string> op_names;
  for (const Op& op : graph.ops) op_names.push_back(op.name);
  CHECK(op_names == std::vector<std::string>{"conv1", "conv1.relu", "named", "named.relu6",
                                             "maxpool1", "relu1", "relu6_1", "conv3"});
  CHECK(producer(graph, "named.relu6").kind == OpKind::Clip);
  CHECK(producer(graph, "named.relu6").attr_float("max", 0) == 6.0);

  const Value& w = value(graph, "conv1.w");
  CHECK(w.kind == ValueKind::Weight);
  CHECK(w.dtype == DType::Int8);
  CHECK(w.shape == std::vector<int64_t>{4, 3, 3, 3});
  // He initialization: seeded weights span +-sqrt(6 / fan_in), fan_in = 3 * 3 * 3.
  CHECK(w.scale == three_digits(std::sqrt(6.0 / 27) / 128));
  CHECK(w.seed == seed_for("conv1.w", 1));
  CHECK(w.weight_file.empty());
  const Value& b = value(graph, "conv1.b");
  CHECK(b.dtype == DType::Int32);
  CHECK(b.shape == std::vector<int64_t>{4});
  CHECK(b.seed == seed_for("conv1.b", 1));
  CHECK(graph.find_value("named.b") < 0);  // bias: false

  // A layer reads the previous layer's final output (after its fused activation).
  CHECK(producer(graph, "named").inputs[0] == graph.find_value("conv1.relu"));
  CHECK(producer(graph, "maxpool1").inputs[0] == graph.find_value("named.relu6"));
  // Pooling strides default to the window; conv attributes are always written out.
  CHECK(producer(graph, "maxpool1").attr_ints("strides", {}) == std::vector<int64_t>{2, 2});
  const Op& conv = producer(graph, "conv1");
  CHECK(conv.attr_ints("strides", {}) == std::vector<int64_t>{1, 1});
  CHECK(conv.attr_ints("pads", {}) == std::vector<int64_t>{0, 0, 0, 0});
  CHECK(conv.attr_ints("dilations", {}) == std::vector<int64_t>{1, 1});
  CHECK(conv.attr_int("groups", 0) == 1);
  CHECK(conv.location.file == "models/names.yaml");
  CHECK(conv.location.line == 4);
  CHECK(conv.location.key_path == "layers[0].conv");

  // Without `outputs:`, the last layer's output is the model's.
  REQUIRE(graph.outputs.size() == 1);
  CHECK(graph.values[static_cast<size_t>(graph.outputs[0])].name == "conv3");
  CHECK(value(graph, "conv3").shape == std::vector<int64_t>{1, 2, 3, 3});
}

TEST_CASE("inputs, seeds and outputs can be given explicitly", "[model]") {
  Graph graph = parse_model_yaml(R"(name: two_heads
seed: 7
inputs:
  a: [1, 16]
  b: {shape: [1, 16], scale: 0.5}
layers:
  - linear: {name: fa, input: a, out_features: 8, weight_scale: 0.25}
  - linear: {name: fb, input: [b], out_features: 8, scale: 0.125}
  - add: {name: sum, inputs: [fa, fb], relu: true}
outputs: [sum, fa]
)",
                                 "two.yaml");
  CHECK(graph.name == "two_heads");
  CHECK(value(graph, "a").shape == std::vector<int64_t>{1, 16});
  CHECK(value(graph, "b").scale == 0.5);
  CHECK(value(graph, "fa.w").scale == 0.25);
  CHECK(value(graph, "fa.w").seed == seed_for("fa.w", 7));
  CHECK(value(graph, "fb").scale == 0.125);
  REQUIRE(graph.outputs.size() == 2);
  CHECK(graph.values[static_cast<size_t>(graph.outputs[0])].name ==
        "sum.relu");  // the layer's final output
  CHECK(graph.values[static_cast<size_t>(graph.outputs[1])].name == "fa");
}

TEST_CASE("every padding form gives the expected ONNX pads", "[model]") {
  // 2-D: pads are [top, left, bottom, right] = [begin..., end...].
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3}") == std::vector<int64_t>{0, 0, 0, 0});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, padding: 1}") ==
        std::vector<int64_t>{1, 1, 1, 1});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, padding: [1, 2]}") ==
        std::vector<int64_t>{1, 2, 1, 2});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, padding: [0, 1, 2, 3]}") ==
        std::vector<int64_t>{0, 1, 2, 3});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, padding: valid}") ==
        std::vector<int64_t>{0, 0, 0, 0});
  // same (ONNX SAME_UPPER): output = ceil(input / stride); an odd total pad puts the extra one
  // at the end.
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, padding: same}") ==
        std::vector<int64_t>{1, 1, 1, 1});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 4, padding: same}") ==
        std::vector<int64_t>{1, 1, 2, 2});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, stride: 2, padding: same}") ==
        std::vector<int64_t>{0, 0, 1, 1});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, dilation: 2, padding: same}") ==
        std::vector<int64_t>{2, 2, 2, 2});
  CHECK(pads_of("conv: {out_channels: 2, kernel: [1, 3], padding: same}") ==
        std::vector<int64_t>{0, 1, 0, 1});
  CHECK(one_layer("conv: {out_channels: 2, kernel: 3, stride: 2, padding: same}")
            .values.back()
            .shape == std::vector<int64_t>{1, 2, 4, 4});

  // 1-D: pads are [left, right]; causal pads (kernel - 1) * dilation on the left only.
  const std::string sequence = "[1, 4, 16]";
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, padding: 1}", sequence) ==
        std::vector<int64_t>{1, 1});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, padding: [2]}", sequence) ==
        std::vector<int64_t>{2, 2});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, padding: [2, 0]}", sequence) ==
        std::vector<int64_t>{2, 0});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 2, padding: same}", sequence) ==
        std::vector<int64_t>{0, 1});
  CHECK(pads_of("conv: {out_channels: 2, kernel: 3, dilation: 4, padding: causal}", sequence) ==
        std::vector<int64_t>{8, 0});
  CHECK(one_layer("conv: {out_channels: 2, kernel: 3, dilation: 4, padding: causal}", sequence)
            .values.back()
            .shape == std::vector<int64_t>{1, 2, 16});

  // Pools take the same forms (no causal).
  CHECK(pads_of("maxpool: {kernel: 3, stride: 2, padding: 1}") == std::vector<int64_t>{1, 1, 1, 1});
  CHECK(pads_of("avgpool: {kernel: 2, padding: [0, 1]}") == std::vector<int64_t>{0, 1, 0, 1});
}

TEST_CASE("groups and depthwise convolutions size their weights", "[model]") {
  Graph grouped = one_layer("conv: {out_channels: 6, kernel: 3, groups: 3}", "[1, 6, 8, 8]");
  CHECK(value(grouped, "conv1.w").shape == std::vector<int64_t>{6, 2, 3, 3});
  CHECK(grouped.ops[0].attr_int("groups", 0) == 3);

  Graph depthwise = one_layer("conv: {kernel: 3, depthwise: true}", "[1, 6, 8, 8]");
  CHECK(value(depthwise, "conv1.w").shape == std::vector<int64_t>{6, 1, 3, 3});
  CHECK(depthwise.ops[0].attr_int("groups", 0) == 6);
  CHECK(value(depthwise, "conv1").shape == std::vector<int64_t>{1, 6, 6, 6});

  // A channel multiplier: depthwise with more output channels.
  Graph multiplier =
      one_layer("conv: {out_channels: 12, kernel: 3, depthwise: true}", "[1, 6, 8, 8]");
  CHECK(value(multiplier, "conv1.w").shape == std::vector<int64_t>{12, 1, 3, 3});
}

TEST_CASE("default int8 scales follow the documented rules", "[model]") {
  Graph graph = parse_model_yaml(R"(inputs:
  x: {shape: [1, 3, 8, 8], scale: 0.02}
layers:
  - conv: {name: c, out_channels: 4, kernel: 3, relu: true}
  - conv: {name: d, out_channels: 4, kernel: 1, bias: false}
  - add: {name: s, inputs: [c, d]}
  - maxpool: {kernel: 2}
  - global_avgpool: {}
  - conv: {name: e, out_channels: 4, kernel: 1, bias: false, scale: 0.5}
)",
                                 "scales.yaml");
  const double uniform_int8 = 128 / std::sqrt(3.0);  // RMS of uniform int8 data
  const Value& b = value(graph, "c.b");
  const double bias_rms = rms(random_tensor(DType::Int32, b.shape, b.seed));
  // conv: s_y = s_x * s_w * sqrt(K * r_x^2 * r_w^2 + r_b^2) / 32, K = 3 * 3 * 3, with the
  // He-initialized weight scale s_w = sqrt(6 / K) / 128.
  const double c_w = three_digits(std::sqrt(6.0 / 27) / 128);
  const double c_scale = three_digits(
      0.02 * c_w * std::sqrt(27 * std::pow(uniform_int8, 4) + bias_rms * bias_rms) / 32);
  CHECK(value(graph, "c").scale == c_scale);
  CHECK(value(graph, "c.relu").scale == c_scale);  // relu keeps the scale
  // Layer outputs are assumed to have RMS 32, and 32 / sqrt(2) after a relu (half the values
  // become 0); no bias: s_y = s_x * s_w * sqrt(K) * r_x * r_w / 32.
  const double d_w = three_digits(std::sqrt(6.0 / 4) / 128);
  const double d_scale = three_digits(c_scale * d_w * std::sqrt(4.0) * (32 / std::sqrt(2.0)) * uniform_int8 / 32);
  CHECK(value(graph, "d").scale == d_scale);
  // add: the inputs' real RMS values add in quadrature.
  const double s_scale = three_digits(std::hypot(c_scale * 32 / std::sqrt(2.0), d_scale * 32) / 32);
  CHECK(value(graph, "s").scale == s_scale);
  CHECK(value(graph, "maxpool1").scale == s_scale);
  CHECK(value(graph, "global_avgpool1").scale == s_scale);
  CHECK(value(graph, "e").scale == 0.5);
}

TEST_CASE("bf16 models have no scales and may use attention", "[model]") {
  Graph graph = parse_model_yaml(R"(type: bf16
inputs:
  tokens: [1, 16, 64]
layers:
  - layernorm: {name: ln}
  - linear: {name: q, out_features: 64}
  - linear: {name: k, input: ln, out_features: 32}
  - linear: {name: v, input: ln, out_features: 32}
  - attention: {name: attn, inputs: [q, k, v], heads: 4, kv_heads: 2, causal: true, window: 8}
  - attention: {name: self, heads: 2, score_scale: 0.25}
  - gelu
  - softmax: {axis: -1}
)",
                                 "transformer.yaml");
  for (const Value& v : graph.values) {
    INFO(v.name);
    CHECK(v.scale == 0);
  }
  CHECK(value(graph, "q.w").dtype == DType::BF16);
  CHECK(value(graph, "q.b").dtype == DType::FP32);
  CHECK(value(graph, "ln.gamma").shape == std::vector<int64_t>{64});
  CHECK(value(graph, "ln.beta").dtype == DType::BF16);
  CHECK(producer(graph, "ln").attr_float("epsilon", 0) == 1e-5);
  const Op& attn = producer(graph, "attn");
  CHECK(attn.attr_int("heads", 0) == 4);
  CHECK(attn.attr_int("kv_heads", 0) == 2);
  CHECK(attn.attr_int("causal", 0) == 1);
  CHECK(attn.attr_int("window", 0) == 8);
  CHECK(attn.attrs.count("scale") == 0);
  const Op& self = producer(graph, "self");
  int attn_index = graph.find_value("attn");
  CHECK(self.inputs == std::vector<int>{attn_index, attn_index, attn_index});
  CHECK(self.attr_float("scale", 0) == 0.25);
  CHECK(value(graph, "softmax1").shape == std::vector<int64_t>{1, 16, 64});
  CHECK(graph_macs(graph) > 0);
}

TEST_CASE("weights can come from .npy files next to the model", "[model]") {
  // Paths are relative to the model file; the graph keeps them that way (graph.file anchors them).
  const std::string file = std::string(TPUSIM_TEST_DATA) + "/errors/models/inline.yaml";
  Graph graph = parse_model_yaml(R"(inputs:
  image: {shape: [1, 3, 8, 8]}
layers:
  - conv: {name: c, out_channels: 4, kernel: 3, weights: weights/int8_4x3x3x3.npy, bias: false}
)",
                                 file);
  const Value& w = value(graph, "c.w");
  CHECK(w.weight_file == "weights/int8_4x3x3x3.npy");
  CHECK(w.seed == 0);
  CHECK(w.location.line == 4);
  // The default output scale uses the file's measured RMS.
  HostTensor data =
      read_npy(std::string(TPUSIM_TEST_DATA) + "/errors/models/weights/int8_4x3x3x3.npy");
  const double expected = 1.0 / 128 * three_digits(std::sqrt(6.0 / 27) / 128) * std::sqrt(27.0) *
                         (128 / std::sqrt(3.0)) * rms(data) / 32;
  CHECK(value(graph, "c").scale == three_digits(expected));
}
