// allocate_buffers: which tensors between kernels stay on chip, and where.
//
// Expects kernels in execution order (after the depthwise strategy, before tiling).
// Guarantees: every GEMM kernel has a BufferPlan — the unified-buffer bytes [0, budget) its
// own tile slots may use, the resident tensor it writes and/or reads (if any), and a note for
// the report. Regions never overlap while both are live; a region is live from the start of
// its producer to the end of its consumer.
#include <algorithm>
#include <type_traits>

#include <fmt/format.h>

#include "compiler/passes/passes.h"

namespace tpusim {
namespace {

int users(const Graph& g, int value) {
  int n = 0;
  for (const auto& op : g.ops) {
    if (std::find(op.inputs.begin(), op.inputs.end(), value) != op.inputs.end()) ++n;
  }
  return n;
}

bool is_output(const Graph& g, int value) {
  return std::find(g.outputs.begin(), g.outputs.end(), value) != g.outputs.end();
}

// Why the output of `producer` cannot stay on chip for `consumer` ("" when it can): a
// convolution read by the next convolution (with im2col in the buffer), or a linear layer read
// by the next linear layer.
std::string reason_not_resident(const Graph& g, const GemmKernel& producer, const Kernel* next) {
  if (producer.op != OpKind::Conv && producer.op != OpKind::Linear) return "not a convolution or a linear layer";
  if (is_output(g, producer.output)) return "a model output";
  if (users(g, producer.output) != 1) return "read by more than one op";
  const GemmKernel* consumer = next ? std::get_if<GemmKernel>(next) : nullptr;
  const std::string next_name = next ? kernel_name(*next) : "";
  const bool next_reads_it = consumer ? consumer->input == producer.output
                                      : next && std::visit([&](const auto& k) {
                                          using K = std::decay_t<decltype(k)>;
                                          if constexpr (std::is_same_v<K, VectorKernel>) {
                                            return std::find(k.inputs.begin(), k.inputs.end(), producer.output) != k.inputs.end();
                                          } else if constexpr (std::is_same_v<K, AttentionKernel>) {
                                            const std::vector<int> in = k.inputs();
                                            return std::find(in.begin(), in.end(), producer.output) != in.end();
                                          } else {
                                            return k.input == producer.output;
                                          }
                                        }, *next);
  if (!next_reads_it) return "its reader is not the next kernel";
  // A linear layer's rows, stored as they are in DRAM, are the rows of A of the next linear
  // layer; a convolution's output is stored in its reader's im2col window layout.
  if (producer.op == OpKind::Linear) {
    if (!consumer || consumer->op != OpKind::Linear) return fmt::format("its reader '{}' is not a linear layer", next_name);
    return "";
  }
  if (!consumer || consumer->op != OpKind::Conv) return fmt::format("its reader '{}' is not a convolution on the MXU", next_name);
  if (consumer->im2col != Im2colMode::Buffer) return "its reader does not use im2col in the buffer";
  if (consumer->groups != 1) return "its reader is a grouped convolution";
  return "";
}

}  // namespace

void allocate_buffers(KernelModule& module, const ArchConfig& arch, bool on_chip) {
  const Graph& g = module.graph;
  const int64_t ub = arch.unified_buffer.bytes;
  const int64_t e = dtype_size(arch.mxu.operand_type);
  // The region the previous kernel handed to this one (its consumer), if any.
  std::optional<ResidentTensor> incoming;
  for (size_t i = 0; i < module.kernels.size(); ++i) {
    GemmKernel* k = std::get_if<GemmKernel>(&module.kernels[i]);
    if (!k) {
      incoming.reset();
      continue;
    }
    BufferPlan& plan = k->buffers;
    plan.input = incoming;
    incoming.reset();
    const int64_t below_input = plan.input ? plan.input->base : ub;
    const Kernel* next = i + 1 < module.kernels.size() ? &module.kernels[i + 1] : nullptr;
    std::string why = reason_not_resident(g, *k, next);
    if (why.empty() && !on_chip) why = "--no-on-chip";
    if (why.empty() && g.values[static_cast<size_t>(k->output)].dtype != arch.mxu.operand_type) {
      why = "its type is not the array's operand type";
    }
    if (why.empty()) {
      const GemmKernel& c = std::get<GemmKernel>(*next);
      ResidentTensor r;
      const bool two_d = c.conv.kernel.size() == 2;
      r.pad_top = two_d ? c.conv.pads_begin[0] : 0;
      r.pad_left = c.conv.pads_begin.back();
      r.height = two_d ? c.conv.in_size[0] + c.conv.pads_begin[0] + c.conv.pads_end[0] : 1;
      r.width = c.conv.in_size.back() + c.conv.pads_begin.back() + c.conv.pads_end.back();
      r.channels = c.conv.in_channels;
      for (size_t d = 0; d < c.conv.pads_begin.size(); ++d) r.padded |= c.conv.pads_begin[d] > 0 || c.conv.pads_end[d] > 0;
      r.bytes = c.conv.batch * r.height * r.width * r.channels * e;
      const int64_t live = r.bytes + (plan.input ? plan.input->bytes : 0);  // this region and the one being read
      if (2 * live <= ub) {
        // At the top of the buffer when that is clear of the tensor being read (so a chain of
        // convolutions alternates between two places), else just below it.
        const bool top_free = !plan.input || ub - r.bytes >= plan.input->base + plan.input->bytes;
        r.base = top_free ? ub - r.bytes : below_input - r.bytes;
        plan.output = r;
        incoming = r;
        plan.note = fmt::format("output kept in the unified buffer for '{}' ({} bytes at ub[{}, {}))", c.name, r.bytes,
                                r.base, r.base + r.bytes);
      } else {
        plan.note = fmt::format("output to DRAM: on chip it would need {} bytes{}, more than half the {}-byte unified buffer",
                                r.bytes, plan.input ? " beside the tensor being read" : "", ub);
      }
    } else {
      plan.note = "output to DRAM (" + why + ")";
    }
    if (plan.input) plan.note = fmt::format("input read from the unified buffer; {}", plan.note);
    plan.budget = std::min(below_input, plan.output ? plan.output->base : ub);
  }
}

}  // namespace tpusim
