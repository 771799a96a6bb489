// Activity over time in a bounded number of bins: each unit's busy cycles, and the most
// unified-buffer bytes that instructions in flight were reading or writing at once. Bins start
// one cycle wide and double (neighbours merged) whenever the run outgrows kMaxBins, so the
// record stays small however long the run: the HTML report's timeline and occupancy charts.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "ir/program.h"

namespace tpusim {

class ActivityTimeline {
 public:
  static constexpr int64_t kMaxBins = 256;

  // `cycles` cycles of `unit` from `start` on were busy.
  void add_busy(Unit unit, int64_t start, int64_t cycles);
  // `bytes` moved to or from DRAM by a transfer over cycles [begin, end] (spread evenly).
  void add_dram_bytes(int64_t begin, int64_t end, int64_t bytes);
  // From `cycle` on, in-flight instructions touch `bytes` of the unified buffer.
  void set_ub_bytes(int64_t cycle, int64_t bytes);
  // Closes the record at the run's end.
  void finish(int64_t total_cycles);

  int64_t bin_cycles() const { return bin_cycles_; }
  const std::vector<std::array<int64_t, kUnitCount>>& busy() const { return busy_; }  // per bin
  const std::vector<int64_t>& ub_peak() const { return ub_peak_; }                   // per bin
  const std::vector<double>& dram_bytes() const { return dram_bytes_; }              // per bin

 private:
  void reach(int64_t cycle);  // bins up to and including `cycle`'s, widening them as needed

  int64_t bin_cycles_ = 1;
  std::vector<std::array<int64_t, kUnitCount>> busy_;
  std::vector<int64_t> ub_peak_;
  std::vector<double> dram_bytes_;
  int64_t ub_bytes_ = 0, ub_since_ = 0;
};

}  // namespace tpusim
