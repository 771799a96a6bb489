// Bad graph text -> the exact message a user sees, file:line:col included. Each case is a file
// in tests/errors/graphs/; parse_graph stops at the first problem, whether it is in the syntax
// (located at the offending column) or found by shape inference (located at the op's line).
// verify_graph, for graphs built in code, lists every structural problem.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "test_util.h"

using namespace tpusim;

namespace {

struct ErrorCase {
  const char* name;     // graphs/NAME.graph
  std::string message;  // Error::what()
};

const std::vector<ErrorCase> kCases = {
    {"add-broadcast",
     R"m(add-broadcast.graph:4:1: error: add 'y': 'b' [4] does not broadcast to 'x' [1,4,8,8]: its shape must equal a trailing part of the first input's)m"},
    {"add-type",
     R"m(add-type.graph:4:1: error: add 'y': 'b' is bf16 but 'x' is int8; they must have the same type)m"},
    {"attention-batch",
     R"m(attention-batch.graph:5:1: error: attention 'a': 'k' has batch 2 but 'q' has batch 1)m"},
    {"attention-causal",
     R"m(attention-causal.graph:5:1: error: attention 'a': causal must be 0 or 1, got 2)m"},
    {"attention-heads",
     R"m(attention-heads.graph:5:1: error: attention 'a': heads=3 does not divide the width 32 of 'q' (heads * head dim))m"},
    {"attention-heads-zero",
     R"m(attention-heads-zero.graph:5:1: error: attention 'a': heads must be at least 1, got 0)m"},
    {"attention-int8",
     R"m(attention-int8.graph:5:1: error: attention 'a': 'q' is int8; attention is computed in floating point and takes bf16 or fp32)m"},
    {"attention-kv-heads",
     R"m(attention-kv-heads.graph:5:1: error: attention 'a': kv_heads=3 does not divide heads=4 (each key/value head serves heads/kv_heads query heads))m"},
    {"attention-kv-width",
     R"m(attention-kv-width.graph:5:1: error: attention 'a': 'k' has width 16 but must have kv_heads * head dim = 4 * 8 = 32)m"},
    {"attention-mask",
     R"m(attention-mask.graph:6:1: error: attention 'a': the mask 'm' [2,8,8] does not broadcast to [batch, heads, seq_q, seq_k] = [1,4,8,8] (aligned right, each of its dims must equal that dim or be 1))m"},
    {"attention-mask-type",
     R"m(attention-mask-type.graph:6:1: error: attention 'a': 'm' is int32; attention is computed in floating point and takes bf16 or fp32)m"},
    {"attention-rank",
     R"m(attention-rank.graph:5:1: error: attention 'a': 'q' must be 3-D [batch, seq, heads*dim], got bf16[8,32])m"},
    {"attention-scale",
     R"m(attention-scale.graph:5:1: error: attention 'a': scale must be positive, got 0.0)m"},
    {"attention-seq",
     R"m(attention-seq.graph:5:1: error: attention 'a': 'k' has 8 positions but 'v' has 6; keys and values pair up)m"},
    {"attention-window",
     R"m(attention-window.graph:5:1: error: attention 'a': window must be 0 (no window) or positive, got -1)m"},
    {"attribute-bad-number",
     R"m(attribute-bad-number.graph:3:29: error: expected a number, a list, a word or a quoted string, found '1.5x')m"},
    {"attribute-float-for-int",
     R"m(attribute-float-for-int.graph:3:27: error: attribute 'axis' of flatten must be an integer, got the number 1.0)m"},
    {"attribute-list-float",
     R"m(attribute-list-float.graph:4:41: error: expected an integer (lists hold integers), found '1.5')m"},
    {"attribute-missing-equals",
     R"m(attribute-missing-equals.graph:4:40: error: expected '=' after the attribute name 'strides', found '[')m"},
    {"attribute-missing-value",
     R"m(attribute-missing-value.graph:4:40: error: expected a value after '=', found end of line)m"},
    {"attribute-on-relu",
     R"m(attribute-on-relu.graph:3:19: error: relu takes no attributes, got 'alpha')m"},
    {"attribute-twice",
     R"m(attribute-twice.graph:4:41: error: attribute 'groups' is given twice)m"},
    {"attribute-wrong-type",
     R"m(attribute-wrong-type.graph:4:39: error: attribute 'groups' of conv must be an integer, got the list [1,2])m"},
    {"attribute-wrong-type-list",
     R"m(attribute-wrong-type-list.graph:4:40: error: attribute 'strides' of conv must be a list of integers like [1,1], got the integer 2)m"},
    {"attribute-wrong-type-number",
     R"m(attribute-wrong-type-number.graph:3:23: error: attribute 'min' of clip must be a number, got the string "low")m"},
    {"attributes-run-together",
     R"m(attributes-run-together.graph:4:45: error: unexpected 'p' after the strides attribute (separate items with spaces))m"},
    {"bad-dims-empty",
     R"m(bad-dims-empty.graph:2:15: error: a tensor needs at least one dimension, got [])m"},
    {"bad-dims-word",
     R"m(bad-dims-word.graph:2:18: error: expected a dimension (an integer), found 'n')m"},
    {"bad-dims-zero",
     R"m(bad-dims-zero.graph:2:15: error: every dimension must be at least 1, got 0)m"},
    {"bad-scale",
     R"m(bad-scale.graph:2:25: error: scale must be a positive number, found '-1')m"},
    {"bad-scale-word",
     R"m(bad-scale-word.graph:2:25: error: scale must be a positive number, found 'big')m"},
    {"bad-seed",
     R"m(bad-seed.graph:2:35: error: seed must be a non-negative integer below 2^64, found '1.5')m"},
    {"bad-statement-start",
     R"m(bad-statement-start.graph:2:1: error: expected a statement (graph, input, weight, value, output), found '[')m"},
    {"bad-type",
     R"m(bad-type.graph:2:11: error: unknown element type 'int16'; did you mean 'int8'? (int8, int32, bf16, fp32))m"},
    {"bad-type-far",
     R"m(bad-type-far.graph:2:11: error: unknown element type 'float16' (int8, int32, bf16, fp32))m"},
    {"bad-type-typo",
     R"m(bad-type-typo.graph:2:12: error: unknown element type 'in8'; did you mean 'int8'? (int8, int32, bf16, fp32))m"},
    {"clip-nan",
     R"m(clip-nan.graph:3:1: error: clip 'c': min and max must be numbers, not nan)m"},
    {"clip-min-max",
     R"m(clip-min-max.graph:3:1: error: clip 'y': min=6.0 must not be greater than max=0.0)m"},
    {"concat-axis",
     R"m(concat-axis.graph:3:1: error: concat 'c': axis=-5 is out of range for the 4-D input 'x' int8[1,4,8,8] (use -4..3))m"},
    {"concat-dims",
     R"m(concat-dims.graph:4:1: error: concat 'c': 'y' is [1,2,8,9] but 'x' is [1,4,8,8]: all dims except axis 1 must match (dim 3 differs))m"},
    {"concat-rank",
     R"m(concat-rank.graph:4:1: error: concat 'c': 'y' is 3-D but 'x' is 4-D; concatenated inputs have the same rank)m"},
    {"concat-scale",
     R"m(concat-scale.graph:4:1: error: concat 'c': 'y' has scale 0.2 but the result has scale 0.1; concat does not rescale, so int8 inputs and the result share one scale (leave scale= out to inherit it))m"},
    {"concat-type",
     R"m(concat-type.graph:4:1: error: concat 'c': 'y' is bf16 but 'x' is int8; they must have the same type)m"},
    {"conv-bias-shape",
     R"m(conv-bias-shape.graph:5:1: error: conv 'c': the bias 'b' is [1,4] but there are 4 output channels; it must be [4])m"},
    {"conv-bias-type",
     R"m(conv-bias-type.graph:5:1: error: conv 'c': the bias 'b' must be int32 for int8 operands (its scale is the product of the input and weight scales), got int8)m"},
    {"conv-bias-type-float",
     R"m(conv-bias-type-float.graph:5:1: error: conv 'c': the bias 'b' must be fp32 or bf16 for bf16 operands, got int32)m"},
    {"conv-dilations-length",
     R"m(conv-dilations-length.graph:4:1: error: conv 'c': dilations=[1,1,1] must have 2 entries, one per spatial dim of 'x' int8[1,4,8,8])m"},
    {"conv-groups-input",
     R"m(conv-groups-input.graph:4:1: error: conv 'c': groups=3 does not divide the 4 input channels of 'x')m"},
    {"conv-groups-output",
     R"m(conv-groups-output.graph:4:1: error: conv 'c': groups=2 does not divide the 5 output channels (the first dim of 'w'))m"},
    {"conv-groups-zero",
     R"m(conv-groups-zero.graph:4:1: error: conv 'c': groups must be at least 1, got 0)m"},
    {"conv-input-rank",
     R"m(conv-input-rank.graph:4:1: error: conv 'c': the input must be NCW (3-D) or NCHW (4-D), got 'x' int8[4,8])m"},
    {"conv-int32-input",
     R"m(conv-int32-input.graph:4:1: error: conv 'c': 'x' is int32; conv takes int8, bf16 or fp32)m"},
    {"conv-kernel-too-big",
     R"m(conv-kernel-too-big.graph:4:1: error: conv 'c': the window spans 9 in spatial dim 1 (kernel 3, dilation 4) but the padded input is only 8 (8 + pads 0 + 0); add padding or use a smaller kernel)m"},
    {"conv-pads-length",
     R"m(conv-pads-length.graph:4:1: error: conv 'c': pads=[1,1] must have 4 entries, [begin..., end...] for 2 spatial dims)m"},
    {"conv-pads-negative",
     R"m(conv-pads-negative.graph:4:1: error: conv 'c': pads cannot be negative, got [1,1,-1,1])m"},
    {"conv-strides-length",
     R"m(conv-strides-length.graph:4:1: error: conv 'c': strides=[2] must have 2 entries, one per spatial dim of 'x' int8[1,4,8,8])m"},
    {"conv-strides-zero",
     R"m(conv-strides-zero.graph:4:1: error: conv 'c': every entry of strides must be at least 1, got [1,0])m"},
    {"conv-type-mismatch",
     R"m(conv-type-mismatch.graph:4:1: error: conv 'c': 'w' is bf16 but 'x' is int8; they must have the same type)m"},
    {"conv-weight-channels",
     R"m(conv-weight-channels.graph:4:1: error: conv 'c': the weight 'w' is [4,2,3,3] but 'x' has 4 channels and groups=1, so its second dim must be 4 (C/groups))m"},
    {"conv-weight-rank",
     R"m(conv-weight-rank.graph:4:1: error: conv 'c': the weight must be [OC, C/groups, KH, KW] (4-D like the input), got 'w' int8[4,4,3])m"},
    {"declared-shape-mismatch",
     R"m(declared-shape-mismatch.graph:4:1: error: value 'c1' is declared int8[1,4,8,8] but conv gives int8[1,4,6,6]; fix the declaration or leave the type out to have it inferred)m"},
    {"declared-type-mismatch",
     R"m(declared-type-mismatch.graph:4:1: error: value 'c1' is declared bf16[1,4,6,6] but conv gives int8[1,4,6,6] (or int32[1,4,6,6], the accumulators); fix the declaration or leave the type out to have it inferred)m"},
    {"declared-type-mismatch-relu",
     R"m(declared-type-mismatch-relu.graph:3:1: error: value 'r' is declared int32[1,4,8,8] but relu gives int8[1,4,8,8]; fix the declaration or leave the type out to have it inferred)m"},
    {"duplicate-value",
     R"m(duplicate-value.graph:4:7: error: value 'x' is defined twice (first at line 2))m"},
    {"duplicate-value-op",
     R"m(duplicate-value-op.graph:4:7: error: value 'r' is defined twice (first at line 3))m"},
    {"empty",
     R"m(empty.graph:1:1: error: empty graph: the file must start with `graph NAME`)m"},
    {"file-not-quoted",
     R"m(file-not-quoted.graph:2:35: error: file must be a quoted path like file="w.npy", found 'w.npy')m"},
    {"file-on-input",
     R"m(file-on-input.graph:2:29: error: input has no option 'file' (options: scale, seed))m"},
    {"flatten-axis",
     R"m(flatten-axis.graph:3:1: error: flatten 'f': axis=5 is out of range for the 4-D input 'x' int8[1,4,8,8] (use -4..4))m"},
    {"global-avgpool-rank",
     R"m(global-avgpool-rank.graph:3:1: error: global_avgpool 'p': the input must be NCW (3-D) or NCHW (4-D), got 'x' fp32[4,8])m"},
    {"graph-trailing-text",
     R"m(graph-trailing-text.graph:1:9: error: unexpected text after the graph name, found 'extra')m"},
    {"input-count",
     R"m(input-count.graph:3:11: error: conv takes 2 or 3 inputs (x, w[, b]), got 1)m"},
    {"input-count-concat",
     R"m(input-count-concat.graph:3:11: error: concat takes 1 to 64 inputs (x1, x2, ...), got 0)m"},
    {"input-count-exact",
     R"m(input-count-exact.graph:3:11: error: relu takes 1 input (x), got 2)m"},
    {"int8-needs-scale",
     R"m(int8-needs-scale.graph:2:18: error: int8 input 'x' needs a quantization scale: add scale=S (real value = S * q))m"},
    {"layernorm-beta-type",
     R"m(layernorm-beta-type.graph:5:1: error: layernorm 'n': 'b' is int8; layernorm is computed in floating point and takes bf16 or fp32)m"},
    {"layernorm-epsilon",
     R"m(layernorm-epsilon.graph:5:1: error: layernorm 'n': epsilon must be positive, got 0.0)m"},
    {"layernorm-gamma",
     R"m(layernorm-gamma.graph:5:1: error: layernorm 'n': gamma 'g' is [16] but must be [32] (the last dim of 'x'))m"},
    {"linear-bias-shape",
     R"m(linear-bias-shape.graph:5:1: error: linear 'y': the bias 'b' is [16] but there are 10 outputs (the first dim of the weight); it must be [10])m"},
    {"linear-k-mismatch",
     R"m(linear-k-mismatch.graph:4:1: error: linear 'y': 'x' has K=16 in its last dim but the weight 'w' is [10,8]; it must be [N, 16])m"},
    {"linear-weight-rank",
     R"m(linear-weight-rank.graph:4:1: error: linear 'y': the weight must be 2-D [N, K], got 'w' bf16[16])m"},
    {"matmul-batch",
     R"m(matmul-batch.graph:4:1: error: matmul 'y': the batch dims differ: 'a' is [2,3,8] and 'b' is [3,8,4])m"},
    {"matmul-k",
     R"m(matmul-k.graph:4:1: error: matmul 'y': 'a' has K=8 (its last dim) but 'b' has 6 rows (its second-to-last dim))m"},
    {"matmul-rank",
     R"m(matmul-rank.graph:4:1: error: matmul 'y': 'a' must have at least 2 dims [..., rows, cols], got bf16[8])m"},
    {"matmul-rank-differs",
     R"m(matmul-rank-differs.graph:4:1: error: matmul 'y': 'a' is 3-D but 'b' is 2-D; matmul needs equal batch dims (use linear for a weight shared across the batch))m"},
    {"missing-attribute",
     R"m(missing-attribute.graph:3:11: error: maxpool needs the attribute 'kernel' (window size per spatial dim))m"},
    {"missing-close-paren",
     R"m(missing-close-paren.graph:3:15: error: missing ')' to close the inputs of relu)m"},
    {"missing-comma",
     R"m(missing-comma.graph:4:28: error: expected ',' or ')' after an input of conv, found 'w')m"},
    {"missing-dims",
     R"m(missing-dims.graph:2:16: error: expected '[' and the dimensions after the type (e.g. int8[1,3,8,8]), found 'scale')m"},
    {"missing-equals",
     R"m(missing-equals.graph:3:25: error: expected '=' and the op that computes 'r' (value NAME : TYPE[dims] = OP(inputs)), found 'relu')m"},
    {"missing-op",
     R"m(missing-op.graph:3:11: error: expected an op name after '=', found '(')m"},
    {"missing-open-paren",
     R"m(missing-open-paren.graph:3:16: error: expected '(' and the inputs after 'relu', found 'x')m"},
    {"missing-type",
     R"m(missing-type.graph:2:9: error: expected ':' and a type after the input name (e.g. input x : int8[1,3,8,8] scale=0.05), found 'scale')m"},
    {"mul-int32",
     R"m(mul-int32.graph:3:1: error: mul 'y': 'a' is int32; mul takes int8, bf16 or fp32)m"},
    {"no-graph-line",
     R"m(no-graph-line.graph:1:1: error: expected `graph NAME` as the first statement, found 'input')m"},
    {"no-output",
     R"m(no-output.graph:4:1: error: graph 'g' has no `output` line; name its results with `output NAME[, NAME...]`)m"},
    {"option-twice",
     R"m(option-twice.graph:2:37: error: option 'seed' is given twice)m"},
    {"output-separator",
     R"m(output-separator.graph:4:10: error: expected ',' between output names, found 'r')m"},
    {"output-twice",
     R"m(output-twice.graph:3:11: error: 'x' is listed as an output twice)m"},
    {"pool-input-rank",
     R"m(pool-input-rank.graph:3:1: error: maxpool 'p': the input must be NCW (3-D) or NCHW (4-D), got 'x' int8[4,8])m"},
    {"pool-kernel-length",
     R"m(pool-kernel-length.graph:3:1: error: maxpool 'p': kernel=[2] must have 2 entries, one per spatial dim of 'x' int8[1,4,8,8])m"},
    {"pool-kernel-zero",
     R"m(pool-kernel-zero.graph:3:1: error: avgpool 'p': every entry of kernel must be at least 1, got [0,2])m"},
    {"pool-pads-too-big",
     R"m(pool-pads-too-big.graph:3:1: error: maxpool 'p': pads=[2,0,0,0] must be smaller than the kernel [2,2] in each dim (a window would cover only padding))m"},
    {"pool-window-too-big",
     R"m(pool-window-too-big.graph:3:1: error: maxpool 'p': the window spans 9 in spatial dim 0 (kernel 9, dilation 1) but the padded input is only 8 (8 + pads 0 + 0); add padding or use a smaller kernel)m"},
    {"reshape-count",
     R"m(reshape-count.graph:3:1: error: reshape 'r': shape=[4,8,4] has 128 elements but 'x' int8[1,4,8,8] has 256)m"},
    {"reshape-empty",
     R"m(reshape-empty.graph:3:1: error: reshape 'r': shape=[] must have at least one dim)m"},
    {"reshape-not-multiple",
     R"m(reshape-not-multiple.graph:3:1: error: reshape 'r': shape=[3,-1] cannot hold the 256 elements of 'x' int8[1,4,8,8]: 256 is not a multiple of 3)m"},
    {"reshape-two-inferred",
     R"m(reshape-two-inferred.graph:3:1: error: reshape 'r': shape=[-1,4,-1] has more than one -1)m"},
    {"reshape-zero",
     R"m(reshape-zero.graph:3:1: error: reshape 'r': shape=[0,-1] has 0; every entry is a size of at least 1, or -1 once)m"},
    {"result-needs-scale",
     R"m(result-needs-scale.graph:4:1: error: conv 'c1': the int8 result needs a scale; add scale=S to the line of 'c1' (real = S * q))m"},
    {"result-scale-on-accumulator",
     R"m(result-scale-on-accumulator.graph:4:1: error: conv 'c': the result is int32 and cannot have a scale (scales quantize int8 values); remove scale=0.5)m"},
    {"result-scale-on-float",
     R"m(result-scale-on-float.graph:3:1: error: relu 'r': the result is bf16 and cannot have a scale (scales quantize int8 values); remove scale=0.5)m"},
    {"scale-as-attribute",
     R"m(scale-as-attribute.graph:4:22: error: conv has no attribute 'scale'; the int8 scale of the result goes before '=': value c scale=S = conv(...))m"},
    {"scale-changed-by-relu",
     R"m(scale-changed-by-relu.graph:3:1: error: relu 'r': 'x' has scale 0.1 but the result has scale 0.2; relu does not rescale, so int8 inputs and the result share one scale (leave scale= out to inherit it))m"},
    {"scale-on-float",
     R"m(scale-on-float.graph:2:19: error: input 'x' is fp32, which is not quantized; remove scale= (only int8 values have a scale))m"},
    {"softmax-axis",
     R"m(softmax-axis.graph:3:1: error: softmax 's': axis=2 is out of range for the 2-D input 'x' fp32[2,8] (use -2..1))m"},
    {"softmax-int8",
     R"m(softmax-int8.graph:3:1: error: softmax 's': 'x' is int8; softmax is computed in floating point and takes bf16 or fp32)m"},
    {"transpose-length",
     R"m(transpose-length.graph:3:1: error: transpose 't': perm=[0,2,1] has 3 entries but 'x' int8[1,4,8,8] is 4-D)m"},
    {"transpose-not-permutation",
     R"m(transpose-not-permutation.graph:3:1: error: transpose 't': perm=[0,1,1,3] is not a permutation of 0..3)m"},
    {"too-many-elements",
     R"m(too-many-elements.graph:2:15: error: 'x' of shape [65536, 65536, 65536, 2] has more than 2^48 elements, the most one tensor may have)m"},
    {"two-graphs",
     R"m(two-graphs.graph:3:1: error: a file holds one graph; `graph` appears again (first at line 1))m"},
    {"unknown-attribute",
     R"m(unknown-attribute.graph:4:32: error: conv has no attribute 'strdes'; did you mean 'strides'? (attributes: strides, pads, dilations, groups))m"},
    {"unknown-attribute-far",
     R"m(unknown-attribute-far.graph:4:32: error: conv has no attribute 'colour' (attributes: strides, pads, dilations, groups))m"},
    {"unknown-op",
     R"m(unknown-op.graph:4:11: error: unknown op 'conv2d'; did you mean 'conv'?)m"},
    {"unknown-op-far",
     R"m(unknown-op-far.graph:3:11: error: unknown op 'frobnicate' (ops: conv, linear, matmul, add, mul, relu, clip, gelu, maxpool, avgpool, global_avgpool, flatten, reshape, transpose, concat, softmax, layernorm, attention))m"},
    {"unknown-option",
     R"m(unknown-option.graph:2:29: error: input has no option 'seeed'; did you mean 'seed'? (options: scale, seed))m"},
    {"unknown-output",
     R"m(unknown-output.graph:4:8: error: unknown value 'relu2' in output; did you mean 'relu1'?)m"},
    {"unknown-statement",
     R"m(unknown-statement.graph:3:1: error: unknown statement 'valeu'; did you mean 'value'?)m"},
    {"unknown-statement-far",
     R"m(unknown-statement-far.graph:3:1: error: unknown statement 'tensor' (statements: graph, input, weight, value, output))m"},
    {"unknown-value",
     R"m(unknown-value.graph:3:16: error: unknown value 'x2'; did you mean 'x1'?)m"},
    {"unknown-value-far",
     R"m(unknown-value-far.graph:4:16: error: unknown value 'image' (defined so far: x, y))m"},
    {"unknown-value-none",
     R"m(unknown-value-none.graph:2:16: error: unknown value 'x'; declare it first with `input`, `weight` or `value`)m"},
    {"unterminated-dims",
     R"m(unterminated-dims.graph:2:20: error: expected ',' or ']' in the list, found 'scale')m"},
    {"unterminated-dims-eol",
     R"m(unterminated-dims-eol.graph:2:15: error: unterminated list (missing ']'))m"},
    {"unterminated-list",
     R"m(unterminated-list.graph:4:40: error: unterminated list (missing ']'))m"},
    {"unterminated-string",
     R"m(unterminated-string.graph:2:35: error: unterminated string (missing closing '"'))m"},
    {"use-before-definition",
     R"m(use-before-definition.graph:3:16: error: 'b' is used before its definition at line 4; define values before the ops that read them)m"},
};

std::string graphs_dir() { return std::string(TPUSIM_TEST_DATA) + "/errors/graphs"; }

std::string run_case(const ErrorCase& c) {
  std::string file = std::string(c.name) + ".graph";
  try {
    parse_graph(test::read_text_file(graphs_dir() + "/" + file), file);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("bad graphs give exact messages at file:line:col", "[errors][graph]") {
  for (const auto& c : kCases) {
    DYNAMIC_SECTION(c.name) { CHECK(run_case(c) == c.message); }
  }
}

TEST_CASE("every graph in errors/graphs has a case", "[errors][graph]") {
  for (const auto& entry : std::filesystem::directory_iterator(graphs_dir())) {
    std::string file = entry.path().filename().string();
    INFO(file);
    REQUIRE(file.size() > 6);
    REQUIRE(file.substr(file.size() - 6) == ".graph");
    std::string name = file.substr(0, file.size() - 6);
    CHECK(std::count_if(kCases.begin(), kCases.end(), [&](const ErrorCase& c) { return c.name == name; }) == 1);
  }
}

namespace {

Value make_value(const std::string& name, ValueKind kind, DType dtype, std::vector<int64_t> shape, double scale,
                 int line) {
  Value v;
  v.name = name;
  v.kind = kind;
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.scale = scale;
  v.location = {"built.graph", line, 1, ""};
  return v;
}

std::vector<std::string> messages(const std::vector<Error>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.what());
  return out;
}

}  // namespace

TEST_CASE("verify_graph lists every structural problem of a graph built in code", "[errors][graph]") {
  Graph g;
  g.name = "built";
  g.file = "built.graph";
  int x = g.add_value(make_value("x", ValueKind::Input, DType::Int8, {1, 4}, 0, 2));         // no scale
  int h = g.add_value(make_value("h", ValueKind::Input, DType::FP32, {1, 4}, 0.5, 3));       // scale on fp32
  int later = g.add_value(make_value("later", ValueKind::Activation, DType::FP32, {1, 4}, 0, 4));
  int r = g.add_value(make_value("r", ValueKind::Activation, DType::FP32, {1, 4}, 0, 5));
  int orphan = g.add_value(make_value("orphan", ValueKind::Activation, DType::FP32, {1, 4}, 0, 6));
  Op read_early;  // reads `later` before the op that computes it
  read_early.kind = OpKind::Relu;
  read_early.name = "r";
  read_early.inputs = {later};
  read_early.output = r;
  read_early.location = {"built.graph", 5, 1, ""};
  g.add_op(read_early);
  Op compute_later;  // two inputs for relu, an unknown attribute, writes an input
  compute_later.kind = OpKind::Relu;
  compute_later.name = "later";
  compute_later.inputs = {h, h};
  compute_later.output = later;
  compute_later.attrs["alpha"] = 0.1;
  compute_later.location = {"built.graph", 4, 1, ""};
  g.add_op(compute_later);
  Op pool;  // kernel missing, strides of the wrong type
  pool.kind = OpKind::MaxPool;
  pool.name = "pool";
  pool.inputs = {h};
  pool.output = x;
  pool.attrs["strides"] = int64_t{2};
  pool.location = {"built.graph", 7, 1, ""};
  g.ops.push_back(pool);  // not add_op: that would mark the input as produced
  g.outputs = {r, r, 42};
  CHECK(g.values[static_cast<size_t>(orphan)].producer == -1);

  CHECK(messages(verify_graph(g)) ==
        std::vector<std::string>{
            "built.graph:2:1: error: int8 input 'x' has no scale; give it scale=S (real = S * q)",
            "built.graph:3:1: error: input 'h' is fp32 but has scale=0.5; only int8 values are quantized",
            "built.graph:6:1: error: value 'orphan' is not produced by any op",
            "built.graph:5:1: error: relu 'r' reads 'later' before it is computed; an op must come after the ops "
            "whose results it reads",
            "built.graph:4:1: error: relu takes 1 input (x), got 2",
            "built.graph:4:1: error: relu 'later' has no attribute 'alpha' (it takes none)",
            "built.graph:7:1: error: maxpool 'pool' writes 'x', which is an input",
            "built.graph:7:1: error: maxpool 'pool': attribute 'strides' must be a list of integers",
            "built.graph:7:1: error: maxpool 'pool' needs the attribute 'kernel' (window size per spatial dim)",
            "built.graph:5:1: error: 'r' is listed as an output twice",
            "built.graph: error: output index 42 is not a value of the graph",
        });

  // infer_shapes refuses the same graph with its first problem.
  try {
    infer_shapes(g);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "built.graph:2:1: error: int8 input 'x' has no scale; give it scale=S (real = S * q)");
  }
}

TEST_CASE("verify_graph wants every activation typed once shapes are inferred", "[errors][graph]") {
  Graph g;
  g.name = "untyped";
  int x = g.add_value(make_value("x", ValueKind::Input, DType::BF16, {2, 3}, 0, 2));
  int y = g.add_value(make_value("y", ValueKind::Activation, DType::BF16, {}, 0, 3));
  Op relu;
  relu.kind = OpKind::Relu;
  relu.name = "y";
  relu.inputs = {x};
  relu.output = y;
  relu.location = {"", 3, 1, ""};
  g.add_op(relu);
  g.outputs = {y};
  CHECK(messages(verify_graph(g)) ==
        std::vector<std::string>{"built.graph:3:1: error: value 'y' has no type yet; run infer_shapes"});
  infer_shapes(g);
  CHECK(g.values[static_cast<size_t>(y)].shape == std::vector<int64_t>{2, 3});
  CHECK(verify_graph(g).empty());
}
