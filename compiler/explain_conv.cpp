// explain conv (explain_conv.h).
#include "compiler/explain_conv.h"

#include <charconv>

#include <fmt/format.h>

#include "compiler/frontend/yaml_model.h"
#include "compiler/report_context.h"
#include "ir/diagnostics.h"

namespace tpusim {
namespace {

std::vector<int64_t> parse_size(const std::string& text) {
  std::vector<int64_t> dims;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('x', start);
    if (end == std::string::npos) end = text.size();
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(text.data() + start, text.data() + end, v);
    if (ec != std::errc() || ptr != text.data() + end || v < 1 || v > 4096) {
      throw Error({"--size", 0, 0, ""}, fmt::format("'{}' is not an input size: write HxW (e.g. 5x5) for a 2-D "
                                                    "convolution or a length (e.g. 12) for a 1-D one, each 1 to 4096",
                                                    text));
    }
    dims.push_back(v);
    start = end + 1;
  }
  if (dims.size() > 2) throw Error({"--size", 0, 0, ""}, fmt::format("'{}': at most two dims (HxW)", text));
  return dims;
}

const GemmKernel* find_gemm(const CompileResult& compiled, const std::string& name) {
  for (const Kernel& k : compiled.kernels.kernels) {
    if (const auto* g = std::get_if<GemmKernel>(&k); g && g->name == name) return g;
  }
  return nullptr;
}

// The input element an im2col entry reads: "c,h,w" (1-D: "c,w"), or "pad".
std::string entry(const ConvGeometry& g, int64_t m, int64_t k, int64_t channels_per_group) {
  const size_t dims = g.out_size.size();
  std::vector<int64_t> out(dims), tap(dims);
  int64_t rest = m % g.out_pixels();
  for (size_t d = dims; d-- > 0;) {
    out[d] = rest % g.out_size[d];
    rest /= g.out_size[d];
  }
  const int64_t c = k % channels_per_group;
  rest = k / channels_per_group;
  for (size_t d = dims; d-- > 0;) {
    tap[d] = rest % g.kernel[d];
    rest /= g.kernel[d];
  }
  std::string text = std::to_string(c);
  for (size_t d = 0; d < dims; ++d) {
    const int64_t i = out[d] * g.strides[d] - g.pads_begin[d] + tap[d] * g.dilations[d];
    if (i < 0 || i >= g.in_size[d]) return "pad";
    text += "," + std::to_string(i);
  }
  return text;
}

}  // namespace

std::string conv_model_yaml(const ConvSpec& spec, uint64_t seed) {
  const std::vector<int64_t> size = parse_size(spec.size);
  std::string shape = fmt::format("[1, {}", spec.in_channels);
  for (int64_t d : size) shape += fmt::format(", {}", d);
  shape += "]";
  return fmt::format(
      "name: explain_conv\ntype: {}\nseed: {}\ninputs:\n  x: {{shape: {}}}\nlayers:\n"
      "  - conv: {{name: conv, out_channels: {}, kernel: {}, stride: {}, padding: {}, dilation: {}, groups: {}, "
      "bias: false}}\noutputs: [conv]\n",
      spec.type, seed, shape, spec.out_channels, spec.kernel, spec.stride, spec.padding, spec.dilation, spec.groups);
}

ConvExplanation explain_conv(const ConvSpec& spec, const ArchConfig& arch, Im2colMode im2col, uint64_t seed,
                             int64_t rows_shown) {
  const std::string yaml = conv_model_yaml(spec, seed);
  const Graph graph = parse_model_yaml(yaml, "explain conv");
  CompileOptions options;
  options.lowering.im2col = im2col;
  ConvExplanation out;
  out.run = run_model_seeded(graph, arch, options, seed);
  const CompileResult& compiled = out.run.compiled;
  const GemmKernel* kernel = find_gemm(compiled, "conv");
  if (kernel == nullptr) {
    throw Error({"explain conv", 0, 0, ""}, "this convolution does not run on the matrix unit (a depthwise one runs on "
                                            "the vector unit); explain conv shows convolutions that become GEMMs");
  }
  const ConvGeometry& g = kernel->conv;
  const size_t dims = g.out_size.size();
  std::string& t = out.text;
  auto dims_text = [](const std::vector<int64_t>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "x" : "") + std::to_string(v[i]);
    return s;
  };
  const size_t layer = yaml.find("  - conv:") + 4;
  t += fmt::format("The layer (model format): {}\n", yaml.substr(layer, yaml.find('\n', layer) - layer));
  t += fmt::format("input x [1, {}, {}] -> output [1, {}, {}]; kernel {}, stride {}, dilation {}, padding begin {} end "
                   "{}, groups {}\n\n",
                   g.in_channels, dims_text(g.in_size), g.out_channels, dims_text(g.out_size), dims_text(g.kernel),
                   dims_text(g.strides), dims_text(g.dilations), dims_text(g.pads_begin), dims_text(g.pads_end), g.groups);
  const int64_t cpg = g.in_channels / g.groups;
  t += fmt::format("As a GEMM (per group; {} group{}): C[M, N] = A[M, K] . B[K, N]\n", g.groups, g.groups == 1 ? "" : "s");
  t += fmt::format("  M = output pixels = {}\n  K = in_channels/groups x kernel points = {} x {} = {}\n  N = "
                   "out_channels/groups = {}\n",
                   g.out_pixels(), cpg, g.kernel_points(), kernel->K, kernel->N);
  t += fmt::format("  A is the im2col matrix: row m is output pixel m, column k = (tap, channel), channel innermost;\n"
                   "  each entry below is the input element it reads, as c,{} (pad: a zero from the padding).\n\n",
                   dims == 2 ? "h,w" : "w");

  // The im2col matrix, with the K box (weight tile) of each column above it.
  const GemmTiling& tiling = kernel->tiling;
  const int64_t rows = std::min<int64_t>(rows_shown, kernel->M);
  const int64_t cols = std::min<int64_t>(kernel->K, 64);
  size_t width = 3;
  for (int64_t m = 0; m < rows; ++m) {
    for (int64_t k = 0; k < cols; ++k) width = std::max(width, entry(g, m, k, cpg).size());
  }
  auto box_of = [&](int64_t k) { return tiling.k_boxes.box_of(k); };  // K = (taps..., c), boxes of consecutive k
  std::string header = fmt::format("{:>8} ", "K tile");
  std::string columns = fmt::format("{:>8} ", "k");
  for (int64_t k = 0; k < cols; ++k) {
    header += fmt::format("{:>{}} ", box_of(k), width);
    columns += fmt::format("{:>{}} ", k, width);
  }
  t += header + "\n" + columns + "\n";
  for (int64_t m = 0; m < rows; ++m) {
    std::string line = fmt::format("{:>8} ", fmt::format("m {}", m));
    for (int64_t k = 0; k < cols; ++k) line += fmt::format("{:>{}} ", entry(g, m, k, cpg), width);
    t += line + "\n";
  }
  if (rows < kernel->M || cols < kernel->K) {
    t += fmt::format("  ({} of {} rows and {} of {} columns shown; --rows N shows more rows)\n", rows, kernel->M, cols,
                     kernel->K);
  }
  int64_t input_elements = cpg;
  for (int64_t d : g.in_size) input_elements *= d;
  t += fmt::format("  A has {} x {} = {} entries for {} input elements (per group): each element is read {:.2f} "
                   "times if A is written out\n\n",
                   kernel->M, kernel->K, kernel->M * kernel->K, input_elements,
                   static_cast<double>(kernel->M * kernel->K) / static_cast<double>(input_elements));

  // The compiler's tiling.
  t += fmt::format("Tiling for {} ({}x{} {}), --im2col {}:\n", arch.name, arch.mxu.rows, arch.mxu.cols,
                   dataflow_name(arch.mxu.dataflow), im2col_mode_name(im2col));
  t += fmt::format("  a weight tile holds a K box of {} consecutive k (across taps and kernel rows) of the {} rows, "
                   "and {} of the {} columns (output channels)\n",
                   k_box_sizes(tiling.k_boxes), arch.mxu.rows, tiling.n_tile, arch.mxu.cols);
  t += fmt::format("  {} K tile{} x {} N tile{} x {} M tile{} ({} output pixels each)\n", tiling.k_tiles(),
                   tiling.k_tiles() == 1 ? "" : "s", tiling.n_tiles, tiling.n_tiles == 1 ? "" : "s", tiling.m_tiles,
                   tiling.m_tiles == 1 ? "" : "s", tiling.m_tile);
  for (const std::string& line : kernel_choices(*kernel)) t += "  " + line + "\n";

  // Each --im2col mode, compiled and run.
  t += "\nThe same layer in each --im2col mode (compiled and simulated):\n";
  t += fmt::format("  {:<12} {:>8} {:>11} {:>11} {:>10} {:>9} {:>8}\n", "--im2col", "cycles", "DRAM read", "DRAM write",
                   "ub read", "map eff", "util");
  for (Im2colMode mode : {Im2colMode::Buffer, Im2colMode::Dma, Im2colMode::Materialize}) {
    try {
      CompileOptions o;
      o.lowering.im2col = mode;
      const ModelRun run = mode == im2col ? ModelRun{} : run_model_seeded(graph, arch, o, seed);
      const RunReport& r = mode == im2col ? out.run.report : run.report;
      const Figures& f = r.totals;
      t += fmt::format("  {:<12} {:>8} {:>11} {:>11} {:>10} {:>8.1f}% {:>7.1f}%\n", im2col_mode_name(mode), f.cycles,
                       f.traffic.dram_read, f.traffic.dram_written,
                       f.traffic.buffer_read[static_cast<size_t>(Buffer::Unified)], 100 * f.mapping_efficiency,
                       100 * f.utilization);
    } catch (const Error& e) {
      t += fmt::format("  {:<12} cannot compile here: {}\n", im2col_mode_name(mode), e.what());
    }
  }
  t += "  (buffer: the input window is loaded into the unified buffer once and read through an im2col address "
       "pattern;\n   dma: the DMA reads the input once per tap from DRAM; materialize: A is written to DRAM, then read "
       "back)\n";

  out.tiles = program_tiles(out.run, "conv");
  t += fmt::format("\nThe program's {} weight tile{} (tpusim explain conv ... --tile I animates one):\n", out.tiles.size(),
                   out.tiles.size() == 1 ? "" : "s");
  for (size_t i = 0; i < out.tiles.size() && i < 12; ++i) {
    const ProgramTile& p = out.tiles[i];
    t += fmt::format("  tile {}: {} x {} weights, {} matmul{}, cycles {} to {}\n", i, p.rows, p.cols, p.matmuls,
                     p.matmuls == 1 ? "" : "s", p.first_cycle, p.last_cycle);
  }
  if (out.tiles.size() > 12) t += fmt::format("  ... and {} more\n", out.tiles.size() - 12);
  return out;
}

}  // namespace tpusim
