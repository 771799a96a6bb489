// The program IR: what the compiler emits and the simulator runs.
// A program declares DRAM tensors and dependency tokens, then lists instructions for three
// units (DMA, MXU, VPU), possibly inside `repeat` loops whose variables appear in affine
// addresses. Each unit executes its own instructions in program order; tokens order work
// between units. The textual form (`*.tpu`) is specified in docs/program-format.md; the
// reference interpreter (simulator/interpreter.h) is the definition of each instruction.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/diagnostics.h"
#include "ir/dtype.h"
#include "ir/target.h"

namespace tpusim {

enum class Unit : uint8_t { Dma, Mxu, Vpu };
constexpr int kUnitCount = 3;
std::string_view unit_name(Unit u);  // "dma", "mxu", "vpu"
std::optional<Unit> parse_unit(std::string_view name);

// The instruction set. One table (program.cpp, `opcode_info`) drives the parser, printer and
// verifier: mnemonic, unit and the fields each opcode takes.
enum class Opcode : uint8_t {
  // DMA: strided transfers between a DRAM tensor and an on-chip buffer.
  DmaLoad,   // DRAM -> buffer; coordinates outside the tensor read as `pad` (default 0)
  DmaStore,  // buffer -> DRAM; every coordinate must be inside the tensor
  // MXU
  MxuLoadStationary,  // ws/is: shift a rows x cols tile into the array's stationary registers
  MxuMatmul,          // ws/is: stream `count` vectors through the array into the accumulators
  MxuMatmulOs,        // os: stream both operands; outputs stay in the PEs, then drain
  // VPU: elementwise on rows x cols blocks, and row reductions.
  VpuAdd, VpuSub, VpuMul, VpuMax, VpuMin,           // dst = src (op) src2|imm
  VpuRelu, VpuGelu, VpuExp, VpuReciprocal, VpuRsqrt,  // dst = f(src)
  VpuCopy,        // dst = src converted to dst's type (moves between acc and ub)
  VpuRequantize,  // int32 -> int8: ((x * multiplier) rounded >> shift) + zero_point, saturated
  VpuReduceSum, VpuReduceMax,  // dst[r] = sum/max over the row src[r][0..cols)
};
constexpr int kOpcodeCount = static_cast<int>(Opcode::VpuReduceMax) + 1;

// An affine integer expression of the enclosing loop variables:
// constant + sum(coefficient * loop_var[depth]). Depth 0 is the outermost loop.
struct Affine {
  int64_t constant = 0;
  std::vector<std::pair<int, int64_t>> terms;  // (loop depth, coefficient), depth ascending

  Affine() = default;
  Affine(int64_t c) : constant(c) {}  // NOLINT: a constant is an affine expression
  int64_t evaluate(const int64_t* loop_values) const {
    int64_t v = constant;
    for (const auto& [depth, coefficient] : terms) v += coefficient * loop_values[depth];
    return v;
  }
  bool is_constant() const { return terms.empty(); }
  bool operator==(const Affine&) const = default;
};

// A location in an on-chip buffer, optionally with the element type stored there (VPU).
struct BufferRef {
  bool present = false;
  Buffer buffer = Buffer::Unified;
  Affine address;  // bytes
  DType type = DType::Int8;  // only meaningful for VPU operands (printed as `ub[0]:int8`)
};

// A coordinate in a DRAM tensor.
struct TensorRef {
  int tensor = -1;  // index into Program::tensors
  std::vector<Affine> coords;
};

// One instruction. Fields unused by an opcode stay at their defaults; which fields an opcode
// takes, and which are required, is in its OpcodeInfo.
struct Instruction {
  Opcode opcode = Opcode::DmaLoad;

  // DMA: an iteration space of `extent` (1..4 dims). Element i = (i0, i1, ...) moves between
  // tensor coordinate `tensor.coords + sum(i_j * tensor_step[j])` and buffer byte
  // `buffer.address + sum(i_j * buffer_stride[j])`. Empty step/stride lists mean the defaults
  // (see docs/program-format.md).
  BufferRef buffer;
  TensorRef tensor;
  std::vector<int64_t> extent;
  std::vector<std::vector<int64_t>> tensor_step;
  std::vector<int64_t> buffer_stride;

  // MXU and VPU operands.
  BufferRef src, src2, dst;
  int64_t rows = 0, cols = 0, count = 0;
  int64_t src_stride = 0, src2_stride = 0, dst_stride = 0;
  BufferRef top;            // matmul_os: the operand entering from the top
  int64_t top_stride = 0;
  bool accumulate = false;  // matmul: add to the accumulators instead of overwriting
  // mxu.matmul: where the K elements of each vector lie (empty = K contiguous elements). Element
  // r is at byte `sum_d digit_d(vector_start + r) * vector_stride[d]` from the vector's start,
  // with the digits of `vector_start + r` in the mixed radix `vector_extent` (last fastest):
  // an im2col window read in place, across kernel taps and rows (docs/program-format.md).
  std::vector<int64_t> vector_extent, vector_stride;
  int64_t vector_start = 0;
  bool transpose = false;   // load_stationary: read the tile column-major
  bool broadcast = false;   // VPU binary: src2 holds one element per row
  std::optional<double> imm;  // VPU binary: a scalar instead of src2; dma.load: the padding value
  int64_t multiplier = 1, shift = 0, zero_point = 0;  // requantize

  // Ordering and attribution.
  std::vector<int> waits;    // token indices; each wait consumes one signal
  std::vector<int> signals;  // token indices; signalled when the instruction completes
  std::string label;         // graph op / tile this came from, for per-layer reports
  std::string comment;       // trailing `# ...` text, kept for printing
  SourceLocation location;
};

enum class TensorKind : uint8_t { Input, Output, Scratch };
std::string_view tensor_kind_name(TensorKind k);  // "input", "output", "scratch"

struct TensorDecl {
  std::string name;
  DType dtype = DType::Int8;
  std::vector<int64_t> shape;
  TensorKind kind = TensorKind::Input;
  SourceLocation location;
  int64_t element_count() const;
  int64_t byte_size() const { return element_count() * dtype_size(dtype); }
};

// A counting token from one unit to another (VTA-style dependency queue). `signal` adds one,
// `wait` blocks until the count is positive and takes one. `initial` pre-loads the count
// (e.g. free slots of a double buffer).
struct TokenDecl {
  std::string name;
  Unit producer = Unit::Dma;
  Unit consumer = Unit::Mxu;
  int64_t initial = 0;
  SourceLocation location;
};

// One item of a program body, in textual order.
struct Node {
  enum class Kind : uint8_t { Instruction, Repeat, TensorDecl, TokenDecl, Comment, Blank };
  Kind kind = Kind::Blank;
  Instruction instruction;    // Kind::Instruction
  std::string loop_variable;  // Kind::Repeat
  int64_t loop_count = 0;
  std::vector<Node> body;
  int declaration = -1;       // Kind::TensorDecl / TokenDecl: index into the program's list
  std::string text;           // Kind::Comment: the text after '#'
  uint8_t unit_mask = 0;      // units with instructions in this node (bit = 1 << unit)
  SourceLocation location;
};

struct Program {
  std::vector<TensorDecl> tensors;
  std::vector<TokenDecl> tokens;
  std::vector<Node> body;
  std::string file;  // where it was parsed from, for messages

  int find_tensor(std::string_view name) const;  // -1 when absent
  int find_token(std::string_view name) const;
  // Recomputes Node::unit_mask bottom-up; call after building or editing a body.
  void update_unit_masks();
};

// The static description of an opcode: its mnemonic, unit and fields in printing order.
// Each field names the Instruction member it fills (`slot`), so the parser, printer and
// verifier are all driven by this one table.
enum class FieldKind : uint8_t { BufferRef, TypedBufferRef, TensorRef, Int, IntList, IntListList, Bool, Double };
enum class FieldSlot : uint8_t {
  Buffer, Tensor, Extent, TensorStep, BufferStride,  // DMA
  Src, Src2, Dst, Top,                               // operands
  Rows, Cols, Count, SrcStride, Src2Stride, DstStride, TopStride,
  VectorExtent, VectorStride, VectorStart,           // matmul's gathered vectors
  Accumulate, Transpose, Broadcast, Imm, Multiplier, Shift, ZeroPoint,
};
struct FieldInfo {
  const char* name;
  FieldKind kind;
  FieldSlot slot;
  bool required;
  int64_t default_value = 0;  // Int fields: the value that is left out when printing
};
struct OpcodeInfo {
  Opcode opcode;
  const char* mnemonic;  // "dma.load", "mxu.matmul", ...
  Unit unit;
  std::vector<FieldInfo> fields;
  const char* summary;
};
const OpcodeInfo& opcode_info(Opcode op);
std::optional<Opcode> parse_opcode(std::string_view mnemonic);
std::vector<std::string> opcode_mnemonics();
inline Unit unit_of(Opcode op) { return opcode_info(op).unit; }
bool is_vpu_binary(Opcode op);  // add, sub, mul, max, min
bool is_vpu_reduction(Opcode op);

// Member access by slot (nullptr when the slot is not of that type).
BufferRef* buffer_slot(Instruction& in, FieldSlot slot);
const BufferRef* buffer_slot(const Instruction& in, FieldSlot slot);
int64_t* int_slot(Instruction& in, FieldSlot slot);
const int64_t* int_slot(const Instruction& in, FieldSlot slot);
bool* bool_slot(Instruction& in, FieldSlot slot);
const bool* bool_slot(const Instruction& in, FieldSlot slot);
std::vector<int64_t>* int_list_slot(Instruction& in, FieldSlot slot);
const std::vector<int64_t>* int_list_slot(const Instruction& in, FieldSlot slot);

// mxu.matmul's vector of K elements: the byte offset of each element from the vector's start
// (element r at offsets[r]; plain r * element_bytes without a vector pattern), and the
// contiguous runs they form, in order. The pattern must have been verified
// (vector_pattern_problem).
std::vector<int64_t> vector_offsets(const Instruction& in, int64_t k, int64_t element_bytes);
struct ByteRun {
  int64_t offset = 0, bytes = 0;
};
std::vector<ByteRun> vector_runs(const std::vector<int64_t>& offsets, int64_t element_bytes);
// The bytes one vector of `k` elements touches, [low, high) from the vector's start.
struct ByteSpan {
  int64_t low = 0, high = 0;
};
ByteSpan vector_span(const Instruction& in, int64_t k, int64_t element_bytes);
// What is wrong with a matmul's vector pattern for vectors of `k` elements (k = 0: not known
// yet, only the pattern itself is checked); nullopt when it is sound. Its sizes are bounded
// (2^40 elements, 2^50 bytes) so no offset can overflow.
std::optional<std::string> vector_pattern_problem(const Instruction& in, int64_t k);

// A DMA transfer with its defaults resolved: for each extent dimension j, the step it takes
// through the tensor's coordinates and the stride it takes through the buffer, in bytes.
struct DmaPattern {
  std::vector<int64_t> extent;
  std::vector<std::vector<int64_t>> tensor_step;  // [extent dim][tensor dim]
  std::vector<int64_t> buffer_stride;
  int64_t element_bytes = 1;
  int64_t element_count() const;
  // Buffer byte offsets of the lowest and one past the highest byte touched (relative to the
  // base address).
  int64_t low_offset() const;
  int64_t high_offset() const;
};
// Fills in the default steps/strides; returns a message instead when the transfer's lists
// don't fit the tensor (the verifier reports it).
std::optional<std::string> resolve_dma_pattern(const Program& program, const Instruction& in,
                                               DmaPattern& pattern);

// Walks one unit's instructions in program order, expanding `repeat` loops lazily (nothing is
// materialized: a loop of a million tiles costs a few words of state).
class ProgramCursor {
 public:
  ProgramCursor(const Program& program, Unit unit);
  // The next instruction for this unit, or nullptr when the unit's stream has ended.
  // `loop_values()` then holds the values of the enclosing loop variables by depth.
  const Instruction* next();
  const int64_t* loop_values() const { return loop_values_.data(); }
  int loop_depth() const { return static_cast<int>(frames_.size()) - 1; }

 private:
  struct Frame {
    const std::vector<Node>* block;
    size_t index;
    int64_t iteration;
    int64_t count;
  };
  uint8_t unit_bit_;
  std::vector<Frame> frames_;
  std::array<int64_t, 16> loop_values_{};
};

constexpr int kMaxLoopDepth = 16;

// How many instructions running `program` executes, each iteration of a `repeat` counted;
// INT64_MAX when that is more than fits (a loop of 2^40 inside a loop of 2^40).
int64_t instruction_instances(const Program& program);

// Parses `*.tpu` text. Throws tpusim::Error at the first problem, located at line:column.
Program parse_program(const std::string& text, const std::string& file_name);
Program load_program(const std::string& path);
// Prints the canonical text; parse_program(print_program(p)) prints identically.
std::string print_program(const Program& program);
std::string print_instruction(const Program& program, const Instruction& in,
                              const std::vector<std::string>& loop_variables);

// Checks a program against a target: opcodes legal for the dataflow, shapes within the array,
// every address range (over all loop iterations) inside its buffer, store coordinates inside
// their tensors, operand types, token producers/consumers and balance. Returns every problem.
std::vector<Error> verify_program(const Program& program, const TargetLimits& target);
// Throws the first problem (with a count of the others) if there are any.
void verify_program_or_throw(const Program& program, const TargetLimits& target);

}  // namespace tpusim
