// unroll_to_kernels: graph ops -> kernels. The heart of the idea: a convolution is a matrix
// multiply over the im2col matrix, M = N*OH*OW output pixels by K = C/groups*KH*KW taps by
// N = OC/groups output channels, with the im2col matrix never stored (by default the MXU walks
// the input window in the unified buffer with an address pattern; see tile_kernels.cpp).
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/passes/passes.h"

namespace tpusim {
namespace {

const Value& value_of(const Graph& g, int v) { return g.values.at(static_cast<size_t>(v)); }

// The ops reading value `v`.
std::vector<int> users_of(const Graph& g, int v) {
  std::vector<int> users;
  for (size_t i = 0; i < g.ops.size(); ++i) {
    for (int in : g.ops[i].inputs) {
      if (in == v) {
        users.push_back(static_cast<int>(i));
        break;
      }
    }
  }
  return users;
}

bool is_graph_output(const Graph& g, int v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

// If the only user of `op`'s output is a relu or clip (and the output is not itself a graph
// output), fold it: returns the op index folded (or -1) and fills the epilogue.
int fold_activation(const Graph& g, const Op& op, Epilogue& epilogue, int& output) {
  auto users = users_of(g, op.output);
  if (users.size() != 1 || is_graph_output(g, op.output)) return -1;
  const Op& next = g.ops[static_cast<size_t>(users[0])];
  if (next.kind != OpKind::Relu && next.kind != OpKind::Clip) return -1;
  const Value& out = value_of(g, next.output);
  if (next.kind == OpKind::Relu) {
    epilogue.activation = Epilogue::Activation::Relu;
  } else {
    epilogue.activation = Epilogue::Activation::Clip;
    double low = next.attr_float("min", 0), high = next.attr_float("max", 0);
    if (out.dtype == DType::Int8) {
      epilogue.clip_low = quantize_bound(low, out.scale);
      epilogue.clip_high = quantize_bound(high, out.scale);
    } else {
      epilogue.clip_low = low;
      epilogue.clip_high = high;
    }
  }
  epilogue.fused_op = next.name;
  output = next.output;
  return users[0];
}

// A vector kernel for `op`, reading its inputs and writing its output (kind and details to fill).
VectorKernel vector_kernel_of(const Op& op) {
  VectorKernel k;
  k.name = op.name;
  k.inputs = op.inputs;
  k.output = op.output;
  return k;
}

// A GEMM that is not a convolution (linear, matmul): `groups` independent M x K x N products,
// described to the tiling pass as a 1x1 convolution over M "pixels".
void set_plain_gemm(GemmKernel& k, int64_t m, int64_t kk, int64_t n, int64_t groups) {
  k.groups = groups;
  k.M = m;
  k.K = kk;
  k.N = n;
  k.conv.batch = 1;
  k.conv.in_channels = kk * groups;
  k.conv.out_channels = n * groups;
  k.conv.in_size = {m};
  k.conv.out_size = {m};
  k.conv.kernel = {1};
  k.conv.strides = {1};
  k.conv.dilations = {1};
  k.conv.pads_begin = {0};
  k.conv.pads_end = {0};
}

Epilogue rescale(const Graph& g, double input_scale_product, int output) {
  Epilogue e;
  e.requantize = true;
  const Value& out = value_of(g, output);
  if (out.dtype == DType::Int8) e.scale = quantize_multiplier(input_scale_product / out.scale);
  return e;
}

}  // namespace

KernelModule unroll_to_kernels(const Graph& graph, const LoweringOptions& options) {
  KernelModule module;
  module.graph = graph;
  const Graph& g = module.graph;
  std::vector<bool> folded(g.ops.size(), false);
  for (size_t i = 0; i < g.ops.size(); ++i) {
    if (folded[i]) continue;
    const Op& op = g.ops[i];
    switch (op.kind) {
      case OpKind::Conv:
      case OpKind::Linear: {
        GemmKernel k;
        k.name = op.name;
        k.op = op.kind;
        k.input = op.inputs[0];
        k.weight = op.inputs[1];
        k.bias = op.inputs.size() > 2 ? op.inputs[2] : -1;
        k.output = op.output;
        k.im2col = options.im2col;
        const Value& x = value_of(g, k.input);
        const Value& w = value_of(g, k.weight);
        k.epilogue = rescale(g, x.scale * w.scale, op.output);
        if (op.kind == OpKind::Conv) {
          k.conv = conv_geometry(g, op);
          k.groups = k.conv.groups;
          k.M = k.conv.batch * k.conv.out_pixels();
          k.K = k.conv.in_channels / k.groups * k.conv.kernel_points();
          k.N = k.conv.out_channels / k.groups;
        } else {
          // A linear layer is a 1x1 convolution over its rows: x [rows, K] (leading dims
          // flattened), w [N, K].
          set_plain_gemm(k, x.element_count() / x.shape.back(), x.shape.back(), w.shape[0], 1);
        }
        int folded_op = fold_activation(g, op, k.epilogue, k.output);
        if (folded_op >= 0) folded[static_cast<size_t>(folded_op)] = true;
        module.kernels.push_back(std::move(k));
        break;
      }
      case OpKind::Add: {
        VectorKernel k = vector_kernel_of(op);
        k.kind = VectorKernel::Kind::Add;
        const Value& a = value_of(g, op.inputs[0]);
        const Value& b = value_of(g, op.inputs[1]);
        if (a.shape != b.shape) {
          throw Error(op.location, fmt::format("add '{}': the compiler adds tensors of the same shape only "
                                               "({} [{}] + [{}]); broadcast adds are not lowered yet",
                                               op.name, "shapes", fmt::join(a.shape, ","), fmt::join(b.shape, ",")));
        }
        k.epilogue.requantize = true;
        const Value& y = value_of(g, op.output);
        if (y.dtype == DType::Int8) {
          k.add_multiplier[0] = add_multiplier(a.scale, y.scale);
          k.add_multiplier[1] = add_multiplier(b.scale, y.scale);
          k.epilogue.scale = {1, kAddShift};
        }
        int folded_op = fold_activation(g, op, k.epilogue, k.output);
        if (folded_op >= 0) folded[static_cast<size_t>(folded_op)] = true;
        module.kernels.push_back(std::move(k));
        break;
      }
      case OpKind::Relu:
      case OpKind::Clip: {
        VectorKernel k = vector_kernel_of(op);
        k.kind = op.kind == OpKind::Relu ? VectorKernel::Kind::Relu : VectorKernel::Kind::Clip;
        const Value& y = value_of(g, op.output);
        if (op.kind == OpKind::Clip) {
          double low = op.attr_float("min", 0), high = op.attr_float("max", 0);
          k.epilogue.clip_low = y.dtype == DType::Int8 ? quantize_bound(low, y.scale) : low;
          k.epilogue.clip_high = y.dtype == DType::Int8 ? quantize_bound(high, y.scale) : high;
          k.epilogue.activation = Epilogue::Activation::Clip;
        } else {
          k.epilogue.activation = Epilogue::Activation::Relu;
        }
        module.kernels.push_back(std::move(k));
        break;
      }
      case OpKind::MaxPool:
      case OpKind::AvgPool:
      case OpKind::GlobalAvgPool: {
        VectorKernel k = vector_kernel_of(op);
        const Value& x = value_of(g, op.inputs[0]);
        const Value& y = value_of(g, op.output);
        if (op.kind == OpKind::GlobalAvgPool) {
          k.kind = VectorKernel::Kind::GlobalAvgPool;
          k.pool.batch = x.shape[0];
          k.pool.in_channels = k.pool.out_channels = x.shape[1];
          k.pool.in_size.assign(x.shape.begin() + 2, x.shape.end());
          k.pool.kernel = k.pool.in_size;
          k.pool.out_size.assign(k.pool.in_size.size(), 1);
        } else {
          k.kind = op.kind == OpKind::MaxPool ? VectorKernel::Kind::MaxPool : VectorKernel::Kind::AvgPool;
          k.pool = conv_geometry(g, op);
        }
        if (k.kind != VectorKernel::Kind::MaxPool) {
          k.epilogue.requantize = true;
          if (y.dtype == DType::Int8) {
            k.epilogue.scale = quantize_multiplier(x.scale / (y.scale * static_cast<double>(k.pool.kernel_points())));
          }
        }
        module.kernels.push_back(std::move(k));
        break;
      }
      case OpKind::MatMul: {
        // A batched matrix multiply: one GEMM per batch entry, with B read from the second
        // activation as the weights are for a linear layer.
        GemmKernel k;
        k.name = op.name;
        k.op = OpKind::MatMul;
        k.input = op.inputs[0];
        k.weight = op.inputs[1];
        k.output = op.output;
        const Value& a = value_of(g, k.input);
        const Value& b = value_of(g, k.weight);
        k.epilogue = rescale(g, a.scale * b.scale, op.output);
        set_plain_gemm(k, a.shape[a.shape.size() - 2], a.shape.back(), b.shape.back(),
                       a.element_count() / (a.shape[a.shape.size() - 2] * a.shape.back()));
        int folded_op = fold_activation(g, op, k.epilogue, k.output);
        if (folded_op >= 0) folded[static_cast<size_t>(folded_op)] = true;
        module.kernels.push_back(std::move(k));
        break;
      }
      case OpKind::Mul:
      case OpKind::Gelu:
      case OpKind::Softmax:
      case OpKind::LayerNorm: {
        VectorKernel k = vector_kernel_of(op);
        const Value& x = value_of(g, op.inputs[0]);
        const Value& y = value_of(g, op.output);
        if (op.kind == OpKind::Mul) {
          k.kind = VectorKernel::Kind::Mul;
          const Value& b = value_of(g, op.inputs[1]);
          if (x.shape != b.shape) {
            throw Error(op.location, fmt::format("mul '{}': the compiler multiplies tensors of the same shape only; "
                                                 "broadcast multiplies are not lowered yet", op.name));
          }
          k.epilogue.requantize = true;
          if (y.dtype == DType::Int8) k.epilogue.scale = quantize_multiplier(x.scale * b.scale / y.scale);
        } else if (is_float(x.dtype)) {
          k.kind = op.kind == OpKind::Gelu ? VectorKernel::Kind::Gelu
                   : op.kind == OpKind::Softmax ? VectorKernel::Kind::Softmax
                                                : VectorKernel::Kind::LayerNorm;
          if (op.kind == OpKind::Softmax) {
            int64_t axis = op.attr_int("axis", -1);
            if (axis != -1 && axis != static_cast<int64_t>(x.shape.size()) - 1) {
              throw Error(op.location, fmt::format("softmax '{}': the compiler normalizes along the last dim only", op.name));
            }
          }
          k.epsilon = op.attr_float("epsilon", 1e-5);
        } else {
          throw Error(op.location, fmt::format("op '{}' ({}) on int8 values is not lowered by the compiler; run the model "
                                               "as bf16 (--type bf16)", op.name, op_info(op.kind).name));
        }
        module.kernels.push_back(std::move(k));
        break;
      }
      case OpKind::Attention: {
        AttentionKernel k;
        k.name = op.name;
        k.q = op.inputs[0];
        k.k = op.inputs[1];
        k.v = op.inputs[2];
        k.mask = op.inputs.size() > 3 ? op.inputs[3] : -1;
        k.output = op.output;
        const Value& q = value_of(g, k.q);
        const Value& key = value_of(g, k.k);
        const Value& v = value_of(g, k.v);
        k.batch = q.shape[0];
        k.seq_q = q.shape[1];
        k.seq_k = key.shape[1];
        k.heads = op.attr_int("heads", 1);
        k.kv_heads = op.attr_int("kv_heads", k.heads);
        k.head_dim = q.shape[2] / k.heads;
        k.value_dim = v.shape[2] / k.kv_heads;
        k.causal = op.attr_int("causal", 0) != 0;
        k.window = op.attr_int("window", 0);
        k.scale = op.attr_float("scale", 1.0 / std::sqrt(static_cast<double>(k.head_dim)));
        k.lowering = options.attention;
        module.kernels.push_back(std::move(k));
        break;
      }
      case OpKind::Flatten:
      case OpKind::Reshape:
      case OpKind::Transpose:
      case OpKind::Concat: {
        VectorKernel k = vector_kernel_of(op);
        k.kind = op.kind == OpKind::Transpose ? VectorKernel::Kind::Transpose
                 : op.kind == OpKind::Concat  ? VectorKernel::Kind::Concat
                                              : VectorKernel::Kind::Copy;
        if (op.kind == OpKind::Transpose) k.perm = op.attr_ints("perm", {});
        if (op.kind == OpKind::Concat) {
          int64_t axis = op.attr_int("axis", 0);
          int64_t rank = static_cast<int64_t>(value_of(g, op.output).shape.size());
          k.axis = axis < 0 ? axis + rank : axis;
        }
        module.kernels.push_back(std::move(k));
        break;
      }
      default:
        throw Error(op.location, fmt::format("op '{}' ({}) is not lowered by the compiler yet; the compiler "
                                             "handles conv, linear, matmul, add, mul, relu, clip, gelu, "
                                             "maxpool, avgpool, global_avgpool, flatten, reshape, transpose, concat, softmax, "
                                             "layernorm and attention",
                                             op.name, op_info(op.kind).name));
    }
  }
  for (size_t v = 0; v < g.values.size(); ++v) module.dram_values.push_back(static_cast<int>(v));
  return module;
}

}  // namespace tpusim
