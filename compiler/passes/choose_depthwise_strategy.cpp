// choose_depthwise_strategy: a depthwise convolution has no reduction across channels, so on
// a weight-stationary array each channel is its own GEMM with N = 1: at most KH*KW x 1 of the
// rows x cols PEs work (references.md: "at most about 1/cols of the PEs"). The vector unit
// can do it instead, a multiply-add per kernel tap across `lanes` elements at a time. This
// pass estimates both and keeps the faster, recording the numbers.
#include <algorithm>
#include <fmt/format.h>

#include "compiler/passes/passes.h"

namespace tpusim {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

bool is_depthwise(const GemmKernel& k) {
  return k.op == OpKind::Conv && k.groups > 1 && k.groups == k.conv.in_channels && k.groups == k.conv.out_channels;
}

// MXU: per channel and K box, shift the box in and stream every output pixel through (the
// pipeline fill and drain, R + 1, once per channel). A channel's K = KH * KW taps is cut into
// ceil(K / R) boxes of consecutive taps, as the tiling pass cuts it.
int64_t mxu_box(const GemmKernel& k, const ArchConfig& arch) {
  const int64_t taps = k.conv.kernel_points();
  return ceil_div(taps, ceil_div(taps, arch.mxu.rows));
}

// The array's part, the epilogue's and the DMA's; the slowest bounds the layer. The epilogue:
// each channel's accumulators leave through the vector unit one output pixel per lane-vector
// (a channel is one column of the array), converted and then clipped or rectified, so the
// vector unit takes pixels x (1 + activation ops) vectors per channel. The DMA: each channel
// loads its own input window and weights, two transfers with two in flight, about one DRAM
// latency per channel.
int64_t mxu_estimate(const GemmKernel& k, const ArchConfig& arch) {
  const int64_t taps = k.conv.kernel_points(), box = mxu_box(k, arch);
  const int64_t pixels = k.conv.batch * k.conv.out_pixels();
  const int64_t array = k.groups * (ceil_div(taps, box) * (box + pixels) + arch.mxu.rows + 1);
  const VpuConfig& v = arch.vpu;
  int64_t per_vector = v.convert.interval;
  if (k.epilogue.activation == Epilogue::Activation::Relu) per_vector += v.max.interval;
  if (k.epilogue.activation == Epilogue::Activation::Clip) per_vector += 2 * v.max.interval;
  const int64_t epilogue = k.groups * pixels * per_vector;
  const int64_t dma = k.groups * arch.dram.latency_cycles;
  return std::max({array, epilogue, dma});
}

// VPU: per tap, widen the window, multiply, add: three passes over C*OH*OW elements.
int64_t vpu_estimate(const GemmKernel& k, const ArchConfig& arch) {
  const int64_t taps = k.conv.kernel_points();
  const int64_t rows = k.conv.batch * k.groups * (k.conv.out_size.size() == 2 ? k.conv.out_size[0] : 1);
  const int64_t vectors = rows * ceil_div(k.conv.out_size.back(), arch.vpu.lanes);
  const VpuConfig& v = arch.vpu;
  return taps * vectors * (v.convert.interval + v.mul.interval + v.add.interval);
}

}  // namespace

void choose_depthwise_strategy(KernelModule& module, const ArchConfig& arch, const LoweringOptions& options) {
  for (auto& kernel : module.kernels) {
    auto* gemm = std::get_if<GemmKernel>(&kernel);
    if (!gemm || !is_depthwise(*gemm)) continue;
    const int64_t mxu = mxu_estimate(*gemm, arch), vpu = vpu_estimate(*gemm, arch);
    const bool use_vpu = options.depthwise == "vpu" || (options.depthwise == "auto" && vpu < mxu);
    const std::string why = fmt::format(
        "depthwise: MXU one channel at a time ~{} cycles (at most {} of {} PEs busy), VPU {} lanes ~{} cycles -> {}{}",
        mxu, mxu_box(*gemm, arch), arch.mxu.rows * arch.mxu.cols, arch.vpu.lanes, vpu,
        use_vpu ? "VPU" : "MXU", options.depthwise == "auto" ? "" : " (forced by --depthwise)");
    if (!use_vpu) {
      gemm->tiling.why = why;  // the tiling pass appends its own reasoning
      continue;
    }
    DepthwiseKernel d;
    d.name = gemm->name;
    d.input = gemm->input;
    d.weight = gemm->weight;
    d.bias = gemm->bias;
    d.output = gemm->output;
    d.conv = gemm->conv;
    d.epilogue = gemm->epilogue;
    d.why = why;
    kernel = d;
  }
}

}  // namespace tpusim
