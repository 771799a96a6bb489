// Race detection by happens-before. Each unit keeps a vector clock; a token carries the clock
// of the instruction that signalled it to the instruction that waits on it. Two instructions
// of different units that touch overlapping buffer bytes, at least one writing, race unless
// one happens before the other. The verdict does not depend on timing, so a missing token is
// reported even when the schedule happened to order the accesses.
#pragma once

#include <array>
#include <deque>
#include <vector>

#include "ir/program.h"
#include "simulator/semantics.h"

namespace tpusim {

using VectorClock = std::array<int64_t, kUnitCount>;

class HazardChecker {
 public:
  explicit HazardChecker(const Program& program);

  // An instruction instance of `unit` starts: it has consumed its waits (in order) and will
  // touch `accesses`. Returns its clock, to be handed to `signal` when it completes. Throws
  // tpusim::Error naming both instructions on a race.
  VectorClock issue(Unit unit, const InstructionInstance& instance,
                    const std::vector<AccessRange>& accesses, int loop_depth);
  // A completed instruction with clock `clock` signals its tokens.
  void signal(const Instruction& in, const VectorClock& clock);
  // `unit` will issue nothing more (its records then only need the other units' clocks).
  void unit_finished(Unit unit) { finished_[static_cast<int>(unit)] = true; }

 private:
  struct Record {
    Unit unit;
    int64_t sequence;
    const Instruction* instruction;
    std::vector<int64_t> loop_values;
    AccessRange range;
  };
  std::string describe(const Instruction& in, const std::vector<int64_t>& loop_values) const;
  void prune();

  const Program& program_;
  std::array<VectorClock, kUnitCount> unit_clock_{};
  std::array<int64_t, kUnitCount> issued_{};
  std::array<bool, kUnitCount> finished_{};
  std::vector<std::deque<VectorClock>> token_clocks_;  // pending signals per token, FIFO
  std::vector<Record> records_;
  size_t prune_threshold_ = 64;
};

}  // namespace tpusim
