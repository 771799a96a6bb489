#include "simulator/report_diff.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ir/diagnostics.h"
#include "simulator/report.h"

namespace tpusim {
namespace {

using nlohmann::json;

SourceLocation at_byte(const std::string& file, const std::string& text, size_t byte) {
  int line = 1, column = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {file, line, column, ""};
}

const char* type_name(const json& v) {
  if (v.is_null()) return "nothing";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "true or false";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "a list";
  return "an object";
}

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  const json& field(const json& object, const std::string& key, const std::string& path) const {
    if (!object.is_object() || !object.contains(key)) {
      throw Error({file_, 0, 0, path + key}, "missing: this is not a tpusim JSON report (write one with "
                                             "`tpusim run ... --json FILE`)");
    }
    return object.at(key);
  }
  int64_t integer(const json& object, const std::string& key, const std::string& path = "") const {
    const json& v = field(object, key, path);
    if (!v.is_number_integer()) throw Error({file_, 0, 0, path + key}, fmt::format("expected an integer, got {}", type_name(v)));
    return v.get<int64_t>();
  }
  double number(const json& object, const std::string& key, const std::string& path = "") const {
    const json& v = field(object, key, path);
    if (!v.is_number()) throw Error({file_, 0, 0, path + key}, fmt::format("expected a number, got {}", type_name(v)));
    return v.get<double>();
  }
  std::string string(const json& object, const std::string& key, const std::string& path = "") const {
    const json& v = field(object, key, path);
    if (!v.is_string()) throw Error({file_, 0, 0, path + key}, fmt::format("expected a string, got {}", type_name(v)));
    return v.get<std::string>();
  }
  int64_t dram(const json& figures, const std::string& path) const {
    const json& bytes = field(figures, "bytes", path);
    const json& d = field(bytes, "dram", path + "bytes.");
    return integer(d, "read", path + "bytes.dram.") + integer(d, "written", path + "bytes.dram.");
  }

 private:
  std::string file_;
};

std::string percent(double x) { return fmt::format("{:.2f}%", 100 * x); }

std::string signed_delta(int64_t d) { return d > 0 ? fmt::format("+{}", d) : fmt::format("{}", d); }

std::string relative(int64_t delta, int64_t base) {
  if (base == 0) return delta == 0 ? "0%" : "new";
  return fmt::format("{:+.1f}%", 100.0 * static_cast<double>(delta) / static_cast<double>(base));
}

}  // namespace

ReportSummary read_report_summary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error({path, 0, 0, ""}, "cannot open report file (check the path)");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(at_byte(path, text, e.byte > 0 ? e.byte - 1 : 0),
                "not valid JSON; a report is written by `tpusim run ... --json FILE` or `--report json`");
  }
  Reader r(path);
  if (!j.is_object()) throw Error({path, 1, 1, ""}, "not a tpusim JSON report (the top level is not an object)");
  const int64_t version = r.integer(j, "schema_version");
  if (version != kReportSchemaVersion) {
    throw Error({path, 0, 0, "schema_version"},
                fmt::format("this is a version {} report; diff reads version {} (run the model again with this "
                            "tpusim)",
                            version, kReportSchemaVersion));
  }
  ReportSummary s;
  s.file = path;
  s.program = r.string(j, "program");
  s.arch = r.string(r.field(j, "arch", ""), "name", "arch.");
  s.fidelity = r.string(j, "fidelity");
  s.total_cycles = r.integer(j, "total_cycles");
  const json& totals = r.field(j, "totals", "");
  s.utilization = r.number(totals, "utilization", "totals.");
  s.dram_bytes = r.dram(totals, "totals.");
  const json& layers = r.field(j, "layers", "");
  if (!layers.is_array()) throw Error({path, 0, 0, "layers"}, fmt::format("expected a list, got {}", type_name(layers)));
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string where = fmt::format("layers[{}].", i);
    ReportSummary::Layer l;
    l.label = r.string(layers[i], "label", where);
    l.op = r.string(layers[i], "op", where);
    l.cycles = r.integer(layers[i], "cycles", where);
    l.utilization = r.number(layers[i], "utilization", where);
    l.dram_bytes = r.dram(layers[i], where);
    l.bound = r.string(r.field(layers[i], "diagnosis", where), "bound", where + "diagnosis.");
    if (!seen.emplace(l.label, i).second) {
      throw Error({path, 0, 0, where + "label"}, fmt::format("layer '{}' appears twice", l.label));
    }
    s.layers.push_back(std::move(l));
  }
  return s;
}

ReportDiff diff_reports(const ReportSummary& a, const ReportSummary& b) {
  ReportDiff d;
  d.a = a;
  d.b = b;
  std::map<std::string, size_t> index;
  auto row = [&](const ReportSummary::Layer& l) -> LayerDiff& {
    auto [it, added] = index.emplace(l.label, d.layers.size());
    if (added) {
      d.layers.emplace_back();
      d.layers.back().label = l.label;
      d.layers.back().op = l.op;
    }
    return d.layers[it->second];
  };
  for (const auto& l : a.layers) row(l).a = l;
  for (const auto& l : b.layers) row(l).b = l;
  for (LayerDiff& l : d.layers) {
    l.cycles_delta = (l.b ? l.b->cycles : 0) - (l.a ? l.a->cycles : 0);
    l.dram_delta = (l.b ? l.b->dram_bytes : 0) - (l.a ? l.a->dram_bytes : 0);
  }
  std::stable_sort(d.layers.begin(), d.layers.end(), [](const LayerDiff& x, const LayerDiff& y) {
    return std::llabs(x.cycles_delta) > std::llabs(y.cycles_delta);
  });
  return d;
}

std::string diff_text(const ReportDiff& d) {
  std::string out;
  out += fmt::format("tpusim diff: A = {} on {} ({}), B = {} on {} ({})\n", d.a.program, d.a.arch, d.a.file,
                     d.b.program, d.b.arch, d.b.file);
  out += "  per layer, biggest change in cycles first (a layer's cycles: the run split where each layer starts, so the "
         "deltas add up to the total's)\n";
  const std::string header = fmt::format("  {:<24} {:<14} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>12} {:>12} {:>12}  {}\n",
                                         "layer", "op", "cycles A", "cycles B", "delta", "change", "util A", "util B",
                                         "dram A", "dram B", "dram delta", "bound A -> B");
  out += header;
  auto line = [&](const std::string& label, const std::string& op, std::optional<int64_t> ca, std::optional<int64_t> cb,
                  std::optional<double> ua, std::optional<double> ub, std::optional<int64_t> da,
                  std::optional<int64_t> db, const std::string& bounds) {
    auto n = [](std::optional<int64_t> v) { return v ? std::to_string(*v) : std::string("-"); };
    auto u = [](std::optional<double> v) { return v ? percent(*v) : std::string("-"); };
    const int64_t delta = cb.value_or(0) - ca.value_or(0);
    out += fmt::format("  {:<24} {:<14} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>12} {:>12} {:>12}  {}\n", label, op,
                       n(ca), n(cb), signed_delta(delta), relative(delta, ca.value_or(0)), u(ua), u(ub), n(da), n(db),
                       signed_delta(db.value_or(0) - da.value_or(0)), bounds);
  };
  for (const LayerDiff& l : d.layers) {
    auto opt = [](const auto& layer, auto member) {
      using T = std::decay_t<decltype((*layer).*member)>;
      return layer ? std::optional<T>((*layer).*member) : std::nullopt;
    };
    const std::string bounds = fmt::format("{} -> {}", l.a ? l.a->bound : "-", l.b ? l.b->bound : "-");
    line(l.label, l.op, opt(l.a, &ReportSummary::Layer::cycles), opt(l.b, &ReportSummary::Layer::cycles),
         opt(l.a, &ReportSummary::Layer::utilization), opt(l.b, &ReportSummary::Layer::utilization),
         opt(l.a, &ReportSummary::Layer::dram_bytes), opt(l.b, &ReportSummary::Layer::dram_bytes), bounds);
  }
  line("total", "", d.a.total_cycles, d.b.total_cycles, d.a.utilization, d.b.utilization, d.a.dram_bytes,
       d.b.dram_bytes, "");
  size_t only_a = 0, only_b = 0;
  for (const LayerDiff& l : d.layers) {
    only_a += l.a && !l.b;
    only_b += l.b && !l.a;
  }
  if (only_a + only_b > 0) {
    out += fmt::format("  ({} only in A, {} only in B: their cycles count as 0 in the other run)\n",
                       counted(only_a, "layer"), counted(only_b, "layer"));
  }
  return out;
}

std::string diff_html(const ReportDiff& d) {
  const int64_t total_delta = d.b.total_cycles - d.a.total_cycles;
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += fmt::format("<title>tpusim diff: {} vs {}</title>\n", html_escape(d.a.file), html_escape(d.b.file));
  out += "<style>body { font-family: system-ui, sans-serif; margin: 24px; color: #212121; max-width: 1200px; }\n"
         "h1 { font-size: 20px; } p { color: #616161; font-size: 13px; }\n"
         "table { border-collapse: collapse; font-size: 12px; } th, td { padding: 3px 8px; border-bottom: 1px solid "
         "#eee; text-align: right; } td.text, th.text { text-align: left; }\n"
         "svg text { font-size: 11px; fill: #424242; }</style>\n</head>\n<body>\n";
  out += fmt::format("<h1>A: {} on {} &nbsp; vs &nbsp; B: {} on {}</h1>\n", html_escape(d.a.program),
                     html_escape(d.a.arch), html_escape(d.b.program), html_escape(d.b.arch));
  out += fmt::format("<p>total cycles {} &rarr; {} ({}, {}); {} and {}. A bar per layer: its change in cycles "
                     "(green: fewer in B, red: more), biggest first; the changes add up to the total's.</p>\n",
                     d.a.total_cycles, d.b.total_cycles, signed_delta(total_delta),
                     relative(total_delta, d.a.total_cycles), html_escape(d.a.file), html_escape(d.b.file));
  int64_t most = 1;
  for (const LayerDiff& l : d.layers) most = std::max<int64_t>(most, std::llabs(l.cycles_delta));
  const int row = 16, label_width = 200, half = 330, width = label_width + 2 * half + 90;
  out += fmt::format("<svg width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"change in cycles per layer\">\n",
                     width, row * static_cast<int>(d.layers.size()) + 8);
  const int zero = label_width + half;
  for (size_t i = 0; i < d.layers.size(); ++i) {
    const LayerDiff& l = d.layers[i];
    const int y = static_cast<int>(i) * row;
    const double w = static_cast<double>(half) * static_cast<double>(std::llabs(l.cycles_delta)) / static_cast<double>(most);
    const double x = l.cycles_delta < 0 ? zero - w : zero;
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", label_width - 6, y + 12,
                       html_escape(l.label));
    out += fmt::format("<rect class=\"delta-bar\" data-layer=\"{}\" x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" "
                       "height=\"{}\" fill=\"{}\"><title>{}: {} cycles</title></rect>\n",
                       html_escape(l.label), x, y + 2, w, row - 4, l.cycles_delta < 0 ? "#2e7d32" : "#c62828",
                       html_escape(l.label), signed_delta(l.cycles_delta));
  }
  out += fmt::format("<line x1=\"{}\" y1=\"0\" x2=\"{}\" y2=\"{}\" stroke=\"#9e9e9e\"/>\n</svg>\n", zero, zero,
                     row * static_cast<int>(d.layers.size()) + 8);
  out += "<table><thead><tr><th class=\"text\">layer</th><th class=\"text\">op</th><th>cycles A</th><th>cycles "
         "B</th><th>delta</th><th>change</th><th>util A</th><th>util B</th><th>dram A</th><th>dram B</th><th>dram "
         "delta</th><th class=\"text\">bound A &rarr; B</th></tr></thead><tbody>\n";
  auto cell = [](const std::string& text) { return "<td>" + html_escape(text) + "</td>"; };
  for (const LayerDiff& l : d.layers) {
    const int64_t ca = l.a ? l.a->cycles : 0;
    out += "<tr><td class=\"text\">" + html_escape(l.label) + "</td><td class=\"text\">" + html_escape(l.op) + "</td>";
    out += cell(l.a ? std::to_string(l.a->cycles) : "-") + cell(l.b ? std::to_string(l.b->cycles) : "-") +
           cell(signed_delta(l.cycles_delta)) + cell(relative(l.cycles_delta, ca)) +
           cell(l.a ? percent(l.a->utilization) : "-") + cell(l.b ? percent(l.b->utilization) : "-") +
           cell(l.a ? std::to_string(l.a->dram_bytes) : "-") + cell(l.b ? std::to_string(l.b->dram_bytes) : "-") +
           cell(signed_delta(l.dram_delta));
    out += "<td class=\"text\">" + html_escape((l.a ? l.a->bound : "-") + " -> " + (l.b ? l.b->bound : "-")) +
           "</td></tr>\n";
  }
  out += fmt::format("<tr><td class=\"text\"><b>total</b></td><td></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                     "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td></td></tr>\n",
                     d.a.total_cycles, d.b.total_cycles, signed_delta(total_delta),
                     relative(total_delta, d.a.total_cycles), percent(d.a.utilization), percent(d.b.utilization),
                     d.a.dram_bytes, d.b.dram_bytes, signed_delta(d.b.dram_bytes - d.a.dram_bytes));
  return out + "</tbody></table>\n</body>\n</html>\n";
}

}  // namespace tpusim
