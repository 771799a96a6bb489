#include "ir/program.h"
#include "ir/sizes.h"

#include <algorithm>
#include <fstream>

#include <fmt/format.h>
#include <sstream>

namespace tpusim {

std::string_view unit_name(Unit u) {
  switch (u) {
    case Unit::Dma: return "dma";
    case Unit::Mxu: return "mxu";
    case Unit::Vpu: return "vpu";
  }
  return "?";
}

std::optional<Unit> parse_unit(std::string_view name) {
  if (name == "dma") return Unit::Dma;
  if (name == "mxu") return Unit::Mxu;
  if (name == "vpu") return Unit::Vpu;
  return std::nullopt;
}

std::string_view tensor_kind_name(TensorKind k) {
  switch (k) {
    case TensorKind::Input: return "input";
    case TensorKind::Output: return "output";
    case TensorKind::Scratch: return "scratch";
  }
  return "?";
}

namespace {

using K = FieldKind;
using S = FieldSlot;

// Fields shared by VPU opcodes.
std::vector<FieldInfo> vpu_fields(bool binary, bool requantize) {
  std::vector<FieldInfo> f = {
      {"dst", K::TypedBufferRef, S::Dst, true},
      {"src", K::TypedBufferRef, S::Src, true},
  };
  if (binary) {
    f.push_back({"src2", K::TypedBufferRef, S::Src2, false});
    f.push_back({"imm", K::Double, S::Imm, false});
  }
  f.push_back({"rows", K::Int, S::Rows, false, 1});
  f.push_back({"cols", K::Int, S::Cols, true});
  f.push_back({"dst_stride", K::Int, S::DstStride, false});
  f.push_back({"src_stride", K::Int, S::SrcStride, false});
  if (binary) {
    f.push_back({"src2_stride", K::Int, S::Src2Stride, false});
    f.push_back({"broadcast", K::Bool, S::Broadcast, false});
  }
  if (requantize) {
    f.push_back({"multiplier", K::Int, S::Multiplier, false, 1});
    f.push_back({"shift", K::Int, S::Shift, false});
    f.push_back({"zero_point", K::Int, S::ZeroPoint, false});
  }
  return f;
}

std::vector<OpcodeInfo> build_opcode_table() {
  std::vector<OpcodeInfo> t;
  t.push_back({Opcode::DmaLoad, "dma.load", Unit::Dma,
               {{"dst", K::BufferRef, S::Buffer, true},
                {"src", K::TensorRef, S::Tensor, true},
                {"extent", K::IntList, S::Extent, true},
                {"src_step", K::IntListList, S::TensorStep, false},
                {"dst_stride", K::IntList, S::BufferStride, false},
                {"pad", K::Double, S::Imm, false}},
               "copy a strided block of a DRAM tensor into a buffer; outside the tensor reads `pad` (0)"});
  t.push_back({Opcode::DmaStore, "dma.store", Unit::Dma,
               {{"src", K::BufferRef, S::Buffer, true},
                {"dst", K::TensorRef, S::Tensor, true},
                {"extent", K::IntList, S::Extent, true},
                {"dst_step", K::IntListList, S::TensorStep, false},
                {"src_stride", K::IntList, S::BufferStride, false}},
               "copy a strided block of a buffer into a DRAM tensor"});
  t.push_back({Opcode::MxuLoadStationary, "mxu.load_stationary", Unit::Mxu,
               {{"src", K::BufferRef, S::Src, true},
                {"rows", K::Int, S::Rows, true},
                {"cols", K::Int, S::Cols, true},
                {"stride", K::Int, S::SrcStride, true},
                {"transpose", K::Bool, S::Transpose, false}},
               "ws/is: shift a rows x cols tile into the array (weights in ws, inputs in is)"});
  t.push_back({Opcode::MxuMatmul, "mxu.matmul", Unit::Mxu,
               {{"src", K::BufferRef, S::Src, true},
                {"stride", K::Int, S::SrcStride, true},
                {"count", K::Int, S::Count, true},
                {"dst", K::BufferRef, S::Dst, true},
                {"dst_stride", K::Int, S::DstStride, true},
                {"accumulate", K::Bool, S::Accumulate, false},
                {"vector_extent", K::IntList, S::VectorExtent, false},
                {"vector_stride", K::IntList, S::VectorStride, false},
                {"vector_start", K::Int, S::VectorStart, false}},
               "ws/is: stream count vectors through the stationary tile into the accumulators"});
  t.push_back({Opcode::MxuMatmulOs, "mxu.matmul_os", Unit::Mxu,
               {{"left", K::BufferRef, S::Src, true},
                {"left_stride", K::Int, S::SrcStride, true},
                {"top", K::BufferRef, S::Top, true},
                {"top_stride", K::Int, S::TopStride, true},
                {"rows", K::Int, S::Rows, true},
                {"cols", K::Int, S::Cols, true},
                {"count", K::Int, S::Count, true},
                {"dst", K::BufferRef, S::Dst, true},
                {"dst_stride", K::Int, S::DstStride, true},
                {"accumulate", K::Bool, S::Accumulate, false}},
               "os: stream left and top operands for count steps, then drain into the accumulators"});
  struct VpuOp {
    Opcode op;
    const char* name;
    bool binary, requantize;
    const char* summary;
  };
  const VpuOp vpu_ops[] = {
      {Opcode::VpuAdd, "vpu.add", true, false, "dst = src + src2 (or imm)"},
      {Opcode::VpuSub, "vpu.sub", true, false, "dst = src - src2 (or imm)"},
      {Opcode::VpuMul, "vpu.mul", true, false, "dst = src * src2 (or imm)"},
      {Opcode::VpuMax, "vpu.max", true, false, "dst = max(src, src2 (or imm))"},
      {Opcode::VpuMin, "vpu.min", true, false, "dst = min(src, src2 (or imm))"},
      {Opcode::VpuRelu, "vpu.relu", false, false, "dst = max(src, 0)"},
      {Opcode::VpuGelu, "vpu.gelu", false, false, "dst = gelu(src), tanh approximation"},
      {Opcode::VpuExp, "vpu.exp", false, false, "dst = exp(src)"},
      {Opcode::VpuReciprocal, "vpu.reciprocal", false, false, "dst = 1 / src"},
      {Opcode::VpuRsqrt, "vpu.rsqrt", false, false, "dst = 1 / sqrt(src)"},
      {Opcode::VpuCopy, "vpu.copy", false, false, "dst = src, converted to dst's type"},
      {Opcode::VpuRequantize, "vpu.requantize", false, true,
       "int32 -> int8: round((src * multiplier) / 2^shift) + zero_point, saturated"},
      {Opcode::VpuReduceSum, "vpu.reduce_sum", false, false, "dst[r] = sum of row r of src"},
      {Opcode::VpuReduceMax, "vpu.reduce_max", false, false, "dst[r] = max of row r of src"},
  };
  for (const auto& v : vpu_ops) {
    t.push_back({v.op, v.name, Unit::Vpu, vpu_fields(v.binary, v.requantize), v.summary});
  }
  return t;
}

const std::vector<OpcodeInfo>& opcode_table() {
  static const std::vector<OpcodeInfo> table = build_opcode_table();
  return table;
}

}  // namespace

const OpcodeInfo& opcode_info(Opcode op) {
  const auto& info = opcode_table()[static_cast<size_t>(op)];
  TPUSIM_CHECK(info.opcode == op, "opcode table out of order");
  return info;
}

std::optional<Opcode> parse_opcode(std::string_view mnemonic) {
  for (const auto& info : opcode_table()) {
    if (mnemonic == info.mnemonic) return info.opcode;
  }
  return std::nullopt;
}

std::vector<std::string> opcode_mnemonics() {
  std::vector<std::string> names;
  for (const auto& info : opcode_table()) names.emplace_back(info.mnemonic);
  return names;
}

bool is_vpu_binary(Opcode op) {
  return op == Opcode::VpuAdd || op == Opcode::VpuSub || op == Opcode::VpuMul ||
         op == Opcode::VpuMax || op == Opcode::VpuMin;
}

bool is_vpu_reduction(Opcode op) {
  return op == Opcode::VpuReduceSum || op == Opcode::VpuReduceMax;
}

BufferRef* buffer_slot(Instruction& in, FieldSlot slot) {
  switch (slot) {
    case S::Buffer: return &in.buffer;
    case S::Src: return &in.src;
    case S::Src2: return &in.src2;
    case S::Dst: return &in.dst;
    case S::Top: return &in.top;
    default: return nullptr;
  }
}
const BufferRef* buffer_slot(const Instruction& in, FieldSlot slot) {
  return buffer_slot(const_cast<Instruction&>(in), slot);
}

int64_t* int_slot(Instruction& in, FieldSlot slot) {
  switch (slot) {
    case S::Rows: return &in.rows;
    case S::Cols: return &in.cols;
    case S::Count: return &in.count;
    case S::SrcStride: return &in.src_stride;
    case S::Src2Stride: return &in.src2_stride;
    case S::DstStride: return &in.dst_stride;
    case S::TopStride: return &in.top_stride;
    case S::Multiplier: return &in.multiplier;
    case S::Shift: return &in.shift;
    case S::ZeroPoint: return &in.zero_point;
    case S::VectorStart: return &in.vector_start;
    default: return nullptr;
  }
}
const int64_t* int_slot(const Instruction& in, FieldSlot slot) {
  return int_slot(const_cast<Instruction&>(in), slot);
}

bool* bool_slot(Instruction& in, FieldSlot slot) {
  switch (slot) {
    case S::Accumulate: return &in.accumulate;
    case S::Transpose: return &in.transpose;
    case S::Broadcast: return &in.broadcast;
    default: return nullptr;
  }
}
const bool* bool_slot(const Instruction& in, FieldSlot slot) {
  return bool_slot(const_cast<Instruction&>(in), slot);
}

std::vector<int64_t>* int_list_slot(Instruction& in, FieldSlot slot) {
  switch (slot) {
    case S::Extent: return &in.extent;
    case S::BufferStride: return &in.buffer_stride;
    case S::VectorExtent: return &in.vector_extent;
    case S::VectorStride: return &in.vector_stride;
    default: return nullptr;
  }
}
const std::vector<int64_t>* int_list_slot(const Instruction& in, FieldSlot slot) {
  return int_list_slot(const_cast<Instruction&>(in), slot);
}

std::vector<int64_t> vector_offsets(const Instruction& in, int64_t k, int64_t element_bytes) {
  std::vector<int64_t> offsets(static_cast<size_t>(k));
  if (in.vector_extent.empty()) {
    for (int64_t r = 0; r < k; ++r) offsets[static_cast<size_t>(r)] = r * element_bytes;
    return offsets;
  }
  // The digits of vector_start, then counted up one element at a time.
  const size_t dims = in.vector_extent.size();
  std::vector<int64_t> digit(dims);
  int64_t rest = in.vector_start;
  for (size_t d = dims; d-- > 0;) {
    digit[d] = rest % in.vector_extent[d];
    rest /= in.vector_extent[d];
  }
  for (int64_t r = 0; r < k; ++r) {
    int64_t offset = 0;
    for (size_t d = 0; d < dims; ++d) offset += digit[d] * in.vector_stride[d];
    offsets[static_cast<size_t>(r)] = offset;
    for (size_t d = dims; d-- > 0;) {
      if (++digit[d] < in.vector_extent[d]) break;
      digit[d] = 0;
    }
  }
  return offsets;
}

std::vector<ByteRun> vector_runs(const std::vector<int64_t>& offsets, int64_t element_bytes) {
  std::vector<ByteRun> runs;
  for (int64_t offset : offsets) {
    if (!runs.empty() && runs.back().offset + runs.back().bytes == offset) {
      runs.back().bytes += element_bytes;
    } else {
      runs.push_back({offset, element_bytes});
    }
  }
  return runs;
}

ByteSpan vector_span(const Instruction& in, int64_t k, int64_t element_bytes) {
  if (in.vector_extent.empty()) return {0, k * element_bytes};
  const std::vector<int64_t> offsets = vector_offsets(in, k, element_bytes);
  const auto [low, high] = std::minmax_element(offsets.begin(), offsets.end());
  return {*low, *high + element_bytes};
}

std::optional<std::string> vector_pattern_problem(const Instruction& in, int64_t k) {
  if (in.vector_extent.empty()) {
    if (!in.vector_stride.empty() || in.vector_start != 0) {
      return std::string("vector_stride and vector_start need a vector_extent (the shape the vector's elements are read in)");
    }
    return std::nullopt;
  }
  if (in.vector_extent.size() > 4) {
    return fmt::format("vector_extent has {} dimensions; at most 4", in.vector_extent.size());
  }
  if (in.vector_stride.size() != in.vector_extent.size()) {
    return fmt::format("vector_stride has {} entries but vector_extent has {}; give one byte stride per dimension",
                       in.vector_stride.size(), in.vector_extent.size());
  }
  int64_t total = 1, span = 0;  // elements spanned; the largest offset
  for (size_t d = 0; d < in.vector_extent.size(); ++d) {
    const int64_t e = in.vector_extent[d], s = in.vector_stride[d];
    if (e < 1) return fmt::format("vector_extent[{}] must be at least 1, got {}", d, e);
    if (s < 0) return fmt::format("vector_stride[{}] must be at least 0 bytes, got {}", d, s);
    const std::string too_large = "vector_extent and vector_stride span more than 2^40 elements or 2^50 bytes";
    const std::optional<int64_t> next_total = checked_mul(total, e), term = checked_mul(e - 1, s);
    if (!next_total || !term || *next_total > (int64_t{1} << 40)) return too_large;
    const std::optional<int64_t> next_span = checked_add(span, *term);
    if (!next_span || *next_span > (int64_t{1} << 50)) return too_large;
    total = *next_total;
    span = *next_span;
  }
  if (in.vector_start < 0 || in.vector_start >= total) {
    return fmt::format("vector_start must be between 0 and {} (the elements vector_extent spans, less one), got {}",
                       total - 1, in.vector_start);
  }
  if (k > 0 && in.vector_start + k > total) {
    return fmt::format("a vector of {} elements from vector_start={} runs past the {} elements vector_extent spans",
                       k, in.vector_start, total);
  }
  return std::nullopt;
}

int64_t TensorDecl::element_count() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int Program::find_tensor(std::string_view name) const {
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int Program::find_token(std::string_view name) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

namespace {
uint8_t update_mask(std::vector<Node>& nodes) {
  uint8_t mask = 0;
  for (auto& node : nodes) {
    if (node.kind == Node::Kind::Instruction) {
      node.unit_mask = static_cast<uint8_t>(1u << static_cast<int>(unit_of(node.instruction.opcode)));
    } else if (node.kind == Node::Kind::Repeat) {
      node.unit_mask = node.loop_count > 0 ? update_mask(node.body) : 0;
      if (node.loop_count <= 0) update_mask(node.body);
    } else {
      node.unit_mask = 0;
    }
    mask |= node.unit_mask;
  }
  return mask;
}
}  // namespace

void Program::update_unit_masks() { update_mask(body); }

ProgramCursor::ProgramCursor(const Program& program, Unit unit)
    : unit_bit_(static_cast<uint8_t>(1u << static_cast<int>(unit))) {
  frames_.push_back({&program.body, 0, 0, 1});
}

const Instruction* ProgramCursor::next() {
  while (!frames_.empty()) {
    Frame& frame = frames_.back();
    if (frame.index >= frame.block->size()) {
      // End of a block: run the loop again or pop it.
      if (++frame.iteration < frame.count) {
        frame.index = 0;
        loop_values_[frames_.size() - 2] = frame.iteration;
        continue;
      }
      frames_.pop_back();
      continue;
    }
    const Node& node = (*frame.block)[frame.index++];
    if (!(node.unit_mask & unit_bit_)) continue;  // nothing for this unit in there
    if (node.kind == Node::Kind::Instruction) return &node.instruction;
    // A repeat with work for this unit: enter it.
    TPUSIM_CHECK(frames_.size() <= kMaxLoopDepth, "loop nesting deeper than kMaxLoopDepth");
    loop_values_[frames_.size() - 1] = 0;
    frames_.push_back({&node.body, 0, 0, node.loop_count});
  }
  return nullptr;
}

int64_t DmaPattern::element_count() const {
  int64_t n = 1;
  for (int64_t e : extent) n *= e;
  return n;
}

int64_t DmaPattern::low_offset() const {
  int64_t low = 0;
  for (size_t j = 0; j < extent.size(); ++j) low += std::min<int64_t>(0, (extent[j] - 1) * buffer_stride[j]);
  return low;
}

int64_t DmaPattern::high_offset() const {
  int64_t high = element_bytes;
  for (size_t j = 0; j < extent.size(); ++j) high += std::max<int64_t>(0, (extent[j] - 1) * buffer_stride[j]);
  return high;
}

std::optional<std::string> resolve_dma_pattern(const Program& program, const Instruction& in,
                                               DmaPattern& pattern) {
  const char* mnemonic = opcode_info(in.opcode).mnemonic;
  bool load = in.opcode == Opcode::DmaLoad;
  const TensorDecl& tensor = program.tensors.at(static_cast<size_t>(in.tensor.tensor));
  size_t dims = in.extent.size(), rank = tensor.shape.size();
  const char* step_name = load ? "src_step" : "dst_step";
  const char* stride_name = load ? "dst_stride" : "src_stride";
  if (dims < 1 || dims > 4) {
    return fmt::format("{} extent has {} dimensions; transfers have 1 to 4", mnemonic, dims);
  }
  for (int64_t e : in.extent) {
    if (e < 1) return fmt::format("{} extent must be at least 1 in every dimension, got {}", mnemonic, e);
    if (e > kMaxDimension) {
      return fmt::format("{} extent must be at most {} in every dimension, got {}", mnemonic, kMaxDimension, e);
    }
  }
  if (!checked_element_count(in.extent)) {
    return fmt::format("{} extent {} moves more than 2^48 elements, the most one transfer may move", mnemonic,
                       shape_text(in.extent));
  }
  pattern.extent = in.extent;
  pattern.element_bytes = dtype_size(tensor.dtype);
  pattern.tensor_step = in.tensor_step;
  if (pattern.tensor_step.empty()) {
    if (dims > rank) {
      return fmt::format("{} has a {}-dimensional extent but tensor '{}' has {} dimensions; give "
                         "{} to say how each extent dimension moves through the tensor",
                         mnemonic, dims, tensor.name, rank, step_name);
    }
    for (size_t j = 0; j < dims; ++j) {
      std::vector<int64_t> step(rank, 0);
      step[rank - dims + j] = 1;
      pattern.tensor_step.push_back(step);
    }
  } else {
    if (pattern.tensor_step.size() != dims) {
      return fmt::format("{} {} has {} entr{} but the extent has {} dimension{}", mnemonic, step_name,
                         pattern.tensor_step.size(), pattern.tensor_step.size() == 1 ? "y" : "ies", dims,
                         dims == 1 ? "" : "s");
    }
    for (const auto& step : pattern.tensor_step) {
      if (step.size() != rank) {
        return fmt::format("{} each {} entry needs {} values (the rank of '{}'), got {}",
                           mnemonic, step_name, rank, tensor.name, step.size());
      }
    }
  }
  pattern.buffer_stride = in.buffer_stride;
  if (pattern.buffer_stride.empty()) {
    pattern.buffer_stride.assign(dims, pattern.element_bytes);
    for (size_t j = dims - 1; j > 0; --j) {
      pattern.buffer_stride[j - 1] = pattern.buffer_stride[j] * in.extent[j];
    }
  } else if (pattern.buffer_stride.size() != dims) {
    return fmt::format("{} {} has {} entr{} but the extent has {} dimension{}", mnemonic, stride_name,
                       pattern.buffer_stride.size(), pattern.buffer_stride.size() == 1 ? "y" : "ies", dims,
                       dims == 1 ? "" : "s");
  }
  return std::nullopt;
}

namespace {
int64_t instances_in(const std::vector<Node>& nodes) {
  int64_t total = 0;
  for (const Node& node : nodes) {
    int64_t n = node.kind == Node::Kind::Instruction ? 1
                : node.kind == Node::Kind::Repeat    ? checked_mul(node.loop_count, instances_in(node.body)).value_or(INT64_MAX)
                                                     : 0;
    total = checked_add(total, n).value_or(INT64_MAX);
  }
  return total;
}
}  // namespace

int64_t instruction_instances(const Program& program) { return instances_in(program.body); }

Program load_program(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error({path, 0, 0, ""}, "cannot open program file (check the path)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_program(text.str(), path);
}

}  // namespace tpusim
