// The graph IR: a model as ops on typed tensors, before it is unrolled into GEMM tiles.
// It holds ONNX semantics (NCHW / NCW layouts, asymmetric pads, groups, dilations, Gemm's
// transposes) so every frontend lands here. Like the program IR, one table (graph.cpp,
// `op_info`) drives the parser, printer and verifier, and the textual form round-trips
// (docs/graph-format.md).
//
//   graph tiny_cnn
//   input x : int8[1,3,8,8] scale=0.05
//   weight w1 : int8[4,3,3,3] scale=0.02 seed=11
//   weight b1 : int32[4] seed=12
//   value c1 : int8[1,4,8,8] scale=0.1 = conv(x, w1, b1) strides=[1,1] pads=[1,1,1,1]
//   value r1 : int8[1,4,8,8] scale=0.1 = relu(c1)
//   output r1
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ir/diagnostics.h"
#include "ir/dtype.h"

namespace tpusim {

// The op set. Semantics are written beside each op in docs/graph-format.md; the reference
// implementation (compiler/reference.h) is their executable definition.
enum class OpKind : uint8_t {
  Conv,           // (x, w[, b]) NCHW or NCW; attrs strides, pads, dilations, groups
  Linear,         // (x[..., K], w[N, K][, b[N]]): y = x . w^T + b (ONNX Gemm with trans_b = 1)
  MatMul,         // (a[..., M, K], b[..., K, N]), batched: y = a . b
  Add, Mul,       // elementwise, same shape (or b broadcast along trailing dims)
  Relu, Clip,     // Clip: attrs min, max (relu6 = clip 0..6)
  Gelu,
  MaxPool, AvgPool,  // attrs kernel, strides, pads (NCHW / NCW)
  GlobalAvgPool,     // NCHW -> NC11
  Flatten,           // attr axis (default 1)
  Reshape,           // attr shape
  Transpose,         // attr perm
  Concat,            // attr axis; any number of inputs
  Softmax,           // attr axis (default -1)
  LayerNorm,         // (x, gamma, beta) over the last dim; attr epsilon
  Attention,         // (q, k, v) [batch, seq, heads*dim]; attrs heads, kv_heads, causal, window, scale
};
constexpr int kOpKindCount = static_cast<int>(OpKind::Attention) + 1;

// An attribute value: an integer, a float, a list of integers, or a word.
using AttrValue = std::variant<int64_t, double, std::vector<int64_t>, std::string>;
enum class AttrType : uint8_t { Int, Float, Ints, String };

struct AttrInfo {
  const char* name;
  AttrType type;
  bool required;
  const char* summary;  // one line, with the default when not required
};

struct OpInfo {
  OpKind kind;
  const char* name;  // "conv", "linear", ...
  int min_inputs, max_inputs;
  std::vector<AttrInfo> attrs;
  const char* summary;
  const char* inputs;  // the operands, for messages and docs: "x, w[, b]" ([...] = optional)
};
const OpInfo& op_info(OpKind kind);
std::optional<OpKind> parse_op_kind(std::string_view name);
std::vector<std::string> op_kind_names();

enum class ValueKind : uint8_t { Input, Weight, Activation };

// A tensor of the graph. int8 values carry a quantization scale: real = scale * q
// (symmetric, zero point 0). Weights come from an .npy file or seeded random data.
struct Value {
  std::string name;
  ValueKind kind = ValueKind::Activation;
  DType dtype = DType::Int8;
  std::vector<int64_t> shape;
  double scale = 0;          // int8 only; 0 = not quantized
  std::string weight_file;   // Weight: .npy path ("" = seeded random)
  uint64_t seed = 0;         // Weight (and Input when no data is given)
  int producer = -1;         // op index for activations
  SourceLocation location;
  int64_t element_count() const;
};

struct Op {
  OpKind kind = OpKind::Relu;
  std::string name;           // unique; labels the instructions it becomes
  std::vector<int> inputs;    // value indices
  int output = -1;            // value index
  std::map<std::string, AttrValue> attrs;
  SourceLocation location;

  // Typed attribute access with the documented defaults (internal error if the type is wrong).
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  double attr_float(const std::string& name, double fallback) const;
  std::vector<int64_t> attr_ints(const std::string& name, std::vector<int64_t> fallback) const;
  std::string attr_string(const std::string& name, std::string fallback) const;
};

struct Graph {
  std::string name;
  std::vector<Value> values;
  std::vector<Op> ops;       // in a valid execution order (producers before consumers)
  std::vector<int> outputs;  // value indices
  std::string file;          // where it came from, for messages

  int find_value(std::string_view name) const;  // -1 when absent
  int add_value(Value v);                        // returns its index; names must be unique
  int add_op(Op op);                             // sets the output's producer
};

// Text form (docs/graph-format.md). Parse errors are located at line:column; a graph that
// parses then goes through infer_shapes, so every value comes back typed.
Graph parse_graph(const std::string& text, const std::string& file_name);
std::string print_graph(const Graph& graph);

// How the text form spells a number (scales, float attributes): the shortest decimal that
// reads back to the same double, with ".0" added when it would otherwise read as an integer
// ("6.0", "0.1", "1e-06", "-inf").
std::string graph_number_text(double value);

// An op's input count for messages: "2 or 3 inputs (x, w[, b])", "1 input (x)".
std::string op_inputs_text(const OpInfo& info);

// Computes every activation's shape from its op (and checks the ones already given), and
// checks each op's inputs and attributes (counts, ranks, matching channels, groups dividing
// channels, kernel fitting the padded input, quantization scales present for int8, ...).
// Throws the first problem as an Error at the op's location, naming the op.
void infer_shapes(Graph& graph);
// The typing of ops [first_op, end) alone, for a graph built op by op whose earlier ops are
// typed and whose structure the builder guarantees (the model reader); infer_shapes on the
// whole graph afterwards still checks everything. Linear in the ops typed, not the graph.
void infer_op_shapes(Graph& graph, size_t first_op);

// Structural checks (names unique, inputs defined before use, one producer per value,
// outputs exist, types consistent). Returns every problem.
std::vector<Error> verify_graph(const Graph& graph);

// Useful multiply-accumulates of an op (conv, linear, matmul, attention; 0 for the rest) and
// of the whole graph: what the report's MAC total must equal.
int64_t op_macs(const Graph& graph, const Op& op);
int64_t graph_macs(const Graph& graph);

// Convolution geometry shared by shape inference, the reference and the lowering: with
// spatial dims padded as ONNX does (pads = [begin..., end...]).
struct ConvGeometry {
  int64_t batch = 1, in_channels = 0, out_channels = 0, groups = 1;
  std::vector<int64_t> in_size, kernel, strides, dilations, pads_begin, pads_end, out_size;
  int64_t out_pixels() const;     // product of out_size
  int64_t kernel_points() const;  // product of kernel
};
ConvGeometry conv_geometry(const Graph& graph, const Op& op);  // op is Conv (or a pool)

}  // namespace tpusim
