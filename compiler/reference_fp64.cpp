#include "compiler/reference_fp64.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <fmt/format.h>

#include "ir/diagnostics.h"
#include "ir/sizes.h"

namespace tpusim {

namespace {

// ---------------------------------------------------------------------------------------------
// Rounding error: the constants of docs/numerics.md

constexpr double kFp32Unit = 0x1p-24;     // u: fp32's unit roundoff (round to nearest)
constexpr double kBf16Unit = 0x1p-8;      // bf16's
constexpr double kLibmUnit = 0x1p-21;     // libm's float exp and tanh: within 4 ulp (2^-21 relative)
constexpr double kFp32Underflow = 0x1p-150;  // half the smallest fp32 subnormal: a product's absolute error
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// gamma_n = n u / (1 - n u): a sum of n + 1 terms in any order (or tree) is within gamma_n of
// the sum of their magnitudes (Higham, Accuracy and Stability of Numerical Algorithms, 4.2).
double gamma(int64_t n) {
  const double nu = static_cast<double>(std::max<int64_t>(n, 0)) * kFp32Unit;
  return nu < 1 ? nu / (1 - nu) : kInfinity;
}

// -log(1 - e): the largest |log(1 + d)| for |d| <= e, so relative errors add as logarithms.
double log_error(double e) { return e < 1 ? -std::log1p(-e) : kInfinity; }

// A value and a bound on how far its fp32 evaluation can be from it. The operators give the
// exact error of the operation on perturbed operands; `rounded` adds the fp32 rounding of the
// result (including an underflowing product's absolute error).
struct Bounded {
  double x = 0, e = 0;
};
Bounded operator+(Bounded a, Bounded b) { return {a.x + b.x, a.e + b.e}; }
Bounded operator-(Bounded a, Bounded b) { return {a.x - b.x, a.e + b.e}; }
Bounded operator*(Bounded a, Bounded b) {
  return {a.x * b.x, std::abs(a.x) * b.e + std::abs(b.x) * a.e + a.e * b.e};
}
Bounded rounded(Bounded v) { return {v.x, v.e + kFp32Unit * (std::abs(v.x) + v.e) + kFp32Underflow}; }
// A real constant held as an fp32 number (an attribute, 1 / n).
Bounded constant(double c) { return {c, kFp32Unit * std::abs(c)}; }
// |1/b~ - 1/b| = |b - b~| / (|b| |b~|) <= e / (|b| (|b| - e)).
Bounded reciprocal(Bounded b) {
  const double low = std::abs(b.x) - b.e;
  return {1 / b.x, low > 0 ? b.e / (std::abs(b.x) * low) : kInfinity};
}
// |sqrt(w~) - sqrt(w)| = |w~ - w| / (sqrt(w~) + sqrt(w)) <= e / sqrt(w), and <= sqrt(e).
Bounded square_root(Bounded w) {
  const double root = std::sqrt(std::max(w.x, 0.0));
  return {root, std::min(root > 0 ? w.e / root : kInfinity, std::sqrt(w.e))};
}
// tanh from libm: the argument's error through tanh' = sech^2 (largest at the smallest |z|
// within the error), then libm's own.
Bounded hyperbolic_tangent(Bounded z) {
  const double t = std::tanh(z.x);
  const double sech = 1 / std::cosh(std::max(0.0, std::abs(z.x) - z.e));
  const double e = std::min(sech * sech * z.e, 2.0);
  return {t, e + kLibmUnit * (std::abs(t) + e) + kFp32Underflow};
}

// ---------------------------------------------------------------------------------------------
// Tensor access

// The flat position numpy broadcasting reads in a tensor of `shape` for `index` of the broadcast
// shape (dims aligned at the right, size-1 dims read 0).
int64_t broadcast_flat_index(const std::vector<int64_t>& index, const std::vector<int64_t>& shape) {
  const size_t offset = index.size() - shape.size();
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + (shape[d] == 1 ? 0 : index[offset + d]);
  return flat;
}

int64_t product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i) n *= dims[i];
  return n;
}

bool is_float_op(const Graph& graph, const Op& op) {
  for (int in : op.inputs) {
    if (!is_float(graph.values[static_cast<size_t>(in)].dtype)) return false;
  }
  return is_float(graph.values[static_cast<size_t>(op.output)].dtype);
}

// The error bound of an op's input as the op reads it (zeros without bounds): a bf16 result's
// stored interval, else the value's own bound (a result kept in fp32 is already rounded in it).
std::vector<double> read_bound(const Fp64Tensor& t, size_t count) {
  if (!t.stored_bound.empty()) return t.stored_bound;
  if (t.bound.empty()) return std::vector<double>(count, 0.0);
  return t.bound;
}

// The bf16 values an fp32 result within `bound` of `x` can be stored as: from rnd(x - bound) to
// rnd(x + bound), rounding being monotone (a store rounds to fp32 and then to bf16,
// store_element, which is monotone as well). The ends are widened by 2^-20 of the bound for the
// double evaluation's own rounding. Infinite ends when nothing is known.
struct Bf16Interval {
  double low, high;
};
Bf16Interval bf16_interval(double x, double bound) {
  auto bf16 = [](double v) {
    uint8_t bytes[2];
    store_element(DType::BF16, bytes, v);
    return load_element(DType::BF16, bytes);
  };
  const double reach = bound * (1 + 0x1p-20);
  const Bf16Interval i{bf16(x - reach), bf16(x + reach)};
  if (!std::isfinite(i.low) || !std::isfinite(i.high)) return {-kInfinity, kInfinity};
  return i;
}

// Fills `stored` and `stored_bound` of a result rounded to bf16 (see Fp64Tensor).
void bf16_stored_interval(Fp64Tensor& t) {
  t.stored.resize(t.values.size());
  t.stored_bound.resize(t.values.size());
  for (size_t i = 0; i < t.values.size(); ++i) {
    const Bf16Interval in = bf16_interval(t.values[i], t.bound[i]);
    if (std::isfinite(in.low)) {
      t.stored[i] = in.low == in.high ? in.low : in.low + (in.high - in.low) / 2;
      t.stored_bound[i] = (in.high - in.low) / 2;
    } else {
      t.stored[i] = t.values[i];
      t.stored_bound[i] = kInfinity;
    }
  }
}

struct Evaluation {
  const Graph& graph;
  const Fp64Options& options;
  std::vector<Fp64Tensor>& tensors;
  const Op* op = nullptr;

  const Value& value(size_t k) const { return graph.values[static_cast<size_t>(op->inputs[k])]; }
  const Value& out_value() const { return graph.values[static_cast<size_t>(op->output)]; }
  // The input as read: a bf16 result as stored (with bounds), else its value.
  const std::vector<double>& in(size_t k) const {
    const Fp64Tensor& t = tensors[static_cast<size_t>(op->inputs[k])];
    return t.stored.empty() ? t.values : t.stored;
  }
  // The input's bound as read (zeros without bounds).
  std::vector<double> in_bound(size_t k) const {
    return read_bound(tensors[static_cast<size_t>(op->inputs[k])], in(k).size());
  }
  bool exact_input(size_t k) const {
    const auto e = in_bound(k);
    return std::all_of(e.begin(), e.end(), [](double v) { return v == 0; });
  }
  bool bounds() const { return options.bounds; }
};

// ---------------------------------------------------------------------------------------------
// GEMMs: y = sum of products (+ bias). Bound, n the number of terms (K, + 1 with a bias):
//   sum_k (e_a |b| + |a| e_b + e_a e_b)  +  gamma_n (sum_k |a b| + |bias| + that)  +  K 2^-150
// (the operands' errors carried through; the fp32 sum in any order; a product that underflows).
// gamma_n rather than gamma_(n-1) also covers fp32 operands, whose products round.

struct Accumulator {
  double sum = 0, magnitude = 0, carried = 0;
  int64_t terms = 0;
  void add(double a, double b, double ea, double eb) {
    sum += a * b;
    magnitude += std::abs(a * b);
    carried += std::abs(a) * eb + ea * std::abs(b) + ea * eb;
  }
  // Contiguous operands: the same, with the sums the caller needs only (the magnitudes with
  // bounds, the carried errors when an operand has any).
  void add_all(const double* a, const double* b, const double* ea, const double* eb, size_t n, bool bounds, bool carry) {
    if (!bounds) {
      for (size_t k = 0; k < n; ++k) sum += a[k] * b[k];
    } else if (!carry) {
      for (size_t k = 0; k < n; ++k) {
        sum += a[k] * b[k];
        magnitude += std::abs(a[k] * b[k]);
      }
    } else {
      for (size_t k = 0; k < n; ++k) add(a[k], b[k], ea[k], eb[k]);
    }
  }
  double bound() const {
    return carried + gamma(terms) * (magnitude + carried) + static_cast<double>(terms) * kFp32Underflow;
  }
};

bool any_error(const std::vector<double>& e) {
  return std::any_of(e.begin(), e.end(), [](double v) { return v != 0; });
}

void run_conv(Evaluation& ev, Fp64Tensor& out) {
  const ConvGeometry g = conv_geometry(ev.graph, *ev.op);
  const bool one_d = g.in_size.size() == 1;
  const size_t wd = one_d ? 0 : 1;
  const int64_t height = one_d ? 1 : g.in_size[0], width = g.in_size[wd];
  const int64_t kernel_h = one_d ? 1 : g.kernel[0], kernel_w = g.kernel[wd];
  const int64_t stride_h = one_d ? 1 : g.strides[0], stride_w = g.strides[wd];
  const int64_t dilation_h = one_d ? 1 : g.dilations[0], dilation_w = g.dilations[wd];
  const int64_t pad_top = one_d ? 0 : g.pads_begin[0], pad_left = g.pads_begin[wd];
  const int64_t out_h = one_d ? 1 : g.out_size[0], out_w = g.out_size[wd];
  const int64_t group_in = g.in_channels / g.groups, group_out = g.out_channels / g.groups;
  const bool has_bias = ev.op->inputs.size() > 2;
  const std::vector<double>& x = ev.in(0);
  const std::vector<double>& w = ev.in(1);
  const std::vector<double> ex = ev.in_bound(0), ew = ev.in_bound(1);
  const std::vector<double> eb = has_bias ? ev.in_bound(2) : std::vector<double>{};
  const int64_t k_size = group_in * kernel_h * kernel_w;
  const bool carry = any_error(ex) || any_error(ew);
  std::vector<double> patch(static_cast<size_t>(k_size)), patch_bound(static_cast<size_t>(k_size));
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t group = 0; group < g.groups; ++group) {
      for (int64_t oh = 0; oh < out_h; ++oh) {
        for (int64_t ow = 0; ow < out_w; ++ow) {
          // The input window in the weights' order (ci, kh, kw); padding reads 0.
          size_t p = 0;
          for (int64_t ci = 0; ci < group_in; ++ci) {
            const int64_t c = group * group_in + ci;
            for (int64_t kh = 0; kh < kernel_h; ++kh) {
              const int64_t ih = oh * stride_h + kh * dilation_h - pad_top;
              for (int64_t kw = 0; kw < kernel_w; ++kw, ++p) {
                const int64_t iw = ow * stride_w + kw * dilation_w - pad_left;
                const bool inside = ih >= 0 && ih < height && iw >= 0 && iw < width;
                const size_t xi = inside ? static_cast<size_t>(((n * g.in_channels + c) * height + ih) * width + iw) : 0;
                patch[p] = inside ? x[xi] : 0.0;
                patch_bound[p] = inside ? ex[xi] : 0.0;
              }
            }
          }
          for (int64_t o = 0; o < group_out; ++o) {
            const int64_t oc = group * group_out + o;
            const size_t w0 = static_cast<size_t>(oc * k_size);
            Accumulator acc;
            acc.terms = k_size + (has_bias ? 1 : 0);
            acc.add_all(patch.data(), &w[w0], patch_bound.data(), &ew[w0], static_cast<size_t>(k_size), ev.bounds(), carry);
            if (has_bias) acc.add(ev.in(2)[static_cast<size_t>(oc)], 1.0, eb[static_cast<size_t>(oc)], 0.0);
            const size_t yi = static_cast<size_t>(((n * g.out_channels + oc) * out_h + oh) * out_w + ow);
            out.values[yi] = acc.sum;
            if (ev.bounds()) out.bound[yi] = acc.bound();
          }
        }
      }
    }
  }
}

void run_linear(Evaluation& ev, Fp64Tensor& out) {
  const Value& w = ev.value(1);
  const int64_t k_size = w.shape[1], n_size = w.shape[0];
  const int64_t rows = ev.value(0).element_count() / k_size;
  const bool has_bias = ev.op->inputs.size() > 2;
  const std::vector<double>& x = ev.in(0);
  const std::vector<double>& wv = ev.in(1);
  const std::vector<double> ex = ev.in_bound(0), ew = ev.in_bound(1);
  const std::vector<double> eb = has_bias ? ev.in_bound(2) : std::vector<double>{};
  const bool carry = any_error(ex) || any_error(ew);
  for (int64_t r = 0; r < rows; ++r) {
    const size_t x0 = static_cast<size_t>(r * k_size);
    for (int64_t n = 0; n < n_size; ++n) {
      const size_t w0 = static_cast<size_t>(n * k_size);
      Accumulator acc;
      acc.terms = k_size + (has_bias ? 1 : 0);
      acc.add_all(&x[x0], &wv[w0], &ex[x0], &ew[w0], static_cast<size_t>(k_size), ev.bounds(), carry);
      if (has_bias) acc.add(ev.in(2)[static_cast<size_t>(n)], 1.0, eb[static_cast<size_t>(n)], 0.0);
      const size_t yi = static_cast<size_t>(r * n_size + n);
      out.values[yi] = acc.sum;
      if (ev.bounds()) out.bound[yi] = acc.bound();
    }
  }
}

void run_matmul(Evaluation& ev, Fp64Tensor& out) {
  const std::vector<int64_t>& a_shape = ev.value(0).shape;
  const std::vector<int64_t>& b_shape = ev.value(1).shape;
  const std::vector<int64_t>& y_shape = ev.out_value().shape;
  const int64_t m_size = a_shape[a_shape.size() - 2], k_size = a_shape.back(), n_size = b_shape.back();
  const std::vector<int64_t> a_batch(a_shape.begin(), a_shape.end() - 2), b_batch(b_shape.begin(), b_shape.end() - 2);
  const std::vector<int64_t> y_batch(y_shape.begin(), y_shape.end() - 2);
  const std::vector<double>& a = ev.in(0);
  const std::vector<double>& b = ev.in(1);
  const std::vector<double> ea = ev.in_bound(0), eb = ev.in_bound(1);
  const int64_t batches = product(y_batch, 0, y_batch.size());
  for (int64_t batch = 0; batch < batches; ++batch) {
    const std::vector<int64_t> index = unravel(batch, y_batch);
    const int64_t a_base = broadcast_flat_index(index, a_batch) * m_size * k_size;
    const int64_t b_base = broadcast_flat_index(index, b_batch) * k_size * n_size;
    for (int64_t m = 0; m < m_size; ++m) {
      for (int64_t n = 0; n < n_size; ++n) {
        Accumulator acc;
        acc.terms = k_size;
        for (int64_t k = 0; k < k_size; ++k) {
          const size_t ai = static_cast<size_t>(a_base + m * k_size + k), bi = static_cast<size_t>(b_base + k * n_size + n);
          acc.add(a[ai], b[bi], ea[ai], eb[bi]);
        }
        const size_t yi = static_cast<size_t>((batch * m_size + m) * n_size + n);
        out.values[yi] = acc.sum;
        if (ev.bounds()) out.bound[yi] = acc.bound();
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Elementwise ops: one rounding each (gelu: its fp32 formula step by step).

void store(Fp64Tensor& out, size_t i, Bounded v, bool bounds) {
  out.values[i] = v.x;
  if (bounds) out.bound[i] = v.e;
}

void run_binary(Evaluation& ev, Fp64Tensor& out) {
  const std::vector<int64_t>& y_shape = ev.out_value().shape;
  const std::vector<double> ea = ev.in_bound(0), eb = ev.in_bound(1);
  const bool is_add = ev.op->kind == OpKind::Add;
  for (size_t i = 0; i < out.values.size(); ++i) {
    const std::vector<int64_t> index = unravel(static_cast<int64_t>(i), y_shape);
    const size_t ai = static_cast<size_t>(broadcast_flat_index(index, ev.value(0).shape));
    const size_t bi = static_cast<size_t>(broadcast_flat_index(index, ev.value(1).shape));
    const Bounded a{ev.in(0)[ai], ea[ai]}, b{ev.in(1)[bi], eb[bi]};
    store(out, i, rounded(is_add ? a + b : a * b), ev.bounds());
  }
}

// gelu_tanh as the fp32 code evaluates it: 0.5f * x * (1.0f + tanh(k * (x + c * x * x * x))).
Bounded gelu_bounded(Bounded x) {
  const Bounded cube = rounded(rounded(x * x) * x);
  const Bounded inner = rounded(x + rounded(constant(0.044715) * cube));
  const Bounded t = hyperbolic_tangent(rounded(constant(0.7978845608) * inner));
  const Bounded half_x = {0.5 * x.x, 0.5 * x.e + kFp32Underflow};
  return rounded(half_x * rounded(Bounded{1.0, 0.0} + t));
}

void run_unary(Evaluation& ev, Fp64Tensor& out) {
  const std::vector<double>& x = ev.in(0);
  const std::vector<double> e = ev.in_bound(0);
  const DType type = ev.out_value().dtype;
  // clip's limits are fp32 constants: exact when representable in the output type.
  const double low = ev.op->attr_float("min", -kInfinity), high = ev.op->attr_float("max", kInfinity);
  auto held = [&](double limit) {
    HostTensor t{type, {1}, std::vector<uint8_t>(static_cast<size_t>(dtype_size(type)))};
    store_element(type, t.bytes.data(), limit);
    return std::isinf(limit) || load_element(type, t.bytes.data()) == limit;
  };
  switch (ev.op->kind) {
    case OpKind::Relu:
      out.rounds = false;
      // An input certainly below zero gives exactly 0; elsewhere relu passes its error on at most.
      for (size_t i = 0; i < x.size(); ++i) store(out, i, {std::max(x[i], 0.0), x[i] + e[i] <= 0 ? 0.0 : e[i]}, ev.bounds());
      return;
    case OpKind::Clip: {
      out.rounds = !(held(low) && held(high));
      const double limit_error = std::max(std::isinf(low) ? 0 : kFp32Unit * std::abs(low), std::isinf(high) ? 0 : kFp32Unit * std::abs(high));
      for (size_t i = 0; i < x.size(); ++i) {
        // An input certainly beyond a limit gives the limit, with only the limit's own error.
        const bool limited = x[i] + e[i] <= low || x[i] - e[i] >= high;
        const double own = out.rounds ? limit_error : 0.0;
        store(out, i, {std::min(std::max(x[i], low), high), limited ? own : std::max(e[i], own)}, ev.bounds());
      }
      return;
    }
    default:
      for (size_t i = 0; i < x.size(); ++i) {
        const double v = x[i];
        const double g = 0.5 * v * (1.0 + std::tanh(0.7978845608 * (v + 0.044715 * v * v * v)));
        store(out, i, {g, ev.bounds() ? gelu_bounded({v, e[i]}).e : 0.0}, ev.bounds());
      }
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Pools: max selects (no rounding; its error is the largest of the window's); the averages sum
// (gamma of the terms) and scale by 1 / points (two roundings, as x * (1/n) on the VPU).

void run_pool(Evaluation& ev, Fp64Tensor& out) {
  const std::vector<int64_t>& shape = ev.value(0).shape;
  const bool one_d = shape.size() == 3;
  const int64_t batch = shape[0], channels = shape[1], height = one_d ? 1 : shape[2], width = shape.back();
  int64_t kernel_h = height, kernel_w = width, stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0, out_h = 1, out_w = 1;
  if (ev.op->kind != OpKind::GlobalAvgPool) {
    const ConvGeometry g = conv_geometry(ev.graph, *ev.op);
    const size_t wd = one_d ? 0 : 1;
    kernel_h = one_d ? 1 : g.kernel[0];
    kernel_w = g.kernel[wd];
    stride_h = one_d ? 1 : g.strides[0];
    stride_w = g.strides[wd];
    pad_top = one_d ? 0 : g.pads_begin[0];
    pad_left = g.pads_begin[wd];
    out_h = one_d ? 1 : g.out_size[0];
    out_w = g.out_size[wd];
  }
  const bool is_max = ev.op->kind == OpKind::MaxPool;
  out.rounds = !is_max;
  const std::vector<double>& x = ev.in(0);
  const std::vector<double> e = ev.in_bound(0);
  const Bounded scale = constant(1.0 / static_cast<double>(kernel_h * kernel_w));
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t oh = 0; oh < out_h; ++oh) {
        for (int64_t ow = 0; ow < out_w; ++ow) {
          double best = -kInfinity, best_error = 0, sum = 0, magnitude = 0, carried = 0;
          int64_t terms = 0;
          for (int64_t kh = 0; kh < kernel_h; ++kh) {
            const int64_t ih = oh * stride_h + kh - pad_top;
            if (ih < 0 || ih >= height) continue;
            for (int64_t kw = 0; kw < kernel_w; ++kw) {
              const int64_t iw = ow * stride_w + kw - pad_left;
              if (iw < 0 || iw >= width) continue;
              const size_t xi = static_cast<size_t>(((n * channels + c) * height + ih) * width + iw);
              best = std::max(best, x[xi]);
              best_error = std::max(best_error, e[xi]);
              sum += x[xi];
              magnitude += std::abs(x[xi]);
              carried += e[xi];
              ++terms;
            }
          }
          const size_t yi = static_cast<size_t>(((n * channels + c) * out_h + oh) * out_w + ow);
          if (is_max) {
            store(out, yi, {best, best_error}, ev.bounds());
          } else {
            const Bounded total{sum, carried + gamma(terms - 1) * (magnitude + carried)};
            store(out, yi, rounded(total * scale), ev.bounds());
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Data movement: values and bounds move together.

void run_movement(Evaluation& ev, Fp64Tensor& out) {
  out.rounds = false;
  const std::vector<int64_t>& y_shape = ev.out_value().shape;
  auto move = [&](size_t to, size_t k, size_t from, const std::vector<double>& e) {
    out.values[to] = ev.in(k)[from];
    if (ev.bounds()) out.bound[to] = e[from];
  };
  if (ev.op->kind == OpKind::Flatten || ev.op->kind == OpKind::Reshape) {
    const auto e = ev.in_bound(0);
    for (size_t i = 0; i < out.values.size(); ++i) move(i, 0, i, e);
  } else if (ev.op->kind == OpKind::Transpose) {
    const auto e = ev.in_bound(0);
    const std::vector<int64_t>& x_shape = ev.value(0).shape;
    const std::vector<int64_t> perm = ev.op->attr_ints("perm", {});
    for (size_t i = 0; i < out.values.size(); ++i) {
      const std::vector<int64_t> y_index = unravel(static_cast<int64_t>(i), y_shape);
      int64_t flat = 0;
      std::vector<int64_t> x_index(x_shape.size());
      for (size_t k = 0; k < perm.size(); ++k) x_index[static_cast<size_t>(perm[k])] = y_index[k];
      for (size_t d = 0; d < x_shape.size(); ++d) flat = flat * x_shape[d] + x_index[d];
      move(i, 0, static_cast<size_t>(flat), e);
    }
  } else {  // concat
    int64_t axis = ev.op->attr_int("axis", 0);
    if (axis < 0) axis += static_cast<int64_t>(y_shape.size());
    const size_t a = static_cast<size_t>(axis);
    const int64_t outer = product(y_shape, 0, a), inner = product(y_shape, a + 1, y_shape.size());
    int64_t offset = 0;
    for (size_t k = 0; k < ev.op->inputs.size(); ++k) {
      const auto e = ev.in_bound(k);
      const int64_t length = ev.value(k).shape[a];
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t j = 0; j < length * inner; ++j) {
          move(static_cast<size_t>((o * y_shape[a] + offset) * inner + j), k, static_cast<size_t>(o * length * inner + j), e);
        }
      }
      offset += length;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// softmax along an axis. For a row x with bounds e_j, the computed x_j - m' (m' the computed
// max, or in flash attention a running one) lies within R_j = |x_j - max| + e_j + max_l e_l of 0
// and is off by lambda_j = e_j + u R_j; with exp's own error every term e_j = exp(x_j - m') is
// off by a factor exp(lambda_j + l(u_f)) at most, l(d) = -log(1 - d). The row sum is then off by
// the relative error s = sum_l p_l expm1(lambda_l + l(u_f)) and its own gamma_(n-1), and the
// normalization (x / s or x * (1/s)) adds gamma_2, so each probability is within a factor
// exp(L_j) of the exact one, L_j = lambda_j + l(u_f) + l(s) + l(gamma_(n-1)) + l(gamma_2). The
// bound is p_j expm1(L_j), plus 2^-149 for an exp that underflows.

// The largest log of the factor a sum of positive terms, each off by a factor exp(term_error),
// can be off by before its own rounding: terms weighted by their share p of the sum.
double weighted_log_error(const std::vector<double>& p, const std::vector<double>& term_error, const std::vector<bool>& used) {
  double relative = 0;
  for (size_t j = 0; j < p.size(); ++j) {
    if (used[j] && p[j] > 0) relative += p[j] * std::expm1(term_error[j]);
  }
  return log_error(relative);
}

void run_softmax(Evaluation& ev, Fp64Tensor& out) {
  const std::vector<int64_t>& shape = ev.value(0).shape;
  int64_t axis = ev.op->attr_int("axis", -1);
  if (axis < 0) axis += static_cast<int64_t>(shape.size());
  const size_t a = static_cast<size_t>(axis);
  const int64_t outer = product(shape, 0, a), length = shape[a], inner = product(shape, a + 1, shape.size());
  const std::vector<double>& x = ev.in(0);
  const std::vector<double> e = ev.in_bound(0);
  const size_t n = static_cast<size_t>(length);
  std::vector<double> p(n), term_error(n);
  const std::vector<bool> all(n, true);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      auto at = [&](size_t j) { return static_cast<size_t>((o * length + static_cast<int64_t>(j)) * inner + in); };
      double m = -kInfinity, largest_error = 0, sum = 0;
      for (size_t j = 0; j < n; ++j) {
        m = std::max(m, x[at(j)]);
        largest_error = std::max(largest_error, e[at(j)]);
      }
      for (size_t j = 0; j < n; ++j) {
        p[j] = std::exp(x[at(j)] - m);
        sum += p[j];
        const double reach = std::abs(x[at(j)] - m) + e[at(j)] + largest_error;
        term_error[j] = e[at(j)] + kFp32Unit * reach + log_error(kLibmUnit);
      }
      for (double& v : p) v /= sum;
      const double shared = weighted_log_error(p, term_error, all) + log_error(gamma(length - 1)) + log_error(gamma(2));
      for (size_t j = 0; j < n; ++j) {
        store(out, at(j), {p[j], p[j] * std::expm1(term_error[j] + shared) + 0x1p-149}, ev.bounds());
      }
    }
  }
}

// layernorm over the last dim, step by step as the fp32 code computes it: mean = sum * (1/D),
// c = x - mean, variance = sum(c * c) * (1/D), r = 1 / sqrt(variance + epsilon),
// y = c * r * gamma + beta (the reference's divisions by D are covered by the same bounds).

void run_layernorm(Evaluation& ev, Fp64Tensor& out) {
  const int64_t length = ev.value(0).shape.back();
  const int64_t rows = ev.value(0).element_count() / std::max<int64_t>(length, 1);
  const std::vector<double>& x = ev.in(0);
  const std::vector<double>& gamma_values = ev.in(1);
  const std::vector<double>& beta_values = ev.in(2);
  const std::vector<double> e = ev.in_bound(0), eg = ev.in_bound(1), eb = ev.in_bound(2);
  const double epsilon = ev.op->attr_float("epsilon", 1e-5);
  const Bounded inverse_length = constant(1.0 / static_cast<double>(length));
  auto sum_of = [&](const std::vector<Bounded>& terms) {
    Bounded s;
    double magnitude = 0;
    for (const Bounded& t : terms) {
      s = s + t;
      magnitude += std::abs(t.x);
    }
    s.e += gamma(static_cast<int64_t>(terms.size()) - 1) * (magnitude + s.e);
    return s;
  };
  std::vector<Bounded> row(static_cast<size_t>(length)), centered(row.size()), squares(row.size());
  for (int64_t r = 0; r < rows; ++r) {
    const size_t base = static_cast<size_t>(r * length);
    for (size_t i = 0; i < row.size(); ++i) row[i] = {x[base + i], e[base + i]};
    const Bounded mean = rounded(sum_of(row) * inverse_length);
    for (size_t i = 0; i < row.size(); ++i) {
      centered[i] = rounded(row[i] - mean);
      squares[i] = rounded(centered[i] * centered[i]);
    }
    const Bounded variance = rounded(sum_of(squares) * inverse_length);
    const Bounded inverse_deviation = rounded(reciprocal(rounded(square_root(rounded(variance + constant(epsilon))))));
    for (size_t i = 0; i < row.size(); ++i) {
      const Bounded normalized = rounded(centered[i] * inverse_deviation);
      const Bounded y = rounded(rounded(normalized * Bounded{gamma_values[i], eg[i]}) + Bounded{beta_values[i], eb[i]});
      store(out, base + i, y, ev.bounds());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// attention, per batch entry, head and query row (q, k, v and the mask as given, exact):
//   scores s_j = fl(fl(q . k_j) * scale) (+ mask), bounded as a GEMM of D terms, then the
//   constant and two roundings; then softmax over the visible keys as above, where flash
//   attention with B key blocks rescales each term up to B - 1 times (each rescaling adds
//   exp's and a multiply's error, and their arguments together at most u R_j, as they
//   telescope), and the probabilities are rounded to bf16 for P . v (2^-8). Each weight p_j of
//   v_j is then within a factor exp(L_j) of the exact one, and
//   |y~ - y| <= sum_j p_j |v_j| (expm1(L_j) + gamma_(S + B + 1) (1 + expm1(L_j))) + 2^-149 |v_j|
//   (the products and the sum of P . v, through the rescaled running output).

void run_attention(Evaluation& ev, Fp64Tensor& out) {
  const std::vector<int64_t>& q_shape = ev.value(0).shape;
  const std::vector<int64_t>& k_shape = ev.value(1).shape;
  const std::vector<int64_t>& v_shape = ev.value(2).shape;
  const Op& op = *ev.op;
  const int64_t heads = op.attr_int("heads", 1), kv_heads = op.attr_int("kv_heads", heads);
  const int64_t batch = q_shape[0], seq_q = q_shape[1], seq_k = k_shape[1];
  const int64_t head_dim = q_shape[2] / heads, value_dim = v_shape[2] / kv_heads, group = heads / kv_heads;
  const bool causal = op.attr_int("causal", 0) != 0;
  const int64_t window = op.attr_int("window", 0);
  const double scale = op.attr_float("scale", 1.0 / std::sqrt(static_cast<double>(head_dim)));
  const bool has_mask = op.inputs.size() > 3;
  for (size_t k = 0; k < op.inputs.size(); ++k) {
    TPUSIM_CHECK(!ev.bounds() || ev.exact_input(k), "attention bounds are derived for exact (stored) inputs only");
  }
  auto blocks = ev.options.attention_key_blocks.find(op.name);
  const int64_t key_blocks = blocks == ev.options.attention_key_blocks.end() ? 1 : std::max<int64_t>(1, blocks->second);
  const double per_rescaling = log_error(kLibmUnit) + log_error(kFp32Unit);
  const std::vector<double>& q = ev.in(0);
  const std::vector<double>& kt = ev.in(1);
  const std::vector<double>& v = ev.in(2);
  const int64_t y_width = heads * value_dim;
  const size_t n = static_cast<size_t>(seq_k);
  std::vector<double> score(n), score_error(n), p(n), term_error(n), y(static_cast<size_t>(value_dim)),
      error(y.size());
  std::vector<bool> visible(n);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kv = h / group;
      for (int64_t i = 0; i < seq_q; ++i) {
        // The causal/window mask leaves one run of keys [first, last].
        const size_t first = static_cast<size_t>(window > 0 ? std::max<int64_t>(0, i - window + 1) : 0);
        const size_t last = static_cast<size_t>(causal ? std::min<int64_t>(seq_k - 1, i) : seq_k - 1);
        double m = -kInfinity, largest_error = 0;
        int64_t count = 0;
        const double* qi = &q[static_cast<size_t>((b * seq_q + i) * q_shape[2] + h * head_dim)];
        for (size_t j = first; j <= last && first < n; ++j) {
          const int64_t key = static_cast<int64_t>(j);
          const double* kj = &kt[static_cast<size_t>((b * seq_k + key) * k_shape[2] + kv * head_dim)];
          Accumulator dot;
          dot.terms = head_dim;
          dot.add_all(qi, kj, nullptr, nullptr, static_cast<size_t>(head_dim), true, false);
          Bounded s = rounded(Bounded{dot.sum, dot.bound()} * constant(scale));
          if (has_mask) {
            const size_t mi = static_cast<size_t>(broadcast_flat_index({b, h, i, key}, ev.value(3).shape));
            s = rounded(s + Bounded{ev.in(3)[mi], 0.0});
          }
          visible[j] = s.x != -kInfinity;  // a -inf in the mask input hides the key
          if (!visible[j]) continue;
          score[j] = s.x;
          score_error[j] = s.e;
          m = std::max(m, s.x);
          largest_error = std::max(largest_error, s.e);
          ++count;
        }
        const size_t row = static_cast<size_t>((b * seq_q + i) * y_width + h * value_dim);
        std::fill(y.begin(), y.end(), 0.0);
        std::fill(error.begin(), error.end(), 0.0);
        if (count > 0) {  // (every key masked: the output is 0)
          double sum = 0, relative = 0;
          for (size_t j = first; j <= last; ++j) {
            if (!visible[j]) continue;
            p[j] = std::exp(score[j] - m);
            sum += p[j];
            const double reach = (m - score[j]) + score_error[j] + largest_error;
            // The argument of its exp and of the rescalings after it; exp; the rescalings.
            term_error[j] = score_error[j] + 2 * kFp32Unit * reach + log_error(kLibmUnit) +
                            static_cast<double>(key_blocks - 1) * per_rescaling;
          }
          for (size_t j = first; j <= last; ++j) {
            if (!visible[j]) continue;
            p[j] /= sum;
            if (p[j] > 0) relative += p[j] * std::expm1(term_error[j]);
          }
          const double shared = log_error(relative) + log_error(gamma(count - 1 + key_blocks)) + log_error(gamma(2));
          const double sum_error = gamma(count + key_blocks + 1);
          for (size_t j = first; j <= last; ++j) {
            if (!visible[j]) continue;
            const double* vj = &v[static_cast<size_t>((b * seq_k + static_cast<int64_t>(j)) * v_shape[2] + kv * value_dim)];
            for (size_t e = 0; e < y.size(); ++e) y[e] += p[j] * vj[e];
            if (!ev.bounds()) continue;
            const double f = std::expm1(term_error[j] + log_error(kBf16Unit) + shared);
            const double weight = p[j] * (f + sum_error * (1 + f)) + 0x1p-149;
            for (size_t e = 0; e < y.size(); ++e) error[e] += weight * std::abs(vj[e]);
          }
        }
        for (size_t e = 0; e < y.size(); ++e) store(out, row + e, {y[e], error[e]}, ev.bounds());
      }
    }
  }
}

void run_op(Evaluation& ev, Fp64Tensor& out) {
  switch (ev.op->kind) {
    case OpKind::Conv: return run_conv(ev, out);
    case OpKind::Linear: return run_linear(ev, out);
    case OpKind::MatMul: return run_matmul(ev, out);
    case OpKind::Add:
    case OpKind::Mul: return run_binary(ev, out);
    case OpKind::Relu:
    case OpKind::Clip:
    case OpKind::Gelu: return run_unary(ev, out);
    case OpKind::MaxPool:
    case OpKind::AvgPool:
    case OpKind::GlobalAvgPool: return run_pool(ev, out);
    case OpKind::Flatten:
    case OpKind::Reshape:
    case OpKind::Transpose:
    case OpKind::Concat: return run_movement(ev, out);
    case OpKind::Softmax: return run_softmax(ev, out);
    case OpKind::LayerNorm: return run_layernorm(ev, out);
    case OpKind::Attention: return run_attention(ev, out);
  }
  internal_error(__FILE__, __LINE__, "unknown op kind");
}

// Whether the op's result is rounded to its type (the end-to-end bound counts it).
bool op_rounds(const Op& op) {
  switch (op.kind) {
    case OpKind::Relu:
    case OpKind::Clip:
    case OpKind::MaxPool:
    case OpKind::Flatten:
    case OpKind::Reshape:
    case OpKind::Transpose:
    case OpKind::Concat: return false;
    default: return true;
  }
}

// For an op whose result is stored as fp32, the fp32 roundings one element of it goes through,
// n: its sums' terms (the reduction length; both sums of layernorm and attention) and 16 for its
// other steps (gelu's formula, exp's and tanh's 8 units, a normalization).
int64_t fp32_roundings(const Graph& graph, const Op& op) {
  const auto shape = [&](size_t k) -> const std::vector<int64_t>& {
    return graph.values[static_cast<size_t>(op.inputs[k])].shape;
  };
  constexpr int64_t kSteps = 16;
  const int64_t bias = op.inputs.size() > 2 ? 1 : 0;
  switch (op.kind) {
    case OpKind::Conv: return product(shape(1), 1, shape(1).size()) + bias;
    case OpKind::Linear: return shape(1)[1] + bias;
    case OpKind::MatMul: return shape(0).back();
    case OpKind::Add:
    case OpKind::Mul: return 1;
    case OpKind::Gelu: return kSteps;
    case OpKind::AvgPool: return conv_geometry(graph, op).kernel_points() + 2;
    case OpKind::GlobalAvgPool: return product(shape(0), 2, shape(0).size()) + 2;
    case OpKind::Softmax: {
      int64_t axis = op.attr_int("axis", -1);
      if (axis < 0) axis += static_cast<int64_t>(shape(0).size());
      return shape(0)[static_cast<size_t>(axis)] + kSteps;
    }
    case OpKind::LayerNorm: return 2 * shape(0).back() + kSteps;
    case OpKind::Attention: return shape(0)[2] / op.attr_int("heads", 1) + shape(1)[1] + kSteps;
    default: return 0;
  }
}

}  // namespace

bool is_float_graph(const Graph& graph) {
  return std::all_of(graph.ops.begin(), graph.ops.end(), [&](const Op& op) { return is_float_op(graph, op); });
}

std::vector<Fp64Tensor> run_reference_fp64(const Graph& graph, const std::vector<std::optional<HostTensor>>& given,
                                           const Fp64Options& options) {
  std::vector<Fp64Tensor> tensors(graph.values.size());
  for (size_t i = 0; i < graph.values.size(); ++i) {
    const Value& v = graph.values[i];
    if (v.kind == ValueKind::Activation) continue;
    TPUSIM_CHECK(i < given.size() && given[i], "no data for '" + v.name + "'");
    const HostTensor& t = *given[i];
    Fp64Tensor& x = tensors[i];
    x.rounds = false;
    x.values.resize(static_cast<size_t>(t.element_count()));
    for (size_t e = 0; e < x.values.size(); ++e) x.values[e] = load_element(t.dtype, t.bytes.data() + e * static_cast<size_t>(dtype_size(t.dtype)));
    if (options.bounds) x.bound.assign(x.values.size(), 0.0);
  }
  // Values are released after their last reader, graph outputs kept.
  std::vector<size_t> last_use(graph.values.size(), SIZE_MAX);
  for (size_t o = 0; o < graph.ops.size(); ++o) {
    for (int in : graph.ops[o].inputs) last_use[static_cast<size_t>(in)] = o;
  }
  for (int v : graph.outputs) last_use[static_cast<size_t>(v)] = SIZE_MAX - 1;
  for (size_t o = 0; o < graph.ops.size(); ++o) {
    const Op& op = graph.ops[o];
    if (!is_float_op(graph, op)) continue;  // (no float op reads an integer value)
    Fp64Tensor out;
    const size_t count = static_cast<size_t>(graph.values[static_cast<size_t>(op.output)].element_count());
    out.values.assign(count, 0.0);
    if (options.bounds) out.bound.assign(count, 0.0);
    Evaluation ev{graph, options, tensors, &op};
    run_op(ev, out);
    if (options.bounds && out.rounds && graph.values[static_cast<size_t>(op.output)].dtype == DType::BF16) {
      bf16_stored_interval(out);
    }
    tensors[static_cast<size_t>(op.output)] = std::move(out);
    for (int in : op.inputs) {
      if (last_use[static_cast<size_t>(in)] == o) tensors[static_cast<size_t>(in)] = Fp64Tensor{};
    }
  }
  return tensors;
}

std::vector<double> float_tolerance(const Fp64Tensor& exact, DType type) {
  TPUSIM_CHECK(exact.bound.size() == exact.values.size(), "a float tolerance needs the bounds");
  constexpr double kDoubleSlack = 1 + 0x1p-20;  // the double evaluation's own rounding
  std::vector<double> tolerance(exact.values.size());
  for (size_t i = 0; i < tolerance.size(); ++i) {
    const double b = exact.bound[i];
    if (exact.rounds && type == DType::BF16) {
      const Bf16Interval in = bf16_interval(exact.values[i], b);
      tolerance[i] = in.high - in.low;
    } else {
      tolerance[i] = 2 * b * kDoubleSlack + (exact.rounds ? 0x1p-133 : 0.0);
    }
  }
  return tolerance;
}

EndToEndBound end_to_end_bound(const Graph& graph, int value) {
  // The path with the largest bound to each value, the graph's ops being in order.
  std::vector<EndToEndBound> best(graph.values.size());
  for (const Op& op : graph.ops) {
    EndToEndBound path;
    for (int in : op.inputs) {
      const EndToEndBound& b = best[static_cast<size_t>(in)];
      if (b.relative_rms > path.relative_rms) path = b;
    }
    if (op_rounds(op)) {
      const DType type = graph.values[static_cast<size_t>(op.output)].dtype;
      // Attention's probabilities are rounded to bf16 for P . v whatever its output type.
      path.bf16_roundings += (type == DType::BF16 ? 1 : 0) + (op.kind == OpKind::Attention ? 1 : 0);
      if (type == DType::FP32) path.fp32_roundings += fp32_roundings(graph, op);
      path.relative_rms = static_cast<double>(path.bf16_roundings) * kBf16Unit +
                          static_cast<double>(path.fp32_roundings) * kFp32Unit;
    }
    best[static_cast<size_t>(op.output)] = path;
  }
  return best.at(static_cast<size_t>(value));
}

}  // namespace tpusim
