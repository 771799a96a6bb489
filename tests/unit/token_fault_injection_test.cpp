// Fault injection on the dependency tokens. Each mutant of a program deletes one token use --
// one `wait=` entry or one `signal=` entry of one instruction (inside a `repeat`, for every
// iteration at once) -- and is simulated. The programs are the hand-written examples and
// example models compiled for small machines.
//
// The rule. A mutant is detected when the simulator reports a race or a deadlock. The
// verifier's token-balance check rejects every single deletion (the test checks that), so it
// is not counted -- except for the one kind of mutant for which it is the only possible
// symptom: a deleted signal of a token with a nonzero `init` ("lost slot"). Every later wait
// then pairs with a later signal, so the program is as ordered or more and cannot race; with
// two or more slots it does not deadlock either, it only runs with one slot fewer.
//
// Every verdict is checked against an untimed run that shares nothing with the simulator's
// race checker but the instructions' access ranges: vector clocks from the tokens alone, and
// every pair of instances compared. A race must be an unordered conflicting pair, a deadlock a
// run that gets stuck (under every schedule, since tokens pair the same way in all of them),
// and a survivor neither. Survivors are explained from the ordering they leave:
//   - "redundant": a deleted wait that leaves every instruction's happens-before set
//     unchanged: its token orders nothing (all its waits are within its `init`), or program
//     order and the other tokens already order the instruction after the signal (e.g. the
//     matmul's wait on its A tile when the DMA loads A before the weights the array waited
//     for). The compiler emits a ready/free token pair per ring buffer in every kernel, even
//     where the tiling makes one redundant, so that each dependency is visible in the text.
//   - "covered": a deleted wait that does remove ordering, but only between instructions
//     whose accesses do not conflict; the conflicting pairs it guarded stay ordered through
//     other tokens (e.g. the resident-weight `b_free` of a GEMM whose A slots are freed later).
// A survivor the untimed run finds racy or stuck would be a fault the simulator missed.
//
// The score of each program is printed by `tpusim_unit_tests "[fault-injection]"`.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "compiler/pipeline.h"
#include "ir/program.h"
#include "simulator/arch.h"
#include "simulator/simulator.h"
#include "test_util.h"

using namespace tpusim;

namespace {

struct Subject {
  std::string name;  // shown in the score line
  std::string path;  // a model (.yaml) or a program (.tpu), relative to the source tree's root
  std::string arch;
  std::vector<std::string> overrides = {};
  AttentionLowering attention = AttentionLowering::Flash;
};

const std::vector<Subject> kSubjects = {
    {"gemm-4x4.tpu", "examples/programs/gemm-4x4.tpu", "teach-4x4"},
    {"gemm-tiled-edge.tpu", "examples/programs/gemm-tiled-edge.tpu", "edge-32x32"},
    {"tiny-cnn on teach-4x4", "examples/models/tiny-cnn.yaml", "teach-4x4"},
    {"tiny-cnn on edge-32x32", "examples/models/tiny-cnn.yaml", "edge-32x32"},
    {"tcn on edge-32x32", "examples/models/tcn.yaml", "edge-32x32"},
    {"pool-concat on teach-4x4", "tests/golden/models/pool-concat.yaml", "teach-4x4"},
    {"attention-teach flash on teach-4x4 bf16",
     "examples/models/attention-teach.yaml",
     "teach-4x4",
     {"mxu.operand_type=bf16"},
     AttentionLowering::Flash},
    {"attention-teach materialized on teach-4x4 bf16",
     "examples/models/attention-teach.yaml",
     "teach-4x4",
     {"mxu.operand_type=bf16"},
     AttentionLowering::Materialized},
    // grouped kv heads and a causal window; in a 512-byte unified buffer materialized spills
    // its scores to DRAM
    {"attention-window flash on teach-4x4 bf16 ub 512",
     "tests/golden/models/attention-window.yaml",
     "teach-4x4",
     {"mxu.operand_type=bf16", "unified_buffer.bytes=512"},
     AttentionLowering::Flash},
    {"attention-window materialized on teach-4x4 bf16 ub 512",
     "tests/golden/models/attention-window.yaml",
     "teach-4x4",
     {"mxu.operand_type=bf16", "unified_buffer.bytes=512"},
     AttentionLowering::Materialized},
};

Program subject_program(const Subject& s, const ArchConfig& arch) {
  const std::string path = test::source_dir() + "/" + s.path;
  if (s.path.ends_with(".tpu")) return parse_program(test::read_text_file(path), s.path);
  CompileOptions options;
  options.lowering.attention = s.attention;
  CompileResult compiled = compile_graph(load_model(path), arch, options);
  // Printed and parsed back, so that messages name lines of the program's text.
  return parse_program(print_program(compiled.program), s.name);
}

void collect_instructions(std::vector<Node>& body, std::vector<Instruction*>& out) {
  for (Node& node : body) {
    if (node.kind == Node::Kind::Instruction) out.push_back(&node.instruction);
    if (node.kind == Node::Kind::Repeat) collect_instructions(node.body, out);
  }
}

// ---------------------------------------------------------------- ordering from tokens alone
using Clock = std::array<int64_t, kUnitCount>;

// One instruction instance of an untimed run: its unit, its vector clock (component v: how
// many of unit v's instructions happen before it, or are it) and the bytes it touches.
struct Instance {
  Unit unit;
  Clock clock;
  const Instruction* instruction;
  std::vector<AccessRange> accesses;
  int64_t sequence() const { return clock[static_cast<int>(unit)]; }
  // True when `this` happens before `later` (both of different units).
  bool before(const Instance& later) const {
    return later.clock[static_cast<int>(unit)] >= sequence();
  }
};

struct TokenRun {
  std::vector<Instance> instances;  // in the order the run issued them
  bool stuck = false;               // the run could not finish: a deadlock under every schedule
};

// An untimed run: each unit issues whenever its waits are available, taking its waits and
// signalling at once. Token counts only grow by signals and each unit is in order, so every
// schedule pairs the same signals with the same waits: the happens-before relation this run
// computes is the program's. It shares nothing with the simulator but the instruction
// semantics' access ranges.
TokenRun token_run(const Program& program, const TargetLimits& target) {
  TokenRun run;
  std::vector<std::deque<Clock>> pending(program.tokens.size());
  for (size_t t = 0; t < program.tokens.size(); ++t)
    pending[t].assign(static_cast<size_t>(program.tokens[t].initial), Clock{});
  std::vector<ProgramCursor> cursors;
  std::array<const Instruction*, kUnitCount> heads{};
  std::array<Clock, kUnitCount> unit_clock{};
  StationaryTile tile;  // only its shape matters for the accesses of mxu.matmul
  for (int u = 0; u < kUnitCount; ++u) {
    cursors.emplace_back(program, static_cast<Unit>(u));
    heads[u] = cursors.back().next();
  }
  auto available = [&](const Instruction& in) {
    for (int t : in.waits) {
      const auto needed = std::count(in.waits.begin(), in.waits.end(), t);
      if (static_cast<int64_t>(pending[static_cast<size_t>(t)].size()) < needed) return false;
    }
    return true;
  };
  for (;;) {
    bool progressed = false, finished = true;
    for (int u = 0; u < kUnitCount; ++u) {
      while (heads[u] && available(*heads[u])) {
        const Instruction& in = *heads[u];
        Clock& clock = unit_clock[u];
        for (int t : in.waits) {
          auto& queue = pending[static_cast<size_t>(t)];
          for (int v = 0; v < kUnitCount; ++v) clock[v] = std::max(clock[v], queue.front()[v]);
          queue.pop_front();
        }
        ++clock[u];
        for (int t : in.signals) pending[static_cast<size_t>(t)].push_back(clock);
        InstructionInstance instance{&in, cursors[u].loop_values()};
        if (in.opcode == Opcode::MxuLoadStationary) {
          tile.rows = in.rows;
          tile.cols = in.cols;
        }
        run.instances.push_back({static_cast<Unit>(u), clock, &in,
                                 instruction_accesses(program, target, instance, tile)});
        heads[u] = cursors[u].next();
        progressed = true;
      }
      finished = finished && heads[u] == nullptr;
    }
    if (finished) return run;
    if (!progressed) {
      run.stuck = true;
      return run;
    }
  }
}

// Two instances of different units touching overlapping bytes of one buffer, at least one
// writing, with neither happening before the other. Empty: race-free. For an instance b and
// another unit u, the instances of u unordered with b are a contiguous run of u's program
// order: those after the last one b has seen (b.clock[u]) and before the first one that has
// seen b. Each such pair is compared.
std::string unordered_conflict(const TokenRun& run) {
  std::array<std::vector<const Instance*>, kUnitCount> by_unit;  // in program order
  for (const auto& i : run.instances) by_unit[static_cast<int>(i.unit)].push_back(&i);
  for (const auto& b : run.instances) {
    const int ub = static_cast<int>(b.unit);
    for (int u = ub + 1; u < kUnitCount; ++u) {
      const auto& others = by_unit[u];
      for (size_t j = static_cast<size_t>(b.clock[u]); j < others.size() && !b.before(*others[j]);
           ++j) {
        const Instance& a = *others[j];
        for (const auto& x : a.accesses) {
          for (const auto& y : b.accesses) {
            if (x.buffer != y.buffer || !(x.write || y.write) || x.end <= y.begin ||
                y.end <= x.begin)
              continue;
            return fmt::format(
                "{} (line {}) and {} (line {}) on {}[{}, {})",
                opcode_info(a.instruction->opcode).mnemonic, a.instruction->location.line,
                opcode_info(b.instruction->opcode).mnemonic, b.instruction->location.line,
                buffer_name(x.buffer), std::max(x.begin, y.begin), std::min(x.end, y.end));
          }
        }
      }
    }
  }
  return "";
}

enum class Change { Same, Stronger, Weaker };

// How the mutant's happens-before relation compares with the original's (the same instances
// issue in the same order per unit, so clocks compare instance by instance).
Change compare(const TokenRun& original, const TokenRun& mutant) {
  std::array<std::vector<const Clock*>, kUnitCount> before, after;
  for (const auto& i : original.instances) before[static_cast<int>(i.unit)].push_back(&i.clock);
  for (const auto& i : mutant.instances) after[static_cast<int>(i.unit)].push_back(&i.clock);
  bool stronger = false;
  for (int u = 0; u < kUnitCount; ++u) {
    if (before[u].size() != after[u].size()) return Change::Weaker;
    for (size_t i = 0; i < before[u].size(); ++i) {
      for (int v = 0; v < kUnitCount; ++v) {
        if ((*after[u][i])[v] < (*before[u][i])[v]) return Change::Weaker;
        stronger = stronger || (*after[u][i])[v] > (*before[u][i])[v];
      }
    }
  }
  return stronger ? Change::Stronger : Change::Same;
}

// ---------------------------------------------------------------- mutants
struct Mutant {
  Instruction* instruction;
  bool wait;     // a `wait=` entry (else a `signal=` entry)
  size_t index;  // position in the list
  int token;
};

std::vector<Mutant> mutants_of(Program& program) {
  std::vector<Instruction*> instructions;
  collect_instructions(program.body, instructions);
  std::vector<Mutant> mutants;
  for (Instruction* in : instructions) {
    for (size_t i = 0; i < in->waits.size(); ++i) mutants.push_back({in, true, i, in->waits[i]});
    for (size_t i = 0; i < in->signals.size(); ++i)
      mutants.push_back({in, false, i, in->signals[i]});
  }
  return mutants;
}

std::string describe(const Program& program, const Mutant& m) {
  return fmt::format("line {}: {} without {}={}", m.instruction->location.line,
                     opcode_info(m.instruction->opcode).mnemonic, m.wait ? "wait" : "signal",
                     program.tokens[static_cast<size_t>(m.token)].name);
}

enum class Verdict { Race, Deadlock, Survived };

// Simulates `program`; a race or a deadlock is a verdict, any other error fails the test.
Verdict simulate(const Program& program, const ArchConfig& arch, std::string& message) {
  try {
    MachineState state = make_machine_state(program, target_limits(arch));
    simulate_program(program, arch, state);
  } catch (const Error& e) {
    message = e.message();
    if (message.starts_with("race on ")) return Verdict::Race;
    if (message.starts_with("deadlock at cycle ")) return Verdict::Deadlock;
    FAIL("unexpected error: " << e.what());
  }
  return Verdict::Survived;
}

struct Score {
  int mutants = 0, races = 0, deadlocks = 0, lost_slots = 0;  // detected
  int redundant = 0, covered = 0;                             // survivors
  std::vector<std::string> survivors;                         // each with its reason
};

Score inject_faults(Program& program, const ArchConfig& arch) {
  const TargetLimits target = target_limits(arch);
  {
    INFO("the unmutated program verifies, runs clean and has no unordered conflict");
    REQUIRE(verify_program(program, target).empty());
    std::string message;
    INFO(message);
    REQUIRE(simulate(program, arch, message) == Verdict::Survived);
  }
  const TokenRun original = token_run(program, target);
  REQUIRE_FALSE(original.stuck);
  REQUIRE(unordered_conflict(original).empty());
  std::vector<int64_t> waits_on(program.tokens.size(), 0);  // wait instances per token
  for (const Instance& i : original.instances) {
    for (int t : i.instruction->waits) ++waits_on[static_cast<size_t>(t)];
  }

  Score score;
  for (const Mutant& m : mutants_of(program)) {
    std::vector<int>& list = m.wait ? m.instruction->waits : m.instruction->signals;
    list.erase(list.begin() + static_cast<long>(m.index));
    const TokenDecl& token = program.tokens[static_cast<size_t>(m.token)];
    const std::string what = describe(program, m);
    INFO(what);
    ++score.mutants;

    bool unbalanced = false;
    for (const Error& e : verify_program(program, target)) {
      unbalanced =
          unbalanced || e.message().starts_with("token '" + token.name + "' is signalled ");
    }
    CHECK(unbalanced);

    const TokenRun run = token_run(program, target);
    const std::string conflict = run.stuck ? "" : unordered_conflict(run);
    std::string message;
    const Verdict verdict = simulate(program, arch, message);
    INFO("simulator: " << (message.empty() ? "no error" : message));
    INFO("untimed run: " << (run.stuck          ? "stuck"
                             : conflict.empty() ? "no unordered conflict"
                                                : "unordered " + conflict));
    switch (verdict) {
      case Verdict::Race:
        ++score.races;
        CHECK(!run.stuck);
        CHECK(!conflict.empty());
        break;
      case Verdict::Deadlock:
        ++score.deadlocks;
        CHECK(run.stuck);
        break;
      case Verdict::Survived: {
        REQUIRE_FALSE(run.stuck);
        REQUIRE(conflict.empty());
        const Change change = compare(original, run);
        if (!m.wait) {
          // Without one of its signals, an init=0 token's last wait never gets one.
          REQUIRE(token.initial > 0);
          CHECK(change != Change::Weaker);
          ++score.lost_slots;
        } else if (change == Change::Same) {
          ++score.redundant;
          score.survivors.push_back(
              what +
              (waits_on[static_cast<size_t>(m.token)] <= token.initial
                   ? fmt::format(
                         ": redundant, the token orders nothing (its {} waits are within init={})",
                         waits_on[static_cast<size_t>(m.token)], token.initial)
                   : ": redundant, program order and the other tokens already order it after the "
                     "signal"));
        } else {
          ++score.covered;
          score.survivors.push_back(
              what + ": covered, it orders no conflicting pair that other tokens do not");
        }
        break;
      }
    }
    list.insert(list.begin() + static_cast<long>(m.index), m.token);
  }
  return score;
}

}  // namespace

TEST_CASE("deleting any one wait or signal is reported, or leaves every conflicting access ordered",
          "[fault-injection][tokens]") {
  for (const Subject& s : kSubjects) {
    DYNAMIC_SECTION(s.name) {
      const ArchConfig arch = load_arch(s.arch, s.overrides);
      Program program = subject_program(s, arch);
      const Score score = inject_faults(program, arch);
      const int detected = score.races + score.deadlocks + score.lost_slots;
      std::printf(
          "%s\n",
          fmt::format("{}: {} of {} mutants detected ({} races, {} deadlocks, {} lost slots by the "
                      "token balance); {} survive: {} redundant, {} covered",
                      s.name, detected, score.mutants, score.races, score.deadlocks,
                      score.lost_slots, score.redundant + score.covered, score.redundant,
                      score.covered)
              .c_str());
      for (const auto& survivor : score.survivors) std::printf("  %s\n", survivor.c_str());
      CHECK(score.mutants > 0);
      CHECK(detected + score.redundant + score.covered == score.mutants);
    }
  }
}
