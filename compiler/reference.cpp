#include "compiler/reference.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include <fmt/format.h>

#include "compiler/quantization.h"
#include "ir/sizes.h"
#include "simulator/random_data.h"

namespace tpusim {

namespace {

// ---------------------------------------------------------------------------------------------
// Host tensor access

HostTensor zero_tensor(const Value& v) {
  HostTensor t;
  t.dtype = v.dtype;
  t.shape = v.shape;
  t.bytes.assign(static_cast<size_t>(t.element_count() * dtype_size(t.dtype)), 0);
  return t;
}

const uint8_t* element_address(const HostTensor& t, int64_t i) {
  return t.bytes.data() + i * dtype_size(t.dtype);
}

float float_at(const HostTensor& t, int64_t i) {
  return static_cast<float>(load_element(t.dtype, element_address(t, i)));
}

int64_t integer_at(const HostTensor& t, int64_t i) {
  return static_cast<int64_t>(load_element(t.dtype, element_address(t, i)));
}

// Every element as a float / an integer, for the big loops (the same values as float_at and
// integer_at, read once).
std::vector<float> floats_of(const HostTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.element_count()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = float_at(t, static_cast<int64_t>(i));
  return out;
}
std::vector<int64_t> integers_of(const HostTensor& t) {
  std::vector<int64_t> out(static_cast<size_t>(t.element_count()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = integer_at(t, static_cast<int64_t>(i));
  return out;
}

// Rounds to nearest even for bf16; exact for fp32 (the value already is one).
void store_float(HostTensor& t, int64_t i, float value) {
  store_element(t.dtype, t.bytes.data() + i * dtype_size(t.dtype), value);
}

void store_integer(HostTensor& t, int64_t i, int64_t value) {
  store_element(t.dtype, t.bytes.data() + i * dtype_size(t.dtype), static_cast<double>(value));
}

// The int32 accumulators keep the low 32 bits of the exact sum.
int64_t wrap_to_int32(int64_t value) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(value)));
}

int64_t product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i) n *= dims[i];
  return n;
}

// The flat (row-major) position of `index` in `shape`; the inverse of unravel.
int64_t ravel(const std::vector<int64_t>& index, const std::vector<int64_t>& shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + index[d];
  return flat;
}

// The flat position in a tensor of `shape` that numpy broadcasting reads for `index`, an index
// of the (larger or equal rank) broadcast shape: dims align at the right, size-1 dims read 0.
int64_t broadcast_flat_index(const std::vector<int64_t>& index, const std::vector<int64_t>& shape) {
  const size_t offset = index.size() - shape.size();
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    flat = flat * shape[d] + (shape[d] == 1 ? 0 : index[offset + d]);
  }
  return flat;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

// ---------------------------------------------------------------------------------------------
// One op's inputs and output, and the checks every op makes

[[noreturn]] void op_error(const Op& op, const std::string& message) {
  throw Error(op.location,
              fmt::format("op '{}' ({}): {}", op.name, op_info(op.kind).name, message));
}

struct OpData {
  const Graph& graph;
  const Op& op;
  const std::vector<HostTensor>& tensors;
  HostTensor& out;

  size_t input_count() const { return op.inputs.size(); }
  const Value& value(size_t k) const { return graph.values[static_cast<size_t>(op.inputs[k])]; }
  const HostTensor& in(size_t k) const { return tensors[static_cast<size_t>(op.inputs[k])]; }
  const Value& out_value() const { return graph.values[static_cast<size_t>(op.output)]; }

  [[noreturn]] void fail(const std::string& message) const { op_error(op, message); }

  // The scale of an int8 value, which must have one.
  double scale_of(const Value& v) const {
    if (!(v.scale > 0)) fail(fmt::format("int8 value '{}' has no quantization scale", v.name));
    return v.scale;
  }
  double input_scale(size_t k) const { return scale_of(value(k)); }
  double output_scale() const { return scale_of(out_value()); }

  void require_rank(size_t k, size_t low, size_t high) const {
    size_t rank = value(k).shape.size();
    if (rank < low || rank > high) {
      fail(fmt::format("input '{}' has rank {}; expected {}", value(k).name, rank,
                       low == high ? fmt::format("{}", low) : fmt::format("{} to {}", low, high)));
    }
  }

  // Data movement and max-like ops keep the int8 codes, so they need the same scale.
  void require_same_int8_scale(size_t k) const {
    if (value(k).dtype == DType::Int8 && input_scale(k) != output_scale()) {
      fail(fmt::format(
          "int8 input '{}' (scale {}) and output '{}' (scale {}) must have the same scale",
          value(k).name, value(k).scale, out_value().name, out_value().scale));
    }
  }

  void require_output_type(DType t) const {
    if (out_value().dtype != t) {
      fail(fmt::format("output '{}' is {}; this op on {} inputs produces {}", out_value().name,
                       dtype_name(out_value().dtype), dtype_name(value(0).dtype), dtype_name(t)));
    }
  }
};

// Whether an op's operands are int8 codes or floats; mixtures and int32 operands have no
// definition. `operands` counts the leading inputs that must agree (a bias is separate).
enum class Arithmetic { Int8, Float };

Arithmetic arithmetic_of(const OpData& d, size_t operands) {
  const DType first = d.value(0).dtype;
  for (size_t k = 0; k < operands && k < d.input_count(); ++k) {
    const Value& v = d.value(k);
    if (v.dtype == DType::Int32)
      d.fail(fmt::format("input '{}' is int32, which this op does not take", v.name));
    if (is_float(v.dtype) != is_float(first)) {
      d.fail(fmt::format("inputs mix {} ('{}') and {} ('{}')", dtype_name(first), d.value(0).name,
                         dtype_name(v.dtype), v.name));
    }
  }
  return is_float(first) ? Arithmetic::Float : Arithmetic::Int8;
}

void require_float(const OpData& d, size_t operands) {
  if (arithmetic_of(d, operands) != Arithmetic::Float) {
    d.fail("this op is defined on bf16 and fp32 values only (int8 has no definition here)");
  }
  if (!is_float(d.out_value().dtype)) {
    d.fail(fmt::format("output '{}' must be bf16 or fp32", d.out_value().name));
  }
}

// How the int32 accumulator of an int8 conv / linear / matmul becomes its output: requantized
// to int8 at scale s_y, or kept as the int32 accumulator.
struct AccumulatorOutput {
  bool requantized = false;
  Requantization rescale;
};

AccumulatorOutput accumulator_output(const OpData& d, double accumulator_scale) {
  if (d.out_value().dtype == DType::Int32) return {};
  d.require_output_type(DType::Int8);
  return {true, quantize_multiplier(accumulator_scale / d.output_scale())};
}

void store_accumulator(HostTensor& out, int64_t i, int64_t exact_sum,
                       const AccumulatorOutput& how) {
  int64_t acc = wrap_to_int32(exact_sum);
  if (how.requantized) {
    store_integer(out, i, requantize(acc, how.rescale));
  } else {
    store_integer(out, i, acc);
  }
}

// An optional bias input must hold one element per output channel.
void check_bias(const OpData& d, size_t k, int64_t channels, Arithmetic arithmetic) {
  if (d.input_count() <= k) return;
  const Value& b = d.value(k);
  if (b.element_count() != channels) {
    d.fail(
        fmt::format("bias '{}' has {} elements; expected {}", b.name, b.element_count(), channels));
  }
  if (arithmetic == Arithmetic::Int8 && b.dtype != DType::Int32) {
    d.fail(fmt::format("bias '{}' of an int8 op must be int32 (at scale s_x * s_w)", b.name));
  }
  if (arithmetic == Arithmetic::Float && !is_float(b.dtype)) {
    d.fail(fmt::format("bias '{}' of a float op must be bf16 or fp32", b.name));
  }
}

// ---------------------------------------------------------------------------------------------
// Sliding windows (conv and pooling), 1-D lifted to 2-D with a height of 1

struct Window2d {
  int64_t batch, channels, height, width;
  int64_t out_channels, groups;
  int64_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
  int64_t out_h, out_w;
  int64_t kernel_points() const { return kernel_h * kernel_w; }
};

Window2d window_of(const OpData& d) {
  d.require_rank(0, 3, 4);
  ConvGeometry g = conv_geometry(d.graph, d.op);
  const bool one_d = g.in_size.size() == 1;
  const size_t w = one_d ? 0 : 1;  // index of the width among the spatial dims
  Window2d s{};
  s.batch = g.batch;
  s.channels = g.in_channels;
  s.out_channels = g.out_channels;
  s.groups = g.groups;
  s.height = one_d ? 1 : g.in_size[0];
  s.width = g.in_size[w];
  s.kernel_h = one_d ? 1 : g.kernel[0];
  s.kernel_w = g.kernel[w];
  s.stride_h = one_d ? 1 : g.strides[0];
  s.stride_w = g.strides[w];
  s.dilation_h = one_d ? 1 : g.dilations[0];
  s.dilation_w = g.dilations[w];
  s.pad_top = one_d ? 0 : g.pads_begin[0];
  s.pad_left = g.pads_begin[w];
  s.out_h = one_d ? 1 : g.out_size[0];
  s.out_w = g.out_size[w];

  std::vector<int64_t> expected_out = {s.batch, s.out_channels};
  expected_out.insert(expected_out.end(), g.out_size.begin(), g.out_size.end());
  if (d.out_value().shape != expected_out) {
    d.fail(fmt::format("output '{}' has shape {}; the window arithmetic gives {}",
                       d.out_value().name, shape_string(d.out_value().shape),
                       shape_string(expected_out)));
  }
  for (int64_t v : {s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.dilation_h, s.dilation_w}) {
    if (v < 1) d.fail("kernel, strides and dilations must be at least 1");
  }
  return s;
}

// Flat positions in NCHW (NCW when height == 1).
int64_t nchw(const Window2d& s, int64_t channels, int64_t n, int64_t c, int64_t h, int64_t w) {
  return ((n * channels + c) * s.height + h) * s.width + w;
}
int64_t out_nchw(const Window2d& s, int64_t channels, int64_t n, int64_t c, int64_t oh,
                 int64_t ow) {
  return ((n * channels + c) * s.out_h + oh) * s.out_w + ow;
}

// ---------------------------------------------------------------------------------------------
// The ops

// conv: for each output (n, oc, oh, ow), with g = oc / (OC / groups):
//   acc = sum over ci < C/groups, kh, kw of x[n, g*C/groups + ci, ih, iw] * w[oc, ci, kh, kw]
//   with ih = oh*stride_h + kh*dilation_h - pad_top (iw alike); outside the input reads 0.
void run_conv(const OpData& d) {
  const Arithmetic arithmetic = arithmetic_of(d, 2);
  const Window2d s = window_of(d);
  const Value& w = d.value(1);
  if (s.groups < 1 || s.channels % s.groups != 0 || s.out_channels % s.groups != 0) {
    d.fail(fmt::format("groups {} must divide the input channels {} and output channels {}",
                       s.groups, s.channels, s.out_channels));
  }
  const int64_t group_in = s.channels / s.groups, group_out = s.out_channels / s.groups;
  const std::vector<int64_t> expected_w =
      d.value(0).shape.size() == 3
          ? std::vector<int64_t>{s.out_channels, group_in, s.kernel_w}
          : std::vector<int64_t>{s.out_channels, group_in, s.kernel_h, s.kernel_w};
  if (w.shape != expected_w) {
    d.fail(fmt::format("weights '{}' have shape {}; expected {}", w.name, shape_string(w.shape),
                       shape_string(expected_w)));
  }
  check_bias(d, 2, s.out_channels, arithmetic);
  const bool has_bias = d.input_count() > 2;
  const HostTensor& x = d.in(0);
  const HostTensor& weights = d.in(1);
  AccumulatorOutput how;
  if (arithmetic == Arithmetic::Int8) {
    how = accumulator_output(d, d.input_scale(0) * d.input_scale(1));
  } else {
    require_float(d, 2);
  }

  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t oc = 0; oc < s.out_channels; ++oc) {
      const int64_t group = oc / group_out;
      for (int64_t oh = 0; oh < s.out_h; ++oh) {
        for (int64_t ow = 0; ow < s.out_w; ++ow) {
          int64_t integer_sum = 0;
          float float_sum = 0.0f;
          for (int64_t ci = 0; ci < group_in; ++ci) {
            const int64_t c = group * group_in + ci;
            for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
              const int64_t ih = oh * s.stride_h + kh * s.dilation_h - s.pad_top;
              if (ih < 0 || ih >= s.height) continue;  // padding: contributes 0
              for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
                const int64_t iw = ow * s.stride_w + kw * s.dilation_w - s.pad_left;
                if (iw < 0 || iw >= s.width) continue;
                const int64_t xi = nchw(s, s.channels, n, c, ih, iw);
                const int64_t wi = ((oc * group_in + ci) * s.kernel_h + kh) * s.kernel_w + kw;
                if (arithmetic == Arithmetic::Int8) {
                  integer_sum += integer_at(x, xi) * integer_at(weights, wi);
                } else {
                  float_sum = float_sum + float_at(x, xi) * float_at(weights, wi);
                }
              }
            }
          }
          const int64_t yi = out_nchw(s, s.out_channels, n, oc, oh, ow);
          if (arithmetic == Arithmetic::Int8) {
            if (has_bias) integer_sum += integer_at(d.in(2), oc);
            store_accumulator(d.out, yi, integer_sum, how);
          } else {
            if (has_bias) float_sum = float_sum + float_at(d.in(2), oc);
            store_float(d.out, yi, float_sum);
          }
        }
      }
    }
  }
}

// linear: y[r, n] = sum_k x[r, k] * w[n, k] (+ b[n]), r over all leading dims of x.
void run_linear(const OpData& d) {
  const Arithmetic arithmetic = arithmetic_of(d, 2);
  d.require_rank(0, 1, 8);
  d.require_rank(1, 2, 2);
  const Value& x = d.value(0);
  const Value& w = d.value(1);
  const int64_t k_size = x.shape.back(), n_size = w.shape[0];
  if (w.shape[1] != k_size) {
    d.fail(fmt::format("weights '{}' {} do not match the input's last dim {}", w.name,
                       shape_string(w.shape), k_size));
  }
  std::vector<int64_t> expected = x.shape;
  expected.back() = n_size;
  if (d.out_value().shape != expected) {
    d.fail(fmt::format("output '{}' has shape {}; expected {}", d.out_value().name,
                       shape_string(d.out_value().shape), shape_string(expected)));
  }
  check_bias(d, 2, n_size, arithmetic);
  const bool has_bias = d.input_count() > 2;
  AccumulatorOutput how;
  if (arithmetic == Arithmetic::Int8) {
    how = accumulator_output(d, d.input_scale(0) * d.input_scale(1));
  } else {
    require_float(d, 2);
  }
  const int64_t rows = x.element_count() / k_size;
  const bool integer = arithmetic == Arithmetic::Int8;
  const std::vector<int64_t> xi = integer ? integers_of(d.in(0)) : std::vector<int64_t>{};
  const std::vector<int64_t> wi = integer ? integers_of(d.in(1)) : std::vector<int64_t>{};
  const std::vector<float> xf = integer ? std::vector<float>{} : floats_of(d.in(0));
  const std::vector<float> wf = integer ? std::vector<float>{} : floats_of(d.in(1));
  // Float sums are kept in reduction order; eight outputs at a time only interleave
  // independent sums (so the loop is not bound by one chain of additions).
  constexpr int64_t kLanes = 8;
  const int64_t blocked = integer ? 0 : n_size / kLanes * kLanes;  // outputs summed eight at a time
  std::vector<float> sums(kLanes);
  for (int64_t r = 0; r < rows; ++r) {
    const size_t x_row = static_cast<size_t>(r * k_size);
    for (int64_t n0 = 0; n0 < blocked; n0 += kLanes) {
      std::fill(sums.begin(), sums.end(), 0.0f);
      for (size_t k = 0; k < static_cast<size_t>(k_size); ++k) {
        const float xv = xf[x_row + k];
        for (int64_t lane = 0; lane < kLanes; ++lane) {
          sums[static_cast<size_t>(lane)] =
              sums[static_cast<size_t>(lane)] + xv * wf[static_cast<size_t>((n0 + lane) * k_size) + k];
        }
      }
      for (int64_t lane = 0; lane < kLanes; ++lane) {
        float float_sum = sums[static_cast<size_t>(lane)];
        if (has_bias) float_sum = float_sum + float_at(d.in(2), n0 + lane);
        store_float(d.out, r * n_size + n0 + lane, float_sum);
      }
    }
    for (int64_t n = blocked; n < n_size; ++n) {
      int64_t integer_sum = 0;
      float float_sum = 0.0f;
      const size_t w_row = static_cast<size_t>(n * k_size);
      for (size_t k = 0; k < static_cast<size_t>(k_size); ++k) {
        if (integer) {
          integer_sum += xi[x_row + k] * wi[w_row + k];
        } else {
          float_sum = float_sum + xf[x_row + k] * wf[w_row + k];
        }
      }
      if (arithmetic == Arithmetic::Int8) {
        if (has_bias) integer_sum += integer_at(d.in(2), n);
        store_accumulator(d.out, r * n_size + n, integer_sum, how);
      } else {
        if (has_bias) float_sum = float_sum + float_at(d.in(2), n);
        store_float(d.out, r * n_size + n, float_sum);
      }
    }
  }
}

// `shape` broadcasts to `target` with numpy rules (aligned at the right; equal or 1).
bool broadcasts_to(const std::vector<int64_t>& shape, const std::vector<int64_t>& target) {
  if (shape.size() > target.size()) return false;
  const size_t offset = target.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] != 1 && shape[i] != target[offset + i]) return false;
  }
  return true;
}

// matmul: y[batch, m, n] = sum_k a[batch, m, k] * b[batch, k, n], batch dims broadcasting.
void run_matmul(const OpData& d) {
  const Arithmetic arithmetic = arithmetic_of(d, 2);
  d.require_rank(0, 2, 8);
  d.require_rank(1, 2, 8);
  const std::vector<int64_t>& a_shape = d.value(0).shape;
  const std::vector<int64_t>& b_shape = d.value(1).shape;
  const std::vector<int64_t>& y_shape = d.out_value().shape;
  const int64_t m_size = a_shape[a_shape.size() - 2], k_size = a_shape.back();
  const int64_t n_size = b_shape.back();
  if (b_shape[b_shape.size() - 2] != k_size) {
    d.fail(fmt::format("inner dims differ: {} . {}", shape_string(a_shape), shape_string(b_shape)));
  }
  const std::vector<int64_t> a_batch(a_shape.begin(), a_shape.end() - 2);
  const std::vector<int64_t> b_batch(b_shape.begin(), b_shape.end() - 2);
  if (y_shape.size() < 2 || y_shape[y_shape.size() - 2] != m_size || y_shape.back() != n_size) {
    d.fail(fmt::format("output '{}' has shape {}; expected [..., {}, {}]", d.out_value().name,
                       shape_string(y_shape), m_size, n_size));
  }
  const std::vector<int64_t> y_batch(y_shape.begin(), y_shape.end() - 2);
  if (!broadcasts_to(a_batch, y_batch) || !broadcasts_to(b_batch, y_batch)) {
    d.fail(fmt::format("batch dims of {} and {} do not broadcast to the output's {}",
                       shape_string(a_shape), shape_string(b_shape), shape_string(y_shape)));
  }
  AccumulatorOutput how;
  if (arithmetic == Arithmetic::Int8) {
    how = accumulator_output(d, d.input_scale(0) * d.input_scale(1));
  } else {
    require_float(d, 2);
  }
  const int64_t batches = product(y_batch, 0, y_batch.size());
  for (int64_t batch = 0; batch < batches; ++batch) {
    const std::vector<int64_t> index = unravel(batch, y_batch);
    const int64_t a_base = broadcast_flat_index(index, a_batch) * m_size * k_size;
    const int64_t b_base = broadcast_flat_index(index, b_batch) * k_size * n_size;
    const int64_t y_base = batch * m_size * n_size;
    for (int64_t m = 0; m < m_size; ++m) {
      for (int64_t n = 0; n < n_size; ++n) {
        int64_t integer_sum = 0;
        float float_sum = 0.0f;
        for (int64_t k = 0; k < k_size; ++k) {
          const int64_t ai = a_base + m * k_size + k, bi = b_base + k * n_size + n;
          if (arithmetic == Arithmetic::Int8) {
            integer_sum += integer_at(d.in(0), ai) * integer_at(d.in(1), bi);
          } else {
            float_sum = float_sum + float_at(d.in(0), ai) * float_at(d.in(1), bi);
          }
        }
        if (arithmetic == Arithmetic::Int8) {
          store_accumulator(d.out, y_base + m * n_size + n, integer_sum, how);
        } else {
          store_float(d.out, y_base + m * n_size + n, float_sum);
        }
      }
    }
  }
}

// add and mul, b (and a) broadcast to the output's shape.
void run_binary(const OpData& d) {
  const Arithmetic arithmetic = arithmetic_of(d, 2);
  const std::vector<int64_t>& y_shape = d.out_value().shape;
  for (size_t k = 0; k < 2; ++k) {
    if (!broadcasts_to(d.value(k).shape, y_shape)) {
      d.fail(fmt::format("input '{}' {} does not broadcast to the output's {}", d.value(k).name,
                         shape_string(d.value(k).shape), shape_string(y_shape)));
    }
  }
  int64_t a_multiplier = 0, b_multiplier = 0;
  Requantization mul_rescale;
  if (arithmetic == Arithmetic::Int8) {
    d.require_output_type(DType::Int8);
    if (d.op.kind == OpKind::Add) {
      a_multiplier = add_multiplier(d.input_scale(0), d.output_scale());
      b_multiplier = add_multiplier(d.input_scale(1), d.output_scale());
    } else {
      mul_rescale = quantize_multiplier(d.input_scale(0) * d.input_scale(1) / d.output_scale());
    }
  } else {
    require_float(d, 2);
  }
  const Requantization add_rescale{1, kAddShift};
  const int64_t count = d.out.element_count();
  for (int64_t i = 0; i < count; ++i) {
    const std::vector<int64_t> index = unravel(i, y_shape);
    const int64_t ai = broadcast_flat_index(index, d.value(0).shape);
    const int64_t bi = broadcast_flat_index(index, d.value(1).shape);
    if (arithmetic == Arithmetic::Int8) {
      const int64_t a = integer_at(d.in(0), ai), b = integer_at(d.in(1), bi);
      if (d.op.kind == OpKind::Add) {
        store_integer(d.out, i,
                      requantize(wrap_to_int32(a * a_multiplier + b * b_multiplier), add_rescale));
      } else {
        store_integer(d.out, i, requantize(a * b, mul_rescale));
      }
    } else {
      const float a = float_at(d.in(0), ai), b = float_at(d.in(1), bi);
      store_float(d.out, i, d.op.kind == OpKind::Add ? a + b : a * b);
    }
  }
}

void require_same_shape(const OpData& d) {
  if (d.value(0).shape != d.out_value().shape) {
    d.fail(fmt::format("output '{}' has shape {}; expected the input's {}", d.out_value().name,
                       shape_string(d.out_value().shape), shape_string(d.value(0).shape)));
  }
}

// relu, clip, gelu: one element at a time.
void run_unary(const OpData& d) {
  const Arithmetic arithmetic = arithmetic_of(d, 1);
  require_same_shape(d);
  const int64_t count = d.out.element_count();
  if (arithmetic == Arithmetic::Float) require_float(d, 1);
  if (arithmetic == Arithmetic::Int8) {
    d.require_output_type(DType::Int8);
    if (d.op.kind != OpKind::Gelu) d.require_same_int8_scale(0);
  }
  const double clip_min = d.op.attr_float("min", -std::numeric_limits<double>::infinity());
  const double clip_max = d.op.attr_float("max", std::numeric_limits<double>::infinity());
  if (d.op.kind == OpKind::Clip && !(clip_min <= clip_max)) d.fail("clip needs min <= max");

  if (arithmetic == Arithmetic::Int8) {
    const double x_scale = d.input_scale(0), y_scale = d.output_scale();
    int64_t low = -128, high = 127;
    if (d.op.kind == OpKind::Clip) {
      low = quantize_bound(clip_min, x_scale);
      high = quantize_bound(clip_max, x_scale);
    }
    for (int64_t i = 0; i < count; ++i) {
      const int64_t q = integer_at(d.in(0), i);
      switch (d.op.kind) {
        case OpKind::Relu:
          store_integer(d.out, i, std::max<int64_t>(q, 0));
          break;
        case OpKind::Clip:
          store_integer(d.out, i, std::clamp(q, low, high));
          break;
        default:
          store_integer(d.out, i, int8_gelu(static_cast<int8_t>(q), x_scale, y_scale));
          break;
      }
    }
    return;
  }
  const float low = static_cast<float>(clip_min), high = static_cast<float>(clip_max);
  for (int64_t i = 0; i < count; ++i) {
    const float x = float_at(d.in(0), i);
    switch (d.op.kind) {
      case OpKind::Relu:
        store_float(d.out, i, x > 0.0f ? x : 0.0f);
        break;
      case OpKind::Clip:
        store_float(d.out, i, std::min(std::max(x, low), high));
        break;
      default:
        store_float(d.out, i, gelu_tanh(x));
        break;
    }
  }
}

// maxpool / avgpool over each window; global_avgpool over the whole plane.
void run_pool(const OpData& d) {
  const Arithmetic arithmetic = arithmetic_of(d, 1);
  if (arithmetic == Arithmetic::Float) require_float(d, 1);
  if (arithmetic == Arithmetic::Int8) d.require_output_type(DType::Int8);

  Window2d s{};
  if (d.op.kind == OpKind::GlobalAvgPool) {
    d.require_rank(0, 3, 4);
    const std::vector<int64_t>& x = d.value(0).shape;
    const bool one_d = x.size() == 3;
    s = Window2d{x[0],
                 x[1],
                 one_d ? 1 : x[2],
                 x.back(),
                 x[1],
                 1,
                 one_d ? 1 : x[2],
                 x.back(),
                 1,
                 1,
                 1,
                 1,
                 0,
                 0,
                 1,
                 1};
    std::vector<int64_t> expected = {x[0], x[1], 1};
    if (!one_d) expected.push_back(1);
    if (d.out_value().shape != expected) {
      d.fail(fmt::format("output '{}' has shape {}; expected {}", d.out_value().name,
                         shape_string(d.out_value().shape), shape_string(expected)));
    }
  } else {
    s = window_of(d);
  }
  const bool is_max = d.op.kind == OpKind::MaxPool;
  Requantization average_rescale;
  if (arithmetic == Arithmetic::Int8) {
    if (is_max) {
      d.require_same_int8_scale(0);
    } else {
      average_rescale = quantize_multiplier(
          d.input_scale(0) / (d.output_scale() * static_cast<double>(s.kernel_points())));
    }
  }
  const HostTensor& x = d.in(0);
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t c = 0; c < s.channels; ++c) {
      for (int64_t oh = 0; oh < s.out_h; ++oh) {
        for (int64_t ow = 0; ow < s.out_w; ++ow) {
          int64_t integer_max = std::numeric_limits<int64_t>::min(), integer_sum = 0;
          float float_max = -std::numeric_limits<float>::infinity(), float_sum = 0.0f;
          int64_t real_elements = 0;
          for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
            const int64_t ih = oh * s.stride_h + kh - s.pad_top;
            if (ih < 0 || ih >= s.height) continue;  // padding: -inf for max, 0 for the sum
            for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
              const int64_t iw = ow * s.stride_w + kw - s.pad_left;
              if (iw < 0 || iw >= s.width) continue;
              const int64_t xi = nchw(s, s.channels, n, c, ih, iw);
              ++real_elements;
              if (arithmetic == Arithmetic::Int8) {
                const int64_t q = integer_at(x, xi);
                integer_max = std::max(integer_max, q);
                integer_sum += q;
              } else {
                const float v = float_at(x, xi);
                float_max = v > float_max ? v : float_max;
                float_sum = float_sum + v;
              }
            }
          }
          if (is_max && real_elements == 0) {
            d.fail(
                fmt::format("the window of output position ({}, {}) covers only padding", oh, ow));
          }
          const int64_t yi = out_nchw(s, s.channels, n, c, oh, ow);
          if (arithmetic == Arithmetic::Int8) {
            store_integer(
                d.out, yi,
                is_max ? integer_max : requantize(wrap_to_int32(integer_sum), average_rescale));
          } else {
            store_float(d.out, yi,
                        is_max ? float_max : float_sum / static_cast<float>(s.kernel_points()));
          }
        }
      }
    }
  }
}

void require_same_type(const OpData& d, size_t k) {
  if (d.value(k).dtype != d.out_value().dtype) {
    d.fail(fmt::format("input '{}' is {} but output '{}' is {}", d.value(k).name,
                       dtype_name(d.value(k).dtype), d.out_value().name,
                       dtype_name(d.out_value().dtype)));
  }
  d.require_same_int8_scale(k);
}

// flatten and reshape: the same bytes under a new shape.
void run_reshape(const OpData& d) {
  require_same_type(d, 0);
  if (d.value(0).element_count() != d.out_value().element_count()) {
    d.fail(fmt::format("input {} and output {} hold different numbers of elements",
                       shape_string(d.value(0).shape), shape_string(d.out_value().shape)));
  }
  d.out.bytes = d.in(0).bytes;
}

// transpose: y[i_0, ..., i_r] = x[j] with j[perm[k]] = i_k.
void run_transpose(const OpData& d) {
  require_same_type(d, 0);
  const std::vector<int64_t>& x_shape = d.value(0).shape;
  const std::vector<int64_t> perm = d.op.attr_ints("perm", {});
  std::vector<int64_t> expected;
  std::vector<bool> seen(x_shape.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(x_shape.size()) || seen[static_cast<size_t>(p)]) {
      d.fail(fmt::format("perm {} is not a permutation of the input's {} dims", shape_string(perm),
                         x_shape.size()));
    }
    seen[static_cast<size_t>(p)] = true;
    expected.push_back(x_shape[static_cast<size_t>(p)]);
  }
  if (perm.size() != x_shape.size() || d.out_value().shape != expected) {
    d.fail(fmt::format("output '{}' has shape {}; perm {} of {} gives {}", d.out_value().name,
                       shape_string(d.out_value().shape), shape_string(perm), shape_string(x_shape),
                       shape_string(expected)));
  }
  const int64_t size = dtype_size(d.out.dtype);
  const int64_t count = d.out.element_count();
  for (int64_t i = 0; i < count; ++i) {
    const std::vector<int64_t> y_index = unravel(i, expected);
    std::vector<int64_t> x_index(x_shape.size());
    for (size_t k = 0; k < perm.size(); ++k) x_index[static_cast<size_t>(perm[k])] = y_index[k];
    const int64_t xi = ravel(x_index, x_shape);
    std::copy_n(d.in(0).bytes.begin() + xi * size, size, d.out.bytes.begin() + i * size);
  }
}

int64_t normalized_axis(const OpData& d, int64_t axis, size_t rank) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r)
    d.fail(fmt::format("axis {} is out of range for rank {}", axis, rank));
  return axis < 0 ? axis + r : axis;
}

// concat: the inputs one after another along `axis`.
void run_concat(const OpData& d) {
  const std::vector<int64_t>& y_shape = d.out_value().shape;
  const size_t axis =
      static_cast<size_t>(normalized_axis(d, d.op.attr_int("axis", 0), y_shape.size()));
  int64_t joined = 0;
  for (size_t k = 0; k < d.input_count(); ++k) {
    require_same_type(d, k);
    std::vector<int64_t> shape = d.value(k).shape;
    if (shape.size() != y_shape.size())
      d.fail(fmt::format("input '{}' has a different rank", d.value(k).name));
    joined += shape[axis];
    shape[axis] = y_shape[axis];
    if (shape != y_shape) {
      d.fail(fmt::format("input '{}' {} does not match the output {} outside axis {}",
                         d.value(k).name, shape_string(d.value(k).shape), shape_string(y_shape),
                         axis));
    }
  }
  if (joined != y_shape[axis])
    d.fail(fmt::format("inputs add up to {} along axis {}, output has {}", joined, axis,
                       y_shape[axis]));
  const int64_t size = dtype_size(d.out.dtype);
  const int64_t outer = product(y_shape, 0, axis),
                inner = product(y_shape, axis + 1, y_shape.size());
  int64_t offset = 0;  // along the axis
  for (size_t k = 0; k < d.input_count(); ++k) {
    const int64_t length = d.value(k).shape[axis];
    for (int64_t o = 0; o < outer; ++o) {
      const int64_t block = length * inner * size;
      const auto from = d.in(k).bytes.begin() + o * block;
      const auto to = d.out.bytes.begin() + (o * y_shape[axis] + offset) * inner * size;
      std::copy_n(from, block, to);
    }
    offset += length;
  }
}

// softmax along `axis`, fp32: m = max, e = exp(x - m), y = e / sum(e).
void run_softmax(const OpData& d) {
  require_float(d, 1);
  require_same_shape(d);
  const std::vector<int64_t>& shape = d.value(0).shape;
  const size_t axis =
      static_cast<size_t>(normalized_axis(d, d.op.attr_int("axis", -1), shape.size()));
  const int64_t outer = product(shape, 0, axis), length = shape[axis],
                inner = product(shape, axis + 1, shape.size());
  std::vector<float> e(static_cast<size_t>(length));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      auto at = [&](int64_t a) { return (o * length + a) * inner + in; };
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t a = 0; a < length; ++a) m = std::max(m, float_at(d.in(0), at(a)));
      float sum = 0.0f;
      for (int64_t a = 0; a < length; ++a) {
        e[static_cast<size_t>(a)] = std::exp(float_at(d.in(0), at(a)) - m);
        sum = sum + e[static_cast<size_t>(a)];
      }
      for (int64_t a = 0; a < length; ++a)
        store_float(d.out, at(a), e[static_cast<size_t>(a)] / sum);
    }
  }
}

// layernorm over the last dim, fp32: y = (x - mean) / sqrt(var + epsilon) * gamma + beta.
void run_layernorm(const OpData& d) {
  require_float(d, 3);
  require_same_shape(d);
  const std::vector<int64_t>& shape = d.value(0).shape;
  if (shape.empty()) d.fail("layernorm needs at least one dim");
  const int64_t length = shape.back(),
                rows = d.value(0).element_count() / std::max<int64_t>(length, 1);
  for (size_t k = 1; k < 3; ++k) {
    if (d.value(k).element_count() != length) {
      d.fail(fmt::format("'{}' has {} elements; the last dim is {}", d.value(k).name,
                         d.value(k).element_count(), length));
    }
  }
  const float epsilon = static_cast<float>(d.op.attr_float("epsilon", 1e-5));
  const float count = static_cast<float>(length);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t base = r * length;
    float sum = 0.0f;
    for (int64_t i = 0; i < length; ++i) sum = sum + float_at(d.in(0), base + i);
    const float mean = sum / count;
    float squares = 0.0f;
    for (int64_t i = 0; i < length; ++i) {
      const float centered = float_at(d.in(0), base + i) - mean;
      squares = squares + centered * centered;
    }
    const float inverse_deviation = 1.0f / std::sqrt(squares / count + epsilon);
    for (int64_t i = 0; i < length; ++i) {
      const float normalized = (float_at(d.in(0), base + i) - mean) * inverse_deviation;
      store_float(d.out, base + i, normalized * float_at(d.in(1), i) + float_at(d.in(2), i));
    }
  }
}

// attention: see the header for the per-head definition.
void run_attention(const OpData& d) {
  require_float(d, d.input_count());
  for (size_t k = 0; k < 3; ++k) d.require_rank(k, 3, 3);
  const std::vector<int64_t>& q = d.value(0).shape;
  const std::vector<int64_t>& k = d.value(1).shape;
  const std::vector<int64_t>& v = d.value(2).shape;
  const int64_t heads = d.op.attr_int("heads", 1);
  const int64_t kv_heads = d.op.attr_int("kv_heads", heads);
  if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0) {
    d.fail(fmt::format("kv_heads {} must divide heads {}", kv_heads, heads));
  }
  if (q[2] % heads != 0 || k[2] % kv_heads != 0 || v[2] % kv_heads != 0) {
    d.fail("the last dims of q, k, v must divide into heads, kv_heads, kv_heads");
  }
  const int64_t batch = q[0], seq_q = q[1], seq_k = k[1];
  const int64_t head_dim = q[2] / heads, value_dim = v[2] / kv_heads;
  if (k[0] != batch || v[0] != batch || v[1] != seq_k || k[2] / kv_heads != head_dim) {
    d.fail(fmt::format("q {}, k {}, v {} do not fit {} heads and {} kv heads", shape_string(q),
                       shape_string(k), shape_string(v), heads, kv_heads));
  }
  const std::vector<int64_t> expected = {batch, seq_q, heads * value_dim};
  if (d.out_value().shape != expected) {
    d.fail(fmt::format("output '{}' has shape {}; expected {}", d.out_value().name,
                       shape_string(d.out_value().shape), shape_string(expected)));
  }
  const bool has_mask = d.input_count() > 3;
  const std::vector<int64_t> mask_target = {batch, heads, seq_q, seq_k};
  if (has_mask && !broadcasts_to(d.value(3).shape, mask_target)) {
    d.fail(fmt::format("mask '{}' {} does not broadcast to [batch, heads, seq_q, seq_k] = {}",
                       d.value(3).name, shape_string(d.value(3).shape), shape_string(mask_target)));
  }
  const bool causal = d.op.attr_int("causal", 0) != 0;
  const int64_t window = d.op.attr_int("window", 0);
  const float scale =
      static_cast<float>(d.op.attr_float("scale", 1.0 / std::sqrt(static_cast<double>(head_dim))));
  const float minus_infinity = -std::numeric_limits<float>::infinity();
  const int64_t group = heads / kv_heads;

  const std::vector<float> qf = floats_of(d.in(0)), kf = floats_of(d.in(1)), vf = floats_of(d.in(2));
  auto at = [](const std::vector<float>& t, int64_t i) { return t[static_cast<size_t>(i)]; };
  std::vector<float> p(static_cast<size_t>(seq_k));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kv = h / group;
      for (int64_t i = 0; i < seq_q; ++i) {
        // scores
        float row_max = minus_infinity;
        for (int64_t j = 0; j < seq_k; ++j) {
          float score = minus_infinity;
          const bool masked = (causal && j > i) || (window > 0 && j <= i - window);
          if (!masked) {
            float dot = 0.0f;
            for (int64_t e = 0; e < head_dim; ++e) {
              dot = dot + at(qf, (b * seq_q + i) * q[2] + h * head_dim + e) *
                              at(kf, (b * seq_k + j) * k[2] + kv * head_dim + e);
            }
            score = dot * scale;
            if (has_mask) {
              score =
                  score + float_at(d.in(3), broadcast_flat_index({b, h, i, j}, d.value(3).shape));
            }
          }
          p[static_cast<size_t>(j)] = score;
          row_max = std::max(row_max, score);
        }
        // softmax over j (a fully masked row has no distribution: its output is 0)
        const bool empty_row = row_max == minus_infinity;
        float sum = 0.0f;
        for (int64_t j = 0; j < seq_k; ++j) {
          float& x = p[static_cast<size_t>(j)];
          x = empty_row ? 0.0f : std::exp(x - row_max);
          sum = sum + x;
        }
        if (!empty_row) {
          for (float& x : p) x = x / sum;
        }
        // p . v
        for (int64_t e = 0; e < value_dim; ++e) {
          float out = 0.0f;
          for (int64_t j = 0; j < seq_k; ++j) {
            out = out + p[static_cast<size_t>(j)] * at(vf, (b * seq_k + j) * v[2] + kv * value_dim + e);
          }
          store_float(d.out, (b * seq_q + i) * expected[2] + h * value_dim + e, out);
        }
      }
    }
  }
}

void run_op(const OpData& d) {
  switch (d.op.kind) {
    case OpKind::Conv:
      run_conv(d);
      return;
    case OpKind::Linear:
      run_linear(d);
      return;
    case OpKind::MatMul:
      run_matmul(d);
      return;
    case OpKind::Add:
    case OpKind::Mul:
      run_binary(d);
      return;
    case OpKind::Relu:
    case OpKind::Clip:
    case OpKind::Gelu:
      run_unary(d);
      return;
    case OpKind::MaxPool:
    case OpKind::AvgPool:
    case OpKind::GlobalAvgPool:
      run_pool(d);
      return;
    case OpKind::Flatten:
    case OpKind::Reshape:
      run_reshape(d);
      return;
    case OpKind::Transpose:
      run_transpose(d);
      return;
    case OpKind::Concat:
      run_concat(d);
      return;
    case OpKind::Softmax:
      run_softmax(d);
      return;
    case OpKind::LayerNorm:
      run_layernorm(d);
      return;
    case OpKind::Attention:
      run_attention(d);
      return;
  }
  internal_error(__FILE__, __LINE__, "unknown op kind");
}

void check_data(const Value& v, const HostTensor& t, const std::string& what) {
  if (t.dtype != v.dtype || t.shape != v.shape) {
    throw Error(v.location, fmt::format("{} for '{}' is {}{}; the graph declares {}{}", what,
                                        v.name, dtype_name(t.dtype), shape_string(t.shape),
                                        dtype_name(v.dtype), shape_string(v.shape)));
  }
  TPUSIM_CHECK(static_cast<int64_t>(t.bytes.size()) == t.element_count() * dtype_size(t.dtype),
               "host tensor byte count does not match its shape");
}

std::string index_string(const std::string& name, const std::vector<int64_t>& shape, int64_t flat) {
  return fmt::format("{}[{}]", name, fmt::join(unravel(flat, shape), ", "));
}

}  // namespace

float gelu_tanh(float x) {
  const float k = 0.7978845608f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

int8_t int8_gelu(int8_t q, double input_scale, double output_scale) {
  const float x = static_cast<float>(q) * static_cast<float>(input_scale);
  const float y = gelu_tanh(x) * static_cast<float>(1.0 / output_scale);
  if (std::isnan(y)) return 0;
  return static_cast<int8_t>(std::nearbyint(std::clamp(y, -128.0f, 127.0f)));
}

std::vector<HostTensor> run_reference(const Graph& graph,
                                      const std::vector<std::optional<HostTensor>>& given) {
  std::vector<HostTensor> tensors(graph.values.size());
  std::vector<bool> ready(graph.values.size(), false);
  for (size_t i = 0; i < graph.values.size(); ++i) {
    const Value& v = graph.values[i];
    if (v.kind == ValueKind::Activation) continue;
    if (i >= given.size() || !given[i]) {
      throw Error(v.location, fmt::format("no data for {} '{}'",
                                          v.kind == ValueKind::Input ? "input" : "weight", v.name));
    }
    check_data(v, *given[i], "the data");
    tensors[i] = *given[i];
    ready[i] = true;
  }
  for (const Op& op : graph.ops) {
    for (int input : op.inputs) {
      TPUSIM_CHECK(input >= 0 && static_cast<size_t>(input) < tensors.size() &&
                       ready[static_cast<size_t>(input)],
                   "op '" + op.name + "' reads a value before it is computed");
    }
    TPUSIM_CHECK(op.output >= 0 && static_cast<size_t>(op.output) < tensors.size(),
                 "op output is not a value");
    const OpInfo& info = op_info(op.kind);
    if (static_cast<int>(op.inputs.size()) < info.min_inputs ||
        static_cast<int>(op.inputs.size()) > info.max_inputs) {
      op_error(op, fmt::format("takes {} to {} inputs, has {}", info.min_inputs, info.max_inputs,
                               op.inputs.size()));
    }
    const size_t out = static_cast<size_t>(op.output);
    HostTensor result = zero_tensor(graph.values[out]);
    run_op(OpData{graph, op, tensors, result});
    tensors[out] = std::move(result);
    ready[out] = true;
  }
  return tensors;
}

std::vector<std::optional<HostTensor>> graph_inputs_and_weights(const Graph& graph,
                                                                uint64_t base_seed) {
  std::vector<std::optional<HostTensor>> data(graph.values.size());
  for (size_t i = 0; i < graph.values.size(); ++i) {
    const Value& v = graph.values[i];
    if (v.kind == ValueKind::Input) {
      data[i] = random_tensor(v.dtype, v.shape, seed_for(v.name, base_seed));
    } else if (v.kind == ValueKind::Weight && v.weight_file.empty()) {
      data[i] = random_tensor(v.dtype, v.shape, v.seed);
      // Float weight matrices and kernels get He-style scaling, uniform in +-sqrt(6 / fan_in)
      // (fan_in = every dim but the first), so activations keep their size through a deep
      // network instead of overflowing. int8 weights are scaled by their quantization scale.
      if (is_float(v.dtype) && v.shape.size() >= 2) {
        int64_t fan_in = 1;
        for (size_t d = 1; d < v.shape.size(); ++d) fan_in *= v.shape[d];
        const double scale = std::sqrt(6.0 / static_cast<double>(std::max<int64_t>(1, fan_in)));
        const int64_t size = dtype_size(v.dtype);
        for (int64_t e = 0; e < v.element_count(); ++e) {
          uint8_t* p = data[i]->bytes.data() + e * size;
          store_element(v.dtype, p, load_element(v.dtype, p) * scale);
        }
      }
    } else if (v.kind == ValueKind::Weight) {
      std::filesystem::path path(v.weight_file);
      if (path.is_relative() && !graph.file.empty())
        path = std::filesystem::path(graph.file).parent_path() / path;
      HostTensor t = read_npy(path.string(), v.element_count() * dtype_size(v.dtype));
      check_data(v, t, fmt::format("the file '{}'", path.string()));
      data[i] = std::move(t);
    }
  }
  return data;
}

Comparison compare_tensors(const HostTensor& got, const HostTensor& want, const std::string& name,
                           const std::vector<double>& tolerance) {
  Comparison c;
  c.elements = want.element_count();
  if (got.dtype != want.dtype || got.shape != want.shape) {
    c.mismatches = want.element_count();
    c.worst_ratio = std::numeric_limits<double>::infinity();
    c.worst_where = name;
    c.message =
        fmt::format("{}: got {}{}, the reference is {}{}", name, dtype_name(got.dtype),
                    shape_string(got.shape), dtype_name(want.dtype), shape_string(want.shape));
    return c;
  }
  const int64_t count = want.element_count();
  const std::string_view type = dtype_name(want.dtype);

  if (!is_float(want.dtype)) {
    int64_t worst = 0;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t g = integer_at(got, i), w = integer_at(want, i);
      const double error = std::abs(static_cast<double>(g - w));
      if (error != 0) ++c.mismatches;
      if (error > c.worst_abs_error) {
        c.worst_abs_error = error;
        worst = i;
      }
      if (w != 0)
        c.worst_rel_error = std::max(c.worst_rel_error, error / std::abs(static_cast<double>(w)));
    }
    c.ok = c.bit_exact = c.mismatches == 0;
    c.worst_ratio = c.ok ? 0 : std::numeric_limits<double>::infinity();
    c.worst_where = index_string(name, want.shape, worst);
    c.message = c.ok
                    ? fmt::format("{}: all {} {} elements are bit-exact", name, count, type)
                    : fmt::format(
                          "{}: {} of {} {} elements differ from the reference (must be bit-exact); "
                          "worst at {}: got {}, want {}",
                          name, c.mismatches, count, type, c.worst_where, integer_at(got, worst),
                          integer_at(want, worst));
    return c;
  }

  TPUSIM_CHECK(tolerance.empty() || static_cast<int64_t>(tolerance.size()) == count,
               "a float comparison needs one tolerance per element");
  int64_t worst = 0, differing = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double g = load_element(got.dtype, element_address(got, i));
    const double w = load_element(want.dtype, element_address(want, i));
    const double allowed = tolerance.empty() ? 0.0 : tolerance[static_cast<size_t>(i)];
    double ratio = 0;
    if (std::isnan(g) || std::isnan(w) || std::isinf(g) || std::isinf(w)) {
      const bool same = (std::isnan(g) && std::isnan(w)) || g == w;
      ratio = same ? 0 : std::numeric_limits<double>::infinity();
      differing += same ? 0 : 1;
    } else {
      const double error = std::abs(g - w);
      differing += error != 0;
      c.worst_abs_error = std::max(c.worst_abs_error, error);
      if (w != 0) c.worst_rel_error = std::max(c.worst_rel_error, error / std::abs(w));
      ratio = error == 0 ? 0 : allowed > 0 ? error / allowed : std::numeric_limits<double>::infinity();
    }
    if (ratio > 1) ++c.mismatches;
    if (ratio > c.worst_ratio) {
      c.worst_ratio = ratio;
      worst = i;
    }
  }
  c.ok = c.mismatches == 0;
  c.bit_exact = differing == 0;
  c.worst_where = index_string(name, want.shape, worst);
  const double g = load_element(got.dtype, element_address(got, worst));
  const double w = load_element(want.dtype, element_address(want, worst));
  const double allowed = tolerance.empty() ? 0.0 : tolerance[static_cast<size_t>(worst)];
  if (c.bit_exact) {
    c.message = fmt::format("{}: all {} {} elements are bit-exact", name, count, type);
  } else if (c.ok) {
    c.message = fmt::format("{}: all {} {} elements within their derived bounds; the closest at {:.2g} of its bound ({} "
                            "against {}, bound {:.3g}), at {}",
                            name, count, type, c.worst_ratio, g, w, allowed, c.worst_where);
  } else {
    c.message = fmt::format(
        "{}: {} of {} {} elements differ from the reference beyond their derived bounds; worst at {}: got {}, want {} "
        "(abs error {:.4g}, bound {:.4g})",
        name, c.mismatches, count, type, c.worst_where, g, w, std::abs(g - w), allowed);
  }
  return c;
}

}  // namespace tpusim
