// The reference implementation against tiny cases computed by hand: every op in int8 and
// bf16 (or fp32 where only floats are defined), the requantization rounding, and
// compare_tensors' exact and tolerance rules. Graphs are built directly with add_value/add_op.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>

#include "compiler/quantization.h"
#include "compiler/reference.h"
#include "ir/diagnostics.h"
#include "simulator/npy.h"
#include "simulator/random_data.h"
#include "test_util.h"

using namespace tpusim;

namespace {

using Attrs = std::map<std::string, AttrValue>;
using Ints = std::vector<int64_t>;

HostTensor tensor_of(DType type, const Ints& shape, const std::vector<double>& values) {
  HostTensor t;
  t.dtype = type;
  t.shape = shape;
  t.bytes.assign(static_cast<size_t>(t.element_count() * dtype_size(type)), 0);
  REQUIRE(static_cast<int64_t>(values.size()) == t.element_count());
  for (size_t i = 0; i < values.size(); ++i) {
    store_element(type, t.bytes.data() + i * static_cast<size_t>(dtype_size(type)), values[i]);
  }
  return t;
}

std::vector<double> values_of(const HostTensor& t) {
  std::vector<double> out;
  for (int64_t i = 0; i < t.element_count(); ++i)
    out.push_back(load_element(t.dtype, t.bytes.data() + i * dtype_size(t.dtype)));
  return out;
}

std::vector<double> iota(int64_t count, double first = 1) {
  std::vector<double> v(static_cast<size_t>(count));
  std::iota(v.begin(), v.end(), first);
  return v;
}

// A graph under construction with the data for its inputs and weights.
struct Builder {
  Graph graph;
  std::vector<std::optional<HostTensor>> data;

  int add(ValueKind kind, const std::string& name, DType type, const Ints& shape, double scale) {
    Value v;
    v.name = name;
    v.kind = kind;
    v.dtype = type;
    v.shape = shape;
    v.scale = scale;
    int index = graph.add_value(v);
    data.resize(graph.values.size());
    return index;
  }
  int input(const std::string& name, DType type, const Ints& shape,
            const std::vector<double>& values, double scale = 0) {
    int index = add(ValueKind::Input, name, type, shape, scale);
    data[static_cast<size_t>(index)] = tensor_of(type, shape, values);
    return index;
  }
  int weight(const std::string& name, DType type, const Ints& shape,
             const std::vector<double>& values, double scale = 0) {
    int index = add(ValueKind::Weight, name, type, shape, scale);
    data[static_cast<size_t>(index)] = tensor_of(type, shape, values);
    return index;
  }
  // An op and its output value.
  int op(OpKind kind, std::vector<int> inputs, const std::string& output, DType type,
         const Ints& shape, double scale = 0, Attrs attrs = {}) {
    int out = add(ValueKind::Activation, output, type, shape, scale);
    Op op;
    op.kind = kind;
    op.name = output + "_op";
    op.inputs = std::move(inputs);
    op.output = out;
    op.attrs = std::move(attrs);
    graph.add_op(op);
    graph.outputs = {out};
    return out;
  }
  std::vector<HostTensor> run_all() const { return run_reference(graph, data); }
  std::vector<double> run(int value) const {
    return values_of(run_all()[static_cast<size_t>(value)]);
  }
};

// The message of the tpusim::Error that running `b` raises ("" if none).
std::string run_error(const Builder& b) {
  try {
    b.run_all();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A single conv x[1,C,...] * w -> y, in int8 (scales 1, int32 output unless given) or bf16.
struct ConvCase {
  Ints x_shape, w_shape, y_shape;
  std::vector<double> x, w, bias;
  Attrs attrs;
};

std::vector<double> run_conv(const ConvCase& c, DType type, DType out_type, double x_scale = 1,
                             double w_scale = 1, double y_scale = 0) {
  Builder b;
  int x = b.input("x", type, c.x_shape, c.x, x_scale);
  int w = b.weight("w", type, c.w_shape, c.w, w_scale);
  std::vector<int> inputs = {x, w};
  if (!c.bias.empty()) {
    inputs.push_back(
        b.weight("b", type == DType::Int8 ? DType::Int32 : type, {c.w_shape[0]}, c.bias));
  }
  int y = b.op(OpKind::Conv, inputs, "y", out_type, c.y_shape, y_scale, c.attrs);
  return b.run(y);
}

// Runs `c` in int8 (int32 output, scales 1) and in bf16 and checks both give `expected`.
void check_conv_both_types(const ConvCase& c, const std::vector<double>& expected) {
  CHECK(run_conv(c, DType::Int8, DType::Int32) == expected);
  CHECK(run_conv(c, DType::BF16, DType::BF16) == expected);
}

const std::vector<double> k4x4 = iota(16);  // 1..16 in a 4x4 plane

}  // namespace

// ---------------------------------------------------------------------------------------------
// Convolution

TEST_CASE("reference conv: 3x3, pad 1, one channel, by hand", "[reference]") {
  ConvCase c{{1, 1, 4, 4},
             {1, 1, 3, 3},
             {1, 1, 4, 4},
             k4x4,
             std::vector<double>(9, 1.0),
             {},
             {{"pads", Ints{1, 1, 1, 1}}}};
  // Each output is the sum of the 3x3 neighbourhood of 1..16, zeros outside.
  const std::vector<double> sums = {14, 24, 30, 22, 33, 54, 63, 45, 57, 90, 99, 69, 46, 72, 78, 54};
  check_conv_both_types(c, sums);

  // int8 out at half the scale: acc * 0.5, rounding half up (33 -> 16.5 -> 17).
  CHECK(run_conv(c, DType::Int8, DType::Int8, 0.5, 0.5, 0.5) ==
        std::vector<double>{7, 12, 15, 11, 17, 27, 32, 23, 29, 45, 50, 35, 23, 36, 39, 27});

  // Cross-correlation, not flipped: a kernel with only its right tap set reads x[i][j+1].
  c.w = {0, 0, 0, 0, 0, 1, 0, 0, 0};
  check_conv_both_types(c, {2, 3, 4, 0, 6, 7, 8, 0, 10, 11, 12, 0, 14, 15, 16, 0});
  // Only the top-left tap: x[i-1][j-1].
  c.w = {1, 0, 0, 0, 0, 0, 0, 0, 0};
  check_conv_both_types(c, {0, 0, 0, 0, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11});
}

TEST_CASE("reference conv: stride 2", "[reference]") {
  ConvCase c{{1, 1, 4, 4},
             {1, 1, 3, 3},
             {1, 1, 2, 2},
             k4x4,
             std::vector<double>(9, 1.0),
             {},
             {{"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}}};
  check_conv_both_types(c, {14, 30, 57, 99});  // the stride-1 sums at (0,0), (0,2), (2,0), (2,2)
}

TEST_CASE("reference conv: dilation 2", "[reference]") {
  // 2x2 kernel [[1,2],[3,4]] dilated to span 3: y[i][j] = x[i][j] + 2x[i][j+2] + 3x[i+2][j] +
  // 4x[i+2][j+2].
  ConvCase c{{1, 1, 4, 4},
             {1, 1, 2, 2},
             {1, 1, 2, 2},
             k4x4,
             {1, 2, 3, 4},
             {},
             {{"dilations", Ints{2, 2}}}};
  check_conv_both_types(c, {78, 88, 118, 128});
}

TEST_CASE("reference conv: groups = 2 and depthwise", "[reference]") {
  // 1x1 conv, 4 channels in 2 groups of 2, 4 outputs (2 per group).
  ConvCase grouped{{1, 4, 1, 1},
                   {4, 2, 1, 1},
                   {1, 4, 1, 1},
                   {1, 2, 3, 4},
                   {1, 2, 3, 4, 5, 6, 7, -1},
                   {},
                   {{"groups", int64_t{2}}}};
  // group 0 reads channels 0,1 = (1,2); group 1 reads channels 2,3 = (3,4).
  check_conv_both_types(grouped, {1 + 4, 3 + 8, 15 + 24, 21 - 4});

  // Depthwise 3x3, no padding, with a bias: channel 0 = 1..9, channel 1 = all 2.
  std::vector<double> x = iota(9);
  x.insert(x.end(), 9, 2.0);
  ConvCase depthwise{{1, 2, 3, 3},
                     {2, 1, 3, 3},
                     {1, 2, 1, 1},
                     x,
                     std::vector<double>(18, 1.0),
                     {1, -1},
                     {{"groups", int64_t{2}}}};
  check_conv_both_types(depthwise, {45 + 1, 18 - 1});
  CHECK(run_conv(depthwise, DType::Int8, DType::Int8, 1, 1, 1) == std::vector<double>{46, 17});
}

TEST_CASE("reference conv: asymmetric pads", "[reference]") {
  // pads [top=1, left=0, bottom=0, right=1]; 2x2 ones on 1..9: y[i][j] = sum x[i-1+a][j+b].
  ConvCase c{{1, 1, 3, 3},
             {1, 1, 2, 2},
             {1, 1, 3, 3},
             iota(9),
             {1, 1, 1, 1},
             {},
             {{"pads", Ints{1, 0, 0, 1}}}};
  check_conv_both_types(c, {3, 5, 3, 12, 16, 9, 24, 28, 15});
}

TEST_CASE("reference conv1d: causal TCN layer with dilation 2, pads [2, 0]", "[reference]") {
  // y[t] = 1 * x[t-2] + 10 * x[t]: each output sees only the present and the past.
  ConvCase c{{1, 1, 6},
             {1, 1, 2},
             {1, 1, 6},
             iota(6),
             {1, 10},
             {},
             {{"dilations", Ints{2}}, {"pads", Ints{2, 0}}}};
  check_conv_both_types(c, {10, 20, 31, 42, 53, 64});
  // Two channels in, one out, bias 5, stride 2: y[t] = x0[2t-2] + 10 x0[2t] - x1[2t] + 5.
  ConvCase two{{1, 2, 6},
               {1, 2, 2},
               {1, 1, 3},
               {1, 2, 3, 4, 5, 6, 1, 1, 1, 1, 1, 1},
               {1, 10, 0, -1},
               {5},
               {{"dilations", Ints{2}}, {"pads", Ints{2, 0}}, {"strides", Ints{2}}}};
  check_conv_both_types(two, {10 - 1 + 5, 1 + 30 - 1 + 5, 3 + 50 - 1 + 5});
}

TEST_CASE("reference conv: bf16 accumulates in fp32 and rounds once", "[reference]") {
  // 1 + 2^-8 + 2^-8: each term alone would round away in bf16; the fp32 sum keeps them and
  // the final rounding gives 1 + 2^-7.
  ConvCase c{
      {1, 3, 1, 1}, {1, 3, 1, 1}, {1, 1, 1, 1}, {1, 1.0 / 256, 1.0 / 256}, {1, 1, 1}, {}, {}};
  CHECK(run_conv(c, DType::BF16, DType::BF16) == std::vector<double>{1 + 1.0 / 128});
  CHECK(run_conv(c, DType::BF16, DType::FP32) == std::vector<double>{1 + 1.0 / 128});
}

// ---------------------------------------------------------------------------------------------
// Requantization, linear, matmul

TEST_CASE("reference requantization: rounding half up, saturation, int32 wrap", "[reference]") {
  // linear with identity weights; s_x = s_w = 1, s_y = 2: y = round_half_up(x / 2).
  Builder b;
  int x = b.input("x", DType::Int8, {1, 6}, {3, -3, 5, -5, 1, -1}, 1);
  int w = b.weight("w", DType::Int8, {6, 6}, {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                                              0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1},
                   1);
  int y = b.op(OpKind::Linear, {x, w}, "y", DType::Int8, {1, 6}, 2);
  CHECK(b.run(y) == std::vector<double>{2, -1, 3, -2, 1, 0});  // 1.5, -1.5, 2.5, -2.5, 0.5, -0.5

  // s_y = 0.5: y = 2x, saturating at the int8 range.
  Builder s;
  x = s.input("x", DType::Int8, {1, 2}, {100, -100}, 1);
  w = s.weight("w", DType::Int8, {2, 2}, {1, 0, 0, 1}, 1);
  y = s.op(OpKind::Linear, {x, w}, "y", DType::Int8, {1, 2}, 0.5);
  CHECK(s.run(y) == std::vector<double>{127, -128});

  // The int32 accumulator wraps: bias 2^31 - 1 plus 1 * 1.
  Builder wrap;
  x = wrap.input("x", DType::Int8, {1, 1}, {1}, 1);
  w = wrap.weight("w", DType::Int8, {1, 1}, {1}, 1);
  int bias = wrap.weight("b", DType::Int32, {1}, {2147483647.0});
  y = wrap.op(OpKind::Linear, {x, w, bias}, "y", DType::Int32, {1, 1});
  CHECK(wrap.run(y) == std::vector<double>{-2147483648.0});

  CHECK(requantize(3, quantize_multiplier(0.5)) == 2);
  CHECK(requantize(-3, quantize_multiplier(0.5)) == -1);
}

TEST_CASE("reference linear: int8 with bias and bf16", "[reference]") {
  // s_x = 0.5, s_w = 0.25 -> the bias and accumulator scale is 0.125 = s_y.
  Builder b;
  int x = b.input("x", DType::Int8, {1, 3}, {1, 2, 3}, 0.5);
  int w = b.weight("w", DType::Int8, {2, 3}, {1, 1, 1, 1, -1, 0}, 0.25);
  int bias = b.weight("b", DType::Int32, {2}, {8, -8});
  int y = b.op(OpKind::Linear, {x, w, bias}, "y", DType::Int8, {1, 2}, 0.125);
  CHECK(b.run(y) == std::vector<double>{6 + 8, -1 - 8});

  Builder f;
  x = f.input("x", DType::BF16, {2, 3}, {1, 2, 3, 4, 5, 6});
  w = f.weight("w", DType::BF16, {2, 3}, {1, 0, -1, 0.5, 0.5, 0.5});
  bias = f.weight("b", DType::BF16, {2}, {0.25, -1});
  y = f.op(OpKind::Linear, {x, w, bias}, "y", DType::BF16, {2, 2});
  CHECK(f.run(y) == std::vector<double>{-1.75, 2, -1.75, 6.5});

  // Leading dims of x are rows: x [2, 1, 3] gives y [2, 1, 2].
  Builder r;
  x = r.input("x", DType::FP32, {2, 1, 3}, {1, 2, 3, 4, 5, 6});
  w = r.weight("w", DType::FP32, {2, 3}, {1, 0, -1, 0.5, 0.5, 0.5});
  y = r.op(OpKind::Linear, {x, w}, "y", DType::FP32, {2, 1, 2});
  CHECK(r.run(y) == std::vector<double>{-2, 3, -2, 7.5});
}

TEST_CASE("reference matmul: batched, broadcast, int8 and bf16", "[reference]") {
  const std::vector<double> a = {1, 2, 3, 4, 5, 6, -1, 0, 1, 2, 2, 2};  // [2, 2, 3]
  const std::vector<double> b = {1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 1, -1};  // [2, 3, 2]
  for (DType type : {DType::Int8, DType::BF16}) {
    const double scale = type == DType::Int8 ? 1 : 0;
    Builder g;
    int av = g.input("a", type, {2, 2, 3}, a, scale);
    int bv = g.input("b", type, {2, 3, 2}, b, scale);
    int y = g.op(OpKind::MatMul, {av, bv}, "y", type, {2, 2, 2}, scale);
    CHECK(g.run(y) == std::vector<double>{4, 5, 10, 11, -1, -1, 6, 2});

    // b [3, 2] shared by both batches.
    Builder shared;
    av = shared.input("a", type, {2, 2, 3}, a, scale);
    bv = shared.weight("b", type, {3, 2}, {1, 0, 0, 1, 1, 1}, scale);
    y = shared.op(OpKind::MatMul, {av, bv}, "y", type, {2, 2, 2}, scale);
    CHECK(shared.run(y) == std::vector<double>{4, 5, 10, 11, 0, 1, 4, 4});
  }
  // int8 with s_a * s_b / s_y = 0.5: [[4, 5], [10, 11]] -> [[2, 3], [5, 6]] (half up).
  Builder q;
  int av = q.input("a", DType::Int8, {2, 3}, {1, 2, 3, 4, 5, 6}, 0.5);
  int bv = q.input("b", DType::Int8, {3, 2}, {1, 0, 0, 1, 1, 1}, 0.5);
  int y = q.op(OpKind::MatMul, {av, bv}, "y", DType::Int8, {2, 2}, 0.5);
  CHECK(q.run(y) == std::vector<double>{2, 3, 5, 6});
}

// ---------------------------------------------------------------------------------------------
// Elementwise

TEST_CASE("reference add: int8 with different scales, broadcasting, bf16", "[reference]") {
  // s_a = 0.5, s_b = 0.25, s_y = 0.5: y = a + b / 2, rounded half up, saturated.
  Builder b;
  int a = b.input("a", DType::Int8, {4}, {1, 2, -3, 100}, 0.5);
  int c = b.input("b", DType::Int8, {4}, {1, 3, -1, 100}, 0.25);
  int y = b.op(OpKind::Add, {a, c}, "y", DType::Int8, {4}, 0.5);
  CHECK(b.run(y) == std::vector<double>{2, 4, -3, 127});
  CHECK(add_multiplier(0.5, 0.5) == 65536);
  CHECK(add_multiplier(0.25, 0.5) == 32768);

  // A ratio 2^16 cannot hold exactly: 0.1 / 0.3 -> 21845; 3 * 21845 = 65535 -> 1.
  Builder third;
  a = third.input("a", DType::Int8, {2}, {3, -3}, 0.1);
  c = third.input("b", DType::Int8, {2}, {0, 0}, 0.3);
  y = third.op(OpKind::Add, {a, c}, "y", DType::Int8, {2}, 0.3);
  CHECK(third.run(y) == std::vector<double>{1, -1});

  for (DType type : {DType::Int8, DType::BF16}) {
    const double scale = type == DType::Int8 ? 1 : 0;
    Builder g;
    a = g.input("a", type, {2, 3}, {1, 2, 3, 4, 5, 6}, scale);
    c = g.weight("b", type, {3}, {10, 20, 30}, scale);  // a suffix of a's shape
    y = g.op(OpKind::Add, {a, c}, "y", type, {2, 3}, scale);
    CHECK(g.run(y) == std::vector<double>{11, 22, 33, 14, 25, 36});
  }
}

TEST_CASE("reference mul: int8 and bf16", "[reference]") {
  Builder b;
  int a = b.input("a", DType::Int8, {3}, {2, -4, 20}, 0.5);
  int c = b.input("b", DType::Int8, {3}, {3, 5, 20}, 0.5);
  int y = b.op(OpKind::Mul, {a, c}, "y", DType::Int8, {3}, 0.25);  // ratio 1
  CHECK(b.run(y) == std::vector<double>{6, -20, 127});

  Builder h;
  a = h.input("a", DType::Int8, {1}, {3}, 0.5);
  c = h.input("b", DType::Int8, {1}, {3}, 0.5);
  y = h.op(OpKind::Mul, {a, c}, "y", DType::Int8, {1}, 0.5);  // ratio 0.5: 9 -> 4.5 -> 5
  CHECK(h.run(y) == std::vector<double>{5});

  Builder f;
  a = f.input("a", DType::BF16, {2, 2}, {1.5, -0.5, 1, 2});
  c = f.weight("b", DType::BF16, {2}, {2, 0.25});
  y = f.op(OpKind::Mul, {a, c}, "y", DType::BF16, {2, 2});
  CHECK(f.run(y) == std::vector<double>{3, -0.125, 2, 0.5});
}

TEST_CASE("reference relu and clip: int8 and bf16", "[reference]") {
  Builder r;
  int x = r.input("x", DType::Int8, {3}, {-5, 0, 7}, 0.1);
  int y = r.op(OpKind::Relu, {x}, "y", DType::Int8, {3}, 0.1);
  CHECK(r.run(y) == std::vector<double>{0, 0, 7});

  Builder rf;
  x = rf.input("x", DType::BF16, {3}, {-1.5, 0, 2.25});
  y = rf.op(OpKind::Relu, {x}, "y", DType::BF16, {3});
  CHECK(rf.run(y) == std::vector<double>{0, 0, 2.25});

  // relu6 at scale 0.5: bounds 0 and 12.
  Builder c;
  x = c.input("x", DType::Int8, {4}, {-3, 5, 13, 20}, 0.5);
  y = c.op(OpKind::Clip, {x}, "y", DType::Int8, {4}, 0.5, {{"min", 0.0}, {"max", 6.0}});
  CHECK(c.run(y) == std::vector<double>{0, 5, 12, 12});
  // A bound between codes rounds to the nearest: 1.3 / 0.5 = 2.6 -> 3; -1.3 -> -3.
  Builder c2;
  x = c2.input("x", DType::Int8, {3}, {-10, 2, 10}, 0.5);
  y = c2.op(OpKind::Clip, {x}, "y", DType::Int8, {3}, 0.5, {{"min", -1.3}, {"max", 1.3}});
  CHECK(c2.run(y) == std::vector<double>{-3, 2, 3});

  Builder cf;
  x = cf.input("x", DType::BF16, {3}, {-1, 3.5, 7});
  y = cf.op(OpKind::Clip, {x}, "y", DType::BF16, {3}, 0, {{"min", 0.0}, {"max", 6.0}});
  CHECK(cf.run(y) == std::vector<double>{0, 3.5, 6});

  // int8 relu and clip keep the codes, so the scales must agree.
  Builder bad;
  x = bad.input("x", DType::Int8, {1}, {1}, 0.1);
  bad.op(OpKind::Relu, {x}, "y", DType::Int8, {1}, 0.2);
  CHECK_THAT(
      run_error(bad),
      Catch::Contains("op 'y_op' (relu): int8 input 'x' (scale 0.1) and output 'y' (scale 0.2) "
                      "must have the same scale"));
}

TEST_CASE("reference gelu: bf16 and int8", "[reference]") {
  auto gelu = [](double x) {
    return 0.5 * x * (1 + std::tanh(0.7978845608 * (x + 0.044715 * x * x * x)));
  };
  Builder f;
  const std::vector<double> inputs = {0, 1, -1, -3, 2.5};
  int x = f.input("x", DType::BF16, {5}, inputs);
  int y = f.op(OpKind::Gelu, {x}, "y", DType::BF16, {5});
  std::vector<double> got = f.run(y);
  CHECK(got[0] == 0);
  CHECK(got[1] == 0.83984375);  // gelu(1) = 0.84119 -> nearest bf16 (215 / 256)
  for (size_t i = 0; i < got.size(); ++i)
    CHECK(got[i] == Approx(gelu(inputs[i])).epsilon(1.0 / 128));

  // int8, s_x = s_y = 0.1: 10 -> gelu(1) / 0.1 = 8.41 -> 8; -10 -> -1.59 -> -2; 127 -> 12.7 -> 127.
  Builder q;
  x = q.input("x", DType::Int8, {5}, {0, 10, -10, 127, -128}, 0.1);
  y = q.op(OpKind::Gelu, {x}, "y", DType::Int8, {5}, 0.1);
  CHECK(q.run(y) == std::vector<double>{0, 8, -2, 127, 0});
  CHECK(int8_gelu(10, 0.1, 0.1) == 8);
  CHECK(int8_gelu(10, 0.1, 0.05) == 17);  // 16.82 -> 17
}

// ---------------------------------------------------------------------------------------------
// Pooling

TEST_CASE("reference maxpool: padding never wins", "[reference]") {
  // All inputs negative: a padded zero would win every border window if it were counted.
  std::vector<double> x;
  for (int i = 1; i <= 9; ++i) x.push_back(-i);
  for (DType type : {DType::Int8, DType::BF16}) {
    const double scale = type == DType::Int8 ? 0.5 : 0;
    Builder b;
    int in = b.input("x", type, {1, 1, 3, 3}, x, scale);
    int y = b.op(OpKind::MaxPool, {in}, "y", type, {1, 1, 2, 2}, scale,
                 {{"kernel", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}});
    CHECK(b.run(y) == std::vector<double>{-1, -2, -4, -5});
  }
  // 1-D: kernel 3, stride 2, pads [1, 1] over [1, 5, 2, 4, 3].
  Builder one;
  int in = one.input("x", DType::Int8, {1, 1, 5}, {1, 5, 2, 4, 3}, 1);
  int y = one.op(OpKind::MaxPool, {in}, "y", DType::Int8, {1, 1, 3}, 1,
                 {{"kernel", Ints{3}}, {"strides", Ints{2}}, {"pads", Ints{1, 1}}});
  CHECK(one.run(y) == std::vector<double>{5, 5, 4});
}

TEST_CASE("reference avgpool: padded zeros count", "[reference]") {
  const Attrs attrs = {{"kernel", Ints{2, 2}}, {"pads", Ints{1, 1, 0, 0}}};
  // Windows: {4}, {4, 8}, {4, 12}, {4, 8, 12, 16}, each divided by 4.
  Builder f;
  int x = f.input("x", DType::BF16, {1, 1, 2, 2}, {4, 8, 12, 16});
  int y = f.op(OpKind::AvgPool, {x}, "y", DType::BF16, {1, 1, 2, 2}, 0, attrs);
  CHECK(f.run(y) == std::vector<double>{1, 3, 4, 10});

  // int8, s_x = 1, s_y = 0.5: sum * 1 / (0.5 * 4) = sum / 2.
  Builder q;
  x = q.input("x", DType::Int8, {1, 1, 2, 2}, {4, 8, 12, 16}, 1);
  y = q.op(OpKind::AvgPool, {x}, "y", DType::Int8, {1, 1, 2, 2}, 0.5, attrs);
  CHECK(q.run(y) == std::vector<double>{2, 6, 8, 20});

  // Rounding half up: sums 2, 4, 5, 12 over 4 -> 0.5 -> 1, 1, 1.25 -> 1, 3.
  Builder r;
  x = r.input("x", DType::Int8, {1, 1, 2, 2}, {2, 2, 3, 5}, 1);
  y = r.op(OpKind::AvgPool, {x}, "y", DType::Int8, {1, 1, 2, 2}, 1, attrs);
  CHECK(r.run(y) == std::vector<double>{1, 1, 1, 3});
}

TEST_CASE("reference global_avgpool: int8 and bf16", "[reference]") {
  const std::vector<double> x = {1, 2, 3, 4, -4, -4, 8, 8};  // channel means 2.5 and 2
  Builder f;
  int in = f.input("x", DType::BF16, {1, 2, 2, 2}, x);
  int y = f.op(OpKind::GlobalAvgPool, {in}, "y", DType::BF16, {1, 2, 1, 1});
  CHECK(f.run(y) == std::vector<double>{2.5, 2});

  Builder q;
  in = q.input("x", DType::Int8, {1, 2, 2, 2}, x, 1);
  y = q.op(OpKind::GlobalAvgPool, {in}, "y", DType::Int8, {1, 2, 1, 1}, 1);
  CHECK(q.run(y) == std::vector<double>{3, 2});  // 2.5 rounds half up
}

// ---------------------------------------------------------------------------------------------
// Data movement

TEST_CASE("reference transpose, reshape, flatten, concat", "[reference]") {
  for (DType type : {DType::Int8, DType::BF16}) {
    const double scale = type == DType::Int8 ? 0.5 : 0;
    Builder b;
    int x = b.input("x", type, {2, 3}, {0, 1, 2, 3, 4, 5}, scale);
    int t = b.op(OpKind::Transpose, {x}, "t", type, {3, 2}, scale, {{"perm", Ints{1, 0}}});
    int r = b.op(OpKind::Reshape, {x}, "r", type, {3, 2}, scale, {{"shape", Ints{3, 2}}});
    int f = b.op(OpKind::Flatten, {x}, "f", type, {1, 6}, scale, {{"axis", int64_t{0}}});
    int a = b.input("a", type, {2, 1}, {10, 11}, scale);
    int c1 = b.op(OpKind::Concat, {a, x}, "c1", type, {2, 4}, scale, {{"axis", int64_t{1}}});
    int c0 = b.op(OpKind::Concat, {x, x}, "c0", type, {4, 3}, scale, {{"axis", int64_t{-2}}});
    std::vector<HostTensor> all = b.run_all();
    CHECK(values_of(all[static_cast<size_t>(t)]) == std::vector<double>{0, 3, 1, 4, 2, 5});
    CHECK(values_of(all[static_cast<size_t>(r)]) == std::vector<double>{0, 1, 2, 3, 4, 5});
    CHECK(values_of(all[static_cast<size_t>(f)]) == std::vector<double>{0, 1, 2, 3, 4, 5});
    CHECK(values_of(all[static_cast<size_t>(c1)]) == std::vector<double>{10, 0, 1, 2, 11, 3, 4, 5});
    CHECK(values_of(all[static_cast<size_t>(c0)]) ==
          std::vector<double>{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5});
  }

  // 3-D perm [2, 0, 1]: y[i][j][k] = x[j][k][i].
  Builder b;
  int x = b.input("x", DType::FP32, {2, 3, 4}, iota(24, 0));
  int y = b.op(OpKind::Transpose, {x}, "y", DType::FP32, {4, 2, 3}, 0, {{"perm", Ints{2, 0, 1}}});
  std::vector<double> got = b.run(y);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k)
        CHECK(got[static_cast<size_t>((i * 2 + j) * 3 + k)] == (j * 3 + k) * 4 + i);

  // int8 concat moves codes: every input needs the output's scale.
  Builder bad;
  int p = bad.input("p", DType::Int8, {1, 2}, {1, 2}, 0.5);
  int q = bad.input("q", DType::Int8, {1, 2}, {1, 2}, 0.25);
  bad.op(OpKind::Concat, {p, q}, "y", DType::Int8, {1, 4}, 0.5, {{"axis", int64_t{1}}});
  CHECK_THAT(
      run_error(bad),
      Catch::Contains(
          "int8 input 'q' (scale 0.25) and output 'y' (scale 0.5) must have the same scale"));
}

// ---------------------------------------------------------------------------------------------
// Softmax, layernorm, attention (fp32 math)

TEST_CASE("reference softmax: rows sum to 1, matches exp / sum", "[reference]") {
  Builder b;
  int x = b.input("x", DType::FP32, {2, 4}, {1, 2, 3, 4, -100, 0, 100, 100});
  int y = b.op(OpKind::Softmax, {x}, "y", DType::FP32, {2, 4});
  std::vector<double> got = b.run(y);
  const double sum = std::exp(-3.0) + std::exp(-2.0) + std::exp(-1.0) + 1.0;
  CHECK(got[0] == Approx(std::exp(-3.0) / sum).epsilon(1e-6));
  CHECK(got[3] == Approx(1.0 / sum).epsilon(1e-6));
  CHECK(got[4] == 0);  // exp(-200) underflows
  CHECK(got[6] == 0.5);
  CHECK(got[7] == 0.5);  // large inputs do not overflow: the max is subtracted first
  for (int r = 0; r < 2; ++r) {
    double row = 0;
    for (int i = 0; i < 4; ++i) row += got[static_cast<size_t>(r * 4 + i)];
    CHECK(row == Approx(1).epsilon(1e-6));
  }

  // Along axis 0, in bf16: each column sums to 1 (within bf16 rounding of each element).
  Builder c;
  x = c.input("x", DType::BF16, {3, 2}, {0, 1, 1, 2, 2, 0});
  y = c.op(OpKind::Softmax, {x}, "y", DType::BF16, {3, 2}, 0, {{"axis", int64_t{0}}});
  got = c.run(y);
  for (int col = 0; col < 2; ++col) {
    CHECK(got[static_cast<size_t>(col)] + got[static_cast<size_t>(2 + col)] +
              got[static_cast<size_t>(4 + col)] ==
          Approx(1).margin(3.0 / 256));
  }
  CHECK(got[0] == Approx(1 / (1 + std::exp(1.0) + std::exp(2.0))).epsilon(1.0 / 128));
}

TEST_CASE("reference layernorm: mean 0, variance 1, then gamma and beta", "[reference]") {
  Builder b;
  int x = b.input("x", DType::FP32, {2, 4}, {1, 2, 3, 4, -10, 0, 5, 25});
  int gamma = b.weight("gamma", DType::FP32, {4}, {1, 1, 1, 1});
  int beta = b.weight("beta", DType::FP32, {4}, {0, 0, 0, 0});
  int y = b.op(OpKind::LayerNorm, {x, gamma, beta}, "y", DType::FP32, {2, 4});
  std::vector<double> got = b.run(y);
  // Row 0: mean 2.5, variance 1.25 (divided by 4, not 3).
  CHECK(got[0] == Approx(-1.5 / std::sqrt(1.25 + 1e-5)).epsilon(1e-6));
  CHECK(got[3] == Approx(1.5 / std::sqrt(1.25 + 1e-5)).epsilon(1e-6));
  for (int r = 0; r < 2; ++r) {
    double mean = 0, squares = 0;
    for (int i = 0; i < 4; ++i) mean += got[static_cast<size_t>(r * 4 + i)] / 4;
    for (int i = 0; i < 4; ++i)
      squares += std::pow(got[static_cast<size_t>(r * 4 + i)] - mean, 2) / 4;
    CHECK(mean == Approx(0).margin(1e-6));
    CHECK(squares == Approx(1).epsilon(1e-4));
  }

  // gamma 2, beta 1, bf16, epsilon 0.75: row [1, 3] -> mean 2, variance 1 -> (x - 2) / sqrt(1.75) *
  // 2 + 1.
  Builder f;
  x = f.input("x", DType::BF16, {1, 2}, {1, 3});
  gamma = f.weight("gamma", DType::BF16, {2}, {2, 2});
  beta = f.weight("beta", DType::BF16, {2}, {1, 1});
  y = f.op(OpKind::LayerNorm, {x, gamma, beta}, "y", DType::BF16, {1, 2}, 0, {{"epsilon", 0.75}});
  got = f.run(y);
  CHECK(got[0] == Approx(1 - 2 / std::sqrt(1.75)).epsilon(1.0 / 128));
  CHECK(got[1] == Approx(1 + 2 / std::sqrt(1.75)).epsilon(1.0 / 128));
  CHECK((got[0] + got[1]) / 2 == Approx(1).epsilon(1.0 / 128));
}

namespace {

// One head, head dim 1, scale 1: q = 1 everywhere, so score[i][j] = k[j] = ln(j + 1) and the
// unmasked weights are proportional to 1, 2, 3; v = 6, 12, 18.
std::vector<double> run_tiny_attention(Attrs attrs, DType type = DType::FP32,
                                       const std::vector<double>* mask = nullptr) {
  Builder b;
  int q = b.input("q", type, {1, 3, 1}, {1, 1, 1});
  int k = b.input("k", type, {1, 3, 1}, {0, std::log(2.0), std::log(3.0)});
  int v = b.input("v", type, {1, 3, 1}, {6, 12, 18});
  std::vector<int> inputs = {q, k, v};
  if (mask) inputs.push_back(b.input("mask", type, {3, 3}, *mask));
  attrs["heads"] = int64_t{1};
  attrs["scale"] = 1.0;
  int y = b.op(OpKind::Attention, inputs, "y", type, {1, 3, 1}, 0, attrs);
  return b.run(y);
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double relative) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(relative));
}

}  // namespace

TEST_CASE("reference attention: no mask, causal, causal with a window, mask input", "[reference]") {
  const double eps = 1e-5;
  // No mask: every row (6 + 2 * 12 + 3 * 18) / 6 = 14.
  check_close(run_tiny_attention({}), {14, 14, 14}, eps);
  // Causal: row 0 sees key 0; row 1 keys 0, 1 -> (6 + 24) / 3 = 10; row 2 all -> 14.
  check_close(run_tiny_attention({{"causal", int64_t{1}}}), {6, 10, 14}, eps);
  // Window 2 with causal: row i sees (i - 2, i]; row 2 sees keys 1, 2 -> (24 + 54) / 5 = 15.6.
  check_close(run_tiny_attention({{"causal", int64_t{1}}, {"window", int64_t{2}}}), {6, 10, 15.6},
              eps);
  // Window 1: each position sees only itself.
  check_close(run_tiny_attention({{"causal", int64_t{1}}, {"window", int64_t{1}}}), {6, 12, 18},
              eps);
  // bf16: 15.6 rounds to the nearest bf16, 15.625.
  CHECK(run_tiny_attention({{"causal", int64_t{1}}, {"window", int64_t{2}}}, DType::BF16) ==
        std::vector<double>{6, 10, 15.625});

  // An additive mask input: -inf at (2, 0) leaves row 2 with keys 1, 2; a fully masked row is 0.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> mask = {0, 0, 0, 0, 0, 0, -inf, 0, 0};
  check_close(run_tiny_attention({}, DType::FP32, &mask), {14, 14, 15.6}, eps);
  mask = {-inf, -inf, -inf, 0, 0, 0, 0, 0, std::log(2.0)};  // row 2: weights 1, 2, 6
  check_close(run_tiny_attention({}, DType::FP32, &mask), {0, 14, (6 + 24 + 108) / 9.0}, eps);
}

TEST_CASE("reference attention: grouped-query heads and the default scale", "[reference]") {
  // 4 query heads on 2 kv heads: heads 0, 1 use kv head 0 (v = 1, 2, 3), heads 2, 3 kv head 1
  // (v = 10, 20, 30). q = 0 makes every score 0: a causal running mean of v.
  Builder b;
  int q = b.input("q", DType::FP32, {1, 3, 4}, std::vector<double>(12, 0.0));
  int k = b.input("k", DType::FP32, {1, 3, 2}, {5, -5, 1, 2, 3, 4});
  int v = b.input("v", DType::FP32, {1, 3, 2}, {1, 10, 2, 20, 3, 30});
  int y = b.op(OpKind::Attention, {q, k, v}, "y", DType::FP32, {1, 3, 4}, 0,
               {{"heads", int64_t{4}}, {"kv_heads", int64_t{2}}, {"causal", int64_t{1}}});
  check_close(b.run(y), {1, 1, 10, 10, 1.5, 1.5, 15, 15, 2, 2, 20, 20}, 1e-6);

  // Head dim 4, default scale 1/2: scores [4 / 2, 0] -> out = e^2 / (e^2 + 1) with v = [1, 0].
  Builder s;
  q = s.input("q", DType::FP32, {1, 1, 4}, {1, 1, 1, 1});
  k = s.input("k", DType::FP32, {1, 2, 4}, {1, 1, 1, 1, 0, 0, 0, 0});
  v = s.input("v", DType::FP32, {1, 2, 1}, {1, 0});
  y = s.op(OpKind::Attention, {q, k, v}, "y", DType::FP32, {1, 1, 1}, 0, {{"heads", int64_t{1}}});
  check_close(s.run(y), {std::exp(2.0) / (std::exp(2.0) + 1)}, 1e-6);
}

// ---------------------------------------------------------------------------------------------
// Errors, data, comparison

TEST_CASE("reference: missing data and undefined type combinations are errors", "[reference]") {
  Builder b;
  int x = b.add(ValueKind::Input, "x", DType::FP32, {2}, 0);
  b.op(OpKind::Relu, {x}, "y", DType::FP32, {2});
  CHECK_THAT(run_error(b), Catch::Contains("no data for input 'x'"));
  b.data[static_cast<size_t>(x)] = tensor_of(DType::FP32, {3}, {1, 2, 3});
  CHECK_THAT(run_error(b),
             Catch::Contains("the data for 'x' is fp32[3]; the graph declares fp32[2]"));

  Builder s;
  x = s.input("x", DType::Int8, {2}, {1, 2}, 0.1);
  s.op(OpKind::Softmax, {x}, "y", DType::Int8, {2}, 0.1);
  CHECK_THAT(
      run_error(s),
      Catch::Contains("op 'y_op' (softmax): this op is defined on bf16 and fp32 values only"));

  Builder n;
  x = n.input("x", DType::Int8, {1, 2}, {1, 2});  // no scale
  int w = n.weight("w", DType::Int8, {1, 2}, {1, 2}, 1);
  n.op(OpKind::Linear, {x, w}, "y", DType::Int8, {1, 1}, 1);
  CHECK_THAT(run_error(n), Catch::Contains("int8 value 'x' has no quantization scale"));
}

TEST_CASE("graph_inputs_and_weights: seeded inputs, seeded or file weights", "[reference]") {
  Builder b;
  int x = b.add(ValueKind::Input, "x", DType::Int8, {2, 3}, 0.5);
  int w = b.add(ValueKind::Weight, "w", DType::BF16, {4}, 0);
  b.graph.values[static_cast<size_t>(w)].seed = 77;
  int f = b.add(ValueKind::Weight, "wf", DType::Int32, {2}, 0);
  b.graph.values[static_cast<size_t>(f)].weight_file = "wf.npy";
  int y = b.op(OpKind::Relu, {x}, "y", DType::Int8, {2, 3}, 0.5);

  const std::string dir = test::make_temp_dir("reference");
  b.graph.file = dir + "/model.yaml";
  write_npy(dir + "/wf.npy", tensor_of(DType::Int32, {2}, {7, -7}));

  auto data = graph_inputs_and_weights(b.graph, 5);
  REQUIRE(data.size() == b.graph.values.size());
  CHECK(data[static_cast<size_t>(x)]->bytes ==
        random_tensor(DType::Int8, {2, 3}, seed_for("x", 5)).bytes);
  CHECK(data[static_cast<size_t>(w)]->bytes == random_tensor(DType::BF16, {4}, 77).bytes);
  CHECK(values_of(*data[static_cast<size_t>(f)]) == std::vector<double>{7, -7});
  CHECK(!data[static_cast<size_t>(y)].has_value());
  // Another run seed changes the inputs, never the weights.
  auto other = graph_inputs_and_weights(b.graph, 6);
  CHECK(other[static_cast<size_t>(x)]->bytes != data[static_cast<size_t>(x)]->bytes);
  CHECK(other[static_cast<size_t>(w)]->bytes == data[static_cast<size_t>(w)]->bytes);

  std::vector<HostTensor> all = run_reference(b.graph, data);
  std::vector<double> in = values_of(all[static_cast<size_t>(x)]),
                      out = values_of(all[static_cast<size_t>(y)]);
  for (size_t i = 0; i < in.size(); ++i) CHECK(out[i] == std::max(in[i], 0.0));

  write_npy(dir + "/wf.npy", tensor_of(DType::Int32, {3}, {1, 2, 3}));
  try {
    graph_inputs_and_weights(b.graph, 5);
    FAIL("a weight file of the wrong shape was accepted");
  } catch (const Error& e) {
    CHECK_THAT(std::string(e.what()),
               Catch::Contains("wf.npy' for 'wf' is int32[3]; the graph declares int32[2]"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("compare_tensors: integers are bit-exact", "[reference]") {
  HostTensor want = tensor_of(DType::Int8, {2, 3}, {1, 2, 3, 4, 5, 6});
  Comparison same = compare_tensors(want, want, "y");
  CHECK(same.ok);
  CHECK(same.mismatches == 0);
  CHECK(same.message == "y: all 6 int8 elements are bit-exact");

  HostTensor got = tensor_of(DType::Int8, {2, 3}, {1, 2, 3, 4, 5, 9});
  got.bytes[1] = 3;  // off by one at [0, 1]: still a mismatch
  Comparison c = compare_tensors(got, want, "y");
  CHECK(!c.ok);
  CHECK(c.mismatches == 2);
  CHECK(c.worst_abs_error == 3);
  CHECK(c.worst_rel_error == Approx(0.5));
  CHECK(c.worst_where == "y[1, 2]");
  CHECK(c.message ==
        "y: 2 of 6 int8 elements differ from the reference (must be bit-exact); worst at y[1, 2]: "
        "got 9, want 6");

  Comparison shape = compare_tensors(tensor_of(DType::Int8, {6}, {1, 2, 3, 4, 5, 6}), want, "y");
  CHECK(!shape.ok);
  CHECK(shape.message == "y: got int8[6], the reference is int8[2,3]");
}

TEST_CASE("compare_tensors: floats within their per-element tolerance", "[reference]") {
  HostTensor want = tensor_of(DType::BF16, {2, 2}, {1, 2, 3, 4});
  const std::vector<double> tolerance = {0.01, 0.1, 0, 0.5};
  Comparison same = compare_tensors(want, want, "y", tolerance);
  CHECK(same.ok);
  CHECK(same.bit_exact);
  CHECK(same.elements == 4);
  CHECK(same.message == "y: all 4 bf16 elements are bit-exact");

  // 2.0625 is 0.0625 off, 0.625 of its 0.1; 4.25 0.25 off, 0.5 of its 0.5: the closest is [0, 1].
  Comparison close = compare_tensors(tensor_of(DType::BF16, {2, 2}, {1, 2.0625, 3, 4.25}), want, "y", tolerance);
  CHECK(close.ok);
  CHECK(!close.bit_exact);
  CHECK(close.mismatches == 0);
  CHECK(close.worst_abs_error == 0.25);
  CHECK(close.worst_rel_error == Approx(0.0625));
  CHECK(close.worst_ratio == Approx(0.625));
  CHECK(close.worst_where == "y[0, 1]");
  CHECK(close.message ==
        "y: all 4 bf16 elements within their derived bounds; the closest at 0.62 of its bound (2.0625 against 2, bound "
        "0.1), at y[0, 1]");

  // 1.0078125 is within 0.01 (at 0.78 of it); 3.015625 against a zero tolerance fails.
  Comparison far = compare_tensors(tensor_of(DType::BF16, {2, 2}, {1.0078125, 2, 3.015625, 4}), want, "y", tolerance);
  CHECK(!far.ok);
  CHECK(far.mismatches == 1);
  CHECK(far.worst_where == "y[1, 0]");
  CHECK(std::isinf(far.worst_ratio));
  CHECK(far.message ==
        "y: 1 of 4 bf16 elements differ from the reference beyond their derived bounds; worst at y[1, 0]: got 3.015625, "
        "want 3 (abs error 0.01562, bound 0)");

  // No tolerance: floats must be bit-exact.
  CHECK(!compare_tensors(tensor_of(DType::FP32, {2}, {0, 1e-30}), tensor_of(DType::FP32, {2}, {0, 0}), "0").ok);
  CHECK(compare_tensors(tensor_of(DType::FP32, {2}, {0, 1}), tensor_of(DType::FP32, {2}, {0, 1}), "0").ok);

  // NaN meets NaN; a NaN where a number is expected fails whatever the tolerance.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  HostTensor with_nan = tensor_of(DType::FP32, {2}, {nan, 1});
  CHECK(compare_tensors(with_nan, with_nan, "n").ok);
  Comparison missing = compare_tensors(with_nan, tensor_of(DType::FP32, {2}, {0, 1}), "n", {1e9, 1e9});
  CHECK(!missing.ok);
  CHECK(missing.worst_where == "n[0]");
}
