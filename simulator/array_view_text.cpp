// The terminal view of one frame (array_view_text.h).
#include "simulator/array_view_text.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace tpusim {
namespace {

constexpr const char* kActive = "\x1b[30;42m";  // black on green
constexpr const char* kPadding = "\x1b[30;47m";  // black on grey
constexpr const char* kEmpty = "\x1b[2m";       // dim
constexpr const char* kReset = "\x1b[0m";

// The operand roles per dataflow, named after C = A . B.
struct Roles {
  const char* stationary;  // the letter of the stationary operand (stationary mode)
  const char* moving;      // the operand moving right (os: A from the left)
  const char* top;         // os: B from the top
};
Roles roles_of(Dataflow d) {
  switch (d) {
    case Dataflow::InputStationary: return {"A", "B", ""};
    case Dataflow::OutputStationary: return {"", "A", "B"};
    case Dataflow::WeightStationary: break;
  }
  return {"B", "A", ""};
}

std::string pad_left(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}
std::string pad_right(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string opt_value(const std::optional<double>& v) { return v ? format_view_value(*v) : std::string("."); }

std::string traffic_line(const ArrayFrame& f) {
  return fmt::format("bytes moved: DRAM {} read, {} written; buffers {} read, {} written", f.traffic.dram_read,
                     f.traffic.dram_written, f.buffer_bytes_read(), f.buffer_bytes_written());
}

}  // namespace

std::string format_view_value(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{}", static_cast<int64_t>(value));
  return fmt::format("{:.4g}", value);
}

std::string render_frame_text(const ArrayFrame& frame, const ArrayViewOptions& options) {
  const ArraySnapshot& a = frame.array;
  const bool os = a.mode == SystolicMode::OutputStationary;
  const Roles roles = roles_of(options.dataflow);
  std::string out;

  // Header: the cycle, the units, the counters.
  out += fmt::format("cycle {} of {}\n", frame.cycle, options.total_cycles);
  const char* unit_names[kUnitCount] = {"DMA", "MXU", "VPU"};
  for (int u = 0; u < kUnitCount; ++u) {
    const UnitState& s = frame.units[static_cast<size_t>(u)];
    std::string line = fmt::format("  {}  {}", unit_names[u], s.state);
    if (!s.instruction.empty()) line += "  " + s.instruction;
    if (!s.label.empty()) line += fmt::format(" \"{}\"", s.label);
    if (u == static_cast<int>(Unit::Mxu) && frame.vector >= 0) {
      line += fmt::format(", vector {} of {} enters", frame.vector + 1, frame.vectors);
    }
    out += line + "\n";
  }
  const int pes = a.rows * a.cols;
  const int padding = frame.padding_pes();
  out += fmt::format("  PEs busy {} of {}{}, idle {} | MACs so far {} | {}\n\n", frame.busy_pes(), pes,
                     padding > 0 ? fmt::format(" (and {} multiplying an edge tile's padding)", padding) : "",
                     pes - frame.busy_pes() - padding, frame.macs, traffic_line(frame));

  // Widths: every value in this frame fits.
  size_t value_width = 2;
  auto fit = [&](double v) { value_width = std::max(value_width, format_view_value(v).size()); };
  for (const PeRegisters& pe : a.pes) {
    if (os) {
      fit(pe.moving);
      fit(pe.top);
    } else {
      fit(pe.weight[frame.bank_shown(pe)]);
      fit(pe.moving);
    }
    fit(pe.sum);
  }
  for (const auto& lane : a.left_waiting) for (const auto& v : lane) if (v) fit(*v);
  for (const auto& lane : a.top_waiting) for (const auto& v : lane) if (v) fit(*v);
  for (const auto& v : a.bottom) if (v) fit(*v);
  const size_t cell = value_width + 4;  // "*A " + value + " "
  size_t waiting_depth = 0;
  for (const auto& lane : a.left_waiting) waiting_depth = std::max(waiting_depth, lane.size());
  const size_t left_width = std::max<size_t>(8, waiting_depth * (value_width + 1) + 4);

  const std::string margin(left_width, ' ');
  std::string border = margin + "+";
  for (int c = 0; c < a.cols; ++c) border += std::string(cell, '-') + "+";
  border += "\n";

  // Column headings; in os the operands waiting to enter each column, farthest first.
  std::string heading = margin + " ";
  for (int c = 0; c < a.cols; ++c) heading += pad_right(fmt::format(" col {}", c), cell) + " ";
  out += heading + "\n";
  if (os) {
    size_t depth = 0;
    for (const auto& lane : a.top_waiting) depth = std::max(depth, lane.size());
    for (size_t d = depth; d-- > 0;) {
      std::string line = margin + " ";
      for (int c = 0; c < a.cols; ++c) {
        const auto& lane = a.top_waiting[static_cast<size_t>(c)];
        std::string v = d < lane.size() ? opt_value(lane[d]) : "";
        line += pad_right("   " + pad_left(v, value_width), cell) + " ";
      }
      out += line + (d + 1 == depth ? fmt::format("  {} waiting to enter (skewed)", roles.top) : "") + "\n";
    }
    std::string arrows = margin + " ";
    for (int c = 0; c < a.cols; ++c) arrows += pad_right("   " + pad_left("v", value_width), cell) + " ";
    out += arrows + "\n";
  }

  out += border;
  for (int r = 0; r < a.rows; ++r) {
    // Row r's waiting operands, nearest to the array on the right.
    const auto& lane = a.left_waiting[static_cast<size_t>(r)];
    std::string waiting;
    for (size_t d = lane.size(); d-- > 0;) waiting += pad_left(opt_value(lane[d]), value_width) + " ";
    const std::string lines_left[3] = {pad_left(fmt::format("row {} ", r), left_width),
                                       pad_left(waiting + (lane.empty() ? "" : "-> "), left_width), margin};
    for (int line = 0; line < 3; ++line) {
      std::string text = lines_left[line] + "|";
      for (int c = 0; c < a.cols; ++c) {
        const PeRegisters& pe = a.pe(r, c);
        std::string content;
        if (line == 0) {
          const char* mark = pe.useful() ? "*" : pe.active ? "~" : " ";
          if (os) {
            content = fmt::format("{}{} {}", mark, roles.moving,
                                  pad_left(pe.moving_valid ? format_view_value(pe.moving) : "", value_width));
          } else {
            const int bank = frame.bank_shown(pe);
            content = fmt::format("{}{} {}", mark, roles.stationary, pad_left(format_view_value(pe.weight[bank]), value_width));
          }
        } else if (line == 1) {
          if (os) {
            content = fmt::format(" {} {}", roles.top, pad_left(pe.top_valid ? format_view_value(pe.top) : "", value_width));
          } else {
            content = fmt::format(" {} {}", roles.moving,
                                  pad_left(pe.moving_valid ? format_view_value(pe.moving) : "", value_width));
          }
        } else {
          content = fmt::format(" P {}", pad_left(pe.sum_valid ? format_view_value(pe.sum) : ".", value_width));
        }
        content = pad_right(content, cell);
        if (options.color) {
          const bool empty = !pe.active && !pe.sum_valid && !pe.moving_valid && !pe.top_valid;
          if (pe.useful()) content = kActive + content + kReset;
          else if (pe.active) content = kPadding + content + kReset;
          else if (empty) content = kEmpty + content + kReset;
        }
        text += content + "|";
      }
      out += text + "\n";
    }
    out += border;
  }

  // The results leaving the bottom row into the accumulators.
  std::string leaving = pad_left("leaving ", left_width) + " ";
  for (int c = 0; c < a.cols; ++c) {
    leaving += pad_right("   " + pad_left(opt_value(a.bottom[static_cast<size_t>(c)]), value_width), cell) + " ";
  }
  out += leaving + " -> accumulators\n";

  if (!os) {
    const int shown = frame.bank_in_use, other = 1 - shown;
    auto shifting = [&](int bank) {
      if (a.shifting_bank != bank) return std::string();
      const int queued = a.weight_rows_queued[bank];
      return queued > 0 ? fmt::format(" (a tile shifting in, {} row{} to go)", queued, queued == 1 ? "" : "s")
                        : std::string(" (its last row shifts in now)");
    };
    out += fmt::format("\nweight banks: the PEs show bank {}{}; bank {}{} holds:\n", shown, shifting(shown), other,
                       shifting(other));
    for (int r = 0; r < a.rows; ++r) {
      std::string line = pad_left(fmt::format("row {} ", r), left_width) + " ";
      for (int c = 0; c < a.cols; ++c) line += pad_left(format_view_value(a.pe(r, c).weight[other]), value_width + 1);
      out += line + "\n";
    }
  }
  if (os) {
    out += fmt::format("\nlegend: * multiplied this cycle; {} moves right, {} moves down, P the PE's own sum "
                       "(. none yet); numbers left of a row or above a column wait to enter it (skew)\n",
                       roles.moving, roles.top);
  } else {
    out += fmt::format("\nlegend: * multiplied this cycle, ~ multiplied an edge tile's padding (a zero weight); "
                       "{} stationary, {} moving right, P partial sum moving down (. none); numbers left of a row "
                       "wait to enter it (skew)\n",
                       roles.stationary, roles.moving);
  }
  return out;
}

}  // namespace tpusim
