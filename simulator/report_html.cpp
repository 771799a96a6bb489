// The report as one self-contained HTML page. Every chart is SVG written here; the only script
// sorts the table. Figures come from the report model; this file only lays them out.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "simulator/report.h"

namespace tpusim {
namespace {

std::string pct(double x) { return fmt::format("{:.2f}%", 100 * x); }

// The colours of the cycle causes, in CycleCause order (idle is not drawn).
constexpr const char* kCauseColours[kCycleCauseCount] = {"#2e7d32", "#1565c0", "#f9a825", "#c62828", "#6a1b9a",
                                                          "#bdbdbd"};
constexpr const char* kUnitColours[kUnitCount] = {"#1565c0", "#2e7d32", "#ef6c00"};

const char* kStyle = R"(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 24px;
       color: #212121; max-width: 1200px; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 16px; margin: 28px 0 6px 0; border-bottom: 1px solid #e0e0e0; padding-bottom: 4px; }
p.note { color: #616161; font-size: 13px; margin: 2px 0 8px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 12px; }
.card { border: 1px solid #e0e0e0; border-radius: 6px; padding: 8px 12px; min-width: 150px; }
.card .value { font-size: 20px; font-weight: 600; }
.card .what { font-size: 12px; color: #616161; max-width: 220px; }
.bound { margin-top: 10px; padding: 8px 12px; background: #fff8e1; border-left: 4px solid #f9a825; font-size: 14px; }
svg text { font-size: 11px; fill: #424242; }
svg .axis { stroke: #9e9e9e; stroke-width: 1; }
svg .grid { stroke: #eeeeee; stroke-width: 1; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
table { border-collapse: collapse; font-size: 12px; width: 100%; }
th, td { padding: 3px 6px; border-bottom: 1px solid #eeeeee; text-align: right; vertical-align: top; }
th { cursor: pointer; background: #fafafa; position: sticky; top: 0; user-select: none; }
th:hover { background: #eeeeee; }
td.text, th.text { text-align: left; }
details summary { cursor: pointer; }
details div { color: #424242; margin: 2px 0 2px 10px; white-space: normal; }
)";

const char* kScript = R"(
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, column) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var descending = th.getAttribute('data-order') !== 'desc';
      table.querySelectorAll('th').forEach(function (other) { other.removeAttribute('data-order'); });
      th.setAttribute('data-order', descending ? 'desc' : 'asc');
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute('data-value'), y = b.cells[column].getAttribute('data-value');
        var nx = parseFloat(x), ny = parseFloat(y), order;
        if (!isNaN(nx) && !isNaN(ny)) order = nx - ny; else order = x < y ? -1 : x > y ? 1 : 0;
        return descending ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
)";

// Horizontal bars, one row per layer: the share of the array each layer's span achieved.
std::string utilization_chart(const RunReport& r) {
  const int row = 16, label_width = 190, width = 900, bar_width = width - label_width - 70;
  const int height = row * static_cast<int>(r.layers.size()) + 24;
  double most = 0;
  for (const LayerReport& l : r.layers) most = std::max(most, l.figures.utilization);
  const double scale = most > 0 ? most : 1;
  std::string svg = fmt::format("<svg width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"utilization per layer\">\n",
                                width, height);
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const LayerReport& l = r.layers[i];
    const int y = static_cast<int>(i) * row;
    const double w = static_cast<double>(bar_width) * l.figures.utilization / scale;
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", label_width - 6, y + 12,
                       html_escape(l.info.label));
    svg += fmt::format(
        "<rect class=\"util-bar\" data-layer=\"{}\" x=\"{}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" fill=\"#1565c0\">"
        "<title>{}: utilization {} over its {} cycles (mapping efficiency {})</title></rect>",
        html_escape(l.info.label), label_width, y + 2, w, row - 4, html_escape(l.info.label), pct(l.figures.utilization),
        l.figures.span, pct(l.figures.mapping_efficiency));
    svg += fmt::format("<text x=\"{:.2f}\" y=\"{}\">{}</text>\n", label_width + w + 4, y + 12,
                       pct(l.figures.utilization));
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\">bar length: utilization over the layer's span (longest = {})</text>\n",
                     label_width, height - 6, pct(most));
  return svg + "</svg>\n";
}

// One stacked bar per layer: the MXU's cycles for the layer by cause.
std::string stall_chart(const RunReport& r) {
  const int row = 16, label_width = 190, width = 900, bar_width = width - label_width - 20;
  const int height = row * static_cast<int>(r.layers.size()) + 8;
  int64_t most = 0;
  for (const LayerReport& l : r.layers) {
    int64_t sum = 0;
    for (int c = 0; c < kCycleCauseCount - 1; ++c) sum += l.figures.unit_cycles[static_cast<int>(Unit::Mxu)][c];
    most = std::max(most, sum);
  }
  std::string svg = fmt::format("<svg width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"MXU cycles by cause\">\n",
                                width, height);
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const LayerReport& l = r.layers[i];
    const int y = static_cast<int>(i) * row;
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", label_width - 6, y + 12,
                       html_escape(l.info.label));
    double x = label_width;
    for (int c = 0; c < kCycleCauseCount - 1; ++c) {
      const int64_t cycles = l.figures.unit_cycles[static_cast<int>(Unit::Mxu)][c];
      if (cycles == 0 || most == 0) continue;
      const double w = static_cast<double>(bar_width) * static_cast<double>(cycles) / static_cast<double>(most);
      svg += fmt::format("<rect class=\"stall-segment\" x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" "
                         "fill=\"{}\"><title>{}: MXU {} {} cycles</title></rect>",
                         x, y + 2, w, row - 4, kCauseColours[c], html_escape(l.info.label),
                         cycle_cause_name(static_cast<CycleCause>(c)), cycles);
      x += w;
    }
    svg += "\n";
  }
  return svg + "</svg>\n";
}

std::string cause_legend() {
  std::string out = "<div class=\"legend\">";
  for (int c = 0; c < kCycleCauseCount - 1; ++c) {
    out += fmt::format("<span><i style=\"background:{}\"></i>{}</span>", kCauseColours[c],
                       cycle_cause_name(static_cast<CycleCause>(c)));
  }
  return out + "</div>\n";
}

// Log-log: ops per DRAM byte (x) against ops per cycle (y), the compute roof (peak) and the
// bandwidth roof (dram bytes/cycle x intensity). Layers without MACs sit on the bottom edge.
std::string roofline_chart(const RunReport& r) {
  const int width = 900, height = 420, left = 60, right = 20, top = 16, bottom = 44;
  const double peak = r.peak_ops_per_cycle, bandwidth = r.arch.dram.bytes_per_cycle;
  double x_lo = 1e-2, x_hi = std::max(10.0, 4 * peak / bandwidth), y_lo = 1e-2, y_hi = peak * 2;
  for (const LayerReport& l : r.layers) {
    if (l.figures.ops_per_dram_byte > 0) {
      x_lo = std::min(x_lo, l.figures.ops_per_dram_byte / 2);
      x_hi = std::max(x_hi, l.figures.ops_per_dram_byte * 2);
    }
    if (l.figures.ops_per_cycle > 0) y_lo = std::min(y_lo, l.figures.ops_per_cycle / 2);
  }
  const double lx0 = std::floor(std::log10(x_lo)), lx1 = std::ceil(std::log10(x_hi));
  const double ly0 = std::floor(std::log10(y_lo)), ly1 = std::ceil(std::log10(y_hi));
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  auto px = [&](double x) { return left + plot_w * (std::log10(x) - lx0) / (lx1 - lx0); };
  auto py = [&](double y) { return top + plot_h * (1 - (std::log10(y) - ly0) / (ly1 - ly0)); };
  std::string svg = fmt::format("<svg width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"roofline\">\n", width, height);
  for (double e = lx0; e <= lx1; ++e) {
    const double x = px(std::pow(10.0, e));
    svg += fmt::format("<line class=\"grid\" x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\"/>"
                       "<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">1e{:.0f}</text>\n",
                       x, top, x, height - bottom, x, height - bottom + 14, e);
  }
  for (double e = ly0; e <= ly1; ++e) {
    const double y = py(std::pow(10.0, e));
    svg += fmt::format("<line class=\"grid\" x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\"/>"
                       "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">1e{:.0f}</text>\n",
                       left, y, width - right, y, left - 4, y + 4, e);
  }
  svg += fmt::format("<line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>", left, height - bottom,
                     width - right, height - bottom);
  svg += fmt::format("<line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n", left, top, left, height - bottom);
  // The roofs: min(peak, bandwidth * intensity), drawn from the left edge to the right.
  const double knee = peak / bandwidth;
  const double x_start = std::pow(10.0, lx0), x_end = std::pow(10.0, lx1);
  const double y_start = std::max(bandwidth * x_start, std::pow(10.0, ly0));
  const double x_from = y_start / bandwidth;
  svg += fmt::format("<polyline class=\"roof\" fill=\"none\" stroke=\"#c62828\" stroke-width=\"2\" "
                     "points=\"{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}\"/>\n",
                     px(x_from), py(y_start), px(knee), py(peak), px(x_end), py(peak));
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#c62828\">peak {:g} ops/cycle</text>", px(knee) + 6,
                     py(peak) - 6, peak);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#c62828\">DRAM {:.4g} bytes/cycle</text>\n",
                     px(x_from) + 6, py(y_start) - 8, bandwidth);
  for (const LayerReport& l : r.layers) {
    const Figures& f = l.figures;
    const bool has_ops = f.ops_per_cycle > 0 && f.ops_per_dram_byte > 0;
    const double x = has_ops ? px(f.ops_per_dram_byte) : px(x_start);
    const double y = has_ops ? py(f.ops_per_cycle) : py(std::pow(10.0, ly0));
    svg += fmt::format("<circle class=\"roofline-point\" data-layer=\"{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" "
                       "fill=\"{}\" stroke=\"#0d47a1\"><title>{} ({}): {}</title></circle>\n",
                       html_escape(l.info.label), x, y, has_ops ? "#1565c0" : "none", html_escape(l.info.label),
                       html_escape(l.info.op_kind.empty() ? "-" : l.info.op_kind),
                       has_ops ? fmt::format("{:.3g} ops per DRAM byte, {:.3g} ops/cycle; {}", f.ops_per_dram_byte,
                                             f.ops_per_cycle, html_escape(std::string(bound_name(l.diagnosis.bound))))
                               : std::string("no MACs (vector or data-movement work), drawn on the bottom edge"));
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">ops per DRAM byte (log)</text>",
                     left + static_cast<int>(plot_w / 2), height - 8);
  svg += fmt::format("<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">ops per cycle "
                     "(log)</text>\n",
                     top + static_cast<int>(plot_h / 2), top + static_cast<int>(plot_h / 2));
  return svg + "</svg>\n";
}

// Three rows (DMA, MXU, VPU), one cell per time bin, darker the busier.
std::string timeline_chart(const RunReport& r) {
  const ActivityTimeline& a = r.activity;
  const int width = 900, left = 50, row = 22, height = row * kUnitCount + 24;
  const size_t bins = a.busy().size();
  std::string svg = fmt::format("<svg width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"unit activity\">\n", width,
                                height);
  const double cell = bins > 0 ? static_cast<double>(width - left - 10) / static_cast<double>(bins) : 0;
  for (int u = 0; u < kUnitCount; ++u) {
    const int y = u * row;
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", left - 6, y + 15,
                       unit_name(static_cast<Unit>(u)));
    for (size_t b = 0; b < bins; ++b) {
      const double busy = static_cast<double>(a.busy()[b][static_cast<size_t>(u)]) / static_cast<double>(a.bin_cycles());
      if (busy <= 0) continue;
      svg += fmt::format("<rect class=\"activity\" x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\" "
                         "fill-opacity=\"{:.2f}\"><title>{} busy {:.0f}% of cycles {}..{}</title></rect>",
                         left + cell * static_cast<double>(b), y + 2, cell + 0.3, row - 4, kUnitColours[u],
                         std::min(1.0, busy), unit_name(static_cast<Unit>(u)), 100 * busy,
                         static_cast<int64_t>(b) * a.bin_cycles(), (static_cast<int64_t>(b) + 1) * a.bin_cycles() - 1);
    }
    svg += "\n";
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\">cycle 0 to {}, {} cycles per column</text>\n", left, height - 4,
                     r.totals.cycles, a.bin_cycles());
  return svg + "</svg>\n";
}

// The most unified-buffer bytes in-flight instructions touched at once, per time bin.
std::string occupancy_chart(const RunReport& r) {
  const ActivityTimeline& a = r.activity;
  const int width = 900, height = 160, left = 70, bottom = 20, top = 8;
  const double capacity = static_cast<double>(r.arch.unified_buffer.bytes);
  const size_t bins = a.ub_peak().size();
  std::string svg = fmt::format("<svg width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"unified buffer occupancy\">\n",
                                width, height);
  const double plot_h = height - top - bottom;
  const double cell = bins > 0 ? static_cast<double>(width - left - 10) / static_cast<double>(bins) : 0;
  svg += fmt::format("<line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>", left, top, width - 10, top);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", left - 4, top + 4,
                     html_escape(format_byte_size(r.arch.unified_buffer.bytes)));
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>\n", left - 4, height - bottom);
  std::string points = fmt::format("{},{} ", left, height - bottom);
  for (size_t b = 0; b < bins; ++b) {
    const double y = height - bottom - plot_h * std::min(1.0, static_cast<double>(a.ub_peak()[b]) / capacity);
    points += fmt::format("{:.1f},{:.1f} {:.1f},{:.1f} ", left + cell * static_cast<double>(b), y,
                          left + cell * static_cast<double>(b + 1), y);
  }
  points += fmt::format("{:.1f},{}", left + cell * static_cast<double>(bins), height - bottom);
  svg += fmt::format("<polygon class=\"occupancy\" points=\"{}\" fill=\"#90caf9\" stroke=\"#1565c0\"/>\n", points);
  svg += fmt::format("<text x=\"{}\" y=\"{}\">{} cycles per step; top line: the buffer's capacity</text>\n", left,
                     height - 4, a.bin_cycles());
  return svg + "</svg>\n";
}

std::string card(const std::string& value, const std::string& name, const std::string& what) {
  return fmt::format("<div class=\"card\"><div class=\"value\">{}</div><div>{}</div><div class=\"what\">{}</div></div>\n",
                     html_escape(value), html_escape(name), html_escape(what));
}

std::string layer_table(const RunReport& r) {
  std::string out = "<table class=\"sortable\" id=\"layers\"><thead><tr>";
  const char* headers[] = {"#", "layer", "op", "cycles", "share", "span", "util", "map eff", "mxu busy", "dram bytes",
                           "ops/byte", "bound", "why, and the compiler's choices"};
  for (const char* h : headers) {
    const std::string_view name(h);
    const bool text = name == "layer" || name == "op" || name == "bound" || name.starts_with("why");
    out += fmt::format("<th{}>{}</th>", text ? " class=\"text\"" : "", html_escape(std::string(name)));
  }
  out += "</tr></thead><tbody>\n";
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const LayerReport& l = r.layers[i];
    const Figures& f = l.figures;
    auto num = [](auto value, const std::string& shown) {
      return fmt::format("<td data-value=\"{}\">{}</td>", value, html_escape(shown));
    };
    auto text = [](const std::string& value) {
      return fmt::format("<td class=\"text\" data-value=\"{}\">{}</td>", html_escape(value), html_escape(value));
    };
    std::string details = fmt::format("<details><summary>{}</summary>", html_escape(l.diagnosis.text));
    if (!l.info.op_text.empty()) details += fmt::format("<div>op: {}</div>", html_escape(l.info.op_text));
    for (const std::string& choice : l.info.choices) details += fmt::format("<div>{}</div>", html_escape(choice));
    details += "</details>";
    const double share = r.totals.cycles > 0 ? static_cast<double>(f.cycles) / static_cast<double>(r.totals.cycles) : 0;
    out += "<tr>" + num(i, std::to_string(i)) + text(l.info.label) + text(l.info.op_kind) +
           num(f.cycles, std::to_string(f.cycles)) + num(share, pct(share)) + num(f.span, std::to_string(f.span)) +
           num(f.utilization, pct(f.utilization)) + num(f.mapping_efficiency, pct(f.mapping_efficiency)) +
           num(f.mxu_busy, std::to_string(f.mxu_busy)) + num(f.dram_bytes, std::to_string(f.dram_bytes)) +
           num(f.ops_per_dram_byte, fmt::format("{:.3g}", f.ops_per_dram_byte)) +
           text(std::string(bound_name(l.diagnosis.bound))) +
           fmt::format("<td class=\"text\" data-value=\"{}\">{}</td>", html_escape(l.diagnosis.text), details) + "</tr>\n";
  }
  return out + "</tbody></table>\n";
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string report_html(const RunReport& r) {
  const Figures& t = r.totals;
  const ArchConfig& arch = r.arch;
  const int64_t pes = arch.mxu.rows * arch.mxu.cols;
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += fmt::format("<title>tpusim report: {} on {}</title>\n", html_escape(r.program), html_escape(arch.name));
  out += fmt::format("<style>{}</style>\n</head>\n<body>\n", kStyle);
  out += fmt::format("<h1>{} on {}</h1>\n", html_escape(r.program), html_escape(arch.name));
  out += fmt::format("<p class=\"note\">{}x{} {} {} array at {} MHz, fidelity {}; {} layers</p>\n", arch.mxu.rows,
                     arch.mxu.cols, dataflow_name(arch.mxu.dataflow), dtype_name(arch.mxu.operand_type),
                     arch.mxu.clock_mhz, html_escape(r.fidelity), r.layers.size());
  out += "<div class=\"cards\">\n";
  out += card(std::to_string(t.cycles), "total cycles",
              fmt::format("{:.3f} us at {} MHz", static_cast<double>(t.cycles) / arch.mxu.clock_mhz, arch.mxu.clock_mhz));
  out += card(pct(t.utilization), "utilization",
              fmt::format("useful MACs / ({} PEs x {} cycles): the share of the array's peak achieved", pes, t.cycles));
  out += card(pct(t.mapping_efficiency), "mapping efficiency",
              "useful MACs / mapped MACs: the share of the PEs in the issued tiles that held real data");
  out += card(pct(t.compute_utilization), "compute utilization",
              fmt::format("useful MACs / ({} PEs x {} MXU-busy cycles): utilization while the array was busy", pes,
                          t.mxu_busy));
  out += card(fmt::format("{:.4g}", t.ops_per_cycle), "ops/cycle",
              fmt::format("of {:g} peak = {:.4f} TOPS", r.peak_ops_per_cycle, t.tops));
  out += card(fmt::format("{:.4g}", t.ops_per_dram_byte), "ops per DRAM byte",
              fmt::format("{} bytes moved; 2 x useful MACs / bytes", t.dram_bytes));
  out += "</div>\n";
  if (!r.diagnosis.text.empty()) out += fmt::format("<div class=\"bound\">{}</div>\n", html_escape(r.diagnosis.text));
  if (!r.layers.empty()) {
    out += "<h2>Utilization per layer</h2>\n<p class=\"note\">Useful MACs over rows x cols x the layer's span: how "
           "much of the array's peak each layer achieved while it ran.</p>\n";
    out += utilization_chart(r);
    out += "<h2>Where the array's cycles went, per layer</h2>\n<p class=\"note\">The MXU's cycles for each layer's "
           "instructions, by cause (idle cycles not drawn).</p>\n";
    out += cause_legend() + stall_chart(r);
    out += "<h2>Roofline</h2>\n<p class=\"note\">One point per layer: arithmetic intensity (ops per DRAM byte) "
           "against achieved ops per cycle over its span. Under the slanted roof a layer is limited by DRAM "
           "bandwidth, under the flat one by the array. Hover a point for the layer; layers without MACs (vector and "
           "data-movement work) are the hollow points in the bottom-left corner.</p>\n";
    out += roofline_chart(r);
  }
  out += "<h2>Activity over time</h2>\n<p class=\"note\">Each unit's busy share per column of cycles.</p>\n";
  out += timeline_chart(r);
  out += "<h2>Unified buffer in use</h2>\n<p class=\"note\">The most unified-buffer bytes that instructions in "
         "flight read or wrote at once, per step of time.</p>\n";
  out += occupancy_chart(r);
  if (!r.layers.empty()) {
    out += "<h2>Layers</h2>\n<p class=\"note\">Click a column to sort; open a row's last cell for the diagnosis "
           "and the compiler's choices. Cycles: the run split where each layer starts (they add up to the "
           "total); span: first issue to last completion.</p>\n";
    out += layer_table(r);
  }
  out += fmt::format("<script>{}</script>\n</body>\n</html>\n", kScript);
  return out;
}

}  // namespace tpusim
