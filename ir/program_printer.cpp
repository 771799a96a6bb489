// Printer for the textual program format. The output is canonical: parsing it and printing
// again gives the same bytes (fields in table order, defaults left out, decimal integers).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/program.h"

namespace tpusim {
namespace {

std::string print_affine(const Affine& a, const std::vector<std::string>& loop_variables) {
  std::string out;
  if (a.constant != 0 || a.terms.empty()) out = fmt::format("{}", a.constant);
  for (const auto& [depth, coefficient] : a.terms) {
    if (coefficient == 0) continue;
    const std::string& var = loop_variables.at(static_cast<size_t>(depth));
    std::string sign = coefficient < 0 ? "-" : (out.empty() ? "" : "+");
    int64_t magnitude = coefficient < 0 ? -coefficient : coefficient;
    out += magnitude == 1 ? fmt::format("{}{}", sign, var) : fmt::format("{}{}*{}", sign, magnitude, var);
  }
  if (out.empty()) out = "0";
  return out;
}

std::string print_list(const std::vector<int64_t>& values) {
  return fmt::format("[{}]", fmt::join(values, ","));
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A comment after a statement: two spaces, then '#' and the text as written.
std::string trailing_comment(const std::string& text) { return text.empty() ? "" : "  #" + text; }

void print_nodes(const Program& program, const std::vector<Node>& nodes, int indent,
                 std::vector<std::string>& loop_variables, std::string& out) {
  std::string pad(static_cast<size_t>(indent) * 2, ' ');
  for (const auto& node : nodes) {
    switch (node.kind) {
      case Node::Kind::Blank:
        out += "\n";
        break;
      case Node::Kind::Comment:
        out += pad + "#" + node.text + "\n";
        break;
      case Node::Kind::TensorDecl: {
        const auto& t = program.tensors[static_cast<size_t>(node.declaration)];
        out += fmt::format("{}tensor {} {} {} {}", pad, t.name, dtype_name(t.dtype),
                           print_list(t.shape), tensor_kind_name(t.kind));
        out += trailing_comment(node.text) + "\n";
        break;
      }
      case Node::Kind::TokenDecl: {
        const auto& t = program.tokens[static_cast<size_t>(node.declaration)];
        out += fmt::format("{}token {} {} -> {}", pad, t.name, unit_name(t.producer),
                           unit_name(t.consumer));
        if (t.initial != 0) out += fmt::format(" init={}", t.initial);
        out += trailing_comment(node.text) + "\n";
        break;
      }
      case Node::Kind::Instruction:
        out += pad + print_instruction(program, node.instruction, loop_variables);
        out += trailing_comment(node.instruction.comment) + "\n";
        break;
      case Node::Kind::Repeat:
        out += fmt::format("{}repeat {} {} {{{}\n", pad, node.loop_variable, node.loop_count,
                           trailing_comment(node.text));
        loop_variables.push_back(node.loop_variable);
        print_nodes(program, node.body, indent + 1, loop_variables, out);
        loop_variables.pop_back();
        out += pad + "}\n";
        break;
    }
  }
}

}  // namespace

std::string print_instruction(const Program& program, const Instruction& in,
                              const std::vector<std::string>& loop_variables) {
  const OpcodeInfo& info = opcode_info(in.opcode);
  std::string out = info.mnemonic;
  for (const auto& field : info.fields) {
    switch (field.kind) {
      case FieldKind::BufferRef:
      case FieldKind::TypedBufferRef: {
        const BufferRef& ref = *buffer_slot(in, field.slot);
        if (!ref.present) break;
        out += fmt::format(" {}={}[{}]", field.name, buffer_name(ref.buffer),
                           print_affine(ref.address, loop_variables));
        if (field.kind == FieldKind::TypedBufferRef) out += fmt::format(":{}", dtype_name(ref.type));
        break;
      }
      case FieldKind::TensorRef: {
        if (in.tensor.tensor < 0) break;
        std::vector<std::string> coords;
        for (const auto& c : in.tensor.coords) coords.push_back(print_affine(c, loop_variables));
        out += fmt::format(" {}={}[{}]", field.name,
                           program.tensors.at(static_cast<size_t>(in.tensor.tensor)).name,
                           fmt::join(coords, ","));
        break;
      }
      case FieldKind::Int: {
        int64_t v = *int_slot(in, field.slot);
        if (field.required || v != field.default_value) out += fmt::format(" {}={}", field.name, v);
        break;
      }
      case FieldKind::IntList: {
        const auto& v = *int_list_slot(in, field.slot);
        if (!v.empty()) out += fmt::format(" {}={}", field.name, print_list(v));
        break;
      }
      case FieldKind::IntListList: {
        if (in.tensor_step.empty()) break;
        std::vector<std::string> parts;
        for (const auto& step : in.tensor_step) parts.push_back(print_list(step));
        out += fmt::format(" {}=[{}]", field.name, fmt::join(parts, ","));
        break;
      }
      case FieldKind::Bool:
        if (*bool_slot(in, field.slot)) out += fmt::format(" {}=true", field.name);
        break;
      case FieldKind::Double:
        if (in.imm) out += fmt::format(" {}={}", field.name, *in.imm);
        break;
    }
  }
  auto names = [&](const std::vector<int>& tokens) {
    std::vector<std::string> n;
    for (int t : tokens) n.push_back(program.tokens.at(static_cast<size_t>(t)).name);
    return fmt::format("{}", fmt::join(n, ","));
  };
  if (!in.waits.empty()) out += " wait=" + names(in.waits);
  if (!in.signals.empty()) out += " signal=" + names(in.signals);
  if (!in.label.empty()) out += " label=" + quote(in.label);
  return out;
}

std::string print_program(const Program& program) {
  std::string out;
  std::vector<std::string> loop_variables;
  print_nodes(program, program.body, 0, loop_variables, out);
  return out;
}

}  // namespace tpusim
