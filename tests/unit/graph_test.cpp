// The graph IR as a library: the op table, convolution geometry, MAC counts, shape inference
// on graphs built in code, and the printer's canonical spellings.
#include <catch2/catch.hpp>

#include <limits>
#include <set>

#include "ir/graph.h"

using namespace tpusim;

namespace {

Graph parse(const std::string& body) { return parse_graph("graph t\n" + body, "t.graph"); }

const Op& op_named(const Graph& g, const std::string& name) {
  for (const auto& op : g.ops) {
    if (op.name == name) return op;
  }
  FAIL("no op " << name);
  return g.ops.front();
}

const Value& value_named(const Graph& g, const std::string& name) {
  int index = g.find_value(name);
  REQUIRE(index >= 0);
  return g.values[static_cast<size_t>(index)];
}

using Dims = std::vector<int64_t>;

}  // namespace

TEST_CASE("the op table is complete and consistent", "[unit][graph]") {
  std::set<std::string> names;
  for (int k = 0; k < kOpKindCount; ++k) {
    auto kind = static_cast<OpKind>(k);
    const OpInfo& info = op_info(kind);
    CHECK(info.kind == kind);
    CHECK(parse_op_kind(info.name) == kind);
    CHECK(info.min_inputs >= 1);
    CHECK(info.min_inputs <= info.max_inputs);
    CHECK(std::string(info.inputs).size() > 0);
    names.insert(info.name);
  }
  CHECK(names.size() == static_cast<size_t>(kOpKindCount));
  CHECK(op_kind_names().size() == static_cast<size_t>(kOpKindCount));
  CHECK_FALSE(parse_op_kind("conv2d").has_value());
}

TEST_CASE("conv_geometry follows ONNX for stride, padding, dilation and groups", "[unit][graph]") {
  Graph g = parse(
      "input x : bf16[2,6,11,9]\n"
      "weight w : bf16[4,3,3,2]\n"
      "value plain = conv(x, w) groups=2\n"
      "value strided = conv(x, w) groups=2 strides=[2,3]\n"
      "value padded = conv(x, w) groups=2 pads=[1,0,2,1]\n"
      "value dilated = conv(x, w) groups=2 dilations=[3,2] strides=[2,1]\n"
      "input s : bf16[1,4,10]\n"
      "weight k : bf16[8,4,4]\n"
      "value one_d = conv(s, k) strides=[3] pads=[1,2] dilations=[2]\n"
      "output plain, strided, padded, dilated, one_d\n");

  ConvGeometry plain = conv_geometry(g, op_named(g, "plain"));
  CHECK(plain.batch == 2);
  CHECK(plain.in_channels == 6);
  CHECK(plain.out_channels == 4);
  CHECK(plain.groups == 2);
  CHECK(plain.kernel == Dims{3, 2});
  CHECK(plain.out_size == Dims{9, 8});
  CHECK(plain.out_pixels() == 72);
  CHECK(plain.kernel_points() == 6);

  CHECK(conv_geometry(g, op_named(g, "strided")).out_size == Dims{5, 3});  // (11-3)/2+1, (9-2)/3+1

  ConvGeometry padded = conv_geometry(g, op_named(g, "padded"));
  CHECK(padded.pads_begin == Dims{1, 0});
  CHECK(padded.pads_end == Dims{2, 1});
  CHECK(padded.out_size == Dims{12, 9});  // 11+3-3+1, 9+1-2+1

  ConvGeometry dilated = conv_geometry(g, op_named(g, "dilated"));
  CHECK(dilated.dilations == Dims{3, 2});
  CHECK(dilated.out_size == Dims{3, 7});  // span 7: (11-7)/2+1; span 3: 9-3+1

  ConvGeometry one_d = conv_geometry(g, op_named(g, "one_d"));
  CHECK(one_d.in_size == Dims{10});
  CHECK(one_d.out_size == Dims{3});  // span 7, padded 13: (13-7)/3+1
  CHECK(value_named(g, "one_d").shape == Dims{1, 8, 3});
  CHECK(value_named(g, "dilated").shape == Dims{2, 4, 3, 7});
}

TEST_CASE("op_macs counts useful multiply-accumulates", "[unit][graph]") {
  Graph g = parse(
      "input x : int8[1,3,8,8] scale=0.1\n"
      "weight w : int8[8,3,3,3] scale=0.1\n"
      "value c scale=0.1 = conv(x, w) pads=[1,1,1,1]\n"
      "weight dw : int8[8,1,3,3] scale=0.1\n"
      "value d scale=0.1 = conv(c, dw) groups=8 pads=[1,1,1,1]\n"
      "weight fc : int8[10,512] scale=0.1\n"
      "value f = flatten(d)\n"
      "value l scale=0.1 = linear(f, fc)\n"
      "value r = relu(l)\n"
      "input a : bf16[2,3,8]\n"
      "input b : bf16[2,8,5]\n"
      "value m = matmul(a, b)\n"
      "input q : bf16[2,8,32]\n"
      "input k : bf16[2,6,16]\n"
      "value att = attention(q, k, k) heads=4 kv_heads=2\n"
      "output r, m, att\n");
  CHECK(op_macs(g, op_named(g, "c")) == 8 * 8 * 8 * 3 * 9);
  CHECK(op_macs(g, op_named(g, "d")) == 8 * 8 * 8 * 1 * 9);  // depthwise: one input channel per output
  CHECK(op_macs(g, op_named(g, "l")) == 10 * 512);
  CHECK(op_macs(g, op_named(g, "m")) == 2 * 3 * 8 * 5);
  CHECK(op_macs(g, op_named(g, "att")) == 2 * (2 * 8 * 6 * 32));  // q.k^T and p.v, every head
  CHECK(op_macs(g, op_named(g, "r")) == 0);
  CHECK(op_macs(g, op_named(g, "f")) == 0);
  CHECK(graph_macs(g) == 13824 + 4608 + 5120 + 240 + 6144);
}

TEST_CASE("infer_shapes fills in the values of a graph built in code", "[unit][graph]") {
  Graph g;
  g.name = "built";
  auto add = [&](const std::string& name, ValueKind kind, DType dtype, Dims shape, double scale = 0) {
    Value v;
    v.name = name;
    v.kind = kind;
    v.dtype = dtype;
    v.shape = std::move(shape);
    v.scale = scale;
    return g.add_value(v);
  };
  auto op = [&](OpKind kind, const std::string& name, std::vector<int> inputs,
                std::map<std::string, AttrValue> attrs = {}, double scale = 0) {
    Op o;
    o.kind = kind;
    o.name = name;
    o.inputs = std::move(inputs);
    o.attrs = std::move(attrs);
    o.output = add(name, ValueKind::Activation, DType::Int8, {}, scale);
    g.add_op(o);
    return o.output;
  };
  int x = add("x", ValueKind::Input, DType::Int8, {1, 3, 7, 7}, 0.5);
  int w = add("w", ValueKind::Weight, DType::Int8, {6, 3, 3, 3}, 0.25);
  int c = op(OpKind::Conv, "c", {x, w}, {{"strides", Dims{2, 2}}}, 0.125);
  int p = op(OpKind::MaxPool, "p", {c}, {{"kernel", Dims{2, 2}}, {"strides", Dims{2, 2}}, {"pads", Dims{0, 0, 1, 1}}});
  int t = op(OpKind::Transpose, "t", {p}, {{"perm", Dims{0, 2, 3, 1}}});
  int r = op(OpKind::Reshape, "r", {t}, {{"shape", Dims{-1, 6}}});
  int q = add("q", ValueKind::Input, DType::FP32, {3, 5, 24});
  int kv = add("kv", ValueKind::Input, DType::FP32, {3, 9, 8});
  int a = op(OpKind::Attention, "a", {q, kv, kv}, {{"heads", int64_t{6}}, {"kv_heads", int64_t{2}}});
  int s = op(OpKind::Softmax, "s", {a}, {{"axis", int64_t{1}}});
  g.outputs = {r, s};
  infer_shapes(g);

  auto& v = g.values;
  CHECK(v[static_cast<size_t>(c)].shape == Dims{1, 6, 3, 3});
  CHECK(v[static_cast<size_t>(c)].dtype == DType::Int8);
  CHECK(v[static_cast<size_t>(p)].shape == Dims{1, 6, 2, 2});
  CHECK(v[static_cast<size_t>(p)].scale == 0.125);  // maxpool keeps the scale of its input
  CHECK(v[static_cast<size_t>(t)].shape == Dims{1, 2, 2, 6});
  CHECK(v[static_cast<size_t>(r)].shape == Dims{4, 6});
  CHECK(v[static_cast<size_t>(r)].scale == 0.125);
  CHECK(v[static_cast<size_t>(a)].shape == Dims{3, 5, 24});
  CHECK(v[static_cast<size_t>(a)].dtype == DType::FP32);
  CHECK(v[static_cast<size_t>(a)].scale == 0);
  CHECK(v[static_cast<size_t>(s)].shape == Dims{3, 5, 24});
  CHECK(verify_graph(g).empty());

  // Running it again checks the now-declared types and changes nothing.
  std::string before = print_graph(g);
  infer_shapes(g);
  CHECK(print_graph(g) == before);
}

TEST_CASE("infer_shapes wants a scale on every int8 result that does not inherit one", "[unit][graph]") {
  // A pass that rebuilds a value must give it a scale again; relu would inherit its input's,
  // gelu changes the range and cannot.
  Graph g = parse("input x : int8[4] scale=0.5\nvalue r = relu(x)\nvalue s scale=0.25 = gelu(r)\noutput s\n");
  g.values[static_cast<size_t>(g.find_value("r"))].scale = 0;
  g.values[static_cast<size_t>(g.find_value("s"))].scale = 0;
  try {
    infer_shapes(g);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(g.values[static_cast<size_t>(g.find_value("r"))].scale == 0.5);
    CHECK(std::string(e.what()) ==
          "t.graph:4:1: error: gelu 's': the int8 result needs a scale; add scale=S to the line of 's' (real = S * q)");
  }
}

TEST_CASE("the printer spells floats, strings and attributes canonically", "[unit][graph]") {
  Graph g;
  g.name = "spell";
  Value x;
  x.name = "x";
  x.kind = ValueKind::Input;
  x.dtype = DType::FP32;
  x.shape = {2, 2};
  int xi = g.add_value(x);
  Value y;
  y.name = "y";
  y.dtype = DType::FP32;
  y.shape = {2, 2};
  int yi = g.add_value(y);
  Op clip;
  clip.kind = OpKind::Clip;
  clip.name = "y";
  clip.inputs = {xi};
  clip.output = yi;
  clip.attrs["max"] = 1e-5;
  clip.attrs["min"] = -std::numeric_limits<double>::infinity();
  clip.attrs["zeta"] = std::string("a \"quoted\" \\ word");  // not in the table: printed after, alphabetically
  clip.attrs["alpha"] = int64_t{3};
  g.add_op(clip);
  g.outputs = {yi};
  CHECK(print_graph(g) ==
        "graph spell\n"
        "input x : fp32[2,2]\n"
        "value y : fp32[2,2] = clip(x) min=-inf max=1e-05 alpha=3 zeta=\"a \\\"quoted\\\" \\\\ word\"\n"
        "output y\n");

  // Whole numbers keep a '.0' so they read back as numbers; the shortest round-trip digits.
  g.ops[0].attrs = {{"min", 0.0}, {"max", 6.0}};
  CHECK(print_graph(g).find("clip(x) min=0.0 max=6.0\n") != std::string::npos);
  g.ops[0].attrs = {{"min", 0.1}, {"max", 1e300}};
  CHECK(print_graph(g).find("clip(x) min=0.1 max=1e+300\n") != std::string::npos);
  Graph reparsed = parse_graph(print_graph(g), "spell.graph");
  CHECK(reparsed.ops[0].attr_float("max", 0) == 1e300);
  CHECK(reparsed.ops[0].attr_float("min", 0) == 0.1);
}

TEST_CASE("numbers and input counts are spelled one way everywhere", "[unit][graph]") {
  CHECK(graph_number_text(6) == "6.0");
  CHECK(graph_number_text(-0.5) == "-0.5");
  CHECK(graph_number_text(1e-3) == "0.001");
  CHECK(graph_number_text(1e-6) == "1e-06");
  CHECK(graph_number_text(12800000) == "12800000.0");
  CHECK(graph_number_text(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(op_inputs_text(op_info(OpKind::Conv)) == "2 or 3 inputs (x, w[, b])");
  CHECK(op_inputs_text(op_info(OpKind::Relu)) == "1 input (x)");
  CHECK(op_inputs_text(op_info(OpKind::MatMul)) == "2 inputs (a, b)");
  CHECK(op_inputs_text(op_info(OpKind::Concat)) == "1 to 64 inputs (x1, x2, ...)");
}

TEST_CASE("op attributes read with their documented defaults", "[unit][graph]") {
  Graph g = parse(
      "input q : bf16[1,4,16]\n"
      "value a = attention(q, q, q) heads=2 causal=1\n"
      "output a\n");
  const Op& a = op_named(g, "a");
  CHECK(a.attr_int("heads", 1) == 2);
  CHECK(a.attr_int("kv_heads", a.attr_int("heads", 1)) == 2);
  CHECK(a.attr_int("causal", 0) == 1);
  CHECK(a.attr_int("window", 0) == 0);
  CHECK(a.attr_float("scale", 0.25) == 0.25);
  CHECK(a.location.line == 3);
  CHECK(value_named(g, "a").producer == 0);
  CHECK(value_named(g, "q").producer == -1);
  CHECK(g.outputs == std::vector<int>{g.find_value("a")});
  CHECK(g.find_value("nope") == -1);
}
