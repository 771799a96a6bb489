// The fp64 reference and the float bounds (compiler/reference_fp64.h): values by hand, the
// fp32 reference (and the VPU's forms of softmax and layernorm) within the bound of the fp64
// value for every float op on seeded data, the GEMM bound as the gamma_K formula, the
// tolerance (the bf16 values a bound reaches) and against the old flat rule, the libm accuracy
// the bounds assume, and the end-to-end bound's count of roundings.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>

#include <fmt/format.h>

#include "compiler/reference.h"
#include "compiler/reference_fp64.h"
#include "simulator/random_data.h"

using namespace tpusim;

namespace {

using Attrs = std::map<std::string, AttrValue>;
using Ints = std::vector<int64_t>;

// A graph under construction with the data for its inputs and weights (seeded, times `scale`).
struct Builder {
  Graph graph;
  std::vector<std::optional<HostTensor>> data;
  uint64_t seed = 1;

  int add(ValueKind kind, const std::string& name, DType type, const Ints& shape) {
    Value v;
    v.name = name;
    v.kind = kind;
    v.dtype = type;
    v.shape = shape;
    int index = graph.add_value(v);
    data.resize(graph.values.size());
    return index;
  }
  int random(const std::string& name, const Ints& shape, double scale = 1, ValueKind kind = ValueKind::Input,
             DType type = DType::BF16) {
    int index = add(kind, name, type, shape);
    HostTensor t = random_tensor(type, shape, seed++);
    const int64_t size = dtype_size(type);
    for (int64_t e = 0; e < t.element_count(); ++e) {
      uint8_t* p = t.bytes.data() + e * size;
      store_element(type, p, load_element(type, p) * scale);
    }
    data[static_cast<size_t>(index)] = std::move(t);
    return index;
  }
  int values(const std::string& name, const Ints& shape, const std::vector<double>& v, DType type = DType::BF16) {
    int index = add(ValueKind::Input, name, type, shape);
    HostTensor t{type, shape, std::vector<uint8_t>(v.size() * static_cast<size_t>(dtype_size(type)))};
    for (size_t i = 0; i < v.size(); ++i) store_element(type, t.bytes.data() + i * static_cast<size_t>(dtype_size(type)), v[i]);
    data[static_cast<size_t>(index)] = std::move(t);
    return index;
  }
  int op(OpKind kind, std::vector<int> inputs, const std::string& output, DType type, const Ints& shape, Attrs attrs = {}) {
    int out = add(ValueKind::Activation, output, type, shape);
    Op op;
    op.kind = kind;
    op.name = output;
    op.inputs = std::move(inputs);
    op.output = out;
    op.attrs = std::move(attrs);
    graph.add_op(op);
    graph.outputs = {out};
    return out;
  }
  std::vector<double> reference(int value) const {
    const HostTensor t = run_reference(graph, data)[static_cast<size_t>(value)];
    std::vector<double> out(static_cast<size_t>(t.element_count()));
    for (size_t i = 0; i < out.size(); ++i) out[i] = load_element(t.dtype, t.bytes.data() + i * static_cast<size_t>(dtype_size(t.dtype)));
    return out;
  }
  Fp64Tensor exact(int value) const {
    Fp64Options options;
    options.bounds = true;
    return run_reference_fp64(graph, data, options)[static_cast<size_t>(value)];
  }
  std::vector<double> input(int value) const {
    const HostTensor& t = *data[static_cast<size_t>(value)];
    std::vector<double> out(static_cast<size_t>(t.element_count()));
    for (size_t i = 0; i < out.size(); ++i) out[i] = load_element(t.dtype, t.bytes.data() + i * static_cast<size_t>(dtype_size(t.dtype)));
    return out;
  }
};

// Every element of `got` (an fp32 evaluation) within the bound of the exact value; returns the
// largest |got - x| / bound.
double require_within_bound(const std::vector<double>& got, const Fp64Tensor& exact) {
  REQUIRE(got.size() == exact.values.size());
  REQUIRE(exact.bound.size() == exact.values.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double error = std::abs(got[i] - exact.values[i]);
    INFO(fmt::format("element {}: got {}, exact {}, bound {}", i, got[i], exact.values[i], exact.bound[i]));
    REQUIRE(error <= exact.bound[i] * (1 + 0x1p-20));
    if (error > 0) worst = std::max(worst, error / exact.bound[i]);
  }
  return worst;
}

}  // namespace

TEST_CASE("fp64 reference: no intermediate rounding", "[reference][fp64]") {
  // 1 * 1 + 2^-13 * 2^-13: fp32 drops the 2^-26, double keeps it; the bound covers the drop.
  Builder b;
  int x = b.values("x", {1, 2}, {1, 0x1p-13});
  int w = b.values("w", {1, 2}, {1, 0x1p-13});
  b.graph.values[static_cast<size_t>(w)].kind = ValueKind::Weight;
  int y = b.op(OpKind::Linear, {x, w}, "y", DType::FP32, {1, 1});
  CHECK(b.reference(y) == std::vector<double>{1.0});
  const Fp64Tensor exact = b.exact(y);
  CHECK(exact.values == std::vector<double>{1 + 0x1p-26});
  CHECK(exact.rounds);
  // gamma_2 of sum |a b|, plus the two products' underflow allowance.
  const double gamma2 = 2 * 0x1p-24 / (1 - 2 * 0x1p-24);
  CHECK(exact.bound[0] == Approx(gamma2 * (1 + 0x1p-26) + 2 * 0x1p-150).epsilon(1e-12));
  require_within_bound(b.reference(y), exact);

  // relu and data movement do not round: no bound.
  Builder r;
  x = r.values("x", {4}, {-1, 0.5, 2, -0.25});
  int a = r.op(OpKind::Relu, {x}, "a", DType::BF16, {4});
  int t = r.op(OpKind::Reshape, {a}, "t", DType::BF16, {2, 2});
  const Fp64Tensor moved = r.exact(t);
  CHECK(moved.values == std::vector<double>{0, 0.5, 2, 0});
  CHECK(moved.bound == std::vector<double>{0, 0, 0, 0});
  CHECK(!moved.rounds);
}

TEST_CASE("fp64 bounds: the GEMM bound is gamma_K of sum |a b|, and the fp32 reference is within it", "[reference][fp64]") {
  for (int64_t k : {7, 64, 4096}) {
    DYNAMIC_SECTION("K = " << k) {
      Builder b;
      const int64_t rows = 6, n = 5;
      int x = b.random("x", {rows, k});
      int w = b.random("w", {n, k}, 1, ValueKind::Weight);
      int bias = b.random("b", {n}, 1, ValueKind::Weight, DType::FP32);
      int y = b.op(OpKind::Linear, {x, w, bias}, "y", DType::FP32, {rows, n});
      const Fp64Tensor exact = b.exact(y);
      const double worst = require_within_bound(b.reference(y), exact);
      INFO("worst error / bound " << worst);
      // The bound, recomputed: gamma_(K+1) (sum_k |x w| + |b|) + K 2^-150.
      const std::vector<double> xv = b.input(x), wv = b.input(w), bv = b.input(bias);
      const double terms = static_cast<double>(k + 1) * 0x1p-24;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < n; ++c) {
          double magnitude = std::abs(bv[static_cast<size_t>(c)]);
          for (int64_t i = 0; i < k; ++i) magnitude += std::abs(xv[static_cast<size_t>(r * k + i)] * wv[static_cast<size_t>(c * k + i)]);
          const double expected = terms / (1 - terms) * magnitude + static_cast<double>(k) * 0x1p-150;
          CHECK(exact.bound[static_cast<size_t>(r * n + c)] == Approx(expected).epsilon(1e-9));
        }
      }
    }
  }
}

TEST_CASE("fp64 bounds: the fp32 reference is within the bound for every float op", "[reference][fp64]") {
  struct Case {
    const char* what;
    std::function<int(Builder&)> build;
  };
  const std::vector<Case> cases = {
      {"conv 3x3, pad 1, stride 2, groups 2, bias",
       [](Builder& b) {
         int x = b.random("x", {1, 4, 9, 8});
         int w = b.random("w", {6, 2, 3, 3}, 0.5, ValueKind::Weight);
         int bias = b.random("b", {6}, 1, ValueKind::Weight, DType::FP32);
         return b.op(OpKind::Conv, {x, w, bias}, "y", DType::FP32, {1, 6, 5, 4},
                     {{"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}, {"groups", int64_t{2}}});
       }},
      {"batched matmul, broadcast",
       [](Builder& b) {
         int a = b.random("a", {2, 3, 40});
         int c = b.random("c", {40, 7});
         return b.op(OpKind::MatMul, {a, c}, "y", DType::FP32, {2, 3, 7});
       }},
      {"add and mul",
       [](Builder& b) {
         int a = b.random("a", {3, 16}, 3);
         int c = b.random("c", {16}, 0.01);
         int s = b.op(OpKind::Add, {a, c}, "s", DType::FP32, {3, 16});
         int p = b.random("p", {3, 16});
         return b.op(OpKind::Mul, {s, p}, "y", DType::FP32, {3, 16});
       }},
      {"gelu over [-12, 12)",
       [](Builder& b) {
         int x = b.random("x", {256}, 12);
         return b.op(OpKind::Gelu, {x}, "y", DType::FP32, {256});
       }},
      {"avgpool 3x3 pad 1 and global average",
       [](Builder& b) {
         int x = b.random("x", {1, 3, 6, 6}, 4);
         int a = b.op(OpKind::AvgPool, {x}, "a", DType::FP32, {1, 3, 6, 6},
                      {{"kernel", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{1, 1}}});
         return b.op(OpKind::GlobalAvgPool, {a}, "y", DType::FP32, {1, 3, 1, 1});
       }},
      {"softmax over a wide range",
       [](Builder& b) {
         int x = b.random("x", {4, 64}, 40);
         return b.op(OpKind::Softmax, {x}, "y", DType::FP32, {4, 64});
       }},
      {"layernorm with an offset",
       [](Builder& b) {
         int x = b.random("x", {3, 96}, 2);
         int g = b.random("g", {96}, 1, ValueKind::Weight);
         int beta = b.random("beta", {96}, 1, ValueKind::Weight);
         return b.op(OpKind::LayerNorm, {x, g, beta}, "y", DType::FP32, {3, 96});
       }},
      {"attention, causal window, grouped heads",
       [](Builder& b) {
         int q = b.random("q", {2, 9, 16}, 2);
         int k = b.random("k", {2, 9, 8}, 2);
         int v = b.random("v", {2, 9, 8});
         return b.op(OpKind::Attention, {q, k, v}, "y", DType::FP32, {2, 9, 16},
                     {{"heads", int64_t{4}}, {"kv_heads", int64_t{2}}, {"causal", int64_t{1}}, {"window", int64_t{4}}});
       }},
      {"attention, cross, additive mask",
       [](Builder& b) {
         int q = b.random("q", {1, 5, 8}, 3);
         int k = b.random("k", {1, 11, 8}, 3);
         int v = b.random("v", {1, 11, 8});
         int mask = b.random("mask", {1, 2, 1, 11}, 4);
         return b.op(OpKind::Attention, {q, k, v, mask}, "y", DType::FP32, {1, 5, 8}, {{"heads", int64_t{2}}});
       }},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.what) {
      Builder b;
      const int y = c.build(b);
      const double worst = require_within_bound(b.reference(y), b.exact(y));
      INFO("worst error / bound " << worst);
      CHECK(worst <= 1);
    }
  }
}

TEST_CASE("fp64 bounds: relu and clip after a GEMM are exact where the input is certainly beyond them", "[reference][fp64]") {
  // The GEMM kept in fp32, so relu and clip read it with its summation bound.
  Builder b;
  int x = b.random("x", {5, 32});
  int w = b.random("w", {6, 32}, 1, ValueKind::Weight);
  int y = b.op(OpKind::Linear, {x, w}, "y", DType::FP32, {5, 6});
  int r = b.op(OpKind::Relu, {y}, "r", DType::FP32, {5, 6});
  int c = b.op(OpKind::Clip, {y}, "c", DType::FP32, {5, 6}, {{"min", -0.5}, {"max", 0.5}});
  b.graph.outputs = {y, r, c};
  Fp64Options options;
  options.bounds = true;
  const std::vector<Fp64Tensor> exact = run_reference_fp64(b.graph, b.data, options);
  const Fp64Tensor& linear = exact[static_cast<size_t>(y)];
  const Fp64Tensor& relu = exact[static_cast<size_t>(r)];
  const Fp64Tensor& clip = exact[static_cast<size_t>(c)];
  CHECK(linear.stored.empty());  // fp32: read as computed
  CHECK(!relu.rounds);
  CHECK(!clip.rounds);  // -0.5 and 0.5 are fp32 numbers
  int zeros = 0, limited = 0;
  for (size_t i = 0; i < linear.values.size(); ++i) {
    const double v = linear.values[i], e = linear.bound[i];
    INFO("element " << i << ": " << v << " within " << e);
    REQUIRE(e > 0);
    REQUIRE(relu.bound[i] == (v + e <= 0 ? 0.0 : e));
    const bool beyond = v + e <= -0.5 || v - e >= 0.5;
    REQUIRE(clip.bound[i] == (beyond ? 0.0 : e));
    zeros += relu.bound[i] == 0;
    limited += beyond;
  }
  CHECK(zeros > 5);    // about half of the 30 are negative
  CHECK(limited > 5);  // the outputs spread over several units
  // Where the bound is 0 both evaluations must agree bit for bit, and do.
  for (int v : {r, c}) require_within_bound(b.reference(v), exact[static_cast<size_t>(v)]);
}

TEST_CASE("fp64 bounds: a bf16 result is read as the bf16 values its bound reaches", "[reference][fp64]") {
  // linear (bf16) -> mul by itself: the mul reads the linear's stored values, which the
  // summation bound (far below half an ulp) nearly always pins to one bf16 number.
  Builder b;
  int x = b.random("x", {8, 64});
  int w = b.random("w", {16, 64}, 1, ValueKind::Weight);
  int y = b.op(OpKind::Linear, {x, w}, "y", DType::BF16, {8, 16});
  int m = b.op(OpKind::Mul, {y, y}, "m", DType::FP32, {8, 16});
  b.graph.outputs = {y, m};
  Fp64Options options;
  options.bounds = true;
  const std::vector<Fp64Tensor> exact = run_reference_fp64(b.graph, b.data, options);
  const Fp64Tensor& linear = exact[static_cast<size_t>(y)];
  const Fp64Tensor& product = exact[static_cast<size_t>(m)];
  REQUIRE(linear.stored.size() == linear.values.size());
  const std::vector<double> reference = b.reference(y);
  int pinned = 0;
  for (size_t i = 0; i < linear.values.size(); ++i) {
    INFO("element " << i << ": " << linear.values[i] << " +- " << linear.bound[i]);
    // The fp32 reference's stored value is among them.
    REQUIRE(std::abs(reference[i] - linear.stored[i]) <= linear.stored_bound[i]);
    if (linear.stored_bound[i] == 0) {
      ++pinned;
      // Then the mul's inputs are exact, and its value is the stored value squared.
      REQUIRE(product.values[i] == linear.stored[i] * linear.stored[i]);
    }
  }
  CHECK(pinned >= 120);  // of 128
  require_within_bound(b.reference(m), product);
}

TEST_CASE("fp64 bounds: the VPU's forms of softmax and layernorm are within the same bounds", "[reference][fp64]") {
  // softmax as the vector unit computes it: e = exp(x - m), s = 1 / sum(e), y = e * s.
  Builder b;
  const int64_t length = 200;
  int x = b.random("x", {3, length}, 30);
  int y = b.op(OpKind::Softmax, {x}, "y", DType::FP32, {3, length});
  const std::vector<double> xv = b.input(x);
  std::vector<double> vpu(xv.size());
  for (int64_t r = 0; r < 3; ++r) {
    const size_t base = static_cast<size_t>(r * length);
    float m = -std::numeric_limits<float>::infinity(), sum = 0;
    for (int64_t i = 0; i < length; ++i) m = std::max(m, static_cast<float>(xv[base + static_cast<size_t>(i)]));
    std::vector<float> e(static_cast<size_t>(length));
    for (size_t i = 0; i < e.size(); ++i) {
      e[i] = std::exp(static_cast<float>(xv[base + i]) - m);
      sum = sum + e[i];
    }
    const float inverse = 1.0f / sum;
    for (size_t i = 0; i < e.size(); ++i) vpu[base + i] = e[i] * inverse;
  }
  require_within_bound(vpu, b.exact(y));

  // layernorm: mean = sum * (1/D), variance = sum(c * c) * (1/D), r = 1 / sqrt(v + eps).
  Builder n;
  const int64_t d = 77;
  x = n.random("x", {2, d}, 3);
  int g = n.random("g", {d}, 1, ValueKind::Weight);
  int beta = n.random("beta", {d}, 1, ValueKind::Weight);
  y = n.op(OpKind::LayerNorm, {x, g, beta}, "y", DType::FP32, {2, d});
  const std::vector<double> lx = n.input(x), gv = n.input(g), bv = n.input(beta);
  std::vector<double> form(lx.size());
  const float inverse_d = static_cast<float>(1.0 / static_cast<double>(d)), epsilon = static_cast<float>(1e-5);
  for (int64_t r = 0; r < 2; ++r) {
    const size_t base = static_cast<size_t>(r * d);
    float sum = 0;
    for (int64_t i = 0; i < d; ++i) sum = sum + static_cast<float>(lx[base + static_cast<size_t>(i)]);
    const float mean = sum * inverse_d;
    std::vector<float> c(static_cast<size_t>(d));
    float squares = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      c[i] = static_cast<float>(lx[base + i]) - mean;
      squares = squares + c[i] * c[i];
    }
    const float rs = 1.0f / std::sqrt(squares * inverse_d + epsilon);
    for (size_t i = 0; i < c.size(); ++i) {
      form[base + i] = c[i] * rs * static_cast<float>(gv[i]) + static_cast<float>(bv[i]);
    }
  }
  require_within_bound(form, n.exact(y));
}

TEST_CASE("float_tolerance: bf16 results to the bf16 values their bound reaches, exact ops bit-exact", "[reference][fp64]") {
  Fp64Tensor t;
  // 1 + 2^-8 is half way between the bf16 numbers 1 and 1 + 2^-7; 1.5's neighbours are 2^-7 away.
  t.values = {1.5, -3, 0, 1 + 0x1p-8, 1.5};
  t.bound = {0x1p-20, 0, 0, 0x1p-20, 0x1p-7};
  const std::vector<double> bf16 = float_tolerance(t, DType::BF16);
  CHECK(bf16[0] == 0);            // 1.5 +- 2^-20 rounds to 1.5 alone: must be bit-exact
  CHECK(bf16[1] == 0);
  CHECK(bf16[2] == 0);
  CHECK(bf16[3] == 0x1p-7);       // to 1 or to 1 + 2^-7: one ulp apart
  CHECK(bf16[4] == 2 * 0x1p-7);   // 1.5 - 2^-7 .. 1.5 + 2^-7
  const double slack = 1 + 0x1p-20;
  const std::vector<double> fp32 = float_tolerance(t, DType::FP32);
  CHECK(fp32[0] == 2 * 0x1p-20 * slack + 0x1p-133);
  CHECK(fp32[1] == 0x1p-133);
  t.rounds = false;
  CHECK(float_tolerance(t, DType::BF16) == std::vector<double>{2 * 0x1p-20 * slack, 0, 0, 2 * 0x1p-20 * slack, 2 * 0x1p-7 * slack});
}

TEST_CASE("float tolerances are tighter than the old flat rule for modest reduction lengths", "[reference][fp64]") {
  // The rule before: |got - want| <= 2^-6 |want| + 2^-6 rms(want). For a GEMM with K = 64 the
  // derived tolerance (the spread of the bf16 values x +- gamma_64 sum |a b| rounds to: 0, or
  // one ulp next to a rounding boundary) is below it at every element and 0 at nearly all; as
  // K grows the summation bound grows with it (past K of about 3000 for uniform data,
  // near-zero outputs get more room than before).
  Builder b;
  int x = b.random("x", {16, 64});
  int w = b.random("w", {24, 64}, 0.3, ValueKind::Weight);
  int y = b.op(OpKind::Linear, {x, w}, "y", DType::BF16, {16, 24});
  const std::vector<double> want = b.reference(y);
  const std::vector<double> tolerance = float_tolerance(b.exact(y), DType::BF16);
  double squares = 0;
  for (double v : want) squares += v * v;
  const double rms = std::sqrt(squares / static_cast<double>(want.size()));
  double largest_share = 0;
  int64_t bit_exact = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double old_rule = std::abs(want[i]) / 64 + rms / 64;
    CHECK(tolerance[i] < old_rule);
    largest_share = std::max(largest_share, tolerance[i] / old_rule);
    bit_exact += tolerance[i] == 0;
  }
  CHECK(largest_share < 0.5);
  CHECK(bit_exact >= 360);  // of 384 (367 on this data: near-zero outputs, whose terms cancel, are not)
}

TEST_CASE("libm's float exp and tanh are within the 4 ulp the bounds assume", "[reference][fp64]") {
  RandomStream rng(17);
  int64_t checked = 0;
  for (int i = 0; i < 200000; ++i) {
    // exp over its normal range, tanh over [-12, 12) and near 0.
    const float e_arg = 87.0f * rng.uniform_signed_unit();
    const float t_arg = (i % 4 == 0 ? 1e-3f : 12.0f) * rng.uniform_signed_unit();
    const double e_exact = std::exp(static_cast<double>(e_arg));
    const double t_exact = std::tanh(static_cast<double>(t_arg));
    INFO("exp(" << e_arg << "), tanh(" << t_arg << ")");
    REQUIRE(std::abs(std::exp(e_arg) - e_exact) <= 0x1p-21 * e_exact);
    REQUIRE(std::abs(std::tanh(t_arg) - t_exact) <= 0x1p-21 * std::abs(t_exact));
    ++checked;
  }
  CHECK(checked == 200000);
}

TEST_CASE("end-to-end bound: roundings on the path where they add up most", "[reference][fp64]") {
  // x -> a (conv, rounds) -> r (relu, exact) -> c (conv) -> s = c + a (add) -> t (attention: 2).
  Builder b;
  int x = b.random("x", {1, 2, 4, 4});
  int w1 = b.random("w1", {2, 2, 1, 1}, 1, ValueKind::Weight);
  int w2 = b.random("w2", {2, 2, 1, 1}, 1, ValueKind::Weight);
  int a = b.op(OpKind::Conv, {x, w1}, "a", DType::BF16, {1, 2, 4, 4});
  int r = b.op(OpKind::Relu, {a}, "r", DType::BF16, {1, 2, 4, 4});
  int c = b.op(OpKind::Conv, {r, w2}, "c", DType::BF16, {1, 2, 4, 4});
  int s = b.op(OpKind::Add, {c, a}, "s", DType::BF16, {1, 2, 4, 4});
  int f = b.op(OpKind::Reshape, {s}, "f", DType::BF16, {1, 4, 8});
  int t = b.op(OpKind::Attention, {f, f, f}, "t", DType::BF16, {1, 4, 8}, {{"heads", int64_t{1}}});
  auto bf16 = [&](int v) { return end_to_end_bound(b.graph, v).bf16_roundings; };
  CHECK(bf16(x) == 0);
  CHECK(bf16(r) == 1);
  CHECK(bf16(s) == 3);
  CHECK(bf16(t) == 5);
  CHECK(end_to_end_bound(b.graph, t).fp32_roundings == 0);
  CHECK(end_to_end_bound(b.graph, t).relative_rms == 5 * 0x1p-8);
  CHECK(is_float_graph(b.graph));

  // Results stored as fp32 count their fp32 roundings instead: a conv with K = 2 * 3 * 3 and a
  // bias (19), an add (1), a softmax over 6 (6 + 16); attention's probabilities are still
  // rounded to bf16 (1), and its two sums over 8 / 2 and 5 keys add 4 + 5 + 16.
  Builder p;
  x = p.random("x", {1, 2, 5, 8});
  int w = p.random("w", {3, 2, 3, 3}, 1, ValueKind::Weight);
  int bias = p.random("bias", {3}, 1, ValueKind::Weight, DType::FP32);
  int y = p.op(OpKind::Conv, {x, w, bias}, "y", DType::FP32, {1, 3, 3, 6});
  int z = p.op(OpKind::Add, {y, y}, "z", DType::FP32, {1, 3, 3, 6});
  int soft = p.op(OpKind::Softmax, {z}, "soft", DType::FP32, {1, 3, 3, 6});
  const EndToEndBound fp32 = end_to_end_bound(p.graph, soft);
  CHECK(fp32.bf16_roundings == 0);
  CHECK(fp32.fp32_roundings == 19 + 1 + 22);
  CHECK(fp32.relative_rms == 42 * 0x1p-24);
  int q = p.random("q", {1, 5, 8}, 1, ValueKind::Input, DType::FP32);
  int att = p.op(OpKind::Attention, {q, q, q}, "att", DType::FP32, {1, 5, 8}, {{"heads", int64_t{2}}});
  const EndToEndBound attention = end_to_end_bound(p.graph, att);
  CHECK(attention.bf16_roundings == 1);
  CHECK(attention.fp32_roundings == 4 + 5 + 16);
  CHECK(attention.relative_rms == 0x1p-8 + 25 * 0x1p-24);

  // Of two branches, the one whose bound is larger: 1 bf16 rounding outweighs 9 fp32 ones.
  Builder m;
  int in = m.random("in", {1, 8});
  int lw = m.random("lw", {4, 8}, 1, ValueKind::Weight);
  int lin = m.op(OpKind::Linear, {in, lw}, "lin", DType::FP32, {1, 4});
  int sum = m.op(OpKind::Add, {lin, lin}, "sum", DType::FP32, {1, 4});
  int rounded = m.random("rounded", {1, 4});
  int g = m.op(OpKind::Gelu, {rounded}, "g", DType::BF16, {1, 4});
  int in32 = m.random("in32", {1, 4}, 1, ValueKind::Input, DType::FP32);
  int wide = m.op(OpKind::Add, {g, in32}, "wide", DType::FP32, {1, 4});
  int both = m.op(OpKind::Add, {sum, wide}, "both", DType::FP32, {1, 4});
  const EndToEndBound joined = end_to_end_bound(m.graph, both);
  CHECK(joined.bf16_roundings == 1);
  CHECK(joined.fp32_roundings == 2);
  CHECK(end_to_end_bound(m.graph, sum).fp32_roundings == 9);
}

TEST_CASE("fp64 reference: integer ops are left out, float ones beside them evaluated", "[reference][fp64]") {
  Builder b;
  int x = b.random("x", {2, 3});
  int y = b.op(OpKind::Gelu, {x}, "y", DType::BF16, {2, 3});
  int n = b.random("n", {4}, 1, ValueKind::Input, DType::Int8);
  int r = b.op(OpKind::Reshape, {n}, "r", DType::Int8, {2, 2}, {{"shape", Ints{2, 2}}});
  b.graph.outputs = {y, r};
  CHECK(!is_float_graph(b.graph));
  const std::vector<Fp64Tensor> exact = run_reference_fp64(b.graph, b.data);
  CHECK(exact[static_cast<size_t>(y)].values.size() == 6);
  CHECK(exact[static_cast<size_t>(r)].values.empty());
}
