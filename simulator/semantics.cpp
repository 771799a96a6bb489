#include "simulator/semantics.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "simulator/random_data.h"
#include "ir/sizes.h"

namespace tpusim {

Traffic& Traffic::operator+=(const Traffic& o) {
  for (int b = 0; b < kBufferCount; ++b) {
    buffer_read[b] += o.buffer_read[b];
    buffer_written[b] += o.buffer_written[b];
  }
  dram_read += o.dram_read;
  dram_written += o.dram_written;
  return *this;
}

int64_t machine_state_bytes(const Program& program, const TargetLimits& target) {
  int64_t bytes = 0;
  for (int b = 0; b < kBufferCount; ++b) bytes = checked_add(bytes, target.buffer_bytes[b]).value_or(INT64_MAX);
  // Tensor shapes are checked when parsed or emitted: each is at most 2^48 elements.
  for (const auto& t : program.tensors) bytes = checked_add(bytes, t.byte_size()).value_or(INT64_MAX);
  return bytes;
}

MachineState make_machine_state(const Program& program, const TargetLimits& target, const ResourceLimits& limits) {
  require_memory(machine_state_bytes(program, target), limits, {program.file, 0, 0, ""},
                 "the simulated machine (its on-chip buffers and DRAM tensors)");
  MachineState state;
  for (int b = 0; b < kBufferCount; ++b) {
    state.buffers[b].assign(static_cast<size_t>(target.buffer_bytes[b]), 0);
  }
  for (const auto& t : program.tensors) state.dram.emplace_back(static_cast<size_t>(t.byte_size()), 0);
  return state;
}

namespace {

int index(Buffer b) { return static_cast<int>(b); }

// Bounding range of `count` rows of `row_bytes` bytes, `stride` apart, starting at `base`.
AccessRange rows_range(Buffer buffer, int64_t base, int64_t count, int64_t stride, int64_t row_bytes,
                       bool write) {
  int64_t span = (count - 1) * stride;
  return {buffer, base + std::min<int64_t>(0, span), base + std::max<int64_t>(0, span) + row_bytes, write};
}

// Row stride of a VPU operand: 0 means dense.
int64_t vpu_stride(int64_t stride, int64_t dense) { return stride != 0 ? stride : dense; }

}  // namespace

int64_t dma_bytes(const Program& program, const Instruction& in) {
  int64_t n = dtype_size(program.tensors.at(static_cast<size_t>(in.tensor.tensor)).dtype);
  for (int64_t e : in.extent) n *= e;
  return n;
}

std::vector<AccessRange> instruction_accesses(const Program& program, const TargetLimits& target,
                                              const InstructionInstance& instance,
                                              const StationaryTile& tile) {
  const Instruction& in = *instance.instruction;
  const char* mnemonic = opcode_info(in.opcode).mnemonic;
  std::vector<AccessRange> ranges;
  std::vector<const char*> names;
  auto add = [&](const char* name, AccessRange r) {
    ranges.push_back(r);
    names.push_back(name);
  };
  int64_t element = dtype_size(target.operand_type);
  switch (in.opcode) {
    case Opcode::DmaLoad:
    case Opcode::DmaStore: {
      DmaPattern pattern;
      if (auto problem = resolve_dma_pattern(program, in, pattern)) throw Error(in.location, *problem);
      int64_t base = instance.address(in.buffer);
      bool load = in.opcode == Opcode::DmaLoad;
      add(load ? "dst" : "src", {in.buffer.buffer, base + pattern.low_offset(), base + pattern.high_offset(), load});
      break;
    }
    case Opcode::MxuLoadStationary: {
      int64_t outer = in.transpose ? in.cols : in.rows, inner = in.transpose ? in.rows : in.cols;
      add("src", rows_range(in.src.buffer, instance.address(in.src), outer, in.src_stride, inner * element, false));
      break;
    }
    case Opcode::MxuMatmul:
      if (tile.rows == 0) {
        throw Error(in.location, "mxu.matmul runs before any mxu.load_stationary: the array holds no tile");
      }
      if (auto problem = vector_pattern_problem(in, tile.rows)) throw Error(in.location, fmt::format("{} {}", mnemonic, *problem));
      {
        // Each vector spans [low, high) from its start (K contiguous elements without a pattern).
        const ByteSpan vector = vector_span(in, tile.rows, element);
        AccessRange r = rows_range(in.src.buffer, instance.address(in.src), in.count, in.src_stride, 0, false);
        r.begin += vector.low;
        r.end += vector.high;
        add("src", r);
      }
      add("dst", rows_range(in.dst.buffer, instance.address(in.dst), in.count, in.dst_stride, tile.cols * 4, true));
      break;
    case Opcode::MxuMatmulOs:
      add("left", rows_range(in.src.buffer, instance.address(in.src), in.count, in.src_stride, in.rows * element, false));
      add("top", rows_range(in.top.buffer, instance.address(in.top), in.count, in.top_stride, in.cols * element, false));
      add("dst", rows_range(in.dst.buffer, instance.address(in.dst), in.rows, in.dst_stride, in.cols * 4, true));
      break;
    default: {  // VPU
      int64_t src_element = dtype_size(in.src.type), dst_element = dtype_size(in.dst.type);
      add("src", rows_range(in.src.buffer, instance.address(in.src), in.rows,
                            vpu_stride(in.src_stride, in.cols * src_element), in.cols * src_element, false));
      if (in.src2.present) {
        int64_t e2 = dtype_size(in.src2.type);
        add("src2", in.broadcast
                        ? rows_range(in.src2.buffer, instance.address(in.src2), in.rows, vpu_stride(in.src2_stride, e2), e2, false)
                        : rows_range(in.src2.buffer, instance.address(in.src2), in.rows,
                                     vpu_stride(in.src2_stride, in.cols * e2), in.cols * e2, false));
      }
      if (is_vpu_reduction(in.opcode)) {
        add("dst", rows_range(in.dst.buffer, instance.address(in.dst), in.rows, vpu_stride(in.dst_stride, dst_element),
                              dst_element, true));
      } else {
        add("dst", rows_range(in.dst.buffer, instance.address(in.dst), in.rows,
                              vpu_stride(in.dst_stride, in.cols * dst_element), in.cols * dst_element, true));
      }
      break;
    }
  }
  for (size_t i = 0; i < ranges.size(); ++i) {
    const auto& r = ranges[i];
    int64_t size = target.buffer_bytes[index(r.buffer)];
    if (r.begin < 0 || r.end > size) {
      throw Error(in.location, fmt::format("{} {} accesses {}[{}, {}) but {} has {} bytes (address "
                                           "out of range)", mnemonic, names[i], buffer_name(r.buffer),
                                           r.begin, r.end, buffer_name(r.buffer), size));
    }
  }
  return ranges;
}

void execute_dma(const Program& program, const InstructionInstance& instance, MachineState& state,
                 Traffic& traffic) {
  const Instruction& in = *instance.instruction;
  DmaPattern pattern;
  if (auto problem = resolve_dma_pattern(program, in, pattern)) throw Error(in.location, *problem);
  const TensorDecl& tensor = program.tensors[static_cast<size_t>(in.tensor.tensor)];
  auto& dram = state.dram[static_cast<size_t>(in.tensor.tensor)];
  auto& buffer = state.buffers[index(in.buffer.buffer)];
  const size_t rank = tensor.shape.size(), dims = pattern.extent.size();
  const int64_t element = pattern.element_bytes;
  const bool load = in.opcode == Opcode::DmaLoad;

  std::vector<int64_t> tensor_stride(rank, 1), base(rank), coord(rank);
  for (size_t d = rank - 1; d > 0; --d) tensor_stride[d - 1] = tensor_stride[d] * tensor.shape[d];
  for (size_t d = 0; d < rank; ++d) base[d] = in.tensor.coords[d].evaluate(instance.loop_values);
  const int64_t buffer_base = instance.address(in.buffer);

  // Padding bytes: `pad` stored in the tensor's type (rounded / saturated as stores are).
  std::array<uint8_t, 4> padding{};
  if (load && in.imm) store_element(tensor.dtype, padding.data(), *in.imm);

  std::vector<int64_t> i(dims, 0);
  int64_t elements = pattern.element_count(), inside = 0;
  for (int64_t n = 0; n < elements; ++n) {
    int64_t address = buffer_base;
    bool in_bounds = true;
    int64_t offset = 0;
    for (size_t j = 0; j < dims; ++j) address += i[j] * pattern.buffer_stride[j];
    for (size_t d = 0; d < rank; ++d) {
      int64_t c = base[d];
      for (size_t j = 0; j < dims; ++j) c += i[j] * pattern.tensor_step[j][d];
      coord[d] = c;
      if (c < 0 || c >= tensor.shape[d]) in_bounds = false;
      offset += c * tensor_stride[d];
    }
    uint8_t* buffer_bytes = buffer.data() + address;
    if (load) {
      if (in_bounds) {
        std::memcpy(buffer_bytes, dram.data() + offset * element, static_cast<size_t>(element));
        ++inside;
      } else {
        std::memcpy(buffer_bytes, padding.data(), static_cast<size_t>(element));  // padding
      }
    } else {
      if (!in_bounds) {
        throw Error(in.location, fmt::format("dma.store writes outside tensor '{}' at coordinate [{}]",
                                             tensor.name, fmt::join(coord, ",")));
      }
      std::memcpy(dram.data() + offset * element, buffer_bytes, static_cast<size_t>(element));
      ++inside;
    }
    for (size_t j = dims; j-- > 0;) {  // next index, row-major
      if (++i[j] < pattern.extent[j]) break;
      i[j] = 0;
    }
  }
  if (load) {
    // An extent dimension with a zero tensor step repeats what it read (a broadcast, e.g. a
    // bias row for every output pixel): the DMA reads it from DRAM once and replicates it.
    int64_t repeats = 1;
    for (size_t j = 0; j < dims; ++j) {
      if (std::all_of(pattern.tensor_step[j].begin(), pattern.tensor_step[j].end(), [](int64_t v) { return v == 0; })) {
        repeats *= pattern.extent[j];
      }
    }
    traffic.dram_read += inside / repeats * element;
    traffic.buffer_written[index(in.buffer.buffer)] += elements * element;
  } else {
    traffic.dram_written += inside * element;
    traffic.buffer_read[index(in.buffer.buffer)] += elements * element;
  }
}

namespace {

// Integer results: int32 wraps (two's complement), int8 saturates.
void store_integer(DType type, uint8_t* p, int64_t value) {
  if (type == DType::Int8) {
    *p = static_cast<uint8_t>(static_cast<int8_t>(std::clamp<int64_t>(value, -128, 127)));
  } else {
    uint32_t bits = static_cast<uint32_t>(static_cast<uint64_t>(value));
    std::memcpy(p, &bits, 4);
  }
}

int64_t load_integer(DType type, const uint8_t* p) {
  if (type == DType::Int8) return static_cast<int8_t>(*p);
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

float load_float(DType type, const uint8_t* p) { return static_cast<float>(load_element(type, p)); }

void store_float(DType type, uint8_t* p, float value) { store_element(type, p, value); }

float gelu(float x) {
  const float k = 0.7978845608f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

int64_t binary_integer(Opcode op, int64_t a, int64_t b) {
  switch (op) {
    case Opcode::VpuAdd: return a + b;
    case Opcode::VpuSub: return a - b;
    case Opcode::VpuMul: return a * b;
    case Opcode::VpuMax: return std::max(a, b);
    case Opcode::VpuMin: return std::min(a, b);
    default: internal_error(__FILE__, __LINE__, "not a binary VPU op");
  }
}

float binary_float(Opcode op, float a, float b) {
  switch (op) {
    case Opcode::VpuAdd: return a + b;
    case Opcode::VpuSub: return a - b;
    case Opcode::VpuMul: return a * b;
    case Opcode::VpuMax: return a >= b ? a : b;
    case Opcode::VpuMin: return a <= b ? a : b;
    default: internal_error(__FILE__, __LINE__, "not a binary VPU op");
  }
}

float unary_float(Opcode op, float x) {
  switch (op) {
    case Opcode::VpuRelu: return x > 0.0f ? x : 0.0f;
    case Opcode::VpuGelu: return gelu(x);
    case Opcode::VpuExp: return std::exp(x);
    case Opcode::VpuReciprocal: return 1.0f / x;
    case Opcode::VpuRsqrt: return 1.0f / std::sqrt(x);
    default: internal_error(__FILE__, __LINE__, "not a unary float VPU op");
  }
}

// requantize: ((x * multiplier + 2^(shift-1)) >> shift) + zero_point, saturated to int8.
int64_t requantize(int64_t x, int64_t multiplier, int64_t shift, int64_t zero_point) {
  int64_t product = x * multiplier;
  int64_t rounded = shift == 0 ? product : (product + (int64_t{1} << (shift - 1))) >> shift;
  return std::clamp<int64_t>(rounded + zero_point, -128, 127);
}

}  // namespace

void execute_vpu(const InstructionInstance& instance, MachineState& state, Traffic& traffic) {
  const Instruction& in = *instance.instruction;
  const DType dst_type = in.dst.type, src_type = in.src.type, src2_type = in.src2.type;
  const int64_t dst_e = dtype_size(dst_type), src_e = dtype_size(src_type), src2_e = dtype_size(src2_type);
  uint8_t* dst = state.buffers[index(in.dst.buffer)].data() + instance.address(in.dst);
  const uint8_t* src = state.buffers[index(in.src.buffer)].data() + instance.address(in.src);
  const uint8_t* src2 = in.src2.present
                            ? state.buffers[index(in.src2.buffer)].data() + instance.address(in.src2)
                            : nullptr;
  const bool reduction = is_vpu_reduction(in.opcode);
  const int64_t dst_stride = vpu_stride(in.dst_stride, reduction ? dst_e : in.cols * dst_e);
  const int64_t src_stride = vpu_stride(in.src_stride, in.cols * src_e);
  const int64_t src2_stride = vpu_stride(in.src2_stride, in.broadcast ? src2_e : in.cols * src2_e);
  const bool floating = is_float(src_type);

  for (int64_t r = 0; r < in.rows; ++r) {
    const uint8_t* s = src + r * src_stride;
    uint8_t* d = dst + r * dst_stride;
    const uint8_t* s2 = src2 ? src2 + r * src2_stride : nullptr;
    if (reduction) {
      bool sum = in.opcode == Opcode::VpuReduceSum;
      if (floating) {
        float acc = sum ? 0.0f : load_float(src_type, s);
        for (int64_t c = sum ? 0 : 1; c < in.cols; ++c) {
          float x = load_float(src_type, s + c * src_e);
          acc = sum ? acc + x : (x > acc ? x : acc);
        }
        store_float(dst_type, d, acc);
      } else {
        int64_t acc = sum ? 0 : load_integer(src_type, s);
        for (int64_t c = sum ? 0 : 1; c < in.cols; ++c) {
          int64_t x = load_integer(src_type, s + c * src_e);
          acc = sum ? static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(acc + x))) : std::max(acc, x);
        }
        store_integer(dst_type, d, acc);
      }
      continue;
    }
    for (int64_t c = 0; c < in.cols; ++c) {
      const uint8_t* x = s + c * src_e;
      uint8_t* y = d + c * dst_e;
      if (is_vpu_binary(in.opcode)) {
        const uint8_t* x2 = s2 ? (in.broadcast ? s2 : s2 + c * src2_e) : nullptr;
        if (floating) {
          float b = x2 ? load_float(src2_type, x2) : static_cast<float>(*in.imm);
          store_float(dst_type, y, binary_float(in.opcode, load_float(src_type, x), b));
        } else {
          int64_t b = x2 ? load_integer(src2_type, x2) : static_cast<int64_t>(*in.imm);
          store_integer(dst_type, y, binary_integer(in.opcode, load_integer(src_type, x), b));
        }
      } else if (in.opcode == Opcode::VpuCopy) {
        if (!floating && !is_float(dst_type)) {
          // int8 <-> int32: saturate on narrowing.
          int64_t v = load_integer(src_type, x);
          store_integer(dst_type, y, dst_type == DType::Int8 ? std::clamp<int64_t>(v, -128, 127) : v);
        } else {
          // Through fp32 for float destinations; integer destinations round to nearest even.
          double v = load_element(src_type, x);
          if (is_float(dst_type)) v = static_cast<float>(v);
          store_element(dst_type, y, v);
        }
      } else if (in.opcode == Opcode::VpuRequantize) {
        store_integer(DType::Int8, y, requantize(load_integer(DType::Int32, x), in.multiplier, in.shift, in.zero_point));
      } else if (in.opcode == Opcode::VpuRelu && !floating) {
        store_integer(dst_type, y, std::max<int64_t>(0, load_integer(src_type, x)));
      } else {
        store_float(dst_type, y, unary_float(in.opcode, load_float(src_type, x)));
      }
    }
  }
  int64_t elements = in.rows * in.cols;
  traffic.buffer_read[index(in.src.buffer)] += elements * src_e;
  if (src2) traffic.buffer_read[index(in.src2.buffer)] += (in.broadcast ? in.rows : elements) * src2_e;
  traffic.buffer_written[index(in.dst.buffer)] += (reduction ? in.rows : elements) * dst_e;
}

void execute_load_stationary(const InstructionInstance& instance, DType operand_type,
                             const MachineState& state, StationaryTile& tile, Traffic& traffic) {
  const Instruction& in = *instance.instruction;
  const int64_t e = dtype_size(operand_type);
  const uint8_t* src = state.buffers[index(in.src.buffer)].data() + instance.address(in.src);
  tile.rows = in.rows;
  tile.cols = in.cols;
  tile.elements.assign(static_cast<size_t>(in.rows * in.cols * e), 0);
  for (int64_t r = 0; r < in.rows; ++r) {
    for (int64_t c = 0; c < in.cols; ++c) {
      int64_t offset = in.transpose ? c * in.src_stride + r * e : r * in.src_stride + c * e;
      std::memcpy(&tile.elements[static_cast<size_t>((r * in.cols + c) * e)], src + offset, static_cast<size_t>(e));
    }
  }
  traffic.buffer_read[index(in.src.buffer)] += in.rows * in.cols * e;
}

namespace {

// A column sum in the accumulator type, in row order from 0: int32 wraps; fp32 adds the
// (exact) bf16 x bf16 products one at a time, rounding to nearest even after each add.
struct DotProduct {
  DType operand_type;
  uint32_t integer = 0;
  float floating = 0.0f;
  void add(const uint8_t* a, const uint8_t* b) {
    if (operand_type == DType::Int8) {
      integer += static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(*a)) * static_cast<int8_t>(*b));
    } else {
      uint16_t x, y;
      std::memcpy(&x, a, 2);
      std::memcpy(&y, b, 2);
      floating = floating + bf16_to_float(x) * bf16_to_float(y);
    }
  }
  uint32_t bits() const { return operand_type == DType::Int8 ? integer : std::bit_cast<uint32_t>(floating); }
};

}  // namespace

const uint8_t* gather_vector(const uint8_t* src, const std::vector<int64_t>& offsets, int64_t element_bytes,
                             std::vector<uint8_t>& out) {
  if (offsets.empty()) return src;
  const size_t e = static_cast<size_t>(element_bytes);
  out.resize(offsets.size() * e);
  for (size_t r = 0; r < offsets.size(); ++r) std::memcpy(&out[r * e], src + offsets[r], e);
  return out.data();
}

MatmulResult reference_matmul(const InstructionInstance& instance, DType operand_type,
                              const MachineState& state, const StationaryTile& tile) {
  const Instruction& in = *instance.instruction;
  const int64_t e = dtype_size(operand_type);
  const uint8_t* src = state.buffers[index(in.src.buffer)].data() + instance.address(in.src);
  MatmulResult result{in.count, tile.cols, {}};
  result.values.resize(static_cast<size_t>(in.count * tile.cols));
  const std::vector<int64_t> offsets = vector_offsets(in, tile.rows, e);
  for (int64_t t = 0; t < in.count; ++t) {
    const uint8_t* x = src + t * in.src_stride;
    for (int64_t c = 0; c < tile.cols; ++c) {
      DotProduct dot{operand_type};
      for (int64_t r = 0; r < tile.rows; ++r) {
        dot.add(x + offsets[static_cast<size_t>(r)], &tile.elements[static_cast<size_t>((r * tile.cols + c) * e)]);
      }
      result.values[static_cast<size_t>(t * tile.cols + c)] = dot.bits();
    }
  }
  return result;
}

MatmulResult reference_matmul_os(const InstructionInstance& instance, DType operand_type,
                                 const MachineState& state) {
  const Instruction& in = *instance.instruction;
  const int64_t e = dtype_size(operand_type);
  const uint8_t* left = state.buffers[index(in.src.buffer)].data() + instance.address(in.src);
  const uint8_t* top = state.buffers[index(in.top.buffer)].data() + instance.address(in.top);
  MatmulResult result{in.rows, in.cols, {}};
  result.values.resize(static_cast<size_t>(in.rows * in.cols));
  for (int64_t m = 0; m < in.rows; ++m) {
    for (int64_t n = 0; n < in.cols; ++n) {
      DotProduct dot{operand_type};
      for (int64_t t = 0; t < in.count; ++t) {
        dot.add(left + t * in.src_stride + m * e, top + t * in.top_stride + n * e);
      }
      result.values[static_cast<size_t>(m * in.cols + n)] = dot.bits();
    }
  }
  return result;
}

void accumulate_element(DType operand_type, uint8_t* address, uint32_t value, bool accumulate) {
  if (accumulate) {
    uint32_t old;
    std::memcpy(&old, address, 4);
    if (operand_type == DType::Int8) {
      value = old + value;
    } else {
      value = std::bit_cast<uint32_t>(std::bit_cast<float>(old) + std::bit_cast<float>(value));
    }
  }
  std::memcpy(address, &value, 4);
}

void write_accumulators(const InstructionInstance& instance, DType operand_type,
                        const MatmulResult& result, MachineState& state, Traffic& traffic) {
  const Instruction& in = *instance.instruction;
  uint8_t* dst = state.buffers[index(Buffer::Accumulator)].data() + instance.address(in.dst);
  for (int64_t t = 0; t < result.rows; ++t) {
    for (int64_t c = 0; c < result.cols; ++c) {
      accumulate_element(operand_type, dst + t * in.dst_stride + c * 4,
                         result.values[static_cast<size_t>(t * result.cols + c)], in.accumulate);
    }
  }
  int64_t bytes = result.rows * result.cols * 4;
  traffic.buffer_written[index(Buffer::Accumulator)] += bytes;
  if (in.accumulate) traffic.buffer_read[index(Buffer::Accumulator)] += bytes;
}

void load_program_inputs(const Program& program, const std::string& directory, uint64_t seed,
                         MachineState& state) {
  for (size_t i = 0; i < program.tensors.size(); ++i) {
    const TensorDecl& decl = program.tensors[i];
    auto& bytes = state.dram[i];
    if (decl.kind != TensorKind::Input) {
      std::fill(bytes.begin(), bytes.end(), 0);
      continue;
    }
    std::string path = directory.empty() ? std::string() : directory + "/" + decl.name + ".npy";
    if (!path.empty() && std::filesystem::exists(path)) {
      HostTensor t = read_npy(path, decl.byte_size());
      if (t.dtype != decl.dtype || t.shape != decl.shape) {
        throw Error({path, 0, 0, ""},
                    fmt::format("holds {} [{}] but the program declares tensor '{}' as {} [{}] "
                                "(line {}); write the file with that shape and type",
                                dtype_name(t.dtype), fmt::join(t.shape, ","), decl.name,
                                dtype_name(decl.dtype), fmt::join(decl.shape, ","), decl.location.line));
      }
      bytes = std::move(t.bytes);
    } else {
      bytes = random_tensor(decl.dtype, decl.shape, seed_for(decl.name, seed)).bytes;
    }
  }
}

HostTensor tensor_from_state(const Program& program, int tensor, const MachineState& state) {
  const TensorDecl& decl = program.tensors.at(static_cast<size_t>(tensor));
  return HostTensor{decl.dtype, decl.shape, state.dram.at(static_cast<size_t>(tensor))};
}

}  // namespace tpusim
