// Printer for the textual graph format. The output is canonical, so print -> parse -> print
// gives the same bytes: `graph` first, then inputs, weights and the ops' values in op order,
// then one `output` line; every value with its full type; attributes in the op table's order
// (then any others alphabetically); floats in their shortest round-trip form, always with a
// '.' or an exponent. Comments and blank lines of the source are not kept.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/graph.h"

namespace tpusim {
namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string attr_text(const AttrValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return fmt::format("{}", *i);
  if (const auto* d = std::get_if<double>(&value)) return graph_number_text(*d);
  if (const auto* l = std::get_if<std::vector<int64_t>>(&value)) return fmt::format("[{}]", fmt::join(*l, ","));
  return quote(std::get<std::string>(value));
}

// NAME : TYPE[dims] scale=S seed=N file="..." (a value whose type is not inferred yet has none).
std::string declaration(const Value& v) {
  std::string out = v.name;
  if (!v.shape.empty()) out += fmt::format(" : {}[{}]", dtype_name(v.dtype), fmt::join(v.shape, ","));
  if (v.scale != 0) out += " scale=" + graph_number_text(v.scale);
  if (v.seed != 0) out += fmt::format(" seed={}", v.seed);
  if (!v.weight_file.empty()) out += " file=" + quote(v.weight_file);
  return out;
}

std::string value_name(const Graph& graph, int index) {
  if (index < 0 || index >= static_cast<int>(graph.values.size())) return fmt::format("<value #{}>", index);
  return graph.values[static_cast<size_t>(index)].name;
}

}  // namespace

std::string graph_number_text(double value) {
  std::string s = fmt::format("{}", value);
  if (s.find_first_of(".enE") == std::string::npos) s += ".0";  // "inf" and "nan" contain an 'n'
  return s;
}

std::string print_graph(const Graph& graph) {
  std::string out = fmt::format("graph {}\n", graph.name);
  for (ValueKind kind : {ValueKind::Input, ValueKind::Weight}) {
    for (const auto& v : graph.values) {
      if (v.kind != kind) continue;
      out += fmt::format("{} {}\n", kind == ValueKind::Input ? "input" : "weight", declaration(v));
    }
  }
  for (const auto& op : graph.ops) {
    const OpInfo& info = op_info(op.kind);
    std::vector<std::string> inputs;
    for (int i : op.inputs) inputs.push_back(value_name(graph, i));
    std::string head = op.output >= 0 && op.output < static_cast<int>(graph.values.size())
                           ? declaration(graph.values[static_cast<size_t>(op.output)])
                           : value_name(graph, op.output);
    out += fmt::format("value {} = {}({})", head, info.name, fmt::join(inputs, ", "));
    for (const auto& a : info.attrs) {
      auto it = op.attrs.find(a.name);
      if (it != op.attrs.end()) out += fmt::format(" {}={}", a.name, attr_text(it->second));
    }
    for (const auto& [name, value] : op.attrs) {  // std::map: alphabetical
      bool known = false;
      for (const auto& a : info.attrs) known = known || name == a.name;
      if (!known) out += fmt::format(" {}={}", name, attr_text(value));
    }
    out += "\n";
  }
  if (!graph.outputs.empty()) {
    std::vector<std::string> names;
    for (int i : graph.outputs) names.push_back(value_name(graph, i));
    out += fmt::format("output {}\n", fmt::join(names, ", "));
  }
  return out;
}

}  // namespace tpusim
