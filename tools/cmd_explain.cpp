// `tpusim explain`: the teaching views (docs/teaching.md). Each subcommand runs the real
// compiler and PE-level simulator and shows what they did, cycle by cycle or tile by tile.
#include <unistd.h>

#include <chrono>
#include <charconv>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "compiler/explain_attention.h"
#include "compiler/explain_conv.h"
#include "compiler/explain_gemm.h"
#include "compiler/explain_layer.h"
#include "ir/diagnostics.h"
#include "simulator/array_view_html.h"
#include "simulator/array_view_text.h"
#include "tools/commands.h"
#include "tools/output_files.h"

namespace tpusim::cli {
namespace {

// --cycles A:B (either side may be left out: 5:, :20).
ExplainRange parse_cycles(const std::string& text) {
  ExplainRange range;
  if (text.empty()) return range;
  const size_t colon = text.find(':');
  auto number = [&](std::string_view part, int64_t fallback) {
    if (part.empty()) return fallback;
    int64_t value = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (ec != std::errc() || end != part.data() + part.size() || value < 0) {
      throw Error({"--cycles", 0, 0, ""},
                  fmt::format("'{}' is not a range of cycles: write A:B (e.g. 10:20), A: or :B, with whole numbers >= 0",
                              text));
    }
    return value;
  };
  if (colon == std::string::npos) {
    range.first = range.last = number(text, 0);
  } else {
    range.first = number(std::string_view(text).substr(0, colon), 0);
    range.last = number(std::string_view(text).substr(colon + 1), -1);
  }
  if (range.last >= 0 && range.last < range.first) {
    throw Error({"--cycles", 0, 0, ""}, fmt::format("'{}': the range ends before it starts", text));
  }
  return range;
}

std::string matrix_text(const std::string& name, const std::vector<double>& values, int64_t rows, int64_t cols) {
  size_t width = 1;
  for (double v : values) width = std::max(width, format_view_value(v).size());
  std::string out = fmt::format("{} [{} x {}]\n", name, rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    out += "   ";
    for (int64_t c = 0; c < cols; ++c) {
      std::string v = format_view_value(values[static_cast<size_t>(r * cols + c)]);
      out += " " + std::string(width - v.size(), ' ') + v;
    }
    out += "\n";
  }
  return out;
}

// Shows frames one after another: on a terminal, each replaces the last and Enter (or
// --play) moves on; otherwise every frame is printed in turn.
void show_frames(const std::vector<ArrayFrame>& frames, ArrayViewOptions view, int play_ms) {
  const bool terminal = isatty(STDOUT_FILENO) == 1;
  const bool interactive = terminal && play_ms < 0 && isatty(STDIN_FILENO) == 1;
  view.color = terminal;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (terminal) std::cout << "\x1b[H\x1b[2J";
    std::cout << render_frame_text(frames[i], view);
    const bool last = i + 1 == frames.size();
    if (interactive && !last) {
      std::cout << "\n[Enter] next cycle   [q Enter] quit" << std::flush;
      std::string line;
      if (!std::getline(std::cin, line) || line == "q") {
        std::cout << "\n";
        return;
      }
    } else if (play_ms >= 0 && !last) {
      std::cout << std::flush;
      std::this_thread::sleep_for(std::chrono::milliseconds(play_ms));
    } else if (!terminal && !last) {
      std::cout << "\n";
    }
  }
  std::cout << std::flush;
}

// The MXU shifts weights, computes or drains in this frame.
bool mxu_works(const ArrayFrame& frame) {
  const std::string& state = frame.units[static_cast<size_t>(Unit::Mxu)].state;
  return state == "computing" || state == "shifting weights" || state == "draining";
}

// The frames on the terminal (from where the array starts work, unless --cycles chose) or as a
// page with --html.
void present(const std::vector<ArrayFrame>& all, const ArrayViewOptions& view, std::string intro, const std::string& outro,
             const std::string& title, const std::string& html, bool cycles_given, int play_ms) {
  size_t start = 0;
  while (start < all.size() && !mxu_works(all[start])) ++start;
  if (start == all.size()) start = 0;
  if (!html.empty()) {
    AnimationPage page;
    page.start_frame = start;
    page.title = title;
    page.intro = intro;
    page.outro = outro;
    page.view = view;
    write_file(html, animation_html(all, page));
    std::cout << fmt::format("wrote {} ({} frames, one per cycle)\n", html, all.size());
    return;
  }
  std::vector<ArrayFrame> frames = all;
  if (!cycles_given && start > 0) {
    intro += fmt::format("cycles {} to {}: the array is idle (the DMA brings the operands on chip; --cycles shows "
                         "them); shown from cycle {}\n",
                         frames.front().cycle, frames[start].cycle - 1, frames[start].cycle);
    frames.erase(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(start));
  }
  std::cout << intro << "\n";
  if (isatty(STDOUT_FILENO) == 1 && isatty(STDIN_FILENO) == 1 && play_ms < 0) {
    std::cout << "[Enter] start" << std::flush;
    std::string line;
    if (!std::getline(std::cin, line) || line == "q") return;
  }
  show_frames(frames, view, play_ms);
  std::cout << "\n" << outro;
}

}  // namespace

void register_explain_command(CLI::App& app) {
  auto* explain = app.add_subcommand("explain", "Teaching views: what the array and the compiler do, cycle by cycle");
  explain->require_subcommand(1);

  struct GemmOptions {
    int64_t m = 6, k = 4, n = 4;
    std::string arch = "teach-4x4", dataflow, cycles, html, seed = "1";
    std::vector<std::string> overrides;
    int play = -1;
    bool program = false;
  };
  auto g = std::make_shared<GemmOptions>();
  auto* gemm = explain->add_subcommand("gemm", "C = A . B on the PE-level array, cycle by cycle");
  gemm->add_option("--m", g->m, "Rows of A and C (default 6)");
  gemm->add_option("--k", g->k, "Columns of A, rows of B: the reduction (default 4)");
  gemm->add_option("--n", g->n, "Columns of B and C (default 4)");
  gemm->add_option("--arch", g->arch, "Machine: a preset name or a YAML file (default teach-4x4)");
  gemm->add_option("--dataflow", g->dataflow, "ws, os or is (default: the machine's)");
  gemm->add_option("--set", g->overrides, "Override an arch field, e.g. --set mxu.cols=3")->allow_extra_args(false);
  gemm->add_option("--seed", g->seed, "Seed of A and B (integers in -3..3; default 1)");
  gemm->add_option("--cycles", g->cycles, "Show only these cycles: A:B, A: or :B");
  gemm->add_option("--play", g->play, "Play: a new cycle every MS milliseconds (instead of Enter)");
  gemm->add_option("--html", g->html, "Write the animation as one self-contained HTML page to this file");
  gemm->add_flag("--program", g->program, "Print the program that runs (and nothing else)");
  gemm->callback([g] {
    std::vector<std::string> overrides = g->overrides;
    if (!g->dataflow.empty()) {
      if (!parse_dataflow(g->dataflow)) {
        throw Error({"--dataflow", 0, 0, ""}, fmt::format("'{}' is not a dataflow: use ws, os or is", g->dataflow));
      }
      overrides.push_back("mxu.dataflow=" + g->dataflow);
    }
    if (g->play < -1) throw Error({"--play", 0, 0, ""}, "--play takes milliseconds >= 0");
    require_writable(g->html, "--html");
    const ArchConfig arch = load_arch(g->arch, overrides);
    const GemmShape shape{g->m, g->k, g->n};
    if (g->program) {
      std::cout << gemm_program(shape, arch).text;
      return;
    }
    ExplainRange range = parse_cycles(g->cycles);
    const GemmExplanation x = explain_gemm(shape, arch, parse_seed(g->seed), range);
    ArrayViewOptions view;
    view.operand_type = arch.mxu.operand_type;
    view.dataflow = arch.mxu.dataflow;
    view.total_cycles = x.total_cycles;
    std::string intro = fmt::format("C = A . B on {} ({}x{} {}, {}): M = {}, K = {}, N = {}\n", arch.name, arch.mxu.rows,
                                    arch.mxu.cols, dataflow_name(arch.mxu.dataflow), dtype_name(arch.mxu.operand_type),
                                    shape.m, shape.k, shape.n);
    intro += matrix_text("A", x.a, shape.m, shape.k) + matrix_text("B", x.b, shape.k, shape.n);
    intro += fmt::format("{} tile(s), in the order the MXU runs them:\n", x.program.tiles.size());
    for (const GemmTile& t : x.program.tiles) {
      intro += fmt::format("  rows m {}..{}, k {}..{}, columns n {}..{}\n", t.m0, t.m0 + t.m - 1, t.k0, t.k0 + t.k - 1,
                           t.n0, t.n0 + t.n - 1);
    }
    intro += fmt::format("{} cycles in all (tpusim explain gemm ... --program prints the program)\n", x.total_cycles);
    const std::string outro = matrix_text("C (as simulated)", x.c, shape.m, shape.n) +
                              (x.c_correct ? "C equals A . B\n" : "C DIFFERS from A . B\n");
    const std::string title = fmt::format("C = A . B, {}x{}x{} on {} ({})", shape.m, shape.k, shape.n, arch.name,
                                          dataflow_name(arch.mxu.dataflow));
    present(x.frames, view, intro, outro, title, g->html, !g->cycles.empty(), g->play);
    if (!x.c_correct) throw Error({"explain gemm", 0, 0, ""}, "internal error: the simulated C is not A . B");
  });

  struct AttentionOptions {
    AttentionSpec spec;
    std::string arch = "teach-4x4", seed = "1";
    std::vector<std::string> overrides;
  };
  auto at = std::make_shared<AttentionOptions>();
  auto* attention = explain->add_subcommand("attention", "How attention is tiled: score tiles under the mask, flash order, bytes");
  attention->add_option("--seq", at->spec.seq, "Tokens (default 16)");
  attention->add_option("--heads", at->spec.heads, "Heads (default 1)");
  attention->add_option("--head-dim", at->spec.head_dim, "Head dim (default 4)");
  attention->add_flag("--causal", at->spec.causal, "Causal mask: query i sees keys 0..i");
  attention->add_option("--window", at->spec.window, "Sliding window: query i sees keys from i - W + 1 on (with --causal: its last W keys)");
  attention->add_option("--arch", at->arch, "Machine (default teach-4x4); it multiplies bf16 here");
  attention->add_option("--set", at->overrides, "Override an arch field, e.g. --set mxu.rows=8")->allow_extra_args(false);
  attention->add_option("--seed", at->seed, "Seed of the input (default 1)");
  attention->callback([at] {
    std::vector<std::string> overrides{"mxu.operand_type=bf16"};
    overrides.insert(overrides.end(), at->overrides.begin(), at->overrides.end());
    const ArchConfig arch = load_arch(at->arch, overrides);
    std::cout << explain_attention(at->spec, arch, parse_seed(at->seed));
  });

  struct LayerOptions {
    std::string model, layer, arch = "tpu-v1", small_arch = "teach-4x4", cycles, html, seed = "1";
    std::vector<std::string> overrides;
    CompilerFlags flags;
    int play = -1;
    bool no_animation = false;
  };
  auto l = std::make_shared<LayerOptions>();
  auto* layer = explain->add_subcommand("layer", "One layer of a real model: its GEMM, tiling, cycles by cause, idle PEs");
  layer->add_option("model", l->model, "The model (*.yaml or *.graph)")->required();
  layer->add_option("--layer", l->layer, "The layer's name (as in the report)")->required();
  layer->add_option("--arch", l->arch, "Machine: a preset name or a YAML file (default tpu-v1)");
  layer->add_option("--set", l->overrides, "Override an arch field, e.g. --set mxu.rows=128")->allow_extra_args(false);
  layer->add_option("--small-arch", l->small_arch, "The small machine its first tile is animated on (default teach-4x4)");
  add_compiler_flags(layer, l->flags);
  layer->add_flag("--no-animation", l->no_animation, "Print the explanation only");
  layer->add_option("--seed", l->seed, "Seed of the model's data (default 1)");
  layer->add_option("--cycles", l->cycles, "Animate only these cycles: A:B, A: or :B");
  layer->add_option("--play", l->play, "Play: a new cycle every MS milliseconds (instead of Enter)");
  layer->add_option("--html", l->html, "Write the explanation and the animation as one self-contained HTML page");
  layer->callback([l] {
    if (l->play < -1) throw Error({"--play", 0, 0, ""}, "--play takes milliseconds >= 0");
    require_writable(l->html, "--html");
    const ArchConfig arch = load_arch(l->arch, l->overrides);
    const ArchConfig small = load_arch(l->small_arch);
    const uint64_t seed = parse_seed(l->seed);
    const ModelRun run = run_model_seeded(load_model(l->model), arch, compile_options(l->flags), seed);
    const LayerExplanation x = explain_layer(run, arch, l->layer, small, l->model);
    if (l->no_animation || x.first_tile.m == 0) {
      std::cout << x.text;
      return;
    }
    const GemmExplanation g = explain_gemm(x.first_tile, small, seed, parse_cycles(l->cycles));
    const std::string intro = x.text;
    ArrayViewOptions view;
    view.operand_type = small.mxu.operand_type;
    view.dataflow = small.mxu.dataflow;
    view.total_cycles = g.total_cycles;
    present(g.frames, view, intro, "", fmt::format("explain layer {} ({})", l->layer, l->model), l->html,
            !l->cycles.empty(), l->play);
  });

  struct ConvOptions {
    ConvSpec spec;
    std::string arch = "teach-4x4", im2col = "buffer", cycles, html, seed = "1";
    std::vector<std::string> overrides;
    int64_t rows = 12, tile = 0;
    int play = -1;
    bool no_animation = false;
  };
  auto c = std::make_shared<ConvOptions>();
  auto* conv = explain->add_subcommand("conv", "How a convolution unrolls into a GEMM: im2col, tiles, bytes, a tile animated");
  conv->add_option("--in-channels", c->spec.in_channels, "Input channels (default 2)");
  conv->add_option("--out-channels", c->spec.out_channels, "Output channels (default 3)");
  conv->add_option("--size", c->spec.size, "Input size: HxW for 2-D, a length for 1-D (default 5x5)");
  conv->add_option("--kernel", c->spec.kernel, "kernel: as in the model format, e.g. 3 or [3,1] (default 3)");
  conv->add_option("--stride", c->spec.stride, "stride (default 1)");
  conv->add_option("--padding", c->spec.padding, "padding: 1, [1,0], same, valid, causal (1-D) (default 1)");
  conv->add_option("--dilation", c->spec.dilation, "dilation (default 1)");
  conv->add_option("--groups", c->spec.groups, "groups (default 1)");
  conv->add_option("--type", c->spec.type, "int8 or bf16 (default int8; the machine must multiply it)");
  conv->add_option("--arch", c->arch, "Machine: a preset name or a YAML file (default teach-4x4)");
  conv->add_option("--set", c->overrides, "Override an arch field, e.g. --set mxu.rows=8")->allow_extra_args(false);
  conv->add_option("--im2col", c->im2col, "buffer, dma or materialize (default buffer)");
  conv->add_option("--rows", c->rows, "Rows of the im2col matrix to print (default 12)");
  conv->add_option("--tile", c->tile, "The weight tile to animate (default 0, the first)");
  conv->add_flag("--no-animation", c->no_animation, "Print the unrolling and the tiling only");
  conv->add_option("--seed", c->seed, "Seed of the input and weights (default 1)");
  conv->add_option("--cycles", c->cycles, "Animate only these cycles of the tile: A:B, A: or :B");
  conv->add_option("--play", c->play, "Play: a new cycle every MS milliseconds (instead of Enter)");
  conv->add_option("--html", c->html, "Write the explanation and the animation as one self-contained HTML page");
  conv->callback([c] {
    const ArchConfig arch = load_arch(c->arch, c->overrides);
    std::optional<Im2colMode> mode;
    for (Im2colMode m : {Im2colMode::Buffer, Im2colMode::Dma, Im2colMode::Materialize}) {
      if (im2col_mode_name(m) == c->im2col) mode = m;
    }
    if (!mode) throw Error({"--im2col", 0, 0, ""}, fmt::format("'{}' is not an im2col mode: use buffer, dma or materialize", c->im2col));
    if (c->rows < 1) throw Error({"--rows", 0, 0, ""}, "--rows takes a number >= 1");
    if (c->play < -1) throw Error({"--play", 0, 0, ""}, "--play takes milliseconds >= 0");
    require_writable(c->html, "--html");
    const uint64_t seed = parse_seed(c->seed);
    const ConvExplanation x = explain_conv(c->spec, arch, *mode, seed, c->rows);
    if (c->no_animation || arch.mxu.rows > kMaxDrawnSide || arch.mxu.cols > kMaxDrawnSide) {
      std::cout << x.text;
      if (!c->no_animation) {
        std::cout << fmt::format("\n(no animation: explain draws arrays of up to {0} x {0} PEs; try --arch teach-4x4)\n",
                                 kMaxDrawnSide);
      }
      return;
    }
    if (c->tile < 0 || c->tile >= static_cast<int64_t>(x.tiles.size())) {
      throw Error({"--tile", 0, 0, ""}, fmt::format("--tile {}: the program has tiles 0 to {}", c->tile, x.tiles.size() - 1));
    }
    const ProgramTile& tile = x.tiles[static_cast<size_t>(c->tile)];
    ExplainRange range = parse_cycles(c->cycles);
    // --cycles counts from the tile's first cycle; both ends are kept inside the tile first.
    const int64_t length = tile.last_cycle - tile.first_cycle + 1;
    if (range.first >= length) {
      throw Error({"--cycles", 0, 0, ""}, fmt::format("--cycles: tile {} lasts {} cycles (0 to {})", c->tile, length, length - 1));
    }
    const int64_t first = tile.first_cycle + range.first;
    int64_t last = tile.first_cycle + (range.last < 0 ? length - 1 : std::min(range.last, length - 1));
    std::string intro = x.text + fmt::format("\nTile {}, cycles {} to {} of the run", c->tile, first, last);
    const int64_t kMaxTileFrames = std::min<int64_t>(2000, kMaxDrawnPeCycles / (arch.mxu.rows * arch.mxu.cols));
    if (last - first + 1 > kMaxTileFrames) {
      last = first + kMaxTileFrames - 1;
      intro += fmt::format(" (its first {} cycles; --cycles A:B picks others, counted from the tile's start)", kMaxTileFrames);
    }
    intro += "\n";
    const std::vector<ArrayFrame> frames = record_model_frames(x.run, arch, seed, first, last);
    ArrayViewOptions view;
    view.operand_type = arch.mxu.operand_type;
    view.dataflow = arch.mxu.dataflow;
    view.total_cycles = x.run.result.total_cycles;
    present(frames, view, intro, "", fmt::format("explain conv: tile {} on {}", c->tile, arch.name), c->html, true, c->play);
  });
}

}  // namespace tpusim::cli
