// Bad model descriptions -> the exact message a user sees. One file per mistake in
// tests/errors/models/ (weight files in tests/errors/models/weights/).
#include <catch2/catch.hpp>

#include "compiler/frontend/yaml_model.h"
#include "ir/diagnostics.h"
#include "test_util.h"

using namespace tpusim;

namespace {

std::string models_dir() {
  return std::string(TPUSIM_TEST_DATA) + "/errors/models";
}

// The full text of the error that loading `path` raises ("" if none).
std::string load_error(const std::string& path) {
  try {
    load_model_yaml(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Loads tests/errors/models/<name>.yaml and returns its error without the file name prefix.
std::string file_error(const std::string& name) {
  std::string path = models_dir() + "/" + name + ".yaml";
  std::string text = load_error(path);
  INFO(text);
  REQUIRE(text.starts_with(path + ":"));
  return text.substr(path.size() + 1);
}

}  // namespace

TEST_CASE("model errors carry file, line, column and key path", "[model][errors]") {
  std::string path = models_dir() + "/kernel_not_an_integer.yaml";
  try {
    load_model_yaml(path);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.location().file == path);
    CHECK(e.location().line == 4);
    CHECK(e.location().column == 37);
    CHECK(e.location().key_path == "layers[0].conv.kernel");
    CHECK(e.message() ==
          "expected an integer or a list of 2 integers ([height, width]), got 'three'");
  }
}

TEST_CASE("unknown layer types and keys suggest the nearest or list the valid ones",
          "[model][errors]") {
  CHECK(file_error("unknown_layer_type") ==
        "6:5: error: layers[1]: unknown layer type 'convv'; did you mean 'conv'?");
  CHECK(file_error("unknown_layer_type_no_suggestion") ==
        "4:5: error: layers[0]: unknown layer type 'batchnorm'; the types are: conv, linear, "
        "matmul, add, mul, "
        "relu, relu6, clip, gelu, maxpool, avgpool, global_avgpool, flatten, reshape, transpose, "
        "concat, softmax, "
        "layernorm, attention");
  CHECK(
      file_error("unknown_key") ==
      "4:29: error: layers[0].conv.kernal: unknown key 'kernal' for conv; did you mean 'kernel'?");
  CHECK(file_error("unknown_key_no_suggestion") ==
        "7:7: error: layers[0].conv.colour: unknown key 'colour' for conv; valid keys are: name, "
        "input, inputs, "
        "out_channels, in_channels, kernel, stride, padding, dilation, groups, depthwise, bias, "
        "weights, "
        "bias_weights, weight_scale, relu, relu6, scale");
  CHECK(file_error("unknown_top_level_key") ==
        "3:1: error: layer: unknown key 'layer'; did you mean 'layers'?");
  CHECK(file_error("scale_too_large") ==
        "6:18: error: layers[0].conv.name: value 'stem' has scale 5.1e+307; a scale must lie between 1e-18 and 1e18");
  CHECK(file_error("scale_on_relu") ==
        "4:12: error: layers[0].relu.scale: relu does not rescale: its int8 output keeps its "
        "input's scale (set "
        "'scale:' on the layer that produces the input instead)");
  CHECK(file_error("settings_not_indented") ==
        "4:5: error: layers[0]: a layer is one key, its type, holding its settings; got 3 keys "
        "(conv, "
        "out_channels, kernel). Write '- conv: {out_channels: 8, kernel: 3}' or indent the "
        "settings under the "
        "type");
}

TEST_CASE("model: missing required keys say where to add them", "[model][errors]") {
  CHECK(file_error("missing_out_channels") ==
        "4:5: error: layers[0].conv.out_channels: missing required key; add 'out_channels:' under "
        "'conv:' (the "
        "number of output channels)");
  CHECK(
      file_error("missing_layers") ==
      "1:1: error: layers: missing required key; add 'layers:' (the list of layers, run in order)");
  CHECK(file_error("empty_layers") == "3:9: error: layers: must list at least one layer");
}

TEST_CASE("model: values of the wrong type say what was expected and what was found",
          "[model][errors]") {
  CHECK(file_error("kernel_not_an_integer") ==
        "4:37: error: layers[0].conv.kernel: expected an integer or a list of 2 integers ([height, "
        "width]), got "
        "'three'");
  CHECK(file_error("kernel_wrong_length") ==
        "4:37: error: layers[0].conv.kernel: expected 2 values [height, width], one per spatial "
        "dim of the input "
        "[1, 3, 8, 8], got 3");
  CHECK(file_error("relu_not_a_bool") ==
        "4:46: error: layers[0].conv.relu: expected true or false, got 'yes'");
  CHECK(file_error("out_channels_list") ==
        "4:26: error: layers[0].conv.out_channels: expected an integer, got a sequence");
  CHECK(file_error("padding_wrong_length") ==
        "4:49: error: layers[0].conv.padding: expected 2 or 4 values ([height, width] for both "
        "sides, or [top, "
        "left, bottom, right]) for the input [1, 3, 8, 8], got 3");
  CHECK(file_error("causal_2d") ==
        "4:49: error: layers[0].conv.padding: causal padding is for 1-D convolutions (NCW input); "
        "the input [1, "
        "3, 8, 8] is 2-D: use same or explicit pads");
  CHECK(file_error("bad_type") ==
        "1:7: error: type: must be int8 or bf16, got 'fp32' (fp32 is an accumulator type: int8 "
        "accumulates in "
        "int32, bf16 in fp32)");
  CHECK(
      file_error("scale_in_bf16") ==
      "3:30: error: inputs.x.scale: scales apply to int8 models only (this model's type is bf16)");
  CHECK(file_error("softmax_in_int8") ==
        "4:5: error: layers[0].softmax: softmax runs in floating point, so it needs a bf16 model; "
        "set 'type: "
        "bf16' at the top of the file");
}

TEST_CASE("inputs must name earlier layers or model inputs", "[model][errors]") {
  CHECK(file_error("unknown_input") ==
        "6:24: error: layers[2].add.inputs[1]: no layer or model input named 'skp'; did you mean "
        "'skip'?");
  CHECK(file_error("later_input") ==
        "4:29: error: layers[0].conv.input: layer 'c2' is defined later (line 5); layers run in "
        "order, so a layer "
        "can read only earlier layers and the model inputs");
  CHECK(
      file_error("unknown_output") ==
      "5:11: error: outputs[0]: no layer or model input named 'feature'; did you mean 'features'?");
  CHECK(file_error("add_one_input") ==
        "5:19: error: layers[1].add.inputs: add takes 2 inputs, got 1");
  CHECK(file_error("first_layer_two_inputs") ==
        "5:5: error: layers[0].linear: the first layer has no previous layer to read and the model "
        "has 2 inputs "
        "(a, b); add 'input:' naming one");
}

TEST_CASE("shape mismatches between layers name the layer and both shapes", "[model][errors]") {
  // Found by infer_shapes and reported at the layer's line.
  CHECK(file_error("add_shape_mismatch") ==
        "7:5: error: layers[2].add: add 'add1': 'b' [1,4,8,8] does not broadcast to 'a' [1,8,8,8]: "
        "its shape "
        "must equal a trailing part of the first input's");
  CHECK(file_error("kernel_too_large") ==
        "4:5: error: layers[0].conv: conv 'conv1': the window spans 7 in spatial dim 0 (kernel 7, "
        "dilation 1) but "
        "the padded input is only 4 (4 + pads 0 + 0); add padding or use a smaller kernel");
  // Found by the frontend: a declared in_features against the previous layer.
  CHECK(file_error("in_features_mismatch") ==
        "7:37: error: layers[3].linear.in_features: is 16, but the input 'flatten1' has shape [1, "
        "4]: its last "
        "dim gives 4 features");
  CHECK(file_error("concat_scales_differ") ==
        "6:26: error: layers[2].concat.inputs[1]: 'b' has scale 0.2 but 'a' has scale 0.1; concat "
        "copies int8 "
        "values without rescaling, so give the layers it joins the same 'scale:'");
}

TEST_CASE("groups must divide the channels", "[model][errors]") {
  CHECK(file_error("groups_not_dividing") ==
        "4:48: error: layers[0].conv.groups: 3 groups do not divide the 8 input channels of "
        "'image' (shape [1, 8, "
        "8, 8])");
  CHECK(file_error("groups_and_depthwise") ==
        "4:31: error: layers[0].conv.groups: give groups or depthwise: true, not both (depthwise "
        "means groups = "
        "the input channels)");
}

TEST_CASE("bad attention specs name the layer and what does not fit", "[model][errors][attention]") {
  CHECK(file_error("attention_heads_not_dividing") ==
        "7:5: error: layers[0].attention: attention 'attn': heads=12 does not divide the width 64 of 'x' (heads * head "
        "dim)");
  CHECK(file_error("attention_kv_heads_not_dividing") ==
        "7:49: error: layers[0].attention.kv_heads: 3 key/value heads do not divide the 8 query heads");
  CHECK(file_error("attention_window_zero") ==
        "7:61: error: layers[0].attention.window: must be at least 1 (a window of W sees the last W positions; leave "
        "window out to see them all), got 0");
  CHECK(file_error("attention_qkv_mismatch") ==
        "9:5: error: layers[0].attention: attention 'attn': 'k' has 16 positions but 'v' has 12; keys and values pair up");
  CHECK(file_error("attention_head_dim_mismatch") ==
        "9:5: error: layers[0].attention: attention 'attn': 'k' has width 24 but must have kv_heads * head dim = 4 * 8 = "
        "32");
}

TEST_CASE("weight files must exist and match the layer's shape and type", "[model][errors]") {
  CHECK(file_error("weights_wrong_shape") ==
        "4:62: error: layers[0].conv.weights: 'weights/int8_4x3x5x5.npy' has shape [4, 3, 5, 5], "
        "expected [4, 3, "
        "3, 3] for the weights [out_channels, in_channels / groups, kernel height, kernel width] "
        "of 'conv1'");
  CHECK(file_error("weights_wrong_type") ==
        "4:62: error: layers[0].conv.weights: 'weights/fp32_4x3x3x3.npy' holds fp32 values "
        "('<f4'), expected int8 "
        "('|i1') for the weights [out_channels, in_channels / groups, kernel height, kernel width] "
        "of an int8 "
        "model");
  CHECK(file_error("bias_wrong_type") ==
        "4:102: error: layers[0].conv.bias_weights: 'weights/int8_4.npy' holds int8 values "
        "('|i1'), expected "
        "int32 ('<i4') for the bias [out_channels] of an int8 model");
  CHECK(file_error("weights_missing") ==
        "4:62: error: layers[0].conv.weights: cannot find 'weights/nothing-here.npy' (looked for " +
            models_dir() + "/weights/nothing-here.npy; paths are relative to the model file)");
  // The .npy reader's own message follows (tests/unit/npy_test.cpp holds its wording).
  CHECK(file_error("weights_not_npy")
            .starts_with("4:50: error: layers[0].linear.weights: cannot read "
                         "'weights/not-an-array.npy': not an .npy "
                         "file"));
  // A device that never ends (file_size is 0 for it) is refused
  // after the most bytes a file for a [4, 3, 3, 3] int8 tensor can hold, not read forever.
  CHECK(file_error("weights_endless") ==
        "4:62: error: layers[0].conv.weights: cannot read '/dev/zero': holds more than 1048684 bytes, far "
        "more than the 108 bytes of data the tensor it is for holds; check the path");
}

TEST_CASE("names must be unique", "[model][errors]") {
  CHECK(file_error("duplicate_name") ==
        "5:18: error: layers[1].conv.name: duplicate name 'c1' (first used at line 4); names must "
        "be unique");
  CHECK(file_error("duplicate_generated_name") ==
        "5:5: error: layers[1].conv: this layer's generated name 'conv2' is already used (line 4); "
        "give this "
        "layer a 'name:'");
}

TEST_CASE("model: files that are not a model at all", "[model][errors]") {
  CHECK(file_error("malformed") ==
        "6:1: error: malformed YAML: end of map flow not found (a '{' is not closed by '}')");
  CHECK(file_error("empty") ==
        "1:1: error: the file is empty; a model needs at least inputs and layers (see "
        "examples/models/tiny-cnn.yaml)");
  // yaml-cpp 0.7's LoadAll loops forever on a lone ',' (and its memory grows without bound).
  CHECK(file_error("only_comma") ==
        "1:1: error: malformed YAML: no value here; a description is a mapping of 'key: value' lines");
  {
    // 100,000 nested flow sequences: yaml-cpp's depth guard, named as such.
    std::string path = test::make_temp_dir("deep") + "/deep.yaml";
    test::write_text_file(path, "a: " + std::string(100000, '[') + "\n");
    CHECK(load_error(path) ==
          path + ":2:1: error: malformed YAML: nested more than 2000 levels deep (a description needs only a few)");
  }
  CHECK(load_error("no/such/model.yaml") ==
        "no/such/model.yaml: error: cannot open file: no such file or directory");
  CHECK(load_error(models_dir()) ==
        models_dir() + ": error: is a directory; give a model YAML file");
}
