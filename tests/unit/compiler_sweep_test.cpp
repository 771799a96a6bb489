// The conv2d sweep: stride x padding x dilation x groups x odd sizes, compiled for a small
// array with small buffers (so every K, N and M tiling path is taken), simulated, and compared
// with the reference element by element: int8 bit-exact, bf16 within the derived bounds. Also
// checks the report's MAC total equals the model's, and that the checks fail on a wrong element.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "compiler/frontend/yaml_model.h"
#include "compiler/model_run.h"
#include "compiler/pipeline.h"
#include "compiler/reference.h"
#include "compiler/reference_fp64.h"
#include "simulator/simulator.h"
#include "tpusim/version.h"

using namespace tpusim;

namespace {

const char* kArch = R"(name: sweep-4x4
mxu: {rows: 4, cols: 4, dataflow: ws, operand_type: OPERAND, clock_mhz: 100}
unified_buffer: {bytes: 6KiB, banks: 2}
weight_buffer: {bytes: 256}
accumulator: {bytes: 2KiB}
vpu: {lanes: 4}
dram: {bytes_per_cycle: 4, latency_cycles: 5}
)";

ArchConfig sweep_arch(DType type) {
  std::string text = kArch;
  text.replace(text.find("OPERAND"), 7, type == DType::Int8 ? "int8" : "bf16");
  return parse_arch_yaml(text, "sweep.yaml");
}

struct ConvCase {
  int64_t stride, dilation, groups;
  std::vector<int64_t> pads;  // [top, left, bottom, right]
  std::string padding_name;
};

// x [1, 6, 7, 9] -> conv 3x3 (groups) -> 6 channels (+ relu for even cases).
Graph conv_graph(const ConvCase& c, DType type, bool relu) {
  Graph g;
  g.name = "sweep";
  g.file = "sweep";
  const bool int8 = type == DType::Int8;
  auto value = [&](std::string name, ValueKind kind, DType t, std::vector<int64_t> shape, double scale, uint64_t seed) {
    Value v;
    v.name = std::move(name);
    v.kind = kind;
    v.dtype = t;
    v.shape = std::move(shape);
    v.scale = int8 && t == DType::Int8 ? scale : 0;
    v.seed = seed;
    return g.add_value(v);
  };
  const int64_t channels = 6, out_channels = 6;
  int x = value("x", ValueKind::Input, type, {1, channels, 7, 9}, 0.05, 0);
  int w = value("w", ValueKind::Weight, type, {out_channels, channels / c.groups, 3, 3}, 1.0 / 128, 11);
  int b = value("b", ValueKind::Weight, int8 ? DType::Int32 : DType::FP32, {out_channels}, 0, 12);
  int y = value("y", ValueKind::Activation, type, {}, 0.05 * (1.0 / 128) * 40 * std::sqrt(channels / c.groups * 9.0), 0);
  Op conv;
  conv.kind = OpKind::Conv;
  conv.name = "conv";
  conv.inputs = {x, w, b};
  conv.output = y;
  conv.attrs["strides"] = std::vector<int64_t>{c.stride, c.stride};
  conv.attrs["dilations"] = std::vector<int64_t>{c.dilation, c.dilation};
  conv.attrs["pads"] = c.pads;
  conv.attrs["groups"] = c.groups;
  g.add_op(conv);
  int out = y;
  if (relu) {
    int r = value("r", ValueKind::Activation, type, {}, g.values[static_cast<size_t>(y)].scale, 0);
    Op op;
    op.kind = OpKind::Relu;
    op.name = "relu";
    op.inputs = {y};
    op.output = r;
    g.add_op(op);
    out = r;
  }
  g.outputs = {out};
  return g;
}

// "same" (ONNX SAME_UPPER) pads for a 3x3 kernel with this stride and dilation.
std::vector<int64_t> same_pads(int64_t stride, int64_t dilation) {
  std::vector<int64_t> pads(4);
  const int64_t sizes[2] = {7, 9};
  for (int d = 0; d < 2; ++d) {
    int64_t out = (sizes[d] + stride - 1) / stride;
    int64_t total = std::max<int64_t>(0, (out - 1) * stride + (3 - 1) * dilation + 1 - sizes[d]);
    pads[static_cast<size_t>(d)] = total / 2;
    pads[static_cast<size_t>(d + 2)] = total - total / 2;
  }
  return pads;
}

}  // namespace

TEST_CASE(
    "conv2d sweep: int8 bit-exact and bf16 within the derived bounds against direct convolution",
    "[compiler][sweep]") {
  int cases = 0;
  for (DType type : {DType::Int8, DType::BF16}) {
    ArchConfig arch = sweep_arch(type);
    for (int64_t stride : {1, 2}) {
      for (int64_t dilation : {1, 2}) {
        for (int64_t groups : {1, 2, 6}) {
          std::vector<ConvCase> paddings = {
              {stride, dilation, groups, {0, 0, 0, 0}, "0"},
              {stride, dilation, groups, {1, 1, 1, 1}, "1"},
              {stride, dilation, groups, same_pads(stride, dilation), "same"},
              {stride, dilation, groups, {0, 2, 1, 0}, "asymmetric"},
          };
          for (const ConvCase& c : paddings) {
            for (const char* depthwise : {"auto", "vpu"}) {
              for (Im2colMode mode :
                   {Im2colMode::Buffer, Im2colMode::Dma, Im2colMode::Materialize}) {
                if (groups != 6 && std::string(depthwise) == "vpu") continue;
                const bool relu = (stride + dilation + groups) % 2 == 0;
                // K boxes of 4 rows cross taps and kernel rows (K = 54, 27 or 9): the buffer mode
                // reads them with vector patterns, the DMA modes load them piece by piece. The PE
                // array runs every other case.
                const Fidelity fidelity = cases % 2 == 0 ? Fidelity::Pe : Fidelity::Fast;
                INFO(fmt::format(
                    "{} stride {} dilation {} groups {} padding {} depthwise {} relu {} im2col {} "
                    "fidelity {}",
                    dtype_name(type), stride, dilation, groups, c.padding_name, depthwise, relu,
                    im2col_mode_name(mode), fidelity == Fidelity::Pe ? "pe" : "fast"));
                Graph graph = conv_graph(c, type, relu);
                CompileOptions options;
                options.lowering.depthwise = depthwise;
                options.lowering.im2col = mode;
                CompileResult compiled = compile_graph(graph, arch, options);
                MachineState state = make_machine_state(compiled.program, target_limits(arch));
                auto given = place_model_inputs(compiled, "", 7, state);
                SimulationOptions simulation;
                simulation.fidelity = fidelity;
                SimulationResult result =
                    simulate_program(compiled.program, arch, state, simulation);
                ModelCheck check = check_model_outputs(compiled, given, state);
                INFO(check.text);
                REQUIRE(check.ok);
                // One kernel (the conv, with its relu) compared element by element, and the output.
                REQUIRE(check.kernels_checked == 1);
                REQUIRE(check.kernels.size() == 1);
                CHECK(check.kernels[0].comparison.elements ==
                      compiled.graph.values[static_cast<size_t>(compiled.graph.outputs[0])]
                          .element_count());
                CHECK(check.kernels[0].comparison.mismatches == 0);
                REQUIRE(check.outputs.size() == 1);
                CHECK(check.outputs[0].ok);
                if (type == DType::Int8) {
                  CHECK(check.kernels_bit_exact == 1);
                  CHECK(check.outputs[0].reference.bit_exact);
                } else {
                  CHECK(check.outputs[0].relative_rms_error <= check.outputs[0].bound);
                }
                // Every multiply-accumulate of the model, on the MXU or (depthwise) the VPU.
                const bool on_vpu =
                    std::holds_alternative<DepthwiseKernel>(compiled.kernels.kernels[0]);
                CHECK(result.totals.useful_macs == (on_vpu ? 0 : graph_macs(compiled.graph)));
                ++cases;
              }
            }
          }
        }
      }
    }
  }
  CHECK(cases == 2 * 2 * 2 * (3 * 4 + 4) * 3);
}

// The checks fail when the simulator is wrong: one element of the simulated output changed
// after the run, as a wrong simulator would have written it.
TEST_CASE("the check fails on one wrong output element", "[compiler][sweep][check]") {
  const ConvCase c{1, 1, 1, {1, 1, 1, 1}, "1"};
  for (DType type : {DType::Int8, DType::BF16}) {
    INFO(dtype_name(type));
    ArchConfig arch = sweep_arch(type);
    Graph graph = conv_graph(c, type, true);
    CompileResult compiled = compile_graph(graph, arch, CompileOptions{});
    MachineState state = make_machine_state(compiled.program, target_limits(arch));
    auto given = place_model_inputs(compiled, "", 7, state);
    simulate_program(compiled.program, arch, state);
    const ModelCheck good = check_model_outputs(compiled, given, state);
    REQUIRE(good.ok);
    const int out = compiled.graph.outputs[0];
    std::vector<uint8_t>& bytes = state.dram.at(static_cast<size_t>(compiled.tensor_of_value[static_cast<size_t>(out)]));
    const std::vector<uint8_t> simulated = bytes;
    auto check_fails_at = [&](int64_t element) {
      ModelCheck bad = check_model_outputs(compiled, given, state);
      INFO(bad.text);
      CHECK(!bad.ok);
      CHECK(bad.kernels_failed == 1);
      REQUIRE(bad.kernels.size() == 1);
      CHECK(bad.kernels[0].comparison.mismatches == 1);
      CHECK(bad.kernels[0].comparison.worst_where ==
            fmt::format("r[0, {}, {}, {}]", element / 63, element % 63 / 9, element % 9));
      CHECK(bad.text.find("check: op conv: r: 1 of 378") != std::string::npos);
    };
    if (type == DType::Int8) {
      // Off by one in one element.
      const int64_t element = 100;
      bytes[element] = static_cast<uint8_t>(static_cast<int8_t>(bytes[element]) == 127 ? 126 : bytes[element] + 1);
      check_fails_at(element);
      CHECK(!check_model_outputs(compiled, given, state).outputs[0].reference.bit_exact);
      continue;
    }
    // bf16: the element's tolerance from the same bounds the check uses (the conv reads the
    // graph's input, so the simulated inputs are `given`).
    Fp64Options options;
    options.bounds = true;
    const Fp64Tensor exact = run_reference_fp64(compiled.graph, given, options)[static_cast<size_t>(out)];
    const std::vector<double> tolerance = float_tolerance(exact, DType::BF16);
    // The largest element in the lower half of its binade, where one and two ulps are within
    // the old flat rule's 2^-6 |want|.
    int64_t element = -1;
    double largest = 0;
    for (int64_t i = 0; i < 378; ++i) {
      const double x = load_element(DType::BF16, &simulated[static_cast<size_t>(2 * i)]);
      int exponent = 0;
      const double fraction = std::frexp(std::abs(x), &exponent);
      if (fraction < 0.75 && std::abs(x) > largest) {
        largest = std::abs(x);
        element = i;
      }
    }
    REQUIRE(element >= 0);
    const size_t at = static_cast<size_t>(2 * element);
    const double value = load_element(DType::BF16, &simulated[at]);
    uint16_t bits = static_cast<uint16_t>(simulated[at] | simulated[at + 1] << 8);
    auto set_bits = [&](uint16_t b) {
      bytes[at] = static_cast<uint8_t>(b & 0xff);
      bytes[at + 1] = static_cast<uint8_t>(b >> 8);
      return std::abs(load_element(DType::BF16, &bytes[at]) - value);
    };
    // Its summation bound is far below half an ulp and its exact value is not that close to a
    // rounding boundary, so every evaluation stores the same bf16 value: tolerance 0.
    CHECK(tolerance[static_cast<size_t>(element)] == 0);
    // One ulp (the lowest mantissa bit) off fails, and so do two; the old rule accepted both.
    const double one_ulp = set_bits(bits ^ 1u);
    CHECK(one_ulp <= std::abs(value) / 64);
    check_fails_at(element);
    const double two_ulps = set_bits(bits ^ 2u);
    CHECK(two_ulps <= std::abs(value) / 64);
    check_fails_at(element);
    // Every element 6% off: far beyond the end-to-end bound of one rounding (2^-8) as well.
    for (int64_t i = 0; i < 378; ++i) {
      const size_t a = static_cast<size_t>(2 * i);
      store_element(DType::BF16, &bytes[a], load_element(DType::BF16, &simulated[a]) * 1.0625);
    }
    ModelCheck scaled = check_model_outputs(compiled, given, state);
    INFO(scaled.text);
    REQUIRE(scaled.outputs.size() == 1);
    CHECK(!scaled.outputs[0].ok);
    CHECK(scaled.outputs[0].bf16_roundings == 1);
    CHECK(scaled.outputs[0].relative_rms_error > scaled.outputs[0].bound);
    CHECK(scaled.text.find("check failed end to end: r: relative RMS error") != std::string::npos);
  }
}

TEST_CASE("materialized im2col moves about KH*KW/stride^2 times the activation bytes", "[compiler][im2col]") {
  ArchConfig arch = sweep_arch(DType::Int8);
  ConvCase c{1, 1, 1, {1, 1, 1, 1}, "1"};
  auto dram_bytes = [&](Im2colMode mode) {
    CompileOptions options;
    options.lowering.im2col = mode;
    CompileResult compiled = compile_graph(conv_graph(c, DType::Int8, false), arch, options);
    MachineState state = make_machine_state(compiled.program, target_limits(arch));
    auto given = place_model_inputs(compiled, "", 7, state);
    SimulationResult result = simulate_program(compiled.program, arch, state);
    REQUIRE(check_model_outputs(compiled, given, state).ok);
    return result.totals.traffic.dram_read + result.totals.traffic.dram_written;
  };
  const int64_t implicit = dram_bytes(Im2colMode::Buffer);
  const int64_t materialized = dram_bytes(Im2colMode::Materialize);
  // The im2col matrix: M x K = 63 pixels x 54 taps of int8 = 9x the 378-byte input
  // (KH*KW/stride^2), written once and read once when materialized.
  const int64_t input = 6 * 7 * 9, im2col_bytes = 63 * 54;
  CHECK(materialized - implicit >= 2 * im2col_bytes - input);
  // In the buffer, the input is read once per n-tile (6 output channels on 4 columns: two),
  // next to the weights (6*6*9), the bias (6 int32) and the output (378 bytes): the
  // activation traffic stays near the input's size instead of growing with the kernel.
  CHECK(implicit <= 2 * input + 6 * 6 * 9 + 6 * 4 + 6 * 7 * 9);
}

namespace {

// Compiles the model for `arch`, simulates it at `fidelity`, returns the check (requires ok).
// (`text` is a model description, or with `graph_text` the graph IR's text form.)
ModelCheck compile_and_check(const std::string& text, const ArchConfig& arch, Fidelity fidelity, bool graph_text = false) {
  Graph graph = graph_text ? parse_graph(text, "model.graph") : parse_model_yaml(text, "model.yaml");
  CompileResult compiled = compile_graph(graph, arch, CompileOptions{});
  MachineState state = make_machine_state(compiled.program, target_limits(arch));
  auto given = place_model_inputs(compiled, "", 3, state);
  SimulationOptions options;
  options.fidelity = fidelity;
  simulate_program(compiled.program, arch, state, options);
  ModelCheck check = check_model_outputs(compiled, given, state);
  INFO(check.text);
  REQUIRE(check.ok);
  REQUIRE(check.kernels_checked >= 1);
  CHECK(check.kernels_failed == 0);
  REQUIRE(check.outputs.size() == graph.outputs.size());
  return check;
}

// Every kernel and every output bit-exact.
void require_bit_exact(const ModelCheck& check) {
  INFO(check.text);
  CHECK(check.kernels_bit_exact == check.kernels_checked);
  for (const KernelCheck& k : check.kernels) CHECK(k.comparison.bit_exact);
  for (const OutputCheck& o : check.outputs) CHECK(o.reference.bit_exact);
}

}  // namespace

TEST_CASE("float outputs stored as fp32, and float outputs beside integer ones, pass the end-to-end check",
          "[compiler][check]") {
  // A bf16 convolution whose result is its fp32 accumulators: no bf16 rounding on the way, so
  // the end-to-end bound is the fp32 summation's, 19 roundings (K = 3 * 3 * 2 and the bias).
  const std::string accumulators = R"(graph accumulators
input h : bf16[1,3,10,7]
weight hw : bf16[5,3,3,2]
weight hb : fp32[5]
value hc : fp32[1,5,8,6] = conv(h, hw, hb)
output hc
)";
  ModelCheck check = compile_and_check(accumulators, sweep_arch(DType::BF16), Fidelity::Fast, true);
  REQUIRE(check.outputs.size() == 1);
  CHECK(check.outputs[0].bf16_roundings == 0);
  CHECK(check.outputs[0].fp32_roundings == 19);
  CHECK(check.outputs[0].bound == 19 * 0x1p-24);
  CHECK(check.outputs[0].relative_rms_error > 0);
  CHECK(check.outputs[0].ok);

  // A float output and an int8 one in one graph: the fp64 evaluation leaves the int8 op out.
  const std::string mixed = R"(graph mixed
input h : bf16[1,3,10,7]
weight hw : bf16[5,3,3,2]
value hc = conv(h, hw)
input a : int8[2,6] scale=0.1
value r = relu(a)
output hc, r
)";
  check = compile_and_check(mixed, sweep_arch(DType::BF16), Fidelity::Fast, true);
  CHECK(check.outputs[0].bf16_roundings == 1);
  CHECK(check.outputs[0].ok);
  CHECK(check.outputs[1].reference.bit_exact);
}

TEST_CASE("transformer building blocks: layernorm, linear, gelu, residual add, matmul, softmax, mul", "[compiler][transformer]") {
  const std::string block = R"(name: block
type: bf16
inputs:
  x: {shape: [2, 8, 16]}
  kt: {shape: [2, 16, 5]}
layers:
  - layernorm: {name: ln, input: x}
  - linear: {name: up, out_features: 24}
  - gelu: {name: act}
  - linear: {name: down, out_features: 16}
  - add: {name: res, inputs: [down, x]}
  - matmul: {name: scores, inputs: [res, kt]}
  - softmax: {name: probs}
  - mul: {name: sq, inputs: [probs, probs]}
outputs: [sq]
)";
  for (Fidelity fidelity : {Fidelity::Fast, Fidelity::Pe}) {
    ModelCheck check = compile_and_check(block, sweep_arch(DType::BF16), fidelity);
    CHECK(check.kernels_checked == 8);
    std::vector<std::string> kernels;
    for (const KernelCheck& k : check.kernels) {
      kernels.push_back(k.kernel);
      CHECK(k.comparison.elements > 0);
      CHECK(k.comparison.mismatches == 0);
    }
    CHECK(kernels == std::vector<std::string>{"ln", "up", "act", "down", "res", "scores", "probs", "sq"});
    CHECK(check.outputs[0].ok);
  }
}

TEST_CASE("int8 batched matmul and mul are bit-exact", "[compiler][transformer]") {
  const std::string model = R"(name: int8_ops
type: int8
inputs:
  a: {shape: [3, 5, 7], scale: 0.05}
  b: {shape: [3, 7, 6], scale: 0.04}
layers:
  - matmul: {name: prod, inputs: [a, b]}
  - mul: {name: sq, inputs: [prod, prod]}
outputs: [sq]
)";
  ModelCheck check = compile_and_check(model, sweep_arch(DType::Int8), Fidelity::Fast);
  CHECK(check.kernels_checked == 2);
  require_bit_exact(check);
}

TEST_CASE("ops the compiler cannot lower are located errors", "[compiler]") {
  const std::string model = R"(name: int8_softmax
type: int8
inputs:
  a: {shape: [4, 8], scale: 0.05}
layers:
  - linear: {name: fc, out_features: 8}
  - gelu: {name: act}
outputs: [act]
)";
  Graph graph = parse_model_yaml(model, "model.yaml");
  try {
    compile_graph(graph, sweep_arch(DType::Int8), CompileOptions{});
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("op 'act' (gelu) on int8 values is not lowered by the compiler; run the model as bf16 "
                                     "(--type bf16)") != std::string::npos);
    CHECK(e.location().line > 0);
  }
}

TEST_CASE("allocation keeps a convolution's output on chip for the next convolution", "[compiler][allocate]") {
  const std::string chain = R"(name: chain
type: int8
inputs:
  x: {shape: [1, 4, 6, 7], scale: 0.05}
layers:
  - conv: {name: a, out_channels: 6, kernel: 3, padding: 1, relu: true}
  - conv: {name: b, out_channels: 5, kernel: 3, stride: 2, padding: [1, 0, 1, 1], relu: true}
  - conv: {name: c, out_channels: 4, kernel: 1}
outputs: [c]
)";
  ArchConfig arch = sweep_arch(DType::Int8);
  Graph graph = parse_model_yaml(chain, "chain.yaml");
  CompileResult compiled = compile_graph(graph, arch, CompileOptions{});
  const auto& a = std::get<GemmKernel>(compiled.kernels.kernels[0]);
  const auto& b = std::get<GemmKernel>(compiled.kernels.kernels[1]);
  const auto& c = std::get<GemmKernel>(compiled.kernels.kernels[2]);
  REQUIRE(a.buffers.output);
  REQUIRE(b.buffers.input);
  REQUIRE(b.buffers.output);
  REQUIRE(c.buffers.input);
  CHECK(!c.buffers.output);
  // a's output holds b's padding: 6 + 1 + 1 rows, 7 + 0 + 1 columns, 6 channels.
  CHECK(a.buffers.output->bytes == 8 * 8 * 6);
  // Live at the same time in b, the two regions do not overlap; both sit above b's own slots.
  const ResidentTensor& in = *b.buffers.input;
  const ResidentTensor& out = *b.buffers.output;
  CHECK((out.base + out.bytes <= in.base || in.base + in.bytes <= out.base));
  CHECK(b.buffers.budget <= std::min(in.base, out.base));
  CHECK(c.buffers.note.find("input read from the unified buffer") == 0);
  // The intermediate tensors never reach DRAM.
  CHECK(compiled.tensor_of_value[static_cast<size_t>(a.output)] == -1);
  CHECK(compiled.tensor_of_value[static_cast<size_t>(b.output)] == -1);
  for (Fidelity fidelity : {Fidelity::Fast, Fidelity::Pe}) {
    ModelCheck check = compile_and_check(chain, arch, fidelity);
    // The three convolutions are checked as one comparison: a's and b's outputs never leave
    // the chip.
    CHECK(check.kernels_checked == 1);
    REQUIRE(check.kernels.size() == 1);
    CHECK(check.kernels[0].ops == std::vector<std::string>{"a", "a.relu", "b", "b.relu", "c"});
    require_bit_exact(check);
  }
}

TEST_CASE("allocation keeps a linear layer's output on chip for the next linear layer", "[compiler][allocate]") {
  // Rows of rank 3 ([2, 3, 10]: 6 rows of A); 10 -> 9 -> 7 -> 5 features: every layer has more
  // than one n-tile on 4 columns and more than one K box on 4 rows.
  const std::string chain = R"(name: mlp
type: int8
inputs:
  x: {shape: [2, 3, 10], scale: 0.05}
layers:
  - linear: {name: a, out_features: 9, relu: true}
  - linear: {name: b, out_features: 7, relu: true}
  - linear: {name: c, out_features: 5}
outputs: [c]
)";
  ArchConfig arch = sweep_arch(DType::Int8);
  CompileResult compiled = compile_graph(parse_model_yaml(chain, "mlp.yaml"), arch, CompileOptions{});
  const auto& a = std::get<GemmKernel>(compiled.kernels.kernels[0]);
  const auto& b = std::get<GemmKernel>(compiled.kernels.kernels[1]);
  const auto& c = std::get<GemmKernel>(compiled.kernels.kernels[2]);
  REQUIRE(a.buffers.output);
  REQUIRE(b.buffers.input);
  REQUIRE(b.buffers.output);
  REQUIRE(c.buffers.input);
  CHECK(!c.buffers.output);
  // a's output is b's A as it is: 6 rows of 9 features.
  CHECK(a.buffers.output->bytes == 6 * 9);
  const ResidentTensor& in = *b.buffers.input;
  const ResidentTensor& out = *b.buffers.output;
  CHECK((out.base + out.bytes <= in.base || in.base + in.bytes <= out.base));
  CHECK(b.buffers.budget <= std::min(in.base, out.base));
  // The first layer reads its input from DRAM once for its 3 n-tiles: A stays in the buffer.
  CHECK(a.tiling.a_resident);
  CHECK(a.tiling.a_slots == a.tiling.m_tiles * a.tiling.k_tiles());
  CHECK(a.tiling.why.find("A resident") != std::string::npos);
  CHECK(compiled.tensor_of_value[static_cast<size_t>(a.output)] == -1);
  CHECK(compiled.tensor_of_value[static_cast<size_t>(b.output)] == -1);
  for (Fidelity fidelity : {Fidelity::Fast, Fidelity::Pe}) {
    ModelCheck check = compile_and_check(chain, arch, fidelity);
    CHECK(check.kernels_checked == 1);
    REQUIRE(check.kernels.size() == 1);
    CHECK(check.kernels[0].ops == std::vector<std::string>{"a", "a.relu", "b", "b.relu", "c"});
    require_bit_exact(check);
  }
  // DRAM: the input once, every weight and bias once, the output once.
  MachineState state = make_machine_state(compiled.program, target_limits(arch));
  place_model_inputs(compiled, "", 3, state);
  const SimulationResult result = simulate_program(compiled.program, arch, state);
  const int64_t weights = 9 * 10 + 9 * 4 + 7 * 9 + 7 * 4 + 5 * 7 + 5 * 4;
  CHECK(result.totals.traffic.dram_read == 6 * 10 + weights);
  CHECK(result.totals.traffic.dram_written == 6 * 5);
}

TEST_CASE("allocation says why a tensor goes to DRAM when it does not fit", "[compiler][allocate]") {
  const std::string wide = R"(name: wide
type: int8
inputs:
  x: {shape: [1, 8, 16, 16], scale: 0.05}
layers:
  - conv: {name: a, out_channels: 16, kernel: 3, padding: 1}
  - conv: {name: b, out_channels: 4, kernel: 1}
outputs: [b]
)";
  ArchConfig arch = sweep_arch(DType::Int8);
  CompileResult compiled = compile_graph(parse_model_yaml(wide, "wide.yaml"), arch, CompileOptions{});
  const auto& a = std::get<GemmKernel>(compiled.kernels.kernels[0]);
  CHECK(!a.buffers.output);
  CHECK(a.buffers.note == "output to DRAM: on chip it would need 4096 bytes, more than half the 6144-byte unified buffer");
  compile_and_check(wide, arch, Fidelity::Fast);
}

TEST_CASE("tiling picks M tiles outer when reloading weights costs less than re-reading windows", "[compiler][tiling]") {
  const std::string model = R"(name: wide_out
type: int8
inputs:
  x: {shape: [1, 4, 12, 12], scale: 0.05}
layers:
  - conv: {name: c, out_channels: 12, kernel: 3, padding: 1, relu: true}
outputs: [c]
)";
  ArchConfig arch = sweep_arch(DType::Int8);
  CompileResult compiled = compile_graph(parse_model_yaml(model, "wide.yaml"), arch, CompileOptions{});
  const auto& k = std::get<GemmKernel>(compiled.kernels.kernels[0]);
  INFO(k.tiling.why);
  CHECK(k.tiling.n_tiles == 3);
  CHECK(k.tiling.m_tiles > 1);
  CHECK(k.tiling.m_outer);
  CHECK(!k.tiling.weights_resident);  // 9 k-tiles x 3 n-tiles of weights do not fit 256 bytes
  for (Fidelity fidelity : {Fidelity::Fast, Fidelity::Pe}) {
    ModelCheck check = compile_and_check(model, arch, fidelity);
    CHECK(check.kernels_checked == 1);
    require_bit_exact(check);
  }
}

TEST_CASE("the transformer examples load, infer their shapes and count their MACs", "[compiler][transformer]") {
  struct Example {
    const char* file;
    int64_t seq, width, ffn, kv_width;
  };
  const Example examples[] = {
      {"gpt2-block.yaml", 1024, 768, 3072, 768},
      {"bert-layer.yaml", 512, 768, 3072, 768},
      {"vit-block.yaml", 197, 768, 3072, 768},
      {"sliding-window-block.yaml", 4096, 1024, 0, 256},
      {"attention-teach.yaml", 8, 4, 0, 4},
  };
  for (const Example& e : examples) {
    INFO(e.file);
    Graph graph = load_model(std::string(TPUSIM_SOURCE_DIR) + "/examples/models/" + e.file);
    prepare_graph(graph, CompileOptions{});
    // q and the output projection are width x width, k and v width x kv_width, the MLP
    // width x ffn twice, attention two S x S x width GEMMs (the sliding window and teaching
    // models have no output projection or MLP beyond what is listed in them).
    const int64_t s = e.seq, w = e.width;
    int64_t expected = s * w * w + 2 * s * w * e.kv_width + 2 * s * s * w;
    if (std::string(e.file) != "attention-teach.yaml") expected += s * w * w;  // proj
    expected += 2 * s * w * e.ffn;
    CHECK(graph_macs(graph) == expected);
  }
  // The teaching model's reference runs.
  Graph teach = load_model(std::string(TPUSIM_SOURCE_DIR) + "/examples/models/attention-teach.yaml");
  prepare_graph(teach, CompileOptions{});
  auto values = run_reference(teach, graph_inputs_and_weights(teach, 1));
  const HostTensor& out = values[static_cast<size_t>(teach.outputs[0])];
  CHECK(out.shape == std::vector<int64_t>{1, 8, 4});
  for (int64_t i = 0; i < out.element_count(); ++i) CHECK(std::isfinite(load_element(out.dtype, &out.bytes[static_cast<size_t>(i * 2)])));
}
