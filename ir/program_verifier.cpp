// The program verifier: everything about a program that can be checked without running it.
// Address ranges are checked over every iteration of the enclosing loops (an affine address
// spans a box); the simulator still bounds-checks every access as it runs.
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "ir/program.h"

namespace tpusim {
namespace {

// Address and coordinate arithmetic is done in 128 bits: every term is a product of two int64
// values from the program text (a coefficient and a loop count, a stride and an extent), and a
// handful of them are added, so nothing here can overflow however large the numbers written.
// A range that passes the checks lies inside a buffer or tensor, so the simulator's own 64-bit
// arithmetic on it is safe.
using Wide = __int128;

struct Range {
  Wide low = 0, high = 0;  // inclusive
};

// Loop multiplicities and token counts saturate here: far beyond any limit a run accepts.
constexpr Wide kSaturated = Wide{1} << 100;
Wide saturating_mul(Wide a, Wide b) {
  if (a == 0 || b == 0) return 0;
  return a > kSaturated / b ? kSaturated : std::min(a * b, kSaturated);
}

class Verifier {
 public:
  Verifier(const Program& program, const TargetLimits& target) : program_(program), target_(target) {}

  std::vector<Error> run() {
    walk(program_.body, 1);
    check_token_balance();
    return std::move(errors_);
  }

 private:
  void error(const SourceLocation& where, const std::string& message) {
    SourceLocation loc = where;
    if (loc.file.empty()) loc.file = program_.file;
    errors_.emplace_back(loc, message);
  }

  Range range_of(const Affine& a) const {
    Range r{a.constant, a.constant};
    for (const auto& [depth, coefficient] : a.terms) {
      Wide span = Wide{coefficient} * (loop_counts_.at(static_cast<size_t>(depth)) - 1);
      if (span < 0) r.low += span; else r.high += span;
    }
    return r;
  }

  // `count` runs of `width` bytes, `stride` bytes apart (the stride may be negative or zero),
  // starting at `ref`'s address.
  void check_rows(const Instruction& in, const char* operand, const BufferRef& ref, int64_t count,
                  int64_t stride, int64_t width) {
    Wide span = (Wide{count} - 1) * stride;
    check_buffer(in, operand, ref, std::min<Wide>(span, 0), std::max<Wide>(span, 0) + width);
  }

  // The bytes [address + low_offset, address + high_offset_exclusive) over every iteration.
  void check_buffer(const Instruction& in, const char* operand, const BufferRef& ref,
                    Wide low_offset, Wide high_offset_exclusive) {
    if (!ref.present) return;
    Range r = range_of(ref.address);
    Wide low = r.low + low_offset, high = r.high + high_offset_exclusive;
    int64_t size = target_.buffer_bytes[static_cast<int>(ref.buffer)];
    if (low < 0 || high > size) {
      error(in.location, fmt::format("{} {} accesses {} bytes [{}, {}) but {} has {} bytes "
                                     "(address out of range)",
                                     opcode_info(in.opcode).mnemonic, operand, buffer_name(ref.buffer),
                                     low, high, buffer_name(ref.buffer), size));
    }
  }

  void walk(const std::vector<Node>& nodes, Wide multiplicity) {
    for (const auto& node : nodes) {
      if (node.kind == Node::Kind::Repeat) {
        loop_counts_.push_back(node.loop_count);
        walk(node.body, saturating_mul(multiplicity, node.loop_count));
        loop_counts_.pop_back();
      } else if (node.kind == Node::Kind::Instruction) {
        check(node.instruction, multiplicity);
      }
    }
  }

  void check(const Instruction& in, Wide multiplicity) {
    const OpcodeInfo& info = opcode_info(in.opcode);
    for (int t : in.waits) {
      const auto& token = program_.tokens[static_cast<size_t>(t)];
      waits_[t] = std::min(waits_[t] + multiplicity, kSaturated);
      if (token.consumer != info.unit) {
        error(in.location, fmt::format("{} runs on {} but waits on token '{}', which is "
                                       "consumed by {} (declared at line {})",
                                       info.mnemonic, unit_name(info.unit), token.name,
                                       unit_name(token.consumer), token.location.line));
      }
    }
    for (int t : in.signals) {
      const auto& token = program_.tokens[static_cast<size_t>(t)];
      signals_[t] = std::min(signals_[t] + multiplicity, kSaturated);
      if (token.producer != info.unit) {
        error(in.location, fmt::format("{} runs on {} but signals token '{}', which is "
                                       "produced by {} (declared at line {})",
                                       info.mnemonic, unit_name(info.unit), token.name,
                                       unit_name(token.producer), token.location.line));
      }
    }
    switch (info.unit) {
      case Unit::Dma: check_dma(in); break;
      case Unit::Mxu: check_mxu(in); break;
      case Unit::Vpu: check_vpu(in); break;
    }
  }

  void check_dma(const Instruction& in) {
    bool load = in.opcode == Opcode::DmaLoad;
    const TensorDecl& tensor = program_.tensors[static_cast<size_t>(in.tensor.tensor)];
    DmaPattern pattern;
    if (auto problem = resolve_dma_pattern(program_, in, pattern)) {
      error(in.location, *problem);
      return;
    }
    size_t dims = pattern.extent.size(), rank = tensor.shape.size();
    const auto& steps = pattern.tensor_step;
    // The pattern's own offsets, in 128 bits (DmaPattern's are 64-bit, for patterns that passed).
    Wide low = 0, high = pattern.element_bytes;
    for (size_t j = 0; j < dims; ++j) {
      Wide span = (Wide{pattern.extent[j]} - 1) * pattern.buffer_stride[j];
      if (span < 0) low += span; else high += span;
    }
    check_buffer(in, load ? "dst" : "src", in.buffer, low, high);
    if (!load) {
      if (tensor.kind == TensorKind::Input) {
        error(in.location, fmt::format("dma.store writes to '{}', an input tensor; stores go to "
                                       "output or scratch tensors", tensor.name));
      }
      // Every stored coordinate must be inside the tensor (loads may pad, stores may not).
      for (size_t d = 0; d < rank; ++d) {
        Range r = range_of(in.tensor.coords[d]);
        for (size_t j = 0; j < dims; ++j) {
          Wide span = (Wide{in.extent[j]} - 1) * steps[j][d];
          if (span < 0) r.low += span; else r.high += span;
        }
        if (r.low < 0 || r.high >= tensor.shape[d]) {
          error(in.location, fmt::format("dma.store writes outside tensor '{}': dimension {} "
                                         "spans [{}, {}] but its size is {}", tensor.name, d,
                                         r.low, r.high, tensor.shape[d]));
          return;
        }
      }
    }
  }

  void check_mxu(const Instruction& in) {
    const char* mnemonic = opcode_info(in.opcode).mnemonic;
    bool stationary_dataflow = target_.dataflow != Dataflow::OutputStationary;
    int64_t element = dtype_size(target_.operand_type);
    auto check_positive = [&](const char* name, int64_t v, int64_t max) {
      if (v < 1 || v > max) {
        error(in.location, max == INT64_MAX
                               ? fmt::format("{} {} must be at least 1, got {}", mnemonic, name, v)
                               : fmt::format("{} {} must be between 1 and {}, got {}", mnemonic, name, max, v));
        return false;
      }
      return true;
    };
    auto check_source_buffer = [&](const char* name, const BufferRef& ref) {
      if (ref.buffer == Buffer::Accumulator) {
        error(in.location, fmt::format("{} {} must be in ub or wb; the accumulators hold results, "
                                       "not operands", mnemonic, name));
      }
    };
    auto check_dst = [&]() {
      if (in.dst.buffer != Buffer::Accumulator) {
        error(in.location, fmt::format("{} dst must be in acc: the array writes into the accumulators", mnemonic));
        return false;
      }
      return true;
    };
    if (in.opcode == Opcode::MxuMatmulOs) {
      if (stationary_dataflow) {
        error(in.location, fmt::format("mxu.matmul_os needs an output-stationary (os) array; this "
                                       "target is {} (use mxu.load_stationary + mxu.matmul)",
                                       dataflow_name(target_.dataflow)));
        return;
      }
      bool ok = check_positive("rows", in.rows, target_.rows) & check_positive("cols", in.cols, target_.cols) &
                check_positive("count", in.count, INT64_MAX);
      check_source_buffer("left", in.src);
      check_source_buffer("top", in.top);
      if (!ok || !check_dst()) return;
      check_rows(in, "left", in.src, in.count, in.src_stride, in.rows * element);
      check_rows(in, "top", in.top, in.count, in.top_stride, in.cols * element);
      check_rows(in, "dst", in.dst, in.rows, in.dst_stride, in.cols * 4);
      return;
    }
    if (!stationary_dataflow) {
      error(in.location, fmt::format("{} needs a weight- or input-stationary (ws/is) array; this "
                                     "target is os (use mxu.matmul_os)", mnemonic));
      return;
    }
    check_source_buffer("src", in.src);
    if (in.opcode == Opcode::MxuLoadStationary) {
      if (!(check_positive("rows", in.rows, target_.rows) & check_positive("cols", in.cols, target_.cols))) return;
      stationary_rows_ = in.rows;
      stationary_cols_ = in.cols;
      int64_t outer = in.transpose ? in.cols : in.rows, inner = in.transpose ? in.rows : in.cols;
      check_rows(in, "src", in.src, outer, in.src_stride, inner * element);
      return;
    }
    // mxu.matmul: vector length and output width come from the last load_stationary before it
    // in the text; when there is none, the simulator checks the footprint when it runs.
    if (!check_positive("count", in.count, INT64_MAX) || !check_dst()) return;
    if (auto problem = vector_pattern_problem(in, stationary_rows_)) {
      error(in.location, fmt::format("{} {}", mnemonic, *problem));
      return;
    }
    if (stationary_rows_ > 0) {
      // One vector spans [low, high) from its start; the vectors are `stride` apart.
      const ByteSpan vector = vector_span(in, stationary_rows_, element);
      const Wide span = (Wide{in.count} - 1) * in.src_stride;
      check_buffer(in, "src", in.src, std::min<Wide>(span, 0) + vector.low, std::max<Wide>(span, 0) + vector.high);
      check_rows(in, "dst", in.dst, in.count, in.dst_stride, stationary_cols_ * 4);
    }
  }

  void check_vpu(const Instruction& in) {
    const char* mnemonic = opcode_info(in.opcode).mnemonic;
    if (in.rows < 1 || in.cols < 1) {
      error(in.location, fmt::format("{} rows and cols must be at least 1, got rows={} cols={}",
                                     mnemonic, in.rows, in.cols));
      return;
    }
    DType dst = in.dst.type, src = in.src.type;
    auto type_error = [&](const std::string& what) { error(in.location, fmt::format("{} {}", mnemonic, what)); };
    if (is_vpu_binary(in.opcode)) {
      if (in.src2.present == in.imm.has_value()) {
        type_error("needs exactly one of src2 or imm as its second operand");
      }
      if (in.broadcast && !in.src2.present) type_error("broadcast=true needs a src2 operand");
      // For integer operands imm is an int32 value, so the arithmetic is exact in 64 bits.
      if (in.imm && !is_float(src) &&
          !(std::isfinite(*in.imm) && std::trunc(*in.imm) == *in.imm && *in.imm >= -2147483648.0 &&
            *in.imm <= 2147483647.0)) {
        type_error(fmt::format("imm={} must be an integer in the int32 range because the operands "
                               "are {}", *in.imm, dtype_name(src)));
      }
      if (dst != src || (in.src2.present && in.src2.type != src)) {
        type_error("operands must all have the same type (use vpu.copy to convert)");
      }
    } else if (in.opcode == Opcode::VpuRequantize) {
      if (src != DType::Int32 || dst != DType::Int8) type_error("converts int32 to int8: src must be :int32 and dst :int8");
      if (in.shift < 0 || in.shift > 62) type_error(fmt::format("shift must be between 0 and 62, got {}", in.shift));
      if (in.multiplier < -(int64_t{1} << 31) || in.multiplier >= (int64_t{1} << 31)) {
        type_error(fmt::format("multiplier must fit in int32, got {}", in.multiplier));
      }
      if (in.zero_point < -128 || in.zero_point > 127) {
        type_error(fmt::format("zero_point must be between -128 and 127, got {}", in.zero_point));
      }
    } else if (in.opcode == Opcode::VpuGelu || in.opcode == Opcode::VpuExp ||
               in.opcode == Opcode::VpuReciprocal || in.opcode == Opcode::VpuRsqrt) {
      if (!is_float(src) || !is_float(dst)) type_error("works on floating-point operands (bf16 or fp32)");
    } else if (in.opcode == Opcode::VpuRelu || is_vpu_reduction(in.opcode)) {
      if (dst != src) type_error("operands must have the same type (use vpu.copy to convert)");
      if (is_vpu_reduction(in.opcode) && src == DType::Int8) type_error("reduces int32, bf16 or fp32 rows, not int8");
    }
    auto footprint = [&](const char* name, const BufferRef& ref, int64_t stride, int64_t row_elements) {
      int64_t element = dtype_size(ref.type);
      int64_t row_stride = stride != 0 ? stride : in.cols * element;
      check_rows(in, name, ref, in.rows, row_stride, row_elements * element);
    };
    bool reduction = is_vpu_reduction(in.opcode);
    footprint("src", in.src, in.src_stride, in.cols);
    if (reduction) {
      int64_t element = dtype_size(in.dst.type);
      int64_t stride = in.dst_stride != 0 ? in.dst_stride : element;
      check_rows(in, "dst", in.dst, in.rows, stride, element);
    } else {
      footprint("dst", in.dst, in.dst_stride, in.cols);
    }
    if (in.src2.present) {
      if (in.broadcast) {
        int64_t element = dtype_size(in.src2.type);
        int64_t stride = in.src2_stride != 0 ? in.src2_stride : element;
        check_rows(in, "src2", in.src2, in.rows, stride, element);
      } else {
        footprint("src2", in.src2, in.src2_stride, in.cols);
      }
    }
  }

  void check_token_balance() {
    for (size_t t = 0; t < program_.tokens.size(); ++t) {
      Wide s = signals_.count(static_cast<int>(t)) ? signals_[static_cast<int>(t)] : 0;
      Wide w = waits_.count(static_cast<int>(t)) ? waits_[static_cast<int>(t)] : 0;
      if (s != w) {
        const auto& token = program_.tokens[t];
        error(token.location, fmt::format("token '{}' is signalled {} time{} but waited on {} "
                                          "time{}; every signal must be consumed by exactly one wait",
                                          token.name, s, s == 1 ? "" : "s", w, w == 1 ? "" : "s"));
      }
    }
  }

  const Program& program_;
  const TargetLimits& target_;
  std::vector<int64_t> loop_counts_;
  std::map<int, Wide> signals_, waits_;
  int64_t stationary_rows_ = 0, stationary_cols_ = 0;
  std::vector<Error> errors_;
};

}  // namespace

std::vector<Error> verify_program(const Program& program, const TargetLimits& target) {
  return Verifier(program, target).run();
}

void verify_program_or_throw(const Program& program, const TargetLimits& target) {
  auto errors = verify_program(program, target);
  if (errors.empty()) return;
  if (errors.size() == 1) throw errors.front();
  std::string message = errors.front().message();
  for (size_t i = 1; i < errors.size(); ++i) message += "\n" + std::string(errors[i].what());
  throw Error(errors.front().location(), message);
}

}  // namespace tpusim
