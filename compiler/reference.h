// The plain reference implementation of the graph IR: every op as direct loops on host
// tensors (direct convolution, softmax attention), nothing clever. `tpusim run MODEL --check`
// compares the simulated outputs against it, so it is the executable definition of each op.
//
// Arithmetic contract (the lowering must produce the same int8 bytes):
//   int8 values are symmetric-quantized, real = scale * q (compiler/quantization.h).
//   conv / linear / matmul, int8: acc = sum of q_x * q_w in exact integers (+ the int32 bias,
//     whose scale is s_x * s_w), wrapped to int32 as the accumulators do; an int8 output is
//     requantize(acc, quantize_multiplier(s_x * s_w / s_y)), an int32 output is acc itself.
//   conv / linear / matmul, bf16 or fp32: acc = fp32 sum of the products in reduction order
//     (bf16 * bf16 is exact in fp32), then + bias in fp32; stored rounding to nearest even.
//   Everything else on floats is fp32 math, rounded once to the output's type.
//   Per-op details are beside run_reference below and in the .cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "simulator/npy.h"

namespace tpusim {

// Every value of the graph computed on the host. `given` holds the inputs and weights,
// indexed by value index (entries for activations are ignored); the result holds every value,
// inputs and weights included. Expects a graph whose shapes are known (after infer_shapes).
// A missing input, data of the wrong type or shape, or an op/type combination that has no
// definition here (say softmax on int8) is a tpusim::Error naming the value or op.
//
// Op semantics (x, y: the op's input and output; s_*: their int8 scales):
//   conv       NCW or NCHW, groups (depthwise = groups == channels), strides, asymmetric
//              pads, dilations; input positions outside the tensor read as 0.
//   linear     y[..., n] = sum_k x[..., k] * w[n, k] + b[n]
//   matmul     y[..., m, n] = sum_k a[..., m, k] * b[..., k, n]; batch dims broadcast
//              (numpy rules); int8: multiplier from s_a * s_b / s_y, no bias.
//   add        int8: y = requantize(a * add_multiplier(s_a, s_y) + b * add_multiplier(s_b, s_y),
//              {1, kAddShift}), the sum wrapped to int32; float: fp32 a + b.
//   mul        int8: y = requantize(a * b, quantize_multiplier(s_a * s_b / s_y));
//              float: fp32 a * b. add and mul broadcast b against a with numpy rules (b's
//              shape a suffix of a's, or dims of 1).
//   relu       y = max(x, 0); int8 input and output scales must be equal.
//   clip       int8: y = clamp(q, quantize_bound(min, s), quantize_bound(max, s)), equal scales.
//   gelu       float: gelu_tanh below. int8: int8_gelu below (through fp32, round to nearest even).
//   maxpool    max over the window; padded positions are -inf (they never win). int8: equal scales.
//   avgpool    sum over the window / kernel points, padded zeros counted (count_include_pad).
//              int8: y = requantize(sum, quantize_multiplier(s_x / (s_y * kernel_points))).
//   global_avgpool  the same over all spatial positions (kernel points = H * W, or W for NCW).
//   flatten, reshape, transpose, concat: data movement; int8 input and output scales equal.
//   softmax    fp32: m = max, e = exp(x - m), y = e / sum(e), along `axis`. Floats only.
//   layernorm  fp32 over the last dim: mean, variance (biased, / D), y = (x - mean) /
//              sqrt(variance + epsilon) * gamma + beta. Floats only.
//   attention  q [B, Sq, H*D], k [B, Sk, KV*D], v [B, Sk, KV*Dv] -> y [B, Sq, H*Dv]. Query head h
//              uses key/value head h / (H / KV). Per head, fp32:
//                score[i][j] = (sum_d q[i][d] * k[j][d]) * scale (+ mask[b, h, i, j] when a 4th
//                input is given; it broadcasts to [B, H, Sq, Sk] with numpy rules);
//                causal: j > i is masked; window W > 0: j <= i - W is masked, so with causal
//                query i sees the keys (i - W, i]; masked scores are -inf;
//                p = softmax over j; y[i] = sum_j p[j] * v[j].
//              i and j are positions from the start of the sequence (no offset when Sq != Sk).
//              A row whose every score is -inf (only possible through the mask input) gives 0.
//              Floats only; rounded to the output's type once, at the end.
std::vector<HostTensor> run_reference(const Graph& graph,
                                      const std::vector<std::optional<HostTensor>>& given);

// Data for the inputs and weights of `graph`, indexed by value index (nullopt for
// activations): a weight with a file is read from it (a relative path is taken from the
// directory of graph.file; type and shape must match), otherwise
// random_tensor(dtype, shape, Value::seed); an input gets random_tensor(dtype, shape,
// seed_for(name, base_seed)), so the run's seed changes inputs but never the model's weights.
std::vector<std::optional<HostTensor>> graph_inputs_and_weights(const Graph& graph,
                                                                uint64_t base_seed);

// The result of comparing a simulated tensor against the reference.
//
// Tolerance rule:
//   int8, int32: bit-exact; the int8 arithmetic above is a contract, not an approximation.
//   bf16, fp32: element i must satisfy |got - want| <= tolerance[i], a bound derived per element
//     from the op's own rounding: for a GEMM (conv, linear, matmul, attention's two) the fp32
//     summation error over its reduction length K, gamma_K * sum_k |a_k b_k|, for a VPU op its
//     few roundings; a bf16 result may then be any bf16 value that bound reaches, nearly always
//     just one (float_tolerance in compiler/reference_fp64.h; the rule and its derivation are
//     in docs/numerics.md). An empty tolerance means 0: bit-exact. NaN must meet NaN and an
//     infinity the same infinity.
//
// worst_abs_error is the largest |got - want|; worst_rel_error the largest
// |got - want| / |want| over elements with want != 0; worst_ratio the largest
// |got - want| / tolerance (infinite where the tolerance is 0 and the element differs).
// worst_where names the element furthest outside the tolerance (or, when all pass, the one
// closest to it) as `name[i, j, ...]`; `message` is one line for the user saying what was
// compared and, on failure, how many elements differ and the worst one's got/want values.
struct Comparison {
  bool ok = false;
  bool bit_exact = false;  // every element equal to the reference's
  int64_t elements = 0;
  int64_t mismatches = 0;  // elements outside the tolerance
  double worst_abs_error = 0;
  double worst_rel_error = 0;
  double worst_ratio = 0;
  std::string worst_where;
  std::string message;
};
Comparison compare_tensors(const HostTensor& got, const HostTensor& want, const std::string& name,
                           const std::vector<double>& tolerance = {});

// gelu, tanh approximation, in fp32 exactly as the VPU's gelu computes it:
//   0.5 x (1 + tanh(0.7978845608 (x + 0.044715 x^3)))
float gelu_tanh(float x);

// int8 gelu: a function of the 256 input codes, computed as the VPU would through fp32:
//   x = float(q) * float(s_x); g = gelu_tanh(x); y = g * float(1 / s_y) in fp32, then rounded
//   to the nearest integer (ties to even) and saturated to [-128, 127].
// The lowering can build its 256-entry table from this function.
int8_t int8_gelu(int8_t q, double input_scale, double output_scale);

}  // namespace tpusim
