// The program IR as a library: the example programs, the lazy loop cursor, affine
// expressions and the opcode table that drives the parser, printer and verifier.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "ir/program.h"
#include "test_util.h"

using namespace tpusim;

namespace {

// The targets of examples/arch/, written out by hand (the arch loader is tested elsewhere).
TargetLimits teach_4x4() {
  TargetLimits t;
  t.rows = 4;
  t.cols = 4;
  t.dataflow = Dataflow::WeightStationary;
  t.operand_type = DType::Int8;
  t.buffer_bytes[static_cast<int>(Buffer::Unified)] = 4 * 1024;
  t.buffer_bytes[static_cast<int>(Buffer::Weight)] = 256;
  t.buffer_bytes[static_cast<int>(Buffer::Accumulator)] = 2 * 1024;
  return t;
}

TargetLimits edge_32x32() {
  TargetLimits t;
  t.rows = 32;
  t.cols = 32;
  t.dataflow = Dataflow::WeightStationary;
  t.operand_type = DType::Int8;
  t.buffer_bytes[static_cast<int>(Buffer::Unified)] = 512 * 1024;
  t.buffer_bytes[static_cast<int>(Buffer::Weight)] = 64 * 1024;
  t.buffer_bytes[static_cast<int>(Buffer::Accumulator)] = 128 * 1024;
  return t;
}

std::string example_path(const std::string& name) {
  return test::source_dir() + "/examples/programs/" + name;
}

std::string all_messages(const std::vector<Error>& errors) {
  std::string out;
  for (const auto& e : errors) out += std::string(e.what()) + "\n";
  return out;
}

// Runs only the tokens of a program: each unit in turn issues its next instruction when every
// token it waits on is positive. Returns "" when all units finish with every token back at
// its initial count, otherwise what went wrong. (The simulator does this with timing; this
// is the untimed skeleton, enough to show the examples cannot deadlock.)
std::string run_tokens(const Program& program) {
  std::vector<int64_t> count;
  for (const auto& t : program.tokens) count.push_back(t.initial);
  std::vector<ProgramCursor> cursors;
  std::vector<const Instruction*> pending;
  for (Unit u : {Unit::Dma, Unit::Mxu, Unit::Vpu}) {
    cursors.emplace_back(program, u);
    pending.push_back(cursors.back().next());
  }
  while (true) {
    bool progressed = false, all_done = true;
    for (size_t u = 0; u < cursors.size(); ++u) {
      const Instruction* in = pending[u];
      if (!in) continue;
      all_done = false;
      bool ready = true;
      for (int t : in->waits) ready = ready && count[static_cast<size_t>(t)] > 0;
      if (!ready) continue;
      for (int t : in->waits) --count[static_cast<size_t>(t)];
      for (int t : in->signals) ++count[static_cast<size_t>(t)];
      pending[u] = cursors[u].next();
      progressed = true;
    }
    if (all_done) break;
    if (!progressed) return "deadlock";
  }
  for (size_t t = 0; t < count.size(); ++t) {
    if (count[t] != program.tokens[t].initial) {
      return fmt::format("token {} ends at {}", program.tokens[t].name, count[t]);
    }
  }
  return "";
}

int count_instructions(const Program& program, Unit unit) {
  ProgramCursor cursor(program, unit);
  int n = 0;
  while (cursor.next()) ++n;
  return n;
}

// One step of a cursor: the instruction's source line and the loop values it sees.
std::string step_text(const Instruction& in, const ProgramCursor& cursor) {
  std::string out = fmt::format("line {}", in.location.line);
  for (int d = 0; d < cursor.loop_depth(); ++d) out += fmt::format(" {}", cursor.loop_values()[d]);
  return out;
}

std::vector<std::string> walk(const Program& program, Unit unit) {
  ProgramCursor cursor(program, unit);
  std::vector<std::string> steps;
  while (const Instruction* in = cursor.next()) steps.push_back(step_text(*in, cursor));
  return steps;
}

}  // namespace

TEST_CASE("the example programs verify clean against their targets", "[program][examples]") {
  struct Example {
    const char* file;
    TargetLimits target;
    int dma, mxu;
  };
  const Example examples[] = {
      {"gemm-4x4.tpu", teach_4x4(), 3, 2},
      {"gemm-tiled-edge.tpu", edge_32x32(), 1 + 6 + 3, 12},
  };
  for (const auto& example : examples) {
    INFO(example.file);
    Program program = load_program(example_path(example.file));
    CHECK(all_messages(verify_program(program, example.target)).empty());
    CHECK(count_instructions(program, Unit::Dma) == example.dma);
    CHECK(count_instructions(program, Unit::Mxu) == example.mxu);
    CHECK(count_instructions(program, Unit::Vpu) == 0);
    // Tokens balance and cannot deadlock under the untimed token-only schedule.
    CHECK(run_tokens(program).empty());
    // The examples are written in canonical form: what the compiler would print.
    CHECK(print_program(program) == test::read_text_file(example_path(example.file)));
  }
}

TEST_CASE("the tiled example needs its double buffer: with one free slot it still runs, "
          "with none it deadlocks", "[program][examples]") {
  Program program = load_program(example_path("gemm-tiled-edge.tpu"));
  int slot_free = program.find_token("slot_free");
  REQUIRE(slot_free >= 0);
  CHECK(program.tokens[static_cast<size_t>(slot_free)].initial == 2);
  program.tokens[static_cast<size_t>(slot_free)].initial = 1;
  CHECK(run_tokens(program).empty());
  program.tokens[static_cast<size_t>(slot_free)].initial = 0;
  CHECK(run_tokens(program) == "deadlock");
}

TEST_CASE("the examples fail on a smaller machine with the reason", "[program][examples]") {
  Program program = load_program(example_path("gemm-tiled-edge.tpu"));
  TargetLimits small = teach_4x4();
  auto errors = verify_program(program, small);
  REQUIRE(!errors.empty());
  CHECK(errors.front().message() ==
        "dma.load dst accesses ub bytes [0, 8192) but ub has 4096 bytes (address out of range)");
  TargetLimits os = edge_32x32();
  os.dataflow = Dataflow::OutputStationary;
  errors = verify_program(program, os);
  REQUIRE(errors.size() == 4);
  CHECK(errors.front().message() ==
        "mxu.load_stationary needs a weight- or input-stationary (ws/is) array; this target is "
        "os (use mxu.matmul_os)");
}

TEST_CASE("ProgramCursor walks each unit's instructions in program order with loop values",
          "[program][cursor]") {
  const std::string text =
      "tensor X int8 [64] input\n"                                    // 1
      "dma.load dst=ub[0] src=X[0] extent=[4]\n"                      // 2
      "repeat i 2 {\n"                                                // 3
      "  vpu.relu dst=ub[0]:int8 src=ub[0]:int8 cols=4\n"             // 4
      "  repeat j 3 {\n"                                              // 5
      "    dma.load dst=ub[i+j] src=X[0] extent=[4]\n"                // 6
      "    repeat k 2 {\n"                                            // 7
      "      vpu.relu dst=ub[k]:int8 src=ub[0]:int8 cols=4\n"         // 8
      "    }\n"                                                       // 9
      "  }\n"                                                         // 10
      "  repeat v 1000000000000 {\n"                                  // 11
      "    vpu.relu dst=ub[0]:int8 src=ub[0]:int8 cols=4\n"           // 12
      "  }\n"                                                         // 13
      "  dma.load dst=ub[i] src=X[0] extent=[4]\n"                    // 14
      "}\n"                                                           // 15
      "repeat n 2 {\n"                                                // 16
      "  # nothing but a comment\n"                                   // 17
      "}\n"                                                           // 18
      "mxu.load_stationary src=wb[0] rows=1 cols=1 stride=1\n";       // 19
  Program program = parse_program(text, "cursor.tpu");

  SECTION("DMA enters only the loops with DMA work and skips the VPU's billion-iteration loop") {
    // Loop values are by depth: i, then j inside `repeat j`.
    std::vector<std::string> expected = {
        "line 2",
        "line 6 0 0", "line 6 0 1", "line 6 0 2", "line 14 0",
        "line 6 1 0", "line 6 1 1", "line 6 1 2", "line 14 1",
    };
    CHECK(walk(program, Unit::Dma) == expected);
  }
  SECTION("MXU sees its one instruction at depth 0 and then the end of its stream") {
    CHECK(walk(program, Unit::Mxu) == std::vector<std::string>{"line 19"});
    ProgramCursor cursor(program, Unit::Mxu);
    REQUIRE(cursor.next() != nullptr);
    CHECK(cursor.loop_depth() == 0);
    CHECK(cursor.next() == nullptr);
    CHECK(cursor.next() == nullptr);  // stays ended
  }
  SECTION("VPU gets loop values lazily, even from a loop of 10^12 iterations") {
    ProgramCursor cursor(program, Unit::Vpu);
    std::vector<std::string> steps;
    for (int n = 0; n < 14; ++n) {
      const Instruction* in = cursor.next();
      REQUIRE(in != nullptr);
      steps.push_back(step_text(*in, cursor));
    }
    std::vector<std::string> expected = {
        "line 4 0",
        "line 8 0 0 0", "line 8 0 0 1", "line 8 0 1 0", "line 8 0 1 1", "line 8 0 2 0", "line 8 0 2 1",
        "line 12 0 0", "line 12 0 1", "line 12 0 2", "line 12 0 3", "line 12 0 4", "line 12 0 5",
        "line 12 0 6",
    };
    CHECK(steps == expected);
  }
  SECTION("an instruction's address is its affine expression at the cursor's loop values") {
    ProgramCursor cursor(program, Unit::Dma);
    std::vector<int64_t> addresses;
    while (const Instruction* in = cursor.next()) {
      addresses.push_back(in->buffer.address.evaluate(cursor.loop_values()));
    }
    CHECK(addresses == std::vector<int64_t>{0, 0, 1, 2, 0, 1, 2, 3, 1});
  }
}

TEST_CASE("ProgramCursor handles loops nested to the maximum depth", "[program][cursor]") {
  std::string text = "tensor X int8 [4] input\n";
  for (int d = 0; d < kMaxLoopDepth; ++d) text += fmt::format("repeat v{} 2 {{\n", d);
  text += "dma.load dst=ub[0] src=X[0] extent=[1]\n";
  for (int d = 0; d < kMaxLoopDepth; ++d) text += "}\n";
  Program program = parse_program(text, "deep.tpu");
  ProgramCursor cursor(program, Unit::Dma);
  int64_t n = 0;
  while (cursor.next()) {
    CHECK(cursor.loop_depth() == kMaxLoopDepth);
    // The loop values, outermost first, spell the iteration number in binary.
    int64_t value = 0;
    for (int d = 0; d < kMaxLoopDepth; ++d) value = value * 2 + cursor.loop_values()[d];
    CHECK(value == n);
    ++n;
  }
  CHECK(n == int64_t{1} << kMaxLoopDepth);

  text = "tensor X int8 [4] input\n";
  for (int d = 0; d <= kMaxLoopDepth; ++d) text += fmt::format("repeat v{} 2 {{\n", d);
  CHECK_THROWS_WITH(parse_program(text, "deeper.tpu"),
                    "deeper.tpu:18:1: error: repeat loops nest at most 16 deep");
}

TEST_CASE("affine expressions evaluate constant + sum(coefficient * loop value)",
          "[program][affine]") {
  Affine a(7);
  CHECK(a.is_constant());
  int64_t none[1] = {0};
  CHECK(a.evaluate(none) == 7);

  Affine b;
  b.constant = 3;
  b.terms = {{0, 4}, {2, -1}};
  int64_t values[3] = {5, 100, 2};
  CHECK(!b.is_constant());
  CHECK(b.evaluate(values) == 3 + 4 * 5 - 2);

  // Parsed expressions are canonical: one term per variable, by depth, no zero terms, so
  // equal expressions compare equal however they are written.
  const std::string text =
      "tensor X int8 [4] input\n"
      "repeat i 2 {\n"
      "  repeat j 2 {\n"
      "    dma.load dst=ub[3+4*i-j] src=X[0] extent=[1]\n"
      "    dma.load dst=ub[-j+i*4+0x3] src=X[0] extent=[1]\n"
      "    dma.load dst=ub[i+j+3*i-2*j+3] src=X[0] extent=[1]\n"
      "    dma.load dst=ub[5+j-j] src=X[i-i] extent=[1]\n"
      "  }\n"
      "}\n";
  Program program = parse_program(text, "affine.tpu");
  const auto& body = program.body[1].body[0].body;
  REQUIRE(body.size() == 4);
  const Affine& first = body[0].instruction.buffer.address;
  CHECK(first.constant == 3);
  CHECK(first.terms == std::vector<std::pair<int, int64_t>>{{0, 4}, {1, -1}});
  CHECK(body[1].instruction.buffer.address == first);
  CHECK(body[2].instruction.buffer.address == first);
  CHECK(body[3].instruction.buffer.address == Affine(5));
  CHECK(body[3].instruction.tensor.coords[0].is_constant());
  CHECK(print_instruction(program, body[0].instruction, {"i", "j"}) ==
        "dma.load dst=ub[3+4*i-j] src=X[0] extent=[1]");
  CHECK(print_instruction(program, body[3].instruction, {"i", "j"}) ==
        "dma.load dst=ub[5] src=X[0] extent=[1]");
}

TEST_CASE("the opcode table is consistent with the enum, the units and the slots",
          "[program][opcodes]") {
  auto mnemonics = opcode_mnemonics();
  REQUIRE(mnemonics.size() == static_cast<size_t>(kOpcodeCount));
  std::set<std::string> unique(mnemonics.begin(), mnemonics.end());
  CHECK(unique.size() == mnemonics.size());
  for (int i = 0; i < kOpcodeCount; ++i) {
    auto op = static_cast<Opcode>(i);
    const OpcodeInfo& info = opcode_info(op);
    INFO(info.mnemonic);
    CHECK(info.opcode == op);
    CHECK(mnemonics[static_cast<size_t>(i)] == info.mnemonic);
    // The mnemonic parses back to the opcode, and its prefix is its unit.
    CHECK(parse_opcode(info.mnemonic) == op);
    std::string mnemonic = info.mnemonic;
    auto dot = mnemonic.find('.');
    REQUIRE(dot != std::string::npos);
    CHECK(parse_unit(mnemonic.substr(0, dot)) == info.unit);
    CHECK(unit_of(op) == info.unit);
    CHECK(std::string(info.summary).size() > 5);
    CHECK(is_vpu_binary(op) == (mnemonic == "vpu.add" || mnemonic == "vpu.sub" ||
                                mnemonic == "vpu.mul" || mnemonic == "vpu.max" ||
                                mnemonic == "vpu.min"));
    CHECK(is_vpu_reduction(op) == (mnemonic == "vpu.reduce_sum" || mnemonic == "vpu.reduce_max"));

    // Field names are unique and never shadow the operands every instruction takes; each
    // field's slot has an accessor of its kind.
    std::set<std::string> names;
    Instruction in;
    bool has_src2 = false;
    for (const auto& f : info.fields) {
      INFO(f.name);
      CHECK(names.insert(f.name).second);
      CHECK(std::string(f.name) != "wait");
      CHECK(std::string(f.name) != "signal");
      CHECK(std::string(f.name) != "label");
      has_src2 = has_src2 || f.slot == FieldSlot::Src2;
      switch (f.kind) {
        case FieldKind::BufferRef:
        case FieldKind::TypedBufferRef:
          CHECK(buffer_slot(in, f.slot) != nullptr);
          CHECK((f.kind == FieldKind::TypedBufferRef) == (info.unit == Unit::Vpu));
          break;
        case FieldKind::Int: CHECK(int_slot(in, f.slot) != nullptr); break;
        case FieldKind::Bool:
          CHECK(bool_slot(in, f.slot) != nullptr);
          CHECK(!f.required);
          break;
        case FieldKind::TensorRef: CHECK(f.slot == FieldSlot::Tensor); break;
        case FieldKind::IntList: CHECK(int_list_slot(in, f.slot) != nullptr); break;
        case FieldKind::IntListList: CHECK(f.slot == FieldSlot::TensorStep); break;
        case FieldKind::Double: CHECK(f.slot == FieldSlot::Imm); break;
      }
    }
    CHECK(has_src2 == is_vpu_binary(op));
  }
  CHECK(!parse_opcode("mxu.matmull"));
  CHECK(!parse_opcode("load"));
}

TEST_CASE("every opcode parses from its required operands and prints them back",
          "[program][opcodes]") {
  // A value for each field kind that every opcode accepts syntactically.
  for (int i = 0; i < kOpcodeCount; ++i) {
    const OpcodeInfo& info = opcode_info(static_cast<Opcode>(i));
    INFO(info.mnemonic);
    std::string line = info.mnemonic;
    for (const auto& f : info.fields) {
      if (!f.required) continue;
      std::string value;
      switch (f.kind) {
        case FieldKind::BufferRef: value = "ub[0]"; break;
        case FieldKind::TypedBufferRef: value = "ub[0]:int32"; break;
        case FieldKind::TensorRef: value = "T[0,0]"; break;
        case FieldKind::Int: value = "1"; break;
        case FieldKind::IntList: value = "[1]"; break;
        case FieldKind::IntListList: value = "[[0,1]]"; break;
        case FieldKind::Bool: value = "true"; break;
        case FieldKind::Double: value = "1"; break;
      }
      line += fmt::format(" {}={}", f.name, value);
    }
    std::string text = "tensor T int8 [2,2] output\n" + line + "\n";
    Program program = parse_program(text, "required.tpu");
    CHECK(print_program(program) == text);
  }
}

TEST_CASE("load_program names the file it cannot open", "[program]") {
  CHECK_THROWS_WITH(load_program("/nonexistent/dir/x.tpu"),
                    "/nonexistent/dir/x.tpu: error: cannot open program file (check the path)");
}

namespace {

std::string format_doc() { return test::read_text_file(test::source_dir() + "/docs/program-format.md"); }

// The code blocks (between ``` lines) of a markdown text.
std::vector<std::string> code_blocks(const std::string& markdown) {
  std::vector<std::string> blocks;
  size_t pos = 0;
  while ((pos = markdown.find("```\n", pos)) != std::string::npos) {
    size_t start = pos + 4;
    size_t end = markdown.find("```\n", start);
    if (end == std::string::npos) break;
    blocks.push_back(markdown.substr(start, end - start));
    pos = end + 4;
  }
  return blocks;
}

}  // namespace

TEST_CASE("docs/program-format.md lists every opcode with its operands in table order",
          "[program][docs]") {
  std::string doc = format_doc();
  for (int i = 0; i < kOpcodeCount; ++i) {
    const OpcodeInfo& info = opcode_info(static_cast<Opcode>(i));
    INFO(info.mnemonic);
    std::string row_start = fmt::format("\n| `{}` |", info.mnemonic);
    size_t row = doc.find(row_start);
    REQUIRE(row != std::string::npos);
    std::string line = doc.substr(row + 1, doc.find('\n', row + 1) - row - 1);
    size_t at = 0;
    for (const auto& f : info.fields) {
      INFO(f.name);
      // `name=...` when required, `[name=...]` when optional, in the table's order.
      std::string written = (f.required ? "`" : "`[") + std::string(f.name) + "=";
      size_t found = line.find(written, at);
      CHECK(found != std::string::npos);
      if (found != std::string::npos) at = found + written.size();
      if (!f.required && f.kind == FieldKind::Int) {
        CHECK(line.find(fmt::format("`[{}={}]`", f.name, f.default_value)) != std::string::npos);
      }
    }
  }
}

TEST_CASE("the programs in docs/program-format.md parse", "[program][docs]") {
  auto blocks = code_blocks(format_doc());
  REQUIRE(!blocks.empty());
  // The first block is the 4x4 GEMM example without its comments and labels.
  Program example = load_program(example_path("gemm-4x4.tpu"));
  std::vector<Node> kept;
  for (auto& node : example.body) {
    if (node.kind == Node::Kind::Comment || node.kind == Node::Kind::Blank) continue;
    node.instruction.label.clear();
    kept.push_back(node);
  }
  example.body = kept;
  CHECK(print_program(example) == blocks.front());

  // The address-pattern examples, with the declarations they assume.
  Program padding = parse_program(
      "tensor X int8 [8,8] input\n"
      "repeat oh 8 {\n"
      "  dma.load dst=ub[0] src=X[oh-1,-1] extent=[3,10]\n"
      "}\n",
      "padding.tpu");
  Program im2col = parse_program(
      "tensor X int8 [8] input\n"
      "dma.load dst=ub[0] src=X[-1] extent=[8,3] src_step=[[1],[1]]\n",
      "im2col.tpu");
  CHECK(verify_program(padding, teach_4x4()).empty());
  CHECK(verify_program(im2col, teach_4x4()).empty());
  CHECK(std::find_if(blocks.begin(), blocks.end(), [](const std::string& b) {
          return b.find("dma.load dst=ub[0] src=X[-1] extent=[8,3] src_step=[[1],[1]]") != std::string::npos;
        }) != blocks.end());
}
