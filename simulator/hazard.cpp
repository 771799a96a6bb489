#include "simulator/hazard.h"

#include <algorithm>

#include <fmt/format.h>

namespace tpusim {

HazardChecker::HazardChecker(const Program& program) : program_(program) {
  token_clocks_.resize(program.tokens.size());
  for (size_t t = 0; t < program.tokens.size(); ++t) {
    // Initial counts carry no ordering (a zero clock).
    for (int64_t i = 0; i < program.tokens[t].initial; ++i) token_clocks_[t].push_back(VectorClock{});
  }
}

std::string HazardChecker::describe(const Instruction& in, const std::vector<int64_t>& loop_values) const {
  std::string text = fmt::format("{} at line {}", opcode_info(in.opcode).mnemonic, in.location.line);
  if (!loop_values.empty()) text += fmt::format(" (loop iteration [{}])", fmt::join(loop_values, ","));
  if (!in.label.empty()) text += fmt::format(" [{}]", in.label);
  return text;
}

VectorClock HazardChecker::issue(Unit unit, const InstructionInstance& instance,
                                 const std::vector<AccessRange>& accesses, int loop_depth) {
  const int u = static_cast<int>(unit);
  const Instruction& in = *instance.instruction;
  VectorClock& clock = unit_clock_[u];
  for (int t : in.waits) {
    auto& pending = token_clocks_[static_cast<size_t>(t)];
    TPUSIM_CHECK(!pending.empty(), "wait issued without a pending signal");
    for (int v = 0; v < kUnitCount; ++v) clock[v] = std::max(clock[v], pending.front()[v]);
    pending.pop_front();
  }
  const int64_t sequence = ++issued_[u];
  std::vector<int64_t> loops(instance.loop_values, instance.loop_values + loop_depth);

  for (const auto& access : accesses) {
    for (const auto& record : records_) {
      int v = static_cast<int>(record.unit);
      if (v == u || record.sequence <= clock[v]) continue;  // same unit, or ordered before us
      if (record.range.buffer != access.buffer) continue;
      if (!(record.range.write || access.write)) continue;
      if (record.range.begin >= access.end || access.begin >= record.range.end) continue;
      int64_t begin = std::max(record.range.begin, access.begin), end = std::min(record.range.end, access.end);
      // Name the instruction that comes first in the text first: the fix is usually a
      // token from it to the later one.
      const bool record_first = record.instruction->location.line <= in.location.line;
      std::string earlier = describe(record_first ? *record.instruction : in, record_first ? record.loop_values : loops);
      std::string later = describe(record_first ? in : *record.instruction, record_first ? loops : record.loop_values);
      bool earlier_writes = record_first ? record.range.write : access.write;
      bool later_writes = record_first ? access.write : record.range.write;
      Unit earlier_unit = record_first ? record.unit : unit, later_unit = record_first ? unit : record.unit;
      SourceLocation where = record_first ? in.location : record.instruction->location;
      if (where.file.empty()) where.file = program_.file;
      throw Error(where, fmt::format("race on {}[{}, {}): {} {} it and {} {} it with no token "
                                     "ordering them; add a token from {} to {} (signal it from "
                                     "the first, wait on it in the second)",
                                     buffer_name(access.buffer), begin, end, earlier,
                                     earlier_writes ? "writes" : "reads", later,
                                     later_writes ? "writes" : "reads", unit_name(earlier_unit),
                                     unit_name(later_unit)));
    }
  }
  for (const auto& access : accesses) records_.push_back({unit, sequence, &in, loops, access});
  clock[u] = sequence;
  VectorClock own = clock;
  if (records_.size() > prune_threshold_) prune();
  return own;
}

void HazardChecker::signal(const Instruction& in, const VectorClock& clock) {
  for (int t : in.signals) token_clocks_[static_cast<size_t>(t)].push_back(clock);
}

void HazardChecker::prune() {
  // A record can race with nothing more once every other unit's clock has passed it.
  records_.erase(std::remove_if(records_.begin(), records_.end(),
                                [&](const Record& r) {
                                  int v = static_cast<int>(r.unit);
                                  for (int w = 0; w < kUnitCount; ++w) {
                                    if (w != v && !finished_[w] && unit_clock_[w][v] < r.sequence) return false;
                                  }
                                  return true;
                                }),
                 records_.end());
  prune_threshold_ = std::max<size_t>(64, records_.size() * 2);
}

}  // namespace tpusim
