// Bad program text -> the exact message a user sees, file:line:col included. Each case is a
// file in tests/errors/programs/; the parser stops at the first problem, the verifier lists
// every problem it finds (in program order, token balance last).
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "ir/program.h"
#include "test_util.h"

using namespace tpusim;

namespace {

enum class Stage { Parse, Verify, VerifyOs };

struct ErrorCase {
  const char* name;  // programs/NAME.tpu
  Stage stage;
  std::vector<std::string> messages;  // Error::what() of each problem, in order
};

// teach-4x4 (examples/arch/teach-4x4.yaml): 4x4 ws int8; ub 4 KiB, wb 256 B, acc 2 KiB.
TargetLimits teach_4x4(Dataflow dataflow) {
  TargetLimits t;
  t.rows = 4;
  t.cols = 4;
  t.dataflow = dataflow;
  t.operand_type = DType::Int8;
  t.buffer_bytes[static_cast<int>(Buffer::Unified)] = 4096;
  t.buffer_bytes[static_cast<int>(Buffer::Weight)] = 256;
  t.buffer_bytes[static_cast<int>(Buffer::Accumulator)] = 2048;
  return t;
}

const std::vector<ErrorCase> kCases = {
    {"bad-bool", Stage::Parse,
     {R"m(bad-bool.tpu:1:75: error: accumulate must be true or false, got 'maybe')m"}},
    {"bad-integer-suffix", Stage::Parse,
     {R"m(bad-integer-suffix.tpu:1:43: error: expected cols (an integer), found '4x')m"}},
    {"bad-integer", Stage::Parse,
     {R"m(bad-integer.tpu:1:37: error: expected count (an integer), found 'abc')m"}},
    {"bad-number", Stage::Parse,
     {R"m(bad-number.tpu:1:43: error: imm must be a number, got '1.5x')m"}},
    {"buffer-as-tensor", Stage::Parse,
     {R"m(buffer-as-tensor.tpu:2:24: error: 'ub' is an on-chip buffer, but this operand must be a DRAM tensor declared with `tensor`)m"}},
    {"close-without-repeat", Stage::Parse,
     {R"m(close-without-repeat.tpu:5:1: error: '}' without a matching `repeat ... {`)m"}},
    {"coordinate-count-many", Stage::Parse,
     {R"m(coordinate-count-many.tpu:2:24: error: tensor 'A' has 2 dimensions but 3 coordinates are given)m"}},
    {"coordinate-count", Stage::Parse,
     {R"m(coordinate-count.tpu:2:24: error: tensor 'A' has 2 dimensions but 1 coordinate is given)m"}},
    {"declaration-in-loop", Stage::Parse,
     {R"m(declaration-in-loop.tpu:2:3: error: tensor declarations must be at the top level, not inside a repeat)m"}},
    {"duplicate-loop-variable", Stage::Parse,
     {R"m(duplicate-loop-variable.tpu:3:10: error: loop variable 'i' is already used by an enclosing repeat)m"}},
    {"duplicate-tensor", Stage::Parse,
     {R"m(duplicate-tensor.tpu:3:8: error: tensor 'A' is declared twice (first at line 1))m"}},
    {"duplicate-token", Stage::Parse,
     {R"m(duplicate-token.tpu:3:7: error: token 'ready' is declared twice (first at line 1))m"}},
    {"empty-shape", Stage::Parse,
     {R"m(empty-shape.tpu:1:16: error: shape list is empty)m"}},
    {"loop-variable-outside-loop", Stage::Parse,
     {R"m(loop-variable-outside-loop.tpu:2:17: error: unknown name 'i': no loop variable is in scope here)m"}},
    {"missing-operand", Stage::Parse,
     {R"m(missing-operand.tpu:1:49: error: mxu.matmul is missing its 'dst_stride' operand)m"}},
    {"missing-type", Stage::Parse,
     {R"m(missing-type.tpu:1:20: error: expected ':TYPE' after ub[...] (e.g. ub[0]:int32): VPU operands say their element type)m"}},
    {"operand-twice", Stage::Parse,
     {R"m(operand-twice.tpu:1:54: error: operand 'rows' is given twice)m"}},
    {"operands-run-together-label", Stage::Parse,
     {R"m(operands-run-together-label.tpu:1:63: error: unexpected 'w' after the label operand (operands are separated by spaces))m"}},
    {"operands-run-together", Stage::Parse,
     {R"m(operands-run-together.tpu:1:36: error: expected rows (an integer), found '4cols')m"}},
    {"repeat-count-zero", Stage::Parse,
     {R"m(repeat-count-zero.tpu:1:10: error: the repeat count must be at least 1, got 0)m"}},
    {"tensor-as-buffer", Stage::Parse,
     {R"m(tensor-as-buffer.tpu:2:25: error: 'A' is a DRAM tensor, but this operand must be an on-chip buffer (ub, wb or acc))m"}},
    {"token-same-unit", Stage::Parse,
     {R"m(token-same-unit.tpu:1:19: error: a token orders two different units; dma already runs its own instructions in order)m"}},
    {"unclosed-repeat", Stage::Parse,
     {R"m(unclosed-repeat.tpu:6:1: error: unexpected end of file: `repeat i` opened at line 2 is never closed (add a line with `}`))m"}},
    {"unknown-buffer", Stage::Parse,
     {R"m(unknown-buffer.tpu:1:25: error: unknown buffer 'vb' (did you mean 'ub'?); buffers are ub, wb and acc)m"}},
    {"unknown-escape", Stage::Parse,
     {R"m(unknown-escape.tpu:1:64: error: unknown escape in string (only \" and \\))m"}},
    {"unknown-loop-variable", Stage::Parse,
     {R"m(unknown-loop-variable.tpu:4:25: error: unknown loop variable 'j' (in scope: i, k))m"}},
    {"unknown-opcode-far", Stage::Parse,
     {R"m(unknown-opcode-far.tpu:2:1: error: unknown instruction 'vpu.frobnicate' (see docs/program-format.md for the instruction set))m"}},
    {"unknown-opcode", Stage::Parse,
     {R"m(unknown-opcode.tpu:3:1: error: unknown instruction 'mxu.matmull'; did you mean 'mxu.matmul'?)m"}},
    {"unknown-operand-far", Stage::Parse,
     {R"m(unknown-operand-far.tpu:1:54: error: mxu.load_stationary has no operand 'colour' (operands: src, rows, cols, stride, transpose, wait, signal, label))m"}},
    {"unknown-operand", Stage::Parse,
     {R"m(unknown-operand.tpu:1:22: error: mxu.matmul has no operand 'strid'; did you mean 'stride'?)m"}},
    {"unknown-statement", Stage::Parse,
     {R"m(unknown-statement.tpu:1:1: error: unknown instruction 'tensr'; did you mean 'tensor'?)m"}},
    {"unknown-tensor-none-declared", Stage::Parse,
     {R"m(unknown-tensor-none-declared.tpu:1:24: error: unknown tensor 'A'; declare it first with `tensor NAME TYPE [dims] input|output|scratch`)m"}},
    {"unknown-tensor-typo", Stage::Parse,
     {R"m(unknown-tensor-typo.tpu:2:24: error: unknown tensor 'wieghts' (did you mean 'weights'?))m"}},
    {"unknown-tensor", Stage::Parse,
     {R"m(unknown-tensor.tpu:3:24: error: unknown tensor 'Q_input'; declared tensors: A, B)m"}},
    {"unknown-token-far", Stage::Parse,
     {R"m(unknown-token-far.tpu:3:51: error: unknown token 'zzz'; declare it with `token NAME PRODUCER -> CONSUMER`)m"}},
    {"unknown-token", Stage::Parse,
     {R"m(unknown-token.tpu:3:51: error: unknown token 'a_lodaed' (did you mean 'a_loaded'?))m"}},
    {"unknown-type", Stage::Parse,
     {R"m(unknown-type.tpu:1:20: error: unknown element type 'int16' (int8, int32, bf16, fp32))m"}},
    {"unterminated-string", Stage::Parse,
     {R"m(unterminated-string.tpu:2:50: error: unterminated string (missing closing '"'))m"}},
    // Programs that parse but are wrong for the target (teach-4x4, or os-4x4 for "-os").
    {"address-out-of-range", Stage::Verify,
     {R"m(address-out-of-range.tpu:6:3: error: dma.load dst accesses wb bytes [0, 272) but wb has 256 bytes (address out of range))m",
      R"m(address-out-of-range.tpu:9:1: error: mxu.matmul dst accesses acc bytes [0, 2064) but acc has 2048 bytes (address out of range))m",
      R"m(address-out-of-range.tpu:10:1: error: vpu.add dst accesses ub bytes [4092, 4100) but ub has 4096 bytes (address out of range))m"}},
    {"dma-shapes", Stage::Verify,
     {R"m(dma-shapes.tpu:2:1: error: dma.load has a 3-dimensional extent but tensor 'A' has 2 dimensions; give src_step to say how each extent dimension moves through the tensor)m",
      R"m(dma-shapes.tpu:3:1: error: dma.load src_step has 3 entries but the extent has 2 dimensions)m",
      R"m(dma-shapes.tpu:4:1: error: dma.load each src_step entry needs 2 values (the rank of 'A'), got 1)m",
      R"m(dma-shapes.tpu:5:1: error: dma.load extent must be at least 1 in every dimension, got 0)m",
      R"m(dma-shapes.tpu:6:1: error: dma.load extent has 5 dimensions; transfers have 1 to 4)m",
      R"m(dma-shapes.tpu:7:1: error: dma.load dst_stride has 3 entries but the extent has 2 dimensions)m"}},
    {"mxu-operand-buffers", Stage::Verify,
     {R"m(mxu-operand-buffers.tpu:1:1: error: mxu.load_stationary src must be in ub or wb; the accumulators hold results, not operands)m",
      R"m(mxu-operand-buffers.tpu:2:1: error: mxu.matmul dst must be in acc: the array writes into the accumulators)m"}},
    {"opcode-wrong-dataflow-os", Stage::VerifyOs,
     {R"m(opcode-wrong-dataflow-os.tpu:2:1: error: mxu.load_stationary needs a weight- or input-stationary (ws/is) array; this target is os (use mxu.matmul_os))m",
      R"m(opcode-wrong-dataflow-os.tpu:3:1: error: mxu.matmul needs a weight- or input-stationary (ws/is) array; this target is os (use mxu.matmul_os))m"}},
    {"opcode-wrong-dataflow", Stage::Verify,
     {R"m(opcode-wrong-dataflow.tpu:2:1: error: mxu.matmul_os needs an output-stationary (os) array; this target is ws (use mxu.load_stationary + mxu.matmul))m"}},
    {"shape-larger-than-array", Stage::Verify,
     {R"m(shape-larger-than-array.tpu:2:1: error: mxu.load_stationary rows must be between 1 and 4, got 8)m",
      R"m(shape-larger-than-array.tpu:3:1: error: mxu.load_stationary cols must be between 1 and 4, got 0)m",
      R"m(shape-larger-than-array.tpu:4:1: error: mxu.matmul count must be at least 1, got 0)m"}},
    {"store-into-input", Stage::Verify,
     {R"m(store-into-input.tpu:2:1: error: dma.store writes to 'A', an input tensor; stores go to output or scratch tensors)m"}},
    {"store-outside-tensor", Stage::Verify,
     {R"m(store-outside-tensor.tpu:3:3: error: dma.store writes outside tensor 'C': dimension 1 spans [0, 4] but its size is 4)m",
      R"m(store-outside-tensor.tpu:5:1: error: dma.store writes outside tensor 'C': dimension 0 spans [-1, -1] but its size is 4)m"}},
    {"token-wrong-unit", Stage::Verify,
     {R"m(token-wrong-unit.tpu:3:1: error: mxu.load_stationary runs on mxu but signals token 'loaded', which is produced by dma (declared at line 2))m",
      R"m(token-wrong-unit.tpu:4:1: error: dma.load runs on dma but waits on token 'loaded', which is consumed by mxu (declared at line 2))m"}},
    {"unbalanced-tokens", Stage::Verify,
     {R"m(unbalanced-tokens.tpu:3:1: error: token 'free' is signalled 0 times but waited on 3 times; every signal must be consumed by exactly one wait)m",
      R"m(unbalanced-tokens.tpu:4:1: error: token 'done' is signalled 3 times but waited on 0 times; every signal must be consumed by exactly one wait)m"}},
    {"vpu-type-mismatch", Stage::Verify,
     {R"m(vpu-type-mismatch.tpu:1:1: error: vpu.add operands must all have the same type (use vpu.copy to convert))m",
      R"m(vpu-type-mismatch.tpu:2:1: error: vpu.mul imm=0.5 must be an integer in the int32 range because the operands are int32)m",
      R"m(vpu-type-mismatch.tpu:3:1: error: vpu.max needs exactly one of src2 or imm as its second operand)m",
      R"m(vpu-type-mismatch.tpu:4:1: error: vpu.min needs exactly one of src2 or imm as its second operand)m",
      R"m(vpu-type-mismatch.tpu:4:1: error: vpu.min broadcast=true needs a src2 operand)m",
      R"m(vpu-type-mismatch.tpu:5:1: error: vpu.gelu works on floating-point operands (bf16 or fp32))m",
      R"m(vpu-type-mismatch.tpu:6:1: error: vpu.relu operands must have the same type (use vpu.copy to convert))m",
      R"m(vpu-type-mismatch.tpu:7:1: error: vpu.reduce_sum reduces int32, bf16 or fp32 rows, not int8)m",
      R"m(vpu-type-mismatch.tpu:8:1: error: vpu.requantize converts int32 to int8: src must be :int32 and dst :int8)m",
      R"m(vpu-type-mismatch.tpu:8:1: error: vpu.requantize shift must be between 0 and 62, got 63)m",
      R"m(vpu-type-mismatch.tpu:9:1: error: vpu.sub imm=inf must be an integer in the int32 range because the operands are int8)m",
      R"m(vpu-type-mismatch.tpu:10:1: error: vpu.copy rows and cols must be at least 1, got rows=0 cols=4)m"}},
};

std::string programs_dir() { return std::string(TPUSIM_TEST_DATA) + "/errors/programs"; }

// Parses (and for the verifier stages verifies) one case; returns the messages it produced.
std::vector<std::string> run_case(const ErrorCase& c) {
  std::string file = std::string(c.name) + ".tpu";
  std::string text = test::read_text_file(programs_dir() + "/" + file);
  std::vector<std::string> messages;
  if (c.stage == Stage::Parse) {
    try {
      parse_program(text, file);
    } catch (const Error& e) {
      messages.push_back(e.what());
    }
    return messages;
  }
  Program program = parse_program(text, file);  // must parse: the problem is for the verifier
  auto dataflow = c.stage == Stage::VerifyOs ? Dataflow::OutputStationary : Dataflow::WeightStationary;
  for (const auto& e : verify_program(program, teach_4x4(dataflow))) messages.push_back(e.what());
  return messages;
}

}  // namespace

TEST_CASE("bad programs give exact messages at file:line:col", "[errors][program]") {
  for (const auto& c : kCases) {
    DYNAMIC_SECTION(c.name) { CHECK(run_case(c) == c.messages); }
  }
}

TEST_CASE("every program in errors/programs has a case", "[errors][program]") {
  for (const auto& entry : std::filesystem::directory_iterator(programs_dir())) {
    std::string file = entry.path().filename().string();
    INFO(file);
    REQUIRE(file.size() > 4);
    REQUIRE(file.substr(file.size() - 4) == ".tpu");
    std::string name = file.substr(0, file.size() - 4);
    CHECK(std::count_if(kCases.begin(), kCases.end(),
                        [&](const ErrorCase& c) { return c.name == name; }) == 1);
  }
}

TEST_CASE("verify_program_or_throw reports the first problem and lists the others",
          "[errors][program]") {
  Program program = load_program(programs_dir() + "/token-wrong-unit.tpu");
  std::string path = programs_dir() + "/token-wrong-unit.tpu";
  try {
    verify_program_or_throw(program, teach_4x4(Dataflow::WeightStationary));
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.location().file == path);
    CHECK(e.location().line == 3);
    CHECK(std::string(e.what()) ==
          path + ":3:1: error: mxu.load_stationary runs on mxu but signals token 'loaded', which "
                 "is produced by dma (declared at line 2)\n" +
          path + ":4:1: error: dma.load runs on dma but waits on token 'loaded', which is "
                 "consumed by mxu (declared at line 2)");
  }
  // A clean program does not throw.
  Program clean = parse_program("tensor A int8 [4] input\ndma.load dst=ub[0] src=A[0] extent=[4]\n", "ok.tpu");
  CHECK_NOTHROW(verify_program_or_throw(clean, teach_4x4(Dataflow::WeightStationary)));
}
