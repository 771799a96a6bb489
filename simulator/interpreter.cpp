#include "simulator/interpreter.h"

#include <fmt/format.h>

namespace tpusim {

std::string describe_blocked_wait(const Program& program, Unit unit, const Instruction& in,
                                  const std::vector<int64_t>& token_counts) {
  std::vector<std::string> missing;
  for (int t : in.waits) {
    if (token_counts[static_cast<size_t>(t)] <= 0) {
      const auto& token = program.tokens[static_cast<size_t>(t)];
      missing.push_back(fmt::format("'{}' (from {})", token.name, unit_name(token.producer)));
    }
  }
  return fmt::format("  {} is blocked at {} (line {}) waiting on token {}", unit_name(unit),
                     opcode_info(in.opcode).mnemonic, in.location.line, fmt::join(missing, ", "));
}

namespace {

bool tokens_available(const Instruction& in, std::vector<int64_t>& counts) {
  // A token listed twice needs two signals.
  bool ok = true;
  for (int t : in.waits) {
    if (--counts[static_cast<size_t>(t)] < 0) ok = false;
  }
  if (!ok) {
    for (int t : in.waits) ++counts[static_cast<size_t>(t)];
  }
  return ok;
}

}  // namespace

InterpreterResult interpret_program(const Program& program, const TargetLimits& target,
                                    MachineState& state) {
  InterpreterResult result;
  HazardChecker hazards(program);
  std::vector<int64_t> counts;
  for (const auto& t : program.tokens) counts.push_back(t.initial);
  StationaryTile tile;

  std::vector<ProgramCursor> cursors;
  std::array<const Instruction*, kUnitCount> next{};
  for (int u = 0; u < kUnitCount; ++u) {
    cursors.emplace_back(program, static_cast<Unit>(u));
    next[u] = cursors[u].next();
    if (!next[u]) hazards.unit_finished(static_cast<Unit>(u));
  }

  while (true) {
    bool progress = false, all_done = true;
    for (int u = 0; u < kUnitCount; ++u) {
      const Unit unit = static_cast<Unit>(u);
      while (next[u] && tokens_available(*next[u], counts)) {
        const Instruction& in = *next[u];
        InstructionInstance instance{&in, cursors[u].loop_values()};
        auto accesses = instruction_accesses(program, target, instance, tile);
        VectorClock clock = hazards.issue(unit, instance, accesses, cursors[u].loop_depth());
        switch (unit) {
          case Unit::Dma: execute_dma(program, instance, state, result.traffic); break;
          case Unit::Vpu: execute_vpu(instance, state, result.traffic); break;
          case Unit::Mxu:
            if (in.opcode == Opcode::MxuLoadStationary) {
              execute_load_stationary(instance, target.operand_type, state, tile, result.traffic);
            } else {
              MatmulResult values = in.opcode == Opcode::MxuMatmul
                                        ? reference_matmul(instance, target.operand_type, state, tile)
                                        : reference_matmul_os(instance, target.operand_type, state);
              int64_t element = dtype_size(target.operand_type);
              result.traffic.buffer_read[static_cast<int>(in.src.buffer)] +=
                  in.count * (in.opcode == Opcode::MxuMatmul ? tile.rows : in.rows) * element;
              if (in.opcode == Opcode::MxuMatmulOs) {
                result.traffic.buffer_read[static_cast<int>(in.top.buffer)] += in.count * in.cols * element;
              }
              write_accumulators(instance, target.operand_type, values, state, result.traffic);
            }
            break;
        }
        for (int t : in.signals) ++counts[static_cast<size_t>(t)];
        hazards.signal(in, clock);
        ++result.instructions;
        progress = true;
        next[u] = cursors[u].next();
        if (!next[u]) hazards.unit_finished(unit);
      }
      if (next[u]) all_done = false;
    }
    if (all_done) return result;
    if (!progress) {
      std::string lines;
      for (int u = 0; u < kUnitCount; ++u) {
        if (next[u]) lines += "\n" + describe_blocked_wait(program, static_cast<Unit>(u), *next[u], counts);
      }
      throw Error({program.file, 0, 0, ""},
                  "deadlock: no unit can continue; every remaining instruction waits on a token "
                  "that nothing will signal:" + lines);
    }
  }
}

}  // namespace tpusim
