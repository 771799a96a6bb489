// `tpusim explain`: the teaching views (docs/teaching.md). Each subcommand runs the real
// compiler and PE-level simulator and shows what they did, cycle by cycle or tile by tile.
#include <unistd.h>

#include <chrono>
#include <charconv>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "compiler/explain_gemm.h"
#include "ir/diagnostics.h"
#include "simulator/array_view_html.h"
#include "simulator/array_view_text.h"
#include "tools/commands.h"

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

void write_file(const std::string& path, const std::string& text, const char* flag) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw Error({path, 0, 0, ""}, fmt::format("{}: cannot write file (check that the directory exists)", flag));
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
    // Where the array starts work: the terminal view starts there unless --cycles says otherwise,
    // and the page opens there.
    size_t start = 0;
    while (start < x.frames.size() && !mxu_works(x.frames[start])) ++start;
    if (start == x.frames.size()) start = 0;
    if (!g->html.empty()) {
      AnimationPage page;
      page.start_frame = start;
      page.title = fmt::format("C = A . B, {}x{}x{} on {} ({})", shape.m, shape.k, shape.n, arch.name,
                               dataflow_name(arch.mxu.dataflow));
      page.intro = intro;
      page.outro = outro;
      page.view = view;
      write_file(g->html, animation_html(x.frames, page), "--html");
      std::cout << fmt::format("wrote {} ({} frames, one per cycle)\n", g->html, x.frames.size());
      return;
    }
    std::vector<ArrayFrame> frames = x.frames;
    if (g->cycles.empty() && start > 0) {
      intro += fmt::format("cycles 0 to {}: the DMA brings A and B on chip and the array is idle (--cycles 0: to see "
                           "them); shown from cycle {}\n",
                           frames[start].cycle - 1, frames[start].cycle);
      frames.erase(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(start));
    }
    std::cout << intro << "\n";
    if (isatty(STDOUT_FILENO) == 1 && isatty(STDIN_FILENO) == 1 && g->play < 0) {
      std::cout << "[Enter] start" << std::flush;
      std::string line;
      if (!std::getline(std::cin, line) || line == "q") return;
    }
    show_frames(frames, view, g->play);
    std::cout << "\n" << outro;
    if (!x.c_correct) throw Error({"explain gemm", 0, 0, ""}, "internal error: the simulated C is not A . B");
  });
}

}  // namespace tpusim::cli
